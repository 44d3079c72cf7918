/**
 * Key files for the identity keys: private keys as PKCS#8 PEM ("PRIVATE KEY", or
 * "ENCRYPTED PRIVATE KEY" with a passphrase: PBES2 with PBKDF2-HMAC-SHA-256, a 16-byte salt and
 * AES-256-CBC, which OpenSSL reads with `openssl pkey -passin`), public keys as SPKI ("PUBLIC KEY"
 * PEM, or DER), for ML-DSA-87, ML-KEM-1024, ML-KEM-768, X25519 and P-384. Also the SHA-256
 * fingerprint of a public key's SPKI DER.
 *
 * {@link exportPrivateKeyPem} is the one sanctioned way key material leaves native memory: what a
 * key generation command writes to a file of mode 0600. Everything else keeps private keys native.
 */
import { native, type PrivateKey, type PublicKey } from '../native.js';
import { ErrorCode, invalidArgument, qtError } from '../errors.js';
import { checkBytes, checkInteger } from './bytes.js';
import { requireNonApprovedAllowed } from './policy.js';

/** The key kinds a key file may hold. */
export type KeyAlgorithm = 'ML-DSA-87' | 'ML-KEM-1024' | 'ML-KEM-768' | 'X25519' | 'P-384';

/** Default PBKDF2 iteration count for encrypted private keys (OWASP's figure for PBKDF2-HMAC-SHA-256). */
export const DEFAULT_PBKDF2_ITERATIONS = 600_000;

/** Limits, from the addon: iterations 1000 to 10,000,000 (also the most a file may ask for), a passphrase of 1 to 1024 bytes. */
export const KEY_FILE_LIMITS = Object.freeze({ ...native.keyFileLimits });

/** Options of {@link exportPrivateKeyPem}. */
export interface ExportPrivateKeyOptions {
  /**
   * Encrypts the key with this passphrase (1 to 1024 bytes). Read once and not kept: the caller
   * may zero its buffer right after the call.
   */
  passphrase?: Uint8Array;
  /** PBKDF2 iterations (default {@link DEFAULT_PBKDF2_ITERATIONS}); at least 1000. */
  iterations?: number;
}

/** Options of {@link importPrivateKeyPem}. */
export interface ImportPrivateKeyOptions {
  /** The passphrase of an encrypted file. Read once and not kept. */
  passphrase?: Uint8Array;
  /** Refuses (ERR_QT_INVALID_KEY) a key of any other algorithm. */
  algorithm?: KeyAlgorithm;
}

/** Options of {@link importPublicKey}. */
export interface ImportPublicKeyOptions {
  /** Refuses (ERR_QT_INVALID_KEY) a key of any other algorithm. */
  algorithm?: KeyAlgorithm;
}

const PrivateKeyClass = (native as unknown as { PrivateKey: new (...args: never[]) => PrivateKey }).PrivateKey;
const PublicKeyClass = (native as unknown as { PublicKey: new (...args: never[]) => PublicKey }).PublicKey;
const ALGORITHMS: readonly string[] = ['ML-DSA-87', 'ML-KEM-1024', 'ML-KEM-768', 'X25519', 'P-384'];

function checkAlgorithm(algorithm: unknown): void {
  if (algorithm !== undefined && !ALGORITHMS.includes(algorithm as string)) {
    invalidArgument(`algorithm must be one of ${ALGORITHMS.join(', ')}`);
  }
}

function checkKey(key: unknown, name: string): asserts key is PrivateKey | PublicKey {
  if (!(key instanceof PrivateKeyClass) && !(key instanceof PublicKeyClass)) invalidArgument(`${name} must be a PrivateKey or PublicKey handle`);
}

/** The key, if it is of the algorithm asked for and allowed in this mode; destroyed otherwise. */
function expectAlgorithm<K extends { algorithm: string; destroy(): void }>(key: K, algorithm: KeyAlgorithm | undefined): K {
  try {
    if (algorithm !== undefined && key.algorithm !== algorithm) {
      throw qtError(ErrorCode.INVALID_KEY, `the key file holds a ${key.algorithm} key, not ${algorithm}`);
    }
    // X25519 is not an approved service: strict FIPS mode refuses its keys here too.
    if (key.algorithm === 'X25519') requireNonApprovedAllowed('X25519');
    return key;
  } catch (e) {
    key.destroy();
    throw e;
  }
}

