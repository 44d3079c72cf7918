/**
 * Tunnel: an established session over a socket, as a Node Duplex (bytes, backpressure end to end)
 * with a message API that keeps record boundaries. It owns the I/O, timers and flow control; all
 * protocol decisions are in lib/protocol (SecureSession).
 */
import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { ErrorCode, QuantumTunnelError, qtError } from '../errors.js';
import { CipherSuite, cipherSuiteName, MAX_RECORD_PLAINTEXT, MessageType, TICKET_SIZE } from '../protocol/constants.js';
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
import { DEFAULT_REKEY_MIN_INTERVAL_MS, SecureSession, type SessionStats } from '../protocol/session.js';
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

/**
 * How a tunnel ended, from {@link TunnelInfo.closeState}:
 * - `open`: not closed yet;
 * - `clean`: the peer's close_notify arrived (everything it sent was received; in protocol v1 an
 *   active attacker can forge one, docs/SECURITY.md);
 * - `unanswered`: we sent close_notify and the peer closed its side without one (a reference peer
 *   never answers);
 * - `truncated`: the connection ended without the peer's close_notify while we were not closing:
 *   data may have been cut short (ERR_QT_TRUNCATED);
 * - `failed`: a protocol, crypto or socket error ended it.
 */
export type CloseState = 'open' | 'clean' | 'unanswered' | 'truncated' | 'failed';

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
  /** How the tunnel ended ({@link CloseState}). */
  closeState: CloseState;
  /** The error code that ended it, when `closeState` is `truncated` or `failed`. */
  closeError: string | undefined;
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
  /** Admission control for rekeys the peer asks for (a listener's `admission`). */
  admitRekey?: () => boolean;
}

/**
 * A post-quantum secure tunnel. Write to it and read from it like any Duplex (pipe it anywhere),
 * or use {@link Tunnel.send} and {@link Tunnel.messages} to keep message boundaries. Events:
 * `rekey`, `alert` ({@link AlertEvent}), plus the stream events (`data`, `end`, `error`, `close`).
 *
 * Errors: like a socket, a dialed tunnel emits 'error' (attach a listener); a listener's tunnel
 * without one reports to the listener's `tunnelError` event instead. `messages()` receives errors
 * as rejections. After {@link Tunnel.close} nothing is emitted as an error: `info()` says how the
 * tunnel ended.
 */
export class Tunnel extends Duplex {
  // Private (#) so nothing holding the tunnel can reach the session and its keys.
  readonly #socket: Socket;
  readonly #session: SecureSession;
  readonly #reader: FrameReader;
  readonly #role: 'client' | 'server';
  readonly #establishedAt = new Date();
  readonly #fipsMode = cryptoPolicy.fips;
  readonly #handshakeMs: number;
  readonly #tickets: TicketManager | undefined;
  readonly #closeTimeoutMs: number;
  readonly #halfOpen: boolean;
  readonly #autoRekey: boolean;
  readonly #observers: ObserverSet;
  readonly #peer: PeerAddress;
  #stalled: { pieces: Buffer[]; callback: (err?: Error | null) => void } | undefined;
  #rekeyWaiters: Array<Waiter<void>> = [];
  #rekeyTimer: NodeJS.Timeout | undefined;
  readonly #rekeyCheck: NodeJS.Timeout | undefined;
  #rekeyWatch: { succeeded(): void; failed(code: string): void } | undefined;
  #pingWaiters: Array<Waiter<number> & { started: number; timer: NodeJS.Timeout }> = [];
  /** A Pong owed while the socket is congested: Pings are answered by at most one pending Pong. */
  #pongOwed = false;
  #messageMode = false;
  readonly #received: Buffer[] = [];
  #wantsData = false;
  #readableEndPending = false;
  /** Buffers given to send(): each is sealed as one record, whatever its size. */
  readonly #wholeMessages = new WeakSet<object>();
  #messageWaiters: Array<Waiter<IteratorResult<Buffer>>> = [];
  #peerClosed = false;
  /** close() was called: failures from then on end the tunnel without an 'error' event. */
  #closeRequested = false;
  #closeState: CloseState = 'open';
  #closeError: string | undefined;
  #closeTimer: NodeJS.Timeout | undefined;
  #readPaused = false;

