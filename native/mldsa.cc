#include "mldsa.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include <memory>
#include <vector>

#include "addon_data.h"
#include "args.h"
#include "async_job.h"
#include "bytes.h"
#include "errors.h"
#include "private_key.h"
#include "secret.h"
#include "testing.h"

namespace qt {

namespace {

constexpr const char* kAlgorithm = "ML-DSA-87";
constexpr size_t kPublicKeySize = 2592;
constexpr size_t kPrivateKeySize = 4896;  // the expanded FIPS 204 sk (test-vector import only)
constexpr size_t kSignatureSize = 4627;
constexpr size_t kSeedSize = 32;  // ξ
constexpr size_t kRandomnessSize = 32;  // rnd (test vectors only)
constexpr size_t kMuSize = 64;
constexpr size_t kMaxContext = 255;

using PkeyCtx = std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)>;
using Pkey = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using Signature = std::unique_ptr<EVP_SIGNATURE, decltype(&EVP_SIGNATURE_free)>;

// Which FIPS 204 interface a signature is made or checked with. Only kPure is reachable outside
// quantum-tunnel/testing: the other two skip the domain separation of the context string.
enum class Interface { kPure = 0, kInternal = 1, kExternalMu = 2 };

struct SignOptions {
  const uint8_t* context = nullptr;  // nullptr: the empty context
  size_t context_len = 0;
  bool deterministic = false;
  const uint8_t* rnd = nullptr;  // test vectors: a fixed rnd instead of a fresh one
  Interface iface = Interface::kPure;
};

// The parameters shared by signing and verification, into `params` (at least 5 entries).
void BuildParams(const SignOptions& o, int* deterministic, int* encoding, int* mu, OSSL_PARAM* params) {
  size_t n = 0;
  if (o.context != nullptr) {
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_SIGNATURE_PARAM_CONTEXT_STRING,
                                                    const_cast<uint8_t*>(o.context), o.context_len);
  }
  if (o.deterministic) {
    *deterministic = 1;
    params[n++] = OSSL_PARAM_construct_int(OSSL_SIGNATURE_PARAM_DETERMINISTIC, deterministic);
  }
  if (o.rnd != nullptr) {
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_SIGNATURE_PARAM_TEST_ENTROPY, const_cast<uint8_t*>(o.rnd),
                                                    kRandomnessSize);
  }
  if (o.iface == Interface::kInternal) {
    *encoding = 0;  // raw: the message is M' of ML-DSA.Sign_internal
    params[n++] = OSSL_PARAM_construct_int(OSSL_SIGNATURE_PARAM_MESSAGE_ENCODING, encoding);
  } else if (o.iface == Interface::kExternalMu) {
    *mu = 1;  // the message is μ itself
    params[n++] = OSSL_PARAM_construct_int(OSSL_SIGNATURE_PARAM_MU, mu);
  }
  params[n] = OSSL_PARAM_construct_end();
}

Signature FetchSignature(LibraryContext* lc) {
  return Signature(EVP_SIGNATURE_fetch(lc->ctx(), kAlgorithm, lc->propq()), EVP_SIGNATURE_free);
}

bool Sign(LibraryContext* lc, EVP_PKEY* key, const uint8_t* msg, size_t msg_len, const SignOptions& o,
          std::vector<uint8_t>* sig, OpStatus* st) {
  Signature alg = FetchSignature(lc);
  PkeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(lc->ctx(), key, lc->propq()), EVP_PKEY_CTX_free);
  int deterministic = 0, encoding = 1, mu = 0;
  OSSL_PARAM params[6];
  BuildParams(o, &deterministic, &encoding, &mu, params);
  if (!alg || !ctx || EVP_PKEY_sign_message_init(ctx.get(), alg.get(), params) != 1) {
    return st->Fail(code::kCryptoFailure, "ML-DSA-87 signing could not start");
  }
  sig->resize(kSignatureSize);
  size_t len = sig->size();
  if (EVP_PKEY_sign(ctx.get(), sig->data(), &len, msg, msg_len) != 1 || len != kSignatureSize) {
    return st->Fail(code::kCryptoFailure, "ML-DSA-87 signing failed");
  }
  return true;
}

