/**
 * Protocol v2's record layer (docs/PROTOCOL.md, "v2 records"), pure: keys by epoch, strict
 * sequence numbers, the inner content type, and the AEAD usage limits per key.
 *
 *   record = 0x30 ‖ BE32(2 + |sealed|) ‖ BE16(epoch) ‖ sealed
 *   sealed = AEAD(key[epoch], nonce = iv[epoch] XOR BE96(seq), AD = the 7 header bytes,
 *                 content ‖ inner type ‖ 0^padding)
 *
 * Every record looks the same on the wire whatever it carries (data, Ping, close_notify, a
 * KeyUpdate): the type is inside the ciphertext. The nonce is computed natively from the IV,
 * which never leaves native memory. The epoch in the header names the key, so a receiver never
 * tries two; `seq` restarts at 0 with every key and must be exactly the next one.
 */
import type { Secret } from '../../native.js';
import { ErrorCode, qtError } from '../../errors.js';
import { AEAD_SIZES, type RecordAeadContext } from '../../crypto/aead.js';
import { destroyAll } from '../../crypto/secret.js';
import { type CipherSuiteId, MAX_MESSAGE_SIZE, MAX_RECORD_PLAINTEXT } from '../constants.js';
import { cipherSuiteById } from '../suites.js';
import type { Frame, SplitFrame } from '../frame.js';
import type { OutputAllocator } from '../session.js';
import { KeySchedule } from './keySchedule.js';

/** The frame type of every v2 record. */
export const RECORD_TYPE = 0x30;
/** type ‖ BE32 length ‖ BE16 epoch: the record header, all of it the AD. */
export const RECORD_HEADER_SIZE = 7;
/** Bytes a record adds to its content: header, inner type, tag. */
export const RECORD_OVERHEAD = RECORD_HEADER_SIZE + 1 + AEAD_SIZES.tag;
/** Largest inner plaintext (content ‖ type ‖ padding): the frame payload limit less epoch and tag. */
export const MAX_INNER_PLAINTEXT = MAX_MESSAGE_SIZE - 2 - AEAD_SIZES.tag;
/** Largest content we put in one record: the same as v1's Data, so the tunnel's message size is one number. */
export const MAX_RECORD_CONTENT = MAX_RECORD_PLAINTEXT;

/** The inner content types. */
export const InnerType = Object.freeze({
  HANDSHAKE: 0x01,
  DATA: 0x02,
  PING: 0x03,
  PONG: 0x04,
  CLOSE_NOTIFY: 0x05,
  ALERT: 0x06,
  KEY_UPDATE: 0x07,
  KEY_UPDATE_ACK: 0x08,
  NEW_SESSION_TICKET: 0x09,
});
export type InnerTypeValue = (typeof InnerType)[keyof typeof InnerType];
/** Inner types are 0x01..0x09 (0 cannot be one: it is padding). */
const MAX_INNER_TYPE = InnerType.NEW_SESSION_TICKET;

/** Epochs: 1 protects the handshake, 2 the first application keys, each KeyUpdate adds one. */
export const HANDSHAKE_EPOCH = 1;
export const FIRST_APPLICATION_EPOCH = 2;
export const MAX_EPOCH = 0xffff;

/**
 * AEAD usage limits per key, enforced on both sides (a sender stops before them, a receiver
 * refuses a peer that passes them). AES-256-GCM: RFC 8446 §5.5's 2^24.5 full-size records, held
 * to 2^24 records and 2^38 bytes; ChaCha20-Poly1305 gets the same (far inside its own bounds).
 */
export const KEY_RECORD_LIMIT = 2 ** 24;
export const KEY_BYTE_LIMIT = 2 ** 38;

/** One direction's key for one epoch, and what it has protected. */
export class EpochKey {
  seq = 0;
  records = 0;
  bytes = 0;
  constructor(readonly epoch: number, readonly ctx: RecordAeadContext, readonly since: number) {}

  /** Whether `records` more records of `bytes` in total stay inside the usage limits. */
  fits(records: number, bytes: number): boolean {
    return this.records + records <= KEY_RECORD_LIMIT && this.bytes + bytes <= KEY_BYTE_LIMIT;
  }

  destroy(): void {
    this.ctx.destroy();
  }
}

