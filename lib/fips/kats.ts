/**
 * Known-answer values for our power-on self-tests. Every expected value is stored here, computed
 * independently of this code: ML-KEM by @noble/post-quantum, SHAKE-256/AES-GCM from PROTOCOL.md
 * Appendix A.1 and the GCM specification, SHA3-256 from the FIPS 202 examples.
 */
export const MLKEM1024_KAT = Object.freeze({
  /** d ‖ z: the reference's POST seed (Appendix A.1). */
  seed: '0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef' + 'fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210',
  /** Encapsulation coins m. */
  m: 'c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf',
  /** SHA3-256 of the encapsulation key from the seed. */
  ekSha3: '620a52d41c492f9615c351c8bbd4e382d5e34713b5f9b11f10f487c768d42464',
  /** SHA3-256 of the ciphertext for m. */
  ctSha3: '4723b61824285fe05a1559b5fa59a89212154136b7e7238a21236b68e01203b5',
  /** The shared secret (encapsulation and decapsulation). */
  k: '7122c15def4105f2c26a6b6cde981fcec69cc32626d624123b146e2fc09a2bca',
  /** Implicit rejection: the secret for the ciphertext with its first byte flipped. */
  kReject: '0ba2b5e73f6dc54b08de25d1bcf3f0ab5e2d87fcc11b6cc9b659e827dcb7eea6',
});

/** DeriveKey("POST-KAT-TEST", 0123456789abcdef×4, 32): Appendix A.1. */
export const SHAKE256_KDF_KAT = Object.freeze({
  label: 'POST-KAT-TEST',
  input: '0123456789abcdef'.repeat(4),
  output: 'f6cd6267523cd5717f431170c2501816d6b1439b1fe8f084cd028e892cff9b6a',
});

/** SHA3-256("abc") (NIST SHA-3 example). */
export const SHA3_256_KAT = Object.freeze({
  message: '616263',
  digest: '3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532',
});

/** AES-256-GCM: Appendix A.1 POST case, and GCM specification test case 14 (key 0^32, IV 0^12, P = 0^16). */
export const AES256GCM_KATS = Object.freeze([
  {
    name: 'A.1 POST',
    key: '0123456789abcdef'.repeat(4),
    nonce: '000000000000000000000000',
    plaintext: '504f53542d4b41542d54455354',
    sealed: '5a48b3005aeb1b0a8cd6767b8cded311eb6185c16343d286e3541e9d98',
  },
  {
    name: 'GCM test case 14',
    key: '00'.repeat(32),
    nonce: '000000000000000000000000',
    plaintext: '00'.repeat(16),
    sealed: 'cea7403d4d606b6e074ec5d3baf39d18' + 'd0d1c8a799996bf0265b98b5d48ab919',
  },
]);
