#include "pem.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/encoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/proverr.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>

#include "addon_data.h"
#include "args.h"
#include "bytes.h"
#include "errors.h"
#include "secret.h"

namespace qt {

namespace {

constexpr const char* kBadPassphrase = "ERR_QT_BAD_PASSPHRASE";
constexpr const char* kNotApproved = "ERR_QT_FIPS_NOT_APPROVED";
constexpr size_t kMaxPassphrase = 1024;
constexpr uint64_t kMinIterations = 1000;  // SP 800-132 (and the FIPS provider's lower bound)
constexpr uint64_t kMaxIterations = 10000000;  // encrypting, and the most a file may ask for
constexpr int kSaltSize = 16;  // 128 bits, the FIPS provider's lower bound
constexpr size_t kMaxPemInput = 1 << 20;
constexpr size_t kX25519Size = 32;
constexpr size_t kP384FieldSize = 48;

using Pkey = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using PkeyCtx = std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)>;
using Bio = std::unique_ptr<BIO, decltype(&BIO_free)>;
using P8Info = std::unique_ptr<PKCS8_PRIV_KEY_INFO, decltype(&PKCS8_PRIV_KEY_INFO_free)>;
using Sig = std::unique_ptr<X509_SIG, decltype(&X509_SIG_free)>;
using XPubkey = std::unique_ptr<X509_PUBKEY, decltype(&X509_PUBKEY_free)>;

// One PEM block read from a private copy. Everything is allocated from OpenSSL's secure heap (or
// cleansed on free when there is none), since a private key's base64 and DER pass through here.
struct PemBlock {
  char* name = nullptr;
  char* header = nullptr;
  unsigned char* data = nullptr;
  long len = 0;
  ~PemBlock() {
    OPENSSL_secure_free(name);
    OPENSSL_secure_free(header);
    OPENSSL_secure_clear_free(data, static_cast<size_t>(len));
  }
  PemBlock() = default;
  PemBlock(const PemBlock&) = delete;  // owns what the destructor frees
  PemBlock& operator=(const PemBlock&) = delete;
  bool Read(BIO* bio) { return PEM_read_bio_ex(bio, &name, &header, &data, &len, PEM_FLAG_SECURE) == 1; }
};

// A PrivateKey or a PublicKey of any kind.
EVP_PKEY* AnyKeyArg(Napi::Env env, Napi::Value v, const char* what, KeyKind* kind, LibraryContext** lc) {
  if (PrivateKey::Is(env, v)) {
    PrivateKey* k = PrivateKey::FromValueAny(env, v, what);
    if (k == nullptr) return nullptr;
    *kind = k->kind();
    *lc = k->context();
    return k->pkey();
  }
  if (PublicKey::Is(env, v)) {
    PublicKey* k = PublicKey::FromValueAny(env, v, what);
    if (k == nullptr) return nullptr;
    *kind = k->kind();
    *lc = k->context();
    return k->pkey();
  }
  ThrowInvalidArgument(env, std::string(what) + " must be a PrivateKey or PublicKey handle");
  return nullptr;
}

// The passphrase argument, copied (and cleansed when done). false with an exception pending.
bool PassphraseArg(Napi::Env env, Napi::Value v, std::unique_ptr<SecretBytes>* out) {
  if (v.IsUndefined()) return true;
  ByteView pass;
  if (!GetBytes(env, v, "passphrase", &pass)) return false;
  if (pass.size == 0 || pass.size > kMaxPassphrase) {
    ThrowInvalidArgument(env, "passphrase must be 1 to 1024 bytes");
    return false;
  }
  *out = CopyOf(env, pass);
  return *out != nullptr;
}

// The checks a key read from a file gets before it becomes a handle.
bool CheckImported(LibraryContext* lc, EVP_PKEY* pkey, KeyKind kind, bool is_private) {
  if (kind != KeyKind::kP384) return true;  // the other kinds are checked as OpenSSL decodes them
  PkeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(lc->ctx(), pkey, lc->propq()), EVP_PKEY_CTX_free);
  // SP 800-56A rev. 3 §5.6.2.3.3 for a public key; the range and pairwise checks for a pair.
  return ctx && (is_private ? EVP_PKEY_pairwise_check(ctx.get()) : EVP_PKEY_public_check(ctx.get())) == 1;
}

