#include "x509.h"

#include <arpa/inet.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "addon_data.h"
#include "async_job.h"
#include "bytes.h"
#include "errors.h"
#include "pem.h"
#include "private_key.h"

namespace qt {

namespace {

// Error codes of this unit (docs/ERRORS.md).
constexpr const char* kMalformed = "ERR_QT_CERTIFICATE_MALFORMED";
constexpr const char* kUntrusted = "ERR_QT_CERTIFICATE_UNTRUSTED";
constexpr const char* kExpired = "ERR_QT_CERTIFICATE_EXPIRED";
constexpr const char* kNameMismatch = "ERR_QT_CERTIFICATE_NAME_MISMATCH";
constexpr const char* kRevoked = "ERR_QT_CERTIFICATE_REVOKED";
constexpr const char* kBadSignature = "ERR_QT_CERTIFICATE_BAD_SIGNATURE";
constexpr const char* kWrongPurpose = "ERR_QT_CERTIFICATE_WRONG_PURPOSE";
constexpr const char* kRevocationUnknown = "ERR_QT_CERTIFICATE_REVOCATION_UNKNOWN";

constexpr size_t kMaxInput = 4 << 20;  // a bundle or a CRL
constexpr uint32_t kMaxListLength = 1000;  // certificates, CRLs, names or revoked serials in one call
constexpr uint64_t kMaxTime = 253402300799;  // 9999-12-31T23:59:59Z, the last GeneralizedTime
constexpr size_t kMaxSerial = 20;  // RFC 5280 §4.1.2.2
constexpr size_t kMaxAttribute = 64;  // ub-common-name and friends
constexpr int kSkidSize = 20;

const napi_type_tag kCertificateTag = {0x51c3e8a02f9b4d67ULL, 0xc2d47a9e06b13f58ULL};

// What native code hands the Certificate constructor (through an External).
struct CertificateArgs {
  X509* x;
  LibraryContext* lc;
};

using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;
using CrlPtr = std::unique_ptr<X509_CRL, decltype(&X509_CRL_free)>;
using Bio = std::unique_ptr<BIO, decltype(&BIO_free)>;
using Pkey = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

struct X509Stack {
  STACK_OF(X509)* sk = sk_X509_new_null();
  ~X509Stack() { sk_X509_pop_free(sk, X509_free); }
  X509Stack() = default;
  X509Stack(const X509Stack&) = delete;  // owns what the destructor frees
  X509Stack& operator=(const X509Stack&) = delete;
};
struct CrlStack {
  STACK_OF(X509_CRL)* sk = sk_X509_CRL_new_null();
  ~CrlStack() { sk_X509_CRL_pop_free(sk, X509_CRL_free); }
  CrlStack() = default;
  CrlStack(const CrlStack&) = delete;  // owns what the destructor frees
  CrlStack& operator=(const CrlStack&) = delete;
};

// ---------------------------------------------------------------------------------------------
// The Certificate handle: an X509 parsed in the context that was active then. It holds no secret,
// so it has no destroy(): the garbage collector frees it.

class Certificate : public Napi::ObjectWrap<Certificate> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Certificate",
                       {
                           InstanceMethod<&Certificate::Info>("info"),
                           InstanceMethod<&Certificate::PublicKeyHandle>("publicKey"),
                           InstanceMethod<&Certificate::Der>("der"),
                       });
  }

  // Takes ownership of x.
  static Napi::Value Wrap(Napi::Env env, X509* x, LibraryContext* lc) {
    CertificateArgs args{x, lc};
    Napi::Object obj = Data(env).certificate_constructor.New({Napi::External<CertificateArgs>::New(env, &args)});
    if (obj.IsEmpty()) X509_free(x);
    return obj;
  }

  static bool Is(Napi::Env env, Napi::Value v) {
    bool tagged = false;
    if (v.IsObject()) napi_check_object_type_tag(env, v, &kCertificateTag, &tagged);
    return tagged;
  }

  static Certificate* FromValue(Napi::Env env, Napi::Value v, const std::string& what) {
    if (!Is(env, v)) {
      ThrowInvalidArgument(env, what + " must be a Certificate handle");
      return nullptr;
    }
    return Unwrap(v.As<Napi::Object>());
  }

  explicit Certificate(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Certificate>(info) {
    if (info.Length() != 1 || !info[0].IsExternal()) {
      ThrowInvalidArgument(info.Env(), "Certificate handles are created by x509 functions only");
      return;
    }
    CertificateArgs* args = info[0].As<Napi::External<CertificateArgs>>().Data();
    x_ = args->x;
    lc_ = args->lc;
    napi_type_tag_object(info.Env(), info.This(), &kCertificateTag);
  }
  ~Certificate() override { X509_free(x_); }
  Certificate(const Certificate&) = delete;  // owns what the destructor frees
  Certificate& operator=(const Certificate&) = delete;

  X509* x509() const { return x_; }

 private:
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value PublicKeyHandle(const Napi::CallbackInfo& info);
  Napi::Value Der(const Napi::CallbackInfo& info);

  X509* x_ = nullptr;
  LibraryContext* lc_ = nullptr;
};

// ---------------------------------------------------------------------------------------------
// Parsing

// One certificate from DER (the whole input) in `lc`; nullptr when it does not parse or its
// extensions are invalid (duplicates, undecodable key usage or names...).
X509* ParseDer(LibraryContext* lc, const uint8_t* der, size_t len) {
  X509* x = X509_new_ex(lc->ctx(), lc->propq());
  const unsigned char* p = der;
  if (x == nullptr || d2i_X509(&x, &p, static_cast<long>(len)) == nullptr) {
    X509_free(x);  // d2i freed and cleared it on failure
    return nullptr;
  }
  // Computes the extension cache; EXFLAG_INVALID marks extensions that do not decode.
  X509_check_purpose(x, -1, 0);
  if (p != der + len || (X509_get_extension_flags(x) & EXFLAG_INVALID) != 0) {
    X509_free(x);
    return nullptr;
  }
  return x;
}

X509_CRL* ParseCrlDer(LibraryContext* lc, const uint8_t* der, size_t len) {
  X509_CRL* crl = X509_CRL_new_ex(lc->ctx(), lc->propq());
  const unsigned char* p = der;
  if (crl == nullptr || d2i_X509_CRL(&crl, &p, static_cast<long>(len)) == nullptr) {
    X509_CRL_free(crl);
    return nullptr;
  }
  if (p != der + len) {
    X509_CRL_free(crl);
    return nullptr;
  }
  return crl;
}

bool LooksLikePem(const std::vector<uint8_t>& in) {
  static const char kBegin[] = "-----BEGIN ";
  return std::search(in.begin(), in.end(), kBegin, kBegin + sizeof kBegin - 1) != in.end();
}

