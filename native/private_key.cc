#include "private_key.h"

#include <openssl/core_names.h>

#include <cstring>
#include <vector>

#include "addon_data.h"
#include "bytes.h"
#include "errors.h"

namespace qt {

namespace {
const napi_type_tag kPrivateKeyTag = {0x2f6d0b9c41e87a53ULL, 0x9e1b47c3d5a60f28ULL};
const napi_type_tag kPublicKeyTag = {0x6b0e94d2c8a1f357ULL, 0x14d8e2a09c7b653fULL};

template <bool kPublic>
const napi_type_tag* Tag() { return kPublic ? &kPublicKeyTag : &kPrivateKeyTag; }

template <bool kPublic>
const char* ClassName() { return kPublic ? "PublicKey" : "PrivateKey"; }

template <bool kPublic>
Napi::FunctionReference& Constructor(Napi::Env env) {
  return kPublic ? Data(env).public_key_constructor : Data(env).private_key_constructor;
}

struct WrapArgs {
  EVP_PKEY* pkey;
  KeyKind kind;
  LibraryContext* lc;
};
}  // namespace

const char* KeyKindName(KeyKind kind) {
  switch (kind) {
    case KeyKind::kX25519: return "X25519";
    case KeyKind::kMlKem768: return "ML-KEM-768";
    case KeyKind::kMlKem1024: return "ML-KEM-1024";
    case KeyKind::kP384: return "P-384";
    case KeyKind::kMlDsa87: return "ML-DSA-87";
  }
  return "unknown";
}

template <bool kPublic>
Napi::Function KeyHandle<kPublic>::Init(Napi::Env env) {
  return KeyHandle::DefineClass(env, ClassName<kPublic>(),
                     {
                         KeyHandle::template InstanceAccessor<&KeyHandle::Algorithm>("algorithm"),
                         KeyHandle::template InstanceAccessor<&KeyHandle::Destroyed>("destroyed"),
                         KeyHandle::template InstanceMethod<&KeyHandle::Destroy>("destroy"),
                     });
}

template <bool kPublic>
KeyHandle<kPublic>::KeyHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<KeyHandle<kPublic>>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    ThrowError(info.Env(), code::kInvalidArgument, std::string(ClassName<kPublic>()) + " handles are created by crypto functions only");
    return;
  }
  WrapArgs* args = info[0].As<Napi::External<WrapArgs>>().Data();
  pkey_ = args->pkey;
  kind_ = args->kind;
  lc_ = args->lc;
  napi_type_tag_object(info.Env(), info.This(), Tag<kPublic>());
}

template <bool kPublic>
KeyHandle<kPublic>::~KeyHandle() { EVP_PKEY_free(pkey_); }

template <bool kPublic>
Napi::Value KeyHandle<kPublic>::Wrap(Napi::Env env, EVP_PKEY* pkey, KeyKind kind, LibraryContext* lc) {
  WrapArgs args{pkey, kind, lc};
  Napi::Object obj = Constructor<kPublic>(env).New({Napi::External<WrapArgs>::New(env, &args)});
  if (obj.IsEmpty()) EVP_PKEY_free(pkey);  // construction threw: nobody owns the key
  return obj;
}

template <bool kPublic>
bool KeyHandle<kPublic>::Is(Napi::Env env, Napi::Value v) {
  bool tagged = false;
  if (v.IsObject()) napi_check_object_type_tag(env, v, Tag<kPublic>(), &tagged);
  return tagged;
}

template <bool kPublic>
KeyHandle<kPublic>* KeyHandle<kPublic>::FromValue(Napi::Env env, Napi::Value v, KeyKind kind, const char* what) {
  if (!Is(env, v)) {
    ThrowInvalidArgument(env, std::string(what) + " must be a " + ClassName<kPublic>() + " handle");
    return nullptr;
  }
  KeyHandle* k = Napi::ObjectWrap<KeyHandle>::Unwrap(v.As<Napi::Object>());
  if (k->pkey_ == nullptr) {
    ThrowError(env, code::kDestroyed, std::string(what) + " has been destroyed");
    return nullptr;
  }
  if (k->kind_ != kind) {
    ThrowError(env, code::kInvalidKey,
               std::string(what) + " must be an " + KeyKindName(kind) + " key, not " + KeyKindName(k->kind_));
    return nullptr;
  }
  return k;
}

template <bool kPublic>
KeyHandle<kPublic>* KeyHandle<kPublic>::FromValueAny(Napi::Env env, Napi::Value v, const char* what) {
  if (!Is(env, v)) {
    ThrowInvalidArgument(env, std::string(what) + " must be a " + ClassName<kPublic>() + " handle");
    return nullptr;
  }
  KeyHandle* k = Napi::ObjectWrap<KeyHandle>::Unwrap(v.As<Napi::Object>());
  if (k->pkey_ == nullptr) {
    ThrowError(env, code::kDestroyed, std::string(what) + " has been destroyed");
    return nullptr;
  }
  return k;
}

template <bool kPublic>
Napi::Value KeyHandle<kPublic>::Algorithm(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), KeyKindName(kind_));
}

template <bool kPublic>
Napi::Value KeyHandle<kPublic>::Destroyed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), pkey_ == nullptr);
}

template <bool kPublic>
void KeyHandle<kPublic>::Destroy(const Napi::CallbackInfo&) {
  EVP_PKEY_free(pkey_);  // drops our reference; an in-flight async job keeps its own
  pkey_ = nullptr;
}

template class KeyHandle<false>;
template class KeyHandle<true>;

bool KindOfKey(EVP_PKEY* pkey, KeyKind* kind) {
  for (KeyKind k : {KeyKind::kMlDsa87, KeyKind::kMlKem1024, KeyKind::kMlKem768, KeyKind::kX25519}) {
    if (EVP_PKEY_is_a(pkey, KeyKindName(k)) == 1) {
      *kind = k;
      return true;
    }
  }
  char group[64] = {0};
  size_t len = 0;
  if (EVP_PKEY_is_a(pkey, "EC") == 1 && EVP_PKEY_get_group_name(pkey, group, sizeof group, &len) == 1 &&
      (std::strcmp(group, "secp384r1") == 0 || std::strcmp(group, "P-384") == 0)) {
    *kind = KeyKind::kP384;
    return true;
  }
  return false;
}

Napi::Value ExportPublicKey(Napi::Env env, EVP_PKEY* pkey, KeyKind kind) {
  size_t len = 0;
  if (EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_PUB_KEY, nullptr, 0, &len) != 1) {
    ThrowError(env, code::kCryptoFailure, std::string("cannot export the ") + KeyKindName(kind) + " public key");
    return env.Undefined();
  }
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, len);
  if (out.IsEmpty()) return env.Undefined();  // allocation failed: a RangeError is pending
  if (EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_PUB_KEY, out.Data(), len, &len) != 1) {
    ThrowError(env, code::kCryptoFailure, std::string("cannot export the ") + KeyKindName(kind) + " public key");
    return env.Undefined();
  }
  return out;
}

}  // namespace qt
