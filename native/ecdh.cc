#include "ecdh.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <openssl/params.h>

#include <cstring>
#include <memory>

#include "addon_data.h"
#include "async_job.h"
#include "args.h"
#include "bytes.h"
#include "errors.h"
#include "private_key.h"
#include "secret.h"

namespace qt {

namespace {

constexpr size_t kFieldSize = 48;                      // coordinates, scalars and Z
constexpr size_t kPublicKeySize = 1 + 2 * kFieldSize;  // SEC1 uncompressed: 0x04 || X || Y
constexpr uint8_t kUncompressed = 0x04;
constexpr const char* kNotApproved = "ERR_QT_FIPS_NOT_APPROVED";

using PkeyCtx = std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)>;
using Pkey = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

// An approved service in FIPS mode: every fetch uses the mode's default properties (fips=yes
// there), never X25519's fips=no query.
PkeyCtx EcContext(LibraryContext* lc) {
  return PkeyCtx(EVP_PKEY_CTX_new_from_name(lc->ctx(), "EC", lc->propq()), EVP_PKEY_CTX_free);
}

PkeyCtx ContextFor(LibraryContext* lc, EVP_PKEY* pkey) {
  return PkeyCtx(EVP_PKEY_CTX_new_from_pkey(lc->ctx(), pkey, lc->propq()), EVP_PKEY_CTX_free);
}

// True when the FIPS provider's approval indicator (OpenSSL 3.4+) says the operation `ctx` just
// ran was not approved. Depending on the module configuration (fipsinstall's check options) the
// provider either fails such an operation or runs it and says so only here; we refuse both.
// Providers without indicators report nothing.
bool ReportedUnapproved(EVP_PKEY_CTX* ctx) {
  int approved = 1;
  OSSL_PARAM params[] = {OSSL_PARAM_construct_int(OSSL_ALG_PARAM_FIPS_APPROVED_INDICATOR, &approved),
                         OSSL_PARAM_construct_end()};
  const bool reported = EVP_PKEY_CTX_get_params(ctx, params) == 1 && OSSL_PARAM_modified(&params[0]) == 1;
  ERR_clear_error();
  return reported && approved != 1;
}

// The public key as the one encoding this unit reads or writes (uncompressed SEC1).
bool EncodePublicKey(EVP_PKEY* pkey, uint8_t out[kPublicKeySize]) {
  size_t len = 0;
  return EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, out, kPublicKeySize, &len) == 1 &&
         len == kPublicKeySize && out[0] == kUncompressed;
}

// SP 800-56A rev. 3 §5.6.2.1.4 (b) pairwise consistency, run inside the provider: Q = d·G is
// recomputed and compared, after the full public-key check and the private-key range check
// (1 <= d <= n-1) of §5.6.2.1.2.
bool PairwiseConsistent(LibraryContext* lc, EVP_PKEY* pkey) {
  PkeyCtx ctx = ContextFor(lc, pkey);
  return ctx && EVP_PKEY_pairwise_check(ctx.get()) == 1;
}

// The peer's public key after SP 800-56A rev. 3 §5.6.2.3.3 full public-key validation, or
// nullptr. `bytes` is kPublicKeySize long and private to us (OpenSSL reads it more than once).
EVP_PKEY* ImportPeerKey(LibraryContext* lc, uint8_t* bytes) {
  // One encoding on the wire: OpenSSL would also parse the hybrid forms 0x06/0x07 of this length.
  if (bytes[0] != kUncompressed) return nullptr;
  char group[] = "P-384";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
                         OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, bytes, kPublicKeySize),
                         OSSL_PARAM_construct_end()};
  PkeyCtx ctx = EcContext(lc);
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params) != 1) {
    return nullptr;
  }
  Pkey peer(raw, EVP_PKEY_free);
  // Parsing already refuses coordinates >= p and points off the curve; the check runs all of
  // §5.6.2.3.3 (not the point at infinity, coordinates in [0, p-1], on the curve; n·Q = O holds
  // for every curve point because P-384's cofactor is 1).
  PkeyCtx check = ContextFor(lc, peer.get());
  if (!check || EVP_PKEY_public_check(check.get()) != 1) return nullptr;
  return peer.release();
}

// A new P-384 key pair in `lc`, on any thread (one body for the sync call and the threadpool job).
EVP_PKEY* Generate(LibraryContext* lc, OpStatus* st) {
  PkeyCtx ctx = EcContext(lc);
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 || EVP_PKEY_CTX_set_group_name(ctx.get(), "P-384") != 1 ||
      EVP_PKEY_generate(ctx.get(), &raw) != 1) {
    st->Fail(code::kCryptoFailure, "P-384 key generation failed");
    return nullptr;
  }
  // In FIPS mode the provider has run the FIPS 140-3 pairwise consistency test inside
  // EVP_PKEY_generate (ec_generate_key: an ECDSA sign/verify and a known-answer test of Q = d·G);
  // a failure is the provider's error state and fails the generation above.
  if (lc->fips() && ReportedUnapproved(ctx.get())) {
    EVP_PKEY_free(raw);
    st->Fail(kNotApproved, "the FIPS provider reported P-384 key generation as not approved");
    return nullptr;
  }
  return raw;
}

