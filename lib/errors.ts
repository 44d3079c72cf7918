/**
 * The one error family of quantum-tunnel. Native code throws instances of this class too (the
 * addon is handed the constructor at load), so every failure carries a stable `code`.
 * Messages never contain secret material or text chosen by a peer.
 */

/** Stable error codes. Each is documented in docs/ERRORS.md (a test keeps the two in step). */
export const ErrorCode = {
  /**
   * `ERR_QT_INVALID_ARGUMENT`: A wrong type, size or range of an argument or option, checked in
   * JavaScript or in native code: a 31-byte key, a port of 70000, a message of 0 or more than 65,479
   * bytes to `tunnel.send()`, an unknown log level, a negative rate limit. See docs/ERRORS.md.
   */
  INVALID_ARGUMENT: 'ERR_QT_INVALID_ARGUMENT',
  /**
   * `ERR_QT_INVALID_KEY`: A key or secret that does not parse or is of the wrong kind or size,
   * including an ML-KEM public key that fails the FIPS 203 modulus check. See docs/ERRORS.md.
   */
  INVALID_KEY: 'ERR_QT_INVALID_KEY',
  /**
   * `ERR_QT_HANDLE_DESTROYED`: A `Secret`, `PrivateKey`, public key handle or `TicketManager` used
   * after `destroy()`. See docs/ERRORS.md.
   */
  HANDLE_DESTROYED: 'ERR_QT_HANDLE_DESTROYED',
  /**
   * `ERR_QT_AUTHENTICATION_FAILED`: An AEAD tag did not verify: a record was forged or corrupted on
   * the way (fatal to the tunnel), or `crypto` open/decrypt of bad data. See docs/ERRORS.md.
   */
  AUTHENTICATION_FAILED: 'ERR_QT_AUTHENTICATION_FAILED',
  /**
   * `ERR_QT_X25519_LOW_ORDER_POINT`: X25519 gave the all-zero secret: the peer's X25519 public key
   * is a low-order point. See docs/ERRORS.md.
   */
  X25519_LOW_ORDER_POINT: 'ERR_QT_X25519_LOW_ORDER_POINT',
  /**
   * `ERR_QT_CRYPTO_FAILURE`: An OpenSSL operation failed where it should not (`detail` has OpenSSL's
   * reason). See docs/ERRORS.md.
   */
  CRYPTO_FAILURE: 'ERR_QT_CRYPTO_FAILURE',
  /**
   * `ERR_QT_UNSUPPORTED_ALGORITHM`: The algorithm is not in this build or mode: ChaCha20-Poly1305 in
   * FIPS mode or in the FIPS build profile. See docs/ERRORS.md.
   */
  UNSUPPORTED_ALGORITHM: 'ERR_QT_UNSUPPORTED_ALGORITHM',
  /**
   * `ERR_QT_LIBRARY_CONTEXT`: The addon could not set up its private OpenSSL library context as it
   * loaded. See docs/ERRORS.md.
   */
  LIBRARY_CONTEXT: 'ERR_QT_LIBRARY_CONTEXT',
  /**
   * `ERR_QT_ADDON_NOT_FOUND`: No addon loads (thrown when the package loads): none is built and no
   * prebuilt one ships for this platform, or the shipped prebuild does not fit this machine (musl
   * libc, or a glibc older than the one it needs; the message names which), or it failed to load.
   * See docs/ERRORS.md.
   */
  ADDON_NOT_FOUND: 'ERR_QT_ADDON_NOT_FOUND',
  /**
   * `ERR_QT_BAD_PASSPHRASE`: An encrypted PKCS#8 private key file
   * (`crypto.keyFiles.importPrivateKeyPem`) could not be decrypted with the passphrase given (the
   * decryption produced garbage), or no passphrase was given for an encrypted file. See
   * docs/ERRORS.md.
   */
  BAD_PASSPHRASE: 'ERR_QT_BAD_PASSPHRASE',
  // Certificates
  /**
   * `ERR_QT_CERTIFICATE_MALFORMED`: A certificate or CRL that does not parse (bad DER or PEM, a PEM
   * block that is not a certificate, trailing bytes, undecodable or duplicate extensions), or one
   * with a field or critical extension verification cannot process. See docs/ERRORS.md.
   */
  CERTIFICATE_MALFORMED: 'ERR_QT_CERTIFICATE_MALFORMED',
  /**
   * `ERR_QT_CERTIFICATE_UNTRUSTED`: No chain from the certificate to a trusted CA: its issuer is
   * missing (give the intermediates) or not trusted, an issuer is not a CA, a path length is
   * exceeded, or any other chain failure not listed below. See docs/ERRORS.md.
   */
  CERTIFICATE_UNTRUSTED: 'ERR_QT_CERTIFICATE_UNTRUSTED',
  /**
   * `ERR_QT_CERTIFICATE_EXPIRED`: A certificate in the chain has expired or is not yet valid at the
   * verification time (the message says which). See docs/ERRORS.md.
   */
  CERTIFICATE_EXPIRED: 'ERR_QT_CERTIFICATE_EXPIRED',
  /**
   * `ERR_QT_CERTIFICATE_NAME_MISMATCH`: The leaf's subjectAltName has no DNS name (wildcards as a
   * whole left label only) or IP address matching the expected one. See docs/ERRORS.md.
   */
  CERTIFICATE_NAME_MISMATCH: 'ERR_QT_CERTIFICATE_NAME_MISMATCH',
  /**
   * `ERR_QT_CERTIFICATE_REVOKED`: A CRL given to the verification lists the certificate as revoked.
   * See docs/ERRORS.md.
   */
  CERTIFICATE_REVOKED: 'ERR_QT_CERTIFICATE_REVOKED',
  /**
   * `ERR_QT_CERTIFICATE_REVOCATION_UNKNOWN`: CRLs were given but revocation could not be checked: no
   * CRL from the certificate's issuer, a CRL that has expired, is not yet valid, has a bad
   * signature, or an issuer without cRLSign. See docs/ERRORS.md.
   */
  CERTIFICATE_REVOCATION_UNKNOWN: 'ERR_QT_CERTIFICATE_REVOCATION_UNKNOWN',
  /**
   * `ERR_QT_CERTIFICATE_BAD_SIGNATURE`: A certificate's signature does not verify with its issuer's
   * key: it was altered, or issued by another key with the same name. See docs/ERRORS.md.
   */
  CERTIFICATE_BAD_SIGNATURE: 'ERR_QT_CERTIFICATE_BAD_SIGNATURE',
  /**
   * `ERR_QT_CERTIFICATE_WRONG_PURPOSE`: The certificate's extended key usage (or key usage) does not
   * allow the purpose asked for: a client certificate presented as a server's, or the other way
   * round. See docs/ERRORS.md.
   */
  CERTIFICATE_WRONG_PURPOSE: 'ERR_QT_CERTIFICATE_WRONG_PURPOSE',
  /** `ERR_QT_CERTIFICATE_REQUIRED`: no certificate where one is required (§14): the peer has none, or did not ask for certificates. */
  CERTIFICATE_REQUIRED: 'ERR_QT_CERTIFICATE_REQUIRED',
  /** `ERR_QT_CERTIFICATE_REJECTED`: the peer refused our certificate (its alert bad_certificate): its chain, name, purpose or signature. */
  CERTIFICATE_REJECTED: 'ERR_QT_CERTIFICATE_REJECTED',
  // Protocol and tunnel
  /**
   * `ERR_QT_MESSAGE_TOO_LARGE`: A frame or handshake record longer than 65,536 bytes, or more bytes
   * than `maxHandshakeBytes` sent before the handshake completed. See docs/ERRORS.md.
   */
  MESSAGE_TOO_LARGE: 'ERR_QT_MESSAGE_TOO_LARGE',
  /**
   * `ERR_QT_MALFORMED_MESSAGE`: A message that does not parse: wrong lengths, a record shorter than
   * its overhead, a malformed alert. See docs/ERRORS.md.
   */
  MALFORMED_MESSAGE: 'ERR_QT_MALFORMED_MESSAGE',
  /**
   * `ERR_QT_UNEXPECTED_MESSAGE`: A message that is not valid at this point: data before the
   * handshake completed, a record after close_notify, an unknown message type, a rekey response with
   * no request. See docs/ERRORS.md.
   */
  UNEXPECTED_MESSAGE: 'ERR_QT_UNEXPECTED_MESSAGE',
  /**
   * `ERR_QT_UNSUPPORTED_VERSION`: The peer speaks another major protocol version: a v1 (Go) client
   * at a listener without `legacyV1`, a v1 server answering our v2 hello, a hello without version
   * 2.0. See docs/ERRORS.md.
   */
  UNSUPPORTED_VERSION: 'ERR_QT_UNSUPPORTED_VERSION',
  /**
   * `ERR_QT_UNSUPPORTED_CIPHER_SUITE`: No cipher suite in common (server side), or the server chose
   * one the client did not offer. See docs/ERRORS.md.
   */
  UNSUPPORTED_CIPHER_SUITE: 'ERR_QT_UNSUPPORTED_CIPHER_SUITE',
  /**
   * `ERR_QT_HANDSHAKE_FAILED`: The handshake did not complete: a Finished message did not verify
   * (the two ends did not derive the same keys: a man in the middle changed the exchange, or a
   * resumption PSK was wrong), or another handshake step failed. See docs/ERRORS.md.
   */
  HANDSHAKE_FAILED: 'ERR_QT_HANDSHAKE_FAILED',
  /**
   * `ERR_QT_HANDSHAKE_TIMEOUT`: The handshake did not complete within `handshakeTimeoutMs`
   * (`--handshake-timeout`): a silent, slow or overloaded peer. See docs/ERRORS.md.
   */
  HANDSHAKE_TIMEOUT: 'ERR_QT_HANDSHAKE_TIMEOUT',
  /**
   * `ERR_QT_PEER_ALERT`: The peer sent a fatal alert, during or after the handshake; the message has
   * the alert's code. See docs/ERRORS.md.
   */
  PEER_ALERT: 'ERR_QT_PEER_ALERT',
  /**
   * `ERR_QT_REPLAY`: Protocol v1: a record arrived with a sequence number already received: a replay
   * (v2 reports it as `ERR_QT_AUTHENTICATION_FAILED`). See docs/ERRORS.md.
   */
  REPLAY: 'ERR_QT_REPLAY',
  /**
   * `ERR_QT_RECORD_OUT_OF_ORDER`: Protocol v1: a record arrived with a sequence number other than
   * the next one (v2 reports it as `ERR_QT_AUTHENTICATION_FAILED`): records were dropped or
   * reordered on the way. See docs/ERRORS.md.
   */
  RECORD_OUT_OF_ORDER: 'ERR_QT_RECORD_OUT_OF_ORDER',
  /**
   * `ERR_QT_SEQUENCE_EXHAUSTED`: v2: a key reached its usage limit (2^24 records or 2^38 bytes)
   * before a KeyUpdate replaced it (the peer never acknowledged one), or the 65,535 key epochs are
   * used up. v1: the 64-bit record sequence space of one direction is used up (2^64 records). See
   * docs/ERRORS.md.
   */
  SEQUENCE_EXHAUSTED: 'ERR_QT_SEQUENCE_EXHAUSTED',
  /**
   * `ERR_QT_TRUNCATED`: The peer's connection ended (FIN or reset) without close_notify while this
   * end had not begun closing: data may have been cut short, by a crash of the peer or by someone
   * ending the TCP connection. See docs/ERRORS.md.
   */
  TRUNCATED: 'ERR_QT_TRUNCATED',
  /**
   * `ERR_QT_PROTOCOL_MISMATCH`: The peer does not speak the quantum-tunnel protocol: its first byte
   * is no message type of ours. See docs/ERRORS.md.
   */
  PROTOCOL_MISMATCH: 'ERR_QT_PROTOCOL_MISMATCH',
  /**
   * `ERR_QT_REKEY_RATE_LIMITED`: The peer asked for rekeys faster than allowed: the per-tunnel limit
   * (`rekeyMinIntervalMs`, default 250 ms between two), or the listener's admission control
   * (`RateLimiter.admitRekey`: a rekey takes a handshake token). See docs/ERRORS.md.
   */
  REKEY_RATE_LIMITED: 'ERR_QT_REKEY_RATE_LIMITED',
  /** `ERR_QT_NONCE_EXHAUSTED`: A send key has used all its nonces. See docs/ERRORS.md. */
  NONCE_EXHAUSTED: 'ERR_QT_NONCE_EXHAUSTED',
  /**
   * `ERR_QT_INVALID_STATE`: An operation that is not allowed now: `rekey()` on the server side
   * (protocol v1), a rekey while one is in progress, `issueTicket()` without `tickets`,
   * `resumptionState()` on a server, a handshake state machine driven out of order. See
   * docs/ERRORS.md.
   */
  INVALID_STATE: 'ERR_QT_INVALID_STATE',
  /**
   * `ERR_QT_REKEY_FAILED`: A rekey did not complete: no response within 30 s, an invalid rekey
   * public key from the peer (`cause` says why), a response naming another activation point. See
   * docs/ERRORS.md.
   */
  REKEY_FAILED: 'ERR_QT_REKEY_FAILED',
  /**
   * `ERR_QT_TUNNEL_CLOSED`: An operation on a tunnel that is closed (send, ping, rekey,
   * issueTicket), or `messages()` after a failure it did not see itself. See docs/ERRORS.md.
   */
  TUNNEL_CLOSED: 'ERR_QT_TUNNEL_CLOSED',
  /**
   * `ERR_QT_CONNECTION_FAILED`: A TCP-level failure: the connection cannot be made (`syscallCode`
   * `ECONNREFUSED`, `EHOSTUNREACH`, `ENOTFOUND`...), a socket error, the peer closing during the
   * handshake; an observability server that cannot listen for another reason than a taken port. See
   * docs/ERRORS.md.
   */
  CONNECTION_FAILED: 'ERR_QT_CONNECTION_FAILED',
  /**
   * `ERR_QT_ABORTED`: A `dial()` or a handshake stopped by its `AbortSignal`, or by
   * `listener.close()`. See docs/ERRORS.md.
   */
  ABORTED: 'ERR_QT_ABORTED',
  /**
   * `ERR_QT_TIMEOUT`: A TCP connect that did not complete within `connectTimeoutMs`, or a `ping()`
   * without its pong within 10 s. See docs/ERRORS.md.
   */
  TIMEOUT: 'ERR_QT_TIMEOUT',
  /**
   * `ERR_QT_ADDRESS_IN_USE`: A listening socket's address is taken (`syscallCode` `EADDRINUSE`):
   * `startObservabilityServer()`, and each listening socket of the `quantum-vpn` servers, which say
   * which address and which flag and exit 1 before announcing anything. See docs/ERRORS.md.
   */
  ADDRESS_IN_USE: 'ERR_QT_ADDRESS_IN_USE',
  /**
   * `ERR_QT_BACKEND_UNAVAILABLE`: `quantum-vpn forward` (server side): the `--to` service cannot be
   * reached for a tunnel (`cause` / `syscallCode`: `ECONNREFUSED`, `ETIMEDOUT`...). See
   * docs/ERRORS.md.
   */
  BACKEND_UNAVAILABLE: 'ERR_QT_BACKEND_UNAVAILABLE',
  /**
   * `ERR_QT_PSK_MISMATCH`: Protocol v2 PSK authentication failed: the client's binder did not verify
   * at the server (a different key under that identity), the server requires a PSK and the client
   * offered none or an unknown identity, the client requires one and the server did not select it,
   * or a Finished under a selected PSK did not verify (a relay that does not hold the key). See
   * docs/ERRORS.md.
   */
  PSK_MISMATCH: 'ERR_QT_PSK_MISMATCH',
  /**
   * `ERR_QT_PROXY_HEADER_INVALID`: A listener with `proxyProtocol` (`--proxy-protocol`): a
   * connection from a trusted source began with something that is not a valid PROXY protocol header
   * of an accepted version: a wrong signature (a client reaching the port directly), a v2 version
   * other than 2, an unknown command, family or transport, a v1 line over 107 bytes or not ended by
   * CRLF, an address that is not canonical for its family, a port over 65,535, a v2 address-and-TLV
   * block over 4,096 bytes or a TLV running past it. See docs/ERRORS.md.
   */
  PROXY_HEADER_INVALID: 'ERR_QT_PROXY_HEADER_INVALID',
  /**
   * `ERR_QT_PROXY_HEADER_TIMEOUT`: A listener with `proxyProtocol`: a connection from a trusted
   * source sent no complete PROXY protocol header within `proxyProtocol.timeoutMs` (default 5 s; the
   * handshake deadline starts after the header). See docs/ERRORS.md.
   */
  PROXY_HEADER_TIMEOUT: 'ERR_QT_PROXY_HEADER_TIMEOUT',
  /**
   * `ERR_QT_PROXY_SOURCE_UNTRUSTED`: A listener with `proxyProtocol`: a connection came from an
   * address outside `proxyProtocol.trustedSources` (`--proxy-from`). See docs/ERRORS.md.
   */
  PROXY_SOURCE_UNTRUSTED: 'ERR_QT_PROXY_SOURCE_UNTRUSTED',
  /**
   * `ERR_QT_POOL_TIMEOUT`: A tunnel pool (`createTunnelPool()`) had no tunnel for `acquire()` /
   * `take()` within `acquireTimeoutMs`: every tunnel was leased and `max` reached, or the dials in
   * flight did not complete in time. See docs/ERRORS.md.
   */
  POOL_TIMEOUT: 'ERR_QT_POOL_TIMEOUT',
  /**
   * `ERR_QT_POOL_EXHAUSTED`: A tunnel pool's queue of waiters is full (`maxWaiters`): `acquire()` /
   * `take()` is refused at once instead of queueing without bound. See docs/ERRORS.md.
   */
  POOL_EXHAUSTED: 'ERR_QT_POOL_EXHAUSTED',
  /**
   * `ERR_QT_POOL_CLOSED`: `acquire()` / `take()` on a tunnel pool after `close()`, or a waiter still
   * queued when `close()` was called. See docs/ERRORS.md.
   */
  POOL_CLOSED: 'ERR_QT_POOL_CLOSED',
  // identities (docs/PROTOCOL.md §13)
  /**
   * `ERR_QT_SERVER_KEY_MISMATCH`: Pinned keys (docs/PROTOCOL.md §13): the server holds no key the
   * client pinned for it (its `key_auth` opens under none of the server's keys, or the server has
   * none), the client cannot open the server's flight under the pinned key (a different server, or a
   * relay), or a server asked for its key (`server: { fingerprint }`) announced another key than the
   * fingerprint names, or none. See docs/ERRORS.md.
   */
  SERVER_KEY_MISMATCH: 'ERR_QT_SERVER_KEY_MISMATCH',
  /**
   * `ERR_QT_UNKNOWN_PEER`: Pinned keys: the server does not admit the client: its key is not in
   * `authorizedPeers` (`--authorized-peers`), or the server requires a client key
   * (`requirePeerIdentity`) and the client presented none. See docs/ERRORS.md.
   */
  UNKNOWN_PEER: 'ERR_QT_UNKNOWN_PEER',
  // FIPS mode
  /**
   * `ERR_QT_FIPS_UNAVAILABLE`: FIPS mode cannot start on this machine: its configuration is missing
   * (`openssl-fips.cnf` in `$QUANTUM_TUNNEL_FIPS_DIR` or `~/.config/quantum-tunnel/fips`), or the
   * FIPS provider does not load. See docs/ERRORS.md.
   */
  FIPS_UNAVAILABLE: 'ERR_QT_FIPS_UNAVAILABLE',
  /**
   * `ERR_QT_FIPS_SELFTEST_FAILED`: A self-test failed: a known-answer test at start, a pairwise
   * consistency test on a new key pair, or the continuous RNG test. See docs/ERRORS.md.
   */
  FIPS_SELFTEST_FAILED: 'ERR_QT_FIPS_SELFTEST_FAILED',
  /**
   * `ERR_QT_FIPS_INTEGRITY_FAILED`: The addon file does not match the HMAC-SHA256 recorded when it
   * was built: it was modified. See docs/ERRORS.md.
   */
  FIPS_INTEGRITY_FAILED: 'ERR_QT_FIPS_INTEGRITY_FAILED',
  /**
   * `ERR_QT_FIPS_NOT_APPROVED`: A service that is not approved was refused: in strict mode
   * (`fips.enable({ strict: true })`, `QUANTUM_TUNNEL_FIPS_STRICT=1`) X25519, so every protocol v1
   * handshake; tickets for a session that is not AES-256-GCM in FIPS mode. See docs/ERRORS.md.
   */
  FIPS_NOT_APPROVED: 'ERR_QT_FIPS_NOT_APPROVED',
} as const;

