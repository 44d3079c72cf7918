// Test-only exports: raw secret bytes for known-answer vectors. Exposed to JavaScript only as
// `crypto.testing` (lib/crypto/testing.ts), named so that no production path uses them by accident.
#pragma once
#include <napi.h>

namespace qt {
void InitTesting(Napi::Env env, Napi::Object exports);
// Whether quantum-tunnel/testing enabled the test-only hooks; throws ERR_QT_INVALID_STATE when not.
bool TestHooksEnabled(Napi::Env env);
// Whether QUANTUM_TUNNEL_TESTING=1 was set as the addon loaded (read once, at initialisation).
bool StartedForTesting();
}