// 1 valid, 0 invalid (any signature of the wrong length included), -1 could not run (in *st).
int Verify(LibraryContext* lc, EVP_PKEY* pub, const uint8_t* msg, size_t msg_len, const uint8_t* sig, size_t sig_len,
           const SignOptions& o, OpStatus* st) {
  if (sig_len != kSignatureSize) return 0;
  Signature alg = FetchSignature(lc);
  PkeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(lc->ctx(), pub, lc->propq()), EVP_PKEY_CTX_free);
  int deterministic = 0, encoding = 1, mu = 0;
  OSSL_PARAM params[6];
  BuildParams(o, &deterministic, &encoding, &mu, params);
  if (!alg || !ctx || EVP_PKEY_verify_message_init(ctx.get(), alg.get(), params) != 1) {
    st->Fail(code::kCryptoFailure, "ML-DSA-87 verification could not start");
    return -1;
  }
  const int r = EVP_PKEY_verify(ctx.get(), sig, sig_len, msg, msg_len);
  ERR_clear_error();  // an invalid signature is an answer, not an error
  return r == 1 ? 1 : 0;
}

// FIPS 140-3 conditional self-test on a generated key pair (on top of the provider's own): sign a
// fixed message and verify it with the public half.
bool PairwiseConsistent(LibraryContext* lc, EVP_PKEY* pkey) {
  static const uint8_t kMessage[] = "quantum-tunnel ML-DSA-87 pairwise consistency test";
  std::vector<uint8_t> sig;
  OpStatus st;
  SignOptions o;
  if (!Sign(lc, pkey, kMessage, sizeof kMessage, o, &sig, &st)) return false;
  return Verify(lc, pkey, kMessage, sizeof kMessage, sig.data(), sig.size(), o, &st) == 1;
}

EVP_PKEY* Generate(LibraryContext* lc, const uint8_t* seed, OpStatus* st) {
  PkeyCtx ctx(EVP_PKEY_CTX_new_from_name(lc->ctx(), kAlgorithm, lc->propq()), EVP_PKEY_CTX_free);
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1) {
    st->Fail(code::kUnsupported, "ML-DSA-87 is not available");
    return nullptr;
  }
  if (seed != nullptr) {
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_ML_DSA_SEED, const_cast<uint8_t*>(seed), kSeedSize),
        OSSL_PARAM_construct_end()};
    if (EVP_PKEY_CTX_set_params(ctx.get(), params) != 1) {
      st->Fail(code::kCryptoFailure, "cannot set the ML-DSA-87 seed");
      return nullptr;
    }
  }
  EVP_PKEY* pkey = nullptr;
  if (EVP_PKEY_generate(ctx.get(), &pkey) != 1) {
    st->Fail(code::kCryptoFailure, "ML-DSA-87 key generation failed");
    return nullptr;
  }
  return pkey;
}

// Parses pk from a private snapshot (OpenSSL decodes it and hashes it into tr: both reads must see
// the same bytes).
EVP_PKEY* ImportPublicKey(LibraryContext* lc, const ByteView& pk, OpStatus* st) {
  if (pk.size != kPublicKeySize) {
    st->Fail(code::kInvalidKey, "ML-DSA-87 public key must be 2592 bytes");
    return nullptr;
  }
  std::vector<uint8_t> copy(pk.data, pk.data + pk.size);
  EVP_PKEY* pkey = EVP_PKEY_new_raw_public_key_ex(lc->ctx(), kAlgorithm, lc->propq(), copy.data(), copy.size());
  if (pkey == nullptr) st->Fail(code::kInvalidKey, "ML-DSA-87 public key is invalid");
  return pkey;
}

// The optional context string argument (undefined: the empty context).
bool ContextArg(Napi::Env env, Napi::Value v, SignOptions* o) {
  if (v.IsUndefined()) return true;
  ByteView ctx;
  if (!GetBytes(env, v, "context", &ctx)) return false;
  if (ctx.size > kMaxContext) {
    ThrowInvalidArgument(env, "context must be at most 255 bytes");
    return false;
  }
  o->context = ctx.data;
  o->context_len = ctx.size;
  return true;
}

bool InterfaceArg(Napi::Env env, Napi::Value v, Interface* iface) {
  uint64_t n = 0;
  if (!GetInteger(env, v, "interface", 2, &n)) return false;
  *iface = static_cast<Interface>(n);
  return true;
}

// A public key argument: a PublicKey handle (parsed once) or pk bytes parsed now. The caller frees
// the result; nullptr with *thrown (an exception is pending) or with the failure in *st.
EVP_PKEY* PublicKeyArg(Napi::Env env, Napi::Value v, LibraryContext* lc, OpStatus* st, bool* thrown) {
  *thrown = false;
  if (PublicKey::Is(env, v)) {
    PublicKey* handle = PublicKey::FromValue(env, v, KeyKind::kMlDsa87, "publicKey");
    if (handle == nullptr) {
      *thrown = true;
      return nullptr;
    }
    EVP_PKEY_up_ref(handle->pkey());
    return handle->pkey();
  }
  ByteView pk;
  if (!GetBytes(env, v, "publicKey", &pk)) {
    *thrown = true;
    return nullptr;
  }
  return ImportPublicKey(lc, pk, st);
}

