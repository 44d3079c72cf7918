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
import { ML_DSA_87_SIZES } from './mldsa.js';

const KIND_OF_ALGORITHM: Record<string, number> = {
  X25519: 1,
  'ML-KEM-768': native.mlkemSizes['ML-KEM-768'].id,
  'ML-KEM-1024': native.mlkemSizes['ML-KEM-1024'].id,
  'ML-DSA-87': native.mldsaSizes.id,
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

/** The raw private key: the X25519 scalar, the ML-KEM expanded decapsulation key, or the ML-DSA expanded sk. */
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

/** Imports an ML-DSA-87 expanded private key sk (4896 bytes; ACVP signature generation groups). */
export function mldsaPrivateKeyFromBytes(bytes: Uint8Array): PrivateKey {
  checkBytes(bytes, 'bytes', ML_DSA_87_SIZES.privateKey);
  return native.mldsaPrivateKeyFromBytes(bytes);
}

/**
 * The FIPS 204 interface a test signature goes through: `pure` (ML-DSA.Sign, Algorithm 2, with
 * the context string), `internal` (ML-DSA.Sign_internal over M' as given: the ACVP groups without
 * a signatureInterface field), `external-mu` (the message is μ itself, 64 bytes).
 */
export type MlDsaInterface = 'pure' | 'internal' | 'external-mu';

const ML_DSA_INTERFACES: Record<MlDsaInterface, number> = { pure: 0, internal: 1, 'external-mu': 2 };

function mldsaInterface(iface: MlDsaInterface): number {
  const n = ML_DSA_INTERFACES[iface];
  if (n === undefined) invalidArgument("interface must be 'pure', 'internal' or 'external-mu'");
  return n;
}

/** ML-DSA-87 signing with a fixed rnd (32 bytes; all zeros is the deterministic variant). */
export function mldsaSignWithRandomness(
  privateKey: PrivateKey,
  message: Uint8Array,
  rnd: Uint8Array,
  options: { interface?: MlDsaInterface; context?: Uint8Array } = {},
): Buffer {
  checkBytes(message, 'message');
  checkBytes(rnd, 'rnd', 32);
  return native.mldsaSignForTesting(privateKey, message, options.context, rnd, mldsaInterface(options.interface ?? 'pure'));
}

/** ML-DSA-87 verification through any of the three interfaces. */
export function mldsaVerifyWithInterface(
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
  options: { interface?: MlDsaInterface; context?: Uint8Array } = {},
): boolean {
  return native.mldsaVerifyForTesting(publicKey, message, signature, options.context, mldsaInterface(options.interface ?? 'pure'));
}
