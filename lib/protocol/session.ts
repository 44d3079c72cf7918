/**
 * The record layer and rekey of an established session (PROTOCOL.md §8, §9), pure: it turns
 * plaintext into Data/Rekey frames and received frames back into plaintext, and owns the keys,
 * sequence numbers, nonce counters, replay window and the rekey ratchet. No sockets, no timers.
 *
 * Record: 10|11 ‖ BE32(8 + A) ‖ BE64(seq) ‖ nonce(12) ‖ ciphertext ‖ tag(16); AD = BE64(seq);
 * nonce = 0^4 ‖ BE64(per-key counter).
 *
 * Fixes that keep the wire:
 * - the replay window is checked before and committed only after the tag verifies (§14 #6), is
 *   8,192 wide and is not reset on rekey (sequence numbers never repeat);
 * - rekey: both sides switch their send key right after the exchange and jump their sequence
 *   number to the activation value, so every record after the exchange is new-key and every one
 *   before it old-key; receivers keep the previous key until the first record under the new one
 *   authenticates, and the initiator holds back any record that would reach the activation
 *   sequence number before it has the new key. No record is sealed under a key the peer cannot
 *   open yet (§14 #7);
 * - counters that trigger a rekey reset when the new keys take over;
 * - an empty Data record is accepted; we never send one (a v1 peer cannot open it, §8.1).
 */
import type { Secret } from '../native.js';
import { ErrorCode, qtError } from '../errors.js';
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
  REKEY_RECORDS_THRESHOLD,
  SEQ_SIZE,
  TAG_SIZE,
} from './constants.js';
import type { Frame } from './frame.js';
import type { HandshakeResult } from './handshake.js';
import { deriveRekeyMaster, deriveTrafficKeys } from './keySchedule.js';
import { decodeRekeyPayload, encodeRekeyPayload } from './messages.js';
import { ReplayWindow } from './replayWindow.js';

/** Ours: how far past the current sequence numbers the initiator puts the activation point. */
export const DEFAULT_REKEY_ACTIVATION_OFFSET = 4096n;

const SEQ_OFFSET = FRAME_HEADER_SIZE;
const NONCE_OFFSET = SEQ_OFFSET + SEQ_SIZE;
const CIPHERTEXT_OFFSET = NONCE_OFFSET + NONCE_SIZE;
const ROW = AEAD_SIZES.batchRowWords;

/** Whether `b` starts right where `a` ends in the same memory. */
function follows(a: Uint8Array, b: Uint8Array): boolean {
  return a.buffer === b.buffer && a.byteOffset + a.length === b.byteOffset;
}

/** A send key: its AEAD context and the counters that decide when it must be replaced. */
class SendKey {
  nonceCounter = 0;
  bytes = 0;
  records = 0;
  readonly since: number;
  constructor(readonly ctx: AeadContext, now: number) {
    this.since = now;
  }
}

/** A receive key, tried for records from `fromSeq` on (older keys stay until the new one proves itself). */
interface ReceiveKey {
  ctx: AeadContext;
  fromSeq: bigint;
}

/** What opening a received record produced. */
export type RecordEvent =
  | { kind: 'data'; data: Buffer; seq: bigint }
  | { kind: 'replay'; seq: bigint }
  | { kind: 'rekey-response-sent'; frame: Buffer }
  | { kind: 'rekey-complete' };

export interface SessionOptions {
  now?: () => number;
  /** Activation offset for rekey requests (the reference uses 16). */
  rekeyActivationOffset?: bigint;
  replayWindowSize?: number;
  /** Fixed rekey key pair for known-answer tests. */
  rekeyKeyPair?: () => chkem.ChKemKeyPair;
}

/** Per-direction statistics, plaintext bytes and records. */
export interface SessionStats {
  bytesSent: number;
  bytesReceived: number;
  recordsSent: number;
  recordsReceived: number;
  rekeys: number;
  replaysRejected: number;
}

export class SecureSession {
  readonly role: 'initiator' | 'responder';
  readonly suite: CipherSuiteId;
  readonly sessionId: Buffer;
  readonly resumed: boolean;
  readonly stats: SessionStats = { bytesSent: 0, bytesReceived: 0, recordsSent: 0, recordsReceived: 0, rekeys: 0, replaysRejected: 0 };

