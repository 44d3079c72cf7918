/**
 * Shared helpers of the tunnel tests: listeners and tunnels that are always cleaned up, bounded
 * waits, raw TCP peers that speak bytes, and raw handshakes done with our own state machines so a
 * test controls every byte after them.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { expect } from 'chai';
import type { Proxy } from './proxies.js';
import { dial, listen, type DialOptions, type HandshakeErrorEvent, type Listener, type ListenOptions, QuantumTunnelError, type Tunnel } from '../../lib/index.js';
import { CipherSuite, type CipherSuiteId } from '../../lib/protocol/constants.js';
import { FrameReader, type Frame } from '../../lib/protocol/frame.js';
import { type Handshake, type HandshakeResult, type HandshakeSummary, InitiatorHandshake, ResponderHandshake } from '../../lib/protocol/handshake.js';
import { SecureSession, type Session, type SessionEvent, type SessionOptions } from '../../lib/protocol/session.js';
import { defaultKemGroup, KEM_GROUPS } from '../../lib/protocol/v2/groups.js';
import { ClientHandshakeV2, ServerHandshakeV2, type V2HandshakeResult, type V2InitiatorOptions, type V2ResponderOptions } from '../../lib/protocol/v2/handshake.js';
import { SessionV2 } from '../../lib/protocol/v2/session.js';

/** The 24-byte handshake-failure alert (Appendix A.6). */
export const HANDSHAKE_FAILURE_HEX = 'f00000001302031068616e647368616b65206661696c6564';
/** The 25-byte close_notify alert (Appendix A.6). */
export const CLOSE_NOTIFY_HEX = 'f000000014010811636f6e6e656374696f6e20636c6f736564';

// ---- bounded waiting ----------------------------------------------------------------------------

