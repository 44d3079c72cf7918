// Protocol v2's X25519 + ML-KEM hybrid key exchange (docs/PROTOCOL.md §4), each side's step in
// one call: the client's share (both key generations), the server's share and K (a key
// generation, the X25519 agreement, the encapsulation and the combiner), and the client's K (the
// agreement, the decapsulation and the combiner). One operation per step runs either inline or
// as one threadpool job (`async`), so a busy server moves a whole step, not each primitive, to
// the second core. Standard mode only: in FIPS mode every primitive goes through its own call and
// its conditional tests (lib/protocol/v2/groups.ts), and these refuse to run.
//
// K = HKDF-SHA384(salt = label, IKM = Z_x25519 ‖ Z_mlkem, info = SHA-384(FixedInfo), 48)
// FixedInfo = label ‖ BE16(version) ‖ BE16(group) ‖ vec16(client X25519 pk) ‖ vec16(server X25519 pk)
//           ‖ vec16(ML-KEM encapsulation key) ‖ vec16(ML-KEM ciphertext)
#include "hybrid.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include <cstring>
#include <memory>
#include <vector>

#include "addon_data.h"
#include "args.h"
#include "async_job.h"
#include "bytes.h"
#include "errors.h"
#include "mlkem.h"
#include "private_key.h"
#include "secret.h"
#include "x25519.h"

namespace qt {

namespace {

constexpr size_t kX25519Size = 32;
constexpr size_t kMlKemSecretSize = 32;
constexpr size_t kHybridSecretSize = 48;
constexpr size_t kSha384Size = 48;
constexpr size_t kMaxLabel = 64;

using Pkey = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using KdfCtx = std::unique_ptr<EVP_KDF_CTX, decltype(&EVP_KDF_CTX_free)>;

// The two X25519 groups (wire IDs, docs/PROTOCOL.md §4.1) and their ML-KEM sizes.
struct Group {
  uint16_t id;
  KeyKind kem;
  size_t ek_size, ct_size;
};
constexpr Group kGroups[] = {
    {0x0101, KeyKind::kMlKem1024, 1568, 1568},
    {0x0103, KeyKind::kMlKem768, 1184, 1088},
};

const Group* GroupArg(Napi::Env env, Napi::Value v) {
  if (v.IsNumber()) {
    const double id = v.As<Napi::Number>().DoubleValue();
    for (const Group& g : kGroups) {
      if (id == g.id) return &g;
    }
  }
  ThrowInvalidArgument(env, "group must be the ID of an X25519 + ML-KEM group");
  return nullptr;
}

// The active context, which must be the standard one.
LibraryContext* StandardContext(Napi::Env env) {
  if (!RequireOperational(env)) return nullptr;
  LibraryContext* lc = Data(env).active_context;
  if (lc->fips()) {
    ThrowError(env, code::kInvalidState, "the one-call hybrid exchange is for standard mode; FIPS mode composes the primitives");
    return nullptr;
  }
  return lc;
}

// ---- primitives (any thread) ----------------------------------------------------------------

bool RawPublicKey(EVP_PKEY* pkey, uint8_t* out, size_t size, OpStatus* st) {
  size_t len = size;
  if (EVP_PKEY_get_raw_public_key(pkey, out, &len) != 1 || len != size) {
    return st->Fail(code::kCryptoFailure, "cannot read a public key");
  }
  return true;
}

// K from the two shared secrets (at ikm, 64 bytes) and the public values.
bool Combine(LibraryContext* lc, const std::vector<uint8_t>& label, uint16_t version, uint16_t group,
             const uint8_t* client_pk, const uint8_t* server_pk, const uint8_t* ek, size_t ek_size, const uint8_t* ct,
             size_t ct_size, const SecretBytes& ikm, SecretBytes* k, OpStatus* st) {
  std::vector<uint8_t> fixed_info;
  fixed_info.reserve(label.size() + 12 + 2 * kX25519Size + ek_size + ct_size);
  auto be16 = [&](size_t n) {
    fixed_info.push_back(static_cast<uint8_t>(n >> 8));
    fixed_info.push_back(static_cast<uint8_t>(n));
  };
  auto vec16 = [&](const uint8_t* p, size_t n) {
    be16(n);
    fixed_info.insert(fixed_info.end(), p, p + n);
  };
  fixed_info.insert(fixed_info.end(), label.begin(), label.end());
  be16(version);
  be16(group);
  vec16(client_pk, kX25519Size);
  vec16(server_pk, kX25519Size);
  vec16(ek, ek_size);
  vec16(ct, ct_size);
  uint8_t info[kSha384Size];
  unsigned int info_len = 0;
  if (EVP_Digest(fixed_info.data(), fixed_info.size(), info, &info_len, lc->sha384(), nullptr) != 1) {
    return st->Fail(code::kCryptoFailure, "SHA-384 failed");
  }
  KdfCtx kdf(EVP_KDF_CTX_dup(lc->hkdf_template(true)), EVP_KDF_CTX_free);
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<uint8_t*>(label.data()), label.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(ikm.data()), ikm.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, info_len), OSSL_PARAM_construct_end()};
  if (!kdf || EVP_KDF_derive(kdf.get(), k->data(), k->size(), params) != 1) {
    return st->Fail(code::kCryptoFailure, "HKDF failed");
  }
  return true;
}

