#include "digest.h"

#include <openssl/evp.h>

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

constexpr size_t kSha3_256Size = 32;
constexpr size_t kSha384Size = 48;
// Largest single SHAKE-256 output we hand out (the protocol's KDF limit is 2^20; TS enforces it).
constexpr size_t kMaxXofOutput = size_t{1} << 26;

using MdCtx = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;

// Initialises `ctx` with `md` and absorbs every element of `parts` (collected by ReadParts, so
// no JS runs here) in order. Throws on bad input.
bool Absorb(Napi::Env env, EVP_MD_CTX* ctx, const EVP_MD* md, const std::vector<Napi::Value>& parts) {
  if (EVP_DigestInit_ex2(ctx, md, nullptr) != 1) {
    ThrowError(env, code::kCryptoFailure, "digest initialisation failed");
    return false;
  }
  for (const Napi::Value& part : parts) {
    ByteView view;
    if (!PartBytes(env, part, &view)) return false;
    if (view.size > 0 && EVP_DigestUpdate(ctx, view.data, view.size) != 1) {
      ThrowError(env, code::kCryptoFailure, "digest update failed");
      return false;
    }
  }
  return true;
}

// Finalizes `ctx` into a new Buffer of `size` bytes (a fixed-length digest), or undefined with an
// exception pending.
Napi::Value FinalBuffer(Napi::Env env, EVP_MD_CTX* ctx, size_t size, const char* failure) {
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, size);
  if (out.IsEmpty()) return env.Undefined();  // allocation failed: a RangeError is pending
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx, out.Data(), &len) != 1 || len != size) {
    ThrowError(env, code::kCryptoFailure, failure);
    return env.Undefined();
  }
  return out;
}

// shake256(parts, outputLength) -> Buffer
Napi::Value Shake256(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireOperational(env)) return env.Undefined();
  size_t out_len = 0;
  std::vector<Napi::Value> parts;
  // Reading the parts array can run JS (which could even enter the error state or switch
  // modes): everything below it, the operational check included, comes after.
  if (!GetSize(env, info[1], "outputLength", kMaxXofOutput, &out_len) || !ReadParts(env, info[0], &parts) ||
      !RequireOperational(env)) {
    return env.Undefined();
  }
  MdCtx ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || !Absorb(env, ctx.get(), Data(env).active_context->shake256(), parts)) return env.Undefined();
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, out_len);
  if (out.IsEmpty()) return env.Undefined();  // allocation failed: a RangeError is pending
  if (out_len > 0 && EVP_DigestFinalXOF(ctx.get(), out.Data(), out_len) != 1) {
    ThrowError(env, code::kCryptoFailure, "SHAKE-256 failed");
    return env.Undefined();
  }
  return out;
}

// shake256Secrets(parts, sizes[]) -> Secret[]: one squeeze, split into consecutive secrets
// (e.g. the 64 bytes of traffic keys into the two directions' keys).
Napi::Value Shake256Secrets(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireOperational(env)) return env.Undefined();
  if (!info[1].IsArray()) {
    ThrowInvalidArgument(env, "sizes must be an array");
    return env.Undefined();
  }
  // Both arrays are read (which can run JS) before anything else; sizes are plain numbers.
  Napi::Array sizes_arr = info[1].As<Napi::Array>();
  const uint32_t n = sizes_arr.Length();
  std::vector<size_t> sizes;
  size_t total = 0;
  for (uint32_t i = 0; i < n; i++) {
    size_t s = 0;
    Napi::Value v = sizes_arr.Get(i);
    if (env.IsExceptionPending() || !GetSize(env, v, "each size", kMaxXofOutput, &s)) return env.Undefined();
    if (s == 0 || total + s > kMaxXofOutput) {
      ThrowInvalidArgument(env, "secret sizes must be positive and add up to at most 64 MiB");
      return env.Undefined();
    }
    sizes.push_back(s);
    total += s;
  }
  if (sizes.empty()) {
    ThrowInvalidArgument(env, "sizes must not be empty");
    return env.Undefined();
  }
  std::vector<Napi::Value> parts;
  if (!ReadParts(env, info[0], &parts) || !RequireOperational(env)) return env.Undefined();
  MdCtx ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || !Absorb(env, ctx.get(), Data(env).active_context->shake256(), parts)) return env.Undefined();
  SecretBytes squeezed(total);
  if (!squeezed.ok() || EVP_DigestFinalXOF(ctx.get(), squeezed.data(), total) != 1) {
    ThrowError(env, code::kCryptoFailure, "SHAKE-256 failed");
    return env.Undefined();
  }
  Napi::Array out = Napi::Array::New(env, sizes.size());
  size_t offset = 0;
  for (size_t i = 0; i < sizes.size(); i++) {
    auto piece = std::make_unique<SecretBytes>(sizes[i]);
    if (!piece->ok()) {
      ThrowError(env, code::kCryptoFailure, "out of memory");
      return env.Undefined();
    }
    std::copy(squeezed.data() + offset, squeezed.data() + offset + sizes[i], piece->data());
    offset += sizes[i];
    Napi::Value handle = Secret::Wrap(env, std::move(piece));
    if (handle.IsEmpty()) return env.Undefined();
    // Defined, not assigned: a setter on Array.prototype must not receive the handle.
    out.DefineProperty(Napi::PropertyDescriptor::Value(std::to_string(i), handle, napi_default_jsproperty));
  }
  return out;
}