// The end of every import: a key was decoded (else `malformed`), it is of a kind we hold, and it
// passes CheckImported. Returns the key (owned by the caller) or nullptr with `st` failed.
EVP_PKEY* FinishImport(LibraryContext* lc, Pkey pkey, bool is_private, const char* malformed, KeyKind* kind,
                       OpStatus* st) {
  const char* which = is_private ? "private" : "public";
  if (!pkey) {
    st->Fail(code::kInvalidKey, malformed);
    return nullptr;
  }
  if (!KindOfKey(pkey.get(), kind)) {
    st->Fail(code::kUnsupported, std::string("the ") + which + " key is not ML-DSA-87, ML-KEM-1024, ML-KEM-768, X25519 or P-384");
    return nullptr;
  }
  if (!CheckImported(lc, pkey.get(), *kind, is_private)) {
    st->Fail(code::kInvalidKey, std::string("the ") + KeyKindName(*kind) + " " + which + " key is invalid");
    return nullptr;
  }
  return pkey.release();
}

// The private key in a decoded PKCS#8 PrivateKeyInfo. X25519 is outside the approved services in
// FIPS mode: its key management is fetched with the context's X25519 query, so its keys are made
// from the raw bytes (the base provider's decoders are fips=yes and would not find it); the same
// for public keys in DecodeSpki.
EVP_PKEY* DecodePkcs8(LibraryContext* lc, const PKCS8_PRIV_KEY_INFO* p8, KeyKind* kind, OpStatus* st) {
  const ASN1_OBJECT* oid = nullptr;
  const unsigned char* pk = nullptr;
  int pk_len = 0;
  const X509_ALGOR* alg = nullptr;
  if (PKCS8_pkey_get0(&oid, &pk, &pk_len, &alg, p8) != 1) {
    st->Fail(code::kInvalidKey, "the private key is malformed");
    return nullptr;
  }
  Pkey pkey(nullptr, EVP_PKEY_free);
  if (OBJ_obj2nid(oid) == NID_X25519) {
    // RFC 8410: CurvePrivateKey ::= OCTET STRING, inside the privateKey OCTET STRING.
    const unsigned char* p = pk;
    ASN1_OCTET_STRING* raw = d2i_ASN1_OCTET_STRING(nullptr, &p, pk_len);
    if (raw != nullptr && p == pk + pk_len && ASN1_STRING_length(raw) == static_cast<int>(kX25519Size)) {
      pkey.reset(EVP_PKEY_new_raw_private_key_ex(lc->ctx(), "X25519", lc->x25519_propq(), ASN1_STRING_get0_data(raw),
                                                 kX25519Size));
    }
    ASN1_STRING_clear_free(raw);
  } else {
    pkey.reset(EVP_PKCS82PKEY_ex(p8, lc->ctx(), lc->propq()));
  }
  return FinishImport(lc, std::move(pkey), true, "the private key is malformed or of an algorithm this build does not have",
                      kind, st);
}

// The key derivation an encrypted file asks for, read before decrypting: so a hostile file cannot
// make us spin for hours, and so FIPS mode can refuse PBKDF2 parameters below SP 800-132's.
struct Pbkdf2Params {
  bool pbkdf2 = false;  // PBES2 with PBKDF2 (anything else: OpenSSL decides)
  uint64_t iterations = 0;
  size_t salt_len = 0;
};

