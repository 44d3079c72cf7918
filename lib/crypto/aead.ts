/**
 * AEAD: AES-256-GCM and ChaCha20-Poly1305 with a 12-byte nonce and a 16-byte tag. A context is
 * created once per key; seal/open write into caller buffers, and sealBatch/openBatch process many
 * records in one native call (see {@link AeadContext}).
 */
import { native, type NativeAeadContext, type Secret } from '../native.js';
import { invalidArgument } from '../errors.js';
import { checkBytes } from './bytes.js';
import { isSecret } from './secret.js';

/** AEAD suite identifiers; they are the protocol's cipher-suite IDs. */
export const AeadSuite = Object.freeze({
  AES_256_GCM: native.aeadSuites.AES_256_GCM,
  CHACHA20_POLY1305: native.aeadSuites.CHACHA20_POLY1305,
});
export type AeadSuiteId = (typeof AeadSuite)[keyof typeof AeadSuite];

/** Byte sizes (key, nonce, tag) and the batch table's row width, from the addon. */
export const AEAD_SIZES = Object.freeze({ ...native.aeadSizes });

/**
 * A keyed AEAD context.
 *
 * - `seal(dst, off, nonce, aad, plaintext)` writes ciphertext‖tag at `dst[off]`, returns its length.
 * - `open(dst, off, nonce, aad, sealed)` writes the plaintext, returns its length, throws
 *   ERR_QT_AUTHENTICATION_FAILED (and wipes what it wrote) when the tag does not verify.
 * - `sealBatch(src, dst, table, count)`: row i of `table` (a Uint32Array, {@link AEAD_SIZES}.batchRowWords
 *   words a row: inOffset, inLength, outOffset, nonceOffset, aadOffset, aadLength) seals
 *   `src[inOffset..]` into `dst[outOffset..]`, reading the nonce and AD from `dst` (the record
 *   header the caller wrote there). Returns the bytes written.
 * - `openBatch(src, dst, table, count, results)`: the same rows, nonce and AD read from `src`;
 *   `results[i]` gets the plaintext length or -1. Returns how many failed.
 * - `sealParts(nonce, aad, parts)`: seals the concatenation of byte arrays and Secret handles
 *   (e.g. a session ticket carrying a master secret) into a new buffer.
 * - `openWithSecret(nonce, aad, sealed, off, len)`: opens natively and returns the plaintext with
 *   bytes [off, off+len) moved into a Secret (and zeroed in the returned plaintext).
 */
export type AeadContext = NativeAeadContext;

/** Creates an AEAD context for `suite` keyed with a 32-byte secret. */
export function createAead(suite: AeadSuiteId, key: Secret): AeadContext {
  if (suite !== AeadSuite.AES_256_GCM && suite !== AeadSuite.CHACHA20_POLY1305) invalidArgument('unknown AEAD suite');
  if (!isSecret(key)) invalidArgument('key must be a Secret handle');
  return native.aeadCreate(suite, key);
}

/** Convenience seal into a new buffer: ciphertext‖tag. */
export function seal(ctx: AeadContext, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Buffer {
  checkBytes(nonce, 'nonce', AEAD_SIZES.nonce);
  checkBytes(plaintext, 'plaintext');
  const out = Buffer.allocUnsafe(plaintext.length + AEAD_SIZES.tag);
  ctx.seal(out, 0, nonce, aad, plaintext);
  return out;
}

/** Convenience open into a new buffer; throws ERR_QT_AUTHENTICATION_FAILED on a bad tag. */
export function open(ctx: AeadContext, nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Buffer {
  checkBytes(nonce, 'nonce', AEAD_SIZES.nonce);
  checkBytes(sealed, 'sealed');
  const out = Buffer.allocUnsafe(Math.max(0, sealed.length - AEAD_SIZES.tag));
  const n = ctx.open(out, 0, nonce, aad, sealed);
  return out.subarray(0, n);
}
