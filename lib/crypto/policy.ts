/**
 * Crypto policy hooks that FIPS mode (lib/fips) installs: conditional self-tests on generated key
 * pairs and the strict refusal of non-approved services. The crypto layer consults them; it does
 * not import lib/fips, so the layering stays one-way.
 */
import { ErrorCode, qtError } from '../errors.js';

export interface CryptoPolicy {
  /** FIPS mode is active. */
  fips: boolean;
  /** Refuse non-approved services (X25519) instead of using them. */
  strict: boolean;
  /** Pairwise consistency test of a newly generated CH-KEM key pair (FIPS 140-3 conditional self-test). */
  checkKeyPair?: (keyPair: { x25519PrivateKey: unknown; mlkemPrivateKey: unknown; publicKey: Buffer }) => void;
}

export const cryptoPolicy: CryptoPolicy = { fips: false, strict: false };

/** Throws unless non-approved services may be used (they may, except in strict FIPS mode). */
export function requireNonApprovedAllowed(service: string): void {
  if (cryptoPolicy.fips && cryptoPolicy.strict) {
    throw qtError(
      ErrorCode.FIPS_NOT_APPROVED,
      `${service} is not a FIPS-approved service and strict FIPS mode refuses it (a P-384 + ML-KEM-1024 suite is planned for this case)`,
    );
  }
}
