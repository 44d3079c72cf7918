/**
 * Tunnel: an established session over a socket, as a Node Duplex (bytes, backpressure end to end)
 * with a message API that keeps record boundaries. It owns the I/O, timers and flow control; all
 * protocol decisions are in lib/protocol (SecureSession).
 */
import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import type { Secret } from '../native.js';
import { ErrorCode, QuantumTunnelError, qtError } from '../errors.js';
import { CipherSuite, cipherSuiteName, MAX_RECORD_PLAINTEXT, MessageType } from '../protocol/constants.js';
import { cryptoPolicy } from '../crypto/policy.js';
import type { Frame, FrameReader } from '../protocol/frame.js';
import {
  AlertCode,
  AlertDescription,
  AlertLevel,
  CLOSE_NOTIFY_ALERT,
  decodeAlert,
  encodeAlert,
  PING_FRAME,
  PONG_FRAME,
} from '../protocol/messages.js';
import { SecureSession, type SessionStats } from '../protocol/session.js';
import type { TicketManager } from '../protocol/ticket.js';
import type { Handshaken } from './handshakeDriver.js';
import { ObserverSet, type PeerAddress } from './observer.js';
import { DEFAULT_CLOSE_TIMEOUT_MS, type ResumptionState, resolveTimeout, type TunnelOptions } from './options.js';

/** How often the time-based rekey trigger is checked. */
const REKEY_CHECK_INTERVAL_MS = 60_000;
/** A rekey that gets no response within this time fails the tunnel (its writes are held back). */
const REKEY_TIMEOUT_MS = 30_000;
const PING_TIMEOUT_MS = 10_000;
/**
 * Stream buffering: enough for several full records in flight on each side, so a bulk transfer
 * keeps the socket busy instead of waiting for a drain after every write.
 */
const WRITE_HIGH_WATER = 256 * 1024;
const READ_HIGH_WATER = 256 * 1024;
/** Stream writes are cut into records of at most this size (messages use up to MAX_RECORD_PLAINTEXT). */
const STREAM_RECORD_SIZE = 16 * 1024;
/** Message mode: stop reading the socket while this many messages wait to be consumed. */
const MESSAGE_QUEUE_HIGH_WATER = 64;

/** A snapshot of a tunnel's state, from {@link Tunnel.info}. */
export interface TunnelInfo extends SessionStats {
  role: 'client' | 'server';
  suite: string;
  sessionId: string;
  resumed: boolean;
  establishedAt: Date;
  handshakeMs: number;
  remoteAddress: string | undefined;
  remotePort: number | undefined;
  /** The handshake ran in FIPS mode (the FIPS provider's library context). */
  fips: boolean;
  /**
   * Every service this tunnel used is FIPS-approved. Always false in protocol v1: CH-KEM's
   * classical half, X25519, is not approved (docs/FIPS.md).
   */
  approvedServicesOnly: boolean;
}

/** An alert the peer sent that did not close the tunnel (a warning other than close_notify). */
export interface AlertEvent {
  level: number;
  code: number;
  /** The peer's text, untrusted: display it as data, never as our own message. */
  description: string;
}

interface Waiter<T> {
  resolve: (value: T) => void;
  reject: (err: Error) => void;
}

/** Internal construction parameters (tunnels come from dial() and Listener, not from `new`). */
export interface TunnelInit {
  socket: Socket;
  handshaken: Handshaken;
  options: TunnelOptions;
  tickets?: TicketManager;
  observers?: ObserverSet;
}

/**
 * A post-quantum secure tunnel. Write to it and read from it like any Duplex (pipe it anywhere),
 * or use {@link Tunnel.send} and {@link Tunnel.messages} to keep message boundaries. Events:
 * `rekey`, `alert` ({@link AlertEvent}), `replay` (a replayed record was dropped), plus the
 * stream events (`data`, `end`, `error`, `close`).
 */
