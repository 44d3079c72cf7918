/**
 * `quantum-vpn bench`: handshake latency and bulk throughput against a listener in this process,
 * over loopback TCP, for protocol v2 and legacy v1 side by side, and by default beside Node's own
 * TLS 1.3 and (with QUANTUM_GO_BIN) the Go reference, in alternating rounds reported as medians,
 * with the ratios against the targets of lib/cli/benchCompare.ts. Unlike the reference, `--cipher`
 * really selects the suite (both ends offer and accept only that one, TLS's too), and every
 * connection is checked to have negotiated the suite, protocol and group of its run.
 */
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { info as cryptoInfo } from '../crypto/info.js';
import { defaultKemGroup, KEM_GROUPS, type KemGroupSpec } from '../protocol/v2/groups.js';
import { dial } from '../tunnel/dial.js';
import { listen, type Listener } from '../tunnel/listener.js';
import type { CipherName, DialOptions, KemGroupName } from '../tunnel/options.js';
import type { Tunnel } from '../tunnel/tunnel.js';
import { alternate, checkTarget, formatTargets, median, medianBy, type TargetId, type TargetResult } from './benchCompare.js';
import { type GoPeer, goPeer, GO_MAX_BULK_BYTES, selfSignedP256, TLS13_SUITES, type TlsCredentials, type TlsNegotiated, tlsPeer } from './benchPeers.js';
import { CliError, type FlagSpec, formatBytes, type ParsedArgs, parseDuration, parseSize, UsageError } from './args.js';
import { applyFips, cipherFlag, ciphersFromFlag, type Command, displayName, describeError, err, FIPS_FLAG, out, VERSION } from './common.js';
import { GROUPS_FLAG, groupsFromFlag, LEGACY_V1_FLAG, protocolSummary, v1Permitted, V1_KEY_EXCHANGE } from './protocol.js';

const FLAGS: FlagSpec[] = [
  { name: 'handshakes', kind: 'int', metavar: 'N', default: 0, defaultText: '0: skip', help: 'Number of handshakes (dial, then close) to time in each run' },
  { name: 'concurrency', kind: 'int', metavar: 'C', default: 1, help: 'Handshakes in flight at once (1 = sequential)' },
  { name: 'throughput', kind: 'boolean', default: false, help: 'Run the throughput test (client to server, 64 KiB writes) for each protocol' },
  { name: 'size', kind: 'string', metavar: 'SIZE', default: '100MB', help: 'Bytes to send in each throughput test: K/KB, M/MB, G/GB (powers of 1024), or bytes' },
  { name: 'duration', kind: 'string', metavar: 'DURATION', default: '10s', help: 'Stop each throughput test after this long even if --size is not reached (Go syntax: 10s, 1m30s)' },
  cipherFlag('aes-gcm'),
  { name: 'protocols', kind: 'string', metavar: 'LIST', default: 'v2,v1', help: 'Protocols to run, comma-separated: v2, v1' },
  {
    ...GROUPS_FLAG,
    defaultText: 'the default group and p384-mlkem1024 (in FIPS mode p384-mlkem1024, then x25519-mlkem1024 when permitted)',
    help: 'Protocol v2 groups to run, comma-separated: one handshake run for each; the throughput test uses the first',
  },
  { ...LEGACY_V1_FLAG, help: 'Run protocol v1 (Quantum-Go) only: the same as --protocols v1' },
  {
    name: 'compare',
    kind: 'string',
    metavar: 'LIST',
    default: 'tls,go',
    help: 'Peers measured side by side with ours, comma-separated: tls (node:tls 1.3 in this process), go (the Go reference at QUANTUM_GO_BIN; skipped when unset), or none',
  },
  { name: 'rounds', kind: 'int', metavar: 'N', default: 3, help: 'Rounds of each test, every side once per round in rotating order; each figure is the median round' },
  { name: 'json', kind: 'boolean', default: false, help: 'Print one JSON object instead of the report' },
  FIPS_FLAG,
];

const CHUNK = 64 * 1024;

export interface HandshakeResults {
  count: number;
  successful: number;
  failed: number;
  concurrency: number;
  totalMs: number;
  perSecond: number;
  avgMs: number;
  minMs: number;
  maxMs: number;
  p50Ms: number;
  p99Ms: number;
  rating: string;
  suite: string;
  /** `v2` or `v1` (`TLS 1.3` for node:tls). */
  protocol: string;
  /** The v2 group's name (`X25519 + ML-KEM-1024`); null in v1; the negotiated group for node:tls. */
  group: string | null;
  /** Handshakes/s of every round, in order (this result is the median round's). */
  perRound: number[];
  firstError?: string;
}

export interface ThroughputResults {
  requestedBytes: number;
  bytes: number;
  receivedBytes: number;
  chunkBytes: number;
  stoppedByDuration: boolean;
  sendSeconds: number;
  receiveSeconds: number;
  sendMBps: number;
  receiveMBps: number;
  sendMbps: number;
  receiveMbps: number;
  rating: string;
  suite: string;
  protocol: string;
  group: string | null;
  /** Receive MB/s of every round, in order (this result is the median round's). */
  perRound: number[];
}

