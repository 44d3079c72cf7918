// x509Parse and the certificate fields Certificate.info() reads, the public key
// Certificate.publicKey() decodes, and x509Verify's chain building and signature checks with
// the bundle's last certificate trusted and its first the leaf (a fixed time, CRL checking when
// CRLs are given). The unit is included so its internal functions are reachable unchanged.
//
// Input: one selector byte (bit 0: the rest is a CRL bundle, parsed and read; else a certificate
// bundle; bits 1-2: the purpose, 0 any / 1 server / 2 client), then
// PEM text or DER.
#include "../x509.cc"

#include "fuzz_common.h"

namespace {

// Reads every field Certificate::Info reads, through the same helpers.
void ReadFields(qt::LibraryContext* lc, X509* x) {
  using namespace qt;
  std::string s = NameString(X509_get_subject_name(x)) + NameString(X509_get_issuer_name(x));
  BIGNUM* serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), nullptr);
  char* serial_hex = serial ? BN_bn2hex(serial) : nullptr;
  OPENSSL_free(serial_hex);
  BN_free(serial);
  double t = 0;
  TimeMs(X509_get0_notBefore(x), &t);
  TimeMs(X509_get0_notAfter(x), &t);
  GENERAL_NAMES* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names); i++) {
    int type = 0;
    const void* value = GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(names, i), &type);
    if (type == GEN_DNS) {
      const ASN1_STRING* d = static_cast<const ASN1_STRING*>(value);
      s.append(reinterpret_cast<const char*>(ASN1_STRING_get0_data(d)), static_cast<size_t>(ASN1_STRING_length(d)));
    } else if (type == GEN_IPADD) {
      s += IpString(static_cast<const ASN1_OCTET_STRING*>(value));
    }
  }
  GENERAL_NAMES_free(names);
  (void)X509_get_key_usage(x);
  EXTENDED_KEY_USAGE* eku = static_cast<EXTENDED_KEY_USAGE*>(X509_get_ext_d2i(x, NID_ext_key_usage, nullptr, nullptr));
  for (int i = 0; eku != nullptr && i < sk_ASN1_OBJECT_num(eku); i++) {
    char oid[128];
    OBJ_obj2txt(oid, sizeof oid, sk_ASN1_OBJECT_value(eku, i), 1);
  }
  EXTENDED_KEY_USAGE_free(eku);
  BASIC_CONSTRAINTS* bc = static_cast<BASIC_CONSTRAINTS*>(X509_get_ext_d2i(x, NID_basic_constraints, nullptr, nullptr));
  int64_t path_len = -1;
  if (bc != nullptr && bc->ca != 0 && bc->pathlen != nullptr) ASN1_INTEGER_get_int64(&path_len, bc->pathlen);
  BASIC_CONSTRAINTS_free(bc);
  s += PublicKeyAlgorithm(x);
  (void)X509_self_signed(x, 0);
  ERR_clear_error();
  std::vector<uint8_t> spki, der;
  uint8_t fp[32];
  if (!SpkiDerOf(x, &spki) || !DerOf(x, &der) || !Sha256(lc, spki.data(), spki.size(), fp) ||
      !Sha256(lc, der.data(), der.size(), fp)) {
    std::abort();  // a parsed certificate always re-encodes
  }
  OpStatus st;
  KeyKind kind;
  EVP_PKEY_free(DecodeSpki(lc, spki.data(), spki.size(), &kind, &st));
  // Reparse (what x509Verify does to every input certificate) must accept what ParseDer did.
  X509* again = Reparse(lc, x);
  if (again == nullptr) std::abort();
  X509_free(again);
}

// The fields OpenSSL reads from a CRL during x509Verify's CRL check.
void ReadCrl(X509_CRL* crl) {
  std::string s = qt::NameString(X509_CRL_get_issuer(crl));
  STACK_OF(X509_REVOKED)* revoked = X509_CRL_get_REVOKED(crl);
  for (int i = 0; i < sk_X509_REVOKED_num(revoked); i++) {
    X509_REVOKED* r = sk_X509_REVOKED_value(revoked, i);
    X509_REVOKED* found = nullptr;
    X509_CRL_get0_by_serial(crl, &found, X509_REVOKED_get0_serialNumber(r));
  }
  double t = 0;
  if (X509_CRL_get0_lastUpdate(crl) != nullptr) qt::TimeMs(X509_CRL_get0_lastUpdate(crl), &t);
  if (X509_CRL_get0_nextUpdate(crl) != nullptr) qt::TimeMs(X509_CRL_get0_nextUpdate(crl), &t);
  ERR_clear_error();
}

void VerifyChain(qt::LibraryContext* lc, STACK_OF(X509)* certs, STACK_OF(X509_CRL)* crls, int purpose) {
  X509* leaf = sk_X509_value(certs, 0);
  X509* root = sk_X509_value(certs, sk_X509_num(certs) - 1);
  std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store(X509_STORE_new(), X509_STORE_free);
  std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> ctx(X509_STORE_CTX_new_ex(lc->ctx(), lc->propq()),
                                                                       X509_STORE_CTX_free);
  if (!store || !ctx || X509_STORE_add_cert(store.get(), root) != 1 ||
      X509_STORE_CTX_init(ctx.get(), store.get(), leaf, certs) != 1) {
    ERR_clear_error();
    return;
  }
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  if (crls != nullptr) {
    X509_STORE_CTX_set0_crls(ctx.get(), crls);
    X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
  }
  X509_VERIFY_PARAM_set_time(param, static_cast<time_t>(1798761600));  // 2027-01-01, inside the seeds' validity
  if (purpose != 0) {
    X509_STORE_CTX_set_purpose(ctx.get(), purpose == 1 ? X509_PURPOSE_SSL_SERVER : X509_PURPOSE_SSL_CLIENT);
  }
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS | X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
  X509_VERIFY_PARAM_set1_host(param, "server.example", 0);
  if (X509_verify_cert(ctx.get()) == 1) {
    STACK_OF(X509)* chain = X509_STORE_CTX_get1_chain(ctx.get());
    sk_X509_pop_free(chain, X509_free);
  }
  ERR_clear_error();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace qt;
  qt_fuzz::Input input(data, size);
  const uint8_t selector = input.Byte();
  if (input.left() > kMaxInput) return -1;
  LibraryContext* lc = qt_fuzz::Context();
  std::vector<uint8_t> in(input.rest(), input.rest() + input.left());
  std::string error;
  if ((selector & 1) != 0) {
    CrlStack crls;
    const bool ok = ParseCrls(lc, in, &crls, &error);
    if (ok) {
      for (int i = 0; i < sk_X509_CRL_num(crls.sk); i++) ReadCrl(sk_X509_CRL_value(crls.sk, i));
    }
    ERR_clear_error();
    return 0;
  }
  X509Stack certs;
  const bool ok = ParseCertificates(lc, in, &certs, &error);
  if (ok) {
    for (int i = 0; i < sk_X509_num(certs.sk); i++) ReadFields(lc, sk_X509_value(certs.sk, i));
    VerifyChain(lc, certs.sk, nullptr, (selector >> 1) & 3);
  }
  ERR_clear_error();
  return 0;
}
