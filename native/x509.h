// X.509 certificates through the addon's own OpenSSL: parsing (PEM bundles or DER) into
// Certificate handles, chain verification against trusted CAs (time, DNS name or IP address,
// server/client purpose, CRLs) with typed errors, and issuing certificates and CRLs signed with
// ML-DSA-87 or P-384 keys (tests and a future CA command).
#pragma once
#include <napi.h>

namespace qt {
// Returns the Certificate class (its constructor goes into AddonData).
Napi::Function InitX509(Napi::Env env, Napi::Object exports);
}
