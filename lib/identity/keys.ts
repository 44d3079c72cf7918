/**
 * Identity keys of pinned-key authentication (docs/PROTOCOL.md §13): a long-term key pair of a
 * hybrid group, the same key types as a v2 client key share. A peer is known by its public key,
 * or by the key's fingerprint, the short form users compare and write into authorized-peers
 * files. Private halves are native handles (lib/protocol/v2/groups.ts StaticKemKeyPair).
 *
 * Text form of a public key (one line, as ssh writes them):
 *   qtun-<group option> <base64(public key)> [comment]
 * Fingerprint: "SHA256:" ‖ base64 without padding of SHA-256(BE16(group id) ‖ public key).
 */
import { ErrorCode, invalidArgument, qtError } from '../errors.js';
import { checkBytes } from '../crypto/bytes.js';
import { sha256 } from '../crypto/hash.js';
import { defaultKemGroup, type KemGroupSpec, kemGroupById, kemGroupByOption, KEM_GROUPS, markStaticPublicKey, type StaticKemKeyPair } from '../protocol/v2/groups.js';
import type { PrivateKey } from '../native.js';

/** The prefix of a public key's type word: `qtun-x25519-mlkem1024`. */
export const PUBLIC_KEY_PREFIX = 'qtun-';

function groupOf(group: string | KemGroupSpec | undefined): KemGroupSpec {
  if (group === undefined) return defaultKemGroup();
  return typeof group === 'string' ? kemGroupByOption(group) : group;
}

/** SHA256:base64 of the key blob BE16(group) ‖ key. */
export function fingerprintOf(group: KemGroupSpec, publicKey: Uint8Array): string {
  const blob = Buffer.alloc(2 + publicKey.length);
  blob.writeUInt16BE(group.id, 0);
  blob.set(publicKey, 2);
  return `SHA256:${sha256(blob).toString('base64').replace(/=+$/, '')}`;
}

/** Whether `text` has the form of a fingerprint (it says nothing about which key). */
export function isFingerprint(text: string): boolean {
  return /^SHA256:[A-Za-z0-9+/]{43}$/.test(text);
}

/**
 * The keys of authorized-peers lists, by a tag of their bytes, so that the key a client presents
 * comes back as the listed object, with its fingerprint computed and its ML-KEM key parsed once
 * (groups.ts) instead of on every handshake. Only lists add to it (never a peer); entries are weak
 * and go with the keys.
 */
const known = new Map<string, WeakRef<PublicIdentityKey>>();
const forgetKnown = new FinalizationRegistry<string>((tag) => {
  if (known.get(tag)?.deref() === undefined) known.delete(tag);
});

/** Group and the last 32 bytes (ML-KEM's random seed rho): equal keys share it; equality is checked on use. */
function tagOf(groupId: number, bytes: Uint8Array): string {
  return `${groupId}:${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1', bytes.length - 32)}`;
}

function rememberKey(key: PublicIdentityKey): void {
  const tag = tagOf(key.group.id, key.bytes);
  if (known.get(tag)?.deref() === key) return;
  known.set(tag, new WeakRef(key));
  forgetKnown.register(key, tag);
}

/** A peer's public identity key. Immutable; compare with {@link PublicIdentityKey.equals}. */
export class PublicIdentityKey {
  /** The hybrid group the key belongs to. */
  readonly group: KemGroupSpec;
  /** classical public key ‖ ML-KEM encapsulation key. */
  readonly bytes: Buffer;
  /** `SHA256:…`, what users compare. */
  readonly fingerprint: string;

  private constructor(group: KemGroupSpec, bytes: Uint8Array) {
    this.group = group;
    this.bytes = Buffer.from(bytes);
    this.fingerprint = fingerprintOf(group, this.bytes);
    markStaticPublicKey(this.bytes);
    Object.freeze(this);
  }