// p384GenerateKeyPair() -> PrivateKey
Napi::Value GenerateKeyPair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LibraryContext* lc = Operational(env);
  if (lc == nullptr) return env.Undefined();
  OpStatus st;
  EVP_PKEY* pkey = Generate(lc, &st);
  if (st.ThrowIfFailed(env)) return env.Undefined();
  return PrivateKey::Wrap(env, pkey, KeyKind::kP384, lc);
}

class GenerateJob : public PromiseJob {
 public:
  explicit GenerateJob(LibraryContext* lc) : lc_(lc) {}
  ~GenerateJob() override { EVP_PKEY_free(pkey_); }
  GenerateJob(const GenerateJob&) = delete;  // owns what the destructor frees
  GenerateJob& operator=(const GenerateJob&) = delete;

 private:
  void Run(OpStatus* st) override { pkey_ = Generate(lc_, st); }
  Napi::Value Result(Napi::Env env) override {
    EVP_PKEY* p = pkey_;
    pkey_ = nullptr;
    return PrivateKey::Wrap(env, p, KeyKind::kP384, lc_);
  }
  LibraryContext* lc_;
  EVP_PKEY* pkey_ = nullptr;
};

// p384GenerateKeyPairAsync() -> Promise<PrivateKey>: the same on the libuv threadpool.
Napi::Value GenerateKeyPairAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LibraryContext* lc = Operational(env);
  if (lc == nullptr) return env.Undefined();
  return QueueJob<GenerateJob>(env, lc);
}

// p384PublicKey(privateKey) -> Buffer (97 bytes, 0x04 || X || Y)
Napi::Value PublicKeyOf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireOperational(env)) return env.Undefined();
  PrivateKey* key = PrivateKey::FromValue(env, info[0], KeyKind::kP384, "privateKey");
  if (key == nullptr) return env.Undefined();
  uint8_t encoded[kPublicKeySize];
  if (!EncodePublicKey(key->pkey(), encoded)) {
    ThrowError(env, code::kCryptoFailure, "cannot export the P-384 public key");
    return env.Undefined();
  }
  return CopyToBuffer(env, encoded, kPublicKeySize);
}

// p384Derive(privateKey, peerPublicKey) -> Secret: Z, the x-coordinate of d·Q (SP 800-56A rev. 3
// §5.7.1.2 ECC CDH; the cofactor is 1, so this is also the cofactor variant).
Napi::Value Derive(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireOperational(env)) return env.Undefined();
  PrivateKey* key = PrivateKey::FromValue(env, info[0], KeyKind::kP384, "privateKey");
  ByteView peer_bytes;
  if (key == nullptr || !GetBytes(env, info[1], "peerPublicKey", &peer_bytes)) return env.Undefined();
  if (peer_bytes.size != kPublicKeySize) {
    ThrowError(env, code::kInvalidKey, "P-384 peer public key must be an uncompressed point of 97 bytes");
    return env.Undefined();
  }
  // A snapshot: OpenSSL decodes the point and the check reads it again.
  uint8_t peer_copy[kPublicKeySize];
  std::memcpy(peer_copy, peer_bytes.data, kPublicKeySize);
  LibraryContext* lc = key->context();
  Pkey peer(ImportPeerKey(lc, peer_copy), EVP_PKEY_free);
  if (!peer) {
    ThrowError(env, code::kInvalidKey, "P-384 peer public key is invalid (not an uncompressed point on the curve)");
    return env.Undefined();
  }
  PkeyCtx ctx = ContextFor(lc, key->pkey());
  // Validated in full above, so OpenSSL need not check the peer a second time.
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1 || EVP_PKEY_derive_set_peer_ex(ctx.get(), peer.get(), 0) != 1) {
    ThrowError(env, code::kCryptoFailure, "P-384 key agreement could not start");
    return env.Undefined();
  }
  auto shared = std::make_unique<SecretBytes>(kFieldSize);
  size_t len = kFieldSize;
  if (!shared->ok() || EVP_PKEY_derive(ctx.get(), shared->data(), &len) != 1 || len != kFieldSize) {
    ThrowError(env, code::kCryptoFailure, "P-384 key agreement failed");
    return env.Undefined();
  }
  if (lc->fips() && ReportedUnapproved(ctx.get())) {
    ThrowError(env, kNotApproved, "the FIPS provider reported this P-384 key agreement as not approved");
    return env.Undefined();
  }
  return Secret::Wrap(env, std::move(shared));
}