/** Rejects if `promise` has not settled within `ms` (an upper bound for something that must happen). */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Polls `condition` every 10 ms until it holds, for at most `ms`. */
export async function until(condition: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Asserts that `promise` rejects with a QuantumTunnelError of `code`; returns the error. */
export async function rejectsWithCode(promise: Promise<unknown>, code: string | readonly string[], ms = 10_000): Promise<QuantumTunnelError> {
  let error: unknown;
  try {
    await within(promise, ms, `a rejection with ${String(code)}`);
  } catch (err) {
    error = err;
  }
  expect(error, `expected a rejection with ${String(code)}`).to.be.instanceOf(QuantumTunnelError);
  const codes = typeof code === 'string' ? [code] : code;
  expect(codes).to.include((error as QuantumTunnelError).code);
  return error as QuantumTunnelError;
}

// ---- cleanup ------------------------------------------------------------------------------------

/** Everything a test opened, closed in afterEach so mocha exits. */
export class Resources {
  private readonly listeners: Listener[] = [];
  private readonly tunnels = new Set<Tunnel>();
  private readonly sockets = new Set<Socket>();
  private readonly servers: Server[] = [];
  private readonly proxies: Proxy[] = [];

  /** A test proxy (test/helpers/proxies.ts), closed in cleanup. */
  async proxy<P extends Proxy>(started: Promise<P>): Promise<P> {
    const p = await started;
    this.proxies.push(p);
    return p;
  }

  tunnel(t: Tunnel): Tunnel {
    this.tunnels.add(t);
    // A test that does not expect an error must not crash on an unhandled 'error' event.
    if (t.listenerCount('error') === 0) t.on('error', () => undefined);
    return t;
  }

  socket(s: Socket): Socket {
    this.sockets.add(s);
    s.on('error', () => undefined);
    return s;
  }

  /** listen() on 127.0.0.1:0; every server tunnel is tracked; waits until listening. */
  async listen(options: ListenOptions = {}, onTunnel?: (t: Tunnel) => void): Promise<Listener> {
    const listener = listen({ host: '127.0.0.1', port: 0, ...options });
    this.listeners.push(listener);
    listener.on('error', () => undefined);
    listener.on('tunnel', (t: Tunnel) => {
      this.tunnel(t);
      onTunnel?.(t);
    });
    await within(listener.ready, 5000, 'listening');
    return listener;
  }

  async dial(listener: Listener | number, options: DialOptions = {}): Promise<Tunnel> {
    const port = typeof listener === 'number' ? listener : listener.address().port;
    return this.tunnel(await dial(`127.0.0.1:${port}`, options));
  }

  /** A plain TCP server (a raw peer for dial()). */
  async rawServer(onSocket: (s: Socket) => void): Promise<{ server: Server; port: number }> {
    const server = createServer((s) => {
      this.socket(s);
      onSocket(s);
    });
    this.servers.push(server);
    server.listen(0, '127.0.0.1');
    await within(once(server, 'listening'), 5000, 'raw server listening');
    return { server, port: (server.address() as AddressInfo).port };
  }

  /** A raw TCP connection to `port`. */
  async connect(port: number): Promise<Socket> {
    const s = this.socket(connect({ host: '127.0.0.1', port }));
    await within(once(s, 'connect'), 5000, 'TCP connect');
    return s;
  }

  async cleanup(): Promise<void> {
    for (const t of this.tunnels) t.destroy();
    for (const s of this.sockets) s.destroy();
    this.tunnels.clear();
    this.sockets.clear();
    await Promise.all(this.proxies.splice(0).map((p) => within(p.close(), 5000, 'proxy close').catch(() => undefined)));
    await Promise.all(this.listeners.splice(0).map((l) => within(l.close(), 5000, 'listener close').catch(() => undefined)));
    await Promise.all(this.servers.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}

// ---- listener events ----------------------------------------------------------------------------

/** The next tunnel a listener establishes. */
export function nextTunnel(listener: Listener, ms = 10_000): Promise<Tunnel> {
  return within(once(listener, 'tunnel').then(([t]) => t as Tunnel), ms, 'a server tunnel');
}

/** Collects the listener's handshakeError events. */
export function handshakeErrors(listener: Listener): HandshakeErrorEvent[] {
  const errors: HandshakeErrorEvent[] = [];
  listener.on('handshakeError', (e: HandshakeErrorEvent) => errors.push(e));
  return errors;
}

/** Pipes every server tunnel into itself. */
export function echo(t: Tunnel): void {
  t.pipe(t);
}

// ---- reading streams ----------------------------------------------------------------------------

/** Reads exactly `n` bytes from a readable (paused mode), within `ms`. */
export function readExactly(stream: Readable, n: number, ms = 10_000): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let got = 0;
  return within(
    new Promise<Buffer>((resolve, reject) => {
      const onReadable = () => {
        for (let chunk: Buffer | null = stream.read(); chunk !== null; chunk = stream.read()) {
          const need = n - got;
          if (chunk.length > need) {
            chunks.push(chunk.subarray(0, need));
            stream.unshift(chunk.subarray(need));
            got = n;
          } else {
            chunks.push(chunk);
            got += chunk.length;
          }
          if (got === n) break;
        }
        if (got === n) {
          done();
          resolve(Buffer.concat(chunks));
        }
      };
      const onEnd = () => {
        done();
        reject(new Error(`stream ended after ${got} of ${n} bytes`));
      };
      const onError = (err: Error) => {
        done();
        reject(err);
      };
      const done = () => {
        stream.off('readable', onReadable);
        stream.off('end', onEnd);
        stream.off('error', onError);
      };
      stream.on('readable', onReadable);
      stream.on('end', onEnd);
      stream.on('error', onError);
      onReadable();
    }),
    ms,
    `${n} bytes`,
  );
}

/** Writes `data` and reads the same number of bytes back (through an echo server). */
export async function roundTrip(t: Tunnel, data: Buffer, ms = 10_000): Promise<Buffer> {
  const back = readExactly(t, data.length, ms);
  t.write(data);
  return back;
}

/** Asserts that an echoing tunnel still works. */
export async function assertEchoes(t: Tunnel, label = 'still alive'): Promise<void> {
  const data = Buffer.from(`${label} ${Math.random()}`);
  expect((await roundTrip(t, data, 5000)).equals(data)).to.equal(true);
}

/** A deterministic pattern, distinct per seed. */
export function pattern(length: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

export function sha256(): ReturnType<typeof createHash> {
  return createHash('sha256');
}

/** Writes `total` bytes of patterned 64 KiB chunks with backpressure; resolves with the SHA-256. */
export async function streamOut(t: Tunnel, total: number, seed: number, chunkSize = 64 * 1024): Promise<string> {
  const chunks = Array.from({ length: 16 }, (_, i) => pattern(chunkSize, seed * 100 + i));
  const h = sha256();
  let sent = 0;
  for (let i = 0; sent < total; i++) {
    const c = chunks[i % chunks.length]!.subarray(0, Math.min(chunkSize, total - sent));
    h.update(c);
    sent += c.length;
    if (!t.write(c)) await once(t, 'drain');
  }
  return h.digest('hex');
}

/** Hashes everything read from `t` (flowing mode) until `total` bytes arrived. */
export function streamIn(t: Tunnel, total: number): { done: Promise<string>; received: () => number } {
  const h = sha256();
  let got = 0;
  const done = new Promise<string>((resolve, reject) => {
    const onData = (c: Buffer) => {
      h.update(c);
      got += c.length;
      if (got >= total) {
        t.off('data', onData);
        t.off('error', reject);
        t.pause();
        resolve(h.digest('hex'));
      }
    };
    t.on('data', onData);
    t.once('error', reject);
    t.once('end', () => reject(new Error(`ended after ${got} of ${total} bytes`)));
  });
  return { done, received: () => got };
}

// ---- raw byte peers -----------------------------------------------------------------------------

/**
 * A raw socket with a byte log and a frame reader over what it receives. `closed` resolves once
 * the socket has closed (whoever closed it).
 */
export class RawPeer {
  readonly received: Buffer[] = [];
  private readonly reader = new FrameReader();
  private waiter: (() => void) | undefined;
  readonly closed: Promise<void>;
  isClosed = false;
  gotEnd = false;

  constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.received.push(chunk);
      this.reader.push(chunk);
      this.wake();
    });
    socket.on('end', () => {
      this.gotEnd = true;
      this.wake();
    });
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.isClosed = true;
        this.wake();
        resolve();
      }),
    );
  }

  /** All bytes received so far. */
  get bytes(): Buffer {
    return Buffer.concat(this.received);
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** The next plaintext frame, within `ms`; null if the stream ended first. */
  async frame(ms = 5000): Promise<Frame | null> {
    return this.next(() => this.reader.nextFrame(), ms, 'a frame');
  }

  /** The next encrypted handshake record's sealed bytes, within `ms`. */
  async handshakeRecord(ms = 5000): Promise<Buffer | null> {
    return this.next(() => this.reader.nextHandshakeRecord(), ms, 'a handshake record');
  }

  /** Bytes received and not yet returned as frames. */
  rest(): Buffer {
    return this.reader.buffered > 0 ? this.reader.drain() : Buffer.alloc(0);
  }

  /** Waits for the socket to close, within `ms`. */
  async waitClosed(ms = 5000): Promise<void> {
    await within(this.closed, ms, 'the raw socket to close');
  }

  private async next<T>(take: () => T | null, ms: number, what: string): Promise<T | null> {
    const deadline = Date.now() + ms;
    for (;;) {
      const value = take();
      if (value !== null) return value;
      if (this.gotEnd || this.isClosed) return null;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await within(new Promise<void>((r) => (this.waiter = r)), left, what);
    }
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }
}

