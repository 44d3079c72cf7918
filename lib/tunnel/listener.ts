/**
 * listen(): a TCP server whose connections become tunnels. Every connection runs its handshake on
 * its own, with a deadline, so a silent or slow client never holds up another (§14 #5).
 */
import { EventEmitter, once } from 'node:events';
import { createServer, isIPv6, type AddressInfo, type Server, type Socket } from 'node:net';
import { ErrorCode, QuantumTunnelError, qtError } from '../errors.js';
import type { CipherSuiteId } from '../protocol/constants.js';
import { type HandshakeHandle, releaseHeldWrites, runResponderHandshake } from './handshakeDriver.js';
import { ObserverSet, type PeerAddress } from './observer.js';
import { type ProxyHeader, ProxyHeaderParser } from './proxyProtocol.js';
import {
  applyFipsOption,
  DEFAULT_MAX_HANDSHAKE_BYTES,
  DEFAULT_MAX_PENDING_HANDSHAKES,
  DEFAULT_MAX_PENDING_HANDSHAKES_PER_ADDRESS,
  type ListenOptions,
  type ProxyProtocolConfig,
  resolveHandshakeTimeout,
  resolveOffload,
  checkTunnelOptions,
  resolveGroups,
  resolveLimit,
  resolveProxyProtocol,
  resolveListenAuth,
  resolveListenPsk,
  resolveSuites,
  resolveTickets,
} from './options.js';
import type { ResponderConfig } from '../protocol/versions.js';
import type { TicketIssuer } from '../protocol/v2/tickets.js';
import { Tunnel } from './tunnel.js';

/** Details of a connection whose handshake failed (no tunnel was created). */
export interface HandshakeErrorEvent {
  /** Why the handshake failed (its `code` is one of the ERR_QT_* handshake codes of docs/ERRORS.md). */
  error: QuantumTunnelError;
  /** The client's address (behind a PROXY protocol balancer: the one its header named). */
  remoteAddress: string | undefined;
  /** The client's port, the same way. */
  remotePort: number | undefined;
  /** The PROXY protocol balancer the connection came through, when its header named the client above. */
  proxiedBy?: PeerAddress;
}

/**
 * A listening server. Events: `listening`, `tunnel` (a {@link Tunnel}), `handshakeError`
 * ({@link HandshakeErrorEvent}), `tunnelError` (error, tunnel: an established tunnel failed and
 * the application attached no 'error' listener to it), `error` (server errors such as
 * EADDRINUSE), `close`. Also an async iterator of tunnels, which ends when the listener closes.
 *
 * Like node:http and node:tls servers, a listener never lets a connection's failure crash the
 * process: tunnels nobody watches for errors report them to `tunnelError` (dropped when nobody
 * listens there either), and are destroyed.
 */
export class Listener extends EventEmitter implements AsyncIterable<Tunnel> {
  private readonly server: Server;
  private readonly suites: CipherSuiteId[];
  /** What every connection's handshake is configured with (protocol/versions.ts). */
  private readonly handshakeConfig: ResponderConfig;
  private readonly ticketIssuer: TicketIssuer | undefined;
  private readonly handshakeTimeoutMs: number;
  private readonly observers: ObserverSet;
  private readonly handshakes = new Set<HandshakeHandle>();
  /** Handshakes in progress per remote address (the pending-handshake caps). */
  private readonly pendingByAddress = new Map<string, number>();
  private readonly maxPending: number;
  private readonly maxPendingPerAddress: number;
  private readonly maxHandshakeBytes: number;
  private readonly proxyProtocol: ProxyProtocolConfig | undefined;
  private readonly tunnels = new Set<Tunnel>();
  private closing = false;
  private iterating = false;
  private readonly queue: Tunnel[] = [];
  private readonly waiters: Array<(r: IteratorResult<Tunnel>) => void> = [];
  /** Resolves once listening (rejects on a listen error). */
  readonly ready: Promise<void>;