/** node:tls 1.3 measured beside ours (`compare.tls` of the JSON). */
export interface TlsComparison {
  /** `node:tls 1.3 (Node v24.x), X25519MLKEM768, ECDSA P-256, TLS_AES_256_GCM_SHA384`. */
  summary: string;
  node: string;
  suite: string;
  /** The key exchange group TLS negotiated, as OpenSSL names it. */
  group: string;
  /** True when that group includes ML-KEM (TLS-PQ); Node 20's TLS has none. */
  postQuantum: boolean;
  handshakes?: HandshakeResults;
  throughput?: ThroughputResults;
}

/** The Go reference measured beside ours (`compare.go` of the JSON). */
export interface GoComparison {
  /** `Quantum-Go client and server (protocol v1 wire), AES-256-GCM`, or why it did not run. */
  summary: string;
  skipped?: string;
  handshakes?: { count: number; concurrency: number; perSecond: number; perRound: number[] };
  throughput?: { bytes: number; chunkBytes: number; receiveMBps: number; perRound: number[] };
  /** Why a test of it did not run (ChaCha20-Poly1305, which its driver cannot choose). */
  notes?: string[];
}

/** One ratio of ours over a peer, from the figures the report shows. */
export interface BenchRatio {
  /** Our run's name (`v2 x25519-mlkem1024`, `v1`). */
  run: string;
  against: 'tls' | 'go';
  /** `handshakes/s` (perSecond) or `MB/s` (receiveMBps). */
  metric: 'handshakes/s' | 'MB/s';
  ours: number;
  theirs: number;
  ratio: number;
}

/** One configuration measured: a protocol and, for v2, a group. */
export interface BenchRun {
  /** `v2 x25519-mlkem1024`, `v1`. */
  name: string;
  protocol: 'v2' | 'v1';
  /** The v2 group option; null in v1. */
  groupOption: KemGroupName | null;
  /** The v2 group's name; null in v1. */
  group: string | null;
  /** What ran, as the tunnels reported it: `protocol v2, X25519 + ML-KEM-1024, AES-256-GCM`. */
  summary: string;
  handshakes?: HandshakeResults;
  throughput?: ThroughputResults;
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1]!;
}

const round = (v: number, digits = 3) => Math.round(v * 10 ** digits) / 10 ** digits;

function handshakeRating(avgMs: number): string {
  if (avgMs < 2) return 'Excellent (< 2 ms)';
  if (avgMs < 5) return 'Good (< 5 ms)';
  if (avgMs < 10) return 'Acceptable (< 10 ms)';
  return 'Slow (>= 10 ms)';
}

function throughputRating(mbps: number): string {
  if (mbps > 500) return 'Excellent (> 500 MB/s)';
  if (mbps > 200) return 'Good (> 200 MB/s)';
  if (mbps > 50) return 'Acceptable (> 50 MB/s)';
  return 'May need optimization (<= 50 MB/s)';
}

/** The listener and dial options of a run. */
function runOptions(run: BenchRun, ciphers: CipherName[]): DialOptions {
  return run.protocol === 'v1' ? { ciphers, legacyV1: true } : { ciphers, groups: [run.groupOption!] };
}

/** Throws unless the tunnel negotiated what the run asked for. */
function checkTunnel(tunnel: Tunnel, run: BenchRun, expectedSuite: string): void {
  const i = tunnel.info();
  if (i.suite !== expectedSuite) throw new CliError(`negotiated ${i.suite}, expected ${expectedSuite}`);
  if (i.protocol !== run.protocol) throw new CliError(`negotiated protocol ${i.protocol}, expected ${run.protocol}`);
  if (run.group !== null && i.group !== run.group) throw new CliError(`negotiated ${i.group}, expected ${run.group}`);
}

/** What a handshake or throughput result reports as having run. */
interface RunLabels {
  suite: string;
  protocol: string;
  group: string | null;
}

/** A connection benchHandshakes times and then closes. */
interface Connected {
  close(): Promise<void>;
  destroy(): void;
}

