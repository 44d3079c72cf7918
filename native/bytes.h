// Views of JS byte arrays (Buffer or any Uint8Array) with the checks every unit needs.
//
// A pointer into a JS buffer is good only until JS runs again: a getter, a Proxy trap or a
// valueOf can detach the buffer or shrink a resizable one. Nothing here runs JS, so an entry
// point does every call that can (Get on an array: see args.h) before its first GetBytes and
// runs none until it is done with the pointers. Views of resizable buffers are read at their
// current length (a fixed-length view pushed out of bounds is empty, as it is in JS).
#pragma once
#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "errors.h"

namespace qt {

struct ByteView {
  uint8_t* data = nullptr;  // never null once filled in
  size_t size = 0;
};

// SharedArrayBuffer-backed views: kAllow where the bytes are read once (another thread can only
// change which bytes we read); kRefuse where a primitive reads them twice or its output must not
// be seen by other threads before it is complete (AEAD opening, batch tables). Key material and
// inputs OpenSSL parses in several passes are copied first instead (CopyOf in args.h).
enum class Shared { kAllow, kRefuse };

// What a zero-length view points at: V8 often reports null for it, and null with length 0 is
// undefined behaviour for memcpy and not accepted by every OpenSSL call.
inline uint8_t* EmptyBytes() {
  static uint8_t empty;
  return &empty;
}

// Fills *data/*length from a typed array of element type `type` (the length in elements); a
// zero-length array gets data == nullptr. Refuses detached buffers and, with Shared::kRefuse,
// SharedArrayBuffer-backed views. Throws ERR_QT_INVALID_ARGUMENT naming `what` and returns
// false otherwise. Runs no JS.
inline bool GetTypedArray(Napi::Env env, Napi::Value v, napi_typedarray_type type, const char* type_name,
                          const char* what, Shared shared, void** data, size_t* length) {
  bool is_typed = false;
  napi_typedarray_type actual = napi_int8_array;
  napi_value buffer = nullptr;
  const bool need_buffer = shared == Shared::kRefuse;
  if (napi_is_typedarray(env, v, &is_typed) != napi_ok || !is_typed ||
      napi_get_typedarray_info(env, v, &actual, length, data, need_buffer ? &buffer : nullptr, nullptr) != napi_ok ||
      actual != type) {
    ThrowInvalidArgument(env, std::string(what) + " must be a " + type_name);
    return false;
  }
  if (*length == 0) {
    // A detached buffer reads as empty: refuse it rather than treat it as an empty input.
    bool detached = false;
    if ((buffer == nullptr && napi_get_typedarray_info(env, v, nullptr, nullptr, nullptr, &buffer, nullptr) != napi_ok) ||
        napi_is_detached_arraybuffer(env, buffer, &detached) != napi_ok || detached) {
      ThrowInvalidArgument(env, std::string(what) + " is backed by a detached ArrayBuffer");
      return false;
    }
    *data = nullptr;
  }
  if (need_buffer) {
    bool unshared = false;  // napi_is_arraybuffer is false for a SharedArrayBuffer
    if (napi_is_arraybuffer(env, buffer, &unshared) != napi_ok || !unshared) {
      ThrowInvalidArgument(env, std::string(what) + " must not be backed by a SharedArrayBuffer");
      return false;
    }
  }
  return true;
}

// True and fills *out when v is a Uint8Array (a Buffer is one); otherwise throws
// ERR_QT_INVALID_ARGUMENT naming `what` and returns false.
inline bool GetBytes(Napi::Env env, Napi::Value v, const char* what, ByteView* out, Shared shared = Shared::kAllow) {
  void* data = nullptr;
  size_t length = 0;
  if (!GetTypedArray(env, v, napi_uint8_array, "Uint8Array", what, shared, &data, &length)) return false;
  out->data = length == 0 ? EmptyBytes() : static_cast<uint8_t*>(data);
  out->size = length;
  return true;
}

inline bool GetBytesOfSize(Napi::Env env, Napi::Value v, const char* what, size_t size, ByteView* out,
                           Shared shared = Shared::kAllow) {
  if (!GetBytes(env, v, what, out, shared)) return false;
  if (out->size != size) {
    ThrowInvalidArgument(env, std::string(what) + " must be " + std::to_string(size) + " bytes");
    return false;
  }
  return true;
}

// Number.MAX_SAFE_INTEGER: every integer up to it is a double exactly (and a JS safe integer).
constexpr uint64_t kMaxSafeInteger = (uint64_t{1} << 53) - 1;

// A non-negative integer argument no larger than `max` (itself at most kMaxSafeInteger). Only a
// number primitive is accepted: a coercion (valueOf, toString) would run JS, and a BigInt or a
// string is refused like any other non-number.
inline bool GetInteger(Napi::Env env, Napi::Value v, const char* what, uint64_t max, uint64_t* out) {
  if (!v.IsNumber()) {
    ThrowInvalidArgument(env, std::string(what) + " must be a number");
    return false;
  }
  if (max > kMaxSafeInteger) max = kMaxSafeInteger;
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d > static_cast<double>(max) || d != static_cast<double>(static_cast<uint64_t>(d))) {
    ThrowInvalidArgument(env, std::string(what) + " must be an integer from 0 to " + std::to_string(max));
    return false;
  }
  *out = static_cast<uint64_t>(d);
  return true;
}

// GetInteger for a size or an offset.
inline bool GetSize(Napi::Env env, Napi::Value v, const char* what, size_t max, size_t* out) {
  uint64_t n = 0;
  if (!GetInteger(env, v, what, max, &n)) return false;
  *out = static_cast<size_t>(n);
  return true;
}

inline Napi::Buffer<uint8_t> CopyToBuffer(Napi::Env env, const uint8_t* data, size_t size) {
  return Napi::Buffer<uint8_t>::Copy(env, data, size);
}

}  // namespace qt
