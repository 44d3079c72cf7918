/**
 * Process-level metrics for a server: prom-client's standard `process_*` and `nodejs_*` set (CPU,
 * memory, file descriptors, event-loop lag, GC, handles) and one `<prefix>build_info` gauge that
 * says what runs: package version, the addon's OpenSSL, the crypto mode, Node.js and the build
 * profile. A library embedding tunnels has its own process metrics, so nothing here is registered
 * unless asked for (the CLI does).
 */
import { collectDefaultMetrics, Gauge, type Registry } from 'prom-client';
import { info as cryptoInfo } from '../crypto/info.js';
import { DEFAULT_PREFIX } from './metrics.js';
import { VERSION } from './version.js';

/** Options of {@link registerProcessMetrics}. */
export interface ProcessMetricsOptions {
  /** Prefix of the build_info gauge (default `quantum_vpn_`); process_/nodejs_ keep their standard names. */
  prefix?: string;
  /** Constant labels on every metric registered here. */
  labels?: Record<string, string>;
}

/** The labels of build_info (no secret, nothing a peer chose). */
export function buildInfoLabels(): Record<string, string> {
  const c = cryptoInfo();
  return {
    version: VERSION,
    openssl: c.openssl.split(' ').slice(0, 2).join(' '),
    mode: c.mode,
    chacha20: String(c.chacha20.compiled),
    node: process.version,
  };
}

/** Registers the process metrics and build_info in `registry` (once per registry). */
export function registerProcessMetrics(registry: Registry, options: ProcessMetricsOptions = {}): void {
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  const name = `${prefix}build_info`;
  if (registry.getSingleMetric(name)) return;
  collectDefaultMetrics({ register: registry, labels: options.labels });
  const build = { ...buildInfoLabels(), ...options.labels };
  const gauge = new Gauge({
    name,
    help: 'What runs: the package version, the addon OpenSSL, the crypto mode (standard or fips), whether ChaCha20 is compiled in, the Node.js version; always 1',
    labelNames: Object.keys(build),
    registers: [registry],
    // Summed over --workers processes this would count the workers; every worker runs the same build.
    aggregator: 'max',
  });
  gauge.set(build, 1);
}
