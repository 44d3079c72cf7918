/**
 * Protocol v1 against the Go reference (Quantum-Go), over real sockets on 127.0.0.1, both
 * directions: our dial({ legacyV1 }) → a Go server, and a Go client → our listen({ legacyV1 }).
 *
 * Runs only when QUANTUM_GO_BIN is set; otherwise every test is skipped (the title says why).
 * Nothing from the Go side lives in this repository: QUANTUM_GO_BIN is the path to a small Go
 * driver program, built outside the repository against the Quantum-Go source, that calls the
 * reference's own tunnel API (tunnel.Listen/Accept, tunnel.Dial, Transport.Send/Receive/Close).
 * Its command line, which this test relies on (every line it prints is one JSON object):
 *
 *   $QUANTUM_GO_BIN server [-addr 127.0.0.1:0] [-count N]
 *       prints {"event":"listening","port":"P"}, then per tunnel {"event":"accepted","version",
 *       "suite"}; echoes every message back as one message; on the message "__close__" it calls
 *       Close() (close_notify, then TCP close) and prints {"event":"closed","by":"us"}; when
 *       Receive() fails it prints {"event":"closed","by":"peer","error":"<Go error text>"} and
 *       calls Close(), which after a received close_notify does nothing, as in the reference.
 *       Its read timeout is off (the reference's demo server uses 30 s).
 *   $QUANTUM_GO_BIN client -addr HOST:PORT [-msg TEXT]... [-size N]
 *       dials, sends each -msg and then one message of N bytes (byte i = (7i + 3) mod 256),
 *       reads one reply per message and prints {"event":"echo","sent","received","equal","text"}
 *       (equal: the reply is byte-identical), then {"event":"done","version","suite"} and closes.
 *       Any failure prints {"event":"error","error"} and exits 1.
 *
 * How the Go side was obtained and built here (none of it is in this repository), and the last
 * results: docs/BENCHMARKS.md, "The Go reference (Quantum-Go)".
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { Tunnel } from '../../lib/index.js';
import { ErrorCode } from '../../lib/index.js';
import { startFrameRewriteProxy, type WireFrame } from '../helpers/proxies.js';
import { delay, readExactly, Resources, until, within } from '../helpers/tunnel.js';

const GO_BIN = process.env.QUANTUM_GO_BIN;
const TYPE_DATA = 0x10;
/** The largest plaintext the reference can send in one record (PROTOCOL.md §8.1: 65,507 − 28). */
const GO_MAX_SEND = 65_479;

type Line = Record<string, unknown>;
/** Our option name → the name both info().suite and the Go side print. */
const SUITE_NAMES = { 'aes-256-gcm': 'AES-256-GCM', 'chacha20-poly1305': 'ChaCha20-Poly1305' } as const;

/**
 * Echoes each message as one record with the message API: the reference's Receive() returns one
 * record, so a stream write (cut into 16 KiB records) would reach it in pieces.
 */
function echoMessages(t: Tunnel): void {
  void (async () => {
    for await (const m of t.messages()) await t.send(m);
  })().catch(() => undefined);
}

/** A Go peer process and the JSON lines it printed so far. */
class GoPeer {
  readonly lines: Line[] = [];
  stderr = '';
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcess;

  constructor(args: string[]) {
    this.child = spawn(GO_BIN!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let buffered = '';
    this.child.stdout!.on('data', (d: Buffer) => {
      buffered += d.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (line.startsWith('{')) this.lines.push(JSON.parse(line) as Line);
      }
    });
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
  }

  events(name: string): Line[] {
    return this.lines.filter((l) => l.event === name);
  }

