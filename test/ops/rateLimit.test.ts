/**
 * RateLimiter: unit tests with an injected clock (concurrent limit and release, token bucket
 * refill, burst 0, the global bucket, keys, logging, memory bound), then an end-to-end flood
 * against a real listen() with `admission` + `observer`: the flood comes from 127.0.0.2 (raw
 * sockets bound with localAddress, Linux loopback) and a real dial() from 127.0.0.1 still
 * completes its handshake.
 */
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { expect } from 'chai';
import { createLogger, ErrorCode, QuantumTunnelError, RateLimiter, TunnelMetrics, type PeerAddress, type TunnelObserver } from '../../lib/index.js';
import { assertEchoes, echo, RawPeer, rejectsWithCode, Resources, until, within } from '../helpers/tunnel.js';

const peer = (address: string | undefined, port = 40000): PeerAddress => ({ address, port });

/** A settable clock in milliseconds. */
function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void; set: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms), set: (ms) => (t = ms) };
}

function admitOk(limiter: RateLimiter, address: string): () => void {
  const v = limiter.admit(peer(address));
  expect(v.ok, `admit ${address}`).to.equal(true);
  return (v as { release(): void }).release;
}

function refused(limiter: RateLimiter, address: string): string {
  const v = limiter.admit(peer(address));
  expect(v.ok, `refuse ${address}`).to.equal(false);
  return (v as { reason: string }).reason;
}

class Lines extends Writable {
  readonly records: Array<Record<string, unknown>> = [];
  readonly raw: string[] = [];
  override _write(chunk: Buffer, _e: BufferEncoding, cb: () => void): void {
    for (const l of chunk.toString().split('\n')) {
      if (l === '') continue;
      this.raw.push(l);
      this.records.push(JSON.parse(l) as Record<string, unknown>);
    }
    cb();
  }
}

