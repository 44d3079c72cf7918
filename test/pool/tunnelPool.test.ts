/**
 * The tunnel pool against real listeners on 127.0.0.1: sizing, reuse, fair waiting, timeouts,
 * ageing, health checks by ping, peers that close or go away, backoff while the server is down,
 * draining, and take().
 */
import { expect } from 'chai';
import { Registry } from 'prom-client';
import { connect, type Socket } from 'node:net';
import { createTunnelPool, ErrorCode, registerTunnelPoolMetrics, type Listener, type Tunnel, type TunnelPool, type TunnelPoolOptions } from '../../lib/index.js';
import { delay, echo, readExactly, rejectsWithCode, Resources, until, within } from '../helpers/tunnel.js';
import { startFrameRewriteProxy } from '../helpers/proxies.js';

const res = new Resources();
const pools: TunnelPool[] = [];

/** Server tunnels, in the order they were accepted. */
let accepted: Tunnel[] = [];

async function echoServer(): Promise<Listener> {
  return res.listen({}, (t) => {
    accepted.push(t);
    echo(t);
  });
}

function pool(port: number, options: TunnelPoolOptions): TunnelPool {
  const p = createTunnelPool(`127.0.0.1:${port}`, {}, { healthCheckIntervalMs: 0, ...options });
  pools.push(p);
  return p;
}

/** One echoed round trip through `t` (the reader is removed again, so the tunnel can go back). */
async function roundTrip(t: Tunnel, text: string): Promise<string> {
  t.write(text);
  return (await readExactly(t, Buffer.byteLength(text), 5000)).toString();
}

/** Timers and sockets alive in this process, to check that a closed pool leaves none behind. */
function handles(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout' || r === 'TCPSocketWrap').length;
}