export class Tunnel extends Duplex {
  private readonly socket: Socket;
  private readonly session: SecureSession;
  private readonly reader: FrameReader;
  private readonly role: 'client' | 'server';
  private readonly establishedAt = new Date();
  private readonly fipsMode = cryptoPolicy.fips;
  private readonly handshakeMs: number;
  private readonly tickets: TicketManager | undefined;
  private readonly closeTimeoutMs: number;
  private readonly halfOpen: boolean;
  private readonly autoRekey: boolean;
  private stalled: { pieces: Buffer[]; callback: (err?: Error | null) => void } | undefined;
  private rekeyWaiters: Array<Waiter<void>> = [];
  private rekeyTimer: NodeJS.Timeout | undefined;
  private readonly rekeyCheck: NodeJS.Timeout | undefined;
  private pingWaiters: Array<Waiter<number> & { started: number; timer: NodeJS.Timeout }> = [];
  private messageQueue: Buffer[] | undefined;
  private readonly received: Buffer[] = [];
  private wantsData = false;
  private readableEndPending = false;
  /** Buffers given to send(): each is sealed as one record, whatever its size. */
  private readonly wholeMessages = new WeakSet<object>();
  private messageWaiters: Array<Waiter<IteratorResult<Buffer>>> = [];
  private peerClosed = false;
  private closeTimer: NodeJS.Timeout | undefined;
  private readPaused = false;
  private readonly observers: ObserverSet;
  private readonly peer: PeerAddress;
  private rekeyWatch: { succeeded(): void; failed(code: string): void } | undefined;

  /** @internal Use dial() or listen(). */
  constructor(init: TunnelInit) {
    super({
      allowHalfOpen: init.options.allowHalfOpen === true,
      decodeStrings: true,
      writableHighWaterMark: WRITE_HIGH_WATER,
      readableHighWaterMark: READ_HIGH_WATER,
    });
    this.halfOpen = init.options.allowHalfOpen === true;
    this.socket = init.socket;
    this.reader = init.handshaken.reader;
    this.handshakeMs = init.handshaken.durationMs;
    this.role = init.handshaken.result.role === 'initiator' ? 'client' : 'server';
    this.session = new SecureSession(init.handshaken.result);
    this.tickets = init.tickets;
    this.closeTimeoutMs = resolveTimeout(init.options.closeTimeoutMs, DEFAULT_CLOSE_TIMEOUT_MS, 'closeTimeoutMs');
    this.autoRekey = init.options.autoRekey !== false && this.role === 'client';
    this.observers = init.observers ?? new ObserverSet(init.options.observer);
    this.peer = { address: this.socket.remoteAddress, port: this.socket.remotePort };
    this.observers.notify('onTunnelOpen', {
      role: this.role,
      suite: cipherSuiteName(this.session.suite),
      resumed: this.session.resumed,
      ...this.peer,
    });
    if (this.autoRekey) {
      this.rekeyCheck = setInterval(() => this.maybeRekey(), REKEY_CHECK_INTERVAL_MS);
      this.rekeyCheck.unref();
    }
    this.socket.setNoDelay(true);
    this.socket.on('data', (chunk: Buffer) => this.onSocketData(chunk));
    this.socket.on('end', () => this.onSocketEnd());
    this.socket.on('error', (err) => this.destroy(qtError(ErrorCode.CONNECTION_FAILED, 'socket error', { cause: err })));
    this.socket.on('close', () => this.onSocketClose());
    this.socket.on('drain', () => this.emit('_drain'));
    // Bytes that arrived right behind the handshake are processed before new ones.
    if (this.reader.buffered > 0) queueMicrotask(() => this.processFrames());
    this.socket.resume();
  }

  // ---- receiving ----------------------------------------------------------------------------

  private onSocketData(chunk: Buffer): void {
    this.reader.push(chunk);
    this.processFrames();
  }

  /** Handles every complete frame; any protocol violation is fatal for this tunnel only. */
  private processFrames(): void {
    const before = this.session.stats;
    const bytes = before.bytesReceived;
    const records = before.recordsReceived;
    try {
      for (let frame = this.reader.nextFrame(); frame !== null && !this.destroyed; frame = this.reader.nextFrame()) {
        this.onFrame(frame);
      }
    } catch (err) {
      this.fail(err);
    }
    const after = this.session.stats;
    if (after.recordsReceived > records) this.observers.notify('onTraffic', 'received', after.bytesReceived - bytes, after.recordsReceived - records);
  }

