/**
 * ML-DSA-87 (FIPS 204, security category 5): the signature scheme of public-key identities.
 * Private keys are native {@link PrivateKey} handles; public keys are 2592-byte `pk` encodings, or
 * {@link PublicKey} handles parsed once with {@link importPublicKey}. Signing is pure ML-DSA
 * (FIPS 204 Algorithm 2) with an optional context string of at most 255 bytes, hedged (fresh
 * randomness mixed in) unless `deterministic` is asked for. An approved service in FIPS mode.
 */
import { native, type MlDsaNativeSizes, type PrivateKey, type PublicKey } from '../native.js';
import { invalidArgument } from '../errors.js';
import { checkBytes } from './bytes.js';

/** Byte sizes, from the addon: publicKey 2592, privateKey 4896 (expanded sk), signature 4627, seed 32, maxContext 255. */
export const ML_DSA_87_SIZES: Readonly<MlDsaNativeSizes> = Object.freeze({ ...native.mldsaSizes });

/** A generated ML-DSA-87 key pair: the private key stays native, `publicKey` is pk. */
export interface MlDsaKeyPair {
  /** The signing key, a native handle. */
  privateKey: PrivateKey;
  /** pk (2592 bytes). */
  publicKey: Buffer;
}

/** Options of {@link sign}. */
export interface SignOptions {
  /** FIPS 204 context string ctx, 0 to 255 bytes (default empty). Verification must use the same. */
  context?: Uint8Array;
  /**
   * The deterministic variant (rnd = 0^32): the same key, message and context always give the
   * same signature. Default false (hedged), which FIPS 204 recommends; use it for test vectors or
   * where a signature must be reproducible.
   */
  deterministic?: boolean;
}

/** Options of {@link verify}. */
export interface VerifyOptions {
  /** The context string the signature was made with (default empty). */
  context?: Uint8Array;
}

const PublicKeyClass = (native as unknown as { PublicKey: new (...args: never[]) => PublicKey }).PublicKey;

function checkContext(context: unknown): Uint8Array | undefined {
  if (context === undefined) return undefined;
  checkBytes(context, 'context');
  if (context.length > ML_DSA_87_SIZES.maxContext) invalidArgument(`context must be at most ${ML_DSA_87_SIZES.maxContext} bytes`);
  return context;
}

/**
 * A fresh ML-DSA-87 key pair. With `seed` (ξ, 32 bytes) the FIPS 204 ML-DSA.KeyGen_internal(ξ)
 * key pair, for known-answer tests; never pass a seed that is not itself a fresh secret. In FIPS
 * mode the addon also signs and verifies with the new pair (a pairwise consistency test); a
 * failure puts the module in its error state.
 */
export function generateKeyPair(seed?: Uint8Array): MlDsaKeyPair {
  if (seed !== undefined) checkBytes(seed, 'seed', ML_DSA_87_SIZES.seed);
  const privateKey = native.mldsaGenerateKeyPair(seed);
  return { privateKey, publicKey: native.mldsaPublicKey(privateKey) };
}

/** The public key pk (2592 bytes) of an ML-DSA-87 private key. */
export function publicKeyOf(privateKey: PrivateKey): Buffer {
  return native.mldsaPublicKey(privateKey);
}

/** Parses pk once (throws ERR_QT_INVALID_KEY for a wrong length), for many verifications. */
export function importPublicKey(publicKey: Uint8Array): PublicKey {
  checkBytes(publicKey, 'publicKey');
  return native.mldsaImportPublicKey(publicKey);
}

/** Signs `message` (pure ML-DSA-87); returns the 4627-byte signature. */
export function sign(privateKey: PrivateKey, message: Uint8Array, options: SignOptions = {}): Buffer {
  checkBytes(message, 'message');
  const context = checkContext(options.context);
  const deterministic = options.deterministic ?? false;
  if (typeof deterministic !== 'boolean') invalidArgument('deterministic must be a boolean');
  return native.mldsaSign(privateKey, message, context, deterministic);
}

/** {@link sign} on the libuv threadpool: a signature costs milliseconds, the event loop keeps serving. */
export function signAsync(privateKey: PrivateKey, message: Uint8Array, options: SignOptions = {}): Promise<Buffer> {
  checkBytes(message, 'message');
  const context = checkContext(options.context);
  const deterministic = options.deterministic ?? false;
  if (typeof deterministic !== 'boolean') invalidArgument('deterministic must be a boolean');
  return native.mldsaSignAsync(privateKey, message, context, deterministic);
}

/** {@link verify} on the libuv threadpool. */
export function verifyAsync(publicKey: Uint8Array | PublicKey, message: Uint8Array, signature: Uint8Array, options: VerifyOptions = {}): Promise<boolean> {
  if (!(publicKey instanceof PublicKeyClass)) checkBytes(publicKey, 'publicKey');
  checkBytes(message, 'message');
  checkBytes(signature, 'signature');
  return native.mldsaVerifyAsync(publicKey, message, signature, checkContext(options.context));
}

/**
 * Whether `signature` is a valid ML-DSA-87 signature of `message` (with the same context) under
 * `publicKey` (pk bytes, or a handle from {@link importPublicKey} or a certificate). A signature
 * of the wrong length is simply invalid; a public key that does not parse throws
 * ERR_QT_INVALID_KEY.
 */
export function verify(publicKey: Uint8Array | PublicKey, message: Uint8Array, signature: Uint8Array, options: VerifyOptions = {}): boolean {
  if (!(publicKey instanceof PublicKeyClass)) checkBytes(publicKey, 'publicKey');
  checkBytes(message, 'message');
  checkBytes(signature, 'signature');
  return native.mldsaVerify(publicKey, message, signature, checkContext(options.context));
}
