/**
 * ECDH over NIST P-384 (secp384r1), SP 800-56A rev. 3 ECC CDH: the classical half of the hybrid
 * group P-384 + ML-KEM-1024. An approved service in FIPS mode (unlike X25519), so strict FIPS mode
 * allows it. Public keys are uncompressed SEC1 points (0x04 ‖ X ‖ Y), the only encoding accepted.
 */
import { native, type PrivateKey, type Secret } from '../native.js';
import { ErrorCode, qtError } from '../errors.js';
import { checkBytes } from './bytes.js';
import { KeyReserve } from './keyReserve.js';

/** Byte sizes, from the addon: publicKey 97 (uncompressed point), privateKey 48, sharedSecret 48. */
export const P384_SIZES = Object.freeze({ ...native.p384Sizes });

/** A P-384 key pair: the native private key and its uncompressed public point. */
export interface P384KeyPair {
  /** The private key, a native handle. */
  privateKey: PrivateKey;
  /** 0x04 ‖ X ‖ Y (97 bytes). */
  publicKey: Buffer;
}

/**
 * Key pairs made ahead on the threadpool (see keyReserve.ts): a P-384 key generation costs about
 * a millisecond here in FIPS mode, most of it the provider's pairwise test.
 * @internal
 */
export const reserve = new KeyReserve(() => native.p384GenerateKeyPairAsync());

/**
 * A fresh P-384 key pair, never used before: one made ahead on the threadpool when one is ready,
 * else generated now. In FIPS mode the provider runs its pairwise consistency test on every key
 * pair it generates; a failure puts it in its error state.
 */
export function generateKeyPair(): P384KeyPair {
  const privateKey = reserve.take() ?? native.p384GenerateKeyPair();
  return { privateKey, publicKey: native.p384PublicKey(privateKey) };
}

/** The uncompressed public point of a P-384 private key. */
export function publicKeyOf(privateKey: PrivateKey): Buffer {
  return native.p384PublicKey(privateKey);
}

/**
 * The shared secret Z (48 bytes: the x-coordinate of d·Q) with a peer's public key. The peer key
 * gets SP 800-56A rev. 3 §5.6.2.3.3 full public-key validation first; anything but an uncompressed
 * point on the curve (wrong length, compressed or hybrid encoding, coordinates ≥ p, off the curve,
 * the point at infinity) throws ERR_QT_INVALID_KEY.
 */
export function deriveSharedSecret(privateKey: PrivateKey, peerPublicKey: Uint8Array): Secret {
  checkBytes(peerPublicKey, 'peerPublicKey');
  if (peerPublicKey.length !== P384_SIZES.publicKey) {
    const want = P384_SIZES.publicKey;
    throw qtError(ErrorCode.INVALID_KEY, `P-384 peer public key must be an uncompressed point of ${want} bytes`);
  }
  return native.p384Derive(privateKey, peerPublicKey);
}