  constructor(private readonly options: ListenOptions = {}) {
    super();
    applyFipsOption(options.fips);
    this.suites = resolveSuites(options.ciphers);
    const tickets = resolveTickets(options.tickets);
    this.ticketIssuer = tickets.v2;
    this.handshakeConfig = {
      cipherSuites: this.suites,
      groups: resolveGroups(options.groups),
      psk: resolveListenPsk(options),
      ...resolveListenAuth(options),
      tickets: tickets.v1,
      ticketOpener: tickets.v2,
      offloadCrypto: resolveOffload(options.offloadCrypto),
    };
    this.handshakeTimeoutMs = resolveHandshakeTimeout(options);
    checkTunnelOptions(options);
    this.maxPending = resolveLimit(options.maxPendingHandshakes, DEFAULT_MAX_PENDING_HANDSHAKES, 'maxPendingHandshakes');
    this.maxPendingPerAddress = resolveLimit(options.maxPendingHandshakesPerAddress, DEFAULT_MAX_PENDING_HANDSHAKES_PER_ADDRESS, 'maxPendingHandshakesPerAddress');
    this.maxHandshakeBytes = resolveLimit(options.maxHandshakeBytes, DEFAULT_MAX_HANDSHAKE_BYTES, 'maxHandshakeBytes');
    this.proxyProtocol = resolveProxyProtocol(options.proxyProtocol);
    this.observers = new ObserverSet(options.observer);
    // allowHalfOpen: the tunnel decides when its TCP side closes (half-open tunnels keep writing after a FIN).
    this.server = createServer({ noDelay: true, allowHalfOpen: true }, (socket) => this.onConnection(socket));
    this.server.on('error', (err) => this.emit('error', err));
    this.server.on('close', () => this.emit('close'));
    this.ready = new Promise((resolve, reject) => {
      this.server.once('listening', () => {
        this.emit('listening');
        resolve();
      });
      this.server.once('error', reject);
    });
    this.ready.catch(() => undefined); // surfaced through 'error' too
    this.server.listen({ host: options.host ?? '127.0.0.1', port: options.port ?? 0, backlog: options.backlog });
  }

  /** The bound address (after `listening`). */
  address(): AddressInfo {
    return this.server.address() as AddressInfo;
  }

  /** Established tunnels that are still open. */
  get activeTunnels(): number {
    return this.tunnels.size;
  }

  /** Handshakes in progress right now. */
  get pendingHandshakes(): number {
    return this.handshakes.size;
  }

  private onConnection(socket: Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    socket.on('error', () => undefined); // the handshake driver reports failures
    const peer = { address: socket.remoteAddress, port: socket.remotePort };
    this.observers.notify('onConnection', peer);
    if (this.proxyProtocol) this.acceptProxied(socket, peer, this.proxyProtocol);
    else this.admit(socket, peer, undefined);
  }

  /**
   * A connection through a PROXY protocol balancer: only a trusted source may send a header, and
   * it must. While the header is read the connection holds a pending-handshake place under the
   * balancer's address (bounded like any handshake, so half-sent headers cannot pile up); once
   * read, the client named in it is what admission and the caps see.
   */
  private acceptProxied(socket: Socket, balancer: PeerAddress, config: ProxyProtocolConfig): void {
    const from = balancer.address;
    if (from === undefined || !config.trusted.check(from, isIPv6(from) ? 'ipv6' : 'ipv4')) {
      this.refuse(socket, balancer, qtError(ErrorCode.PROXY_SOURCE_UNTRUSTED, 'connection from a source not in proxyProtocol.trustedSources'));
      return;
    }
    const handle: HandshakeHandle = {};
    const release = this.holdPending(balancer, handle);
    if (release === undefined) {
      socket.destroy();
      return;
    }
    readProxyHeader(socket, config, handle).then(
      (header) => {
        release();
        const client = header.command === 'proxy' ? header.source : undefined;
        if (client === undefined) this.admit(socket, balancer, undefined); // LOCAL (a health check) or no address given
        else this.admit(socket, { address: client.address, port: client.port }, balancer);
        socket.resume(); // readProxyHeader left it paused so no byte after the header was lost
      },
      (error: QuantumTunnelError) => {
        release();
        this.refuse(socket, balancer, error);
      },
    );
  }

  /**
   * A connection that failed before its handshake began (PROXY protocol): counted and logged as a
   * failed handshake under its own code, reported to `handshakeError`, and dropped.
   */
  private refuse(socket: Socket, peer: PeerAddress, error: QuantumTunnelError): void {
    socket.destroy();
    if (!this.observers.empty) this.observers.startHandshake({ role: 'server', resumptionAttempted: false, ...peer }).failed(error.code);
    this.emit('handshakeError', { error, remoteAddress: peer.address, remotePort: peer.port } satisfies HandshakeErrorEvent);
  }