// mldsaGenerateKeyPair(seed?) -> PrivateKey. With seed (ξ, 32 bytes): FIPS 204 ML-DSA.KeyGen_internal.
Napi::Value GenerateKeyPair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LibraryContext* lc = Operational(env);
  if (lc == nullptr) return env.Undefined();
  ByteView seed;
  std::unique_ptr<SecretBytes> seed_copy;  // key material: OpenSSL sees a private copy
  if (!info[0].IsUndefined() &&
      (!GetBytesOfSize(env, info[0], "seed", kSeedSize, &seed) || !(seed_copy = CopyOf(env, seed)))) {
    return env.Undefined();
  }
  OpStatus st;
  Pkey pkey(Generate(lc, seed_copy ? seed_copy->data() : nullptr, &st), EVP_PKEY_free);
  if (st.ThrowIfFailed(env)) return env.Undefined();
  if (lc->fips() && !PairwiseConsistent(lc, pkey.get())) {
    EnterErrorState("pairwise consistency test failed on a generated ML-DSA-87 key pair");
    ThrowError(env, code::kSelfTestFailed, "pairwise consistency test failed; the crypto module is now in its error state");
    return env.Undefined();
  }
  return PrivateKey::Wrap(env, pkey.release(), KeyKind::kMlDsa87, lc);
}

// mldsaPublicKey(privateKey) -> Buffer (pk, 2592 bytes)
Napi::Value PublicKeyOf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireOperational(env)) return env.Undefined();
  PrivateKey* key = PrivateKey::FromValue(env, info[0], KeyKind::kMlDsa87, "privateKey");
  if (key == nullptr) return env.Undefined();
  return ExportPublicKey(env, key->pkey(), KeyKind::kMlDsa87);
}

// mldsaImportPublicKey(pk) -> PublicKey
Napi::Value ImportPublicKeyHandle(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LibraryContext* lc = Operational(env);
  ByteView pk;
  if (lc == nullptr || !GetBytes(env, info[0], "publicKey", &pk)) return env.Undefined();
  OpStatus st;
  EVP_PKEY* pkey = ImportPublicKey(lc, pk, &st);
  if (st.ThrowIfFailed(env)) return env.Undefined();
  return PublicKey::Wrap(env, pkey, KeyKind::kMlDsa87, lc);
}

// The arguments of mldsaSign(Async), read and checked (the module operational first); `o.context`
// points into the caller's bytes.
bool SignArgs(const Napi::CallbackInfo& info, PrivateKey** key, ByteView* msg, SignOptions* o) {
  Napi::Env env = info.Env();
  if (!RequireOperational(env)) return false;
  *key = PrivateKey::FromValue(env, info[0], KeyKind::kMlDsa87, "privateKey");
  if (*key == nullptr || !GetBytes(env, info[1], "message", msg) || !ContextArg(env, info[2], o)) return false;
  if (!info[3].IsBoolean()) {
    ThrowInvalidArgument(env, "deterministic must be a boolean");
    return false;
  }
  o->deterministic = info[3].As<Napi::Boolean>().Value();
  return true;
}

// The message, signature and context of mldsaVerify(Async); the public key (info[0]) is read later.
bool VerifyArgs(const Napi::CallbackInfo& info, ByteView* msg, ByteView* sig, SignOptions* o) {
  Napi::Env env = info.Env();
  return GetBytes(env, info[1], "message", msg) && GetBytes(env, info[2], "signature", sig) && ContextArg(env, info[3], o);
}

// A signing or verification on the threadpool: it owns copies of the message, the context and
// the signature, and a reference to the key (so destroy() on the handle cannot free it mid-job).
class SignatureJob : public PromiseJob {
 public:
  SignatureJob(LibraryContext* lc, EVP_PKEY* key, const ByteView& msg, const SignOptions& o, const ByteView* sig)
      : lc_(lc), key_(key), msg_(msg.data, msg.data + msg.size),
        context_(o.context, o.context + o.context_len), verify_(sig != nullptr) {
    if (sig != nullptr) sig_.assign(sig->data, sig->data + sig->size);
    options_ = o;
    options_.context = o.context == nullptr ? nullptr : context_.data();
  }
  ~SignatureJob() override { EVP_PKEY_free(key_); }
  SignatureJob(const SignatureJob&) = delete;  // owns what the destructor frees
  SignatureJob& operator=(const SignatureJob&) = delete;