  private onFrame(frame: Frame): void {
    switch (frame.type) {
      case MessageType.DATA:
      case MessageType.REKEY:
        return this.onRecord(frame);
      case MessageType.PING:
        this.socket.write(PONG_FRAME);
        return;
      case MessageType.PONG:
        return this.onPong();
      case MessageType.CLOSE:
        return this.onPeerClose();
      case MessageType.ALERT:
        return this.onAlert(frame.payload);
      default:
        throw qtError(ErrorCode.UNEXPECTED_MESSAGE, `unexpected message type 0x${frame.type.toString(16)}`);
    }
  }

  private onRecord(frame: Frame): void {
    if (this.peerClosed) throw qtError(ErrorCode.UNEXPECTED_MESSAGE, 'record after close_notify');
    const event = this.session.openRecord(frame);
    switch (event.kind) {
      case 'data':
        return this.deliver(event.data);
      case 'replay':
        this.observers.notify('onReplayBlocked', this.peer);
        this.emit('replay', event.seq);
        return;
      case 'rekey-response-sent':
        this.socket.write(event.frame);
        this.observers.startRekey(false).succeeded();
        this.emit('rekey', { rekeys: this.session.stats.rekeys });
        return;
      case 'rekey-complete':
        return this.onRekeyComplete();
    }
  }

  /**
   * Received records wait here, boundaries intact, until the application shows how it reads:
   * `_read()` (stream consumers) drains them into the readable side; `messages()` takes them as
   * messages. So records that arrive right behind the handshake are never lost to either API.
   */
  private deliver(data: Buffer): void {
    const waiter = this.messageQueue ? this.messageWaiters.shift() : undefined;
    if (waiter) return waiter.resolve({ value: data, done: false });
    this.received.push(data);
    if (this.messageQueue === undefined) this.flushReadable();
    if (this.received.length >= MESSAGE_QUEUE_HIGH_WATER) this.pauseReading();
  }

  /** Moves received records into the readable side while the consumer wants more. */
  private flushReadable(): void {
    while (this.wantsData && this.received.length > 0) {
      const data = this.received.shift()!;
      if (data.length > 0) this.wantsData = this.push(data);
    }
    if (this.received.length === 0 && this.readableEndPending) {
      this.readableEndPending = false;
      this.push(null);
    }
    if (this.received.length < MESSAGE_QUEUE_HIGH_WATER / 2 && this.wantsData) this.resumeReading();
  }

  private pauseReading(): void {
    if (!this.readPaused) {
      this.readPaused = true;
      this.socket.pause();
    }
  }

  private resumeReading(): void {
    if (this.readPaused) {
      this.readPaused = false;
      this.socket.resume();
    }
  }

  override _read(): void {
    this.wantsData = true;
    if (this.messageQueue === undefined) this.flushReadable();
    this.resumeReading();
  }

  private onAlert(payload: Buffer): void {
    const alert = decodeAlert(payload);
    if (alert === null) throw qtError(ErrorCode.MALFORMED_MESSAGE, 'malformed alert');
    if (alert.code === AlertCode.CLOSE_NOTIFY) return this.onPeerClose();
    if (alert.level === AlertLevel.FATAL) {
      const err = qtError(ErrorCode.PEER_ALERT, `peer sent fatal alert code ${alert.code}`);
      this.destroy(err);
      return;
    }
    this.emit('alert', { level: alert.level, code: alert.code, description: alert.description } satisfies AlertEvent);
  }

  /** close_notify or Close: no more data from the peer; we finish our side and close. */
  private onPeerClose(): void {
    if (this.peerClosed) return;
    this.peerClosed = true;
    if (this.messageQueue === undefined) {
      this.readableEndPending = true;
      this.flushReadable();
    } else if (this.received.length === 0) {
      this.endMessages();
      this.push(null);
    }
    if (this.writableFinished) this.socket.destroy();
    // Answer with our own close_notify once our pending data is out, whether or not anyone reads
    // the readable side (message mode, or an unread stream). With allowHalfOpen the application
    // may keep writing and ends its side itself.
    else if (!this.halfOpen) {
      // After the frames already received (a record behind close_notify is still a violation).
      queueMicrotask(() => {
        if (!this.destroyed && !this.writableEnded) this.end();
      });
    }
  }

