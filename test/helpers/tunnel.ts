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
import { dial, listen, type DialOptions, type HandshakeErrorEvent, type Listener, type ListenOptions, QuantumTunnelError, type Tunnel } from '../../lib/index.js';
import { CipherSuite, type CipherSuiteId, MessageType } from '../../lib/protocol/constants.js';
import { FrameReader, type Frame } from '../../lib/protocol/frame.js';
import { InitiatorHandshake, ResponderHandshake } from '../../lib/protocol/handshake.js';
import { SecureSession } from '../../lib/protocol/session.js';

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

/** An established session over a raw socket, driven by the test. */
export interface RawSession {
  peer: RawPeer;
  session: SecureSession;
}

/** Raw client: a full handshake with our InitiatorHandshake, then the record layer in the test's hands. */
export async function rawClientHandshake(res: Resources, port: number, suites: readonly CipherSuiteId[] = [CipherSuite.AES_256_GCM]): Promise<RawSession> {
  const peer = new RawPeer(await res.connect(port));
  const hs = await InitiatorHandshake.create({ cipherSuites: suites });
  try {
    peer.write(hs.clientHello());
    const sh = await peer.frame();
    if (!sh) throw new Error('no ServerHello');
    peer.write(await hs.onServerHello(sh));
    const sf = await peer.handshakeRecord();
    if (!sf) throw new Error('no ServerFinished');
    return { peer, session: new SecureSession(hs.onServerFinished(sf)) };
  } finally {
    hs.destroy();
  }
}

/** Raw server side of one connection: a full handshake with our ResponderHandshake. */
export async function rawServerHandshake(peer: RawPeer, suites: readonly CipherSuiteId[] = [CipherSuite.AES_256_GCM, CipherSuite.CHACHA20_POLY1305]): Promise<SecureSession> {
  const hs = new ResponderHandshake({ cipherSuites: suites });
  try {
    const ch = await peer.frame();
    if (!ch) throw new Error('no ClientHello');
    peer.write(await hs.onClientHello(ch));
    const cf = await peer.handshakeRecord();
    if (!cf) throw new Error('no ClientFinished');
    const { serverFinished, result } = hs.onClientFinished(cf);
    peer.write(serverFinished);
    return new SecureSession(result);
  } finally {
    hs.destroy();
  }
}

/** Reads Data records from a raw session until `n` plaintext bytes have arrived. */
export async function readRecords(raw: RawSession, n: number, ms = 5000): Promise<Buffer> {
  const out: Buffer[] = [];
  let got = 0;
  const deadline = Date.now() + ms;
  while (got < n) {
    const frame = await raw.peer.frame(Math.max(1, deadline - Date.now()));
    if (!frame) throw new Error(`stream ended after ${got} of ${n} bytes`);
    if (frame.type !== MessageType.DATA && frame.type !== MessageType.REKEY) continue;
    const ev = raw.session.openRecord(frame);
    if (ev.kind === 'data') {
      out.push(Buffer.from(ev.data));
      got += ev.data.length;
    }
  }
  return Buffer.concat(out);
}
