// Views of JS byte arrays (Buffer or any Uint8Array) with the checks every unit needs.
#pragma once
#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "errors.h"

namespace qt {

struct ByteView {
  uint8_t* data = nullptr;
  size_t size = 0;
};

// True and fills *out when v is a Uint8Array (a Buffer is one); otherwise throws
// ERR_QT_INVALID_ARGUMENT naming `what` and returns false.
inline bool GetBytes(Napi::Env env, Napi::Value v, const char* what, ByteView* out) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    ThrowInvalidArgument(env, std::string(what) + " must be a Uint8Array");
    return false;
  }
  Napi::Uint8Array a = v.As<Napi::Uint8Array>();
  out->data = a.Data();
  out->size = a.ByteLength();
  return true;
}

inline bool GetBytesOfSize(Napi::Env env, Napi::Value v, const char* what, size_t size,
                           ByteView* out) {
  if (!GetBytes(env, v, what, out)) return false;
  if (out->size != size) {
    ThrowInvalidArgument(env, std::string(what) + " must be " + std::to_string(size) + " bytes");
    return false;
  }
  return true;
}

// A non-negative integer argument no larger than `max`.
inline bool GetSize(Napi::Env env, Napi::Value v, const char* what, size_t max, size_t* out) {
  if (!v.IsNumber()) {
    ThrowInvalidArgument(env, std::string(what) + " must be a number");
    return false;
  }
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d > static_cast<double>(max) || d != static_cast<double>(static_cast<size_t>(d))) {
    ThrowInvalidArgument(env, std::string(what) + " must be an integer from 0 to " + std::to_string(max));
    return false;
  }
  *out = static_cast<size_t>(d);
  return true;
}

inline Napi::Buffer<uint8_t> CopyToBuffer(Napi::Env env, const uint8_t* data, size_t size) {
  return Napi::Buffer<uint8_t>::Copy(env, data, size);
}

}  // namespace qt
