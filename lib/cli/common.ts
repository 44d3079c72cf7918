/** What the quantum-vpn commands share: the command shape, common flags and their setup. */
import type { CipherName } from '../tunnel/options.js';
import type { TunnelObserver } from '../tunnel/observer.js';
import type { Tunnel } from '../tunnel/tunnel.js';
import { getSystemErrorMap } from 'node:util';
import { info as cryptoInfo } from '../crypto/info.js';
import { cipherSuiteByOption, suitePermitted } from '../protocol/suites.js';
import { ErrorCode, QuantumTunnelError, qtError } from '../errors.js';
import {
  createLogger,
  LoggingObserver,
  type Logger,
  maskAddress,
  type MetricsSource,
  type ObservabilityServer,
  type ObservabilityServerOptions,
  parseLogLevel,
  RateLimiter,
  registerProcessMetrics,
  startObservabilityServer,
  TracingObserver,
  TunnelMetrics,
} from '../ops/index.js';
import { VERSION } from '../ops/version.js';
import { CliError, type FlagSpec, type FlagValues, formatHostPort, type HostPort, parseHostPort, type ParsedArgs, UsageError } from './args.js';
import { parseTracingMode, setupTracing, type TracingSetup } from './tracing.js';
import { enableFips } from './fips.js';

export { VERSION };

export interface Command {
  name: string;
  summary: string;
  /** The synopsis line(s), without "Usage: ". */
  synopsis: string;
  /** Paragraphs shown between the synopsis and the options. */
  description: string;
  flags: FlagSpec[];
  maxPositionals?: number;
  /** The command handles FIPS mode itself: QUANTUM_TUNNEL_FIPS is not applied before it runs. */
  managesFips?: boolean;
  /** Resolves with the exit code. */
  run(args: ParsedArgs): Promise<number>;
}

/** Writes a line to stdout. */
export function out(line = ''): void {
  process.stdout.write(`${line}\n`);
}

/** `1 tunnel`, `2 tunnels`. */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** Writes a line to stderr. */
export function err(line: string): void {
  process.stderr.write(`${line}\n`);
}

// ---- flags --------------------------------------------------------------------------------------

export function cipherFlag(defaultValue?: string): FlagSpec {
  return {
    name: 'cipher',
    kind: 'string',
    metavar: 'NAME',
    default: defaultValue,
    defaultText: defaultValue ?? 'both, AES-256-GCM preferred',
    help: 'Cipher suite: aes-gcm (AES-256-GCM) or chacha20 (ChaCha20-Poly1305); only this one is offered or accepted',
  };
}

export const LOG_FLAGS: FlagSpec[] = [
  { name: 'log-level', kind: 'string', metavar: 'LEVEL', default: 'warn', help: 'Log level: debug, info, warn, error or silent (logs go to stderr)' },
  { name: 'log-format', kind: 'string', metavar: 'FORMAT', default: 'text', help: 'Log format: text or json' },
];

export const TRACING_FLAG: FlagSpec = {
  name: 'tracing',
  kind: 'string',
  metavar: 'MODE',
  default: 'none',
  help: 'Tracing: none, simple (spans printed to stderr) or otel (OpenTelemetry SDK, configured by OTEL_* variables)',
};

export const FIPS_FLAG: FlagSpec = { name: 'fips', kind: 'boolean', default: false, help: 'Run in FIPS mode (OpenSSL FIPS provider; AES-256-GCM only)' };

export function obsFlag(defaultValue: string): FlagSpec {
  return {
    name: 'obs-addr',
    kind: 'string',
    metavar: 'HOST:PORT',
    default: defaultValue,
    defaultText: defaultValue === '' ? 'empty: disabled' : defaultValue,
    help: 'Observability HTTP server (/metrics, /health, /healthz, /readyz); empty disables it; ":PORT" listens on every interface',
  };
}

export const RATE_LIMIT_FLAGS: FlagSpec[] = [
  { name: 'max-conns-per-ip', kind: 'int', metavar: 'N', default: 0, defaultText: '0: unlimited', help: 'Concurrent connections allowed per client address' },
  { name: 'handshake-rate', kind: 'int', metavar: 'N', default: 0, defaultText: '0: unlimited', help: 'New connections (handshakes) per second per client address' },
  { name: 'handshake-burst', kind: 'int', metavar: 'N', default: 0, defaultText: 'the rate', help: 'Burst allowed above --handshake-rate' },
  { name: 'global-handshake-rate', kind: 'int', metavar: 'N', default: 0, defaultText: '0: unlimited', help: 'New connections (handshakes) per second over all clients' },
  { name: 'global-handshake-burst', kind: 'int', metavar: 'N', default: 0, defaultText: 'the rate', help: 'Burst allowed above --global-handshake-rate' },
];

// ---- setup --------------------------------------------------------------------------------------

/** The --cipher spellings the Go CLI accepts (`aes-gcm`, `chacha20`) besides the suites' own names. */
const CIPHER_FLAG_ALIASES: Record<string, CipherName> = {
  'aes-gcm': 'aes-256-gcm',
  aes: 'aes-256-gcm',
  aes256gcm: 'aes-256-gcm',
  chacha20: 'chacha20-poly1305',
  chacha: 'chacha20-poly1305',
};

