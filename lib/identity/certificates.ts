/**
 * Certificate identities (docs/PROTOCOL.md §14): an ML-DSA-87 private key and the X.509 chain
 * that names its public key, leaf first. Made from PEM files (`--cert`, `--identity`) or from
 * objects; the key must be the leaf's.
 */
import { ErrorCode, invalidArgument, qtError } from '../errors.js';
import { importPrivateKeyPem, spkiFingerprint } from '../crypto/keyFiles.js';
import { type Certificate, type CertificateInput, parseCertificates } from '../crypto/x509.js';
import type { PrivateKey } from '../native.js';

/** Our certificate and its key: what a server (or a client, when asked) authenticates with. */
export class CertificateIdentity {
  /** Leaf first, then intermediates (sent to the peer as they are). */
  readonly chain: readonly Certificate[];
  readonly #privateKey: PrivateKey;

  /**
   * @param chain the leaf and its intermediates (PEM text with several blocks, or objects)
   * @param privateKey the leaf's ML-DSA-87 private key; the identity takes it (destroy() frees it)
   */
  constructor(chain: CertificateInput | readonly Certificate[], privateKey: PrivateKey) {
    const certs = Array.isArray(chain) ? [...(chain as Certificate[])] : parseCertificates(chain as CertificateInput);
    if (certs.length === 0) invalidArgument('a certificate identity needs its certificate');
    const leaf = certs[0]!;
    if (privateKey?.algorithm !== 'ML-DSA-87') invalidArgument('the private key of a certificate identity is an ML-DSA-87 key');
    if (leaf.publicKeyAlgorithm !== 'ML-DSA-87') throw qtError(ErrorCode.INVALID_KEY, `the certificate's key is ${leaf.publicKeyAlgorithm}; quantum-tunnel signs with ML-DSA-87`);
    if (!spkiFingerprint(privateKey).equals(leaf.spkiFingerprint)) throw qtError(ErrorCode.INVALID_KEY, 'the private key is not the key of the certificate (the first in the chain)');
    this.chain = Object.freeze(certs);
    this.#privateKey = privateKey;
  }

  /** From PEM: the chain (leaf first) and the PKCS#8 key, encrypted or not. */
  static fromPem(chainPem: CertificateInput, keyPem: Uint8Array | string, options: { passphrase?: Uint8Array } = {}): CertificateIdentity {
    const key = importPrivateKeyPem(keyPem, { passphrase: options.passphrase, algorithm: 'ML-DSA-87' });
    try {
      return new CertificateIdentity(chainPem, key);
    } catch (err) {
      key.destroy();
      throw err;
    }
  }

  /** The leaf certificate (the first of the chain), the one that certifies this key. */
  get leaf(): Certificate {
    return this.chain[0]!;
  }

  /** @internal The signing key. */
  get privateKey(): PrivateKey {
    return this.#privateKey;
  }

  /** Frees the private key (OpenSSL cleanses it). Destroy it when no listener or dialer uses it any more. */
  destroy(): void {
    this.#privateKey.destroy();
  }
}
