/** Random bytes from the addon's DRBG (the active library context's, so FIPS mode uses the FIPS DRBG). */
import { native, type Secret } from '../native.js';
import { checkBytes, checkInteger } from './bytes.js';

// Small public random values (hello randoms, session IDs, ticket nonces) come from a pool refilled
// by one DRBG call, since each DRBG call costs microseconds. Secrets never come from here.
const POOL_SIZE = 4096;
const SMALL = 256;
let pool = Buffer.alloc(0);
let poolOffset = 0;

/** `length` fresh random bytes (public values; use {@link randomSecret} for keys). */
export function randomBytes(length: number): Buffer {
  checkInteger(length, 'length', 0, 2 ** 31 - 1);
  if (length > SMALL) return native.randomFill(Buffer.allocUnsafe(length));
  if (!native.isOperational()) {
    pool = Buffer.alloc(0); // error state: nothing more from the pool; the native call throws
    return native.randomFill(Buffer.allocUnsafe(length));
  }
  if (poolOffset + length > pool.length) {
    pool = native.randomFill(Buffer.allocUnsafe(POOL_SIZE));
    poolOffset = 0;
  }
  const out = Buffer.from(pool.subarray(poolOffset, poolOffset + length));
  pool.fill(0, poolOffset, poolOffset + length); // never hand out the same bytes twice
  poolOffset += length;
  return out;
}

/** Fills `buffer` with random bytes and returns it. */
export function randomFill<T extends Uint8Array>(buffer: T): T {
  checkBytes(buffer, 'buffer');
  return native.randomFill(buffer);
}

/** A random secret of `length` bytes that never enters the JS heap (for example a ticket key). */
export function randomSecret(length: number): Secret {
  checkInteger(length, 'length', 1, 65536);
  return native.randomSecret(length);
}

/**
 * A secret holding a copy of `bytes` (1 to 65,536), for key material the application loads, such
 * as a pre-shared key read from a file. With `wipe` (default true) the source is zero-filled
 * afterwards, so the key lives on only in native memory.
 */
export function importSecret(bytes: Uint8Array, options: { wipe?: boolean } = {}): Secret {
  checkBytes(bytes, 'bytes');
  const secret = native.importSecret(bytes);
  if (options.wipe !== false) bytes.fill(0);
  return secret;
}
