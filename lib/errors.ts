/**
 * The one error family of quantum-tunnel. Native code throws instances of this class too (the
 * addon is handed the constructor at load), so every failure carries a stable `code`.
 * Messages never contain secret material or text chosen by a peer.
 */

/** Stable error codes. Each is documented in docs/ERRORS.md (a test keeps the two in step). */
export const ErrorCode = {
  INVALID_ARGUMENT: 'ERR_QT_INVALID_ARGUMENT',
  INVALID_KEY: 'ERR_QT_INVALID_KEY',
  HANDLE_DESTROYED: 'ERR_QT_HANDLE_DESTROYED',
  AUTHENTICATION_FAILED: 'ERR_QT_AUTHENTICATION_FAILED',
  X25519_LOW_ORDER_POINT: 'ERR_QT_X25519_LOW_ORDER_POINT',
  CRYPTO_FAILURE: 'ERR_QT_CRYPTO_FAILURE',
  UNSUPPORTED_ALGORITHM: 'ERR_QT_UNSUPPORTED_ALGORITHM',
  LIBRARY_CONTEXT: 'ERR_QT_LIBRARY_CONTEXT',
  ADDON_NOT_FOUND: 'ERR_QT_ADDON_NOT_FOUND',
  BAD_PASSPHRASE: 'ERR_QT_BAD_PASSPHRASE',
  // Certificates
  CERTIFICATE_MALFORMED: 'ERR_QT_CERTIFICATE_MALFORMED',
  CERTIFICATE_UNTRUSTED: 'ERR_QT_CERTIFICATE_UNTRUSTED',
  CERTIFICATE_EXPIRED: 'ERR_QT_CERTIFICATE_EXPIRED',
  CERTIFICATE_NAME_MISMATCH: 'ERR_QT_CERTIFICATE_NAME_MISMATCH',
  CERTIFICATE_REVOKED: 'ERR_QT_CERTIFICATE_REVOKED',
  CERTIFICATE_REVOCATION_UNKNOWN: 'ERR_QT_CERTIFICATE_REVOCATION_UNKNOWN',
  CERTIFICATE_BAD_SIGNATURE: 'ERR_QT_CERTIFICATE_BAD_SIGNATURE',
  CERTIFICATE_WRONG_PURPOSE: 'ERR_QT_CERTIFICATE_WRONG_PURPOSE',
  /** No certificate where one is required (§14): the peer has none, or did not ask for certificates. */
  CERTIFICATE_REQUIRED: 'ERR_QT_CERTIFICATE_REQUIRED',
  /** The peer refused our certificate (its alert bad_certificate): its chain, name, purpose or signature. */
  CERTIFICATE_REJECTED: 'ERR_QT_CERTIFICATE_REJECTED',
  // Protocol and tunnel
  MESSAGE_TOO_LARGE: 'ERR_QT_MESSAGE_TOO_LARGE',
  MALFORMED_MESSAGE: 'ERR_QT_MALFORMED_MESSAGE',
  UNEXPECTED_MESSAGE: 'ERR_QT_UNEXPECTED_MESSAGE',
  UNSUPPORTED_VERSION: 'ERR_QT_UNSUPPORTED_VERSION',
  UNSUPPORTED_CIPHER_SUITE: 'ERR_QT_UNSUPPORTED_CIPHER_SUITE',
  HANDSHAKE_FAILED: 'ERR_QT_HANDSHAKE_FAILED',
  HANDSHAKE_TIMEOUT: 'ERR_QT_HANDSHAKE_TIMEOUT',
  PEER_ALERT: 'ERR_QT_PEER_ALERT',
  REPLAY: 'ERR_QT_REPLAY',
  RECORD_OUT_OF_ORDER: 'ERR_QT_RECORD_OUT_OF_ORDER',
  SEQUENCE_EXHAUSTED: 'ERR_QT_SEQUENCE_EXHAUSTED',
  TRUNCATED: 'ERR_QT_TRUNCATED',
  PROTOCOL_MISMATCH: 'ERR_QT_PROTOCOL_MISMATCH',
  REKEY_RATE_LIMITED: 'ERR_QT_REKEY_RATE_LIMITED',
  NONCE_EXHAUSTED: 'ERR_QT_NONCE_EXHAUSTED',
  INVALID_STATE: 'ERR_QT_INVALID_STATE',
  REKEY_FAILED: 'ERR_QT_REKEY_FAILED',
  TUNNEL_CLOSED: 'ERR_QT_TUNNEL_CLOSED',
  CONNECTION_FAILED: 'ERR_QT_CONNECTION_FAILED',
  ABORTED: 'ERR_QT_ABORTED',
  TIMEOUT: 'ERR_QT_TIMEOUT',
  ADDRESS_IN_USE: 'ERR_QT_ADDRESS_IN_USE',
  BACKEND_UNAVAILABLE: 'ERR_QT_BACKEND_UNAVAILABLE',
  PSK_MISMATCH: 'ERR_QT_PSK_MISMATCH',
  PROXY_HEADER_INVALID: 'ERR_QT_PROXY_HEADER_INVALID',
  PROXY_HEADER_TIMEOUT: 'ERR_QT_PROXY_HEADER_TIMEOUT',
  PROXY_SOURCE_UNTRUSTED: 'ERR_QT_PROXY_SOURCE_UNTRUSTED',
  POOL_TIMEOUT: 'ERR_QT_POOL_TIMEOUT',
  POOL_EXHAUSTED: 'ERR_QT_POOL_EXHAUSTED',
  POOL_CLOSED: 'ERR_QT_POOL_CLOSED',
  // identities (docs/PROTOCOL.md §13)
  SERVER_KEY_MISMATCH: 'ERR_QT_SERVER_KEY_MISMATCH',
  UNKNOWN_PEER: 'ERR_QT_UNKNOWN_PEER',
  // FIPS mode
  FIPS_UNAVAILABLE: 'ERR_QT_FIPS_UNAVAILABLE',
  FIPS_SELFTEST_FAILED: 'ERR_QT_FIPS_SELFTEST_FAILED',
  FIPS_INTEGRITY_FAILED: 'ERR_QT_FIPS_INTEGRITY_FAILED',
  FIPS_NOT_APPROVED: 'ERR_QT_FIPS_NOT_APPROVED',
} as const;