/** Times `count` connects (each checked by `connect`), `concurrency` at once, then closes each. */
async function benchHandshakes(connect: () => Promise<Connected>, labels: RunLabels, count: number, concurrency: number): Promise<HandshakeResults> {
  const latencies: number[] = [];
  let failed = 0;
  let firstError: string | undefined;
  let started = 0;
  const one = async () => {
    const t0 = performance.now();
    let conn: Connected | undefined;
    try {
      conn = await connect();
      latencies.push(performance.now() - t0);
      await conn.close();
    } catch (e) {
      failed++;
      firstError ??= describeError(e);
      conn?.destroy();
    }
  };
  const worker = async () => {
    while (started < count) {
      started++;
      await one();
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  const totalMs = performance.now() - t0;
  const sorted = [...latencies].sort((a, b) => a - b);
  const avg = sorted.length ? sorted.reduce((a, b) => a + b, 0) / sorted.length : 0;
  const result: HandshakeResults = {
    count,
    successful: sorted.length,
    failed,
    concurrency: Math.min(concurrency, count),
    totalMs: round(totalMs),
    perSecond: round(totalMs > 0 ? sorted.length / (totalMs / 1000) : 0, 1),
    avgMs: round(avg),
    minMs: round(sorted[0] ?? 0),
    maxMs: round(sorted[sorted.length - 1] ?? 0),
    p50Ms: round(percentile(sorted, 50)),
    p99Ms: round(percentile(sorted, 99)),
    rating: sorted.length ? handshakeRating(avg) : 'Failed',
    ...labels,
    perRound: [],
  };
  if (firstError !== undefined) result.firstError = firstError;
  return result;
}

/** Counts what a server-side stream receives until its end, and when the last byte came. */
function countReceived(stream: Duplex): Promise<{ bytes: number; last: number }> {
  return new Promise((resolve, reject) => {
    let bytes = 0;
    let last = 0;
    stream.on('data', (d: Buffer) => {
      bytes += d.length;
      last = performance.now();
    });
    stream.on('end', () => resolve({ bytes, last }));
    stream.on('error', reject);
  });
}

/** A client connection (checked) and what its server end will have received. */
interface BulkConnection {
  client: Duplex;
  received: Promise<{ bytes: number; last: number }>;
}

async function benchThroughput(open: () => Promise<BulkConnection>, labels: RunLabels, size: number, durationMs: number): Promise<ThroughputResults> {
  const { client, received } = await open();
  received.catch(() => undefined);
  const failure = new Promise<never>((_, reject) => client.once('error', reject));
  failure.catch(() => undefined);
  const chunk = randomBytes(CHUNK);
  let sent = 0;
  let stoppedByDuration = false;
  const start = performance.now();
  while (sent < size) {
    if (performance.now() - start >= durationMs) {
      stoppedByDuration = true;
      break;
    }
    const len = Math.min(CHUNK, size - sent);
    const ok = client.write(len === CHUNK ? chunk : chunk.subarray(0, len));
    sent += len;
    if (!ok) await Promise.race([new Promise((r) => client.once('drain', r)), failure]);
  }
  client.end();
  await Promise.race([new Promise((r) => client.once('finish', r)), failure]);
  const sendSeconds = (performance.now() - start) / 1000;
  const { bytes, last } = await Promise.race([received, failure]);
  await Promise.race([new Promise((r) => (client.destroyed ? r(undefined) : client.once('close', r))), failure]).catch(() => undefined);
  const receiveSeconds = ((last || performance.now()) - start) / 1000;
  const sendMBps = sent / 1e6 / sendSeconds;
  const receiveMBps = bytes / 1e6 / receiveSeconds;
  if (bytes !== sent) throw new CliError(`the server received ${bytes} bytes of ${sent}`);
  return {
    requestedBytes: size,
    bytes: sent,
    receivedBytes: bytes,
    chunkBytes: CHUNK,
    stoppedByDuration,
    sendSeconds: round(sendSeconds, 6),
    receiveSeconds: round(receiveSeconds, 6),
    sendMBps: round(sendMBps, 2),
    receiveMBps: round(receiveMBps, 2),
    sendMbps: round(sendMBps * 8, 1),
    receiveMbps: round(receiveMBps * 8, 1),
    rating: throughputRating(Math.min(sendMBps, receiveMBps)),
    ...labels,
    perRound: [],
  };
}

// ---- our runs and the peers, one measurement each ----------------------------------------------

/** Our handshakes for `run`, against a listener of its own. */
function ourHandshakes(run: BenchRun, ciphers: CipherName[], count: number, concurrency: number): Promise<HandshakeResults> {
  const suite = displayName(ciphers[0]!);
  return withListener(run, ciphers, (listener) => {
    // Each server tunnel is read so that the client's close_notify is seen and answered at once.
    listener.on('tunnel', (t: Tunnel) => {
      t.on('error', () => undefined);
      t.resume();
    });
    const connect = async () => {
      const tunnel = await dial({ host: '127.0.0.1', port: listener.address().port }, runOptions(run, ciphers));
      tunnel.on('error', () => undefined);
      try {
        checkTunnel(tunnel, run, suite);
      } catch (e) {
        tunnel.destroy();
        throw e;
      }
      return tunnel;
    };
    return benchHandshakes(connect, { suite, protocol: run.protocol, group: run.group }, count, concurrency);
  });
}

/** Our throughput for `run`, against a listener of its own. */
function ourThroughput(run: BenchRun, ciphers: CipherName[], size: number, durationMs: number): Promise<ThroughputResults> {
  const suite = displayName(ciphers[0]!);
  return withListener(run, ciphers, (listener) =>
    benchThroughput(
      async () => {
        const received = new Promise<{ bytes: number; last: number }>((resolve, reject) => listener.once('tunnel', (t: Tunnel) => {
          countReceived(t).then(resolve, reject);
        }));
        const client = await dial({ host: '127.0.0.1', port: listener.address().port }, runOptions(run, ciphers));
        try {
          checkTunnel(client, run, suite);
        } catch (e) {
          client.destroy();
          throw e;
        }
        return { client, received };
      },
      { suite, protocol: run.protocol, group: run.group },
      size,
      durationMs,
    ),
  );
}

/** Closes a TLS client the way our tunnels close: end, then wait for the server's end. */
function closeTls(s: TLSSocket): Promise<void> {
  return new Promise((resolve) => {
    if (s.destroyed) return resolve();
    s.once('close', () => resolve());
    s.end();
  });
}

/** node:tls 1.3 with the same suite as ours: each measurement gets a server of its own. */
class TlsSide {
  private readonly creds: TlsCredentials = selfSignedP256();
  negotiated: TlsNegotiated | undefined;

  constructor(private readonly cipher: CipherName) {}

  private labels(): RunLabels {
    return { suite: TLS13_SUITES[this.cipher], protocol: 'TLS 1.3', group: this.negotiated?.group ?? null };
  }

  async handshakes(count: number, concurrency: number): Promise<HandshakeResults> {
    const peer = await tlsPeer({ credentials: this.creds, cipher: this.cipher, onStream: (s) => { s.on('error', () => undefined); s.resume(); s.on('end', () => s.end()); } });
    try {
      const connect = async () => {
        const s = await peer.connect();
        return { close: () => closeTls(s), destroy: () => s.destroy() };
      };
      const r = await benchHandshakes(connect, this.labels(), count, concurrency);
      this.negotiated = peer.negotiated() ?? this.negotiated;
      return { ...r, ...this.labels() };
    } finally {
      await peer.close();
    }
  }

  async throughput(size: number, durationMs: number): Promise<ThroughputResults> {
    let receiver: ((s: TLSSocket) => void) | undefined;
    const peer = await tlsPeer({ credentials: this.creds, cipher: this.cipher, onStream: (s) => { s.on('error', () => undefined); s.on('end', () => s.end()); receiver?.(s); } });
    try {
      const r = await benchThroughput(
        async () => {
          const received = new Promise<{ bytes: number; last: number }>((resolve, reject) => {
            receiver = (s) => {
              countReceived(s).then(resolve, reject);
            };
          });
          return { client: await peer.connect(), received };
        },
        this.labels(),
        size,
        durationMs,
      );
      this.negotiated = peer.negotiated() ?? this.negotiated;
      return { ...r, ...this.labels() };
    } finally {
      await peer.close();
    }
  }
}

// ---- report -------------------------------------------------------------------------------------

const LABEL_WIDTH = 18;

/** A column header: `v2 X25519+ML-KEM-1024`, `v1 (legacy)`. */
function columnName(run: BenchRun): string {
  return run.protocol === 'v1' ? 'v1 (legacy)' : `v2 ${run.group!.replace(/ \+ /g, '+')}`;
}

/**
 * A column of the report: one of our runs or a peer. The Go reference reports its rate alone
 * (`rate` in handshakes/s, `mbps` in MB/s), so its other cells are `-`.
 */
interface Column {
  name: string;
  handshakes?: HandshakeResults;
  throughput?: ThroughputResults;
  rate?: number;
  mbps?: number;
}

const TLS_COLUMN = 'node:tls 1.3';
const GO_COLUMN = 'Go reference';

/** Rows of a table, one column each. */
function table<T>(columns: readonly T[], name: (c: T) => string, rows: Array<[string, (c: T) => string]>): void {
  const width = Math.max(16, ...columns.map((c) => name(c).length + 3), ...columns.flatMap((c) => rows.map(([, cell]) => cell(c).length + 3)));
  const labelWidth = Math.max(LABEL_WIDTH, ...rows.map(([label]) => label.length + 3));
  const line = (label: string, cells: string[]) => out(`${label.padEnd(labelWidth)}${cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(width))).join('')}`.trimEnd());
  line('', columns.map(name));
  for (const [label, cell] of rows) line(`  ${label}`, columns.map(cell));
}

function printHandshakes(columns: readonly Column[]): void {
  const first = columns[0]!.handshakes!;
  const each = columns.length > 1 ? ' per run' : '';
  out(`Handshake benchmark: ${first.count} handshakes${each}, ${first.concurrency === 1 ? 'sequential' : `concurrency ${first.concurrency}`}`);
  const cell = (c: Column, text: (h: HandshakeResults) => string) => (c.handshakes && c.handshakes.successful > 0 ? text(c.handshakes) : '-');
  table(columns, (c) => c.name, [
    ['Successful:', (c) => (c.handshakes ? String(c.handshakes.successful) : '-')],
    ['Failed:', (c) => (c.handshakes ? String(c.handshakes.failed) : '-')],
    ['Total time:', (c) => (c.handshakes ? `${c.handshakes.totalMs.toFixed(2)} ms` : '-')],
    ['Average:', (c) => cell(c, (h) => `${h.avgMs.toFixed(3)} ms`)],
    ['Min / max:', (c) => cell(c, (h) => `${h.minMs.toFixed(3)} / ${h.maxMs.toFixed(3)} ms`)],
    ['p50 / p99:', (c) => cell(c, (h) => `${h.p50Ms.toFixed(3)} / ${h.p99Ms.toFixed(3)} ms`)],
    ['Handshakes/s:', (c) => (c.rate !== undefined ? rateText(c.rate) : cell(c, (h) => h.perSecond.toFixed(1)))],
    ['Rating:', (c) => c.handshakes?.rating ?? '-'],
  ]);
  for (const c of columns) if (c.handshakes?.firstError) out(`  First error (${c.name}): ${c.handshakes.firstError}`);
}

function printThroughput(columns: readonly Column[]): void {
  const first = columns[0]!.throughput!;
  const each = columns.length > 1 ? ' per run' : '';
  out(`Throughput benchmark: ${formatBytes(first.requestedBytes)} requested${each}, ${formatBytes(first.chunkBytes)} writes, client to server`);
  const cell = (c: Column, text: (t: ThroughputResults) => string) => (c.throughput ? text(c.throughput) : '-');
  table(columns, (c) => c.name, [
    ['Bytes sent:', (c) => cell(c, (t) => `${t.bytes} (${formatBytes(t.bytes)})${t.stoppedByDuration ? ' *' : ''}`)],
    ['Bytes received:', (c) => cell(c, (t) => `${t.receivedBytes} (${formatBytes(t.receivedBytes)})`)],
    ['Send time:', (c) => cell(c, (t) => `${t.sendSeconds.toFixed(3)} s`)],
    ['Receive time:', (c) => cell(c, (t) => `${t.receiveSeconds.toFixed(3)} s`)],
    ['Send:', (c) => cell(c, (t) => `${t.sendMBps.toFixed(2)} MB/s (${t.sendMbps.toFixed(1)} Mbps)`)],
    ['Receive:', (c) => (c.mbps !== undefined ? (Number.isNaN(c.mbps) ? 'failed' : `${c.mbps.toFixed(2)} MB/s (${(c.mbps * 8).toFixed(1)} Mbps)`) : cell(c, (t) => `${t.receiveMBps.toFixed(2)} MB/s (${t.receiveMbps.toFixed(1)} Mbps)`))],
    ['Rating:', (c) => cell(c, (t) => t.rating)],
  ]);
  if (columns.some((c) => c.throughput?.stoppedByDuration)) out('  * stopped by --duration');
}

const rateText = (v: number) => (Number.isNaN(v) ? 'failed' : v.toFixed(1));

/** Ours over each peer, one column per run of ours that has the figure. */
function printRatios(runs: readonly BenchRun[], ratios: readonly BenchRatio[]): void {
  const rows: Array<[string, BenchRatio['against'], BenchRatio['metric']]> = [
    ['Handshakes/s vs node:tls:', 'tls', 'handshakes/s'],
    ['Handshakes/s vs Go:', 'go', 'handshakes/s'],
    ['MB/s vs node:tls:', 'tls', 'MB/s'],
    ['MB/s vs Go:', 'go', 'MB/s'],
  ];
  const present = rows.filter(([, against, metric]) => ratios.some((r) => r.against === against && r.metric === metric));
  if (present.length === 0) return;
  const find = (run: BenchRun, against: string, metric: string) => ratios.find((r) => r.run === run.name && r.against === against && r.metric === metric);
  out('Ratios, ours over the other (better = higher; MB/s as received):');
  table(runs, columnName, present.map(([label, against, metric]) => [label, (run: BenchRun) => {
    const r = find(run, against, metric);
    return r && Number.isFinite(r.ratio) ? `${r.ratio.toFixed(2)}x` : '-';
  }]));
}

// ---- runs ---------------------------------------------------------------------------------------

/** The runs the flags ask for: v2 with each group, then v1. */
function runsFromFlags(args: ParsedArgs, suite: string): { runs: BenchRun[]; notes: string[] } {
  const f = args.flags;
  const notes: string[] = [];
  if (f['legacy-v1'] === true && args.given.has('protocols')) throw new UsageError('give --legacy-v1 or --protocols, not both');
  const protocolList = f['legacy-v1'] === true ? ['v1'] : String(f.protocols).split(',').map((p) => p.trim().toLowerCase()).filter((p) => p !== '');
  for (const p of protocolList) if (p !== 'v2' && p !== 'v1') throw new UsageError(`invalid --protocols ${JSON.stringify(f.protocols)}: expected v2, v1 or v2,v1`);
  if (protocolList.length === 0) throw new UsageError(`invalid --protocols ${JSON.stringify(f.protocols)}: name at least one protocol`);
  const v2 = protocolList.includes('v2');
  const v1 = protocolList.includes('v1');
  if (!v2 && args.given.has('groups')) throw new UsageError('--groups applies to protocol v2 runs');
  const runs: BenchRun[] = [];
  if (v2) {
    let groups: KemGroupSpec[];
    const named = groupsFromFlag(f.groups);
    if (named) {
      groups = named.map((n) => KEM_GROUPS.find((g) => g.option === n)!);
    } else {
      const first = defaultKemGroup();
      const second = KEM_GROUPS.find((g) => g.option === (first.option === 'p384-mlkem1024' ? 'x25519-mlkem1024' : 'p384-mlkem1024'))!;
      groups = [first, second].filter((g) => g.permitted());
    }
    for (const g of groups) {
      runs.push({ name: `v2 ${g.option}`, protocol: 'v2', groupOption: g.option as KemGroupName, group: g.displayName, summary: protocolSummary({ protocol: 'v2', group: g.displayName, suite }) });
    }
  }
  if (v1) {
    if (v1Permitted() || args.given.has('protocols') || f['legacy-v1'] === true) {
      runs.push({ name: 'v1', protocol: 'v1', groupOption: null, group: null, summary: protocolSummary({ protocol: 'v1', group: undefined, suite }) });
    } else {
      notes.push(`protocol v1 skipped: strict FIPS mode refuses its X25519 (${V1_KEY_EXCHANGE})`);
    }
  }
  return { runs, notes };
}

/** Runs `fn` against a listener configured for `run`, closed afterwards. */
async function withListener<T>(run: BenchRun, ciphers: CipherName[], fn: (listener: Listener) => Promise<T>): Promise<T> {
  const listener = listen({ host: '127.0.0.1', port: 0, ...runOptions(run, ciphers) });
  listener.on('error', () => undefined);
  listener.on('handshakeError', () => undefined);
  try {
    await listener.ready;
    return await fn(listener);
  } finally {
    await listener.close({ tunnels: true });
  }
}

/** The peers `--compare` names. */
function compareFromFlag(value: string): { tls: boolean; go: boolean } {
  const names = value.split(',').map((p) => p.trim().toLowerCase()).filter((p) => p !== '');
  const bad = () => new UsageError(`invalid --compare ${JSON.stringify(value)}: expected tls, go, tls,go or none`);
  if (names.length === 0) throw bad();
  if (names.includes('none')) {
    if (names.length > 1) throw bad();
    return { tls: false, go: false };
  }
  for (const n of names) if (n !== 'tls' && n !== 'go') throw bad();
  return { tls: names.includes('tls'), go: names.includes('go') };
}

/** The median round of results, with every round's figure in `perRound`. */
function medianRound<T extends { perRound: number[] }>(rounds: T[], figure: (r: T) => number): T {
  return { ...medianBy(rounds, figure), perRound: rounds.map(figure) };
}

/** What the TLS column stands for, from what its handshakes negotiated. */
function tlsSummary(suite: string, n: TlsNegotiated | undefined): string {
  const group = n === undefined ? 'group unknown' : n.postQuantum ? `${n.group} (TLS-PQ)` : `${n.group} (no ML-KEM: not TLS-PQ)`;
  return `node:tls 1.3 (Node ${process.version}), ${group}, ECDSA P-256, ${suite}`;
}

const GO_CHACHA = 'the Go driver cannot choose ChaCha20-Poly1305';

/**
 * The ratios of every run of ours over each peer (from the figures reported), and issue 11's
 * targets for the runs they are set for: v2 with the default group, and v1.
 */
function comparisons(runs: readonly BenchRun[], tls: TlsComparison | undefined, go: GoComparison | undefined, cipher: CipherName): { ratios: BenchRatio[]; targets: TargetResult[]; notes: string[] } {
  const ratios: BenchRatio[] = [];
  const targets: TargetResult[] = [];
  const notes: string[] = [];
  const add = (run: BenchRun, against: 'tls' | 'go', metric: BenchRatio['metric'], ours: number | undefined, theirs: number | undefined) => {
    if (ours === undefined || theirs === undefined || !(theirs > 0)) return;
    ratios.push({ run: run.name, against, metric, ours, theirs, ratio: round(ours / theirs, 4) });
  };
  for (const run of runs) {
    add(run, 'tls', 'handshakes/s', run.handshakes?.perSecond, tls?.handshakes?.perSecond);
    add(run, 'go', 'handshakes/s', run.handshakes?.perSecond, go?.handshakes?.perSecond);
    add(run, 'tls', 'MB/s', run.throughput?.receiveMBps, tls?.throughput?.receiveMBps);
    add(run, 'go', 'MB/s', run.throughput?.receiveMBps, go?.throughput?.receiveMBps);
  }
  const notPq = tls && !tls.postQuantum ? `node:tls negotiated ${tls.group}, not TLS-PQ` : undefined;
  const goAbsent = go?.skipped;
  const concurrency = runs.find((r) => r.handshakes)?.handshakes?.concurrency;
  const handshakeIds: [TargetId, TargetId] | undefined =
    concurrency === 1 ? ['handshakesSequentialVsTlsPq', 'handshakesSequentialVsGo'] : concurrency === 64 ? ['handshakesConcurrentVsTlsPq', 'handshakesConcurrentVsGo'] : undefined;
  if (concurrency !== undefined && handshakeIds === undefined && (tls || go)) notes.push(`no handshake targets at concurrency ${concurrency}: issue 11 sets them for 1 (sequential) and 64`);
  const bulkIds: [TargetId, TargetId] = cipher === 'aes-256-gcm' ? ['throughputAesVsTls', 'throughputAesVsGo'] : ['throughputChachaVsTls', 'throughputChachaVsGo'];
  const defaultGroup = defaultKemGroup().option;
  for (const run of runs.filter((r) => r.protocol === 'v1' || r.groupOption === defaultGroup)) {
    const side = columnName(run);
    const h = run.handshakes?.perSecond;
    if (h !== undefined && handshakeIds) {
      if (tls?.handshakes) targets.push(checkTarget(handshakeIds[0], side, h, tls.handshakes.perSecond, notPq, tls.group));
      if (go) targets.push(checkTarget(handshakeIds[1], side, h, go.handshakes?.perSecond, goAbsent));
    }
    const t = run.throughput?.receiveMBps;
    if (t !== undefined) {
      if (tls?.throughput) targets.push(checkTarget(bulkIds[0], side, t, tls.throughput.receiveMBps));
      if (go) targets.push(checkTarget(bulkIds[1], side, t, go.throughput?.receiveMBps, goAbsent ?? (cipher === 'aes-256-gcm' ? undefined : GO_CHACHA)));
    }
  }
  return { ratios, targets, notes };
}

export const benchCommand: Command = {
  name: 'bench',
  summary: 'Handshake and throughput benchmarks over loopback: v2 and v1 beside node:tls and Go',
  synopsis:
    'quantum-vpn bench [--handshakes N [--concurrency C]] [--throughput [--size SIZE] [--duration D]] [--cipher NAME]\n' +
    '                  [--protocols v2,v1 | --legacy-v1] [--groups LIST] [--compare tls,go | none] [--rounds N] [--json]',
  description:
    'Runs listeners and clients in this process over 127.0.0.1 (so both ends share one event loop),\n' +
    'once for each protocol v2 group (by default the default group and P-384 + ML-KEM-1024) and once\n' +
    'for protocol v1, and prints the runs side by side. The throughput test runs for the first v2\n' +
    'group and for v1 (the group changes only the handshake). By default node:tls 1.3 (limited to the\n' +
    'same suite) runs beside them, and the Go reference too when QUANTUM_GO_BIN names its driver; every\n' +
    'side runs --rounds times in rotating order, each figure is its median round, and the report ends\n' +
    'with the ratios of ours over each peer and the targets of issue 11. Handshake latency is from the\n' +
    'start of the TCP connect to the established connection. MB/s means 10^6 bytes per second. Give at\n' +
    'least one of --handshakes and --throughput. Exits 1 if every handshake of a round fails or a\n' +
    'throughput test fails.',
  flags: FLAGS,
  async run(args: ParsedArgs): Promise<number> {
    const f = args.flags;
    const count = Number(f.handshakes);
    const concurrency = Number(f.concurrency);
    const throughput = f.throughput === true;
    if (count === 0 && !throughput) throw new UsageError('nothing to run: give --handshakes N and/or --throughput');
    if (concurrency < 1) throw new UsageError('--concurrency must be at least 1');
    const rounds = Number(f.rounds);
    if (rounds < 1) throw new UsageError('--rounds must be at least 1');
    const compare = compareFromFlag(String(f.compare));
    const size = parseSize(String(f.size));
    const durationMs = parseDuration(String(f.duration), '--duration');
    if (durationMs <= 0) throw new UsageError('--duration must be more than 0');
    await applyFips(f);
    const ciphers = ciphersFromFlag(String(f.cipher))!;
    const cipher = ciphers[0]!;
    const suite = displayName(cipher);
    const { runs, notes } = runsFromFlags(args, suite);
    if (runs.length === 0) throw new CliError('nothing to run in this mode');
    const json = f.json === true;
    const info = cryptoInfo();
    const tlsSide = compare.tls ? new TlsSide(cipher) : undefined;
    const tls: TlsComparison | undefined = tlsSide ? { summary: '', node: process.version, suite: TLS13_SUITES[cipher], group: 'unknown', postQuantum: false } : undefined;
    let goDriver: GoPeer | undefined;
    let go: GoComparison | undefined;
    if (compare.go) {
      const skipped = 'QUANTUM_GO_BIN is not set';
      goDriver = await goPeer();
      go = goDriver ? { summary: `Quantum-Go client and server (${goDriver.bin}), protocol v1 wire, AES-256-GCM` } : { summary: `skipped: ${skipped}`, skipped };
    }
    if (!json) {
      out(`quantum-vpn bench: ${suite}, ${info.openssl} (addon), FIPS mode ${info.fips ? 'on' : 'off'}`);
      for (const n of notes) out(`Note: ${n}`);
    }

    let code = 0;
    try {
      if (count > 0) {
        const sides: Array<() => Promise<HandshakeResults | number>> = runs.map((run) => () => ourHandshakes(run, ciphers, count, concurrency));
        if (tlsSide) sides.push(() => tlsSide.handshakes(count, concurrency));
        if (goDriver) sides.push(async () => goDriver.handshakes(count, concurrency));
        const results = await alternate(sides, rounds);
        runs.forEach((run, i) => {
          const each = results[i] as HandshakeResults[];
          run.handshakes = medianRound(each, (h) => h.perSecond);
          const failedRound = each.find((h) => h.successful === 0);
          if (failedRound) {
            err(`quantum-vpn: every handshake of a round failed (${run.summary})${failedRound.firstError ? `: ${failedRound.firstError}` : ''}`);
            code = 1;
          }
        });
        if (tlsSide) tls!.handshakes = medianRound(results[runs.length] as HandshakeResults[], (h) => h.perSecond);
        if (goDriver) {
          const rates = (results.at(-1) as number[]).map((r) => round(r, 1));
          go!.handshakes = { count, concurrency: Math.min(concurrency, count), perSecond: round(median(rates), 1), perRound: rates };
        }
      }
      // Bulk throughput depends on the protocol's record layer, not on the group: the first v2 run and v1.
      const bulk = runs.filter((r, i) => r.protocol === 'v1' || runs.findIndex((x) => x.protocol === 'v2') === i);
      if (throughput) {
        // A failed round gives its error, so the other sides still run and are reported.
        const attempt = <T>(fn: () => Promise<T>) => () => fn().catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))));
        const sides: Array<() => Promise<ThroughputResults | number | Error>> = bulk.map((run) => attempt(() => ourThroughput(run, ciphers, size, durationMs)));
        if (tlsSide) sides.push(attempt(() => tlsSide.throughput(size, durationMs)));
        const goBytes = Math.min(size, GO_MAX_BULK_BYTES);
        if (goDriver && cipher !== 'aes-256-gcm') (go!.notes ??= []).push(`throughput skipped: ${GO_CHACHA}`);
        else if (goDriver) sides.push(async () => goDriver.throughput(goBytes, CHUNK));
        const results = await alternate(sides, rounds);
        const pick = (each: Array<ThroughputResults | number | Error>, what: string): ThroughputResults | undefined => {
          const failure = each.find((r): r is Error => r instanceof Error);
          if (failure) {
            err(`quantum-vpn: throughput test failed (${what}): ${describeError(failure)}`);
            code = 1;
            return undefined;
          }
          return medianRound(each as ThroughputResults[], (t) => t.receiveMBps);
        };
        bulk.forEach((run, i) => {
          const t = pick(results[i]!, run.summary);
          if (t) run.throughput = t;
        });
        if (tlsSide) {
          const t = pick(results[bulk.length]!, 'node:tls');
          if (t) tls!.throughput = t;
        }
        if (goDriver && cipher === 'aes-256-gcm') {
          const rates = (results.at(-1) as number[]).map((r) => round(r, 2));
          go!.throughput = { bytes: goBytes, chunkBytes: CHUNK, receiveMBps: round(median(rates), 2), perRound: rates };
          if (goBytes < size) (go!.notes ??= []).push(`throughput sent ${formatBytes(goBytes)}, its most (it stalls at its 1 GiB rekey point)`);
        }
      }
    } finally {
      goDriver?.close();
    }
    if (tls) {
      Object.assign(tls, tlsSide!.negotiated ?? {});
      tls.suite = TLS13_SUITES[cipher];
      tls.summary = tlsSummary(tls.suite, tlsSide!.negotiated);
    }
    const compared = comparisons(runs, tls, go, cipher);
    const bulkRuns = runs.filter((r) => r.throughput);

    if (json) {
      const first = runs[0]!;
      const report: Record<string, unknown> = { version: VERSION, openssl: info.openssl, fips: info.fips, cipher: suite, rounds };
      // The first run's results under the names of earlier versions, then every run.
      if (first.handshakes) report.handshakes = first.handshakes;
      if (bulkRuns[0]) report.throughput = bulkRuns[0].throughput;
      report.runs = runs.map(({ name, protocol, groupOption, group, summary, handshakes, throughput: t }) => ({
        name,
        protocol,
        groupOption,
        group,
        summary,
        ...(handshakes ? { handshakes } : {}),
        ...(t ? { throughput: t } : {}),
      }));
      if (tls || go) report.compare = { ...(tls ? { tls } : {}), ...(go ? { go } : {}) };
      if (compared.ratios.length > 0) report.ratios = compared.ratios;
      if (compared.targets.length > 0) report.targets = compared.targets;
      const allNotes = [...notes, ...compared.notes];
      if (allNotes.length > 0) report.notes = allNotes;
      out(JSON.stringify(report, null, 2));
      return code;
    }
    out('Runs:');
    const listed: Array<[string, string]> = runs.map((r) => [columnName(r), r.summary]);
    if (tls) listed.push([TLS_COLUMN, tls.summary]);
    if (go) listed.push([GO_COLUMN, go.summary]);
    const nameWidth = Math.max(...listed.map(([n]) => n.length)) + 3;
    for (const [n, summary] of listed) out(`  ${n.padEnd(nameWidth)}${summary}`);
    if (tls || go) out(`Each figure is the median of ${rounds} alternating round${rounds === 1 ? '' : 's'}.`);
    const handshakeColumns: Column[] = runs.filter((r) => r.handshakes).map((r) => ({ name: columnName(r), handshakes: r.handshakes! }));
    if (handshakeColumns.length > 0) {
      if (tls?.handshakes) handshakeColumns.push({ name: TLS_COLUMN, handshakes: tls.handshakes });
      if (go?.handshakes) handshakeColumns.push({ name: GO_COLUMN, rate: go.handshakes.perSecond });
      out('');
      printHandshakes(handshakeColumns);
    }
    const bulkColumns: Column[] = bulkRuns.map((r) => ({ name: columnName(r), throughput: r.throughput! }));
    if (bulkColumns.length > 0) {
      if (tls?.throughput) bulkColumns.push({ name: TLS_COLUMN, throughput: tls.throughput });
      if (go?.throughput) bulkColumns.push({ name: GO_COLUMN, mbps: go.throughput.receiveMBps });
      out('');
      printThroughput(bulkColumns);
    }
    for (const n of go?.notes ?? []) out(`  Go reference: ${n}`);
    if (compared.ratios.length > 0) {
      out('');
      printRatios(runs, compared.ratios);
    }
    if (compared.targets.length > 0 || compared.notes.length > 0) {
      out('');
      for (const line of formatTargets(compared.targets)) out(line);
      for (const n of compared.notes) out(`Note: ${n}`);
    }
    return code;
  },
};
