// One private OpenSSL library context (OSSL_LIB_CTX) per mode, with the algorithms we use
// fetched once. Nothing here reads OPENSSL_CONF or OPENSSL_MODULES: providers are loaded
// explicitly, so the process-wide configuration that Node also reads never reaches us.
// The standard mode uses the built-in default provider; FIPS mode is a second instance of this
// class over the FIPS provider (see fips/ and docs/FIPS.md), not a different code path.
#pragma once
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/types.h>

#include <memory>
#include <string>
#include <vector>

namespace qt {

class LibraryContext {
 public:
  // The process-wide standard context, created on first use and never freed: libuv threadpool
  // threads keep per-thread DRBG state that refers to the context until they exit, which is after
  // any Node environment is torn down, so freeing it earlier would be a use-after-free.
  // Returns nullptr and sets *error when a provider or algorithm is missing.
  static LibraryContext* Standard(std::string* error);
  // The process-wide FIPS context: the FIPS provider (loaded from `module_dir` with the
  // configuration file `config_path`, which holds the module MAC generated on this machine) and
  // the base provider; default properties fips=yes. Created once; later calls return it.
  static LibraryContext* Fips(const std::string& module_dir, const std::string& config_path, std::string* error);
  // Runs the FIPS provider's own power-on self-tests again (OSSL_PROVIDER_self_test).
  bool ProviderSelfTest() const;
  ~LibraryContext();
  LibraryContext(const LibraryContext&) = delete;
  LibraryContext& operator=(const LibraryContext&) = delete;

  OSSL_LIB_CTX* ctx() const { return ctx_; }
  bool fips() const { return fips_; }
  const char* name() const { return fips_ ? "fips" : "standard"; }
  // Property query for key-management/KEM/derive fetches (X25519 needs its own in FIPS mode).
  const char* propq() const { return propq_.c_str(); }
  const char* x25519_propq() const { return x25519_propq_.c_str(); }

  const EVP_MD* shake256() const { return shake256_; }
  const EVP_MD* sha3_256() const { return sha3_256_; }
  const EVP_MD* sha384() const { return sha384_; }
  // HKDF (RFC 5869, SP 800-56C rev. 2 two-step) and HMAC; the digest is a parameter of each call.
  EVP_KDF* hkdf() const { return hkdf_; }
  EVP_MAC* hmac() const { return hmac_; }
  // HKDF and HMAC contexts with their digest (SHA2-256 or SHA2-384) already set, to duplicate
  // per call: setting the digest by name fetches it each time, which costs more than the HMACs of
  // a short derivation. Read-only after creation (duplicating only reads them).
  const EVP_KDF_CTX* hkdf_template(bool sha384) const { return sha384 ? hkdf_sha384_ : hkdf_sha256_; }
  const EVP_MAC_CTX* hmac_template(bool sha384) const { return sha384 ? hmac_sha384_ : hmac_sha256_; }
  const EVP_CIPHER* aes256gcm() const { return aes256gcm_; }
  // nullptr where the context has no ChaCha20-Poly1305 (the FIPS provider).
  const EVP_CIPHER* chacha20poly1305() const { return chacha20poly1305_; }

  struct ProviderInfo {
    std::string name, version, buildinfo;
    bool active;
  };
  std::vector<ProviderInfo> Providers() const;

 private:
  LibraryContext() = default;
  static std::unique_ptr<LibraryContext> CreateStandard(std::string* error);
  static std::unique_ptr<LibraryContext> CreateFips(const std::string& module_dir, const std::string& config_path,
                                                    std::string* error);
  bool FetchAlgorithms(std::string* error);

  OSSL_LIB_CTX* ctx_ = nullptr;
  bool fips_ = false;
  std::string propq_, x25519_propq_;
  std::vector<OSSL_PROVIDER*> providers_;
  EVP_MD* shake256_ = nullptr;
  EVP_MD* sha3_256_ = nullptr;
  EVP_MD* sha384_ = nullptr;
  EVP_KDF* hkdf_ = nullptr;
  EVP_MAC* hmac_ = nullptr;
  EVP_KDF_CTX* hkdf_sha256_ = nullptr;
  EVP_KDF_CTX* hkdf_sha384_ = nullptr;
  EVP_MAC_CTX* hmac_sha256_ = nullptr;
  EVP_MAC_CTX* hmac_sha384_ = nullptr;
  EVP_CIPHER* aes256gcm_ = nullptr;
  EVP_CIPHER* chacha20poly1305_ = nullptr;
};

// Once per process: initialise our (static, hidden) libcrypto without any configuration file and
// put the `null` provider in its global default context, so code that forgets to pass a private
// context fails loudly instead of silently using an unconfigured default.
bool InitOpenSslOnce(std::string* error);

// The version string of the libcrypto linked into the addon (not Node's).
const char* LinkedOpenSslVersion();

// The module error state (FIPS 140-3): once a self-test or integrity check fails, every crypto
// service refuses to run until the process restarts. Process-wide and permanent by design.
void EnterErrorState(const std::string& reason);
bool InErrorState();
std::string ErrorStateReason();

}  // namespace qt
