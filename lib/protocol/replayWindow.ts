/**
 * The receive-side replay window (shared reference PROTOCOL.md §8.4), fixing §14 #6 without
 * touching the wire:
 *
 * - checking and committing are separate, so the record layer commits a sequence number only
 *   after its AEAD tag verified; a forged record can no longer move the window;
 * - sequence numbers are bigints, so `seq + size` cannot wrap as the reference's uint64 sum does;
 * - the window is larger (REPLAY_WINDOW_SIZE, ours), kept as a WireGuard-style ring of 32-bit
 *   words: advancing clears only the words passed over, so every call is O(1) (bounded by the
 *   ring's word count).
 */
import { invalidArgument } from '../errors.js';
import { REPLAY_WINDOW_SIZE } from './constants.js';

/** What {@link ReplayWindow.check} says about a sequence number. */
export type ReplayVerdict = 'ok' | 'replay' | 'too-old';

const MAX_SEQ = (1n << 64n) - 1n;
const WORD_BITS = 32;
/** Smallest window: the reference's 64. */
const MIN_WINDOW_SIZE = 64;

function checkSeq(seq: bigint): void {
  if (typeof seq !== 'bigint' || seq < 0n || seq > MAX_SEQ) invalidArgument('seq must be a bigint from 0 to 2^64-1');
}

/**
 * A sliding window over 64-bit sequence numbers. A sequence number is accepted when it is newer
 * than every one committed so far, or when it lies in [highest − size + 1, highest] and has not
 * been committed yet.
 *
 * Usage by the record layer: `check(seq)`; if 'ok', open the record; only if the tag verified,
 * `commit(seq)`.
 */
export class ReplayWindow {
  /** Window size in sequence numbers. */
  readonly size: number;
  private readonly sizeBig: bigint;
  // One word more than the window: advancing clears whole words, and the word that holds
  // `highest` also aliases sequence numbers just below the window, never inside it (WireGuard).
  private readonly ring: Uint32Array;
  private readonly wordCount: bigint;
  private top: bigint | undefined;

  /** @param size window size: a multiple of 32, at least 64 (default {@link REPLAY_WINDOW_SIZE}). */
  constructor(size: number = REPLAY_WINDOW_SIZE) {
    if (!Number.isSafeInteger(size) || size < MIN_WINDOW_SIZE || size % WORD_BITS !== 0 || size > 2 ** 24) {
      invalidArgument(`replay window size must be a multiple of ${WORD_BITS} from ${MIN_WINDOW_SIZE} to 2^24`);
    }
    this.size = size;
    this.sizeBig = BigInt(size);
    this.ring = new Uint32Array(size / WORD_BITS + 1);
    this.wordCount = BigInt(this.ring.length);
  }

  /** The highest committed sequence number; undefined until the first commit. */
  get highest(): bigint | undefined {
    return this.top;
  }

  /** Verdict for `seq` without changing any state (so an unauthenticated record cannot). */
  check(seq: bigint): ReplayVerdict {
    checkSeq(seq);
    const top = this.top;
    if (top === undefined || seq > top) return 'ok';
    if (seq + this.sizeBig <= top) return 'too-old';
    return this.isSet(seq) ? 'replay' : 'ok';
  }

  /**
   * Marks `seq` as seen, moving the window forward when it is the new highest. Call it only for
   * a record whose tag verified. A sequence number that is too old is ignored (there is no bit
   * left for it); committing one twice is harmless.
   */
  commit(seq: bigint): void {
    checkSeq(seq);
    const top = this.top;
    if (top === undefined) {
      this.ring.fill(0);
      this.top = seq;
    } else if (seq > top) {
      this.advance(top, seq);
      this.top = seq;
    } else if (seq + this.sizeBig <= top) {
      return;
    }
    this.ring[this.wordIndex(seq)]! |= 1 << Number(seq & 31n);
  }

  /** Forgets everything, as at a rekey activation. */
  reset(): void {
    this.ring.fill(0);
    this.top = undefined;
  }

  /** Clears the words for the sequence numbers in (top, next]; a long jump clears them all. */
  private advance(top: bigint, next: bigint): void {
    const passed = (next >> 5n) - (top >> 5n);
    if (passed >= this.wordCount) {
      this.ring.fill(0);
      return;
    }
    const words = this.ring.length;
    const start = this.wordIndex(top);
    for (let i = 1; i <= Number(passed); i++) this.ring[(start + i) % words] = 0;
  }

  private wordIndex(seq: bigint): number {
    return Number((seq >> 5n) % this.wordCount);
  }

  private isSet(seq: bigint): boolean {
    return (this.ring[this.wordIndex(seq)]! & (1 << Number(seq & 31n))) !== 0;
  }
}