  async next(name: string, count = 1, ms = 15_000): Promise<Line> {
    await until(() => this.events(name).length >= count, ms, `the Go peer's "${name}" event (${this.stderr})`);
    return this.events(name)[count - 1]!;
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

/** The Go server; resolves once it listens, with its port. */
async function goServer(peers: GoPeer[]): Promise<{ go: GoPeer; port: number }> {
  const go = new GoPeer(['server', '-addr', '127.0.0.1:0']);
  peers.push(go);
  const port = Number((await go.next('listening')).port);
  expect(port).to.be.greaterThan(0);
  return { go, port };
}

/** Sends one message as one record and reads back exactly as many bytes. */
async function roundTrip(t: Tunnel, data: Buffer): Promise<Buffer> {
  await t.send(data);
  return readExactly(t, data.length, 15_000);
}

/**
 * Flips the last byte (inside the AEAD tag) of the second Data record of a direction: the first
 * passes untouched, so each test first proves that the same path works.
 */
function tamperSecondData(): { rewrite: (frame: WireFrame) => Buffer; tampered: () => boolean } {
  let seen = 0;
  let done = false;
  return {
    rewrite: (frame) => {
      if (done || frame.type !== TYPE_DATA || ++seen < 2) return frame.raw;
      done = true;
      const bad = Buffer.from(frame.raw);
      bad[bad.length - 1]! ^= 0x01;
      return bad;
    },
    tampered: () => done,
  };
}

describe(GO_BIN ? `protocol v1 against the Go reference (${GO_BIN})` : 'protocol v1 against the Go reference: skipped, QUANTUM_GO_BIN is not set (path to the Go driver program, see the header comment)', function () {
  this.timeout(60_000);
  const res = new Resources();
  const peers: GoPeer[] = [];

  before(function () {
    if (!GO_BIN) this.skip();
  });

  afterEach(async () => {
    await res.cleanup();
    for (const p of peers.splice(0)) p.kill();
  });

  describe('our client → Go server', () => {
    for (const cipher of ['aes-256-gcm', 'chacha20-poly1305'] as const) {
      it(`handshakes in v1 with ${cipher} and gets every byte echoed, up to the reference's largest record`, async () => {
        const { go, port } = await goServer(peers);
        const t = await res.dial(port, { legacyV1: true, ciphers: [cipher] });
        expect(t.info().protocol).to.equal('v1');
        expect(t.info().suite).to.equal(SUITE_NAMES[cipher]);
        const accepted = await go.next('accepted');
        expect(accepted.version).to.equal('1.0');
        expect(accepted.suite).to.equal(SUITE_NAMES[cipher]);
        for (const size of [1, 13, 1000, 16_384, GO_MAX_SEND]) {
          const data = randomBytes(size);
          expect((await roundTrip(t, data)).equals(data), `echo of ${size} bytes`).to.equal(true);
        }
        // Several messages in flight at once, so sequence numbers and nonces advance together.
        const burst = Array.from({ length: 20 }, (_, i) => randomBytes(100 + i));
        for (const m of burst) t.write(m);
        const all = Buffer.concat(burst);
        expect((await readExactly(t, all.length, 15_000)).equals(all)).to.equal(true);
        expect(t.info().recordsReceived).to.be.at.least(25);
      });
    }

    it('gets a Pong for its Ping, and keeps echoing across a rekey it starts (past the activation sequence)', async () => {
      const { port } = await goServer(peers);
      const t = await res.dial(port, { legacyV1: true });
      expect(await within(t.ping(), 5000, 'the Pong')).to.be.a('number');
      expect((await roundTrip(t, Buffer.from('before rekey'))).toString()).to.equal('before rekey');
      await within(t.rekey(), 10_000, 'the rekey');
      expect(t.info().rekeys).to.equal(1);
      // The reference switches keys 16 records after the request (PROTOCOL.md §9.4): go well past it.
      for (let i = 0; i < 40; i++) {
        const data = randomBytes(64 + i);
        expect((await roundTrip(t, data)).equals(data), `echo ${i} after the rekey`).to.equal(true);
      }
    });

    it('ends cleanly when the Go server closes first (close_notify, then TCP close)', async () => {
      const { go, port } = await goServer(peers);
      const t = await res.dial(port, { legacyV1: true });
      expect((await roundTrip(t, Buffer.from('before close'))).toString()).to.equal('before close');
      const closed = new Promise<void>((resolve) => t.once('close', () => resolve()));
      t.resume();
      t.write('__close__');
      await within(closed, 10_000, 'our tunnel to close after the Go close_notify');
      expect((await go.next('closed')).by).to.equal('us');
      expect(t.info().closeState).to.equal('clean');
      expect(t.info().closeError).to.equal(undefined);
    });

    it('closes within its timeout when the Go server never answers our close_notify', async () => {
      const { go, port } = await goServer(peers);
      const t = await res.dial(port, { legacyV1: true, closeTimeoutMs: 1500 });
      expect((await roundTrip(t, Buffer.from('then we close'))).toString()).to.equal('then we close');
      const started = Date.now();
      await within(t.close(), 10_000, 'close() against a silent peer');
      const took = Date.now() - started;
      // The reference reads our close_notify as the end of the tunnel and sends nothing back.
      const goClosed = await go.next('closed');
      expect(goClosed.by).to.equal('peer');
      expect(String(goClosed.error)).to.contain('connection closed');
      expect(t.info().closeState).to.equal('unanswered');
      expect(took).to.be.below(5000);
    });

    it('a record tampered on the wire towards the Go server is refused by it', async () => {
      const { go, port } = await goServer(peers);
      const tamper = tamperSecondData();
      const proxy = await res.proxy(startFrameRewriteProxy({ targetPort: port, clientToServer: tamper.rewrite }));
      const t = await res.dial(proxy.port, { legacyV1: true });
      expect((await roundTrip(t, Buffer.from('untouched'))).toString()).to.equal('untouched');
      let echoed = 0;
      t.on('data', (d: Buffer) => (echoed += d.length));
      t.write('tampered in flight');
      const closed = await go.next('closed');
      expect(tamper.tampered()).to.equal(true);
      expect(closed.by).to.equal('peer');
      expect(String(closed.error)).to.contain('authentication failed');
      expect(go.events('accepted')).to.have.length(1);
      await delay(200);
      expect(echoed, 'nothing was echoed').to.equal(0);
    });

    it('a record tampered on the wire from the Go server is refused by us', async () => {
      const { port } = await goServer(peers);
      const tamper = tamperSecondData();
      const proxy = await res.proxy(startFrameRewriteProxy({ targetPort: port, serverToClient: tamper.rewrite }));
      const t = await res.dial(proxy.port, { legacyV1: true });
      expect((await roundTrip(t, Buffer.from('untouched'))).toString()).to.equal('untouched');
      const failed = new Promise<Error>((resolve) => t.once('error', resolve));
      let echoed = 0;
      t.on('data', (d: Buffer) => (echoed += d.length));
      t.write('tampered on the way back');
      const err = (await within(failed, 10_000, 'our tunnel to refuse the record')) as Error & { code?: string };
      expect(tamper.tampered()).to.equal(true);
      expect(err.code).to.equal(ErrorCode.AUTHENTICATION_FAILED);
      expect(echoed).to.equal(0);
    });
  });

  describe('Go client → our server', () => {
    it('handshakes in v1 and gets every byte echoed, up to the reference largest record', async () => {
      const accepted: Tunnel[] = [];
      const listener = await res.listen({ legacyV1: true }, (t) => {
        accepted.push(t);
        echoMessages(t);
      });
      const go = new GoPeer(['client', '-addr', `127.0.0.1:${listener.address().port}`, '-msg', 'hello from Go', '-msg', 'x', '-size', String(GO_MAX_SEND)]);
      peers.push(go);
      expect(await within(go.exited, 20_000, 'the Go client')).to.equal(0);
      const echoes = go.events('echo');
      expect(echoes.map((e) => e.sent)).to.deep.equal([13, 1, GO_MAX_SEND]);
      for (const e of echoes) {
        expect(e.equal, JSON.stringify(e)).to.equal(true);
        expect(e.received).to.equal(e.sent);
      }
      const done = go.events('done')[0]!;
      expect(done.version).to.equal('1.0');
      expect(done.suite).to.equal('AES-256-GCM');
      expect(accepted).to.have.length(1);
      expect(accepted[0]!.info().protocol).to.equal('v1');
      expect(accepted[0]!.info().bytesReceived).to.equal(13 + 1 + GO_MAX_SEND);
    });

    it('ends cleanly when the Go client closes (its Close sends close_notify)', async () => {
      const states: Promise<string>[] = [];
      const listener = await res.listen({ legacyV1: true }, (t) => {
        states.push(new Promise((resolve) => t.once('close', () => resolve(t.info().closeState))));
        echoMessages(t);
      });
      const go = new GoPeer(['client', '-addr', `127.0.0.1:${listener.address().port}`, '-msg', 'bye']);
      peers.push(go);
      expect(await within(go.exited, 20_000, 'the Go client')).to.equal(0);
      await until(() => states.length === 1, 5000, 'our server tunnel');
      expect(await within(states[0]!, 10_000, 'our server tunnel to close')).to.equal('clean');
    });

    it('a record tampered on the wire from the Go client is refused by us, and the Go client gets no echo of it', async () => {
      const errors: string[] = [];
      const listener = await res.listen({ legacyV1: true }, (t) => {
        t.on('error', (e: Error & { code?: string }) => errors.push(String(e.code)));
        t.on('data', (d: Buffer) => t.write(d));
      });
      const tamper = tamperSecondData();
      const proxy = await res.proxy(startFrameRewriteProxy({ targetPort: listener.address().port, clientToServer: tamper.rewrite }));
      const go = new GoPeer(['client', '-addr', `127.0.0.1:${proxy.port}`, '-msg', 'untouched', '-msg', 'tampered']);
      peers.push(go);
      expect(await within(go.exited, 20_000, 'the Go client')).to.equal(1);
      expect(tamper.tampered()).to.equal(true);
      expect(go.events('echo').map((e) => [e.text, e.equal])).to.deep.equal([['untouched', true]]);
      expect(go.events('error')).to.have.length(1);
      await until(() => errors.length > 0, 5000, 'our server tunnel to fail');
      expect(errors).to.deep.equal([ErrorCode.AUTHENTICATION_FAILED]);
    });
  });
});