/** `aes-gcm` / `chacha20` (and the full names) to the suite list; undefined means the library default. */
export function ciphersFromFlag(value: string | undefined): CipherName[] | undefined {
  if (value === undefined || value === '') return undefined;
  const name = value.trim().toLowerCase();
  const spec = cipherSuiteByOption(CIPHER_FLAG_ALIASES[name] ?? name);
  if (spec === undefined) throw new UsageError(`invalid --cipher ${JSON.stringify(value)}: expected aes-gcm or chacha20`);
  if (!suitePermitted(spec.id)) {
    throw new CliError(cryptoInfo().fips ? `${spec.displayName} is not allowed in FIPS mode` : `${spec.displayName} is not available in this build`);
  }
  return [spec.option];
}

/** The display name of a suite option (AES-256-GCM, ChaCha20-Poly1305). */
export function displayName(option: CipherName): string {
  return cipherSuiteByOption(option)!.displayName;
}

/**
 * The logger of --log-level / --log-format, writing to stderr with `app=quantum-vpn` and `fields`
 * on every line (a forward worker's `worker`).
 */
export function loggerFromFlags(flags: FlagValues, fields: Record<string, unknown> = {}): Logger {
  let level;
  try {
    level = parseLogLevel(String(flags['log-level']));
  } catch {
    throw new UsageError(`invalid --log-level ${JSON.stringify(flags['log-level'])}: expected debug, info, warn, error or silent`);
  }
  const format = String(flags['log-format']).trim().toLowerCase();
  if (format !== 'text' && format !== 'json') throw new UsageError(`invalid --log-format ${JSON.stringify(flags['log-format'])}: expected text or json`);
  return createLogger({ level, format, stream: process.stderr, base: { app: 'quantum-vpn', ...fields } });
}

/** Applies --fips if given (before anything else touches the crypto core). */
export async function applyFips(flags: FlagValues): Promise<void> {
  if (flags.fips === true) await enableFips();
}

export interface Observability {
  metrics: TunnelMetrics;
  observers: TunnelObserver[];
  logger: Logger;
  tracing: TracingSetup;
}

/** Constant labels on every quantum-vpn metric. */
export const METRIC_LABELS: Readonly<Record<string, string>> = Object.freeze({ service: 'quantum-vpn' });

/** Logger, metrics, logging and tracing observers from the common flags. */
export async function observabilityFromFlags(flags: FlagValues, logger = loggerFromFlags(flags)): Promise<Observability> {
  const mode = parseTracingMode(String(flags.tracing ?? 'none'));
  const tracing = await setupTracing(mode);
  const metrics = new TunnelMetrics({ fipsMode: () => cryptoInfo().fips, labels: { ...METRIC_LABELS } });
  registerProcessMetrics(metrics.registry, { prefix: metrics.prefix, labels: { ...METRIC_LABELS } });
  // Tunnel errors nobody handled are logged by the servers' `tunnelError` handlers (logTunnelError),
  // with more detail than the observer has: once is enough.
  const observers: TunnelObserver[] = [metrics, new LoggingObserver(logger, { tunnelErrors: false })];
  if (mode !== 'none') observers.push(new TracingObserver({ fipsMode: cryptoInfo().fips }));
  return { metrics, observers, logger, tracing };
}

/** The RateLimiter of the rate-limit flags, or undefined when every limit is off. */
export function rateLimiterFromFlags(flags: FlagValues, logger: Logger): RateLimiter | undefined {
  const n = (name: string) => Number(flags[name] ?? 0);
  const options = {
    maxConnectionsPerIp: n('max-conns-per-ip'),
    handshakesPerSecondPerIp: n('handshake-rate'),
    handshakeBurstPerIp: n('handshake-burst'),
    globalHandshakesPerSecond: n('global-handshake-rate'),
    globalHandshakeBurst: n('global-handshake-burst'),
  };
  if (options.maxConnectionsPerIp === 0 && options.handshakesPerSecondPerIp === 0 && options.globalHandshakesPerSecond === 0) return undefined;
  return new RateLimiter({ ...options, logger });
}

/**
 * Parses `--obs-addr` (empty: none). `:PORT` means every interface, as in the reference; a bare
 * host-less value such as `9090` also does.
 */
export function parseObsAddr(value: string): { host: string; port: number } | undefined {
  if (value.trim() === '') return undefined;
  return parseHostPort(value, '--obs-addr', { defaultHost: '0.0.0.0', allowZero: true });
}

/**
 * Starts the observability server, or returns undefined when `--obs-addr` is empty. `more` adds
 * health checks (the forward server's backend probe) or, for a forward primary, gathers its
 * workers' state before each answer and replaces the `fips` check with theirs.
 */
