// Key files: private keys as PKCS#8 PEM (optionally encrypted with a passphrase: PBES2 with
// PBKDF2-HMAC-SHA-256 and AES-256-CBC) and public keys as SPKI (PEM or DER), for the key kinds of
// private_key.h. Exporting a private key as PEM is the one sanctioned way key material leaves
// native memory. Also the SHA-256 fingerprint of a public key's SPKI DER, and the SPKI helpers the
// certificate unit shares.
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

void InitPem(Napi::Env env, Napi::Object exports);

// A public key of one of our kinds from SPKI DER (the whole input), checked as the kind requires
// (P-384: full public-key validation; ML-KEM: the FIPS 203 modulus check). nullptr with the
// failure in *st (ERR_QT_INVALID_KEY, or ERR_QT_UNSUPPORTED_ALGORITHM for another algorithm).
EVP_PKEY* DecodeSpki(LibraryContext* lc, const uint8_t* der, size_t len, KeyKind* kind, OpStatus* st);

// A private key from the first PEM block of `pem` (the whole input, a private copy): "PRIVATE KEY",
// or "ENCRYPTED PRIVATE KEY" decrypted with `pass` (nullptr: none given), checked as DecodeSpki
// checks public keys. nullptr with the failure in *st. keyImportPrivatePem's parsing.
EVP_PKEY* DecodePrivateKeyPem(LibraryContext* lc, const uint8_t* pem, size_t len, const SecretBytes* pass,
                              KeyKind* kind, OpStatus* st);

// A public key from SPKI as PEM ("PUBLIC KEY", the first block) or DER (a private copy).
// keyImportPublic's parsing.
EVP_PKEY* DecodePublicKeyFile(LibraryContext* lc, const uint8_t* in, size_t len, KeyKind* kind, OpStatus* st);

// SPKI DER of a key's public half.
bool EncodeSpki(EVP_PKEY* pkey, std::vector<uint8_t>* out);

// SHA-256 from the library context's provider.
bool Sha256(LibraryContext* lc, const uint8_t* data, size_t len, uint8_t out[32]);

}  // namespace qt