/**
 * An established session over a raw socket, driven by the test: v1's SecureSession by default,
 * or v2's SessionV2 ({@link RawSessionV2}). Both are a {@link Session}: `sealData`, `receive`,
 * `pingFrame`, `closeNotifyFrame`, `fatalAlert`, `startRekey` work the same on either wire, so a
 * test can seal, forge, drop, reorder or replay records and read what the other side sent.
 */
export interface RawSession<S extends Session = SecureSession> {
  peer: RawPeer;
  session: S;
}

/** A raw protocol v2 session. */
export type RawSessionV2 = RawSession<SessionV2>;

/** A raw session of either wire. */
export type AnyRawSession = RawSession<Session>;

/**
 * Runs a handshake state machine (any version) over a raw peer: writes what each step sends and
 * reads what it asks for next, until it has a result. The handshake is destroyed afterwards (the
 * result's secrets are the caller's).
 */
export async function driveHandshake(peer: RawPeer, hs: Handshake): Promise<HandshakeSummary> {
  try {
    let step = await hs.start();
    for (let i = 0; i < 8; i++) {
      for (const bytes of step.send) peer.write(bytes);
      if (step.next === 'done') return step.result!;
      const input = step.next === 'record' ? await peer.handshakeRecord() : await peer.frame();
      if (input === null) throw new Error('the peer closed the connection during the handshake');
      step = await hs.receive(input);
    }
    throw new Error('the handshake did not finish');
  } finally {
    hs.destroy();
  }
}

/** Raw v1 client: a full handshake with our InitiatorHandshake, then the record layer in the test's hands. */
export async function rawClientHandshake(res: Resources, port: number, suites: readonly CipherSuiteId[] = [CipherSuite.AES_256_GCM]): Promise<RawSession> {
  const peer = new RawPeer(await res.connect(port));
  const result = await driveHandshake(peer, await InitiatorHandshake.create({ cipherSuites: suites }));
  return { peer, session: new SecureSession(result as HandshakeResult) };
}

/** Raw v1 server side of one connection: a full handshake with our ResponderHandshake. */
export async function rawServerHandshake(peer: RawPeer, suites: readonly CipherSuiteId[] = [CipherSuite.AES_256_GCM, CipherSuite.CHACHA20_POLY1305]): Promise<SecureSession> {
  const result = await driveHandshake(peer, new ResponderHandshake({ cipherSuites: suites }));
  return new SecureSession(result as HandshakeResult);
}

