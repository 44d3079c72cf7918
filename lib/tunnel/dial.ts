/** dial(): connect to a tunnel server and run the client handshake. */
import { connect, isIP, type Socket } from 'node:net';
import { ErrorCode, invalidArgument, qtError } from '../errors.js';
import { runInitiatorHandshake } from './handshakeDriver.js';
import { ObserverSet } from './observer.js';
import {
  applyFipsOption,
  DEFAULT_CONNECT_TIMEOUT_MS,
  type DialOptions,
  resolveDialAuth,
  resolveDialPsk,
  resolveGroups,
  resolveHandshakeTimeout,
  resolveOffload,
  checkTunnelOptions,
  resolveSuites,
  resolveTimeout,
} from './options.js';
import { ClientTicketStore } from '../protocol/v2/tickets.js';
import type { ResumptionOffer } from '../protocol/v2/handshake.js';
import { Tunnel } from './tunnel.js';
import type { IdentityKey, PublicIdentityKey } from '../identity/keys.js';
import type { CertificateIdentity } from '../identity/certificates.js';
import type { ServerCertificatePolicy } from '../protocol/v2/certAuth.js';

/** `host:port`, `[v6]:port`, or `{ host, port }`. */
export type DialAddress =
  | string
  | {
      /** Host name or IP address. Default `localhost`. */
      host?: string;
      /** TCP port, 1 to 65535. */
      port: number;
    };

function parseAddress(address: DialAddress): { host: string; port: number } {
  if (typeof address === 'object' && address !== null) {
    const { host = 'localhost', port } = address;
    if (!Number.isInteger(port) || port <= 0 || port > 65535) invalidArgument('port must be an integer from 1 to 65535');
    return { host, port };
  }
  if (typeof address !== 'string') return invalidArgument('address must be "host:port" or { host, port }');
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(address);
  if (!m) return invalidArgument(`address ${JSON.stringify(address)} is not host:port`);
  return parseAddress({ host: m[1] ?? (m[2] || 'localhost'), port: Number(m[3]) });
}

function connectSocket(host: string, port: number, timeoutMs: number, signal?: AbortSignal, localAddress?: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(qtError(ErrorCode.ABORTED, 'dial aborted'));
    const socket = connect({ host, port, localAddress, noDelay: true, allowHalfOpen: true }); // the tunnel closes its side itself
    const fail = (err: Error) => {
      cleanup();
      socket.destroy();
      reject(err);
    };
    const onError = (err: Error) => fail(qtError(ErrorCode.CONNECTION_FAILED, `cannot connect to ${host}:${port}`, { cause: err }));
    const onAbort = () => fail(qtError(ErrorCode.ABORTED, 'dial aborted'));
    const timer = timeoutMs > 0 ? setTimeout(() => fail(qtError(ErrorCode.TIMEOUT, `connect to ${host}:${port} timed out`)), timeoutMs) : undefined;
    const cleanup = () => {
      clearTimeout(timer);
      socket.off('error', onError);
      signal?.removeEventListener('abort', onAbort);
    };
    socket.once('error', onError);
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => {
      cleanup();
      resolve(socket);
    });
  });
}

/** Keys learned by fingerprint (§13.6): only the first dial to a fingerprint costs a second handshake. */
const learnedKeys = new Map<string, PublicIdentityKey>();
const MAX_LEARNED_KEYS = 1024;

/**
 * Connects and completes the handshake: resolves to an established {@link Tunnel}. The client
 * side of {@link listen}. `address` is `host:port`, `[v6]:port` or `{ host, port }`. Timeouts:
 * `connectTimeoutMs` (default 10,000 ms) for TCP, `handshakeTimeoutMs` for the handshake.
 *
 * Rejects with a QuantumTunnelError (`ERR_QT_CONNECTION_FAILED`,
 * `ERR_QT_TIMEOUT`, `ERR_QT_HANDSHAKE_TIMEOUT`, `ERR_QT_HANDSHAKE_FAILED`, `ERR_QT_PROTOCOL_MISMATCH` when the
 * server does not speak the protocol, `ERR_QT_SERVER_KEY_MISMATCH` when it does not prove the key
 * pinned for it, `ERR_QT_UNKNOWN_PEER` when it does not admit our key, `ERR_QT_PSK_MISMATCH`,
 * `ERR_QT_ABORTED`, ...; `err.syscallCode` has the OS code); throws ERR_QT_INVALID_ARGUMENT for
 * an invalid address or option. Every code: docs/ERRORS.md.
 *
 * @example
 * ```ts
 * import { dial } from 'quantum-tunnel';
 *
 * // Pin the server's identity key (its one-line text, from `quantum-vpn` or a known-servers file).
 * const tunnel = await dial('db.example.com:8443', { server: { publicKey: serverKeyLine } });
 * tunnel.on('error', (err) => console.error('tunnel failed:', err.code));
 * await tunnel.send(Buffer.from('hello'));
 * for await (const message of tunnel.messages()) console.log(message.toString());
 * ```
 */
export async function dial(address: DialAddress, options: DialOptions = {}): Promise<Tunnel> {
  const target = parseAddress(address);
  applyFipsOption(options.fips); // first: which key groups are permitted depends on the mode
  const auth = resolveDialAuth(options);
  let serverKey = auth.serverKey;
  if (auth.fingerprint !== undefined) serverKey = await keyOfFingerprint(target, options, auth.fingerprint);
  // Certificates name the server: by default the host dialled, as a DNS name or an IP address.
  const expected = auth.serverCertificate && (auth.serverCertificate.name ?? target.host);
  const serverCertificate = auth.serverCertificate && expected !== undefined
    ? { trusted: auth.serverCertificate.trusted, crls: auth.serverCertificate.crls, ...(isIP(expected) ? { ipAddress: expected } : { dnsName: expected }) }
    : undefined;
  return (await establish(target, options, { serverKey, identity: auth.identity, serverCertificate, certificate: auth.certificate })).tunnel;
}

