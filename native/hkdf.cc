#include "hkdf.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "addon_data.h"
#include "args.h"
#include "bytes.h"
#include "errors.h"
#include "secret.h"

namespace qt {

namespace {

// The `digest` argument, exported as hkdfDigests so TypeScript never hard-codes the numbers.
enum DigestId : uint32_t { kSha256 = 1, kSha384 = 2 };

struct Digest {
  const char* name;  // OpenSSL's name, given to HKDF and HMAC as their "digest" parameter
  size_t size;       // HashLen
};

constexpr Digest kSha256Digest{"SHA2-256", 32};
constexpr Digest kSha384Digest{"SHA2-384", 48};
constexpr size_t kMaxHashLen = 48;
// RFC 5869 §2.3: L <= 255 * HashLen (the block counter is one octet).
constexpr size_t kMaxExpandBlocks = 255;
// OpenSSL's HKDF refuses a longer info (HKDF_MAXINFO, providers/implementations/kdfs/hkdf.c).
constexpr size_t kMaxInfo = 32 * 1024;
// Bound on the salt and on the concatenated IKM: a hybrid shared secret with its public context
// (ML-KEM ciphertexts, public keys) is a few KiB.
constexpr size_t kMaxKeyInput = size_t{1} << 20;

using KdfCtx = std::unique_ptr<EVP_KDF_CTX, decltype(&EVP_KDF_CTX_free)>;
using MacCtx = std::unique_ptr<EVP_MAC_CTX, decltype(&EVP_MAC_CTX_free)>;

// A number primitive equal to one of DigestId (no coercion: it would run JS).
bool GetDigest(Napi::Env env, Napi::Value v, Digest* out) {
  if (v.IsNumber()) {
    const double d = v.As<Napi::Number>().DoubleValue();
    if (d == kSha256) {
      *out = kSha256Digest;
      return true;
    }
    if (d == kSha384) {
      *out = kSha384Digest;
      return true;
    }
  }
  ThrowInvalidArgument(env, "digest must be one of hkdfDigests (SHA256, SHA384)");
  return false;
}

// The bytes of a Uint8Array or of a live Secret. Runs no JS; call it only after every array read.
bool KeyInputBytes(Napi::Env env, Napi::Value v, const char* what, ByteView* out) {
  if (v.IsTypedArray()) return GetBytes(env, v, what, out);
  Secret* s = Secret::FromValue(env, v, what);
  if (s == nullptr) return false;
  out->size = s->bytes().size();
  out->data = out->size == 0 ? EmptyBytes() : const_cast<uint8_t*>(s->bytes().data());
  return true;
}

uint8_t* NonNull(SecretBytes& b) { return b.size() == 0 ? EmptyBytes() : b.data(); }

// Runs the active context's HKDF over `digest` with `params` (mode, key, salt/info) into `out`:
// a copy of the context's HKDF with that digest set, freed (and its key cleansed) afterwards.
bool Derive(Napi::Env env, const Digest& digest, const OSSL_PARAM* params, SecretBytes* out, const char* what) {
  KdfCtx ctx(EVP_KDF_CTX_dup(Data(env).active_context->hkdf_template(digest.size == kSha384Digest.size)), EVP_KDF_CTX_free);
  if (!ctx || EVP_KDF_derive(ctx.get(), out->data(), out->size(), params) != 1) {
    ThrowError(env, code::kCryptoFailure, what);
    return false;
  }
  return true;
}

Napi::Value WrapOrUndefined(Napi::Env env, std::unique_ptr<SecretBytes> bytes) {
  Napi::Value handle = Secret::Wrap(env, std::move(bytes));
  return handle.IsEmpty() ? env.Undefined() : handle;
}

// hkdfExtract(digest, salt, ikmParts) -> Secret(HashLen): PRK = HMAC-Hash(salt, IKM), IKM being
// the concatenation of the parts (byte arrays and Secret handles, e.g. two shared secrets and
// public context). salt is a Uint8Array, a Secret or null.
Napi::Value HkdfExtract(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Digest digest;
  if (!RequireOperational(env) || !GetDigest(env, info[0], &digest)) return env.Undefined();
  Napi::Value salt_value = info[1];
  const bool has_salt = !salt_value.IsNull();
  if (has_salt && !salt_value.IsTypedArray() && !Secret::Is(env, salt_value)) {
    ThrowInvalidArgument(env, "salt must be a Uint8Array, a Secret handle or null");
    return env.Undefined();
  }
  // Reading the IKM array can run JS (a getter may detach the salt, destroy a handle, enter the
  // error state or switch modes): every pointer is taken, and the state checked, after it.
  std::vector<Napi::Value> parts;
  if (!ReadParts(env, info[2], &parts) || !RequireOperational(env)) return env.Undefined();

  // RFC 5869 §2.2: no salt means HashLen zero bytes. An empty salt is the same HMAC key (keys are
  // zero-padded to the block size), so it gets the zeros too and OpenSSL always sees a key.
  uint8_t zeros[kMaxHashLen] = {};
  ByteView salt{zeros, digest.size};
  if (has_salt) {
    if (!KeyInputBytes(env, salt_value, "salt", &salt)) return env.Undefined();
    if (salt.size > kMaxKeyInput) {
      ThrowInvalidArgument(env, "salt must be at most " + std::to_string(kMaxKeyInput) + " bytes");
      return env.Undefined();
    }
    if (salt.size == 0) salt = ByteView{zeros, digest.size};
  }
  std::vector<ByteView> views(parts.size());
  size_t total = 0;
  for (size_t i = 0; i < parts.size(); i++) {
    if (!KeyInputBytes(env, parts[i], "each IKM part", &views[i])) return env.Undefined();
    if (views[i].size > kMaxKeyInput - total) {
      ThrowInvalidArgument(env, "the IKM must be at most " + std::to_string(kMaxKeyInput) + " bytes");
      return env.Undefined();
    }
    total += views[i].size;
  }
  // The IKM is secret: concatenated into cleansed native memory, never a JS buffer.
  SecretBytes ikm(total);
  auto prk = std::make_unique<SecretBytes>(digest.size);
  if (!ikm.ok() || !prk->ok()) {
    ThrowError(env, code::kCryptoFailure, "out of memory");
    return env.Undefined();
  }
  size_t offset = 0;
  for (const ByteView& v : views) {
    if (v.size > 0) std::memcpy(ikm.data() + offset, v.data, v.size);
    offset += v.size;
  }
  int mode = EVP_KDF_HKDF_MODE_EXTRACT_ONLY;
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, NonNull(ikm), ikm.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, salt.data, salt.size),
      OSSL_PARAM_construct_end(),
  };
  if (!Derive(env, digest, params, prk.get(), "HKDF-Extract failed")) return env.Undefined();
  return WrapOrUndefined(env, std::move(prk));
}

