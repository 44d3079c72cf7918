// AEAD contexts (AES-256-GCM, ChaCha20-Poly1305; 12-byte nonce, 16-byte tag). One context per
// key, created once and reused; seal/open write into caller buffers, and the batch forms process
// many records per call so bulk traffic does not pay a JS-to-native crossing per record.
#pragma once
#include <napi.h>

#include <cstdint>

namespace qt {
void InitAead(Napi::Env env, Napi::Object exports);
// A new AEAD context for `suite` (one of aeadSuites) with a 32-byte key and, for a record
// context, a 12-byte IV (else nullptr); both are copied. Undefined with an exception pending on
// failure. For native callers that derive the key themselves (hkdfExpandAead).
Napi::Value NewAeadContext(Napi::Env env, int suite, const uint8_t* key, const uint8_t* iv);
}
