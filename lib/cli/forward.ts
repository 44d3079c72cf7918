/**
 * `quantum-vpn forward`: protects any TCP service with the tunnel, like stunnel.
 *
 *   server side:  quantum-vpn forward --listen :8443 --to 127.0.0.1:5432
 *   client side:  quantum-vpn forward --listen 127.0.0.1:15432 --connect server.example:8443
 *
 * Every TCP connection accepted on the client side becomes one tunnel to the server side, which
 * opens one TCP connection to the service: app <-TCP-> forward client <-tunnel-> forward server
 * <-TCP-> service. Bytes are piped both ways with backpressure. Ends propagate:
 *   - a FIN from either TCP end ends the tunnel (close_notify), and the far side's TCP connection
 *     gets a FIN after every byte before it. Protocol v1's close_notify closes the whole tunnel,
 *     so the direction still open finishes with what was already in flight (docs/CLI.md);
 *   - a reset or error on either TCP end destroys the tunnel without close_notify, and the far
 *     side resets its TCP connection; a tunnel failure resets both TCP ends.
 * Shutdown drains: on SIGINT/SIGTERM each side stops accepting and reports not ready at once,
 * lets open connections finish for at most --drain-timeout, then closes the rest.
 */
import { type AddressInfo, createServer, connect as tcpConnect, type Server, type Socket } from 'node:net';
import { ErrorCode, qtError } from '../errors.js';
import { listen, type Listener } from '../tunnel/listener.js';
import type { HandshakeErrorEvent } from '../tunnel/listener.js';
import type { CipherName, PskOption } from '../tunnel/options.js';
import type { Tunnel } from '../tunnel/tunnel.js';
import { type CheckResult, DEFAULT_METRICS_PREFIX, fipsSelfTestCheck, type Logger, maskAddress, type ObservabilityServer } from '../ops/index.js';
import type { ConnectionAdmission } from '../tunnel/observer.js';
import { ClientTicketStore, TicketIssuer } from '../protocol/v2/tickets.js';
import { PROXY_PROTOCOL_FLAGS, type ProxyFlags, proxyFlags } from './proxyProtocol.js';
import { encodeProxyHeader } from '../tunnel/proxyHeaderWriter.js';
import { GROUPS_FLAG, KEY_AUTH_FLAGS, LEGACY_V1_FLAG, listenAuthOptions, PSK_FLAGS, protocolAndObservability, protocolFields, type ProtocolSetup } from './protocol.js';
import { defaultKnownServersPath } from './auth.js';
import { knownServerKey } from '../identity/files.js';
import { ConnectTimeoutError, BackendProbe, failureReason, ForwardMetrics } from './backend.js';
import { parseWorkerCount, runPrimary, WorkerLink, workerSlot } from './workers.js';
import { checkPoolFlags, POOL_FLAGS, type TunnelSource, tunnelSource } from './tunnelSource.js';
import { type FlagSpec, type FlagValues, formatHostPort, type HostPort, type ParsedArgs, parseDuration, parseHostPort, UsageError } from './args.js';
import {
  applyFips,
  cannotListen,
  cipherFlag,
  ciphersFromFlag,
  type Command,
  describeError,
  err,
  FIPS_FLAG,
  LOG_FLAGS,
  loggerFromFlags,
  logTunnelError,
  METRIC_LABELS,
  obsFlag,
  type Observability,
  shutdownSignal,
  out,
  plural,
  RATE_LIMIT_FLAGS,
  rateLimiterFromFlags,
  startObservability,
  TRACING_FLAG,
} from './common.js';

/** forward's flags (serve's service keys are the same names). */
export const FORWARD_FLAGS: FlagSpec[] = [
  {
    name: 'listen',
    kind: 'string',
    metavar: 'HOST:PORT',
    help: 'Where to accept connections. Server side: tunnels (":PORT" = every interface). Client side: plain TCP from applications (":PORT" = 127.0.0.1)',
  },
  { name: 'to', kind: 'string', metavar: 'HOST:PORT', help: 'Server side: the TCP service to protect' },
  { name: 'connect', kind: 'string', metavar: 'HOST:PORT', help: 'Client side: the forward server to tunnel to' },
  cipherFlag(),
  GROUPS_FLAG,
  LEGACY_V1_FLAG,
  ...PSK_FLAGS,
  ...KEY_AUTH_FLAGS,
  {
    name: 'no-auth',
    kind: 'boolean',
    default: false,
    help: 'Run without authentication (anyone may connect, and a relay can read the traffic): forward refuses to start without --identity, --server-key / --known-servers or --psk-file unless this is given',
  },
  {
    name: 'tickets',
    kind: 'boolean',
    default: false,
    help:
      'Protocol v2 session resumption. Server side: give each v2 tunnel a single-use ticket (ticket key in memory, tickets valid 2 hours). ' +
      'Client side: keep them in memory and offer one on the next tunnel (a fresh key exchange still runs)',
  },
  { name: 'connect-timeout', kind: 'string', metavar: 'DURATION', default: '10s', help: 'Limit for each outgoing TCP connection' },
  { name: 'handshake-timeout', kind: 'string', metavar: 'DURATION', default: '30s', help: 'Limit for each handshake' },
  {
    name: 'keepalive',
    kind: 'string',
    metavar: 'DURATION',
    default: '25s',
    help: 'Send an authenticated Ping when the peer has sent nothing for this long; a peer still silent one interval later is gone, and its tunnel and TCP connection are closed (0 = off)',
  },
  { name: 'idle-timeout', kind: 'string', metavar: 'DURATION', default: '0', help: 'Close a tunnel gracefully after this long without data either way (0 = never)' },
  { name: 'linger', kind: 'string', metavar: 'DURATION', default: '5s', help: 'After a tunnel has closed, how long a TCP connection may stay half-open before it is dropped' },
  {
    name: 'drain-timeout',
    kind: 'string',
    metavar: 'DURATION',
    default: '30s',
    help: 'On SIGINT/SIGTERM: stop accepting at once, let open connections finish for at most this long, then close them (0 = close at once)',
  },
  {
    name: 'backend-check-interval',
    kind: 'string',
    metavar: 'DURATION',
    default: '10s',
    help: 'Server side: how often the --to service is probed (a TCP connect) while no forwarded connection reaches it; /readyz is 503 while it is down (0 = no probe)',
  },
  {
    name: 'workers',
    kind: 'string',
    metavar: 'N',
    default: '1',
    help:
      'Server side: run N worker processes that share the --listen port (Node cluster), or auto: one per CPU. ' +
      'Each worker loads the keys itself; tickets and rate limits are per worker (docs/CLI.md)',
  },
  ...POOL_FLAGS,
  obsFlag(''),
  ...LOG_FLAGS,
  TRACING_FLAG,
  FIPS_FLAG,
  ...RATE_LIMIT_FLAGS,
  ...PROXY_PROTOCOL_FLAGS,
];

