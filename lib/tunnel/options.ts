/** Options of listen() and dial(), their defaults and checks, named once. */
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { AuthorizedPeers, IdentityKey, isFingerprint, PublicIdentityKey } from '../identity/keys.js';
import { CertificateIdentity } from '../identity/certificates.js';
import { Certificate, type CertificateInput, parseCertificates } from '../crypto/x509.js';
import type { PeerAuthorizer } from '../protocol/v2/handshake.js';
import type { Secret } from '../native.js';
import { invalidArgument } from '../errors.js';
import { DEFAULT_HANDSHAKE_TIMEOUT_MS } from '../protocol/constants.js';
import type { CipherName } from '../protocol/suites.js';
export { type CipherName, resolveCipherSuites as resolveSuites } from '../protocol/suites.js';
import { TicketManager } from '../protocol/ticket.js';
import { ClientTicketStore, TicketIssuer } from '../protocol/v2/tickets.js';
import { defaultKemGroup, KEM_GROUPS, kemGroupByOption, type KemGroupSpec } from '../protocol/v2/groups.js';
import type { ExternalPsk } from '../protocol/v2/handshake.js';
import { isSecret } from '../crypto/secret.js';
import { isArray } from '../crypto/bytes.js';
import type { ConnectionAdmission, TunnelObserver } from './observer.js';
import { autoOffload } from './handshakeLoad.js';
import type { OffloadPolicy } from '../protocol/offload.js';
import { enable as enableFips, type FipsOptions } from '../fips/index.js';
import type { ProxyProtocolVersion } from './proxyProtocol.js';

/** Key exchange group names accepted in options and on the command line (protocol v2). */
export type KemGroupName = 'x25519-mlkem1024' | 'p384-mlkem1024' | 'x25519-mlkem768';

/**
 * An external pre-shared key (protocol v2): both ends hold the same secret under the same
 * identity, and each proves it to the other in the handshake. Make the secret with
 * `crypto.importSecret()` (at least 32 bytes of key material, e.g. from `quantum-vpn psk`).
 */
export interface PskOption {
  /** Names the key (sent in the clear in the ClientHello): 1 to 1,024 bytes, or a string in UTF-8. */
  identity: string | Uint8Array;
  /** The key, a native handle; the option keeps using it (do not destroy it while listening or dialing). */
  secret: Secret;
}

/** Options shared by both ends. */
export interface TunnelOptions {
  /**
   * Speak protocol v1 (Quantum-Go), to talk to Go peers: a client speaks only v1, a listener also
   * answers v1 clients. Default false: protocol v2, whose handshake is authenticated end to end
   * (docs/SECURITY.md says what v1 lacks). Refused together with `psk`: v1 cannot authenticate.
   */
  legacyV1?: boolean;
  /**
   * Protocol v2 key exchange groups in preference order; a client sends its key share for the
   * first. Default: x25519-mlkem1024, or p384-mlkem1024 in FIPS mode (both halves approved).
   */
  groups?: readonly KemGroupName[];
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
   * Keepalive (ms): when the peer has sent nothing for this long, send it an authenticated Ping;
   * if it is still silent this long after, the tunnel fails with ERR_QT_TIMEOUT. Finds dead peers
   * (a crashed host, a dropped NAT mapping) that TCP alone notices only after minutes, and keeps
   * NAT mappings open. Any frame from the peer counts, so a busy tunnel sends no Pings.
   * Default 0 (off).
   */
  keepAliveMs?: number;
  /**
   * Idle timeout (ms): no application data in either direction for this long closes the tunnel
   * gracefully (close_notify; Pings do not count as data). Default 0 (off).
   */
  idleTimeoutMs?: number;
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
   * Where the handshake's key-exchange steps run. `false`: inline on the event loop (a step is
   * tens of microseconds, about what a threadpool round trip costs). `true`: always on the libuv
   * threadpool, so the event loop never blocks even for that long. `'auto'`: on the threadpool
   * only while at least AUTO_OFFLOAD_FROM (4) handshakes are in progress in this process (those
   * waiting for their peer included), when another core can do the work while the event loop
   * carries on (docs/BENCHMARKS.md, "Issue 11", has the crossover measured). With an X25519 group
   * in standard mode a step (a client share, the server's share and K, the client's K) is one
   * job; with P-384 + ML-KEM-1024, in FIPS mode and in protocol v1 the ML-KEM operations are.
   * Default `'auto'`.
   */
  offloadCrypto?: boolean | 'auto';
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
  /** The ticket the server issued (opaque to the client). */
  ticket: Uint8Array;
  /** The resumption secret, a native handle: destroy it when the state is no longer needed. */
  psk: Secret;
}

