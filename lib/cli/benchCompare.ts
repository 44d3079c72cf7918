/**
 * How benchmarks compare quantum-tunnel with other implementations, shared by `quantum-vpn bench`
 * and bench/tunnel.bench.ts: the sides measured in alternating rounds (a slow spell of a shared
 * machine hits every side alike), medians, and the one registry of performance targets with the
 * verdict of a measured ratio against each.
 */

/** One performance target: a ratio of ours over another (`min`) or an absolute bound (`max`). */
export interface BenchTarget {
  /** Which issue set it. */
  issue: string;
  /** What is measured, e.g. `handshakes/s sequential vs node:tls TLS-PQ`. */
  what: string;
  /** Met when the ratio (ours over theirs) is at least this. */
  min?: number;
  /** Met when the value is at most this. */
  max?: number;
  /** Unit of `max` (`KiB`) or of `min` when it is not a ratio (`round trips`). */
  unit?: string;
}

const ISSUE_11 = 'issue 11';
const EARLIER = 'issues 9-10';

/**
 * Every target, by id. Issue 11's apply to protocol v2 with its default group and, where the wire
 * allows, to legacy v1; TLS-PQ means TLS 1.3 with X25519MLKEM768 (Node 24), which Node 20's TLS
 * cannot negotiate.
 */
export const TARGETS = Object.freeze({
  handshakesSequentialVsGo: { issue: ISSUE_11, what: 'handshakes/s sequential vs Go reference', min: 2 },
  handshakesSequentialVsTlsPq: { issue: ISSUE_11, what: 'handshakes/s sequential vs node:tls TLS-PQ', min: 3 },
  handshakesConcurrentVsGo: { issue: ISSUE_11, what: 'handshakes/s 64 concurrent clients vs Go reference', min: 2 },
  handshakesConcurrentVsTlsPq: { issue: ISSUE_11, what: 'handshakes/s 64 concurrent clients vs node:tls TLS-PQ', min: 3 },
  throughputAesVsTls: { issue: ISSUE_11, what: 'throughput 64 KiB writes, AES-256-GCM, vs node:tls', min: 1.5 },
  throughputAesVsGo: { issue: ISSUE_11, what: 'throughput 64 KiB writes, AES-256-GCM, vs Go reference', min: 2 },
  throughputChachaVsTls: { issue: ISSUE_11, what: 'throughput 64 KiB writes, ChaCha20-Poly1305, vs node:tls', min: 1.5 },
  throughputChachaVsGo: { issue: ISSUE_11, what: 'throughput 64 KiB writes, ChaCha20-Poly1305, vs Go reference', min: 2 },
  idleMemory: { issue: ISSUE_11, what: 'memory per idle tunnel end beyond a TCP socket', max: 64, unit: 'KiB' },
  fipsVsStandard: { issue: ISSUE_11, what: 'handshakes/s, FIPS mode vs standard mode', min: 0.5 },
  handshakesSequentialVsV1: { issue: EARLIER, what: 'handshakes/s sequential, v2 vs v1', min: 1 },
  handshakesConcurrentVsV1: { issue: EARLIER, what: 'handshakes/s 64 concurrent clients, v2 vs v1', min: 1 },
  throughputVsV1: { issue: EARLIER, what: 'throughput, v2 vs v1', min: 1 },
  roundTripSaved: { issue: EARLIER, what: 'round trips v2 saves over v1 to the first echoed byte', min: 0.75, unit: 'round trips' },
  pinnedMutualVsAnonymous: { issue: EARLIER, what: 'handshakes/s sequential, pinned keys mutual vs anonymous', min: 0.8 },
} satisfies Record<string, BenchTarget>);

/** A target's id. */
export type TargetId = keyof typeof TARGETS;

/** `met`, `missed`, or `n/a` when the comparison could not be made as the target defines it. */
export type Verdict = 'met' | 'missed' | 'n/a';

