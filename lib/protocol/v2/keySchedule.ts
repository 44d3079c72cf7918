/**
 * Protocol v2's key schedule (docs/PROTOCOL.md §6): RFC 8446 §7.1 with
 * HKDF-SHA-384 and our own label prefix. Every secret is a native handle; only the Finished MACs
 * and exporter output, public by design, come back as bytes.
 *
 * The digest and label prefix are parameters (default SHA-384 and "qtun2 ") so that the same code
 * reproduces TLS 1.3's published traces (SHA-256, "tls13 ") in the tests.
 */
import type { Secret } from '../../native.js';
import { invalidArgument } from '../../errors.js';
import { sha384 } from '../../crypto/hash.js';
import * as hkdf from '../../crypto/hkdf.js';
import type { AeadSuiteId, RecordAeadContext } from '../../crypto/aead.js';

/** The hash and label prefix a schedule uses. */
export interface ScheduleParams {
  digest: hkdf.HkdfDigestId;
  labelPrefix: string;
  /** The digest over public messages (the transcript hash). */
  hash: (messages: readonly Uint8Array[]) => Buffer;
}

/** v2's parameters: SHA-384 everywhere, labels "qtun2 ...". */
export const V2_SCHEDULE: ScheduleParams = Object.freeze({
  digest: hkdf.HkdfDigest.SHA384,
  labelPrefix: 'qtun2 ',
  hash: (messages: readonly Uint8Array[]) => sha384([...messages]),
});

/** The encoded HkdfLabel of RFC 8446 §7.1: BE16(length) ‖ vec8(prefix ‖ label) ‖ vec8(context). */
export function hkdfLabel(params: ScheduleParams, label: string, context: Uint8Array, length: number): Buffer {
  const full = labelBytes(params, label);
  if (full.length > 255 || context.length > 255) invalidArgument('a label and its context are at most 255 bytes each');
  const out = Buffer.allocUnsafe(2 + 1 + full.length + 1 + context.length);
  out.writeUInt16BE(length, 0);
  out[2] = full.length;
  full.copy(out, 3);
  out[3 + full.length] = context.length;
  out.set(context, 4 + full.length);
  return out;
}

/** prefix ‖ label as ASCII, encoded once per parameter set and label (labels are a fixed set). */
const labelCache = new WeakMap<ScheduleParams, Map<string, Buffer>>();

function labelBytes(params: ScheduleParams, label: string): Buffer {
  let labels = labelCache.get(params);
  if (labels === undefined) labelCache.set(params, (labels = new Map<string, Buffer>()));
  let full = labels.get(label);
  if (full === undefined) {
    full = Buffer.from(params.labelPrefix + label, 'ascii');
    // Exporter labels come from the application: only the protocol's own few are kept.
    if (labels.size < 64) labels.set(label, full);
  }
  return full;
}

/** HKDF-Expand-Label(Secret, Label, Context, Length) → a secret. */
export function expandLabel(params: ScheduleParams, secret: Secret, label: string, context: Uint8Array, length: number): Secret {
  return hkdf.expand(params.digest, secret, hkdfLabel(params, label, context, length), length);
}

/** Derive-Secret(Secret, Label, Messages), given the transcript hash of Messages. */
export function deriveSecret(params: ScheduleParams, secret: Secret, label: string, transcriptHash: Uint8Array): Secret {
  return expandLabel(params, secret, label, transcriptHash, hkdf.hashLength(params.digest));
}

/**
 * HKDF-Expand-Label with a public output (exporters only): computed from HMAC as RFC 5869
 * defines HKDF-Expand, since the result is meant to leave the library.
 */
export function expandLabelPublic(params: ScheduleParams, secret: Secret, label: string, context: Uint8Array, length: number): Buffer {
  const info = hkdfLabel(params, label, context, length);
  const hashLen = hkdf.hashLength(params.digest);
  if (!Number.isInteger(length) || length < 1 || length > 255 * hashLen) invalidArgument(`length must be 1 to ${255 * hashLen}`);
  const blocks: Buffer[] = [];
  let previous: Buffer = Buffer.alloc(0);
  for (let i = 1; blocks.length * hashLen < length; i++) {
    previous = hkdf.hmac(params.digest, secret, [previous, info, Buffer.of(i)]);
    blocks.push(previous);
  }
  return Buffer.concat(blocks).subarray(0, length);
}

