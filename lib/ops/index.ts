/**
 * The operations layer: Prometheus metrics, the health/metrics HTTP server, structured logging,
 * admission control (rate limits) and OpenTelemetry tracing, all plugged into tunnels through the
 * `observer` and `admission` options of listen() and dial().
 */
export {
  TunnelMetrics,
  DEFAULT_PREFIX as DEFAULT_METRICS_PREFIX,
  DEFAULT_HANDSHAKE_BUCKETS,
  type MetricsOptions,
  type MetricsSnapshot,
} from './metrics.js';
export { registerProcessMetrics, buildInfoLabels, type ProcessMetricsOptions } from './processMetrics.js';
export {
  startObservabilityServer,
  fipsSelfTestCheck,
  formatUptime,
  healthReport,
  type ObservabilityServer,
  type ObservabilityServerOptions,
  type MetricsSource,
  type CheckResult,
  type CheckStatus,
  type HealthReport,
  type HealthStatus,
} from './health.js';
export {
  createLogger,
  nullLogger,
  fromPino,
  parseLogLevel,
  maskAddress,
  sanitizeValue,
  LoggingObserver,
  type Logger,
  type LogLevel,
  type LogFields,
  type CreateLoggerOptions,
  type LoggingObserverOptions,
  type PinoLike,
} from './logger.js';
export { RateLimiter, type RateLimitOptions, type RateLimiterStats, type AdmissionVerdict } from './rateLimit.js';
export { TracingObserver, SpanNames, type TracingObserverOptions } from './tracing.js';
export { VERSION } from './version.js';