// Calls `each(der, len)` for every PEM block named `pem_name` (any other block is an error), or
// once for DER input. false, with *error set, when the input is malformed or empty.
template <typename F>
bool ForEachBlock(const std::vector<uint8_t>& in, const char* pem_name, F each, std::string* error) {
  if (!LooksLikePem(in)) {
    if (in.empty()) {
      *error = "empty input";
      return false;
    }
    return each(in.data(), in.size());
  }
  Bio bio(BIO_new_mem_buf(in.data(), static_cast<int>(in.size())), BIO_free);
  if (!bio) return false;
  for (int count = 0;; count++) {
    char* name = nullptr;
    char* header = nullptr;
    unsigned char* data = nullptr;
    long len = 0;
    if (PEM_read_bio_ex(bio.get(), &name, &header, &data, &len, PEM_FLAG_ONLY_B64) != 1) {
      const unsigned long e = ERR_peek_last_error();
      const bool end = count > 0 && ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
      if (end) ERR_clear_error();
      if (!end) *error = count == 0 ? "no PEM block" : "a PEM block is malformed";
      return end;
    }
    std::unique_ptr<char, void (*)(char*)> n(name, [](char* s) { OPENSSL_free(s); });
    std::unique_ptr<char, void (*)(char*)> h(header, [](char* s) { OPENSSL_free(s); });
    std::unique_ptr<unsigned char, void (*)(unsigned char*)> d(data, [](unsigned char* s) { OPENSSL_free(s); });
    if (std::strcmp(name, pem_name) != 0) {
      *error = std::string("a PEM block is not \"") + pem_name + "\"";
      return false;
    }
    if (!each(data, static_cast<size_t>(len))) {
      *error = "a block does not parse";
      return false;
    }
  }
}

// Reads the elements of an array argument without taking any pointer (a getter may run JS);
// callers unwrap them afterwards, all JS done.
bool ReadArray(Napi::Env env, Napi::Value v, const char* what, std::vector<Napi::Value>* out) {
  if (!v.IsArray()) {
    ThrowInvalidArgument(env, std::string(what) + " must be an array");
    return false;
  }
  Napi::Array array = v.As<Napi::Array>();
  const uint32_t n = array.Length();
  if (n > kMaxListLength) {
    ThrowInvalidArgument(env, std::string(what) + " has more than 1000 elements");
    return false;
  }
  for (uint32_t i = 0; i < n; i++) {
    Napi::Value e = array.Get(i);
    if (env.IsExceptionPending()) return false;
    out->push_back(e);
  }
  return true;
}

bool StringValue(Napi::Env env, Napi::Value v, const char* what, std::string* out) {
  if (!v.IsString()) {
    ThrowInvalidArgument(env, std::string(what) + " must be a string");
    return false;
  }
  *out = v.As<Napi::String>().Utf8Value();
  if (out->empty() || out->find('\0') != std::string::npos) {
    ThrowInvalidArgument(env, std::string(what) + " must be a non-empty string without NUL characters");
    return false;
  }
  return true;
}

// A private snapshot of a byte argument that OpenSSL parses in several passes.
bool InputArg(Napi::Env env, Napi::Value v, const char* what, std::vector<uint8_t>* out) {
  ByteView in;
  if (!GetBytes(env, v, what, &in)) return false;
  if (in.size > kMaxInput) {
    ThrowInvalidArgument(env, std::string(what) + " must be at most 4 MiB");
    return false;
  }
  out->assign(in.data, in.data + in.size);
  return true;
}

// ---------------------------------------------------------------------------------------------
// Certificate fields

std::string NameString(const X509_NAME* name) {
  Bio bio(BIO_new(BIO_s_mem()), BIO_free);
  // RFC 4514 (RFC 2253 order and escaping), UTF-8 kept as it is rather than hex-escaped.
  const unsigned long flags = XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB;
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, flags) < 0) return "";
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return len > 0 ? std::string(data, static_cast<size_t>(len)) : "";
}

// Milliseconds since the Unix epoch.
bool TimeMs(const ASN1_TIME* t, double* ms) {
  std::unique_ptr<ASN1_TIME, decltype(&ASN1_TIME_free)> epoch(ASN1_TIME_set(nullptr, 0), ASN1_TIME_free);
  int days = 0, secs = 0;
  if (!epoch || ASN1_TIME_diff(&days, &secs, epoch.get(), t) != 1) return false;
  *ms = (static_cast<double>(days) * 86400.0 + secs) * 1000.0;
  return true;
}

std::string IpString(const ASN1_OCTET_STRING* ip) {
  char buf[INET6_ADDRSTRLEN] = {0};
  const int len = ASN1_STRING_length(ip);
  const unsigned char* d = ASN1_STRING_get0_data(ip);
  if (len == 4 && inet_ntop(AF_INET, d, buf, sizeof buf) != nullptr) return buf;
  if (len == 16 && inet_ntop(AF_INET6, d, buf, sizeof buf) != nullptr) return buf;
  return "";  // an address of another length (a name constraint's mask has no place in a SAN)
}

Napi::Value KeyUsageNames(Napi::Env env, X509* x) {
  const uint32_t ku = X509_get_key_usage(x);
  if ((X509_get_extension_flags(x) & EXFLAG_KUSAGE) == 0) return env.Null();
  static const struct {
    uint32_t bit;
    const char* name;
  } kNames[] = {{KU_DIGITAL_SIGNATURE, "digitalSignature"}, {KU_NON_REPUDIATION, "nonRepudiation"},
                {KU_KEY_ENCIPHERMENT, "keyEncipherment"}, {KU_DATA_ENCIPHERMENT, "dataEncipherment"},
                {KU_KEY_AGREEMENT, "keyAgreement"},       {KU_KEY_CERT_SIGN, "keyCertSign"},
                {KU_CRL_SIGN, "cRLSign"},                 {KU_ENCIPHER_ONLY, "encipherOnly"},
                {KU_DECIPHER_ONLY, "decipherOnly"}};
  Napi::Array out = Napi::Array::New(env);
  uint32_t i = 0;
  for (const auto& n : kNames) {
    if ((ku & n.bit) != 0) out.Set(i++, n.name);
  }
  return out;
}

Napi::Value ExtendedKeyUsageNames(Napi::Env env, X509* x) {
  EXTENDED_KEY_USAGE* eku =
      static_cast<EXTENDED_KEY_USAGE*>(X509_get_ext_d2i(x, NID_ext_key_usage, nullptr, nullptr));
  if (eku == nullptr) return env.Null();
  Napi::Array out = Napi::Array::New(env);
  for (int i = 0; i < sk_ASN1_OBJECT_num(eku); i++) {
    const ASN1_OBJECT* obj = sk_ASN1_OBJECT_value(eku, i);
    const char* name = nullptr;
    switch (OBJ_obj2nid(obj)) {
      case NID_server_auth: name = "serverAuth"; break;
      case NID_client_auth: name = "clientAuth"; break;
      case NID_code_sign: name = "codeSigning"; break;
      case NID_email_protect: name = "emailProtection"; break;
      case NID_time_stamp: name = "timeStamping"; break;
      case NID_OCSP_sign: name = "OCSPSigning"; break;
      case NID_anyExtendedKeyUsage: name = "anyExtendedKeyUsage"; break;
      default: break;
    }
    char oid[128];
    if (name == nullptr) {
      if (OBJ_obj2txt(oid, sizeof oid, obj, 1) <= 0) continue;
      name = oid;
    }
    out.Set(static_cast<uint32_t>(out.Length()), name);
  }
  EXTENDED_KEY_USAGE_free(eku);
  return out;
}