  /** A key from its group and bytes (the group's client share size; ERR_QT_INVALID_KEY otherwise). */
  static fromBytes(group: string | KemGroupSpec, bytes: Uint8Array): PublicIdentityKey {
    const g = groupOf(group);
    checkBytes(bytes, 'bytes');
    if (bytes.length !== g.clientShareSize) throw qtError(ErrorCode.INVALID_KEY, `a ${g.option} public key is ${g.clientShareSize} bytes, not ${bytes.length}`);
    const listed = known.get(tagOf(g.id, bytes))?.deref();
    if (listed !== undefined && listed.group === g && listed.bytes.equals(bytes)) return listed;
    return new PublicIdentityKey(g, bytes);
  }

  /** A key from the wire form `BE16(group id) ‖ key` (the identity block of §13.2). */
  static fromBlob(blob: Uint8Array): PublicIdentityKey {
    if (blob.length < 2) throw qtError(ErrorCode.MALFORMED_MESSAGE, 'an identity key blob is at least 2 bytes');
    const id = (blob[0]! << 8) | blob[1]!;
    const group = kemGroupById(id);
    if (group === undefined) throw qtError(ErrorCode.INVALID_KEY, `unknown key group 0x${id.toString(16).padStart(4, '0')}`);
    return PublicIdentityKey.fromBytes(group, blob.subarray(2));
  }

  /**
   * A key from its one-line text form `qtun-<group> <base64> [comment]` (a comment is allowed and
   * ignored here; `parsePublicKeyLine` returns it).
   */
  static parse(text: string): PublicIdentityKey {
    return parsePublicKeyLine(text).key;
  }

  /** `BE16(group id) ‖ key`. */
  get blob(): Buffer {
    const out = Buffer.alloc(2 + this.bytes.length);
    out.writeUInt16BE(this.group.id, 0);
    this.bytes.copy(out, 2);
    return out;
  }

  /** The one-line text form, with an optional comment. */
  toString(comment?: string): string {
    const line = `${PUBLIC_KEY_PREFIX}${this.group.option} ${this.bytes.toString('base64')}`;
    return comment ? `${line} ${comment.replace(/[\r\n]/g, ' ')}` : line;
  }

  /** True when `other` is the same key of the same group. */
  equals(other: PublicIdentityKey): boolean {
    return this.group.id === other.group.id && this.bytes.equals(other.bytes);
  }
}

/** One public key line: the key and its comment (empty when there is none). */
export function parsePublicKeyLine(text: string): { key: PublicIdentityKey; comment: string } {
  if (typeof text !== 'string') invalidArgument('a public key must be a string');
  // Trimmed first, and the comment starts at a non-blank: the former `(?:\s+(.*?))?\s*$` took
  // seconds on a line with a few thousand blanks before a line break.
  // eslint-disable-next-line security/detect-unsafe-regex -- linear: `\s+` and `\S` are disjoint, so the comment has one start
  const m = /^(\S+)\s+([A-Za-z0-9+/=]+)(?:\s+(\S.*))?$/.exec(text.trim());
  if (m === null || !m[1]!.startsWith(PUBLIC_KEY_PREFIX)) {
    throw qtError(ErrorCode.INVALID_KEY, `not a quantum-tunnel public key (expected "${PUBLIC_KEY_PREFIX}<group> <base64>")`);
  }
  const option = m[1]!.slice(PUBLIC_KEY_PREFIX.length);
  const group = KEM_GROUPS.find((g) => g.option === option);
  if (group === undefined) throw qtError(ErrorCode.INVALID_KEY, `unknown key type ${m[1]}`);
  const bytes = Buffer.from(m[2]!, 'base64');
  if (bytes.toString('base64') !== m[2]) throw qtError(ErrorCode.INVALID_KEY, 'the key is not canonical base64');
  return { key: PublicIdentityKey.fromBytes(group, bytes), comment: m[3] ?? '' };
}

/**
 * An identity key pair: ours, to prove who we are (a server's key, or a client's when the server
 * authorizes clients by key). The private half never leaves native memory except through an
 * explicit export to a key file. Destroy it when no listener or dialer uses it any more.
 */