/** One target checked for one side of ours. */
export interface TargetResult {
  target: TargetId;
  issue: string;
  what: string;
  /** `v2`, `v1` or a finer name (`v2 x25519-mlkem1024`). */
  side: string;
  /** `>= 3x`, `<= 64 KiB`. */
  wanted: string;
  /** Our figure. */
  ours: number;
  /** The other side's figure; absent for absolute targets. */
  theirs?: number;
  /** ours / theirs (ratio targets), or ours itself (absolute targets). */
  measured: number;
  verdict: Verdict;
  /** Why the verdict is n/a, or what the other side was (`X25519MLKEM768`). */
  note?: string;
}

function wanted(t: BenchTarget): string {
  return t.max !== undefined ? `<= ${t.max} ${t.unit}` : `>= ${t.min}${t.unit ? ` ${t.unit}` : 'x'}`;
}

/**
 * Checks `ours` against a target: with `theirs`, their ratio against `min`; without, `ours`
 * itself against `max` (or `min` for a target with a unit). `notApplicable` gives the reason the
 * figures exist but do not answer the target (TLS without ML-KEM, an unsupported suite): the
 * ratio is still reported, with verdict n/a. A missing or NaN figure also gives n/a.
 */
export function checkTarget(id: TargetId, side: string, ours: number, theirs?: number, notApplicable?: string, note?: string): TargetResult {
  const t: BenchTarget = TARGETS[id];
  const ratioTarget = t.max === undefined && t.unit === undefined;
  const measured = ratioTarget ? ours / theirs! : ours;
  let verdict: Verdict;
  if (notApplicable !== undefined || !Number.isFinite(measured)) verdict = 'n/a';
  else verdict = (t.max !== undefined ? measured <= t.max : measured >= t.min!) ? 'met' : 'missed';
  const why = notApplicable ?? (Number.isFinite(measured) ? note : (note ?? 'no figure'));
  return {
    target: id,
    issue: t.issue,
    what: t.what,
    side,
    wanted: wanted(t),
    ours,
    ...(theirs !== undefined ? { theirs } : {}),
    measured,
    verdict,
    ...(why !== undefined ? { note: why } : {}),
  };
}

/** The text lines of a targets block, grouped by issue: what, side, wanted, measured, verdict. */
export function formatTargets(results: readonly TargetResult[]): string[] {
  const lines: string[] = [];
  const whatWidth = Math.max(0, ...results.map((r) => r.what.length));
  const sideWidth = Math.max(0, ...results.map((r) => r.side.length));
  const wantedWidth = Math.max(0, ...results.map((r) => r.wanted.length));
  const value = (r: TargetResult) => {
    const t: BenchTarget = TARGETS[r.target];
    if (!Number.isFinite(r.measured)) return '-';
    return `${r.measured.toFixed(2)}${t.unit ? ` ${t.unit}` : 'x'}`;
  };
  const valueWidth = Math.max(0, ...results.map((r) => value(r).length));
  for (const issue of [...new Set(results.map((r) => r.issue))]) {
    lines.push(`targets (${issue}):`);
    for (const r of results.filter((x) => x.issue === issue)) {
      const verdict = r.verdict === 'missed' ? 'MISSED' : r.verdict;
      lines.push(`  ${r.what.padEnd(whatWidth)}  ${r.side.padEnd(sideWidth)}  ${r.wanted.padEnd(wantedWidth)}  ${value(r).padStart(valueWidth)}  ${verdict}${r.note ? ` (${r.note})` : ''}`);
    }
  }
  return lines;
}

/**
 * Measures every side `rounds` times, one side after another, starting each round one side later,
 * so that no side always runs first (cold) or last (after the others' garbage). Returns each
 * side's results in round order.
 */
export async function alternate<T>(sides: ReadonlyArray<() => T | Promise<T>>, rounds: number): Promise<T[][]> {
  const results: T[][] = sides.map(() => []);
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < sides.length; k++) {
      const i = (r + k) % sides.length;
      results[i]!.push(await sides[i]!());
    }
  }
  return results;
}

/** The median of numbers (the mean of the middle two for an even count); NaN values are left out. */
export function median(xs: readonly number[]): number {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The median element of results by `key` (the lower middle one for an even count). */
export function medianBy<T>(xs: readonly T[], key: (x: T) => number): T {
  const s = [...xs].sort((a, b) => key(a) - key(b));
  return s[(s.length - 1) >> 1]!;
}
