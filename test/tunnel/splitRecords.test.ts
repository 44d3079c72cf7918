/**
 * v2 records that span socket reads, end to end: a TCP proxy between client and server re-chunks
 * each direction into small random pieces, written one per event-loop turn (sometimes after a
 * short timer), so the receiving tunnel sees many separate reads and opens most records where
 * they lie (FrameReader SplitFrame → RecordLayer.openParts → 'data-parts'). Data must arrive
 * intact, message boundaries must hold, and a flipped bit in a spanning record must be fatal.
 * Also the send side's slabs: many tunnels writing at once.
 */
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { expect } from 'chai';
import { type DialOptions, ErrorCode, type Listener, QuantumTunnelError, type Tunnel } from '../../lib/index.js';
import { MAX_RECORD_PLAINTEXT } from '../../lib/protocol/constants.js';
import { RecordLayer } from '../../lib/protocol/v2/record.js';
import { idleSlabs, outputFor, SLAB_CONTENT, SLAB_SIZE } from '../../lib/tunnel/outputBuffers.js';
import * as testing from '../../lib/testing.js';
import { nextTunnel, pattern, Resources, sha256, streamIn, streamOut, until, within } from '../helpers/tunnel.js';

// ---- a re-chunking proxy ------------------------------------------------------------------------

type Dir = 'up' | 'down'; // up: client → server

interface RechunkOptions {
  /** Piece sizes: uniform in [min, max]; with probability `tiny`, 1..64 bytes instead. */
  min: number;
  max: number;
  tiny?: number;
  /** Every n-th piece waits a 1 ms timer instead of setImmediate. */
  timerEvery?: number;
  seed: number;
}

interface DirState {
  /** Bytes received from the sender so far (the next byte's stream offset). */
  received: number;
  /** Bytes written to the receiver so far. */
  written: number;
  /** Stream offset of a byte to flip on its way, and the mask. */
  flip?: { at: number; mask: number; done: boolean };
}

class RechunkProxy {
  readonly dirs: Record<Dir, DirState> = { up: { received: 0, written: 0 }, down: { received: 0, written: 0 } };
  readonly #sockets = new Set<Socket>();
  readonly #timers = new Set<NodeJS.Timeout | NodeJS.Immediate>();
  #server!: Server;
  port = 0;
  #next: (n: number) => number;

