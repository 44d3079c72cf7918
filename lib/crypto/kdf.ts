/**
 * The three derivation primitives of the wire protocol (docs/PROTOCOL.md §3), byte for byte:
 *
 *   DeriveKey(label, input, L)          = SHAKE-256(BE32(|label|) ‖ label ‖ BE32(|input|) ‖ input)[0..L)
 *   DeriveKeyMultiple(label, [in…], L)  = SHAKE-256(BE32(|label|) ‖ label ‖ BE32(n) ‖ (BE32(|in_i|) ‖ in_i)…)[0..L)
 *   TranscriptHash(c_1…c_n)             = SHA3-256(BE32(n) ‖ (BE32(|c_i|) ‖ c_i)…)
 *
 * Inputs may be Secret handles: their bytes are absorbed natively. The *Secret(s) forms return
 * handles, so derived keys never reach the JS heap.
 */
import type { Secret } from '../native.js';
import { invalidArgument } from '../errors.js';
import { be32, checkInteger, isArray } from './bytes.js';
import { type HashInput, sha3_256, shake256, shake256Secrets } from './hash.js';
import { isSecret } from './secret.js';

/** Largest output of DeriveKey/DeriveKeyMultiple (2^20 bytes), as in the reference. */
export const MAX_DERIVED_LENGTH = 1 << 20;

function labelBytes(label: string | Uint8Array): Buffer {
  if (typeof label === 'string') return Buffer.from(label, 'ascii');
  if (label instanceof Uint8Array) return Buffer.from(label);
  return invalidArgument('label must be a string or a Uint8Array');
}

function inputLength(input: HashInput): number {
  if (input instanceof Uint8Array || isSecret(input)) return input.length;
  return invalidArgument('KDF inputs must be Uint8Arrays or Secrets');
}

/** Absorbed parts of DeriveKey: the single-input layout, with no count. */
function singleParts(label: string | Uint8Array, input: HashInput): HashInput[] {
  const l = labelBytes(label);
  return [Buffer.concat([be32(l.length), l, be32(inputLength(input))]), input];
}

/** Absorbed parts of DeriveKeyMultiple (and, without a label, of TranscriptHash). */
function multipleParts(label: Buffer | undefined, inputs: readonly HashInput[]): HashInput[] {
  if (!isArray(inputs)) invalidArgument('inputs must be an array');
  const head = label === undefined ? [be32(inputs.length)] : [be32(label.length), label, be32(inputs.length)];
  const parts: HashInput[] = [];
  let pending: Uint8Array[] = head;
  for (const input of inputs) {
    pending.push(be32(inputLength(input)));
    if (isSecret(input)) {
      parts.push(Buffer.concat(pending), input);
      pending = [];
    } else {
      pending.push(input);
    }
  }
  if (pending.length > 0) parts.push(Buffer.concat(pending));
  return parts;
}

function checkLength(length: number): void {
  checkInteger(length, 'length', 1, MAX_DERIVED_LENGTH);
}

function checkSizes(sizes: readonly number[]): void {
  if (!isArray(sizes) || sizes.length === 0) invalidArgument('sizes must be a non-empty array');
  const total = sizes.reduce((a, b) => a + b, 0);
  for (const s of sizes) checkInteger(s, 'each size', 1, MAX_DERIVED_LENGTH);
  checkLength(total);
}

/** DeriveKey (§3.1) as public bytes. */
export function deriveKey(label: string | Uint8Array, input: HashInput, length: number): Buffer {
  checkLength(length);
  return shake256(singleParts(label, input), length);
}

/** DeriveKey (§3.1) split into secret handles of the given sizes (their sum is L). */
export function deriveSecrets(label: string | Uint8Array, input: HashInput, sizes: readonly number[]): Secret[] {
  checkSizes(sizes);
  return shake256Secrets(singleParts(label, input), sizes);
}

/** DeriveKeyMultiple (§3.2) as public bytes. */
export function deriveKeyMultiple(label: string | Uint8Array, inputs: readonly HashInput[], length: number): Buffer {
  checkLength(length);
  return shake256(multipleParts(labelBytes(label), inputs), length);
}

/** DeriveKeyMultiple (§3.2) split into secret handles of the given sizes (their sum is L). */
export function deriveSecretsMultiple(
  label: string | Uint8Array,
  inputs: readonly HashInput[],
  sizes: readonly number[],
): Secret[] {
  checkSizes(sizes);
  return shake256Secrets(multipleParts(labelBytes(label), inputs), sizes);
}

/** TranscriptHash (§3.3): SHA3-256 over count- and length-prefixed components, no label. */
export function transcriptHash(components: readonly Uint8Array[]): Buffer {
  for (const c of components) if (!(c instanceof Uint8Array)) invalidArgument('transcript components must be Uint8Arrays');
  return sha3_256(multipleParts(undefined, components));
}
