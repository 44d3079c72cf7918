/**
 * `quantum-vpn bench`: handshake latency and bulk throughput against a listener in this process,
 * over loopback TCP, for protocol v2 and legacy v1 side by side. Unlike the reference, `--cipher`
 * really selects the suite (both ends offer and accept only that one), and every tunnel is
 * checked to have negotiated the suite, protocol and group of its run.
 */
import { randomBytes } from 'node:crypto';
import { info as cryptoInfo } from '../crypto/info.js';
import { defaultKemGroup, KEM_GROUPS, type KemGroupSpec } from '../protocol/v2/groups.js';
import { dial } from '../tunnel/dial.js';
import { listen, type Listener } from '../tunnel/listener.js';
import type { CipherName, DialOptions, KemGroupName } from '../tunnel/options.js';
import type { Tunnel } from '../tunnel/tunnel.js';
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
  /** `v2` or `v1`. */
  protocol: string;
  /** The v2 group's name (`X25519 + ML-KEM-1024`); null in v1. */
  group: string | null;
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

async function benchHandshakes(port: number, run: BenchRun, ciphers: CipherName[], count: number, concurrency: number): Promise<HandshakeResults> {
  const expected = displayName(ciphers[0]!);
  const options = runOptions(run, ciphers);
  const latencies: number[] = [];
  let failed = 0;
  let firstError: string | undefined;
  let started = 0;
  const one = async () => {
    const t0 = performance.now();
    let tunnel: Tunnel | undefined;
    try {
      tunnel = await dial({ host: '127.0.0.1', port }, options);
      const ms = performance.now() - t0;
      tunnel.on('error', () => undefined);
      checkTunnel(tunnel, run, expected);
      latencies.push(ms);
      await tunnel.close();
    } catch (e) {
      failed++;
      firstError ??= describeError(e);
      tunnel?.destroy();
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
    suite: expected,
    protocol: run.protocol,
    group: run.group,
  };
  if (firstError !== undefined) result.firstError = firstError;
  return result;
}

async function benchThroughput(listener: Listener, run: BenchRun, ciphers: CipherName[], size: number, durationMs: number): Promise<ThroughputResults> {
  const expected = displayName(ciphers[0]!);
  const port = listener.address().port;
  let start = 0;
  const received = new Promise<{ bytes: number; last: number }>((resolve, reject) => {
    listener.once('tunnel', (t: Tunnel) => {
      let bytes = 0;
      let last = 0;
      t.on('data', (d: Buffer) => {
        bytes += d.length;
        last = performance.now();
      });
      t.on('end', () => resolve({ bytes, last }));
      t.on('error', reject);
    });
  });
  received.catch(() => undefined);
  const client = await dial({ host: '127.0.0.1', port }, runOptions(run, ciphers));
  const failure = new Promise<never>((_, reject) => client.once('error', reject));
  failure.catch(() => undefined);
  try {
    checkTunnel(client, run, expected);
  } catch (e) {
    client.destroy();
    throw e;
  }
  const chunk = randomBytes(CHUNK);
  let sent = 0;
  let stoppedByDuration = false;
  start = performance.now();
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
    suite: expected,
    protocol: run.protocol,
    group: run.group,
  };
}

// ---- report -------------------------------------------------------------------------------------

const LABEL_WIDTH = 18;

/** A column header: `v2 X25519+ML-KEM-1024`, `v1 (legacy)`. */
function columnName(run: BenchRun): string {
  return run.protocol === 'v1' ? 'v1 (legacy)' : `v2 ${run.group!.replace(/ \+ /g, '+')}`;
}

/** Rows of a table, one column per run. */
function table(runs: readonly BenchRun[], rows: Array<[string, (run: BenchRun) => string]>): void {
  const width = Math.max(16, ...runs.map((r) => columnName(r).length + 3), ...runs.flatMap((r) => rows.map(([, cell]) => cell(r).length + 3)));
  const line = (label: string, cells: string[]) => out(`${label.padEnd(LABEL_WIDTH)}${cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(width))).join('')}`.trimEnd());
  line('', runs.map(columnName));
  for (const [label, cell] of rows) line(`  ${label}`, runs.map(cell));
}

