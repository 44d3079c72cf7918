/**
 * Prometheus metrics of a tunnel pool on a prom-client registry: how many tunnels it holds by
 * state, callers waiting, time to get a tunnel, dials that failed, tunnels opened and closed.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { QuantumTunnelError } from '../errors.js';
import { DEFAULT_PREFIX } from '../ops/metrics.js';
import type { TunnelPool } from './tunnelPool.js';

/** Options of {@link registerTunnelPoolMetrics}. */
export interface TunnelPoolMetricsOptions {
  /** Metric name prefix. Default `quantum_vpn_` (as the tunnel metrics). */
  prefix?: string;
  /** Constant labels on every series, e.g. `{ pool: 'db' }` to tell several pools apart (each needs its own prefix or registry otherwise). */
  labels?: Record<string, string>;
}

/** What {@link registerTunnelPoolMetrics} returns. */
export interface TunnelPoolMetrics {
  /** Removes the metrics from the registry and stops listening to the pool. */
  unregister(): void;
}

/** Seconds a caller waited for a tunnel: an idle one is microseconds, a dial is a handshake (ms to s). */
const ACQUIRE_BUCKETS = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10];

/**
 * Registers on `registry`: `<prefix>pool_tunnels{state=idle|leased|checking|dialing}`,
 * `<prefix>pool_waiters`, `<prefix>pool_acquire_seconds` (histogram),
 * `<prefix>pool_dial_failures_total{code}`, `<prefix>pool_tunnels_created_total`,
 * `<prefix>pool_tunnels_destroyed_total`, `<prefix>pool_tunnels_taken_total` and
 * `<prefix>pool_health_check_failures_total`. Gauges and totals are read from `pool.stats()` at
 * scrape time.
 */
export function registerTunnelPoolMetrics(pool: TunnelPool, registry: Registry, options: TunnelPoolMetricsOptions = {}): TunnelPoolMetrics {
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  const labels = { ...options.labels };
  const constant = Object.keys(labels);
  const registers = [registry];
  const tunnels = new Gauge({
    name: `${prefix}pool_tunnels`,
    help: 'Tunnels the pool holds, by state (dialing: handshakes in progress)',
    labelNames: [...constant, 'state'],
    registers,
    collect() {
      const s = pool.stats();
      for (const [state, n] of [['idle', s.idle], ['leased', s.leased], ['checking', s.checking], ['dialing', s.pendingDials]] as const) this.set({ ...labels, state }, n);
    },
  });
  const waiters = new Gauge({
    name: `${prefix}pool_waiters`,
    help: 'Callers waiting for a tunnel from the pool',
    labelNames: constant,
    registers,
    collect() {
      this.set(labels, pool.stats().waiters);
    },
  });
  const acquire = new Histogram({ name: `${prefix}pool_acquire_seconds`, help: 'Time from acquire() or take() until the caller got a tunnel', labelNames: constant, buckets: ACQUIRE_BUCKETS, registers });
  const dialFailures = new Counter({ name: `${prefix}pool_dial_failures_total`, help: 'Dials of the pool that failed, by error code', labelNames: [...constant, 'code'], registers });
  const totals = [
    totalFromStats('tunnels_created_total', 'Tunnels the pool opened', (s) => s.created),
    totalFromStats('tunnels_destroyed_total', 'Tunnels the pool closed or lost (timeouts, lifetime, failed checks, closed by the peer)', (s) => s.destroyed),
    totalFromStats('tunnels_taken_total', 'Tunnels handed over for good by take()', (s) => s.taken),
    totalFromStats('health_check_failures_total', 'Idle tunnels whose ping failed or timed out', (s) => s.healthCheckFailures),
  ];
  function totalFromStats(name: string, help: string, read: (s: ReturnType<TunnelPool['stats']>) => number): Counter<string> {
    let seen = 0;
    return new Counter({
      name: `${prefix}pool_${name}`,
      help,
      labelNames: constant,
      registers,
      collect() {
        const now = read(pool.stats());
        this.inc(labels, now - seen); // counters only go up: add what happened since the last scrape
        seen = now;
      },
    });
  }
  const names = [tunnels, waiters, acquire, dialFailures, ...totals].map((m) => (m as unknown as { name: string }).name);
  acquire.zero(labels);
  const onAcquire = (waitMs: number) => acquire.observe(labels, waitMs / 1000);
  const onDialFailure = (err: QuantumTunnelError) => dialFailures.inc({ ...labels, code: typeof err.code === 'string' ? err.code : 'unknown' });
  pool.on('acquire', onAcquire);
  pool.on('dialFailure', onDialFailure);
  return {
    unregister() {
      pool.off('acquire', onAcquire);
      pool.off('dialFailure', onDialFailure);
      for (const name of names) registry.removeSingleMetric(name);
    },
  };
}