/**
 * forward carries other programs' traffic between machines: it refuses to run without an
 * authentication mode unless --no-auth says so, and then warns.
 */
export function requireAuthentication(f: FlagValues, role: 'client' | 'server', remote: HostPort, warn: boolean): void {
  const set = (name: string) => f[name] !== undefined && f[name] !== '' && f[name] !== false;
  const modes = role === 'server'
    ? ['psk-file', 'identity'].filter(set)
    : ['psk-file', 'server-key', 'known-servers', 'ca'].filter(set);
  if (role === 'client' && modes.length === 0 && knownDefault(remote)) modes.push('known-servers');
  if (f['no-auth'] === true) {
    if (modes.length > 0) throw new UsageError(`--no-auth contradicts --${modes[0]}`);
    if (warn) err(`warning: --no-auth: ${role === 'server' ? 'any client may connect' : 'the server is not authenticated'}, and a relay on the path can read and change the traffic`);
    return;
  }
  if (modes.length === 0) {
    throw new UsageError(
      role === 'server'
        ? 'forward needs an authentication mode: --identity FILE (pinned keys, with --authorized-peers for the clients; or with --cert, a certificate, with --ca for the clients) or --psk-file FILE; or --no-auth to run without'
        : "forward needs to authenticate the server: --server-key KEY, --known-servers FILE, --ca FILE (certificates) or --psk-file FILE; or --no-auth to run without",
    );
  }
}

/** Whether the default known-servers file lists the server. */
function knownDefault(remote: HostPort): boolean {
  try {
    return knownServerKey(defaultKnownServersPath(), remote.host, remote.port) !== undefined;
  } catch {
    return false;
  }
}

/** Resets a socket (RST) unless it is already gone. */
function reset(socket: Socket): void {
  if (socket.destroyed) return;
  socket.on('error', () => undefined);
  socket.resetAndDestroy();
}

export interface BridgeStats {
  /** Bytes from the plain TCP side into the tunnel. */
  bytesIn: number;
  /** Bytes from the tunnel out to the plain TCP side. */
  bytesOut: number;
  durationMs: number;
  /** How it ended: `closed` (both sides finished), or the first error's description. */
  outcome: string;
}

/**
 * Pipes a plain TCP socket and a tunnel into each other and propagates ends and errors (see the
 * module comment). Resolves once both are closed.
 */
export function bridge(plain: Socket, tunnel: Tunnel, lingerMs: number): Promise<BridgeStats> {
  const started = performance.now();
  let outcome: string | undefined;
  let bytesIn = 0;
  let bytesOut = 0;
  plain.setNoDelay(true);
  plain.on('data', (d: Buffer) => (bytesIn += d.length));
  tunnel.on('data', (d: Buffer) => (bytesOut += d.length));
  plain.pipe(tunnel); // the app's FIN ends the tunnel: close_notify after the last byte
  tunnel.pipe(plain); // the peer's close_notify becomes our FIN after the last byte

  plain.on('error', (e) => {
    outcome ??= `tcp: ${describeError(e)}`;
    // A reset (or any error) on the plain side: drop the tunnel without close_notify, so the far
    // side sees an abrupt end and resets its own TCP connection.
    tunnel.destroy();
  });
  tunnel.on('error', (e) => {
    outcome ??= `tunnel: ${describeError(e)}`;
    reset(plain);
  });

  let lingerTimer: NodeJS.Timeout | undefined;
  const plainClosed = new Promise<void>((resolve) => plain.once('close', () => resolve()));
  const tunnelClosed = new Promise<void>((resolve) => tunnel.once('close', () => resolve()));
  plain.once('close', () => {
    // Closed without having ended its side cleanly (destroyed, reset): the tunnel cannot finish.
    if (!tunnel.writableEnded) {
      outcome ??= 'tcp: closed abruptly';
      tunnel.destroy();
    }
  });
  tunnel.once('close', () => {
    if (plain.destroyed) return;
    if (!tunnel.readableEnded) {
      // The tunnel ended without close_notify: the far side failed or reset.
      outcome ??= 'tunnel: closed abruptly';
      reset(plain);
      return;
    }
    // Clean close: our FIN is on its way (pipe ended `plain`); give the app `lingerMs` to finish.
    const arm = () => {
      lingerTimer = setTimeout(() => plain.destroy(), lingerMs);
      lingerTimer.unref();
    };
    if (plain.writableFinished) arm();
    else plain.once('finish', arm);
  });
  return Promise.all([plainClosed, tunnelClosed]).then(() => {
    clearTimeout(lingerTimer);
    return { bytesIn, bytesOut, durationMs: performance.now() - started, outcome: outcome ?? 'closed' };
  });
}