// sha3_256(parts) -> Buffer(32)
Napi::Value Sha3_256(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<Napi::Value> parts;
  if (!RequireOperational(env) || !ReadParts(env, info[0], &parts) || !RequireOperational(env)) return env.Undefined();
  MdCtx ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || !Absorb(env, ctx.get(), Data(env).active_context->sha3_256(), parts)) return env.Undefined();
  return FinalBuffer(env, ctx.get(), kSha3_256Size, "SHA3-256 failed");
}

// sha384(parts) -> Buffer(48): the transcript hash of a TLS 1.3-like key schedule. Public inputs
// only: a digest of a secret would be a public value derived from it outside the KDFs.
Napi::Value Sha384(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<Napi::Value> parts;
  if (!RequireOperational(env) || !ReadParts(env, info[0], &parts) || !RequireOperational(env)) return env.Undefined();
  for (const Napi::Value& part : parts) {
    if (!part.IsTypedArray()) {
      ThrowInvalidArgument(env, "each part must be a Uint8Array (SHA-384 takes public inputs only)");
      return env.Undefined();
    }
  }
  MdCtx ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || !Absorb(env, ctx.get(), Data(env).active_context->sha384(), parts)) return env.Undefined();
  return FinalBuffer(env, ctx.get(), kSha384Size, "SHA-384 failed");
}

// sha256(parts) -> Buffer(32): fingerprints of public keys (docs/PROTOCOL.md §13.1). Public
// inputs only, like sha384; SHA2-256 is fetched per call (fingerprints are not a hot path).
Napi::Value Sha256(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<Napi::Value> parts;
  if (!RequireOperational(env) || !ReadParts(env, info[0], &parts) || !RequireOperational(env)) return env.Undefined();
  for (const Napi::Value& part : parts) {
    if (!part.IsTypedArray()) {
      ThrowInvalidArgument(env, "each part must be a Uint8Array (SHA-256 takes public inputs only)");
      return env.Undefined();
    }
  }
  LibraryContext* lc = Data(env).active_context;
  std::unique_ptr<EVP_MD, decltype(&EVP_MD_free)> md(EVP_MD_fetch(lc->ctx(), "SHA2-256", lc->propq()), EVP_MD_free);
  MdCtx ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!md || !ctx || !Absorb(env, ctx.get(), md.get(), parts)) {
    if (!env.IsExceptionPending()) ThrowError(env, code::kCryptoFailure, "SHA-256 failed");
    return env.Undefined();
  }
  return FinalBuffer(env, ctx.get(), 32, "SHA-256 failed");
}

// A running SHA-384 (new Sha384Hash()): a transcript hash absorbs each handshake message once,
// and digest() returns the hash of everything so far without ending it (a copy is finalized), so
// a handshake's many transcript hashes cost one pass over its messages. Public inputs only.
class Sha384Hash : public Napi::ObjectWrap<Sha384Hash> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Sha384Hash",
                       {InstanceMethod<&Sha384Hash::Update>("update"), InstanceMethod<&Sha384Hash::Digest>("digest")});
  }

  explicit Sha384Hash(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Sha384Hash>(info) {
    Napi::Env env = info.Env();
    if (!RequireOperational(env)) return;
    if (!ctx_ || EVP_DigestInit_ex2(ctx_.get(), Data(env).active_context->sha384(), nullptr) != 1) {
      ThrowError(env, code::kCryptoFailure, "SHA-384 initialisation failed");
    }
  }

 private:
  // update(bytes): absorbs a Uint8Array.
  void Update(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ByteView view;
    if (!RequireOperational(env) || !GetBytes(env, info[0], "bytes", &view)) return;
    if (view.size > 0 && EVP_DigestUpdate(ctx_.get(), view.data, view.size) != 1) {
      ThrowError(env, code::kCryptoFailure, "SHA-384 update failed");
    }
  }

  // digest() -> Buffer(48): the hash of everything absorbed so far.
  Napi::Value Digest(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!RequireOperational(env)) return env.Undefined();
    MdCtx copy(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    if (!copy || EVP_MD_CTX_copy_ex(copy.get(), ctx_.get()) != 1) {
      ThrowError(env, code::kCryptoFailure, "SHA-384 copy failed");
      return env.Undefined();
    }
    return FinalBuffer(env, copy.get(), kSha384Size, "SHA-384 failed");
  }

  MdCtx ctx_{EVP_MD_CTX_new(), EVP_MD_CTX_free};
};

}  // namespace

void InitDigest(Napi::Env env, Napi::Object exports) {
  exports.Set("Sha384Hash", Sha384Hash::Init(env));
  exports.Set("shake256", Napi::Function::New<Shake256>(env));
  exports.Set("shake256Secrets", Napi::Function::New<Shake256Secrets>(env));
  exports.Set("sha3_256", Napi::Function::New<Sha3_256>(env));
  exports.Set("sha384", Napi::Function::New<Sha384>(env));
  exports.Set("sha256", Napi::Function::New<Sha256>(env));
  Napi::Object sizes = Napi::Object::New(env);
  sizes.Set("sha3_256", static_cast<double>(kSha3_256Size));
  sizes.Set("sha384", static_cast<double>(kSha384Size));
  sizes.Set("maxShake256Output", static_cast<double>(kMaxXofOutput));
  exports.Set("digestSizes", sizes);
}

}  // namespace qt