Pbkdf2Params ReadPbkdf2Params(const X509_SIG* p8) {
  Pbkdf2Params out;
  const X509_ALGOR* alg = nullptr;
  X509_SIG_get0(p8, &alg, nullptr);
  const ASN1_OBJECT* oid = nullptr;
  int ptype = 0;
  const void* pval = nullptr;
  X509_ALGOR_get0(&oid, &ptype, &pval, alg);
  if (OBJ_obj2nid(oid) != NID_pbes2 || ptype != V_ASN1_SEQUENCE) return out;
  PBE2PARAM* pbe2 = static_cast<PBE2PARAM*>(ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBE2PARAM), alg->parameter));
  if (pbe2 != nullptr && OBJ_obj2nid(pbe2->keyfunc->algorithm) == NID_id_pbkdf2 &&
      pbe2->keyfunc->parameter != nullptr && pbe2->keyfunc->parameter->type == V_ASN1_SEQUENCE) {
    PBKDF2PARAM* kdf = static_cast<PBKDF2PARAM*>(
        ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBKDF2PARAM), pbe2->keyfunc->parameter));
    if (kdf != nullptr) {
      out.pbkdf2 = true;
      if (ASN1_INTEGER_get_uint64(&out.iterations, kdf->iter) != 1) out.iterations = UINT64_MAX;
      if (kdf->salt != nullptr && kdf->salt->type == V_ASN1_OCTET_STRING) {
        out.salt_len = static_cast<size_t>(ASN1_STRING_length(kdf->salt->value.octet_string));
      }
    }
    PBKDF2PARAM_free(kdf);
  }
  PBE2PARAM_free(pbe2);
  ERR_clear_error();
  return out;
}

// Why PKCS8_decrypt_ex failed, from the first (root) error on the queue, which it leaves for
// `detail`: true for a decryption that produced garbage (the cipher's padding check or the DER
// decoding of the result failed: a wrong passphrase), false for an algorithm that is missing or
// refused (a cipher or KDF this mode does not have, parameters below the FIPS provider's bounds).
bool WrongPassphrase() {
  const unsigned long e = ERR_peek_error();
  if (e == 0 || (ERR_GET_RFLAGS(e) & ERR_RFLAG_COMMON) != 0) return false;
  const int lib = ERR_GET_LIB(e), reason = ERR_GET_REASON(e);
  return ((lib == ERR_LIB_PROV && reason == PROV_R_BAD_DECRYPT) || (lib == ERR_LIB_EVP && reason == EVP_R_BAD_DECRYPT) ||
          lib == ERR_LIB_ASN1 || (lib == ERR_LIB_PKCS12 && reason == PKCS12_R_DECODE_ERROR));
}

Napi::Value BioToBuffer(Napi::Env env, BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  if (len <= 0 || data == nullptr) {
    ThrowError(env, code::kCryptoFailure, "cannot encode the key");
    return env.Undefined();
  }
  return CopyToBuffer(env, reinterpret_cast<const uint8_t*>(data), static_cast<size_t>(len));
}

