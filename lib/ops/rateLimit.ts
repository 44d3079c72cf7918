/**
 * Admission control for listen({ admission }): a per-address limit on concurrent connections and
 * token buckets on the handshake rate, per address and global. The listener asks before any
 * cryptography and drops refused sockets at once (no alert), so a flood costs a TCP accept.
 *
 * Semantics:
 * - every limit is off when 0 or undefined;
 * - a burst of 0 or undefined means the default burst, max(1, ceil(rate)): one second's worth of
 *   handshakes (the Go reference rejected everything with a burst of 0);
 * - the per-address checks run first and a refused connection takes no global token, so one
 *   flooding address drains only its own bucket and cannot starve others (unless the global
 *   limit, which is shared by design, is set lower than the flood);
 * - addresses are keyed as: IPv4 as is; IPv4-mapped IPv6 as the IPv4 address; other IPv6 by their
 *   /64 prefix by default (one host usually owns a whole /64; see `ipv6PrefixLength`); a missing
 *   address as `unknown`.
 * - memory is bounded: idle addresses (no connection open, bucket full) are dropped, and beyond
 *   `maxTrackedAddresses` the oldest addresses without an open connection are forgotten;
 * - `maxConnectionsPerIp` is rounded down to an integer, but a positive value never becomes 0;
 * - a rekey the peer asks for (`admitRekey`) is a key exchange like a handshake: it takes a token
 *   from the same per-address and global buckets, in the same order, and is refused (the tunnel
 *   closes) when none is left. The concurrent-connection limit does not apply to it.
 */
import { isIP } from 'node:net';
import { ErrorCode, qtError } from '../errors.js';
import type { AdmissionVerdict, ConnectionAdmission, PeerAddress } from '../tunnel/observer.js';

export type { AdmissionVerdict };
import { maskAddress, type Logger } from './logger.js';

/**
 * Options of {@link RateLimiter}. A limit left out (or 0) is not enforced. Rates are per second,
 * bursts are token-bucket sizes.
 */
export interface RateLimitOptions {
  /** Concurrent connections per address (handshaking or established). */
  maxConnectionsPerIp?: number;
  /** Handshakes (accepted connections) per second per address. */
  handshakesPerSecondPerIp?: number;
  /** Bucket size per address; 0 or undefined = max(1, ceil(handshakesPerSecondPerIp)). */
  handshakeBurstPerIp?: number;
  /** Handshakes per second over all addresses. */
  globalHandshakesPerSecond?: number;
  /** Global bucket size; 0 or undefined = max(1, ceil(globalHandshakesPerSecond)). */
  globalHandshakeBurst?: number;
  /** Clock in milliseconds (monotonic). Default `performance.now`. */
  now?: () => number;
  /** Rejections are logged at warn with the address masked, at most once per address per `logIntervalMs`. */
  logger?: Logger;
  /** Default 10,000 ms. */
  logIntervalMs?: number;
  /** IPv6 addresses are grouped by this prefix length (1-128). Default 64; 128 keys each address. */
  ipv6PrefixLength?: number;
  /** Bound on remembered addresses. Default 65,536. */
  maxTrackedAddresses?: number;
}

/** Counters of a {@link RateLimiter}. */
export interface RateLimiterStats {
  /** Connections admitted. */
  admitted: number;
  /** Connections refused by the concurrent-connections-per-address limit. */
  rejectedConnections: number;
  /** Connections refused by a handshake rate (per address or global). */
  rejectedHandshakes: number;
  /** Of the handshake rejections, those from the global bucket. */
  rejectedGlobal: number;
  /** Rekeys refused by a handshake bucket (per address or global). */
  rejectedRekeys: number;
  /** Addresses (IPv6: prefixes) remembered now, at most `maxTrackedAddresses`. */
  trackedAddresses: number;
}

class TokenBucket {
  tokens: number;
  last: number;

  constructor(
    readonly rate: number,
    readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.last = now;
  }

  refill(now: number): void {
    const elapsed = now - this.last;
    if (elapsed > 0) {
      this.tokens = Math.min(this.burst, this.tokens + (elapsed / 1000) * this.rate);
      this.last = now;
    } else if (elapsed < 0) {
      this.last = now; // the clock went back: never mint tokens for it
    }
  }

  /** Full at `now` (so forgetting it changes nothing). */
  fullAt(now: number): boolean {
    return this.tokens + ((now - this.last) / 1000) * this.rate >= this.burst;
  }
}

interface Entry {
  active: number;
  bucket: TokenBucket | undefined;
  lastLog: number;
  suppressed: number;
}

function limit(value: number | undefined, name: string): number {
  if (value === undefined) return 0;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw qtError(ErrorCode.INVALID_ARGUMENT, `${name} must be a non-negative number`);
  return value;
}

function defaultBurst(rate: number, burst: number): number {
  return burst > 0 ? burst : Math.max(1, Math.ceil(rate));
}

const SWEEP_INTERVAL_MS = 60_000;

