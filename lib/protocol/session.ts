/**
 * The record layer and rekey of an established session (PROTOCOL.md §8, §9), pure: it turns
 * plaintext into Data/Rekey frames and received frames back into plaintext, and owns the keys,
 * sequence numbers, nonce counters and the rekey ratchet. No sockets, no timers.
 *
 * Record: 10|11 ‖ BE32(8 + A) ‖ BE64(seq) ‖ nonce(12) ‖ ciphertext ‖ tag(16); AD = BE64(seq);
 * nonce = 0^4 ‖ BE64(per-key counter).
 *
 * Fixes that keep the wire (docs/PROTOCOL.md "v1 as we speak it"):
 * - strict order: TCP delivers in order, so a record must carry exactly the next sequence number;
 *   a lower one is a replay, a higher one means records were dropped or reordered, and both are
 *   fatal. Senders count contiguously through a rekey (no jump to the activation value: a jump
 *   would let an on-path attacker drop the records before it unnoticed);
 * - rekey: each side switches its send key at a sequence number the other side can predict:
 *   the initiator at the activation value, the responder at max(activation, response + 1). The
 *   initiator holds back records that would reach the activation value before it has the new
 *   key, so no record is sealed under a key the peer cannot open yet (§14 #7). Receivers pick the
 *   key by sequence number and fall back to the one before it only for a reference peer, whose
 *   initiator switches at its first send after the response;
 * - a rekey payload relabelled as Data (the type byte is not authenticated, §14 #12) is
 *   recognised by its shape and refused instead of being delivered as data;
 * - rekeys a peer asks for are rate limited; counters that trigger a rekey reset with each key,
 *   and the initiator also rekeys when the peer's send key nears its limits;
 * - an empty Data record is accepted; we never send one (a v1 peer cannot open it, §8.1).
 */
import type { PeerIdentity } from './peerIdentity.js';
import type { Secret } from '../native.js';
import { ErrorCode, type QuantumTunnelError, qtError } from '../errors.js';
import { AEAD_SIZES, createAead, type AeadContext } from '../crypto/aead.js';
import * as chkem from '../crypto/chkem.js';
import { destroyAll } from '../crypto/secret.js';
import {
  AEAD_OVERHEAD,
  type CipherSuiteId,
  FRAME_HEADER_SIZE,
  MAX_RECORD_PLAINTEXT,
  MessageType,
  NONCE_LIMIT,
  NONCE_SIZE,
  RECORD_OVERHEAD,
  REKEY_BYTES_THRESHOLD,
  REKEY_INTERVAL_MS,
  REKEY_NONCE_THRESHOLD,
  REKEY_PAYLOAD_SIZE,
  REKEY_RECORDS_THRESHOLD,
  SEQ_SIZE,
  TAG_SIZE,
} from './constants.js';
import type { Frame, SplitFrame } from './frame.js';
import type { HandshakeResult } from './handshake.js';
import type { FixedClientShare, FixedServerShare } from './v2/groups.js';
import { deriveRekeyMaster, deriveTrafficKeys } from './keySchedule.js';
import {
  AlertCode,
  AlertDescription,
  AlertLevel,
  CLOSE_NOTIFY_ALERT,
  decodeAlert,
  decodeRekeyPayload,
  encodeAlert,
  encodeRekeyPayload,
  PING_FRAME,
  PONG_FRAME,
} from './messages.js';

/**
 * Ours: how far past the peer's sequence number (as far as we have received) the initiator puts
 * the activation point. A reference responder seals its response under the new key once its own
 * counter has reached it (§14 #7), so it leaves room for records in flight.
 */
export const DEFAULT_REKEY_ACTIVATION_OFFSET = 64n;
/**
 * Ours: a responder of ours echoes the activation value with this bit flipped, telling our
 * initiator it may switch at once (a reference initiator ignores the echo, §9.3).
 */