// d·G as an uncompressed point. Only for imported test scalars: EVP_PKEY_fromdata does not derive
// a public key from a private one, and the vectors check it (QIUT). This arithmetic runs in
// libcrypto, outside the provider; the imported pair is then checked inside it.
bool PublicPointOf(LibraryContext* lc, const BIGNUM* d, uint8_t out[kPublicKeySize]) {
  std::unique_ptr<EC_GROUP, decltype(&EC_GROUP_free)> group(
      EC_GROUP_new_by_curve_name_ex(lc->ctx(), lc->propq(), NID_secp384r1), EC_GROUP_free);
  std::unique_ptr<EC_POINT, decltype(&EC_POINT_free)> q(group ? EC_POINT_new(group.get()) : nullptr, EC_POINT_free);
  std::unique_ptr<BN_CTX, decltype(&BN_CTX_free)> bn(BN_CTX_secure_new_ex(lc->ctx()), BN_CTX_free);
  return q && bn && EC_POINT_mul(group.get(), q.get(), d, nullptr, nullptr, bn.get()) == 1 &&
         EC_POINT_point2oct(group.get(), q.get(), POINT_CONVERSION_UNCOMPRESSED, out, kPublicKeySize, bn.get()) ==
             kPublicKeySize;
}

// A key pair from a 48-byte big-endian scalar, checked like a generated one; nullptr if d is not
// in [1, n-1].
EVP_PKEY* ImportPrivateKey(LibraryContext* lc, const uint8_t* scalar) {
  std::unique_ptr<BIGNUM, decltype(&BN_clear_free)> d(BN_secure_new(), BN_clear_free);
  uint8_t pub[kPublicKeySize];
  if (!d || BN_bin2bn(scalar, kFieldSize, d.get()) == nullptr || !PublicPointOf(lc, d.get(), pub)) return nullptr;
  std::unique_ptr<OSSL_PARAM_BLD, decltype(&OSSL_PARAM_BLD_free)> bld(OSSL_PARAM_BLD_new(), OSSL_PARAM_BLD_free);
  if (!bld || OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "P-384", 0) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_PRIV_KEY, d.get()) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, pub, kPublicKeySize) != 1) {
    return nullptr;
  }
  // d is a secure BIGNUM, so the builder puts it in the block OSSL_PARAM_free cleanses.
  std::unique_ptr<OSSL_PARAM, decltype(&OSSL_PARAM_free)> params(OSSL_PARAM_BLD_to_param(bld.get()), OSSL_PARAM_free);
  PkeyCtx ctx = EcContext(lc);
  EVP_PKEY* raw = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_KEYPAIR, params.get()) != 1) {
    return nullptr;
  }
  Pkey pkey(raw, EVP_PKEY_free);
  return PairwiseConsistent(lc, pkey.get()) ? pkey.release() : nullptr;
}

// p384PrivateKeyFromBytes(d) -> PrivateKey. Test-vector import of a private scalar (CAVS ECC CDH
// dIUT); reached only through quantum-tunnel/testing.
Napi::Value PrivateKeyFromBytes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LibraryContext* lc = Operational(env);
  if (lc == nullptr) return env.Undefined();
  ByteView raw;
  std::unique_ptr<SecretBytes> scalar;  // key material: OpenSSL sees a private copy
  if (!GetBytesOfSize(env, info[0], "privateKey", kFieldSize, &raw) || !(scalar = CopyOf(env, raw))) {
    return env.Undefined();
  }
  EVP_PKEY* pkey = ImportPrivateKey(lc, scalar->data());
  if (pkey == nullptr) {
    ThrowError(env, code::kInvalidKey, "P-384 private key is invalid (it must be from 1 to n-1)");
    return env.Undefined();
  }
  return PrivateKey::Wrap(env, pkey, KeyKind::kP384, lc);
}

}  // namespace

void InitEcdh(Napi::Env env, Napi::Object exports) {
  exports.Set("p384GenerateKeyPair", Napi::Function::New<GenerateKeyPair>(env));
  exports.Set("p384GenerateKeyPairAsync", Napi::Function::New<GenerateKeyPairAsync>(env));
  exports.Set("p384PublicKey", Napi::Function::New<PublicKeyOf>(env));
  exports.Set("p384Derive", Napi::Function::New<Derive>(env));
  exports.Set("p384PrivateKeyFromBytes", Napi::Function::New<PrivateKeyFromBytes>(env));
  Napi::Object sizes = Napi::Object::New(env);
  sizes.Set("publicKey", static_cast<double>(kPublicKeySize));
  sizes.Set("privateKey", static_cast<double>(kFieldSize));
  sizes.Set("sharedSecret", static_cast<double>(kFieldSize));
  exports.Set("p384Sizes", sizes);
}

}  // namespace qt