/** What a schedule computes once per parameter set: Hash(""), and the encoded labels it reuses. */
interface Constants {
  emptyHash: Buffer;
  /** Derive-Secret(·, "derived", "")'s HkdfLabel. */
  derived: Buffer;
  finished: Buffer;
  /** The record key and IV labels of AES-256-GCM / ChaCha20-Poly1305 (32-byte key, 12-byte IV). */
  key: Buffer;
  iv: Buffer;
  /**
   * Derive-Secret(Early Secret, "derived", "") without a PSK: a public constant (its inputs are
   * all zeros), so a handshake without PSK starts its schedule at the handshake secret's extract.
   */
  noPskDerived: Secret;
}

const constantsOf = new WeakMap<ScheduleParams, Constants>();

function constants(params: ScheduleParams): Constants {
  let c = constantsOf.get(params);
  if (c === undefined) {
    const hashLen = hkdf.hashLength(params.digest);
    const emptyHash = params.hash([]);
    const derived = hkdfLabel(params, 'derived', emptyHash, hashLen);
    const early = hkdf.extract(params.digest, null, [Buffer.alloc(hashLen)]);
    let noPskDerived: Secret;
    try {
      noPskDerived = hkdf.expand(params.digest, early, derived, hashLen);
    } finally {
      early.destroy();
    }
    c = {
      emptyHash,
      derived,
      finished: hkdfLabel(params, 'finished', Buffer.alloc(0), hashLen),
      key: hkdfLabel(params, 'key', Buffer.alloc(0), 32),
      iv: hkdfLabel(params, 'iv', Buffer.alloc(0), 12),
      noPskDerived,
    };
    constantsOf.set(params, c);
  }
  return c;
}

/**
 * The secrets of one handshake, in the order the schedule produces them. Owner destroys. Each
 * step is one native call: the "derived" salt, the finished_key and record keys are computed
 * inside the call that uses them and never become handles.
 */
export class KeySchedule {
  readonly #params: ScheduleParams;
  readonly #hashLen: number;
  readonly #c: Constants;

  constructor(params: ScheduleParams = V2_SCHEDULE) {
    this.#params = params;
    this.#hashLen = hkdf.hashLength(params.digest);
    this.#c = constants(params);
  }

  transcriptHash(messages: readonly Uint8Array[]): Buffer {
    return this.#params.hash(messages);
  }