// ---- the three steps: plain operations, run inline or wrapped in a threadpool job -----------

// The client's share: an X25519 and an ML-KEM key pair; share = X25519 pk ‖ encapsulation key.
class ClientShareOp {
 public:
  ClientShareOp(LibraryContext* lc, const Group* g) : lc_(lc), g_(g) {}
  ~ClientShareOp() {
    EVP_PKEY_free(x_);
    EVP_PKEY_free(m_);
  }
  ClientShareOp(const ClientShareOp&) = delete;  // owns what the destructor frees
  ClientShareOp& operator=(const ClientShareOp&) = delete;
  void Run(OpStatus* st) {
    x_ = X25519Generate(lc_, st);
    if (x_ == nullptr) return;
    m_ = MlKemGenerate(lc_, g_->kem, nullptr, st);
    if (m_ == nullptr) return;
    share_.resize(kX25519Size + g_->ek_size);
    if (!RawPublicKey(x_, share_.data(), kX25519Size, st)) return;
    RawPublicKey(m_, share_.data() + kX25519Size, g_->ek_size, st);
  }
  Napi::Value Result(Napi::Env env) {
    Napi::Object out = Napi::Object::New(env);
    Napi::Value x = PrivateKey::Wrap(env, x_, KeyKind::kX25519, lc_);
    x_ = nullptr;  // the handle owns it now (or freed it)
    if (env.IsExceptionPending()) return env.Undefined();
    Napi::Value m = PrivateKey::Wrap(env, m_, g_->kem, lc_);
    m_ = nullptr;
    if (env.IsExceptionPending()) return env.Undefined();
    out.Set("classical", x);
    out.Set("mlkem", m);
    out.Set("share", CopyToBuffer(env, share_.data(), share_.size()));
    return out;
  }

 private:
  LibraryContext* lc_;
  const Group* g_;
  EVP_PKEY* x_ = nullptr;
  EVP_PKEY* m_ = nullptr;
  std::vector<uint8_t> share_;
};

// The server's step: its share (X25519 pk ‖ ciphertext) and K for the client's share.
class EncapsulateOp {
 public:
  EncapsulateOp(LibraryContext* lc, const Group* g, uint16_t version, const ByteView& client_share, const ByteView& label)
      : lc_(lc), g_(g), version_(version), client_share_(client_share.data, client_share.data + client_share.size),
        label_(label.data, label.data + label.size) {}
  void Run(OpStatus* st) {
    const uint8_t* client_pk = client_share_.data();
    const uint8_t* ek = client_share_.data() + kX25519Size;
    Pkey x(X25519Generate(lc_, st), EVP_PKEY_free);
    if (!x) return;
    share_.resize(kX25519Size);
    if (!RawPublicKey(x.get(), share_.data(), kX25519Size, st)) return;
    if (!ikm_.ok() || !k_->ok() || !zm_.ok()) {
      st->Fail(code::kCryptoFailure, "out of memory");
      return;
    }
    if (!X25519Derive(lc_, x.get(), client_pk, ikm_.data(), st)) return;
    Pkey pub(MlKemImportPublicKey(lc_, g_->kem, ek, g_->ek_size, st), EVP_PKEY_free);
    std::vector<uint8_t> ct;
    if (!pub || !MlKemEncapsulate(lc_, g_->kem, pub.get(), nullptr, &ct, &zm_, st)) return;
    share_.insert(share_.end(), ct.begin(), ct.end());
    std::memcpy(ikm_.data() + kX25519Size, zm_.data(), kMlKemSecretSize);
    Combine(lc_, label_, version_, g_->id, client_pk, share_.data(), ek, g_->ek_size, share_.data() + kX25519Size,
            g_->ct_size, ikm_, k_.get(), st);
  }
  Napi::Value Result(Napi::Env env) {
    Napi::Object out = Napi::Object::New(env);
    out.Set("share", CopyToBuffer(env, share_.data(), share_.size()));
    out.Set("secret", Secret::Wrap(env, std::move(k_)));
    return out;
  }

