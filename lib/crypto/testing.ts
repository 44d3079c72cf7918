/**
 * Test-vector hooks. These move secret bytes across the JS boundary, which production code must
 * never do; they exist so known-answer tests can check secrets and import fixed keys.
 */
import { native, type PrivateKey, type Secret } from '../native.js';
import { invalidArgument } from '../errors.js';
import { checkBytes } from './bytes.js';
import { type ChKemEncapsulation, type ChKemKeyPair, encapsulateWith, keyPairFromParts } from './chkem.js';
import { type MlKem, mlkem1024 } from './mlkem.js';
import { P384_SIZES } from './p384.js';
import { X25519_SIZES } from './x25519.js';

const KIND_OF_ALGORITHM: Record<string, number> = {
  X25519: 1,
  'ML-KEM-768': native.mlkemSizes['ML-KEM-768'].id,
  'ML-KEM-1024': native.mlkemSizes['ML-KEM-1024'].id,
};

/** The bytes of a live secret. */
export function exportSecret(secret: Secret): Buffer {
  return native.exportSecretForTesting(secret);
}

/** The storage behind a secret, even after destroy() (then it must be all zeros). */
export function secretStorage(secret: Secret): Buffer {
  return native.secretStorageForTesting(secret);
}

/** A Secret holding a copy of `bytes` (vectors that start from a known master or key). */
export function secretFromBytes(bytes: Uint8Array): Secret {
  checkBytes(bytes, 'bytes');
  return native.secretFromBytesForTesting(bytes);
}

/** The raw private key: the X25519 scalar, or the ML-KEM expanded decapsulation key. */
export function exportPrivateKey(key: PrivateKey): Buffer {
  const kind = KIND_OF_ALGORITHM[key?.algorithm ?? ''];
  if (kind === undefined) invalidArgument('key must be a PrivateKey handle');
  return native.exportPrivateKeyForTesting(key, kind);
}

/** Imports a raw X25519 private scalar. */
export function x25519PrivateKeyFromBytes(bytes: Uint8Array): PrivateKey {
  checkBytes(bytes, 'bytes', X25519_SIZES.privateKey);
  return native.x25519PrivateKeyFromBytes(bytes);
}

/**
 * Imports a raw P-384 private scalar d (48 bytes, big-endian; CAVS ECC CDH `dIUT`). The addon
 * computes the public key d·G and checks the pair; d outside [1, n-1] throws ERR_QT_INVALID_KEY.
 */
export function p384PrivateKeyFromBytes(bytes: Uint8Array): PrivateKey {
  checkBytes(bytes, 'bytes', P384_SIZES.privateKey);
  return native.p384PrivateKeyFromBytes(bytes);
}

/** Imports an ML-KEM expanded decapsulation key. */
export function mlkemPrivateKeyFromBytes(kem: MlKem, bytes: Uint8Array): PrivateKey {
  checkBytes(bytes, 'bytes', kem.sizes.privateKey);
  return native.mlkemPrivateKeyFromBytes(kem.sizes.id, bytes);
}

/** A CH-KEM key pair from a fixed X25519 scalar and ML-KEM seed d‖z. */
export function chkemKeyPairFromBytes(x25519PrivateKey: Uint8Array, mlkemSeed: Uint8Array): ChKemKeyPair {
  return keyPairFromParts(x25519PrivateKeyFromBytes(x25519PrivateKey), mlkemSeed);
}

/** CH-KEM encapsulation with a fixed ephemeral X25519 scalar and ML-KEM coins m. */
export function chkemEncapsulateDeterministic(
  publicKey: Uint8Array,
  ephemeralX25519PrivateKey: Uint8Array,
  mlkemCoins: Uint8Array,
): ChKemEncapsulation {
  const ephemeral = x25519PrivateKeyFromBytes(ephemeralX25519PrivateKey);
  try {
    const m = mlkem1024.encapsulate(publicKey.subarray(X25519_SIZES.publicKey), mlkemCoins);
    return encapsulateWith(publicKey, ephemeral, m);
  } finally {
    ephemeral.destroy();
  }
}