  constructor(private readonly options: RechunkOptions, private readonly targetPort: number) {
    // Choices drawn from the test pattern's bytes: reproducible per seed.
    const words = pattern(1 << 16, options.seed);
    let i = 0;
    this.#next = (n: number) => {
      i = (i + 4) % words.length;
      return words.readUInt32LE(i) % n;
    };
  }

  async start(): Promise<this> {
    this.#server = createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
      const upstream = connect({ host: '127.0.0.1', port: this.targetPort, allowHalfOpen: true, noDelay: true });
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => {
          this.#sockets.delete(s);
          // A reset or close on one side tears the other down (after its queue, for a clean close).
          (s === client ? upstream : client).destroySoon?.();
        });
      }
      this.#pump(client, upstream, this.dirs.up);
      this.#pump(upstream, client, this.dirs.down);
    });
    this.#server.listen(0, '127.0.0.1');
    await once(this.#server, 'listening');
    this.port = (this.#server.address() as AddressInfo).port;
    return this;
  }

  /** Flips `mask` in the byte `offset` bytes after what `dir` has received so far. */
  flipAfter(dir: Dir, offset: number, mask = 0x04): void {
    const d = this.dirs[dir];
    d.flip = { at: d.received + offset, mask, done: false };
  }

  /** Bytes of `dir` received and not yet passed on. */
  pending(dir: Dir): number {
    return this.dirs[dir].received - this.dirs[dir].written;
  }

  #pieceSize(): number {
    const o = this.options;
    if (o.tiny !== undefined && this.#next(1000) < o.tiny * 1000) return 1 + this.#next(64);
    return o.min + this.#next(o.max - o.min + 1);
  }

  #pump(from: Socket, to: Socket, d: DirState): void {
    const queue: Buffer[] = [];
    let queued = 0;
    let ended = false;
    let scheduled = false;
    let count = 0;
    const schedule = () => {
      if (scheduled) return;
      scheduled = true;
      const run = () => {
        this.#timers.delete(handle);
        scheduled = false;
        step();
      };
      const every = this.options.timerEvery;
      const handle = every !== undefined && ++count % every === 0 ? setTimeout(run, 1) : setImmediate(run);
      this.#timers.add(handle);
    };
    const take = (n: number): Buffer => {
      const out = Buffer.alloc(n);
      let filled = 0;
      while (filled < n) {
        const head = queue[0]!;
        const used = Math.min(head.length, n - filled);
        head.copy(out, filled, 0, used);
        filled += used;
        if (used === head.length) queue.shift();
        else queue[0] = head.subarray(used);
      }
      queued -= n;
      return out;
    };
    const step = () => {
      if (to.destroyed) return;
      if (queued === 0) {
        if (ended) to.end();
        else if (from.isPaused()) from.resume();
        return;
      }
      const piece = take(Math.min(queued, this.#pieceSize()));
      const f = d.flip;
      if (f !== undefined && !f.done && f.at >= d.written && f.at < d.written + piece.length) {
        piece[f.at - d.written]! ^= f.mask;
        f.done = true;
      }
      d.written += piece.length;
      if (to.write(piece)) schedule();
      else to.once('drain', schedule);
    };
    from.on('data', (chunk: Buffer) => {
      queue.push(chunk);
      queued += chunk.length;
      d.received += chunk.length;
      if (queued > 512 * 1024) from.pause();
      schedule();
    });
    from.on('end', () => {
      ended = true;
      schedule();
    });
  }

  async close(): Promise<void> {
    for (const t of this.#timers) {
      clearTimeout(t as NodeJS.Timeout);
      clearImmediate(t as NodeJS.Immediate);
    }
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

// ---- counting the split path --------------------------------------------------------------------

/** openParts calls (all tunnels of this process), and how many of them threw which code. */
const splitOpens = { calls: 0, failures: [] as string[], epochs: new Set<number>() };
const originalOpenParts = RecordLayer.prototype.openParts;

function installSpy(): void {
  RecordLayer.prototype.openParts = function (this: RecordLayer, ...args: Parameters<RecordLayer['openParts']>) {
    splitOpens.calls++;
    try {
      const opened = originalOpenParts.apply(this, args);
      splitOpens.epochs.add(opened.epoch);
      return opened;
    } catch (err) {
      splitOpens.failures.push((err as QuantumTunnelError).code ?? String(err));
      throw err;
    }
  };
}

const codeOf = (e: unknown) => (e instanceof QuantumTunnelError ? e.code : String(e));

/** Message sizes: the limits around the split threshold and the largest message, then random ones. */
function messageSizes(count: number, seed: number): number[] {
  const fixed = [MAX_RECORD_PLAINTEXT, 1, 2048, 2049, 2050, 2051, 2100, MAX_RECORD_PLAINTEXT, 16_384, 65_000, 7, 30_000];
  let x = seed;
  const out = [...fixed];
  while (out.length < count) {
    x = (x * 1103515245 + 12345) >>> 0;
    out.push(1 + (x % MAX_RECORD_PLAINTEXT));
  }
  return out;
}

describe('v2 records that span socket reads, end to end through a re-chunking proxy', function () {
  this.timeout(60_000);
  const res = new Resources();
  const proxies: RechunkProxy[] = [];

  before(installSpy);
  after(() => {
    RecordLayer.prototype.openParts = originalOpenParts;
  });
  afterEach(async () => {
    await res.cleanup();
    await Promise.all(proxies.splice(0).map((p) => within(p.close(), 5000, 'proxy close').catch(() => undefined)));
  });

  async function proxied(listener: Listener, options: RechunkOptions, dialOptions: DialOptions = {}): Promise<{ client: Tunnel; server: Tunnel; proxy: RechunkProxy }> {
    const proxy = await new RechunkProxy(options, listener.address().port).start();
    proxies.push(proxy);
    const serverSide = nextTunnel(listener);
    const client = await res.dial(proxy.port, dialOptions);
    return { client, server: await serverSide, proxy };
  }

  /** Streams `total` bytes from the client through the echoing server and back; returns how many records were opened in parts meanwhile. */
  async function echoes(client: Tunnel, server: Tunnel, total: number, seed: number): Promise<number> {
    server.pipe(server);
    const before = splitOpens.calls;
    const back = streamIn(client, total);
    const sent = await streamOut(client, total, seed);
    expect(await within(back.done, 45_000, 'the echo')).to.equal(sent);
    expect(back.received()).to.equal(total);
    expect(splitOpens.failures).to.deep.equal([]);
    return splitOpens.calls - before;
  }

  it('stream mode: 6 MiB echoed back through pieces of 1..12,000 bytes (some 1..64) arrive intact both ways; most records were opened in parts', async () => {
    const listener = await res.listen();
    const { client, server } = await proxied(listener, { min: 1, max: 12_000, tiny: 0.2, timerEvery: 50, seed: 1 });
    const total = 6 * 1024 * 1024;
    // 6 MiB in 16 KiB records, twice (there and back): most of the 768 records went through openParts.
    expect(await echoes(client, server, total, 5), 'records opened in parts').to.be.greaterThan(300);
    expect(splitOpens.failures).to.deep.equal([]);
    const s = testing.sessionOf(server)!.stats;
    expect(s.bytesReceived).to.equal(total);
  });

  it('rekeys while 4 MiB stream both ways: records of every epoch (2 to 5) are opened in parts and every byte comes back', async () => {
    const listener = await res.listen({ rekeyMinIntervalMs: 0 });
    const { client, server } = await proxied(listener, { min: 1000, max: 10_000, timerEvery: 30, seed: 10 });
    splitOpens.epochs.clear();
    server.pipe(server);
    const before = splitOpens.calls;
    const back = streamIn(client, 4 * 1024 * 1024);
    const h = sha256();
    // A MiB, then a rekey (client, server, client in turn) while it is still on its way, four times.
    for (const [phase, side] of [client, server, client, undefined].entries()) {
      const chunk = pattern(1024 * 1024, 20 + phase);
      h.update(chunk);
      client.write(chunk);
      if (side) await within(side.rekey(), 10_000, 'a rekey');
    }
    expect(await within(back.done, 30_000, 'the echo')).to.equal(h.digest('hex'));
    expect(splitOpens.calls - before).to.be.greaterThan(100);
    expect(splitOpens.failures).to.deep.equal([]);
    expect(client.info().rekeys).to.equal(3);
    expect(server.info().rekeys).to.equal(3);
    // Epoch 2 (the first application keys) and every later one came through openParts.
    expect([...splitOpens.epochs].sort()).to.include.members([2, 3, 4, 5]);
  });

  it('messages(): send() of 40 messages of 1..65,479 bytes each way keeps every boundary and byte', async () => {
    const listener = await res.listen();
    const { client, server } = await proxied(listener, { min: 500, max: 9000, timerEvery: 20, seed: 2 });
    const sizes = messageSizes(40, 7);
    const messages = sizes.map((n, i) => pattern(n, 1000 + i));
    const before = splitOpens.calls;
    // The server echoes message by message.
    const echoed = (async () => {
      let i = 0;
      for await (const m of server.messages()) {
        expect(m.length, `server: message ${i} length`).to.equal(sizes[i]);
        expect(m.equals(messages[i]!), `server: message ${i}`).to.equal(true);
        await server.send(m);
        if (++i === messages.length) break;
      }
      return i;
    })();
    const got: Buffer[] = [];
    const received = (async () => {
      for await (const m of client.messages()) {
        got.push(m);
        if (got.length === messages.length) break;
      }
    })();
    await Promise.all(messages.map((m) => client.send(m)));
    expect(await within(echoed, 45_000, 'the server to get every message')).to.equal(messages.length);
    await within(received, 45_000, 'the client to get every message back');
    expect(got.map((m) => m.length)).to.deep.equal(sizes);
    got.forEach((m, i) => expect(m.equals(messages[i]!), `client: message ${i}`).to.equal(true));
    // Messages of 2,049 bytes and more can span reads; a good share of the 2 × 40 did.
    expect(splitOpens.calls - before, 'messages opened in parts').to.be.greaterThan(20);
    expect(splitOpens.failures).to.deep.equal([]);
  });

  it('messages() called after the records arrived: queued split records come out one message each, boundaries kept', async () => {
    const listener = await res.listen();
    const { client, server } = await proxied(listener, { min: 700, max: 6000, timerEvery: 10, seed: 3 });
    const sizes = [...messageSizes(30, 11).slice(0, 30)];
    const messages = sizes.map((n, i) => pattern(n, 2000 + i));
    const before = splitOpens.calls;
    await Promise.all(messages.map((m) => client.send(m)));
    // Nobody reads the server yet: wait until the session has taken every record.
    const session = testing.sessionOf(server)!;
    await until(() => session.stats.recordsReceived === messages.length, 30_000, 'the server to receive every record');
    const split = splitOpens.calls - before;
    expect(split, 'records that came in parts and wait in the inbox').to.be.greaterThan(10);
    const it = server.messages();
    for (const [i, m] of messages.entries()) {
      const r = await within(it.next(), 5000, `message ${i}`);
      expect(r.done).to.equal(false);
      expect((r.value as Buffer).length, `message ${i} length`).to.equal(m.length);
      expect((r.value as Buffer).equals(m), `message ${i}`).to.equal(true);
    }
    // And afterwards, live delivery to a waiting reader still keeps boundaries.
    const late = [pattern(40_000, 1), pattern(3000, 2)];
    const pending = [it.next(), it.next()];
    await Promise.all(late.map((m) => client.send(m)));
    const got = await within(Promise.all(pending), 10_000, 'the late messages');
    got.forEach((r, i) => expect((r.value as Buffer).equals(late[i]!), `late message ${i}`).to.equal(true));
  });

  it('stream mode, read only after the records arrived: the queued pieces come out in order as one byte stream', async () => {
    const listener = await res.listen();
    const { client, server } = await proxied(listener, { min: 700, max: 6000, timerEvery: 10, seed: 4 });
    const data = Array.from({ length: 20 }, (_, i) => pattern(3000 + i * 997, 3000 + i));
    const before = splitOpens.calls;
    await Promise.all(data.map((m) => client.send(m)));
    const session = testing.sessionOf(server)!;
    await until(() => session.stats.recordsReceived === data.length, 30_000, 'the server to receive every record');
    expect(splitOpens.calls - before).to.be.greaterThan(5);
    const all = Buffer.concat(data);
    const got = streamIn(server, all.length);
    expect(await within(got.done, 10_000, 'the queued bytes')).to.equal(sha256().update(all).digest('hex'));
  });

  it('more queued records than the inbox holds (reading pauses at 64): messages() later gets all 100, in order, whole', async () => {
    const listener = await res.listen();
    const { client, server } = await proxied(listener, { min: 800, max: 5000, timerEvery: 25, seed: 6 });
    const messages = Array.from({ length: 100 }, (_, i) => pattern(2100 + ((i * 7919) % 9000), 4000 + i));
    const before = splitOpens.calls;
    const sent = Promise.all(messages.map((m) => client.send(m)));
    const session = testing.sessionOf(server)!;
    await until(() => session.stats.recordsReceived >= 64, 30_000, 'the server inbox to fill');
    expect(splitOpens.calls - before).to.be.greaterThan(10);
    let i = 0;
    for await (const m of server.messages()) {
      expect(m.equals(messages[i]!), `message ${i}`).to.equal(true);
      if (++i === messages.length) break;
    }
    await within(sent, 10_000, 'every send() to resolve');
    expect(session.stats.recordsReceived).to.equal(messages.length);
  });

  it('a large message then close(): a reader that comes later gets the message, then the end (close_notify behind a split record)', async () => {
    const listener = await res.listen();
    const { client, server } = await proxied(listener, { min: 2000, max: 7000, timerEvery: 3, seed: 7 });
    const big = pattern(MAX_RECORD_PLAINTEXT, 9);
    await client.send(big);
    const closed = client.close();
    await until(() => testing.sessionOf(server)!.stats.recordsReceived === 1, 10_000, 'the record');
    await new Promise((r) => setTimeout(r, 50));
    const got: Buffer[] = [];
    for await (const m of server.messages()) got.push(m);
    expect(got).to.have.length(1);
    expect(got[0]!.equals(big)).to.equal(true);
    await within(closed, 10_000, 'the client close');
    expect(server.info().closeState).to.equal('clean');
  });

  it('v1 (legacy) through the same proxy: plain frames only (v1 takes no split path), every byte intact', async () => {
    const listener = await res.listen({ legacyV1: true });
    const { client, server } = await proxied(listener, { min: 1, max: 9000, tiny: 0.1, timerEvery: 40, seed: 8 }, { legacyV1: true });
    expect(testing.sessionOf(server)!.splitAt).to.equal(undefined);
    expect(await echoes(client, server, 2 * 1024 * 1024, 9)).to.equal(0);
  });

  for (const mode of ['messages', 'stream'] as const) {
    it(`${mode} mode: one flipped bit in a record that spans reads is fatal with ERR_QT_AUTHENTICATION_FAILED (the bad_record alert reaches the sender); nothing of it or after it is delivered`, async () => {
      const listener = await res.listen();
      // Pieces of 3,000..6,000 bytes, each after a 1 ms timer: a 40 KiB record lies in 7..14 reads.
      const { client, server, proxy } = await proxied(listener, { min: 3000, max: 6000, timerEvery: 1, seed: 5 });
      const got: Buffer[] = [];
      let serverError: unknown;
      let ended = false;
      if (mode === 'messages') {
        void (async () => {
          try {
            for await (const m of server.messages()) got.push(m);
            ended = true;
          } catch (err) {
            serverError = err;
          }
        })();
      } else {
        server.on('data', (c: Buffer) => got.push(Buffer.from(c)));
        server.on('error', (err) => (serverError = err));
        server.on('end', () => (ended = true));
      }
      let clientError: unknown;
      client.on('error', (err) => (clientError = err));
      const first = pattern(20_000, 6);
      await client.send(first);
      await until(() => Buffer.concat(got).length === first.length && proxy.pending('up') === 0, 10_000, 'the first message');
      const failuresBefore = splitOpens.failures.length;
      // The next record's ciphertext, 12,345 bytes in (after its 7-byte header).
      proxy.flipAfter('up', 7 + 12_345);
      const tampered = pattern(40_000, 7);
      void client.send(tampered).catch(() => undefined);
      void client.send(pattern(5000, 8)).catch(() => undefined);
      await until(() => serverError !== undefined, 10_000, 'the server to fail');
      expect(proxy.dirs.up.flip?.done).to.equal(true);
      expect(codeOf(serverError)).to.equal(ErrorCode.AUTHENTICATION_FAILED);
      expect(splitOpens.failures.slice(failuresBefore), 'the tampered record was opened in parts').to.deep.equal([ErrorCode.AUTHENTICATION_FAILED]);
      expect(Buffer.concat(got).equals(first), 'only the first message was delivered').to.equal(true);
      expect(ended).to.equal(false);
      // The sender hears the fatal alert: its tunnel fails with the alert's code.
      await until(() => client.destroyed, 10_000, 'the client tunnel to end');
      expect(codeOf(clientError ?? client.errored)).to.equal(ErrorCode.AUTHENTICATION_FAILED);
      expect(server.info().closeState).to.equal('failed');
    });
  }
});

describe('output slabs: many tunnels writing at once', function () {
  this.timeout(60_000);
  const res = new Resources();
  afterEach(() => res.cleanup());

  /** Hashes what `t` receives until 'end'; the byte count must be `total`. */
  async function received(t: Tunnel, total: number): Promise<string> {
    const got = streamIn(t, total);
    const digest = await got.done;
    expect(got.received(), 'no byte more than was sent').to.equal(total);
    return digest;
  }

  it('release is idempotent: a slab goes back once, and a second output never shares a slab still in use', () => {
    const a = outputFor();
    const slabA = a.alloc(1000);
    const b = outputFor();
    const slabB = b.alloc(1000);
    expect(slabA.buffer).to.not.equal(slabB.buffer);
    slabA.fill(1);
    slabB.fill(2);
    const idle = idleSlabs();
    a.release();
    a.release();
    a.release();
    expect(idleSlabs()).to.be.at.most(Math.min(idle + 1, 16));
    // Two new outputs: at most one of them may get A's slab back, never both.
    const c = outputFor();
    const d = outputFor();
    const sc = c.alloc(SLAB_CONTENT);
    const sd = d.alloc(SLAB_CONTENT);
    expect(sc.buffer).to.not.equal(sd.buffer);
    expect(slabB.every((x) => x === 2), "B's slab is nobody else's").to.equal(true);
    // A write larger than a slab gets a buffer of its own, which release does not pool.
    const e = outputFor();
    const big = e.alloc(SLAB_SIZE + 1);
    expect(big.length).to.equal(SLAB_SIZE + 1);
    const before = idleSlabs();
    e.release();
    expect(idleSlabs()).to.equal(before);
    for (const o of [b, c, d]) o.release();
    expect(idleSlabs()).to.be.within(1, 16);
  });

  /** `n` client tunnels and their server sides, in dial order. */
  async function tunnels(n: number): Promise<{ clients: Tunnel[]; servers: Tunnel[] }> {
    const listener = await res.listen();
    const servers: Tunnel[] = [];
    listener.on('tunnel', (t: Tunnel) => servers.push(t));
    const clients: Tunnel[] = [];
    for (let i = 0; i < n; i++) clients.push(await res.dial(listener));
    await until(() => servers.length === n, 10_000, 'every server tunnel');
    return { clients, servers };
  }

  /** Closes the clients; every server must receive exactly `lengths[i]` bytes hashing to `digests[i]`. */
  async function expectDelivered(clients: Tunnel[], servers: Tunnel[], digests: string[], lengths: number[]): Promise<void> {
    const got = servers.map((t, i) => received(t, lengths[i]!));
    for (const c of clients) void c.close();
    const results = await within(Promise.all(got), 45_000, 'every server tunnel to receive everything');
    results.forEach((digest, i) => expect(digest, `tunnel ${i} bytes`).to.equal(digests[i]));
    expect(idleSlabs()).to.be.within(1, 16);
  }

  it('4 tunnels writing 8 KiB each in turn, a turn per event-loop tick, to receivers that do not read yet: a slab whose bytes the socket still holds is never handed to another tunnel', async () => {
    const n = 4;
    const { clients, servers } = await tunnels(n);
    const hashes = clients.map(() => sha256());
    const lengths = clients.map(() => 0);
    const sources = Array.from({ length: 4 }, (_, i) => pattern(8192 + 64, 900 + i));
    // ~5 MiB each: more than the kernel buffers of a connection whose reader has stopped (the
    // server tunnels stop reading once 64 records wait in their inbox), so writes end up held
    // in the socket's queue while the other tunnels keep sealing.
    let backlogged = 0;
    for (let round = 0; round < 640; round++) {
      for (let i = 0; i < n; i++) {
        const chunk = Buffer.from(sources[(round + i) % sources.length]!.subarray(round % 64, (round % 64) + 8192));
        hashes[i]!.update(chunk);
        lengths[i]! += chunk.length;
        clients[i]!.write(chunk);
      }
      if (round % 64 === 63) backlogged = Math.max(backlogged, clients.filter((c) => c.writableLength > 0).length);
      await new Promise((r) => setImmediate(r));
    }
    expect(backlogged, 'tunnels with writes waiting for their socket').to.be.greaterThan(0);
    await expectDelivered(clients, servers, hashes.map((h) => h.digest('hex')), lengths);
  });

  it('6 tunnels each writing ~6 MB in a tight loop (64 KiB and odd-sized writes, small ones between), past what the kernel takes at once: every byte arrives intact; at most 16 idle slabs after', async () => {
    const n = 6;
    const { clients, servers } = await tunnels(n);
    const digests: string[] = [];
    const lengths: number[] = [];
    const sources = Array.from({ length: 8 }, (_, i) => pattern(64 * 1024 + 300, 500 + i));
    let backlogged = 0;
    // Every client writes everything in one synchronous loop, one after the other in the same
    // tick: once a socket is full its last slab is still the kernel's to read, while the next
    // tunnel seals into slabs of its own. Writes queued behind a full socket come as writevs
    // sealed in slab-sized groups.
    for (let i = 0; i < n; i++) {
      const h = sha256();
      let length = 0;
      for (let w = 0; w < 170; w++) {
        const size = w % 4 === 0 ? 64 * 1024 : w % 4 === 1 ? 64 * 1024 + 1 + w : w % 4 === 2 ? 100 + w : 20_000;
        const chunk = Buffer.from(sources[(i + w) % sources.length]!.subarray(w % 97, (w % 97) + size)); // a buffer of its own
        expect(chunk.length).to.equal(size);
        h.update(chunk);
        length += size;
        clients[i]!.write(chunk);
      }
      if (clients[i]!.writableLength > 0) backlogged++;
      digests.push(h.digest('hex'));
      lengths.push(length);
    }
    expect(backlogged, 'tunnels whose socket was full at the end of their loop').to.be.at.least(n - 1);
    await expectDelivered(clients, servers, digests, lengths);
  });
});