std::string PublicKeyAlgorithm(X509* x) {
  KeyKind kind{};
  EVP_PKEY* pkey = X509_get0_pubkey(x);
  ERR_clear_error();  // a key this context cannot decode is simply named by its OID below
  if (pkey != nullptr && KindOfKey(pkey, &kind)) return KeyKindName(kind);
  ASN1_OBJECT* oid = nullptr;
  if (X509_PUBKEY_get0_param(&oid, nullptr, nullptr, nullptr, X509_get_X509_PUBKEY(x)) != 1) return "unknown";
  const int nid = OBJ_obj2nid(oid);
  if (nid != NID_undef) return OBJ_nid2ln(nid);
  char buf[128];
  return OBJ_obj2txt(buf, sizeof buf, oid, 1) > 0 ? buf : "unknown";
}

bool SpkiDerOf(X509* x, std::vector<uint8_t>* out) {
  unsigned char* der = nullptr;
  const int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
  if (len <= 0) return false;
  out->assign(der, der + len);
  OPENSSL_free(der);
  return true;
}

bool DerOf(X509* x, std::vector<uint8_t>* out) {
  unsigned char* der = nullptr;
  const int len = i2d_X509(x, &der);
  if (len <= 0) return false;
  out->assign(der, der + len);
  OPENSSL_free(der);
  return true;
}

// info() -> the fields, read once by lib/crypto/x509.ts.
Napi::Value Certificate::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!RequireOperational(env)) return env.Undefined();
  X509* x = x_;
  Napi::Object out = Napi::Object::New(env);
  out.Set("version", static_cast<double>(X509_get_version(x) + 1));
  out.Set("subject", NameString(X509_get_subject_name(x)));
  out.Set("issuer", NameString(X509_get_issuer_name(x)));

  BIGNUM* serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), nullptr);
  char* serial_hex = serial ? BN_bn2hex(serial) : nullptr;
  out.Set("serialNumber", serial_hex ? serial_hex : "");
  OPENSSL_free(serial_hex);
  BN_free(serial);

  double not_before = 0, not_after = 0;
  if (!TimeMs(X509_get0_notBefore(x), &not_before) || !TimeMs(X509_get0_notAfter(x), &not_after)) {
    ThrowError(env, kMalformed, "the certificate's validity period does not parse");
    return env.Undefined();
  }
  out.Set("notBefore", not_before);
  out.Set("notAfter", not_after);

  Napi::Array dns = Napi::Array::New(env);
  Napi::Array ips = Napi::Array::New(env);
  GENERAL_NAMES* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names); i++) {
    const GENERAL_NAME* g = sk_GENERAL_NAME_value(names, i);
    int type = 0;
    const void* value = GENERAL_NAME_get0_value(g, &type);
    if (type == GEN_DNS) {
      const ASN1_STRING* s = static_cast<const ASN1_STRING*>(value);
      dns.Set(dns.Length(), std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                        static_cast<size_t>(ASN1_STRING_length(s))));
    } else if (type == GEN_IPADD) {
      std::string ip = IpString(static_cast<const ASN1_OCTET_STRING*>(value));
      if (!ip.empty()) ips.Set(ips.Length(), ip);
    }
  }
  GENERAL_NAMES_free(names);
  out.Set("dnsNames", dns);
  out.Set("ipAddresses", ips);

  out.Set("keyUsage", KeyUsageNames(env, x));
  out.Set("extendedKeyUsage", ExtendedKeyUsageNames(env, x));
  BASIC_CONSTRAINTS* bc = static_cast<BASIC_CONSTRAINTS*>(X509_get_ext_d2i(x, NID_basic_constraints, nullptr, nullptr));
  out.Set("isCA", bc != nullptr && bc->ca != 0);
  int64_t path_len = -1;
  if (bc != nullptr && bc->ca != 0 && bc->pathlen != nullptr && ASN1_INTEGER_get_int64(&path_len, bc->pathlen) != 1) {
    path_len = -1;
  }
  out.Set("pathLength", path_len >= 0 ? Napi::Value(Napi::Number::New(env, static_cast<double>(path_len))) : env.Null());
  BASIC_CONSTRAINTS_free(bc);

  out.Set("publicKeyAlgorithm", PublicKeyAlgorithm(x));
  const int sig_nid = X509_get_signature_nid(x);
  out.Set("signatureAlgorithm", sig_nid != NID_undef ? OBJ_nid2ln(sig_nid) : "unknown");
  out.Set("selfSigned", X509_self_signed(x, 0) == 1);
  ERR_clear_error();

  std::vector<uint8_t> spki, der;
  uint8_t spki_fp[32], fp[32];
  LibraryContext* lc = Data(env).active_context;
  if (!SpkiDerOf(x, &spki) || !DerOf(x, &der) || !Sha256(lc, spki.data(), spki.size(), spki_fp) ||
      !Sha256(lc, der.data(), der.size(), fp)) {
    ThrowError(env, code::kCryptoFailure, "cannot fingerprint the certificate");
    return env.Undefined();
  }
  out.Set("spkiFingerprint", CopyToBuffer(env, spki_fp, sizeof spki_fp));
  out.Set("fingerprint256", CopyToBuffer(env, fp, sizeof fp));
  return out;
}

// publicKey() -> PublicKey in the active context; ERR_QT_UNSUPPORTED_ALGORITHM for a key that is
// none of ours.
Napi::Value Certificate::PublicKeyHandle(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LibraryContext* lc = Operational(env);
  if (lc == nullptr) return env.Undefined();
  std::vector<uint8_t> spki;
  OpStatus st;
  KeyKind kind{};
  EVP_PKEY* pkey = nullptr;
  if (!SpkiDerOf(x_, &spki)) {
    st.Fail(code::kCryptoFailure, "cannot encode the certificate's public key");
  } else {
    pkey = DecodeSpki(lc, spki.data(), spki.size(), &kind, &st);
  }
  if (st.ThrowIfFailed(env)) return env.Undefined();
  return PublicKey::Wrap(env, pkey, kind, lc);
}

// der() -> Buffer
Napi::Value Certificate::Der(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<uint8_t> der;
  if (!DerOf(x_, &der)) {
    ThrowError(env, code::kCryptoFailure, "cannot encode the certificate");
    return env.Undefined();
  }
  return CopyToBuffer(env, der.data(), der.size());
}

// One DER certificate or every "CERTIFICATE" PEM block of `in`, appended to `certs` (at most
// kMaxListLength); false with `error` set on the first that does not parse. The N-API wrappers
// and the fuzz harness (native/fuzz/x509.cc) share it.
bool ParseCertificates(LibraryContext* lc, const std::vector<uint8_t>& in, X509Stack* certs, std::string* error) {
  return certs->sk != nullptr && ForEachBlock(in, PEM_STRING_X509, [&](const uint8_t* der, size_t len) {
    X509* x = ParseDer(lc, der, len);
    if (x == nullptr) return false;
    if (sk_X509_push(certs->sk, x) <= 0) {
      X509_free(x);
      return false;
    }
    return sk_X509_num(certs->sk) <= static_cast<int>(kMaxListLength);
  }, error);
}

