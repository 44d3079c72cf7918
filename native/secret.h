// Secret bytes (shared secrets, master secrets, traffic keys) that never enter the JS heap.
// JavaScript holds an opaque `Secret` handle; destroy() cleanses the bytes at once and the
// finalizer cleanses and frees them if the program forgot.
#pragma once
#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <memory>

namespace qt {

class SecretBytes {
 public:
  explicit SecretBytes(size_t size);
  ~SecretBytes();  // cleanses
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  bool ok() const { return data_ != nullptr || size_ == 0; }
  void Cleanse();

 private:
  uint8_t* data_;
  size_t size_;
};

class Secret : public Napi::ObjectWrap<Secret> {
 public:
  static Napi::Function Init(Napi::Env env);
  // Wraps freshly derived bytes in a new JS handle (takes ownership; frees them if no handle
  // could be made, e.g. with an exception already pending).
  static Napi::Value Wrap(Napi::Env env, std::unique_ptr<SecretBytes> bytes);
  // Whether v is a Secret handle (live or destroyed). Runs no JS.
  static bool Is(Napi::Env env, Napi::Value v);
  // Unwraps a JS value that must be a live Secret; throws and returns nullptr otherwise.
  static Secret* FromValue(Napi::Env env, Napi::Value v, const char* what);
  // Same type check, but also returns destroyed handles (test-only storage inspection).
  static Secret* FromValueEvenIfDestroyed(Napi::Env env, Napi::Value v, const char* what);

  explicit Secret(const Napi::CallbackInfo& info);

  const SecretBytes& bytes() const { return *bytes_; }
  bool destroyed() const { return destroyed_; }
  // Test-only view of the storage, live or destroyed (then all zeros): see lib/crypto/testing.ts.
  const SecretBytes* storage() const { return bytes_.get(); }

 private:
  Napi::Value Length(const Napi::CallbackInfo& info);
  Napi::Value Destroyed(const Napi::CallbackInfo& info);
  void Destroy(const Napi::CallbackInfo& info);
  // A new handle with a copy of the bytes (the two are destroyed independently).
  Napi::Value Clone(const Napi::CallbackInfo& info);

  // Kept (zeroed) after destroy() until the finalizer, so tests can observe the cleansing.
  std::unique_ptr<SecretBytes> bytes_;
  bool destroyed_ = false;
};

}  // namespace qt
