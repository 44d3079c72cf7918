/**
 * Tunnel: an established session over a socket, as a Node Duplex (bytes, backpressure end to end)
 * with a message API that keeps record boundaries. It owns the I/O, timers and flow control; every
 * protocol decision is the session's (lib/protocol, by version), how the tunnel closes is
 * CloseTracker's, received messages wait in a MessageInbox, rekeys run in a RekeyController.
 */
import type { PeerIdentity } from '../protocol/peerIdentity.js';
import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { ErrorCode, QuantumTunnelError, qtError } from '../errors.js';
import { MAX_RECORD_PLAINTEXT, TICKET_SIZE } from '../protocol/constants.js';
import { cipherSuiteName, suitePermitted } from '../protocol/suites.js';
import { cryptoPolicy } from '../crypto/policy.js';
import type { FrameReader } from '../protocol/frame.js';
import { DEFAULT_REKEY_MIN_INTERVAL_MS, type Session, type SessionEvent, type SessionStats } from '../protocol/session.js';
import type { TicketManager } from '../protocol/ticket.js';
import { type ClientTicketStore, clientTicketFromMessage, decodeNewSessionTicket, type TicketIssuer } from '../protocol/v2/tickets.js';
import { type CloseState, CloseTracker } from './closeState.js';
import { type Handshaken, releaseHeldWrites } from './handshakeDriver.js';
import { MessageInbox, type Received } from './inbox.js';
import { Liveness } from './liveness.js';
import { ObserverSet, type PeerAddress } from './observer.js';
import { DEFAULT_CLOSE_TIMEOUT_MS, type ResumptionState, resolveInterval, resolveTimeout, type TunnelOptions } from './options.js';
import { outputFor, SLAB_CONTENT } from './outputBuffers.js';
import { RekeyController } from './rekeyController.js';

export type { CloseState } from './closeState.js';

const PING_TIMEOUT_MS = 10_000;
/**
 * Stream buffering: enough for several full records in flight on each side, so a bulk transfer
 * keeps the socket busy instead of waiting for a drain after every write.
 */
const WRITE_HIGH_WATER = 256 * 1024;
const READ_HIGH_WATER = 256 * 1024;
/** Stream writes are cut into records of at most this size (messages use up to MAX_RECORD_PLAINTEXT). */
const STREAM_RECORD_SIZE = 16 * 1024;
/** Stop reading the socket while this many received messages wait to be consumed. */
const INBOX_HIGH_WATER = 64;

/** A snapshot of a tunnel's state, from {@link Tunnel.info}. */
export interface TunnelInfo extends SessionStats {
  /** Which side of the handshake this end was. */
  role: 'client' | 'server';
  /** The protocol version: 'v2', or 'v1' in legacy mode. */
  protocol: string;
  /** The cipher suite, e.g. 'AES-256-GCM'. */
  suite: string;
  /** The key exchange group (protocol v2), e.g. 'X25519 + ML-KEM-1024'; undefined in v1. */
  group: string | undefined;
  /**
   * Who the peer proved to be: `{ type: 'psk', identity }` when it authenticated with a
   * pre-shared key (or resumed a session that did), `{ type: 'key', fingerprint, group, comment }`
   * when it proved a pinned identity key; undefined for an anonymous handshake.
   */
  peerIdentity: PeerIdentity | undefined;
  /** An identifier of this session, not secret (hex; v2: the first 16 bytes of the handshake's transcript hash). */
  sessionId: string;
  /** The session was resumed from a ticket (an abbreviated handshake). */
  resumed: boolean;
  /** When the handshake completed. */
  establishedAt: Date;
  /** How long the handshake took, in milliseconds. */
  handshakeMs: number;
  /** The client: the socket's peer, or behind a PROXY protocol balancer the address its header named. */
  remoteAddress: string | undefined;
  /** The client's port, the same way. */
  remotePort: number | undefined;
  /** The balancer a PROXY protocol header came through (listen()'s `proxyProtocol`); undefined without one. */
  proxiedBy: PeerAddress | undefined;
  /** The handshake ran in FIPS mode (the FIPS provider's library context). */
  fips: boolean;
  /**
   * Every service this tunnel used is FIPS-approved: FIPS mode, protocol v2 with the
   * P-384 + ML-KEM-1024 group and an approved suite. Always false in protocol v1, whose CH-KEM
   * uses X25519 (docs/FIPS.md).
   */
  approvedServicesOnly: boolean;
  /** How the tunnel ended ({@link CloseState}). */
  closeState: CloseState;
  /** The error code that ended it, when `closeState` is `truncated` or `failed`. */
  closeError: string | undefined;
}

