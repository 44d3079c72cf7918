/**
 * `quantum-vpn demo`: an echo server and a client over the tunnel, using the message API (one
 * record per message). The server answers `Echo: <msg>` to every message.
 */
import { createInterface } from 'node:readline';
import { info as cryptoInfo } from '../crypto/info.js';
import { MAX_RECORD_PLAINTEXT } from '../protocol/constants.js';
import { dial } from '../tunnel/dial.js';
import { listen } from '../tunnel/listener.js';
import type { HandshakeErrorEvent } from '../tunnel/listener.js';
import type { CipherName } from '../tunnel/options.js';
import { cipherSuiteName, defaultCipherSuites } from '../protocol/suites.js';
import type { TunnelObserver } from '../tunnel/observer.js';
import type { Tunnel } from '../tunnel/tunnel.js';
import type { Logger } from '../ops/index.js';
import { CliError, type FlagSpec, type FlagValues, formatHostPort, type ParsedArgs, parseDuration, parseHostPort, printable, UsageError } from './args.js';
import { describePeerIdentity, GROUPS_FLAG, KEY_AUTH_FLAGS, listenAuthOptions, groupSpecs, LEGACY_V1_FLAG, PSK_FLAGS, protocolAndObservability, protocolSummary, type ProtocolSetup } from './protocol.js';
import { identityList } from './psk.js';
import {
  applyFips,
  cannotListen,
  cipherFlag,
  ciphersFromFlag,
  type Command,
  describeError,
  displayName,
  err,
  FIPS_FLAG,
  LOG_FLAGS,
  logTunnelError,
  obsFlag,
  onShutdownSignal,
  shutdownSignal,
  out,
  plural,
  RATE_LIMIT_FLAGS,
  rateLimiterFromFlags,
  startObservability,
  TRACING_FLAG,
} from './common.js';

const ECHO_PREFIX = Buffer.from('Echo: ');
/** The longest message whose echo still fits in one record. */
export const MAX_DEMO_MESSAGE = MAX_RECORD_PLAINTEXT - ECHO_PREFIX.length;

const FLAGS: FlagSpec[] = [
  { name: 'mode', kind: 'string', metavar: 'MODE', default: 'server', help: 'server or client' },
  {
    name: 'addr',
    kind: 'string',
    metavar: 'HOST:PORT',
    default: 'localhost:8443',
    help: 'Server: address to listen on (":PORT" = every interface, port 0 = any free port). Client: server to connect to',
  },
  {
    name: 'message',
    kind: 'string',
    metavar: 'TEXT',
    default: 'Hello from quantum-vpn!',
    help: 'Client: message to send; "-" reads messages from stdin, one per line',
  },
  { name: 'verbose', kind: 'boolean', default: false, help: 'Show the security properties, handshake steps, suite, session ID, handshake time and statistics' },
  { name: 'timeout', kind: 'string', metavar: 'DURATION', default: '30s', help: 'Client: limit for the connection, the handshake and each echo' },
  obsFlag('127.0.0.1:9090'),
  ...LOG_FLAGS,
  TRACING_FLAG,
  cipherFlag(),
  GROUPS_FLAG,
  LEGACY_V1_FLAG,
  ...PSK_FLAGS,
  ...KEY_AUTH_FLAGS,
  FIPS_FLAG,
  ...RATE_LIMIT_FLAGS,
];

const SECURITY_V1 =
  'Security: protocol v1 (legacy): CH-KEM hybrid key exchange (X25519 + ML-KEM-1024, combined with SHAKE-256), fresh keys per session, ' +
  'authenticated encryption of every record; protocol v1 does not authenticate the peer (see docs/PROTOCOL.md)';

/** What the tunnels of this process protect, in one line. */
function securityLine(setup: ProtocolSetup, role: 'client' | 'server'): string {
  if (setup.legacyV1 && role === 'client') return SECURITY_V1;
  const described = setup.keys.describe();
  const auth = setup.psk
    ? 'both ends prove the pre-shared key (mutual authentication)'
    : described !== undefined
      ? `${role === 'server' ? 'this server proves its identity' : 'the server must prove its identity'} (${described})`
      : 'nobody is authenticated (--identity with --server-key or --known-servers, --cert/--ca, or --psk-file authenticate the ends)';
  const legacy = setup.legacyV1 ? '; with --legacy-v1 it also answers protocol v1 clients, which are never authenticated' : '';
  return (
    'Security: protocol v2: hybrid key exchange (classical + ML-KEM), fresh keys per session, every handshake message ' +
    `authenticated by both Finished messages, encrypted records and alerts; ${auth}${legacy}`
  );
}