// The same for CRLs ("X509 CRL" PEM blocks, or one DER CRL).
bool ParseCrls(LibraryContext* lc, const std::vector<uint8_t>& in, CrlStack* crls, std::string* error) {
  return crls->sk != nullptr && ForEachBlock(in, PEM_STRING_X509_CRL, [&](const uint8_t* der, size_t len) {
    X509_CRL* crl = ParseCrlDer(lc, der, len);
    if (crl == nullptr) return false;
    if (sk_X509_CRL_push(crls->sk, crl) <= 0) {
      X509_CRL_free(crl);
      return false;
    }
    return sk_X509_CRL_num(crls->sk) <= static_cast<int>(kMaxListLength);
  }, error);
}

// x509Parse(bytes) -> Certificate[]: one DER certificate, or every "CERTIFICATE" PEM block.
Napi::Value Parse(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LibraryContext* lc = Operational(env);
  std::vector<uint8_t> in;
  if (lc == nullptr || !InputArg(env, info[0], "certificate", &in)) return env.Undefined();
  X509Stack certs;
  std::string error;
  const bool ok = ParseCertificates(lc, in, &certs, &error);
  if (!ok) {
    ThrowError(env, kMalformed, "the certificate does not parse (" + error + ")");
    return env.Undefined();
  }
  Napi::Array out = Napi::Array::New(env);
  uint32_t i = 0;
  while (sk_X509_num(certs.sk) > 0) {
    Napi::Value c = Certificate::Wrap(env, sk_X509_shift(certs.sk), lc);
    if (c.IsEmpty()) return env.Undefined();
    out.Set(i++, c);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Verification

struct Failure {
  const char* code;
  const char* what;
};

// Maps OpenSSL's verification result to our codes; every unlisted reason is a chain that cannot
// be trusted.
Failure Classify(int err) {
  switch (err) {
    case X509_V_ERR_CERT_HAS_EXPIRED: return {kExpired, "has expired"};
    case X509_V_ERR_CERT_NOT_YET_VALID: return {kExpired, "is not yet valid"};
    case X509_V_ERR_HOSTNAME_MISMATCH: return {kNameMismatch, "does not name the expected DNS name"};
    case X509_V_ERR_IP_ADDRESS_MISMATCH: return {kNameMismatch, "does not name the expected IP address"};
    case X509_V_ERR_CERT_REVOKED: return {kRevoked, "has been revoked"};
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE: return {kBadSignature, "has a signature that does not verify"};
    case X509_V_ERR_INVALID_PURPOSE: return {kWrongPurpose, "is not for this purpose (key usage or extended key usage)"};
    case X509_V_ERR_UNABLE_TO_GET_CRL:
    case X509_V_ERR_CRL_HAS_EXPIRED:
    case X509_V_ERR_CRL_NOT_YET_VALID:
    case X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER:
    case X509_V_ERR_KEYUSAGE_NO_CRL_SIGN:
    case X509_V_ERR_DIFFERENT_CRL_SCOPE:
    case X509_V_ERR_CRL_PATH_VALIDATION_ERROR:
    case X509_V_ERR_CRL_SIGNATURE_FAILURE:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
    case X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD:
    case X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD:
    case X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION:
      return {kRevocationUnknown, "has no valid, current CRL from its issuer among those given"};
    case X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD:
    case X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD:
    case X509_V_ERR_INVALID_EXTENSION:
    case X509_V_ERR_INVALID_NON_CA:
    case X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION:
    case X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY:
    case X509_V_ERR_SIGNATURE_ALGORITHM_MISMATCH:
    case X509_V_ERR_SIGNATURE_ALGORITHM_INCONSISTENCY:
      return {kMalformed, "is malformed or has an extension or key that cannot be processed"};
    default: return {kUntrusted, "cannot be traced to a trusted CA"};
  }
}

// Re-parses a certificate in the active context, so that its signature and key are checked by
// the active mode's provider whatever the context it was parsed in.
X509* Reparse(LibraryContext* lc, X509* x) {
  std::vector<uint8_t> der;
  return DerOf(x, &der) ? ParseDer(lc, der.data(), der.size()) : nullptr;
}

// x509Verify(leaf, intermediates, trusted, crls, time, name, nameKind, purpose, crlCheckAll)
//   -> Certificate[] (the verified chain, leaf first). time: seconds since the epoch or -1 (now);
//   nameKind: 0 none, 1 DNS name, 2 IP address; purpose: 0 any, 1 server, 2 client.
Napi::Value Verify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LibraryContext* lc = Operational(env);
  if (lc == nullptr) return env.Undefined();
  // Every call that can run JS first (array getters), then the checks and pointers.
  std::vector<Napi::Value> intermediates, trusted, crl_inputs;
  if (!ReadArray(env, info[1], "intermediates", &intermediates) || !ReadArray(env, info[2], "trusted", &trusted) ||
      !ReadArray(env, info[3], "crls", &crl_inputs)) {
    return env.Undefined();
  }
  Certificate* leaf = Certificate::FromValue(env, info[0], "leaf");
  if (leaf == nullptr) return env.Undefined();
  int64_t when = -1;
  if (!info[4].IsNumber()) {
    ThrowInvalidArgument(env, "time must be a number");
    return env.Undefined();
  }
  const double t = info[4].As<Napi::Number>().DoubleValue();
  if (t != -1) {
    if (!(t >= 0) || t > static_cast<double>(kMaxTime) || t != static_cast<double>(static_cast<int64_t>(t))) {
      ThrowInvalidArgument(env, "time is out of range");
      return env.Undefined();
    }
    when = static_cast<int64_t>(t);
  }
  uint64_t name_kind = 0, purpose = 0;
  std::string name;
  if (!GetInteger(env, info[6], "nameKind", 2, &name_kind) || !GetInteger(env, info[7], "purpose", 2, &purpose) ||
      (name_kind != 0 && !StringValue(env, info[5], "name", &name))) {
    return env.Undefined();
  }
  if (!info[8].IsBoolean()) {
    ThrowInvalidArgument(env, "crlCheckAll must be a boolean");
    return env.Undefined();
  }
  const bool crl_check_all = info[8].As<Napi::Boolean>().Value();

  X509Ptr leaf_x(Reparse(lc, leaf->x509()), X509_free);
  X509Stack untrusted;
  std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store(X509_STORE_new(), X509_STORE_free);
  if (!leaf_x || !untrusted.sk || !store) {
    ThrowError(env, kMalformed, "the leaf certificate cannot be processed");
    return env.Undefined();
  }
  for (size_t i = 0; i < intermediates.size(); i++) {
    Certificate* c = Certificate::FromValue(env, intermediates[i], "each intermediate");
    if (c == nullptr) return env.Undefined();
    X509* x = Reparse(lc, c->x509());
    if (x == nullptr || sk_X509_push(untrusted.sk, x) <= 0) {
      X509_free(x);
      ThrowError(env, kMalformed, "an intermediate certificate cannot be processed");
      return env.Undefined();
    }
  }
  if (trusted.empty()) {
    ThrowInvalidArgument(env, "trusted must hold at least one CA certificate");
    return env.Undefined();
  }
  for (size_t i = 0; i < trusted.size(); i++) {
    Certificate* c = Certificate::FromValue(env, trusted[i], "each trusted certificate");
    if (c == nullptr) return env.Undefined();
    X509Ptr x(Reparse(lc, c->x509()), X509_free);
    if (!x || X509_STORE_add_cert(store.get(), x.get()) != 1) {  // the store takes its own reference
      ThrowError(env, kMalformed, "a trusted certificate cannot be processed");
      return env.Undefined();
    }
  }
  CrlStack crls;
  for (size_t i = 0; i < crl_inputs.size(); i++) {
    std::vector<uint8_t> in;
    std::string error;
    if (!InputArg(env, crl_inputs[i], "each CRL", &in)) return env.Undefined();
    const bool ok = ParseCrls(lc, in, &crls, &error);
    if (!ok) {
      ThrowError(env, kMalformed, "a CRL does not parse (" + error + ")");
      return env.Undefined();
    }
  }

  std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> ctx(X509_STORE_CTX_new_ex(lc->ctx(), lc->propq()),
                                                                       X509_STORE_CTX_free);
  if (!ctx || X509_STORE_CTX_init(ctx.get(), store.get(), leaf_x.get(), untrusted.sk) != 1) {
    ThrowError(env, code::kCryptoFailure, "certificate verification could not start");
    return env.Undefined();
  }
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  if (sk_X509_CRL_num(crls.sk) > 0) {
    X509_STORE_CTX_set0_crls(ctx.get(), crls.sk);  // not taken: freed with `crls` after ctx
    X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_CRL_CHECK | (crl_check_all ? X509_V_FLAG_CRL_CHECK_ALL : 0));
  }
  if (when >= 0) X509_VERIFY_PARAM_set_time(param, static_cast<time_t>(when));
  if (purpose != 0 &&
      X509_STORE_CTX_set_purpose(ctx.get(), purpose == 1 ? X509_PURPOSE_SSL_SERVER : X509_PURPOSE_SSL_CLIENT) != 1) {
    ThrowError(env, code::kCryptoFailure, "cannot set the verification purpose");
    return env.Undefined();
  }
  if (name_kind == 1) {
    // SubjectAltName dNSName only (never the subject CN); a wildcard only as a whole left label.
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS | X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
    if (X509_VERIFY_PARAM_set1_host(param, name.data(), name.size()) != 1) {
      ThrowInvalidArgument(env, "dnsName is not a valid DNS name");
      return env.Undefined();
    }
  } else if (name_kind == 2 && X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str()) != 1) {
    ERR_clear_error();
    ThrowInvalidArgument(env, "ipAddress is not an IPv4 or IPv6 address");
    return env.Undefined();
  }

  const int verified = X509_verify_cert(ctx.get());
  if (verified != 1) {
    const int err = X509_STORE_CTX_get_error(ctx.get());
    const int depth = X509_STORE_CTX_get_error_depth(ctx.get());
    ERR_clear_error();
    Failure f = verified < 0 && err == X509_V_OK ? Failure{code::kCryptoFailure, "could not be verified"} : Classify(err);
    Napi::Object e = MakeError(env, f.code, "the certificate at depth " + std::to_string(depth) + " " + f.what);
    if (e.IsEmpty()) return env.Undefined();
    e.DefineProperty(Napi::PropertyDescriptor::Value(
        "detail", Napi::String::New(env, std::string(X509_verify_cert_error_string(err)) + " (X509_V error " +
                                             std::to_string(err) + ", depth " + std::to_string(depth) + ")"),
        napi_configurable));
    napi_throw(env, e);
    return env.Undefined();
  }
  STACK_OF(X509)* chain = X509_STORE_CTX_get1_chain(ctx.get());
  Napi::Array out = Napi::Array::New(env);
  uint32_t i = 0;
  while (chain != nullptr && sk_X509_num(chain) > 0) {
    Napi::Value c = Certificate::Wrap(env, sk_X509_shift(chain), lc);
    if (c.IsEmpty()) break;
    out.Set(i++, c);
  }
  sk_X509_pop_free(chain, X509_free);
  if (env.IsExceptionPending()) return env.Undefined();
  return out;
}

