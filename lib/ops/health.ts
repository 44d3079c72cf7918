/**
 * The observability HTTP server: `/metrics` (Prometheus text), `/health` (JSON report), `/healthz`
 * (liveness) and `/readyz` (readiness). It binds 127.0.0.1 by default (the reference bound every
 * interface), answers GET and HEAD only, and never serves anything else.
 *
 * Status of /health, from its checks:
 * - any check `fail` → `unhealthy`, HTTP 503;
 * - otherwise any check `warn` → `degraded`, HTTP 200 (built-in warnings: not ready, or an error
 *   rate above `errorRateThreshold`);
 * - otherwise `healthy`, HTTP 200.
 * Built-in checks: `fips` (the FIPS provider's self-tests, see {@link fipsSelfTestCheck}),
 * `readiness`, and `error_rate` when metrics are given; user checks are added (and win on a name
 * clash). A check that throws counts as `fail`.
 *
 * /readyz is 503 while `ready()` is false (or throws) and while any check fails.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ErrorCode, qtError } from '../errors.js';
import { status as fipsStatus } from '../fips/index.js';
import type { Logger } from './logger.js';
import type { MetricsSnapshot } from './metrics.js';

/** The outcome of one health check: `fail` makes /health unhealthy and /readyz 503, `warn` degraded. */
export type CheckStatus = 'pass' | 'warn' | 'fail';
/** One named check of /health and /readyz (the `checks` option, the built-in `fips` check). */
export interface CheckResult {
  /** Pass, warn or fail. */
  status: CheckStatus;
  /** A short human-readable reason, shown in the /health body. */
  detail?: string;
}
/**
 * The overall state in /health: `unhealthy` (HTTP 503) when a check fails, `degraded` when one
 * warns (built in: not ready, or an error rate above `errorRateThreshold`), else `healthy`.
 */
export type HealthStatus = 'healthy' | 'degraded' | 'unhealthy';

/**
 * What /metrics and /health read: a TunnelMetrics, or anything with a registry and a snapshot (a
 * cluster primary's sum of its workers' metrics, lib/cli/workers.ts).
 */
export interface MetricsSource {
  /** The Prometheus registry (prom-client's `Registry` fits) that /metrics serves. */
  readonly registry: {
    /** The metrics in the Prometheus text exposition format. */
    metrics(): Promise<string>;
    /** The Content-Type of that text. */
    readonly contentType: string;
  };
  /** The counters that /health reports and computes its error rate from. */
  snapshot(): MetricsSnapshot;
}

/** Options of {@link startObservabilityServer}. */
export interface ObservabilityServerOptions {
  /** Default `127.0.0.1`. */
  host?: string;
  /** 0 picks a free port (see `address()`). */
  port: number;
  /** The version reported in /health (usually {@link VERSION}). */
  version: string;
  /** Serves /metrics from `metrics.registry` and adds counters to /health. Without it /metrics is 404. */
  metrics?: MetricsSource;
  /** Whether the service accepts tunnels (listening and not shutting down). */
  ready: () => boolean;
  /** Extra health checks, evaluated on every /health and /readyz request. */
  checks?: () => Record<string, CheckResult>;
  /**
   * Awaited before every /metrics, /health and /readyz answer, to gather what `ready`, `checks`
   * and `metrics` then read synchronously (a cluster primary asks its workers). If it rejects, the
   * answer uses what was gathered before, and the failure is logged.
   */
  refresh?: () => Promise<void>;
  /** Where request failures and failed `refresh` calls are logged. Default: nothing is logged. */
  logger?: Logger;
  /** The built-in `fips` check: true (default), false, or a replacement. */
  fipsCheck?: boolean | (() => CheckResult);
  /** /health is degraded above this error rate (errors per record). Default 0.01. */
  errorRateThreshold?: number;
}

/** A running observability server, from {@link startObservabilityServer}. */
export interface ObservabilityServer {
  /** The address and port it listens on (the port chosen when `port` was 0). */
  address(): AddressInfo;
  /** Stops listening and closes open connections; resolves when the server has closed. */
  close(): Promise<void>;
}

/** The body of /health. */
export interface HealthReport {
  /** The overall state (see {@link HealthStatus}). */
  status: HealthStatus;
  /** When the report was made, ISO 8601 UTC. */
  timestamp: string;
  /** Human form, e.g. `1d02h03m04s`, `3m05s`, `7s`. */
  uptime: string;
  /** Seconds since the server started (whole seconds). */
  uptime_seconds: number;
  /** The `version` option. */
  version: string;
  /** What the `ready` option returned. */
  ready: boolean;
  /** Every check by name: the built-in `fips` check and the `checks` option's. */
  checks: Record<string, CheckResult>;
  /** The main counters, when a `metrics` source was given. */
  metrics?: {
    /** Tunnels open now. */
    sessions_active: number;
    /** Tunnels established since start. */
    sessions_total: number;
    /** Handshakes that failed since start. */
    sessions_failed: number;
    /** Plaintext bytes sent through tunnels. */
    bytes_sent: number;
    /** Plaintext bytes received through tunnels. */
    bytes_received: number;
    /** Key updates completed. */
    rekeys_completed: number;
    /** Records or handshakes that failed authentication. */
    auth_failures: number;
    /** Replayed records refused (protocol v1). */
    replay_attacks_blocked: number;
    /** Errors per record (encrypt, decrypt and protocol errors over records sent and received). */
    error_rate: number;
  };
}