/** Options of {@link dial}: {@link TunnelOptions} and the client's own. */
export interface DialOptions extends TunnelOptions {
  /** Protocol v1 only: try to resume; falls back to a full handshake if the server does not accept the ticket. */
  resumption?: ResumptionState;
  /** Protocol v2: authenticate both ends with this pre-shared key (the server must know it). */
  psk?: PskOption;
  /**
   * Protocol v2: who the server must prove to be. `publicKey`: its pinned identity key (a
   * {@link PublicIdentityKey} or its one-line text `qtun-<group> <base64>`), proved inside the
   * one round trip (docs/PROTOCOL.md §13). Excludes `psk`.
   */
  server?: ServerAuthOption;
  /**
   * Protocol v2: who we are, for a server that authenticates clients. An {@link IdentityKey} with
   * `server.publicKey` / `fingerprint` (sealed to the server's key, so only that server learns
   * it); a {@link CertificateIdentity} with `server.ca` (sent only after the server's certificate
   * verified, and only if the server asks).
   */
  identity?: IdentityKey | CertificateIdentity;
  /**
   * Protocol v2 resumption: tickets the server sends are kept here, and the next dial to the same
   * address (and PSK identity) with the same store offers one (single use).
   */
  ticketStore?: ClientTicketStore;
  /** Abort the connection attempt and the handshake. */
  signal?: AbortSignal;
  /** TCP connect timeout (ms). Default 10,000. */
  connectTimeoutMs?: number;
  /** Local address to connect from (a loopback alias, or one interface of several). */
  localAddress?: string;
}

/** Options of {@link listen}: {@link TunnelOptions} and the server's own. */
export interface ListenOptions extends TunnelOptions {
  /** Address to listen on. Default `127.0.0.1` (loopback only: pass `0.0.0.0` or `::` to accept other hosts). */
  host?: string;
  /** TCP port, 0 to 65535. Default 0: a free port, read it from `listener.address()`. */
  port?: number;
  /**
   * Resumption. A {@link TicketIssuer} (protocol v2): every new v2 tunnel gets a ticket in-band.
   * A {@link TicketManager} (protocol v1, legacy): enables `tunnel.issueTicket()`.
   */
  tickets?: TicketManager | TicketIssuer;
  /**
   * Protocol v2: require every client to authenticate with one of these pre-shared keys (or a
   * lookup by identity returning the secret, or undefined for an unknown identity).
   */
  psk?: PskOption | readonly PskOption[] | ((identity: Buffer) => Secret | undefined);
  /**
   * Protocol v2: who this server is. Identity keys (several while replacing one: clients that
   * pinned any of them are accepted, §13), and at most one {@link CertificateIdentity} for clients
   * that authenticate servers by certificate (§14). A server may hold both.
   */
  identity?: IdentityKey | CertificateIdentity | readonly (IdentityKey | CertificateIdentity)[];
  /**
   * Protocol v2: the clients admitted by key: an {@link AuthorizedPeers}, or public keys (objects
   * or one-line text) and `SHA256:` fingerprints. Needs `identity`; makes `requirePeerIdentity`
   * default to true.
   */
  authorizedPeers?: AuthorizedPeers | Iterable<PublicIdentityKey | string>;
  /**
   * Protocol v2: admit clients by certificate: the CAs that issue them (PEM text or certificates).
   * Needs a CertificateIdentity in `identity`; makes `requirePeerIdentity` default to true.
   */
  ca?: CertificateInput | readonly Certificate[];
  /** CRLs the client certificates are checked against (with `ca`). */
  crls?: readonly CertificateInput[];
  /**
   * Refuse clients that do not prove an authorized key (ERR_QT_UNKNOWN_PEER) or a certificate
   * from `ca` (ERR_QT_CERTIFICATE_REQUIRED). Default: true with `authorizedPeers` or `ca`.
   */
  requirePeerIdentity?: boolean;
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
  /**
   * Accept connections through a TCP load balancer that sends a PROXY protocol header (HAProxy's
   * v1 text or v2 binary form): admission, the pending-handshake caps, observers and
   * `tunnel.info().remoteAddress` then see the client the header names, and
   * `tunnel.info().proxiedBy` the balancer. Only connections from `trustedSources` are accepted,
   * and each must start with a header; any other connection is refused
   * (ERR_QT_PROXY_SOURCE_UNTRUSTED), since a header from anyone else would let them pick the
   * address they are limited and logged under.
   */
  proxyProtocol?: ProxyProtocolOption;
}