 private:
  void Run(OpStatus* st) override {
    if (verify_) {
      valid_ = Verify(lc_, key_, msg_.data(), msg_.size(), sig_.data(), sig_.size(), options_, st) == 1;
    } else {
      Sign(lc_, key_, msg_.data(), msg_.size(), options_, &sig_, st);
    }
  }
  Napi::Value Result(Napi::Env env) override {
    if (verify_) return Napi::Boolean::New(env, valid_);
    return CopyToBuffer(env, sig_.data(), sig_.size());
  }
  LibraryContext* lc_;
  EVP_PKEY* key_;  // one reference of ours
  std::vector<uint8_t> msg_, context_, sig_;
  SignOptions options_;
  bool verify_;
  bool valid_ = false;
};

// mldsaSignAsync(privateKey, message, context?, deterministic) -> Promise<Buffer>: mldsaSign on
// the libuv threadpool (a signature costs milliseconds: the event loop keeps serving meanwhile).
Napi::Value SignAsync(const Napi::CallbackInfo& info) {
  PrivateKey* key = nullptr;
  ByteView msg;
  SignOptions o;
  if (!SignArgs(info, &key, &msg, &o)) return info.Env().Undefined();
  EVP_PKEY_up_ref(key->pkey());
  return QueueJob<SignatureJob>(info.Env(), key->context(), key->pkey(), msg, o, nullptr);
}

// mldsaVerifyAsync(publicKey: bytes | PublicKey, message, signature, context?) -> Promise<boolean>
Napi::Value VerifyAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireOperational(env)) return env.Undefined();
  ByteView msg, sig;
  SignOptions o;
  if (!VerifyArgs(info, &msg, &sig, &o)) return env.Undefined();
  LibraryContext* lc = Data(env).active_context;
  OpStatus st;
  bool thrown = false;
  EVP_PKEY* pub = PublicKeyArg(env, info[0], lc, &st, &thrown);  // a reference of ours
  if (thrown || st.ThrowIfFailed(env)) return env.Undefined();
  return QueueJob<SignatureJob>(env, lc, pub, msg, o, &sig);
}

Napi::Value SignWith(Napi::Env env, PrivateKey* key, const ByteView& msg, const SignOptions& o) {
  std::vector<uint8_t> sig;
  OpStatus st;
  Sign(key->context(), key->pkey(), msg.data, msg.size, o, &sig, &st);
  if (st.ThrowIfFailed(env)) return env.Undefined();
  return CopyToBuffer(env, sig.data(), sig.size());
}

// mldsaSign(privateKey, message, context?, deterministic) -> Buffer (4627 bytes). Pure ML-DSA
// (FIPS 204 Algorithm 2): hedged with fresh randomness unless deterministic is true.
Napi::Value SignPure(const Napi::CallbackInfo& info) {
  PrivateKey* key = nullptr;
  ByteView msg;
  SignOptions o;
  if (!SignArgs(info, &key, &msg, &o)) return info.Env().Undefined();
  return SignWith(info.Env(), key, msg, o);
}

Napi::Value VerifyWith(Napi::Env env, Napi::Value pub_arg, const ByteView& msg, const ByteView& sig,
                       const SignOptions& o) {
  LibraryContext* lc = Data(env).active_context;
  OpStatus st;
  bool thrown = false;
  Pkey pub(PublicKeyArg(env, pub_arg, lc, &st, &thrown), EVP_PKEY_free);
  if (thrown || st.ThrowIfFailed(env)) return env.Undefined();
  // A snapshot of the signature: OpenSSL decodes it and compares its c̃ at the end.
  std::vector<uint8_t> sig_copy(sig.data, sig.data + sig.size);
  const int r = Verify(lc, pub.get(), msg.data, msg.size, sig_copy.data(), sig_copy.size(), o, &st);
  if (st.ThrowIfFailed(env)) return env.Undefined();
  return Napi::Boolean::New(env, r == 1);
}

// mldsaVerify(publicKey: bytes | PublicKey, message, signature, context?) -> boolean
Napi::Value VerifyPure(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireOperational(env)) return env.Undefined();
  ByteView msg, sig;
  SignOptions o;
  if (!VerifyArgs(info, &msg, &sig, &o)) return env.Undefined();
  return VerifyWith(env, info[0], msg, sig, o);
}

