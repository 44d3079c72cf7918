/**
 * Prometheus metrics (prom-client) fed by the tunnel's observer hooks. Each TunnelMetrics registers
 * its metrics in its own Registry unless one is given; it never touches prom-client's global
 * default registry unless that registry is passed in explicitly.
 *
 * Counting rules (where the Go reference was inconsistent, this is the fix):
 * - bytes_sent_total / bytes_received_total count plaintext application bytes both ways, the same
 *   way on both ends (the client's bytes_sent equals the server's bytes_received);
 * - packets_* count records;
 * - sessions_total counts established tunnels, sessions_failed_total failed handshakes;
 * - rekeys_initiated_total counts rekeys we started; rekeys_completed_total counts rekeys whose new
 *   keys are in use (on activation, on both ends), rekeys_failed_total rekeys that did not finish;
 * - auth_failures_total counts records that failed authentication and handshakes whose Finished or
 *   PSK did not verify (ERR_QT_HANDSHAKE_FAILED, ERR_QT_PSK_MISMATCH); decrypt_errors_total counts
 *   records that failed to open (an authentication failure too, so the two move together after
 *   the handshake). In protocol v2 a replayed, dropped or reordered record fails authentication
 *   (its nonce is its sequence number), so replay_attacks_blocked_total counts v1's only;
 * - handshake_duration_seconds is a histogram in seconds (the reference used whole milliseconds);
 * - rate_limit_*_total count refusals before any crypto, one counter per kind of limit
 *   (onRateLimited: connection, handshake, rekey, pending-handshakes);
 * - handshakes_pending is the number of handshakes in progress on the listener (one listener per
 *   instance gives an exact value; with several, it is the last one's report);
 * - tunnel_errors_unhandled_total{code} counts tunnel failures that no 'error' listener handled
 *   (the listener's `tunnelError` event); `code` is an ERR_QT_* code or `other`, so the number of
 *   series stays bounded whatever a peer does.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ErrorCode, qtError } from '../errors.js';
import { info as cryptoInfo } from '../crypto/info.js';
import type { HandshakeContext, HandshakeOutcome, HandshakeWatch, PeerAddress, RateLimitKind, RekeyWatch, TunnelObserver } from '../tunnel/observer.js';

export interface MetricsOptions {
  /** Where to register. Default: a new Registry (see {@link TunnelMetrics.registry}). */
  registry?: Registry;
  /** Metric name prefix. Default `quantum_vpn_`. */
  prefix?: string;
  /**
   * Whether the crypto core runs in FIPS mode (the `fips_mode` gauge): a function read at each
   * scrape, or a fixed value. Default: `crypto.info().fips` at each scrape.
   */
  fipsMode?: (() => boolean) | boolean;
  /** Constant labels on every metric of this instance (for example `{ service: 'quantum-vpn' }`). */
  labels?: Record<string, string>;
  /** Handshake histogram buckets, in seconds. */
  handshakeBuckets?: number[];
}

/** A synchronous view of the main counters (for /health, tests and CLI summaries). */
export interface MetricsSnapshot {
  /** Tunnels open now. */
  sessionsActive: number;
  /** Tunnels established since the metrics were created. */
  sessionsTotal: number;
  /** Handshakes that failed. */
  sessionsFailed: number;
  /** Plaintext bytes sent through tunnels. */
  bytesSent: number;
  /** Plaintext bytes received through tunnels. */
  bytesReceived: number;
  /** Key updates completed. */
  rekeysCompleted: number;
  /** Records or handshakes that failed authentication. */
  authFailures: number;
  /** Replayed records refused (protocol v1). */
  replayAttacksBlocked: number;
  /** Seconds since the metrics were created. */
  uptimeSeconds: number;
  /** Records sent (an extra counter, also used by /health's error rate). */
  packetsSent: number;
  /** Records received. */
  packetsReceived: number;
  /** Failures to encrypt a record (nonce budget, native failure). */
  encryptErrors: number;
  /** Records that failed to decrypt. */
  decryptErrors: number;
  /** Tunnels ended by a malformed or unexpected message. */
  protocolErrors: number;
  /** Key updates this side started. */
  rekeysInitiated: number;
  /** Key updates that failed. */
  rekeysFailed: number;
  /** Connections refused by admission control. */
  rateLimitedConnections: number;
  /** Handshakes refused by admission control. */
  rateLimitedHandshakes: number;
  /** Rekeys refused by admission control or the per-tunnel limit. */
  rateLimitedRekeys: number;
  /** Connections refused by the listener's caps on handshakes in progress. */
  rateLimitedPendingHandshakes: number;
  /** TCP connections accepted by listeners. */
  connectionsAccepted: number;
  /** Tunnels established by resuming a session from a ticket. */
  sessionsResumed: number;
  /** Handshakes in progress, as last reported by the listener. */
  handshakesPending: number;
  /** Tunnel failures that no 'error' listener handled, all codes together. */
  tunnelErrorsUnhandled: number;
}

