/**
 * `quantum-vpn serve --config FILE`: every service of a configuration file (lib/config) in one
 * process: forward's server and client sides (lib/cli/forward.ts) and echo servers, with one
 * logger, one observability endpoint (metrics of every service, labelled `service="NAME"`;
 * /readyz ready only when every service is) and one shutdown.
 *
 * Nothing listens before the whole file is valid and every service's keys are loaded. SIGINT or
 * SIGTERM drains every service (as forward does). SIGHUP (and, with `watch: true`, a change of
 * the file) reloads: an invalid file changes nothing and every error is logged; a valid one is
 * applied as a difference: services added start, services removed drain and stop, limits and
 * timeouts change in place, a service with any other change (or whose key files changed on disk)
 * is replaced (its old listener closes first and its connections drain; the new one loads its keys
 * afresh), and the log level changes in place.
 * The process-wide keys (fips, obs-addr, tracing, log-format) need a restart.
 */
import { type FSWatcher, watch as watchFile } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { AggregatorRegistry, Registry } from 'prom-client';
import { info as cryptoInfo } from '../crypto/info.js';
import { loadConfig, type ResolvedConfig, type ServiceConfig, serviceIssue, serviceSummary } from '../config/load.js';
import { type ConfigIssue, formatIssue } from '../config/source.js';
import { type CheckResult, type LogFields, LoggingObserver, type Logger, type LogLevel, type MetricsSnapshot, type MetricsSource, type RateLimiter, TracingObserver, TunnelMetrics } from '../ops/index.js';
import type { ConnectionAdmission, PeerAddress, TunnelObserver } from '../tunnel/observer.js';
import { CliError, formatHostPort, type HostPort, type ParsedArgs, UsageError } from './args.js';
import { ForwardMetrics } from './backend.js';
import { applyFips, ciphersFromFlag, type Command, loggerFromFlags, type Observability, out, plural, rateLimiterFromFlags, shutdownSignal, startObservability } from './common.js';
import { type Common, ForwardClient, ForwardServer, type ForwardSide } from './forward.js';
import { protocolFromFlags } from './protocol.js';
import { parseTracingMode, setupTracing, type TracingSetup } from './tracing.js';

/** A service that runs: its resolved configuration, its side and its own metrics. */
interface RunningService {
  config: ServiceConfig;
  side: ForwardSide;
  metrics: TunnelMetrics;
  /** The settings its side reads at each connection (timeouts), updated in place by a reload. */
  common: Common;
  admission: ReloadableAdmission;
  bound?: { address: string; port: number };
}

/**
 * The rate limits of a server side, replaceable while it listens (a reload changes them in place).
 * A connection is released by the limiter that admitted it; the new limiter's counts start afresh.
 */
class ReloadableAdmission implements ConnectionAdmission {
  constructor(public limiter: RateLimiter | undefined) {}
  admit(peer: PeerAddress): ReturnType<ConnectionAdmission['admit']> {
    return this.limiter ? this.limiter.admit(peer) : { ok: true, release: () => undefined };
  }
  admitRekey(peer: PeerAddress): boolean {
    return this.limiter?.admitRekey ? this.limiter.admitRekey(peer) : true;
  }
}

/** Keys a reload changes in place, without replacing the service (they are read per connection). */
const IN_PLACE_KEYS = new Set(['connect-timeout', 'linger', 'drain-timeout', 'max-conns-per-ip', 'handshake-rate', 'handshake-burst', 'global-handshake-rate', 'global-handshake-burst']);

/** The keys whose values differ between two resolutions of a service ('files' when a key file changed on disk). */
function changedKeys(prev: ServiceConfig, next: ServiceConfig): string[] {
  const names = new Set([...Object.keys(prev.flags), ...Object.keys(next.flags)]);
  const keys = [...names].filter((k) => prev.flags[k] !== next.flags[k]);
  if (prev.role !== next.role) keys.push('role');
  if (JSON.stringify((JSON.parse(prev.fingerprint) as { files: unknown }).files) !== JSON.stringify((JSON.parse(next.fingerprint) as { files: unknown }).files)) keys.push('files');
  return keys;
}