// ---------------------------------------------------------------------------------------------
// Issuing

// A dNSName we are willing to put in a certificate: LDH labels of 1 to 63 characters, at most 253
// in all, with "*" allowed as the whole leftmost label.
bool ValidDnsName(const std::string& s) {
  if (s.empty() || s.size() > 253) return false;
  size_t start = 0;
  for (int label = 0;; label++) {
    size_t end = s.find('.', start);
    if (end == std::string::npos) end = s.size();
    const std::string l = s.substr(start, end - start);
    if (l.empty() || l.size() > 63) return false;
    if (!(label == 0 && l == "*")) {
      if (l.front() == '-' || l.back() == '-') return false;
      for (char c : l) {
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-')) return false;
      }
    }
    if (end == s.size()) return !(label == 0 && l == "*");  // "*" alone is not a name
    start = end + 1;
  }
}

// A positive INTEGER from unsigned big-endian bytes (1 to 20 of them, not all zero).
ASN1_INTEGER* SerialFrom(const uint8_t* bytes, size_t len) {
  std::unique_ptr<BIGNUM, decltype(&BN_free)> bn(BN_bin2bn(bytes, static_cast<int>(len), nullptr), BN_free);
  if (!bn || BN_is_zero(bn.get()) != 0) return nullptr;
  return BN_to_ASN1_INTEGER(bn.get(), nullptr);
}

// RFC 7093 §2 method 1: the leftmost 160 bits of SHA-256 of the subjectPublicKey BIT STRING.
ASN1_OCTET_STRING* KeyIdentifier(LibraryContext* lc, X509_PUBKEY* xpk) {
  const unsigned char* pk = nullptr;
  int pk_len = 0;
  uint8_t digest[32];
  if (X509_PUBKEY_get0_param(nullptr, &pk, &pk_len, nullptr, xpk) != 1 ||
      !Sha256(lc, pk, static_cast<size_t>(pk_len), digest)) {
    return nullptr;
  }
  ASN1_OCTET_STRING* id = ASN1_OCTET_STRING_new();
  if (id != nullptr && ASN1_OCTET_STRING_set(id, digest, kSkidSize) != 1) {
    ASN1_OCTET_STRING_free(id);
    return nullptr;
  }
  return id;
}

// The AuthorityKeyIdentifier extension value for certificates and CRLs of `issuer_id`.
AUTHORITY_KEYID* AuthorityKeyId(const ASN1_OCTET_STRING* issuer_id) {
  AUTHORITY_KEYID* akid = AUTHORITY_KEYID_new();
  if (akid == nullptr) return nullptr;
  akid->keyid = ASN1_OCTET_STRING_dup(issuer_id);
  if (akid->keyid == nullptr) {
    AUTHORITY_KEYID_free(akid);
    return nullptr;
  }
  return akid;
}

// The issuer's key identifier: its SKID, or one computed as ours are.
ASN1_OCTET_STRING* IssuerKeyId(LibraryContext* lc, X509* issuer) {
  const ASN1_OCTET_STRING* skid = X509_get0_subject_key_id(issuer);
  if (skid != nullptr) return ASN1_OCTET_STRING_dup(skid);
  return KeyIdentifier(lc, X509_get_X509_PUBKEY(issuer));
}

