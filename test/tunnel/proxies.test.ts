/**
 * The test proxies of test/helpers/proxies.ts: the delay line (round trips cost 2·delay, order,
 * half-close, reset) and the frame-rewriting proxy (byte-exact by default, rewrites, drops, frames
 * split across chunks, and real v1 and v2 tunnels through both).
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { expect } from 'chai';
import type { QuantumTunnelError, Tunnel } from '../../lib/index.js';
import { MessageType } from '../../lib/protocol/constants.js';
import { echo, readExactly, Resources, roundTrip, sha256, until, within } from '../helpers/tunnel.js';
import { encodeFrame, encodeHandshakeRecord, HANDSHAKE_RECORD, type Proxy, startDelayProxy, startFrameRewriteProxy, type WireFrame } from '../helpers/proxies.js';

const DELAY_MS = 50;

describe('test proxies', () => {
  const res = new Resources();
  const proxies: Proxy[] = [];
  const servers: Server[] = [];
  const sockets: Socket[] = [];

  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await Promise.all(proxies.splice(0).map((p) => within(p.close(), 5000, 'proxy close')));
    await Promise.all(servers.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
    await res.cleanup();
  });

  /** A half-open-capable TCP server on 127.0.0.1:0. */
  async function server(onSocket: (s: Socket) => void): Promise<number> {
    const srv = createServer({ allowHalfOpen: true }, (s) => {
      sockets.push(s);
      s.on('error', () => undefined);
      onSocket(s);
    });
    servers.push(srv);
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    return (srv.address() as AddressInfo).port;
  }

  /** An echo server that answers a FIN with its own once everything is echoed. */
  const echoServer = () => server((s) => s.pipe(s));

  async function client(port: number): Promise<Socket> {
    const s = connect({ host: '127.0.0.1', port, allowHalfOpen: true, noDelay: true });
    sockets.push(s);
    s.on('error', () => undefined);
    await within(once(s, 'connect'), 5000, 'connect');
    return s;
  }

  async function track<P extends Proxy>(p: Promise<P>): Promise<P> {
    const proxy = await p;
    proxies.push(proxy);
    return proxy;
  }

  /** Everything a socket receives until its FIN. */
  async function readToEnd(s: Socket, ms = 10_000): Promise<Buffer> {
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    await within(once(s, 'end'), ms, 'the end of the stream');
    return Buffer.concat(chunks);
  }

  describe('startDelayProxy', () => {
    it('adds at least 2·delay to a request/response round trip, per round trip', async () => {
      const proxy = await track(startDelayProxy({ targetPort: await echoServer(), delayMs: DELAY_MS }));
      const s = await client(proxy.port);
      for (let i = 0; i < 3; i++) {
        const t0 = performance.now();
        const back = readExactly(s, 5);
        s.write(`ping${i}`);
        expect((await back).toString()).to.equal(`ping${i}`);
        expect(performance.now() - t0).to.be.at.least(2 * DELAY_MS);
      }
      expect(proxy.connections).to.equal(1);
    });

    it('schedules every chunk at its own arrival + delay: delays do not add up over many chunks', async () => {
      const proxy = await track(startDelayProxy({ targetPort: await echoServer(), delayMs: DELAY_MS }));
      const s = await client(proxy.port);
      const chunks = 20;
      const back = readExactly(s, chunks);
      const t0 = performance.now();
      for (let i = 0; i < chunks; i++) {
        s.write(Buffer.from([i]));
        await new Promise((r) => setTimeout(r, 5));
      }
      expect([...(await back)]).to.deep.equal([...Array(chunks).keys()]);
      const elapsed = performance.now() - t0;
      expect(elapsed).to.be.at.least(2 * DELAY_MS);
      // About 20·5 + 2·50 ms; a delay that waited for the previous chunk would need 20·2·50.
      expect(elapsed).to.be.below(chunks * 2 * DELAY_MS);
    });

    it('keeps the order of a 4 MiB transfer of random bytes in both directions', async () => {
      const proxy = await track(startDelayProxy({ targetPort: await echoServer(), delayMs: DELAY_MS }));
      const s = await client(proxy.port);
      const data = randomBytes(4 * 2 ** 20);
      const received = readToEnd(s, 30_000);
      for (let off = 0; off < data.length; off += 65_536) {
        if (!s.write(data.subarray(off, off + 65_536))) await once(s, 'drain');
      }
      s.end();
      const back = await received;
      expect(back.length).to.equal(data.length);
      expect(sha256().update(back).digest('hex')).to.equal(sha256().update(data).digest('hex'));
    });

    it('propagates a half-close: after the client FIN the server still answers, then FINs', async () => {
      let serverSawEnd = 0;
      const port = await server((s) => {
        const got: Buffer[] = [];
        s.on('data', (c: Buffer) => got.push(c));
        s.on('end', () => {
          serverSawEnd = performance.now();
          s.end(`reply to ${Buffer.concat(got).toString()}`);
        });
      });
      const proxy = await track(startDelayProxy({ targetPort: port, delayMs: DELAY_MS }));
      const s = await client(proxy.port);
      const reply = readToEnd(s);
      const t0 = performance.now();
      s.end('request');
      expect((await reply).toString()).to.equal('reply to request');
      expect(serverSawEnd - t0).to.be.at.least(DELAY_MS); // the FIN was delayed like data
      expect(performance.now() - t0).to.be.at.least(2 * DELAY_MS);
    });

    it('propagates a reset from either side', async () => {
      const port = await server((s) => s.once('data', () => s.resetAndDestroy()));
      const proxy = await track(startDelayProxy({ targetPort: port, delayMs: DELAY_MS }));
      const s = await client(proxy.port);
      const failed = within(once(s, 'error').then(([e]) => e as NodeJS.ErrnoException), 5000, 'a reset at the client');
      s.write('x');
      expect(['ECONNRESET', 'EPIPE']).to.include((await failed).code);

      let serverError: NodeJS.ErrnoException | undefined;
      let serverConnected = false;
      let serverClosed = false;
      const port2 = await server((srv) => {
        serverConnected = true;
        srv.on('error', (e) => (serverError = e));
        srv.on('close', () => (serverClosed = true));
      });
      const proxy2 = await track(startDelayProxy({ targetPort: port2, delayMs: DELAY_MS }));
      const c = await client(proxy2.port);
      await until(() => serverConnected, 5000, 'the server connection');
      c.resetAndDestroy();
      await until(() => serverClosed, 5000, 'the server side to close');
      expect(serverError?.code).to.equal('ECONNRESET');
    });

    for (const [version, legacyV1, roundTrips] of [['v1', true, 2], ['v2', false, 1]] as const) {
      it(`carries a ${version} tunnel: dial() takes at least ${roundTrips} round trip(s) (${2 * roundTrips} one-way delays)`, async () => {
        const listener = await res.listen({ legacyV1 }, echo);
        const proxy = await track(startDelayProxy({ targetPort: listener.address().port, delayMs: DELAY_MS }));
        const t0 = performance.now();
        const t = await res.dial(proxy.port, { legacyV1 });
        expect(performance.now() - t0).to.be.at.least(2 * roundTrips * DELAY_MS);
        const data = Buffer.from('through the delay line');
        expect((await roundTrip(t, data)).equals(data)).to.equal(true);
      });
    }
  });

  describe('startFrameRewriteProxy', () => {
    /** A server that logs every byte it receives and, on its first data, sends `reply`. */
    async function loggingServer(reply: Buffer): Promise<{ port: number; received: () => Buffer }> {
      const got: Buffer[] = [];
      const port = await server((s) => {
        s.once('data', () => s.write(reply));
        s.on('data', (c: Buffer) => got.push(c));
        s.on('end', () => s.end());
      });
      return { port, received: () => Buffer.concat(got) };
    }

    const stream = Buffer.concat([
      encodeFrame(MessageType.CLIENT_HELLO, randomBytes(1641)),
      encodeHandshakeRecord(randomBytes(65)),
      encodeFrame(MessageType.DATA, randomBytes(100_000)), // beyond v1's limit: the proxy does not care
      encodeFrame(MessageType.PING),
      encodeFrame(MessageType.DATA, randomBytes(3)),
    ]);
    const reply = Buffer.concat([encodeFrame(MessageType.SERVER_HELLO, randomBytes(1653)), encodeHandshakeRecord(randomBytes(65)), encodeFrame(MessageType.PONG)]);

    for (const mode of ['without callbacks', 'with callbacks that return frame.raw']) {
      it(`forwards every byte as it came, ${mode}`, async () => {
        const seen: Array<{ dir: string; type: number; index: number; length: number }> = [];
        const log = (dir: string) => (f: WireFrame, index: number) => {
          seen.push({ dir, type: f.type, index, length: f.payload.length });
          return f.raw;
        };
        const target = await loggingServer(reply);
        const callbacks = mode.startsWith('with') ? { clientToServer: log('c2s'), serverToClient: log('s2c') } : {};
        const proxy = await track(startFrameRewriteProxy({ targetPort: target.port, ...callbacks }));
        const s = await client(proxy.port);
        const back = readToEnd(s);
        s.end(stream);
        expect((await back).equals(reply)).to.equal(true);
        expect(target.received().equals(stream)).to.equal(true);
        if (mode.startsWith('with')) {
          const c2s = seen.filter((e) => e.dir === 'c2s').map(({ type, index, length }) => [type, index, length]);
          const s2c = seen.filter((e) => e.dir === 's2c').map(({ type, index, length }) => [type, index, length]);
          expect(c2s).to.deep.equal([[MessageType.CLIENT_HELLO, 0, 1641], [HANDSHAKE_RECORD, 1, 65], [MessageType.DATA, 2, 100_000], [MessageType.PING, 3, 0], [MessageType.DATA, 4, 3]]);
          expect(s2c).to.deep.equal([[MessageType.SERVER_HELLO, 0, 1653], [HANDSHAKE_RECORD, 1, 65], [MessageType.PONG, 2, 0]]);
        }
      });
    }

    it('applies rewrites, drops and multiplies frames, in order', async () => {
      const target = await loggingServer(encodeFrame(MessageType.PONG));
      const proxy = await track(
        startFrameRewriteProxy({
          targetPort: target.port,
          clientToServer: (f, index) => {
            if (f.type === MessageType.CLIENT_HELLO) return encodeFrame(f.type, Buffer.from('rewritten hello'));
            if (f.type === MessageType.PING) return null;
            if (index === 3) return [f.raw, f.raw];
            return f.raw;
          },
          serverToClient: (f) => encodeFrame(MessageType.ALERT, f.payload),
        }),
      );
      const s = await client(proxy.port);
      const back = readToEnd(s);
      s.end(
        Buffer.concat([
          encodeFrame(MessageType.CLIENT_HELLO, Buffer.from('original hello')),
          encodeFrame(MessageType.PING),
          encodeFrame(MessageType.DATA, Buffer.from('a')),
          encodeFrame(MessageType.DATA, Buffer.from('b')),
        ]),
      );
      expect((await back).equals(encodeFrame(MessageType.ALERT))).to.equal(true);
      expect(target.received().equals(Buffer.concat([
        encodeFrame(MessageType.CLIENT_HELLO, Buffer.from('rewritten hello')),
        encodeFrame(MessageType.DATA, Buffer.from('a')),
        encodeFrame(MessageType.DATA, Buffer.from('b')),
        encodeFrame(MessageType.DATA, Buffer.from('b')),
      ]))).to.equal(true);
    });

    it('reassembles frames written one byte at a time, and forwards the bytes of an unfinished frame at the FIN', async () => {
      const target = await loggingServer(Buffer.alloc(0));
      const frames: WireFrame[] = [];
      const proxy = await track(startFrameRewriteProxy({ targetPort: target.port, clientToServer: (f) => (frames.push(f), f.raw) }));
      const s = await client(proxy.port);
      const whole = Buffer.concat([encodeFrame(MessageType.CLIENT_HELLO, randomBytes(40)), encodeHandshakeRecord(randomBytes(29)), encodeFrame(MessageType.DATA, randomBytes(7))]);
      const partial = encodeFrame(MessageType.DATA, randomBytes(10)).subarray(0, 8);
      const bytes = Buffer.concat([whole, partial]);
      for (let i = 0; i < bytes.length; i++) {
        s.write(bytes.subarray(i, i + 1));
        await new Promise((r) => setImmediate(r));
      }
      s.end();
      await within(once(s, 'end'), 5000, 'the server FIN');
      expect(frames.map((f) => f.type)).to.deep.equal([MessageType.CLIENT_HELLO, HANDSHAKE_RECORD, MessageType.DATA]);
      expect(Buffer.concat(frames.map((f) => f.raw)).equals(whole)).to.equal(true);
      expect(target.received().equals(bytes)).to.equal(true);
    });

    it('passes bytes through unparsed after a header that declares more than maxFrameLength', async () => {
      const target = await loggingServer(Buffer.alloc(0));
      const types: number[] = [];
      const proxy = await track(startFrameRewriteProxy({ targetPort: target.port, maxFrameLength: 1000, clientToServer: (f) => (types.push(f.type), f.raw) }));
      const s = await client(proxy.port);
      const bytes = Buffer.concat([encodeFrame(MessageType.PING), encodeFrame(MessageType.DATA, randomBytes(1001)), encodeFrame(MessageType.PONG)]);
      s.end(bytes);
      await within(once(s, 'end'), 5000, 'the server FIN');
      expect(types).to.deep.equal([MessageType.PING]);
      expect(target.received().equals(bytes)).to.equal(true);
    });

    it('resets both sides when a callback throws', async () => {
      let serverClosed = false;
      const port = await server((srv) => srv.on('close', () => (serverClosed = true)));
      const proxy = await track(startFrameRewriteProxy({ targetPort: port, clientToServer: () => { throw new Error('test callback fails'); } }));
      const s = await client(proxy.port);
      const failed = within(new Promise((r) => s.once('close', r)), 5000, 'the client to be reset');
      s.write(encodeFrame(MessageType.PING));
      await failed;
      await until(() => serverClosed, 5000, 'the server side to close');
    });

    it('carries a v1 tunnel frame by frame, and a dropped Data record ends it (strict record order)', async () => {
      let serverError: QuantumTunnelError | undefined;
      const listener = await res.listen({ legacyV1: true }, (t: Tunnel) => {
        t.on('error', (e: QuantumTunnelError) => (serverError = e));
        echo(t);
      });
      const c2s: number[] = [];
      const s2c: number[] = [];
      const proxy = await track(
        startFrameRewriteProxy({
          targetPort: listener.address().port,
          clientToServer: (f, index) => {
            c2s.push(f.type);
            return index === 3 ? null : f.raw; // 0 ClientHello, 1 ClientFinished, 2 first Data, 3 second
          },
          serverToClient: (f) => (s2c.push(f.type), f.raw),
        }),
      );
      const t = await res.dial(proxy.port, { legacyV1: true });
      const first = Buffer.from('first record');
      expect((await roundTrip(t, first)).equals(first)).to.equal(true);
      expect(c2s).to.deep.equal([MessageType.CLIENT_HELLO, HANDSHAKE_RECORD, MessageType.DATA]);
      expect(s2c).to.deep.equal([MessageType.SERVER_HELLO, HANDSHAKE_RECORD, MessageType.DATA]);
      t.write('dropped on the way');
      await until(() => c2s.length === 4, 5000, 'the second record at the proxy');
      t.write('arrives out of order');
      await until(() => serverError !== undefined, 5000, 'the server to refuse the gap');
      expect(serverError!.code).to.equal('ERR_QT_RECORD_OUT_OF_ORDER');
    });

    it('carries a v2 tunnel record by record, and a dropped record ends it', async () => {
      let serverError: QuantumTunnelError | undefined;
      const listener = await res.listen({}, (t: Tunnel) => {
        t.on('error', (e: QuantumTunnelError) => (serverError = e));
        echo(t);
      });
      const c2s: number[] = [];
      const s2c: number[] = [];
      let drop = -1;
      const proxy = await track(
        startFrameRewriteProxy({
          targetPort: listener.address().port,
          clientToServer: (f, index) => (c2s.push(f.type), index === drop ? null : f.raw),
          serverToClient: (f) => (s2c.push(f.type), f.raw),
        }),
      );
      const t = await res.dial(proxy.port);
      const first = Buffer.from('first record');
      expect((await roundTrip(t, first)).equals(first)).to.equal(true);
      // The hellos, then only encrypted records (type 0x30) in both directions.
      expect(c2s[0]).to.equal(MessageType.CLIENT_HELLO);
      expect(s2c[0]).to.equal(MessageType.SERVER_HELLO);
      expect(new Set([...c2s.slice(1), ...s2c.slice(1)])).to.deep.equal(new Set([0x30]));
      drop = c2s.length;
      t.write('dropped on the way');
      await until(() => c2s.length > drop, 5000, 'the dropped record at the proxy');
      t.write('arrives after a gap');
      await until(() => serverError !== undefined, 5000, 'the server to refuse the gap');
      // v2's nonce is the sequence number: the record after the gap does not authenticate.
      expect(serverError!.code).to.equal('ERR_QT_AUTHENTICATION_FAILED');
    });
  });
});
