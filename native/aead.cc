#include "aead.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <memory>
#include <vector>

#include "addon_data.h"
#include "args.h"
#include "bytes.h"
#include "errors.h"
#include "secret.h"

namespace qt {

namespace {

// Suite identifiers are the protocol's cipher-suite IDs (PROTOCOL.md §7.4).
constexpr int kSuiteAes256Gcm = 0x0001;
constexpr int kSuiteChaCha20Poly1305 = 0x0002;
constexpr size_t kKeySize = 32, kNonceSize = 12, kTagSize = 16;
constexpr size_t kRowWords = 6;  // batch table row: inOff, inLen, outOff, nonceOff, aadOff, aadLen
constexpr size_t kMaxRecord = INT_MAX - kTagSize;
const napi_type_tag kAeadTag = {0x51c0e8a2b7d94f16ULL, 0x3a7f25d6e0c1b948ULL};

bool Overlap(const uint8_t* a, size_t a_len, const uint8_t* b, size_t b_len) {
  auto ai = reinterpret_cast<uintptr_t>(a), bi = reinterpret_cast<uintptr_t>(b);
  return ai < bi + b_len && bi < ai + a_len;
}

// A [offset, offset+len) range must lie inside a buffer of `size` bytes.
bool InRange(uint64_t offset, uint64_t len, size_t size) { return offset <= size && len <= size - offset; }

class Aead : public Napi::ObjectWrap<Aead> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "AeadContext",
                       {
                           InstanceMethod<&Aead::Seal>("seal"),
                           InstanceMethod<&Aead::Open>("open"),
                           InstanceMethod<&Aead::SealBatch>("sealBatch"),
                           InstanceMethod<&Aead::OpenBatch>("openBatch"),
                           InstanceMethod<&Aead::SealParts>("sealParts"),
                           InstanceMethod<&Aead::OpenWithSecret>("openWithSecret"),
                           InstanceMethod<&Aead::Destroy>("destroy"),
                           InstanceAccessor<&Aead::Suite>("suite"),
                           InstanceAccessor<&Aead::Destroyed>("destroyed"),
                       });
  }

  struct CreateArgs {
    const EVP_CIPHER* cipher;
    int suite;
    const uint8_t* key;
  };

  explicit Aead(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Aead>(info) {
    Napi::Env env = info.Env();
    if (info.Length() != 1 || !info[0].IsExternal()) {
      ThrowError(env, code::kInvalidArgument, "AEAD contexts are created by aeadCreate only");
      return;
    }
    CreateArgs* a = info[0].As<Napi::External<CreateArgs>>().Data();
    suite_ = a->suite;
    enc_ = EVP_CIPHER_CTX_new();
    dec_ = EVP_CIPHER_CTX_new();
    if (enc_ == nullptr || dec_ == nullptr ||
        EVP_EncryptInit_ex2(enc_, a->cipher, a->key, nullptr, nullptr) != 1 ||
        EVP_DecryptInit_ex2(dec_, a->cipher, a->key, nullptr, nullptr) != 1) {
      Free();
      ThrowError(env, code::kCryptoFailure, "AEAD context initialisation failed");
      return;
    }
    napi_type_tag_object(env, info.This(), &kAeadTag);
  }
  ~Aead() override { Free(); }

 private:
  void Free() {
    EVP_CIPHER_CTX_free(enc_);  // cleanses the key schedule
    EVP_CIPHER_CTX_free(dec_);
    enc_ = dec_ = nullptr;
  }

  bool Live(Napi::Env env) {
    if (!RequireOperational(env)) return false;
    if (enc_ != nullptr) return true;
    ThrowError(env, code::kDestroyed, "the AEAD context has been destroyed");
    return false;
  }

  bool SealOne(const uint8_t* nonce, const uint8_t* aad, size_t aad_len, const uint8_t* in, size_t in_len,
               uint8_t* out) {
    int len = 0;
    if (EVP_EncryptInit_ex2(enc_, nullptr, nullptr, nonce, nullptr) != 1) return false;
    if (aad_len > 0 && EVP_EncryptUpdate(enc_, nullptr, &len, aad, static_cast<int>(aad_len)) != 1) return false;
    if (in_len > 0 && EVP_EncryptUpdate(enc_, out, &len, in, static_cast<int>(in_len)) != 1) return false;
    if (EVP_EncryptFinal_ex(enc_, out + in_len, &len) != 1) return false;
    return EVP_CIPHER_CTX_ctrl(enc_, EVP_CTRL_AEAD_GET_TAG, kTagSize, out + in_len) == 1;
  }

  // `in` is ciphertext || tag; on failure the partial plaintext is wiped.
  bool OpenOne(const uint8_t* nonce, const uint8_t* aad, size_t aad_len, const uint8_t* in, size_t in_len,
               uint8_t* out) {
    size_t body = in_len - kTagSize;
    int len = 0;
    bool ok = EVP_DecryptInit_ex2(dec_, nullptr, nullptr, nonce, nullptr) == 1 &&
              (aad_len == 0 || EVP_DecryptUpdate(dec_, nullptr, &len, aad, static_cast<int>(aad_len)) == 1) &&
              (body == 0 || EVP_DecryptUpdate(dec_, out, &len, in, static_cast<int>(body)) == 1) &&
              EVP_CIPHER_CTX_ctrl(dec_, EVP_CTRL_AEAD_SET_TAG, kTagSize, const_cast<uint8_t*>(in + body)) == 1 &&
              EVP_DecryptFinal_ex(dec_, out + body, &len) == 1;
    if (!ok) {
      OPENSSL_cleanse(out, body);
      ERR_clear_error();
    }
    return ok;
  }

  // Argument rules (see bytes.h): no entry point here runs JS between taking a pointer into a JS
  // buffer and its last use. Sealing reads its inputs once, so they may be SharedArrayBuffer
  // views; opening refuses them for the ciphertext and the output (the tag is computed over the
  // ciphertext in a separate pass from decryption, and other threads must not see unverified
  // plaintext), and both batch calls refuse them for the table (rows are checked, then used).

  // seal(dst, dstOffset, nonce, aad, plaintext) -> bytes written (plaintext.length + 16)
  Napi::Value Seal(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ByteView dst, nonce, aad, pt;
    size_t off;
    if (!Live(env) || !GetBytes(env, info[0], "dst", &dst) ||
        !GetSize(env, info[1], "dstOffset", dst.size, &off) ||
        !GetBytesOfSize(env, info[2], "nonce", kNonceSize, &nonce) || !GetBytes(env, info[3], "aad", &aad) ||
        !GetBytes(env, info[4], "plaintext", &pt)) {
      return env.Undefined();
    }
    if (pt.size > kMaxRecord || aad.size > INT_MAX || !InRange(off, pt.size + kTagSize, dst.size)) {
      ThrowInvalidArgument(env, "dst is too small for the sealed output");
      return env.Undefined();
    }
    uint8_t* out = dst.data + off;
    if (out != pt.data && Overlap(out, pt.size + kTagSize, pt.data, pt.size)) {
      ThrowInvalidArgument(env, "plaintext and output overlap");
      return env.Undefined();
    }
    if (!SealOne(nonce.data, aad.data, aad.size, pt.data, pt.size, out)) {
      ThrowError(env, code::kCryptoFailure, "AEAD seal failed");
      return env.Undefined();
    }
    return Napi::Number::New(env, static_cast<double>(pt.size + kTagSize));
  }

  // open(dst, dstOffset, nonce, aad, ciphertextAndTag) -> plaintext length; throws on a bad tag
  Napi::Value Open(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ByteView dst, nonce, aad, ct;
    size_t off;
    if (!Live(env) || !GetBytes(env, info[0], "dst", &dst, Shared::kRefuse) ||
        !GetSize(env, info[1], "dstOffset", dst.size, &off) ||
        !GetBytesOfSize(env, info[2], "nonce", kNonceSize, &nonce) || !GetBytes(env, info[3], "aad", &aad) ||
        !GetBytes(env, info[4], "ciphertext", &ct, Shared::kRefuse)) {
      return env.Undefined();
    }
    if (ct.size < kTagSize) {
      ThrowError(env, code::kAuthFailed, "ciphertext is shorter than the tag");
      return env.Undefined();
    }
    size_t body = ct.size - kTagSize;
    if (ct.size > kMaxRecord || aad.size > INT_MAX || !InRange(off, body, dst.size)) {
      ThrowInvalidArgument(env, "dst is too small for the plaintext");
      return env.Undefined();
    }
    uint8_t* out = dst.data + off;
    if (out != ct.data && Overlap(out, body, ct.data, ct.size)) {
      ThrowInvalidArgument(env, "ciphertext and output overlap");
      return env.Undefined();
    }
    if (!OpenOne(nonce.data, aad.data, aad.size, ct.data, ct.size, out)) {
      ThrowError(env, code::kAuthFailed, "AEAD authentication failed");
      return env.Undefined();
    }
    return Napi::Number::New(env, static_cast<double>(body));
  }

  // Reads and checks the batch arguments shared by sealBatch and openBatch (`shared`: whether
  // src and dst may be SharedArrayBuffer views). A zero-length table leaves *table null; count
  // is then 0 and no row is read.
  bool BatchArgs(const Napi::CallbackInfo& info, Shared shared, ByteView* src, ByteView* dst, const uint32_t** table,
                 size_t* count) {
    Napi::Env env = info.Env();
    if (!Live(env) || !GetBytes(env, info[0], "src", src, shared) || !GetBytes(env, info[1], "dst", dst, shared)) {
      return false;
    }
    void* words = nullptr;
    size_t length = 0;
    if (!GetTypedArray(env, info[2], napi_uint32_array, "Uint32Array", "table", Shared::kRefuse, &words, &length) ||
        !GetSize(env, info[3], "count", length / kRowWords, count)) {
      return false;
    }
    *table = static_cast<const uint32_t*>(words);
    return true;
  }

  // sealBatch(src, dst, table, count): row i seals src[inOff, +inLen) into dst[outOff, +inLen+16)
  // with the nonce at dst[nonceOff, +12) and AD dst[aadOff, +aadLen) (the record header the
  // caller has already written). Returns the number of bytes written.
  Napi::Value SealBatch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ByteView src, dst;
    const uint32_t* table;
    size_t count;
    if (!BatchArgs(info, Shared::kAllow, &src, &dst, &table, &count)) return env.Undefined();
    double written = 0;
    for (size_t i = 0; i < count; i++) {
      const uint32_t* r = table + i * kRowWords;
      uint64_t in_off = r[0], in_len = r[1], out_off = r[2], nonce_off = r[3], aad_off = r[4], aad_len = r[5];
      if (!InRange(in_off, in_len, src.size) || !InRange(out_off, in_len + kTagSize, dst.size) ||
          !InRange(nonce_off, kNonceSize, dst.size) || !InRange(aad_off, aad_len, dst.size) || in_len > kMaxRecord) {
        ThrowInvalidArgument(env, "batch row " + std::to_string(i) + " is out of bounds");
        return env.Undefined();
      }
      const uint8_t* in = src.data + in_off;
      uint8_t* out = dst.data + out_off;
      if ((out != in && Overlap(out, in_len + kTagSize, in, in_len)) ||
          Overlap(out, in_len + kTagSize, dst.data + nonce_off, kNonceSize) ||
          Overlap(out, in_len + kTagSize, dst.data + aad_off, aad_len)) {
        ThrowInvalidArgument(env, "batch row " + std::to_string(i) + " overlaps its own input");
        return env.Undefined();
      }
      if (!SealOne(dst.data + nonce_off, dst.data + aad_off, aad_len, in, in_len, out)) {
        ThrowError(env, code::kCryptoFailure, "AEAD seal failed");
        return env.Undefined();
      }
      written += static_cast<double>(in_len + kTagSize);
    }
    return Napi::Number::New(env, written);
  }

  // openBatch(src, dst, table, count, results): row i opens src[inOff, +inLen) (ciphertext||tag)
  // into dst[outOff, +inLen-16) with nonce src[nonceOff, +12) and AD src[aadOff, +aadLen).
  // results[i] = plaintext length, or -1 when the tag does not verify. Returns the failures.
  Napi::Value OpenBatch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ByteView src, dst;
    const uint32_t* table;
    size_t count;
    if (!BatchArgs(info, Shared::kRefuse, &src, &dst, &table, &count)) return env.Undefined();
    void* slots = nullptr;
    size_t slot_count = 0;
    if (!GetTypedArray(env, info[4], napi_int32_array, "Int32Array", "results", Shared::kAllow, &slots, &slot_count)) {
      return env.Undefined();
    }
    if (slot_count < count) {
      ThrowInvalidArgument(env, "results must be an Int32Array with one slot per row");
      return env.Undefined();
    }
    int32_t* results = static_cast<int32_t*>(slots);
    double failures = 0;
    for (size_t i = 0; i < count; i++) {
      const uint32_t* r = table + i * kRowWords;
      uint64_t in_off = r[0], in_len = r[1], out_off = r[2], nonce_off = r[3], aad_off = r[4], aad_len = r[5];
      if (in_len < kTagSize) {
        results[i] = -1;
        failures++;
        continue;
      }
      uint64_t body = in_len - kTagSize;
      if (!InRange(in_off, in_len, src.size) || !InRange(out_off, body, dst.size) ||
          !InRange(nonce_off, kNonceSize, src.size) || !InRange(aad_off, aad_len, src.size) || in_len > kMaxRecord) {
        ThrowInvalidArgument(env, "batch row " + std::to_string(i) + " is out of bounds");
        return env.Undefined();
      }
      const uint8_t* in = src.data + in_off;
      uint8_t* out = dst.data + out_off;
      if (out != in && Overlap(out, body, in, in_len)) {
        ThrowInvalidArgument(env, "batch row " + std::to_string(i) + " overlaps its own input");
        return env.Undefined();
      }
      if (OpenOne(src.data + nonce_off, src.data + aad_off, aad_len, in, in_len, out)) {
        results[i] = static_cast<int32_t>(body);
      } else {
        results[i] = -1;
        failures++;
      }
    }
    return Napi::Number::New(env, failures);
  }

  // sealParts(nonce, aad, parts) -> Buffer (ciphertext || tag). Parts are byte arrays or Secret
  // handles, encrypted as their concatenation, so a secret (a ticket's master secret) can be
  // sealed without its bytes entering JavaScript.
  Napi::Value SealParts(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    // Reading the array can run JS, which could detach or shrink the nonce, the AD or a part, or
    // destroy a part or this context: read it all first, then check everything and take pointers.
    std::vector<Napi::Value> parts;
    if (!Live(env) || !ReadParts(env, info[2], &parts)) return env.Undefined();
    ByteView nonce, aad;
    if (!Live(env) || !GetBytesOfSize(env, info[0], "nonce", kNonceSize, &nonce) || !GetBytes(env, info[1], "aad", &aad)) {
      return env.Undefined();
    }
    std::vector<ByteView> views(parts.size());
    size_t total = 0;
    for (size_t i = 0; i < parts.size(); i++) {
      if (!PartBytes(env, parts[i], &views[i])) return env.Undefined();
      if (views[i].size > kMaxRecord - total) {
        ThrowInvalidArgument(env, "plaintext is too large");
        return env.Undefined();
      }
      total += views[i].size;
    }
    if (aad.size > INT_MAX) {
      ThrowInvalidArgument(env, "aad is too large");
      return env.Undefined();
    }
    Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, total + kTagSize);
    if (out.IsEmpty()) return env.Undefined();  // allocation failed: a RangeError is pending
    int len = 0;
    size_t off = 0;
    bool ok = EVP_EncryptInit_ex2(enc_, nullptr, nullptr, nonce.data, nullptr) == 1 &&
              (aad.size == 0 || EVP_EncryptUpdate(enc_, nullptr, &len, aad.data, static_cast<int>(aad.size)) == 1);
    for (const ByteView& v : views) {
      if (!ok || v.size == 0) continue;  // an empty part writes nothing (len would be stale)
      ok = EVP_EncryptUpdate(enc_, out.Data() + off, &len, v.data, static_cast<int>(v.size)) == 1;
      off += static_cast<size_t>(len);
    }
    ok = ok && off == total && EVP_EncryptFinal_ex(enc_, out.Data() + total, &len) == 1 &&
         EVP_CIPHER_CTX_ctrl(enc_, EVP_CTRL_AEAD_GET_TAG, kTagSize, out.Data() + total) == 1;
    if (!ok) {
      ThrowError(env, code::kCryptoFailure, "AEAD seal failed");
      return env.Undefined();
    }
    return out;
  }

  // openWithSecret(nonce, aad, sealed, secretOffset, secretLength) -> { plaintext, secret }:
  // opens into native memory, moves plaintext[secretOffset, +secretLength) into a Secret and
  // returns the rest with that range zeroed. Throws ERR_QT_AUTHENTICATION_FAILED on a bad tag.
  Napi::Value OpenWithSecret(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ByteView nonce, aad, sealed;
    size_t secret_off, secret_len;
    if (!Live(env) || !GetBytesOfSize(env, info[0], "nonce", kNonceSize, &nonce) || !GetBytes(env, info[1], "aad", &aad) ||
        !GetBytes(env, info[2], "sealed", &sealed, Shared::kRefuse) ||
        !GetSize(env, info[3], "secretOffset", kMaxRecord, &secret_off) ||
        !GetSize(env, info[4], "secretLength", kMaxRecord, &secret_len)) {
      return env.Undefined();
    }
    if (sealed.size < kTagSize || sealed.size > kMaxRecord || aad.size > INT_MAX) {
      ThrowError(env, code::kAuthFailed, "AEAD authentication failed");
      return env.Undefined();
    }
    size_t body = sealed.size - kTagSize;
    if (!InRange(secret_off, secret_len, body)) {
      ThrowError(env, code::kAuthFailed, "AEAD authentication failed");
      return env.Undefined();
    }
    SecretBytes plain(body);
    if (!plain.ok() || !OpenOne(nonce.data, aad.data, aad.size, sealed.data, sealed.size, plain.data())) {
      ThrowError(env, code::kAuthFailed, "AEAD authentication failed");
      return env.Undefined();
    }
    auto secret = std::make_unique<SecretBytes>(secret_len);
    std::copy(plain.data() + secret_off, plain.data() + secret_off + secret_len, secret->data());
    OPENSSL_cleanse(plain.data() + secret_off, secret_len);
    Napi::Value plaintext = CopyToBuffer(env, plain.data(), body);
    Napi::Value handle = Secret::Wrap(env, std::move(secret));
    if (plaintext.IsEmpty() || handle.IsEmpty()) return env.Undefined();
    // Defined, not assigned: a setter on Object.prototype must not receive the secret handle.
    Napi::Object out = Napi::Object::New(env);
    out.DefineProperties({Napi::PropertyDescriptor::Value("plaintext", plaintext, napi_default_jsproperty),
                          Napi::PropertyDescriptor::Value("secret", handle, napi_default_jsproperty)});
    return out;
  }

  void Destroy(const Napi::CallbackInfo&) { Free(); }
  Napi::Value Suite(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), suite_); }
  Napi::Value Destroyed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), enc_ == nullptr); }

  EVP_CIPHER_CTX* enc_ = nullptr;
  EVP_CIPHER_CTX* dec_ = nullptr;
  int suite_ = 0;
};