/** The `proxyProtocol` option of listen(). */
export interface ProxyProtocolOption {
  /** The header versions accepted: 'v1' (text), 'v2' (binary) or 'any'. */
  accept: ProxyProtocolVersion;
  /**
   * The balancers' addresses, as IP addresses or CIDR blocks (`10.0.0.0/8`, `fd00::/8`). Required
   * and non-empty: there is no "trust everyone". IPv4-mapped IPv6 peers match IPv4 entries.
   */
  trustedSources: readonly string[];
  /**
   * How long a connection may take to send its header (ms); past it the connection is closed
   * (ERR_QT_PROXY_HEADER_TIMEOUT). Default 5,000. The handshake deadline starts after the header.
   */
  timeoutMs?: number;
}

/** A checked `proxyProtocol` option. */
export interface ProxyProtocolConfig {
  accept: ProxyProtocolVersion;
  trusted: BlockList;
  timeoutMs: number;
}

export const DEFAULT_PROXY_HEADER_TIMEOUT_MS = 5000;

/** Checks `proxyProtocol` of listen(): the versions, each trusted source, the timeout. */
export function resolveProxyProtocol(option: ListenOptions['proxyProtocol']): ProxyProtocolConfig | undefined {
  if (option === undefined) return undefined;
  if (typeof option !== 'object' || option === null) invalidArgument('proxyProtocol must be { accept, trustedSources, timeoutMs? }');
  if (!['v1', 'v2', 'any'].includes(option.accept)) invalidArgument("proxyProtocol.accept must be 'v1', 'v2' or 'any'");
  if (!Array.isArray(option.trustedSources) || option.trustedSources.length === 0) {
    invalidArgument('proxyProtocol.trustedSources must list at least one address or CIDR block (there is no "trust everyone")');
  }
  const trusted = new BlockList();
  for (const source of option.trustedSources) addTrustedSource(trusted, source);
  const timeoutMs = resolveTimeout(option.timeoutMs, DEFAULT_PROXY_HEADER_TIMEOUT_MS, 'proxyProtocol.timeoutMs');
  if (timeoutMs === 0) invalidArgument('proxyProtocol.timeoutMs must be positive');
  return { accept: option.accept, trusted, timeoutMs };
}

