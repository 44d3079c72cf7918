/**
 * `quantum-vpn bench`: JSON and human reports, the cipher really applied, --duration honoured,
 * and the peers beside ours (node:tls, a stand-in for the Go driver) with ratios and targets
 * computed from the figures reported. No assertion depends on how fast anything ran.
 */
import { expect } from 'chai';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The CLI runs in the same mode as this test process (the suite also runs in CI's FIPS job). */
const fipsMode = () => (fips.status().mode === 'fips' ? 'on' : 'off');
import { crypto, fips } from '../../lib/index.js';
import type { BenchRatio, BenchRun, GoComparison, HandshakeResults, ThroughputResults, TlsComparison } from '../../lib/cli/bench.js';
import type { TargetResult } from '../../lib/cli/benchCompare.js';
import { killAll, runCli } from './helpers.js';

/** The --json report: the command's own result types, so the test cannot drift from them. */
interface BenchJson {
  cipher: string;
  rounds: number;
  compare?: { tls?: TlsComparison; go?: GoComparison };
  ratios?: BenchRatio[];
  targets?: TargetResult[];
  notes?: string[];
  fips: boolean;
  openssl: string;
  handshakes?: HandshakeResults;
  throughput?: ThroughputResults;
  runs: Array<Omit<BenchRun, 'groupOption'> & { groupOption: string | null }>;
}

/** The default group's name in this mode, and the other one bench compares it with. */
const defaultGroup = () => (fips.status().mode === 'fips' ? 'P-384 + ML-KEM-1024' : 'X25519 + ML-KEM-1024');

/** The Go reference is left out unless a test names a driver. */
async function benchJson(args: string[], env: NodeJS.ProcessEnv = { QUANTUM_GO_BIN: '' }): Promise<BenchJson> {
  const r = await runCli(['bench', ...args, '--json'], { timeoutMs: 120_000, env });
  expect(r.code, r.stderr).to.equal(0);
  return JSON.parse(r.stdout) as BenchJson;
}

describe('cli: bench', function () {
  this.timeout(180_000);
  const tempDirs: string[] = [];
  afterEach(async () => {
    await killAll();
    for (const d of tempDirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

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
    // node:tls beside them with its ChaCha20-Poly1305 suite, negotiated as asked.
    expect(j.compare!.tls!.handshakes).to.include({ successful: 12, suite: 'TLS_CHACHA20_POLY1305_SHA256' });
    expect(j.compare!.tls!.throughput).to.include({ receivedBytes: 4 * 1024 * 1024, suite: 'TLS_CHACHA20_POLY1305_SHA256' });
    // Concurrency 4 has no handshake target; bulk has ChaCha20's (Go's n/a without its driver).
    expect(new Set(j.targets!.map((t) => t.target))).to.deep.equal(new Set(['throughputChachaVsTls', 'throughputChachaVsGo']));
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
    const r = await runCli(['bench', '--handshakes', '3', '--throughput', '--size', '1MB', '--rounds', '1'], { env: { QUANTUM_GO_BIN: '' } });
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(new RegExp(`^quantum-vpn bench: AES-256-GCM, OpenSSL 3\\.5\\.\\d+ .*FIPS mode ${fipsMode()}$`, 'm'));
    const group = defaultGroup().replace(/\+/g, '\\+');
    expect(r.stdout).to.match(new RegExp(`^ {2}v2 ${group.replace(/ /g, '')} +protocol v2, ${group}, AES-256-GCM$`, 'm'));
    expect(r.stdout).to.match(/^ {2}v1 \(legacy\) +protocol v1 \(legacy\), CH-KEM X25519 \+ ML-KEM-1024, AES-256-GCM$/m);
    expect(r.stdout).to.match(/^Handshake benchmark: 3 handshakes per run, sequential$/m);
    expect(r.stdout).to.match(/^ {2}node:tls 1\.3 +node:tls 1\.3 \(Node v\d+\.\d+\.\d+\), \S+ \((TLS-PQ|no ML-KEM: not TLS-PQ)\), ECDSA P-256, TLS_AES_256_GCM_SHA384$/m);
    expect(r.stdout).to.match(/^ {2}Go reference +skipped: QUANTUM_GO_BIN is not set$/m);
    expect(r.stdout).to.match(/^Each figure is the median of 1 alternating round\.$/m);
    expect(r.stdout).to.match(new RegExp(`^ +v2 ${group.replace(/ /g, '')} +.*v1 \\(legacy\\) +node:tls 1\\.3$`, 'm'));
    expect(r.stdout).to.match(/^ {2}Successful: +3 +3( +3)? +3$/m);
    expect(r.stdout).to.match(/^ {2}p50 \/ p99: +[\d.]+ \/ [\d.]+ ms +[\d.]+ \/ [\d.]+ ms/m);
    expect(r.stdout).to.match(/^ {2}Handshakes\/s: +[\d.]+ +[\d.]+/m);
    expect(r.stdout).to.match(/^Throughput benchmark: 1\.00 MiB requested per run, 64\.00 KiB writes, client to server$/m);
    expect(r.stdout).to.match(/^ {2}Bytes sent: +1048576 \(1\.00 MiB\) +1048576 \(1\.00 MiB\) +1048576 \(1\.00 MiB\)$/m);
    expect(r.stdout).to.match(/^ {2}Send: +[\d.]+ MB\/s \([\d.]+ Mbps\) +[\d.]+ MB\/s \([\d.]+ Mbps\) +[\d.]+ MB\/s \([\d.]+ Mbps\)$/m);
    expect(r.stdout).to.match(/^Ratios, ours over the other \(better = higher; MB\/s as received\):$/m);
    expect(r.stdout).to.match(/^ {2}Handshakes\/s vs node:tls: +[\d.]+x +[\d.]+x/m);
    expect(r.stdout).to.match(/^ {2}MB\/s vs node:tls: +[\d.]+x( +-)? +[\d.]+x$/m);
    expect(r.stdout).to.match(/^targets \(issue 11\):$/m);
    expect(r.stdout).to.match(/^ {2}throughput 64 KiB writes, AES-256-GCM, vs node:tls +v1 \(legacy\) +>= 1\.5x +[\d.]+x +(met|MISSED)$/m);
    expect(r.stdout).to.match(/^ {2}handshakes\/s sequential vs Go reference +v1 \(legacy\) +>= 2x +- +n\/a \(QUANTUM_GO_BIN is not set\)$/m);
    expect(r.stdout).to.match(/^ {2}Rating: +(Excellent|Good|Acceptable|May need optimization)/m);
  });

  it('--compare tls: node:tls beside every run, medians of alternating rounds, ratios and targets from the reported figures', async () => {
    const j = await benchJson(['--handshakes', '6', '--throughput', '--size', '2MB', '--rounds', '3']);
    expect(j.rounds).to.equal(3);
    const tls = j.compare!.tls!;
    expect(tls).to.include({ node: process.version, suite: 'TLS_AES_256_GCM_SHA384' });
    // The group is what TLS negotiated (X25519 on Node 20): TLS-PQ only when it includes ML-KEM.
    expect(tls.postQuantum).to.equal(/MLKEM/i.test(tls.group));
    expect(tls.summary).to.equal(`node:tls 1.3 (Node ${process.version}), ${tls.group} (${tls.postQuantum ? 'TLS-PQ' : 'no ML-KEM: not TLS-PQ'}), ECDSA P-256, TLS_AES_256_GCM_SHA384`);
    expect(tls.handshakes).to.include({ count: 6, successful: 6, protocol: 'TLS 1.3', suite: 'TLS_AES_256_GCM_SHA384', group: tls.group });
    expect(tls.throughput).to.include({ bytes: 2 * 1024 * 1024, receivedBytes: 2 * 1024 * 1024, suite: 'TLS_AES_256_GCM_SHA384' });
    expect(j.compare!.go).to.deep.equal({ summary: 'skipped: QUANTUM_GO_BIN is not set', skipped: 'QUANTUM_GO_BIN is not set' });
    // Each figure is the median of its rounds (three: the middle one).
    const middle = (xs: number[]) => [...xs].sort((a, b) => a - b)[1];
    for (const h of [...j.runs.map((r) => r.handshakes!), tls.handshakes!]) {
      expect(h.perRound).to.have.length(3);
      expect(h.perSecond).to.equal(middle(h.perRound));
    }
    for (const t of [...j.runs.filter((r) => r.throughput).map((r) => r.throughput!), tls.throughput!]) {
      expect(t.perRound).to.have.length(3);
      expect(t.receiveMBps).to.equal(middle(t.perRound));
    }
    // Ratios: every run over TLS, from the figures above.
    const ratios = j.ratios!;
    for (const run of j.runs) {
      const hs = ratios.find((r) => r.run === run.name && r.against === 'tls' && r.metric === 'handshakes/s')!;
      expect(hs, run.name).to.include({ ours: run.handshakes!.perSecond, theirs: tls.handshakes!.perSecond });
      expect(hs.ratio).to.be.closeTo(hs.ours / hs.theirs, 1e-4);
      const bulk = ratios.find((r) => r.run === run.name && r.against === 'tls' && r.metric === 'MB/s');
      if (run.throughput) {
        expect(bulk, run.name).to.include({ ours: run.throughput.receiveMBps, theirs: tls.throughput!.receiveMBps });
        expect(bulk!.ratio).to.be.closeTo(bulk!.ours / bulk!.theirs, 1e-4);
      } else {
        expect(bulk).to.equal(undefined);
      }
    }
    expect(ratios.filter((r) => r.against === 'go')).to.deep.equal([]);
    // Targets: issue 11's, for the default v2 group and v1, sequential handshakes and AES-256-GCM bulk.
    const targets = j.targets!;
    const sides = [...new Set(targets.map((t) => t.side))];
    const v1 = j.runs.some((r) => r.protocol === 'v1');
    expect(sides).to.deep.equal([`v2 ${defaultGroup().replace(/ \+ /g, '+')}`, ...(v1 ? ['v1 (legacy)'] : [])]);
    for (const side of sides) {
      const run = j.runs.find((r) => (r.protocol === 'v1' ? 'v1 (legacy)' : `v2 ${r.group!.replace(/ \+ /g, '+')}`) === side)!;
      const of = (id: string) => targets.find((t) => t.side === side && t.target === id)!;
      const hsTls = of('handshakesSequentialVsTlsPq');
      expect(hsTls).to.include({ ours: run.handshakes!.perSecond, theirs: tls.handshakes!.perSecond, wanted: '>= 3x', issue: 'issue 11' });
      expect(hsTls.measured).to.be.closeTo(hsTls.ours / hsTls.theirs!, 1e-9);
      expect(hsTls.verdict).to.equal(tls.postQuantum ? (hsTls.measured >= 3 ? 'met' : 'missed') : 'n/a');
      if (!tls.postQuantum) expect(hsTls.note).to.equal(`node:tls negotiated ${tls.group}, not TLS-PQ`);
      const bulkTls = of('throughputAesVsTls');
      expect(bulkTls).to.include({ ours: run.throughput!.receiveMBps, theirs: tls.throughput!.receiveMBps, wanted: '>= 1.5x' });
      expect(bulkTls.verdict).to.equal(bulkTls.measured >= 1.5 ? 'met' : 'missed');
      for (const id of ['handshakesSequentialVsGo', 'throughputAesVsGo']) expect(of(id), id).to.include({ verdict: 'n/a', note: 'QUANTUM_GO_BIN is not set' });
    }
  });

  it('the Go column: its driver runs beside ours (a stand-in driver here), its figures and ratios reported', async () => {
    // A stand-in for the Go reference's driver (lib/cli/benchPeers.ts): fixed figures, so the
    // ratios can be checked exactly.
    const dir = mkdtempSync(join(tmpdir(), 'qt-fake-go-'));
    tempDirs.push(dir);
    const bin = join(dir, 'qgo-peer');
    writeFileSync(bin, [
      '#!/bin/sh',
      'case "$1" in',
      '  sink) echo \'{"event":"listening","port":"9"}\'; exec sleep 600 ;;',
      '  bench-hs) echo \'{"event":"bench-hs","perSecond":100}\' ;;',
      '  bench-tp) echo \'{"event":"bench-tp","MiBps":50}\' ;;',
      'esac',
      '',
    ].join('\n'));
    chmodSync(bin, 0o755);
    const j = await benchJson(['--handshakes', '4', '--concurrency', '64', '--throughput', '--size', '1MB', '--rounds', '1', '--compare', 'go', '--protocols', 'v1'], { QUANTUM_GO_BIN: bin });
    expect(j.compare!.tls).to.equal(undefined);
    const go = j.compare!.go!;
    expect(go.summary).to.equal(`Quantum-Go client and server (${bin}), protocol v1 wire, AES-256-GCM`);
    expect(go.handshakes).to.deep.equal({ count: 4, concurrency: 4, perSecond: 100, perRound: [100] });
    expect(go.throughput).to.deep.equal({ bytes: 1024 * 1024, chunkBytes: 65536, receiveMBps: 52.43, perRound: [52.43] });
    const run = j.runs[0]!;
    const hs = j.ratios!.find((r) => r.against === 'go' && r.metric === 'handshakes/s')!;
    expect(hs).to.include({ run: 'v1', ours: run.handshakes!.perSecond, theirs: 100 });
    expect(hs.ratio).to.be.closeTo(run.handshakes!.perSecond / 100, 1e-4);
    const mb = j.ratios!.find((r) => r.against === 'go' && r.metric === 'MB/s')!;
    expect(mb.ratio).to.be.closeTo(run.throughput!.receiveMBps / 52.43, 1e-4);
    // 4 handshakes cannot keep 64 in flight: no handshake target applies, and the report says why.
    expect(j.targets!.map((t) => t.target)).to.deep.equal(['throughputAesVsGo']);
    expect(j.targets![0]!.verdict).to.equal(j.targets![0]!.measured >= 2 ? 'met' : 'missed');
    expect(j.notes).to.include('no handshake targets at concurrency 4: issue 11 sets them for 1 (sequential) and 64');
    // Its driver cannot choose ChaCha20-Poly1305: no throughput run, the target n/a, and why.
    if (!crypto.info().chacha20.available) return;
    const chacha = await benchJson(['--throughput', '--size', '1MB', '--rounds', '1', '--compare', 'go', '--protocols', 'v1', '--cipher', 'chacha20'], { QUANTUM_GO_BIN: bin });
    expect(chacha.compare!.go!.throughput).to.equal(undefined);
    expect(chacha.compare!.go!.notes).to.deep.equal(['throughput skipped: the Go driver cannot choose ChaCha20-Poly1305']);
    expect(chacha.targets).to.have.length(1);
    expect(chacha.targets![0]).to.include({ target: 'throughputChachaVsGo', verdict: 'n/a', note: 'the Go driver cannot choose ChaCha20-Poly1305' });
  });

  it('--compare none runs ours alone; a bad --compare is a usage error', async () => {
    const j = await benchJson(['--handshakes', '2', '--protocols', 'v2', '--compare', 'none', '--rounds', '1']);
    expect(j.compare).to.equal(undefined);
    expect(j.ratios).to.equal(undefined);
    expect(j.targets).to.equal(undefined);
    expect(j.runs[0]!.handshakes!.perRound).to.have.length(1);
    const bad = await runCli(['bench', '--handshakes', '1', '--compare', 'tls,none']);
    expect(bad.code).to.equal(1);
    expect(bad.stderr).to.match(/invalid --compare "tls,none": expected tls, go, tls,go or none/);
  });
});
