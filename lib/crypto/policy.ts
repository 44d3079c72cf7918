/**
 * Crypto policy hooks that FIPS mode (lib/fips) installs: conditional self-tests on generated key
 * pairs and the strict refusal of non-approved services. The crypto layer consults them; it does
 * not import lib/fips, so the layering stays one-way.
 */
import { ErrorCode, qtError } from '../errors.js';
import type { PrivateKey } from '../native.js';
import type { MlKem } from './mlkem.js';

export interface CryptoPolicy {
  /** FIPS mode is active. */
  fips: boolean;
  /** Refuse non-approved services (X25519) instead of using them. */
  strict: boolean;
  /** Pairwise consistency test of a newly generated CH-KEM key pair (FIPS 140-3 conditional self-test). */
  checkKeyPair?: (keyPair: { x25519PrivateKey: unknown; mlkemPrivateKey: unknown; publicKey: Buffer }) => void;
  /**
   * The same for a protocol v2 client share: the ML-KEM key pair, and the X25519 one when the
   * group has it (P-384 key pairs are tested natively at generation).
   */
  checkGroupKeyPair?: (keyPair: GroupKeyPair) => void;
}

/** A hybrid group's freshly generated key pairs, for the pairwise consistency test. */
export interface GroupKeyPair {
  kem: MlKem;
  mlkemPrivateKey: PrivateKey;
  encapsulationKey: Buffer;
  x25519?: { privateKey: PrivateKey; publicKey: Buffer };
}

export const cryptoPolicy: CryptoPolicy = { fips: false, strict: false };

/** Throws unless non-approved services may be used (they may, except in strict FIPS mode). */
export function requireNonApprovedAllowed(service: string): void {
  if (cryptoPolicy.fips && cryptoPolicy.strict) {
    throw qtError(
      ErrorCode.FIPS_NOT_APPROVED,
      `${service} is not a FIPS-approved service and strict FIPS mode refuses it (protocol v2's p384-mlkem1024 group uses approved services only)`,
    );
  }
}