  /**
   * Takes a place under the caps on handshakes in progress (in total and per address) for `peer`,
   * and returns its release; undefined (after telling the observers) when the caps are reached.
   */
  private holdPending(peer: PeerAddress, handle: HandshakeHandle): (() => void) | undefined {
    const address = addressKey(peer.address);
    const fromAddress = this.pendingByAddress.get(address) ?? 0;
    if (this.handshakes.size >= this.maxPending || fromAddress >= this.maxPendingPerAddress) {
      this.observers.notify('onRateLimited', 'pending-handshakes', peer);
      return undefined;
    }
    this.handshakes.add(handle);
    this.pendingByAddress.set(address, fromAddress + 1);
    this.observers.notify('onPendingHandshakes', this.handshakes.size);
    return () => {
      this.handshakes.delete(handle);
      const left = (this.pendingByAddress.get(address) ?? 1) - 1;
      if (left > 0) this.pendingByAddress.set(address, left);
      else this.pendingByAddress.delete(address);
      this.observers.notify('onPendingHandshakes', this.handshakes.size);
    };
  }

  /**
   * Admits the connection of `peer` (the client; `proxiedBy` the balancer in front of it, if any)
   * and runs its handshake.
   */
  private admit(socket: Socket, peer: PeerAddress, proxiedBy: PeerAddress | undefined): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    // Caps on handshakes in progress come first: they cost nothing and keep slow or silent
    // sockets from holding memory and descriptors that honest clients need.
    const handle: HandshakeHandle = {};
    const settled = this.holdPending(peer, handle);
    if (settled === undefined) {
      socket.destroy();
      return;
    }
    if (this.options.admission) {
      const verdict = this.options.admission.admit(peer);
      if (!verdict.ok) {
        // Refused before any crypto and without an alert, so a flood costs us almost nothing.
        settled();
        this.observers.notify('onRateLimited', verdict.reason, peer);
        socket.destroy();
        return;
      }
      socket.once('close', verdict.release);
    }
    runResponderHandshake(socket, {
      acceptV1: this.options.legacyV1 === true,
      config: this.handshakeConfig,
      observers: this.observers,
      timeoutMs: this.handshakeTimeoutMs,
      maxBufferedBytes: this.maxHandshakeBytes,
      handle,
      peer,
    }).then(
      (handshaken) => {
        settled();
        if (this.closing) {
          handshaken.version.discard(handshaken.result);
          releaseHeldWrites(socket); // our last flight still goes out, as the client expects
          socket.destroy();
          return;
        }
        const admission = this.options.admission;
        const tunnel = new Tunnel({
          socket,
          handshaken,
          options: this.options,
          tickets: this.handshakeConfig.tickets,
          ticketIssuer: this.ticketIssuer,
          observers: this.observers,
          admitRekey: admission?.admitRekey ? () => admission.admitRekey!(peer) : undefined,
          proxied: proxiedBy === undefined ? undefined : { peer, by: proxiedBy },
        });
        this.tunnels.add(tunnel);
        tunnel.once('close', () => this.tunnels.delete(tunnel));
        // Installed before the application sees the tunnel; it only acts when it is the sole
        // 'error' listener, so an application that handles errors itself is left alone.
        tunnel.on('error', (error: Error) => {
          if (tunnel.listenerCount('error') > 1) return;
          const code = error instanceof QuantumTunnelError ? error.code : ErrorCode.CONNECTION_FAILED;
          this.observers.notify('onTunnelError', code, peer);
          this.emit('tunnelError', error, tunnel);
        });
        this.deliver(tunnel);
      },
      (error: QuantumTunnelError) => {
        settled();
        this.emit('handshakeError', { error, remoteAddress: peer.address, remotePort: peer.port, proxiedBy } satisfies HandshakeErrorEvent);
      },
    );
  }

  private deliver(tunnel: Tunnel): void {
    this.emit('tunnel', tunnel);
    const waiter = this.waiters.shift();
    if (waiter) waiter({ value: tunnel, done: false });
    // Queued for the iterator once one exists (or when nobody listens yet, so none is lost).
    else if (this.iterating || this.listenerCount('tunnel') === 0) this.queue.push(tunnel);
  }

  /**
   * Yields each established tunnel (`for await (const tunnel of listener)`); ends when the
   * listener closes. Tunnels established before iteration began, while no `'tunnel'` listener was
   * attached, are yielded first.
   */
  [Symbol.asyncIterator](): AsyncIterator<Tunnel> {
    this.iterating = true;
    return {
      next: () => {
        const t = this.queue.shift();
        if (t) return Promise.resolve({ value: t, done: false });
        if (this.closing) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => this.waiters.push(resolve));
      },
      return: () => Promise.resolve({ value: undefined, done: true }),
    };
  }

  /**
   * Stops accepting and aborts handshakes in progress. With `{ tunnels: true }` also closes every
   * established tunnel gracefully (close_notify). Resolves when that is done.
   */
  async close(options: { tunnels?: boolean } = {}): Promise<void> {
    if (!this.closing) {
      this.closing = true;
      for (const h of this.handshakes) h.abort?.();
      for (const w of this.waiters.splice(0)) w({ value: undefined, done: true });
      this.server.close();
    }
    if (options.tunnels) await Promise.all([...this.tunnels].map((t) => t.close()));
    if (this.server.listening) await once(this.server, 'close').catch(() => undefined);
  }
}

