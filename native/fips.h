// FIPS mode: the FIPS library context, the module error state, the provider's self-test, and the
// HMAC-SHA256 module integrity check. Policy (what runs when, the indicator) lives in lib/fips/.
#pragma once
#include <napi.h>

namespace qt {
void InitFips(Napi::Env env, Napi::Object exports);
}
