#include "mlkem.h"

#include <openssl/core_names.h>
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

namespace qt {

namespace {

struct MlKemSizes {
  size_t public_key, private_key, ciphertext;
};
constexpr size_t kSharedSecretSize = 32;
constexpr size_t kSeedSize = 64;  // d || z
constexpr size_t kEncapsulationCoinsSize = 32;  // m

bool ParseKind(Napi::Env env, Napi::Value v, KeyKind* kind) {
  if (v.IsNumber()) {
    int n = v.As<Napi::Number>().Int32Value();
    if (n == static_cast<int>(KeyKind::kMlKem768) || n == static_cast<int>(KeyKind::kMlKem1024)) {
      *kind = static_cast<KeyKind>(n);
      return true;
    }
  }
  ThrowInvalidArgument(env, "unknown ML-KEM parameter set");
  return false;
}

MlKemSizes SizesOf(KeyKind kind) {
  return kind == KeyKind::kMlKem768 ? MlKemSizes{1184, 2400, 1088} : MlKemSizes{1568, 3168, 1568};
}

using PkeyCtx = std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)>;

}  // namespace

// Key generation; `seed` (d || z, 64 bytes) makes it deterministic (FIPS 203 ML-KEM.KeyGen_internal).
EVP_PKEY* MlKemGenerate(LibraryContext* lc, KeyKind kind, const uint8_t* seed, OpStatus* st) {
  PkeyCtx ctx(EVP_PKEY_CTX_new_from_name(lc->ctx(), KeyKindName(kind), lc->propq()), EVP_PKEY_CTX_free);
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1) {
    st->Fail(code::kUnsupported, std::string(KeyKindName(kind)) + " is not available");
    return nullptr;
  }
  if (seed != nullptr) {
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_ML_KEM_SEED, const_cast<uint8_t*>(seed), kSeedSize),
        OSSL_PARAM_construct_end()};
    if (EVP_PKEY_CTX_set_params(ctx.get(), params) != 1) {
      st->Fail(code::kCryptoFailure, "cannot set the ML-KEM seed");
      return nullptr;
    }
  }
  EVP_PKEY* pkey = nullptr;
  if (EVP_PKEY_generate(ctx.get(), &pkey) != 1) {
    st->Fail(code::kCryptoFailure, "ML-KEM key generation failed");
    return nullptr;
  }
  return pkey;
}

// Parses an encapsulation key; OpenSSL applies the FIPS 203 §7.2 modulus check here. OpenSSL
// decodes the key and then hashes the same bytes, so it parses a private copy: a
// SharedArrayBuffer view changed between the two reads would give a key whose hash is not its own.
EVP_PKEY* MlKemImportPublicKey(LibraryContext* lc, KeyKind kind, const uint8_t* ek, size_t len, OpStatus* st) {
  if (len != SizesOf(kind).public_key) {
    st->Fail(code::kInvalidKey, std::string(KeyKindName(kind)) + " public key has the wrong length");
    return nullptr;
  }
  std::vector<uint8_t> copy(ek, ek + len);
  EVP_PKEY* pkey = EVP_PKEY_new_raw_public_key_ex(lc->ctx(), KeyKindName(kind), lc->propq(), copy.data(), len);
  if (pkey == nullptr) st->Fail(code::kInvalidKey, std::string(KeyKindName(kind)) + " public key is invalid");
  return pkey;
}

bool MlKemEncapsulate(LibraryContext* lc, KeyKind kind, EVP_PKEY* pub, const uint8_t* coins, std::vector<uint8_t>* ct,
                      SecretBytes* ss, OpStatus* st) {
  // A null output would make EVP_PKEY_encapsulate a length query that "succeeds" writing nothing.
  if (!ss->ok()) return st->Fail(code::kCryptoFailure, "out of memory");
  PkeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(lc->ctx(), pub, lc->propq()), EVP_PKEY_CTX_free);
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_KEM_PARAM_IKME, const_cast<uint8_t*>(coins), kEncapsulationCoinsSize),
      OSSL_PARAM_construct_end()};
  if (!ctx || EVP_PKEY_encapsulate_init(ctx.get(), coins != nullptr ? params : nullptr) != 1) {
    return st->Fail(code::kCryptoFailure, "ML-KEM encapsulation could not start");
  }
  size_t ct_len = SizesOf(kind).ciphertext, ss_len = ss->size();
  ct->resize(ct_len);
  if (EVP_PKEY_encapsulate(ctx.get(), ct->data(), &ct_len, ss->data(), &ss_len) != 1 ||
      ct_len != ct->size() || ss_len != kSharedSecretSize) {
    return st->Fail(code::kCryptoFailure, "ML-KEM encapsulation failed");
  }
  return true;
}

