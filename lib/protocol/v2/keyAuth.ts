/**
 * Pinned-key authentication (docs/PROTOCOL.md §13): the `key_auth` extensions and the identity
 * block. The client encapsulates to the server's pinned key in its ClientHello and seals its own
 * public key (or nothing) under a key only the holder of the server's private key can derive; the
 * server, if it authenticates the client, encapsulates to the client's key in its ServerHello.
 * Both secrets enter the key schedule (keySchedule.ts), so each side's Finished proves its key.
 */
import type { Secret } from '../../native.js';
import { AeadSuite, openRecord, sealRecord } from '../../crypto/aead.js';
import { ErrorCode, qtError } from '../../errors.js';
import type { Extension } from './messages.js';
import type { KeySchedule } from './keySchedule.js';

/** Extension types of v2 hellos. */
export const ExtensionType = Object.freeze({
  /** ClientHello: vec16(ciphertext to the server key) ‖ vec16(sealed identity). ServerHello: vec16(ciphertext to the client key). */
  KEY_AUTH: 0x0001,
  /**
   * ClientHello: empty, "tell me your key" (§13.6). EncryptedExtensions: the server's key blob,
   * in answer to it. Not an authentication: what a client learns this way it must check
   * (a fingerprint) or trust (first use) and then pin.
   */
  SERVER_KEY: 0x0002,
});

/** The AEAD of the identity block: AES-256-GCM whatever the suite (none is chosen yet). */
const IDENTITY_AEAD = AeadSuite.AES_256_GCM;
const NO_AD = Buffer.alloc(0);

export interface ClientKeyAuth {
  ciphertext: Buffer;
  sealedIdentity: Buffer;
}

function vec16(bytes: Uint8Array): Buffer {
  const out = Buffer.alloc(2 + bytes.length);
  out.writeUInt16BE(bytes.length, 0);
  out.set(bytes, 2);
  return out;
}

function readVec16(data: Buffer, at: number, what: string): { value: Buffer; next: number } {
  if (at + 2 > data.length) throw qtError(ErrorCode.MALFORMED_MESSAGE, `malformed key_auth (${what})`);
  const length = data.readUInt16BE(at);
  if (at + 2 + length > data.length) throw qtError(ErrorCode.MALFORMED_MESSAGE, `malformed key_auth (${what})`);
  return { value: data.subarray(at + 2, at + 2 + length), next: at + 2 + length };
}

export function encodeClientKeyAuth(auth: ClientKeyAuth): Extension {
  return { type: ExtensionType.KEY_AUTH, data: Buffer.concat([vec16(auth.ciphertext), vec16(auth.sealedIdentity)]) };
}

export function decodeClientKeyAuth(data: Buffer): ClientKeyAuth {
  const ct = readVec16(data, 0, 'ciphertext');
  const sealed = readVec16(data, ct.next, 'identity');
  if (sealed.next !== data.length) throw qtError(ErrorCode.MALFORMED_MESSAGE, 'malformed key_auth (trailing bytes)');
  return { ciphertext: ct.value, sealedIdentity: sealed.value };
}

export function encodeServerKeyAuth(ciphertext: Buffer): Extension {
  return { type: ExtensionType.KEY_AUTH, data: vec16(ciphertext) };
}

export function decodeServerKeyAuth(data: Buffer): Buffer {
  const ct = readVec16(data, 0, 'ciphertext');
  if (ct.next !== data.length) throw qtError(ErrorCode.MALFORMED_MESSAGE, 'malformed key_auth (trailing bytes)');
  return ct.value;
}

/** The extension of `type` in a list, if present. */
export function findExtension(extensions: readonly Extension[], type: number): Buffer | undefined {
  return extensions.find((e) => e.type === type)?.data;
}

/** The identity block's record context: key and IV from Derive-Secret(ks, "c identity", ""). */
function identityContext(schedule: KeySchedule, ks: Secret) {
  const secret = schedule.identitySecret(ks);
  try {
    return schedule.recordAead(secret, IDENTITY_AEAD);
  } finally {
    secret.destroy();
  }
}

/** Seals the identity payload (BE16(group) ‖ public key, or empty) under ks: nonce = iv, no AD. */
export function sealIdentity(schedule: KeySchedule, ks: Secret, payload: Uint8Array): Buffer {
  const ctx = identityContext(schedule, ks);
  try {
    return sealRecord(ctx, 0, NO_AD, payload);
  } finally {
    ctx.destroy();
  }
}

/** The identity payload, or undefined when it does not authenticate under ks (another server key). */
export function openIdentity(schedule: KeySchedule, ks: Secret, sealed: Uint8Array): Buffer | undefined {
  const ctx = identityContext(schedule, ks);
  try {
    return openRecord(ctx, 0, NO_AD, sealed);
  } catch (err) {
    if ((err as { code?: string }).code === ErrorCode.AUTHENTICATION_FAILED) return undefined;
    throw err;
  } finally {
    ctx.destroy();
  }
}