export const DEFAULT_PREFIX = 'quantum_vpn_';
/** From 0.5 ms (a loopback handshake is ~1-3 ms) to 10 s (a handshake near its timeout). */
export const DEFAULT_HANDSHAKE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

type CounterName =
  | 'sessionsTotal'
  | 'sessionsFailed'
  | 'sessionsResumed'
  | 'connectionsAccepted'
  | 'bytesSent'
  | 'bytesReceived'
  | 'packetsSent'
  | 'packetsReceived'
  | 'replayAttacksBlocked'
  | 'authFailures'
  | 'rekeysInitiated'
  | 'rekeysCompleted'
  | 'rekeysFailed'
  | 'encryptErrors'
  | 'decryptErrors'
  | 'protocolErrors'
  | 'rateLimitedConnections'
  | 'rateLimitedHandshakes'
  | 'rateLimitedRekeys'
  | 'rateLimitedPendingHandshakes'
  | 'tunnelErrorsUnhandled';

/** The counter of each onRateLimited kind. */
const RATE_LIMIT_COUNTER: Record<RateLimitKind, CounterName> = {
  connection: 'rateLimitedConnections',
  handshake: 'rateLimitedHandshakes',
  rekey: 'rateLimitedRekeys',
  'pending-handshakes': 'rateLimitedPendingHandshakes',
};

const ERROR_CODES: ReadonlySet<string> = new Set(Object.values(ErrorCode));

/** Metric name (after the prefix) and HELP of each counter. */
const COUNTERS: Record<CounterName, [string, string]> = {
  sessionsTotal: ['sessions_total', 'Total number of sessions established'],
  sessionsFailed: ['sessions_failed_total', 'Total number of failed handshakes'],
  sessionsResumed: ['sessions_resumed_total', 'Total number of sessions established by resumption'],
  connectionsAccepted: ['connections_accepted_total', 'Total number of TCP connections accepted by listeners (before admission control)'],
  bytesSent: ['bytes_sent_total', 'Total application (plaintext) bytes sent'],
  bytesReceived: ['bytes_received_total', 'Total application (plaintext) bytes received'],
  packetsSent: ['packets_sent_total', 'Total data records sent'],
  packetsReceived: ['packets_received_total', 'Total data records received'],
  replayAttacksBlocked: ['replay_attacks_blocked_total', 'Total replayed records dropped'],
  authFailures: ['auth_failures_total', 'Total authentication failures (records and handshake Finished messages)'],
  rekeysInitiated: ['rekeys_initiated_total', 'Total rekeys initiated by this end'],
  rekeysCompleted: ['rekeys_completed_total', 'Total rekeys whose new keys were activated'],
  rekeysFailed: ['rekeys_failed_total', 'Total rekeys that failed'],
  encryptErrors: ['encrypt_errors_total', 'Total encryption errors'],
  decryptErrors: ['decrypt_errors_total', 'Total records that failed to decrypt'],
  protocolErrors: ['protocol_errors_total', 'Total protocol errors that ended a tunnel'],
  rateLimitedConnections: ['rate_limit_connections_total', 'Total connections rejected by the per-address connection limit'],
  rateLimitedHandshakes: ['rate_limit_handshakes_total', 'Total connections rejected by a handshake rate limit'],
  rateLimitedRekeys: ['rate_limit_rekeys_total', 'Total rekeys refused by the handshake rate limits (the tunnel is closed)'],
  rateLimitedPendingHandshakes: ['rate_limit_pending_handshakes_total', 'Total connections dropped because too many handshakes were in progress'],
  tunnelErrorsUnhandled: ['tunnel_errors_unhandled_total', 'Total tunnel failures that no error listener handled, by ERR_QT_* code (or other)'],
};

/** Counters with a label of their own besides the constant labels. */
const LABELLED: Partial<Record<CounterName, string>> = { tunnelErrorsUnhandled: 'code' };

/**
 * Prometheus metrics for tunnels. Pass it as `observer` to listen() and/or dial() (one instance may
 * observe many tunnels and both roles), and expose `registry` (or use startObservabilityServer).
 *
 * @example
 * ```ts
 * import { listen, TunnelMetrics } from 'quantum-tunnel';
 *
 * const metrics = new TunnelMetrics({ labels: { service: 'db-tunnel' } });
 * const listener = listen({ port: 8443, observer: metrics });
 * // Prometheus text: await metrics.registry.metrics(); counters for /health: metrics.snapshot()
 * ```
 */
