/**
 * The key schedule (docs/PROTOCOL.md §3.4, §7.5, §7.6, §9, §10): every key the protocol uses,
 * derived from a 32-byte master secret held as a native handle. Derived keys are handles too.
 */
import type { Secret } from '../native.js';
import { ErrorCode, QuantumTunnelError } from '../errors.js';
import { deriveKeyMultiple, deriveSecrets, deriveSecretsMultiple } from '../crypto/kdf.js';
import { isSecret } from '../crypto/secret.js';
import { Label } from './labels.js';

/** Every master secret (and PSK) is 32 bytes; so is every traffic and handshake key. */
export const MASTER_SECRET_SIZE = 32;
export const KEY_SIZE = 32;
export const VERIFY_DATA_SIZE = 32;
/** The handshake derivation also yields two 12-byte IVs that the protocol never uses (§3.4). */
const UNUSED_IV_BYTES = 24;

function requireMaster(secret: Secret, name: string): void {
  if (!isSecret(secret) || secret.length !== MASTER_SECRET_SIZE) {
    throw new QuantumTunnelError(`${name} must be a 32-byte Secret`, ErrorCode.INVALID_KEY);
  }
}

/** One key per direction; which one a side sends with depends on its role. */
export interface DirectionalKeys {
  initiatorToResponder: Secret;
  responderToInitiator: Secret;
}

/** Handshake keys: DeriveKey("CH-KEM-VPN-Handshake", master, 88); the IV bytes are discarded at once. */
export function deriveHandshakeKeys(master: Secret): DirectionalKeys {
  requireMaster(master, 'master');
  const [initiator, responder, ivs] = deriveSecrets(Label.HANDSHAKE, master, [KEY_SIZE, KEY_SIZE, UNUSED_IV_BYTES]);
  ivs!.destroy();
  return { initiatorToResponder: initiator!, responderToInitiator: responder! };
}

/** Traffic keys: DeriveKey("CH-KEM-VPN-Traffic", master, 64). */
export function deriveTrafficKeys(master: Secret): DirectionalKeys {
  requireMaster(master, 'master');
  const [i2r, r2i] = deriveSecrets(Label.TRAFFIC, master, [KEY_SIZE, KEY_SIZE]);
  return { initiatorToResponder: i2r!, responderToInitiator: r2i! };
}

/** Resumption master: DeriveKeyMultiple("CH-KEM-VPN-Resumption", [psk, fresh], 32). */
export function deriveResumptionMaster(psk: Secret, fresh: Secret): Secret {
  requireMaster(psk, 'psk');
  requireMaster(fresh, 'fresh secret');
  return deriveSecretsMultiple(Label.RESUMPTION, [psk, fresh], [MASTER_SECRET_SIZE])[0]!;
}

/**
 * Rekey ratchet: DeriveKeyMultiple("CH-KEM-VPN-Rekey", [current, fresh], 32). The protocol always
 * passes a 32-byte CH-KEM secret as `fresh`; other lengths are accepted as in the reference.
 */
export function deriveRekeyMaster(current: Secret, fresh: Secret | Uint8Array): Secret {
  requireMaster(current, 'current master');
  return deriveSecretsMultiple(Label.REKEY, [current, fresh], [MASTER_SECRET_SIZE])[0]!;
}

/** verify_data (§7.6) over the raw transcript bytes. It travels only inside the encrypted Finished. */
export function computeVerifyData(side: 'client' | 'server', master: Secret, transcript: Uint8Array): Buffer {
  requireMaster(master, 'master');
  const label = side === 'client' ? Label.CLIENT_FINISHED : Label.SERVER_FINISHED;
  return deriveKeyMultiple(label, [master, transcript], VERIFY_DATA_SIZE);
}