/** A string's bytes in a buffer the caller zeroes after use, or the bytes given. */
function pemBytes(pem: unknown, name: string): { bytes: Uint8Array; temporary: boolean } {
  if (typeof pem === 'string') return { bytes: Buffer.from(pem, 'latin1'), temporary: true };
  checkBytes(pem, name);
  return { bytes: pem, temporary: false };
}

/**
 * The private key as PKCS#8 PEM (a Buffer, so the caller can zero it once written), encrypted
 * when a passphrase is given. Write it with mode 0600. In FIPS mode the PBKDF2 and AES come from
 * the FIPS provider.
 */
export function exportPrivateKeyPem(privateKey: PrivateKey, options: ExportPrivateKeyOptions = {}): Buffer {
  const { passphrase, iterations = DEFAULT_PBKDF2_ITERATIONS } = options;
  if (passphrase !== undefined) checkBytes(passphrase, 'passphrase');
  checkInteger(iterations, 'iterations', KEY_FILE_LIMITS.minIterations, KEY_FILE_LIMITS.maxIterations);
  if (privateKey instanceof PrivateKeyClass && privateKey.algorithm === 'X25519') requireNonApprovedAllowed('X25519');
  return native.keyExportPrivatePem(privateKey, passphrase, iterations);
}

/**
 * A private key from PKCS#8 PEM (the first PEM block: "PRIVATE KEY" or "ENCRYPTED PRIVATE KEY";
 * traditional formats such as "EC PRIVATE KEY" are refused: convert them with `openssl pkey`).
 * Throws ERR_QT_BAD_PASSPHRASE for a wrong or missing passphrase, ERR_QT_INVALID_KEY for a
 * malformed or inconsistent key, ERR_QT_UNSUPPORTED_ALGORITHM for another algorithm or an
 * encryption this mode lacks. P-384 keys get a pairwise consistency check; ML-DSA and ML-KEM keys
 * stored with both their seed and expanded form are checked to agree.
 */
export function importPrivateKeyPem(pem: Uint8Array | string, options: ImportPrivateKeyOptions = {}): PrivateKey {
  const { passphrase, algorithm } = options;
  if (passphrase !== undefined) checkBytes(passphrase, 'passphrase');
  checkAlgorithm(algorithm);
  const { bytes, temporary } = pemBytes(pem, 'pem');
  try {
    return expectAlgorithm(native.keyImportPrivatePem(bytes, passphrase), algorithm);
  } finally {
    if (temporary) bytes.fill(0);
  }
}

/** The public half of a key as SPKI PEM ("PUBLIC KEY"). */
export function exportPublicKeyPem(key: PrivateKey | PublicKey): string {
  checkKey(key, 'key');
  return native.keyExportPublicPem(key);
}

/**
 * A public key handle from SPKI, as PEM ("PUBLIC KEY", the first block) or DER. P-384 keys get
 * full public-key validation, ML-KEM keys the FIPS 203 modulus check.
 */
export function importPublicKey(spki: Uint8Array | string, options: ImportPublicKeyOptions = {}): PublicKey {
  checkAlgorithm(options.algorithm);
  const bytes = typeof spki === 'string' ? Buffer.from(spki, 'latin1') : spki;
  checkBytes(bytes, 'spki');
  return expectAlgorithm(native.keyImportPublic(bytes), options.algorithm);
}

/** The public half of a private key as its own handle (for certificates and verification). */
export function publicKeyOf(privateKey: PrivateKey): PublicKey {
  return native.keyPublicKey(privateKey);
}

/**
 * The raw public key: X25519 32 bytes, ML-KEM the encapsulation key, ML-DSA-87 pk, P-384 the
 * uncompressed point 0x04 ‖ X ‖ Y (whatever form it was read in).
 */
export function publicKeyBytes(key: PrivateKey | PublicKey): Buffer {
  checkKey(key, 'key');
  return native.keyPublicBytes(key);
}

/** SubjectPublicKeyInfo DER of the public half. */
export function spkiDer(key: PrivateKey | PublicKey): Buffer {
  checkKey(key, 'key');
  return native.keySpki(key);
}

/** SHA-256 of the SubjectPublicKeyInfo DER (32 bytes): the key's fingerprint. */
export function spkiFingerprint(key: PrivateKey | PublicKey): Buffer {
  checkKey(key, 'key');
  return native.keySpkiFingerprint(key);
}
