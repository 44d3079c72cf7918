// Argument helpers that need Secret: the `parts` arrays of the digests and sealParts, and private
// copies of key material.
#pragma once
#include <napi.h>

#include <cstring>
#include <memory>
#include <vector>

#include "bytes.h"
#include "errors.h"
#include "secret.h"

namespace qt {

// Collects the elements of a parts array (byte arrays and Secret handles) without taking any
// pointer. Reading an element can run JS (an indexed getter, an Array subclass, a getter on
// Array.prototype for a hole) that may detach or shrink a buffer or destroy a handle, so callers
// read the whole array first and take pointers with PartBytes afterwards, all JS done. The length
// is read once: a getter that grows the array cannot keep the loop going. A Proxy is not an array.
// An array longer than `max` is refused before any element is read.
inline bool ReadParts(Napi::Env env, Napi::Value v, std::vector<Napi::Value>* out, uint32_t max = UINT32_MAX) {
  if (!v.IsArray()) {
    ThrowInvalidArgument(env, "parts must be an array");
    return false;
  }
  Napi::Array array = v.As<Napi::Array>();
  const uint32_t n = array.Length();
  if (n > max) {
    ThrowInvalidArgument(env, "parts must hold at most " + std::to_string(max) + " elements");
    return false;
  }
  out->reserve(n < 64 ? n : 64);  // the length is caller-controlled; holes fail below
  for (uint32_t i = 0; i < n; i++) {
    Napi::Value p = array.Get(i);
    if (env.IsExceptionPending()) return false;  // a getter threw: let its exception through
    if (!p.IsTypedArray() && !Secret::Is(env, p)) {
      ThrowInvalidArgument(env, "each part must be a Uint8Array or a Secret handle");
      return false;
    }
    out->push_back(p);
  }
  return true;
}

// The bytes of one element collected by ReadParts: a Uint8Array or a live Secret's storage.
inline bool PartBytes(Napi::Env env, Napi::Value p, ByteView* out, Shared shared = Shared::kAllow) {
  if (p.IsTypedArray()) return GetBytes(env, p, "each part", out, shared);
  Secret* s = Secret::FromValue(env, p, "each part");
  if (s == nullptr) return false;
  out->size = s->bytes().size();
  out->data = out->size == 0 ? EmptyBytes() : const_cast<uint8_t*>(s->bytes().data());
  return true;
}

// A cleansed native copy of key material or of bytes OpenSSL reads more than once (an ML-KEM
// encapsulation key is decoded and then hashed; a ciphertext is decrypted, then re-encrypted and
// compared): OpenSSL then works on a snapshot that another thread writing a SharedArrayBuffer
// cannot change between its reads. Not for bulk data. nullptr (and an exception) when memory is
// short.
inline std::unique_ptr<SecretBytes> CopyOf(Napi::Env env, const ByteView& v) {
  auto copy = std::make_unique<SecretBytes>(v.size);
  if (copy->data() == nullptr) {
    ThrowError(env, code::kCryptoFailure, "out of memory");
    return nullptr;
  }
  std::memcpy(copy->data(), v.data, v.size);
  return copy;
}

}  // namespace qt