describe('tunnel pool', function () {
  this.timeout(10_000);

  beforeEach(() => {
    accepted = [];
  });

  afterEach(async () => {
    await Promise.all(pools.splice(0).map((p) => within(p.close(), 5000, 'pool close')));
    await res.cleanup();
  });

  it('opens minIdle tunnels ahead of demand, then dials no more', async () => {
    const l = await echoServer();
    const p = pool(l.address().port, { max: 4, minIdle: 2 });
    await until(() => p.stats().idle === 2, 5000, 'two idle tunnels');
    await delay(50);
    expect(p.stats()).to.include({ size: 2, idle: 2, leased: 0, created: 2, pendingDials: 0 });
    expect(accepted).to.have.length(2);
  });

  it('acquire/release reuses the same tunnel without adding listeners', async () => {
    const l = await echoServer();
    const p = pool(l.address().port, { max: 2 });
    const first = await p.acquire();
    const listeners = ['close', 'end', 'error', 'data', 'readable'].map((e) => first.tunnel.listenerCount(e));
    expect(await roundTrip(first.tunnel, 'one')).to.equal('one');
    first.release();
    expect(p.stats()).to.include({ idle: 1, leased: 0 });
    for (let i = 0; i < 20; i++) {
      const lease = await p.acquire();
      expect(lease.tunnel).to.equal(first.tunnel);
      expect(['close', 'end', 'error', 'data', 'readable'].map((e) => lease.tunnel.listenerCount(e))).to.deep.equal(listeners);
      expect(await roundTrip(lease.tunnel, `n${i}`)).to.equal(`n${i}`);
      lease.release();
      lease.release(); // a second release does nothing
    }
    expect(p.stats()).to.include({ created: 1, destroyed: 0, idle: 1 });
    expect(p.stats().acquireWait.count).to.equal(21);
    expect(accepted).to.have.length(1);
  });

  it('a lessee that leaves a reader behind does not give the tunnel back', async () => {
    const l = await echoServer();
    const p = pool(l.address().port, { max: 2 });
    const lease = await p.acquire();
    lease.tunnel.on('data', () => undefined);
    lease.release();
    await until(() => lease.tunnel.destroyed, 3000, 'the tunnel closed');
    expect(p.stats()).to.include({ idle: 0, size: 0, destroyed: 1 });
  });

  it('never holds more than max, and serves waiters first come first served', async () => {
    const l = await echoServer();
    const p = pool(l.address().port, { max: 1 });
    const held = await p.acquire();
    const order: number[] = [];
    const waiters = [1, 2, 3].map((n) => p.acquire().then((lease) => {
      order.push(n);
      return lease;
    }));
    await delay(30);
    expect(p.stats()).to.include({ size: 1, leased: 1, waiters: 3, pendingDials: 0 });
    held.release();
    for (const w of waiters) (await w).release();
    expect(order).to.deep.equal([1, 2, 3]);
    expect(p.stats()).to.include({ created: 1, waiters: 0 });
    expect(accepted).to.have.length(1);
  });

  it('a waiter that times out gets ERR_QT_POOL_TIMEOUT; a full queue refuses at once', async () => {
    const l = await echoServer();
    const p = pool(l.address().port, { max: 1, acquireTimeoutMs: 100, maxWaiters: 1 });
    const held = await p.acquire();
    const started = Date.now();
    const waiting = rejectsWithCode(p.acquire(), ErrorCode.POOL_TIMEOUT);
    const overflow = await rejectsWithCode(p.acquire(), ErrorCode.POOL_EXHAUSTED, 50);
    expect(overflow.message).to.match(/1 callers already wait/);
    await waiting;
    expect(Date.now() - started).to.be.within(90, 2000);
    expect(p.stats().waiters).to.equal(0);
    held.release();
  });

  it('an aborted acquire leaves the queue', async () => {
    const l = await echoServer();
    const p = pool(l.address().port, { max: 1 });
    const held = await p.acquire();
    const abort = new AbortController();
    const waiting = rejectsWithCode(p.acquire({ signal: abort.signal }), ErrorCode.ABORTED);
    abort.abort();
    await waiting;
    expect(p.stats().waiters).to.equal(0);
    held.release();
  });

  it('retires tunnels idle too long, and tunnels past their lifetime (replacing them for minIdle)', async () => {
    const l = await echoServer();
    const idle = pool(l.address().port, { max: 2, idleTimeoutMs: 100 });
    (await idle.acquire()).release();
    expect(idle.stats().idle).to.equal(1);
    await until(() => accepted.length === 1, 2000, 'the server tunnel');
    await until(() => idle.stats().idle === 0, 2000, 'the idle tunnel retired');
    expect(idle.stats()).to.include({ destroyed: 1, size: 0 });
    await until(() => accepted[0]!.destroyed, 2000, 'the server side closed');
    expect(accepted[0]!.info().closeState).to.not.match(/truncated|error/);

    const aged = pool(l.address().port, { max: 2, minIdle: 1, idleTimeoutMs: 0, maxLifetimeMs: 150 });
    await until(() => aged.stats().idle === 1, 5000, 'one idle tunnel');
    await until(() => accepted.length === 2, 2000, 'the server tunnel');
    const firstServer = accepted[1]!;
    await until(() => aged.stats().created >= 2 && aged.stats().idle === 1, 3000, 'a replacement');
    expect(aged.stats().destroyed).to.be.at.least(1);
    await until(() => firstServer.destroyed, 2000, 'the old tunnel closed');
  });

  it('a lease returned past maxLifetime is closed, not reused', async () => {
    const l = await echoServer();
    const p = pool(l.address().port, { max: 2, maxLifetimeMs: 100 });
    const lease = await p.acquire();
    await delay(120);
    lease.release();
    expect(p.stats()).to.include({ idle: 0, destroyed: 1 });
    const next = await p.acquire();
    expect(next.tunnel).to.not.equal(lease.tunnel);
    next.release();
  });

  it('destroys an idle tunnel whose peer stops answering pings, and replaces it', async () => {
    const l = await echoServer();
    let silent = false;
    // The first connection's server-to-client bytes vanish once `silent` is set: no Pong comes back.
    const proxy = await res.proxy(startFrameRewriteProxy({
      targetPort: l.address().port,
      serverToClient: (frame, _index, connection) => (silent && connection === 0 ? null : frame.raw),
    }));
    const p = pool(proxy.port, { max: 2, minIdle: 1, healthCheckIntervalMs: 50, healthCheckTimeoutMs: 400 });
    await until(() => p.stats().idle === 1, 5000, 'one idle tunnel');
    await delay(120); // a few checks pass while the peer answers
    expect(p.stats().healthCheckFailures).to.equal(0);
    silent = true;
    await until(() => p.stats().healthCheckFailures === 1, 3000, 'a failed check');
    await until(() => p.stats().created === 2 && p.stats().idle === 1, 5000, 'a replacement');
    expect(p.stats().destroyed).to.equal(1);
    const lease = await p.acquire();
    expect(await roundTrip(lease.tunnel, 'alive')).to.equal('alive');
    lease.release();
  });

  it('an idle tunnel the server closes leaves the pool at once', async () => {
    const l = await echoServer();
    const p = pool(l.address().port, { max: 2 });
    (await p.acquire()).release();
    expect(p.stats().idle).to.equal(1);
    await until(() => accepted.length === 1, 2000, 'the server tunnel');
    await accepted[0]!.close();
    await until(() => p.stats().idle === 0, 2000, 'the tunnel left the pool');
    expect(p.stats()).to.include({ size: 0, destroyed: 1 });
    const lease = await p.acquire();
    expect(await roundTrip(lease.tunnel, 'new')).to.equal('new');
    lease.release();
  });

  it('server down: dial failures reach the waiters, and backoff keeps the dials few', async () => {
    let connections = 0;
    const down = await res.rawServer((s: Socket) => {
      connections++;
      s.destroy(); // accepts, then hangs up: every handshake fails
    });
    const p = pool(down.port, { max: 4, dialBackoffMs: 100, dialBackoffMaxMs: 400 });
    const first = await Promise.allSettled(Array.from({ length: 10 }, () => p.acquire()));
    for (const r of first) {
      expect(r.status).to.equal('rejected');
      const code = (r as PromiseRejectedResult).reason.code as string;
      expect(code).to.match(/^ERR_QT_/);
      expect(code).to.not.match(/POOL/);
    }
    // Callers keep coming for 600 ms: they fail fast while the pool backs off.
    let calls = 0;
    const until600 = Date.now() + 600;
    while (Date.now() < until600) {
      calls++;
      await p.acquire().then((lease) => lease.release(), () => undefined);
      await delay(10);
    }
    expect(calls).to.be.above(20);
    // 4 at first, then one at a time at least 50, 100, 200, 200... ms apart.
    expect(connections).to.be.within(5, 12);
    await until(() => p.stats().pendingDials === 0, 2000, 'the last dial');
    expect(p.stats().dialFailures).to.equal(connections);
  });

  it('recovers once the server is back: the next dial after the backoff fills the pool', async () => {
    const l = await echoServer();
    let up = false;
    // A relay that hangs up while the server is "down", and passes bytes through once it is up.
    const relay = await res.rawServer((s: Socket) => {
      if (!up) return void s.destroy();
      const server = connect({ host: '127.0.0.1', port: l.address().port });
      server.on('error', () => s.destroy());
      s.on('close', () => server.destroy());
      s.pipe(server).pipe(s);
    });
    const p = pool(relay.port, { max: 2, minIdle: 1, dialBackoffMs: 50, dialBackoffMaxMs: 200 });
    await until(() => p.stats().dialFailures >= 2, 3000, 'failed dials');
    expect(p.stats().idle).to.equal(0);
    up = true;
    await until(() => p.stats().idle === 1, 3000, 'an idle tunnel after recovery');
    expect(p.stats().created).to.equal(1);
    const lease = await p.acquire();
    expect(await roundTrip(lease.tunnel, 'back')).to.equal('back');
    lease.release();
  });

  it('close() rejects waiters, closes idle tunnels, waits for leases within a bound, and leaves no handles', async () => {
    const l = await echoServer();
    await delay(20);
    const before = handles();
    const p = createTunnelPool(`127.0.0.1:${l.address().port}`, {}, { max: 2, minIdle: 1, healthCheckIntervalMs: 1000, idleTimeoutMs: 1000, drainTimeoutMs: 150 });
    await until(() => p.stats().idle === 1, 5000, 'one idle tunnel');
    const a = await p.acquire();
    const b = await p.acquire();
    const waiter = rejectsWithCode(p.acquire(), ErrorCode.POOL_CLOSED);
    const started = Date.now();
    const closing = p.close();
    await waiter;
    await rejectsWithCode(p.acquire(), ErrorCode.POOL_CLOSED, 50);
    a.release(); // comes back during the drain: closed
    await closing; // b never came back: closed after drainTimeoutMs
    expect(Date.now() - started).to.be.within(100, 3000);
    expect(a.tunnel.destroyed && b.tunnel.destroyed).to.equal(true);
    expect(p.stats()).to.include({ size: 0, idle: 0, leased: 0, waiters: 0 });
    await until(() => accepted.every((t) => t.destroyed), 3000, 'server tunnels closed');
    for (const t of accepted) expect(t.info().closeError).to.equal(undefined);
    await until(() => handles() <= before, 3000, `no handles left (${handles()} > ${before})`);
  });

  it('take() hands a tunnel over for good and the pool refills to minIdle', async () => {
    const l = await echoServer();
    const p = pool(l.address().port, { max: 3, minIdle: 2 });
    await until(() => p.stats().idle === 2, 5000, 'two idle tunnels');
    const taken = await p.take();
    expect(p.stats()).to.include({ taken: 1, idle: 1 });
    await until(() => p.stats().idle === 2, 5000, 'refilled');
    expect(p.stats()).to.include({ created: 3, size: 2 });
    expect(taken.listenerCount('close')).to.equal(0);
    res.tunnel(taken);
    expect(await roundTrip(taken, 'mine')).to.equal('mine');
    await taken.close();
    expect(p.stats()).to.include({ idle: 2, destroyed: 0 });
  });

  it('metrics: tunnels by state, waiters, acquire time, dial failures, on a prom-client registry', async () => {
    const l = await echoServer();
    const registry = new Registry();
    const p = pool(l.address().port, { max: 1, acquireTimeoutMs: 0 });
    const metrics = registerTunnelPoolMetrics(p, registry, { labels: { pool: 'echo' } });
    const lease = await p.acquire();
    const waiting = p.acquire();
    let text = await registry.metrics();
    expect(text).to.include('quantum_vpn_pool_tunnels{pool="echo",state="leased"} 1');
    expect(text).to.include('quantum_vpn_pool_tunnels{pool="echo",state="idle"} 0');
    expect(text).to.include('quantum_vpn_pool_waiters{pool="echo"} 1');
    expect(text).to.include('quantum_vpn_pool_tunnels_created_total{pool="echo"} 1');
    lease.release();
    (await waiting).release();
    text = await registry.metrics();
    expect(text).to.include('quantum_vpn_pool_acquire_seconds_count{pool="echo"} 2');
    expect(text).to.include('quantum_vpn_pool_tunnels_created_total{pool="echo"} 1'); // counted once, not per scrape
    const down = await res.rawServer((s: Socket) => s.destroy());
    const failing = pool(down.port, {});
    const failingMetrics = registerTunnelPoolMetrics(failing, registry, { prefix: 'other_' });
    await failing.acquire().catch(() => undefined);
    expect(await registry.metrics()).to.match(/other_pool_dial_failures_total\{code="ERR_QT_[A-Z_]+"\} 1/);
    metrics.unregister();
    failingMetrics.unregister();
    expect(await registry.metrics()).to.not.include('pool_');
  });
});