bool MlKemDecapsulate(LibraryContext* lc, EVP_PKEY* priv, KeyKind kind, const uint8_t* ct, size_t ct_len,
                      SecretBytes* ss, OpStatus* st) {
  if (ct_len != SizesOf(kind).ciphertext) {
    return st->Fail(code::kInvalidArgument, std::string(KeyKindName(kind)) + " ciphertext has the wrong length");
  }
  if (!ss->ok()) return st->Fail(code::kCryptoFailure, "out of memory");  // as in MlKemEncapsulate
  PkeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(lc->ctx(), priv, lc->propq()), EVP_PKEY_CTX_free);
  size_t ss_len = ss->size();
  if (!ctx || EVP_PKEY_decapsulate_init(ctx.get(), nullptr) != 1 ||
      EVP_PKEY_decapsulate(ctx.get(), ss->data(), &ss_len, ct, ct_len) != 1 || ss_len != kSharedSecretSize) {
    return st->Fail(code::kCryptoFailure, "ML-KEM decapsulation failed");
  }
  return true;
}

namespace {

// The public key argument: a PublicKey handle (parsed once), or encapsulation-key bytes parsed and
// checked now. Returns a key the caller frees, or nullptr with the failure in *st.
EVP_PKEY* PublicKeyArg(Napi::Env env, Napi::Value v, KeyKind kind, LibraryContext* lc, OpStatus* st, bool* thrown) {
  *thrown = false;
  if (PublicKey::Is(env, v)) {
    PublicKey* handle = PublicKey::FromValue(env, v, kind, "publicKey");
    if (handle == nullptr) {
      *thrown = true;
      return nullptr;
    }
    EVP_PKEY_up_ref(handle->pkey());
    return handle->pkey();
  }
  ByteView ek;
  if (!GetBytes(env, v, "publicKey", &ek)) {
    *thrown = true;
    return nullptr;
  }
  return MlKemImportPublicKey(lc, kind, ek.data, ek.size, st);
}

using Pkey = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

Napi::Value EncapsulationResult(Napi::Env env, const std::vector<uint8_t>& ct, std::unique_ptr<SecretBytes> ss) {
  Napi::Value ciphertext = CopyToBuffer(env, ct.data(), ct.size());
  Napi::Value secret = Secret::Wrap(env, std::move(ss));
  if (ciphertext.IsEmpty() || secret.IsEmpty()) return env.Undefined();
  // Defined, not assigned: a setter on Object.prototype must not receive the secret handle.
  Napi::Object out = Napi::Object::New(env);
  out.DefineProperties({Napi::PropertyDescriptor::Value("ciphertext", ciphertext, napi_default_jsproperty),
                        Napi::PropertyDescriptor::Value("sharedSecret", secret, napi_default_jsproperty)});
  return out;
}

// The (privateKey, kind) argument pair of the functions that use a private key.
PrivateKey* KeyArgs(Napi::Env env, const Napi::CallbackInfo& info, KeyKind* kind) {
  if (!ParseKind(env, info[1], kind)) return nullptr;
  return PrivateKey::FromValue(env, info[0], *kind, "privateKey");
}

// mlkemGenerateKeyPair(kind, seed?) -> PrivateKey
Napi::Value GenerateKeyPair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireOperational(env)) return env.Undefined();
  KeyKind kind{};
  if (!ParseKind(env, info[0], &kind)) return env.Undefined();
  ByteView seed;
  std::unique_ptr<SecretBytes> seed_copy;  // key material: OpenSSL sees a private copy
  if (!info[1].IsUndefined() &&
      (!GetBytesOfSize(env, info[1], "seed", kSeedSize, &seed) || !(seed_copy = CopyOf(env, seed)))) {
    return env.Undefined();
  }
  LibraryContext* lc = Data(env).active_context;
  OpStatus st;
  EVP_PKEY* pkey = MlKemGenerate(lc, kind, seed_copy ? seed_copy->data() : nullptr, &st);
  if (st.ThrowIfFailed(env)) return env.Undefined();
  return PrivateKey::Wrap(env, pkey, kind, lc);
}