const bytes = (n: number) => n.toLocaleString('en-US');

function suiteList(ciphers: CipherName[] | undefined): string {
  return (ciphers === undefined ? defaultCipherSuites().map(cipherSuiteName) : ciphers.map(displayName)).join(', ');
}

function fipsLine(): string {
  const info = cryptoInfo();
  const provider = info.providers.find((p) => /fips/i.test(p.name) && p.active);
  return info.fips ? `FIPS mode: on (${provider ? `${provider.name} ${provider.version}` : 'FIPS provider'})` : 'FIPS mode: off';
}

function peerName(t: Tunnel): string {
  const i = t.info();
  return i.remoteAddress ? formatHostPort(i.remoteAddress, i.remotePort ?? 0) : 'unknown peer';
}

function statsLine(t: Tunnel, elapsedMs: number): string {
  const i = t.info();
  return (
    `Statistics: sent ${plural(i.recordsSent, 'record')} (${i.bytesSent} bytes), received ${plural(i.recordsReceived, 'record')} ` +
    `(${i.bytesReceived} bytes), ${plural(i.rekeys, 'rekey')}, open ${elapsedMs.toFixed(0)} ms`
  );
}

// ---- server -------------------------------------------------------------------------------------

async function serveEcho(t: Tunnel, verbose: boolean, logger: Logger): Promise<void> {
  const peer = peerName(t);
  const opened = performance.now();
  t.on('error', (e) => {
    logger.debug('tunnel error', { error: e });
    if (verbose) out(`[${peer}] tunnel error: ${describeError(e)}`);
  });
  t.on('close', () => {
    if (verbose) out(`[${peer}] closed. ${statsLine(t, performance.now() - opened)}`);
  });
  if (verbose) {
    const i = t.info();
    out(`[${peer}] tunnel established: ${protocolSummary(i)}, session ${i.sessionId.slice(0, 16)}, handshake ${i.handshakeMs.toFixed(2)} ms${i.resumed ? ', resumed' : ''}`);
  }
  try {
    for await (const message of t.messages()) {
      if (verbose) out(`[${peer}] received ${message.length} bytes: ${printable(message.toString('utf8'))}`);
      let reply = Buffer.concat([ECHO_PREFIX, message]);
      if (reply.length > MAX_RECORD_PLAINTEXT) reply = reply.subarray(0, MAX_RECORD_PLAINTEXT);
      await t.send(reply);
    }
    // The client closed (close_notify). In message mode the readable side is never read, so
    // the stream's automatic end does not happen: answer with our close_notify explicitly.
    if (!t.destroyed) t.end();
  } catch (e) {
    // The tunnel failed (its 'error' handler reported it); nothing more to echo.
    logger.debug('echo loop ended', { error: e });
  }
}