  /** @internal Use dial() or listen(). */
  constructor(init: TunnelInit) {
    super({
      allowHalfOpen: init.options.allowHalfOpen === true,
      decodeStrings: true,
      writableHighWaterMark: WRITE_HIGH_WATER,
      readableHighWaterMark: READ_HIGH_WATER,
    });
    this.#halfOpen = init.options.allowHalfOpen === true;
    this.#socket = init.socket;
    this.#reader = init.handshaken.reader;
    this.#handshakeMs = init.handshaken.durationMs;
    this.#role = init.handshaken.result.role === 'initiator' ? 'client' : 'server';
    this.#session = new SecureSession(init.handshaken.result, {
      rekeyMinIntervalMs: resolveTimeout(init.options.rekeyMinIntervalMs, DEFAULT_REKEY_MIN_INTERVAL_MS, 'rekeyMinIntervalMs'),
      admitRekey: init.admitRekey,
    });
    sessions.set(this, this.#session);
    this.#tickets = init.tickets;
    this.#closeTimeoutMs = resolveTimeout(init.options.closeTimeoutMs, DEFAULT_CLOSE_TIMEOUT_MS, 'closeTimeoutMs');
    this.#autoRekey = init.options.autoRekey !== false && this.#role === 'client';
    this.#observers = init.observers ?? new ObserverSet(init.options.observer);
    this.#peer = { address: this.#socket.remoteAddress, port: this.#socket.remotePort };
    this.#observers.notify('onTunnelOpen', {
      role: this.#role,
      suite: cipherSuiteName(this.#session.suite),
      resumed: this.#session.resumed,
      ...this.#peer,
    });
    if (this.#autoRekey) {
      this.#rekeyCheck = setInterval(() => this.#maybeRekey(), REKEY_CHECK_INTERVAL_MS);
      this.#rekeyCheck.unref();
    }
    const socket = this.#socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onSocketData(chunk));
    socket.on('end', () => this.#onSocketEnd());
    socket.on('error', (err) => this.#onSocketError(err));
    socket.on('close', () => this.#onSocketClose());
    socket.on('drain', () => this.#onSocketDrain());
    // Bytes that arrived right behind the handshake are processed before new ones.
    if (this.#reader.buffered > 0) queueMicrotask(() => this.#processFrames());
    socket.resume();
  }

  // ---- receiving ----------------------------------------------------------------------------

  #onSocketData(chunk: Buffer): void {
    this.#reader.push(chunk);
    this.#processFrames();
  }

  /** Handles every complete frame; any protocol violation is fatal for this tunnel only. */
  #processFrames(): void {
    const before = this.#session.stats;
    const bytes = before.bytesReceived;
    const records = before.recordsReceived;
    try {
      for (let frame = this.#reader.nextFrame(); frame !== null && !this.destroyed; frame = this.#reader.nextFrame()) {
        this.#onFrame(frame);
      }
    } catch (err) {
      this.#fail(err);
    }
    const after = this.#session.stats;
    if (after.recordsReceived > records) this.#observers.notify('onTraffic', 'received', after.bytesReceived - bytes, after.recordsReceived - records);
  }

  #onFrame(frame: Frame): void {
    switch (frame.type) {
      case MessageType.DATA:
      case MessageType.REKEY:
        return this.#onRecord(frame);
      case MessageType.PING:
        return this.#onPing();
      case MessageType.PONG:
        return this.#onPong();
      case MessageType.CLOSE:
        return this.#onPeerClose();
      case MessageType.ALERT:
        return this.#onAlert(frame.payload);
      default:
        throw qtError(ErrorCode.UNEXPECTED_MESSAGE, `unexpected message type 0x${frame.type.toString(16)}`);
    }
  }

  #onRecord(frame: Frame): void {
    if (this.#peerClosed) throw qtError(ErrorCode.UNEXPECTED_MESSAGE, 'record after close_notify');
    const event = this.#session.openRecord(frame);
    switch (event.kind) {
      case 'data':
        return this.#deliver(event.data);
      case 'rekey-response-sent':
        this.#socket.write(event.frame);
        this.#observers.startRekey(false).succeeded();
        this.emit('rekey', { rekeys: this.#session.stats.rekeys });
        return;
      case 'rekey-complete':
        return this.#onRekeyComplete();
    }
  }

  /**
   * Received records wait here, boundaries intact, until the application shows how it reads:
   * `_read()` (stream consumers) drains them into the readable side; `messages()` takes them as
   * messages. So records that arrive right behind the handshake are never lost to either API.
   */
  #deliver(data: Buffer): void {
    const waiter = this.#messageMode ? this.#messageWaiters.shift() : undefined;
    if (waiter) return waiter.resolve({ value: data, done: false });
    this.#received.push(data);
    if (!this.#messageMode) this.#flushReadable();
    if (this.#received.length >= MESSAGE_QUEUE_HIGH_WATER) this.#pauseReading();
  }

  /** Moves received records into the readable side while the consumer wants more. */
  #flushReadable(): void {
    while (this.#wantsData && this.#received.length > 0) {
      const data = this.#received.shift()!;
      if (data.length > 0) this.#wantsData = this.push(data);
    }
    if (this.#received.length === 0 && this.#readableEndPending) {
      this.#readableEndPending = false;
      this.push(null);
    }
    if (this.#received.length < MESSAGE_QUEUE_HIGH_WATER / 2 && this.#wantsData) this.#resumeReading();
  }

  #pauseReading(): void {
    if (!this.#readPaused) {
      this.#readPaused = true;
      this.#socket.pause();
    }
  }

  #resumeReading(): void {
    if (this.#readPaused) {
      this.#readPaused = false;
      this.#socket.resume();
    }
  }

  override _read(): void {
    this.#wantsData = true;
    if (!this.#messageMode) this.#flushReadable();
    this.#resumeReading();
  }

  /**
   * Pings are answered under socket backpressure: while our writes are congested (a peer that
   * sends Pings and never reads), Pings collapse into one Pong sent at the next drain, so a flood
   * costs no memory.
   */
  #onPing(): void {
    if (this.#socket.writableNeedDrain) this.#pongOwed = true;
    else this.#socket.write(PONG_FRAME);
  }

  #onSocketDrain(): void {
    if (this.#pongOwed && this.#socket.writable) {
      this.#pongOwed = false;
      this.#socket.write(PONG_FRAME);
    }
    this.emit('_drain');
  }

  #onAlert(payload: Buffer): void {
    const alert = decodeAlert(payload);
    if (alert === null) throw qtError(ErrorCode.MALFORMED_MESSAGE, 'malformed alert');
    if (alert.code === AlertCode.CLOSE_NOTIFY) return this.#onPeerClose();
    if (alert.level === AlertLevel.FATAL) {
      this.#end(qtError(ErrorCode.PEER_ALERT, `peer sent fatal alert code ${alert.code}`));
      return;
    }
    this.emit('alert', { level: alert.level, code: alert.code, description: alert.description } satisfies AlertEvent);
  }

  /** close_notify or Close: no more data from the peer; we finish our side and close. */
  #onPeerClose(): void {
    if (this.#peerClosed) return;
    this.#peerClosed = true;
    if (!this.#messageMode) {
      this.#readableEndPending = true;
      this.#flushReadable();
    } else if (this.#received.length === 0) {
      this.#endMessages();
      this.push(null);
    }
    if (this.writableFinished) this.#socket.destroy();
    // Answer with our own close_notify once our pending data is out, whether or not anyone reads
    // the readable side (message mode, or an unread stream). With allowHalfOpen the application
    // may keep writing and ends its side itself.
    else if (!this.#halfOpen) {
      // After the frames already received (a record behind close_notify is still a violation).
      queueMicrotask(() => {
        if (!this.destroyed && !this.writableEnded) this.end();
      });
    }
  }

  #onSocketEnd(): void {
    if (this.#peerClosed) {
      if (this.writableFinished) this.#socket.destroy();
      return;
    }
    // The peer's FIN without close_notify: after our own close_notify that is a peer that does
    // not answer one (the reference); otherwise the data may have been cut short.
    if (this.#closingByUs) this.#end();
    else this.#end(qtError(ErrorCode.TRUNCATED, 'the peer closed the connection without close_notify'));
  }

  #onSocketError(err: Error): void {
    if (this.#closingByUs || this.#peerClosed) this.#end();
    else this.#end(qtError(ErrorCode.CONNECTION_FAILED, 'socket error', { cause: err }));
  }

  #onSocketClose(): void {
    if (this.destroyed) return;
    if (this.#closingByUs || this.#peerClosed) this.#end();
    else this.#end(qtError(ErrorCode.TRUNCATED, 'the connection closed without close_notify'));
  }

  /**
   * We are closing both directions: close() was called, or end() without allowHalfOpen. A
   * half-open tunnel that ended its side still expects the peer's data up to its close_notify.
   */
  get #closingByUs(): boolean {
    return this.#closeRequested || (!this.#halfOpen && this.writableEnded);
  }

  /**
   * Ends the tunnel: with an error, recorded in closeState and emitted as 'error' unless the
   * application already asked to close; without one, as a close (clean when the peer's
   * close_notify arrived).
   */
  #end(err?: QuantumTunnelError): void {
    if (this.destroyed) return;
    if (err) {
      this.#closeState = err.code === ErrorCode.TRUNCATED ? 'truncated' : 'failed';
      this.#closeError = err.code;
    } else {
      this.#closeState = this.#peerClosed ? 'clean' : 'unanswered';
    }
    this.destroy(err && !this.#closeRequested ? err : undefined);
  }

  // ---- sending ------------------------------------------------------------------------------

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.#sendPieces(this.#recordsOf(chunk), callback);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (err?: Error | null) => void): void {
    this.#sendPieces(chunks.flatMap((c) => this.#recordsOf(c.chunk)), callback);
  }

  /** A send() message is one record; stream writes are cut into records. */
  #recordsOf(chunk: Buffer): Buffer[] {
    return this.#wholeMessages.has(chunk) ? [chunk] : split(chunk);
  }

  #sendPieces(pieces: Buffer[], callback: (err?: Error | null) => void): void {
    try {
      if (pieces.length === 0) return callback();
      const budget = this.#session.sendBudget();
      if (budget < pieces.length) {
        // Waiting for a rekey response: send what the old key may still cover, hold the rest.
        if (budget > 0) this.#socket.write(this.#sealData(pieces.slice(0, budget)));
        this.#stalled = { pieces: pieces.slice(budget), callback };
        return;
      }
      const ok = this.#socket.write(this.#sealData(pieces));
      if (this.#autoRekey) setImmediate(() => this.#maybeRekey());
      if (ok) callback();
      else this.once('_drain', () => callback());
    } catch (err) {
      const code = (err as QuantumTunnelError).code ?? ErrorCode.CRYPTO_FAILURE;
      this.#observers.notify('onEncryptError', code);
      // Limits reached (sequence numbers, nonces) end the tunnel with an alert, not a stuck write.
      this.#fail(err);
      callback(this.errored ?? (err as Error));
    }
  }

  #sealData(pieces: Buffer[]): Buffer {
    const frames = this.#session.sealRecords(MessageType.DATA, pieces);
    if (!this.#observers.empty) {
      let bytes = 0;
      for (const p of pieces) bytes += p.length;
      this.#observers.notify('onTraffic', 'sent', bytes, pieces.length);
    }
    return frames;
  }

  override _final(callback: (err?: Error | null) => void): void {
    // Every write has been sealed and handed to the socket: say goodbye, half-close, and do not
    // wait forever for the peer (a reference peer never closes after close_notify, §8.8).
    if (!this.#socket.writable) return callback();
    this.#socket.end(CLOSE_NOTIFY_ALERT);
    if (this.#peerClosed) {
      this.#socket.destroy();
    } else if (!this.#halfOpen || this.#closeRequested) {
      this.#closeTimer = setTimeout(() => this.#socket.destroy(), this.#closeTimeoutMs);
      this.#closeTimer.unref();
    }
    // Half-open: keep reading until the peer's close_notify (it may still be sending a reply).
    callback();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    clearInterval(this.#rekeyCheck);
    clearTimeout(this.#rekeyTimer);
    clearTimeout(this.#closeTimer);
    if (this.#closeState === 'open') {
      // destroy() called by the application (or a stream helper such as pipeline).
      this.#closeState = err ? 'failed' : this.#peerClosed ? 'clean' : 'unanswered';
      if (err) this.#closeError = (err as QuantumTunnelError).code ?? 'ERR_UNKNOWN';
    }
    const reason = err ?? qtError(ErrorCode.TUNNEL_CLOSED, 'tunnel closed');
    for (const w of this.#rekeyWaiters.splice(0)) w.reject(reason);
    for (const w of this.#pingWaiters.splice(0)) { clearTimeout(w.timer); w.reject(reason); }
    if (this.#stalled) this.#stalled.callback(reason);
    this.#stalled = undefined;
    // A failure the application did not ask for reaches messages() as a rejection.
    if (err) for (const w of this.#messageWaiters.splice(0)) w.reject(err);
    this.#endMessages();
    if (this.#rekeyWatch) this.#rekeyWatch.failed((reason as QuantumTunnelError).code ?? ErrorCode.TUNNEL_CLOSED);
    this.#rekeyWatch = undefined;
    const stats = this.#session.stats;
    this.#observers.notify('onTunnelClose', {
      error: this.#closeError,
      bytesSent: stats.bytesSent,
      bytesReceived: stats.bytesReceived,
    });
    this.#session.destroy();
    this.#socket.destroy();
    callback(err);
  }

  /** A protocol failure: tell the peer with a fatal alert (fixed text) and end the tunnel. */
  #fail(err: unknown): void {
    if (this.destroyed) return;
    const error = err instanceof QuantumTunnelError ? err : qtError(ErrorCode.MALFORMED_MESSAGE, 'protocol error', { cause: err });
    const badRecord = BAD_RECORD_ERRORS.has(error.code);
    if (error.code === ErrorCode.AUTHENTICATION_FAILED) this.#observers.notify('onAuthFailure', this.#peer);
    else if (error.code === ErrorCode.REPLAY) this.#observers.notify('onReplayBlocked', this.#peer);
    else if (error.code === ErrorCode.REKEY_RATE_LIMITED) this.#observers.notify('onRateLimited', 'rekey', this.#peer);
    else this.#observers.notify('onProtocolError', error.code, this.#peer);
    if (this.#socket.writable) {
      const code = badRecord ? AlertCode.BAD_CIPHERTEXT : AlertCode.UNEXPECTED_MESSAGE;
      const description = badRecord ? AlertDescription.BAD_RECORD : AlertDescription.UNEXPECTED_MESSAGE;
      this.#socket.end(encodeAlert({ level: AlertLevel.FATAL, code, description }));
    }
    this.#end(error);
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
    this.#wholeMessages.add(record);
    return new Promise((resolve, reject) => this.write(record, (err) => (err ? reject(err) : resolve())));
  }

  /**
   * Received records one by one, boundaries kept. Starting it switches the tunnel to message mode:
   * from then on records go to this iterator and not to the readable side. A failure (a truncated
   * connection, a forged or missing record) rejects `next()` with its QuantumTunnelError instead of
   * being emitted as 'error'; a clean close_notify ends the iteration.
   */
  messages(): AsyncIterableIterator<Buffer> {
    if (!this.#messageMode) {
      this.#messageMode = true;
      // Errors reach the iterator; this listener only keeps them from being unhandled events.
      this.on('error', () => undefined);
    }
    const queue = this.#received;
    const next = (): Promise<IteratorResult<Buffer>> => {
      if (queue.length > 0) {
        const value = queue.shift()!;
        if (queue.length < MESSAGE_QUEUE_HIGH_WATER / 2) this.#resumeReading();
        return Promise.resolve({ value, done: false });
      }
      if (this.#peerClosed && !this.readableEnded) this.push(null);
      if (this.#peerClosed || this.destroyed) {
        const err = this.errored ?? (this.#closeState === 'truncated' || this.#closeState === 'failed' ? closeFailure(this.#closeError) : null);
        return err ? Promise.reject(err) : Promise.resolve({ value: undefined, done: true });
      }
      this.#resumeReading();
      return new Promise((resolve, reject) => this.#messageWaiters.push({ resolve, reject }));
    };
    return {
      next,
      return: () => Promise.resolve({ value: undefined, done: true }),
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }

  #endMessages(): void {
    for (const w of this.#messageWaiters.splice(0)) w.resolve({ value: undefined, done: true });
  }

  // ---- control ------------------------------------------------------------------------------

  /** Sends Ping; resolves with the round-trip time in ms when the Pong arrives. */
  ping(): Promise<number> {
    if (this.destroyed || !this.#socket.writable) return Promise.reject(qtError(ErrorCode.TUNNEL_CLOSED, 'tunnel closed'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.#pingWaiters.findIndex((w) => w.timer === timer);
        if (i >= 0) this.#pingWaiters.splice(i, 1);
        reject(qtError(ErrorCode.TIMEOUT, 'no pong within 10 s'));
      }, PING_TIMEOUT_MS);
      this.#pingWaiters.push({ resolve, reject, started: performance.now(), timer });
      this.#socket.write(PING_FRAME);
    });
  }

  #onPong(): void {
    const w = this.#pingWaiters.shift();
    if (!w) return; // unsolicited Pong: ignored, as in the reference
    clearTimeout(w.timer);
    w.resolve(performance.now() - w.started);
  }

  /**
   * Replaces the traffic keys with a fresh CH-KEM exchange and the ratchet (§9). Client side
   * only (in protocol v1 only the initiator can start one). Resolves when the new keys are agreed
   * (each side switches at a sequence number both know, docs/PROTOCOL.md).
   */
  rekey(): Promise<void> {
    if (this.#role !== 'client') return Promise.reject(qtError(ErrorCode.INVALID_STATE, 'in protocol v1 only the client can start a rekey'));
    if (this.destroyed || !this.#socket.writable) return Promise.reject(qtError(ErrorCode.TUNNEL_CLOSED, 'tunnel closed'));
    const done = new Promise<void>((resolve, reject) => this.#rekeyWaiters.push({ resolve, reject }));
    if (!this.#session.rekeyInProgress) {
      try {
        this.#socket.write(this.#session.startRekey());
        this.#rekeyWatch = this.#observers.startRekey(true);
      } catch (err) {
        this.#fail(err);
        return done;
      }
      // An unanswered rekey ends the tunnel with an alert, so the peer sees a failure, not a clean end.
      this.#rekeyTimer = setTimeout(() => this.#fail(qtError(ErrorCode.REKEY_FAILED, 'no rekey response')), REKEY_TIMEOUT_MS);
      this.#rekeyTimer.unref();
    }
    return done;
  }

  #maybeRekey(): void {
    if (!this.destroyed && this.#session.needsRekey()) this.rekey().catch(() => undefined);
  }

  #onRekeyComplete(): void {
    clearTimeout(this.#rekeyTimer);
    this.#rekeyWatch?.succeeded();
    this.#rekeyWatch = undefined;
    this.emit('rekey', { rekeys: this.#session.stats.rekeys });
    for (const w of this.#rekeyWaiters.splice(0)) w.resolve();
    const stalled = this.#stalled;
    this.#stalled = undefined;
    if (stalled) this.#sendPieces(stalled.pieces, stalled.callback);
  }

  /**
   * Graceful close: flushes pending data, sends close_notify, and resolves once the peer has closed
   * its side, whether or not it answered with its own close_notify (a reference peer does not), or
   * after `closeTimeoutMs`. Never rejects; from now on failures are recorded in `info()` rather
   * than emitted as 'error'.
   */
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.destroyed) return resolve();
      this.#closeRequested = true;
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
    if (this.#role !== 'server' || !this.#tickets) throw qtError(ErrorCode.INVALID_STATE, 'tickets are issued by a server listening with `tickets`');
    if (this.destroyed) throw qtError(ErrorCode.TUNNEL_CLOSED, 'tunnel closed');
    if (cryptoPolicy.fips && this.#session.suite !== CipherSuite.AES_256_GCM) {
      throw qtError(ErrorCode.FIPS_NOT_APPROVED, 'FIPS mode issues tickets only for AES-256-GCM sessions');
    }
    const tickets = this.#tickets;
    return this.#session.withMasterSecret((master) => tickets.issue(master, this.#session.suite));
  }

  /**
   * Client: what `dial(..., { resumption })` needs to resume this session later with `ticket`
   * (a ticket this session's server issued: exactly TICKET_SIZE bytes). The PSK is a copy of the
   * current master secret, a native handle whose bytes no production API exports; destroy it
   * when done.
   */
  resumptionState(ticket: Uint8Array): ResumptionState {
    if (this.#role !== 'client') throw qtError(ErrorCode.INVALID_STATE, 'only the client keeps resumption state');
    if (this.destroyed) throw qtError(ErrorCode.TUNNEL_CLOSED, 'tunnel closed');
    if (!(ticket instanceof Uint8Array) || ticket.length !== TICKET_SIZE) {
      throw qtError(ErrorCode.INVALID_ARGUMENT, `a ticket is ${TICKET_SIZE} bytes issued by the server (tunnel.issueTicket())`);
    }
    return { ticket: Buffer.from(ticket), psk: this.#session.masterSecretCopy() };
  }

  /** The tunnel's state and counters. */
  info(): TunnelInfo {
    const s = this.#session.stats;
    return {
      role: this.#role,
      suite: cipherSuiteName(this.#session.suite),
      sessionId: this.#session.sessionId.toString('hex'),
      resumed: this.#session.resumed,
      establishedAt: this.#establishedAt,
      handshakeMs: this.#handshakeMs,
      ...s,
      remoteAddress: this.#peer.address,
      remotePort: this.#peer.port,
      fips: this.#fipsMode,
      approvedServicesOnly: false,
      closeState: this.#closeState,
      closeError: this.#closeError,
    };
  }
}

/** Each tunnel's session, for the test-only entry point (lib/testing.ts); not exported by the package. */
const sessions = new WeakMap<Tunnel, SecureSession>();

/** @internal The session behind a tunnel (tests read its keys through lib/testing.ts). */
export function sessionOf(tunnel: Tunnel): SecureSession | undefined {
  return sessions.get(tunnel);
}

/** Failures that concern a record (forged, replayed, missing): answered with the bad_record alert. */
const BAD_RECORD_ERRORS = new Set<string>([ErrorCode.AUTHENTICATION_FAILED, ErrorCode.REPLAY, ErrorCode.RECORD_OUT_OF_ORDER]);

/** The error messages() reports after a failure it did not see happen (the tunnel was already ended). */
function closeFailure(code: string | undefined): QuantumTunnelError {
  return code === ErrorCode.TRUNCATED
    ? qtError(ErrorCode.TRUNCATED, 'the connection ended without close_notify')
    : qtError(ErrorCode.TUNNEL_CLOSED, `the tunnel failed (${code ?? 'unknown'})`);
}

/** Splits a write into record-sized pieces (empty writes send nothing). */
function split(chunk: Buffer): Buffer[] {
  if (chunk.length <= STREAM_RECORD_SIZE) return chunk.length === 0 ? [] : [chunk];
  const pieces: Buffer[] = [];
  for (let o = 0; o < chunk.length; o += STREAM_RECORD_SIZE) pieces.push(chunk.subarray(o, o + STREAM_RECORD_SIZE));
  return pieces;
}