export const REKEY_ECHO_MARK = 1n << 63n;
/** Ours: the least time between two rekeys a peer may ask for (each costs a key exchange). */
export const DEFAULT_REKEY_MIN_INTERVAL_MS = 250;
/** The last sequence number a record can carry (BE64 on the wire). */
export const MAX_SEQUENCE = (1n << 64n) - 1n;
/** How far ahead of a Data record's own sequence number a relabelled rekey's activation value lies. */
const MAX_ACTIVATION_DISTANCE = 1n << 32n;

const SEQ_OFFSET = FRAME_HEADER_SIZE;
const NONCE_OFFSET = SEQ_OFFSET + SEQ_SIZE;
const CIPHERTEXT_OFFSET = NONCE_OFFSET + NONCE_SIZE;
const ROW = AEAD_SIZES.batchRowWords;

function max(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}

/** Whether `b` starts right where `a` ends in the same memory. */
function follows(a: Uint8Array, b: Uint8Array): boolean {
  return a.buffer === b.buffer && a.byteOffset + a.length === b.byteOffset;
}

/**
 * A traffic key in one direction: its AEAD context, the first sequence number it protects and the
 * counters that decide when it must be replaced.
 */
class TrafficKey {
  nonceCounter = 0;
  bytes = 0;
  records = 0;
  since: number;
  constructor(readonly ctx: AeadContext, readonly fromSeq: bigint, now: number) {
    this.since = now;
  }
}

/** What opening a received record produced. */
export type RecordEvent =
  /** `seq`: v1's record sequence number (v2's is implicit). */
  | { kind: 'data'; data: Buffer; seq?: bigint }
  /** One data record that spanned socket reads, as views of them in order (v2). */
  | { kind: 'data-parts'; parts: Buffer[] }
  | { kind: 'rekey-response-sent'; frame: Buffer }
  | { kind: 'rekey-complete' };

/**
 * What a received frame produced, for the tunnel to act on (it owns the socket, timers and
 * streams; every protocol decision is made here).
 */
export type SessionEvent =
  | RecordEvent
  /** The peer pinged: send {@link Session.pongFrame} (when the socket can take it). */
  | { kind: 'ping' }
  | { kind: 'pong' }
  /** The peer's close_notify (or Close): no more data from it. */
  | { kind: 'peer-close' }
  /** A warning alert other than close_notify; the description is the peer's text, untrusted. */
  | { kind: 'alert'; level: number; code: number; description: string }
  /** The peer's fatal alert: end the tunnel with `error`, without an alert of ours. */
  | { kind: 'peer-fatal'; error: QuantumTunnelError }
  /** A resumption ticket from the server (v2): the tunnel stores it for a later dial. */
  | { kind: 'ticket'; message: Buffer }
  /** Nothing to do (a repeated close_notify). */
  | { kind: 'none' };

/** Gives a buffer of exactly `size` bytes for sealed records (see Session.sealData). */
export type OutputAllocator = (size: number) => Buffer;

/**
 * An established session of some protocol version: the record layer, the rekey ratchet and the
 * control messages, pure. The tunnel feeds it frames and sends the bytes it returns.
 */
export interface Session {
  /** The protocol version's name ('v1', 'v2'). */
  readonly version: string;
  readonly role: 'initiator' | 'responder';
  /** Whether this side may start a rekey (v1: the initiator only). */
  readonly canStartRekey: boolean;
  readonly suite: CipherSuiteId;
  readonly sessionId: Buffer;
  readonly resumed: boolean;
  readonly stats: SessionStats;
  readonly rekeyInProgress: boolean;
  /**
   * Set when the session takes a large record that spans socket reads unjoined: as a SplitFrame
   * whose head holds this many payload bytes (FrameReader.nextFrame(splitAt)).
   */
  readonly splitAt?: number;
  /** Handles one received frame; throws a QuantumTunnelError for anything fatal (answer with {@link fatalAlert}). */
  receive(frame: Frame | SplitFrame): SessionEvent;
  /**
   * Seals application data as consecutive records, into a buffer of the exact size from `alloc`
   * (default a new Buffer; the tunnel passes reused ones).
   */
  sealData(chunks: readonly Buffer[], alloc?: OutputAllocator): Buffer;
  /** How many records may be sealed now (a pending rekey can hold some back). */
  sendBudget(): number;
  needsRekey(): boolean;
  /** Our rekey request; `mode` picks v2's tier (v1 has one). */
  startRekey(mode?: 'symmetric' | 'kem'): Buffer;
  pingFrame(): Buffer;
  pongFrame(): Buffer;
  closeNotifyFrame(): Buffer;
  /** The fatal alert that reports `error` to the peer (fixed text, nothing secret or peer-chosen). */
  fatalAlert(error: QuantumTunnelError): Buffer;
  masterSecretCopy(): Secret;
  withMasterSecret<T>(use: (master: Secret) => T): T;
  destroy(): void;