// keyExportPrivatePem(privateKey, passphrase?, iterations) -> Buffer: PKCS#8 PEM, encrypted
// (PBES2: PBKDF2-HMAC-SHA-256 with a 16-byte salt, AES-256-CBC) when a passphrase is given.
Napi::Value ExportPrivatePem(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireOperational(env)) return env.Undefined();
  PrivateKey* key = PrivateKey::FromValueAny(env, info[0], "privateKey");
  std::unique_ptr<SecretBytes> pass;
  uint64_t iterations = 0;
  if (key == nullptr || !PassphraseArg(env, info[1], &pass) ||
      !GetInteger(env, info[2], "iterations", kMaxIterations, &iterations)) {
    return env.Undefined();
  }
  if (iterations < kMinIterations) {
    ThrowInvalidArgument(env, "iterations must be an integer from 1000 to 10000000");
    return env.Undefined();
  }
  LibraryContext* lc = key->context();
  // Every buffer that holds the key's DER or base64 is cleansed when freed (BIO_s_secmem).
  Bio der(BIO_new(BIO_s_secmem()), BIO_free);
  Bio out(BIO_new(BIO_s_secmem()), BIO_free);
  std::unique_ptr<OSSL_ENCODER_CTX, decltype(&OSSL_ENCODER_CTX_free)> enc(
      OSSL_ENCODER_CTX_new_for_pkey(key->pkey(), EVP_PKEY_KEYPAIR, "DER", "PrivateKeyInfo", nullptr),
      OSSL_ENCODER_CTX_free);
  if (!der || !out || !enc || OSSL_ENCODER_CTX_get_num_encoders(enc.get()) == 0 ||
      OSSL_ENCODER_to_bio(enc.get(), der.get()) != 1) {
    ThrowError(env, code::kCryptoFailure, std::string("cannot encode the ") + KeyKindName(key->kind()) + " private key");
    return env.Undefined();
  }
  char* der_mem = nullptr;
  const long der_len = BIO_get_mem_data(der.get(), &der_mem);
  const unsigned char* der_data = reinterpret_cast<const unsigned char*>(der_mem);
  P8Info p8(der_len > 0 ? d2i_PKCS8_PRIV_KEY_INFO(nullptr, &der_data, der_len) : nullptr,
            PKCS8_PRIV_KEY_INFO_free);  // cleanses the key on free
  if (!p8) {
    ThrowError(env, code::kCryptoFailure, "cannot encode the private key");
    return env.Undefined();
  }
  if (!pass) {
    if (PEM_write_bio_PKCS8_PRIV_KEY_INFO(out.get(), p8.get()) != 1) {
      ThrowError(env, code::kCryptoFailure, "cannot write the private key PEM");
      return env.Undefined();
    }
    return BioToBuffer(env, out.get());
  }
  std::unique_ptr<EVP_CIPHER, decltype(&EVP_CIPHER_free)> cipher(
      EVP_CIPHER_fetch(lc->ctx(), "AES-256-CBC", lc->propq()), EVP_CIPHER_free);
  // Salt and IV come from the context's DRBG.
  X509_ALGOR* pbe = cipher ? PKCS5_pbe2_set_iv_ex(cipher.get(), static_cast<int>(iterations), nullptr, kSaltSize,
                                                  nullptr, NID_hmacWithSHA256, lc->ctx())
                           : nullptr;
  Sig p8enc(pbe ? PKCS8_set0_pbe_ex(reinterpret_cast<const char*>(pass->data()), static_cast<int>(pass->size()),
                                    p8.get(), pbe, lc->ctx(), lc->propq())
                : nullptr,
            X509_SIG_free);
  if (!p8enc) {
    X509_ALGOR_free(pbe);  // not taken on failure
    ThrowError(env, code::kCryptoFailure, "cannot encrypt the private key");
    return env.Undefined();
  }
  if (PEM_write_bio_PKCS8(out.get(), p8enc.get()) != 1) {
    ThrowError(env, code::kCryptoFailure, "cannot write the private key PEM");
    return env.Undefined();
  }
  return BioToBuffer(env, out.get());
}

// keyImportPrivatePem(pem, passphrase?) -> PrivateKey: the first PEM block, which must be
// "PRIVATE KEY" or "ENCRYPTED PRIVATE KEY" (PKCS#8). The parsing is DecodePrivateKeyPem.
Napi::Value ImportPrivatePem(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LibraryContext* lc = Operational(env);
  if (lc == nullptr) return env.Undefined();
  ByteView pem;
  std::unique_ptr<SecretBytes> pass, pem_copy;
  if (!GetBytes(env, info[0], "pem", &pem) || !PassphraseArg(env, info[1], &pass)) return env.Undefined();
  if (pem.size > kMaxPemInput) {
    ThrowInvalidArgument(env, "pem must be at most 1 MiB");
    return env.Undefined();
  }
  if (!(pem_copy = CopyOf(env, pem))) return env.Undefined();
  OpStatus st;
  KeyKind kind{};
  EVP_PKEY* pkey = DecodePrivateKeyPem(lc, pem_copy->data(), pem_copy->size(), pass.get(), &kind, &st);
  if (st.ThrowIfFailed(env)) return env.Undefined();
  return PrivateKey::Wrap(env, pkey, kind, lc);
}

// keyExportPublicPem(key) -> string: SPKI PEM ("PUBLIC KEY").
Napi::Value ExportPublicPem(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireOperational(env)) return env.Undefined();
  KeyKind kind{};
  LibraryContext* lc = nullptr;
  EVP_PKEY* pkey = AnyKeyArg(env, info[0], "key", &kind, &lc);
  if (pkey == nullptr) return env.Undefined();
  std::vector<uint8_t> der;
  Bio out(BIO_new(BIO_s_mem()), BIO_free);
  if (!EncodeSpki(pkey, &der) || !out ||
      PEM_write_bio(out.get(), PEM_STRING_PUBLIC, "", der.data(), static_cast<long>(der.size())) <= 0) {
    ThrowError(env, code::kCryptoFailure, std::string("cannot encode the ") + KeyKindName(kind) + " public key");
    return env.Undefined();
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(out.get(), &data);
  return Napi::String::New(env, data, static_cast<size_t>(len));
}