/**
 * The FIPS module's state, from `fips.status()`: `fail` when the crypto module is in its error
 * state (a self-test, integrity or conditional test failed), or when FIPS mode is on without
 * passed self-tests; `pass` otherwise (in standard mode with `detail` saying so).
 */
export function fipsSelfTestCheck(): CheckResult {
  const st = fipsStatus();
  if (st.errorState.failed) return { status: 'fail', detail: `crypto module in error state: ${st.errorState.reason}` };
  if (st.mode !== 'fips') return { status: 'pass', detail: 'standard mode (FIPS mode not enabled)' };
  if (!st.selfTests?.passed) return { status: 'fail', detail: 'FIPS mode without passed self-tests' };
  if (st.integrity && !st.integrity.verified) return { status: 'fail', detail: 'FIPS mode with a failed integrity check' };
  const provider = st.provider ? `${st.provider.name} ${st.provider.version}` : 'FIPS provider';
  return {
    status: 'pass',
    detail: `FIPS mode${st.strict ? ' (strict)' : ''}: ${provider}, ${st.selfTests.results.length} self-tests passed at ${st.selfTests.ranAt}, ${st.conditionalTests.failures} conditional test failures`,
  };
}

/** `1d02h03m04s`, `2h03m04s`, `3m04s`, `4s`. */
export function formatUptime(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const p = (n: number) => String(n).padStart(2, '0');
  if (d > 0) return `${d}d${p(h)}h${p(m)}m${p(sec)}s`;
  if (h > 0) return `${h}h${p(m)}m${p(sec)}s`;
  if (m > 0) return `${m}m${p(sec)}s`;
  return `${sec}s`;
}

const STATUSES = new Set<CheckStatus>(['pass', 'warn', 'fail']);

function validCheck(r: unknown): CheckResult {
  if (r && typeof r === 'object' && STATUSES.has((r as CheckResult).status)) {
    const { status, detail } = r as CheckResult;
    return detail === undefined ? { status } : { status, detail: String(detail) };
  }
  return { status: 'fail', detail: 'invalid check result' };
}

/** Builds the /health report (exported for the CLI and tests). */
export function healthReport(
  options: ObservabilityServerOptions,
  startedAt: number,
): {
  /** The /health body. */
  report: HealthReport;
  /** Whether /readyz answers 200. */
  ready: boolean;
} {
  const checks: Record<string, CheckResult> = {};
  if (options.fipsCheck !== false) {
    const fn = typeof options.fipsCheck === 'function' ? options.fipsCheck : fipsSelfTestCheck;
    try {
      checks.fips = validCheck(fn());
    } catch {
      checks.fips = { status: 'fail', detail: 'FIPS state could not be read' };
    }
  }
  let ready: boolean;
  try {
    ready = options.ready() === true;
  } catch {
    ready = false;
  }
  // Why it is not ready is for the other checks to say (shutting down, a backend down...).
  checks.readiness = ready ? { status: 'pass' } : { status: 'warn', detail: 'not ready' };
  let metrics: HealthReport['metrics'];
  if (options.metrics) {
    const s = options.metrics.snapshot();
    const records = s.packetsSent + s.packetsReceived;
    const errors = s.encryptErrors + s.decryptErrors + s.protocolErrors;
    const errorRate = records > 0 ? errors / records : 0;
    const threshold = options.errorRateThreshold ?? 0.01;
    checks.error_rate = errorRate > threshold ? { status: 'warn', detail: `${(errorRate * 100).toFixed(2)}% of records failed` } : { status: 'pass' };
    metrics = {
      sessions_active: s.sessionsActive,
      sessions_total: s.sessionsTotal,
      sessions_failed: s.sessionsFailed,
      bytes_sent: s.bytesSent,
      bytes_received: s.bytesReceived,
      rekeys_completed: s.rekeysCompleted,
      auth_failures: s.authFailures,
      replay_attacks_blocked: s.replayAttacksBlocked,
      error_rate: errorRate,
    };
  }
  if (options.checks) {
    try {
      const extra = options.checks();
      // Own data properties: a check named `__proto__` stays a check and never sets the prototype.
      for (const [name, result] of Object.entries(extra ?? {})) Object.defineProperty(checks, name, { value: validCheck(result), writable: true, enumerable: true, configurable: true });
    } catch {
      checks.checks = { status: 'fail', detail: 'health checks threw an error' };
    }
  }
  const results = Object.values(checks);
  const status: HealthStatus = results.some((c) => c.status === 'fail') ? 'unhealthy' : results.some((c) => c.status === 'warn') ? 'degraded' : 'healthy';
  const uptimeSeconds = options.metrics ? options.metrics.snapshot().uptimeSeconds : (performance.now() - startedAt) / 1000;
  const report: HealthReport = {
    status,
    timestamp: new Date().toISOString(),
    uptime: formatUptime(uptimeSeconds),
    uptime_seconds: Math.round(uptimeSeconds * 1000) / 1000,
    version: options.version,
    ready,
    checks,
  };
  if (metrics) report.metrics = metrics;
  return { report, ready };
}

