/** `quantum-vpn bench`: JSON and human reports, the cipher really applied, --duration honoured. */
import { expect } from 'chai';

/** The CLI runs in the same mode as this test process (the suite also runs in CI's FIPS job). */
const fipsMode = () => (fips.status().mode === 'fips' ? 'on' : 'off');
import { crypto, fips } from '../../lib/index.js';
import type { HandshakeResults, ThroughputResults } from '../../lib/cli/bench.js';
import { killAll, runCli } from './helpers.js';

/** The --json report: the command's own result types, so the test cannot drift from them. */
interface BenchJson {
  cipher: string;
  fips: boolean;
  openssl: string;
  handshakes?: HandshakeResults;
  throughput?: ThroughputResults;
}

async function benchJson(args: string[]): Promise<BenchJson> {
  const r = await runCli(['bench', ...args, '--json'], { timeoutMs: 120_000 });
  expect(r.code, r.stderr).to.equal(0);
  return JSON.parse(r.stdout) as BenchJson;
}

describe('cli: bench', function () {
  this.timeout(180_000);
  afterEach(killAll);

  it('--handshakes N --json: count, rate and latency percentiles', async () => {
    const j = await benchJson(['--handshakes', '20']);
    expect(j.cipher).to.equal('AES-256-GCM');
    expect(j.openssl).to.match(/^OpenSSL 3\.5\./);
    expect(j.throughput).to.equal(undefined);
    const h = j.handshakes!;
    expect(h).to.include({ count: 20, successful: 20, failed: 0, concurrency: 1, suite: 'AES-256-GCM' });
    expect(h.perSecond).to.be.greaterThan(0);
    expect(h.avgMs).to.be.greaterThan(0);
    expect(h.minMs).to.be.at.most(h.p50Ms);
    expect(h.p50Ms).to.be.at.most(h.p99Ms);
    expect(h.p99Ms).to.be.at.most(h.maxMs);
    expect(h.avgMs).to.be.within(h.minMs, h.maxMs);
  });

  it('--cipher chacha20 applies to every tunnel, with --concurrency and --throughput', async function () {
    if (!crypto.info().chacha20.available) this.skip();
    const j = await benchJson(['--handshakes', '12', '--concurrency', '4', '--cipher', 'chacha20', '--throughput', '--size', '4MB']);
    expect(j.cipher).to.equal('ChaCha20-Poly1305');
    expect(j.handshakes).to.include({ count: 12, successful: 12, concurrency: 4, suite: 'ChaCha20-Poly1305' });
    const t = j.throughput!;
    expect(t).to.include({ bytes: 4 * 1024 * 1024, receivedBytes: 4 * 1024 * 1024, requestedBytes: 4 * 1024 * 1024, stoppedByDuration: false, suite: 'ChaCha20-Poly1305' });
    expect(t.sendMBps).to.be.greaterThan(0);
    expect(t.receiveMBps).to.be.greaterThan(0);
  });

  it('--duration stops the throughput test before --size', async () => {
    const j = await benchJson(['--throughput', '--size', '64GB', '--duration', '400ms']);
    const t = j.throughput!;
    expect(t.stoppedByDuration).to.equal(true);
    expect(t.bytes).to.be.greaterThan(0).and.lessThan(64 * 1024 ** 3);
    expect(t.receivedBytes).to.equal(t.bytes);
  });

  it('prints a human report by default', async () => {
    const r = await runCli(['bench', '--handshakes', '3', '--throughput', '--size', '1MB']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(new RegExp(`^quantum-vpn bench: AES-256-GCM, OpenSSL 3\\.5\\.\\d+ .*FIPS mode ${fipsMode()}$`, 'm'));
    expect(r.stdout).to.match(/^Handshake benchmark: 3 handshakes, sequential$/m);
    expect(r.stdout).to.match(/^ {2}Successful: +3$/m);
    expect(r.stdout).to.match(/^ {2}p50 \/ p99: +[\d.]+ ms \/ [\d.]+ ms$/m);
    expect(r.stdout).to.match(/^ {2}Handshakes\/s: +[\d.]+$/m);
    expect(r.stdout).to.match(/^Throughput benchmark: 1\.00 MiB requested, 64\.00 KiB writes, client to server$/m);
    expect(r.stdout).to.match(/^ {2}Bytes sent: +1048576 \(1\.00 MiB\)$/m);
    expect(r.stdout).to.match(/^ {2}Send: +[\d.]+ MB\/s \([\d.]+ Mbps\)$/m);
    expect(r.stdout).to.match(/^ {2}Rating: +(Excellent|Good|Acceptable|May need optimization)/m);
  });
});
