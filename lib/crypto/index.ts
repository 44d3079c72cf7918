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
export * as x25519 from './x25519.js';
export * as p384 from './p384.js';
export * as mldsa87 from './mldsa.js';
export * as keyFiles from './keyFiles.js';
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
export * as chkem from './chkem.js';
export * as hkdf from './hkdf.js';
