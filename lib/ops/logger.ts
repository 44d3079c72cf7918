/**
 * Structured logging: a small leveled logger (text or JSON lines), a pino adapter, address masking,
 * and a TunnelObserver that logs tunnel events.
 *
 * Safety rules, applied to every field of every line whatever the format:
 * - byte containers (Buffer, Uint8Array, ArrayBuffer, DataView) are written as `[Buffer N bytes]`,
 *   never as their contents;
 * - class instances other than Error and Date (a Secret or PrivateKey handle, a socket, ...) are
 *   written as `[ClassName]`; only plain objects and arrays are walked (to depth 4);
 * - fields whose key names a secret (`secret`, `psk`, `password`, `token`, `ticket`, `seed`,
 *   `private...`, `key`, ...) are written as `[REDACTED]`;
 * - text-format values and messages are quoted/escaped, so a peer-controlled string cannot forge
 *   a log line (no raw newlines or control characters).
 */
import { isIP } from 'node:net';
import { ErrorCode, qtError } from '../errors.js';
import { cryptoPolicy } from '../crypto/policy.js';
import type { HandshakeContext, HandshakeOutcome, HandshakeWatch, PeerAddress, RateLimitKind, RekeyWatch, TunnelObserver } from '../tunnel/observer.js';

/** Log levels, lowest first; `silent` writes nothing. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

/** Structured fields of one log line (sanitised: see the module's safety rules). */
export type LogFields = Record<string, unknown>;

/** The logger interface the library uses. Any object with these members can be passed in. */
export interface Logger {
  /** Writes a debug line (details of handshakes and rekeys). */
  debug(msg: string, fields?: LogFields): void;
  /** Writes an info line (tunnels opened and closed, servers started). */
  info(msg: string, fields?: LogFields): void;
  /** Writes a warning (refused connections, failed handshakes). */
  warn(msg: string, fields?: LogFields): void;
  /** Writes an error (failures the operator must act on). */
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds `bindings` to every line (and inherits the current level). */
  child(bindings: LogFields): Logger;
  /** The minimum level written; assignable. */
  level: LogLevel;
}

/** Options of {@link createLogger}. */
export interface CreateLoggerOptions {
  /** Default `info`. */
  level?: LogLevel;
  /** Default `text`. */
  format?: 'text' | 'json';
  /** Default `process.stderr`. */
  stream?: NodeJS.WritableStream;
  /** Fields on every line (for example `{ app: 'quantum-vpn' }`). */
  base?: LogFields;
  /** Text format only: colour the level. Default: when the stream is a TTY. */
  color?: boolean;
  /** Timestamps (tests). Default `() => new Date()`. */
  clock?: () => Date;
}

const LEVEL_RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };
const LEVELS = Object.keys(LEVEL_RANK) as LogLevel[];
const COLOURS: Record<Exclude<LogLevel, 'silent'>, string> = { debug: '\x1b[90m', info: '\x1b[34m', warn: '\x1b[33m', error: '\x1b[31m' };
const RESET = '\x1b[0m';

/**
 * Parses a level name, ignoring case and surrounding blanks: `debug`, `info`, `warn`/`warning`,
 * `error`, `silent`/`off`/`none`. Anything else throws ERR_QT_INVALID_ARGUMENT (the reference
 * silently fell back to info).
 */
export function parseLogLevel(value: string): LogLevel {
  const v = typeof value === 'string' ? value.trim().toLowerCase() : '';
  switch (v) {
    case 'debug':
    case 'info':
    case 'warn':
    case 'error':
    case 'silent':
      return v;
    case 'warning':
      return 'warn';
    case 'off':
    case 'none':
      return 'silent';
    default:
      throw qtError(ErrorCode.INVALID_ARGUMENT, `invalid log level ${JSON.stringify(String(value))} (expected debug, info, warn, error or silent)`);
  }
}

function checkLevel(level: unknown): LogLevel {
  if (typeof level !== 'string' || !(LEVELS as string[]).includes(level)) {
    throw qtError(ErrorCode.INVALID_ARGUMENT, `invalid log level ${JSON.stringify(String(level))}`);
  }
  return level as LogLevel;
}

// ---- masking ------------------------------------------------------------------------------------

