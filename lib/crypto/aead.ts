/**
 * AEAD: AES-256-GCM and ChaCha20-Poly1305 with a 12-byte nonce and a 16-byte tag. A context is
 * created once per key; seal/open write into caller buffers, and sealBatch/openBatch process many
 * records in one native call (see {@link AeadContext}). A record context ({@link RecordAeadContext})
 * also holds an IV and computes each record's nonce from its sequence number natively.
 */
import { native, type NativeAeadContext, type NativeRecordAeadContext, type Secret } from '../native.js';
import { invalidArgument } from '../errors.js';
import { checkBytes, checkInteger } from './bytes.js';
import { isSecret } from './secret.js';

/** AEAD suite identifiers; they are the protocol's cipher-suite IDs. */
export const AeadSuite = Object.freeze({
  /** AES-256-GCM, cipher suite 0x0001. */
  AES_256_GCM: native.aeadSuites.AES_256_GCM,
  /** ChaCha20-Poly1305, cipher suite 0x0002 (absent in FIPS mode). */
  CHACHA20_POLY1305: native.aeadSuites.CHACHA20_POLY1305,
});
/** One of {@link AeadSuite}. */
export type AeadSuiteId = (typeof AeadSuite)[keyof typeof AeadSuite];

/**
 * Byte sizes (key, nonce, iv, tag) and the batch tables' row widths (`batchRowWords`,
 * `recordBatchRowWords`), from the addon.
 */
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

/**
 * A keyed AEAD context that also holds a 12-byte IV natively (TLS 1.3's per-direction
 * `write_iv`): the nonce of record `seq` is `iv XOR (0x00000000 ‖ BE64(seq))` (RFC 8446 §5.3;
 * SP 800-38D §8.2.1, the IV being the fixed field and `seq` the invocation field), computed in
 * native code, so neither the IV nor any nonce reaches JavaScript. `seq` and `firstSeq` are
 * non-negative safe integers (`Number.isSafeInteger`), and a batch's last seq,
 * `firstSeq + count - 1`, must be one too. The caller owns the sequence: reusing a seq under one
 * context reuses a nonce.
 *
 * - `sealRecord(dst, off, seq, aad, plaintext)` writes ciphertext‖tag at `dst[off]`, returns its length.
 * - `openRecord(dst, off, seq, aad, sealed)` writes the plaintext, returns its length, throws
 *   ERR_QT_AUTHENTICATION_FAILED (and wipes what it wrote) when the tag does not verify.
 * - `openRecordParts(parts, seq, aad)`: the same for a record whose ciphertext‖tag lies in
 *   `parts` (1..16 disjoint Uint8Arrays, in order, as a record spanning socket reads does), each
 *   decrypted in place; returns the plaintext length (the parts' first bytes, in order).
 * - `sealRecordBatch(src, dst, table, count, firstSeq)`: row i of `table`
 *   ({@link AEAD_SIZES}.recordBatchRowWords words a row: inOffset, inLength, outOffset, aadOffset,
 *   aadLength) seals `src[inOffset..]` into `dst[outOffset..]` with seq `firstSeq + i`, reading the
 *   AD from `dst` (the record header the caller wrote there). Returns the bytes written.
 * - `openRecordBatch(src, dst, table, count, firstSeq, results)`: the same rows, AD read from `src`;
 *   `results[i]` gets the plaintext length or -1. Returns how many failed.
 *
 * One nonce discipline per key: the explicit-nonce methods of {@link AeadContext} throw
 * ERR_QT_INVALID_STATE on a record context, and the record methods do on any other context.
 * `hasIv` tells them apart.
 */
export type RecordAeadContext = NativeRecordAeadContext;

function checkSuite(suite: AeadSuiteId, key: Secret): void {
  if (suite !== AeadSuite.AES_256_GCM && suite !== AeadSuite.CHACHA20_POLY1305) invalidArgument('unknown AEAD suite');
  if (!isSecret(key)) invalidArgument('key must be a Secret handle');
}

/** Creates an AEAD context for `suite` keyed with a 32-byte secret. */
export function createAead(suite: AeadSuiteId, key: Secret): AeadContext {
  checkSuite(suite, key);
  return native.aeadCreate(suite, key);
}

/**
 * Creates a record context ({@link RecordAeadContext}) for `suite` keyed with a 32-byte secret
 * and holding a copy of the 12-byte secret `iv` (the context keeps its own copies: the handles
 * may be destroyed right after). A wrong-sized key or IV throws ERR_QT_INVALID_KEY.
 */
export function createRecordAead(suite: AeadSuiteId, key: Secret, iv: Secret): RecordAeadContext {
  checkSuite(suite, key);
  if (!isSecret(iv)) invalidArgument('iv must be a Secret handle');
  return native.aeadCreate(suite, key, iv);
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
  return openInto(sealed, (out) => ctx.open(out, 0, nonce, aad, sealed));
}

/** Convenience record seal into a new buffer: ciphertext‖tag of record `seq`. */
export function sealRecord(ctx: RecordAeadContext, seq: number, aad: Uint8Array, plaintext: Uint8Array): Buffer {
  checkInteger(seq, 'seq', 0, Number.MAX_SAFE_INTEGER);
  checkBytes(plaintext, 'plaintext');
  const out = Buffer.allocUnsafe(plaintext.length + AEAD_SIZES.tag);
  ctx.sealRecord(out, 0, seq, aad, plaintext);
  return out;
}

/** Convenience record open into a new buffer; throws ERR_QT_AUTHENTICATION_FAILED on a bad tag. */
export function openRecord(ctx: RecordAeadContext, seq: number, aad: Uint8Array, sealed: Uint8Array): Buffer {
  checkInteger(seq, 'seq', 0, Number.MAX_SAFE_INTEGER);
  return openInto(sealed, (out) => ctx.openRecord(out, 0, seq, aad, sealed));
}

/** Opens `sealed` with `openAt` into a new buffer of its plaintext's size. */
function openInto(sealed: Uint8Array, openAt: (out: Buffer) => number): Buffer {
  checkBytes(sealed, 'sealed');
  const out = Buffer.allocUnsafe(Math.max(0, sealed.length - AEAD_SIZES.tag));
  return out.subarray(0, openAt(out));
}
