/**
 * CH-KEM (docs/PROTOCOL.md §5): X25519 and ML-KEM-1024 combined with SHAKE-256, secure while
 * either half holds.
 *
 *   public key = x25519_pub(32) ‖ mlkem_ek(1568)        ciphertext = e_pub(32) ‖ mlkem_ct(1568)
 *   T = TranscriptHash(pk_x, pk_m, e_pub, ct_m)
 *   K = DeriveKeyMultiple("CH-KEM-v1-SharedSecret", [K_x, K_m, T], 32)
 *
 * K_x and K_m are Secret handles, destroyed as soon as K is derived; K is a Secret too.
 */
import type { PrivateKey, Secret } from '../native.js';
import { ErrorCode, QuantumTunnelError } from '../errors.js';
import { checkBytes } from './bytes.js';
import { deriveSecretsMultiple, transcriptHash } from './kdf.js';
import { type Encapsulation, mlkem1024 } from './mlkem.js';
import { cryptoPolicy } from './policy.js';
import { destroyAll } from './secret.js';
import * as x25519 from './x25519.js';

/** The combiner's label (§4). */
export const CHKEM_LABEL = 'CH-KEM-v1-SharedSecret';

const X = x25519.X25519_SIZES.publicKey;
const M = mlkem1024.sizes;

/** Byte sizes of CH-KEM values. */
export const CHKEM_SIZES = Object.freeze({
  /** x25519_pub ‖ mlkem_ek: 1600 bytes. */
  publicKey: X + M.publicKey,
  /** e_pub ‖ mlkem_ct: 1600 bytes. */
  ciphertext: X + M.ciphertext,
  /** K: 32 bytes. */
  sharedSecret: 32,
});

/** A CH-KEM key pair: two native private keys and the 1600-byte public key. */
export class ChKemKeyPair {
  constructor(
    /** The X25519 half's private key. */
    readonly x25519PrivateKey: PrivateKey,
    /** The ML-KEM-1024 half's decapsulation key. */
    readonly mlkemPrivateKey: PrivateKey,
    /** x25519_pub ‖ mlkem_ek (1600 bytes). */
    readonly publicKey: Buffer,
  ) {}

  /** Frees both private keys. Safe to call twice. */
  destroy(): void {
    destroyAll(this.x25519PrivateKey, this.mlkemPrivateKey);
  }

  /** True once either private key was freed. */
  get destroyed(): boolean {
    return this.x25519PrivateKey.destroyed || this.mlkemPrivateKey.destroyed;
  }
}

/** The result of encapsulation: the 1600-byte ciphertext and the 32-byte shared secret. */
export interface ChKemEncapsulation {
  /** e_pub ‖ mlkem_ct (1600 bytes), sent to the key pair's holder. */
  ciphertext: Buffer;
  /** K (32 bytes), a native handle: destroy it when done. */
  sharedSecret: Secret;
}

function pairFrom(x: x25519.X25519KeyPair, m: { privateKey: PrivateKey; publicKey: Buffer }): ChKemKeyPair {
  const pair = new ChKemKeyPair(x.privateKey, m.privateKey, Buffer.concat([x.publicKey, m.publicKey]));
  if (cryptoPolicy.checkKeyPair) {
    try {
      cryptoPolicy.checkKeyPair(pair);
    } catch (err) {
      pair.destroy();
      throw err;
    }
  }
  return pair;
}

/** A fresh CH-KEM key pair (both halves independent, from the DRBG). */
export function generateKeyPair(): ChKemKeyPair {
  return pairFrom(x25519.generateKeyPair(), mlkem1024.generateKeyPair());
}

/** generateKeyPair() with the ML-KEM key generation on the threadpool. */
export async function generateKeyPairAsync(): Promise<ChKemKeyPair> {
  const m = await mlkem1024.generateKeyPairAsync();
  return pairFrom(x25519.generateKeyPair(), m);
}

/** Builds a key pair from existing halves (deterministic vectors: an imported X25519 key, a seeded ML-KEM key). */
export function keyPairFromParts(x25519PrivateKey: PrivateKey, mlkemSeed: Uint8Array): ChKemKeyPair {
  return pairFrom(
    { privateKey: x25519PrivateKey, publicKey: x25519.publicKeyOf(x25519PrivateKey) },
    mlkem1024.generateKeyPair(mlkemSeed),
  );
}

function splitPublicKey(publicKey: Uint8Array): { pkX: Uint8Array; pkM: Uint8Array } {
  checkBytes(publicKey, 'publicKey', CHKEM_SIZES.publicKey);
  return { pkX: publicKey.subarray(0, X), pkM: publicKey.subarray(X) };
}

