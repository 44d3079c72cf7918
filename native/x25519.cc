#include "x25519.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstring>
#include <memory>

#include "addon_data.h"
#include "args.h"
#include "bytes.h"
#include "errors.h"
#include "private_key.h"
#include "secret.h"

namespace qt {

namespace {

constexpr size_t kKeySize = 32;
using PkeyCtx = std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)>;
using Pkey = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

}  // namespace

EVP_PKEY* X25519Generate(LibraryContext* lc, OpStatus* st) {
  PkeyCtx ctx(EVP_PKEY_CTX_new_from_name(lc->ctx(), "X25519", lc->x25519_propq()), EVP_PKEY_CTX_free);
  EVP_PKEY* pkey = nullptr;
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 || EVP_PKEY_generate(ctx.get(), &pkey) != 1) {
    st->Fail(code::kCryptoFailure, "X25519 key generation failed");
    return nullptr;
  }
  return pkey;
}

// Any 32 bytes parse as a peer key (as in the reference); an all-zero result (a low-order peer
// point) is refused, as RFC 7748 §6.1 allows.
bool X25519Derive(LibraryContext* lc, EVP_PKEY* ours, const uint8_t* peer_bytes, uint8_t* z, OpStatus* st) {
  Pkey peer(EVP_PKEY_new_raw_public_key_ex(lc->ctx(), "X25519", lc->x25519_propq(), peer_bytes, kKeySize),
            EVP_PKEY_free);
  if (!peer) return st->Fail(code::kInvalidKey, "X25519 peer public key is invalid");
  PkeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(lc->ctx(), ours, lc->x25519_propq()), EVP_PKEY_CTX_free);
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1 || EVP_PKEY_derive_set_peer_ex(ctx.get(), peer.get(), 0) != 1) {
    return st->Fail(code::kCryptoFailure, "X25519 key agreement could not start");
  }
  static const uint8_t kZeros[kKeySize] = {0};
  size_t len = kKeySize;
  // OpenSSL itself fails the derivation on an all-zero result; check again so the rule does not
  // depend on the provider.
  if (EVP_PKEY_derive(ctx.get(), z, &len) != 1 || len != kKeySize || CRYPTO_memcmp(z, kZeros, kKeySize) == 0) {
    OPENSSL_cleanse(z, kKeySize);
    return st->Fail(code::kLowOrderPoint, "X25519 produced an all-zero shared secret (low-order peer key)");
  }
  return true;
}

namespace {

Napi::Value GenerateKeyPair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireOperational(env)) return env.Undefined();
  LibraryContext* lc = Data(env).active_context;
  OpStatus st;
  EVP_PKEY* pkey = X25519Generate(lc, &st);
  if (st.ThrowIfFailed(env)) return env.Undefined();
  return PrivateKey::Wrap(env, pkey, KeyKind::kX25519, lc);
}

Napi::Value ExportX25519PublicKey(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireOperational(env)) return env.Undefined();
  PrivateKey* key = PrivateKey::FromValue(env, info[0], KeyKind::kX25519, "privateKey");
  if (key == nullptr) return env.Undefined();
  return ExportPublicKey(env, key->pkey(), KeyKind::kX25519);
}

// x25519Derive(privateKey, peerPublicKey) -> Secret. Any 32 bytes parse as a peer key (as in the
// reference); an all-zero result (a low-order peer point) is refused, as RFC 7748 §6.1 allows.
Napi::Value Derive(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireOperational(env)) return env.Undefined();
  PrivateKey* key = PrivateKey::FromValue(env, info[0], KeyKind::kX25519, "privateKey");
  ByteView peer_bytes;
  if (key == nullptr || !GetBytesOfSize(env, info[1], "peerPublicKey", kKeySize, &peer_bytes)) {
    return env.Undefined();
  }
  // A snapshot of the peer key, like every key this addon parses from caller bytes.
  uint8_t peer_copy[kKeySize];
  std::memcpy(peer_copy, peer_bytes.data, kKeySize);
  auto shared = std::make_unique<SecretBytes>(kKeySize);
  OpStatus st;
  X25519Derive(key->context(), key->pkey(), peer_copy, shared->data(), &st);
  if (st.ThrowIfFailed(env)) return env.Undefined();
  return Secret::Wrap(env, std::move(shared));
}

// Test-vector import of a raw private scalar (RFC 7748 vectors, PROTOCOL.md Appendix A).
Napi::Value PrivateKeyFromBytes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireOperational(env)) return env.Undefined();
  ByteView raw;
  std::unique_ptr<SecretBytes> raw_copy;  // key material: OpenSSL sees a private copy
  if (!GetBytesOfSize(env, info[0], "privateKey", kKeySize, &raw) || !(raw_copy = CopyOf(env, raw))) {
    return env.Undefined();
  }
  LibraryContext* lc = Data(env).active_context;
  EVP_PKEY* pkey = EVP_PKEY_new_raw_private_key_ex(lc->ctx(), "X25519", lc->x25519_propq(), raw_copy->data(), kKeySize);
  if (pkey == nullptr) {
    ThrowError(env, code::kInvalidKey, "X25519 private key is invalid");
    return env.Undefined();
  }
  return PrivateKey::Wrap(env, pkey, KeyKind::kX25519, lc);
}

}  // namespace

void InitX25519(Napi::Env env, Napi::Object exports) {
  exports.Set("x25519GenerateKeyPair", Napi::Function::New<GenerateKeyPair>(env));
  exports.Set("x25519PublicKey", Napi::Function::New<ExportX25519PublicKey>(env));
  exports.Set("x25519Derive", Napi::Function::New<Derive>(env));
  exports.Set("x25519PrivateKeyFromBytes", Napi::Function::New<PrivateKeyFromBytes>(env));
  Napi::Object sizes = Napi::Object::New(env);
  sizes.Set("publicKey", static_cast<double>(kKeySize));
  sizes.Set("privateKey", static_cast<double>(kKeySize));
  sizes.Set("sharedSecret", static_cast<double>(kKeySize));
  exports.Set("x25519Sizes", sizes);
}

}  // namespace qt