async function runServer(flags: FlagValues): Promise<number> {
  const addr = parseHostPort(String(flags.addr), '--addr', { defaultHost: '0.0.0.0', allowZero: true });
  const verbose = flags.verbose === true;
  await applyFips(flags);
  const ciphers = ciphersFromFlag(flags.cipher as string | undefined);
  const { setup, obs } = await protocolAndObservability(flags, 'server');
  const admission = rateLimiterFromFlags(flags, obs.logger);
  let closing = false;
  const shutdown = shutdownSignal();

  const listener = listen({
    host: addr.host,
    port: addr.port,
    ciphers,
    observer: obs.observers,
    admission,
    legacyV1: setup.legacyV1,
    groups: setup.groups,
    psk: setup.listenPsk(),
    ...listenAuthOptions(setup),
  });
  // Until it listens, a failure (EADDRINUSE...) is reported once, below; after, it is logged.
  const quiet = () => undefined;
  listener.on('error', quiet);
  try {
    await listener.ready;
  } catch (e) {
    shutdown.remove();
    setup.destroy();
    await obs.tracing.shutdown();
    throw cannotListen(e, addr, '--addr');
  }
  listener.off('error', quiet);
  listener.on('error', (e) => obs.logger.error('listener error', { error: e }));
  listener.on('tunnelError', (error: unknown, t: Tunnel) => logTunnelError(obs.logger, error, t));

  // Every socket listens before anything is announced: "listening on" means ready.
  let obsServer;
  try {
    obsServer = await startObservability(String(flags['obs-addr']), obs.metrics, () => !closing, obs.logger);
  } catch (e) {
    shutdown.remove();
    await listener.close();
    setup.destroy();
    await obs.tracing.shutdown();
    throw e;
  }
  const bound = listener.address();
  out(`listening on ${formatHostPort(bound.address, bound.port)}`);
  if (obsServer) {
    const a = obsServer.address();
    out(`observability on http://${formatHostPort(a.address, a.port)} (/metrics, /health, /healthz, /readyz)`);
  }
  if (verbose) {
    out(securityLine(setup, 'server'));
    out(`Protocols accepted: v2 (groups ${groupSpecs(setup.groups).map((g) => g.displayName).join(', ')})${setup.legacyV1 ? ', and v1 (--legacy-v1)' : ''}`);
    if (setup.psk) out(`Pre-shared keys: every client must prove the key of ${setup.psk.keys.length === 1 ? 'the identity' : 'one of the identities'} ${identityList(setup.psk.keys)}`);
    out(`Cipher suites accepted: ${suiteList(ciphers)}`);
    out(fipsLine());
    out('Echo server ready; press Ctrl+C to stop');
  }

  listener.on('tunnel', (t: Tunnel) => void serveEcho(t, verbose, obs.logger));
  listener.on('handshakeError', (e: HandshakeErrorEvent) => {
    if (verbose) out(`[${e.remoteAddress ? formatHostPort(e.remoteAddress, e.remotePort ?? 0) : 'unknown peer'}] handshake failed: ${e.error.code}`);
  });

  // The handlers stay until the shutdown is over: a second signal exits at once.
  const signal = await shutdown.signal;
  closing = true;
  const open = listener.activeTunnels;
  out(`${signal} received: closing ${plural(open, 'tunnel')} and shutting down`);
  try {
    await listener.close({ tunnels: true });
  } catch (e) {
    obs.logger.warn('error while closing tunnels', { error: e });
  }
  await obsServer?.close();
  setup.destroy();
  await obs.tracing.shutdown();
  out('server stopped');
  shutdown.remove();
  return 0;
}

// ---- client -------------------------------------------------------------------------------------

/** Reads the tunnel's messages in the background, so a close is noticed even between echoes. */
class EchoClient {
  private readonly queue: Buffer[] = [];
  private waiter: { resolve(m: Buffer): void; reject(e: Error): void } | undefined;
  private ended: Error | null | undefined;
  /** Resolves when the server closed the tunnel (null) or it failed (the error). */
  readonly closed: Promise<Error | null>;

  constructor(private readonly tunnel: Tunnel) {
    this.closed = this.pump();
  }

  private async pump(): Promise<Error | null> {
    let result: Error | null = null;
    try {
      for await (const m of this.tunnel.messages()) {
        const w = this.waiter;
        this.waiter = undefined;
        if (w) w.resolve(m);
        else this.queue.push(m);
      }
      // The server closed: answer its close_notify (message mode never reads the stream side).
      if (!this.tunnel.destroyed) this.tunnel.end();
    } catch (e) {
      result = e as Error;
    }
    this.ended = result;
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(result ?? new CliError('the server closed the connection before the echo arrived'));
    return result;
  }

