// AEAD contexts (AES-256-GCM, ChaCha20-Poly1305; 12-byte nonce, 16-byte tag). One context per
// key, created once and reused; seal/open write into caller buffers, and the batch forms process
// many records per call so bulk traffic does not pay a JS-to-native crossing per record.
#pragma once
#include <napi.h>

namespace qt {
void InitAead(Napi::Env env, Napi::Object exports);
}