  // Protocol v2 and later.
  /** The key exchange group, as people read it, and its wire ID (tickets record it). */
  readonly groupName?: string;
  readonly groupId?: number;
  /** The identity the peer authenticated with, if any. */
  readonly peerIdentity?: PeerIdentity;
  /** Whether the server may issue tickets for this session (not after pinned keys, §13.5). */
  readonly resumable?: boolean;
  /** Every service the session uses is FIPS-approved. */
  readonly approvedServicesOnly?: boolean;
  /** RFC 8446 §7.5 keying material exporter. */
  exportKeyingMaterial?(label: string, context: Uint8Array | undefined, length: number): Buffer;
  /** A NewSessionTicket record (server). */
  ticketFrame?(message: Buffer): Buffer;
  /** Runs `use` with the resumption secret, natively only. */
  withResumptionSecret?<T>(use: (resumption: Secret) => T): T;
}

/** Failures that concern a record (forged, replayed, missing): answered with the bad_record alert. */
const BAD_RECORD_ERRORS = new Set<string>([ErrorCode.AUTHENTICATION_FAILED, ErrorCode.REPLAY, ErrorCode.RECORD_OUT_OF_ORDER]);

export interface SessionOptions {
  now?: () => number;
  /** Activation offset for rekey requests (the reference uses 16). */
  rekeyActivationOffset?: bigint;
  /** Least time between rekeys the peer asks for (ms); a faster one is fatal. Default 250. */
  rekeyMinIntervalMs?: number;
  /** Consulted for each rekey the peer asks for (admission budget); false refuses it (fatal). */
  admitRekey?: () => boolean;
  /** Fixed rekey key pair for known-answer tests (v1). */
  rekeyKeyPair?: () => chkem.ChKemKeyPair;
  /** Fixed KEM KeyUpdate inputs for known-answer vectors (v2): never in production. */
  fixedKemUpdate?: () => { clientShare?: FixedClientShare; serverShare?: FixedServerShare };
  /** First sequence number in both directions (tests of the sequence limit only; the wire starts at 0). */
  firstSequence?: bigint;
}

/** Per-direction statistics, plaintext bytes and records. */
export interface SessionStats {
  /** Plaintext bytes sent. */
  bytesSent: number;
  /** Plaintext bytes received. */
  bytesReceived: number;
  /** Records sent. */
  recordsSent: number;
  /** Records received. */
  recordsReceived: number;
  /** Key updates completed, in either direction. */
  rekeys: number;
}

/** The protocol v1 session (docs/PROTOCOL.md, Records and Rekey). */
export class SecureSession implements Session {
  readonly version = 'v1';
  readonly role: 'initiator' | 'responder';
  readonly suite: CipherSuiteId;
  readonly sessionId: Buffer;
  readonly resumed: boolean;
  readonly stats: SessionStats = { bytesSent: 0, bytesReceived: 0, recordsSent: 0, recordsReceived: 0, rekeys: 0 };

  get canStartRekey(): boolean {
    return this.role === 'initiator';
  }

  #master: Secret;
  #send: TrafficKey;
  /** Send keys that take over at their fromSeq, oldest first. */
  #scheduledSend: TrafficKey[] = [];
  /** Receive keys, newest first; a record uses the newest whose fromSeq it has reached. */
  #receiveKeys: TrafficKey[];
  #nextSendSeq: bigint;
  #nextReceiveSeq: bigint;
  /** Set once the last sequence number has been received: nothing may follow it. */
  #receiveExhausted = false;
  readonly #now: () => number;
  #pendingRekey: { keyPair: chkem.ChKemKeyPair; activationSeq: bigint } | undefined;
  #lastPeerRekeyAt: number | undefined;
  #table = new Uint32Array(ROW * 16);
  #destroyed = false;
  /** The peer's close_notify arrived: a record after it is a violation. */
  #peerClosed = false;
  readonly #options: SessionOptions;

