#include "library_context.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/kdf.h>

#include <atomic>
#include <mutex>

#include "errors.h"

namespace qt {

bool InitOpenSslOnce(std::string* error) {
  static std::once_flag once;
  static bool ok = false;
  static std::string init_error;
  std::call_once(once, [] {
    // NO_ATEXIT: Node may unload environments after atexit handlers would have torn down OpenSSL.
    if (OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG | OPENSSL_INIT_NO_ATEXIT, nullptr) != 1) {
      init_error = "OpenSSL initialisation failed: " + DrainOpenSslErrors();
      return;
    }
    // Deliberately never unloaded: it guards the global context for the life of the process.
    if (OSSL_PROVIDER_load(nullptr, "null") == nullptr) {
      init_error = "cannot load the null provider: " + DrainOpenSslErrors();
      return;
    }
    ok = true;
  });
  if (!ok) *error = init_error;
  return ok;
}

const char* LinkedOpenSslVersion() { return OpenSSL_version(OPENSSL_VERSION); }

namespace {
std::atomic<bool> g_error_state{false};
std::mutex g_error_mutex;
std::string g_error_reason;
}  // namespace

void EnterErrorState(const std::string& reason) {
  std::lock_guard<std::mutex> lock(g_error_mutex);
  if (!g_error_state.exchange(true)) g_error_reason = reason;
}

bool InErrorState() { return g_error_state.load(); }

std::string ErrorStateReason() {
  std::lock_guard<std::mutex> lock(g_error_mutex);
  return g_error_reason;
}

LibraryContext* LibraryContext::Fips(const std::string& module_dir, const std::string& config_path, std::string* error) {
  static std::mutex m;
  static LibraryContext* fips = nullptr;
  std::lock_guard<std::mutex> lock(m);
  if (fips == nullptr) fips = CreateFips(module_dir, config_path, error).release();
  return fips;
}

std::unique_ptr<LibraryContext> LibraryContext::CreateFips(const std::string& module_dir, const std::string& config_path,
                                                          std::string* error) {
  std::unique_ptr<LibraryContext> lc(new LibraryContext());
  lc->fips_ = true;
  // X25519 is in the FIPS module as a non-approved service (fips=no): fetched explicitly.
  lc->x25519_propq_ = "fips=no";
  lc->ctx_ = OSSL_LIB_CTX_new();
  if (lc->ctx_ == nullptr) {
    *error = "OSSL_LIB_CTX_new failed: " + DrainOpenSslErrors();
    return nullptr;
  }
  // The module is found in our own directory, never through OPENSSL_MODULES.
  if (OSSL_PROVIDER_set_default_search_path(lc->ctx_, module_dir.c_str()) != 1 ||
      OSSL_LIB_CTX_load_config(lc->ctx_, config_path.c_str()) != 1) {
    *error = "cannot load the FIPS configuration " + config_path + ": " + DrainOpenSslErrors();
    return nullptr;
  }
  for (const char* name : {"fips", "base"}) {
    // Already activated by the configuration; loading again takes a reference we can query.
    OSSL_PROVIDER* p = OSSL_PROVIDER_load(lc->ctx_, name);
    if (p == nullptr) {
      *error = std::string("the ") + name + " provider is not available: " + DrainOpenSslErrors();
      return nullptr;
    }
    lc->providers_.push_back(p);
  }
  if (EVP_default_properties_enable_fips(lc->ctx_, 1) != 1) {
    *error = "cannot set default properties fips=yes: " + DrainOpenSslErrors();
    return nullptr;
  }
  if (!lc->FetchAlgorithms(error)) return nullptr;
  return lc;
}

bool LibraryContext::ProviderSelfTest() const {
  for (OSSL_PROVIDER* p : providers_) {
    if (std::string(OSSL_PROVIDER_get0_name(p)) == "fips") return OSSL_PROVIDER_self_test(p) == 1;
  }
  return false;
}

LibraryContext* LibraryContext::Standard(std::string* error) {
  static std::once_flag once;
  static LibraryContext* standard = nullptr;
  static std::string create_error;
  std::call_once(once, [] { standard = CreateStandard(&create_error).release(); });
  if (standard == nullptr) *error = create_error;
  return standard;
}

std::unique_ptr<LibraryContext> LibraryContext::CreateStandard(std::string* error) {
  std::unique_ptr<LibraryContext> lc(new LibraryContext());
  lc->ctx_ = OSSL_LIB_CTX_new();
  if (lc->ctx_ == nullptr) {
    *error = "OSSL_LIB_CTX_new failed: " + DrainOpenSslErrors();
    return nullptr;
  }
  // The default provider is built into libcrypto: no module path is involved.
  OSSL_PROVIDER* def = OSSL_PROVIDER_load(lc->ctx_, "default");
  if (def == nullptr) {
    *error = "cannot load the default provider: " + DrainOpenSslErrors();
    return nullptr;
  }
  lc->providers_.push_back(def);
  if (!lc->FetchAlgorithms(error)) return nullptr;
  return lc;
}

