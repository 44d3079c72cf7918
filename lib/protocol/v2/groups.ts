/**
 * Protocol v2's hybrid KEM groups (docs/PROTOCOL.md §4): a classical key
 * agreement and ML-KEM, joined by a labelled combiner that binds both shared secrets to every
 * public value the KEMs saw, the protocol version and the group. One registry, one entry a group.
 *
 * K = HKDF-Expand(HKDF-Extract(salt = "qtun v2 hybrid", IKM = Z_classical ‖ Z_mlkem),
 *                 info = SHA-384(FixedInfo), 48)
 * FixedInfo = "qtun v2 hybrid" ‖ BE16(version) ‖ BE16(group) ‖ vec16(initiator classical pk)
 *           ‖ vec16(responder classical pk) ‖ vec16(ML-KEM encapsulation key) ‖ vec16(ML-KEM ciphertext)
 *
 * HKDF-SHA-384 over Z' = Z_classical ‖ Z_mlkem is the SP 800-56C rev. 2 two-step KDF (§5, with
 * the hybrid Z' of §2), so with P-384 + ML-KEM-1024 every step is an approved service.
 */
import type { PrivateKey, PublicKey, Secret } from '../../native.js';
import { ErrorCode, invalidArgument, qtError } from '../../errors.js';
import { checkBytes } from '../../crypto/bytes.js';
import { sha384 } from '../../crypto/hash.js';
import * as hkdf from '../../crypto/hkdf.js';
import { type Encapsulation, type EncapsulationKey, type MlKem, mlkem1024, mlkem768 } from '../../crypto/mlkem.js';
import * as p384 from '../../crypto/p384.js';
import { cryptoPolicy } from '../../crypto/policy.js';
import * as oneCall from '../../crypto/hybrid.js';
import { destroyAll } from '../../crypto/secret.js';
import * as x25519 from '../../crypto/x25519.js';

/** Group IDs on the wire. */
export const KemGroup = Object.freeze({
  X25519_MLKEM1024: 0x0101,
  P384_MLKEM1024: 0x0102,
  X25519_MLKEM768: 0x0103,
});
export type KemGroupId = (typeof KemGroup)[keyof typeof KemGroup];

/** The combiner's label (salt and the first bytes of FixedInfo) for the ephemeral key exchange. */
export const HYBRID_LABEL = Buffer.from('qtun v2 hybrid', 'ascii');
/** The labels of the encapsulations to long-term keys (docs/PROTOCOL.md §13): one per role. */
export const SERVER_KEY_LABEL = Buffer.from('qtun v2 server key', 'ascii');
export const CLIENT_KEY_LABEL = Buffer.from('qtun v2 client key', 'ascii');
/** Size of the combined secret K. */
export const HYBRID_SECRET_SIZE = 48;

/** A classical key agreement: X25519 or ECDH P-384. */
interface Classical {
  readonly name: string;
  readonly publicKeySize: number;
  readonly fipsApproved: boolean;
  generate(): { privateKey: PrivateKey; publicKey: Buffer };
  publicKeyOf(privateKey: PrivateKey): Buffer;
  derive(privateKey: PrivateKey, peerPublicKey: Uint8Array): Secret;
}

const X25519: Classical = {
  name: 'X25519',
  publicKeySize: x25519.X25519_SIZES.publicKey,
  fipsApproved: false,
  generate: x25519.generateKeyPair,
  publicKeyOf: x25519.publicKeyOf,
  derive: x25519.deriveSharedSecret,
};

const P384: Classical = {
  name: 'P-384',
  publicKeySize: p384.P384_SIZES.publicKey,
  fipsApproved: true,
  generate: p384.generateKeyPair,
  publicKeyOf: p384.publicKeyOf,
  derive: p384.deriveSharedSecret,
};

/** The client's half of a key exchange: its share and what it needs to finish. */
export interface ClientKeyShare {
  readonly group: KemGroupSpec;
  /** classical public key ‖ ML-KEM encapsulation key. */
  readonly share: Buffer;
  /** K from the server's share; the key share is spent either way. */
  finish(serverShare: Uint8Array, version: number): Secret;
  /** finish() with ML-KEM decapsulation on the libuv threadpool. */
  finishAsync(serverShare: Uint8Array, version: number): Promise<Secret>;
  destroy(): void;
}