/** An alert the peer sent that did not close the tunnel (a warning other than close_notify). */
export interface AlertEvent {
  /** The alert level (1 = warning; a fatal alert closes the tunnel and is reported as an error instead). */
  level: number;
  /** The alert code (docs/PROTOCOL.md §9). */
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
  /** Server, protocol v2: issues a ticket in-band to each new tunnel. */
  ticketIssuer?: TicketIssuer;
  /** Client, protocol v2: where tickets from the server go, and under which server scope. */
  ticketStore?: { store: ClientTicketStore; scope: string };
  observers?: ObserverSet;
  /** Admission control for rekeys the peer asks for (a listener's `admission`). */
  admitRekey?: () => boolean;
  /** Who the peer is when not the socket's own address, and the balancer that said so (PROXY protocol). */
  proxied?: { peer: PeerAddress; by: PeerAddress };
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
  readonly #session: Session;
  readonly #reader: FrameReader;
  readonly #role: 'client' | 'server';
  readonly #establishedAt = new Date();
  readonly #fipsMode = cryptoPolicy.fips;
  readonly #handshakeMs: number;
  readonly #tickets: TicketManager | undefined;
  readonly #ticketStore: { store: ClientTicketStore; scope: string } | undefined;
  readonly #closeTimeoutMs: number;
  readonly #halfOpen: boolean;
  readonly #observers: ObserverSet;
  readonly #peer: PeerAddress;
  readonly #proxiedBy: PeerAddress | undefined;
  readonly #close: CloseTracker;
  readonly #inbox = new MessageInbox();
  readonly #rekeys: RekeyController;
  /** Writes held back while a rekey response is awaited (records past the activation point). */
  #stalled: { pieces: Buffer[]; callback: (err?: Error | null) => void } | undefined;
  #pingWaiters: Array<Waiter<number> & { started: number; timer: NodeJS.Timeout }> = [];
  /** A Pong owed while the socket is congested: Pings are answered by at most one pending Pong. */
  #pongOwed = false;
  #wantsData = false;
  #readableEndPending = false;
  /** Buffers given to send(): each is sealed as one record, whatever its size. */
  readonly #wholeMessages = new WeakSet<object>();
  #closeTimer: NodeJS.Timeout | undefined;
  #readPaused = false;
  /** Frames received, for the keepalive timer (any frame is a sign of life). */
  #framesReceived = 0;
  readonly #liveness: Liveness | undefined;

