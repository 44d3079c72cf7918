// Typed errors thrown to JavaScript. Every failure becomes an instance of the JS class that
// lib/errors.ts hands us at load (QuantumTunnelError), with a stable `code`. The OpenSSL error
// queue is drained on every failure so one failure's reasons never leak into a later message.
#pragma once
#include <napi.h>

namespace qt {

// Stable codes; documented in docs/ARCHITECTURE.md and mirrored in lib/errors.ts.
namespace code {
constexpr const char* kInvalidArgument = "ERR_QT_INVALID_ARGUMENT";
constexpr const char* kInvalidKey = "ERR_QT_INVALID_KEY";
constexpr const char* kDestroyed = "ERR_QT_HANDLE_DESTROYED";
constexpr const char* kAuthFailed = "ERR_QT_AUTHENTICATION_FAILED";
constexpr const char* kLowOrderPoint = "ERR_QT_X25519_LOW_ORDER_POINT";
constexpr const char* kCryptoFailure = "ERR_QT_CRYPTO_FAILURE";
constexpr const char* kUnsupported = "ERR_QT_UNSUPPORTED_ALGORITHM";
constexpr const char* kLibraryContext = "ERR_QT_LIBRARY_CONTEXT";
constexpr const char* kSelfTestFailed = "ERR_QT_FIPS_SELFTEST_FAILED";
constexpr const char* kInvalidState = "ERR_QT_INVALID_STATE";
}  // namespace code

// Returns the error object (not thrown); `detail` carries OpenSSL's reason for debugging and is
// never part of `message`, which is ours alone.
Napi::Object MakeError(Napi::Env env, const char* code, const std::string& message);

// Throws a typed error as a JS exception (N-API pending exception). Callers return right after.
void ThrowError(Napi::Env env, const char* code, const std::string& message);

// The OpenSSL reason of the last failure on this thread, and clears the queue.
std::string DrainOpenSslErrors();

// Convenience for argument validation in native code: throws ERR_QT_INVALID_ARGUMENT.
void ThrowInvalidArgument(Napi::Env env, const std::string& message);

}  // namespace qt
