// hybridEncapsulate and hybridDecapsulate (protocol v2's X25519 + ML-KEM key exchange): the
// server's step on a client share (X25519 public key ‖ ML-KEM encapsulation key) and the client's
// step on a server share (X25519 public key ‖ ciphertext) with fixed client keys. The unit is
// included so its internal operations are reachable unchanged.
//
// Input: one selector byte (bit 0: group 0x0103, X25519 + ML-KEM-768, else 0x0101 with
// ML-KEM-1024; bit 1: decapsulate, else encapsulate), then the share (the wrapper takes exactly
// the group's share size; other lengths stop here).
#include "../hybrid.cc"

#include "fuzz_common.h"

namespace {

struct ClientKeys {
  EVP_PKEY* x;
  EVP_PKEY* m;
  std::vector<uint8_t> share;
};

// The client's keys for a group, made once (ML-KEM from a fixed seed).
const ClientKeys& Client(qt::LibraryContext* lc, const qt::Group* g) {
  using namespace qt;
  static ClientKeys keys[2];
  ClientKeys& k = keys[g == &kGroups[0] ? 0 : 1];
  if (k.x == nullptr) {
    OpStatus st;
    uint8_t seed[64];
    for (size_t i = 0; i < sizeof seed; i++) seed[i] = static_cast<uint8_t>(0xa0 + i);
    k.x = X25519Generate(lc, &st);
    k.m = MlKemGenerate(lc, g->kem, seed, &st);
    k.share.resize(kX25519Size + g->ek_size);
    if (k.x == nullptr || k.m == nullptr || !RawPublicKey(k.x, k.share.data(), kX25519Size, &st) ||
        !RawPublicKey(k.m, k.share.data() + kX25519Size, g->ek_size, &st)) {
      std::abort();
    }
  }
  return k;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace qt;
  qt_fuzz::Input in(data, size);
  const uint8_t selector = in.Byte();
  const Group* g = &kGroups[(selector & 1) != 0 ? 1 : 0];
  const bool decapsulate = (selector & 2) != 0;
  if (in.left() != kX25519Size + (decapsulate ? g->ct_size : g->ek_size)) return -1;
  LibraryContext* lc = qt_fuzz::Context();
  static const uint8_t kLabel[] = "quantum-tunnel fuzz";
  ByteView share{const_cast<uint8_t*>(in.rest()), in.left()};
  ByteView label{const_cast<uint8_t*>(kLabel), sizeof kLabel - 1};
  OpStatus st;
  if (decapsulate) {
    const ClientKeys& k = Client(lc, g);
    ByteView client{const_cast<uint8_t*>(k.share.data()), k.share.size()};
    DecapsulateOp op(lc, g, 2, k.x, k.m, client, share, label);
    op.Run(&st);
  } else {
    EncapsulateOp op(lc, g, 2, share, label);
    op.Run(&st);
  }
  ERR_clear_error();
  return 0;
}
