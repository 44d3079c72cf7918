#include "secret.h"

#include <openssl/crypto.h>

#include <algorithm>

#include "addon_data.h"
#include "errors.h"

namespace qt {

namespace {
// Distinguishes our wrapped objects from anything else JS could pass in.
const napi_type_tag kSecretTag = {0x8d3b3a1f5e2c4a71ULL, 0xa4c6e1d09b7f2e35ULL};
}  // namespace

SecretBytes::SecretBytes(size_t size)
    : data_(static_cast<uint8_t*>(OPENSSL_zalloc(size == 0 ? 1 : size))), size_(size) {}

SecretBytes::~SecretBytes() { OPENSSL_clear_free(data_, size_ == 0 ? 1 : size_); }

void SecretBytes::Cleanse() {
  if (data_ != nullptr) OPENSSL_cleanse(data_, size_);
}

Napi::Function Secret::Init(Napi::Env env) {
  return DefineClass(env, "Secret",
                     {
                         InstanceAccessor<&Secret::Length>("length"),
                         InstanceAccessor<&Secret::Destroyed>("destroyed"),
                         InstanceMethod<&Secret::Destroy>("destroy"),
                         InstanceMethod<&Secret::Clone>("clone"),
                     });
}

Secret::Secret(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Secret>(info) {
  // Only native code can construct one: it passes the bytes as an External.
  if (info.Length() != 1 || !info[0].IsExternal()) {
    ThrowError(info.Env(), code::kInvalidArgument, "Secret handles are created by crypto functions only");
    return;
  }
  bytes_.reset(info[0].As<Napi::External<SecretBytes>>().Data());
  napi_type_tag_object(info.Env(), info.This(), &kSecretTag);
}

Napi::Value Secret::Wrap(Napi::Env env, std::unique_ptr<SecretBytes> bytes) {
  Napi::External<SecretBytes> ext = Napi::External<SecretBytes>::New(env, bytes.get());
  Napi::Object obj = Data(env).secret_constructor.New({ext});
  // The constructor took ownership only if it ran; otherwise `bytes` still frees (and cleanses).
  if (!obj.IsEmpty()) static_cast<void>(bytes.release());
  return obj;
}

bool Secret::Is(Napi::Env env, Napi::Value v) {
  bool tagged = false;
  if (v.IsObject()) napi_check_object_type_tag(env, v, &kSecretTag, &tagged);
  return tagged;
}

Secret* Secret::FromValueEvenIfDestroyed(Napi::Env env, Napi::Value v, const char* what) {
  if (!Is(env, v)) {
    ThrowInvalidArgument(env, std::string(what) + " must be a Secret handle");
    return nullptr;
  }
  Secret* s = Napi::ObjectWrap<Secret>::Unwrap(v.As<Napi::Object>());
  if (s == nullptr || !s->bytes_) {
    ThrowInvalidArgument(env, std::string(what) + " must be a Secret handle");
    return nullptr;
  }
  return s;
}

Secret* Secret::FromValue(Napi::Env env, Napi::Value v, const char* what) {
  Secret* s = FromValueEvenIfDestroyed(env, v, what);
  if (s == nullptr) return nullptr;
  if (s->destroyed_) {
    ThrowError(env, code::kDestroyed, std::string(what) + " has been destroyed");
    return nullptr;
  }
  return s;
}

Napi::Value Secret::Length(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(bytes_ ? bytes_->size() : 0));
}

Napi::Value Secret::Destroyed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), destroyed_);
}

Napi::Value Secret::Clone(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (destroyed_ || !bytes_) {
    ThrowError(env, code::kDestroyed, "the secret has been destroyed");
    return env.Undefined();
  }
  auto copy = std::make_unique<SecretBytes>(bytes_->size());
  if (!copy->ok()) {
    ThrowError(env, code::kCryptoFailure, "out of memory");
    return env.Undefined();
  }
  std::copy(bytes_->data(), bytes_->data() + bytes_->size(), copy->data());
  return Wrap(env, std::move(copy));
}

void Secret::Destroy(const Napi::CallbackInfo&) {
  if (bytes_) bytes_->Cleanse();
  destroyed_ = true;  // a second destroy() is a no-op
}

}  // namespace qt