// A DigestSign context for the issuer key: ML-DSA-87 signs the encoding itself (no digest);
// P-384 ECDSA uses SHA-384.
EVP_MD_CTX* SigningContext(PrivateKey* key) {
  LibraryContext* lc = key->context();
  EVP_MD_CTX* mctx = EVP_MD_CTX_new();
  const char* md = key->kind() == KeyKind::kP384 ? "SHA2-384" : nullptr;
  if (mctx != nullptr &&
      EVP_DigestSignInit_ex(mctx, nullptr, md, lc->ctx(), lc->propq(), key->pkey(), nullptr) != 1) {
    EVP_MD_CTX_free(mctx);
    return nullptr;
  }
  return mctx;
}

PrivateKey* IssuerKeyArg(Napi::Env env, Napi::Value v) {
  PrivateKey* key = PrivateKey::FromValueAny(env, v, "issuerKey");
  if (key != nullptr && key->kind() != KeyKind::kMlDsa87 && key->kind() != KeyKind::kP384) {
    ThrowError(env, code::kInvalidKey, "issuerKey must be an ML-DSA-87 or P-384 key");
    return nullptr;
  }
  return key;
}

bool TimeArg(Napi::Env env, Napi::Value v, const char* what, int64_t* out) {
  uint64_t t = 0;
  if (!GetInteger(env, v, what, kMaxTime, &t)) return false;
  *out = static_cast<int64_t>(t);
  return true;
}

bool SetTime(ASN1_TIME* t, int64_t when) { return ASN1_TIME_set(t, static_cast<time_t>(when)) != nullptr; }

// The subject attributes we accept, by the short names lib/crypto/x509.ts uses.
int AttributeNid(const std::string& name) {
  if (name == "CN") return NID_commonName;
  if (name == "O") return NID_organizationName;
  if (name == "OU") return NID_organizationalUnitName;
  if (name == "C") return NID_countryName;
  if (name == "ST") return NID_stateOrProvinceName;
  if (name == "L") return NID_localityName;
  return NID_undef;
}