function printHandshakes(runs: readonly BenchRun[]): void {
  const first = runs[0]!.handshakes!;
  const each = runs.length > 1 ? ' per run' : '';
  out(`Handshake benchmark: ${first.count} handshakes${each}, ${first.concurrency === 1 ? 'sequential' : `concurrency ${first.concurrency}`}`);
  const h = (r: BenchRun) => r.handshakes!;
  const ok = (r: BenchRun, text: string) => (h(r).successful > 0 ? text : '-');
  table(runs, [
    ['Successful:', (r) => String(h(r).successful)],
    ['Failed:', (r) => String(h(r).failed)],
    ['Total time:', (r) => `${h(r).totalMs.toFixed(2)} ms`],
    ['Average:', (r) => ok(r, `${h(r).avgMs.toFixed(3)} ms`)],
    ['Min / max:', (r) => ok(r, `${h(r).minMs.toFixed(3)} / ${h(r).maxMs.toFixed(3)} ms`)],
    ['p50 / p99:', (r) => ok(r, `${h(r).p50Ms.toFixed(3)} / ${h(r).p99Ms.toFixed(3)} ms`)],
    ['Handshakes/s:', (r) => ok(r, h(r).perSecond.toFixed(1))],
    ['Rating:', (r) => h(r).rating],
  ]);
  for (const r of runs) if (h(r).firstError) out(`  First error (${columnName(r)}): ${h(r).firstError}`);
}