/** Per-address and global admission control; pass it as `listen({ admission })`. */
export class RateLimiter implements ConnectionAdmission {
  private readonly maxConnections: number;
  private readonly ipRate: number;
  private readonly ipBurst: number;
  private readonly global: TokenBucket | undefined;
  private readonly now: () => number;
  private readonly logger: Logger | undefined;
  private readonly logIntervalMs: number;
  private readonly ipv6Prefix: number;
  private readonly maxTracked: number;
  private readonly entries = new Map<string, Entry>();
  private lastSweep: number;
  /** Sweep when the map grows past this (amortised: entries with open connections cannot go). */
  private sweepAt: number;
  private globalLog = { last: -Infinity, suppressed: 0 };
  private readonly counters = { admitted: 0, rejectedConnections: 0, rejectedHandshakes: 0, rejectedGlobal: 0, rejectedRekeys: 0 };

  constructor(options: RateLimitOptions = {}) {
    const maxConnections = limit(options.maxConnectionsPerIp, 'maxConnectionsPerIp');
    this.maxConnections = maxConnections > 0 ? Math.max(1, Math.floor(maxConnections)) : 0;
    this.ipRate = limit(options.handshakesPerSecondPerIp, 'handshakesPerSecondPerIp');
    this.ipBurst = defaultBurst(this.ipRate, limit(options.handshakeBurstPerIp, 'handshakeBurstPerIp'));
    const globalRate = limit(options.globalHandshakesPerSecond, 'globalHandshakesPerSecond');
    const globalBurst = defaultBurst(globalRate, limit(options.globalHandshakeBurst, 'globalHandshakeBurst'));
    this.now = options.now ?? (() => performance.now());
    if (typeof this.now !== 'function') throw qtError(ErrorCode.INVALID_ARGUMENT, 'now must be a function');
    const start = this.now();
    this.lastSweep = start;
    this.global = globalRate > 0 ? new TokenBucket(globalRate, globalBurst, start) : undefined;
    this.logger = options.logger?.child({ component: 'rate_limit' });
    this.logIntervalMs = limit(options.logIntervalMs ?? 10_000, 'logIntervalMs');
    const prefix = options.ipv6PrefixLength ?? 64;
    if (!Number.isInteger(prefix) || prefix < 1 || prefix > 128) throw qtError(ErrorCode.INVALID_ARGUMENT, 'ipv6PrefixLength must be an integer from 1 to 128');
    this.ipv6Prefix = prefix;
    const maxTracked = options.maxTrackedAddresses ?? 65_536;
    if (!Number.isInteger(maxTracked) || maxTracked < 1) throw qtError(ErrorCode.INVALID_ARGUMENT, 'maxTrackedAddresses must be a positive integer');
    this.maxTracked = maxTracked;
    this.sweepAt = maxTracked;
  }