/**
 * A long-term key pair of a group (a pinned identity key, docs/PROTOCOL.md §13): the same key
 * types as a client share, decapsulated any number of times. The owner destroys it.
 */
export interface StaticKemKeyPair {
  readonly group: KemGroupSpec;
  /** classical public key ‖ ML-KEM encapsulation key: the client share format. */
  readonly publicKey: Buffer;
  /** K from an encapsulation to this key (the server share format), under `label`. */
  decapsulate(ciphertext: Uint8Array, version: number, label: Uint8Array): Secret;
  /** The private key handles (for an explicit export to a key file); still owned by the pair. */
  privateKeys(): { classical: PrivateKey; mlkem: PrivateKey };
  destroy(): void;
}

/** Fixed inputs of a client share, for known-answer vectors: never in production. */
export interface FixedClientShare {
  /** The classical private key (consumed). */
  classical: PrivateKey;
  /** The ML-KEM key generation seed d ‖ z (64 bytes). */
  mlkemSeed: Uint8Array;
}

/** Fixed inputs of a server share, for known-answer vectors: never in production. */
export interface FixedServerShare {
  /** The classical private key (consumed). */
  classical: PrivateKey;
  /** The ML-KEM encapsulation coins m (32 bytes). */
  coins: Uint8Array;
}

/** One hybrid group. */
export interface KemGroupSpec {
  readonly id: KemGroupId;
  /** The option name (`x25519-mlkem1024`, ...). */
  readonly option: string;
  readonly displayName: string;
  /** Both halves and the combiner are approved services of the FIPS provider. */
  readonly fipsApproved: boolean;
  readonly clientShareSize: number;
  readonly serverShareSize: number;
  /** Whether the current mode may use it (strict FIPS mode: approved groups only). */
  permitted(): boolean;
  /** Client: a fresh key share (`fixed`: known-answer vectors only; the share takes the key). */
  generateClientShare(fixed?: FixedClientShare): ClientKeyShare;
  /**
   * Server: its share for the client's and K (`fixed`: known-answer vectors only). With `label`,
   * an encapsulation to a long-term key (the combiner's label names the role).
   */
  encapsulate(clientShare: Uint8Array, version: number, fixed?: FixedServerShare, label?: Uint8Array): { share: Buffer; secret: Secret };
  /** generateClientShare() with ML-KEM key generation on the libuv threadpool. */
  generateClientShareAsync(): Promise<ClientKeyShare>;
  /** encapsulate() with ML-KEM encapsulation on the libuv threadpool. */
  encapsulateAsync(clientShare: Uint8Array, version: number): Promise<{ share: Buffer; secret: Secret }>;
  /** A fresh long-term key pair (an identity key), or one from its parts (the pair takes the keys). */
  generateStaticKey(): StaticKemKeyPair;
  staticKeyFrom(classical: PrivateKey, mlkem: PrivateKey): StaticKemKeyPair;
}

/** FixedInfo: label ‖ BE16(version) ‖ BE16(group) ‖ vec16(each public value), in one buffer. */
function fixedInfoOf(label: Uint8Array, version: number, groupId: number, values: readonly Uint8Array[]): Buffer {
  let size = label.length + 4;
  for (const v of values) size += 2 + v.length;
  const out = Buffer.allocUnsafe(size);
  out.set(label, 0);
  let at = out.writeUInt16BE(groupId, out.writeUInt16BE(version, label.length));
  for (const v of values) {
    at = out.writeUInt16BE(v.length, at);
    out.set(v, at);
    at += v.length;
  }
  return out;
}

/** The combiner; consumes (destroys) both component secrets. `label` names the exchange's role. */
export function combine(
  groupId: number,
  version: number,
  publicValues: { initiatorClassical: Uint8Array; responderClassical: Uint8Array; encapsulationKey: Uint8Array; ciphertext: Uint8Array },
  classicalSecret: Secret,
  mlkemSecret: Secret,
  label: Uint8Array = HYBRID_LABEL,
): Secret {
  try {
    const fixedInfo = sha384([
      fixedInfoOf(label, version, groupId, [publicValues.initiatorClassical, publicValues.responderClassical, publicValues.encapsulationKey, publicValues.ciphertext]),
    ]);
    return hkdf.hkdf(hkdf.HkdfDigest.SHA384, label, [classicalSecret, mlkemSecret], fixedInfo, HYBRID_SECRET_SIZE);
  } finally {
    destroyAll(classicalSecret, mlkemSecret);
  }
}