/** One of the {@link ErrorCode} values. */
export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

/**
 * Marks every QuantumTunnelError, whichever copy of this module made it. An application that
 * loads the package twice (its ESM build through `import` and its CommonJS build through a
 * dependency's `require`) has two classes, and the addon, loaded once per process, throws the
 * class of the copy that loaded last; `instanceof` checks this mark, so either class recognises
 * every error.
 */
const BRAND = Symbol.for('quantum-tunnel.QuantumTunnelError');

/**
 * An error raised by quantum-tunnel, with a stable machine-readable `code` (one of
 * {@link ErrorCode}, all listed in docs/ERRORS.md). Thrown by synchronous calls, rejected by
 * promises, and emitted as `'error'` on a {@link Tunnel} and `'handshakeError'` on a
 * {@link Listener}. The message is fixed text: it never holds secret material or text chosen by
 * a peer, so it is safe to log. Match on `code`, never on `message`.
 *
 * @example
 * ```ts
 * import { dial, ErrorCode, QuantumTunnelError } from 'quantum-tunnel';
 *
 * try {
 *   await dial('db.example.com:8443');
 * } catch (err) {
 *   if (err instanceof QuantumTunnelError && err.code === ErrorCode.CONNECTION_FAILED) {
 *     console.error(`cannot connect: ${err.syscallCode}`);
 *   }
 * }
 * ```
 */
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

  /**
   * @param message - Fixed text, never secret material or text chosen by a peer.
   * @param code - The stable code, one of {@link ErrorCode}.
   * @param options - `cause`: the error this one wraps; a system error's `code` becomes
   *   {@link QuantumTunnelError.syscallCode}.
   */
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