export class TunnelMetrics implements TunnelObserver {
  /** The registry holding these metrics: the one given, or a new one. */
  readonly registry: Registry;
  /** The prefix of every metric name (default {@link DEFAULT_METRICS_PREFIX}, `quantum_vpn_`). */
  readonly prefix: string;
  /** The constant labels on every metric of this instance (metrics registered beside them take the same). */
  readonly labels: Readonly<Record<string, string>>;
  private readonly labelNames: string[];
  private readonly counts: Record<CounterName, number>;
  private readonly counters: Record<CounterName, Counter<string>>;
  private readonly active: Gauge<string>;
  private readonly pending: Gauge<string>;
  private pendingCount = 0;
  private readonly handshakeDuration: Histogram<string>;
  private activeCount = 0;
  private readonly started = performance.now();
  private readonly fipsMode: () => boolean;

  constructor(options: MetricsOptions = {}) {
    const prefix = options.prefix ?? DEFAULT_PREFIX;
    if (typeof prefix !== 'string' || (prefix !== '' && !NAME.test(prefix))) throw qtError(ErrorCode.INVALID_ARGUMENT, 'metrics prefix must match [a-zA-Z_:][a-zA-Z0-9_:]*');
    const labels = { ...(options.labels ?? {}) };
    for (const [k, v] of Object.entries(labels)) {
      if (!LABEL.test(k) || k.startsWith('__') || k === 'le' || k === 'code') throw qtError(ErrorCode.INVALID_ARGUMENT, `invalid metric label name ${JSON.stringify(k)}`);
      if (typeof v !== 'string') throw qtError(ErrorCode.INVALID_ARGUMENT, `metric label ${k} must be a string`);
    }
    const buckets = options.handshakeBuckets ?? DEFAULT_HANDSHAKE_BUCKETS;
    if (!Array.isArray(buckets) || buckets.length === 0 || buckets.some((b) => typeof b !== 'number' || !(b > 0))) {
      throw qtError(ErrorCode.INVALID_ARGUMENT, 'handshakeBuckets must be positive numbers');
    }
    this.prefix = prefix;
    this.labels = labels;
    this.labelNames = Object.keys(labels);
    this.registry = options.registry ?? new Registry();
    const fips = options.fipsMode;
    this.fipsMode = typeof fips === 'function' ? fips : typeof fips === 'boolean' ? () => fips : () => cryptoInfo().fips;
    this.counts = Object.fromEntries(Object.keys(COUNTERS).map((k) => [k, 0])) as Record<CounterName, number>;

    const registered: string[] = [];
    const registers = [this.registry];
    const register = <M>(make: () => M, name: string): M => {
      try {
        const metric = make();
        registered.push(name);
        return metric;
      } catch (err) {
        for (const n of registered) this.registry.removeSingleMetric(n);
        throw qtError(ErrorCode.INVALID_ARGUMENT, `cannot register metric ${name} (is another TunnelMetrics with the same prefix on this registry?)`, { cause: err });
      }
    };
    const labelNames = this.labelNames;
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- prom-client calls collect() with the metric as `this`
    const self = this;

    this.counters = {} as Record<CounterName, Counter<string>>;
    for (const [key, [suffix, help]] of Object.entries(COUNTERS) as Array<[CounterName, [string, string]]>) {
      const name = prefix + suffix;
      const own = LABELLED[key];
      const counter = register(() => new Counter({ name, help, labelNames: own ? [...labelNames, own] : labelNames, registers }), name);
      // The series exists from the start (a labelled counter's series appear with their first value).
      if (labelNames.length > 0 && !own) counter.inc(labels, 0);
      this.counters[key] = counter;
    }
    const activeName = `${prefix}sessions_active`;
    this.active = register(() => new Gauge({ name: activeName, help: 'Number of currently active sessions', labelNames, registers }), activeName);
    this.setGauge(this.active, 0);
    const pendingName = `${prefix}handshakes_pending`;
    this.pending = register(() => new Gauge({ name: pendingName, help: 'Number of handshakes in progress on the listener', labelNames, registers }), pendingName);
    this.setGauge(this.pending, 0);
    const uptimeName = `${prefix}uptime_seconds`;
    register(
      () =>
        new Gauge({
          name: uptimeName,
          help: 'Seconds since the metrics were created',
          labelNames,
          registers,
          aggregator: 'max', // summed over cluster workers it would mean nothing: the oldest counts
          collect() {
            self.setGauge(this, self.uptimeSeconds());
          },
        }),
      uptimeName,
    );
    const fipsName = `${prefix}fips_mode`;
    register(
      () =>
        new Gauge({
          name: fipsName,
          help: 'Whether the crypto core runs in FIPS mode (1) or not (0)',
          labelNames,
          registers,
          aggregator: 'min', // over cluster workers: 1 only when every one runs in FIPS mode
          collect() {
            let on = false;
            try {
              on = self.fipsMode() === true;
            } catch {
              /* unknown reads as off */
            }
            self.setGauge(this, on ? 1 : 0);
          },
        }),
      fipsName,
    );
    const hsName = `${prefix}handshake_duration_seconds`;
    this.handshakeDuration = register(
      () => new Histogram({ name: hsName, help: 'Duration of successful handshakes in seconds', labelNames, buckets: [...buckets], registers }),
      hsName,
    );
    if (labelNames.length > 0) this.handshakeDuration.zero(labels);
  }