/**
 * Long-term public keys (PublicIdentityKey bytes) whose ML-KEM half is parsed once, on the first
 * encapsulation to it, and reused: parsing an encapsulation key (the FIPS 203 check and the
 * matrix expansion) is about a third of an encapsulation. Weak: an entry lives as long as the
 * Buffer it is keyed by. `copy` is the key as parsed, so a Buffer changed since is parsed anew.
 */
const staticKeys = new WeakMap<Uint8Array, { copy?: Buffer; parsed?: PublicKey; fips?: boolean } | undefined>();

/** Marks `bytes` (a long-term public key in the client share format) for parse-once encapsulation. */
export function markStaticPublicKey(bytes: Uint8Array): void {
  if (!staticKeys.has(bytes)) staticKeys.set(bytes, undefined);
}

/** The parsed ML-KEM key of a marked long-term key, or the bytes themselves (parsed by the encapsulation). */
function encapsulationKeyOf(kem: MlKem, share: Uint8Array, ek: Uint8Array): EncapsulationKey {
  if (!staticKeys.has(share)) return ek;
  const entry = staticKeys.get(share);
  // A handle belongs to the library context (FIPS or standard) it was parsed in.
  if (entry?.parsed !== undefined && entry.fips === cryptoPolicy.fips && entry.copy!.equals(ek)) return entry.parsed;
  let parsed: PublicKey;
  try {
    parsed = kem.importPublicKey(ek);
  } catch {
    return ek; // an invalid key: the encapsulation reports it as it always has
  }
  staticKeys.set(share, { copy: Buffer.from(ek), parsed, fips: cryptoPolicy.fips });
  return parsed;
}