/** One of the {@link ErrorCode} values. */
export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

/** An error raised by quantum-tunnel, with a stable machine-readable `code`. */
/**
 * Marks every QuantumTunnelError, whichever copy of this module made it. An application that
 * loads the package twice (its ESM build through `import` and its CommonJS build through a
 * dependency's `require`) has two classes, and the addon, loaded once per process, throws the
 * class of the copy that loaded last; `instanceof` checks this mark, so either class recognises
 * every error.
 */
const BRAND = Symbol.for('quantum-tunnel.QuantumTunnelError');

export class QuantumTunnelError extends Error {
  /** True for any QuantumTunnelError, from any copy of the package (see BRAND above). */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }

  /** Stable code such as `ERR_QT_AUTHENTICATION_FAILED`. */
  readonly code: ErrorCodeValue;
  /** OpenSSL's reason for a native failure, for local diagnostics only (never sent to a peer). */
  declare readonly detail?: string;
  /**
   * The operating system's code (`ECONNREFUSED`, `EADDRINUSE`, ...) when the failure came from a
   * socket or file; the same as `cause.code`.
   */
  readonly syscallCode?: string;

  constructor(message: string, code: ErrorCodeValue, options?: { cause?: unknown }) {
    super(message, options);
    Object.defineProperty(this, BRAND, { value: true });
    this.name = 'QuantumTunnelError';
    this.code = code;
    const causeCode = (options?.cause as { code?: unknown } | undefined)?.code;
    if (typeof causeCode === 'string' && /^E[A-Z0-9]+$/.test(causeCode)) this.syscallCode = causeCode;
  }
}

/** Shorthand for `new QuantumTunnelError(message, code)`. */
export function qtError(code: ErrorCodeValue, message: string, options?: { cause?: unknown }): QuantumTunnelError {
  return new QuantumTunnelError(message, code, options);
}

/** Throws ERR_QT_INVALID_ARGUMENT; used by argument checks in the JS layer. */
export function invalidArgument(message: string): never {
  throw new QuantumTunnelError(message, ErrorCode.INVALID_ARGUMENT);
}
