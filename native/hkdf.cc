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
#include "aead.h"
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
constexpr size_t kMaxInfo = size_t{32} * 1024;
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
bool Derive(Napi::Env env, const Digest& digest, const OSSL_PARAM* params, uint8_t* out, size_t out_size, const char* what) {
  KdfCtx ctx(EVP_KDF_CTX_dup(Data(env).active_context->hkdf_template(digest.size == kSha384Digest.size)), EVP_KDF_CTX_free);
  if (!ctx || EVP_KDF_derive(ctx.get(), out, out_size, params) != 1) {
    ThrowError(env, code::kCryptoFailure, what);
    return false;
  }
  return true;
}

// HKDF-Expand(prk, info, out_size) into `out`; the caller has checked prk's and info's sizes.
bool ExpandInto(Napi::Env env, const Digest& digest, const SecretBytes& prk, const ByteView& info, uint8_t* out,
                size_t out_size) {
  int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(prk.data()), prk.size()),
      OSSL_PARAM_construct_end(),  // the info, when there is one
      OSSL_PARAM_construct_end(),
  };
  if (info.size > 0) params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<uint8_t*>(info.data), info.size);
  return Derive(env, digest, params, out, out_size, "HKDF-Expand failed");
}

// A live Secret usable as an HKDF PRK (RFC 5869 §2.3: at least HashLen bytes; OpenSSL's expand
// does not check), or nullptr with an exception pending.
Secret* PrkFromValue(Napi::Env env, Napi::Value v, const Digest& digest, const char* what) {
  Secret* prk = Secret::FromValue(env, v, what);
  if (prk != nullptr && prk->bytes().size() < digest.size) {
    ThrowError(env, code::kInvalidKey, std::string("the ") + what + " must be at least " + std::to_string(digest.size) + " bytes");
    return nullptr;
  }
  return prk;
}

// An HKDF-Expand output length L: 1 <= L <= 255 * HashLen (RFC 5869 §2.3).
bool GetOutputLength(Napi::Env env, Napi::Value v, const Digest& digest, const char* what, size_t* out) {
  const size_t max = kMaxExpandBlocks * digest.size;
  if (!GetSize(env, v, what, max, out)) return false;
  if (*out == 0) {
    ThrowInvalidArgument(env, std::string(what) + " must be an integer from 1 to " + std::to_string(max));
    return false;
  }
  return true;
}

// An `info` argument: a Uint8Array of at most kMaxInfo bytes.
bool GetInfo(Napi::Env env, Napi::Value v, const char* what, ByteView* out) {
  if (!GetBytes(env, v, what, out)) return false;
  if (out->size > kMaxInfo) {
    ThrowInvalidArgument(env, std::string(what) + " must be at most " + std::to_string(kMaxInfo) + " bytes");
    return false;
  }
  return true;
}

// Derive-Secret's pattern in one step: HKDF-Expand(secret, info, HashLen) into cleansed memory,
// for a key that is used at once and never needs a handle (a "derived" salt, a finished_key).
std::unique_ptr<SecretBytes> ExpandedKey(Napi::Env env, const Digest& digest, Napi::Value secret_value,
                                         Napi::Value info_value, const char* what) {
  ByteView info;
  Secret* secret = PrkFromValue(env, secret_value, digest, what);
  if (secret == nullptr || !GetInfo(env, info_value, "keyInfo", &info)) return nullptr;
  auto key = std::make_unique<SecretBytes>(digest.size);
  if (!key->ok()) {
    ThrowError(env, code::kCryptoFailure, "out of memory");
    return nullptr;
  }
  if (!ExpandInto(env, digest, secret->bytes(), info, key->data(), key->size())) return nullptr;
  return key;
}

Napi::Value WrapOrUndefined(Napi::Env env, std::unique_ptr<SecretBytes> bytes) {
  Napi::Value handle = Secret::Wrap(env, std::move(bytes));
  return handle.IsEmpty() ? env.Undefined() : handle;
}