 private:
  LibraryContext* lc_;
  const Group* g_;
  uint16_t version_;
  std::vector<uint8_t> client_share_, label_, share_;
  SecretBytes zm_{kMlKemSecretSize};
  SecretBytes ikm_{kX25519Size + kMlKemSecretSize};
  std::unique_ptr<SecretBytes> k_ = std::make_unique<SecretBytes>(kHybridSecretSize);
};

// The client's step: K from the server's share, with the client's two private keys.
class DecapsulateOp {
 public:
  // Takes one reference to each key: destroy() on a handle during a job frees only the handle's.
  DecapsulateOp(LibraryContext* lc, const Group* g, uint16_t version, EVP_PKEY* x, EVP_PKEY* m,
                const ByteView& client_share, const ByteView& server_share, const ByteView& label)
      : lc_(lc), g_(g), version_(version), x_(x), m_(m),
        client_share_(client_share.data, client_share.data + client_share.size),
        server_share_(server_share.data, server_share.data + server_share.size), label_(label.data, label.data + label.size) {
    EVP_PKEY_up_ref(x_);
    EVP_PKEY_up_ref(m_);
  }
  ~DecapsulateOp() {
    EVP_PKEY_free(x_);
    EVP_PKEY_free(m_);
  }
  DecapsulateOp(const DecapsulateOp&) = delete;  // owns what the destructor frees
  DecapsulateOp& operator=(const DecapsulateOp&) = delete;
  void Run(OpStatus* st) {
    if (!ikm_.ok() || !k_->ok() || !zm_.ok()) {
      st->Fail(code::kCryptoFailure, "out of memory");
      return;
    }
    const uint8_t* server_pk = server_share_.data();
    const uint8_t* ct = server_share_.data() + kX25519Size;
    if (!X25519Derive(lc_, x_, server_pk, ikm_.data(), st) ||
        !MlKemDecapsulate(lc_, m_, g_->kem, ct, g_->ct_size, &zm_, st)) {
      return;
    }
    std::memcpy(ikm_.data() + kX25519Size, zm_.data(), kMlKemSecretSize);
    Combine(lc_, label_, version_, g_->id, client_share_.data(), server_pk, client_share_.data() + kX25519Size,
            g_->ek_size, ct, g_->ct_size, ikm_, k_.get(), st);
  }
  Napi::Value Result(Napi::Env env) { return Secret::Wrap(env, std::move(k_)); }

 private:
  LibraryContext* lc_;
  const Group* g_;
  uint16_t version_;
  EVP_PKEY* x_;
  EVP_PKEY* m_;
  std::vector<uint8_t> client_share_, server_share_, label_;
  SecretBytes zm_{kMlKemSecretSize};
  SecretBytes ikm_{kX25519Size + kMlKemSecretSize};
  std::unique_ptr<SecretBytes> k_ = std::make_unique<SecretBytes>(kHybridSecretSize);
};

template <typename Op>
class OpJob : public PromiseJob {
 public:
  template <typename... Args>
  explicit OpJob(Args&&... args) : op_(std::forward<Args>(args)...) {}

 private:
  void Run(OpStatus* st) override { op_.Run(st); }
  Napi::Value Result(Napi::Env env) override { return op_.Result(env); }
  Op op_;
};

