/**
 * quantum-tunnel/testing: the test-only entry point. It moves secret bytes across the JS boundary
 * (exporting secrets and private keys, reading a tunnel's session) so known-answer tests can check
 * them, which production code must never do. It refuses to load unless the process was started
 * with QUANTUM_TUNNEL_TESTING=1, and the addon refuses raw exports until this module enabled them.
 */
import { ErrorCode, qtError } from './errors.js';
import { native } from './native.js';

if (process.env.QUANTUM_TUNNEL_TESTING !== '1' || !native.enableSecretExportForTesting()) {
  throw qtError(ErrorCode.INVALID_STATE, 'quantum-tunnel/testing is for tests only: start the process with QUANTUM_TUNNEL_TESTING=1');
}

export * from './crypto/testing.js';
export { sessionOf } from './tunnel/tunnel.js';