function printThroughput(runs: readonly BenchRun[]): void {
  const first = runs[0]!.throughput!;
  const each = runs.length > 1 ? ' per run' : '';
  out(`Throughput benchmark: ${formatBytes(first.requestedBytes)} requested${each}, ${formatBytes(first.chunkBytes)} writes, client to server`);
  const t = (r: BenchRun) => r.throughput!;
  table(runs, [
    ['Bytes sent:', (r) => `${t(r).bytes} (${formatBytes(t(r).bytes)})${t(r).stoppedByDuration ? ' *' : ''}`],
    ['Bytes received:', (r) => `${t(r).receivedBytes} (${formatBytes(t(r).receivedBytes)})`],
    ['Send time:', (r) => `${t(r).sendSeconds.toFixed(3)} s`],
    ['Receive time:', (r) => `${t(r).receiveSeconds.toFixed(3)} s`],
    ['Send:', (r) => `${t(r).sendMBps.toFixed(2)} MB/s (${t(r).sendMbps.toFixed(1)} Mbps)`],
    ['Receive:', (r) => `${t(r).receiveMBps.toFixed(2)} MB/s (${t(r).receiveMbps.toFixed(1)} Mbps)`],
    ['Rating:', (r) => t(r).rating],
  ]);
  if (runs.some((r) => t(r).stoppedByDuration)) out('  * stopped by --duration');
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

export const benchCommand: Command = {
  name: 'bench',
  summary: 'Handshake and throughput benchmarks over loopback, protocol v2 and v1 side by side',
  synopsis:
    'quantum-vpn bench [--handshakes N [--concurrency C]] [--throughput [--size SIZE] [--duration D]] [--cipher NAME]\n' +
    '                  [--protocols v2,v1 | --legacy-v1] [--groups LIST] [--json]',
  description:
    'Runs listeners and clients in this process over 127.0.0.1 (so both ends share one event loop),\n' +
    'once for each protocol v2 group (by default the default group and P-384 + ML-KEM-1024) and once\n' +
    'for protocol v1, and prints the runs side by side. The throughput test runs for the first v2\n' +
    'group and for v1 (the group changes only the handshake). Handshake latency is from the start of\n' +
    'the TCP connect to the established tunnel. MB/s means 10^6 bytes per second. Give at least one\n' +
    'of --handshakes and --throughput. Exits 1 if every handshake of a run fails or a throughput\n' +
    'test fails.',
  flags: FLAGS,
  async run(args: ParsedArgs): Promise<number> {
    const f = args.flags;
    const count = Number(f.handshakes);
    const concurrency = Number(f.concurrency);
    const throughput = f.throughput === true;
    if (count === 0 && !throughput) throw new UsageError('nothing to run: give --handshakes N and/or --throughput');
    if (concurrency < 1) throw new UsageError('--concurrency must be at least 1');
    const size = parseSize(String(f.size));
    const durationMs = parseDuration(String(f.duration), '--duration');
    if (durationMs <= 0) throw new UsageError('--duration must be more than 0');
    await applyFips(f);
    const ciphers = ciphersFromFlag(String(f.cipher))!;
    const suite = displayName(ciphers[0]!);
    const { runs, notes } = runsFromFlags(args, suite);
    if (runs.length === 0) throw new CliError('nothing to run in this mode');
    const json = f.json === true;
    const info = cryptoInfo();
    if (!json) {
      out(`quantum-vpn bench: ${suite}, ${info.openssl} (addon), FIPS mode ${info.fips ? 'on' : 'off'}`);
      for (const n of notes) out(`Note: ${n}`);
    }

    let code = 0;
    // Each server tunnel is read so that the client's close_notify is seen and answered at once.
    const drain = (t: Tunnel) => {
      t.on('error', () => undefined);
      t.resume();
    };
    if (count > 0) {
      for (const run of runs) {
        run.handshakes = await withListener(run, ciphers, async (listener) => {
          listener.on('tunnel', drain);
          return benchHandshakes(listener.address().port, run, ciphers, count, concurrency);
        });
        if (run.handshakes.successful === 0) {
          err(`quantum-vpn: every handshake failed (${run.summary})${run.handshakes.firstError ? `: ${run.handshakes.firstError}` : ''}`);
          code = 1;
        }
      }
    }
    // Bulk throughput depends on the protocol's record layer, not on the group: the first v2 run and v1.
    const bulk = runs.filter((r, i) => r.protocol === 'v1' || runs.findIndex((x) => x.protocol === 'v2') === i);
    if (throughput) {
      for (const run of bulk) {
        try {
          run.throughput = await withListener(run, ciphers, (listener) => benchThroughput(listener, run, ciphers, size, durationMs));
        } catch (e) {
          err(`quantum-vpn: throughput test failed (${run.summary}): ${describeError(e)}`);
          code = 1;
        }
      }
    }

    if (json) {
      const first = runs[0]!;
      const report: Record<string, unknown> = { version: VERSION, openssl: info.openssl, fips: info.fips, cipher: suite };
      // The first run's results under the names of earlier versions, then every run.
      if (first.handshakes) report.handshakes = first.handshakes;
      const firstBulk = bulk.find((r) => r.throughput);
      if (firstBulk) report.throughput = firstBulk.throughput;
      report.runs = runs.map(({ name, protocol, groupOption, group, summary, handshakes, throughput: t }) => ({
        name,
        protocol,
        groupOption,
        group,
        summary,
        ...(handshakes ? { handshakes } : {}),
        ...(t ? { throughput: t } : {}),
      }));
      if (notes.length > 0) report.notes = notes;
      out(JSON.stringify(report, null, 2));
      return code;
    }
    out('Runs:');
    const nameWidth = Math.max(...runs.map((r) => columnName(r).length)) + 3;
    for (const r of runs) out(`  ${columnName(r).padEnd(nameWidth)}${r.summary}`);
    const handshakeRuns = runs.filter((r) => r.handshakes);
    if (handshakeRuns.length > 0) {
      out('');
      printHandshakes(handshakeRuns);
    }
    const bulkRuns = bulk.filter((r) => r.throughput);
    if (bulkRuns.length > 0) {
      out('');
      printThroughput(bulkRuns);
    }
    return code;
  },
};