// keyImportPublic(bytes) -> PublicKey: SPKI as PEM ("PUBLIC KEY", the first block) or DER.
Napi::Value ImportPublic(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LibraryContext* lc = Operational(env);
  ByteView in;
  if (lc == nullptr || !GetBytes(env, info[0], "publicKey", &in)) return env.Undefined();
  if (in.size > kMaxPemInput) {
    ThrowInvalidArgument(env, "publicKey must be at most 1 MiB");
    return env.Undefined();
  }
  std::vector<uint8_t> copy(in.data, in.data + in.size);  // parsed in several passes: a snapshot
  OpStatus st;
  KeyKind kind{};
  EVP_PKEY* pkey = DecodePublicKeyFile(lc, copy.data(), copy.size(), &kind, &st);
  if (st.ThrowIfFailed(env)) return env.Undefined();
  return PublicKey::Wrap(env, pkey, kind, lc);
}

// keyPublicKey(privateKey) -> PublicKey: the public half as its own handle.
Napi::Value PublicHalf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireOperational(env)) return env.Undefined();
  PrivateKey* key = PrivateKey::FromValueAny(env, info[0], "privateKey");
  if (key == nullptr) return env.Undefined();
  std::vector<uint8_t> der;
  OpStatus st;
  KeyKind kind{};
  EVP_PKEY* pub = nullptr;
  if (!EncodeSpki(key->pkey(), &der)) {
    st.Fail(code::kCryptoFailure, "cannot encode the public key");
  } else {
    pub = DecodeSpki(key->context(), der.data(), der.size(), &kind, &st);
  }
  if (st.ThrowIfFailed(env)) return env.Undefined();
  return PublicKey::Wrap(env, pub, kind, key->context());
}

// keyPublicBytes(key) -> Buffer: the raw public key (X25519: 32 bytes; ML-KEM: ek; ML-DSA: pk;
// P-384: the uncompressed point 0x04 || X || Y).
Napi::Value PublicBytes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireOperational(env)) return env.Undefined();
  KeyKind kind{};
  LibraryContext* lc = nullptr;
  EVP_PKEY* pkey = AnyKeyArg(env, info[0], "key", &kind, &lc);
  if (pkey == nullptr) return env.Undefined();
  if (kind != KeyKind::kP384) return ExportPublicKey(env, pkey, kind);
  // Whatever form the key was read in, always the uncompressed point.
  BIGNUM* x = nullptr;
  BIGNUM* y = nullptr;
  uint8_t point[1 + 2 * kP384FieldSize];
  point[0] = 0x04;
  const bool ok = EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, &x) == 1 &&
                  EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &y) == 1 &&
                  BN_bn2binpad(x, point + 1, kP384FieldSize) == static_cast<int>(kP384FieldSize) &&
                  BN_bn2binpad(y, point + 1 + kP384FieldSize, kP384FieldSize) == static_cast<int>(kP384FieldSize);
  BN_free(x);
  BN_free(y);
  if (!ok) {
    ThrowError(env, code::kCryptoFailure, "cannot export the P-384 public key");
    return env.Undefined();
  }
  return CopyToBuffer(env, point, sizeof point);
}

// keySpki(key) -> Buffer: SubjectPublicKeyInfo DER.
Napi::Value SpkiDer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireOperational(env)) return env.Undefined();
  KeyKind kind{};
  LibraryContext* lc = nullptr;
  EVP_PKEY* pkey = AnyKeyArg(env, info[0], "key", &kind, &lc);
  if (pkey == nullptr) return env.Undefined();
  std::vector<uint8_t> der;
  if (!EncodeSpki(pkey, &der)) {
    ThrowError(env, code::kCryptoFailure, std::string("cannot encode the ") + KeyKindName(kind) + " public key");
    return env.Undefined();
  }
  return CopyToBuffer(env, der.data(), der.size());
}