// hkdfExpand(digest, prk, info, length) -> Secret(length): OKM = T(1) | T(2) | ... truncated.
// Reads no array, so no JS runs during the call.
Napi::Value HkdfExpand(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Digest digest;
  size_t length;
  ByteView info_bytes;
  if (!RequireOperational(env) || !GetDigest(env, info[0], &digest) ||
      !GetSize(env, info[3], "length", kMaxExpandBlocks * digest.size, &length)) {
    return env.Undefined();
  }
  if (length == 0) {
    ThrowInvalidArgument(env, "length must be an integer from 1 to " + std::to_string(kMaxExpandBlocks * digest.size));
    return env.Undefined();
  }
  if (!GetBytes(env, info[2], "info", &info_bytes)) return env.Undefined();
  if (info_bytes.size > kMaxInfo) {
    ThrowInvalidArgument(env, "info must be at most " + std::to_string(kMaxInfo) + " bytes");
    return env.Undefined();
  }
  Secret* prk = Secret::FromValue(env, info[1], "prk");
  if (prk == nullptr) return env.Undefined();
  // RFC 5869 §2.3: PRK is "at least HashLen octets"; OpenSSL's expand does not check.
  if (prk->bytes().size() < digest.size) {
    ThrowError(env, code::kInvalidKey, "the PRK must be at least " + std::to_string(digest.size) + " bytes");
    return env.Undefined();
  }
  auto okm = std::make_unique<SecretBytes>(length);
  if (!okm->ok()) {
    ThrowError(env, code::kCryptoFailure, "out of memory");
    return env.Undefined();
  }
  int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(prk->bytes().data()),
                                        prk->bytes().size()),
      OSSL_PARAM_construct_end(),  // the info, when there is one
      OSSL_PARAM_construct_end(),
  };
  if (info_bytes.size > 0) params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info_bytes.data, info_bytes.size);
  if (!Derive(env, digest, params, okm.get(), "HKDF-Expand failed")) return env.Undefined();
  return WrapOrUndefined(env, std::move(okm));
}

