/** Options of listen() and dial(), their defaults and checks, named once. */
import type { Secret } from '../native.js';
import { invalidArgument } from '../errors.js';
import { DEFAULT_HANDSHAKE_TIMEOUT_MS } from '../protocol/constants.js';
import type { CipherName } from '../protocol/suites.js';
export { type CipherName, resolveCipherSuites as resolveSuites } from '../protocol/suites.js';
import type { TicketManager } from '../protocol/ticket.js';
import type { ConnectionAdmission, TunnelObserver } from './observer.js';
import { enable as enableFips, type FipsOptions } from '../fips/index.js';

/** Options shared by both ends. */
export interface TunnelOptions {
  /** Abort the handshake after this long (ms). Default 30,000. 0 disables (not recommended). */
  handshakeTimeoutMs?: number;
  /**
   * Cipher suites in preference order. A client offers them in this order; a server accepts these
   * and picks the client's first offered one among them. Default: AES-256-GCM, then
   * ChaCha20-Poly1305 when this build and mode have it.
   */
  ciphers?: readonly CipherName[];
  /** After a graceful close, how long to wait for the peer before dropping the socket (ms). Default 2,000. */
  closeTimeoutMs?: number;
  /**
   * Half-close: after the peer's close_notify this side may keep writing, and after our own
   * end() we keep reading until the peer's close_notify (no close timeout). Default false: a
   * close_notify closes both directions, and after ours we wait at most `closeTimeoutMs`, because
   * a reference (Go) peer never answers one (§8.8). Enable it only between peers that answer
   * close_notify, such as two quantum-tunnel forwarders.
   */
  allowHalfOpen?: boolean;
  /**
   * The least time between two rekeys the peer may ask for (ms); a faster request closes the
   * tunnel with ERR_QT_REKEY_RATE_LIMITED (each rekey costs a key exchange). Default 250.
   */
  rekeyMinIntervalMs?: number;
  /** Rekey automatically on the §9.1 triggers (initiator only). Default true. */
  autoRekey?: boolean;
  /**
   * Run the handshake's ML-KEM operations on the libuv threadpool. Default false: each is tens of
   * microseconds, less than a threadpool round trip costs, so (like node:tls) they run inline.
   * Turn it on when the event loop must never block even for that long.
   */
  offloadCrypto?: boolean;
  /** Metrics, tracing and logging hooks (see lib/ops). */
  observer?: TunnelObserver | readonly TunnelObserver[];
  /**
   * Switch the process to FIPS mode before this listener or dial starts (same as `fips.enable()`;
   * FIPS mode is process-wide). Throws if it cannot start (docs/FIPS.md).
   */
  fips?: boolean | FipsOptions;
}

/** Applies the `fips` option. */
export function applyFipsOption(option: TunnelOptions['fips']): void {
  if (option) enableFips(option === true ? {} : option);
}

/** What a client needs to resume: a ticket from the server and the session's master secret. */
export interface ResumptionState {
  ticket: Uint8Array;
  psk: Secret;
}

export interface DialOptions extends TunnelOptions {
  /** Try to resume; falls back to a full handshake if the server does not accept the ticket. */
  resumption?: ResumptionState;
  /** Abort the connection attempt and the handshake. */
  signal?: AbortSignal;
  /** TCP connect timeout (ms). Default 10,000. */
  connectTimeoutMs?: number;
  /** Local address to connect from (a loopback alias, or one interface of several). */
  localAddress?: string;
}

export interface ListenOptions extends TunnelOptions {
  host?: string;
  port?: number;
  /** Enables resumption and `tunnel.issueTicket()`. */
  tickets?: TicketManager;
  /** TCP backlog. */
  backlog?: number;
  /** Admission control (rate limits) consulted for each connection and each rekey before any crypto. */
  admission?: ConnectionAdmission;
  /**
   * Handshakes in progress at once, in total; a connection beyond it is closed at once, before
   * any crypto (`onRateLimited('pending-handshakes')`). Default 1,024.
   */
  maxPendingHandshakes?: number;
  /** Handshakes in progress at once from one address (as the admission control keys it). Default 64. */
  maxPendingHandshakesPerAddress?: number;
  /**
   * Bytes a connection may have buffered before its handshake completes; beyond it the handshake
   * fails with ERR_QT_MESSAGE_TOO_LARGE. Default 16,384 (a ClientHello is under 1,700).
   */
  maxHandshakeBytes?: number;
}

export const DEFAULT_CLOSE_TIMEOUT_MS = 2000;
export const DEFAULT_MAX_PENDING_HANDSHAKES = 1024;
export const DEFAULT_MAX_PENDING_HANDSHAKES_PER_ADDRESS = 64;
export const DEFAULT_MAX_HANDSHAKE_BYTES = 16_384;
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

export function resolveTimeout(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) invalidArgument(`${name} must be a non-negative number`);
  return value;
}

/** A positive integer option, or its default. */
export function resolveLimit(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1) invalidArgument(`${name} must be a positive integer`);
  return value;
}

export function resolveHandshakeTimeout(options: TunnelOptions): number {
  return resolveTimeout(options.handshakeTimeoutMs, DEFAULT_HANDSHAKE_TIMEOUT_MS, 'handshakeTimeoutMs');
}
