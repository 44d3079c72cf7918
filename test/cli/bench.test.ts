/** `quantum-vpn bench`: JSON and human reports, the cipher really applied, --duration honoured. */
import { expect } from 'chai';

/** The CLI runs in the same mode as this test process (the suite also runs in CI's FIPS job). */
const fipsMode = () => (fips.status().mode === 'fips' ? 'on' : 'off');
import { crypto, fips } from '../../lib/index.js';
import type { BenchRun, HandshakeResults, ThroughputResults } from '../../lib/cli/bench.js';
import { killAll, runCli } from './helpers.js';

/** The --json report: the command's own result types, so the test cannot drift from them. */
interface BenchJson {
  cipher: string;
  fips: boolean;
  openssl: string;
  handshakes?: HandshakeResults;
  throughput?: ThroughputResults;
  runs: Array<Omit<BenchRun, 'groupOption'> & { groupOption: string | null }>;
}

/** The default group's name in this mode, and the other one bench compares it with. */
const defaultGroup = () => (fips.status().mode === 'fips' ? 'P-384 + ML-KEM-1024' : 'X25519 + ML-KEM-1024');

async function benchJson(args: string[]): Promise<BenchJson> {
  const r = await runCli(['bench', ...args, '--json'], { timeoutMs: 120_000 });
  expect(r.code, r.stderr).to.equal(0);
  return JSON.parse(r.stdout) as BenchJson;
}