  /** Early Secret = HKDF-Extract(0, PSK or 0^HashLen). Without a PSK, pass `undefined` on instead. */
  earlySecret(psk?: Secret): Secret {
    return hkdf.extract(this.#params.digest, null, [psk ?? Buffer.alloc(this.#hashLen)]);
  }

  /** The binder key: "ext binder" for an external PSK, "res binder" for a resumption PSK. */
  binderKey(early: Secret, kind: 'external' | 'resumption'): Secret {
    return deriveSecret(this.#params, early, kind === 'external' ? 'ext binder' : 'res binder', this.#c.emptyHash);
  }

  /**
   * Key Secret ks = HKDF-Extract(Derive-Secret(early, "derived", ""), K_s): pinned-key mode only
   * (§13), K_s the encapsulation to the server's key. It takes the early secret's place below.
   * `early` undefined: the early secret without a PSK.
   */
  keySecret(early: Secret | undefined, serverKeySecret: Secret): Secret {
    return this.#next(early, [serverKeySecret]);
  }

  /** The identity block's secret (§13.2): Derive-Secret(ks, "c identity", ""). */
  identitySecret(ks: Secret): Secret {
    return deriveSecret(this.#params, ks, 'c identity', this.#c.emptyHash);
  }

  /**
   * Handshake Secret = HKDF-Extract(Derive-Secret(early or ks, "derived", ""), K ‖ K_c), K_c (the
   * encapsulation to the client's key, §13) only when the server authenticates the client by key.
   * `early` undefined: the early secret without a PSK.
   */
  handshakeSecret(early: Secret | undefined, sharedSecret: Secret, clientKeySecret?: Secret): Secret {
    return this.#next(early, clientKeySecret === undefined ? [sharedSecret] : [sharedSecret, clientKeySecret]);
  }

  /** Master Secret = HKDF-Extract(Derive-Secret(handshake, "derived", ""), 0). */
  masterSecret(handshake: Secret): Secret {
    return this.#next(handshake, [Buffer.alloc(this.#hashLen)]);
  }

  #next(previous: Secret | undefined, ikm: Array<Secret | Buffer>): Secret {
    if (previous === undefined) return hkdf.extract(this.#params.digest, this.#c.noPskDerived, ikm);
    return hkdf.extractWithDerivedSalt(this.#params.digest, previous, this.#c.derived, ikm);
  }

  /** Derive-Secret(secret, label_i, ·) for each label over one transcript hash, in one call. */
  #deriveSecrets(secret: Secret, labels: readonly string[], transcriptHash: Uint8Array): Secret[] {
    const infos = labels.map((label) => hkdfLabel(this.#params, label, transcriptHash, this.#hashLen));
    return hkdf.expandSecrets(this.#params.digest, secret, infos, infos.map(() => this.#hashLen));
  }

  /** Client and server handshake traffic secrets, over the hash of ClientHello ‖ ServerHello. */
  handshakeTrafficSecrets(handshake: Secret, helloHash: Uint8Array): { client: Secret; server: Secret } {
    const [client, server] = this.#deriveSecrets(handshake, ['c hs traffic', 's hs traffic'], helloHash);
    return { client: client!, server: server! };
  }

  /** Client and server application traffic secrets and the exporter master secret, over CH … server Finished. */
  applicationSecrets(master: Secret, serverFinishedHash: Uint8Array): { client: Secret; server: Secret; exporter: Secret } {
    const [client, server, exporter] = this.#deriveSecrets(master, ['c ap traffic', 's ap traffic', 'exp master'], serverFinishedHash);
    return { client: client!, server: server!, exporter: exporter! };
  }

  resumptionMasterSecret(master: Secret, clientFinishedHash: Uint8Array): Secret {
    return deriveSecret(this.#params, master, 'res master', clientFinishedHash);
  }

  /** The record protection key and IV of a traffic secret. */
  trafficKeys(secret: Secret, keyLength = 32, ivLength = 12): { key: Secret; iv: Secret } {
    return {
      key: expandLabel(this.#params, secret, 'key', Buffer.alloc(0), keyLength),
      iv: expandLabel(this.#params, secret, 'iv', Buffer.alloc(0), ivLength),
    };
  }

  /**
   * A record AEAD context for `suite` (crypto/aead.ts) keyed by a traffic secret's key and IV
   * ({@link trafficKeys} with a 32-byte key), derived inside the one native call that creates it.
   */
  recordAead(secret: Secret, suite: AeadSuiteId): RecordAeadContext {
    return hkdf.expandRecordAead(this.#params.digest, secret, suite, this.#c.key, this.#c.iv);
  }

  /** The next generation of an application traffic secret (KeyUpdate). */
  nextTrafficSecret(secret: Secret): Secret {
    return expandLabel(this.#params, secret, 'traffic upd', Buffer.alloc(0), this.#hashLen);
  }

  /** verify_data = HMAC(finished_key, transcript hash), finished_key from a traffic (or binder) secret. */
  finishedMac(base: Secret, transcriptHash: Uint8Array): Buffer {
    return hkdf.hmac(this.#params.digest, base, [transcriptHash], this.#c.finished);
  }

  /** Whether `mac` is the verify_data of `base` over `transcriptHash` (constant time). */
  verifyFinished(base: Secret, transcriptHash: Uint8Array, mac: Uint8Array): boolean {
    return hkdf.hmacVerify(this.#params.digest, base, [transcriptHash], mac, this.#c.finished);
  }

  /** RFC 8446 §7.5: TLS-Exporter(label, context, length) over the exporter master secret. */
  exporter(exporterMaster: Secret, label: string, context: Uint8Array, length: number): Buffer {
    const secret = deriveSecret(this.#params, exporterMaster, label, this.#c.emptyHash);
    try {
      return expandLabelPublic(this.#params, secret, 'exporter', this.#params.hash([context]), length);
    } finally {
      secret.destroy();
    }
  }
}