// aeadCreate(suite, key: Secret) -> AeadContext
Napi::Value Create(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireOperational(env)) return env.Undefined();
  if (!info[0].IsNumber()) {
    ThrowInvalidArgument(env, "suite must be a number");
    return env.Undefined();
  }
  int suite = info[0].As<Napi::Number>().Int32Value();
  Secret* key = Secret::FromValue(env, info[1], "key");
  if (key == nullptr) return env.Undefined();
  if (key->bytes().size() != kKeySize) {
    ThrowError(env, code::kInvalidKey, "AEAD keys must be 32 bytes");
    return env.Undefined();
  }
  LibraryContext* lc = Data(env).active_context;
  const EVP_CIPHER* cipher = suite == kSuiteAes256Gcm ? lc->aes256gcm()
                             : suite == kSuiteChaCha20Poly1305 ? lc->chacha20poly1305()
                                                              : nullptr;
  if (cipher == nullptr) {
    ThrowError(env, code::kUnsupported,
               suite == kSuiteChaCha20Poly1305 ? "ChaCha20-Poly1305 is not available in this build or mode"
                                               : "unknown AEAD suite");
    return env.Undefined();
  }
  Aead::CreateArgs args{cipher, suite, key->bytes().data()};
  return Data(env).aead_constructor.New({Napi::External<Aead::CreateArgs>::New(env, &args)});
}

}  // namespace

void InitAead(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = Aead::Init(env);
  Data(env).aead_constructor = Napi::Persistent(ctor);
  exports.Set("AeadContext", ctor);
  exports.Set("aeadCreate", Napi::Function::New<Create>(env));
  Napi::Object sizes = Napi::Object::New(env);
  sizes.Set("key", static_cast<double>(kKeySize));
  sizes.Set("nonce", static_cast<double>(kNonceSize));
  sizes.Set("tag", static_cast<double>(kTagSize));
  sizes.Set("batchRowWords", static_cast<double>(kRowWords));
  exports.Set("aeadSizes", sizes);
  Napi::Object suites = Napi::Object::New(env);
  suites.Set("AES_256_GCM", kSuiteAes256Gcm);
  suites.Set("CHACHA20_POLY1305", kSuiteChaCha20Poly1305);
  exports.Set("aeadSuites", suites);
}

}  // namespace qt