/** A peer for logs: the address masked as lib/ops does everywhere (`127.0.0.x`), and the port. */
function peerOf(address: string | undefined, port: number | undefined): string {
  return `${maskAddress(address)}:${port ?? 0}`;
}

/** What one side needs, whoever runs it (`forward` or `serve`). */
export interface Common extends Pick<ForwardSettings, 'connectTimeoutMs' | 'handshakeTimeoutMs' | 'keepAliveMs' | 'idleTimeoutMs' | 'lingerMs' | 'drainTimeoutMs'> {
  listenAddr: HostPort;
  /** How errors name the listening address: `--listen`, or `services.NAME.listen` for serve. */
  listenFlag: string;
  ciphers: CipherName[] | undefined;
  protocol: ProtocolSetup;
  tickets: boolean;
  obs: Observability;
  forwardMetrics: ForwardMetrics;
}

/** The longest keepalive or idle timeout (Node's timers stop at 2^31 - 1 ms). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** After the drain deadline, how long closing the remaining tunnels gracefully may take. */
const CLOSE_GRACE_MS = 5_000;
/** Limit of a backend probe's TCP connect (lower when --connect-timeout is). */
const BACKEND_PROBE_TIMEOUT_MS = 2_000;

function logClose(logger: Logger, what: string, fields: Record<string, unknown>, stats: BridgeStats): void {
  const f = { ...fields, bytes_in: stats.bytesIn, bytes_out: stats.bytesOut, duration_ms: Math.round(stats.durationMs) };
  if (stats.outcome === 'closed') logger.info(`${what} closed`, f);
  else logger.info(`${what} ended abnormally`, { ...f, reason: stats.outcome });
}

/** Forwarded connections in progress, and a way to wait until there are none. */
class OpenConnections {
  private count = 0;
  private idle: Array<() => void> = [];

  get size(): number {
    return this.count;
  }

  /** Counts one connection until `done` settles. */
  track(done: Promise<unknown>): void {
    this.count++;
    const end = () => {
      this.count--;
      if (this.count === 0) for (const wake of this.idle.splice(0)) wake();
    };
    done.then(end, end);
  }

  /** Resolves true once no connection is open, or false after `ms`. */
  drained(ms: number): Promise<boolean> {
    if (this.count === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.idle = this.idle.filter((w) => w !== wake);
        resolve(false);
      }, ms);
      const wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.idle.push(wake);
    });
  }
}

/** Resolves when `p` settles or after `ms`, whichever is first. */
function atMost(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p.then(() => undefined, () => undefined), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]).finally(() => clearTimeout(timer));
}

/** Where a side's drain messages go: forward prints them, serve logs them. */
export type Say = (line: string) => void;

/**
 * The shutdown of one side. `stopAccepting` has already run (readiness is false): open
 * connections get `drainTimeoutMs` to finish on their own; then `closeRemaining` closes the rest
 * (tunnels with close_notify, bounded).
 */
async function drain(reason: string, side: ForwardSide, drainTimeoutMs: number, say: Say): Promise<void> {
  const n = side.openConnections;
  if (drainTimeoutMs > 0 && n > 0) {
    say(`${reason}: no longer accepting; waiting up to ${formatMs(drainTimeoutMs)} for ${plural(n, 'open connection')} to finish`);
    if (!(await side.drained(drainTimeoutMs))) say(`drain timeout: closing ${plural(side.openConnections, 'open connection')}`);
  } else {
    say(`${reason}: closing ${plural(n, 'open connection')} and shutting down`);
  }
  await atMost(side.closeRemaining(), CLOSE_GRACE_MS);
}

/** `30s`, `1.5s`, `250ms`. */
function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : ms > 1000 ? `${(ms / 1000).toFixed(1)}s` : `${ms}ms`;
}

/**
 * One side of a forwarder as a service that starts and stops on its own: `forward` runs one,
 * `serve` runs many in one process. `start()` listens (or throws the `cannotListen` error);
 * `stop()` stops accepting at once, lets open connections finish for at most the drain timeout,
 * closes the rest and destroys the loaded keys.
 */