/** Adds `10.1.2.3`, `10.0.0.0/8`, `::1` or `fd00::/8` to the list. */
function addTrustedSource(list: BlockList, source: unknown): void {
  const text = typeof source === 'string' ? source.trim() : '';
  const [address = '', prefix, extra] = text.split('/');
  const type = isIPv4(address) ? 'ipv4' : isIPv6(address) ? 'ipv6' : undefined;
  const bits = prefix === undefined ? undefined : /^[0-9]{1,3}$/.test(prefix) ? Number(prefix) : NaN;
  if (type === undefined || extra !== undefined || Number.isNaN(bits) || (bits !== undefined && bits > (type === 'ipv4' ? 32 : 128))) {
    invalidArgument(`proxyProtocol.trustedSources: ${JSON.stringify(String(source))} is not an IP address or CIDR block`);
  }
  if (bits === undefined) list.addAddress(address, type);
  else list.addSubnet(address, bits, type);
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

/**
 * Checks the options a Tunnel reads only after its handshake (rekeyMinIntervalMs,
 * closeTimeoutMs, keepAliveMs, idleTimeoutMs), so that a bad one fails dial() before it connects and listen() before it
 * accepts anything.
 */
export function checkTunnelOptions(options: TunnelOptions): void {
  resolveOffload(options.offloadCrypto);
  resolveTimeout(options.rekeyMinIntervalMs, 0, 'rekeyMinIntervalMs');
  resolveTimeout(options.closeTimeoutMs, 0, 'closeTimeoutMs');
  resolveInterval(options.keepAliveMs, 'keepAliveMs');
  resolveInterval(options.idleTimeoutMs, 'idleTimeoutMs');
}

/** Longest timer Node keeps (a longer one fires after 1 ms instead). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A timer period option (keepAliveMs, idleTimeoutMs): 0 (off) by default, at most ~24.8 days. */
export function resolveInterval(value: number | undefined, name: string): number {
  const ms = resolveTimeout(value, 0, name);
  if (ms > MAX_TIMER_MS) invalidArgument(`${name} must be at most ${MAX_TIMER_MS} ms`);
  return ms;
}

/** The offload policy of an `offloadCrypto` option (default 'auto'). */
export function resolveOffload(option: TunnelOptions['offloadCrypto']): OffloadPolicy {
  if (option === undefined || option === 'auto') return autoOffload;
  if (typeof option !== 'boolean') invalidArgument("offloadCrypto must be true, false or 'auto'");
  return option;
}

export function resolveHandshakeTimeout(options: TunnelOptions): number {
  return resolveTimeout(options.handshakeTimeoutMs, DEFAULT_HANDSHAKE_TIMEOUT_MS, 'handshakeTimeoutMs');
}

/** The v2 groups of a `groups` option (default: the mode's default group, then the others permitted). */
export function resolveGroups(names: readonly KemGroupName[] | undefined): KemGroupSpec[] {
  if (names === undefined) {
    const first = defaultKemGroup();
    return [first, ...KEM_GROUPS.filter((g) => g !== first)].filter((g) => g.permitted());
  }
  if (!isArray(names) || names.length === 0) invalidArgument('groups must be a non-empty array');
  return names.map((name) => {
    const g = kemGroupByOption(name);
    if (!g.permitted()) invalidArgument(`${name} is not permitted in this mode (strict FIPS mode allows p384-mlkem1024 only)`);
    return g;
  });
}

const MAX_PSK_IDENTITY = 1024;
const MIN_PSK_LENGTH = 32;

function checkPsk(option: PskOption): ExternalPsk {
  if (typeof option !== 'object' || option === null) invalidArgument('psk must be { identity, secret }');
  const identity = typeof option.identity === 'string' ? Buffer.from(option.identity, 'utf8')
    : option.identity instanceof Uint8Array ? Buffer.from(option.identity) : invalidArgument('psk.identity must be a string or a Uint8Array');
  if (identity.length === 0 || identity.length > MAX_PSK_IDENTITY) invalidArgument(`psk.identity must be 1 to ${MAX_PSK_IDENTITY} bytes`);
  if (!isSecret(option.secret) || option.secret.destroyed) invalidArgument('psk.secret must be a live Secret (crypto.importSecret())');
  if (option.secret.length < MIN_PSK_LENGTH) invalidArgument(`psk.secret must hold at least ${MIN_PSK_LENGTH} bytes`);
  return { identity, secret: option.secret };
}

/** The client's external PSK; refused together with legacy v1, which cannot authenticate. */
export function resolveDialPsk(options: DialOptions): ExternalPsk | undefined {
  if (options.psk === undefined) return undefined;
  if (options.legacyV1) invalidArgument('legacyV1 cannot be combined with psk: protocol v1 has no authentication');
  return checkPsk(options.psk);
}

/** The listener's PSK lookup by identity. */
export function resolveListenPsk(options: ListenOptions): ((identity: Buffer) => Secret | undefined) | undefined {
  const psk = options.psk;
  if (psk === undefined) return undefined;
  if (options.legacyV1) invalidArgument('legacyV1 cannot be combined with psk: protocol v1 has no authentication');
  if (typeof psk === 'function') return psk;
  const list = (Array.isArray(psk) ? psk : [psk]).map((p) => checkPsk(p as PskOption));
  if (list.length === 0) invalidArgument('psk must name at least one key');
  const byIdentity = new Map(list.map((p) => [p.identity.toString('hex'), p.secret]));
  return (identity) => byIdentity.get(identity.toString('hex'));
}

/**
 * How a client authenticates the server.
 * - `publicKey`: its pinned identity key (a {@link PublicIdentityKey} or its one-line text): the
 *   fast path, proved within the one round trip (docs/PROTOCOL.md §13).
 * - `fingerprint`: the `SHA256:` fingerprint of that key. The first dial to it asks the server for
 *   its key (an extra handshake), checks the fingerprint and pins the key; later dials in this
 *   process reuse it.
 * - `ca`: an ML-DSA-87 certificate chaining to one of these CAs (PEM text or parsed
 *   certificates), for `name` (default: the host dialled; a DNS name or an IP address), optionally
 *   checked against `crls` (§14).
 */
export type ServerAuthOption =
  | {
      /** The server's pinned identity key, or its one-line text `qtun-<group> <base64>`. */
      publicKey: PublicIdentityKey | string;
      /** Not with `publicKey`. */
      fingerprint?: undefined;
      /** Not with `publicKey`. */
      ca?: undefined;
    }
  | {
      /** `SHA256:…` of the server's identity key. */
      fingerprint: string;
      /** Not with `fingerprint`. */
      publicKey?: undefined;
      /** Not with `fingerprint`. */
      ca?: undefined;
    }
  | {
      /** The trusted CAs: PEM text or parsed certificates. */
      ca: CertificateInput | readonly Certificate[];
      /** The name the server's certificate must hold. Default: the host dialled. */
      name?: string;
      /** CRLs of those CAs; with them, revocation is checked (ERR_QT_CERTIFICATE_REVOKED). */
      crls?: readonly CertificateInput[];
      /** Not with `ca`. */
      publicKey?: undefined;
      /** Not with `ca`. */
      fingerprint?: undefined;
    };

function checkIdentityKey(key: unknown, name: string): IdentityKey {
  if (!(key instanceof IdentityKey)) return invalidArgument(`${name} must be an IdentityKey or a CertificateIdentity`);
  if (!key.group.permitted()) invalidArgument(`${name} is a ${key.group.option} key, which this mode does not permit (strict FIPS mode: p384-mlkem1024)`);
  return key;
}

/** Trust anchors from PEM text or certificates. */
function trustAnchors(ca: unknown, name: string): Certificate[] {
  const list = isArray(ca) ? [...ca] : typeof ca === 'string' || ca instanceof Uint8Array ? parseCertificates(ca) : invalidArgument(`${name} must be PEM text or certificates`);
  if (list.length === 0 || !list.every((c) => c instanceof Certificate)) invalidArgument(`${name} must hold at least one certificate`);
  return list;
}

/** The client's authentication of the server, and its own identity. */
export interface DialAuth {
  serverKey?: PublicIdentityKey;
  fingerprint?: string;
  identity?: IdentityKey;
  /** Certificates: trust anchors, CRLs, and the expected name (undefined: the host dialled). */
  serverCertificate?: { trusted: Certificate[]; crls?: readonly CertificateInput[]; name?: string };
  certificate?: CertificateIdentity;
}

/** Checks `server` and `identity` of dial(). */
export function resolveDialAuth(options: DialOptions): DialAuth {
  const { server, identity } = options;
  if (server === undefined) {
    if (identity !== undefined) invalidArgument("identity needs server: the client proves itself only to a server it authenticated");
    return {};
  }
  if (typeof server !== 'object' || server === null || [server.publicKey, server.fingerprint, server.ca].filter((v) => v !== undefined).length !== 1) {
    invalidArgument('server must be one of { publicKey }, { fingerprint } or { ca, name? }');
  }
  if (options.legacyV1) invalidArgument('legacyV1 cannot be combined with server: protocol v1 has no authentication');
  if (options.psk !== undefined) invalidArgument('choose one authentication mode: psk or server');
  if (server.ca !== undefined) {
    if (identity !== undefined && !(identity instanceof CertificateIdentity)) invalidArgument('with server.ca the client identity is a CertificateIdentity');
    if (server.name !== undefined && (typeof server.name !== 'string' || server.name === '')) invalidArgument('server.name must be a non-empty string');
    return { serverCertificate: { trusted: trustAnchors(server.ca, 'server.ca'), crls: server.crls, name: server.name }, certificate: identity };
  }
  const ours = identity === undefined ? undefined : checkIdentityKey(identity, 'identity');
  if (server.fingerprint !== undefined) {
    if (typeof server.fingerprint !== 'string' || !isFingerprint(server.fingerprint)) invalidArgument('server.fingerprint must be SHA256: and 43 base64 characters');
    return { fingerprint: server.fingerprint, identity: ours };
  }
  const serverKey = typeof server.publicKey === 'string' ? parsedServerKey(server.publicKey)
    : server.publicKey instanceof PublicIdentityKey ? server.publicKey : invalidArgument('server.publicKey must be a PublicIdentityKey or its text form');
  if (!serverKey.group.permitted()) invalidArgument(`the server key is a ${serverKey.group.option} key, which this mode does not permit`);
  return { serverKey, identity: ours };
}

/**
 * Server keys given as text, parsed once: the same key object (its ML-KEM key parsed on first use,
 * see groups.ts) serves every dial that names it. Bounded: the oldest is dropped past 64 keys.
 */
const serverKeysByText = new Map<string, PublicIdentityKey>();
const MAX_SERVER_KEYS_BY_TEXT = 64;

function parsedServerKey(text: string): PublicIdentityKey {
  let key = serverKeysByText.get(text);
  if (key === undefined) {
    key = PublicIdentityKey.parse(text);
    if (serverKeysByText.size >= MAX_SERVER_KEYS_BY_TEXT) serverKeysByText.delete(serverKeysByText.keys().next().value!);
    serverKeysByText.set(text, key);
  }
  return key;
}

/** The listener's identities and client policy. */
export interface ListenAuth {
  identities?: IdentityKey[];
  certificate?: CertificateIdentity;
  authorizedPeers?: PeerAuthorizer;
  clientCertificates?: { trusted: Certificate[]; crls?: readonly CertificateInput[] };
  requirePeerIdentity: boolean;
}

/** Checks `identity`, `authorizedPeers`, `ca` and `requirePeerIdentity` of listen(). */
export function resolveListenAuth(options: ListenOptions): ListenAuth {
  const { identity, authorizedPeers, ca } = options;
  if (options.requirePeerIdentity !== undefined && typeof options.requirePeerIdentity !== 'boolean') invalidArgument('requirePeerIdentity must be a boolean');
  if (identity === undefined) {
    if (authorizedPeers !== undefined || ca !== undefined) invalidArgument('authorizedPeers and ca need identity: clients prove themselves to a server that proved itself');
    if (options.requirePeerIdentity) invalidArgument('requirePeerIdentity needs identity, and authorizedPeers or ca');
    return { requirePeerIdentity: false };
  }
  if (options.legacyV1) invalidArgument('legacyV1 cannot be combined with identity: protocol v1 has no authentication');
  if (options.psk !== undefined) invalidArgument('choose one authentication mode: psk or identity');
  const all = isArray(identity) ? [...identity] : [identity];
  if (all.length === 0) invalidArgument('identity must name at least one key or certificate');
  const certificates = all.filter((i): i is CertificateIdentity => i instanceof CertificateIdentity);
  if (certificates.length > 1) invalidArgument('identity holds at most one certificate');
  const identities = all.filter((i) => !(i instanceof CertificateIdentity)).map((k, i) => checkIdentityKey(k, `identity[${i}]`));
  const peers = authorizedPeers === undefined ? undefined
    : authorizedPeers instanceof AuthorizedPeers ? authorizedPeers
    : typeof (authorizedPeers as Iterable<unknown>)[Symbol.iterator] === 'function' ? new AuthorizedPeers(authorizedPeers)
    : invalidArgument('authorizedPeers must be an AuthorizedPeers or a list of public keys and fingerprints');
  if (peers && identities.length === 0) invalidArgument('authorizedPeers needs an identity key (clients seal their key to it)');
  if (ca !== undefined && certificates.length === 0) invalidArgument('ca needs a certificate identity (clients send certificates only to a server that sent one)');
  const clientCertificates = ca === undefined ? undefined : { trusted: trustAnchors(ca, 'ca'), crls: options.crls };
  const requirePeerIdentity = options.requirePeerIdentity ?? (peers !== undefined || clientCertificates !== undefined);
  if (requirePeerIdentity && peers === undefined && clientCertificates === undefined) invalidArgument('requirePeerIdentity needs authorizedPeers or ca');
  return {
    identities: identities.length > 0 ? identities : undefined,
    certificate: certificates[0],
    authorizedPeers: peers,
    clientCertificates,
    requirePeerIdentity,
  };
}

/** The `tickets` option split by version. */
export function resolveTickets(tickets: ListenOptions['tickets']): { v1?: TicketManager; v2?: TicketIssuer } {
  if (tickets === undefined) return {};
  if (tickets instanceof TicketIssuer) return { v2: tickets };
  if (tickets instanceof TicketManager) return { v1: tickets };
  return invalidArgument('tickets must be a TicketIssuer (protocol v2) or a TicketManager (v1)');
}
