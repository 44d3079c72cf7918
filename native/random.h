// Random bytes from the library context's DRBG, and constant-time comparisons.
#pragma once
#include <napi.h>

namespace qt {
void InitRandom(Napi::Env env, Napi::Object exports);
}
