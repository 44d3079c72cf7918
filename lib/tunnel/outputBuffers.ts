/**
 * Reused buffers for sealed records on their way to the socket. A fresh 64 KiB Buffer costs more
 * than sealing into it: measured here, ~50-150 µs of page faults and backing-store churn against
 * ~5 µs of AES-256-GCM for the same 64 KiB. So a write's records are sealed into a slab that
 * comes back here once the socket has written it (its write callback), and the next write reuses
 * it. Slabs hold ciphertext only. Process-wide and bounded: at most MAX_FREE idle slabs.
 */
import type { OutputAllocator } from '../protocol/session.js';

/**
 * One slab holds the records of a write of up to 64 KiB with their overhead (larger writes get a
 * buffer of their own): a write stuck behind a slow reader holds no more than before.
 */
export const SLAB_SIZE = 80 * 1024;
/** Application bytes per slab: 64 KiB of records leaves 16 KiB for their headers and tags. */
export const SLAB_CONTENT = 64 * 1024;
const MAX_FREE = 16;
const free: Buffer[] = [];

/** Idle slabs (for tests). */
export function idleSlabs(): number {
  return free.length;
}

/**
 * One write's output: `alloc` for Session.sealData, and `release`, to be called when the socket
 * has written the returned buffer (or will never write it); calls after the first do nothing.
 */
export function outputFor(): { alloc: OutputAllocator; release: () => void } {
  let slab: Buffer | undefined;
  return {
    alloc: (size) => {
      if (size > SLAB_SIZE) return Buffer.allocUnsafe(size);
      slab = free.pop() ?? Buffer.allocUnsafeSlow(SLAB_SIZE);
      return slab.subarray(0, size);
    },
    release: () => {
      if (slab !== undefined && free.length < MAX_FREE) free.push(slab);
      slab = undefined;
    },
  };
}