export async function startObservability(
  value: string,
  metrics: MetricsSource,
  ready: () => boolean,
  logger: Logger,
  more: Pick<ObservabilityServerOptions, 'checks' | 'refresh' | 'fipsCheck'> = {},
): Promise<ObservabilityServer | undefined> {
  const addr = parseObsAddr(value);
  if (!addr) return undefined;
  try {
    return await startObservabilityServer({ host: addr.host, port: addr.port, version: VERSION, metrics, ready, logger, ...more });
  } catch (e) {
    throw cannotListen(e, addr, '--obs-addr', 'choose another --obs-addr, or disable the observability server with --obs-addr ""');
  }
}

/** The operating system's code of an error or of its cause (`EADDRINUSE`...). */
function systemCode(e: unknown): string | undefined {
  const error = e as { code?: unknown; syscallCode?: unknown; cause?: { code?: unknown } } | undefined;
  for (const c of [error?.syscallCode, error?.code, error?.cause?.code]) {
    if (typeof c === 'string' && /^E[A-Z0-9]+$/.test(c)) return c;
  }
  return undefined;
}

/**
 * The one message for a socket that cannot listen, naming the address and the flag that chose it:
 * `cannot listen on 127.0.0.1:9090 (--obs-addr): address already in use (ERR_QT_ADDRESS_IN_USE)`.
 * EADDRINUSE becomes a QuantumTunnelError with ERR_QT_ADDRESS_IN_USE (the error's `cause`).
 */
export function cannotListen(e: unknown, addr: HostPort, flag: string, hint?: string): CliError {
  const where = formatHostPort(addr.host, addr.port);
  const code = systemCode(e);
  const tail = hint ? `; ${hint}` : '';
  if (code === 'EADDRINUSE' || (e as { code?: unknown })?.code === ErrorCode.ADDRESS_IN_USE) {
    const cause = e instanceof QuantumTunnelError ? e : qtError(ErrorCode.ADDRESS_IN_USE, `address already in use: ${where}`, { cause: e });
    return new CliError(`cannot listen on ${where} (${flag}): address already in use (${ErrorCode.ADDRESS_IN_USE})${tail}`, { cause });
  }
  const errno = (e as { errno?: unknown })?.errno ?? (e as { cause?: { errno?: unknown } })?.cause?.errno;
  const reason = code && typeof errno === 'number' ? `${getSystemErrorMap().get(errno)?.[1] ?? 'error'} (${code})` : describeError(e);
  return new CliError(`cannot listen on ${where} (${flag}): ${reason}${tail}`, { cause: e });
}

/**
 * A one-line reason for an error: its message and codes, e.g. `handshake timed out
 * (ERR_QT_HANDSHAKE_TIMEOUT)`; a connection failure is reduced to the system error
 * (`ECONNREFUSED`), since the caller already says what it was connecting to.
 */
export function describeError(e: unknown): string {
  const error = e as { message?: string; code?: unknown; cause?: { code?: unknown; message?: string } } | undefined;
  const msg = error?.message ?? String(e);
  const code = typeof error?.code === 'string' ? error.code : undefined;
  const causeCode = typeof error?.cause?.code === 'string' ? error.cause.code : undefined;
  if (causeCode && /^cannot connect to /.test(msg)) return code ? `${causeCode} (${code})` : causeCode;
  const codes = [code, causeCode].filter((c): c is string => c !== undefined && !msg.includes(c));
  return codes.length > 0 ? `${msg} (${codes.join(', ')})` : msg;
}

/**
 * Logs a listener's `tunnelError` event (an established tunnel failed while nothing else watched
 * its errors) at warn: the error code and the peer, masked as everywhere in the logs. Never the
 * message of a peer-influenced error or anything secret.
 */
export function logTunnelError(logger: Logger, error: unknown, tunnel: Tunnel): void {
  const code = typeof (error as { code?: unknown })?.code === 'string' ? (error as { code: string }).code : 'unknown';
  const fields: Record<string, unknown> = { error: code };
  try {
    const i = tunnel.info();
    fields.peer = `${maskAddress(i.remoteAddress)}:${i.remotePort ?? 0}`;
    fields.session = i.sessionId.slice(0, 16);
  } catch {
    fields.peer = 'unknown';
  }
  logger.warn('tunnel error', fields);
}

/**
 * Calls `handler` on the first SIGINT or SIGTERM; a second signal exits at once with code 1.
 * Returns a function that removes the handlers.
 */
export function onShutdownSignal(handler: (signal: NodeJS.Signals) => void): () => void {
  let count = 0;
  const listener = (signal: NodeJS.Signals) => {
    count++;
    if (count === 1) handler(signal);
    else {
      err(`quantum-vpn: ${signal} again, exiting without waiting`);
      process.exit(1);
    }
  };
  process.on('SIGINT', listener);
  process.on('SIGTERM', listener);
  return () => {
    process.off('SIGINT', listener);
    process.off('SIGTERM', listener);
  };
}

/**
 * Starts watching for SIGINT/SIGTERM at once (so a signal during start-up is not lost):
 * `signal` resolves with the first one; call `remove()` once the shutdown is over.
 */
export function shutdownSignal(): { signal: Promise<NodeJS.Signals>; remove(): void } {
  let remove = () => undefined as void;
  const signal = new Promise<NodeJS.Signals>((resolve) => {
    remove = onShutdownSignal(resolve);
  });
  return { signal, remove };
}