// PRK = HMAC-Hash(salt, IKM) into `prk` (HashLen bytes). The arguments of hkdfExtract and hkdf:
// salt (a Uint8Array, a Secret or null) at `salt_value`, the IKM parts at `ikm_value` and, when
// `salt_info_value` is not undefined, the salt is a Secret expanded with it first:
// Extract(Expand(salt, saltInfo, HashLen), IKM), the "derived" step of a TLS 1.3-style schedule
// in one call, its intermediate never wrapped. Reads the IKM array first (it can run JS).
bool ExtractInto(Napi::Env env, const Digest& digest, Napi::Value salt_value, Napi::Value ikm_value,
                 Napi::Value salt_info_value, SecretBytes* prk) {
  const bool has_salt = !salt_value.IsNull();
  const bool expand_salt = !salt_info_value.IsUndefined();
  if (expand_salt ? !Secret::Is(env, salt_value) : has_salt && !salt_value.IsTypedArray() && !Secret::Is(env, salt_value)) {
    ThrowInvalidArgument(env, expand_salt ? "salt must be a Secret handle when saltInfo is given"
                                          : "salt must be a Uint8Array, a Secret handle or null");
    return false;
  }
  // Reading the IKM array can run JS (a getter may detach the salt, destroy a handle, enter the
  // error state or switch modes): every pointer is taken, and the state checked, after it.
  std::vector<Napi::Value> parts;
  if (!ReadParts(env, ikm_value, &parts) || !RequireOperational(env)) return false;

  // RFC 5869 §2.2: no salt means HashLen zero bytes. An empty salt is the same HMAC key (keys are
  // zero-padded to the block size), so it gets the zeros too and OpenSSL always sees a key.
  uint8_t zeros[kMaxHashLen] = {};
  ByteView salt{zeros, digest.size};
  std::unique_ptr<SecretBytes> derived_salt;
  if (expand_salt) {
    derived_salt = ExpandedKey(env, digest, salt_value, salt_info_value, "salt");
    if (!derived_salt) return false;
    salt = ByteView{derived_salt->data(), derived_salt->size()};
  } else if (has_salt) {
    if (!KeyInputBytes(env, salt_value, "salt", &salt)) return false;
    if (salt.size > kMaxKeyInput) {
      ThrowInvalidArgument(env, "salt must be at most " + std::to_string(kMaxKeyInput) + " bytes");
      return false;
    }
    if (salt.size == 0) salt = ByteView{zeros, digest.size};
  }
  std::vector<ByteView> views(parts.size());
  size_t total = 0;
  for (size_t i = 0; i < parts.size(); i++) {
    if (!KeyInputBytes(env, parts[i], "each IKM part", &views[i])) return false;
    if (views[i].size > kMaxKeyInput - total) {
      ThrowInvalidArgument(env, "the IKM must be at most " + std::to_string(kMaxKeyInput) + " bytes");
      return false;
    }
    total += views[i].size;
  }
  // The IKM is secret: concatenated into cleansed native memory, never a JS buffer.
  SecretBytes ikm(total);
  if (!ikm.ok() || !prk->ok()) {
    ThrowError(env, code::kCryptoFailure, "out of memory");
    return false;
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
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<uint8_t*>(salt.data), salt.size),
      OSSL_PARAM_construct_end(),
  };
  return Derive(env, digest, params, prk->data(), prk->size(), "HKDF-Extract failed");
}

// hkdfExtract(digest, salt, ikmParts, saltInfo?) -> Secret(HashLen): PRK = HMAC-Hash(salt, IKM),
// IKM being the concatenation of the parts (byte arrays and Secret handles, e.g. two shared
// secrets and public context); with saltInfo, see ExtractInto.
Napi::Value HkdfExtract(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Digest digest{};
  if (!RequireOperational(env) || !GetDigest(env, info[0], &digest)) return env.Undefined();
  auto prk = std::make_unique<SecretBytes>(digest.size);
  if (!ExtractInto(env, digest, info[1], info[2], info[3], prk.get())) return env.Undefined();
  return WrapOrUndefined(env, std::move(prk));
}

// hkdf(digest, salt, ikmParts, info, length) -> Secret(length): Expand(Extract(salt, IKM), info,
// length) in one call, the PRK never wrapped (a KEM combiner's one-shot KDF).
Napi::Value Hkdf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Digest digest{};
  size_t length = 0;
  if (!RequireOperational(env) || !GetDigest(env, info[0], &digest) || !GetOutputLength(env, info[4], digest, "length", &length)) {
    return env.Undefined();
  }
  SecretBytes prk(digest.size);
  auto okm = std::make_unique<SecretBytes>(length);
  ByteView info_bytes;
  if (!okm->ok()) {
    ThrowError(env, code::kCryptoFailure, "out of memory");
    return env.Undefined();
  }
  // The IKM array is read (running any JS) inside ExtractInto, before the info's pointer is taken.
  if (!ExtractInto(env, digest, info[1], info[2], env.Undefined(), &prk) || !GetInfo(env, info[3], "info", &info_bytes) ||
      !ExpandInto(env, digest, prk, info_bytes, okm->data(), okm->size())) {
    return env.Undefined();
  }
  return WrapOrUndefined(env, std::move(okm));
}

