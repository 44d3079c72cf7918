/**
 * The anti-replay store of protocol v2 (docs/PROTOCOL.md §7, §10):
 * where single-use resumption tickets are recorded once redeemed, behind an interface so that
 * several servers sharing a ticket key can share one store (Redis, memcached, a database) and a
 * ticket redeemed at one of them is refused at all the others.
 *
 * The default, {@link MemoryAntiReplayStore}, serves one process. It is bounded: when it is full
 * of entries that have not expired, it refuses (fails closed). A refused resumption costs a full
 * handshake, never a connection, so failing closed is always safe.
 */
import { invalidArgument } from '../errors.js';
import { checkInteger } from '../crypto/bytes.js';
import { sha384 } from '../crypto/hash.js';

/**
 * A set of used keys with expiry, shared by every server that must refuse the same replays.
 * Implementations must make {@link consume} a single atomic check-and-set: two servers consuming
 * the same key at the same moment must not both get true.
 */
export interface AntiReplayStore {
  /**
   * Atomically records `key` as used until `expiresAtMs` (milliseconds since the Unix epoch).
   * Resolves true if the key was not recorded (or its record had expired), false if it was already
   * used, or if the store cannot record it (full): a caller treats false as "refuse". Must be
   * check-and-set in one step, e.g. Redis `SET key 1 NX PXAT expiresAtMs`.
   */
  consume(key: Buffer, expiresAtMs: number): Promise<boolean>;
}

/** Options of a {@link MemoryAntiReplayStore}. */
export interface MemoryAntiReplayStoreOptions {
  /** Most keys held at once; default 100,000 (`DEFAULT_ANTI_REPLAY_CAPACITY`). */
  capacity?: number;
  /** Clock in milliseconds since the epoch, for tests; default Date.now. */
  now?: () => number;
}

/** Default capacity of a {@link MemoryAntiReplayStore}. */
export const DEFAULT_ANTI_REPLAY_CAPACITY = 100_000;
/** Largest capacity: a JS Map holds at most about 2^24 entries. */
export const MAX_ANTI_REPLAY_CAPACITY = 2 ** 24;
/** Keys up to this length are held as hex; longer ones as their SHA-384, so an entry stays small. */
const MAX_RAW_KEY = 32;
/** A full sweep for expired entries runs at most this often (ms), so a full store costs O(1) a call. */
const SWEEP_INTERVAL_MS = 1000;

/**
 * An {@link AntiReplayStore} in this process's memory: a Map from key to expiry.
 *
 * Entries are usually added in order of expiry (a ticket issuer's lifetime is fixed), so expired
 * ones are pruned from the front at O(1) amortised cost; when the store is full, a sweep of all
 * entries runs at most once a second. If it is still full, {@link consume} resolves false and
 * records nothing: the store never grows past its capacity.
 */
export class MemoryAntiReplayStore implements AntiReplayStore {
  readonly #entries = new Map<string, number>();
  readonly #capacity: number;
  readonly #now: () => number;
  #lastSweep = Number.NEGATIVE_INFINITY;

  constructor(options: MemoryAntiReplayStoreOptions = {}) {
    const { capacity = DEFAULT_ANTI_REPLAY_CAPACITY, now = Date.now } = options;
    checkInteger(capacity, 'capacity', 1, MAX_ANTI_REPLAY_CAPACITY);
    if (typeof now !== 'function') invalidArgument('now must be a function');
    this.#capacity = capacity;
    this.#now = now;
  }

  /** How many keys are recorded (expired ones included until they are pruned). */
  get size(): number {
    return this.#entries.size;
  }

  /** The maximum number of keys. */
  get capacity(): number {
    return this.#capacity;
  }

  /**
   * See {@link AntiReplayStore.consume}. A key whose `expiresAtMs` has already passed is not
   * recorded (it could not be refused later anyway) and resolves true. Rejects with
   * ERR_QT_INVALID_ARGUMENT for a key that is not a Uint8Array or a non-finite expiry.
   */
  async consume(key: Buffer, expiresAtMs: number): Promise<boolean> {
    if (!(key instanceof Uint8Array)) invalidArgument('key must be a Uint8Array');
    if (typeof expiresAtMs !== 'number' || !Number.isFinite(expiresAtMs)) invalidArgument('expiresAtMs must be a finite number');
    const now = this.#now();
    const id = key.length <= MAX_RAW_KEY ? Buffer.from(key).toString('hex') : `h${sha384(key).toString('hex')}`;
    this.#pruneFront(now);
    const until = this.#entries.get(id);
    if (until !== undefined) {
      if (until > now) return false;
      this.#entries.delete(id);
    }
    if (expiresAtMs <= now) return true;
    if (this.#entries.size >= this.#capacity && now - this.#lastSweep >= SWEEP_INTERVAL_MS) {
      this.#lastSweep = now;
      for (const [k, u] of this.#entries) if (u <= now) this.#entries.delete(k);
    }
    if (this.#entries.size >= this.#capacity) return false;
    this.#entries.set(id, expiresAtMs);
    return true;
  }

  /** Forgets every key. */
  clear(): void {
    this.#entries.clear();
  }

  #pruneFront(now: number): void {
    for (const [k, until] of this.#entries) {
      if (until > now) break;
      this.#entries.delete(k);
    }
  }
}
