/**
 * HKDF (RFC 5869) and HMAC (FIPS 198-1) with SHA-256 or SHA-384: the primitives of a TLS 1.3-like
 * key schedule. In FIPS mode they run in the FIPS provider (HKDF as the SP 800-56C rev. 2 two-step
 * KDF; HMAC). Keys go in and derived keys come out as {@link Secret} handles: HKDF never returns
 * bytes, and only a MAC (public by design, e.g. a Finished verify_data) does.
 *
 * SHA-256 is here so that RFC 5869's own vectors can test the construction; the protocol uses
 * SHA-384.
 */
import { native, type NativeRecordAeadContext, type Secret } from '../native.js';
import { invalidArgument } from '../errors.js';
import { checkBytes, checkInteger, isArray } from './bytes.js';
import { isSecret } from './secret.js';

/** The hash functions HKDF and HMAC take, as the addon numbers them. */
export const HkdfDigest = Object.freeze({
  /** SHA-256 (HashLen 32). */
  SHA256: native.hkdfDigests.SHA256,
  /** SHA-384 (HashLen 48), protocol v2's hash. */
  SHA384: native.hkdfDigests.SHA384,
});
/** One of {@link HkdfDigest}. */
export type HkdfDigestId = (typeof HkdfDigest)[keyof typeof HkdfDigest];

/** HashLen of each digest in bytes (32 and 48), from the addon. */
export const HASH_LENGTH: Readonly<Record<keyof typeof HkdfDigest, number>> = Object.freeze({ ...native.hkdfSizes.hashLength });
/** Longest `info` {@link expand} takes (OpenSSL's HKDF limit). */
export const MAX_INFO_LENGTH = native.hkdfSizes.maxInfo;
/** Longest salt, and longest IKM (all parts together), {@link extract} takes. */
export const MAX_KEY_INPUT_LENGTH = native.hkdfSizes.maxKeyInput;

/** HashLen of `digest` in bytes; throws ERR_QT_INVALID_ARGUMENT for anything else. */
export function hashLength(digest: HkdfDigestId): number {
  if (digest === HkdfDigest.SHA256) return HASH_LENGTH.SHA256;
  if (digest === HkdfDigest.SHA384) return HASH_LENGTH.SHA384;
  return invalidArgument('digest must be one of HkdfDigest (SHA256, SHA384)');
}

/** Longest output of {@link expand} for `digest`: 255 · HashLen (RFC 5869 §2.3). */
export function maxExpandLength(digest: HkdfDigestId): number {
  return native.hkdfSizes.maxExpandBlocks * hashLength(digest);
}

function checkKeyInput(value: unknown, name: string): void {
  if (!(value instanceof Uint8Array) && !isSecret(value)) invalidArgument(`${name} must be a Uint8Array or a Secret handle`);
  if (value.length > MAX_KEY_INPUT_LENGTH) invalidArgument(`${name} must be at most ${MAX_KEY_INPUT_LENGTH} bytes`);
}

function checkSecret(value: unknown, name: string): asserts value is Secret {
  if (!isSecret(value)) invalidArgument(`${name} must be a Secret handle`);
}

function publicParts(parts: readonly Uint8Array[]): Uint8Array[] {
  if (!isArray(parts)) invalidArgument('parts must be an array');
  const copy = [...parts];
  for (const p of copy) if (!(p instanceof Uint8Array)) invalidArgument('each part must be a Uint8Array');
  return copy;
}

/**
 * HKDF-Extract(salt, IKM) → PRK, a HashLen-byte secret. The IKM is the concatenation of `ikm`,
 * byte arrays and secret handles, joined natively (a hybrid shared secret is two secrets and
 * public context). `salt` null means HashLen zero bytes (RFC 5869 §2.2); an empty salt is the
 * same HMAC key.
 */
export function extract(digest: HkdfDigestId, salt: Uint8Array | Secret | null, ikm: ReadonlyArray<Uint8Array | Secret>): Secret {
  hashLength(digest);
  if (salt !== null) checkKeyInput(salt, 'salt');
  return native.hkdfExtract(digest, salt, ikmParts(ikm));
}

function ikmParts(ikm: ReadonlyArray<Uint8Array | Secret>): Array<Uint8Array | Secret> {
  if (!isArray(ikm)) invalidArgument('ikm must be an array of Uint8Arrays and Secret handles');
  const parts = [...ikm];
  let total = 0;
  for (const p of parts) {
    checkKeyInput(p, 'each IKM part');
    total += p.length;
  }
  if (total > MAX_KEY_INPUT_LENGTH) invalidArgument(`the IKM must be at most ${MAX_KEY_INPUT_LENGTH} bytes`);
  return parts;
}

function checkInfo(info: Uint8Array, name: string): void {
  checkBytes(info, name);
  if (info.length > MAX_INFO_LENGTH) invalidArgument(`${name} must be at most ${MAX_INFO_LENGTH} bytes`);
}

