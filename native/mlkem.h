// ML-KEM (FIPS 203) through the library context's provider: ML-KEM-1024 for the protocol,
// ML-KEM-768 for a later suite.
#pragma once
#include <napi.h>
#include <openssl/evp.h>

#include <cstdint>
#include <vector>

#include "async_job.h"
#include "library_context.h"
#include "private_key.h"
#include "secret.h"

namespace qt {
void InitMlKem(Napi::Env env, Napi::Object exports);

// The operations themselves, for other native units (hybrid.cc); any thread, no JS values.
// A key pair (`seed`: d || z, 64 bytes, for known answers; else nullptr), or nullptr with *st set.
EVP_PKEY* MlKemGenerate(LibraryContext* lc, KeyKind kind, const uint8_t* seed, OpStatus* st);
// An encapsulation key parsed and checked (FIPS 203 §7.2) from a private copy of `ek`.
EVP_PKEY* MlKemImportPublicKey(LibraryContext* lc, KeyKind kind, const uint8_t* ek, size_t len, OpStatus* st);
// ct (resized to the ciphertext size) and the 32-byte shared secret ss; `coins` (m, 32 bytes) for known answers.
bool MlKemEncapsulate(LibraryContext* lc, KeyKind kind, EVP_PKEY* pub, const uint8_t* coins, std::vector<uint8_t>* ct,
                      SecretBytes* ss, OpStatus* st);
// The 32-byte shared secret of `ct` (which must have the ciphertext size) into ss.
bool MlKemDecapsulate(LibraryContext* lc, EVP_PKEY* priv, KeyKind kind, const uint8_t* ct, size_t ct_len,
                      SecretBytes* ss, OpStatus* st);
}  // namespace qt
