#include "errors.h"

#include <openssl/err.h>

#include "addon_data.h"

namespace qt {

std::string DrainOpenSslErrors() {
  std::string reason;
  unsigned long e = 0;
  while ((e = ERR_get_error()) != 0) {
    if (reason.empty()) {
      char buf[256];
      ERR_error_string_n(e, buf, sizeof buf);
      reason = buf;
    }
  }
  return reason;
}

Napi::Object MakeError(Napi::Env env, const char* code, const std::string& message) {
  std::string detail = DrainOpenSslErrors();
  AddonData* data = env.GetInstanceData<AddonData>();
  Napi::Object err;
  if (data != nullptr && !data->error_constructor.IsEmpty()) {
    err = data->error_constructor.New({Napi::String::New(env, message), Napi::String::New(env, code)});
    // The constructor is JS (setErrorConstructor takes any function): if it threw, its exception
    // is pending and stands in for ours; the empty object must not be touched.
    if (err.IsEmpty()) return err;
  } else {
    err = Napi::Error::New(env, message).Value();
    err.Set("code", code);
  }
  if (!detail.empty()) {
    err.DefineProperty(Napi::PropertyDescriptor::Value("detail", Napi::String::New(env, detail),
                                                       napi_configurable));
  }
  return err;
}

void ThrowError(Napi::Env env, const char* code, const std::string& message) {
  Napi::Object err = MakeError(env, code, message);
  if (!err.IsEmpty()) napi_throw(env, err);
}

void ThrowInvalidArgument(Napi::Env env, const std::string& message) {
  ThrowError(env, code::kInvalidArgument, message);
}

}  // namespace qt