export abstract class ForwardSide {
  /** True from the moment the side stops accepting: /readyz answers 503 from then on. */
  protected closing = false;
  protected readonly open = new OpenConnections();
  protected readonly logger: Logger;
  private stopping: Promise<void> | undefined;

  constructor(protected readonly c: Common) {
    this.logger = c.obs.logger.child({ component: 'forward' });
  }

  /** Listens; resolves with the bound address. */
  abstract start(): Promise<AddressInfo>;
  /**
   * Starts what watches the side once everything listens (the server side's backend probe), so
   * a start that fails later (an --obs-addr in use) reports one error and nothing else.
   */
  async watch(): Promise<void> {}
  /** Whether this side serves (listening, not closing, and its backend reachable). */
  ready(): boolean {
    return !this.closing;
  }
  /** Health checks of this side for /health and /readyz. */
  checks(): Record<string, CheckResult> {
    return {};
  }
  get openConnections(): number {
    return this.open.size;
  }
  /** Resolves true once no connection is open, or false after `ms`. */
  drained(ms: number): Promise<boolean> {
    return this.open.drained(ms);
  }
  /** Stops accepting new connections (open ones go on). */
  protected abstract stopAccepting(): void;
  /** Closes every open connection (tunnels with close_notify). */
  abstract closeRemaining(): Promise<void>;
  /** After the drain: waits for the listening socket and stops the probes. */
  protected abstract finish(): Promise<void>;
  /** Destroys the loaded keys and ticket state. */
  protected abstract release(): void;

  /** Drains and stops (once; later calls wait for the first). `reason` starts the drain message. */
  stop(reason: string, say: Say): Promise<void> {
    this.stopping ??= (async () => {
      this.closing = true;
      this.stopAccepting();
      await drain(reason, this, this.c.drainTimeoutMs, say);
      await this.finish();
      this.release();
    })();
    return this.stopping;
  }
}

// ---- server side: tunnels in, plain TCP out -----------------------------------------------------

/**
 * The server side: accepts tunnels and connects each to the TCP service `backend`, or, for
 * `echo`, sends every byte back through the tunnel (serve's echo role, a demo and test target).
 */
export class ForwardServer extends ForwardSide {
  private readonly active = new Set<Socket>();
  private readonly issuer: TicketIssuer | undefined;
  private listener: Listener | undefined;
  private probe: BackendProbe | undefined;
  /** --proxy-protocol / --proxy-from / --send-proxy. */
  private readonly proxy: ProxyFlags;
  /** What log lines name as the target: `HOST:PORT`, or `echo`. */
  readonly target: string;

  constructor(
    c: Common,
    private readonly backend: HostPort | 'echo',
    private readonly backendCheckMs: number,
    private readonly admission: ConnectionAdmission | undefined,
    flags: FlagValues,
  ) {
    super(c);
    this.proxy = proxyFlags(flags);
    this.target = backend === 'echo' ? 'echo' : formatHostPort(backend.host, backend.port);
    // Tickets from this process only (a random key in memory): a restart invalidates them.
    this.issuer = c.tickets ? new TicketIssuer({ serverIdentity: Buffer.from('quantum-vpn forward', 'utf8') }) : undefined;
  }

  override ready(): boolean {
    return !this.closing && this.listener !== undefined && (this.probe?.reachable ?? true);
  }

  override checks(): Record<string, CheckResult> {
    return this.probe ? { backend: this.probe.check() } : {};
  }

  async start(): Promise<AddressInfo> {
    const { c, logger } = this;
    const listener: Listener = listen({
      host: c.listenAddr.host,
      port: c.listenAddr.port,
      ciphers: c.ciphers,
      observer: c.obs.observers,
      admission: this.admission,
      handshakeTimeoutMs: c.handshakeTimeoutMs,
      keepAliveMs: c.keepAliveMs,
      idleTimeoutMs: c.idleTimeoutMs,
      allowHalfOpen: true, // both ends are forwarders that answer close_notify: FIN travels one way at a time
      legacyV1: c.protocol.legacyV1,
      groups: c.protocol.groups,
      psk: c.protocol.listenPsk(),
      ...listenAuthOptions(c.protocol),
      tickets: this.issuer,
      proxyProtocol: this.proxy.listen,
    });
    // Until it listens, a failure (EADDRINUSE...) is reported once, by the caller; after, it is logged.
    const quiet = () => undefined;
    listener.on('error', quiet);
    try {
      await listener.ready;
    } catch (e) {
      this.release();
      throw cannotListen(e, c.listenAddr, c.listenFlag);
    }
    this.listener = listener;
    listener.on('handshakeError', (e: HandshakeErrorEvent) => logger.debug('handshake failed', { error: e.error.code }));
    listener.off('error', quiet);
    listener.on('error', (e) => logger.error('listener error', { error: e }));
    listener.on('tunnelError', (error: unknown, t: Tunnel) => logTunnelError(logger, error, t));
    listener.on('tunnel', (tunnel: Tunnel) => (this.backend === 'echo' ? this.echo(tunnel) : this.forward(tunnel, this.backend)));

    // /readyz follows the backend: a forwarder whose service is down cannot serve anyone.
    const to = this.backend;
    if (to !== 'echo' && this.backendCheckMs > 0) {
      this.probe = new BackendProbe(to, {
        intervalMs: this.backendCheckMs,
        timeoutMs: Math.min(c.connectTimeoutMs > 0 ? c.connectTimeoutMs : BACKEND_PROBE_TIMEOUT_MS, BACKEND_PROBE_TIMEOUT_MS),
        onChange: (up, reason) => {
          c.forwardMetrics.setBackendUp(up);
          if (up) logger.info('backend reachable', { target: this.target });
          else logger.warn('backend unreachable', { target: this.target, error: reason });
        },
      });
    }
    return listener.address();
  }

