// mldsaImportPublicKey / mldsaVerify with public-key bytes: a peer's ML-DSA-87 public key parsed
// (FIPS 204 pkDecode) and a signature checked against it with a context string (the handshake's
// CertificateVerify). The unit is included so its internal functions are reachable unchanged.
//
// Input: pk (2592 bytes), one byte n, a context of min(n, what is left) bytes (255 at most, as
// the wrapper allows), the signature (4627 bytes, or whatever is left when shorter), then the
// message.
#include "../mldsa.cc"

#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace qt;
  qt_fuzz::Input in(data, size);
  const uint8_t* pk = in.Take(kPublicKeySize);
  const size_t pk_len = pk != nullptr ? kPublicKeySize : in.left();
  if (pk == nullptr) pk = in.Take(pk_len);  // a short key: the import refuses its length
  const size_t ctx_len = std::min<size_t>(in.Byte(), in.left());
  const uint8_t* ctx = in.Take(ctx_len);
  const size_t sig_len = std::min(kSignatureSize, in.left());
  const uint8_t* sig = in.Take(sig_len);
  LibraryContext* lc = qt_fuzz::Context();
  ByteView pk_view{const_cast<uint8_t*>(pk), pk_len};
  OpStatus st;
  EVP_PKEY* pub = ImportPublicKey(lc, pk_view, &st);
  if (pub == nullptr) {
    if (!st.failed()) std::abort();
    ERR_clear_error();
    return 0;
  }
  // The job's private copies: the message, the context and the signature.
  std::vector<uint8_t> msg(in.rest(), in.rest() + in.left()), context(ctx, ctx + ctx_len), sig_copy(sig, sig + sig_len);
  SignOptions o;
  o.context = ctx_len > 0 ? context.data() : nullptr;
  o.context_len = ctx_len;
  const int r = Verify(lc, pub, msg.data(), msg.size(), sig_copy.data(), sig_copy.size(), o, &st);
  if (r < 0 && !st.failed()) std::abort();
  EVP_PKEY_free(pub);
  ERR_clear_error();
  return 0;
}
