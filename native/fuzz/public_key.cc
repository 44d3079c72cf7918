// keyImportPublic: SPKI as PEM ("PUBLIC KEY") or DER, then the per-kind checks (P-384 full
// public-key validation, the ML-KEM modulus check) and, for a key that parses, its re-encoding
// and fingerprint (keySpki, keySpkiFingerprint).
#include <openssl/evp.h>

#include <vector>

#include "../pem.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (1 << 20)) return -1;  // the wrapper refuses more than 1 MiB
  qt::LibraryContext* lc = qt_fuzz::Context();
  std::vector<uint8_t> copy(data, data + size);  // as the wrapper: a private snapshot
  qt::OpStatus st;
  qt::KeyKind kind;
  EVP_PKEY* pkey = qt::DecodePublicKeyFile(lc, copy.data(), copy.size(), &kind, &st);
  if (pkey != nullptr) {
    std::vector<uint8_t> der;
    uint8_t digest[32];
    if (!qt::EncodeSpki(pkey, &der) || !qt::Sha256(lc, der.data(), der.size(), digest)) std::abort();
    // What we accepted must read back as the same kind.
    qt::OpStatus again;
    qt::KeyKind kind2;
    EVP_PKEY* round = qt::DecodeSpki(lc, der.data(), der.size(), &kind2, &again);
    if (round == nullptr || kind2 != kind) std::abort();
    EVP_PKEY_free(round);
    EVP_PKEY_free(pkey);
  } else if (!st.failed()) {
    std::abort();  // no key and no reason
  }
  ERR_clear_error();
  return 0;
}
