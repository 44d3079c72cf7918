/**
 * A tiny timing harness for `npm run bench` (no test framework).
 *
 * Cases that are compared with each other form a *group*. Every case of a group is warmed up
 * first; then the group runs in rounds, and in each round every case runs for one time slot
 * (`timeMs / rounds`), in an order that rotates from round to round. Each slot gives one sample
 * (operations / elapsed time, from process.hrtime.bigint). A case's figure is the median of its
 * samples. Interleaving the cases of a group this way means a slow spell of the (shared,
 * virtualised) machine hits all sides of a comparison alike instead of one of them.
 *
 * Sync cases are called in chunks sized from the warm-up (about 0.25 ms of work) so the clock is
 * read rarely. Async cases keep `inFlight` promises pending at all times and count completions.
 * When the process runs with --expose-gc, a full GC runs (untimed) before every slot, so garbage
 * left by one case is not charged to the next (before every case only, with gcBefore: 'case').
 * The event loop gets a turn before every slot too, as it would between requests in a server:
 * Node-API finalizers of native handles are deferred to it and would otherwise pile up.
 */

export interface HarnessOptions {
  /** Untimed warm-up per case, in milliseconds. */
  warmupMs: number;
  /** Timed budget per case, in milliseconds, split over `rounds` slots. */
  timeMs: number;
  /** Number of rounds (samples per case). */
  rounds: number;
  /**
   * With --expose-gc: `slot` runs a full GC before every slot (fairest; ~10 ms each), `case` only
   * before each case's warm-up (for short runs).
   */
  gcBefore: 'slot' | 'case';
}

interface CaseBase {
  /** Who implements it: `ours`, `node:crypto`, `@noble/post-quantum`, ... */
  impl: string;
  /** Extra words for the table, e.g. `KeyObjects created once`. */
  note?: string;
  /** Operations one call performs (a batch of 64 records counts 64). Default 1. */
  opsPerCall?: number;
}

export interface SyncCase extends CaseBase {
  fn: () => unknown;
}

export interface AsyncCase extends CaseBase {
  asyncFn: () => Promise<unknown>;
  /** Calls kept in flight at once. */
  inFlight: number;
}

export type Case = SyncCase | AsyncCase;

export interface CaseResult {
  impl: string;
  note?: string;
  /** Median of the per-slot rates, in operations per second. */
  opsPerSec: number;
  /** Nanoseconds per operation at the median rate. */
  nsPerOp: number;
  /** Relative standard deviation of the per-slot rates, in percent. */
  rsdPercent: number;
  /** The per-slot rates, in operations per second. */
  samples: number[];
  /** Operations and nanoseconds over all timed slots. */
  totalOps: number;
  totalNs: number;
}

const now = (): bigint => process.hrtime.bigint();
const gc: (() => void) | undefined = (globalThis as { gc?: () => void }).gc;

function isAsync(c: Case): c is AsyncCase {
  return 'asyncFn' in c;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function rsd(xs: number[]): number {
  if (xs.length < 2) return 0;
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const variance = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1);
  return mean === 0 ? 0 : (Math.sqrt(variance) / mean) * 100;
}

/** Runs a sync function in chunks of `chunk` calls until `budgetNs` has elapsed. */
function runSync(fn: () => unknown, chunk: number, budgetNs: bigint): { calls: number; ns: bigint } {
  let calls = 0;
  const start = now();
  let elapsed = 0n;
  do {
    for (let i = 0; i < chunk; i++) fn();
    calls += chunk;
    elapsed = now() - start;
  } while (elapsed < budgetNs);
  return { calls, ns: elapsed };
}

/** Keeps `inFlight` calls pending until `budgetNs` has elapsed; counts completions. */
async function runAsync(fn: () => Promise<unknown>, inFlight: number, budgetNs: bigint): Promise<{ calls: number; ns: bigint }> {
  let calls = 0;
  const start = now();
  const deadline = start + budgetNs;
  const worker = async (): Promise<void> => {
    while (now() < deadline) {
      await fn();
      calls++;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return { calls, ns: now() - start };
}

interface Prepared {
  c: Case;
  chunk: number;
  samples: number[];
  totalOps: number;
  totalNs: bigint;
}

/** Lets the event loop turn (N-API finalizers and other deferred work run here, untimed). */
const yieldToEventLoop = (): Promise<void> => new Promise((done) => setImmediate(done));

const ms = (x: number): bigint => BigInt(Math.max(1, Math.round(x * 1e6)));

async function warmUp(c: Case, warmupMs: number): Promise<number> {
  if (isAsync(c)) {
    await runAsync(c.asyncFn, c.inFlight, ms(warmupMs));
    return 1;
  }
  // Grow the chunk until a chunk takes ~0.25 ms, then spend the rest of the warm-up at that size.
  let chunk = 1;
  const deadline = now() + ms(warmupMs);
  let perCallNs = 0;
  while (now() < deadline) {
    const { calls, ns } = runSync(c.fn, chunk, 0n);
    perCallNs = Number(ns) / calls;
    if (perCallNs * chunk < 250_000 && chunk < 1 << 20) chunk *= 2;
  }
  return Math.max(1, Math.min(chunk, Math.round(250_000 / Math.max(perCallNs, 1))));
}

/** Measures the cases of one comparison group, interleaved. Results come back in input order. */
export async function measureGroup(cases: Case[], opts: HarnessOptions): Promise<CaseResult[]> {
  const prepared: Prepared[] = [];
  for (const c of cases) {
    gc?.();
    prepared.push({ c, chunk: await warmUp(c, opts.warmupMs), samples: [], totalOps: 0, totalNs: 0n });
  }
  const slot = ms(opts.timeMs / opts.rounds);
  for (let r = 0; r < opts.rounds; r++) {
    for (let k = 0; k < prepared.length; k++) {
      const p = prepared[(r + k) % prepared.length]!;
      if (opts.gcBefore === 'slot') gc?.();
      await yieldToEventLoop();
      const { calls, ns } = isAsync(p.c) ? await runAsync(p.c.asyncFn, p.c.inFlight, slot) : runSync(p.c.fn, p.chunk, slot);
      const ops = calls * (p.c.opsPerCall ?? 1);
      p.samples.push((ops * 1e9) / Number(ns));
      p.totalOps += ops;
      p.totalNs += ns;
    }
  }
  return prepared.map((p) => {
    const opsPerSec = median(p.samples);
    return {
      impl: p.c.impl,
      ...(p.c.note !== undefined ? { note: p.c.note } : {}),
      opsPerSec,
      nsPerOp: 1e9 / opsPerSec,
      rsdPercent: rsd(p.samples),
      samples: p.samples.map((x) => Math.round(x * 10) / 10),
      totalOps: p.totalOps,
      totalNs: Number(p.totalNs),
    };
  });
}

/** `12,345` / `1.23M` style formatting for ops/s. */
export function formatRate(x: number): string {
  if (x >= 1e7) return `${(x / 1e6).toFixed(1)}M`;
  if (x >= 100) return Math.round(x).toLocaleString('en-US');
  return x.toFixed(1);
}

/** Renders rows as a plain-text table with right-aligned numeric columns. */
export function renderTable(header: string[], rows: string[][], rightAligned: boolean[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (rightAligned[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
