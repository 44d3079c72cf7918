// Per-environment state (one per Node.js main thread or worker): the library contexts and the
// JS constructors native code needs. Freed by the environment's cleanup, so workers are safe.
#pragma once
#include <napi.h>

#include "errors.h"
#include "library_context.h"

namespace qt {

struct AddonData {
  Napi::FunctionReference error_constructor;  // lib/errors.ts QuantumTunnelError
  Napi::FunctionReference secret_constructor;
  Napi::FunctionReference private_key_constructor;
  Napi::FunctionReference public_key_constructor;
  Napi::FunctionReference aead_constructor;
  Napi::FunctionReference certificate_constructor;
  // Process-wide contexts (see LibraryContext::Standard); not owned here.
  LibraryContext* standard_context = nullptr;
  // The context every new operation uses. FIPS mode swaps in a second LibraryContext; handles
  // remember the context they were made in.
  LibraryContext* active_context = nullptr;
};

inline AddonData& Data(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

// Every crypto entry point starts here: it refuses to run once the module is in its error state.
inline bool RequireOperational(Napi::Env env) {
  if (!InErrorState()) return true;
  ThrowError(env, code::kSelfTestFailed, "the crypto module is in its error state after a failed self-test: " +
                                            ErrorStateReason() + " (restart the process)");
  return false;
}

// The active library context, or nullptr (with an exception pending) in the error state.
inline LibraryContext* Operational(Napi::Env env) { return RequireOperational(env) ? Data(env).active_context : nullptr; }

}  // namespace qt
