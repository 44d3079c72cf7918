// ML-KEM (FIPS 203) through the library context's provider: ML-KEM-1024 for the protocol,
// ML-KEM-768 for a later suite.
#pragma once
#include <napi.h>

namespace qt {
void InitMlKem(Napi::Env env, Napi::Object exports);
}