/** Record key and IV of a traffic secret (RFC 8446 §7.3: "key" and "iv"), as one AEAD context. */
export function epochKey(suite: CipherSuiteId, epoch: number, trafficSecret: Secret, now: number): EpochKey {
  const spec = cipherSuiteById(suite);
  if (spec === undefined) throw qtError(ErrorCode.UNSUPPORTED_CIPHER_SUITE, 'unknown cipher suite');
  return new EpochKey(epoch, recordKeys.recordAead(trafficSecret, spec.aead), now);
}

/** Derives record keys only (a schedule holds no secrets of its own). */
const recordKeys = new KeySchedule();

/** An opened record. */
export interface OpenedRecord {
  type: InnerTypeValue;
  content: Buffer;
  epoch: number;
}

/** An opened record that spanned socket reads: its content in pieces, in order, none empty. */
export interface OpenedRecordParts {
  type: InnerTypeValue;
  parts: Buffer[];
  epoch: number;
}

function header(out: Buffer, offset: number, sealedLength: number, epoch: number): void {
  out[offset] = RECORD_TYPE;
  out.writeUInt32BE(2 + sealedLength, offset + 1);
  out.writeUInt16BE(epoch, offset + 5);
}

/** The opened record of an inner plaintext: the last non-zero byte is the type, zeros after it padding. */
function innerRecord(plaintext: Buffer, epoch: number): OpenedRecord {
  let end = plaintext.length;
  while (end > 0 && plaintext[end - 1] === 0) end--;
  if (end === 0) throw qtError(ErrorCode.UNEXPECTED_MESSAGE, 'a record without a content type');
  const type = plaintext[end - 1]!;
  if (type > MAX_INNER_TYPE) throw qtError(ErrorCode.UNEXPECTED_MESSAGE, `unknown record content type 0x${type.toString(16)}`);
  return { type: type as InnerTypeValue, content: plaintext.subarray(0, end - 1), epoch };
}

/**
 * {@link innerRecord} over a plaintext of `length` bytes lying at the start of `parts`, in order:
 * the content as views of the parts (no copy), empty pieces left out.
 */
function innerRecordParts(parts: readonly Buffer[], length: number, epoch: number): OpenedRecordParts {
  // The plaintext's pieces, then the content type: the last non-zero byte.
  const pieces: Buffer[] = [];
  for (let i = 0, left = length; i < parts.length && left > 0; i++) {
    const p = parts[i]!.subarray(0, left);
    pieces.push(p);
    left -= p.length;
  }
  for (let i = pieces.length - 1; i >= 0; i--) {
    const p = pieces[i]!;
    let end = p.length;
    while (end > 0 && p[end - 1] === 0) end--;
    if (end === 0) continue;
    const type = p[end - 1]!;
    if (type > MAX_INNER_TYPE) throw qtError(ErrorCode.UNEXPECTED_MESSAGE, `unknown record content type 0x${type.toString(16)}`);
    const content = pieces.slice(0, i);
    if (end > 1) content.push(p.subarray(0, end - 1));
    return { type: type as InnerTypeValue, parts: content.filter((c) => c.length > 0), epoch };
  }
  throw qtError(ErrorCode.UNEXPECTED_MESSAGE, 'a record without a content type');
}

function unexpectedFrame(type: number): Error {
  return qtError(ErrorCode.UNEXPECTED_MESSAGE, `unexpected frame type 0x${type.toString(16)} where a record belongs`);
}

const ROW = AEAD_SIZES.recordBatchRowWords;

/** Whether `b` starts right where `a` ends in the same memory. */
function follows(a: Uint8Array, b: Uint8Array): boolean {
  return a.buffer === b.buffer && a.byteOffset + a.length === b.byteOffset;
}

/**
 * The two directions of a connection. The owner installs keys by epoch: `send` is the key for
 * what we seal; `receive` the key the peer uses now and `nextReceive`, during a KeyUpdate, the
 * one it switches to (its first record under it retires the old key).
 */
export class RecordLayer {
  #send: EpochKey | undefined;
  #receive: EpochKey | undefined;
  #nextReceive: EpochKey | undefined;
  /** The batch table, grown on first use (handshake record layers never need one). */
  #table = new Uint32Array(0);
  #destroyed = false;

  constructor(readonly suite: CipherSuiteId, private readonly now: () => number = Date.now) {}