const COMMON_HEADERS = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' } as const;

function send(res: ServerResponse, code: number, body: string, contentType: string, extra: Record<string, string> = {}): void {
  res.writeHead(code, { ...COMMON_HEADERS, 'content-type': contentType, 'content-length': Buffer.byteLength(body), ...extra });
  res.end(body);
}

function sendJson(res: ServerResponse, code: number, value: unknown, extra?: Record<string, string>): void {
  send(res, code, `${JSON.stringify(value)}\n`, 'application/json; charset=utf-8', extra);
}

/**
 * Starts the observability server (/metrics, /health, /healthz, /readyz); resolves once it
 * listens. Rejects with ERR_QT_ADDRESS_IN_USE
 * when the port is taken, ERR_QT_CONNECTION_FAILED on any other listen error (`syscallCode` and
 * `cause` say which).
 *
 * @example
 * ```ts
 * import { listen, startObservabilityServer, TunnelMetrics, VERSION } from 'quantum-tunnel';
 *
 * const metrics = new TunnelMetrics();
 * const listener = listen({ port: 8443, observer: metrics });
 * let ready = false;
 * const obs = await startObservabilityServer({ port: 9090, version: VERSION, metrics, ready: () => ready });
 * await listener.ready;
 * ready = true; // /readyz answers 200 from now on
 * // ...at shutdown: ready = false; await listener.close(); await obs.close();
 * ```
 */
export async function startObservabilityServer(options: ObservabilityServerOptions): Promise<ObservabilityServer> {
  if (!options || typeof options !== 'object') throw qtError(ErrorCode.INVALID_ARGUMENT, 'options are required');
  const { port } = options;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw qtError(ErrorCode.INVALID_ARGUMENT, 'port must be an integer from 0 to 65535');
  if (typeof options.ready !== 'function') throw qtError(ErrorCode.INVALID_ARGUMENT, 'ready must be a function');
  if (typeof options.version !== 'string') throw qtError(ErrorCode.INVALID_ARGUMENT, 'version must be a string');
  const host = options.host ?? '127.0.0.1';
  const logger = options.logger?.child({ component: 'observability' });
  const startedAt = performance.now();

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendJson(res, 405, { error: 'method not allowed' }, { allow: 'GET, HEAD' });
      return;
    }
    if (options.refresh && path !== '/healthz') {
      await options.refresh().catch((err) => logger?.warn('observability refresh failed', { error: err }));
    }
    switch (path) {
      case '/metrics': {
        if (!options.metrics) return sendJson(res, 404, { error: 'metrics are not enabled' });
        try {
          const registry = options.metrics.registry;
          send(res, 200, await registry.metrics(), registry.contentType);
        } catch (err) {
          logger?.error('metrics collection failed', { error: err });
          send(res, 500, 'metrics collection failed\n', 'text/plain; charset=utf-8');
        }
        return;
      }
      case '/health': {
        const { report } = healthReport(options, startedAt);
        return sendJson(res, report.status === 'unhealthy' ? 503 : 200, report);
      }
      case '/healthz':
        return sendJson(res, 200, { status: 'alive' });
      case '/readyz': {
        const { report, ready } = healthReport(options, startedAt);
        const ok = ready && report.status !== 'unhealthy';
        return sendJson(res, ok ? 200 : 503, { status: ok ? 'ready' : 'not ready', ready: ok, health: report.status });
      }
      default:
        return sendJson(res, 404, { error: 'not found' });
    }
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err) => {
      logger?.error('observability request failed', { error: err });
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  });
  // A probe endpoint needs no long-lived or slow connections.
  server.headersTimeout = 5_000;
  server.requestTimeout = 10_000;
  server.keepAliveTimeout = 5_000;
  server.maxConnections = 128;
  server.on('clientError', (_err, socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE'
          ? qtError(ErrorCode.ADDRESS_IN_USE, `observability server cannot listen on ${host}:${port}: address already in use`, { cause: err })
          : qtError(ErrorCode.CONNECTION_FAILED, `observability server cannot listen on ${host}:${port}`, { cause: err }),
      );
    server.once('error', onError);
    server.listen({ host, port }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (err) => logger?.error('observability server error', { error: err }));
  const bound = server.address() as AddressInfo;
  logger?.info('observability server listening', { address: bound.address, port: bound.port });

  let closing: Promise<void> | undefined;
  return {
    address: () => bound,
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