/** Expands an IPv6 address into its 8 groups (lower case, no leading zeros); null if not IPv6. */
function ipv6Groups(address: string): string[] | null {
  if (isIP(address) !== 6) return null;
  let a = address.toLowerCase();
  // A trailing dotted quad (::ffff:1.2.3.4, 64:ff9b::1.2.3.4) becomes two groups.
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(a);
  if (dotted) {
    const [b0, b1, b2, b3] = dotted.slice(1).map(Number) as [number, number, number, number];
    a = `${a.slice(0, dotted.index)}${((b0 << 8) | b1).toString(16)}:${((b2 << 8) | b3).toString(16)}`;
  }
  const [head, tail] = a.split('::') as [string, string | undefined];
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.map((g) => parseInt(g, 16).toString(16));
}

/**
 * An address for logs: an IPv4 address keeps its /24 (`192.168.1.x`), an IPv6 address its /64
 * (`2001:db8:1:2:x:x:x:x`), an IPv4-mapped IPv6 address is shown as the IPv4 one; a zone
 * (`%eth0`) is dropped. Undefined or empty gives `unknown`; anything that is not an IP address
 * (a host name, garbage) gives `[masked]`.
 */
export function maskAddress(address: string | undefined): string {
  if (typeof address !== 'string' || address === '') return 'unknown';
  const bare = address.replace(/%.*$/, '');
  if (isIP(bare) === 4) return bare.replace(/\.\d+$/, '.x');
  const groups = ipv6Groups(bare);
  if (groups === null) return '[masked]';
  if (groups.slice(0, 5).every((g) => g === '0') && groups[5] === 'ffff') {
    const hi = parseInt(groups[6]!, 16);
    const lo = parseInt(groups[7]!, 16);
    return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.x`;
  }
  return `${groups.slice(0, 4).join(':')}:x:x:x:x`;
}

// ---- field sanitising ---------------------------------------------------------------------------

const SECRET_KEY = /secret|psk|passw|token|ticket|seed|private|credential|key$|keys$|^authorization$|^cookie$/i;
const PUBLIC_KEY_OK = /^public_?keys?$|^key_?id$/i;
const MAX_DEPTH = 4;
const MAX_STRING = 2048;
const MAX_ARRAY = 50;

function isSecretKeyName(key: string): boolean {
  return SECRET_KEY.test(key) && !PUBLIC_KEY_OK.test(key);
}

/** A JSON-safe copy of a field value that cannot contain secret bytes (see the module comment). */
export function sanitizeValue(value: unknown, depth = 0, seen: WeakSet<object> = new WeakSet()): unknown {
  switch (typeof value) {
    case 'string':
      return value.length > MAX_STRING ? `${value.slice(0, MAX_STRING)}…[${value.length - MAX_STRING} more chars]` : value;
    case 'number':
      return Number.isFinite(value) ? value : String(value);
    case 'boolean':
      return value;
    case 'bigint':
      return value.toString();
    case 'undefined':
      return undefined;
    case 'symbol':
      return value.toString();
    case 'function':
      return '[Function]';
  }
  if (value === null) return null;
  const obj = value as object;
  if (ArrayBuffer.isView(obj)) return `[${obj.constructor?.name === 'Buffer' ? 'Buffer' : obj.constructor?.name ?? 'bytes'} ${obj.byteLength} bytes]`;
  if (obj instanceof ArrayBuffer || (typeof SharedArrayBuffer !== 'undefined' && obj instanceof SharedArrayBuffer)) return `[ArrayBuffer ${obj.byteLength} bytes]`;
  if (obj instanceof Date) return Number.isNaN(obj.getTime()) ? 'Invalid Date' : obj.toISOString();
  if (obj instanceof Error) {
    const e = obj as Error & { code?: unknown };
    const out: Record<string, unknown> = { name: e.name, message: sanitizeValue(e.message, MAX_DEPTH, seen) };
    if (typeof e.code === 'string' || typeof e.code === 'number') out.code = e.code;
    return out;
  }
  if (seen.has(obj)) return '[Circular]';
  if (depth >= MAX_DEPTH) return Array.isArray(obj) ? '[Array]' : '[Object]';
  if (Array.isArray(obj)) {
    seen.add(obj);
    const out = obj.slice(0, MAX_ARRAY).map((v) => sanitizeValue(v, depth + 1, seen));
    if (obj.length > MAX_ARRAY) out.push(`…[${obj.length - MAX_ARRAY} more]`);
    seen.delete(obj);
    return out;
  }
  const proto: unknown = Object.getPrototypeOf(obj);
  if (proto !== Object.prototype && proto !== null) {
    // Secret and PrivateKey handles, sockets, Maps...: never walked, only named.
    return `[${(obj.constructor as { name?: string } | undefined)?.name || 'Object'}]`;
  }
  seen.add(obj);
  const out = sanitizeFields(obj as LogFields, depth + 1, seen);
  seen.delete(obj);
  return out;
}

function sanitizeFields(fields: LogFields, depth = 0, seen: WeakSet<object> = new WeakSet()): Record<string, unknown> {
  // Object.fromEntries defines own properties: a `__proto__` field (parsed JSON) stays a field, never the prototype.
  const out: Array<[string, unknown]> = [];
  for (const [key, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    out.push([key, isSecretKeyName(key) ? '[REDACTED]' : sanitizeValue(v, depth, seen)]);
  }
  return Object.fromEntries(out);
}

// ---- formatting ---------------------------------------------------------------------------------

const RESERVED = new Set(['time', 'level', 'msg']);

/** `k=v` with v bare when it is a simple token, JSON-quoted otherwise (escapes newlines and control characters). */
function textValue(v: unknown): string {
  if (typeof v === 'string') return /^[\w.:/@+-]+$/.test(v) ? v : JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  return JSON.stringify(v);
}

function textMessage(msg: string): string {
  // Control characters (newlines, ANSI escapes) become JSON escapes, keeping the line single.
  // eslint-disable-next-line no-control-regex
  return /[\x00-\x1f\x7f]/.test(msg) ? JSON.stringify(msg).slice(1, -1) : msg;
}

class StreamLogger implements Logger {
  private rank: number;
  private currentLevel: LogLevel;

  constructor(
    private readonly sink: { stream: NodeJS.WritableStream; format: 'text' | 'json'; color: boolean; clock: () => Date },
    private readonly bindings: Record<string, unknown>,
    level: LogLevel,
  ) {
    this.currentLevel = checkLevel(level);
    // eslint-disable-next-line security/detect-object-injection -- level is a LogLevel, checked by checkLevel above
    this.rank = LEVEL_RANK[level];
  }

  get level(): LogLevel {
    return this.currentLevel;
  }

  set level(level: LogLevel) {
    this.currentLevel = checkLevel(level);
    this.rank = LEVEL_RANK[this.currentLevel];
  }

  debug(msg: string, fields?: LogFields): void {
    this.write('debug', msg, fields);
  }

  info(msg: string, fields?: LogFields): void {
    this.write('info', msg, fields);
  }

  warn(msg: string, fields?: LogFields): void {
    this.write('warn', msg, fields);
  }

  error(msg: string, fields?: LogFields): void {
    this.write('error', msg, fields);
  }

  child(bindings: LogFields): Logger {
    return new StreamLogger(this.sink, { ...this.bindings, ...sanitizeFields(bindings ?? {}) }, this.currentLevel);
  }

  private write(level: Exclude<LogLevel, 'silent'>, msg: string, fields: LogFields | undefined): void {
    // eslint-disable-next-line security/detect-object-injection -- level is a LogLevel literal from this class's methods
    if (LEVEL_RANK[level] < this.rank) return;
    try {
      const data = fields ? { ...this.bindings, ...sanitizeFields(fields) } : this.bindings;
      const message = typeof msg === 'string' ? msg : String(sanitizeValue(msg));
      const time = this.sink.clock().toISOString();
      let line: string;
      if (this.sink.format === 'json') {
        // Own properties, as in sanitizeFields: a `__proto__` field is written, not made the prototype.
        const record: Array<[string, unknown]> = [['time', time], ['level', level], ['msg', message]];
        for (const [k, v] of Object.entries(data)) record.push([RESERVED.has(k) ? `field_${k}` : k, v]);
        line = JSON.stringify(Object.fromEntries(record));
      } else {
        const name = level.toUpperCase().padEnd(5);
        // eslint-disable-next-line security/detect-object-injection -- level is a LogLevel literal from this class's methods
        const lvl = this.sink.color ? `${COLOURS[level]}${name}${RESET}` : name;
        const kv = Object.entries(data).map(([k, v]) => `${k}=${textValue(v)}`);
        line = [time, lvl, textMessage(message), ...kv].join(' ');
      }
      this.sink.stream.write(`${line}\n`);
    } catch {
      /* logging never throws into the caller */
    }
  }
}

/** Creates a logger writing one line per event to `stream` (stderr by default). */
export function createLogger(options: CreateLoggerOptions = {}): Logger {
  const stream = options.stream ?? process.stderr;
  const format = options.format ?? 'text';
  if (format !== 'text' && format !== 'json') throw qtError(ErrorCode.INVALID_ARGUMENT, `invalid log format ${JSON.stringify(String(format))} (expected text or json)`);
  const color = options.color ?? (format === 'text' && (stream as { isTTY?: boolean }).isTTY === true && !process.env.NO_COLOR);
  return new StreamLogger({ stream, format, color, clock: options.clock ?? (() => new Date()) }, sanitizeFields(options.base ?? {}), options.level ?? 'info');
}

/** A logger that writes nothing. */
export function nullLogger(): Logger {
  const l: Logger = {
    level: 'silent',
    debug: () => undefined,
    info: () => undefined,
    warn: () => undefined,
    error: () => undefined,
    child: () => l,
  };
  return l;
}

/** The shape of a pino logger that {@link fromPino} needs (pino takes the fields first). */
export interface PinoLike {
  /** pino's `debug(fields, msg)`. */
  debug(obj: object, msg?: string): void;
  /** pino's `info(fields, msg)`. */
  info(obj: object, msg?: string): void;
  /** pino's `warn(fields, msg)`. */
  warn(obj: object, msg?: string): void;
  /** pino's `error(fields, msg)`. */
  error(obj: object, msg?: string): void;
  /** pino's `child(bindings)`. */
  child(bindings: Record<string, unknown>): PinoLike;
  /** pino's level name, read and assigned. */
  level: string;
}

/**
 * Adapts a pino (or pino-like) logger to {@link Logger}. Fields are sanitised the same way before
 * they reach pino. pino levels without an equivalent (`trace`, `fatal`) read as debug / error.
 */
export function fromPino(pino: PinoLike): Logger {
  const call = (fn: 'debug' | 'info' | 'warn' | 'error') => (msg: string, fields?: LogFields) => {
    try {
      // eslint-disable-next-line security/detect-object-injection -- fn is one of four literal method names
      pino[fn](fields ? sanitizeFields(fields) : {}, msg);
    } catch {
      /* ignored */
    }
  };
  return {
    debug: call('debug'),
    info: call('info'),
    warn: call('warn'),
    error: call('error'),
    child: (bindings) => fromPino(pino.child(sanitizeFields(bindings))),
    get level(): LogLevel {
      const l = pino.level;
      if (l === 'trace') return 'debug';
      if (l === 'fatal') return 'error';
      return (LEVELS as string[]).includes(l) ? (l as LogLevel) : 'info';
    },
    set level(level: LogLevel) {
      pino.level = checkLevel(level);
    },
  };
}

// ---- tunnel events ------------------------------------------------------------------------------

/** Options of {@link LoggingObserver}. */
export interface LoggingObserverOptions {
  /** Mask peer addresses in every message (not only rate-limit ones). Default true. */
  maskAddresses?: boolean;
  /**
   * Log tunnel failures that no 'error' listener handled (`onTunnelError`). Default true. Set it
   * to false when the application logs the listener's `tunnelError` event itself, so that each
   * failure is logged once.
   */
  tunnelErrors?: boolean;
  /** Monotonic clock in milliseconds, for the throttled warnings. Default `performance.now`. */
  now?: () => number;
}

/** Messages of the onRateLimited kinds. */
const RATE_LIMIT_MESSAGE: Record<RateLimitKind, string> = {
  connection: 'connection rate limit exceeded',
  handshake: 'handshake rate limit exceeded',
  rekey: 'rekey rate limit exceeded',
  'pending-handshakes': 'too many handshakes in progress',
};

/** A full handshake queue is logged at most this often (a flood would otherwise flood the log). */
const PENDING_LOG_INTERVAL_MS = 10_000;

/**
 * Logs tunnel events. Levels: debug for connection and handshake starts, rekey starts and
 * rate-limit rejections (the RateLimiter logs those itself at warn, throttled); info for completed
 * handshakes and rekeys and closed sessions; warn for failed handshakes and rekeys, replays,
 * authentication and protocol errors (a peer's doing), tunnel errors no 'error' listener handled,
 * and a listener dropping connections because too many handshakes are in progress (at most once
 * per 10 s, with the number suppressed meanwhile); error for local encryption failures.
 * Traffic is never logged. Field names are snake_case.
 */
export class LoggingObserver implements TunnelObserver {
  private readonly logger: Logger;
  private readonly mask: boolean;
  private readonly tunnelErrors: boolean;
  private readonly now: () => number;
  private pendingLog = { last: -Infinity, suppressed: 0 };

  constructor(logger: Logger, options: LoggingObserverOptions = {}) {
    this.logger = logger;
    this.mask = options.maskAddresses ?? true;
    this.tunnelErrors = options.tunnelErrors ?? true;
    this.now = options.now ?? (() => performance.now());
  }

  private peer(p: PeerAddress): Record<string, unknown> {
    return { remote_ip: this.mask ? maskAddress(p.address) : (p.address ?? 'unknown'), remote_port: p.port };
  }

  onConnection(peer: PeerAddress): void {
    this.logger.debug('connection accepted', this.peer(peer));
  }

  onRateLimited(kind: RateLimitKind, peer: PeerAddress): void {
    // eslint-disable-next-line security/detect-object-injection -- an own property, checked with Object.hasOwn
    const msg = Object.hasOwn(RATE_LIMIT_MESSAGE, kind) ? RATE_LIMIT_MESSAGE[kind] : 'rate limit exceeded';
    if (kind !== 'pending-handshakes') {
      this.logger.debug(msg, { remote_ip: maskAddress(peer.address) });
      return;
    }
    // Nothing else logs this cap: warn, throttled.
    const now = this.now();
    if (now - this.pendingLog.last < PENDING_LOG_INTERVAL_MS) {
      this.pendingLog.suppressed++;
      return;
    }
    const suppressed = this.pendingLog.suppressed;
    this.pendingLog = { last: now, suppressed: 0 };
    this.logger.warn(msg, { remote_ip: maskAddress(peer.address), ...(suppressed > 0 ? { suppressed } : {}) });
  }

  onTunnelError(errorCode: string, peer: PeerAddress): void {
    if (this.tunnelErrors) this.logger.warn('tunnel error not handled by the application', { error: errorCode, ...this.peer(peer) });
  }

  onHandshakeStart(context: HandshakeContext): HandshakeWatch {
    const base = { role: context.role, ...this.peer(context) };
    this.logger.debug('handshake started', { ...base, resumption_attempted: context.resumptionAttempted });
    const started = performance.now();
    return {
      succeeded: (outcome: HandshakeOutcome) =>
        this.logger.info('handshake completed', {
          ...base,
          protocol: outcome.protocol,
          suite: outcome.suite,
          ...(outcome.group !== undefined ? { group: outcome.group } : {}),
          resumed: outcome.resumed,
          fips: outcome.fips || cryptoPolicy.fips,
          duration_ms: round(outcome.durationMs),
        }),
      failed: (code: string) => this.logger.warn('handshake failed', { ...base, error: code, duration_ms: round(performance.now() - started) }),
    };
  }

  onTunnelOpen(info: { role: 'client' | 'server'; suite: string; resumed: boolean } & PeerAddress): void {
    this.logger.debug('session started', { role: info.role, suite: info.suite, resumed: info.resumed, ...this.peer(info) });
  }

  onReplayBlocked(peer: PeerAddress): void {
    this.logger.warn('replay attack blocked', this.peer(peer));
  }

  onAuthFailure(peer: PeerAddress): void {
    this.logger.warn('authentication failed', this.peer(peer));
  }

  onProtocolError(errorCode: string, peer: PeerAddress): void {
    this.logger.warn('protocol error', { error: errorCode, ...this.peer(peer) });
  }

  onEncryptError(errorCode: string): void {
    this.logger.error('encrypt failed', { error: errorCode });
  }

  onRekeyStart(initiatedByUs: boolean): RekeyWatch {
    this.logger.debug('rekey started', { initiated_by_us: initiatedByUs });
    return {
      succeeded: () => this.logger.info('rekey completed', { initiated_by_us: initiatedByUs }),
      failed: (code: string) => this.logger.warn('rekey failed', { initiated_by_us: initiatedByUs, error: code }),
    };
  }

  onTunnelClose(info: { error?: string; bytesSent: number; bytesReceived: number }): void {
    const fields = { bytes_sent: info.bytesSent, bytes_received: info.bytesReceived, error: info.error };
    this.logger.info('session ended', fields);
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