  /** Sends one message and waits for the next message back. */
  async exchange(message: Buffer, timeoutMs: number): Promise<Buffer> {
    if (this.ended !== undefined) throw this.ended ?? new CliError('the server closed the connection');
    await this.tunnel.send(message);
    const queued = this.queue.shift();
    if (queued) return queued;
    // Read again: the tunnel may have ended during the send (TypeScript keeps the narrowing from before the await).
    const ended = this.ended as Error | null | undefined;
    if (ended !== undefined) throw ended ?? new CliError('the server closed the connection before the echo arrived');
    return new Promise<Buffer>((resolve, reject) => {
      const timer = timeoutMs > 0 ? setTimeout(() => {
        this.waiter = undefined;
        reject(new CliError(`no echo within ${timeoutMs} ms`));
      }, timeoutMs) : undefined;
      this.waiter = {
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
    });
  }
}

function checkMessage(text: string): Buffer {
  const b = Buffer.from(text, 'utf8');
  if (b.length === 0) throw new UsageError('--message must not be empty');
  if (b.length > MAX_DEMO_MESSAGE) throw new CliError(`message too long: ${b.length} bytes (at most ${MAX_DEMO_MESSAGE}, so that the echo fits in one record)`);
  return b;
}

async function runClient(flags: FlagValues): Promise<number> {
  const addr = parseHostPort(String(flags.addr), '--addr', { defaultHost: 'localhost' });
  const target = formatHostPort(addr.host, addr.port);
  const verbose = flags.verbose === true;
  const timeoutMs = parseDuration(String(flags.timeout), '--timeout');
  const interactive = flags.message === '-';
  const first = interactive ? undefined : checkMessage(String(flags.message));
  await applyFips(flags);
  const ciphers = ciphersFromFlag(flags.cipher as string | undefined);
  const { setup, obs } = await protocolAndObservability(flags, 'client');
  const psk = setup.dialPsk();

  const observers: TunnelObserver[] = [...obs.observers];
  if (verbose) {
    out(securityLine(setup, 'client'));
    out(fipsLine());
    const groups = groupSpecs(setup.groups);
    const shareGroup = groups[0]!; // the client sends its key share for the first group
    if (setup.legacyV1) out('Offering protocol v1 only (--legacy-v1): CH-KEM X25519 + ML-KEM-1024, no authentication');
    else out(`Offering protocol v2: key exchange groups ${groups.map((g) => g.displayName).join(', ')} (a key share for the first)${psk ? `, PSK identity "${printable(String(psk.identity))}"` : ''}`);
    out(`Connecting to ${target}, offering ${suiteList(ciphers)}`);
    observers.push({
      onHandshakeStart: (ctx) => {
        out('Handshake:');
        out(`  1. TCP connected to ${formatHostPort(ctx.address ?? addr.host, ctx.port ?? addr.port)}`);
        if (setup.legacyV1) out('  2. ClientHello sent: ephemeral CH-KEM public key (X25519 32 + ML-KEM-1024 1,568 bytes) and the offered suites');
        else out(`  2. ClientHello sent: key share for ${shareGroup.displayName} (${bytes(shareGroup.clientShareSize)} bytes), the offered suites and groups${psk ? ', the PSK identity and its binder' : ''}`);
        return {
          succeeded: (o) => {
            if (setup.legacyV1) {
              out(`  3. ServerHello received: CH-KEM ciphertext (X25519 32 + ML-KEM-1024 1,568 bytes), suite ${o.suite}`);
              out('  4. ClientFinished sent, ServerFinished received and verified: both sides hold the same keys');
            } else {
              out(`  3. ServerHello received: key share (${bytes(shareGroup.serverShareSize)} bytes), then EncryptedExtensions and the server's Finished, verified; suite ${o.suite}`);
              out(`  4. Finished sent: both sides hold the same keys and the whole handshake is authenticated${psk ? '; both proved the pre-shared key' : ''}`);
            }
          },
          failed: (code) => out(`  handshake failed: ${code}`),
        };
      },
    });
  }

  let tunnel: Tunnel;
  try {
    tunnel = await dial(target, {
      ciphers,
      observer: observers,
      connectTimeoutMs: timeoutMs,
      handshakeTimeoutMs: timeoutMs,
      legacyV1: setup.legacyV1,
      groups: setup.groups,
      psk,
      ...(await setup.keys.dialOptions(addr.host, addr.port)),
    });
  } catch (e) {
    setup.destroy();
    await obs.tracing.shutdown();
    throw new CliError(`cannot connect to ${target}: ${describeError(e)}`, { cause: e });
  }
  const started = performance.now();
  tunnel.on('error', (e) => obs.logger.debug('tunnel error', { error: e }));
  const session = new EchoClient(tunnel);
  if (verbose) {
    const i = tunnel.info();
    out(`Connected to ${i.remoteAddress ? formatHostPort(i.remoteAddress, i.remotePort ?? 0) : target}`);
    out(`Tunnel: ${protocolSummary(i)}`);
    out(`Cipher suite: ${i.suite}`);
    out(
      `Peer authenticated: ${i.peerIdentity ? `yes, ${describePeerIdentity(i.peerIdentity)}` : i.protocol === 'v1' ? 'no (protocol v1 cannot authenticate)' : 'no (no pre-shared key or pinned key)'}`,
    );
    out(`Session ID: ${i.sessionId.slice(0, 16)}... (first 8 bytes)`);
    out(`Handshake time: ${i.handshakeMs.toFixed(2)} ms`);
  }

  let code = 0;
  const removeSignals = onShutdownSignal(() => {
    // Ctrl+C in the client: close the tunnel gracefully; the loops below end.
    void tunnel.close();
  });
  try {
    if (first) {
      await exchangeAndPrint(session, first, timeoutMs, verbose);
    } else {
      code = await interactiveLoop(session, timeoutMs, verbose);
    }
  } catch (e) {
    err(`quantum-vpn: ${describeError(e)}`);
    code = 1;
  } finally {
    removeSignals();
  }
  await tunnel.close();
  if (verbose) {
    out(statsLine(tunnel, performance.now() - started));
    out('Connection closed');
  }
  setup.destroy();
  await obs.tracing.shutdown();
  return code;
}

async function exchangeAndPrint(session: EchoClient, message: Buffer, timeoutMs: number, verbose: boolean): Promise<void> {
  const reply = await session.exchange(message, timeoutMs);
  if (verbose) {
    out(`Sent: ${printable(message.toString('utf8'))}`);
    out(`Received: ${printable(reply.toString('utf8'))}`);
  } else {
    out(printable(reply.toString('utf8')));
  }
}

/** One message per stdin line until EOF (exit 0) or the server closes (exit 0 if clean). */
async function interactiveLoop(session: EchoClient, timeoutMs: number, verbose: boolean): Promise<number> {
  const prompt = process.stdin.isTTY === true;
  if (prompt) out('Type a message and press Enter; Ctrl+D to finish.');
  const rl = createInterface({ input: process.stdin, crlfDelay: Infinity, terminal: false });
  const lines = rl[Symbol.asyncIterator]();
  const closed = session.closed.then((e) => ({ closed: true as const, error: e }));
  try {
    for (;;) {
      if (prompt) process.stdout.write('> ');
      const next = await Promise.race([lines.next(), closed]);
      if ('closed' in next) {
        if (next.error) {
          err(`quantum-vpn: connection failed: ${describeError(next.error)}`);
          return 1;
        }
        err('quantum-vpn: the server closed the connection');
        return 0;
      }
      if (next.done) return 0;
      const line = next.value.replace(/\r$/, '');
      if (line === '') continue;
      let message: Buffer;
      try {
        message = checkMessage(line);
      } catch (e) {
        err(`quantum-vpn: ${(e as Error).message}; not sent`);
        continue;
      }
      await exchangeAndPrint(session, message, timeoutMs, verbose);
    }
  } finally {
    rl.close();
    process.stdin.pause();
  }
}

// ---- command ------------------------------------------------------------------------------------

export const demoCommand: Command = {
  name: 'demo',
  summary: 'Echo server and client over the tunnel',
  synopsis: 'quantum-vpn demo --mode server [--addr HOST:PORT] [--obs-addr HOST:PORT] [options]\n       quantum-vpn demo --mode client [--addr HOST:PORT] [--message TEXT | --message -] [options]',
  description:
    'The server answers "Echo: <message>" to every message (one tunnel record per message). It prints\n' +
    '"listening on HOST:PORT" once it accepts connections, serves metrics and health on --obs-addr,\n' +
    'and on SIGINT or SIGTERM closes every tunnel gracefully (close_notify) and exits 0.\n' +
    'The client sends --message and prints the reply; with "--message -" it sends each line of\n' +
    'stdin and prints each reply. Logs go to stderr; --log-level info shows handshakes and sessions.\n' +
    'Protocol v2 by default; --legacy-v1 speaks v1 to Go peers (a server then also answers v1\n' +
    'clients). --psk-file authenticates both ends with a pre-shared key (quantum-vpn psk generate).',
  flags: FLAGS,
  async run(args: ParsedArgs): Promise<number> {
    const mode = String(args.flags.mode).trim().toLowerCase();
    // Flags of the other mode are ignored with a note, as the reference ignores them silently.
    const ignored = (names: string[], m: string) => {
      for (const f of names) if (args.given.has(f)) err(`quantum-vpn: note: --${f} applies to --mode ${m} only; ignored`);
    };
    if (mode === 'server') {
      ignored(['message', 'timeout'], 'client');
      return runServer(args.flags);
    }
    if (mode === 'client') {
      ignored(['obs-addr', ...RATE_LIMIT_FLAGS.map((f) => f.name)], 'server');
      return runClient(args.flags);
    }
    throw new UsageError(`invalid --mode ${JSON.stringify(args.flags.mode)}: expected server or client`);
  },
};
