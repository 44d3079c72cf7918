/**
 * quantum-tunnel: a post-quantum secure tunnel for Node.js.
 *
 * - `crypto`: the crypto core (ML-KEM-1024, X25519, CH-KEM, SHAKE-256, SHA3-256, AEADs) over the
 *   addon's own OpenSSL 3.5.
 */
export * as crypto from './crypto/index.js';
export { QuantumTunnelError, ErrorCode, type ErrorCodeValue } from './errors.js';