  private master: Secret;
  private send: SendKey;
  private receiveKeys: ReceiveKey[];
  private nextSendSeq = 0n;
  private highestReceivedSeq = -1n;
  private readonly window: ReplayWindow;
  private readonly now: () => number;
  private pendingRekey: { keyPair: chkem.ChKemKeyPair; activationSeq: bigint } | undefined;
  private table = new Uint32Array(ROW * 16);
  private destroyed = false;

  constructor(handshake: HandshakeResult, private readonly options: SessionOptions = {}) {
    this.role = handshake.role;
    this.suite = handshake.suite;
    this.sessionId = handshake.sessionId;
    this.resumed = handshake.resumed;
    this.now = options.now ?? Date.now;
    this.master = handshake.master;
    try {
      this.send = new SendKey(createAead(this.suite, handshake.sendKey), this.now());
      this.receiveKeys = [{ ctx: createAead(this.suite, handshake.receiveKey), fromSeq: 0n }];
    } finally {
      destroyAll(handshake.sendKey, handshake.receiveKey);
    }
    this.window = new ReplayWindow(options.replayWindowSize);
  }

  /** The current master secret (for tickets). Owned by the session. */
  get masterSecret(): Secret {
    return this.master;
  }

  get rekeyInProgress(): boolean {
    return this.pendingRekey !== undefined;
  }

  /**
   * How many more records may be sealed now. Unlimited, except for an initiator waiting for a
   * rekey response: records at or past the activation sequence number must wait for the new key.
   */
  sendBudget(): number {
    if (!this.pendingRekey) return Number.MAX_SAFE_INTEGER;
    const left = this.pendingRekey.activationSeq - this.nextSendSeq;
    return left > 0n ? Number(left) : 0;
  }

  /** Number of records `length` plaintext bytes become. */
  static recordsFor(length: number, maxRecord = MAX_RECORD_PLAINTEXT): number {
    return Math.ceil(length / maxRecord);
  }

  /**
   * Seals plaintext chunks (each 1..65,479 bytes) as consecutive records into one buffer, with one
   * native call for the whole batch.
   */
  sealRecords(type: typeof MessageType.DATA | typeof MessageType.REKEY, chunks: readonly Buffer[]): Buffer {
    this.assertLive();
    const n = chunks.length;
    if (n > this.sendBudget()) throw qtError(ErrorCode.INVALID_STATE, 'records would pass the rekey activation point');
    if (this.send.nonceCounter + n > NONCE_LIMIT) throw qtError(ErrorCode.NONCE_EXHAUSTED, 'the send key has used all its nonces');
    let total = 0;
    for (const c of chunks) {
      if (c.length === 0 || c.length > MAX_RECORD_PLAINTEXT) throw qtError(ErrorCode.INVALID_ARGUMENT, 'record plaintext must be 1..65479 bytes');
      total += RECORD_OVERHEAD + c.length;
    }
    if (this.table.length < n * ROW) this.table = new Uint32Array(n * ROW * 2);
    const out = Buffer.allocUnsafe(total);
    // One native call per run of pieces that sit back to back in one buffer (a large write split
    // into records is one run), so no plaintext is copied before encryption.
    let o = 0;
    let s = 0;
    let runStart = 0;
    while (runStart < n) {
      let runEnd = runStart + 1;
      while (runEnd < n && follows(chunks[runEnd - 1]!, chunks[runEnd]!)) runEnd++;
      const first = chunks[runStart]!;
      const src = new Uint8Array(first.buffer, first.byteOffset, chunks[runEnd - 1]!.byteOffset + chunks[runEnd - 1]!.length - first.byteOffset);
      let srcOffset = 0;
      for (let i = runStart; i < runEnd; i++) {
        const len = chunks[i]!.length;
        out[o] = type;
        out.writeUInt32BE(SEQ_SIZE + AEAD_OVERHEAD + len, o + 1);
        out.writeBigUInt64BE(this.nextSendSeq++, o + SEQ_OFFSET);
        // nonce = 0^4 ‖ BE64(counter); the counter stays below 2^28, so its high word is 0.
        out.writeUInt32BE(0, o + NONCE_OFFSET);
        out.writeUInt32BE(0, o + NONCE_OFFSET + 4);
        out.writeUInt32BE(this.send.nonceCounter++, o + NONCE_OFFSET + 8);
        // The batch row, written in place (no array or BigInt allocated per record).
        const r = (i - runStart) * ROW;
        const t = this.table;
        t[r] = srcOffset;
        t[r + 1] = len;
        t[r + 2] = o + CIPHERTEXT_OFFSET;
        t[r + 3] = o + NONCE_OFFSET;
        t[r + 4] = o + SEQ_OFFSET;
        t[r + 5] = SEQ_SIZE;
        srcOffset += len;
        s += len;
        o += RECORD_OVERHEAD + len;
      }
      this.send.ctx.sealBatch(src, out, this.table, runEnd - runStart);
      runStart = runEnd;
    }
    this.send.records += n;
    this.send.bytes += s;
    this.stats.recordsSent += n;
    if (type === MessageType.DATA) this.stats.bytesSent += s;
    return out;
  }

