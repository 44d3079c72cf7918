/**
 * Protocol v2's X25519 + ML-KEM hybrid exchange, one native call per side's step (native/hybrid.cc):
 * the client's share, the server's share and K, the client's K. Each step runs inline or as one
 * threadpool job (`async`), so a busy server can move a whole step, not each primitive, to
 * another core. Standard mode only ({@link hybridAvailable}); FIPS mode composes the primitives,
 * each with its conditional tests (lib/protocol/v2/groups.ts). The combiner is the one of
 * docs/PROTOCOL.md §4, computed natively; lib/protocol/v2/groups.ts `combine` is its JS form and
 * the tests hold the two to the same K.
 */
import { native, type PrivateKey, type Secret } from '../native.js';
import { cryptoPolicy } from './policy.js';

/** The client's two key pairs and its share (X25519 public key ‖ ML-KEM encapsulation key). */
export interface HybridClientKeys {
  classical: PrivateKey;
  mlkem: PrivateKey;
  share: Buffer;
}

/** Whether the one-call steps may run now: standard mode (not FIPS mode). */
export function hybridAvailable(): boolean {
  return !cryptoPolicy.fips;
}

export function hybridClientShare(group: number): HybridClientKeys {
  return native.hybridClientShare(group, false);
}

export function hybridClientShareAsync(group: number): Promise<HybridClientKeys> {
  return native.hybridClientShare(group, true);
}

/** The server's share (X25519 public key ‖ ML-KEM ciphertext) and K for `clientShare`. */
export function hybridEncapsulate(group: number, version: number, clientShare: Uint8Array, label: Uint8Array): { share: Buffer; secret: Secret } {
  return native.hybridEncapsulate(group, version, clientShare, label, false);
}

export function hybridEncapsulateAsync(group: number, version: number, clientShare: Uint8Array, label: Uint8Array): Promise<{ share: Buffer; secret: Secret }> {
  return native.hybridEncapsulate(group, version, clientShare, label, true);
}

/** The client's K from the server's share; the keys stay the caller's. */
export function hybridDecapsulate(group: number, version: number, keys: HybridClientKeys, serverShare: Uint8Array, label: Uint8Array): Secret {
  return native.hybridDecapsulate(group, version, keys.classical, keys.mlkem, keys.share, serverShare, label, false);
}

export function hybridDecapsulateAsync(group: number, version: number, keys: HybridClientKeys, serverShare: Uint8Array, label: Uint8Array): Promise<Secret> {
  return native.hybridDecapsulate(group, version, keys.classical, keys.mlkem, keys.share, serverShare, label, true);
}
