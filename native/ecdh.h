// ECDH over NIST P-384 (SP 800-56A rev. 3 ECC CDH): the classical half of the approved hybrid
// group P-384 + ML-KEM-1024 that protocol v2 uses.
#pragma once
#include <napi.h>

namespace qt {
void InitEcdh(Napi::Env env, Napi::Object exports);
}
