/** Options of createTunnelPool(), their defaults and checks, named once. */
import { invalidArgument } from '../errors.js';
import { resolveLimit, resolveTimeout } from '../tunnel/options.js';

/** How a {@link TunnelPool} sizes, ages, checks and hands out its tunnels. */
export interface TunnelPoolOptions {
  /** Most tunnels the pool holds at once: idle, leased, being checked and being dialed. Default 10. */
  max?: number;
  /**
   * Idle tunnels kept open and ready (on top of the leased ones, within `max`); the pool dials in
   * the background to get back to it after a lease, a `take()` or a failure. Default 0.
   */
  minIdle?: number;
  /** An idle tunnel beyond `minIdle` is closed after this long unused (ms). 0 = never. Default 30,000. */
  idleTimeoutMs?: number;
  /** A tunnel is retired when it is this old (ms): closed when idle, or when its lease ends. 0 = no limit. Default 0. */
  maxLifetimeMs?: number;
  /**
   * An idle tunnel is checked with `tunnel.ping()` (the protocol's authenticated Ping) once it has
   * been idle this long since its last check (ms). 0 = no checks. Default 30,000.
   */
  healthCheckIntervalMs?: number;
  /** A ping without its pong within this long fails the check: the tunnel is destroyed and replaced (ms). Default 5,000. */
  healthCheckTimeoutMs?: number;
  /** `acquire()` / `take()` gives up with ERR_QT_POOL_TIMEOUT after waiting this long (ms). 0 = wait forever. Default 10,000. */
  acquireTimeoutMs?: number;
  /** Callers that may wait at once; one more is refused at once with ERR_QT_POOL_EXHAUSTED. Default 1,000. */
  maxWaiters?: number;
  /** After a failed dial, the pool waits this long before the next (ms), doubling with each failure in a row. Default 100. */
  dialBackoffMs?: number;
  /** The longest wait between two dials while they keep failing (ms). Default 10,000. */
  dialBackoffMaxMs?: number;
  /** `close()` waits this long for leased tunnels to come back before closing them (ms). Default 5,000. */
  drainTimeoutMs?: number;
}

/** The options with every default filled in. */
export type ResolvedPoolOptions = Required<TunnelPoolOptions>;

function count(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 0) invalidArgument(`${name} must be a non-negative integer`);
  return value;
}

/** Checks the options and fills in the defaults (throws ERR_QT_INVALID_ARGUMENT). */
export function resolvePoolOptions(o: TunnelPoolOptions = {}): ResolvedPoolOptions {
  if (typeof o !== 'object' || o === null) invalidArgument('pool options must be an object');
  const max = resolveLimit(o.max, 10, 'max');
  const minIdle = count(o.minIdle, 0, 'minIdle');
  if (minIdle > max) invalidArgument('minIdle must not exceed max');
  const dialBackoffMs = resolveLimit(o.dialBackoffMs, 100, 'dialBackoffMs');
  const dialBackoffMaxMs = resolveLimit(o.dialBackoffMaxMs, 10_000, 'dialBackoffMaxMs');
  if (dialBackoffMaxMs < dialBackoffMs) invalidArgument('dialBackoffMaxMs must not be below dialBackoffMs');
  return {
    max,
    minIdle,
    idleTimeoutMs: resolveTimeout(o.idleTimeoutMs, 30_000, 'idleTimeoutMs'),
    maxLifetimeMs: resolveTimeout(o.maxLifetimeMs, 0, 'maxLifetimeMs'),
    healthCheckIntervalMs: resolveTimeout(o.healthCheckIntervalMs, 30_000, 'healthCheckIntervalMs'),
    healthCheckTimeoutMs: resolveLimit(o.healthCheckTimeoutMs, 5_000, 'healthCheckTimeoutMs'),
    acquireTimeoutMs: resolveTimeout(o.acquireTimeoutMs, 10_000, 'acquireTimeoutMs'),
    maxWaiters: count(o.maxWaiters, 1_000, 'maxWaiters'),
    dialBackoffMs,
    dialBackoffMaxMs,
    drainTimeoutMs: resolveTimeout(o.drainTimeoutMs, 5_000, 'drainTimeoutMs'),
  };
}