  private setGauge(g: Gauge<string>, value: number): void {
    if (this.labelNames.length > 0) g.set(this.labels, value);
    else g.set(value);
  }

  private count(name: CounterName, n = 1, extra?: Record<string, string>): void {
    if (!(n > 0)) return;
    this.counts[name] += n;
    const c = this.counters[name];
    if (extra) c.inc({ ...this.labels, ...extra }, n);
    else if (this.labelNames.length > 0) c.inc(this.labels, n);
    else c.inc(n);
  }

  private uptimeSeconds(): number {
    return (performance.now() - this.started) / 1000;
  }

  /** The main counters, read synchronously. */
  snapshot(): MetricsSnapshot {
    return { sessionsActive: this.activeCount, handshakesPending: this.pendingCount, ...this.counts, uptimeSeconds: this.uptimeSeconds() };
  }

  // ---- TunnelObserver -----------------------------------------------------------------------

  onConnection(_peer: PeerAddress): void {
    this.count('connectionsAccepted');
  }

  onRateLimited(kind: RateLimitKind, _peer: PeerAddress): void {
    if (Object.hasOwn(RATE_LIMIT_COUNTER, kind)) this.count(RATE_LIMIT_COUNTER[kind]);
  }

  onPendingHandshakes(count: number): void {
    if (!Number.isFinite(count) || count < 0) return;
    this.pendingCount = count;
    this.setGauge(this.pending, count);
  }

  onTunnelError(errorCode: string, _peer: PeerAddress): void {
    this.count('tunnelErrorsUnhandled', 1, { code: ERROR_CODES.has(errorCode) ? errorCode : 'other' });
  }

  onHandshakeStart(_context: HandshakeContext): HandshakeWatch {
    return {
      succeeded: (outcome: HandshakeOutcome) => {
        const seconds = Math.max(0, outcome.durationMs) / 1000;
        if (this.labelNames.length > 0) this.handshakeDuration.observe(this.labels, seconds);
        else this.handshakeDuration.observe(seconds);
      },
      failed: (code: string) => {
        this.count('sessionsFailed');
        if (code === ErrorCode.HANDSHAKE_FAILED || code === ErrorCode.PSK_MISMATCH) this.count('authFailures');
      },
    };
  }

  onTunnelOpen(info: { resumed: boolean }): void {
    this.count('sessionsTotal');
    if (info.resumed) this.count('sessionsResumed');
    this.activeCount++;
    this.setGauge(this.active, this.activeCount);
  }

  onTraffic(direction: 'sent' | 'received', bytes: number, records: number): void {
    if (direction === 'sent') {
      this.count('bytesSent', bytes);
      this.count('packetsSent', records);
    } else {
      this.count('bytesReceived', bytes);
      this.count('packetsReceived', records);
    }
  }

  onReplayBlocked(_peer: PeerAddress): void {
    this.count('replayAttacksBlocked');
  }

  onAuthFailure(_peer: PeerAddress): void {
    this.count('authFailures');
    this.count('decryptErrors');
  }

  onProtocolError(_errorCode: string, _peer: PeerAddress): void {
    this.count('protocolErrors');
  }

  onEncryptError(_errorCode: string): void {
    this.count('encryptErrors');
  }

  onRekeyStart(initiatedByUs: boolean): RekeyWatch {
    if (initiatedByUs) this.count('rekeysInitiated');
    return {
      succeeded: () => this.count('rekeysCompleted'),
      failed: () => this.count('rekeysFailed'),
    };
  }

  onTunnelClose(_info: { error?: string; bytesSent: number; bytesReceived: number }): void {
    if (this.activeCount > 0) this.activeCount--;
    this.setGauge(this.active, this.activeCount);
  }
}