describe('ops: RateLimiter (unit, injected clock)', () => {
  it('with no options every limit is off', () => {
    const limiter = new RateLimiter();
    for (let i = 0; i < 10_000; i++) admitOk(limiter, '10.0.0.1');
    expect(limiter.activeConnections('10.0.0.1')).to.equal(10_000);
    const zeros = new RateLimiter({ maxConnectionsPerIp: 0, handshakesPerSecondPerIp: 0, globalHandshakesPerSecond: 0, handshakeBurstPerIp: 0, globalHandshakeBurst: 0 });
    for (let i = 0; i < 1000; i++) admitOk(zeros, '10.0.0.1');
  });

  it('limits concurrent connections per address; release frees a slot once (idempotent)', () => {
    const limiter = new RateLimiter({ maxConnectionsPerIp: 2 });
    const r1 = admitOk(limiter, '10.0.0.1');
    admitOk(limiter, '10.0.0.1');
    expect(refused(limiter, '10.0.0.1')).to.equal('connection');
    admitOk(limiter, '10.0.0.2'); // another address has its own count
    r1();
    r1(); // a second release changes nothing
    expect(limiter.activeConnections('10.0.0.1')).to.equal(1);
    admitOk(limiter, '10.0.0.1');
    expect(refused(limiter, '10.0.0.1')).to.equal('connection');
    expect(limiter.stats()).to.include({ admitted: 4, rejectedConnections: 2, rejectedHandshakes: 0 });
    const fractional = new RateLimiter({ maxConnectionsPerIp: 0.5 }); // 1, not 0 (= unlimited)
    admitOk(fractional, '10.0.0.1');
    expect(refused(fractional, '10.0.0.1')).to.equal('connection');
  });

  it('per-address token bucket: burst, then refill at the rate, capped at the burst', () => {
    const c = clock();
    const limiter = new RateLimiter({ handshakesPerSecondPerIp: 2, handshakeBurstPerIp: 3, now: c.now });
    for (let i = 0; i < 3; i++) admitOk(limiter, '10.0.0.1')();
    expect(refused(limiter, '10.0.0.1')).to.equal('handshake');
    c.advance(499); // 0.998 of a token
    expect(refused(limiter, '10.0.0.1')).to.equal('handshake');
    c.advance(1); // exactly one token
    admitOk(limiter, '10.0.0.1')();
    expect(refused(limiter, '10.0.0.1')).to.equal('handshake');
    c.advance(60_000); // a long pause refills to the burst, not beyond
    for (let i = 0; i < 3; i++) admitOk(limiter, '10.0.0.1')();
    expect(refused(limiter, '10.0.0.1')).to.equal('handshake');
  });

  it('burst 0 (or unset) means one second of the rate, at least 1: never "reject everything"', () => {
    for (const burst of [0, undefined]) {
      const c = clock();
      const slow = new RateLimiter({ handshakesPerSecondPerIp: 0.5, handshakeBurstPerIp: burst, now: c.now });
      admitOk(slow, '10.0.0.1')();
      expect(refused(slow, '10.0.0.1')).to.equal('handshake');
      c.advance(2000);
      admitOk(slow, '10.0.0.1')();

      const fast = new RateLimiter({ handshakesPerSecondPerIp: 5, handshakeBurstPerIp: burst, globalHandshakesPerSecond: 2.5, globalHandshakeBurst: burst, now: c.now });
      // The global burst is ceil(2.5) = 3; the per-address one 5.
      for (let i = 0; i < 3; i++) admitOk(fast, `10.0.1.${i}`)();
      expect(refused(fast, '10.0.1.9')).to.equal('handshake');
      const perIp = new RateLimiter({ handshakesPerSecondPerIp: 5, handshakeBurstPerIp: burst, now: c.now });
      for (let i = 0; i < 5; i++) admitOk(perIp, '10.0.0.1')();
      expect(refused(perIp, '10.0.0.1')).to.equal('handshake');
    }
  });

  it('the global bucket limits all addresses together and refills', () => {
    const c = clock();
    const limiter = new RateLimiter({ globalHandshakesPerSecond: 10, globalHandshakeBurst: 4, now: c.now });
    for (let i = 0; i < 4; i++) admitOk(limiter, `10.0.0.${i}`)();
    expect(refused(limiter, '10.0.0.200')).to.equal('handshake');
    expect(limiter.stats().rejectedGlobal).to.equal(1);
    c.advance(100); // one token at 10/s
    admitOk(limiter, '10.0.0.200')();
    expect(refused(limiter, '10.0.0.201')).to.equal('handshake');
  });

  it('a flood from one address drains only its own bucket: another address is still admitted', () => {
    const c = clock();
    const limiter = new RateLimiter({ handshakesPerSecondPerIp: 5, handshakeBurstPerIp: 5, globalHandshakesPerSecond: 100, globalHandshakeBurst: 20, now: c.now });
    let admitted = 0;
    for (let i = 0; i < 1000; i++) {
      const v = limiter.admit(peer('198.51.100.7'));
      if (v.ok) {
        admitted++;
        v.release();
      }
    }
    expect(admitted).to.equal(5);
    // The 995 refusals took no global token: 15 are left for everyone else.
    for (let i = 0; i < 5; i++) admitOk(limiter, '203.0.113.9')();
    for (let i = 0; i < 5; i++) admitOk(limiter, '203.0.113.10')();
    for (let i = 0; i < 5; i++) admitOk(limiter, '203.0.113.11')();
    expect(refused(limiter, '203.0.113.12')).to.equal('handshake'); // now the shared global budget is spent
    expect(limiter.stats()).to.include({ rejectedHandshakes: 996, rejectedGlobal: 1 });
  });

  it('a clock that goes back mints no tokens', () => {
    const c = clock(10_000);
    const limiter = new RateLimiter({ handshakesPerSecondPerIp: 1, handshakeBurstPerIp: 1, now: c.now });
    admitOk(limiter, '10.0.0.1')();
    c.set(0);
    expect(refused(limiter, '10.0.0.1')).to.equal('handshake');
    c.set(999);
    expect(refused(limiter, '10.0.0.1')).to.equal('handshake');
    c.set(1000);
    admitOk(limiter, '10.0.0.1')();
  });

  it('keys: IPv4-mapped IPv6 is the IPv4 address; IPv6 is grouped by /64 unless configured', () => {
    const limiter = new RateLimiter({ maxConnectionsPerIp: 1 });
    admitOk(limiter, '192.0.2.1');
    expect(refused(limiter, '::ffff:192.0.2.1')).to.equal('connection');
    expect(limiter.keyOf('::ffff:c000:201')).to.equal('192.0.2.1');
    admitOk(limiter, '2001:db8:1:2::1');
    expect(refused(limiter, '2001:db8:1:2:ffff::9')).to.equal('connection'); // same /64
    admitOk(limiter, '2001:db8:1:3::1'); // another /64
    expect(limiter.keyOf('2001:db8:1:2:3:4:5:6')).to.equal('2001:db8:1:2:0:0:0:0/64');
    const exact = new RateLimiter({ maxConnectionsPerIp: 1, ipv6PrefixLength: 128 });
    admitOk(exact, '2001:db8::1');
    admitOk(exact, '2001:db8::2');
    expect(new RateLimiter({ ipv6PrefixLength: 48 }).keyOf('2001:db8:abcd:ffff::1')).to.equal('2001:db8:abcd:0:0:0:0:0/48');
    expect(limiter.keyOf(undefined)).to.equal('unknown');
  });

  it('logs refusals at warn with the address masked, at most once per address per interval', () => {
    const c = clock();
    const out = new Lines();
    const logger = createLogger({ format: 'json', stream: out });
    const limiter = new RateLimiter({ handshakesPerSecondPerIp: 1, handshakeBurstPerIp: 1, maxConnectionsPerIp: 50, now: c.now, logger, logIntervalMs: 10_000 });
    admitOk(limiter, '198.51.100.23')();
    for (let i = 0; i < 100; i++) refused(limiter, '198.51.100.23');
    expect(out.records).to.have.length(1);
    expect(out.records[0]).to.include({ level: 'warn', msg: 'handshake rate limit exceeded', remote_ip: '198.51.100.x', component: 'rate_limit', limit: 'handshakes_per_ip' });
    c.advance(10_000);
    admitOk(limiter, '198.51.100.23')(); // the bucket refilled meanwhile
    refused(limiter, '198.51.100.23');
    expect(out.records).to.have.length(2);
    expect(out.records[1]).to.include({ suppressed: 99 });
    expect(out.raw.join('\n')).to.not.include('198.51.100.23');
  });

  it('forgets idle addresses: memory stays bounded under many distinct addresses', () => {
    const c = clock();
    const limiter = new RateLimiter({ handshakesPerSecondPerIp: 1000, maxConnectionsPerIp: 4, maxTrackedAddresses: 100, now: c.now });
    for (let i = 0; i < 5000; i++) {
      admitOk(limiter, `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`)();
      if (i % 50 === 0) c.advance(5);
    }
    expect(limiter.stats().trackedAddresses).to.be.at.most(100);
    // Addresses with open connections are never forgotten (their count stays right).
    const held = admitOk(limiter, '10.200.0.1');
    for (let i = 0; i < 1000; i++) admitOk(limiter, `10.201.${(i >> 8) & 255}.${i & 255}`)();
    expect(limiter.activeConnections('10.200.0.1')).to.equal(1);
    held();
    expect(limiter.activeConnections('10.200.0.1')).to.equal(0);
  });

  it('rejects invalid options', () => {
    for (const o of [{ maxConnectionsPerIp: -1 }, { handshakesPerSecondPerIp: Number.NaN }, { globalHandshakeBurst: Infinity }, { ipv6PrefixLength: 0 }, { maxTrackedAddresses: 0 }]) {
      expect(() => new RateLimiter(o), JSON.stringify(o)).to.throw(QuantumTunnelError).with.property('code', ErrorCode.INVALID_ARGUMENT);
    }
  });
});

