/**
 * The crypto core: typed wrappers over the addon's OpenSSL 3.5. Exported from the package root
 * as `crypto`. Secrets and private keys are native handles; see {@link Secret}.
 */
export type { PrivateKey, PublicKey, Secret } from '../native.js';
export { info, type CryptoInfo } from './info.js';
export { randomBytes, randomFill, randomSecret, importSecret } from './random.js';
export { timingSafeEqual, isSecret, isPrivateKey } from './secret.js';
export {
  shake256,
  shake256Secrets,
  sha3_256,
  sha384,
  Sha384Hash,
  SHA3_256_SIZE,
  SHA384_SIZE,
  MAX_SHAKE256_OUTPUT,
  type HashInput,
} from './hash.js';
export { MlKem, mlkem1024, mlkem768, type MlKemKeyPair, type Encapsulation, type EncapsulationKey } from './mlkem.js';
/** X25519 (RFC 7748) key agreement: the classical half of CH-KEM and of two v2 groups. Not approved in FIPS mode. */
export * as x25519 from './x25519.js';
/** ECDH over NIST P-384: the classical half of the FIPS-mode default group. */
export * as p384 from './p384.js';
/** ML-DSA-87 (FIPS 204) signatures: certificate authentication. */
export * as mldsa87 from './mldsa.js';
/** Key files: PKCS#8 private keys (optionally encrypted), SPKI public keys, SHA-256 fingerprints. */
export * as keyFiles from './keyFiles.js';
/** X.509 certificates and CRLs with ML-DSA-87 (or P-384) keys: parse, verify chains, issue (a small CA). */
export * as x509 from './x509.js';
export {
  AeadSuite,
  AEAD_SIZES,
  createAead,
  createRecordAead,
  seal,
  open,
  sealRecord,
  openRecord,
  type AeadContext,
  type AeadSuiteId,
  type RecordAeadContext,
} from './aead.js';
export {
  deriveKey,
  deriveKeyMultiple,
  deriveSecrets,
  deriveSecretsMultiple,
  transcriptHash,
  MAX_DERIVED_LENGTH,
} from './kdf.js';
/** CH-KEM: X25519 + ML-KEM-1024 combined with SHAKE-256, protocol v1's key exchange (docs/PROTOCOL.md §5). */
export * as chkem from './chkem.js';
/** HKDF (RFC 5869) and HMAC over SHA-256 and SHA-384: protocol v2's key schedule. */
export * as hkdf from './hkdf.js';