// HMAC-Hash(key, parts...) into out[0..HashLen). `parts` were collected by ReadParts: the key and
// every byte pointer are taken here, after all JS has run. Public byte arrays only.
bool ComputeHmac(Napi::Env env, const Digest& digest, Napi::Value key_value, const std::vector<Napi::Value>& parts,
                 uint8_t* out) {
  for (const Napi::Value& part : parts) {
    if (!part.IsTypedArray()) {
      ThrowInvalidArgument(env, "each part must be a Uint8Array (HMAC inputs are public)");
      return false;
    }
  }
  Secret* key = Secret::FromValue(env, key_value, "key");
  if (key == nullptr) return false;
  const size_t key_size = key->bytes().size();
  const uint8_t* key_data = key_size == 0 ? EmptyBytes() : key->bytes().data();
  // A copy of the context's HMAC with the digest already set (see hkdf_template).
  MacCtx ctx(EVP_MAC_CTX_dup(Data(env).active_context->hmac_template(digest.size == kSha384Digest.size)), EVP_MAC_CTX_free);
  if (!ctx || EVP_MAC_init(ctx.get(), key_data, key_size, nullptr) != 1) {
    ThrowError(env, code::kCryptoFailure, "HMAC initialisation failed");
    return false;
  }
  for (const Napi::Value& part : parts) {
    ByteView view;
    if (!GetBytes(env, part, "each part", &view)) return false;
    if (view.size > 0 && EVP_MAC_update(ctx.get(), view.data, view.size) != 1) {
      ThrowError(env, code::kCryptoFailure, "HMAC update failed");
      return false;
    }
  }
  size_t len = 0;
  if (EVP_MAC_final(ctx.get(), out, &len, digest.size) != 1 || len != digest.size) {
    ThrowError(env, code::kCryptoFailure, "HMAC failed");
    return false;
  }
  return true;
}

// hmac(digest, key, parts) -> Buffer(HashLen). A MAC is public (e.g. a Finished verify_data).
Napi::Value Hmac(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Digest digest;
  std::vector<Napi::Value> parts;
  if (!RequireOperational(env) || !GetDigest(env, info[0], &digest) || !ReadParts(env, info[2], &parts) ||
      !RequireOperational(env)) {
    return env.Undefined();
  }
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, digest.size);
  if (out.IsEmpty()) return env.Undefined();  // allocation failed: a RangeError is pending
  if (!ComputeHmac(env, digest, info[1], parts, out.Data())) return env.Undefined();
  return out;
}

// hmacVerify(digest, key, parts, expected) -> boolean, compared in constant time. Only a full
// HashLen tag can match (a length is public).
Napi::Value HmacVerify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Digest digest;
  std::vector<Napi::Value> parts;
  if (!RequireOperational(env) || !GetDigest(env, info[0], &digest) || !ReadParts(env, info[2], &parts) ||
      !RequireOperational(env)) {
    return env.Undefined();
  }
  ByteView expected;
  if (!GetBytes(env, info[3], "expected", &expected)) return env.Undefined();
  uint8_t mac[kMaxHashLen];
  if (!ComputeHmac(env, digest, info[1], parts, mac)) return env.Undefined();
  const bool equal = expected.size == digest.size && CRYPTO_memcmp(mac, expected.data, digest.size) == 0;
  // The correct tag for a forged message must not outlive the call.
  OPENSSL_cleanse(mac, sizeof(mac));
  return Napi::Boolean::New(env, equal);
}

}  // namespace

void InitHkdf(Napi::Env env, Napi::Object exports) {
  exports.Set("hkdfExtract", Napi::Function::New<HkdfExtract>(env));
  exports.Set("hkdfExpand", Napi::Function::New<HkdfExpand>(env));
  exports.Set("hmac", Napi::Function::New<Hmac>(env));
  exports.Set("hmacVerify", Napi::Function::New<HmacVerify>(env));
  Napi::Object digests = Napi::Object::New(env);
  digests.Set("SHA256", static_cast<double>(kSha256));
  digests.Set("SHA384", static_cast<double>(kSha384));
  exports.Set("hkdfDigests", digests);
  Napi::Object hash_length = Napi::Object::New(env);
  hash_length.Set("SHA256", static_cast<double>(kSha256Digest.size));
  hash_length.Set("SHA384", static_cast<double>(kSha384Digest.size));
  Napi::Object sizes = Napi::Object::New(env);
  sizes.Set("hashLength", hash_length);
  sizes.Set("maxExpandBlocks", static_cast<double>(kMaxExpandBlocks));
  sizes.Set("maxInfo", static_cast<double>(kMaxInfo));
  sizes.Set("maxKeyInput", static_cast<double>(kMaxKeyInput));
  exports.Set("hkdfSizes", sizes);
}

}  // namespace qt
