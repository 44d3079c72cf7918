// X25519 (RFC 7748): the classical half of CH-KEM and of v2's X25519 groups.
#pragma once
#include <napi.h>
#include <openssl/evp.h>

#include <cstdint>

#include "async_job.h"
#include "library_context.h"

namespace qt {
void InitX25519(Napi::Env env, Napi::Object exports);

// The operations themselves, for other native units (hybrid.cc); any thread, no JS values.
// A key pair, or nullptr with *st set.
EVP_PKEY* X25519Generate(LibraryContext* lc, OpStatus* st);
// z (32 bytes) = X25519(ours, peer_bytes (32 bytes)); an invalid peer key or an all-zero result
// (a low-order point) fails, with z wiped.
bool X25519Derive(LibraryContext* lc, EVP_PKEY* ours, const uint8_t* peer_bytes, uint8_t* z, OpStatus* st);
}  // namespace qt