/**
 * HKDF-Extract(HKDF-Expand(salt, saltInfo, HashLen), IKM) in one native call, the expanded salt
 * never a handle: TLS 1.3's `Derive-Secret(previous, "derived", "")` followed by the next
 * extract, with `saltInfo` that Derive-Secret's encoded HkdfLabel.
 */
export function extractWithDerivedSalt(digest: HkdfDigestId, salt: Secret, saltInfo: Uint8Array, ikm: ReadonlyArray<Uint8Array | Secret>): Secret {
  hashLength(digest);
  checkSecret(salt, 'salt');
  checkInfo(saltInfo, 'saltInfo');
  return native.hkdfExtract(digest, salt, ikmParts(ikm), saltInfo);
}

/** HKDF(salt, IKM, info, L) = Expand(Extract(salt, IKM), info, L) in one call, the PRK never a handle. */
export function hkdf(digest: HkdfDigestId, salt: Uint8Array | Secret | null, ikm: ReadonlyArray<Uint8Array | Secret>, info: Uint8Array, length: number): Secret {
  checkInteger(length, 'length', 1, maxExpandLength(digest));
  if (salt !== null) checkKeyInput(salt, 'salt');
  checkInfo(info, 'info');
  return native.hkdf(digest, salt, ikmParts(ikm), info, length);
}

/**
 * HKDF-Expand(PRK, info, L) → OKM, an L-byte secret, 1 ≤ L ≤ 255 · HashLen. `prk` must hold at
 * least HashLen bytes (ERR_QT_INVALID_KEY otherwise).
 */
export function expand(digest: HkdfDigestId, prk: Secret, info: Uint8Array, length: number): Secret {
  checkInteger(length, 'length', 1, maxExpandLength(digest));
  checkSecret(prk, 'prk');
  checkInfo(info, 'info');
  return native.hkdfExpand(digest, prk, info, length);
}

/** Most outputs one {@link expandSecrets} call makes. */
export const MAX_EXPAND_OUTPUTS = native.hkdfSizes.maxExpandOutputs;

/** Several HKDF-Expand outputs of one PRK in one native call: `infos[i]` and `lengths[i]` each. */
export function expandSecrets(digest: HkdfDigestId, prk: Secret, infos: readonly Uint8Array[], lengths: readonly number[]): Secret[] {
  checkSecret(prk, 'prk');
  if (!isArray(infos) || !isArray(lengths) || infos.length !== lengths.length || infos.length < 1 || infos.length > MAX_EXPAND_OUTPUTS) {
    invalidArgument(`infos and lengths must be arrays of the same length, 1 to ${MAX_EXPAND_OUTPUTS}`);
  }
  const max = maxExpandLength(digest);
  for (const info of infos) checkInfo(info, 'each info');
  for (const length of lengths) checkInteger(length, 'each length', 1, max);
  return native.hkdfExpandSecrets(digest, prk, [...infos], [...lengths]);
}

/**
 * A record AEAD context (see crypto/aead.ts) keyed from a traffic secret in one native call:
 * key = HKDF-Expand(secret, keyInfo, 32), iv = HKDF-Expand(secret, ivInfo, 12), neither a handle.
 */
export function expandRecordAead(digest: HkdfDigestId, secret: Secret, suite: number, keyInfo: Uint8Array, ivInfo: Uint8Array): NativeRecordAeadContext {
  hashLength(digest);
  checkSecret(secret, 'secret');
  checkInfo(keyInfo, 'keyInfo');
  checkInfo(ivInfo, 'ivInfo');
  return native.hkdfExpandAead(digest, secret, suite, keyInfo, ivInfo);
}

/** HMAC(key, parts…) over the concatenation of `parts` (public bytes): HashLen bytes. */
export function hmac(digest: HkdfDigestId, key: Secret, parts: readonly Uint8Array[], keyInfo?: Uint8Array): Buffer {
  hashLength(digest);
  checkSecret(key, 'key');
  if (keyInfo !== undefined) checkInfo(keyInfo, 'keyInfo');
  return native.hmac(digest, key, publicParts(parts), keyInfo);
}

/**
 * Whether `expected` is HMAC(key, parts…), compared in constant time. Only a full HashLen tag can
 * match; any other length is false (lengths are public).
 */
export function hmacVerify(digest: HkdfDigestId, key: Secret, parts: readonly Uint8Array[], expected: Uint8Array, keyInfo?: Uint8Array): boolean {
  hashLength(digest);
  checkSecret(key, 'key');
  checkBytes(expected, 'expected');
  if (keyInfo !== undefined) checkInfo(keyInfo, 'keyInfo');
  return native.hmacVerify(digest, key, publicParts(parts), expected, keyInfo);
}
