#include "fips.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "addon_data.h"
#include "bytes.h"
#include "errors.h"
#include "library_context.h"

namespace qt {

namespace {

constexpr const char* kUnavailable = "ERR_QT_FIPS_UNAVAILABLE";

std::string StringArg(Napi::Env env, Napi::Value v, const char* what, bool* ok) {
  if (!v.IsString()) {
    ThrowInvalidArgument(env, std::string(what) + " must be a string");
    *ok = false;
    return "";
  }
  *ok = true;
  return v.As<Napi::String>().Utf8Value();
}

// fipsLoad(moduleDir, configPath): creates the process-wide FIPS context (the provider runs its
// power-on self-tests as it loads). Does not switch modes.
Napi::Value Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireOperational(env)) return env.Undefined();
  bool ok1 = false, ok2 = false;
  std::string dir = StringArg(env, info[0], "moduleDir", &ok1);
  std::string config = ok1 ? StringArg(env, info[1], "configPath", &ok2) : "";
  if (!ok1 || !ok2) return env.Undefined();
  std::string error;
  if (LibraryContext::Fips(dir, config, &error) == nullptr) {
    ThrowError(env, kUnavailable, "the FIPS provider could not be loaded: " + error);
    return env.Undefined();
  }
  return Napi::Boolean::New(env, true);
}

LibraryContext* FipsContext(Napi::Env env) {
  std::string unused;
  LibraryContext* lc = LibraryContext::Fips("", "", &unused);
  if (lc == nullptr) ThrowError(env, kUnavailable, "the FIPS provider is not loaded");
  return lc;
}

// fipsActivate(): every later operation in this environment uses the FIPS context.
Napi::Value Activate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireOperational(env)) return env.Undefined();
  LibraryContext* lc = FipsContext(env);
  if (lc == nullptr) return env.Undefined();
  Data(env).active_context = lc;
  return Napi::Boolean::New(env, true);
}

// fipsUseContext(mode): runs the self-tests in the FIPS context before activation ('fips'), and
// returns to the previous one afterwards ('standard').
Napi::Value UseContext(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool ok = false;
  std::string mode = StringArg(env, info[0], "mode", &ok);
  if (!ok) return env.Undefined();
  if (mode == "fips") {
    LibraryContext* lc = FipsContext(env);
    if (lc == nullptr) return env.Undefined();
    Data(env).active_context = lc;
  } else {
    Data(env).active_context = Data(env).standard_context;
  }
  return env.Undefined();
}

// fipsProviderSelfTest() -> boolean: the provider's own KATs and integrity check, run again.
Napi::Value ProviderSelfTest(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LibraryContext* lc = FipsContext(env);
  if (lc == nullptr) return env.Undefined();
  return Napi::Boolean::New(env, lc->ProviderSelfTest());
}

// fipsEnterErrorState(reason): a failed self-test (run in JS) puts the whole module in its error state.
void EnterError(const Napi::CallbackInfo& info) {
  std::string reason = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "self-test failure";
  EnterErrorState(reason);
}

Napi::Value ErrorState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("failed", InErrorState());
  out.Set("reason", ErrorStateReason());
  return out;
}

// fipsModuleMac(path, key) -> Buffer: HMAC-SHA256 of a file with the FIPS provider's HMAC (the
// addon's integrity check: the expected value is computed when the addon is built).
Napi::Value ModuleMac(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool ok = false;
  std::string path = StringArg(env, info[0], "path", &ok);
  ByteView key;
  if (!ok || !GetBytes(env, info[1], "key", &key)) return env.Undefined();
  LibraryContext* lc = FipsContext(env);
  if (lc == nullptr) return env.Undefined();
  std::unique_ptr<FILE, decltype(&fclose)> file(fopen(path.c_str(), "rb"), fclose);
  if (!file) {
    ThrowError(env, kUnavailable, "cannot read " + path);
    return env.Undefined();
  }
  std::unique_ptr<EVP_MAC, decltype(&EVP_MAC_free)> mac(EVP_MAC_fetch(lc->ctx(), "HMAC", nullptr), EVP_MAC_free);
  std::unique_ptr<EVP_MAC_CTX, decltype(&EVP_MAC_CTX_free)> ctx(mac ? EVP_MAC_CTX_new(mac.get()) : nullptr,
                                                               EVP_MAC_CTX_free);
  char digest[] = "SHA2-256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_construct_end()};
  if (!ctx || EVP_MAC_init(ctx.get(), key.data, key.size, params) != 1) {
    ThrowError(env, code::kCryptoFailure, "HMAC-SHA256 is not available");
    return env.Undefined();
  }
  std::vector<unsigned char> buf(1 << 16);
  size_t n = 0;
  while ((n = fread(buf.data(), 1, buf.size(), file.get())) > 0) {
    if (EVP_MAC_update(ctx.get(), buf.data(), n) != 1) {
      ThrowError(env, code::kCryptoFailure, "HMAC-SHA256 failed");
      return env.Undefined();
    }
  }
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, 32);
  if (out.IsEmpty()) return env.Undefined();  // allocation failed: a RangeError is pending
  size_t len = 0;
  if (ferror(file.get()) != 0 || EVP_MAC_final(ctx.get(), out.Data(), &len, 32) != 1 || len != 32) {
    ThrowError(env, code::kCryptoFailure, "HMAC-SHA256 failed");
    return env.Undefined();
  }
  return out;
}

}  // namespace

void InitFips(Napi::Env env, Napi::Object exports) {
  exports.Set("fipsLoad", Napi::Function::New<Load>(env));
  exports.Set("fipsActivate", Napi::Function::New<Activate>(env));
  exports.Set("fipsUseContext", Napi::Function::New<UseContext>(env));
  exports.Set("fipsProviderSelfTest", Napi::Function::New<ProviderSelfTest>(env));
  exports.Set("fipsEnterErrorState", Napi::Function::New<EnterError>(env));
  exports.Set("fipsErrorState", Napi::Function::New<ErrorState>(env));
  exports.Set("fipsModuleMac", Napi::Function::New<ModuleMac>(env));
#ifdef QT_FIPS_PROFILE
  exports.Set("buildProfile", "fips");
#else
  exports.Set("buildProfile", "standard");
#endif
}

}  // namespace qt