function hybrid(id: KemGroupId, option: string, classical: Classical, kem: MlKem): KemGroupSpec {
  const c = classical.publicKeySize;
  const clientShareSize = c + kem.sizes.publicKey;
  const serverShareSize = c + kem.sizes.ciphertext;
  /** K from a server-format share, once ML-KEM's secret `zm` is known (consumes it). */
  const completeDecapsulation = (
    cl: { privateKey: PrivateKey; publicKey: Buffer },
    encapsulationKey: Uint8Array,
    serverShare: Uint8Array,
    version: number,
    zm: Secret,
    label: Uint8Array,
  ): Secret => {
    const serverClassical = serverShare.subarray(0, c);
    let zc: Secret;
    try {
      zc = classical.derive(cl.privateKey, serverClassical);
    } catch (err) {
      zm.destroy();
      throw err;
    }
    return combine(id, version, { initiatorClassical: cl.publicKey, responderClassical: serverClassical, encapsulationKey, ciphertext: serverShare.subarray(c) }, zc, zm, label);
  };
  const staticKeyOf = (cl: { privateKey: PrivateKey; publicKey: Buffer }, pq: { privateKey: PrivateKey; publicKey: Buffer }): StaticKemKeyPair => {
    let destroyed = false;
    return {
      group: spec,
      publicKey: Buffer.concat([cl.publicKey, pq.publicKey]),
      decapsulate(ciphertext, version, label) {
        if (destroyed) throw qtError(ErrorCode.INVALID_STATE, 'this key was destroyed');
        checkBytes(ciphertext, 'ciphertext', serverShareSize);
        return completeDecapsulation(cl, pq.publicKey, ciphertext, version, kem.decapsulate(pq.privateKey, ciphertext.subarray(c)), label);
      },
      privateKeys: () => ({ classical: cl.privateKey, mlkem: pq.privateKey }),
      destroy() {
        destroyed = true;
        destroyAll(cl.privateKey, pq.privateKey);
      },
    };
  };
  /** The client's share from its key pairs, after the FIPS pairwise test (P-384's runs natively). */
  const clientShareOf = (cl: { privateKey: PrivateKey; publicKey: Buffer }, pq: { privateKey: PrivateKey; publicKey: Buffer }): ClientKeyShare => {
    if (cryptoPolicy.checkGroupKeyPair) {
      try {
        cryptoPolicy.checkGroupKeyPair({ kem, mlkemPrivateKey: pq.privateKey, encapsulationKey: pq.publicKey, x25519: classical === X25519 ? cl : undefined });
      } catch (err) {
        destroyAll(cl.privateKey, pq.privateKey);
        throw err;
      }
    }
    let spent = false;
    const destroy = () => {
      spent = true;
      destroyAll(cl.privateKey, pq.privateKey);
    };
    const complete = (serverShare: Uint8Array, version: number, zm: Secret): Secret => completeDecapsulation(cl, pq.publicKey, serverShare, version, zm, HYBRID_LABEL);
    const begin = (serverShare: Uint8Array): Uint8Array => {
      if (spent) throw qtError(ErrorCode.INVALID_STATE, 'this key share was already used');
      checkBytes(serverShare, 'serverShare', serverShareSize);
      return serverShare.subarray(c);
    };
    return {
      group: spec,
      share: Buffer.concat([cl.publicKey, pq.publicKey]),
      finish(serverShare, version) {
        try {
          return complete(serverShare, version, kem.decapsulate(pq.privateKey, begin(serverShare)));
        } finally {
          destroy();
        }
      },
      async finishAsync(serverShare, version) {
        try {
          return complete(serverShare, version, await kem.decapsulateAsync(pq.privateKey, begin(serverShare)));
        } finally {
          destroy();
        }
      },
      destroy,
    };
  };
  /**
   * X25519 groups in standard mode run each side's step as one native call (crypto/hybrid.ts):
   * the same K, fewer crossings and handles, and a whole step per threadpool job when offloaded.
   */
  const native = classical === X25519;
  const nativeNow = () => native && oneCall.hybridAvailable();
  /** A client share made by one native call; its K comes from one call too. */
  const nativeClientShare = (keys: oneCall.HybridClientKeys): ClientKeyShare => {
    let spent = false;
    const destroy = () => {
      spent = true;
      destroyAll(keys.classical, keys.mlkem);
    };
    const begin = (serverShare: Uint8Array) => {
      if (spent) throw qtError(ErrorCode.INVALID_STATE, 'this key share was already used');
      checkBytes(serverShare, 'serverShare', serverShareSize);
    };
    return {
      group: spec,
      share: keys.share,
      finish(serverShare, version) {
        try {
          begin(serverShare);
          return oneCall.hybridDecapsulate(id, version, keys, serverShare, HYBRID_LABEL);
        } finally {
          destroy();
        }
      },
      async finishAsync(serverShare, version) {
        try {
          begin(serverShare);
          return await oneCall.hybridDecapsulateAsync(id, version, keys, serverShare, HYBRID_LABEL);
        } finally {
          destroy();
        }
      },
      destroy,
    };
  };
  /** The server's share and K for a client share; `encapsulate` is ML-KEM's, sync or on the threadpool. */
  const serverShareOf = <R extends { share: Buffer; secret: Secret } | Promise<{ share: Buffer; secret: Secret }>>(
    clientShare: Uint8Array,
    version: number,
    fixed: FixedServerShare | undefined,
    encapsulate: (ek: EncapsulationKey) => R extends Promise<unknown> ? Promise<Encapsulation> : Encapsulation,
    label: Uint8Array = HYBRID_LABEL,
  ): R => {
    checkBytes(clientShare, 'clientShare', clientShareSize);
    const clientClassical = clientShare.subarray(0, c);
    const encapsulationKey = clientShare.subarray(c);
    const cl = fixed ? { privateKey: fixed.classical, publicKey: classical.publicKeyOf(fixed.classical) } : classical.generate();
    let zc: Secret | undefined;
    const assemble = (enc: Encapsulation) => {
      const secret = combine(id, version, { initiatorClassical: clientClassical, responderClassical: cl.publicKey, encapsulationKey, ciphertext: enc.ciphertext }, zc!, enc.sharedSecret, label);
      zc = undefined; // consumed by combine
      return { share: Buffer.concat([cl.publicKey, enc.ciphertext]), secret };
    };
    const release = () => {
      zc?.destroy();
      cl.privateKey.destroy();
    };
    try {
      zc = classical.derive(cl.privateKey, clientClassical);
      const enc = encapsulate(encapsulationKeyOf(kem, clientShare, encapsulationKey));
      if (enc instanceof Promise) {
        return enc.then(assemble).finally(release) as R;
      }
      const out = assemble(enc);
      release();
      return out as R;
    } catch (err) {
      release();
      throw err;
    }
  };
  const spec: KemGroupSpec = {
    id,
    option,
    displayName: `${classical.name} + ${kem.name}`,
    fipsApproved: classical.fipsApproved,
    clientShareSize,
    serverShareSize,
    permitted: () => !(cryptoPolicy.fips && cryptoPolicy.strict && !classical.fipsApproved),
    generateClientShare(fixed?: FixedClientShare): ClientKeyShare {
      if (!fixed && nativeNow()) return nativeClientShare(oneCall.hybridClientShare(id));
      const cl = fixed ? { privateKey: fixed.classical, publicKey: classical.publicKeyOf(fixed.classical) } : classical.generate();
      return clientShareOf(cl, kem.generateKeyPair(fixed?.mlkemSeed));
    },
    async generateClientShareAsync(): Promise<ClientKeyShare> {
      if (nativeNow()) return nativeClientShare(await oneCall.hybridClientShareAsync(id));
      const pq = await kem.generateKeyPairAsync();
      let cl;
      try {
        cl = classical.generate();
      } catch (err) {
        pq.privateKey.destroy();
        throw err;
      }
      return clientShareOf(cl, pq);
    },
    encapsulate(clientShare, version, fixed, label) {
      // Long-term keys (marked) keep the path that parses their ML-KEM key once.
      if (!fixed && nativeNow() && !staticKeys.has(clientShare)) {
        checkBytes(clientShare, 'clientShare', clientShareSize);
        return oneCall.hybridEncapsulate(id, version, clientShare, label ?? HYBRID_LABEL);
      }
      return serverShareOf(clientShare, version, fixed, (ek) => kem.encapsulate(ek, fixed?.coins), label);
    },
    encapsulateAsync(clientShare, version) {
      if (nativeNow()) {
        checkBytes(clientShare, 'clientShare', clientShareSize);
        return oneCall.hybridEncapsulateAsync(id, version, clientShare, HYBRID_LABEL);
      }
      return serverShareOf(clientShare, version, undefined, (ek) => kem.encapsulateAsync(ek));
    },
    generateStaticKey() {
      const cl = classical.generate();
      let pq;
      try {
        pq = kem.generateKeyPair();
      } catch (err) {
        cl.privateKey.destroy();
        throw err;
      }
      return staticKeyOf(cl, pq);
    },
    staticKeyFrom(classicalKey, mlkemKey) {
      return staticKeyOf({ privateKey: classicalKey, publicKey: classical.publicKeyOf(classicalKey) }, { privateKey: mlkemKey, publicKey: kem.publicKeyOf(mlkemKey) });
    },
  };
  return spec;
}

/** Every group, in our preference order (the FIPS default is chosen by {@link defaultKemGroup}). */
export const KEM_GROUPS: readonly KemGroupSpec[] = Object.freeze([
  hybrid(KemGroup.X25519_MLKEM1024, 'x25519-mlkem1024', X25519, mlkem1024),
  hybrid(KemGroup.P384_MLKEM1024, 'p384-mlkem1024', P384, mlkem1024),
  hybrid(KemGroup.X25519_MLKEM768, 'x25519-mlkem768', X25519, mlkem768),
]);

export function kemGroupById(id: number): KemGroupSpec | undefined {
  return KEM_GROUPS.find((g) => g.id === id);
}

export function kemGroupByOption(option: string): KemGroupSpec {
  const g = KEM_GROUPS.find((s) => s.option === option);
  if (g === undefined) return invalidArgument(`unknown key exchange group ${JSON.stringify(option)}`);
  return g;
}

/** X25519 + ML-KEM-1024, or P-384 + ML-KEM-1024 in FIPS mode (both halves approved). */
export function defaultKemGroup(): KemGroupSpec {
  return kemGroupById(cryptoPolicy.fips ? KemGroup.P384_MLKEM1024 : KemGroup.X25519_MLKEM1024)!;
}
