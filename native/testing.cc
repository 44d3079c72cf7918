#include "testing.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>

#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "bytes.h"
#include "errors.h"
#include "private_key.h"
#include "secret.h"

namespace qt {

namespace {

// Raw secret export works only after the test-only entry point (lib/testing.ts) enabled it, and
// only in a process started with QUANTUM_TUNNEL_TESTING=1: production code cannot reach it.
std::atomic<bool> g_export_enabled{false};

bool ExportAllowed(Napi::Env env) {
  if (g_export_enabled.load()) return true;
  ThrowError(env, code::kInvalidState, "secret export is for tests only (quantum-tunnel/testing)");
  return false;
}

// QUANTUM_TUNNEL_TESTING=1 as the addon loaded: read once, so code that sets process.env later
// cannot turn the test-only hooks on.
std::atomic<bool> g_started_for_testing{false};

// enableSecretExportForTesting() -> boolean: true when QUANTUM_TUNNEL_TESTING=1 allowed it.
Napi::Value EnableSecretExport(const Napi::CallbackInfo& info) {
  bool allowed = g_started_for_testing.load();
  if (allowed) g_export_enabled.store(true);
  return Napi::Boolean::New(info.Env(), allowed);
}

// exportSecretForTesting(secret) -> Buffer copy of a live secret
Napi::Value ExportSecret(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ExportAllowed(env)) return env.Undefined();
  Secret* s = Secret::FromValue(env, info[0], "secret");
  if (s == nullptr) return env.Undefined();
  return CopyToBuffer(env, s->bytes().data(), s->bytes().size());
}

// secretStorageForTesting(secret) -> Buffer copy of the storage even after destroy(), so a test
// can see that destroy() cleansed it.
Napi::Value SecretStorage(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ExportAllowed(env)) return env.Undefined();
  Secret* s = Secret::FromValueEvenIfDestroyed(env, info[0], "secret");
  if (s == nullptr) return env.Undefined();
  return CopyToBuffer(env, s->storage()->data(), s->storage()->size());
}

// secretFromBytesForTesting(bytes) -> Secret holding a copy of known bytes (vectors only).
Napi::Value SecretFromBytes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ByteView b;
  if (!GetBytes(env, info[0], "bytes", &b)) return env.Undefined();
  auto s = std::make_unique<SecretBytes>(b.size);
  std::copy(b.data, b.data + b.size, s->data());
  return Secret::Wrap(env, std::move(s));
}

// exportPrivateKeyForTesting(privateKey) -> Buffer (X25519 scalar or ML-KEM expanded dk)
Napi::Value ExportPrivateKey(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ExportAllowed(env)) return env.Undefined();
  if (!info[1].IsNumber()) {
    ThrowInvalidArgument(env, "kind must be a number");
    return env.Undefined();
  }
  auto kind = static_cast<KeyKind>(info[1].As<Napi::Number>().Int32Value());
  PrivateKey* k = PrivateKey::FromValue(env, info[0], kind, "privateKey");
  if (k == nullptr) return env.Undefined();
  size_t len = 0;
  if (EVP_PKEY_get_octet_string_param(k->pkey(), OSSL_PKEY_PARAM_PRIV_KEY, nullptr, 0, &len) != 1) {
    ThrowError(env, code::kCryptoFailure, "cannot export the private key");
    return env.Undefined();
  }
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, len);
  if (EVP_PKEY_get_octet_string_param(k->pkey(), OSSL_PKEY_PARAM_PRIV_KEY, out.Data(), len, &len) != 1) {
    ThrowError(env, code::kCryptoFailure, "cannot export the private key");
    return env.Undefined();
  }
  return out;
}

}  // namespace

bool TestHooksEnabled(Napi::Env env) { return ExportAllowed(env); }

bool StartedForTesting() { return g_started_for_testing.load(); }

void InitTesting(Napi::Env env, Napi::Object exports) {
  // NOLINTNEXTLINE(concurrency-mt-unsafe): addon initialisation, on the JS thread, where any setenv of process.env happens too
  const char* flag = std::getenv("QUANTUM_TUNNEL_TESTING");
  g_started_for_testing.store(flag != nullptr && std::strcmp(flag, "1") == 0);
  exports.Set("enableSecretExportForTesting", Napi::Function::New<EnableSecretExport>(env));
  exports.Set("exportSecretForTesting", Napi::Function::New<ExportSecret>(env));
  exports.Set("secretStorageForTesting", Napi::Function::New<SecretStorage>(env));
  exports.Set("secretFromBytesForTesting", Napi::Function::New<SecretFromBytes>(env));
  exports.Set("exportPrivateKeyForTesting", Napi::Function::New<ExportPrivateKey>(env));
}

}  // namespace qt
