#include "aead.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstring>
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
constexpr size_t kRowWords = 6;        // batch table row: inOff, inLen, outOff, nonceOff, aadOff, aadLen
constexpr size_t kRecordRowWords = 5;  // record batch row: inOff, inLen, outOff, aadOff, aadLen
constexpr size_t kMaxRecord = INT_MAX - kTagSize;
constexpr size_t kMaxOpenParts = 16;  // openRecordParts: a record spread over more reads is gathered by the caller
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
                           InstanceMethod<&Aead::Seal<false>>("seal"),
                           InstanceMethod<&Aead::Open<false>>("open"),
                           InstanceMethod<&Aead::SealBatch<false>>("sealBatch"),
                           InstanceMethod<&Aead::OpenBatch<false>>("openBatch"),
                           InstanceMethod<&Aead::SealParts>("sealParts"),
                           InstanceMethod<&Aead::OpenWithSecret>("openWithSecret"),
                           InstanceMethod<&Aead::Seal<true>>("sealRecord"),
                           InstanceMethod<&Aead::Open<true>>("openRecord"),
                           InstanceMethod<&Aead::OpenRecordParts>("openRecordParts"),
                           InstanceMethod<&Aead::SealBatch<true>>("sealRecordBatch"),
                           InstanceMethod<&Aead::OpenBatch<true>>("openRecordBatch"),
                           InstanceMethod<&Aead::Destroy>("destroy"),
                           InstanceAccessor<&Aead::Suite>("suite"),
                           InstanceAccessor<&Aead::Destroyed>("destroyed"),
                           InstanceAccessor<&Aead::HasIv>("hasIv"),
                       });
  }

  struct CreateArgs {
    const EVP_CIPHER* cipher;
    int suite;
    const uint8_t* key;
    const uint8_t* iv;  // kNonceSize bytes for a record context, else nullptr
  };

  explicit Aead(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Aead>(info) {
    Napi::Env env = info.Env();
    if (info.Length() != 1 || !info[0].IsExternal()) {
      ThrowError(env, code::kInvalidArgument, "AEAD contexts are created by aeadCreate only");
      return;
    }
    CreateArgs* a = info[0].As<Napi::External<CreateArgs>>().Data();
    suite_ = a->suite;
    record_ = a->iv != nullptr;
    if (record_) {
      iv_ = std::make_unique<SecretBytes>(kNonceSize);
      if (iv_->data() != nullptr) std::memcpy(iv_->data(), a->iv, kNonceSize);
    }
    enc_ = EVP_CIPHER_CTX_new();
    dec_ = EVP_CIPHER_CTX_new();
    if (enc_ == nullptr || dec_ == nullptr || (record_ && iv_->data() == nullptr) ||
        EVP_EncryptInit_ex2(enc_, a->cipher, a->key, nullptr, nullptr) != 1 ||
        EVP_DecryptInit_ex2(dec_, a->cipher, a->key, nullptr, nullptr) != 1) {
      Free();
      ThrowError(env, code::kCryptoFailure, "AEAD context initialisation failed");
      return;
    }
    napi_type_tag_object(env, info.This(), &kAeadTag);
  }
  ~Aead() override { Free(); }
  Aead(const Aead&) = delete;  // owns what the destructor frees
  Aead& operator=(const Aead&) = delete;

 private:
  void Free() {
    EVP_CIPHER_CTX_free(enc_);  // cleanses the key schedule
    EVP_CIPHER_CTX_free(dec_);
    enc_ = dec_ = nullptr;
    iv_.reset();  // SecretBytes cleanses
  }

  bool Live(Napi::Env env) {
    if (!RequireOperational(env)) return false;
    if (enc_ != nullptr) return true;
    ThrowError(env, code::kDestroyed, "the AEAD context has been destroyed");
    return false;
  }

  // Live, and used with its own nonce discipline (one per key): a record context (created with an
  // IV) computes every nonce itself and takes none from its caller; any other context takes an
  // explicit nonce for every call and has no record methods.
  bool Usable(Napi::Env env, bool record) {
    if (!Live(env)) return false;
    if (record == record_) return true;
    ThrowError(env, code::kInvalidState,
               record_ ? "this AEAD context holds an IV: use the record methods, which compute every nonce from it"
                       : "this AEAD context has no IV: the record methods need one created with an IV");
    return false;
  }

  // The nonce of one record: the caller's 12 bytes, or on a record context
  // iv XOR (0^32 || BE64(seq)) (RFC 8446 §5.3; SP 800-38D §8.2.1: the IV is the fixed field, seq
  // the invocation field), computed into `buf` and wiped with it (with seq public, it is the IV).
  struct Nonce {
    const uint8_t* data = nullptr;
    uint8_t buf[kNonceSize] = {};
    ~Nonce() { OPENSSL_cleanse(buf, sizeof buf); }
    Nonce() = default;
    Nonce(const Nonce&) = delete;  // holds nonce bytes it wipes
    Nonce& operator=(const Nonce&) = delete;
  };

  void RecordNonce(uint64_t seq, Nonce* n) const {
    std::memcpy(n->buf, iv_->data(), kNonceSize);
    for (size_t i = 0; i < 8; i++) n->buf[kNonceSize - 1 - i] ^= static_cast<uint8_t>(seq >> (8 * i));
    n->data = n->buf;
  }

  // The third argument of seal/open (a 12-byte nonce) or of sealRecord/openRecord (seq: a safe
  // integer, the record's sequence number).
  bool NonceArg(Napi::Env env, Napi::Value v, bool record, Nonce* out) {
    if (record) {
      uint64_t seq = 0;
      if (!GetInteger(env, v, "seq", kMaxSafeInteger, &seq)) return false;
      RecordNonce(seq, out);
      return true;
    }
    ByteView nonce;
    if (!GetBytesOfSize(env, v, "nonce", kNonceSize, &nonce)) return false;
    out->data = nonce.data;
    return true;
  }

  // Seals in[0, in_len), then the one `trailer` byte when it is 0..255 (v2's inner content type,
  // so the content need not be copied next to it), into out; the tag follows the ciphertext.
  bool SealOne(const uint8_t* nonce, const uint8_t* aad, size_t aad_len, const uint8_t* in, size_t in_len,
               uint8_t* out, int trailer = -1) {
    int len = 0;
    if (EVP_EncryptInit_ex2(enc_, nullptr, nullptr, nonce, nullptr) != 1) return false;
    if (aad_len > 0 && EVP_EncryptUpdate(enc_, nullptr, &len, aad, static_cast<int>(aad_len)) != 1) return false;
    if (in_len > 0 && EVP_EncryptUpdate(enc_, out, &len, in, static_cast<int>(in_len)) != 1) return false;
    size_t body = in_len;
    if (trailer >= 0) {
      const uint8_t byte = static_cast<uint8_t>(trailer);
      if (EVP_EncryptUpdate(enc_, out + in_len, &len, &byte, 1) != 1) return false;
      body++;
    }
    if (EVP_EncryptFinal_ex(enc_, out + body, &len) != 1) return false;
    return EVP_CIPHER_CTX_ctrl(enc_, EVP_CTRL_AEAD_GET_TAG, kTagSize, out + body) == 1;
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

  // seal(dst, dstOffset, nonce, aad, plaintext) and, on a record context,
  // sealRecord(dst, dstOffset, seq, aad, plaintext) -> bytes written (plaintext.length + 16)
  template <bool kRecord>
  Napi::Value Seal(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ByteView dst, aad, pt;
    Nonce nonce;
    size_t off = 0;
    if (!Usable(env, kRecord) || !GetBytes(env, info[0], "dst", &dst) ||
        !GetSize(env, info[1], "dstOffset", dst.size, &off) || !NonceArg(env, info[2], kRecord, &nonce) ||
        !GetBytes(env, info[3], "aad", &aad) || !GetBytes(env, info[4], "plaintext", &pt)) {
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

  // open(dst, dstOffset, nonce, aad, ciphertextAndTag) and, on a record context,
  // openRecord(dst, dstOffset, seq, aad, ciphertextAndTag) -> plaintext length; throws on a bad tag
  template <bool kRecord>
  Napi::Value Open(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ByteView dst, aad, ct;
    Nonce nonce;
    size_t off = 0;
    if (!Usable(env, kRecord) || !GetBytes(env, info[0], "dst", &dst, Shared::kRefuse) ||
        !GetSize(env, info[1], "dstOffset", dst.size, &off) || !NonceArg(env, info[2], kRecord, &nonce) ||
        !GetBytes(env, info[3], "aad", &aad) || !GetBytes(env, info[4], "ciphertext", &ct, Shared::kRefuse)) {
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

  // openRecordParts(parts, seq, aad) -> plaintext length. `parts` (1..kMaxOpenParts Uint8Arrays,
  // pairwise disjoint) hold ciphertext || tag in order, as a record that spans socket reads lies
  // in their buffers; each part is decrypted in place, so the record is opened without being
  // gathered into one buffer first. On a bad tag every byte written is wiped and it throws
  // ERR_QT_AUTHENTICATION_FAILED.
  Napi::Value OpenRecordParts(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    // Reading the array can run JS: read it all, then check everything and take pointers.
    std::vector<Napi::Value> parts;
    if (!Usable(env, true) || !ReadParts(env, info[0], &parts, kMaxOpenParts)) return env.Undefined();
    Nonce nonce;
    ByteView aad;
    if (!Usable(env, true) || !NonceArg(env, info[1], true, &nonce) || !GetBytes(env, info[2], "aad", &aad)) {
      return env.Undefined();
    }
    if (parts.empty() || parts.size() > kMaxOpenParts) {
      ThrowInvalidArgument(env, "parts must hold 1 to " + std::to_string(kMaxOpenParts) + " byte arrays");
      return env.Undefined();
    }
    ByteView views[kMaxOpenParts];
    size_t total = 0;
    for (size_t i = 0; i < parts.size(); i++) {
      if (!parts[i].IsTypedArray()) {
        ThrowInvalidArgument(env, "each part must be a Uint8Array");
        return env.Undefined();
      }
      if (!GetBytes(env, parts[i], "each part", &views[i], Shared::kRefuse)) return env.Undefined();
      for (size_t j = 0; j < i; j++) {
        if (Overlap(views[i].data, views[i].size, views[j].data, views[j].size)) {
          ThrowInvalidArgument(env, "parts overlap");
          return env.Undefined();
        }
      }
      total += views[i].size;  // each part is at most a buffer's length: no overflow in 16 of them
    }
    if (total < kTagSize) {
      ThrowError(env, code::kAuthFailed, "ciphertext is shorter than the tag");
      return env.Undefined();
    }
    if (total > kMaxRecord || aad.size > INT_MAX) {
      ThrowInvalidArgument(env, "the record is too large");
      return env.Undefined();
    }
    const size_t body = total - kTagSize;
    uint8_t tag[kTagSize];
    int len = 0;
    bool ok = EVP_DecryptInit_ex2(dec_, nullptr, nullptr, nonce.data, nullptr) == 1 &&
              (aad.size == 0 || EVP_DecryptUpdate(dec_, nullptr, &len, aad.data, static_cast<int>(aad.size)) == 1);
    size_t at = 0;  // offset of the current part in the record
    for (size_t i = 0; ok && i < parts.size(); i++) {
      const ByteView& v = views[i];
      const size_t ct = at < body ? std::min(v.size, body - at) : 0;
      if (ct > 0) ok = EVP_DecryptUpdate(dec_, v.data, &len, v.data, static_cast<int>(ct)) == 1 && len == static_cast<int>(ct);
      // The tag may itself be split between parts.
      for (size_t k = ct; k < v.size; k++) tag[at + k - body] = v.data[k];
      at += v.size;
    }
    uint8_t final_out[kTagSize];
    ok = ok && EVP_CIPHER_CTX_ctrl(dec_, EVP_CTRL_AEAD_SET_TAG, kTagSize, tag) == 1 &&
         EVP_DecryptFinal_ex(dec_, final_out, &len) == 1;
    if (!ok) {
      // Unverified plaintext never stays behind: the whole ciphertext area is wiped, whatever
      // step failed (the tag bytes stay as received).
      size_t wiped = 0;
      for (size_t i = 0; i < parts.size() && wiped < body; i++) {
        const size_t n = std::min(views[i].size, body - wiped);
        OPENSSL_cleanse(views[i].data, n);
        wiped += n;
      }
      ERR_clear_error();
      ThrowError(env, code::kAuthFailed, "AEAD authentication failed");
      return env.Undefined();
    }
    return Napi::Number::New(env, static_cast<double>(body));
  }

  // A batch table row. Explicit-nonce rows (kRowWords): inOff, inLen, outOff, nonceOff, aadOff,
  // aadLen; record rows (kRecordRowWords) have no nonceOff.
  struct Row {
    uint64_t in_off, in_len, out_off, nonce_off, aad_off, aad_len;
  };

  template <bool kRecord>
  static Row ReadRow(const uint32_t* table, size_t i) {
    if constexpr (kRecord) {
      const uint32_t* r = table + i * kRecordRowWords;
      return {r[0], r[1], r[2], 0, r[3], r[4]};
    } else {
      const uint32_t* r = table + i * kRowWords;
      return {r[0], r[1], r[2], r[3], r[4], r[5]};
    }
  }

  // Row i's nonce: on a record context computed from seq = firstSeq + i; otherwise the 12 bytes at
  // nonceOff in `holder` (dst when sealing, src when opening), which must not overlap the output
  // [out, out + out_len).
  template <bool kRecord>
  bool RowNonce(Napi::Env env, size_t i, const Row& row, uint64_t first_seq, const ByteView& holder, const uint8_t* out,
                size_t out_len, Nonce* nonce) {
    if constexpr (kRecord) {
      RecordNonce(first_seq + i, nonce);
      return true;
    }
    if (!InRange(row.nonce_off, kNonceSize, holder.size)) {
      ThrowInvalidArgument(env, "batch row " + std::to_string(i) + " is out of bounds");
      return false;
    }
    nonce->data = holder.data + row.nonce_off;
    if (Overlap(out, out_len, nonce->data, kNonceSize)) {
      ThrowInvalidArgument(env, "batch row " + std::to_string(i) + " overlaps its own input");
      return false;
    }
    return true;
  }

  // Reads and checks the batch arguments shared by sealBatch and openBatch (`shared`: whether
  // src and dst may be SharedArrayBuffer views), and on a record context firstSeq (the fifth
  // argument): the last row's seq, firstSeq + count - 1, must be a safe integer too. A zero-length
  // table leaves *table null; count is then 0 and no row is read.
  template <bool kRecord>
  bool BatchArgs(const Napi::CallbackInfo& info, Shared shared, ByteView* src, ByteView* dst, const uint32_t** table,
                 size_t* count, uint64_t* first_seq) {
    Napi::Env env = info.Env();
    if (!Usable(env, kRecord) || !GetBytes(env, info[0], "src", src, shared) ||
        !GetBytes(env, info[1], "dst", dst, shared)) {
      return false;
    }
    void* words = nullptr;
    size_t length = 0;
    if (!GetTypedArray(env, info[2], napi_uint32_array, "Uint32Array", "table", Shared::kRefuse, &words, &length) ||
        !GetSize(env, info[3], "count", length / (kRecord ? kRecordRowWords : kRowWords), count)) {
      return false;
    }
    *table = static_cast<const uint32_t*>(words);
    *first_seq = 0;
    if (!kRecord) return true;
    if (!GetInteger(env, info[4], "firstSeq", kMaxSafeInteger, first_seq)) return false;
    if (*count > 0 && *count - 1 > kMaxSafeInteger - *first_seq) {
      ThrowInvalidArgument(env, "firstSeq + count - 1 must not exceed 2^53 - 1");
      return false;
    }
    return true;
  }

  // sealBatch(src, dst, table, count): row i seals src[inOff, +inLen) into dst[outOff, +inLen+16)
  // with the nonce at dst[nonceOff, +12) and AD dst[aadOff, +aadLen) (the record header the
  // caller has already written). On a record context, sealRecordBatch(src, dst, table, count,
  // firstSeq): rows without nonceOff, row i with seq firstSeq + i. Returns the bytes written.
  //
  // sealRecordBatch's optional 6th argument, a byte value 0..255, is appended to every row's
  // plaintext (v2's inner content type): a row then writes inLen + 1 + 16 bytes.
  template <bool kRecord>
  Napi::Value SealBatch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int trailer = -1;
    if (kRecord && info.Length() > 5 && !info[5].IsUndefined()) {
      uint64_t byte = 0;
      if (!GetInteger(env, info[5], "trailer", 255, &byte)) return env.Undefined();
      trailer = static_cast<int>(byte);
    }
    const uint64_t extra = trailer >= 0 ? 1 : 0;
    ByteView src, dst;
    const uint32_t* table = nullptr;
    size_t count = 0;
    uint64_t first_seq = 0;
    if (!BatchArgs<kRecord>(info, Shared::kAllow, &src, &dst, &table, &count, &first_seq)) return env.Undefined();
    double written = 0;
    Nonce nonce;
    for (size_t i = 0; i < count; i++) {
      const Row row = ReadRow<kRecord>(table, i);
      const uint64_t in_off = row.in_off, in_len = row.in_len, out_off = row.out_off, aad_off = row.aad_off,
                     aad_len = row.aad_len;
      const uint64_t out_len = in_len + extra + kTagSize;
      if (!InRange(in_off, in_len, src.size) || !InRange(out_off, out_len, dst.size) ||
          !InRange(aad_off, aad_len, dst.size) || in_len > kMaxRecord - extra) {
        ThrowInvalidArgument(env, "batch row " + std::to_string(i) + " is out of bounds");
        return env.Undefined();
      }
      const uint8_t* in = src.data + in_off;
      uint8_t* out = dst.data + out_off;
      if (!RowNonce<kRecord>(env, i, row, first_seq, dst, out, out_len, &nonce)) return env.Undefined();
      if ((out != in && Overlap(out, out_len, in, in_len)) || Overlap(out, out_len, dst.data + aad_off, aad_len)) {
        ThrowInvalidArgument(env, "batch row " + std::to_string(i) + " overlaps its own input");
        return env.Undefined();
      }
      if (!SealOne(nonce.data, dst.data + aad_off, aad_len, in, in_len, out, trailer)) {
        ThrowError(env, code::kCryptoFailure, "AEAD seal failed");
        return env.Undefined();
      }
      written += static_cast<double>(out_len);
    }
    return Napi::Number::New(env, written);
  }

  // openBatch(src, dst, table, count, results): row i opens src[inOff, +inLen) (ciphertext||tag)
  // into dst[outOff, +inLen-16) with nonce src[nonceOff, +12) and AD src[aadOff, +aadLen).
  // results[i] = plaintext length, or -1 when the tag does not verify. Returns the failures. On a
  // record context, openRecordBatch(src, dst, table, count, firstSeq, results): rows without
  // nonceOff, row i with seq firstSeq + i.
  template <bool kRecord>
  Napi::Value OpenBatch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ByteView src, dst;
    const uint32_t* table = nullptr;
    size_t count = 0;
    uint64_t first_seq = 0;
    if (!BatchArgs<kRecord>(info, Shared::kRefuse, &src, &dst, &table, &count, &first_seq)) return env.Undefined();
    void* slots = nullptr;
    size_t slot_count = 0;
    if (!GetTypedArray(env, info[kRecord ? 5 : 4], napi_int32_array, "Int32Array", "results", Shared::kAllow, &slots,
                       &slot_count)) {
      return env.Undefined();
    }
    if (slot_count < count) {
      ThrowInvalidArgument(env, "results must be an Int32Array with one slot per row");
      return env.Undefined();
    }
    int32_t* results = static_cast<int32_t*>(slots);
    double failures = 0;
    Nonce nonce;
    for (size_t i = 0; i < count; i++) {
      const Row row = ReadRow<kRecord>(table, i);
      const uint64_t in_off = row.in_off, in_len = row.in_len, out_off = row.out_off, aad_off = row.aad_off,
                     aad_len = row.aad_len;
      if (in_len < kTagSize) {
        results[i] = -1;
        failures++;
        continue;
      }
      uint64_t body = in_len - kTagSize;
      if (!InRange(in_off, in_len, src.size) || !InRange(out_off, body, dst.size) ||
          !InRange(aad_off, aad_len, src.size) || in_len > kMaxRecord) {
        ThrowInvalidArgument(env, "batch row " + std::to_string(i) + " is out of bounds");
        return env.Undefined();
      }
      const uint8_t* in = src.data + in_off;
      uint8_t* out = dst.data + out_off;
      // Opening reads the nonce and the AD before it writes (OpenOne): only the ciphertext is checked
      // against the output, as before.
      if (!RowNonce<kRecord>(env, i, row, first_seq, src, nullptr, 0, &nonce)) return env.Undefined();
      if (out != in && Overlap(out, body, in, in_len)) {
        ThrowInvalidArgument(env, "batch row " + std::to_string(i) + " overlaps its own input");
        return env.Undefined();
      }
      if (OpenOne(nonce.data, src.data + aad_off, aad_len, in, in_len, out)) {
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
    if (!Usable(env, false) || !ReadParts(env, info[2], &parts)) return env.Undefined();
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
    size_t secret_off = 0, secret_len = 0;
    if (!Usable(env, false) || !GetBytesOfSize(env, info[0], "nonce", kNonceSize, &nonce) ||
        !GetBytes(env, info[1], "aad", &aad) || !GetBytes(env, info[2], "sealed", &sealed, Shared::kRefuse) ||
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
    if (!secret->ok()) {
      ThrowError(env, code::kCryptoFailure, "out of memory");  // `plain` is cleansed as it goes
      return env.Undefined();
    }
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
  // Whether this is a record context (created with an IV); destroy() does not change it.
  Napi::Value HasIv(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), record_); }

  EVP_CIPHER_CTX* enc_ = nullptr;
  EVP_CIPHER_CTX* dec_ = nullptr;
  std::unique_ptr<SecretBytes> iv_;  // a record context's IV, cleansed when freed
  bool record_ = false;
  int suite_ = 0;
};

// aeadCreate(suite, key: Secret, iv?: Secret) -> AeadContext; with a 12-byte iv, a record context.
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
  const uint8_t* iv = nullptr;
  if (!info[2].IsUndefined()) {
    Secret* iv_secret = Secret::FromValue(env, info[2], "iv");
    if (iv_secret == nullptr) return env.Undefined();
    if (iv_secret->bytes().size() != kNonceSize) {
      ThrowError(env, code::kInvalidKey, "AEAD IVs must be 12 bytes");
      return env.Undefined();
    }
    iv = iv_secret->bytes().data();
  }
  return NewAeadContext(env, suite, key->bytes().data(), iv);
}

}  // namespace

Napi::Value NewAeadContext(Napi::Env env, int suite, const uint8_t* key, const uint8_t* iv) {
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
  Aead::CreateArgs args{cipher, suite, key, iv};
  return Data(env).aead_constructor.New({Napi::External<Aead::CreateArgs>::New(env, &args)});
}

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
  sizes.Set("recordBatchRowWords", static_cast<double>(kRecordRowWords));
  sizes.Set("iv", static_cast<double>(kNonceSize));
  exports.Set("aeadSizes", sizes);
  Napi::Object suites = Napi::Object::New(env);
  suites.Set("AES_256_GCM", kSuiteAes256Gcm);
  suites.Set("CHACHA20_POLY1305", kSuiteChaCha20Poly1305);
  exports.Set("aeadSuites", suites);
}

}  // namespace qt
