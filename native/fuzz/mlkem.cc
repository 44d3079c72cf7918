// ML-KEM: an encapsulation key from the peer (mlkemImportPublicKey, mlkemEncapsulate with bytes;
// the FIPS 203 §7.2 modulus check) and encapsulation to it, or a ciphertext decapsulated with a
// fixed key pair (mlkemDecapsulate: any length reaches the function, which checks it).
//
// Input: one selector byte (bit 0: ML-KEM-768, else ML-KEM-1024; bit 1: decapsulate, else
// import and encapsulate), then the key or ciphertext.
#include <openssl/evp.h>

#include <vector>

#include "../mlkem.h"
#include "../secret.h"
#include "fuzz_common.h"

namespace {

// A key pair from a fixed seed (d || z), so decapsulation results are reproducible.
EVP_PKEY* FixedKey(qt::LibraryContext* lc, qt::KeyKind kind) {
  uint8_t seed[64];
  for (size_t i = 0; i < sizeof seed; i++) seed[i] = static_cast<uint8_t>(i);
  qt::OpStatus st;
  EVP_PKEY* key = qt::MlKemGenerate(lc, kind, seed, &st);
  if (key == nullptr) std::abort();
  return key;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  qt_fuzz::Input in(data, size);
  const uint8_t selector = in.Byte();
  const qt::KeyKind kind = (selector & 1) != 0 ? qt::KeyKind::kMlKem768 : qt::KeyKind::kMlKem1024;
  qt::LibraryContext* lc = qt_fuzz::Context();
  // The wrappers hand the functions private copies of the bytes.
  std::vector<uint8_t> bytes(in.rest(), in.rest() + in.left());
  qt::OpStatus st;
  qt::SecretBytes ss(32);
  if ((selector & 2) != 0) {
    static EVP_PKEY* const k1024 = FixedKey(lc, qt::KeyKind::kMlKem1024);
    static EVP_PKEY* const k768 = FixedKey(lc, qt::KeyKind::kMlKem768);
    const bool ok = qt::MlKemDecapsulate(lc, kind == qt::KeyKind::kMlKem768 ? k768 : k1024, kind, bytes.data(),
                                         bytes.size(), &ss, &st);
    if (ok == st.failed()) std::abort();
  } else {
    EVP_PKEY* pub = qt::MlKemImportPublicKey(lc, kind, bytes.data(), bytes.size(), &st);
    if (pub != nullptr) {
      std::vector<uint8_t> ct;
      if (!qt::MlKemEncapsulate(lc, kind, pub, nullptr, &ct, &ss, &st)) std::abort();  // a key we accepted works
      EVP_PKEY_free(pub);
    } else if (!st.failed()) {
      std::abort();
    }
  }
  ERR_clear_error();
  return 0;
}