  override async watch(): Promise<void> {
    // The first check makes /readyz right from the moment the caller announces.
    await this.probe?.start();
  }

  private fieldsOf(tunnel: Tunnel): Record<string, unknown> {
    const info = tunnel.info();
    return { peer: peerOf(info.remoteAddress, info.remotePort), ...protocolFields(info), suite: info.suite, resumed: info.resumed, session: info.sessionId.slice(0, 16) };
  }

  private forward(tunnel: Tunnel, to: HostPort): void {
    const { c, logger, probe, target, listener } = this;
    const info = tunnel.info();
    const { forwardMetrics } = c;
    const fields = this.fieldsOf(tunnel);
    tunnel.on('error', () => undefined); // reported by bridge()
    // allowHalfOpen: the service's FIN must not close our side before the tunnel has finished.
    const service = tcpConnect({ host: to.host, port: to.port, noDelay: true, allowHalfOpen: true });
    if (this.proxy.send) service.write(encodeProxyHeader(this.proxy.send, { address: info.remoteAddress, port: info.remotePort }, listener!.address())); // sent first, once connected
    this.active.add(service);
    const serviceClosed = new Promise<void>((resolve) => service.once('close', () => resolve()));
    const tunnelClosed = new Promise<void>((resolve) => tunnel.once('close', () => resolve()));
    this.open.track(Promise.all([serviceClosed, tunnelClosed]));
    service.once('close', () => this.active.delete(service));
    const timer = setTimeout(() => service.destroy(new ConnectTimeoutError(c.connectTimeoutMs)), c.connectTimeoutMs);
    const onConnectError = (e: Error) => {
      clearTimeout(timer);
      const error = qtError(ErrorCode.BACKEND_UNAVAILABLE, `the service ${target} cannot be reached`, { cause: e });
      forwardMetrics.backendFailure(failureReason(e));
      probe?.reportFailure(e);
      logger.warn('cannot connect to the service', { ...fields, target, error: describeError(error) });
      tunnel.destroy(); // the client sees an abrupt end and resets its application's connection
    };
    service.once('error', onConnectError);
    const onTunnelGone = () => service.destroy(); // the client went away before the service answered
    tunnel.once('close', onTunnelGone);
    service.once('connect', () => {
      clearTimeout(timer);
      service.off('error', onConnectError);
      tunnel.off('close', onTunnelGone);
      probe?.reportSuccess();
      if (tunnel.destroyed) {
        service.destroy();
        return;
      }
      logger.info('connection opened', { ...fields, target });
      void bridge(service, tunnel, c.lingerMs).then((stats) => logClose(logger, 'connection', { ...fields, target }, stats));
    });
  }

  /** Every byte goes back; the client's close_notify ends our side after the last echoed byte. */
  private echo(tunnel: Tunnel): void {
    const fields = { ...this.fieldsOf(tunnel), target: 'echo' };
    const started = performance.now();
    let bytes = 0;
    let failure: string | undefined;
    tunnel.on('error', (e) => (failure ??= `tunnel: ${describeError(e)}`));
    tunnel.on('data', (d: Buffer) => (bytes += d.length));
    this.open.track(new Promise<void>((resolve) => tunnel.once('close', () => resolve())));
    this.logger.info('connection opened', fields);
    tunnel.once('close', () => logClose(this.logger, 'connection', fields, { bytesIn: bytes, bytesOut: bytes, durationMs: performance.now() - started, outcome: failure ?? 'closed' }));
    tunnel.pipe(tunnel);
  }

  protected stopAccepting(): void {
    this.listener?.close().catch((e) => this.logger.warn('error while closing the listener', { error: e })); // established tunnels go on
  }

  async closeRemaining(): Promise<void> {
    await this.listener?.close({ tunnels: true }).catch((e) => this.logger.warn('error while closing tunnels', { error: e }));
    for (const s of this.active) s.destroy();
  }

  protected async finish(): Promise<void> {
    this.probe?.stop();
  }

  protected release(): void {
    this.issuer?.destroy();
    this.c.protocol.destroy();
  }
}

/**
 * `forward`'s server side. As a forward worker (`link`), the primary serves the observability
 * endpoints and prints the listening line, and its drain order counts as the first signal.
 */
async function runServer(flags: FlagValues, c: Common, to: HostPort, backendCheckMs: number, link: WorkerLink | undefined): Promise<number> {
  const side = new ForwardServer(c, to, backendCheckMs, rateLimiterFromFlags(flags, c.obs.logger), flags);
  return runSide(side, c, flags, {
    link,
    checks: backendCheckMs > 0 ? () => side.checks() : undefined,
    announce: (bound) => {
      if (!link) return out(listeningLine(bound, side.target));
      link.serveStatus(async () => ({
        ready: side.ready(),
        checks: { fips: fipsSelfTestCheck(), ...side.checks() },
        snapshot: c.obs.metrics.snapshot(),
        metrics: await c.obs.metrics.registry.getMetricsAsJSON(),
      }));
      link.listening(bound);
    },
  });
}