/** The per-address key of the pending-handshake cap: IPv4-mapped IPv6 addresses count as IPv4. */
function addressKey(address: string | undefined): string {
  if (address === undefined) return 'unknown';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

/**
 * Reads a connection's PROXY protocol header, within `config.timeoutMs` (the listener's close()
 * aborts it through `handle`). Resolves with the socket paused and the bytes that followed the
 * header put back, so the handshake reads them first.
 */
function readProxyHeader(socket: Socket, config: ProxyProtocolConfig, handle: HandshakeHandle): Promise<ProxyHeader> {
  return new Promise((resolve, reject) => {
    const parser = new ProxyHeaderParser(config.accept);
    const finish = (error: QuantumTunnelError | undefined, header?: ProxyHeader) => {
      clearTimeout(timer);
      handle.abort = undefined;
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      if (error) reject(error);
      else resolve(header!);
    };
    const onData = (chunk: Buffer) => {
      let found: ReturnType<ProxyHeaderParser['push']>;
      try {
        found = parser.push(chunk);
      } catch (err) {
        finish(err as QuantumTunnelError);
        return;
      }
      if (found === null) return;
      socket.pause();
      if (found.rest.length > 0) socket.unshift(found.rest);
      finish(undefined, found.header);
    };
    const onEnd = () => finish(qtError(ErrorCode.CONNECTION_FAILED, 'peer closed the connection before its PROXY protocol header'));
    const timer = setTimeout(() => finish(qtError(ErrorCode.PROXY_HEADER_TIMEOUT, `no PROXY protocol header after ${config.timeoutMs} ms`)), config.timeoutMs);
    handle.abort = () => finish(qtError(ErrorCode.ABORTED, 'listener closed'));
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', onEnd);
  });
}

/**
 * Starts a tunnel server: `listen({ host, port, ...options })`. Await `listener.ready` or the
 * `listening` event; established tunnels arrive as `'tunnel'` events (or through
 * `for await (const tunnel of listener)`). Defaults: host `127.0.0.1`, port 0 (a free port, see
 * {@link Listener.address}), protocol v2 only (`legacyV1` also accepts Quantum-Go v1 clients).
 *
 * Errors: throws ERR_QT_INVALID_ARGUMENT for an invalid option; a port that cannot be bound
 * rejects `listener.ready` and emits `'error'` with Node's own error (`EADDRINUSE`...). A failed
 * handshake never throws: it is reported as `'handshakeError'` ({@link HandshakeErrorEvent}).
 *
 * @example
 * ```ts
 * import { listen } from 'quantum-tunnel';
 *
 * const listener = listen({ host: '0.0.0.0', port: 8443 });
 * await listener.ready;
 * listener.on('tunnel', (tunnel) => tunnel.pipe(tunnel)); // an echo server: a Tunnel is a Duplex
 * listener.on('handshakeError', ({ error, remoteAddress }) => console.warn(remoteAddress, error.code));
 * // ...at shutdown:
 * await listener.close();
 * ```
 */
export function listen(options: ListenOptions = {}): Listener {
  if (options.port !== undefined && (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535)) {
    throw qtError(ErrorCode.INVALID_ARGUMENT, 'port must be an integer from 0 to 65535');
  }
  return new Listener(options);
}