describe('cli: bench', function () {
  this.timeout(180_000);
  afterEach(killAll);

  it('--handshakes N --json: count, rate and latency percentiles for v2 (two groups) and v1 side by side', async () => {
    const j = await benchJson(['--handshakes', '20']);
    expect(j.cipher).to.equal('AES-256-GCM');
    expect(j.openssl).to.match(/^OpenSSL 3\.5\./);
    expect(j.throughput).to.equal(undefined);
    // The first run under the old name: protocol v2 with the default group.
    expect(j.handshakes).to.include({ protocol: 'v2', group: defaultGroup(), count: 20, successful: 20 });
    const x25519 = ['v2 x25519-mlkem1024', 'v2', 'X25519 + ML-KEM-1024'];
    const p384 = ['v2 p384-mlkem1024', 'v2', 'P-384 + ML-KEM-1024'];
    const v2Runs = fips.status().mode === 'fips' ? [p384, x25519] : [x25519, p384];
    expect(j.runs.map((r) => [r.name, r.protocol, r.group])).to.deep.equal([...v2Runs, ['v1', 'v1', null]]);
    expect(j.runs[0]!.summary).to.equal(`protocol v2, ${defaultGroup()}, AES-256-GCM`);
    expect(j.runs.at(-1)!.summary).to.equal('protocol v1 (legacy), CH-KEM X25519 + ML-KEM-1024, AES-256-GCM');
    for (const run of j.runs) {
      const h = run.handshakes!;
      expect(h, run.name).to.include({ count: 20, successful: 20, failed: 0, concurrency: 1, suite: 'AES-256-GCM', protocol: run.protocol, group: run.group });
      expect(h.perSecond).to.be.greaterThan(0);
      expect(h.avgMs).to.be.greaterThan(0);
      expect(h.minMs).to.be.at.most(h.p50Ms);
      expect(h.p50Ms).to.be.at.most(h.p99Ms);
      expect(h.p99Ms).to.be.at.most(h.maxMs);
      expect(h.avgMs).to.be.within(h.minMs, h.maxMs);
      expect(run.throughput).to.equal(undefined);
    }
  });

  it('--protocols, --legacy-v1 and --groups choose the runs', async () => {
    const v1 = await benchJson(['--handshakes', '3', '--legacy-v1']);
    expect(v1.runs.map((r) => r.name)).to.deep.equal(['v1']);
    expect(v1.handshakes).to.include({ protocol: 'v1', group: null, successful: 3 });
    const v2 = await benchJson(['--handshakes', '3', '--protocols', 'v2', '--groups', 'x25519-mlkem768,p384-mlkem1024']);
    expect(v2.runs.map((r) => [r.name, r.group])).to.deep.equal([
      ['v2 x25519-mlkem768', 'X25519 + ML-KEM-768'],
      ['v2 p384-mlkem1024', 'P-384 + ML-KEM-1024'],
    ]);
    for (const r of v2.runs) expect(r.handshakes, r.name).to.include({ successful: 3, protocol: 'v2', group: r.group });
    const bad = await runCli(['bench', '--handshakes', '1', '--protocols', 'v3']);
    expect(bad.code).to.equal(1);
    expect(bad.stderr).to.match(/invalid --protocols "v3": expected v2, v1 or v2,v1/);
  });

  it('--cipher chacha20 applies to every tunnel, with --concurrency and --throughput', async function () {
    if (!crypto.info().chacha20.available) this.skip();
    const j = await benchJson(['--handshakes', '12', '--concurrency', '4', '--cipher', 'chacha20', '--throughput', '--size', '4MB']);
    expect(j.cipher).to.equal('ChaCha20-Poly1305');
    for (const run of j.runs) expect(run.handshakes, run.name).to.include({ count: 12, successful: 12, concurrency: 4, suite: 'ChaCha20-Poly1305' });
    // Throughput: the first v2 group and v1 (the group changes only the handshake).
    const bulk = j.runs.filter((r) => r.throughput);
    expect(bulk.map((r) => r.protocol)).to.deep.equal(['v2', 'v1']);
    expect(j.throughput).to.deep.equal(bulk[0]!.throughput);
    for (const run of bulk) {
      const t = run.throughput!;
      expect(t, run.name).to.include({ bytes: 4 * 1024 * 1024, receivedBytes: 4 * 1024 * 1024, requestedBytes: 4 * 1024 * 1024, stoppedByDuration: false, suite: 'ChaCha20-Poly1305', protocol: run.protocol });
      expect(t.sendMBps).to.be.greaterThan(0);
      expect(t.receiveMBps).to.be.greaterThan(0);
    }
  });

  it('--duration stops the throughput test before --size', async () => {
    const j = await benchJson(['--throughput', '--size', '64GB', '--duration', '400ms']);
    for (const run of j.runs.filter((r) => r.throughput)) {
      const t = run.throughput!;
      expect(t.stoppedByDuration, run.name).to.equal(true);
      expect(t.bytes).to.be.greaterThan(0).and.lessThan(64 * 1024 ** 3);
      expect(t.receivedBytes).to.equal(t.bytes);
    }
  });

  it('prints a human report by default: the runs, then their results side by side', async () => {
    const r = await runCli(['bench', '--handshakes', '3', '--throughput', '--size', '1MB']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(new RegExp(`^quantum-vpn bench: AES-256-GCM, OpenSSL 3\\.5\\.\\d+ .*FIPS mode ${fipsMode()}$`, 'm'));
    const group = defaultGroup().replace(/\+/g, '\\+');
    expect(r.stdout).to.match(new RegExp(`^ {2}v2 ${group.replace(/ /g, '')} +protocol v2, ${group}, AES-256-GCM$`, 'm'));
    expect(r.stdout).to.match(/^ {2}v1 \(legacy\) +protocol v1 \(legacy\), CH-KEM X25519 \+ ML-KEM-1024, AES-256-GCM$/m);
    expect(r.stdout).to.match(/^Handshake benchmark: 3 handshakes per run, sequential$/m);
    expect(r.stdout).to.match(new RegExp(`^ +v2 ${group.replace(/ /g, '')} +.*v1 \\(legacy\\)$`, 'm'));
    expect(r.stdout).to.match(/^ {2}Successful: +3 +3( +3)?$/m);
    expect(r.stdout).to.match(/^ {2}p50 \/ p99: +[\d.]+ \/ [\d.]+ ms +[\d.]+ \/ [\d.]+ ms/m);
    expect(r.stdout).to.match(/^ {2}Handshakes\/s: +[\d.]+ +[\d.]+/m);
    expect(r.stdout).to.match(/^Throughput benchmark: 1\.00 MiB requested per run, 64\.00 KiB writes, client to server$/m);
    expect(r.stdout).to.match(/^ {2}Bytes sent: +1048576 \(1\.00 MiB\) +1048576 \(1\.00 MiB\)$/m);
    expect(r.stdout).to.match(/^ {2}Send: +[\d.]+ MB\/s \([\d.]+ Mbps\) +[\d.]+ MB\/s \([\d.]+ Mbps\)$/m);
    expect(r.stdout).to.match(/^ {2}Rating: +(Excellent|Good|Acceptable|May need optimization)/m);
  });
});
