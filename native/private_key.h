// Private keys (X25519, ML-KEM) as opaque handles over an EVP_PKEY. The key material stays in
// OpenSSL's memory; destroy() frees it (OpenSSL cleanses private key material when it frees a
// key), and an async operation still running holds its own reference, so destroy() is always safe.
#pragma once
#include <napi.h>
#include <openssl/evp.h>

#include "library_context.h"

namespace qt {

enum class KeyKind { kX25519 = 1, kMlKem768 = 2, kMlKem1024 = 3 };

const char* KeyKindName(KeyKind kind);  // the OpenSSL algorithm name

class PrivateKey : public Napi::ObjectWrap<PrivateKey> {
 public:
  static Napi::Function Init(Napi::Env env);
  // Takes ownership of pkey.
  static Napi::Value Wrap(Napi::Env env, EVP_PKEY* pkey, KeyKind kind, LibraryContext* lc);
  // A live private key of the given kind, or throws and returns nullptr.
  static PrivateKey* FromValue(Napi::Env env, Napi::Value v, KeyKind kind, const char* what);

  explicit PrivateKey(const Napi::CallbackInfo& info);
  ~PrivateKey() override;

  EVP_PKEY* pkey() const { return pkey_; }
  KeyKind kind() const { return kind_; }
  LibraryContext* context() const { return lc_; }

 private:
  Napi::Value Algorithm(const Napi::CallbackInfo& info);
  Napi::Value Destroyed(const Napi::CallbackInfo& info);
  void Destroy(const Napi::CallbackInfo& info);

  EVP_PKEY* pkey_ = nullptr;
  KeyKind kind_ = KeyKind::kX25519;
  LibraryContext* lc_ = nullptr;
};

// Raw public key bytes of a key pair (X25519: 32; ML-KEM: the encapsulation key).
Napi::Value ExportPublicKey(Napi::Env env, EVP_PKEY* pkey, KeyKind kind);

}  // namespace qt