  get sendKey(): EpochKey | undefined {
    return this.#send;
  }

  get receiveKey(): EpochKey | undefined {
    return this.#receive;
  }

  get receiveSwitchPending(): boolean {
    return this.#nextReceive !== undefined;
  }

  installSend(epoch: number, trafficSecret: Secret): void {
    this.#assertLive();
    const key = epochKey(this.suite, epoch, trafficSecret, this.now());
    this.#send?.destroy();
    this.#send = key;
  }

  /** The receive key from now on (the old one is dropped at once). */
  installReceive(epoch: number, trafficSecret: Secret): void {
    this.#assertLive();
    const key = epochKey(this.suite, epoch, trafficSecret, this.now());
    destroyAll(this.#receive, this.#nextReceive);
    this.#nextReceive = undefined;
    this.#receive = key;
  }

  /** The receive key the peer switches to; records of the current epoch are accepted until it does. */
  installNextReceive(epoch: number, trafficSecret: Secret): void {
    this.#assertLive();
    const key = epochKey(this.suite, epoch, trafficSecret, this.now());
    this.#nextReceive?.destroy();
    this.#nextReceive = key;
  }

  /** Seals one record of any type. */
  seal(type: InnerTypeValue, content: Uint8Array, padding = 0): Buffer {
    const key = this.#sendKeyFor(1, content.length);
    const inner = content.length + 1 + padding;
    if (inner > MAX_INNER_PLAINTEXT) throw qtError(ErrorCode.INVALID_ARGUMENT, `a record holds at most ${MAX_INNER_PLAINTEXT} bytes`);
    const plaintext = Buffer.alloc(inner);
    plaintext.set(content, 0);
    plaintext[content.length] = type;
    const out = Buffer.allocUnsafe(RECORD_HEADER_SIZE + inner + AEAD_SIZES.tag);
    header(out, 0, inner + AEAD_SIZES.tag, key.epoch);
    key.ctx.sealRecord(out, RECORD_HEADER_SIZE, key.seq, out.subarray(0, RECORD_HEADER_SIZE), plaintext);
    key.seq++;
    key.records++;
    key.bytes += content.length;
    return out;
  }

  /**
   * Seals application data, one record per chunk (each 1..MAX_RECORD_CONTENT bytes): the headers
   * are written into the output first (the batch reads each AD from there), then one native call
   * per run of chunks that sit back to back in one buffer (a large write split into records is one
   * run) encrypts each chunk followed by the DATA type byte, without copying the plaintext.
   */
  // eslint-disable-next-line @typescript-eslint/unbound-method -- Buffer.allocUnsafe does not use `this`
  sealData(chunks: readonly Buffer[], alloc: OutputAllocator = Buffer.allocUnsafe): Buffer {
    const n = chunks.length;
    let total = 0;
    let content = 0;
    for (const c of chunks) {
      if (c.length === 0 || c.length > MAX_RECORD_CONTENT) throw qtError(ErrorCode.INVALID_ARGUMENT, `record content must be 1..${MAX_RECORD_CONTENT} bytes`);
      content += c.length;
      total += RECORD_OVERHEAD + c.length;
    }
    const key = this.#sendKeyFor(n, content);
    if (this.#table.length < n * ROW) this.#table = new Uint32Array(n * ROW * 2);
    const out = alloc(total);
    const t = this.#table;
    let o = 0;
    let runStart = 0;
    while (runStart < n) {
      let runEnd = runStart + 1;
      while (runEnd < n && follows(chunks[runEnd - 1]!, chunks[runEnd]!)) runEnd++;
      const first = chunks[runStart]!;
      const last = chunks[runEnd - 1]!;
      const src = new Uint8Array(first.buffer, first.byteOffset, last.byteOffset + last.length - first.byteOffset);
      for (let i = runStart; i < runEnd; i++) {
        const c = chunks[i]!;
        header(out, o, c.length + 1 + AEAD_SIZES.tag, key.epoch);
        const r = (i - runStart) * ROW;
        t[r] = c.byteOffset - first.byteOffset;
        t[r + 1] = c.length;
        t[r + 2] = o + RECORD_HEADER_SIZE;
        t[r + 3] = o;
        t[r + 4] = RECORD_HEADER_SIZE;
        o += RECORD_OVERHEAD + c.length;
      }
      key.ctx.sealRecordBatch(src, out, t, runEnd - runStart, key.seq, InnerType.DATA);
      key.seq += runEnd - runStart;
      runStart = runEnd;
    }
    key.records += n;
    key.bytes += content;
    return out;
  }

  #sendKeyFor(records: number, bytes: number): EpochKey {
    this.#assertLive();
    const key = this.#send;
    if (key === undefined) throw qtError(ErrorCode.INVALID_STATE, 'no send key yet');
    if (!key.fits(records, bytes)) throw qtError(ErrorCode.SEQUENCE_EXHAUSTED, 'the send key reached its usage limit before a key update');
    return key;
  }

  /** Opens one record frame; throws for anything but exactly the next record under the expected key. */
  open(frame: Frame): OpenedRecord {
    this.#assertLive();
    if (frame.type !== RECORD_TYPE) throw unexpectedFrame(frame.type);
    const payload = frame.payload;
    if (payload.length < 2 + AEAD_SIZES.tag + 1) throw qtError(ErrorCode.MALFORMED_MESSAGE, 'record too short');
    const epoch = payload.readUInt16BE(0);
    const sealed = payload.subarray(2);
    const key = this.#receiveKeyFor(epoch, sealed.length);
    // Decrypted in place: the ciphertext becomes the plaintext in the frame's own bytes. Any
    // failure (forged, replayed, dropped, reordered) shows here: the nonce is the next seq.
    key.ctx.openRecord(sealed, 0, key.seq, frame.raw.subarray(0, RECORD_HEADER_SIZE), sealed);
    this.#opened(key);
    const record = innerRecord(sealed.subarray(0, sealed.length - AEAD_SIZES.tag), epoch);
    key.bytes += record.content.length;
    return record;
  }

  /** {@link open} for a record that spans socket reads: each part is opened where it lies. */
  openParts(frame: SplitFrame): OpenedRecordParts {
    this.#assertLive();
    if (frame.type !== RECORD_TYPE) throw unexpectedFrame(frame.type);
    const head = frame.head;
    if (head.length !== RECORD_HEADER_SIZE) throw qtError(ErrorCode.INVALID_ARGUMENT, 'a split record needs its 7-byte header as head');
    let sealedLength = 0;
    for (const p of frame.parts) sealedLength += p.length;
    if (sealedLength < AEAD_SIZES.tag + 1) throw qtError(ErrorCode.MALFORMED_MESSAGE, 'record too short');
    const epoch = head.readUInt16BE(5);
    const key = this.#receiveKeyFor(epoch, sealedLength);
    const plaintextLength = key.ctx.openRecordParts(frame.parts, key.seq, head);
    this.#opened(key);
    const record = innerRecordParts(frame.parts, plaintextLength, epoch);
    for (const p of record.parts) key.bytes += p.length;
    return record;
  }

  /** The key for a record of `epoch`, if it is the current or the announced next one and has room. */
  #receiveKeyFor(epoch: number, sealedLength: number): EpochKey {
    let key = this.#receive;
    const next = this.#nextReceive;
    if (next !== undefined && epoch === next.epoch) key = next;
    if (key === undefined || epoch !== key.epoch) {
      throw qtError(ErrorCode.UNEXPECTED_MESSAGE, `a record of epoch ${epoch} where epoch ${this.#receive?.epoch ?? 'none'} was expected`);
    }
    if (!key.fits(1, sealedLength - AEAD_SIZES.tag - 1)) throw qtError(ErrorCode.SEQUENCE_EXHAUSTED, 'the peer passed its key usage limit');
    return key;
  }

  /** After a record opened under `key`: the peer's first record under a new key retires the old one. */
  #opened(key: EpochKey): void {
    if (key === this.#nextReceive) {
      this.#receive?.destroy();
      this.#receive = key;
      this.#nextReceive = undefined;
    }
    key.seq++;
    key.records++;
  }

  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    destroyAll(this.#send, this.#receive, this.#nextReceive);
    this.#send = this.#receive = this.#nextReceive = undefined;
  }

  #assertLive(): void {
    if (this.#destroyed) throw qtError(ErrorCode.TUNNEL_CLOSED, 'the record layer was destroyed');
  }
}
