// HKDF (RFC 5869; SP 800-56C rev. 2 two-step KDF, extract and expand separately) and HMAC
// (FIPS 198-1) with SHA-256 or SHA-384, through the active library context's EVP_KDF "HKDF" and
// EVP_MAC "HMAC". Keys and derived keys are Secret handles; only MAC outputs are bytes.
#pragma once
#include <napi.h>

namespace qt {
void InitHkdf(Napi::Env env, Napi::Object exports);
}