  /** The key an address is limited under (see the module comment). */
  keyOf(address: string | undefined): string {
    if (typeof address !== 'string' || address === '') return 'unknown';
    const bare = address.replace(/%.*$/, '').toLowerCase();
    const kind = isIP(bare);
    if (kind === 4) return bare;
    if (kind !== 6) return bare;
    const groups = ipv6Groups(bare);
    if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
      return `${groups[6]! >> 8}.${groups[6]! & 0xff}.${groups[7]! >> 8}.${groups[7]! & 0xff}`;
    }
    return ipv6Prefix(groups, this.ipv6Prefix);
  }

  /** The entry of an address, created on first sight (sweeping first when due). */
  private entryOf(peer: PeerAddress | undefined, now: number): Entry {
    const key = this.keyOf(peer?.address);
    if (now - this.lastSweep >= SWEEP_INTERVAL_MS || this.entries.size >= this.sweepAt) this.sweep(now);
    let entry = this.entries.get(key);
    if (entry === undefined) {
      entry = { active: 0, bucket: this.ipRate > 0 ? new TokenBucket(this.ipRate, this.ipBurst, now) : undefined, lastLog: -Infinity, suppressed: 0 };
      this.entries.set(key, entry);
    }
    return entry;
  }

  /** Decides on one accepted connection; an admitted one must be released when it closes. */
  admit(peer: PeerAddress): AdmissionVerdict {
    const now = this.now();
    const entry = this.entryOf(peer, now);
    if (this.maxConnections > 0 && entry.active >= this.maxConnections) {
      this.counters.rejectedConnections++;
      this.logRejection(entry, now, peer, 'connection rate limit exceeded', { limit: 'connections_per_ip', max_connections: this.maxConnections });
      return { ok: false, reason: 'connection' };
    }
    if (entry.bucket) {
      entry.bucket.refill(now);
      if (entry.bucket.tokens < 1) {
        this.counters.rejectedHandshakes++;
        this.logRejection(entry, now, peer, 'handshake rate limit exceeded', { limit: 'handshakes_per_ip', rate: this.ipRate, burst: this.ipBurst });
        return { ok: false, reason: 'handshake' };
      }
    }
    if (this.global) {
      this.global.refill(now);
      if (this.global.tokens < 1) {
        this.counters.rejectedHandshakes++;
        this.counters.rejectedGlobal++;
        this.logGlobal(now, peer, 'global handshake rate limit exceeded');
        return { ok: false, reason: 'handshake' };
      }
      this.global.tokens -= 1;
    }
    if (entry.bucket) entry.bucket.tokens -= 1;
    entry.active++;
    this.counters.admitted++;
    let released = false;
    const e = entry;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        if (e.active > 0) e.active--;
      },
    };
  }

  /**
   * Decides on a rekey the peer asked for: true takes one token from the address's bucket and one
   * from the global bucket; false (no token left in either) refuses it, and the tunnel closes.
   */
  admitRekey(peer: PeerAddress): boolean {
    const now = this.now();
    const entry = this.entryOf(peer, now);
    if (entry.bucket) {
      entry.bucket.refill(now);
      if (entry.bucket.tokens < 1) {
        this.counters.rejectedRekeys++;
        this.logRejection(entry, now, peer, 'rekey rate limit exceeded', { limit: 'handshakes_per_ip', rate: this.ipRate, burst: this.ipBurst });
        return false;
      }
    }
    if (this.global) {
      this.global.refill(now);
      if (this.global.tokens < 1) {
        this.counters.rejectedRekeys++;
        this.logGlobal(now, peer, 'global handshake rate limit exceeded by a rekey');
        return false;
      }
      this.global.tokens -= 1;
    }
    if (entry.bucket) entry.bucket.tokens -= 1;
    return true;
  }

  /** Open connections currently counted for an address (or its key). */
  activeConnections(address: string): number {
    return this.entries.get(this.keyOf(address))?.active ?? 0;
  }

  /** The counters since the limiter was created. */
  stats(): RateLimiterStats {
    return { ...this.counters, trackedAddresses: this.entries.size };
  }

  /**
   * Drops idle entries (no open connection, full bucket, nothing to log); then, over the cap, the
   * oldest entries without an open connection (their buckets restart full: a bounded leak of the
   * limit, never of memory). Entries with open connections always stay, so their counts are right.
   */
  private sweep(now: number): void {
    this.lastSweep = now;
    for (const [key, e] of this.entries) {
      if (e.active === 0 && (e.bucket === undefined || e.bucket.fullAt(now)) && now - e.lastLog >= this.logIntervalMs) this.entries.delete(key);
    }
    if (this.entries.size >= this.maxTracked) {
      for (const [key, e] of this.entries) {
        if (this.entries.size < this.maxTracked) break;
        if (e.active === 0) this.entries.delete(key);
      }
    }
    this.sweepAt = Math.max(this.maxTracked, Math.ceil(this.entries.size * 1.25));
  }

  private logRejection(entry: Entry, now: number, peer: PeerAddress | undefined, msg: string, fields: Record<string, unknown>): void {
    if (!this.logger) return;
    if (now - entry.lastLog < this.logIntervalMs) {
      entry.suppressed++;
      return;
    }
    const suppressed = entry.suppressed;
    entry.lastLog = now;
    entry.suppressed = 0;
    this.logger.warn(msg, { remote_ip: maskAddress(peer?.address), ...fields, ...(suppressed > 0 ? { suppressed } : {}) });
  }

  private logGlobal(now: number, peer: PeerAddress | undefined, msg: string): void {
    if (!this.logger) return;
    if (now - this.globalLog.last < this.logIntervalMs) {
      this.globalLog.suppressed++;
      return;
    }
    const suppressed = this.globalLog.suppressed;
    this.globalLog = { last: now, suppressed: 0 };
    this.logger.warn(msg, {
      remote_ip: maskAddress(peer?.address),
      limit: 'handshakes_global',
      rate: this.global!.rate,
      burst: this.global!.burst,
      ...(suppressed > 0 ? { suppressed } : {}),
    });
  }
}

/** The 8 groups of a valid IPv6 address (a trailing dotted quad counts as two). */
function ipv6Groups(address: string): number[] {
  const [head, tail] = address.split('::') as [string, string | undefined];
  const expand = (part: string | undefined) =>
    part === undefined || part === ''
      ? []
      : part.split(':').flatMap((g) => {
          if (!g.includes('.')) return [parseInt(g, 16)];
          const [a, b, c, d] = g.split('.').map(Number) as [number, number, number, number];
          return [(a << 8) | b, (c << 8) | d];
        });
  const h = expand(head);
  const t = expand(tail);
  return tail === undefined ? h : [...h, ...Array<number>(8 - h.length - t.length).fill(0), ...t];
}

/** The first `bits` bits of an IPv6 address, as `a:b:c:d:0:0:0:0/bits` (the full address for 128). */
function ipv6Prefix(groups: number[], bits: number): string {
  const out: string[] = [];
  for (let i = 0; i < 8; i++) {
    const keep = Math.max(0, Math.min(16, bits - i * 16));
    const mask = keep === 0 ? 0 : (0xffff << (16 - keep)) & 0xffff;
    out.push(((groups[i] ?? 0) & mask).toString(16));
  }
  return bits === 128 ? out.join(':') : `${out.join(':')}/${bits}`;
}