  /** @internal Use dial() or listen(). */
  constructor(init: TunnelInit) {
    super({
      allowHalfOpen: init.options.allowHalfOpen === true,
      decodeStrings: true,
      writableHighWaterMark: WRITE_HIGH_WATER,
      readableHighWaterMark: READ_HIGH_WATER,
    });
    this.#halfOpen = init.options.allowHalfOpen === true;
    this.#close = new CloseTracker(this.#halfOpen);
    this.#socket = init.socket;
    this.#reader = init.handshaken.reader;
    this.#handshakeMs = init.handshaken.durationMs;
    this.#role = init.handshaken.result.role === 'initiator' ? 'client' : 'server';
    this.#session = init.handshaken.version.session(init.handshaken.result, {
      rekeyMinIntervalMs: resolveTimeout(init.options.rekeyMinIntervalMs, DEFAULT_REKEY_MIN_INTERVAL_MS, 'rekeyMinIntervalMs'),
      admitRekey: init.admitRekey,
    });
    sessions.set(this, this.#session);
    this.#tickets = init.tickets;
    this.#ticketStore = init.ticketStore;
    this.#closeTimeoutMs = resolveTimeout(init.options.closeTimeoutMs, DEFAULT_CLOSE_TIMEOUT_MS, 'closeTimeoutMs');
    this.#observers = init.observers ?? new ObserverSet(init.options.observer);
    this.#peer = init.proxied?.peer ?? { address: this.#socket.remoteAddress, port: this.#socket.remotePort };
    this.#proxiedBy = init.proxied?.by;
    this.#rekeys = new RekeyController(
      {
        session: this.#session,
        observers: this.#observers,
        open: () => !this.destroyed && this.#socket.writable,
        write: (bytes) => this.#socket.write(bytes),
        fail: (err) => this.#fail(err),
      },
      init.options.autoRekey !== false && this.#session.canStartRekey,
    );
    if (!this.#observers.empty) {
      this.#observers.notify('onTunnelOpen', {
        role: this.#role,
        protocol: this.#session.version,
        suite: cipherSuiteName(this.#session.suite),
        group: this.#session.groupName,
        resumed: this.#session.resumed,
        ...this.#peer,
      });
    }
    const socket = this.#socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onSocketData(chunk));
    socket.on('end', () => this.#end(this.#close.connectionEnded('fin', this.writableEnded)));
    socket.on('error', (err) => this.#end(this.#close.connectionEnded('error', this.writableEnded, err)));
    socket.on('close', () => this.#end(this.#close.connectionEnded('close', this.writableEnded)));
    socket.on('drain', () => this.#onSocketDrain());
    // Bytes that arrived right behind the handshake are processed before new ones, with the
    // socket's writes no longer held (handshakeDriver.ts): what they ask for (Pongs, a
    // close_notify) meets the socket's real back-pressure.
    if (this.#reader.buffered > 0) {
      releaseHeldWrites(socket);
      queueMicrotask(() => this.#processFrames());
    }
    if (init.ticketIssuer) this.#issueTicketInBand(init.ticketIssuer);
    const keepAliveMs = resolveInterval(init.options.keepAliveMs, 'keepAliveMs');
    const idleTimeoutMs = resolveInterval(init.options.idleTimeoutMs, 'idleTimeoutMs');
    if (keepAliveMs > 0 || idleTimeoutMs > 0) {
      this.#liveness = new Liveness(
        {
          framesReceived: () => this.#framesReceived,
          dataBytes: () => {
            const s = this.#session.stats;
            return s.bytesSent + s.bytesReceived;
          },
          ping: () => void this.ping().catch(() => undefined),
          unresponsive: () => this.#end(qtError(ErrorCode.TIMEOUT, `the peer did not answer a keepalive ping within ${keepAliveMs} ms`)),
          idle: () => void this.close(),
        },
        { keepAliveMs, idleTimeoutMs },
      );
    }
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
      const splitAt = this.#session.splitAt;
      for (let frame = this.#reader.nextFrame(splitAt); frame !== null && !this.destroyed; frame = this.#reader.nextFrame(splitAt)) {
        this.#framesReceived++;
        this.#onSessionEvent(this.#session.receive(frame));
      }
    } catch (err) {
      this.#fail(err);
    }
    const after = this.#session.stats;
    if (after.recordsReceived > records) this.#observers.notify('onTraffic', 'received', after.bytesReceived - bytes, after.recordsReceived - records);
  }

  #onSessionEvent(event: SessionEvent): void {
    switch (event.kind) {
      case 'data':
        return this.#deliver(event.data);
      case 'data-parts':
        return this.#deliver(event.parts);
      case 'rekey-response-sent':
        this.#socket.write(event.frame);
        this.#rekeys.answered();
        this.emit('rekey', { rekeys: this.#session.stats.rekeys });
        return;
      case 'rekey-complete':
        return this.#onRekeyComplete();
      case 'ping':
        return this.#onPing();
      case 'pong':
        return this.#onPong();
      case 'peer-close':
        return this.#onPeerClose();
      case 'peer-fatal':
        return this.#end(event.error);
      case 'alert':
        this.emit('alert', { level: event.level, code: event.code, description: event.description } satisfies AlertEvent);
        return;
      case 'ticket':
        return this.#storeTicket(event.message);
      case 'none':
        return;
    }
  }

  /** A received message: to a waiting messages() reader, the readable side, or the inbox. */
  #deliver(data: Received): void {
    this.#inbox.deliver(data);
    if (!this.#inbox.messageMode) this.#flushReadable();
    if (this.#inbox.length >= INBOX_HIGH_WATER) this.#pauseReading();
  }

  /** Moves received records into the readable side while the consumer wants more. */
  #flushReadable(): void {
    while (this.#wantsData && this.#inbox.length > 0) {
      const data = this.#inbox.takePieces()!;
      if (!Array.isArray(data)) {
        if (data.length > 0) this.#wantsData = this.push(data);
      } else {
        for (const piece of data) this.#wantsData = this.push(piece);
      }
    }
    if (this.#inbox.length === 0 && this.#readableEndPending) {
      this.#readableEndPending = false;
      this.push(null);
    }
    if (this.#inbox.length < INBOX_HIGH_WATER / 2 && this.#wantsData) this.#resumeReading();
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

  /** @internal Node's Duplex implementation. */
  override _read(): void {
    this.#wantsData = true;
    if (!this.#inbox.messageMode) this.#flushReadable();
    this.#resumeReading();
  }

  /**
   * Pings are answered under socket backpressure: while our writes are congested (a peer that
   * sends Pings and never reads), Pings collapse into one Pong sent at the next drain, so a flood
   * costs no memory.
   */
  #onPing(): void {
    if (this.#socket.writableNeedDrain) this.#pongOwed = true;
    else this.#socket.write(this.#session.pongFrame());
  }

  #onSocketDrain(): void {
    if (this.#pongOwed && this.#socket.writable) {
      this.#pongOwed = false;
      this.#socket.write(this.#session.pongFrame());
    }
    this.emit('_drain');
  }

  /** close_notify or Close: no more data from the peer; we finish our side and close. */
  #onPeerClose(): void {
    this.#close.peerClosed = true;
    if (!this.#inbox.messageMode) {
      this.#readableEndPending = true;
      this.#flushReadable();
    } else if (this.#inbox.length === 0) {
      this.#inbox.end();
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

  /**
   * Ends the tunnel: without an error as a close, with one as a failure (emitted as 'error'
   * unless the application already asked to close). A FIN after the peer's close_notify only
   * closes our socket once our side is done too.
   */
  #end(err: QuantumTunnelError | undefined): void {
    if (this.destroyed) return;
    if (!err && this.#close.peerClosed && !this.writableFinished && this.#socket.readyState !== 'closed' && !this.#socket.destroyed) return;
    this.destroy(this.#close.ended(err));
  }

  // ---- sending ------------------------------------------------------------------------------

  /** @internal Node's Duplex implementation. */
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.#sendPieces(this.#recordsOf(chunk), callback);
  }

  /** @internal Node's Duplex implementation. */
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
        if (budget > 0) this.#writeSealed(pieces.slice(0, budget));
        this.#stalled = { pieces: pieces.slice(budget), callback };
        return;
      }
      const ok = this.#writeSealed(pieces);
      this.#rekeys.afterWrite();
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

  /**
   * Seals `pieces` into reused output slabs and writes them; each slab returns once written. A
   * writev of many buffered writes is cut into slab-sized groups (one buffer each, written
   * together under one cork): one large fresh buffer per writev cost more than sealing it.
   */
  #writeSealed(pieces: Buffer[]): boolean {
    const socket = this.#socket;
    const groups = slabGroups(pieces);
    let ok: boolean;
    let released: Array<() => void>;
    if (groups === undefined) {
      const output = this.#sealGroup(pieces);
      ok = socket.write(output.frames, output.release);
      released = [output.release];
    } else {
      released = [];
      ok = true;
      socket.cork();
      try {
        for (const group of groups) {
          const output = this.#sealGroup(group);
          released.push(output.release);
          ok = socket.write(output.frames, output.release);
        }
      } finally {
        socket.uncork();
      }
    }
    // Nothing left in the socket's queue: the kernel has every byte, so the slabs are free now,
    // not a tick later. (A writer that never waits would otherwise use a new slab per write.)
    if (socket.writableLength === 0) for (const release of released) release();
    if (!this.#observers.empty) {
      let bytes = 0;
      for (const p of pieces) bytes += p.length;
      this.#observers.notify('onTraffic', 'sent', bytes, pieces.length);
    }
    return ok;
  }

  /** One group's records, sealed into a slab; `release` (once written) returns the slab. */
  #sealGroup(pieces: Buffer[]): { frames: Buffer; release: () => void } {
    const output = outputFor();
    try {
      return { frames: this.#session.sealData(pieces, output.alloc), release: output.release };
    } catch (err) {
      output.release();
      throw err;
    }
  }

  /** @internal Node's Duplex implementation. */
  override _final(callback: (err?: Error | null) => void): void {
    // Every write has been sealed and handed to the socket: say goodbye, half-close, and do not
    // wait forever for the peer (a reference peer never closes after close_notify, §8.8).
    if (!this.#socket.writable) return callback();
    this.#socket.end(this.#session.closeNotifyFrame());
    if (this.#close.peerClosed) {
      this.#socket.destroy();
    } else if (!this.#halfOpen || this.#close.closeRequested) {
      this.#closeTimer = setTimeout(() => this.#socket.destroy(), this.#closeTimeoutMs);
      this.#closeTimer.unref();
    }
    // Half-open: keep reading until the peer's close_notify (it may still be sending a reply).
    callback();
  }

  /** @internal Node's Duplex implementation. */
  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    clearTimeout(this.#closeTimer);
    this.#liveness?.stop();
    // destroy() called by the application (or a stream helper such as pipeline) is recorded too.
    this.#close.ended(err);
    // Built only when someone is waiting for it: an Error captures a stack, and most tunnels
    // close with no rekey, ping or held-back write pending.
    let closed: Error | undefined;
    const reason = (): Error => (closed ??= err ?? qtError(ErrorCode.TUNNEL_CLOSED, 'tunnel closed'));
    this.#rekeys.destroy(reason);
    for (const w of this.#pingWaiters.splice(0)) { clearTimeout(w.timer); w.reject(reason()); }
    if (this.#stalled) this.#stalled.callback(reason());
    this.#stalled = undefined;
    // A failure the application did not ask for reaches messages() as a rejection.
    if (err) this.#inbox.fail(err);
    this.#inbox.end();
    const stats = this.#session.stats;
    this.#observers.notify('onTunnelClose', {
      error: this.#close.error,
      bytesSent: stats.bytesSent,
      bytesReceived: stats.bytesReceived,
    });
    this.#session.destroy();
    // destroy() right after dial() still delivers our Finished: the server sees a tunnel, then the end.
    releaseHeldWrites(this.#socket);
    this.#socket.destroy();
    callback(err);
  }

  /** A protocol failure: tell the peer with the session's fatal alert (fixed text) and end the tunnel. */
  #fail(err: unknown): void {
    if (this.destroyed) return;
    const error = err instanceof QuantumTunnelError ? err : qtError(ErrorCode.MALFORMED_MESSAGE, 'protocol error', { cause: err });
    if (error.code === ErrorCode.AUTHENTICATION_FAILED) this.#observers.notify('onAuthFailure', this.#peer);
    else if (error.code === ErrorCode.REPLAY) this.#observers.notify('onReplayBlocked', this.#peer);
    else if (error.code === ErrorCode.REKEY_RATE_LIMITED) this.#observers.notify('onRateLimited', 'rekey', this.#peer);
    else this.#observers.notify('onProtocolError', error.code, this.#peer);
    if (this.#socket.writable) this.#socket.end(this.#session.fatalAlert(error));
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
    if (!this.#inbox.messageMode) {
      this.#inbox.messageMode = true;
      // Errors reach the iterator; this listener only keeps them from being unhandled events.
      this.on('error', () => undefined);
    }
    const next = (): Promise<IteratorResult<Buffer>> => {
      const value = this.#inbox.take();
      if (value !== undefined) {
        if (this.#inbox.length < INBOX_HIGH_WATER / 2) this.#resumeReading();
        return Promise.resolve({ value, done: false });
      }
      if (this.#close.peerClosed && !this.readableEnded) this.push(null);
      if (this.#close.peerClosed || this.destroyed) {
        const err = this.errored ?? this.#close.failure();
        return err ? Promise.reject(err) : Promise.resolve({ value: undefined, done: true });
      }
      this.#resumeReading();
      return this.#inbox.wait();
    };
    return {
      next,
      return: () => Promise.resolve({ value: undefined, done: true }),
      [Symbol.asyncIterator]() {
        return this;
      },
    };
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
      this.#socket.write(this.#session.pingFrame());
    });
  }

  #onPong(): void {
    const w = this.#pingWaiters.shift();
    if (!w) return; // unsolicited Pong: ignored, as in the reference
    clearTimeout(w.timer);
    w.resolve(performance.now() - w.started);
  }

  /**
   * Replaces the traffic keys. Protocol v2 (either side): a KeyUpdate, by default `kem` (a fresh
   * hybrid key exchange mixed into the ratchet), or `symmetric` (the cheap ratchet alone);
   * resolves when the peer acknowledged and both directions use the new keys. Protocol v1:
   * a CH-KEM rekey, client side only; resolves when the new keys are agreed.
   */
  rekey(options: { mode?: 'symmetric' | 'kem' } = {}): Promise<void> {
    if (!this.#session.canStartRekey) return Promise.reject(qtError(ErrorCode.INVALID_STATE, 'in protocol v1 only the client can start a rekey'));
    if (this.destroyed || !this.#socket.writable) return Promise.reject(qtError(ErrorCode.TUNNEL_CLOSED, 'tunnel closed'));
    const mode = options.mode ?? 'kem';
    if (mode !== 'kem' && mode !== 'symmetric') return Promise.reject(qtError(ErrorCode.INVALID_ARGUMENT, "mode must be 'kem' or 'symmetric'"));
    return this.#rekeys.request(mode);
  }

  #onRekeyComplete(): void {
    this.#rekeys.completed();
    this.emit('rekey', { rekeys: this.#session.stats.rekeys });
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
      this.#close.closeRequested = true;
      this.once('close', () => resolve());
      this.end();
    });
  }

  // ---- resumption ---------------------------------------------------------------------------

  /** Server, v2: a NewSessionTicket for this session, sent right after the handshake. */
  #issueTicketInBand(issuer: TicketIssuer): void {
    const session = this.#session;
    if (!session.ticketFrame || !session.withResumptionSecret || !suitePermitted(session.suite)) return;
    // Tickets carry PSK identities only: sessions with pinned keys get none (§13.5).
    if (session.resumable === false) return;
    const peerIdentity = session.peerIdentity?.type === 'psk' ? Buffer.from(session.peerIdentity.identity, 'utf8') : undefined;
    const issued = session.withResumptionSecret((resumption) => issuer.issue(resumption, { suite: session.suite, group: session.groupId ?? 0, peerIdentity }));
    this.#socket.write(session.ticketFrame(issued.message));
  }

  /** Client, v2: keeps a ticket the server sent (ignored when dialed without a ticketStore). */
  #storeTicket(message: Buffer): void {
    const target = this.#ticketStore;
    const session = this.#session;
    if (!target || !session.withResumptionSecret) return;
    const nst = decodeNewSessionTicket(message);
    const ticket = session.withResumptionSecret((resumption) => clientTicketFromMessage(nst, resumption, { suite: session.suite, group: session.groupId ?? 0 }, Date.now()));
    try {
      target.store.add(target.scope, ticket);
    } catch (err) {
      ticket.psk.destroy();
      throw err;
    }
  }

  /**
   * Keying material bound to this tunnel's handshake (RFC 8446 §7.5, protocol v2): both ends get
   * the same `length` bytes for the same `label` and `context`, and nobody else can. Use it for
   * channel binding: sign it, or mix it into an application-level authentication, to prove the
   * application talks over this very tunnel.
   */
  exportKeyingMaterial(label: string, context: Uint8Array | undefined, length: number): Buffer {
    if (this.destroyed) throw qtError(ErrorCode.TUNNEL_CLOSED, 'tunnel closed');
    if (!this.#session.exportKeyingMaterial) throw qtError(ErrorCode.INVALID_STATE, 'protocol v1 has no exporter (legacy mode)');
    return this.#session.exportKeyingMaterial(label, context, length);
  }

  /**
   * Server: a session ticket for this tunnel's current master secret and suite, to hand to the
   * client (protocol v1 has no message for it; send it over the tunnel, for example).
   */
  issueTicket(): Buffer {
    if (this.#role !== 'server' || !this.#tickets) throw qtError(ErrorCode.INVALID_STATE, 'tickets are issued by a server listening with `tickets`');
    if (this.destroyed) throw qtError(ErrorCode.TUNNEL_CLOSED, 'tunnel closed');
    if (!suitePermitted(this.#session.suite)) {
      throw qtError(ErrorCode.FIPS_NOT_APPROVED, 'FIPS mode issues tickets only for sessions with an approved suite');
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
      protocol: this.#session.version,
      suite: cipherSuiteName(this.#session.suite),
      group: this.#session.groupName,
      peerIdentity: this.#session.peerIdentity,
      sessionId: this.#session.sessionId.toString('hex'),
      resumed: this.#session.resumed,
      establishedAt: this.#establishedAt,
      handshakeMs: this.#handshakeMs,
      ...s,
      remoteAddress: this.#peer.address,
      remotePort: this.#peer.port,
      proxiedBy: this.#proxiedBy,
      fips: this.#fipsMode,
      approvedServicesOnly: this.#session.approvedServicesOnly === true,
      closeState: this.#close.state,
      closeError: this.#close.error,
    };
  }
}

/** Each tunnel's session, for the test-only entry point (lib/testing.ts); not exported by the package. */
const sessions = new WeakMap<Tunnel, Session>();

/** @internal The session behind a tunnel (tests read its keys through lib/testing.ts). */
export function sessionOf(tunnel: Tunnel): Session | undefined {
  return sessions.get(tunnel);
}

/**
 * `pieces` cut into groups of at most SLAB_CONTENT bytes (a group holds at least one piece), or
 * undefined when they already fit one slab.
 */
function slabGroups(pieces: Buffer[]): Buffer[][] | undefined {
  let total = 0;
  for (const p of pieces) total += p.length;
  if (total <= SLAB_CONTENT) return undefined;
  const groups: Buffer[][] = [];
  let group: Buffer[] = [];
  let size = 0;
  for (const p of pieces) {
    if (group.length > 0 && size + p.length > SLAB_CONTENT) {
      groups.push(group);
      group = [];
      size = 0;
    }
    group.push(p);
    size += p.length;
  }
  groups.push(group);
  return groups;
}

/** Splits a write into record-sized pieces (empty writes send nothing). */
function split(chunk: Buffer): Buffer[] {
  if (chunk.length <= STREAM_RECORD_SIZE) return chunk.length === 0 ? [] : [chunk];
  const pieces: Buffer[] = [];
  for (let o = 0; o < chunk.length; o += STREAM_RECORD_SIZE) pieces.push(chunk.subarray(o, o + STREAM_RECORD_SIZE));
  return pieces;
}
