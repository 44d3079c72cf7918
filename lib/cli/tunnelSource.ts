/**
 * Where `quantum-vpn forward`'s client side gets the tunnel for each accepted TCP connection:
 * a dial of its own (the default), or with --pool-min-idle a tunnel pre-opened by a pool
 * (lib/pool), so the connection does not wait for a post-quantum handshake; the pool refills in
 * the background.
 */
import type { Logger } from '../ops/index.js';
import { registerTunnelPoolMetrics } from '../pool/poolMetrics.js';
import { createTunnelPool } from '../pool/tunnelPool.js';
import { dial } from '../tunnel/dial.js';
import type { DialOptions } from '../tunnel/options.js';
import type { Tunnel } from '../tunnel/tunnel.js';
import { type FlagSpec, type FlagValues, parseDuration, UsageError } from './args.js';
import { describeError, type Observability } from './common.js';

/** The client side's pool flags (the server side refuses them). */
export const POOL_FLAGS: FlagSpec[] = [
  {
    name: 'pool-min-idle',
    kind: 'int',
    metavar: 'N',
    default: 0,
    defaultText: '0: each connection dials its own tunnel',
    help: 'Client side: keep N tunnels open and ready; each accepted connection takes one at once (no handshake to wait for) and the pool opens a replacement in the background',
  },
  {
    name: 'pool-max-lifetime',
    kind: 'string',
    metavar: 'DURATION',
    default: '0',
    defaultText: '0: no limit',
    help: 'Client side, with --pool-min-idle: replace a ready tunnel that has waited this long unused (before a server or middlebox idle timeout cuts it)',
  },
];

/** Checks the pool flags before anything starts; refuses them where they mean nothing (the server side). */
export function checkPoolFlags(flags: FlagValues, given: ReadonlySet<string>, serverSide: boolean): void {
  if (serverSide) {
    for (const { name } of POOL_FLAGS) if (given.has(name)) throw new UsageError(`--${name} applies to the client side (--connect) only`);
    return;
  }
  parseDuration(String(flags['pool-max-lifetime'] ?? '0'), '--pool-max-lifetime');
}

/** Gives one tunnel per forwarded connection. */
export interface TunnelSource {
  /** A tunnel for one connection, owned by the caller from then on. */
  open(signal: AbortSignal): Promise<Tunnel>;
  /** Closes the tunnels opened ahead (close_notify) and stops opening more. */
  close(): Promise<void>;
}

export interface TunnelSourceSetup {
  /** `host:port` of the forward server. */
  target: string;
  /** The dial options of one tunnel (resolved per dial: pinned keys are looked up per host). */
  dialOptions(signal?: AbortSignal): Promise<DialOptions>;
  connectTimeoutMs: number;
  handshakeTimeoutMs: number;
  obs: Observability;
  logger: Logger;
}

/** Tunnels beyond --pool-min-idle that may be in handshakes at once for connections that found none ready. */
const BURST_DIALS = 64;
/** Connections waiting for a tunnel at once; one more is reset at once. */
const MAX_WAITING = 1024;

/** A dial per connection, or (--pool-min-idle N > 0) a pool of pre-opened tunnels. */
export function tunnelSource(flags: FlagValues, setup: TunnelSourceSetup): TunnelSource {
  const minIdle = Number(flags['pool-min-idle'] ?? 0);
  const maxLifetimeMs = parseDuration(String(flags['pool-max-lifetime'] ?? '0'), '--pool-max-lifetime');
  if (minIdle === 0) {
    return {
      open: (signal) => setup.dialOptions(signal).then((options) => dial(setup.target, options)),
      close: () => Promise.resolve(),
    };
  }
  const pool = createTunnelPool(setup.target, () => setup.dialOptions(), {
    minIdle,
    max: minIdle + BURST_DIALS,
    maxLifetimeMs,
    idleTimeoutMs: 30_000, // tunnels beyond minIdle (dialed for a connection that left) do not linger
    acquireTimeoutMs: setup.connectTimeoutMs + setup.handshakeTimeoutMs, // as long as a dial of its own could take
    maxWaiters: MAX_WAITING,
  });
  const metrics = registerTunnelPoolMetrics(pool, setup.obs.metrics.registry, { prefix: setup.obs.metrics.prefix, labels: { ...setup.obs.metrics.labels } });
  // Failures that a connection waits for are logged with it; these are the background refills.
  pool.on('dialFailure', (e: unknown) => {
    if (pool.stats().waiters === 0) setup.logger.warn('cannot pre-open a tunnel', { target: setup.target, error: describeError(e) });
  });
  setup.logger.info('tunnel pool', { target: setup.target, minIdle, maxLifetimeMs });
  return {
    open: (signal) => pool.take({ signal }),
    close: async () => {
      await pool.close();
      metrics.unregister();
    },
  };
}