export class IdentityKey {
  /** The public half: give it (or its fingerprint) to peers that pin or authorize this key. */
  readonly publicKey: PublicIdentityKey;
  readonly #pair: StaticKemKeyPair;

  private constructor(pair: StaticKemKeyPair) {
    this.#pair = pair;
    this.publicKey = PublicIdentityKey.fromBytes(pair.group, pair.publicKey);
  }

  /** A fresh key pair of `group` (default: the mode's default group, P-384 + ML-KEM-1024 in FIPS mode). */
  static generate(group?: string | KemGroupSpec): IdentityKey {
    return new IdentityKey(groupOf(group).generateStaticKey());
  }

  /** A key pair from its private halves (the pair takes both handles). */
  static fromPrivateKeys(group: string | KemGroupSpec, classical: PrivateKey, mlkem: PrivateKey): IdentityKey {
    return new IdentityKey(groupOf(group).staticKeyFrom(classical, mlkem));
  }

  /** The key's hybrid KEM group. */
  get group(): KemGroupSpec {
    return this.#pair.group;
  }

  /** `SHA256:…` of the public key, as `quantum-vpn fingerprint` prints it. */
  get fingerprint(): string {
    return this.publicKey.fingerprint;
  }

  /** @internal The key pair for the handshake. */
  get keyPair(): StaticKemKeyPair {
    return this.#pair;
  }

  /** Frees the private key (OpenSSL cleanses it). */
  destroy(): void {
    this.#pair.destroy();
  }
}

/** An entry of an authorized-peers list: a key or a fingerprint, with a comment. */
export interface AuthorizedPeer {
  /** The public key, when the entry gave one (absent for a fingerprint-only entry). */
  key?: PublicIdentityKey;
  /** `SHA256:…` of the key. */
  fingerprint: string;
  /** The entry's comment ('' if none); reported in `peerIdentity.comment`. */
  comment: string;
}

/**
 * The peers a server lets in by key (an authorized-peers file, or a list in code): each entry a
 * public key or its fingerprint. Lookup is by fingerprint, which the presented key determines.
 */
export class AuthorizedPeers {
  readonly #byFingerprint = new Map<string, AuthorizedPeer>();
  /** The keys that fingerprint entries admitted. */
  readonly #learned = new Map<string, PublicIdentityKey>();

  constructor(entries: Iterable<PublicIdentityKey | string | AuthorizedPeer> = []) {
    for (const e of entries) this.add(e);
  }

  /** Adds a key, a fingerprint, a public key line, or an entry. */
  add(entry: PublicIdentityKey | string | AuthorizedPeer): void {
    let peer: AuthorizedPeer;
    if (entry instanceof PublicIdentityKey) peer = { key: entry, fingerprint: entry.fingerprint, comment: '' };
    else if (typeof entry === 'string') {
      const text = entry.trim();
      if (isFingerprint(text.split(/\s+/)[0]!)) {
        const [fingerprint, ...rest] = text.split(/\s+/);
        peer = { fingerprint: fingerprint!, comment: rest.join(' ') };
      } else {
        const { key, comment } = parsePublicKeyLine(text);
        peer = { key, fingerprint: key.fingerprint, comment };
      }
    } else peer = entry;
    if (peer.key instanceof PublicIdentityKey) rememberKey(peer.key);
    this.#byFingerprint.set(peer.fingerprint, peer);
  }

  /** The entry that admits `key`, if any. */
  lookup(key: PublicIdentityKey): AuthorizedPeer | undefined {
    const peer = this.#byFingerprint.get(key.fingerprint);
    if (peer?.key !== undefined && peer.key !== key && !peer.key.equals(key)) return undefined;
    if (peer?.key === undefined && peer !== undefined && !this.#learned.has(peer.fingerprint)) {
      // A fingerprint entry admitted its key: keep that key (one per entry) so the next
      // handshakes get it back from fromBlob, parsed and hashed already, like a key entry's.
      this.#learned.set(peer.fingerprint, key);
      rememberKey(key);
    }
    return peer;
  }

  /** How many peers the list holds. */
  get size(): number {
    return this.#byFingerprint.size;
  }
}
