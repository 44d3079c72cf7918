/**
 * SHAKE-256 and SHA3-256 (FIPS 202): inputs may mix public bytes and Secret handles. SHA-384
 * (FIPS 180-4): public bytes only (a transcript hash).
 */
import { native, type Secret } from '../native.js';
import { invalidArgument } from '../errors.js';
import { checkInteger, isArray } from './bytes.js';
import { isSecret } from './secret.js';

/** One input to a hash: public bytes or a secret handle (absorbed natively). */
export type HashInput = Uint8Array | Secret;

/** Size of a SHA3-256 digest, from the addon. */
export const SHA3_256_SIZE = native.digestSizes.sha3_256;
/** Size of a SHA-384 digest, from the addon. */
export const SHA384_SIZE = native.digestSizes.sha384;
/** Largest output one shake256() call returns. */
export const MAX_SHAKE256_OUTPUT = native.digestSizes.maxShake256Output;

function toParts(input: HashInput | readonly HashInput[]): HashInput[] {
  const parts = isArray(input) ? [...input] : [input];
  for (const p of parts) {
    if (!(p instanceof Uint8Array) && !isSecret(p)) invalidArgument('hash inputs must be Uint8Arrays or Secrets');
  }
  return parts;
}

/** SHAKE-256 of the concatenation of `input`, `outputLength` bytes long. */
export function shake256(input: HashInput | readonly HashInput[], outputLength: number): Buffer {
  checkInteger(outputLength, 'outputLength', 0, MAX_SHAKE256_OUTPUT);
  return native.shake256(toParts(input), outputLength);
}

/** SHAKE-256 of the concatenation of `input`, squeezed into secrets of the given sizes, in order. */
export function shake256Secrets(input: HashInput | readonly HashInput[], sizes: readonly number[]): Secret[] {
  if (!isArray(sizes) || sizes.length === 0) invalidArgument('sizes must be a non-empty array');
  for (const s of sizes) checkInteger(s, 'each size', 1, MAX_SHAKE256_OUTPUT);
  return native.shake256Secrets(toParts(input), [...sizes]);
}

/** SHA3-256 of the concatenation of `input`. */
export function sha3_256(input: HashInput | readonly HashInput[]): Buffer {
  return native.sha3_256(toParts(input));
}

/** SHA-384 of the concatenation of `input`, public bytes only (e.g. a handshake transcript). */
export function sha384(input: Uint8Array | readonly Uint8Array[]): Buffer {
  const parts = isArray(input) ? [...input] : [input];
  for (const p of parts) if (!(p instanceof Uint8Array)) invalidArgument('SHA-384 inputs must be Uint8Arrays');
  return native.sha384(parts);
}

/**
 * A running SHA-384 over public bytes (a handshake transcript): each message is absorbed once,
 * and {@link Sha384Hash.digest} returns the hash of everything so far without ending it.
 */
export class Sha384Hash {
  readonly #state = new native.Sha384Hash();

  /** Absorbs `bytes`. */
  update(bytes: Uint8Array): this {
    if (!(bytes instanceof Uint8Array)) invalidArgument('SHA-384 inputs must be Uint8Arrays');
    this.#state.update(bytes);
    return this;
  }

  /** SHA-384 of everything absorbed so far (48 bytes). */
  digest(): Buffer {
    return this.#state.digest();
  }
}

/** SHA-256 of the concatenation of `input`, public bytes only (fingerprints of public keys). */
export function sha256(input: Uint8Array | readonly Uint8Array[]): Buffer {
  const parts = isArray(input) ? [...input] : [input];
  for (const p of parts) if (!(p instanceof Uint8Array)) invalidArgument('SHA-256 inputs must be Uint8Arrays');
  return native.sha256(parts);
}