// x509Issue(issuerKey, issuerCert | null, subjectKey, subject: string[] (name, value pairs),
//   serial?: Uint8Array, notBefore, notAfter, dnsNames: string[], ipAddresses: string[], isCA,
//   pathLength (-1: none), keyUsage (bit n: KeyUsage bit n), extendedKeyUsage (1 server, 2 client))
//   -> Certificate. issuerCert null: self-signed (subjectKey must be issuerKey's pair).
Napi::Value Issue(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LibraryContext* lc = Operational(env);
  if (lc == nullptr) return env.Undefined();
  std::vector<Napi::Value> subject_values, dns_values, ip_values;
  if (!ReadArray(env, info[3], "subject", &subject_values) || !ReadArray(env, info[7], "dnsNames", &dns_values) ||
      !ReadArray(env, info[8], "ipAddresses", &ip_values)) {
    return env.Undefined();
  }
  PrivateKey* issuer_key = IssuerKeyArg(env, info[0]);
  if (issuer_key == nullptr) return env.Undefined();
  Certificate* issuer = nullptr;
  if (!info[1].IsNull() && (issuer = Certificate::FromValue(env, info[1], "issuer")) == nullptr) return env.Undefined();
  EVP_PKEY* subject_key = nullptr;
  if (PrivateKey::Is(env, info[2])) {
    PrivateKey* k = PrivateKey::FromValueAny(env, info[2], "publicKey");
    if (k == nullptr) return env.Undefined();
    subject_key = k->pkey();
  } else {
    PublicKey* k = PublicKey::FromValueAny(env, info[2], "publicKey");
    if (k == nullptr) return env.Undefined();
    subject_key = k->pkey();
  }
  std::vector<std::pair<int, std::string>> subject;
  if (subject_values.empty() || subject_values.size() % 2 != 0) {
    ThrowInvalidArgument(env, "subject must hold name, value pairs");
    return env.Undefined();
  }
  for (size_t i = 0; i < subject_values.size(); i += 2) {
    std::string attr, value;
    if (!StringValue(env, subject_values[i], "a subject attribute name", &attr) ||
        !StringValue(env, subject_values[i + 1], "a subject attribute value", &value)) {
      return env.Undefined();
    }
    const int nid = AttributeNid(attr);
    if (nid == NID_undef || value.size() > kMaxAttribute || (nid == NID_countryName && value.size() != 2)) {
      ThrowInvalidArgument(env, "subject attribute " + std::string(nid == NID_undef ? "names" : "values") +
                                    " must be CN, O, OU, C, ST or L with 1 to 64 bytes (C: 2 letters)");
      return env.Undefined();
    }
    subject.emplace_back(nid, value);
  }
  ByteView serial_bytes;
  if (!info[4].IsUndefined()) {
    if (!GetBytes(env, info[4], "serialNumber", &serial_bytes)) return env.Undefined();
    if (serial_bytes.size == 0 || serial_bytes.size > kMaxSerial) {
      ThrowInvalidArgument(env, "serialNumber must be 1 to 20 bytes");
      return env.Undefined();
    }
  }
  int64_t not_before = 0, not_after = 0;
  if (!TimeArg(env, info[5], "notBefore", &not_before) || !TimeArg(env, info[6], "notAfter", &not_after)) {
    return env.Undefined();
  }
  if (not_after <= not_before) {
    ThrowInvalidArgument(env, "notAfter must be later than notBefore");
    return env.Undefined();
  }
  std::vector<std::string> dns_names, ips;
  for (const Napi::Value& v : dns_values) {
    std::string s;
    if (!StringValue(env, v, "each DNS name", &s)) return env.Undefined();
    if (!ValidDnsName(s)) {
      ThrowInvalidArgument(env, "each DNS name must be a host name (letters, digits, hyphens; \"*.\" first at most)");
      return env.Undefined();
    }
    dns_names.push_back(s);
  }
  for (const Napi::Value& v : ip_values) {
    std::string s;
    if (!StringValue(env, v, "each IP address", &s)) return env.Undefined();
    ips.push_back(s);
  }
  if (!info[9].IsBoolean()) {
    ThrowInvalidArgument(env, "isCA must be a boolean");
    return env.Undefined();
  }
  const bool is_ca = info[9].As<Napi::Boolean>().Value();
  if (!info[10].IsNumber()) {
    ThrowInvalidArgument(env, "pathLength must be a number");
    return env.Undefined();
  }
  int64_t path_len = -1;
  if (info[10].As<Napi::Number>().DoubleValue() != -1) {
    uint64_t n = 0;
    if (!GetInteger(env, info[10], "pathLength", 255, &n)) return env.Undefined();
    path_len = static_cast<int64_t>(n);
  }
  uint64_t key_usage = 0, ext_key_usage = 0;
  if (!GetInteger(env, info[11], "keyUsage", 0x1ff, &key_usage) ||
      !GetInteger(env, info[12], "extendedKeyUsage", 3, &ext_key_usage)) {
    return env.Undefined();
  }
  // All arguments read; no JS runs from here on.

  if (issuer == nullptr) {
    if (EVP_PKEY_eq(subject_key, issuer_key->pkey()) != 1) {
      ERR_clear_error();
      ThrowInvalidArgument(env, "a self-signed certificate must be for the issuer key's own public key");
      return env.Undefined();
    }
  } else {
    if (X509_check_private_key(issuer->x509(), issuer_key->pkey()) != 1) {
      ERR_clear_error();
      ThrowError(env, code::kInvalidKey, "issuerKey is not the key of the issuer certificate");
      return env.Undefined();
    }
    if (X509_check_ca(issuer->x509()) == 0) {
      ThrowInvalidArgument(env, "the issuer certificate is not a CA certificate");
      return env.Undefined();
    }
  }

  auto fail = [&](const char* what) {
    ThrowError(env, code::kCryptoFailure, std::string("cannot issue the certificate: ") + what);
    return env.Undefined();
  };
  X509Ptr x(X509_new_ex(lc->ctx(), lc->propq()), X509_free);
  if (!x || X509_set_version(x.get(), X509_VERSION_3) != 1) return fail("allocation");

  std::unique_ptr<ASN1_INTEGER, decltype(&ASN1_INTEGER_free)> serial(nullptr, ASN1_INTEGER_free);
  if (serial_bytes.data != nullptr) {
    serial.reset(SerialFrom(serial_bytes.data, serial_bytes.size));
    if (!serial) {
      ThrowInvalidArgument(env, "serialNumber must not be zero");
      return env.Undefined();
    }
  } else {
    uint8_t random[16];
    if (RAND_bytes_ex(lc->ctx(), random, sizeof random, 0) != 1) return fail("no randomness for the serial number");
    random[0] = static_cast<uint8_t>((random[0] & 0x7f) | 0x40);  // positive, 16 bytes, never zero
    serial.reset(SerialFrom(random, sizeof random));
  }
  if (!serial || X509_set_serialNumber(x.get(), serial.get()) != 1) return fail("serial number");
  if (!SetTime(X509_getm_notBefore(x.get()), not_before) || !SetTime(X509_getm_notAfter(x.get()), not_after)) {
    return fail("validity");
  }

  std::unique_ptr<X509_NAME, decltype(&X509_NAME_free)> name(X509_NAME_new(), X509_NAME_free);
  if (!name) return fail("allocation");
  for (const auto& [nid, value] : subject) {
    const int type = nid == NID_countryName ? MBSTRING_ASC : MBSTRING_UTF8;
    if (X509_NAME_add_entry_by_NID(name.get(), nid, type, reinterpret_cast<const unsigned char*>(value.data()),
                                   static_cast<int>(value.size()), -1, 0) != 1) {
      ERR_clear_error();
      ThrowInvalidArgument(env, "a subject attribute value is not valid for its attribute");
      return env.Undefined();
    }
  }
  if (X509_set_subject_name(x.get(), name.get()) != 1 ||
      X509_set_issuer_name(x.get(), issuer ? X509_get_subject_name(issuer->x509()) : name.get()) != 1 ||
      X509_set_pubkey(x.get(), subject_key) != 1) {
    return fail("names or public key");
  }

  // basicConstraints (critical).
  std::unique_ptr<BASIC_CONSTRAINTS, decltype(&BASIC_CONSTRAINTS_free)> bc(BASIC_CONSTRAINTS_new(),
                                                                           BASIC_CONSTRAINTS_free);
  if (!bc) return fail("allocation");
  bc->ca = is_ca ? 0xff : 0;
  if (is_ca && path_len >= 0) {
    bc->pathlen = ASN1_INTEGER_new();
    if (bc->pathlen == nullptr || ASN1_INTEGER_set_int64(bc->pathlen, path_len) != 1) return fail("path length");
  }
  if (X509_add1_ext_i2d(x.get(), NID_basic_constraints, bc.get(), 1, X509V3_ADD_DEFAULT) != 1) {
    return fail("basicConstraints");
  }
  // keyUsage (critical).
  if (key_usage != 0) {
    std::unique_ptr<ASN1_BIT_STRING, decltype(&ASN1_BIT_STRING_free)> ku(ASN1_BIT_STRING_new(), ASN1_BIT_STRING_free);
    if (!ku) return fail("allocation");
    for (int bit = 0; bit < 9; bit++) {
      // A bit that cannot be set (allocation) must not leave a certificate without that usage.
      if (((key_usage >> bit) & 1) != 0 && ASN1_BIT_STRING_set_bit(ku.get(), bit, 1) != 1) return fail("keyUsage");
    }
    if (X509_add1_ext_i2d(x.get(), NID_key_usage, ku.get(), 1, X509V3_ADD_DEFAULT) != 1) return fail("keyUsage");
  }
  // extendedKeyUsage.
  if (ext_key_usage != 0) {
    EXTENDED_KEY_USAGE* eku = sk_ASN1_OBJECT_new_null();
    bool ok = eku != nullptr;
    if (ok && (ext_key_usage & 1) != 0) ok = sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_server_auth)) > 0;
    if (ok && (ext_key_usage & 2) != 0) ok = sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_client_auth)) > 0;
    ok = ok && X509_add1_ext_i2d(x.get(), NID_ext_key_usage, eku, 0, X509V3_ADD_DEFAULT) == 1;
    sk_ASN1_OBJECT_free(eku);  // the objects are OpenSSL's static ones
    if (!ok) return fail("extendedKeyUsage");
  }
  // subjectAltName.
  if (!dns_names.empty() || !ips.empty()) {
    std::unique_ptr<GENERAL_NAMES, decltype(&GENERAL_NAMES_free)> gens(GENERAL_NAMES_new(), GENERAL_NAMES_free);
    if (!gens) return fail("allocation");
    for (const std::string& d : dns_names) {
      GENERAL_NAME* g = GENERAL_NAME_new();
      ASN1_IA5STRING* s = ASN1_IA5STRING_new();
      if (g == nullptr || s == nullptr || ASN1_STRING_set(s, d.data(), static_cast<int>(d.size())) != 1) {
        GENERAL_NAME_free(g);
        ASN1_IA5STRING_free(s);
        return fail("subjectAltName");
      }
      GENERAL_NAME_set0_value(g, GEN_DNS, s);
      if (sk_GENERAL_NAME_push(gens.get(), g) <= 0) {
        GENERAL_NAME_free(g);
        return fail("subjectAltName");
      }
    }
    for (const std::string& ip : ips) {
      ASN1_OCTET_STRING* addr = a2i_IPADDRESS(ip.c_str());
      if (addr == nullptr) {
        ERR_clear_error();
        ThrowInvalidArgument(env, "each IP address must be an IPv4 or IPv6 address");
        return env.Undefined();
      }
      GENERAL_NAME* g = GENERAL_NAME_new();
      if (g == nullptr) {
        ASN1_OCTET_STRING_free(addr);
        return fail("allocation");
      }
      GENERAL_NAME_set0_value(g, GEN_IPADD, addr);
      if (sk_GENERAL_NAME_push(gens.get(), g) <= 0) {
        GENERAL_NAME_free(g);
        return fail("subjectAltName");
      }
    }
    if (X509_add1_ext_i2d(x.get(), NID_subject_alt_name, gens.get(), 0, X509V3_ADD_DEFAULT) != 1) {
      return fail("subjectAltName");
    }
  }
  // subjectKeyIdentifier and authorityKeyIdentifier (RFC 7093 key identifiers).
  std::unique_ptr<ASN1_OCTET_STRING, decltype(&ASN1_OCTET_STRING_free)> skid(
      KeyIdentifier(lc, X509_get_X509_PUBKEY(x.get())), ASN1_OCTET_STRING_free);
  std::unique_ptr<ASN1_OCTET_STRING, decltype(&ASN1_OCTET_STRING_free)> issuer_id(
      issuer ? IssuerKeyId(lc, issuer->x509()) : (skid ? ASN1_OCTET_STRING_dup(skid.get()) : nullptr),
      ASN1_OCTET_STRING_free);
  std::unique_ptr<AUTHORITY_KEYID, decltype(&AUTHORITY_KEYID_free)> akid(
      issuer_id ? AuthorityKeyId(issuer_id.get()) : nullptr, AUTHORITY_KEYID_free);
  if (!skid || !akid ||
      X509_add1_ext_i2d(x.get(), NID_subject_key_identifier, skid.get(), 0, X509V3_ADD_DEFAULT) != 1 ||
      X509_add1_ext_i2d(x.get(), NID_authority_key_identifier, akid.get(), 0, X509V3_ADD_DEFAULT) != 1) {
    return fail("key identifiers");
  }

  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> mctx(SigningContext(issuer_key), EVP_MD_CTX_free);
  if (!mctx || X509_sign_ctx(x.get(), mctx.get()) <= 0) return fail("signing failed");
  // A fresh parse of what was signed: the handle is exactly what a peer will parse.
  X509* out = Reparse(lc, x.get());
  if (out == nullptr) return fail("the signed certificate does not parse");
  return Certificate::Wrap(env, out, lc);
}

