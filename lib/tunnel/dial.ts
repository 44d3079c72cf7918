/** dial(): connect to a tunnel server and run the client handshake. */
import { connect, type Socket } from 'node:net';
import { ErrorCode, invalidArgument, qtError } from '../errors.js';
import { runInitiatorHandshake } from './handshakeDriver.js';
import { ObserverSet } from './observer.js';
import {
  applyFipsOption,
  DEFAULT_CONNECT_TIMEOUT_MS,
  type DialOptions,
  resolveDialPsk,
  resolveGroups,
  resolveHandshakeTimeout,
  resolveSuites,
  resolveTimeout,
} from './options.js';
import { ClientTicketStore } from '../protocol/v2/tickets.js';
import type { ResumptionOffer } from '../protocol/v2/handshake.js';
import { Tunnel } from './tunnel.js';

/** `host:port`, `[v6]:port`, or `{ host, port }`. */
export type DialAddress = string | { host?: string; port: number };

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

/**
 * Connects and completes the handshake. Rejects with a QuantumTunnelError (`ERR_QT_CONNECTION_FAILED`,
 * `ERR_QT_HANDSHAKE_TIMEOUT`, `ERR_QT_HANDSHAKE_FAILED`, `ERR_QT_PROTOCOL_MISMATCH` when the
 * server does not speak the protocol, `ERR_QT_ABORTED`, ...; `err.syscallCode` has the OS code).
 */
export async function dial(address: DialAddress, options: DialOptions = {}): Promise<Tunnel> {
  const { host, port } = parseAddress(address);
  applyFipsOption(options.fips);
  const suites = resolveSuites(options.ciphers);
  const groups = resolveGroups(options.groups);
  const legacyV1 = options.legacyV1 === true;
  const psk = resolveDialPsk(options);
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
  const stored = options.ticketStore?.take(ticketScope);
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
      config: { cipherSuites: suites, groups, psk, ticket, resumption: options.resumption, offloadCrypto: options.offloadCrypto },
      timeoutMs: handshakeTimeoutMs,
      signal: options.signal,
    });
    return new Tunnel({ socket, handshaken, options, observers, ticketStore: options.ticketStore && { store: options.ticketStore, scope: ticketScope } });
  } finally {
    stored?.psk.destroy(); // single use, whatever happened
  }
}