/**
 * Asks a server for its identity key without authenticating it (docs/PROTOCOL.md §13.6): an
 * anonymous handshake, closed at once. What comes back is only a claim: compare its fingerprint
 * with one obtained out of band, or trust it on first use, then pin it (`server.publicKey`).
 * Resolves to undefined when the server has no identity key. Rejects as {@link dial} does
 * (ERR_QT_CONNECTION_FAILED, ERR_QT_TIMEOUT, ERR_QT_HANDSHAKE_TIMEOUT, ERR_QT_PROTOCOL_MISMATCH...).
 *
 * @example
 * ```ts
 * const key = await fetchServerKey('db.example.com:8443');
 * if (key?.fingerprint !== expectedFingerprint) throw new Error('not the server we expect');
 * const tunnel = await dial('db.example.com:8443', { server: { publicKey: key } });
 * ```
 */
export async function fetchServerKey(address: DialAddress, options: DialOptions = {}): Promise<PublicIdentityKey | undefined> {
  const anonymous: DialOptions = { ...options, psk: undefined, server: undefined, identity: undefined, ticketStore: undefined, legacyV1: false };
  const { tunnel, announcedServerKey } = await establish(parseAddress(address), anonymous, { requestServerKey: true });
  // The key is in hand: how the server ends this tunnel (a forward server whose backend is down
  // drops it) does not matter.
  tunnel.on('error', () => undefined);
  await tunnel.close().catch(() => undefined);
  return announcedServerKey;
}

async function keyOfFingerprint(target: { host: string; port: number }, options: DialOptions, fingerprint: string): Promise<PublicIdentityKey> {
  const known = learnedKeys.get(fingerprint);
  if (known) return known;
  const announced = await fetchServerKey(target, options);
  if (announced?.fingerprint !== fingerprint) {
    throw qtError(ErrorCode.SERVER_KEY_MISMATCH, announced ? `the server announced the key ${announced.fingerprint}, not ${fingerprint}` : 'the server has no identity key');
  }
  if (learnedKeys.size >= MAX_LEARNED_KEYS) learnedKeys.delete(learnedKeys.keys().next().value!);
  learnedKeys.set(fingerprint, announced);
  return announced;
}

/** Connects and runs the handshake with the resolved authentication. */
async function establish(
  { host, port }: { host: string; port: number },
  options: DialOptions,
  auth: { serverKey?: PublicIdentityKey; identity?: IdentityKey; requestServerKey?: boolean; serverCertificate?: ServerCertificatePolicy; certificate?: CertificateIdentity },
): Promise<{ tunnel: Tunnel; announcedServerKey?: PublicIdentityKey }> {
  applyFipsOption(options.fips);
  checkTunnelOptions(options);
  const suites = resolveSuites(options.ciphers);
  const groups = resolveGroups(options.groups);
  const legacyV1 = options.legacyV1 === true;
  const psk = resolveDialPsk(options);
  const { serverKey, identity, requestServerKey, serverCertificate, certificate } = auth;
  if (options.ticketStore !== undefined && !(options.ticketStore instanceof ClientTicketStore)) invalidArgument('ticketStore must be a ClientTicketStore');
  if (legacyV1 && options.ticketStore) invalidArgument('ticketStore is protocol v2 resumption; legacyV1 resumes with `resumption`');
  if (!legacyV1 && options.resumption) invalidArgument('`resumption` is protocol v1 resumption; protocol v2 resumes with `ticketStore`');
  // Tickets are kept per server: its address and, when authenticated, the PSK identity it proved.
  const ticketScope = `${host}:${port}${psk ? `|psk:${psk.identity.toString('hex')}` : ''}`;
  const handshakeTimeoutMs = resolveHandshakeTimeout(options);
  const connectTimeoutMs = resolveTimeout(options.connectTimeoutMs, DEFAULT_CONNECT_TIMEOUT_MS, 'connectTimeoutMs');
  const observers = new ObserverSet(options.observer);
  if (options.localAddress !== undefined && typeof options.localAddress !== 'string') invalidArgument('localAddress must be a string');
  const socket = await connectSocket(host, port, connectTimeoutMs, options.signal, options.localAddress);
  // A pinned-key client never resumes (a ticket would stand in for the server's key).
  const stored = serverKey || serverCertificate ? undefined : options.ticketStore?.take(ticketScope);
  const ticket: ResumptionOffer | undefined = stored && {
    ticket: stored.ticket,
    psk: stored.psk,
    obfuscatedAge: options.ticketStore!.obfuscatedAge(stored),
    peerIdentity: psk?.identity,
  };
  try {
    const handshaken = await runInitiatorHandshake(socket, {
      observers,
      legacyV1,
      config: { cipherSuites: suites, groups, psk, ticket, serverKey, identity, requestServerKey, serverCertificate, certificate, resumption: options.resumption, offloadCrypto: resolveOffload(options.offloadCrypto) },
      timeoutMs: handshakeTimeoutMs,
      signal: options.signal,
    });
    const tunnel = new Tunnel({ socket, handshaken, options, observers, ticketStore: options.ticketStore && { store: options.ticketStore, scope: ticketScope } });
    return { tunnel, announcedServerKey: (handshaken.result as { announcedServerKey?: PublicIdentityKey }).announcedServerKey };
  } finally {
    stored?.psk.destroy(); // single use, whatever happened
  }
}