/** Options of the raw v2 handshakes: the state machine's (defaults: AES-256-GCM, the default group) and the session's. */
export type RawClientV2Options = Partial<V2InitiatorOptions> & { session?: SessionOptions };
export type RawServerV2Options = Partial<V2ResponderOptions> & { session?: SessionOptions };

/** Raw v2 client: a full handshake with our ClientHandshakeV2 over a raw socket; the records are the test's. */
export async function rawClientHandshakeV2(res: Resources, port: number, options: RawClientV2Options = {}): Promise<RawSessionV2> {
  const { session: sessionOptions, ...handshake } = options;
  const peer = new RawPeer(await res.connect(port));
  const hs = new ClientHandshakeV2({ cipherSuites: [CipherSuite.AES_256_GCM], groups: [defaultKemGroup()], ...handshake });
  const result = await driveHandshake(peer, hs);
  return { peer, session: new SessionV2(result as V2HandshakeResult, sessionOptions) };
}

/** Raw v2 server side of one connection: a full handshake with our ServerHandshakeV2. */
export async function rawServerHandshakeV2(peer: RawPeer, options: RawServerV2Options = {}): Promise<SessionV2> {
  const { session: sessionOptions, ...handshake } = options;
  const hs = new ServerHandshakeV2({ cipherSuites: [CipherSuite.AES_256_GCM, CipherSuite.CHACHA20_POLY1305], groups: KEM_GROUPS, ...handshake });
  const result = await driveHandshake(peer, hs);
  return new SessionV2(result as V2HandshakeResult, sessionOptions);
}

// ---- both wires ---------------------------------------------------------------------------------

/**
 * One of the two wires a behaviour is tested on: protocol v2 (the default) and v1, spoken only in
 * legacy mode. `options` go to listen() and dial(); the raw handshakes speak the same wire.
 */
export interface Wire {
  /** For test titles: 'v2' or 'v1 (legacy)'. */
  name: string;
  options: { legacyV1?: boolean };
  rawClient(res: Resources, port: number): Promise<AnyRawSession>;
  rawServer(peer: RawPeer): Promise<Session>;
}

export const V2_WIRE: Wire = {
  name: 'v2',
  options: {},
  rawClient: (res, port) => rawClientHandshakeV2(res, port),
  rawServer: (peer) => rawServerHandshakeV2(peer),
};

export const V1_WIRE: Wire = {
  name: 'v1 (legacy)',
  options: { legacyV1: true },
  rawClient: (res, port) => rawClientHandshake(res, port),
  rawServer: (peer) => rawServerHandshake(peer),
};

/** Both wires, v2 first. */
export const WIRES: readonly Wire[] = [V2_WIRE, V1_WIRE];

/** One Data record per text, each its own buffer (so a test can drop, reorder or repeat them). */
export function sealEach(session: Session, texts: readonly string[]): Buffer[] {
  return texts.map((t) => session.sealData([Buffer.from(t)]));
}

/** Consecutive Data records, one per text, in one buffer. */
export function sealTexts(session: Session, ...texts: string[]): Buffer {
  return session.sealData(texts.map((t) => Buffer.from(t)));
}

/** A Data record sealed by `session` (the right sequence number) with its tag corrupted. */
export function forgedRecord(session: Session, text = 'forged'): Buffer {
  const rec = session.sealData([Buffer.from(text)]);
  rec[rec.length - 1] = rec[rec.length - 1]! ^ 0x01;
  return rec;
}

/** Every complete frame in `bytes`. */
export function framesOf(bytes: Buffer): Frame[] {
  const reader = new FrameReader();
  reader.push(bytes);
  const out: Frame[] = [];
  for (let f = reader.nextFrame(); f !== null; f = reader.nextFrame()) out.push(f);
  return out;
}

/**
 * What the frames in `bytes` mean to `session`, opened in order (v2 records must all go through
 * the session, none skipped: their sequence numbers are implicit).
 */
export function eventsOf(session: Session, bytes: Buffer): SessionEvent[] {
  return framesOf(bytes).map((f) => session.receive(f));
}

/** Reads records from a raw session until `n` bytes of data have arrived (other events are skipped). */
export async function readRecords(raw: AnyRawSession, n: number, ms = 5000): Promise<Buffer> {
  const out: Buffer[] = [];
  let got = 0;
  const deadline = Date.now() + ms;
  while (got < n) {
    const frame = await raw.peer.frame(Math.max(1, deadline - Date.now()));
    if (!frame) throw new Error(`stream ended after ${got} of ${n} bytes`);
    const ev = raw.session.receive(frame);
    if (ev.kind === 'data') {
      out.push(Buffer.from(ev.data));
      got += ev.data.length;
    }
  }
  return Buffer.concat(out);
}
