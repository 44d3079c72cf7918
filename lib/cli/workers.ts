/**
 * `forward --workers N`: the server side on every core, as N worker processes (node:cluster) that
 * share one listening port, under a primary that supervises them.
 *
 * - Connections are spread by the cluster's round-robin scheduling: the primary accepts each one
 *   and hands it to the next free worker. Node 20, 22 and 24 all do it (SO_REUSEPORT, `reusePort`,
 *   is newer than Node 20), and it spreads evenly where the kernel's accept queue would not.
 * - The primary never reads a key. Each worker loads its own identity, certificates and PSK files
 *   and runs the ordinary forward server; IPC carries only a worker's `listening` announcement, its
 *   status on request (readiness, health checks, metric values) and the primary's `drain`.
 * - Start: worker 1 alone, then the others. A bad key file or a port in use fails in one process,
 *   which prints today's message; the primary then exits with its code, without a restart.
 * - A worker that exits later is replaced after a back-off (1 s, doubling up to 30 s; back to 1 s
 *   once a worker has run for a minute), and the exit is logged.
 * - SIGINT/SIGTERM to the primary sends `drain` to every worker, which runs forward's own drain;
 *   the primary exits 0 when every worker exited 0, 1 otherwise.
 * - `--obs-addr` is served by the primary alone: /metrics sums the workers' registries (prom-client's
 *   AggregatorRegistry; what a worker that died had counted is kept, so sums never go down), and
 *   /readyz is 200 only while every worker listens and is ready.
 */
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { AggregatorRegistry, Counter, Gauge, Registry } from 'prom-client';
import type { CheckResult, CheckStatus, Logger, MetricsSnapshot, MetricsSource } from '../ops/index.js';
import { formatHostPort, UsageError } from './args.js';
import { out, plural, shutdownSignal, startObservability } from './common.js';

/** The environment variable that gives a worker its slot (1 to N, kept across restarts). */
const SLOT_VARIABLE = 'QUANTUM_VPN_WORKER';
const MAX_WORKERS = 256;
/** Restart back-off: first delay, cap, and how long a worker must run to reset it. */
const RESTART_FIRST_MS = 1_000;
const RESTART_MAX_MS = 30_000;
const STABLE_RUN_MS = 60_000;
/** How long a worker may take to answer a status request (a scrape waits for it). */
const STATUS_TIMEOUT_MS = 2_000;
/** Beyond the drain timeout: forward's own close grace (5 s) and some slack, before SIGKILL. */
const DRAIN_SLACK_MS = 10_000;

type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

/** What a worker reports when the primary asks. */
export interface WorkerStatus {
  /** Listening, not draining, and its backend reachable. */
  ready: boolean;
  /** Its health checks (`fips`, `backend`). */
  checks: Record<string, CheckResult>;
  snapshot?: MetricsSnapshot;
  /** Its registry, as `getMetricsAsJSON()` gives it. */
  metrics: MetricsJson;
}

type ToWorker = { qt: 'drain'; signal: NodeJS.Signals } | { qt: 'status'; id: number };
type FromWorker = { qt: 'listening'; address: string; port: number } | { qt: 'status'; id: number; status: WorkerStatus };

function isMessage<T extends { qt: string }>(m: unknown): m is T {
  return typeof m === 'object' && m !== null && typeof (m as { qt?: unknown }).qt === 'string';
}

/** `--workers`: `auto` (one per CPU the process may use) or 1 to 256. */
export function parseWorkerCount(value: string): number {
  const v = value.trim().toLowerCase();
  if (v === 'auto') return availableParallelism();
  const n = /^\d+$/.test(v) ? Number(v) : NaN;
  if (!(n >= 1 && n <= MAX_WORKERS)) throw new UsageError(`invalid --workers ${JSON.stringify(value)}: expected auto or a number from 1 to ${MAX_WORKERS}`);
  return n;
}

