// X25519 (RFC 7748): the classical half of CH-KEM.
#pragma once
#include <napi.h>

namespace qt {
void InitX25519(Napi::Env env, Napi::Object exports);
}