  constructor(handshake: HandshakeResult, options: SessionOptions = {}) {
    this.#options = options;
    this.role = handshake.role;
    this.suite = handshake.suite;
    this.sessionId = handshake.sessionId;
    this.resumed = handshake.resumed;
    this.#now = options.now ?? Date.now;
    this.#master = handshake.master;
    const first = options.firstSequence ?? 0n;
    this.#nextSendSeq = first;
    this.#nextReceiveSeq = first;
    try {
      this.#send = new TrafficKey(createAead(this.suite, handshake.sendKey), first, this.#now());
      this.#receiveKeys = [new TrafficKey(createAead(this.suite, handshake.receiveKey), first, this.#now())];
    } finally {
      destroyAll(handshake.sendKey, handshake.receiveKey);
    }
  }

  receive(frame: Frame): SessionEvent {
    switch (frame.type) {
      case MessageType.DATA:
      case MessageType.REKEY:
        if (this.#peerClosed) throw qtError(ErrorCode.UNEXPECTED_MESSAGE, 'record after close_notify');
        return this.openRecord(frame);
      case MessageType.PING:
        return { kind: 'ping' };
      case MessageType.PONG:
        return { kind: 'pong' };
      case MessageType.CLOSE:
        return this.#onPeerClose();
      case MessageType.ALERT: {
        const alert = decodeAlert(frame.payload);
        if (alert === null) throw qtError(ErrorCode.MALFORMED_MESSAGE, 'malformed alert');
        if (alert.code === AlertCode.CLOSE_NOTIFY) return this.#onPeerClose();
        if (alert.level === AlertLevel.FATAL) return { kind: 'peer-fatal', error: qtError(ErrorCode.PEER_ALERT, `peer sent fatal alert code ${alert.code}`) };
        return { kind: 'alert', level: alert.level, code: alert.code, description: alert.description };
      }
      default:
        throw qtError(ErrorCode.UNEXPECTED_MESSAGE, `unexpected message type 0x${frame.type.toString(16)}`);
    }
  }

  #onPeerClose(): SessionEvent {
    if (this.#peerClosed) return { kind: 'none' };
    this.#peerClosed = true;
    return { kind: 'peer-close' };
  }

  sealData(chunks: readonly Buffer[], alloc?: OutputAllocator): Buffer {
    return this.sealRecords(MessageType.DATA, chunks, alloc);
  }

  // v1's control messages are plaintext frames (§8.6, §8.7).
  pingFrame(): Buffer {
    return PING_FRAME;
  }

  pongFrame(): Buffer {
    return PONG_FRAME;
  }

  closeNotifyFrame(): Buffer {
    return CLOSE_NOTIFY_ALERT;
  }

  fatalAlert(error: QuantumTunnelError): Buffer {
    const badRecord = BAD_RECORD_ERRORS.has(error.code);
    return encodeAlert({
      level: AlertLevel.FATAL,
      code: badRecord ? AlertCode.BAD_CIPHERTEXT : AlertCode.UNEXPECTED_MESSAGE,
      description: badRecord ? AlertDescription.BAD_RECORD : AlertDescription.UNEXPECTED_MESSAGE,
    });
  }

  /** A copy of the current master secret (for tickets and resumption); the caller destroys it. */
  masterSecretCopy(): Secret {
    this.#assertLive();
    return this.#master.clone();
  }

  /** @internal For tickets issued by this process: the secret is used by native code, never exported. */
  withMasterSecret<T>(use: (master: Secret) => T): T {
    this.#assertLive();
    return use(this.#master);
  }

  get rekeyInProgress(): boolean {
    return this.#pendingRekey !== undefined;
  }

  /**
   * How many more records may be sealed now. Unlimited, except for an initiator waiting for a
   * rekey response: records at or past the activation sequence number must wait for the new key.
   */
  sendBudget(): number {
    if (!this.#pendingRekey) return Number.MAX_SAFE_INTEGER;
    const left = this.#pendingRekey.activationSeq - this.#nextSendSeq;
    return left > 0n ? Number(left) : 0;
  }

  /**
   * Seals plaintext chunks (each 1..65,479 bytes) as consecutive records into one buffer, with one
   * native call per run of chunks under one key.
   */
  // eslint-disable-next-line @typescript-eslint/unbound-method -- Buffer.allocUnsafe does not use `this`
  sealRecords(type: typeof MessageType.DATA | typeof MessageType.REKEY, chunks: readonly Buffer[], alloc: OutputAllocator = Buffer.allocUnsafe): Buffer {
    this.#assertLive();
    const n = chunks.length;
    if (n > this.sendBudget()) throw qtError(ErrorCode.INVALID_STATE, 'records would pass the rekey activation point');
    if (this.#nextSendSeq + BigInt(n) - 1n > MAX_SEQUENCE) {
      throw qtError(ErrorCode.SEQUENCE_EXHAUSTED, 'the record sequence numbers are used up');
    }
    let total = 0;
    for (const c of chunks) {
      if (c.length === 0 || c.length > MAX_RECORD_PLAINTEXT) throw qtError(ErrorCode.INVALID_ARGUMENT, 'record plaintext must be 1..65479 bytes');
      total += RECORD_OVERHEAD + c.length;
    }
    if (this.#table.length < n * ROW) this.#table = new Uint32Array(n * ROW * 2);
    const out = alloc(total);
    // One native call per run of pieces that sit back to back in one buffer and share a key (a
    // large write split into records is one run), so no plaintext is copied before encryption.
    let o = 0;
    let s = 0;
    let runStart = 0;
    while (runStart < n) {
      this.#switchSendKeyIfDue();
      const key = this.#send;
      if (key.nonceCounter >= NONCE_LIMIT) throw qtError(ErrorCode.NONCE_EXHAUSTED, 'the send key has used all its nonces');
      // Records this key may still seal: up to its nonce limit and the next scheduled switch.
      let room = NONCE_LIMIT - key.nonceCounter;
      const next = this.#scheduledSend[0];
      if (next) room = Math.min(room, Number(next.fromSeq - this.#nextSendSeq));
      let runEnd = runStart + 1;
      while (runEnd < n && runEnd - runStart < room && follows(chunks[runEnd - 1]!, chunks[runEnd]!)) runEnd++;
      const first = chunks[runStart]!;
      const src = new Uint8Array(first.buffer, first.byteOffset, chunks[runEnd - 1]!.byteOffset + chunks[runEnd - 1]!.length - first.byteOffset);
      let srcOffset = 0;
      let runBytes = 0;
      for (let i = runStart; i < runEnd; i++) {
        const len = chunks[i]!.length;
        out[o] = type;
        out.writeUInt32BE(SEQ_SIZE + AEAD_OVERHEAD + len, o + 1);
        out.writeBigUInt64BE(this.#nextSendSeq++, o + SEQ_OFFSET);
        // nonce = 0^4 ‖ BE64(counter); the counter stays below 2^28, so its high word is 0.
        out.writeUInt32BE(0, o + NONCE_OFFSET);
        out.writeUInt32BE(0, o + NONCE_OFFSET + 4);
        out.writeUInt32BE(key.nonceCounter++, o + NONCE_OFFSET + 8);
        // The batch row, written in place (no array or BigInt allocated per record).
        const r = (i - runStart) * ROW;
        const t = this.#table;
        t[r] = srcOffset;
        t[r + 1] = len;
        t[r + 2] = o + CIPHERTEXT_OFFSET;
        t[r + 3] = o + NONCE_OFFSET;
        t[r + 4] = o + SEQ_OFFSET;
        t[r + 5] = SEQ_SIZE;
        srcOffset += len;
        runBytes += len;
        o += RECORD_OVERHEAD + len;
      }
      key.ctx.sealBatch(src, out, this.#table, runEnd - runStart);
      key.records += runEnd - runStart;
      key.bytes += runBytes;
      s += runBytes;
      runStart = runEnd;
    }
    this.stats.recordsSent += n;
    if (type === MessageType.DATA) this.stats.bytesSent += s;
    return out;
  }

  /** Installs a scheduled send key once our sequence number has reached its first record. */
  #switchSendKeyIfDue(): void {
    const next = this.#scheduledSend[0];
    if (next === undefined || this.#nextSendSeq < next.fromSeq) return;
    this.#scheduledSend.shift();
    this.#send.ctx.destroy();
    next.since = this.#now();
    this.#send = next;
  }

  /**
   * Whether the initiator should rekey now (§9.1 triggers, ours reset with every key): our send
   * key or the peer's (as seen by the records we received under it) nears its limits or age.
   */
  needsRekey(): boolean {
    if (this.role !== 'initiator' || this.#pendingRekey || this.#scheduledSend.length > 0 || this.#destroyed) return false;
    const k = this.#send;
    const r = this.#receiveKeys[0]!;
    return k.nonceCounter >= REKEY_NONCE_THRESHOLD || k.bytes >= REKEY_BYTES_THRESHOLD ||
      k.records >= REKEY_RECORDS_THRESHOLD || this.#now() - k.since >= REKEY_INTERVAL_MS ||
      r.records >= REKEY_NONCE_THRESHOLD || r.bytes >= REKEY_BYTES_THRESHOLD;
  }

  /** Initiator: the Rekey request frame (§9.2). */
  startRekey(): Buffer {
    this.#assertLive();
    if (this.role !== 'initiator') throw qtError(ErrorCode.INVALID_STATE, 'in protocol v1 only the initiator starts a rekey');
    if (this.#pendingRekey) throw qtError(ErrorCode.INVALID_STATE, 'a rekey is already in progress');
    this.#switchSendKeyIfDue();
    if (this.#scheduledSend.length > 0) throw qtError(ErrorCode.INVALID_STATE, 'the previous rekey has not taken effect yet');
    const offset = this.#options.rekeyActivationOffset ?? DEFAULT_REKEY_ACTIVATION_OFFSET;
    // The responder switches its sending at this point of its own counter: just past what we
    // have received from it, so it switches soon and a reference responder still answers under
    // the old key.
    const activationSeq = this.#nextReceiveSeq + offset;
    if (activationSeq > MAX_SEQUENCE || this.#nextSendSeq >= MAX_SEQUENCE) {
      throw qtError(ErrorCode.SEQUENCE_EXHAUSTED, 'the record sequence numbers are used up');
    }
    const keyPair = this.#options.rekeyKeyPair ? this.#options.rekeyKeyPair() : chkem.generateKeyPair();
    let frame: Buffer;
    try {
      frame = this.sealRecords(MessageType.REKEY, [encodeRekeyPayload(keyPair.publicKey, activationSeq)]);
    } catch (err) {
      keyPair.destroy();
      throw err;
    }
    this.#pendingRekey = { keyPair, activationSeq };
    return frame;
  }

  /**
   * Opens one Data or Rekey frame. Returns the event it produced; throws (fatal for the tunnel)
   * ERR_QT_REPLAY or ERR_QT_RECORD_OUT_OF_ORDER for a sequence number other than the next,
   * ERR_QT_AUTHENTICATION_FAILED when no key opens it, ERR_QT_MALFORMED_MESSAGE for a short record.
   */
  openRecord(frame: Frame): RecordEvent {
    this.#assertLive();
    const p = frame.payload;
    if (p.length < SEQ_SIZE + AEAD_OVERHEAD) throw qtError(ErrorCode.MALFORMED_MESSAGE, 'record shorter than its overhead');
    const seq = p.readBigUInt64BE(0);
    if (this.#receiveExhausted) throw qtError(ErrorCode.SEQUENCE_EXHAUSTED, 'a record after the last sequence number');
    if (seq !== this.#nextReceiveSeq) {
      if (seq < this.#nextReceiveSeq) throw qtError(ErrorCode.REPLAY, 'a record with a sequence number already received');
      throw qtError(ErrorCode.RECORD_OUT_OF_ORDER, 'records were dropped or reordered on the way');
    }
    // Decrypt in place: the ciphertext becomes the plaintext in the frame's own bytes.
    const nonce = p.subarray(SEQ_SIZE, SEQ_SIZE + NONCE_SIZE);
    const sealed = p.subarray(SEQ_SIZE + NONCE_SIZE);
    const key = this.#openWithReceiveKeys(seq, p.subarray(0, SEQ_SIZE), nonce, sealed);
    const plaintext = sealed.subarray(0, sealed.length - TAG_SIZE);
    if (seq === MAX_SEQUENCE) this.#receiveExhausted = true;
    else this.#nextReceiveSeq = seq + 1n;
    key.records++;
    key.bytes += plaintext.length;
    this.stats.recordsReceived++;
    if (frame.type === MessageType.DATA) {
      if (plaintext.length === REKEY_PAYLOAD_SIZE && this.#isRelabelledRekey(plaintext, seq)) {
        throw qtError(ErrorCode.UNEXPECTED_MESSAGE, 'a rekey message arrived relabelled as data');
      }
      this.stats.bytesReceived += plaintext.length;
      return { kind: 'data', data: plaintext, seq };
    }
    return this.#onRekeyRecord(plaintext, seq);
  }

  /**
   * Opens with the newest key whose first sequence number `seq` has reached; only a reference
   * initiator may still use the key before it (it switches at its first send after the
   * response, not at the activation value), so that one is the only fallback.
   */
  #openWithReceiveKeys(seq: bigint, aad: Buffer, nonce: Buffer, sealed: Buffer): TrafficKey {
    const keys = this.#receiveKeys;
    let i = keys.findIndex((k) => seq >= k.fromSeq);
    if (i < 0) i = keys.length - 1;
    const candidates = i + 1 < keys.length ? [i, i + 1] : [i];
    const original = candidates.length > 1 ? Buffer.from(sealed) : undefined;
    for (const c of candidates) {
      if (original) original.copy(sealed);
      try {
        keys[c]!.ctx.open(sealed, 0, nonce, aad, sealed);
      } catch {
        continue;
      }
      // The peer has switched to key c: older keys will never be needed again.
      for (const old of keys.splice(c + 1)) old.ctx.destroy();
      return keys[c]!;
    }
    throw qtError(ErrorCode.AUTHENTICATION_FAILED, 'record did not authenticate');
  }

  /**
   * A Data record of exactly a rekey payload's size that has a rekey payload's shape: the echo of
   * our pending activation value (a response), or a valid CH-KEM public key followed by a
   * plausible activation value (a request). Legitimate data has that shape only by design.
   */
  #isRelabelledRekey(plaintext: Buffer, seq: bigint): boolean {
    const { key, activationSeq } = decodeRekeyPayload(plaintext);
    if (this.role === 'initiator') {
      const pending = this.#pendingRekey?.activationSeq;
      return pending !== undefined && (activationSeq === pending || activationSeq === (pending ^ REKEY_ECHO_MARK));
    }
    const near = seq > this.#nextSendSeq ? seq : this.#nextSendSeq;
    return activationSeq <= near + MAX_ACTIVATION_DISTANCE && chkem.isValidPublicKey(key);
  }

  #onRekeyRecord(plaintext: Buffer, seq: bigint): RecordEvent {
    const { key, activationSeq } = decodeRekeyPayload(plaintext);
    if (this.role === 'responder') return this.#answerRekey(key, activationSeq, seq);
    const pending = this.#pendingRekey;
    if (!pending) throw qtError(ErrorCode.UNEXPECTED_MESSAGE, 'rekey response without a request');
    const ours = activationSeq === (pending.activationSeq ^ REKEY_ECHO_MARK);
    if (!ours && activationSeq !== pending.activationSeq) throw qtError(ErrorCode.REKEY_FAILED, 'the rekey response names another activation point');
    let fresh: Secret;
    try {
      fresh = chkem.decapsulate(pending.keyPair, key);
    } finally {
      pending.keyPair.destroy();
      this.#pendingRekey = undefined;
    }
    // We switch at our next record when the responder is ours (it opens either key), at the
    // activation point for a reference responder. It switches at max(activation, response + 1).
    const sendFrom = ours ? this.#nextSendSeq : max(pending.activationSeq, this.#nextSendSeq);
    this.#ratchet(fresh, sendFrom, max(pending.activationSeq, seq + 1n));
    return { kind: 'rekey-complete' };
  }

  /**
   * Responder: encapsulate to the new key, answer under the current key, then ratchet (§9.3).
   * We switch our sending at max(activation, response + 1); the initiator's records after its
   * request may use either key (ours switches at once, a reference one at the activation point).
   */
  #answerRekey(publicKey: Buffer, activationSeq: bigint, requestSeq: bigint): RecordEvent {
    const now = this.#now();
    const minInterval = this.#options.rekeyMinIntervalMs ?? DEFAULT_REKEY_MIN_INTERVAL_MS;
    if (this.#lastPeerRekeyAt !== undefined && now - this.#lastPeerRekeyAt < minInterval) {
      throw qtError(ErrorCode.REKEY_RATE_LIMITED, 'the peer asks for rekeys too often');
    }
    if (this.#options.admitRekey && !this.#options.admitRekey()) throw qtError(ErrorCode.REKEY_RATE_LIMITED, 'rekey refused by admission control');
    this.#lastPeerRekeyAt = now;
    let enc: chkem.ChKemEncapsulation;
    try {
      enc = chkem.encapsulate(publicKey);
    } catch (err) {
      throw qtError(ErrorCode.REKEY_FAILED, 'peer sent an invalid rekey public key', { cause: err });
    }
    let response: Buffer;
    try {
      response = this.sealRecords(MessageType.REKEY, [encodeRekeyPayload(enc.ciphertext, activationSeq ^ REKEY_ECHO_MARK)]);
    } catch (err) {
      enc.sharedSecret.destroy();
      throw err;
    }
    this.#ratchet(enc.sharedSecret, max(activationSeq, this.#nextSendSeq), requestSeq + 1n);
    return { kind: 'rekey-response-sent', frame: response };
  }

  /**
   * Ratchets the master and schedules the new keys: ours from `sendFrom`, the peer's from
   * `receiveFrom`. A switch of the previous rekey that has not happened yet is superseded (both
   * sides see that from the sequence numbers of this exchange), so at most one waits.
   */
  #ratchet(fresh: Secret, sendFrom: bigint, receiveFrom: bigint): void {
    const newMaster = deriveRekeyMaster(this.#master, fresh);
    fresh.destroy();
    const t = deriveTrafficKeys(newMaster);
    const [sendKey, receiveKey] = this.role === 'initiator'
      ? [t.initiatorToResponder, t.responderToInitiator]
      : [t.responderToInitiator, t.initiatorToResponder];
    try {
      const now = this.#now();
      for (const unused of this.#scheduledSend.splice(0)) unused.ctx.destroy();
      this.#scheduledSend.push(new TrafficKey(createAead(this.suite, sendKey), sendFrom, now));
      // Receive keys the peer has not reached yet will never be used.
      while (this.#receiveKeys.length > 1 && this.#receiveKeys[0]!.fromSeq >= this.#nextReceiveSeq) this.#receiveKeys.shift()!.ctx.destroy();
      this.#receiveKeys.unshift(new TrafficKey(createAead(this.suite, receiveKey), receiveFrom, now));
    } finally {
      destroyAll(sendKey, receiveKey);
    }
    this.#master.destroy();
    this.#master = newMaster;
    this.stats.rekeys++;
    this.#switchSendKeyIfDue();
  }

  /** Cleanses every key. Safe to call twice. */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#send.ctx.destroy();
    for (const k of this.#scheduledSend) k.ctx.destroy();
    for (const k of this.#receiveKeys) k.ctx.destroy();
    this.#pendingRekey?.keyPair.destroy();
    this.#master.destroy();
  }

  #assertLive(): void {
    if (this.#destroyed) throw qtError(ErrorCode.TUNNEL_CLOSED, 'the session is closed');
  }
}