// hkdfExpand(digest, prk, info, length) -> Secret(length): OKM = T(1) | T(2) | ... truncated.
// Reads no array, so no JS runs during the call.
Napi::Value HkdfExpand(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Digest digest{};
  size_t length = 0;
  ByteView info_bytes;
  if (!RequireOperational(env) || !GetDigest(env, info[0], &digest) || !GetOutputLength(env, info[3], digest, "length", &length)) {
    return env.Undefined();
  }
  if (!GetInfo(env, info[2], "info", &info_bytes)) return env.Undefined();
  Secret* prk = PrkFromValue(env, info[1], digest, "prk");
  if (prk == nullptr) return env.Undefined();
  auto okm = std::make_unique<SecretBytes>(length);
  if (!okm->ok()) {
    ThrowError(env, code::kCryptoFailure, "out of memory");
    return env.Undefined();
  }
  if (!ExpandInto(env, digest, prk->bytes(), info_bytes, okm->data(), okm->size())) return env.Undefined();
  return WrapOrUndefined(env, std::move(okm));
}

// The most outputs one hkdfExpandSecrets call makes (a schedule step makes at most four).
constexpr uint32_t kMaxExpandOutputs = 16;

// hkdfExpandSecrets(digest, prk, infos[], lengths[]) -> Secret[]: several HKDF-Expand outputs of
// one PRK in one call (the Derive-Secret calls of one schedule step share their PRK).
Napi::Value HkdfExpandSecrets(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Digest digest{};
  if (!RequireOperational(env) || !GetDigest(env, info[0], &digest)) return env.Undefined();
  if (!info[3].IsArray()) {
    ThrowInvalidArgument(env, "lengths must be an array");
    return env.Undefined();
  }
  // Both arrays are read (which can run JS) before any pointer is taken.
  std::vector<Napi::Value> infos;
  if (!ReadParts(env, info[2], &infos)) return env.Undefined();
  Napi::Array lengths_array = info[3].As<Napi::Array>();
  const uint32_t n = lengths_array.Length();
  if (n == 0 || n > kMaxExpandOutputs || n != infos.size()) {
    ThrowInvalidArgument(env, "infos and lengths must have the same length, 1 to " + std::to_string(kMaxExpandOutputs));
    return env.Undefined();
  }
  std::vector<size_t> lengths(n);
  for (uint32_t i = 0; i < n; i++) {
    Napi::Value v = lengths_array.Get(i);
    if (env.IsExceptionPending() || !GetOutputLength(env, v, digest, "each length", &lengths[i])) return env.Undefined();
  }
  if (!RequireOperational(env)) return env.Undefined();
  Secret* prk = PrkFromValue(env, info[1], digest, "prk");
  if (prk == nullptr) return env.Undefined();
  std::vector<std::unique_ptr<SecretBytes>> outputs;
  for (uint32_t i = 0; i < n; i++) {
    ByteView info_bytes;
    if (!infos[i].IsTypedArray()) {
      ThrowInvalidArgument(env, "each info must be a Uint8Array");
      return env.Undefined();
    }
    if (!GetInfo(env, infos[i], "each info", &info_bytes)) return env.Undefined();
    auto okm = std::make_unique<SecretBytes>(lengths[i]);
    if (!okm->ok()) {
      ThrowError(env, code::kCryptoFailure, "out of memory");
      return env.Undefined();
    }
    if (!ExpandInto(env, digest, prk->bytes(), info_bytes, okm->data(), okm->size())) return env.Undefined();
    outputs.push_back(std::move(okm));
  }
  Napi::Array out = Napi::Array::New(env, n);
  for (uint32_t i = 0; i < n; i++) {
    Napi::Value handle = Secret::Wrap(env, std::move(outputs[i]));
    if (handle.IsEmpty()) return env.Undefined();
    // Defined, not assigned: a setter on Array.prototype must not receive the handle.
    out.DefineProperty(Napi::PropertyDescriptor::Value(std::to_string(i), handle, napi_default_jsproperty));
  }
  return out;
}