bool LibraryContext::FetchAlgorithms(std::string* error) {
  const char* pq = propq_.c_str();
  shake256_ = EVP_MD_fetch(ctx_, "SHAKE256", pq);
  sha3_256_ = EVP_MD_fetch(ctx_, "SHA3-256", pq);
  aes256gcm_ = EVP_CIPHER_fetch(ctx_, "AES-256-GCM", pq);
  sha384_ = EVP_MD_fetch(ctx_, "SHA2-384", pq);
  hkdf_ = EVP_KDF_fetch(ctx_, "HKDF", pq);
  hmac_ = EVP_MAC_fetch(ctx_, "HMAC", pq);
  if (hkdf_ != nullptr && hmac_ != nullptr) {
    auto kdf_with = [&](const char* md) -> EVP_KDF_CTX* {
      EVP_KDF_CTX* c = EVP_KDF_CTX_new(hkdf_);
      const OSSL_PARAM p[] = {OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>(md), 0),
                              OSSL_PARAM_construct_end()};
      if (c != nullptr && EVP_KDF_CTX_set_params(c, p) != 1) {
        EVP_KDF_CTX_free(c);
        c = nullptr;
      }
      return c;
    };
    auto mac_with = [&](const char* md) -> EVP_MAC_CTX* {
      EVP_MAC_CTX* c = EVP_MAC_CTX_new(hmac_);
      const OSSL_PARAM p[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>(md), 0),
                              OSSL_PARAM_construct_end()};
      if (c != nullptr && EVP_MAC_CTX_set_params(c, p) != 1) {
        EVP_MAC_CTX_free(c);
        c = nullptr;
      }
      return c;
    };
    hkdf_sha256_ = kdf_with("SHA2-256");
    hkdf_sha384_ = kdf_with("SHA2-384");
    hmac_sha256_ = mac_with("SHA2-256");
    hmac_sha384_ = mac_with("SHA2-384");
  }
  if (shake256_ == nullptr || sha3_256_ == nullptr || aes256gcm_ == nullptr || sha384_ == nullptr ||
      hkdf_ == nullptr || hmac_ == nullptr || hkdf_sha256_ == nullptr || hkdf_sha384_ == nullptr ||
      hmac_sha256_ == nullptr || hmac_sha384_ == nullptr) {
    *error = std::string("a required algorithm is missing from the ") + name() +
             " library context: " + DrainOpenSslErrors();
    return false;
  }
#ifndef QT_NO_CHACHA20
  chacha20poly1305_ = EVP_CIPHER_fetch(ctx_, "ChaCha20-Poly1305", pq);
  ERR_clear_error();  // absent in FIPS: not an error, the suite is simply not offered
#endif
  return true;
}

LibraryContext::~LibraryContext() {
  EVP_MD_free(shake256_);
  EVP_MD_free(sha3_256_);
  EVP_CIPHER_free(aes256gcm_);
  EVP_CIPHER_free(chacha20poly1305_);
  EVP_MD_free(sha384_);
  EVP_KDF_CTX_free(hkdf_sha256_);
  EVP_KDF_CTX_free(hkdf_sha384_);
  EVP_MAC_CTX_free(hmac_sha256_);
  EVP_MAC_CTX_free(hmac_sha384_);
  EVP_KDF_free(hkdf_);
  EVP_MAC_free(hmac_);
  for (OSSL_PROVIDER* p : providers_) OSSL_PROVIDER_unload(p);
  OSSL_LIB_CTX_free(ctx_);
}

std::vector<LibraryContext::ProviderInfo> LibraryContext::Providers() const {
  std::vector<ProviderInfo> out;
  for (OSSL_PROVIDER* p : providers_) {
    char* name = nullptr;
    char* version = nullptr;
    char* buildinfo = nullptr;
    int status = 0;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_ptr(OSSL_PROV_PARAM_NAME, &name, 0),
        OSSL_PARAM_construct_utf8_ptr(OSSL_PROV_PARAM_VERSION, &version, 0),
        OSSL_PARAM_construct_utf8_ptr(OSSL_PROV_PARAM_BUILDINFO, &buildinfo, 0),
        OSSL_PARAM_construct_int(OSSL_PROV_PARAM_STATUS, &status),
        OSSL_PARAM_construct_end(),
    };
    OSSL_PROVIDER_get_params(p, params);
    ERR_clear_error();
    out.push_back({name ? name : OSSL_PROVIDER_get0_name(p), version ? version : "",
                   buildinfo ? buildinfo : "", status == 1});
  }
  return out;
}

}  // namespace qt