// x509CreateCrl(issuerKey, issuerCert, serials: Uint8Array[], revocationTimes: number[],
//   thisUpdate, nextUpdate, crlNumber) -> Buffer (DER): a v2 CRL with AKID and CRL number.
Napi::Value CreateCrl(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LibraryContext* lc = Operational(env);
  if (lc == nullptr) return env.Undefined();
  std::vector<Napi::Value> serial_values, time_values;
  if (!ReadArray(env, info[2], "serials", &serial_values) || !ReadArray(env, info[3], "revocationTimes", &time_values)) {
    return env.Undefined();
  }
  PrivateKey* issuer_key = IssuerKeyArg(env, info[0]);
  if (issuer_key == nullptr) return env.Undefined();
  Certificate* issuer = Certificate::FromValue(env, info[1], "issuer");
  if (issuer == nullptr) return env.Undefined();
  if (serial_values.size() != time_values.size()) {
    ThrowInvalidArgument(env, "serials and revocationTimes must have the same length");
    return env.Undefined();
  }
  int64_t this_update = 0, next_update = 0;
  uint64_t crl_number = 0;
  if (!TimeArg(env, info[4], "thisUpdate", &this_update) || !TimeArg(env, info[5], "nextUpdate", &next_update) ||
      !GetInteger(env, info[6], "crlNumber", kMaxSafeInteger, &crl_number)) {
    return env.Undefined();
  }
  if (next_update <= this_update) {
    ThrowInvalidArgument(env, "nextUpdate must be later than thisUpdate");
    return env.Undefined();
  }
  if (X509_check_private_key(issuer->x509(), issuer_key->pkey()) != 1) {
    ERR_clear_error();
    ThrowError(env, code::kInvalidKey, "issuerKey is not the key of the issuer certificate");
    return env.Undefined();
  }
  auto fail = [&](const char* what) {
    ThrowError(env, code::kCryptoFailure, std::string("cannot create the CRL: ") + what);
    return env.Undefined();
  };
  CrlPtr crl(X509_CRL_new_ex(lc->ctx(), lc->propq()), X509_CRL_free);
  std::unique_ptr<ASN1_TIME, decltype(&ASN1_TIME_free)> t(ASN1_TIME_new(), ASN1_TIME_free);
  if (!crl || !t || X509_CRL_set_version(crl.get(), X509_CRL_VERSION_2) != 1 ||
      X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(issuer->x509())) != 1 || !SetTime(t.get(), this_update) ||
      X509_CRL_set1_lastUpdate(crl.get(), t.get()) != 1 || !SetTime(t.get(), next_update) ||
      X509_CRL_set1_nextUpdate(crl.get(), t.get()) != 1) {
    return fail("header");
  }
  for (size_t i = 0; i < serial_values.size(); i++) {
    ByteView s;
    int64_t when = 0;
    if (!GetBytes(env, serial_values[i], "each serial", &s) || !TimeArg(env, time_values[i], "each revocation time", &when)) {
      return env.Undefined();
    }
    if (s.size == 0 || s.size > kMaxSerial) {
      ThrowInvalidArgument(env, "each serial must be 1 to 20 bytes");
      return env.Undefined();
    }
    std::unique_ptr<ASN1_INTEGER, decltype(&ASN1_INTEGER_free)> serial(SerialFrom(s.data, s.size), ASN1_INTEGER_free);
    if (!serial) {
      ThrowInvalidArgument(env, "each serial must not be zero");
      return env.Undefined();
    }
    X509_REVOKED* r = X509_REVOKED_new();
    if (r == nullptr || X509_REVOKED_set_serialNumber(r, serial.get()) != 1 || !SetTime(t.get(), when) ||
        X509_REVOKED_set_revocationDate(r, t.get()) != 1 || X509_CRL_add0_revoked(crl.get(), r) != 1) {
      X509_REVOKED_free(r);
      return fail("revoked entry");
    }
  }
  std::unique_ptr<ASN1_OCTET_STRING, decltype(&ASN1_OCTET_STRING_free)> issuer_id(IssuerKeyId(lc, issuer->x509()),
                                                                                   ASN1_OCTET_STRING_free);
  std::unique_ptr<AUTHORITY_KEYID, decltype(&AUTHORITY_KEYID_free)> akid(
      issuer_id ? AuthorityKeyId(issuer_id.get()) : nullptr, AUTHORITY_KEYID_free);
  std::unique_ptr<ASN1_INTEGER, decltype(&ASN1_INTEGER_free)> number(ASN1_INTEGER_new(), ASN1_INTEGER_free);
  if (!akid || !number || ASN1_INTEGER_set_uint64(number.get(), crl_number) != 1 ||
      X509_CRL_add1_ext_i2d(crl.get(), NID_authority_key_identifier, akid.get(), 0, X509V3_ADD_DEFAULT) != 1 ||
      X509_CRL_add1_ext_i2d(crl.get(), NID_crl_number, number.get(), 0, X509V3_ADD_DEFAULT) != 1 ||
      X509_CRL_sort(crl.get()) != 1) {
    return fail("extensions");
  }
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> mctx(SigningContext(issuer_key), EVP_MD_CTX_free);
  if (!mctx || X509_CRL_sign_ctx(crl.get(), mctx.get()) <= 0) return fail("signing failed");
  unsigned char* der = nullptr;
  const int len = i2d_X509_CRL(crl.get(), &der);
  if (len <= 0) return fail("encoding");
  Napi::Value out = CopyToBuffer(env, der, static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

}  // namespace

Napi::Function InitX509(Napi::Env env, Napi::Object exports) {
  Napi::Function certificate = Certificate::Init(env);
  exports.Set("Certificate", certificate);
  exports.Set("x509Parse", Napi::Function::New<Parse>(env));
  exports.Set("x509Verify", Napi::Function::New<Verify>(env));
  exports.Set("x509Issue", Napi::Function::New<Issue>(env));
  exports.Set("x509CreateCrl", Napi::Function::New<CreateCrl>(env));
  return certificate;
}

}  // namespace qt