  /** Whether the initiator should rekey now (§9.1 triggers; ours reset on every activation). */
  needsRekey(): boolean {
    if (this.role !== 'initiator' || this.pendingRekey || this.destroyed) return false;
    const k = this.send;
    return k.nonceCounter >= REKEY_NONCE_THRESHOLD || k.bytes >= REKEY_BYTES_THRESHOLD ||
      k.records >= REKEY_RECORDS_THRESHOLD || this.now() - k.since >= REKEY_INTERVAL_MS;
  }

  /** Initiator: the Rekey request frame (§9.2). */
  startRekey(): Buffer {
    this.assertLive();
    if (this.role !== 'initiator') throw qtError(ErrorCode.INVALID_STATE, 'in protocol v1 only the initiator starts a rekey');
    if (this.pendingRekey) throw qtError(ErrorCode.INVALID_STATE, 'a rekey is already in progress');
    const keyPair = this.options.rekeyKeyPair ? this.options.rekeyKeyPair() : chkem.generateKeyPair();
    const offset = this.options.rekeyActivationOffset ?? DEFAULT_REKEY_ACTIVATION_OFFSET;
    // Past what either side has used, so the peer's own counter has not reached it yet.
    const base = this.nextSendSeq > this.highestReceivedSeq ? this.nextSendSeq : this.highestReceivedSeq + 1n;
    const activationSeq = base + offset;
    const frame = this.sealRecords(MessageType.REKEY, [encodeRekeyPayload(keyPair.publicKey, activationSeq)]);
    this.pendingRekey = { keyPair, activationSeq };
    return frame;
  }

  /**
   * Opens one Data or Rekey frame. Returns the event it produced; throws ERR_QT_AUTHENTICATION_FAILED
   * when no key opens it (fatal for the tunnel), ERR_QT_MALFORMED_MESSAGE for a short record.
   */
  openRecord(frame: Frame): RecordEvent {
    this.assertLive();
    const p = frame.payload;
    if (p.length < SEQ_SIZE + AEAD_OVERHEAD) throw qtError(ErrorCode.MALFORMED_MESSAGE, 'record shorter than its overhead');
    const seq = p.readBigUInt64BE(0);
    if (this.window.check(seq) !== 'ok') {
      this.stats.replaysRejected++;
      return { kind: 'replay', seq };
    }
    // Decrypt in place: the ciphertext becomes the plaintext in the frame's own bytes.
    const nonce = p.subarray(SEQ_SIZE, SEQ_SIZE + NONCE_SIZE);
    const sealed = p.subarray(SEQ_SIZE + NONCE_SIZE);
    const plaintext = this.openWithReceiveKeys(seq, p.subarray(0, SEQ_SIZE), nonce, sealed);
    this.window.commit(seq);
    if (seq > this.highestReceivedSeq) this.highestReceivedSeq = seq;
    this.stats.recordsReceived++;
    if (frame.type === MessageType.DATA) {
      this.stats.bytesReceived += plaintext.length;
      return { kind: 'data', data: plaintext, seq };
    }
    return this.onRekeyRecord(plaintext);
  }