function splitCiphertext(ciphertext: Uint8Array): { ePub: Uint8Array; ctM: Uint8Array } {
  checkBytes(ciphertext, 'ciphertext', CHKEM_SIZES.ciphertext);
  return { ePub: ciphertext.subarray(0, X), ctM: ciphertext.subarray(X) };
}

/** The combiner: K = DeriveKeyMultiple(label, [K_x, K_m, T], 32); destroys K_x and K_m. */
function combine(kX: Secret, kM: Secret, pkX: Uint8Array, pkM: Uint8Array, ePub: Uint8Array, ctM: Uint8Array): Secret {
  try {
    const t = transcriptHash([pkX, pkM, ePub, ctM]);
    const [k] = deriveSecretsMultiple(CHKEM_LABEL, [kX, kM, t], [CHKEM_SIZES.sharedSecret]);
    return k!;
  } finally {
    destroyAll(kX, kM);
  }
}

/**
 * Encapsulation with a caller-supplied ephemeral X25519 key and ML-KEM result. The public
 * encapsulate functions and the known-answer tests (crypto.testing) both come through here.
 */
export function encapsulateWith(publicKey: Uint8Array, ephemeral: PrivateKey, mlkem: Encapsulation): ChKemEncapsulation {
  const { pkX, pkM } = splitPublicKey(publicKey);
  let kX: Secret;
  try {
    kX = x25519.deriveSharedSecret(ephemeral, pkX);
  } catch (err) {
    mlkem.sharedSecret.destroy();
    throw err;
  }
  const ePub = x25519.publicKeyOf(ephemeral);
  const sharedSecret = combine(kX, mlkem.sharedSecret, pkX, pkM, ePub, mlkem.ciphertext);
  return { ciphertext: Buffer.concat([ePub, mlkem.ciphertext]), sharedSecret };
}

function withEphemeral<T>(fn: (ephemeral: PrivateKey) => T): T {
  const { privateKey } = x25519.generateKeyPair();
  try {
    return fn(privateKey);
  } finally {
    privateKey.destroy();
  }
}

/** Encapsulates to a 1600-byte CH-KEM public key. Throws ERR_QT_INVALID_KEY for an ML-KEM key that fails the FIPS 203 check. */
export function encapsulate(publicKey: Uint8Array): ChKemEncapsulation {
  const { pkM } = splitPublicKey(publicKey);
  return withEphemeral((e) => encapsulateWith(publicKey, e, mlkem1024.encapsulate(pkM)));
}

/** encapsulate() with the ML-KEM step on the threadpool. */
export async function encapsulateAsync(publicKey: Uint8Array): Promise<ChKemEncapsulation> {
  const { pkM } = splitPublicKey(publicKey);
  const m = await mlkem1024.encapsulateAsync(pkM);
  return withEphemeral((e) => encapsulateWith(publicKey, e, m));
}

function decapsulateWith(keyPair: ChKemKeyPair, ciphertext: Uint8Array, kM: Secret): Secret {
  const { ePub, ctM } = splitCiphertext(ciphertext);
  const { pkX, pkM } = splitPublicKey(keyPair.publicKey);
  let kX: Secret;
  try {
    kX = x25519.deriveSharedSecret(keyPair.x25519PrivateKey, ePub);
  } catch (err) {
    kM.destroy();
    throw err;
  }
  return combine(kX, kM, pkX, pkM, ePub, ctM);
}

/** Decapsulates a 1600-byte CH-KEM ciphertext. Tampering yields a different secret, not an error (§5.4). */
export function decapsulate(keyPair: ChKemKeyPair, ciphertext: Uint8Array): Secret {
  const { ctM } = splitCiphertext(ciphertext);
  requireKeyPair(keyPair);
  return decapsulateWith(keyPair, ciphertext, mlkem1024.decapsulate(keyPair.mlkemPrivateKey, ctM));
}

/** decapsulate() with the ML-KEM step on the threadpool. */
export async function decapsulateAsync(keyPair: ChKemKeyPair, ciphertext: Uint8Array): Promise<Secret> {
  const { ctM } = splitCiphertext(ciphertext);
  requireKeyPair(keyPair);
  const kM = await mlkem1024.decapsulateAsync(keyPair.mlkemPrivateKey, ctM);
  return decapsulateWith(keyPair, ciphertext, kM);
}

function requireKeyPair(keyPair: ChKemKeyPair): void {
  if (!(keyPair instanceof ChKemKeyPair)) {
    throw new QuantumTunnelError('keyPair must be a ChKemKeyPair', ErrorCode.INVALID_ARGUMENT);
  }
}

/** Whether a 1600-byte CH-KEM public key parses (the ML-KEM half passes the FIPS 203 check). */
export function isValidPublicKey(publicKey: Uint8Array): boolean {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== CHKEM_SIZES.publicKey) return false;
  return mlkem1024.isValidPublicKey(publicKey.subarray(X));
}
