// keyImportPrivatePem: a PKCS#8 PEM block, plain or encrypted (PBES2), with or without a
// passphrase; the decrypted PrivateKeyInfo is decoded and checked per kind.
//
// Input: one flag byte (bit 0: pass the passphrase "fuzz passphrase", as the seeds' encrypted
// files use), then the PEM text. A file may ask for up to 10^7 PBKDF2 iterations (the limit the
// library enforces), which is slow under the sanitizers but not a failure.
#include <openssl/evp.h>

#include <cstring>
#include <memory>
#include <vector>

#include "../pem.h"
#include "../secret.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  qt_fuzz::Input in(data, size);
  const bool with_pass = (in.Byte() & 1) != 0;
  if (in.left() > (1 << 20)) return -1;  // the wrapper refuses more than 1 MiB
  qt::LibraryContext* lc = qt_fuzz::Context();
  static const char kPass[] = "fuzz passphrase";
  std::unique_ptr<qt::SecretBytes> pass;
  if (with_pass) {
    pass = std::make_unique<qt::SecretBytes>(sizeof kPass - 1);
    std::memcpy(pass->data(), kPass, sizeof kPass - 1);
  }
  // The wrapper parses a copy in secure memory; an exact-size heap copy lets ASan see overreads.
  qt::SecretBytes copy(in.left());
  if (in.left() > 0) std::memcpy(copy.data(), in.rest(), in.left());
  qt::OpStatus st;
  qt::KeyKind kind;
  EVP_PKEY* pkey = qt::DecodePrivateKeyPem(lc, copy.data(), copy.size(), pass.get(), &kind, &st);
  if (pkey != nullptr) {
    std::vector<uint8_t> der;
    if (!qt::EncodeSpki(pkey, &der)) std::abort();  // keyPublicKey on the result must work
    EVP_PKEY_free(pkey);
  } else if (!st.failed()) {
    std::abort();
  }
  ERR_clear_error();
  return 0;
}