describe('ops: RateLimiter end to end (listen with admission, flood from 127.0.0.2)', function () {
  this.timeout(30_000);
  const res = new Resources();
  afterEach(() => res.cleanup());

  /** A raw TCP connection from `localAddress`. */
  async function rawFrom(localAddress: string, port: number): Promise<RawPeer> {
    const s: Socket = res.socket(connect({ host: '127.0.0.1', port, localAddress }));
    await within(once(s, 'connect'), 5000, `connect from ${localAddress}`);
    return new RawPeer(s);
  }

  it('refuses the flood before any crypto, counts and logs it masked, and 127.0.0.1 still handshakes', async () => {
    const out = new Lines();
    const logger = createLogger({ format: 'json', stream: out });
    // A frozen clock: no refill during the test, so the outcome does not depend on timing.
    const limiter = new RateLimiter({ maxConnectionsPerIp: 3, handshakesPerSecondPerIp: 1, handshakeBurstPerIp: 5, now: () => 0, logger, logIntervalMs: 0 });
    const metrics = new TunnelMetrics();
    let handshakesStarted = 0;
    const seen: TunnelObserver = { onHandshakeStart: () => void handshakesStarted++ };
    const listener = await res.listen({ admission: limiter, observer: [metrics, seen], handshakeTimeoutMs: 20_000 }, echo);
    const port = listener.address().port;

    // Phase 1: 20 simultaneous connections from 127.0.0.2 that never speak. Three are admitted
    // (and wait in their handshake); 17 exceed the concurrent limit and are dropped at once.
    const flood: RawPeer[] = [];
    for (let i = 0; i < 20; i++) flood.push(await rawFrom('127.0.0.2', port));
    await until(() => metrics.snapshot().rateLimitedConnections === 17, 10_000, '17 connection refusals');
    await until(() => flood.filter((p) => p.isClosed).length === 17, 10_000, 'the 17 refused sockets closed');
    for (const p of flood.filter((p) => p.isClosed)) expect(p.bytes.length, 'no alert, no bytes').to.equal(0);
    expect(handshakesStarted).to.equal(3); // only admitted connections reach the handshake
    expect(limiter.activeConnections('127.0.0.2')).to.equal(3);

    // Another address is unaffected: a real dial() from 127.0.0.1 completes and echoes.
    const t = await res.dial(listener);
    await assertEchoes(t, 'during the flood');

    // Phase 2: the held connections go away (released), and the flood goes on. 127.0.0.2 has
    // 2 of its 5 tokens left: 2 more are admitted, the rest are refused as handshakes.
    for (const p of flood) p.socket.destroy();
    await until(() => limiter.activeConnections('127.0.0.2') === 0, 10_000, 'releases of 127.0.0.2');
    const more: RawPeer[] = [];
    for (let i = 0; i < 10; i++) more.push(await rawFrom('127.0.0.2', port));
    await until(() => metrics.snapshot().rateLimitedHandshakes === 8, 10_000, '8 handshake refusals');
    expect(handshakesStarted).to.equal(3 + 1 + 2);

    // 127.0.0.1 still gets in, again and again (each tunnel closed, so its own limit of 3
    // concurrent connections is not what is being tested here).
    for (let i = 0; i < 4; i++) {
      const again = await res.dial(listener);
      await assertEchoes(again, `after the flood ${i}`);
      await within(again.close(), 5000, 'close');
      await until(() => limiter.activeConnections('127.0.0.1') === 1, 5000, 'the server released it');
    }
    // That was 127.0.0.1's fifth handshake: its own burst of 5 is now spent (the clock is frozen),
    // so a sixth is dropped before the handshake and dial() fails.
    await rejectsWithCode(res.dial(listener), ErrorCode.CONNECTION_FAILED);
    await until(() => metrics.snapshot().rateLimitedHandshakes === 9, 5000, 'the ninth handshake refusal');

    expect(await metrics.registry.metrics()).to.match(/^quantum_vpn_rate_limit_connections_total 17$/m).and.match(/^quantum_vpn_rate_limit_handshakes_total 9$/m);
    const warnings = out.records.filter((r) => r.level === 'warn');
    expect(warnings.map((r) => r.msg)).to.include.members(['connection rate limit exceeded', 'handshake rate limit exceeded']);
    for (const w of warnings) expect(w.remote_ip).to.equal('127.0.0.x');
    expect(out.raw.join('\n')).to.not.include('127.0.0.2');
    for (const p of more) p.socket.destroy();
  });
});
