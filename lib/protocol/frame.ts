/**
 * Framing (PROTOCOL.md §6): plaintext frames `type(1) ‖ BE32(length) ‖ payload` and, for the two
 * Finished messages only, encrypted handshake records `BE32(length) ‖ sealed`. FrameReader turns a
 * byte stream into frames; the caller says which of the two forms comes next.
 */
import { ErrorCode, qtError } from '../errors.js';
import { FRAME_HEADER_SIZE, HANDSHAKE_RECORD_HEADER_SIZE, MAX_MESSAGE_SIZE } from './constants.js';

/** One plaintext frame. `raw` is header ‖ payload (the handshake transcript uses whole frames). */
export interface Frame {
  type: number;
  payload: Buffer;
  raw: Buffer;
}

/**
 * A frame whose payload spans socket reads, handed over without gathering it: `head` is a copy
 * of the frame header and the payload's first `splitAt` bytes (see {@link FrameReader.nextFrame}),
 * `parts` views of the rest of the payload, in order, in the reads' own buffers.
 */
export interface SplitFrame {
  type: number;
  head: Buffer;
  parts: Buffer[];
}

/** Payloads spanning reads are split only above this size (a smaller copy costs less) ... */
const MIN_SPLIT_PAYLOAD = 2048;
/** ... and over at most this many reads (openRecordParts' limit). */
const MAX_SPLIT_PARTS = 16;

/** Encodes `type ‖ BE32(payload.length) ‖ payload`. */
export function encodeFrame(type: number, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_SIZE + payload.length);
  out[0] = type;
  out.writeUInt32BE(payload.length, 1);
  out.set(payload, FRAME_HEADER_SIZE);
  return out;
}

/** Encodes an encrypted handshake record: `BE32(sealed.length) ‖ sealed`. */
export function encodeHandshakeRecord(sealed: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(HANDSHAKE_RECORD_HEADER_SIZE + sealed.length);
  out.writeUInt32BE(sealed.length, 0);
  out.set(sealed, HANDSHAKE_RECORD_HEADER_SIZE);
  return out;
}

/**
 * Incremental reader over a byte stream. Lengths above 65,536 are refused from the header alone,
 * before any payload is buffered, so a peer cannot make us hold more than one frame's worth.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private length = 0;

  /** Bytes buffered and not yet returned as frames. */
  get buffered(): number {
    return this.length;
  }

  /** The next byte without consuming it (callers check `buffered` first). */
  firstByte(): number | undefined {
    return this.chunks[0]?.[0];
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  /**
   * The next complete plaintext frame, or null if more bytes are needed. Throws on a length over
   * the limit. With `splitAt`, a large frame that spans reads comes as a {@link SplitFrame} whose
   * head holds the payload's first `splitAt` bytes (the record header a v2 record authenticates).
   */
  nextFrame(): Frame | null;
  nextFrame(splitAt: number | undefined): Frame | SplitFrame | null;
  nextFrame(splitAt?: number): Frame | SplitFrame | null {
    if (this.length < FRAME_HEADER_SIZE) return null;
    const header = this.peek(FRAME_HEADER_SIZE);
    const payloadLength = header.readUInt32BE(1);
    if (payloadLength > MAX_MESSAGE_SIZE) {
      throw qtError(ErrorCode.MESSAGE_TOO_LARGE, 'frame length exceeds 65536 bytes');
    }
    const size = FRAME_HEADER_SIZE + payloadLength;
    if (this.length < size) return null;
    if (splitAt !== undefined && this.chunks[0]!.length < size && payloadLength - splitAt >= MIN_SPLIT_PAYLOAD) {
      const headSize = FRAME_HEADER_SIZE + splitAt;
      if (this.#readsSpanned(headSize, size) <= MAX_SPLIT_PARTS) {
        const head = this.take(headSize);
        return { type: head[0]!, head, parts: this.#takeViews(size - headSize) };
      }
    }
    const raw = this.take(size);
    return { type: raw[0]!, payload: raw.subarray(FRAME_HEADER_SIZE), raw };
  }

  /** How many buffered reads bytes [from, to) of the buffer lie in. */
  #readsSpanned(from: number, to: number): number {
    let start = 0;
    let count = 0;
    for (const chunk of this.chunks) {
      const end = start + chunk.length;
      if (end > from) count++;
      if (end >= to) break;
      start = end;
    }
    return count;
  }

  /** Consumes n bytes as views of the reads they lie in (no copy). */
  #takeViews(n: number): Buffer[] {
    const views: Buffer[] = [];
    this.length -= n;
    while (n > 0) {
      const chunk = this.chunks[0]!;
      if (chunk.length <= n) {
        views.push(chunk);
        this.chunks.shift();
        n -= chunk.length;
      } else {
        views.push(chunk.subarray(0, n));
        this.chunks[0] = chunk.subarray(n);
        n = 0;
      }
    }
    return views;
  }

  /** The next encrypted handshake record's sealed bytes, or null if more bytes are needed. */
  nextHandshakeRecord(): Buffer | null {
    if (this.length < HANDSHAKE_RECORD_HEADER_SIZE) return null;
    const sealedLength = this.peek(HANDSHAKE_RECORD_HEADER_SIZE).readUInt32BE(0);
    if (sealedLength > MAX_MESSAGE_SIZE) {
      // An Alert or other frame here reads as a huge length (§7.9); refused the same way.
      throw qtError(ErrorCode.MESSAGE_TOO_LARGE, 'handshake record length exceeds 65536 bytes');
    }
    if (this.length < HANDSHAKE_RECORD_HEADER_SIZE + sealedLength) return null;
    return this.take(HANDSHAKE_RECORD_HEADER_SIZE + sealedLength).subarray(HANDSHAKE_RECORD_HEADER_SIZE);
  }

  /** Everything still buffered (used when a handshake hands the stream over to the record layer). */
  drain(): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.length);
    this.chunks = [];
    this.length = 0;
    return all;
  }

  /** The first n bytes without consuming them (copies only when they span chunks). */
  private peek(n: number): Buffer {
    const first = this.chunks[0]!;
    return first.length >= n ? first.subarray(0, n) : this.gather(n, false);
  }

  /** Consumes n bytes: a view of the first chunk when it holds them all, else one copy of exactly n bytes. */
  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length < n) return this.gather(n, true);
    if (first.length === n) this.chunks.shift();
    else this.chunks[0] = first.subarray(n);
    this.length -= n;
    return first.subarray(0, n);
  }

  private gather(n: number, consume: boolean): Buffer {
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    let i = 0;
    while (filled < n) {
      const chunk = this.chunks[i]!;
      const used = Math.min(chunk.length, n - filled);
      chunk.copy(out, filled, 0, used);
      filled += used;
      if (consume && used < chunk.length) this.chunks[i] = chunk.subarray(used);
      else i++;
    }
    if (consume) {
      this.chunks.splice(0, i); // chunks fully copied; a partly used one was trimmed in place
      this.length -= n;
    }
    return out;
  }
}
