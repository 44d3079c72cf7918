// ecdhDerive's peer key: a P-384 point from the peer (SP 800-56A rev. 3 §5.6.2.3.3 full
// public-key validation in ImportPeerKey) and the key agreement with a fixed key pair. The unit is
// included so its internal functions are reachable unchanged.
//
// Input: the peer's public key (the wrapper takes exactly 97 bytes; other lengths stop here).
#include "../ecdh.cc"

#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace qt;
  if (size != kPublicKeySize) return -1;
  LibraryContext* lc = qt_fuzz::Context();
  static EVP_PKEY* const ours = [&] {
    OpStatus st;
    EVP_PKEY* k = Generate(lc, &st);
    if (k == nullptr) std::abort();
    return k;
  }();
  uint8_t peer_copy[kPublicKeySize];  // the wrapper's snapshot
  std::memcpy(peer_copy, data, kPublicKeySize);
  Pkey peer(ImportPeerKey(lc, peer_copy), EVP_PKEY_free);
  if (peer) {
    PkeyCtx ctx = ContextFor(lc, ours);
    uint8_t z[kFieldSize];
    size_t len = kFieldSize;
    // A peer key that passed validation always gives a shared secret.
    if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1 || EVP_PKEY_derive_set_peer_ex(ctx.get(), peer.get(), 0) != 1 ||
        EVP_PKEY_derive(ctx.get(), z, &len) != 1 || len != kFieldSize) {
      std::abort();
    }
  }
  ERR_clear_error();
  return 0;
}
