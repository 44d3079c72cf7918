// Entry point: creates the per-environment state and registers one unit per algorithm.
#include <napi.h>
#include <openssl/opensslv.h>

#include "addon_data.h"
#include "aead.h"
#include "digest.h"
#include "ecdh.h"
#include "errors.h"
#include "fips.h"
#include "hkdf.h"
#include "library_context.h"
#include "hybrid.h"
#include "mldsa.h"
#include "mlkem.h"
#include "pem.h"
#include "private_key.h"
#include "random.h"
#include "secret.h"
#include "testing.h"
#include "x25519.h"
#include "x509.h"

namespace qt {

namespace {

// setErrorConstructor(QuantumTunnelError): native errors are created as instances of it.
void SetErrorConstructor(const Napi::CallbackInfo& info) {
  if (!info[0].IsFunction()) {
    ThrowInvalidArgument(info.Env(), "the error constructor must be a function");
    return;
  }
  Data(info.Env()).error_constructor = Napi::Persistent(info[0].As<Napi::Function>());
}

// info() -> the addon's own OpenSSL and the active library context's providers.
Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LibraryContext* lc = Data(env).active_context;
  Napi::Object out = Napi::Object::New(env);
  out.Set("openssl", LinkedOpenSslVersion());
  out.Set("opensslHeaders", OPENSSL_VERSION_TEXT);
  out.Set("mode", lc->name());
  out.Set("fips", lc->fips());
#ifdef QT_NO_CHACHA20
  out.Set("chacha20Compiled", false);
#else
  out.Set("chacha20Compiled", true);
#endif
  out.Set("chacha20Available", lc->chacha20poly1305() != nullptr);
  Napi::Array providers = Napi::Array::New(env);
  uint32_t i = 0;
  for (const auto& p : lc->Providers()) {
    Napi::Object po = Napi::Object::New(env);
    po.Set("name", p.name);
    po.Set("version", p.version);
    po.Set("buildinfo", p.buildinfo);
    po.Set("active", p.active);
    providers.Set(i++, po);
  }
  out.Set("providers", providers);
  return out;
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  env.SetInstanceData<AddonData>(data);  // deleted with the environment

  std::string error;
  if (!InitOpenSslOnce(&error) || !(data->standard_context = LibraryContext::Standard(&error))) {
    ThrowError(env, code::kLibraryContext, error);
    return exports;
  }
  data->active_context = data->standard_context;

  Napi::Function secret = Secret::Init(env);
  data->secret_constructor = Napi::Persistent(secret);
  exports.Set("Secret", secret);
  Napi::Function private_key = PrivateKey::Init(env);
  data->private_key_constructor = Napi::Persistent(private_key);
  exports.Set("PrivateKey", private_key);
  Napi::Function public_key = PublicKey::Init(env);
  data->public_key_constructor = Napi::Persistent(public_key);
  exports.Set("PublicKey", public_key);

  exports.Set("setErrorConstructor", Napi::Function::New<SetErrorConstructor>(env));
  exports.Set("info", Napi::Function::New<Info>(env));
  InitMlKem(env, exports);
  InitX25519(env, exports);
  InitEcdh(env, exports);
  InitDigest(env, exports);
  InitHkdf(env, exports);
  InitAead(env, exports);
  InitRandom(env, exports);
  InitTesting(env, exports);
  InitFips(env, exports);
  InitMlDsa(env, exports);
  InitHybrid(env, exports);
  InitPem(env, exports);
  data->certificate_constructor = Napi::Persistent(InitX509(env, exports));
  return exports;
}

}  // namespace qt

static Napi::Object InitQuantumTunnel(Napi::Env env, Napi::Object exports) { return qt::Init(env, exports); }

NODE_API_MODULE(quantum_tunnel, InitQuantumTunnel)