/**
 * Runs one side until SIGINT/SIGTERM (as a forward worker, until the primary's drain order, which
 * serves the observability endpoints then): start, observability, announce, then drain and stop.
 */
async function runSide(
  side: ForwardServer | ForwardClient,
  c: Common,
  flags: FlagValues,
  o: { announce: (bound: AddressInfo) => void; checks?: () => Record<string, CheckResult>; link?: WorkerLink },
): Promise<number> {
  const { obs } = c;
  const watch = shutdownSignal();
  let bound: AddressInfo;
  try {
    bound = await side.start();
  } catch (e) {
    watch.remove();
    await obs.tracing.shutdown();
    throw e;
  }
  let obsServer: ObservabilityServer | undefined;
  try {
    if (!o.link) obsServer = await startObservability(String(flags['obs-addr']), obs.metrics, () => side.ready(), obs.logger, o.checks ? { checks: o.checks } : {});
  } catch (e) {
    watch.remove();
    await side.stop('cannot start', () => undefined);
    await obs.tracing.shutdown();
    throw e;
  }
  await side.watch();
  o.announce(bound);
  if (obsServer) {
    const a = obsServer.address();
    out(`observability on http://${formatHostPort(a.address, a.port)} (/metrics, /health, /healthz, /readyz)`);
  }

  const signal = await (o.link ? Promise.race([watch.signal, o.link.drainOrder]) : watch.signal);
  await side.stop(`${signal} received`, out);
  await obsServer?.close();
  await obs.tracing.shutdown();
  out('forwarder stopped');
  watch.remove();
  return 0;
}

/** What the server side prints once it accepts tunnels. */
function listeningLine(bound: { address: string; port: number }, target: string): string {
  return `listening on ${formatHostPort(bound.address, bound.port)} (tunnel), forwarding to ${target} (TCP)`;
}

// ---- client side: plain TCP in, tunnels out -----------------------------------------------------

/** The connections in progress on the client side. */
interface ClientState {
  closing: boolean;
  tunnels: Set<Tunnel>;
  sockets: Set<Socket>;
  dials: Set<AbortController>;
  open: OpenConnections;
  ticketStore: ClientTicketStore | undefined;
  psk: PskOption | undefined;
  /** A dial per connection, or the pool of pre-opened tunnels (--pool-min-idle). */
  source: TunnelSource;
}

/** The client side: accepts plain TCP connections and carries each through its own tunnel to `remote`. */
export class ForwardClient extends ForwardSide {
  private readonly state: ClientState;
  private server: Server | undefined;
  private serverClosed: Promise<void> = Promise.resolve();
  readonly target: string;

  constructor(c: Common, private readonly remote: HostPort, flags: FlagValues) {
    super(c);
    const target = formatHostPort(remote.host, remote.port);
    this.target = target;
    const { obs } = c;
    const ticketStore = c.tickets ? new ClientTicketStore() : undefined;
    const psk = c.protocol.dialPsk();
    const source = tunnelSource(flags, {
      target,
      connectTimeoutMs: c.connectTimeoutMs,
      handshakeTimeoutMs: c.handshakeTimeoutMs,
      obs,
      logger: this.logger,
      dialOptions: (signal) => c.protocol.keys.dialOptions(remote.host, remote.port).then((keys) => ({
        ciphers: c.ciphers,
        observer: obs.observers,
        signal,
        connectTimeoutMs: c.connectTimeoutMs,
        handshakeTimeoutMs: c.handshakeTimeoutMs,
        keepAliveMs: c.keepAliveMs,
        idleTimeoutMs: c.idleTimeoutMs,
        allowHalfOpen: true,
        legacyV1: c.protocol.legacyV1,
        groups: c.protocol.groups,
        psk,
        ...keys,
        ticketStore,
      })),
    });
    this.state = { closing: false, tunnels: new Set(), sockets: new Set(), dials: new Set(), open: this.open, ticketStore, psk, source };
  }

  override ready(): boolean {
    return !this.closing && this.server !== undefined;
  }

  async start(): Promise<AddressInfo> {
    const { c } = this;
    // allowHalfOpen: an application's FIN must not close our side before the tunnel has finished.
    const server: Server = createServer({ noDelay: true, pauseOnConnect: true, allowHalfOpen: true }, forwardApps(c, this.remote, this.state, this.logger));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: c.listenAddr.host, port: c.listenAddr.port }, () => {
        server.off('error', reject);
        resolve();
      });
    }).catch((e) => {
      this.release();
      throw cannotListen(e, c.listenAddr, c.listenFlag);
    });
    server.on('error', (e) => this.logger.error('server error', { error: e }));
    this.server = server;
    return server.address() as AddressInfo;
  }

  protected stopAccepting(): void {
    this.state.closing = true;
    const server = this.server;
    if (server) this.serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
  }

  async closeRemaining(): Promise<void> {
    const { dials, tunnels, sockets, source } = this.state;
    for (const d of dials) d.abort();
    await Promise.all([source.close(), ...[...tunnels].map((t) => t.close())]);
    for (const s of sockets) s.destroy();
  }

  protected async finish(): Promise<void> {
    await atMost(this.serverClosed, CLOSE_GRACE_MS);
  }

  protected release(): void {
    void this.state.source.close();
    this.state.ticketStore?.destroy();
    this.c.protocol.destroy();
  }
}

