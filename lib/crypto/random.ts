/** Random bytes from the addon's DRBG (the active library context's, so FIPS mode uses the FIPS DRBG). */
import { native, type Secret } from '../native.js';
import { checkBytes, checkInteger } from './bytes.js';

/** `length` fresh random bytes. */
export function randomBytes(length: number): Buffer {
  checkInteger(length, 'length', 0, 2 ** 31 - 1);
  return native.randomFill(Buffer.allocUnsafe(length));
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