/** In a forward worker, its slot (1 to N, the same for its replacements); undefined elsewhere. */
export function workerSlot(): number | undefined {
  if (!cluster.isWorker) return undefined;
  // eslint-disable-next-line security/detect-object-injection -- SLOT_VARIABLE is a constant name
  const n = Number(process.env[SLOT_VARIABLE]);
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

// ---- the worker's end ---------------------------------------------------------------------------

/** A worker's line to its primary: the drain order in, its announcement and status out. */
export class WorkerLink {
  /** Resolves with the signal the primary received when it orders the drain. */
  readonly drainOrder: Promise<NodeJS.Signals>;
  private status: () => Promise<WorkerStatus> = async () => ({ ready: false, checks: {}, metrics: [] });
  private readonly onMessage: (m: unknown) => void;

  constructor(readonly slot: number) {
    let order: (signal: NodeJS.Signals) => void = () => undefined;
    this.drainOrder = new Promise((resolve) => (order = resolve));
    this.onMessage = (m) => {
      if (!isMessage<ToWorker>(m)) return;
      if (m.qt === 'drain') order(m.signal);
      else if (m.qt === 'status') {
        this.status().then(
          (status) => send({ qt: 'status', id: m.id, status }),
          () => send({ qt: 'status', id: m.id, status: { ready: false, checks: { worker: { status: 'fail', detail: 'status unavailable' } }, metrics: [] } }),
        );
      }
    };
    process.on('message', this.onMessage);
  }

  /** From now on, status requests are answered with `provider`. */
  serveStatus(provider: () => Promise<WorkerStatus>): void {
    this.status = provider;
  }

  /** Tells the primary this worker accepts tunnels on `address`. */
  listening(address: AddressInfo): void {
    send({ qt: 'listening', address: address.address, port: address.port });
  }

  /** Stops listening to the primary and lets the process end (the IPC channel holds it otherwise). */
  close(): void {
    process.off('message', this.onMessage);
    if (cluster.worker?.isConnected()) cluster.worker.disconnect();
  }
}

function send(m: FromWorker): void {
  if (process.connected) process.send!(m);
}

// ---- the primary --------------------------------------------------------------------------------

/** Sends `m` to a worker unless its channel is gone; a send that fails (it is exiting) is ignored. */
function order(worker: Worker, m: ToWorker): void {
  if (worker.isConnected()) worker.send(m, () => undefined);
}

export interface PrimaryOptions {
  workers: number;
  logger: Logger;
  drainTimeoutMs: number;
  obsAddr: string;
  /** Metric name prefix and constant labels, as the workers' own. */
  metricsPrefix: string;
  metricLabels: Record<string, string>;
  /** The line printed once every worker listens on `address`. */
  announce(address: { address: string; port: number }): string;
}

/** One worker position: its current process (if any) and its restart state. */
interface Slot {
  n: number;
  worker: Worker | undefined;
  pid: number | undefined;
  listening: boolean;
  /** The last status it sent, until it exits or fails to answer. */
  status: WorkerStatus | undefined;
  /**
   * The last status it answered with, kept when it misses one: its counters stay in the sums
   * (a sum that dropped would read as a counter reset to Prometheus) until it exits and retires.
   */
  lastGood: WorkerStatus | undefined;
  /** Consecutive short runs, for the back-off. */
  failures: number;
  startedAt: number;
  restartTimer: NodeJS.Timeout | undefined;
  /** Why it is not running, for /health. */
  down: string | undefined;
}

type Phase = 'starting' | 'running' | 'draining';
const RANK: Record<CheckStatus, number> = { pass: 0, warn: 1, fail: 2 };

/**
 * Runs the forward server as `workers` processes on one port and supervises them until SIGINT or
 * SIGTERM (see the module comment). Resolves with the exit code.
 */
export async function runPrimary(o: PrimaryOptions): Promise<number> {
  const watch = shutdownSignal();
  const pool = new WorkerPool(o);
  try {
    // First, so a port in use fails before any worker starts; /readyz is 503 until all listen.
    const obsServer = await startObservability(o.obsAddr, pool.metrics, () => pool.ready(), o.logger, {
      refresh: () => pool.refresh(),
      checks: () => pool.checks(),
      fipsCheck: () => pool.merged('fips') ?? { status: 'warn', detail: 'no worker answered' },
    });
    try {
      const started = await Promise.race([pool.start(), watch.signal.then((signal) => ({ signal }))]);
      if ('signal' in started) return await pool.drain(started.signal);
      if ('code' in started) {
        await pool.drain(undefined);
        return started.code;
      }
      out(o.announce(started));
      if (obsServer) {
        const a = obsServer.address();
        out(`observability on http://${formatHostPort(a.address, a.port)} (/metrics, /health, /healthz, /readyz)`);
      }
      const code = await pool.drain(await watch.signal);
      out('forwarder stopped');
      return code;
    } finally {
      await obsServer?.close();
    }
  } finally {
    watch.remove();
  }
}

/** The workers, their restarts, and what the primary serves from them. */
class WorkerPool {
  private phase: Phase = 'starting';
  private readonly slots: Slot[];
  private readonly log: Logger;
  private readonly exits = new Map<Worker, Promise<number>>();
  private readonly replies = new Map<number, (status: WorkerStatus) => void>();
  private nextRequest = 0;
  private gathering: Promise<void> | undefined;
  private failed = false;
  /** Counters and histograms of workers that exited, folded into one set. */
  private retired: MetricsJson = [];
  private retiredPending: MetricsJson[] = [];
  /** Keyed by what workers report over IPC: a Map, so no reported name reaches an object's prototype. */
  private readonly retiredSnapshot = new Map<string, number>();
  private aggregated: Registry = new Registry();
  private readonly own = new Registry();
  private readonly running: Gauge<string>;
  private readonly restarts: Counter<string>;
  private readonly startedAt = performance.now();
  /** Settles the start: a listening address, or the exit code of a worker that could not start. */
  private startFailed: (code: number) => void = () => undefined;

  constructor(private readonly o: PrimaryOptions) {
    this.log = o.logger.child({ component: 'workers' });
    this.slots = Array.from({ length: o.workers }, (_, i) => ({
      n: i + 1, worker: undefined, pid: undefined, listening: false, status: undefined, lastGood: undefined, failures: 0, startedAt: 0, restartTimer: undefined, down: 'not started',
    }));
    const registers = [this.own];
    const labelNames = Object.keys(o.metricLabels);
    this.running = new Gauge({ name: `${o.metricsPrefix}forward_workers`, help: 'Forward worker processes listening', labelNames, registers });
    this.restarts = new Counter({ name: `${o.metricsPrefix}forward_worker_restarts_total`, help: 'Forward workers replaced after exiting unexpectedly', labelNames, registers });
    this.running.set(o.metricLabels, 0);
    this.restarts.inc(o.metricLabels, 0);
    // Round robin unless Node's own NODE_CLUSTER_SCHED_POLICY=none asks for the kernel's
    // distribution (chosen before the first fork); worker stdout is prefixed with its slot.
    if (process.env.NODE_CLUSTER_SCHED_POLICY !== 'none') cluster.schedulingPolicy = cluster.SCHED_RR;
    cluster.setupPrimary({ stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  }

  /**
   * Worker 1 first, then the others: resolves with the address once all listen, or with the exit
   * code of the first worker that ended before it listened.
   */
  async start(): Promise<{ address: string; port: number } | { code: number }> {
    const failed = new Promise<{ code: number }>((resolve) => (this.startFailed = (code) => resolve({ code })));
    const first = await Promise.race([this.fork(this.slots[0]!), failed]);
    if ('code' in first) return first;
    const rest = await Promise.race([Promise.all(this.slots.slice(1).map((s) => this.fork(s))), failed]);
    if ('code' in rest) return rest;
    this.phase = 'running';
    return first;
  }

  /** Forks the worker of `slot`; resolves once it listens (never, if it exits first). */
  private fork(slot: Slot): Promise<{ address: string; port: number }> {
    if (this.phase === 'draining') return new Promise(() => undefined); // a signal during the start
    const worker = cluster.fork({ [SLOT_VARIABLE]: String(slot.n) });
    slot.worker = worker;
    slot.pid = worker.process.pid;
    slot.startedAt = performance.now();
    slot.status = undefined;
    slot.lastGood = undefined;
    const lines = createInterface({ input: worker.process.stdout!, crlfDelay: Infinity });
    lines.on('line', (line) => out(`worker ${slot.n}: ${line}`));
    const stdoutClosed = new Promise<void>((resolve) => lines.once('close', () => resolve()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => worker.once('exit', (code: number | null, signal: string | null) => resolve({ code, signal: signal as NodeJS.Signals | null })));
    // The exit counts once its last output is through, so a drain's lines precede ours.
    this.exits.set(worker, Promise.all([exited, stdoutClosed]).then(([e]) => this.exited(slot, worker, e.code, e.signal)));
    this.log.debug('worker started', { worker: slot.n, pid: slot.pid });
    // A failed send (the worker is exiting) is an 'error' event; its exit is handled below.
    worker.on('error', (e) => this.log.debug('worker IPC error', { worker: slot.n, pid: slot.pid, error: e }));
    return new Promise((resolve) => {
      worker.on('message', (m: unknown) => {
        if (!isMessage<FromWorker>(m)) return;
        if (m.qt === 'listening') {
          slot.listening = true;
          slot.down = undefined;
          this.running.set(this.o.metricLabels, this.slots.filter((s) => s.listening).length);
          if (this.phase === 'running') this.log.info('worker replaced', { worker: slot.n, pid: slot.pid });
          resolve({ address: m.address, port: m.port });
        } else if (m.qt === 'status') {
          this.replies.get(m.id)?.(m.status);
        }
      });
    });
  }

  /** A worker ended: the start fails, the drain notes its code, or it is replaced after a back-off. */
  private exited(slot: Slot, worker: Worker, code: number | null, signal: NodeJS.Signals | null): number {
    this.exits.delete(worker);
    const wasListening = slot.listening;
    slot.worker = undefined;
    slot.listening = false;
    this.running.set(this.o.metricLabels, this.slots.filter((s) => s.listening).length);
    if (slot.lastGood) this.retire(slot.lastGood);
    slot.status = undefined;
    slot.lastGood = undefined;
    const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
    const status = signal ? 1 : (code ?? 1);
    if (this.phase === 'starting') {
      this.startFailed(status);
      return status;
    }
    if (this.phase === 'draining') {
      // A worker the drain killed before it listened did not fail: it had nothing to drain.
      if (status !== 0 && wasListening) this.failed = true;
      return status;
    }
    const ranMs = performance.now() - slot.startedAt;
    if (ranMs >= STABLE_RUN_MS) slot.failures = 0;
    const delayMs = Math.min(RESTART_MAX_MS, RESTART_FIRST_MS * 2 ** slot.failures);
    slot.failures++;
    slot.down = `worker ${slot.n} (pid ${slot.pid}) ${how}; restarting in ${delayMs / 1000}s`;
    this.log.error('worker exited unexpectedly', { worker: slot.n, pid: slot.pid, code, signal, ran_ms: Math.round(ranMs), restart_in_ms: delayMs });
    this.restarts.inc(this.o.metricLabels);
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = undefined;
      if (this.phase === 'running') void this.fork(slot);
    }, delayMs);
    return status;
  }

  /**
   * Orders every listening worker to drain (`signal`; undefined: a failed start, quietly), kills
   * those still starting, and waits for all. Resolves 0 when every listening worker exited 0.
   */
  async drain(signal: NodeJS.Signals | undefined): Promise<number> {
    this.phase = 'draining';
    for (const s of this.slots) clearTimeout(s.restartTimer);
    const live = this.slots.filter((s) => s.worker !== undefined);
    if (signal) out(`${signal} received: draining ${plural(live.filter((s) => s.listening).length, 'worker')}`);
    for (const s of live) {
      if (s.listening) order(s.worker!, { qt: 'drain', signal: signal ?? 'SIGTERM' });
      else s.worker!.process.kill('SIGKILL');
    }
    const all = Promise.all([...this.exits.values()]);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), this.o.drainTimeoutMs + DRAIN_SLACK_MS)));
    if ((await Promise.race([all, late])) === 'late') {
      for (const s of this.slots) {
        if (s.worker === undefined) continue;
        this.log.error('worker did not finish draining: killed', { worker: s.n, pid: s.pid });
        s.worker.process.kill('SIGKILL');
      }
      this.failed = true;
      await all;
    }
    clearTimeout(timer);
    return this.failed ? 1 : 0;
  }

  /** Ready while running with every worker listening and ready (as of the last refresh). */
  ready(): boolean {
    return this.phase === 'running' && this.slots.every((s) => s.listening && s.status?.ready === true);
  }

  /** Asks every listening worker for its status (one round at a time; concurrent scrapes share it). */
  refresh(): Promise<void> {
    this.gathering ??= this.gather().finally(() => (this.gathering = undefined));
    return this.gathering;
  }

  private async gather(): Promise<void> {
    await Promise.all(this.slots.filter((s) => s.listening).map((s) => this.ask(s)));
    if (this.retiredPending.length > 0) {
      this.retired = await AggregatorRegistry.aggregate([this.retired, ...this.retiredPending.splice(0)]).getMetricsAsJSON();
    }
    const live = this.slots.flatMap((s) => (s.lastGood ? [s.lastGood.metrics] : []));
    this.aggregated = AggregatorRegistry.aggregate([...live, this.retired, await this.own.getMetricsAsJSON()]);
  }

  private ask(slot: Slot): Promise<void> {
    const id = ++this.nextRequest;
    const worker = slot.worker!;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.replies.delete(id);
        slot.status = undefined;
        slot.down = `worker ${slot.n} (pid ${slot.pid}) did not answer within ${STATUS_TIMEOUT_MS / 1000}s`;
        resolve();
      }, STATUS_TIMEOUT_MS);
      this.replies.set(id, (status) => {
        clearTimeout(timer);
        this.replies.delete(id);
        if (slot.worker === worker) {
          slot.status = status;
          slot.lastGood = status;
          slot.down = undefined;
        }
        resolve();
      });
      order(worker, { qt: 'status', id });
    });
  }

  /** Keeps what an exited worker had counted (counters and histograms, not gauges). */
  private retire(status: WorkerStatus): void {
    this.retiredPending.push(status.metrics.filter((m) => String(m.type) === 'counter' || String(m.type) === 'histogram'));
    for (const [k, v] of Object.entries(status.snapshot ?? {}) as Array<[string, number]>) {
      if (k !== 'sessionsActive' && k !== 'handshakesPending' && k !== 'uptimeSeconds') this.retiredSnapshot.set(k, (this.retiredSnapshot.get(k) ?? 0) + v);
    }
  }

  /** The metrics the primary serves: the workers' registries summed, and its own. */
  get metrics(): MetricsSource {
    return {
      registry: { metrics: () => this.aggregated.metrics(), contentType: this.aggregated.contentType },
      snapshot: () => {
        const sum = new Map(this.retiredSnapshot);
        for (const s of this.slots) {
          for (const [k, v] of Object.entries(s.status?.snapshot ?? {}) as Array<[string, number]>) sum.set(k, (sum.get(k) ?? 0) + v);
        }
        return { ...Object.fromEntries(sum), uptimeSeconds: (performance.now() - this.startedAt) / 1000 } as unknown as MetricsSnapshot;
      },
    };
  }

  /** `workers`, and every check the workers report (the worst of theirs), except `fips`. */
  checks(): Record<string, CheckResult> {
    const names = new Set(this.slots.flatMap((s) => Object.keys(s.status?.checks ?? {})));
    names.delete('fips');
    // Check names come from the workers over IPC: entries, so none reaches the prototype.
    return Object.fromEntries([['workers', this.workersCheck()], ...[...names].map((name): [string, CheckResult] => [name, this.merged(name)!])]);
  }

  private workersCheck(): CheckResult {
    const up = this.slots.filter((s) => s.listening && s.status !== undefined);
    const n = this.slots.length;
    const pids = up.map((s) => s.pid).join(', ');
    if (up.length === n) return { status: 'pass', detail: `${n} of ${n} workers running (pids ${pids})` };
    const why = this.slots.flatMap((s) => (s.down ? [s.down] : [])).join('; ');
    return { status: up.length === 0 ? 'fail' : 'warn', detail: `${up.length} of ${n} workers running${why ? `: ${why}` : ''}` };
  }

  /** The workers' `name` checks as one: the worst, naming its worker unless all agree. */
  merged(name: string): CheckResult | undefined {
    const results = this.slots.flatMap((s) => {
      // An own property only: a worker without this check must not read Object.prototype's `constructor`.
      // eslint-disable-next-line security/detect-object-injection -- own property, checked with Object.hasOwn
      const r = s.status && Object.hasOwn(s.status.checks, name) ? s.status.checks[name] : undefined;
      return r ? [{ n: s.n, r }] : [];
    });
    if (results.length === 0) return undefined;
    const worst = results.reduce((a, b) => (RANK[b.r.status] > RANK[a.r.status] ? b : a));
    if (results.every((x) => x.r.status === worst.r.status && x.r.detail === worst.r.detail)) return worst.r;
    return { status: worst.r.status, detail: `worker ${worst.n}: ${worst.r.detail ?? worst.r.status}` };
  }
}