// keySpkiFingerprint(key) -> Buffer: SHA-256 of the SubjectPublicKeyInfo DER.
Napi::Value SpkiFingerprint(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireOperational(env)) return env.Undefined();
  KeyKind kind{};
  LibraryContext* lc = nullptr;
  EVP_PKEY* pkey = AnyKeyArg(env, info[0], "key", &kind, &lc);
  if (pkey == nullptr) return env.Undefined();
  std::vector<uint8_t> der;
  uint8_t digest[32];
  if (!EncodeSpki(pkey, &der) || !Sha256(Data(env).active_context, der.data(), der.size(), digest)) {
    ThrowError(env, code::kCryptoFailure, "cannot compute the public key fingerprint");
    return env.Undefined();
  }
  return CopyToBuffer(env, digest, sizeof digest);
}

}  // namespace

EVP_PKEY* DecodePrivateKeyPem(LibraryContext* lc, const uint8_t* pem, size_t len, const SecretBytes* pass,
                              KeyKind* kind, OpStatus* st) {
  Bio in(BIO_new_mem_buf(pem, static_cast<int>(len)), BIO_free);
  PemBlock block;
  if (!in || !block.Read(in.get())) {
    st->Fail(code::kInvalidKey, "not a PEM private key");
    return nullptr;
  }
  const unsigned char* p = block.data;
  const unsigned char* end = block.data + block.len;
  P8Info p8(nullptr, PKCS8_PRIV_KEY_INFO_free);
  if (std::strcmp(block.name, PEM_STRING_PKCS8INF) == 0) {
    p8.reset(d2i_PKCS8_PRIV_KEY_INFO(nullptr, &p, block.len));
    if (!p8 || p != end) {
      st->Fail(code::kInvalidKey, "the private key PEM is malformed");
      return nullptr;
    }
  } else if (std::strcmp(block.name, PEM_STRING_PKCS8) == 0) {
    Sig enc(d2i_X509_SIG(nullptr, &p, block.len), X509_SIG_free);
    if (!enc || p != end) {
      st->Fail(code::kInvalidKey, "the encrypted private key PEM is malformed");
      return nullptr;
    }
    if (!pass) {
      st->Fail(kBadPassphrase, "the private key is encrypted: a passphrase is required");
      return nullptr;
    }
    const Pbkdf2Params kdf = ReadPbkdf2Params(enc.get());
    if (kdf.pbkdf2 && kdf.iterations > kMaxIterations) {
      st->Fail(code::kInvalidKey, "the encrypted private key asks for more than 10000000 PBKDF2 iterations");
      return nullptr;
    }
    // SP 800-132 in FIPS mode: PBKDF2 with at least 1000 iterations and a 128-bit salt. (The
    // provider's own lower-bound checks depend on how the module was installed.)
    if (lc->fips() && kdf.pbkdf2 && (kdf.iterations < kMinIterations || kdf.salt_len < static_cast<size_t>(kSaltSize))) {
      st->Fail(kNotApproved,
               "the private key is encrypted with PBKDF2 parameters FIPS mode does not approve (fewer than 1000 "
               "iterations or a salt under 16 bytes): re-encrypt it");
      return nullptr;
    }
    p8.reset(PKCS8_decrypt_ex(enc.get(), reinterpret_cast<const char*>(pass->data()), static_cast<int>(pass->size()),
                              lc->ctx(), lc->propq()));
    if (!p8) {
      if (WrongPassphrase()) {
        st->Fail(kBadPassphrase, "cannot decrypt the private key: wrong passphrase");
      } else {
        st->Fail(code::kUnsupported, "the private key's encryption is not available in this mode");
      }
      return nullptr;
    }
  } else {
    st->Fail(code::kInvalidKey,
             "not a PKCS#8 private key (PEM \"PRIVATE KEY\" or \"ENCRYPTED PRIVATE KEY\"; convert others with "
             "`openssl pkey`)");
    return nullptr;
  }
  return DecodePkcs8(lc, p8.get(), kind, st);
}

