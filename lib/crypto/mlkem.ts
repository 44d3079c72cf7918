/** ML-KEM (FIPS 203): ML-KEM-1024 for the protocol; ML-KEM-768 for a later suite. */
import { native, type Encapsulation, type MlKemNativeSizes, type PrivateKey, type PublicKey, type Secret } from '../native.js';
import { checkBytes } from './bytes.js';

/** A generated ML-KEM key pair: the private key stays native, the encapsulation key is public. */
export interface MlKemKeyPair {
  /** The decapsulation key, a native handle. */
  privateKey: PrivateKey;
  /** The encapsulation key ek (1184 bytes for ML-KEM-768, 1568 for ML-KEM-1024). */
  publicKey: Buffer;
}

export type { Encapsulation, PublicKey };

const PublicKeyClass = (native as unknown as { PublicKey: new (...args: never[]) => PublicKey }).PublicKey;

/** An encapsulation key as bytes, or parsed once with {@link MlKem.importPublicKey}. */
export type EncapsulationKey = Uint8Array | PublicKey;

/** One ML-KEM parameter set. Use the {@link mlkem1024} and {@link mlkem768} instances. */
export class MlKem {
  /** Byte sizes of this parameter set, from the addon. */
  readonly sizes: Readonly<MlKemNativeSizes>;

  constructor(
    /** The parameter set. */
    readonly name: 'ML-KEM-768' | 'ML-KEM-1024',
  ) {
    this.sizes = Object.freeze({ ...native.mlkemSizes[name] });
  }

  /** A fresh key pair; with `seed` (d || z, 64 bytes) the FIPS 203 deterministic key generation. */
  generateKeyPair(seed?: Uint8Array): MlKemKeyPair {
    if (seed !== undefined) checkBytes(seed, 'seed', this.sizes.seed);
    const privateKey = native.mlkemGenerateKeyPair(this.sizes.id, seed);
    return { privateKey, publicKey: native.mlkemPublicKey(privateKey, this.sizes.id) };
  }

  /** generateKeyPair() on the threadpool. */
  async generateKeyPairAsync(): Promise<MlKemKeyPair> {
    const privateKey = await native.mlkemGenerateKeyPairAsync(this.sizes.id);
    return { privateKey, publicKey: native.mlkemPublicKey(privateKey, this.sizes.id) };
  }

  /** The encapsulation key of a private key. */
  publicKeyOf(privateKey: PrivateKey): Buffer {
    return native.mlkemPublicKey(privateKey, this.sizes.id);
  }

  /** Whether `publicKey` is a valid encapsulation key (length and the FIPS 203 modulus check). */
  isValidPublicKey(publicKey: Uint8Array): boolean {
    checkBytes(publicKey, 'publicKey');
    try {
      return native.mlkemCheckPublicKey(this.sizes.id, publicKey);
    } catch {
      return false;
    }
  }

  /**
   * Parses and checks an encapsulation key once (length and the FIPS 203 modulus check; throws
   * ERR_QT_INVALID_KEY), for many encapsulations to the same key.
   */
  importPublicKey(publicKey: Uint8Array): PublicKey {
    checkBytes(publicKey, 'publicKey');
    return native.mlkemImportPublicKey(this.sizes.id, publicKey);
  }

  /**
   * Encapsulates to `publicKey` (bytes, parsed and checked each time, or an imported key). `coins` (the 32-byte FIPS 203 `m`) makes it deterministic and
   * exists for known-answer tests only; never pass it in production.
   */
  encapsulate(publicKey: EncapsulationKey, coins?: Uint8Array): Encapsulation {
    if (!(publicKey instanceof PublicKeyClass)) checkBytes(publicKey, 'publicKey', this.sizes.publicKey);
    if (coins !== undefined) checkBytes(coins, 'coins', this.sizes.encapsulationCoins);
    return native.mlkemEncapsulate(this.sizes.id, publicKey, coins);
  }

  /** encapsulate() on the threadpool. */
  encapsulateAsync(publicKey: EncapsulationKey): Promise<Encapsulation> {
    if (!(publicKey instanceof PublicKeyClass)) checkBytes(publicKey, 'publicKey', this.sizes.publicKey);
    return native.mlkemEncapsulateAsync(this.sizes.id, publicKey);
  }

  /** Decapsulates with implicit rejection: a tampered ciphertext yields an unrelated secret, not an error. */
  decapsulate(privateKey: PrivateKey, ciphertext: Uint8Array): Secret {
    checkBytes(ciphertext, 'ciphertext', this.sizes.ciphertext);
    return native.mlkemDecapsulate(privateKey, this.sizes.id, ciphertext);
  }

  /** decapsulate() on the threadpool. */
  decapsulateAsync(privateKey: PrivateKey, ciphertext: Uint8Array): Promise<Secret> {
    checkBytes(ciphertext, 'ciphertext', this.sizes.ciphertext);
    return native.mlkemDecapsulateAsync(privateKey, this.sizes.id, ciphertext);
  }
}

/** ML-KEM-1024 (the protocol's post-quantum half). */
export const mlkem1024 = new MlKem('ML-KEM-1024');
/** ML-KEM-768. */
export const mlkem768 = new MlKem('ML-KEM-768');