class GenerateJob : public PromiseJob {
 public:
  GenerateJob(KeyKind kind, LibraryContext* lc) : kind_(kind), lc_(lc) {}
  ~GenerateJob() override { EVP_PKEY_free(pkey_); }
  GenerateJob(const GenerateJob&) = delete;  // owns what the destructor frees
  GenerateJob& operator=(const GenerateJob&) = delete;

 private:
  void Run(OpStatus* st) override { pkey_ = MlKemGenerate(lc_, kind_, nullptr, st); }
  Napi::Value Result(Napi::Env env) override {
    EVP_PKEY* p = pkey_;
    pkey_ = nullptr;
    return PrivateKey::Wrap(env, p, kind_, lc_);
  }
  KeyKind kind_;
  LibraryContext* lc_;
  EVP_PKEY* pkey_ = nullptr;
};

Napi::Value GenerateKeyPairAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireOperational(env)) return env.Undefined();
  KeyKind kind{};
  if (!ParseKind(env, info[0], &kind)) return env.Undefined();
  return QueueJob<GenerateJob>(env, kind, Data(env).active_context);
}

// mlkemPublicKey(privateKey, kind) -> Buffer (the encapsulation key)
Napi::Value ExportEncapsulationKey(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireOperational(env)) return env.Undefined();
  KeyKind kind{};
  PrivateKey* key = KeyArgs(env, info, &kind);
  if (key == nullptr) return env.Undefined();
  return ExportPublicKey(env, key->pkey(), kind);
}

// mlkemCheckPublicKey(kind, ek) -> true, or throws ERR_QT_INVALID_KEY
Napi::Value CheckPublicKey(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireOperational(env)) return env.Undefined();
  KeyKind kind{};
  ByteView ek;
  if (!ParseKind(env, info[0], &kind) || !GetBytes(env, info[1], "publicKey", &ek)) return env.Undefined();
  OpStatus st;
  EVP_PKEY* pkey = MlKemImportPublicKey(Data(env).active_context, kind, ek.data, ek.size, &st);
  EVP_PKEY_free(pkey);
  if (st.ThrowIfFailed(env)) return env.Undefined();
  return Napi::Boolean::New(env, true);
}

// mlkemImportPublicKey(kind, ek) -> PublicKey: parsed and checked (FIPS 203 §7.2) once.
Napi::Value ImportPublicKeyHandle(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireOperational(env)) return env.Undefined();
  KeyKind kind{};
  ByteView ek;
  if (!ParseKind(env, info[0], &kind) || !GetBytes(env, info[1], "publicKey", &ek)) return env.Undefined();
  LibraryContext* lc = Data(env).active_context;
  OpStatus st;
  EVP_PKEY* pkey = MlKemImportPublicKey(lc, kind, ek.data, ek.size, &st);
  if (st.ThrowIfFailed(env)) return env.Undefined();
  return PublicKey::Wrap(env, pkey, kind, lc);
}

