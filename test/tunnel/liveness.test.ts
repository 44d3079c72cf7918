/**
 * keepAliveMs and idleTimeoutMs (lib/tunnel/liveness.ts): a silent peer is pinged and then
 * given up on, a live idle peer answers and keeps the tunnel, an idle tunnel closes gracefully,
 * and a busy one stays open.
 */
import { once } from 'node:events';
import { mock } from 'node:test';
import { expect } from 'chai';
import { dial, ErrorCode, listen, type QuantumTunnelError } from '../../lib/index.js';
import { Liveness } from '../../lib/tunnel/liveness.js';
import { startFreezableRelay } from '../helpers/proxies.js';
import { delay, nextTunnel, rejectsWithCode, Resources, roundTrip, within } from '../helpers/tunnel.js';

describe('tunnel liveness: keepalive and idle timeout', () => {
  const res = new Resources();
  afterEach(() => res.cleanup());

  it('keepalive: a peer that goes silent is pinged, then the tunnel fails with ERR_QT_TIMEOUT', async () => {
    const l = await res.listen({ port: 0 });
    const relay = await startFreezableRelay(l.address().port);
    try {
      const server = nextTunnel(l);
      const t = res.tunnel(await dial({ host: '127.0.0.1', port: relay.port }, { keepAliveMs: 40 }));
      (await server).on('error', () => undefined);
      relay.freeze(); // the path dies without a FIN or a reset, as behind a dropped NAT mapping
      const started = performance.now();
      const [err] = (await within(once(t, 'error'), 2000, 'keepalive failure')) as [QuantumTunnelError];
      expect(err.code).to.equal(ErrorCode.TIMEOUT);
      expect(err.message).to.match(/keepalive/);
      // Silence for 2-3 intervals: pinged after the first quiet one, given up after the next.
      expect(performance.now() - started).to.be.within(60, 1000);
      expect(t.destroyed).to.equal(true);
    } finally {
      await relay.close();
    }
  });

  it('keepalive: an idle but live peer answers the Pings and the tunnel stays up', async () => {
    const l = await res.listen({ port: 0 });
    const server = nextTunnel(l);
    const t = res.tunnel(await dial({ host: '127.0.0.1', port: l.address().port }, { keepAliveMs: 100 }));
    const s = await server;
    s.pipe(s);
    await delay(600); // six intervals of silence from the application
    // Without Pongs the client would have given up after 2-3 intervals (the test above).
    expect(t.destroyed).to.equal(false);
    expect((await roundTrip(t, Buffer.from('still here'))).toString()).to.equal('still here');
  });

  it('idle timeout: no data either way closes the tunnel gracefully on both ends', async () => {
    const l = await res.listen({ port: 0, idleTimeoutMs: 60 });
    const server = nextTunnel(l);
    const t = res.tunnel(await dial({ host: '127.0.0.1', port: l.address().port }));
    const s = await server;
    const errors: unknown[] = [];
    t.on('error', (e) => errors.push(e));
    t.resume();
    await within(once(t, 'close'), 2000, 'idle close');
    expect(errors).to.deep.equal([]);
    expect(t.info().closeError).to.equal(undefined);
    expect(s.info().closeError).to.equal(undefined);
  });

  it('idle timeout: data every few milliseconds keeps the tunnel open; Pings alone do not', async () => {
    const l = await res.listen({ port: 0, idleTimeoutMs: 250 });
    const server = nextTunnel(l);
    const t = res.tunnel(await dial({ host: '127.0.0.1', port: l.address().port }, { keepAliveMs: 30 }));
    const s = await server;
    s.pipe(s);
    for (let i = 0; i < 30; i++) {
      await roundTrip(t, Buffer.from(`tick ${i}`));
      await delay(20);
    }
    expect(s.destroyed, 'busy for 3x the idle timeout').to.equal(false);
    // Now only the client's keepalive Pings flow: they are not data, so the server closes.
    await within(once(s, 'close'), 2000, 'idle close with only Pings');
  });

  it('refuses bad values before connecting', async () => {
    for (const keepAliveMs of [-1, Number.NaN, 2 ** 31]) {
      await rejectsWithCode(dial({ host: '127.0.0.1', port: 1 }, { keepAliveMs }), ErrorCode.INVALID_ARGUMENT);
    }
    expect(() => listen({ port: 0, idleTimeoutMs: -5 })).to.throw().with.property('code', ErrorCode.INVALID_ARGUMENT);
  });

  it('the timers compare counters: a frame resets the keepalive, data resets the idle timer', () => {
    let frames = 0;
    let bytes = 0;
    const events: string[] = [];
    const hooks = { framesReceived: () => frames, dataBytes: () => bytes, ping: () => events.push('ping'), unresponsive: () => events.push('dead'), idle: () => events.push('idle') };
    mock.timers.enable({ apis: ['setInterval'] });
    try {
      const live = new Liveness(hooks, { keepAliveMs: 20, idleTimeoutMs: 0 });
      mock.timers.tick(20); // one quiet interval: a Ping
      expect(events).to.deep.equal(['ping']);
      frames++; // its Pong
      mock.timers.tick(20);
      expect(events).to.deep.equal(['ping']);
      mock.timers.tick(20); // quiet again: a Ping
      mock.timers.tick(20); // and no answer: given up, timers stopped
      mock.timers.tick(100);
      expect(events).to.deep.equal(['ping', 'ping', 'dead']);
      live.stop();

      events.length = 0;
      const idle = new Liveness(hooks, { keepAliveMs: 0, idleTimeoutMs: 40 });
      mock.timers.tick(20); // quiet
      bytes += 10;
      mock.timers.tick(20); // data: the count starts again
      mock.timers.tick(20); // quiet (one)
      expect(events).to.deep.equal([]);
      mock.timers.tick(20); // quiet (two): a full timeout without data
      expect(events).to.deep.equal(['idle']);
      mock.timers.tick(100);
      expect(events).to.deep.equal(['idle']);
      idle.stop();
    } finally {
      mock.timers.reset();
    }
  });
});
