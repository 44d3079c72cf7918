/**
 * `quantum-vpn bench`: handshake latency and bulk throughput against a listener in this process,
 * over loopback TCP. Unlike the reference, `--cipher` really selects the suite (both ends offer
 * and accept only that one, and every tunnel is checked to have negotiated it).
 */
import { randomBytes } from 'node:crypto';
import { info as cryptoInfo } from '../crypto/info.js';
import { dial } from '../tunnel/dial.js';
import { listen, type Listener } from '../tunnel/listener.js';
import type { CipherName } from '../tunnel/options.js';
import type { Tunnel } from '../tunnel/tunnel.js';
import { CliError, type FlagSpec, formatBytes, type ParsedArgs, parseDuration, parseSize, UsageError } from './args.js';
import { applyFips, cipherFlag, ciphersFromFlag, type Command, displayName, describeError, err, FIPS_FLAG, out, VERSION } from './common.js';

const FLAGS: FlagSpec[] = [
  { name: 'handshakes', kind: 'int', metavar: 'N', default: 0, defaultText: '0: skip', help: 'Number of handshakes (dial, then close) to time' },
  { name: 'concurrency', kind: 'int', metavar: 'C', default: 1, help: 'Handshakes in flight at once (1 = sequential)' },
  { name: 'throughput', kind: 'boolean', default: false, help: 'Run the throughput test (client to server, 64 KiB writes)' },
  { name: 'size', kind: 'string', metavar: 'SIZE', default: '100MB', help: 'Bytes to send in the throughput test: K/KB, M/MB, G/GB (powers of 1024), or bytes' },
  { name: 'duration', kind: 'string', metavar: 'DURATION', default: '10s', help: 'Stop the throughput test after this long even if --size is not reached (Go syntax: 10s, 1m30s)' },
  cipherFlag('aes-gcm'),
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

async function benchHandshakes(port: number, ciphers: CipherName[], count: number, concurrency: number): Promise<HandshakeResults> {
  const expected = displayName(ciphers[0]!);
  const latencies: number[] = [];
  let failed = 0;
  let firstError: string | undefined;
  let started = 0;
  const one = async () => {
    const t0 = performance.now();
    let tunnel: Tunnel | undefined;
    try {
      tunnel = await dial({ host: '127.0.0.1', port }, { ciphers });
      const ms = performance.now() - t0;
      tunnel.on('error', () => undefined);
      const suite = tunnel.info().suite;
      if (suite !== expected) throw new CliError(`negotiated ${suite}, expected ${expected}`);
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
  };
  if (firstError !== undefined) result.firstError = firstError;
  return result;
}

async function benchThroughput(listener: Listener, ciphers: CipherName[], size: number, durationMs: number): Promise<ThroughputResults> {
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
  const client = await dial({ host: '127.0.0.1', port }, { ciphers });
  const failure = new Promise<never>((_, reject) => client.once('error', reject));
  failure.catch(() => undefined);
  const suite = client.info().suite;
  if (suite !== expected) throw new CliError(`negotiated ${suite}, expected ${expected}`);
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
  };
}

function printHandshakes(h: HandshakeResults): void {
  out(`Handshake benchmark: ${h.count} handshakes, ${h.concurrency === 1 ? 'sequential' : `concurrency ${h.concurrency}`}`);
  out(`  Successful:     ${h.successful}`);
  out(`  Failed:         ${h.failed}${h.firstError ? ` (first error: ${h.firstError})` : ''}`);
  out(`  Total time:     ${h.totalMs.toFixed(2)} ms`);
  if (h.successful > 0) {
    out(`  Average:        ${h.avgMs.toFixed(3)} ms`);
    out(`  Min / max:      ${h.minMs.toFixed(3)} ms / ${h.maxMs.toFixed(3)} ms`);
    out(`  p50 / p99:      ${h.p50Ms.toFixed(3)} ms / ${h.p99Ms.toFixed(3)} ms`);
    out(`  Handshakes/s:   ${h.perSecond.toFixed(1)}`);
  }
  out(`  Rating:         ${h.rating}`);
}

function printThroughput(t: ThroughputResults): void {
  out(`Throughput benchmark: ${formatBytes(t.requestedBytes)} requested, ${formatBytes(t.chunkBytes)} writes, client to server`);
  out(`  Bytes sent:     ${t.bytes} (${formatBytes(t.bytes)})${t.stoppedByDuration ? ', stopped by --duration' : ''}`);
  out(`  Bytes received: ${t.receivedBytes} (${formatBytes(t.receivedBytes)})`);
  out(`  Send time:      ${t.sendSeconds.toFixed(3)} s`);
  out(`  Receive time:   ${t.receiveSeconds.toFixed(3)} s`);
  out(`  Send:           ${t.sendMBps.toFixed(2)} MB/s (${t.sendMbps.toFixed(1)} Mbps)`);
  out(`  Receive:        ${t.receiveMBps.toFixed(2)} MB/s (${t.receiveMbps.toFixed(1)} Mbps)`);
  out(`  Rating:         ${t.rating}`);
}

export const benchCommand: Command = {
  name: 'bench',
  summary: 'Handshake and throughput benchmarks over loopback',
  synopsis: 'quantum-vpn bench [--handshakes N [--concurrency C]] [--throughput [--size SIZE] [--duration D]] [--cipher NAME] [--json]',
  description:
    'Runs a listener and clients in this process over 127.0.0.1 (so both ends share one event loop).\n' +
    'Handshake latency is from the start of the TCP connect to the established tunnel. MB/s means\n' +
    '10^6 bytes per second. Give at least one of --handshakes and --throughput. Exits 1 if every\n' +
    'handshake fails or the throughput test fails.',
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
    const json = f.json === true;
    const info = cryptoInfo();
    const report: Record<string, unknown> = {
      version: VERSION,
      openssl: info.openssl,
      fips: info.fips,
      cipher: displayName(ciphers[0]!),
    };
    if (!json) {
      out(`quantum-vpn bench: ${displayName(ciphers[0]!)}, ${info.openssl} (addon), FIPS mode ${info.fips ? 'on' : 'off'}`);
      out('');
    }

    const listener = listen({ host: '127.0.0.1', port: 0, ciphers });
    listener.on('error', () => undefined);
    listener.on('handshakeError', () => undefined);
    let code = 0;
    try {
      await listener.ready;
      if (count > 0) {
        // Each server tunnel is read so that the client's close_notify is seen and answered at once.
        const drain = (t: Tunnel) => {
          t.on('error', () => undefined);
          t.resume();
        };
        listener.on('tunnel', drain);
        const h = await benchHandshakes(listener.address().port, ciphers, count, concurrency);
        listener.off('tunnel', drain);
        report.handshakes = h;
        if (!json) printHandshakes(h);
        if (h.successful === 0) {
          err(`quantum-vpn: every handshake failed${h.firstError ? `: ${h.firstError}` : ''}`);
          code = 1;
        }
      }
      if (throughput && code === 0) {
        if (!json && count > 0) out('');
        try {
          const t = await benchThroughput(listener, ciphers, size, durationMs);
          report.throughput = t;
          if (!json) printThroughput(t);
        } catch (e) {
          err(`quantum-vpn: throughput test failed: ${describeError(e)}`);
          code = 1;
        }
      }
    } finally {
      await listener.close({ tunnels: true });
    }
    if (json) out(JSON.stringify(report, null, 2));
    return code;
  },
};