// mlkemEncapsulate(kind, publicKey: bytes | PublicKey, m?) -> { ciphertext, sharedSecret }
Napi::Value EncapsulateSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireOperational(env)) return env.Undefined();
  KeyKind kind{};
  ByteView coins;
  std::unique_ptr<SecretBytes> coins_copy;  // the randomness m is secret: a private copy
  if (!ParseKind(env, info[0], &kind)) return env.Undefined();
  if (!info[2].IsUndefined() &&
      (!GetBytesOfSize(env, info[2], "m", kEncapsulationCoinsSize, &coins) || !(coins_copy = CopyOf(env, coins)))) {
    return env.Undefined();
  }
  LibraryContext* lc = Data(env).active_context;
  OpStatus st;
  bool thrown = false;
  Pkey pub(PublicKeyArg(env, info[1], kind, lc, &st, &thrown), EVP_PKEY_free);
  if (thrown || st.ThrowIfFailed(env)) return env.Undefined();
  std::vector<uint8_t> ct;
  auto ss = std::make_unique<SecretBytes>(kSharedSecretSize);
  MlKemEncapsulate(lc, kind, pub.get(), coins_copy ? coins_copy->data() : nullptr, &ct, ss.get(), &st);
  if (st.ThrowIfFailed(env)) return env.Undefined();
  return EncapsulationResult(env, ct, std::move(ss));
}

class EncapsulateJob : public PromiseJob {
 public:
  // Takes ownership of pub.
  EncapsulateJob(KeyKind kind, LibraryContext* lc, EVP_PKEY* pub)
      : kind_(kind), lc_(lc), pub_(pub), ss_(std::make_unique<SecretBytes>(kSharedSecretSize)) {}
  ~EncapsulateJob() override { EVP_PKEY_free(pub_); }
  EncapsulateJob(const EncapsulateJob&) = delete;  // owns what the destructor frees
  EncapsulateJob& operator=(const EncapsulateJob&) = delete;

 private:
  void Run(OpStatus* st) override { MlKemEncapsulate(lc_, kind_, pub_, nullptr, &ct_, ss_.get(), st); }
  Napi::Value Result(Napi::Env env) override { return EncapsulationResult(env, ct_, std::move(ss_)); }
  KeyKind kind_;
  LibraryContext* lc_;
  EVP_PKEY* pub_;
  std::vector<uint8_t> ct_;
  std::unique_ptr<SecretBytes> ss_;
};

Napi::Value EncapsulateAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireOperational(env)) return env.Undefined();
  KeyKind kind{};
  if (!ParseKind(env, info[0], &kind)) return env.Undefined();
  LibraryContext* lc = Data(env).active_context;
  OpStatus st;
  bool thrown = false;
  // Parsing is quick; the encapsulation itself runs on the threadpool.
  EVP_PKEY* pub = PublicKeyArg(env, info[1], kind, lc, &st, &thrown);
  if (thrown || st.ThrowIfFailed(env)) return env.Undefined();
  return QueueJob<EncapsulateJob>(env, kind, lc, pub);
}

// mlkemDecapsulate(privateKey, kind, ciphertext) -> Secret
Napi::Value DecapsulateSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireOperational(env)) return env.Undefined();
  KeyKind kind{};
  PrivateKey* key = KeyArgs(env, info, &kind);
  ByteView ct;
  if (key == nullptr || !GetBytes(env, info[2], "ciphertext", &ct)) return env.Undefined();
  // Decapsulation decrypts the ciphertext and then re-encrypts and compares it: both reads must
  // see the same bytes, so it works on a copy (the async job copies too).
  std::vector<uint8_t> ct_copy(ct.data, ct.data + ct.size);
  auto ss = std::make_unique<SecretBytes>(kSharedSecretSize);
  OpStatus st;
  MlKemDecapsulate(key->context(), key->pkey(), kind, ct_copy.data(), ct_copy.size(), ss.get(), &st);
  if (st.ThrowIfFailed(env)) return env.Undefined();
  return Secret::Wrap(env, std::move(ss));
}

class DecapsulateJob : public PromiseJob {
 public:
  DecapsulateJob(PrivateKey* key, KeyKind kind, const ByteView& ct)
      : kind_(kind), lc_(key->context()), pkey_(key->pkey()), ct_(ct.data, ct.data + ct.size),
        ss_(std::make_unique<SecretBytes>(kSharedSecretSize)) {
    EVP_PKEY_up_ref(pkey_);  // survives a destroy() of the handle while the job runs
  }
  ~DecapsulateJob() override { EVP_PKEY_free(pkey_); }
  DecapsulateJob(const DecapsulateJob&) = delete;  // owns what the destructor frees
  DecapsulateJob& operator=(const DecapsulateJob&) = delete;