EVP_PKEY* DecodePublicKeyFile(LibraryContext* lc, const uint8_t* in, size_t len, KeyKind* kind, OpStatus* st) {
  static const char kBegin[] = "-----BEGIN";
  const bool is_pem = std::search(in, in + len, kBegin, kBegin + sizeof kBegin - 1) != in + len;
  if (!is_pem) return DecodeSpki(lc, in, len, kind, st);
  Bio bio(BIO_new_mem_buf(in, static_cast<int>(len)), BIO_free);
  PemBlock block;
  if (!bio || !block.Read(bio.get()) || std::strcmp(block.name, PEM_STRING_PUBLIC) != 0) {
    st->Fail(code::kInvalidKey, "not a PEM public key (\"PUBLIC KEY\", SubjectPublicKeyInfo)");
    return nullptr;
  }
  return DecodeSpki(lc, block.data, static_cast<size_t>(block.len), kind, st);
}

EVP_PKEY* DecodeSpki(LibraryContext* lc, const uint8_t* der, size_t len, KeyKind* kind, OpStatus* st) {
  const unsigned char* p = der;
  XPubkey xpk(d2i_X509_PUBKEY(nullptr, &p, static_cast<long>(len)), X509_PUBKEY_free);
  const ASN1_OBJECT* oid = nullptr;
  const unsigned char* pk = nullptr;
  int pk_len = 0;
  X509_ALGOR* alg = nullptr;
  ERR_clear_error();  // d2i tries (and may fail) to decode the key in the default context: no matter
  if (!xpk || p != der + len || X509_PUBKEY_get0_param(const_cast<ASN1_OBJECT**>(&oid), &pk, &pk_len, &alg, xpk.get()) != 1) {
    st->Fail(code::kInvalidKey, "the public key is malformed (not a SubjectPublicKeyInfo)");
    return nullptr;
  }
  Pkey pkey(nullptr, EVP_PKEY_free);
  if (OBJ_obj2nid(oid) == NID_X25519) {
    const ASN1_OBJECT* aoid = nullptr;
    int ptype = 0;
    X509_ALGOR_get0(&aoid, &ptype, nullptr, alg);
    if (ptype == V_ASN1_UNDEF && pk_len == static_cast<int>(kX25519Size)) {
      pkey.reset(EVP_PKEY_new_raw_public_key_ex(lc->ctx(), "X25519", lc->x25519_propq(), pk, kX25519Size));
    }
  } else {
    p = der;
    pkey.reset(d2i_PUBKEY_ex(nullptr, &p, static_cast<long>(len), lc->ctx(), lc->propq()));
  }
  return FinishImport(lc, std::move(pkey), false,
                      "the public key is malformed, invalid, or of an algorithm this build does not have", kind, st);
}

bool EncodeSpki(EVP_PKEY* pkey, std::vector<uint8_t>* out) {
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(pkey, &der);
  if (len <= 0 || der == nullptr) return false;
  out->assign(der, der + len);
  OPENSSL_free(der);
  return true;
}

bool Sha256(LibraryContext* lc, const uint8_t* data, size_t len, uint8_t out[32]) {
  std::unique_ptr<EVP_MD, decltype(&EVP_MD_free)> md(EVP_MD_fetch(lc->ctx(), "SHA2-256", lc->propq()), EVP_MD_free);
  unsigned int n = 0;
  return md && EVP_Digest(data, len, out, &n, md.get(), nullptr) == 1 && n == 32;
}

void InitPem(Napi::Env env, Napi::Object exports) {
  exports.Set("keyExportPrivatePem", Napi::Function::New<ExportPrivatePem>(env));
  exports.Set("keyImportPrivatePem", Napi::Function::New<ImportPrivatePem>(env));
  exports.Set("keyExportPublicPem", Napi::Function::New<ExportPublicPem>(env));
  exports.Set("keyImportPublic", Napi::Function::New<ImportPublic>(env));
  exports.Set("keyPublicKey", Napi::Function::New<PublicHalf>(env));
  exports.Set("keyPublicBytes", Napi::Function::New<PublicBytes>(env));
  exports.Set("keySpki", Napi::Function::New<SpkiDer>(env));
  exports.Set("keySpkiFingerprint", Napi::Function::New<SpkiFingerprint>(env));
  Napi::Object limits = Napi::Object::New(env);
  limits.Set("minIterations", static_cast<double>(kMinIterations));
  limits.Set("maxIterations", static_cast<double>(kMaxIterations));
  limits.Set("maxPassphrase", static_cast<double>(kMaxPassphrase));
  exports.Set("keyFileLimits", limits);
}

}  // namespace qt