// mldsaSignForTesting(privateKey, message, context?, rnd, interface) -> Buffer: the ACVP signature
// generation modes (a fixed rnd; all zeros is the deterministic variant; the internal and
// external-μ interfaces). quantum-tunnel/testing only.
Napi::Value SignForTesting(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireOperational(env) || !TestHooksEnabled(env)) return env.Undefined();
  PrivateKey* key = PrivateKey::FromValue(env, info[0], KeyKind::kMlDsa87, "privateKey");
  ByteView msg, rnd;
  SignOptions o;
  if (key == nullptr || !GetBytes(env, info[1], "message", &msg) || !ContextArg(env, info[2], &o) ||
      !GetBytesOfSize(env, info[3], "rnd", kRandomnessSize, &rnd) || !InterfaceArg(env, info[4], &o.iface)) {
    return env.Undefined();
  }
  if (o.iface == Interface::kExternalMu && msg.size != kMuSize) {
    ThrowInvalidArgument(env, "mu must be 64 bytes");
    return env.Undefined();
  }
  std::unique_ptr<SecretBytes> rnd_copy = CopyOf(env, rnd);
  if (!rnd_copy) return env.Undefined();
  o.rnd = rnd_copy->data();
  return SignWith(env, key, msg, o);
}

// mldsaVerifyForTesting(publicKey, message, signature, context?, interface) -> boolean
Napi::Value VerifyForTesting(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireOperational(env) || !TestHooksEnabled(env)) return env.Undefined();
  ByteView msg, sig;
  SignOptions o;
  if (!GetBytes(env, info[1], "message", &msg) || !GetBytes(env, info[2], "signature", &sig) ||
      !ContextArg(env, info[3], &o) || !InterfaceArg(env, info[4], &o.iface)) {
    return env.Undefined();
  }
  return VerifyWith(env, info[0], msg, sig, o);
}

// mldsaPrivateKeyFromBytes(sk) -> PrivateKey: test-vector import of an expanded private key (ACVP
// signature generation groups); reached only through quantum-tunnel/testing.
Napi::Value PrivateKeyFromBytes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LibraryContext* lc = Operational(env);
  if (lc == nullptr) return env.Undefined();
  ByteView sk;
  std::unique_ptr<SecretBytes> sk_copy;  // parsed and hashed by OpenSSL: a private snapshot
  if (!GetBytesOfSize(env, info[0], "privateKey", kPrivateKeySize, &sk) || !(sk_copy = CopyOf(env, sk))) {
    return env.Undefined();
  }
  EVP_PKEY* pkey = EVP_PKEY_new_raw_private_key_ex(lc->ctx(), kAlgorithm, lc->propq(), sk_copy->data(), sk_copy->size());
  if (pkey == nullptr) {
    ThrowError(env, code::kInvalidKey, "ML-DSA-87 private key is invalid");
    return env.Undefined();
  }
  return PrivateKey::Wrap(env, pkey, KeyKind::kMlDsa87, lc);
}

}  // namespace

void InitMlDsa(Napi::Env env, Napi::Object exports) {
  exports.Set("mldsaGenerateKeyPair", Napi::Function::New<GenerateKeyPair>(env));
  exports.Set("mldsaPublicKey", Napi::Function::New<PublicKeyOf>(env));
  exports.Set("mldsaImportPublicKey", Napi::Function::New<ImportPublicKeyHandle>(env));
  exports.Set("mldsaSign", Napi::Function::New<SignPure>(env));
  exports.Set("mldsaVerify", Napi::Function::New<VerifyPure>(env));
  exports.Set("mldsaSignAsync", Napi::Function::New<SignAsync>(env));
  exports.Set("mldsaVerifyAsync", Napi::Function::New<VerifyAsync>(env));
  exports.Set("mldsaSignForTesting", Napi::Function::New<SignForTesting>(env));
  exports.Set("mldsaVerifyForTesting", Napi::Function::New<VerifyForTesting>(env));
  exports.Set("mldsaPrivateKeyFromBytes", Napi::Function::New<PrivateKeyFromBytes>(env));
  Napi::Object sizes = Napi::Object::New(env);
  sizes.Set("publicKey", static_cast<double>(kPublicKeySize));
  sizes.Set("privateKey", static_cast<double>(kPrivateKeySize));
  sizes.Set("signature", static_cast<double>(kSignatureSize));
  sizes.Set("seed", static_cast<double>(kSeedSize));
  sizes.Set("maxContext", static_cast<double>(kMaxContext));
  sizes.Set("id", static_cast<double>(KeyKind::kMlDsa87));
  exports.Set("mldsaSizes", sizes);
}

}  // namespace qt