/** The connection handler of the client side: one tunnel per application connection. */
function forwardApps(c: Common, remote: HostPort, s: ClientState, logger: Logger): (app: Socket) => void {
  const { forwardMetrics } = c;
  const target = formatHostPort(remote.host, remote.port);
  const { tunnels, sockets, dials, open, source } = s;
  return (app) => {
    if (s.closing) {
      app.destroy();
      return;
    }
    const fields = { peer: peerOf(app.remoteAddress, app.remotePort), target };
    sockets.add(app);
    // The connection is over once the app's socket and its tunnel (if one opened) are closed.
    let tunnelClosed: Promise<void> = Promise.resolve();
    const appClosed = new Promise<void>((resolve) => app.once('close', () => resolve()));
    open.track(appClosed.then(() => tunnelClosed));
    app.once('close', () => sockets.delete(app));
    app.on('error', () => undefined); // handled below and by bridge()
    const abort = new AbortController();
    dials.add(abort);
    const onEarlyClose = () => abort.abort();
    app.once('close', onEarlyClose);
    source.open(abort.signal).then(
      (tunnel) => {
        dials.delete(abort);
        app.off('close', onEarlyClose);
        tunnel.on('error', () => undefined); // reported by bridge()
        if (app.destroyed) {
          tunnel.destroy();
          return;
        }
        tunnels.add(tunnel);
        tunnelClosed = new Promise<void>((resolve) => tunnel.once('close', () => resolve()));
        tunnel.once('close', () => tunnels.delete(tunnel));
        const info = tunnel.info();
        const f = { ...fields, ...protocolFields(info), suite: info.suite, resumed: info.resumed, session: info.sessionId.slice(0, 16) };
        logger.info('connection opened', f);
        void bridge(app, tunnel, c.lingerMs).then((stats) => logClose(logger, 'connection', f, stats));
        app.resume();
      },
      (e) => {
        dials.delete(abort);
        app.off('close', onEarlyClose);
        // An app that left before the tunnel was up is not a failure of the forward server.
        if (!app.destroyed) {
          forwardMetrics.dialFailure(failureReason(e));
          logger.warn('cannot open a tunnel', { ...fields, error: describeError(e) });
        }
        reset(app); // like a refused connection
      },
    );
  };
}

async function runClient(flags: FlagValues, c: Common, remote: HostPort): Promise<number> {
  const side = new ForwardClient(c, remote, flags);
  return runSide(side, c, flags, {
    announce: (bound) => out(`listening on ${formatHostPort(bound.address, bound.port)} (TCP), forwarding through the tunnel to ${side.target}`),
  });
}

/** The settings of one side, checked: what `forward`'s flags and a serve service's keys mean. */
export interface ForwardSettings {
  role: 'server' | 'client';
  listenAddr: HostPort;
  /** Server side: the --to service (`echo` for serve's echo role); client side: the --connect server. */
  remote: HostPort | 'echo';
  connectTimeoutMs: number;
  handshakeTimeoutMs: number;
  keepAliveMs: number;
  idleTimeoutMs: number;
  lingerMs: number;
  drainTimeoutMs: number;
  backendCheckMs: number;
  workers: number;
  tickets: boolean;
}

/**
 * Reads and checks forward's flags (`given`: the ones set explicitly), without loading any key;
 * throws UsageError naming the flag. serve checks each service's keys with it, so a value means
 * the same in a flag and in a configuration file.
 */
export function forwardSettings(f: FlagValues, given: ReadonlySet<string>, echo = false): ForwardSettings {
  if (f.listen === undefined || f.listen === '') throw new UsageError('--listen is required');
  const hasTo = echo || (f.to !== undefined && f.to !== '');
  const hasConnect = f.connect !== undefined && f.connect !== '';
  if (hasTo === hasConnect) throw new UsageError('give exactly one of --to (server side) and --connect (client side)');
  const listenAddr = parseHostPort(String(f.listen), '--listen', { defaultHost: hasTo ? '0.0.0.0' : '127.0.0.1', allowZero: true });
  // serve's echo role is a server side whose "service" answers in-process.
  const remote = echo ? 'echo' : parseHostPort(String(hasTo ? f.to : f.connect), hasTo ? '--to' : '--connect', { defaultHost: '127.0.0.1' });
  const connectTimeoutMs = parseDuration(String(f['connect-timeout']), '--connect-timeout');
  const handshakeTimeoutMs = parseDuration(String(f['handshake-timeout']), '--handshake-timeout');
  const keepAliveMs = parseDuration(String(f.keepalive), '--keepalive');
  const idleTimeoutMs = parseDuration(String(f['idle-timeout']), '--idle-timeout');
  for (const [name, ms] of [['keepalive', keepAliveMs], ['idle-timeout', idleTimeoutMs]] as const) {
    if (ms > MAX_TIMER_MS) throw new UsageError(`--${name} must be at most 24 days`);
  }
  const lingerMs = parseDuration(String(f.linger), '--linger');
  const drainTimeoutMs = parseDuration(String(f['drain-timeout']), '--drain-timeout');
  const backendCheckMs = parseDuration(String(f['backend-check-interval']), '--backend-check-interval');
  if (!hasTo) {
    for (const name of [...RATE_LIMIT_FLAGS.map((s) => s.name), ...PROXY_PROTOCOL_FLAGS.map((s) => s.name), 'backend-check-interval', 'workers']) {
      if (given.has(name)) throw new UsageError(`--${name} applies to the server side (--to) only`);
    }
  }
  if (hasTo) proxyFlags(f); // checked before any worker starts; the server side uses them
  checkPoolFlags(f, given, hasTo);
  const workers = parseWorkerCount(String(f.workers));
  const tickets = f.tickets === true;
  if (tickets && !hasTo && f['legacy-v1'] === true) throw new UsageError('--tickets is protocol v2 resumption; a client with --legacy-v1 speaks protocol v1 only');
  return { role: hasTo ? 'server' : 'client', listenAddr, remote, connectTimeoutMs, handshakeTimeoutMs, keepAliveMs, idleTimeoutMs, lingerMs, drainTimeoutMs, backendCheckMs, workers, tickets };
}

