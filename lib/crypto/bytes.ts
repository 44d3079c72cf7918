/** Argument checks shared by the crypto wrappers (native code checks again; these give JS-side messages). */
import { invalidArgument } from '../errors.js';

/** Throws unless `value` is a Uint8Array (a Buffer is one) of `length` bytes (any length if omitted). */
export function checkBytes(value: unknown, name: string, length?: number): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) invalidArgument(`${name} must be a Uint8Array`);
  if (length !== undefined && value.length !== length) invalidArgument(`${name} must be ${length} bytes`);
}

/** Throws unless `value` is an integer in [min, max]. */
export function checkInteger(value: unknown, name: string, min: number, max: number): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    invalidArgument(`${name} must be an integer from ${min} to ${max}`);
  }
}

/** Big-endian 32-bit length prefix, the framing every KDF input uses (PROTOCOL.md §3). */
export function be32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n, 0);
  return b;
}

/**
 * `Array.isArray` that keeps the element type: the built-in narrows a `readonly T[]` to `any[]`,
 * which would let unchecked values flow on.
 */
export function isArray(value: unknown): value is readonly unknown[] {
  return Array.isArray(value);
}
