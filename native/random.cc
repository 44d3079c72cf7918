#include "random.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "addon_data.h"
#include "bytes.h"
#include "errors.h"
#include "secret.h"
#include "testing.h"

namespace qt {

namespace {

constexpr unsigned int kStrength = 256;  // bits; the DRBG must be seeded for this strength
constexpr size_t kMaxRandomSecret = 1 << 16;

// Continuous RNG test (FIPS 140-3 conditional self-test): in FIPS mode, a DRBG output block equal
// to the previous one puts the module in its error state.
constexpr size_t kCrngtBlock = 16;
std::atomic<bool> g_repeat_next_block{false};  // test-only: simulate a stuck DRBG once

bool ContinuousTest(uint8_t* data) {
  static std::mutex m;
  static uint8_t previous[kCrngtBlock];
  static bool have_previous = false;
  std::lock_guard<std::mutex> lock(m);
  if (g_repeat_next_block.exchange(false) && have_previous) std::copy(previous, previous + kCrngtBlock, data);
  bool repeated = have_previous && CRYPTO_memcmp(previous, data, kCrngtBlock) == 0;
  std::copy(data, data + kCrngtBlock, previous);
  have_previous = true;
  if (repeated) EnterErrorState("continuous RNG test: the DRBG repeated an output block");
  return !repeated;
}

bool Draw(LibraryContext* lc, uint8_t* data, size_t size) {
  // RAND_bytes_ex takes size_t; draw in chunks so one call never asks for more than the DRBG's
  // per-request limit matters to us.
  while (size > 0) {
    size_t n = size < 65536 ? size : 65536;
    if (RAND_bytes_ex(lc->ctx(), data, n, kStrength) != 1) return false;
    data += n;
    size -= n;
  }
  return true;
}

bool Fill(LibraryContext* lc, uint8_t* data, size_t size) {
  if (!lc->fips() || size < kCrngtBlock) return Draw(lc, data, size);
  // The continuous test runs on a block in our own memory before it is copied out: the target
  // may be a SharedArrayBuffer that another thread could write to fake or hide a repeat.
  uint8_t block[kCrngtBlock];
  bool ok = Draw(lc, block, kCrngtBlock) && ContinuousTest(block) && Draw(lc, data + kCrngtBlock, size - kCrngtBlock);
  if (ok) std::copy(block, block + kCrngtBlock, data);
  OPENSSL_cleanse(block, sizeof block);
  return ok;
}

// randomFill(buf) -> buf
Napi::Value RandomFill(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireOperational(env)) return env.Undefined();
  ByteView buf;
  if (!GetBytes(env, info[0], "buffer", &buf)) return env.Undefined();
  if (!Fill(Data(env).active_context, buf.data, buf.size)) {
    if (RequireOperational(env)) ThrowError(env, code::kCryptoFailure, "the DRBG failed");
    return env.Undefined();
  }
  return info[0];
}

// randomSecret(n) -> Secret (e.g. ticket keys)
Napi::Value RandomSecret(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireOperational(env)) return env.Undefined();
  size_t n = 0;
  if (!GetSize(env, info[0], "length", kMaxRandomSecret, &n)) return env.Undefined();
  auto s = std::make_unique<SecretBytes>(n);
  if (!s->ok()) {
    ThrowError(env, code::kCryptoFailure, "out of memory");
    return env.Undefined();
  }
  if (!Fill(Data(env).active_context, s->data(), n)) {
    if (RequireOperational(env)) ThrowError(env, code::kCryptoFailure, "the DRBG failed");
    return env.Undefined();
  }
  return Secret::Wrap(env, std::move(s));
}

// importSecret(bytes) -> Secret holding a copy (key material the application loaded, such as a
// PSK). The source is a writable Buffer the caller then wipes; the copy is read once, so a
// SharedArrayBuffer view is refused (its bytes could change between length check and copy).
Napi::Value ImportSecret(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireOperational(env)) return env.Undefined();
  ByteView b;
  if (!GetBytes(env, info[0], "bytes", &b, Shared::kRefuse)) return env.Undefined();
  if (b.size == 0 || b.size > kMaxRandomSecret) {
    ThrowInvalidArgument(env, "a secret must be 1 to " + std::to_string(kMaxRandomSecret) + " bytes");
    return env.Undefined();
  }
  auto s = std::make_unique<SecretBytes>(b.size);
  if (!s->ok()) {
    ThrowError(env, code::kCryptoFailure, "out of memory");
    return env.Undefined();
  }
  std::copy(b.data, b.data + b.size, s->data());
  return Secret::Wrap(env, std::move(s));
}

// Bytes of a Secret handle or a Uint8Array, for comparisons.
bool GetComparable(Napi::Env env, Napi::Value v, const char* what, const uint8_t** data, size_t* size) {
  if (v.IsTypedArray()) {
    ByteView view;
    if (!GetBytes(env, v, what, &view)) return false;
    *data = view.data;
    *size = view.size;
    return true;
  }
  Secret* s = Secret::FromValue(env, v, what);
  if (s == nullptr) return false;
  *data = s->bytes().data();
  *size = s->bytes().size();
  return true;
}

// timingSafeEqual(a, b) -> boolean; a and b are Secrets or byte arrays. Lengths are public.
Napi::Value TimingSafeEqual(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireOperational(env)) return env.Undefined();
  const uint8_t *a = nullptr, *b = nullptr;
  size_t a_len = 0, b_len = 0;
  if (!GetComparable(env, info[0], "a", &a, &a_len) || !GetComparable(env, info[1], "b", &b, &b_len)) {
    return env.Undefined();
  }
  return Napi::Boolean::New(env, a_len == b_len && CRYPTO_memcmp(a, b, a_len) == 0);
}

// testingRepeatNextRandomBlock(): the next FIPS-mode DRBG output repeats the previous block, so a
// test can see the continuous RNG test put the module in its error state. Only when
// QUANTUM_TUNNEL_TESTING=1 was set as the addon loaded: elsewhere any code could stop the module.
void RepeatNextBlock(const Napi::CallbackInfo& info) {
  if (!StartedForTesting()) {
    ThrowError(info.Env(), code::kInvalidState, "testingRepeatNextRandomBlock is for tests only (QUANTUM_TUNNEL_TESTING=1)");
    return;
  }
  g_repeat_next_block = true;
}

// isOperational() -> boolean, cheap: lets the JS random pool stop in the error state too.
Napi::Value IsOperational(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !InErrorState()); }

}  // namespace

void InitRandom(Napi::Env env, Napi::Object exports) {
  exports.Set("randomFill", Napi::Function::New<RandomFill>(env));
  exports.Set("randomSecret", Napi::Function::New<RandomSecret>(env));
  exports.Set("importSecret", Napi::Function::New<ImportSecret>(env));
  exports.Set("timingSafeEqual", Napi::Function::New<TimingSafeEqual>(env));
  exports.Set("testingRepeatNextRandomBlock", Napi::Function::New<RepeatNextBlock>(env));
  exports.Set("isOperational", Napi::Function::New<IsOperational>(env));
}

}  // namespace qt
