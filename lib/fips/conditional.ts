/**
 * Conditional self-tests in the protocol path (FIPS 140-3 §7.10.3): the pairwise consistency test
 * of every key pair generated for a handshake or a rekey that the provider does not test itself. (The continuous RNG test runs in
 * native code on every DRBG output; see native/random.cc.) A failure puts the module in its error
 * state: every later crypto call fails until the process restarts.
 */
import { native, type PrivateKey } from '../native.js';
import { ErrorCode, qtError } from '../errors.js';
import { mlkem1024 } from '../crypto/mlkem.js';
import type { GroupKeyPair } from '../crypto/policy.js';
import { timingSafeEqual } from '../crypto/secret.js';
import * as x25519 from '../crypto/x25519.js';
import { injectedFailures } from './selfTests.js';

/** The X25519 base point u = 9: X25519(k, 9) must equal the stored public key. */
const BASE_POINT = Buffer.concat([Buffer.from([9]), Buffer.alloc(31)]);

/** Counters for the status report. */
export const conditionalStats = { pairwiseTests: 0, failures: 0 };

export function pairwiseConsistencyTest(pair: { x25519PrivateKey: unknown; mlkemPrivateKey: unknown; publicKey: Buffer }): void {
  pairwiseConsistencyTestGroup({
    kem: mlkem1024,
    mlkemPrivateKey: pair.mlkemPrivateKey as PrivateKey,
    encapsulationKey: pair.publicKey.subarray(x25519.X25519_SIZES.publicKey),
    x25519: { privateKey: pair.x25519PrivateKey as PrivateKey, publicKey: pair.publicKey.subarray(0, x25519.X25519_SIZES.publicKey) },
  });
}

/**
 * The test for a freshly generated share. ML-KEM's is the FIPS provider's own: in FIPS mode
 * ml_kem_gen runs an encapsulate/decapsulate round trip on every key pair it generates and enters
 * the provider's error state on a mismatch (OpenSSL 3.5 providers/implementations/keymgmt/
 * ml_kem_kmgmt.c), so a second round trip here would test the same key with the same code.
 * X25519 (a non-approved service) has no test in the provider: its public key is recomputed
 * from the private key through the DH primitive, X25519(k, 9).
 */
export function pairwiseConsistencyTestGroup(pair: GroupKeyPair): void {
  conditionalStats.pairwiseTests++;
  const recomputed = pair.x25519 ? x25519.deriveSharedSecret(pair.x25519.privateKey, BASE_POINT) : undefined;
  const ok = (recomputed === undefined || timingSafeEqual(recomputed, pair.x25519!.publicKey)) && !injectedFailures.has('pairwise');
  recomputed?.destroy();
  if (!ok) {
    conditionalStats.failures++;
    native.fipsEnterErrorState('pairwise consistency test failed on a generated key pair');
    throw qtError(ErrorCode.FIPS_SELFTEST_FAILED, 'pairwise consistency test failed; the crypto module is now in its error state');
  }
}