 private:
  void Run(OpStatus* st) override { MlKemDecapsulate(lc_, pkey_, kind_, ct_.data(), ct_.size(), ss_.get(), st); }
  Napi::Value Result(Napi::Env env) override { return Secret::Wrap(env, std::move(ss_)); }
  KeyKind kind_;
  LibraryContext* lc_;
  EVP_PKEY* pkey_;
  std::vector<uint8_t> ct_;
  std::unique_ptr<SecretBytes> ss_;
};

Napi::Value DecapsulateAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireOperational(env)) return env.Undefined();
  KeyKind kind{};
  PrivateKey* key = KeyArgs(env, info, &kind);
  ByteView ct;
  if (key == nullptr || !GetBytes(env, info[2], "ciphertext", &ct)) return env.Undefined();
  return QueueJob<DecapsulateJob>(env, key, kind, ct);
}

// Test-vector import of an expanded decapsulation key (ACVP decapsulation groups).
Napi::Value PrivateKeyFromBytes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireOperational(env)) return env.Undefined();
  KeyKind kind{};
  ByteView dk;
  std::unique_ptr<SecretBytes> dk_copy;  // parsed and hashed by OpenSSL: a private snapshot
  if (!ParseKind(env, info[0], &kind) || !GetBytesOfSize(env, info[1], "privateKey", SizesOf(kind).private_key, &dk) ||
      !(dk_copy = CopyOf(env, dk))) {
    return env.Undefined();
  }
  LibraryContext* lc = Data(env).active_context;
  EVP_PKEY* pkey =
      EVP_PKEY_new_raw_private_key_ex(lc->ctx(), KeyKindName(kind), lc->propq(), dk_copy->data(), dk_copy->size());
  if (pkey == nullptr) {
    ThrowError(env, code::kInvalidKey, std::string(KeyKindName(kind)) + " private key is invalid");
    return env.Undefined();
  }
  return PrivateKey::Wrap(env, pkey, kind, lc);
}

Napi::Object SizesObject(Napi::Env env, KeyKind kind) {
  MlKemSizes s = SizesOf(kind);
  Napi::Object o = Napi::Object::New(env);
  o.Set("publicKey", static_cast<double>(s.public_key));
  o.Set("privateKey", static_cast<double>(s.private_key));
  o.Set("ciphertext", static_cast<double>(s.ciphertext));
  o.Set("sharedSecret", static_cast<double>(kSharedSecretSize));
  o.Set("seed", static_cast<double>(kSeedSize));
  o.Set("encapsulationCoins", static_cast<double>(kEncapsulationCoinsSize));
  o.Set("id", static_cast<double>(kind));
  return o;
}

}  // namespace

void InitMlKem(Napi::Env env, Napi::Object exports) {
  exports.Set("mlkemGenerateKeyPair", Napi::Function::New<GenerateKeyPair>(env));
  exports.Set("mlkemGenerateKeyPairAsync", Napi::Function::New<GenerateKeyPairAsync>(env));
  exports.Set("mlkemPublicKey", Napi::Function::New<ExportEncapsulationKey>(env));
  exports.Set("mlkemImportPublicKey", Napi::Function::New<ImportPublicKeyHandle>(env));
  exports.Set("mlkemCheckPublicKey", Napi::Function::New<CheckPublicKey>(env));
  exports.Set("mlkemEncapsulate", Napi::Function::New<EncapsulateSync>(env));
  exports.Set("mlkemEncapsulateAsync", Napi::Function::New<EncapsulateAsync>(env));
  exports.Set("mlkemDecapsulate", Napi::Function::New<DecapsulateSync>(env));
  exports.Set("mlkemDecapsulateAsync", Napi::Function::New<DecapsulateAsync>(env));
  exports.Set("mlkemPrivateKeyFromBytes", Napi::Function::New<PrivateKeyFromBytes>(env));
  Napi::Object sizes = Napi::Object::New(env);
  sizes.Set("ML-KEM-768", SizesObject(env, KeyKind::kMlKem768));
  sizes.Set("ML-KEM-1024", SizesObject(env, KeyKind::kMlKem1024));
  exports.Set("mlkemSizes", sizes);
}

}  // namespace qt