// ---- command ------------------------------------------------------------------------------------

export const forwardCommand: Command = {
  name: 'forward',
  summary: 'Protect a TCP service with the tunnel (like stunnel)',
  synopsis:
    'quantum-vpn forward --listen [HOST]:PORT --to HOST:PORT [options]        (server side)\n' +
    '       quantum-vpn forward --listen [HOST]:PORT --connect HOST:PORT [options]   (client side)',
  description:
    'Server side: accepts tunnels on --listen and connects each one to the TCP service --to.\n' +
    'Client side: accepts plain TCP connections on --listen (127.0.0.1 when no host is given) and\n' +
    'carries each one through its own tunnel to the forward server at --connect.\n' +
    'A FIN or a reset on either TCP end is passed to the other end; a FIN closes one direction\n' +
    'only, so a reply sent after it still arrives (see docs/CLI.md). Prints "listening on\n' +
    'HOST:PORT" once ready. SIGINT or SIGTERM stops accepting at once, lets open connections\n' +
    'finish for at most --drain-timeout, closes the rest gracefully and exits 0. The server side\n' +
    'probes the --to service; /readyz answers 503 while it cannot be reached. Tunnels speak\n' +
    'protocol v2 unless --legacy-v1. forward authenticates: pinned keys (server --identity, with\n' +
    '--authorized-peers to admit clients by key; client --server-key or --known-servers, and\n' +
    '--identity), or the same --psk-file on both sides; --no-auth runs without (with a warning).\n' +
    'Server side with --workers N: N processes share the port, each loading the keys itself; the\n' +
    'primary serves --obs-addr for all of them and replaces a worker that dies.',
  flags: FORWARD_FLAGS,
  async run(args: ParsedArgs): Promise<number> {
    const f = args.flags;
    const { role, listenAddr, remote: to, connectTimeoutMs, handshakeTimeoutMs, keepAliveMs, idleTimeoutMs, lingerMs, drainTimeoutMs, backendCheckMs, workers, tickets } = forwardSettings(f, args.given);
    const hasTo = role === 'server';
    const remote = to as HostPort; // forward has no echo role
    const slot = workerSlot();
    requireAuthentication(f, hasTo ? 'server' : 'client', remote, slot === undefined);
    if (hasTo && workers > 1 && slot === undefined) {
      // The primary loads no key and runs no crypto: each worker does, and reports its own errors.
      const logger = loggerFromFlags(f);
      if (tickets) {
        err(`warning: --tickets with ${plural(workers, 'worker')}: each worker has its own ticket key, and round robin sends a client's next connection to another worker, which cannot open its ticket and runs a full handshake`);
      }
      const target = formatHostPort(remote.host, remote.port);
      return runPrimary({
        workers,
        logger,
        drainTimeoutMs,
        obsAddr: String(f['obs-addr']),
        metricsPrefix: DEFAULT_METRICS_PREFIX,
        metricLabels: { ...METRIC_LABELS },
        announce: (bound) => `${listeningLine(bound, target)}, ${plural(workers, 'worker')}`,
      });
    }
    const link = slot !== undefined ? new WorkerLink(slot) : undefined;
    try {
      await applyFips(f);
      const ciphers = ciphersFromFlag(f.cipher as string | undefined);
      const logger = loggerFromFlags(f, link ? { worker: link.slot } : {});
      const { setup: protocol, obs } = await protocolAndObservability(f, hasTo ? 'server' : 'client', logger);
      const forwardMetrics = new ForwardMetrics(hasTo ? 'server' : 'client', obs.metrics.registry, obs.metrics.prefix, { ...METRIC_LABELS });
      const common: Common = { listenAddr, listenFlag: '--listen', ciphers, protocol, tickets, connectTimeoutMs, handshakeTimeoutMs, keepAliveMs, idleTimeoutMs, lingerMs, drainTimeoutMs, obs, forwardMetrics };
      return await (hasTo ? runServer(f, common, remote, backendCheckMs, link) : runClient(f, common, remote));
    } finally {
      link?.close();
    }
  },
};
