/** X25519 (RFC 7748): the classical half of CH-KEM. */
import { native, type PrivateKey, type Secret } from '../native.js';
import { checkBytes } from './bytes.js';
import { requireNonApprovedAllowed } from './policy.js';

/** Byte sizes, from the addon. */
export const X25519_SIZES = Object.freeze({ ...native.x25519Sizes });

/** An X25519 key pair: the native private key and its 32-byte public key. */
export interface X25519KeyPair {
  /** The private key, a native handle. */
  privateKey: PrivateKey;
  /** The public key (32 bytes). */
  publicKey: Buffer;
}

/** A fresh X25519 key pair. */
export function generateKeyPair(): X25519KeyPair {
  requireNonApprovedAllowed('X25519');
  const privateKey = native.x25519GenerateKeyPair();
  return { privateKey, publicKey: native.x25519PublicKey(privateKey) };
}

/** The public key of a private key. */
export function publicKeyOf(privateKey: PrivateKey): Buffer {
  return native.x25519PublicKey(privateKey);
}

/**
 * The shared secret with a peer's public key. Any 32 bytes are accepted as the peer key; an
 * all-zero result (a low-order point) throws ERR_QT_X25519_LOW_ORDER_POINT.
 */
export function deriveSharedSecret(privateKey: PrivateKey, peerPublicKey: Uint8Array): Secret {
  checkBytes(peerPublicKey, 'peerPublicKey', X25519_SIZES.publicKey);
  requireNonApprovedAllowed('X25519');
  return native.x25519Derive(privateKey, peerPublicKey);
}