// Runs `op` now, or as a threadpool job when `async` (a Promise of the same result).
template <typename Op, typename... Args>
Napi::Value Start(Napi::Env env, bool async, Args&&... args) {
  if (async) return QueueJob<OpJob<Op>>(env, std::forward<Args>(args)...);
  Op op(std::forward<Args>(args)...);
  OpStatus st;
  op.Run(&st);
  if (st.ThrowIfFailed(env)) return env.Undefined();
  return op.Result(env);
}

bool AsyncArg(Napi::Env env, Napi::Value v, bool* async) {
  if (!v.IsBoolean()) {
    ThrowInvalidArgument(env, "async must be a boolean");
    return false;
  }
  *async = v.As<Napi::Boolean>().Value();
  return true;
}

bool VersionArg(Napi::Env env, Napi::Value v, uint16_t* version) {
  uint64_t n = 0;
  if (!GetInteger(env, v, "version", 0xffff, &n)) return false;
  *version = static_cast<uint16_t>(n);
  return true;
}

bool LabelArg(Napi::Env env, Napi::Value v, ByteView* label) {
  if (!GetBytes(env, v, "label", label)) return false;
  if (label->size == 0 || label->size > kMaxLabel) {
    ThrowInvalidArgument(env, "label must be 1 to 64 bytes");
    return false;
  }
  return true;
}

// hybridClientShare(group, async) -> { classical, mlkem, share } (or a Promise of it)
Napi::Value ClientShare(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LibraryContext* lc = StandardContext(env);
  const Group* g = lc == nullptr ? nullptr : GroupArg(env, info[0]);
  bool async = false;
  if (g == nullptr || !AsyncArg(env, info[1], &async)) return env.Undefined();
  return Start<ClientShareOp>(env, async, lc, g);
}

// hybridEncapsulate(group, version, clientShare, label, async) -> { share, secret } (or a Promise)
Napi::Value Encapsulate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LibraryContext* lc = StandardContext(env);
  const Group* g = lc == nullptr ? nullptr : GroupArg(env, info[0]);
  uint16_t version = 0;
  ByteView client_share, label;
  bool async = false;
  if (g == nullptr || !VersionArg(env, info[1], &version) ||
      !GetBytesOfSize(env, info[2], "clientShare", kX25519Size + g->ek_size, &client_share) ||
      !LabelArg(env, info[3], &label) || !AsyncArg(env, info[4], &async)) {
    return env.Undefined();
  }
  return Start<EncapsulateOp>(env, async, lc, g, version, client_share, label);
}

// hybridDecapsulate(group, version, classicalKey, mlkemKey, clientShare, serverShare, label, async)
//   -> Secret (or a Promise of it)
Napi::Value Decapsulate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LibraryContext* lc = StandardContext(env);
  const Group* g = lc == nullptr ? nullptr : GroupArg(env, info[0]);
  uint16_t version = 0;
  if (g == nullptr || !VersionArg(env, info[1], &version)) return env.Undefined();
  PrivateKey* x = PrivateKey::FromValue(env, info[2], KeyKind::kX25519, "classicalKey");
  PrivateKey* m = x == nullptr ? nullptr : PrivateKey::FromValue(env, info[3], g->kem, "mlkemKey");
  ByteView client_share, server_share, label;
  bool async = false;
  if (m == nullptr || !GetBytesOfSize(env, info[4], "clientShare", kX25519Size + g->ek_size, &client_share) ||
      !GetBytesOfSize(env, info[5], "serverShare", kX25519Size + g->ct_size, &server_share) ||
      !LabelArg(env, info[6], &label) || !AsyncArg(env, info[7], &async)) {
    return env.Undefined();
  }
  if (x->context() != lc || m->context() != lc) {
    ThrowError(env, code::kInvalidState, "the keys belong to another crypto mode");
    return env.Undefined();
  }
  return Start<DecapsulateOp>(env, async, lc, g, version, x->pkey(), m->pkey(), client_share, server_share, label);
}

}  // namespace

void InitHybrid(Napi::Env env, Napi::Object exports) {
  exports.Set("hybridClientShare", Napi::Function::New(env, ClientShare, "hybridClientShare"));
  exports.Set("hybridEncapsulate", Napi::Function::New(env, Encapsulate, "hybridEncapsulate"));
  exports.Set("hybridDecapsulate", Napi::Function::New(env, Decapsulate, "hybridDecapsulate"));
}

}  // namespace qt
