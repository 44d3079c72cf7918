// Protocol v2's X25519 + ML-KEM hybrid key exchange, one call per side's step (standard mode).
#pragma once
#include <napi.h>

namespace qt {
void InitHybrid(Napi::Env env, Napi::Object exports);
}
