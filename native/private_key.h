// Keys as opaque handles over an EVP_PKEY: private keys (X25519, P-384, ML-KEM, ML-DSA), whose material
// stays in OpenSSL's memory (destroy() frees it, and OpenSSL cleanses private key material when it
// frees a key), and parsed public keys (ML-KEM, so a key used for many encapsulations is parsed
// and checked once; ML-DSA; and any kind read from an SPKI or a certificate). An async operation still running holds its own reference, so destroy() is always safe.
#pragma once
#include <napi.h>
#include <openssl/evp.h>

#include "library_context.h"

namespace qt {

enum class KeyKind { kX25519 = 1, kMlKem768 = 2, kMlKem1024 = 3, kP384 = 4, kMlDsa87 = 5 };

// The OpenSSL algorithm name (P-384: the group of an "EC" key), also the handle's `algorithm`.
const char* KeyKindName(KeyKind kind);

template <bool kPublic>
class KeyHandle : public Napi::ObjectWrap<KeyHandle<kPublic>> {
 public:
  static Napi::Function Init(Napi::Env env);
  // Takes ownership of pkey.
  static Napi::Value Wrap(Napi::Env env, EVP_PKEY* pkey, KeyKind kind, LibraryContext* lc);
  // A live key of the given kind, or throws and returns nullptr.
  static KeyHandle* FromValue(Napi::Env env, Napi::Value v, KeyKind kind, const char* what);
  // A live key of any kind, or throws and returns nullptr.
  static KeyHandle* FromValueAny(Napi::Env env, Napi::Value v, const char* what);
  // Whether v is a handle of this class (live or destroyed).
  static bool Is(Napi::Env env, Napi::Value v);

  explicit KeyHandle(const Napi::CallbackInfo& info);
  ~KeyHandle() override;
  KeyHandle(const KeyHandle&) = delete;  // owns a reference to pkey_
  KeyHandle& operator=(const KeyHandle&) = delete;

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

using PrivateKey = KeyHandle<false>;
using PublicKey = KeyHandle<true>;

// The kind of a key OpenSSL decoded (from an SPKI, PKCS#8 or a certificate): false when it is none
// of ours (P-384 means an EC key on that curve).
bool KindOfKey(EVP_PKEY* pkey, KeyKind* kind);

// Raw public key bytes of a key pair (X25519: 32; ML-KEM: the encapsulation key; ML-DSA: pk;
// P-384: the uncompressed point).
Napi::Value ExportPublicKey(Napi::Env env, EVP_PKEY* pkey, KeyKind kind);

}  // namespace qt