/**
 * A logger whose children follow its level when a reload changes it (lib/ops' children copy the
 * level when they are made): every line first brings its logger to the shared level.
 */
class ReloadableLevelLogger implements Logger {
  constructor(
    private readonly inner: Logger,
    private readonly shared: { level: LogLevel },
  ) {
    inner.level = shared.level;
  }
  get level(): LogLevel {
    return this.shared.level;
  }
  set level(level: LogLevel) {
    this.inner.level = level; // checks the name
    this.shared.level = level;
  }
  private sync(): Logger {
    if (this.inner.level !== this.shared.level) this.inner.level = this.shared.level;
    return this.inner;
  }
  debug(msg: string, fields?: LogFields): void {
    this.sync().debug(msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.sync().info(msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.sync().warn(msg, fields);
  }
  error(msg: string, fields?: LogFields): void {
    this.sync().error(msg, fields);
  }
  child(bindings: LogFields): Logger {
    return new ReloadableLevelLogger(this.inner.child(bindings), this.shared);
  }
}

/** After a file change, how long to wait for the writer to finish before reloading. */
const WATCH_SETTLE_MS = 200;

/**
 * Builds a service's side: loads its keys (the protocol setup), its metrics (`service` label) and
 * logger. Throws the error of a key file that does not load; nothing listens yet.
 */
function prepare(service: ServiceConfig, logger: Logger, tracing: TracingSetup, tracingOn: boolean): RunningService {
  const { flags, settings, name, role } = service;
  const ciphers = ciphersFromFlag(flags.cipher as string | undefined);
  const protocol = protocolFromFlags(flags, role === 'client' ? 'client' : 'server');
  const serviceLogger = logger.child({ service: name });
  const metrics = new TunnelMetrics({ fipsMode: () => cryptoInfo().fips, labels: { service: name } });
  const observers: TunnelObserver[] = [metrics, new LoggingObserver(serviceLogger, { tunnelErrors: false })];
  if (tracingOn) observers.push(new TracingObserver({ fipsMode: cryptoInfo().fips }));
  const obs: Observability = { metrics, observers, logger: serviceLogger, tracing };
  const forwardMetrics = new ForwardMetrics(role === 'client' ? 'client' : 'server', metrics.registry, metrics.prefix, { service: name });
  const admission = new ReloadableAdmission(role === 'client' ? undefined : rateLimiterFromFlags(flags, serviceLogger));
  const c: Common = {
    listenAddr: settings.listenAddr,
    listenFlag: `services.${name}.listen`,
    ciphers,
    protocol,
    tickets: settings.tickets,
    connectTimeoutMs: settings.connectTimeoutMs,
    handshakeTimeoutMs: settings.handshakeTimeoutMs,
    keepAliveMs: settings.keepAliveMs,
    idleTimeoutMs: settings.idleTimeoutMs,
    lingerMs: settings.lingerMs,
    drainTimeoutMs: settings.drainTimeoutMs,
    obs,
    forwardMetrics,
  };
  const side =
    role === 'client'
      ? new ForwardClient(c, settings.remote as HostPort, flags)
      : new ForwardServer(c, settings.remote, role === 'echo' ? 0 : settings.backendCheckMs, admission, flags);
  return { config: service, side, metrics, common: c, admission };
}

/** Prepares every service, or none: the issues of every key that does not load. */
function prepareAll(services: ServiceConfig[], logger: Logger, tracing: TracingSetup, tracingOn: boolean): { prepared: RunningService[]; issues: ConfigIssue[] } {
  const prepared: RunningService[] = [];
  const issues: ConfigIssue[] = [];
  for (const s of services) {
    try {
      prepared.push(prepare(s, logger, tracing, tracingOn));
    } catch (e) {
      issues.push(serviceIssue(s, e));
    }
  }
  if (issues.length > 0) {
    for (const p of prepared) void p.side.stop('not started', () => undefined); // destroys the loaded keys
    return { prepared: [], issues };
  }
  return { prepared, issues };
}

function where(bound: { address: string; port: number }): string {
  return formatHostPort(bound.address, bound.port);
}

/** The services of one process, and how a new configuration is applied to them. */
class Services {
  private readonly running = new Map<string, RunningService>();
  /** Sides being drained (removed or replaced); waited for at shutdown. */
  private readonly draining = new Set<Promise<void>>();
  private aggregated = new Registry();
  private closing = false;
  private readonly startedAt = performance.now();

  constructor(
    private config: ResolvedConfig,
    private readonly logger: Logger,
    private readonly tracing: TracingSetup,
  ) {}

  /** Starts prepared services; on a failure stops the ones started and throws. */
  async start(prepared: RunningService[]): Promise<void> {
    for (const p of prepared) {
      try {
        await this.launch(p);
      } catch (e) {
        for (const q of prepared) if (q !== p) await q.side.stop('not started', () => undefined);
        this.running.clear();
        throw e;
      }
    }
  }

  private async launch(p: RunningService): Promise<void> {
    p.bound = await p.side.start();
    this.running.set(p.config.name, p);
    await p.side.watch();
  }

  private say(name: string): (line: string) => void {
    return (line) => out(`${name}: ${line}`);
  }

  /** Stops a service in the background (its connections drain). */
  private retire(p: RunningService, reason: string): void {
    this.running.delete(p.config.name);
    const done = p.side.stop(reason, this.say(p.config.name)).then(() => out(`${p.config.name}: stopped`));
    this.draining.add(done);
    void done.finally(() => this.draining.delete(done));
  }

  announce(): void {
    for (const p of this.running.values()) out(`listening: ${serviceSummary(p.config, p.bound)}`);
  }

  ready(): boolean {
    return !this.closing && this.running.size > 0 && [...this.running.values()].every((p) => p.side.ready());
  }

  checks(): Record<string, CheckResult> {
    const checks: Record<string, CheckResult> = {};
    for (const p of this.running.values()) {
      for (const [k, v] of Object.entries(p.side.checks())) checks[`${p.config.name}.${k}`] = v;
    }
    return checks;
  }

  /** Every service's metrics in one exposition (they differ by their `service` label). */
  async refresh(): Promise<void> {
    this.aggregated = AggregatorRegistry.aggregate(await Promise.all([...this.running.values()].map((p) => p.metrics.registry.getMetricsAsJSON())));
  }

  get metrics(): MetricsSource {
    return {
      registry: { metrics: () => this.aggregated.metrics(), contentType: this.aggregated.contentType },
      snapshot: () => {
        const sum = new Map<string, number>();
        for (const p of this.running.values()) for (const [k, v] of Object.entries(p.metrics.snapshot()) as Array<[string, number]>) sum.set(k, (sum.get(k) ?? 0) + v);
        return { ...Object.fromEntries(sum), uptimeSeconds: (performance.now() - this.startedAt) / 1000 } as unknown as MetricsSnapshot;
      },
    };
  }

  /**
   * Applies a new valid configuration: the log level in place; services added start, removed
   * ones drain, changed ones are replaced (old listener closed first). Keys of new and changed
   * services load before anything changes: if one fails, nothing changes. One line per change.
   */
  async apply(next: ResolvedConfig): Promise<void> {
    const prev = this.config;
    for (const key of ['fips', 'obsAddr', 'tracing', 'logFormat'] as const) {
      if (prev[key] !== next[key]) this.logger.warn('reload: this key needs a restart; the running value stays', { key: KEY_NAMES[key] });
    }
    const nextByName = new Map(next.services.map((s) => [s.name, s]));
    const differing = next.services.filter((s) => this.running.has(s.name) && this.running.get(s.name)!.config.fingerprint !== s.fingerprint);
    const inPlace = differing.filter((s) => changedKeys(this.running.get(s.name)!.config, s).every((k) => IN_PLACE_KEYS.has(k)));
    const changed = differing.filter((s) => !inPlace.includes(s));
    const added = next.services.filter((s) => !this.running.has(s.name));
    const removed = [...this.running.values()].filter((p) => !nextByName.has(p.config.name));
    const { prepared, issues } = prepareAll([...changed, ...added], this.logger, this.tracing, next.tracing !== 'none');
    if (issues.length > 0) {
      this.logger.error('reload failed: a key does not load; the running configuration stays', { errors: issues.length });
      for (const issue of issues) this.logger.error(formatIssue(issue));
      return;
    }
    this.config = { ...next, fips: prev.fips, obsAddr: prev.obsAddr, tracing: prev.tracing, logFormat: prev.logFormat };
    if (prev.logLevel !== next.logLevel) {
      this.logger.level = next.logLevel;
      out(`reload: log-level ${prev.logLevel} -> ${next.logLevel}`);
    }
    for (const s of inPlace) this.update(this.running.get(s.name)!, s);
    for (const p of removed) {
      out(`reload: removed: ${p.config.name} (draining ${plural(p.side.openConnections, 'open connection')})`);
      this.retire(p, 'removed from the configuration');
    }
    for (const p of prepared) {
      const old = this.running.get(p.config.name);
      if (old) this.retire(old, 'replaced'); // closes its listener at once, so the new one can bind
      try {
        await this.launch(p);
        out(`reload: ${old ? 'replaced' : 'added'}: ${serviceSummary(p.config, p.bound)}`);
      } catch (e) {
        this.logger.error(`reload: ${p.config.name} cannot start`, { error: (e as Error).message });
        out(`reload: ${p.config.name} cannot start: ${(e as Error).message}`);
      }
    }
    if (removed.length + prepared.length + inPlace.length === 0 && prev.logLevel === next.logLevel) out('reload: no change');
  }

  /** Applies changed limits and timeouts to a running service; its listener and connections stay. */
  private update(p: RunningService, next: ServiceConfig): void {
    const keys = changedKeys(p.config, next);
    const { settings } = next;
    Object.assign(p.common, { connectTimeoutMs: settings.connectTimeoutMs, lingerMs: settings.lingerMs, drainTimeoutMs: settings.drainTimeoutMs });
    if (next.role !== 'client') p.admission.limiter = rateLimiterFromFlags(next.flags, p.common.obs.logger);
    p.config = next;
    out(`reload: updated: ${next.name}: ${keys.map((k) => `${k}=${String(next.flags[k])}`).join(', ')} (in place; open connections go on)`);
  }

  /** Drains every service (running and already draining) and resolves when all have stopped. */
  async stop(reason: string): Promise<void> {
    this.closing = true;
    for (const p of [...this.running.values()]) this.retire(p, reason);
    await Promise.all([...this.draining]);
  }
}

const KEY_NAMES = { fips: 'fips', obsAddr: 'obs-addr', tracing: 'tracing', logFormat: 'log-format' } as const;

function printIssues(issues: ConfigIssue[], heading: string): void {
  for (const issue of issues) process.stderr.write(`${formatIssue(issue)}\n`);
  process.stderr.write(`quantum-vpn serve: ${heading}: ${plural(issues.length, 'error')}\n`);
}

export const serveCommand: Command = {
  name: 'serve',
  summary: 'Run every service of a configuration file (forward servers, clients, echo) in one process',
  synopsis: 'quantum-vpn serve --config FILE',
  description:
    'Reads FILE (.yaml, .yml or .toml; docs/OPERATIONS.md, "Configuration files") with the\n' +
    'QUANTUM_VPN_ environment overrides, checks all of it and loads every key before anything\n' +
    'listens (errors as FILE:LINE:COLUMN: KEY: PROBLEM, exit 1), then runs each service: role\n' +
    'server (tunnels in, TCP out), client (TCP in, tunnels out) or echo. Prints "NAME: listening\n' +
    'on HOST:PORT" per service. One logger, one --obs-addr endpoint for all (metrics labelled\n' +
    'service="NAME"; /readyz ready when every service is). SIGHUP (or a file change with\n' +
    '`watch: true`) reloads: an invalid file keeps the running configuration and logs why; a\n' +
    'valid one starts added services, drains removed ones, replaces changed ones and sets the\n' +
    'log level. SIGINT or SIGTERM drains every service and exits 0.',
  flags: [{ name: 'config', kind: 'string', metavar: 'FILE', help: 'The configuration file (YAML or TOML)' }],
  async run(args: ParsedArgs): Promise<number> {
    const file = args.flags.config;
    if (typeof file !== 'string' || file === '') throw new UsageError('--config FILE is required');
    const loaded = loadConfig(file);
    if (!loaded.ok) {
      printIssues(loaded.issues, 'the configuration is invalid, nothing started');
      return 1;
    }
    const config = loaded.config;
    if (config.fips) await applyFips({ fips: true });
    const logger = new ReloadableLevelLogger(loggerFromFlags({ 'log-level': config.logLevel, 'log-format': config.logFormat }), { level: config.logLevel });
    const watch = shutdownSignal();
    // SIGHUP from now on: one during start-up reloads once every service runs (not the default: exit).
    let hupDuringStart = false;
    // eslint-disable-next-line prefer-const -- the reload closure below reads it before start-up assigns it once
    let services: Services | undefined;
    // Reloads run one at a time; a request during one runs once it is over.
    let reloading: Promise<void> | undefined;
    let again = false;
    const reload = (trigger: string) => {
      if (!services) return;
      if (reloading) {
        again = true;
        return;
      }
      reloading = (async () => {
        do {
          again = false;
          out(`${trigger}: reloading ${file}`);
          const next = loadConfig(file);
          if (!next.ok) {
            logger.error('reload failed: the configuration is invalid; the running configuration stays', { errors: next.issues.length });
            for (const issue of next.issues) logger.error(formatIssue(issue));
            out(`reload failed: ${plural(next.issues.length, 'error')}; the running configuration stays`);
            continue;
          }
          await services.apply(next.config);
        } while (again);
      })().finally(() => (reloading = undefined));
    };
    const onHup = () => (services ? reload('SIGHUP') : (hupDuringStart = true));
    process.on('SIGHUP', onHup);
    const tracing = await setupTracing(parseTracingMode(config.tracing));
    const { prepared, issues } = prepareAll(config.services, logger, tracing, config.tracing !== 'none');
    if (issues.length > 0) {
      watch.remove();
      process.off('SIGHUP', onHup);
      await tracing.shutdown();
      printIssues(issues, 'a key does not load, nothing started');
      return 1;
    }
    const starting = new Services(config, logger, tracing);
    try {
      await starting.start(prepared);
    } catch (e) {
      watch.remove();
      process.off('SIGHUP', onHup);
      await tracing.shutdown();
      throw e;
    }
    const obsServer = await startObservability(config.obsAddr, starting.metrics, () => starting.ready(), logger, {
      checks: () => starting.checks(),
      refresh: () => starting.refresh(),
    }).catch(async (e: unknown) => {
      await starting.stop('cannot start');
      watch.remove();
      process.off('SIGHUP', onHup);
      await tracing.shutdown();
      throw e instanceof CliError ? new CliError(e.message.replace('(--obs-addr)', '(obs-addr)').replace(/; choose another --obs-addr.*$/, '')) : e;
    });
    services = starting;
    let watcher: FSWatcher | undefined;
    let settle: NodeJS.Timeout | undefined;
    // Watching starts before the announcement, so a change made right after it is seen.
    if (config.watch) {
      try {
        // The directory, not the file: editors and `kubectl` replace the file by a rename.
        watcher = watchFile(dirname(resolve(file)), (_event, name) => {
          if (name !== basename(file)) return;
          clearTimeout(settle);
          settle = setTimeout(() => reload('file changed'), WATCH_SETTLE_MS);
        });
        watcher.on('error', (e) => logger.warn('cannot watch the configuration file', { error: e.message }));
      } catch (e) {
        logger.warn('cannot watch the configuration file', { error: (e as Error).message });
      }
    }

    services.announce();
    if (obsServer) out(`observability on http://${where(obsServer.address())} (/metrics, /health, /healthz, /readyz)`);
    out(`serving ${plural(config.services.length, 'service')} from ${file}`);

    if (hupDuringStart) reload('SIGHUP');
    const signal = await watch.signal;
    process.off('SIGHUP', onHup);
    watcher?.close();
    clearTimeout(settle);
    await reloading;
    await services.stop(`${signal} received`);
    await obsServer?.close();
    await tracing.shutdown();
    out('serve stopped');
    watch.remove();
    return 0;
  },
};