// hkdfExpandAead(digest, secret, suite, keyInfo, ivInfo) -> record AEAD context: a traffic
// secret's key = Expand(secret, keyInfo, 32) and iv = Expand(secret, ivInfo, 12) straight into
// the context, neither ever a handle (RFC 8446 §7.3 in one call).
Napi::Value HkdfExpandAead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Digest digest{};
  if (!RequireOperational(env) || !GetDigest(env, info[0], &digest)) return env.Undefined();
  if (!info[2].IsNumber()) {
    ThrowInvalidArgument(env, "suite must be a number");
    return env.Undefined();
  }
  const int suite = info[2].As<Napi::Number>().Int32Value();
  ByteView key_info, iv_info;
  if (!GetInfo(env, info[3], "keyInfo", &key_info) || !GetInfo(env, info[4], "ivInfo", &iv_info)) return env.Undefined();
  Secret* secret = PrkFromValue(env, info[1], digest, "secret");
  if (secret == nullptr) return env.Undefined();
  constexpr size_t kAeadKeySize = 32, kAeadIvSize = 12;
  SecretBytes key(kAeadKeySize), iv(kAeadIvSize);
  if (!key.ok() || !iv.ok()) {
    ThrowError(env, code::kCryptoFailure, "out of memory");
    return env.Undefined();
  }
  if (!ExpandInto(env, digest, secret->bytes(), key_info, key.data(), key.size()) ||
      !ExpandInto(env, digest, secret->bytes(), iv_info, iv.data(), iv.size())) {
    return env.Undefined();
  }
  return NewAeadContext(env, suite, key.data(), iv.data());
}

// HMAC-Hash(key, parts...) into out[0..HashLen). `parts` were collected by ReadParts: the key and
// every byte pointer are taken here, after all JS has run. Public byte arrays only.
// With `key_info_value` not undefined, the HMAC key is Expand(key, keyInfo, HashLen) (a Finished
// MAC from its base secret in one call, the finished_key never a handle).
bool ComputeHmac(Napi::Env env, const Digest& digest, Napi::Value key_value, Napi::Value key_info_value,
                 const std::vector<Napi::Value>& parts, uint8_t* out) {
  for (const Napi::Value& part : parts) {
    if (!part.IsTypedArray()) {
      ThrowInvalidArgument(env, "each part must be a Uint8Array (HMAC inputs are public)");
      return false;
    }
  }
  std::unique_ptr<SecretBytes> expanded_key;
  const SecretBytes* key_bytes = nullptr;
  if (key_info_value.IsUndefined()) {
    Secret* key = Secret::FromValue(env, key_value, "key");
    if (key == nullptr) return false;
    key_bytes = &key->bytes();
  } else {
    expanded_key = ExpandedKey(env, digest, key_value, key_info_value, "key");
    if (!expanded_key) return false;
    key_bytes = expanded_key.get();
  }
  const size_t key_size = key_bytes->size();
  const uint8_t* key_data = key_size == 0 ? EmptyBytes() : key_bytes->data();
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

// hmac(digest, key, parts, keyInfo?) -> Buffer(HashLen). A MAC is public (e.g. a Finished
// verify_data).
Napi::Value Hmac(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Digest digest{};
  std::vector<Napi::Value> parts;
  if (!RequireOperational(env) || !GetDigest(env, info[0], &digest) || !ReadParts(env, info[2], &parts) ||
      !RequireOperational(env)) {
    return env.Undefined();
  }
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, digest.size);
  if (out.IsEmpty()) return env.Undefined();  // allocation failed: a RangeError is pending
  if (!ComputeHmac(env, digest, info[1], info[3], parts, out.Data())) return env.Undefined();
  return out;
}

// hmacVerify(digest, key, parts, expected, keyInfo?) -> boolean, compared in constant time. Only a full
// HashLen tag can match (a length is public).
Napi::Value HmacVerify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Digest digest{};
  std::vector<Napi::Value> parts;
  if (!RequireOperational(env) || !GetDigest(env, info[0], &digest) || !ReadParts(env, info[2], &parts) ||
      !RequireOperational(env)) {
    return env.Undefined();
  }
  ByteView expected;
  if (!GetBytes(env, info[3], "expected", &expected)) return env.Undefined();
  uint8_t mac[kMaxHashLen];
  if (!ComputeHmac(env, digest, info[1], info[4], parts, mac)) return env.Undefined();
  const bool equal = expected.size == digest.size && CRYPTO_memcmp(mac, expected.data, digest.size) == 0;
  // The correct tag for a forged message must not outlive the call.
  OPENSSL_cleanse(mac, sizeof(mac));
  return Napi::Boolean::New(env, equal);
}

}  // namespace

void InitHkdf(Napi::Env env, Napi::Object exports) {
  exports.Set("hkdfExtract", Napi::Function::New<HkdfExtract>(env));
  exports.Set("hkdfExpand", Napi::Function::New<HkdfExpand>(env));
  exports.Set("hkdf", Napi::Function::New<Hkdf>(env));
  exports.Set("hkdfExpandSecrets", Napi::Function::New<HkdfExpandSecrets>(env));
  exports.Set("hkdfExpandAead", Napi::Function::New<HkdfExpandAead>(env));
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
  sizes.Set("maxExpandOutputs", static_cast<double>(kMaxExpandOutputs));
  exports.Set("hkdfSizes", sizes);
}

}  // namespace qt