  private openWithReceiveKeys(seq: bigint, aad: Buffer, nonce: Buffer, sealed: Buffer): Buffer {
    // Try the newest key this seq may use first, then the others (a v1 peer's switch point can differ).
    const keys = this.receiveKeys;
    const first = keys.findIndex((k) => seq >= k.fromSeq);
    const order = first <= 0 ? keys.map((_, i) => i) : [first, ...keys.map((_, i) => i).filter((i) => i !== first)];
    const body = sealed.length - TAG_SIZE;
    const original = order.length > 1 ? Buffer.from(sealed) : undefined;
    for (const i of order) {
      if (original) original.copy(sealed);
      try {
        keys[i]!.ctx.open(sealed, 0, nonce, aad, sealed);
        // The peer has switched to key i: older keys will never be needed again.
        for (const old of keys.splice(i + 1)) old.ctx.destroy();
        return sealed.subarray(0, body);
      } catch {
        /* try the next key */
      }
    }
    throw qtError(ErrorCode.AUTHENTICATION_FAILED, 'record did not authenticate');
  }

  private onRekeyRecord(plaintext: Buffer): RecordEvent {
    const { key, activationSeq } = decodeRekeyPayload(plaintext);
    if (this.role === 'responder') return this.answerRekey(key, activationSeq);
    if (!this.pendingRekey) throw qtError(ErrorCode.UNEXPECTED_MESSAGE, 'rekey response without a request');
    const { keyPair } = this.pendingRekey;
    const fresh = chkem.decapsulate(keyPair, key);
    keyPair.destroy();
    this.activate(fresh, this.pendingRekey.activationSeq);
    this.pendingRekey = undefined;
    return { kind: 'rekey-complete' };
  }

  /** Responder: encapsulate to the new key, answer under the current key, then switch (§9.3). */
  private answerRekey(publicKey: Buffer, activationSeq: bigint): RecordEvent {
    let enc: chkem.ChKemEncapsulation;
    try {
      enc = chkem.encapsulate(publicKey);
    } catch (err) {
      throw qtError(ErrorCode.REKEY_FAILED, 'peer sent an invalid rekey public key', { cause: err });
    }
    const response = this.sealRecords(MessageType.REKEY, [encodeRekeyPayload(enc.ciphertext, activationSeq)]);
    this.activate(enc.sharedSecret, activationSeq);
    return { kind: 'rekey-response-sent', frame: response };
  }

  /** Ratchets the master and installs the new keys; our next record is past the activation point. */
  private activate(fresh: Secret, activationSeq: bigint): void {
    const newMaster = deriveRekeyMaster(this.master, fresh);
    fresh.destroy();
    const t = deriveTrafficKeys(newMaster);
    const [sendKey, receiveKey] = this.role === 'initiator'
      ? [t.initiatorToResponder, t.responderToInitiator]
      : [t.responderToInitiator, t.initiatorToResponder];
    try {
      this.send.ctx.destroy();
      this.send = new SendKey(createAead(this.suite, sendKey), this.now());
      this.receiveKeys.unshift({ ctx: createAead(this.suite, receiveKey), fromSeq: activationSeq });
      // At most the new key and the one before it; anything older cannot be in flight any more.
      for (const old of this.receiveKeys.splice(2)) old.ctx.destroy();
    } finally {
      destroyAll(sendKey, receiveKey);
    }
    this.master.destroy();
    this.master = newMaster;
    if (this.nextSendSeq < activationSeq) this.nextSendSeq = activationSeq;
    this.stats.rekeys++;
  }

  /** Cleanses every key. Safe to call twice. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.send.ctx.destroy();
    for (const k of this.receiveKeys) k.ctx.destroy();
    this.pendingRekey?.keyPair.destroy();
    this.master.destroy();
  }

  private assertLive(): void {
    if (this.destroyed) throw qtError(ErrorCode.TUNNEL_CLOSED, 'the session is closed');
  }
}