  private onSocketEnd(): void {
    if (this.peerClosed) {
      if (this.writableFinished) this.socket.destroy();
      return;
    }
    // End of stream without close_notify: the data may have been cut short.
    this.destroy(qtError(ErrorCode.CONNECTION_FAILED, 'connection closed without close_notify'));
  }

  private onSocketClose(): void {
    if (!this.destroyed) {
      if (this.peerClosed && this.writableFinished) this.destroy();
      else this.destroy(qtError(ErrorCode.CONNECTION_FAILED, 'connection closed'));
    }
  }

  // ---- sending ------------------------------------------------------------------------------

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.sendPieces(this.recordsOf(chunk), callback);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (err?: Error | null) => void): void {
    this.sendPieces(chunks.flatMap((c) => this.recordsOf(c.chunk)), callback);
  }

  /** A send() message is one record; stream writes are cut into records. */
  private recordsOf(chunk: Buffer): Buffer[] {
    return this.wholeMessages.has(chunk) ? [chunk] : split(chunk);
  }

  private sendPieces(pieces: Buffer[], callback: (err?: Error | null) => void): void {
    try {
      if (pieces.length === 0) return callback();
      const budget = this.session.sendBudget();
      if (budget < pieces.length) {
        // Waiting for a rekey response: send what the old key may still cover, hold the rest.
        if (budget > 0) this.socket.write(this.sealData(pieces.slice(0, budget)));
        this.stalled = { pieces: pieces.slice(budget), callback };
        return;
      }
      const ok = this.socket.write(this.sealData(pieces));
      if (this.autoRekey) setImmediate(() => this.maybeRekey());
      if (ok) callback();
      else this.once('_drain', () => callback());
    } catch (err) {
      this.observers.notify('onEncryptError', (err as QuantumTunnelError).code ?? ErrorCode.CRYPTO_FAILURE);
      callback(err as Error);
    }
  }

  private sealData(pieces: Buffer[]): Buffer {
    const frames = this.session.sealRecords(MessageType.DATA, pieces);
    if (!this.observers.empty) {
      let bytes = 0;
      for (const p of pieces) bytes += p.length;
      this.observers.notify('onTraffic', 'sent', bytes, pieces.length);
    }
    return frames;
  }

  override _final(callback: (err?: Error | null) => void): void {
    // Every write has been sealed and handed to the socket: say goodbye, half-close, and do not
    // wait forever for the peer (a reference peer never closes after close_notify, §8.8).
    if (!this.socket.writable) return callback();
    this.socket.end(CLOSE_NOTIFY_ALERT);
    if (this.peerClosed) {
      this.socket.destroy();
    } else if (!this.halfOpen) {
      this.closeTimer = setTimeout(() => this.socket.destroy(), this.closeTimeoutMs);
      this.closeTimer.unref();
    }
    // Half-open: keep reading until the peer's close_notify (it may still be sending a reply).
    callback();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    clearInterval(this.rekeyCheck);
    clearTimeout(this.rekeyTimer);
    clearTimeout(this.closeTimer);
    const reason = err ?? qtError(ErrorCode.TUNNEL_CLOSED, 'tunnel closed');
    for (const w of this.rekeyWaiters.splice(0)) w.reject(reason);
    for (const w of this.pingWaiters.splice(0)) { clearTimeout(w.timer); w.reject(reason); }
    if (this.stalled) this.stalled.callback(reason);
    this.stalled = undefined;
    if (err) for (const w of this.messageWaiters.splice(0)) w.reject(err);
    this.endMessages();
    if (this.rekeyWatch) this.rekeyWatch.failed((reason as QuantumTunnelError).code ?? ErrorCode.TUNNEL_CLOSED);
    this.rekeyWatch = undefined;
    const stats = this.session.stats;
    this.observers.notify('onTunnelClose', {
      error: err ? ((err as QuantumTunnelError).code ?? 'ERR_UNKNOWN') : undefined,
      bytesSent: stats.bytesSent,
      bytesReceived: stats.bytesReceived,
    });
    this.session.destroy();
    this.socket.destroy();
    callback(err);
  }

  /** A protocol failure: tell the peer with a fatal alert (fixed text) and destroy the tunnel. */
  private fail(err: unknown): void {
    const error = err instanceof QuantumTunnelError ? err : qtError(ErrorCode.MALFORMED_MESSAGE, 'protocol error', { cause: err });
    if (error.code === ErrorCode.AUTHENTICATION_FAILED) this.observers.notify('onAuthFailure', this.peer);
    else this.observers.notify('onProtocolError', error.code, this.peer);
    if (this.socket.writable) {
      const code = error.code === ErrorCode.AUTHENTICATION_FAILED ? AlertCode.BAD_CIPHERTEXT : AlertCode.UNEXPECTED_MESSAGE;
      const description = error.code === ErrorCode.AUTHENTICATION_FAILED ? AlertDescription.BAD_RECORD : AlertDescription.UNEXPECTED_MESSAGE;
      this.socket.write(encodeAlert({ level: AlertLevel.FATAL, code, description }));
    }
    this.destroy(error);
  }

  // ---- message API ---------------------------------------------------------------------------

  /**
   * Sends one message as one record (1 to 65,479 bytes), so the peer's {@link messages} sees the
   * same boundary. Resolves once the data is handed to the socket.
   */
  send(message: Uint8Array): Promise<void> {
    if (!(message instanceof Uint8Array) || message.length === 0 || message.length > MAX_RECORD_PLAINTEXT) {
      return Promise.reject(qtError(ErrorCode.INVALID_ARGUMENT, `a message must be 1 to ${MAX_RECORD_PLAINTEXT} bytes`));
    }
    const record = Buffer.from(message.buffer, message.byteOffset, message.length);
    this.wholeMessages.add(record);
    return new Promise((resolve, reject) => this.write(record, (err) => (err ? reject(err) : resolve())));
  }

  /**
   * Received records one by one, boundaries kept. Starting it switches the tunnel to message mode:
   * from then on records go to this iterator and not to the readable side.
   */
  messages(): AsyncIterableIterator<Buffer> {
    this.messageQueue ??= this.received;
    const next = (): Promise<IteratorResult<Buffer>> => {
      const queue = this.messageQueue!;
      if (queue.length > 0) {
        const value = queue.shift()!;
        if (queue.length < MESSAGE_QUEUE_HIGH_WATER / 2) this.resumeReading();
        return Promise.resolve({ value, done: false });
      }
      if (this.peerClosed) this.push(null);
      if (this.peerClosed || this.destroyed) {
        const err = this.errored;
        return err ? Promise.reject(err) : Promise.resolve({ value: undefined, done: true });
      }
      this.resumeReading();
      return new Promise((resolve, reject) => this.messageWaiters.push({ resolve, reject }));
    };
    return {
      next,
      return: () => Promise.resolve({ value: undefined, done: true }),
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }

  private endMessages(): void {
    for (const w of this.messageWaiters.splice(0)) w.resolve({ value: undefined, done: true });
  }

  // ---- control ------------------------------------------------------------------------------

  /** Sends Ping; resolves with the round-trip time in ms when the Pong arrives. */
  ping(): Promise<number> {
    if (this.destroyed || !this.socket.writable) return Promise.reject(qtError(ErrorCode.TUNNEL_CLOSED, 'tunnel closed'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.pingWaiters.findIndex((w) => w.timer === timer);
        if (i >= 0) this.pingWaiters.splice(i, 1);
        reject(qtError(ErrorCode.TIMEOUT, 'no pong within 10 s'));
      }, PING_TIMEOUT_MS);
      this.pingWaiters.push({ resolve, reject, started: performance.now(), timer });
      this.socket.write(PING_FRAME);
    });
  }

  private onPong(): void {
    const w = this.pingWaiters.shift();
    if (!w) return; // unsolicited Pong: ignored, as in the reference
    clearTimeout(w.timer);
    w.resolve(performance.now() - w.started);
  }

  /**
   * Replaces the traffic keys with a fresh CH-KEM exchange and the ratchet (§9). Client side
   * only (in protocol v1 only the initiator can start one). Resolves when the new keys are in use.
   */
  rekey(): Promise<void> {
    if (this.role !== 'client') return Promise.reject(qtError(ErrorCode.INVALID_STATE, 'in protocol v1 only the client can start a rekey'));
    if (this.destroyed || !this.socket.writable) return Promise.reject(qtError(ErrorCode.TUNNEL_CLOSED, 'tunnel closed'));
    const done = new Promise<void>((resolve, reject) => this.rekeyWaiters.push({ resolve, reject }));
    if (!this.session.rekeyInProgress) {
      try {
        this.socket.write(this.session.startRekey());
        this.rekeyWatch = this.observers.startRekey(true);
      } catch (err) {
        this.destroy(err as Error);
        return done;
      }
      this.rekeyTimer = setTimeout(() => this.destroy(qtError(ErrorCode.REKEY_FAILED, 'no rekey response')), REKEY_TIMEOUT_MS);
      this.rekeyTimer.unref();
    }
    return done;
  }

  private maybeRekey(): void {
    if (!this.destroyed && this.session.needsRekey()) this.rekey().catch(() => undefined);
  }

  private onRekeyComplete(): void {
    clearTimeout(this.rekeyTimer);
    this.rekeyWatch?.succeeded();
    this.rekeyWatch = undefined;
    this.emit('rekey', { rekeys: this.session.stats.rekeys });
    for (const w of this.rekeyWaiters.splice(0)) w.resolve();
    const stalled = this.stalled;
    this.stalled = undefined;
    if (stalled) this.sendPieces(stalled.pieces, stalled.callback);
  }

  /** Graceful close: flushes pending data, sends close_notify, and resolves once the socket is closed. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.destroyed) return resolve();
      this.once('close', () => resolve());
      this.end();
    });
  }

  // ---- resumption ---------------------------------------------------------------------------

  /**
   * Server: a session ticket for this tunnel's current master secret and suite, to hand to the
   * client (protocol v1 has no message for it; send it over the tunnel, for example).
   */
  issueTicket(): Buffer {
    if (this.role !== 'server' || !this.tickets) throw qtError(ErrorCode.INVALID_STATE, 'tickets are issued by a server listening with `tickets`');
    if (this.destroyed) throw qtError(ErrorCode.TUNNEL_CLOSED, 'tunnel closed');
    if (cryptoPolicy.fips && this.session.suite !== CipherSuite.AES_256_GCM) {
      throw qtError(ErrorCode.FIPS_NOT_APPROVED, 'FIPS mode issues tickets only for AES-256-GCM sessions');
    }
    return this.tickets.issue(this.session.masterSecret, this.session.suite);
  }

  /**
   * Client: what `dial(..., { resumption })` needs to resume this session later with `ticket`.
   * The PSK is a copy of the current master secret (a native handle; destroy it when done).
   */
  resumptionState(ticket: Uint8Array): ResumptionState {
    if (this.role !== 'client') throw qtError(ErrorCode.INVALID_STATE, 'only the client keeps resumption state');
    if (this.destroyed) throw qtError(ErrorCode.TUNNEL_CLOSED, 'tunnel closed');
    const psk: Secret = this.session.masterSecret.clone();
    return { ticket: Buffer.from(ticket), psk };
  }

  /** The tunnel's state and counters. */
  info(): TunnelInfo {
    const s = this.session.stats;
    return {
      role: this.role,
      suite: cipherSuiteName(this.session.suite),
      sessionId: this.session.sessionId.toString('hex'),
      resumed: this.session.resumed,
      establishedAt: this.establishedAt,
      handshakeMs: this.handshakeMs,
      ...s,
      remoteAddress: this.socket.remoteAddress,
      remotePort: this.socket.remotePort,
      fips: this.fipsMode,
      approvedServicesOnly: false,
    };
  }
}

/** Splits a write into record-sized pieces (empty writes send nothing). */
function split(chunk: Buffer): Buffer[] {
  if (chunk.length <= STREAM_RECORD_SIZE) return chunk.length === 0 ? [] : [chunk];
  const pieces: Buffer[] = [];
  for (let o = 0; o < chunk.length; o += STREAM_RECORD_SIZE) pieces.push(chunk.subarray(o, o + STREAM_RECORD_SIZE));
  return pieces;
}
