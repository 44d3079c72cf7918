// ML-DSA-87 (FIPS 204) signatures through the library context's provider: key generation (random
// or from a seed), pure ML-DSA signing with an optional context string (hedged by default), and
// verification. Private keys are PrivateKey handles; public keys are bytes or PublicKey handles.
#pragma once
#include <napi.h>

namespace qt {
void InitMlDsa(Napi::Env env, Napi::Object exports);
}
