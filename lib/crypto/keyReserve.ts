/**
 * Ephemeral private keys generated ahead of time on the libuv threadpool, so that a handshake
 * takes a ready key instead of generating one on the event loop: on a machine with a spare core
 * the next handshake's key is made while this one runs. Meant for keys that are slow to make
 * (P-384 in FIPS mode, where the provider's pairwise test at generation costs several point
 * multiplications).
 *
 * Bounded and single use: at most `size` keys wait, one refill starts only when a key is taken,
 * and a key is discarded (cleansed) instead of handed out when it has waited longer than
 * `maxAgeMs` or was made in another crypto mode (standard or FIPS) than the current one. An idle
 * process therefore holds at most `size` unused ephemeral keys, none older than `maxAgeMs` when used.
 */
import type { PrivateKey } from '../native.js';
import { cryptoPolicy } from './policy.js';

interface Held {
  key: PrivateKey;
  fips: boolean;
  madeAt: number;
}

export interface KeyReserveOptions {
  /** Keys kept ready (default 2). */
  size?: number;
  /** A key older than this is discarded when taken (default 30 s). */
  maxAgeMs?: number;
}

export class KeyReserve {
  readonly #generateAsync: () => Promise<PrivateKey>;
  readonly #size: number;
  readonly #maxAgeMs: number;
  readonly #ready: Held[] = [];
  #pending = 0;

  constructor(generateAsync: () => Promise<PrivateKey>, options: KeyReserveOptions = {}) {
    this.#generateAsync = generateAsync;
    this.#size = options.size ?? 2;
    this.#maxAgeMs = options.maxAgeMs ?? 30_000;
  }

  /** Keys ready now (for tests and status). */
  get ready(): number {
    return this.#ready.length;
  }

  /**
   * A ready key made in the current mode and fresh enough, or undefined (the caller then generates
   * one itself). Either way the reserve starts refilling.
   */
  take(): PrivateKey | undefined {
    const now = performance.now();
    let out: PrivateKey | undefined;
    while (out === undefined && this.#ready.length > 0) {
      const held = this.#ready.shift()!;
      if (held.fips === cryptoPolicy.fips && now - held.madeAt <= this.#maxAgeMs) out = held.key;
      else held.key.destroy();
    }
    this.#refill();
    return out;
  }

  /** Cleanses every ready key (keys still being made are dropped when they arrive). */
  clear(): void {
    for (const held of this.#ready.splice(0)) held.key.destroy();
  }

  #refill(): void {
    while (this.#ready.length + this.#pending < this.#size) {
      const fips = cryptoPolicy.fips;
      let job: Promise<PrivateKey>;
      try {
        job = this.#generateAsync();
      } catch {
        return; // the module refuses (error state): take() callers generate, and see the error
      }
      this.#pending++;
      job.then(
        (key) => {
          this.#pending--;
          if (fips !== cryptoPolicy.fips || this.#ready.length >= this.#size) key.destroy();
          else this.#ready.push({ key, fips, madeAt: performance.now() });
        },
        () => {
          this.#pending--; // reported by the caller's own generation, not here
        },
      );
    }
  }
}
