/**
 * Protocol v2 test vectors (Appendix B of docs/PROTOCOL.md): the generator behind
 * scripts/v2-vectors.ts and the reproduction in test/protocol/v2-vectors.test.ts.
 *
 * Every value is computed in two independent ways that must agree:
 *
 *  (a) {@link runStateMachines}: the real ClientHandshakeV2 / ServerHandshakeV2 / SessionV2 /
 *      TicketIssuer, driven frame by frame without sockets, with the test-only `fixed` inputs; it
 *      yields every byte on the wire and the secrets a handshake hands to its session (read with
 *      the testing export);
 *  (b) {@link deriveDocument}: the specification followed step by step, written plainly below
 *      (HKDF-Expand-Label, the combiner, the key schedule, the record nonce, every encoding by
 *      hand) over a small set of primitives. It runs over two backends: the library's own
 *      primitives ({@link libraryPrimitives}: hkdf, HMAC, SHA-384, AEAD contexts, X25519, P-384,
 *      ML-KEM and ML-DSA-87 of the addon, and as cross-checks the library's expandLabel, combine,
 *      the AEAD record context, the identity keys' fingerprint and text form, and its X.509
 *      parsing and path validation) and a reference made of node:crypto and @noble/post-quantum
 *      ({@link referencePrimitives}), which shares no code with the library. The certificates of
 *      the certificate cases are read from their DER here, by hand, and their signatures, like
 *      every CertificateVerify signature, made and verified by each backend's ML-DSA-87.
 *
 * Importing this module generates nothing; scripts/v2-vectors.ts writes the files.
 */
import { createCipheriv, createECDH, createHash, createHmac, createPrivateKey, createPublicKey, diffieHellman } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ml_dsa87 } from '@noble/post-quantum/ml-dsa.js';
import { ml_kem1024, ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import type { PrivateKey, Secret } from '../../lib/native.js';
import { AEAD_SIZES, createAead, createRecordAead, seal as aeadSealLib, sealRecord as aeadSealRecordLib } from '../../lib/crypto/aead.js';
import { shake256, sha384 } from '../../lib/crypto/hash.js';
import * as hkdf from '../../lib/crypto/hkdf.js';
import * as mldsa from '../../lib/crypto/mldsa.js';
import { createSelfSignedCa, issueCertificate, parseCertificate, pem, verifyChain } from '../../lib/crypto/x509.js';
import { CertificateIdentity } from '../../lib/identity/certificates.js';
import { type MlKem, mlkem1024, mlkem768 } from '../../lib/crypto/mlkem.js';
import * as p384 from '../../lib/crypto/p384.js';
import * as x25519 from '../../lib/crypto/x25519.js';
import { info as cryptoInfo } from '../../lib/crypto/info.js';
import { CipherSuite, type CipherSuiteId } from '../../lib/protocol/constants.js';
import { type Frame, FrameReader } from '../../lib/protocol/frame.js';
import type { HandshakeStep } from '../../lib/protocol/handshake.js';
import type { SessionEvent } from '../../lib/protocol/session.js';
import { combine, type FixedServerShare, KEM_GROUPS, kemGroupById } from '../../lib/protocol/v2/groups.js';
import { AuthorizedPeers, IdentityKey, PublicIdentityKey } from '../../lib/identity/keys.js';
import { ClientHandshakeV2, type ResumptionOffer, ServerHandshakeV2, type V2HandshakeResult } from '../../lib/protocol/v2/handshake.js';
import { expandLabel as libExpandLabel, V2_SCHEDULE } from '../../lib/protocol/v2/keySchedule.js';
import { SessionV2 } from '../../lib/protocol/v2/session.js';
import { ClientTicketStore, clientTicketFromMessage, decodeNewSessionTicket, TicketIssuer } from '../../lib/protocol/v2/tickets.js';
import * as testing from '../../lib/testing.js';

// ---------------------------------------------------------------------------------------------
// Fixed parameters of the vectors

export const VECTORS_TITLE = 'Protocol v2 test vectors (Appendix B of docs/PROTOCOL.md)';
/** Every derived input is SHAKE-256 of this prefix, a scope (a case name or "global"), a space and the input's name. */
export const INPUT_PREFIX = 'qtun2 vector ';
export const PSK_IDENTITY = 'vector-psk';
export const SERVER_IDENTITY = 'vector-server';
export const TICKET_LIFETIME_SECONDS = 7200;
/** issuedAtMs of every ticket: 2026-01-01T00:00:00Z. */
export const TICKET_ISSUED_AT_MS = 1_767_225_600_000;
/** The ticket's age when the resumption handshake offers it. */
export const RESUMPTION_TICKET_AGE_MS = 2000;
export const EXPORTER_LABEL = 'EXPERIMENTAL vector';
export const EXPORTER_CONTEXT = 'ctx';
export const EXPORTER_LENGTHS = [32, 100] as const;

const VERSION = 0x0200;
const HASH_LEN = 48;
const EMPTY = Buffer.alloc(0);
const ZEROS = Buffer.alloc(HASH_LEN);
const HYBRID_LABEL = 'qtun v2 hybrid';
/** The role labels of the encapsulations to long-term keys (docs/PROTOCOL.md §13.1). */
const SERVER_KEY_LABEL = 'qtun v2 server key';
const CLIENT_KEY_LABEL = 'qtun v2 client key';
/** The key_auth extension type (§3.1, §13.2). */
const KEY_AUTH = 0x0001;
/** The text form of a public key starts with this and the group name (§13.1). */
const PUBLIC_KEY_TEXT_PREFIX = 'qtun-';
const LABEL_PREFIX = 'qtun2 ';
const RECORD_TYPE = 0x30;
const NO_PSK = 0xffff;

/** Inner content types (docs/PROTOCOL.md §5), named as there. */
const Inner = { HANDSHAKE: 0x01, DATA: 0x02, PING: 0x03, PONG: 0x04, CLOSE_NOTIFY: 0x05, KEY_UPDATE: 0x07, KEY_UPDATE_ACK: 0x08, NEW_SESSION_TICKET: 0x09 } as const;
const INNER_NAMES: Record<number, string> = {
  1: 'handshake',
  2: 'data',
  3: 'ping',
  4: 'pong',
  5: 'close_notify',
  7: 'key_update',
  8: 'key_update_ack',
  9: 'new_session_ticket',
};

type ClassicalKind = 'x25519' | 'p384';
type KemKind = 'ML-KEM-768' | 'ML-KEM-1024';

interface GroupDef {
  id: number;
  option: string;
  classical: ClassicalKind;
  kem: KemKind;
}

const GROUPS: readonly GroupDef[] = [
  { id: 0x0101, option: 'x25519-mlkem1024', classical: 'x25519', kem: 'ML-KEM-1024' },
  { id: 0x0102, option: 'p384-mlkem1024', classical: 'p384', kem: 'ML-KEM-1024' },
  { id: 0x0103, option: 'x25519-mlkem768', classical: 'x25519', kem: 'ML-KEM-768' },
];

const SUITES: Readonly<Record<string, CipherSuiteId>> = { 'aes-256-gcm': CipherSuite.AES_256_GCM, 'chacha20-poly1305': CipherSuite.CHACHA20_POLY1305 };
const CLASSICAL_PRIVATE_SIZE: Record<ClassicalKind, number> = { x25519: 32, p384: 48 };
/** The order of the P-384 group (SEC 2 / FIPS 186-5): private scalars are 1 ≤ d < n. */
const P384_ORDER = BigInt('0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973');

/**
 * 'key': the client pins the server's long-term key and stays anonymous; 'key-mutual': it also
 * presents its own key, which the server authorizes (docs/PROTOCOL.md §13). 'certificate': the
 * server authenticates by an ML-DSA-87 certificate and the client stays anonymous;
 * 'certificate-mutual': the server also sends a CertificateRequest and the client its certificate
 * (§14).
 */
export type AuthMode = 'none' | 'psk' | 'resumption' | 'key' | 'key-mutual' | 'certificate' | 'certificate-mutual';

/** Whether a mode authenticates by pinned keys (§13). */
export const isKeyMode = (auth: AuthMode): auth is 'key' | 'key-mutual' => auth === 'key' || auth === 'key-mutual';

/** Whether a mode authenticates by certificates (§14). */
export const isCertificateMode = (auth: AuthMode): auth is 'certificate' | 'certificate-mutual' => auth === 'certificate' || auth === 'certificate-mutual';

/** Sessions authenticated by pinned keys or certificates get no tickets (§13.5, §14.4). */
const issuesTickets = (auth: AuthMode): boolean => !isKeyMode(auth) && !isCertificateMode(auth);

export interface CaseSpec {
  name: string;
  group: GroupDef;
  suiteName: string;
  suite: CipherSuiteId;
  auth: AuthMode;
  /** For 'resumption': the case whose session issued the ticket. */
  resumes?: string;
}

function caseName(group: GroupDef, auth: AuthMode, suiteName: string): string {
  return `${group.option}/${auth}/${suiteName}`;
}

/**
 * The cases, in order: each group with no authentication, an external PSK, and resumption; then
 * ChaCha20-Poly1305; then each group with pinned keys, server key only and both keys; then
 * certificates, server only and both ways, in x25519-mlkem1024 and in p384-mlkem1024 (the FIPS
 * mode default, so that they run in strict FIPS mode too). Each group of cases is appended, so
 * that the earlier cases keep their numbers.
 */
export function caseSpecs(): CaseSpec[] {
  const out: CaseSpec[] = [];
  const aes = (group: GroupDef, auth: AuthMode): CaseSpec => ({ name: caseName(group, auth, 'aes-256-gcm'), group, suiteName: 'aes-256-gcm', suite: CipherSuite.AES_256_GCM, auth });
  for (const group of GROUPS) {
    for (const auth of ['none', 'psk', 'resumption'] as const) {
      const spec = aes(group, auth);
      if (auth === 'resumption') spec.resumes = caseName(group, 'none', 'aes-256-gcm');
      out.push(spec);
    }
  }
  const g = GROUPS[0]!;
  out.push({ name: caseName(g, 'none', 'chacha20-poly1305'), group: g, suiteName: 'chacha20-poly1305', suite: CipherSuite.CHACHA20_POLY1305, auth: 'none' });
  for (const group of GROUPS) for (const auth of ['key', 'key-mutual'] as const) out.push(aes(group, auth));
  for (const group of GROUPS.filter((x) => x.kem === 'ML-KEM-1024')) for (const auth of ['certificate', 'certificate-mutual'] as const) out.push(aes(group, auth));
  return out;
}

/** What the client offers: the case's suite first, then the other; the case's group first (its key share), then the others. */
function offeredSuites(spec: CaseSpec): CipherSuiteId[] {
  return [spec.suite, ...Object.values(SUITES).filter((s) => s !== spec.suite)];
}

function offeredGroups(spec: CaseSpec): number[] {
  return [spec.group.id, ...GROUPS.filter((g) => g.id !== spec.group.id).map((g) => g.id)];
}

/** The application data of the session script. */
export const TEXTS = {
  clientEpoch2: 'hello from client',
  serverEpoch2: 'hello from server',
  clientEpoch3: 'epoch 3 from client',
  serverEpoch3: 'epoch 3 from server',
  clientEpoch4: 'epoch 4 from client',
  serverEpoch4: 'epoch 4 from server',
} as const;

// ---------------------------------------------------------------------------------------------
// Byte helpers

const ascii = (s: string): Buffer => Buffer.from(s, 'ascii');
const cat = (...parts: Uint8Array[]): Buffer => Buffer.concat(parts);
/** BE(size) of n: big-endian, `size` bytes. */
function be(size: number, n: number): Buffer {
  if (!Number.isSafeInteger(n) || n < 0 || BigInt(n) >= 1n << BigInt(8 * size)) throw new Error(`${n} does not fit ${size} bytes`);
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b.subarray(8 - size);
}
const u8 = (n: number): Buffer => Buffer.of(n);
const u16 = (n: number): Buffer => be(2, n);
const u24 = (n: number): Buffer => be(3, n);
const u32 = (n: number): Buffer => be(4, n);
const u64 = (n: number): Buffer => be(8, n);
function vec8(b: Uint8Array): Buffer {
  if (b.length > 0xff) throw new Error('vec8 overflow');
  return cat(u8(b.length), b);
}
function vec16(b: Uint8Array): Buffer {
  if (b.length > 0xffff) throw new Error('vec16 overflow');
  return cat(u16(b.length), b);
}
function vec24(b: Uint8Array): Buffer {
  if (b.length > 0xffffff) throw new Error('vec24 overflow');
  return cat(u24(b.length), b);
}
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const fromHex = (s: string): Buffer => Buffer.from(s, 'hex');

function same(what: string, a: Uint8Array, b: Uint8Array): void {
  if (!Buffer.from(a).equals(Buffer.from(b))) throw new Error(`${what}: the two computations differ\n  ${hex(a)}\n  ${hex(b)}`);
}

// ---------------------------------------------------------------------------------------------
// Primitives: the library's, and an independent reference

export interface Mlkem {
  keygen(seed: Buffer): { ek: Buffer; dk: Buffer };
  encapsulate(ek: Buffer, coins: Buffer): { ct: Buffer; ss: Buffer };
  decapsulate(dk: Buffer, ct: Buffer): Buffer;
}

export interface Classical {
  publicKey(privateKey: Buffer): Buffer;
  sharedSecret(privateKey: Buffer, peerPublicKey: Buffer): Buffer;
}

/** What the step-by-step derivation needs, over plain bytes. */
export interface Primitives {
  readonly name: string;
  shake256(input: Buffer, length: number): Buffer;
  sha256(data: Buffer): Buffer;
  sha384(data: Buffer): Buffer;
  hmac(key: Buffer, data: Buffer): Buffer;
  /** HKDF-Extract with SHA-384 (salt given explicitly, never omitted). */
  extract(salt: Buffer, ikm: Buffer): Buffer;
  /** HKDF-Expand with SHA-384 (PRK of HashLen bytes). */
  expand(prk: Buffer, info: Buffer, length: number): Buffer;
  /** AEAD with an explicit 12-byte nonce: ciphertext ‖ tag. */
  aeadSeal(suite: number, key: Buffer, nonce: Buffer, ad: Buffer, plaintext: Buffer): Buffer;
  classical(kind: ClassicalKind): Classical;
  mlkem(kind: KemKind): Mlkem;
  /** Cross-checks with the library's own higher-level functions (library backend only). */
  expandLabel?(secret: Buffer, label: string, context: Buffer, length: number): Buffer;
  combine?(groupId: number, values: { initiatorClassical: Buffer; responderClassical: Buffer; encapsulationKey: Buffer; ciphertext: Buffer }, zc: Buffer, zm: Buffer, label: Buffer): Buffer;
  sealRecord?(suite: number, key: Buffer, iv: Buffer, seq: number, ad: Buffer, plaintext: Buffer): Buffer;
  /** An identity key's fingerprint and text form (§13.1), from its group and public key. */
  identityKey?(groupId: number, publicKey: Buffer): { fingerprint: string; publicKeyText: string };
  /** ML-DSA-87 (FIPS 204): pure, empty context; signing deterministic (rnd = 0^32), keys from the 32-byte seed ξ. */
  mldsa87: MlDsa87;
  /** A certificate as the library's X.509 parser reads it (library backend only: a cross-check of the DER reading below). */
  certificateInfo?(der: Buffer): LibraryCertificateInfo;
  /** RFC 5280 path validation by the library (OpenSSL) at a fixed time (library backend only). */
  verifyCertificateChain?(leaf: Buffer, anchor: Buffer, purpose: 'server' | 'client', dnsName: string | undefined, time: Date): void;
}

export interface MlDsa87 {
  /** pk of ML-DSA.KeyGen_internal(ξ). */
  publicKey(seed: Buffer): Buffer;
  /** ML-DSA.Sign with the key pair of ξ, ctx empty, deterministic. */
  sign(seed: Buffer, message: Buffer): Buffer;
  verify(publicKey: Buffer, message: Buffer, signature: Buffer): boolean;
}

export interface LibraryCertificateInfo {
  subject: string;
  issuer: string;
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
  dnsNames: readonly string[];
  extendedKeyUsage: readonly string[] | null;
  keyUsage: readonly string[] | null;
  isCA: boolean;
  publicKeyAlgorithm: string;
  signatureAlgorithm: string;
  spkiFingerprint: Buffer;
}

/** Runs `use` on secret handles made from bytes, destroys them, returns the bytes of a secret result. */
function withSecrets<T>(bytes: Buffer[], use: (secrets: Secret[]) => T): T {
  const secrets = bytes.map((b) => testing.secretFromBytes(b));
  try {
    return use(secrets);
  } finally {
    for (const s of secrets) s.destroy();
  }
}

function exportAndDestroy(secret: Secret): Buffer {
  try {
    return testing.exportSecret(secret);
  } finally {
    secret.destroy();
  }
}

function libKem(kind: KemKind): MlKem {
  return kind === 'ML-KEM-1024' ? mlkem1024 : mlkem768;
}

/** The library's primitives (native handles; secrets cross into JS through the testing export). */
export function libraryPrimitives(): Primitives {
  const SHA384 = hkdf.HkdfDigest.SHA384;
  const classicalOf = (kind: ClassicalKind): Classical => {
    const importKey = (b: Buffer): PrivateKey => (kind === 'x25519' ? testing.x25519PrivateKeyFromBytes(b) : testing.p384PrivateKeyFromBytes(b));
    const mod = kind === 'x25519' ? x25519 : p384;
    return {
      publicKey(privateKey) {
        const k = importKey(privateKey);
        try {
          return mod.publicKeyOf(k);
        } finally {
          k.destroy();
        }
      },
      sharedSecret(privateKey, peer) {
        const k = importKey(privateKey);
        try {
          return exportAndDestroy(mod.deriveSharedSecret(k, peer));
        } finally {
          k.destroy();
        }
      },
    };
  };
  return {
    name: 'library',
    shake256: (input, length) => shake256(input, length),
    // The library has no SHA-256 of its own (lib/identity/keys.ts takes node:crypto's); its
    // fingerprints are cross-checked through identityKey() below.
    sha256: (data) => createHash('sha256').update(data).digest(),
    sha384: (data) => sha384(data),
    hmac: (key, data) => withSecrets([key], ([k]) => hkdf.hmac(SHA384, k!, [data])),
    extract: (salt, ikm) => withSecrets([ikm], ([i]) => exportAndDestroy(hkdf.extract(SHA384, salt, [i!]))),
    expand: (prk, info, length) => withSecrets([prk], ([p]) => exportAndDestroy(hkdf.expand(SHA384, p!, info, length))),
    aeadSeal(suite, key, nonce, ad, plaintext) {
      return withSecrets([key], ([k]) => {
        const ctx = createAead(suite as CipherSuiteId, k!);
        try {
          return aeadSealLib(ctx, nonce, ad, plaintext);
        } finally {
          ctx.destroy();
        }
      });
    },
    classical: classicalOf,
    mlkem(kind) {
      const kem = libKem(kind);
      return {
        keygen(seed) {
          const pair = kem.generateKeyPair(seed);
          try {
            return { ek: pair.publicKey, dk: testing.exportPrivateKey(pair.privateKey) };
          } finally {
            pair.privateKey.destroy();
          }
        },
        encapsulate(ek, coins) {
          const enc = kem.encapsulate(ek, coins);
          return { ct: enc.ciphertext, ss: exportAndDestroy(enc.sharedSecret) };
        },
        decapsulate(dk, ct) {
          const k = testing.mlkemPrivateKeyFromBytes(kem, dk);
          try {
            return exportAndDestroy(kem.decapsulate(k, ct));
          } finally {
            k.destroy();
          }
        },
      };
    },
    expandLabel: (secret, label, context, length) => withSecrets([secret], ([s]) => exportAndDestroy(libExpandLabel(V2_SCHEDULE, s!, label, context, length))),
    combine: (groupId, values, zc, zm, label) =>
      // combine() consumes both component secrets.
      exportAndDestroy(combine(groupId, VERSION, values, testing.secretFromBytes(zc), testing.secretFromBytes(zm), label)),
    sealRecord(suite, key, iv, seq, ad, plaintext) {
      return withSecrets([key, iv], ([k, i]) => {
        const ctx = createRecordAead(suite as CipherSuiteId, k!, i!);
        try {
          return aeadSealRecordLib(ctx, seq, ad, plaintext);
        } finally {
          ctx.destroy();
        }
      });
    },
    identityKey(groupId, publicKey) {
      const key = PublicIdentityKey.fromBytes(kemGroupById(groupId)!, publicKey);
      return { fingerprint: key.fingerprint, publicKeyText: key.toString() };
    },
    mldsa87: {
      publicKey(seed) {
        const pair = mldsa.generateKeyPair(seed);
        pair.privateKey.destroy();
        return pair.publicKey;
      },
      sign(seed, message) {
        const pair = mldsa.generateKeyPair(seed);
        try {
          return mldsa.sign(pair.privateKey, message, { deterministic: true });
        } finally {
          pair.privateKey.destroy();
        }
      },
      verify: (publicKey, message, signature) => mldsa.verify(publicKey, message, signature),
    },
    certificateInfo(der) {
      const c = parseCertificate(der);
      return {
        subject: c.subject,
        issuer: c.issuer,
        serialNumber: c.serialNumber,
        notBefore: c.notBefore,
        notAfter: c.notAfter,
        dnsNames: c.dnsNames,
        extendedKeyUsage: c.extendedKeyUsage,
        keyUsage: c.keyUsage,
        isCA: c.isCA,
        publicKeyAlgorithm: c.publicKeyAlgorithm,
        signatureAlgorithm: c.signatureAlgorithm,
        spkiFingerprint: c.spkiFingerprint,
      };
    },
    verifyCertificateChain(leaf, anchor, purpose, dnsName, time) {
      verifyChain(parseCertificate(leaf), { trusted: [parseCertificate(anchor)], purpose, time, ...(dnsName !== undefined ? { dnsName } : {}) });
    },
  };
}

const X25519_PKCS8_PREFIX = fromHex('302e020100300506032b656e04220420');
const X25519_SPKI_PREFIX = fromHex('302a300506032b656e032100');

/** The reference: node:crypto (OpenSSL of Node, not the addon's) and @noble/post-quantum. */
export function referencePrimitives(): Primitives {
  const x25519Private = (d: Buffer) => createPrivateKey({ key: cat(X25519_PKCS8_PREFIX, d), format: 'der', type: 'pkcs8' });
  const classical: Record<ClassicalKind, Classical> = {
    x25519: {
      publicKey: (d) => createPublicKey(x25519Private(d)).export({ format: 'der', type: 'spki' }).subarray(X25519_SPKI_PREFIX.length),
      sharedSecret: (d, peer) =>
        diffieHellman({ privateKey: x25519Private(d), publicKey: createPublicKey({ key: cat(X25519_SPKI_PREFIX, peer), format: 'der', type: 'spki' }) }),
    },
    p384: {
      publicKey(d) {
        const ecdh = createECDH('secp384r1');
        ecdh.setPrivateKey(d);
        return ecdh.getPublicKey(null, 'uncompressed');
      },
      sharedSecret(d, peer) {
        const ecdh = createECDH('secp384r1');
        ecdh.setPrivateKey(d);
        return ecdh.computeSecret(peer);
      },
    },
  };
  const hmac = (key: Buffer, data: Buffer) => createHmac('sha384', key).update(data).digest();
  return {
    name: 'reference',
    shake256: (input, length) => createHash('shake256', { outputLength: length }).update(input).digest(),
    sha256: (data) => createHash('sha256').update(data).digest(),
    sha384: (data) => createHash('sha384').update(data).digest(),
    hmac,
    extract: (salt, ikm) => hmac(salt, ikm),
    expand(prk, info, length) {
      const blocks: Buffer[] = [];
      let t = EMPTY;
      for (let i = 1; blocks.length * HASH_LEN < length; i++) {
        t = hmac(prk, cat(t, info, u8(i)));
        blocks.push(t);
      }
      return cat(...blocks).subarray(0, length);
    },
    aeadSeal(suite, key, nonce, ad, plaintext) {
      const cipher =
        suite === CipherSuite.AES_256_GCM
          ? createCipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 })
          : createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
      cipher.setAAD(ad, { plaintextLength: plaintext.length });
      return cat(cipher.update(plaintext), cipher.final(), cipher.getAuthTag());
    },
    classical: (kind) => classical[kind],
    mlkem(kind) {
      const kem = kind === 'ML-KEM-1024' ? ml_kem1024 : ml_kem768;
      return {
        keygen(seed) {
          const k = kem.keygen(seed);
          return { ek: Buffer.from(k.publicKey), dk: Buffer.from(k.secretKey) };
        },
        encapsulate(ek, coins) {
          const e = kem.encapsulate(ek, coins);
          return { ct: Buffer.from(e.cipherText), ss: Buffer.from(e.sharedSecret) };
        },
        decapsulate: (dk, ct) => Buffer.from(kem.decapsulate(ct, dk)),
      };
    },
    mldsa87: {
      publicKey: (seed) => Buffer.from(ml_dsa87.keygen(seed).publicKey),
      sign: (seed, message) => Buffer.from(ml_dsa87.sign(message, ml_dsa87.keygen(seed).secretKey, { extraEntropy: false })),
      verify: (publicKey, message, signature) => ml_dsa87.verify(signature, message, publicKey),
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Inputs

/** A derived input: SHAKE-256(shake) truncated to the length of `value`. */
export interface DerivedInput {
  shake: string;
  value: Buffer;
}

function derive(P: Primitives, scope: string, name: string, length: number): DerivedInput {
  const shake = `${INPUT_PREFIX}${scope} ${name}`;
  return { shake, value: P.shake256(ascii(shake), length) };
}

/** A classical private key: X25519 takes the 32 bytes as they are (clamped inside X25519); P-384 needs 1 ≤ d < n. */
function classicalPrivate(P: Primitives, scope: string, name: string, kind: ClassicalKind): DerivedInput {
  const input = derive(P, scope, name, CLASSICAL_PRIVATE_SIZE[kind]);
  if (kind === 'p384') {
    const d = BigInt(`0x${hex(input.value)}`);
    if (d === 0n || d >= P384_ORDER) throw new Error(`${input.shake}: not a P-384 private key (d = 0 or d ≥ n); pick another label`);
  }
  return input;
}

function globalInputs(P: Primitives) {
  return {
    pskKey: derive(P, 'global', 'psk key', 32),
    ticketKey: derive(P, 'global', 'ticket key', 32),
  };
}

function caseInputs(P: Primitives, spec: CaseSpec) {
  const s = spec.name;
  const c = spec.group.classical;
  const kemSeed = 64;
  return {
    clientRandom: derive(P, s, 'client random', 32),
    serverRandom: derive(P, s, 'server random', 32),
    clientClassicalPrivateKey: classicalPrivate(P, s, 'client classical private key', c),
    clientMlkemSeed: derive(P, s, 'client mlkem seed', kemSeed),
    serverClassicalPrivateKey: classicalPrivate(P, s, 'server classical private key', c),
    serverMlkemCoins: derive(P, s, 'server mlkem coins', 32),
    ticketNonce: derive(P, s, 'ticket nonce', 8),
    ticketAgeAdd: derive(P, s, 'ticket age add', 4),
    ticketAeadNonce: derive(P, s, 'ticket aead nonce', 12),
    ticketId: derive(P, s, 'ticket id', 16),
    kemUpdateInitiatorClassicalPrivateKey: classicalPrivate(P, s, 'kem update initiator classical private key', c),
    kemUpdateInitiatorMlkemSeed: derive(P, s, 'kem update initiator mlkem seed', kemSeed),
    kemUpdateResponderClassicalPrivateKey: classicalPrivate(P, s, 'kem update responder classical private key', c),
    kemUpdateResponderMlkemCoins: derive(P, s, 'kem update responder mlkem coins', 32),
  };
}
type CaseInputs = ReturnType<typeof caseInputs>;

/** The inputs of a NewSessionTicket, which the pinned-key and certificate cases do not have (§13.5, §14.4: no tickets). */
const TICKET_INPUTS = ['ticketNonce', 'ticketAgeAdd', 'ticketAeadNonce', 'ticketId'] as const;

/**
 * The pinned-key inputs (§13): the long-term key pairs (of the case's group) and the fixed
 * inputs of the encapsulations to them: a fresh classical private key and the ML-KEM coins m.
 */
function keyInputs(P: Primitives, spec: CaseSpec) {
  const s = spec.name;
  const c = spec.group.classical;
  const server = {
    serverIdentityKeyClassicalPrivateKey: classicalPrivate(P, s, 'server identity key classical private key', c),
    serverIdentityKeyMlkemSeed: derive(P, s, 'server identity key mlkem seed', 64),
    serverKeyEncapsulationClassicalPrivateKey: classicalPrivate(P, s, 'server key encapsulation classical private key', c),
    serverKeyEncapsulationMlkemCoins: derive(P, s, 'server key encapsulation mlkem coins', 32),
  };
  if (spec.auth !== 'key-mutual') return server;
  return {
    ...server,
    clientIdentityKeyClassicalPrivateKey: classicalPrivate(P, s, 'client identity key classical private key', c),
    clientIdentityKeyMlkemSeed: derive(P, s, 'client identity key mlkem seed', 64),
    clientKeyEncapsulationClassicalPrivateKey: classicalPrivate(P, s, 'client key encapsulation classical private key', c),
    clientKeyEncapsulationMlkemCoins: derive(P, s, 'client key encapsulation mlkem coins', 32),
  };
}

// ---------------------------------------------------------------------------------------------
// Certificates (docs/PROTOCOL.md §14)

/**
 * The certificates of the certificate cases. Issuing a certificate draws a fresh (hedged) ML-DSA
 * signature and the library takes no fixed randomness for it, so they were made once, by
 * {@link createVectorCertificates}, and are kept in this fixture: the vectors read them and never
 * issue any.
 */
export const CERTIFICATES_FIXTURE = new URL('../fixtures/v2-vector-certificates.json', import.meta.url);
/** The server's name: its leaf's subjectAltName dNSName, the name the client expects. */
export const SERVER_DNS_NAME = 'vector.server.test';
export const CERTIFICATE_NOT_BEFORE = '2026-01-01T00:00:00Z';
export const CERTIFICATE_NOT_AFTER = '2049-12-31T23:59:59Z';
/**
 * When the derivation validates the chains. The handshakes of the state machines validate them at
 * the current time: ServerCertificatePolicy and ClientCertificatePolicy take no time.
 */
export const CERTIFICATE_CHECK_TIME = '2026-07-01T00:00:00Z';
/** The ClientHello extension certificate_auth (§14.2) and its one scheme, ML-DSA-87. */
const CERTIFICATE_AUTH = 0x0003;
const ML_DSA_87_SCHEME = 0x0906;
const CERTIFICATE_VERIFY_CONTEXT = { server: 'qtun2 server CertificateVerify', client: 'qtun2 client CertificateVerify' } as const;
/** Handshake message types (§3.3, §14.3). */
const Msg = { ENCRYPTED_EXTENSIONS: 0x08, CERTIFICATE: 0x0b, CERTIFICATE_REQUEST: 0x0d, CERTIFICATE_VERIFY: 0x0f, FINISHED: 0x14 } as const;
/** id-ml-dsa-87 (RFC 9881): the key and signature algorithm, without parameters. */
const ML_DSA_87_OID = '2.16.840.1.101.3.4.3.19';
const ML_DSA_87_PUBLIC_KEY_SIZE = 2592;
const ML_DSA_87_SIGNATURE_SIZE = 4627;

export type CertificateRole = 'ca' | 'server' | 'client';
export const CERTIFICATE_ROLES: readonly CertificateRole[] = ['ca', 'server', 'client'];

interface CertificateProfile {
  commonName: string;
  /** Hex, the INTEGER's content octets. */
  serialNumber: string;
  dnsNames: string[];
  /** RFC 5280 names, in the certificate's order; null: no such extension. */
  keyUsage: string[];
  extendedKeyUsage: string[] | null;
  isCA: boolean;
}

/** What each certificate says. The CA (self-signed) issues both leaves; each key is KeyGen_internal(ξ) of its seed. */
const CERTIFICATE_PROFILES: Readonly<Record<CertificateRole, CertificateProfile>> = {
  ca: { commonName: 'qtun2 vector CA', serialNumber: '01', dnsNames: [], keyUsage: ['keyCertSign', 'cRLSign'], extendedKeyUsage: null, isCA: true },
  server: { commonName: SERVER_DNS_NAME, serialNumber: '02', dnsNames: [SERVER_DNS_NAME], keyUsage: ['digitalSignature'], extendedKeyUsage: ['serverAuth'], isCA: false },
  client: { commonName: 'qtun2 vector client', serialNumber: '03', dnsNames: [], keyUsage: ['digitalSignature'], extendedKeyUsage: ['clientAuth'], isCA: false },
};

/** ξ of each certificate's ML-DSA-87 key, derived like every other input. */
function certificateSeed(P: Primitives, role: CertificateRole): DerivedInput {
  return derive(P, 'global', `${role} certificate mldsa seed`, 32);
}

interface CertificatesFixture {
  $comment: string;
  certificates: Record<CertificateRole, { seed: { shake: string; hex: string }; der: string; pem: string }>;
}

/**
 * Makes the certificates of the fixture (once: the fixture is then kept as it is). Run with
 * QUANTUM_TUNNEL_TESTING=1 from the repository root:
 *   node --import tsx --input-type=module -e "import {createVectorCertificates as c} from './test/helpers/v2Vectors.ts'; import {writeFileSync} from 'node:fs'; writeFileSync('test/fixtures/v2-vector-certificates.json', JSON.stringify(c(), null, 2) + '\n')"
 */
export function createVectorCertificates(): CertificatesFixture {
  const P = libraryPrimitives();
  const keys = Object.fromEntries(CERTIFICATE_ROLES.map((r) => [r, mldsa.generateKeyPair(certificateSeed(P, r).value)])) as Record<CertificateRole, mldsa.MlDsaKeyPair>;
  try {
    const notBefore = new Date(CERTIFICATE_NOT_BEFORE);
    const notAfter = new Date(CERTIFICATE_NOT_AFTER);
    const ca = createSelfSignedCa({ privateKey: keys.ca.privateKey, subject: { commonName: CERTIFICATE_PROFILES.ca.commonName }, serialNumber: CERTIFICATE_PROFILES.ca.serialNumber, notBefore, notAfter });
    const leaf = (role: 'server' | 'client') => {
      const p = CERTIFICATE_PROFILES[role];
      return issueCertificate({
        issuer: ca,
        issuerKey: keys.ca.privateKey,
        publicKey: keys[role].privateKey,
        subject: { commonName: p.commonName },
        dnsNames: p.dnsNames,
        notBefore,
        notAfter,
        serialNumber: p.serialNumber,
        extendedKeyUsage: p.extendedKeyUsage as Array<'serverAuth' | 'clientAuth'>,
      });
    };
    const made = { ca, server: leaf('server'), client: leaf('client') };
    const certificates = Object.fromEntries(
      CERTIFICATE_ROLES.map((r) => {
        const seed = certificateSeed(P, r);
        return [r, { seed: { shake: seed.shake, hex: hex(seed.value) }, der: hex(made[r].der), pem: made[r].toPem() }];
      }),
    ) as CertificatesFixture['certificates'];
    return {
      $comment:
        'The certificates of the certificate cases of the protocol v2 vectors (docs/PROTOCOL-V2-VECTORS.md), made once by createVectorCertificates() in ' +
        'test/helpers/v2Vectors.ts and kept: issuing draws a hedged signature, so they are not made again. Each key is ML-DSA-87 KeyGen_internal(seed); ' +
        `the CA is self-signed, serials 01 (CA), 02 (server), 03 (client), valid from ${CERTIFICATE_NOT_BEFORE} to ${CERTIFICATE_NOT_AFTER}.`,
      certificates,
    };
  } finally {
    for (const r of CERTIFICATE_ROLES) keys[r].privateKey.destroy();
  }
}

function readCertificatesFixture(): CertificatesFixture {
  let text: string;
  try {
    text = readFileSync(CERTIFICATES_FIXTURE, 'utf8');
  } catch (err) {
    throw new Error(`${CERTIFICATES_FIXTURE.pathname} is missing: the certificate cases read their certificates from it (createVectorCertificates)`, { cause: err });
  }
  return JSON.parse(text) as CertificatesFixture;
}

/** One DER TLV (definite lengths, low tag numbers: all a certificate uses). */
interface Tlv {
  tag: number;
  raw: Buffer;
  content: Buffer;
}

function readTlv(buf: Buffer, at: number, what: string): Tlv {
  const bad = (why: string): never => {
    throw new Error(`${what}: ${why}`);
  };
  if (at + 2 > buf.length) bad('truncated');
  const tag = buf[at]!;
  if ((tag & 0x1f) === 0x1f) bad('a high tag number');
  let length = buf[at + 1]!;
  let header = 2;
  if (length & 0x80) {
    const n = length & 0x7f;
    if (n === 0 || n > 3 || at + 2 + n > buf.length) bad('a bad length');
    length = buf.readUIntBE(at + 2, n);
    if (length < 0x80 || buf[at + 2] === 0) bad('a length not in its shortest form (not DER)');
    header += n;
  }
  if (at + header + length > buf.length) bad('truncated');
  return { tag, raw: buf.subarray(at, at + header + length), content: buf.subarray(at + header, at + header + length) };
}

function derChildren(t: Tlv, what: string): Tlv[] {
  const out: Tlv[] = [];
  for (let at = 0; at < t.content.length; ) {
    const c = readTlv(t.content, at, what);
    out.push(c);
    at += c.raw.length;
  }
  return out;
}

function tagged(t: Tlv | undefined, tag: number, what: string): Tlv {
  if (t === undefined || t.tag !== tag) throw new Error(`${what}: expected tag 0x${tag.toString(16)}, got ${t === undefined ? 'nothing' : `0x${t.tag.toString(16)}`}`);
  return t;
}

function derOid(t: Tlv | undefined, what: string): string {
  const b = tagged(t, 0x06, what).content;
  const arcs: number[] = [];
  let v = 0;
  for (const byte of b) {
    v = v * 128 + (byte & 0x7f);
    if (!(byte & 0x80)) {
      arcs.push(v);
      v = 0;
    }
  }
  const first = arcs.shift()!;
  const top = first < 80 ? Math.floor(first / 40) : 2;
  return [top, first - 40 * top, ...arcs].join('.');
}

/** A BIT STRING without unused bits: its bytes. */
function derBits(t: Tlv | undefined, what: string): Buffer {
  const c = tagged(t, 0x03, what).content;
  if (c[0] !== 0) throw new Error(`${what}: a BIT STRING with unused bits`);
  return c.subarray(1);
}

/** UTCTime (YY < 50: 20YY) or GeneralizedTime, as ISO 8601 to the second. */
function derTime(t: Tlv | undefined, what: string): string {
  const s = t?.content.toString('ascii') ?? '';
  let digits: string;
  if (t?.tag === 0x17 && /^\d{12}Z$/.test(s)) digits = `${Number(s.slice(0, 2)) < 50 ? '20' : '19'}${s}`;
  else if (t?.tag === 0x18 && /^\d{14}Z$/.test(s)) digits = s;
  else throw new Error(`${what}: not a DER UTCTime or GeneralizedTime`);
  return `${digits.slice(0, 4)}-${digits.slice(4, 6)}-${digits.slice(6, 8)}T${digits.slice(8, 10)}:${digits.slice(10, 12)}:${digits.slice(12, 14)}Z`;
}

const NAME_ATTRIBUTES: Readonly<Record<string, string>> = { '2.5.4.6': 'C', '2.5.4.8': 'ST', '2.5.4.7': 'L', '2.5.4.10': 'O', '2.5.4.11': 'OU', '2.5.4.3': 'CN' };

/** A Name as RFC 4514 text (last RDN first), for the plain names used here (nothing to escape). */
function derName(t: Tlv, what: string): string {
  const rdns = derChildren(tagged(t, 0x30, what), what).map((set) =>
    derChildren(tagged(set, 0x31, what), what)
      .map((atv) => {
        const [type, value] = derChildren(tagged(atv, 0x30, what), what);
        const name = NAME_ATTRIBUTES[derOid(type, what)] ?? '';
        const text = value?.content.toString('utf8') ?? '';
        if (name === '' || ![0x0c, 0x13, 0x16].includes(value!.tag) || /[,+"\\<>;=#]/.test(text)) throw new Error(`${what}: a name attribute this reader does not handle`);
        return `${name}=${text}`;
      })
      .join('+'),
  );
  return rdns.reverse().join(',');
}

const KEY_USAGE_NAMES = ['digitalSignature', 'nonRepudiation', 'keyEncipherment', 'dataEncipherment', 'keyAgreement', 'keyCertSign', 'cRLSign', 'encipherOnly', 'decipherOnly'];
const EXTENDED_KEY_USAGE_NAMES: Readonly<Record<string, string>> = { '1.3.6.1.5.5.7.3.1': 'serverAuth', '1.3.6.1.5.5.7.3.2': 'clientAuth' };
const Ext = { SUBJECT_KEY_ID: '2.5.29.14', KEY_USAGE: '2.5.29.15', SUBJECT_ALT_NAME: '2.5.29.17', BASIC_CONSTRAINTS: '2.5.29.19', EXTENDED_KEY_USAGE: '2.5.29.37', AUTHORITY_KEY_ID: '2.5.29.35' } as const;

/** What the vectors read from a certificate, by hand (RFC 5280 §4.1, RFC 9881 for ML-DSA). */
interface CertificateFields {
  der: Buffer;
  /** The signed part, tbsCertificate, as DER. */
  tbs: Buffer;
  signature: Buffer;
  /** The serial INTEGER's content octets. */
  serialNumber: Buffer;
  issuerDer: Buffer;
  subjectDer: Buffer;
  issuer: string;
  subject: string;
  notBefore: string;
  notAfter: string;
  /** SubjectPublicKeyInfo DER. */
  spki: Buffer;
  publicKey: Buffer;
  isCA: boolean;
  keyUsage: string[] | null;
  extendedKeyUsage: string[] | null;
  dnsNames: string[];
}

function readCertificate(der: Buffer, what: string): CertificateFields {
  const top = tagged(readTlv(der, 0, what), 0x30, what);
  if (top.raw.length !== der.length) throw new Error(`${what}: bytes after the certificate`);
  const [tbs, signatureAlgorithm, signatureValue, ...more] = derChildren(top, what);
  if (more.length > 0 || tbs === undefined || signatureAlgorithm === undefined) throw new Error(`${what}: not a Certificate`);
  const mlDsa87Algorithm = (t: Tlv | undefined, which: string): void => {
    const parts = derChildren(tagged(t, 0x30, which), which);
    if (parts.length !== 1 || derOid(parts[0], which) !== ML_DSA_87_OID) throw new Error(`${which}: not id-ml-dsa-87 without parameters`);
  };
  mlDsa87Algorithm(signatureAlgorithm, `${what}: signatureAlgorithm`);
  const signature = derBits(signatureValue, `${what}: signatureValue`);
  const f = derChildren(tagged(tbs, 0x30, what), what);
  const version = derChildren(tagged(f[0], 0xa0, `${what}: version`), what);
  if (version.length !== 1 || !tagged(version[0], 0x02, `${what}: version`).content.equals(Buffer.of(2))) throw new Error(`${what}: not X.509 v3`);
  const serialNumber = tagged(f[1], 0x02, `${what}: serialNumber`).content;
  if (!f[2]?.raw.equals(signatureAlgorithm.raw)) throw new Error(`${what}: the two signature algorithms differ`);
  const issuer = f[3]!;
  const [notBefore, notAfter] = derChildren(tagged(f[4], 0x30, `${what}: validity`), what);
  const subject = f[5]!;
  const spki = tagged(f[6], 0x30, `${what}: subjectPublicKeyInfo`);
  const [spkiAlgorithm, spkiKey] = derChildren(spki, what);
  mlDsa87Algorithm(spkiAlgorithm, `${what}: subjectPublicKeyInfo`);
  const publicKey = derBits(spkiKey, `${what}: subjectPublicKey`);
  if (publicKey.length !== ML_DSA_87_PUBLIC_KEY_SIZE || signature.length !== ML_DSA_87_SIGNATURE_SIZE) throw new Error(`${what}: ML-DSA-87 sizes`);
  const fields: CertificateFields = {
    der,
    tbs: tbs.raw,
    signature,
    serialNumber,
    issuerDer: issuer.raw,
    subjectDer: subject.raw,
    issuer: derName(issuer, `${what}: issuer`),
    subject: derName(subject, `${what}: subject`),
    notBefore: derTime(notBefore, `${what}: notBefore`),
    notAfter: derTime(notAfter, `${what}: notAfter`),
    spki: spki.raw,
    publicKey,
    isCA: false,
    keyUsage: null,
    extendedKeyUsage: null,
    dnsNames: [],
  };
  if (f.length !== 8) throw new Error(`${what}: expected extensions and no unique identifiers`);
  const seen = new Set<string>();
  for (const ext of derChildren(tagged(derChildren(tagged(f[7], 0xa3, `${what}: extensions`), what)[0], 0x30, what), what)) {
    const parts = derChildren(tagged(ext, 0x30, what), what);
    const id = derOid(parts[0], what);
    const critical = parts.length === 3 && tagged(parts[1], 0x01, what).content[0] === 0xff;
    const value = readTlv(tagged(parts.at(-1), 0x04, what).content, 0, `${what}: extension ${id}`);
    if (seen.has(id)) throw new Error(`${what}: extension ${id} twice`);
    seen.add(id);
    if (id === Ext.BASIC_CONSTRAINTS) {
      const bc = derChildren(tagged(value, 0x30, what), what);
      fields.isCA = bc[0]?.tag === 0x01 && bc[0].content[0] === 0xff;
    } else if (id === Ext.KEY_USAGE) {
      const bits = tagged(value, 0x03, what).content.subarray(1);
      fields.keyUsage = KEY_USAGE_NAMES.filter((_, i) => ((bits[i >> 3] ?? 0) & (0x80 >> (i & 7))) !== 0);
    } else if (id === Ext.EXTENDED_KEY_USAGE) {
      fields.extendedKeyUsage = derChildren(tagged(value, 0x30, what), what).map((o) => {
        const oid = derOid(o, what);
        return EXTENDED_KEY_USAGE_NAMES[oid] ?? oid;
      });
    } else if (id === Ext.SUBJECT_ALT_NAME) {
      for (const name of derChildren(tagged(value, 0x30, what), what)) {
        if (name.tag !== 0x82) throw new Error(`${what}: a subjectAltName entry other than dNSName`);
        fields.dnsNames.push(name.content.toString('ascii'));
      }
    } else if (critical || (id !== Ext.SUBJECT_KEY_ID && id !== Ext.AUTHORITY_KEY_ID)) {
      throw new Error(`${what}: extension ${id} is not expected here`);
    }
  }
  return fields;
}

/** PEM "CERTIFICATE" → DER, by hand. */
function pemToDer(text: string, what: string): Buffer {
  const m = /^-----BEGIN CERTIFICATE-----\n([A-Za-z0-9+/=\n]+)-----END CERTIFICATE-----\n$/.exec(text);
  if (m === null) throw new Error(`${what}: not one PEM CERTIFICATE block`);
  return Buffer.from(m[1]!.replace(/\n/g, ''), 'base64');
}

/** `SHA256:` ‖ base64(SHA-256(SubjectPublicKeyInfo DER)) without padding: how peers' certificates are reported. */
function certificateFingerprint(P: Primitives, spki: Buffer): string {
  return `SHA256:${P.sha256(spki).toString('base64').replace(/=+$/, '')}`;
}

/**
 * RFC 5280 path validation of leaf ← anchor at `time`, by hand over the fields above (the
 * signatures with the backend's ML-DSA-87), and, on the library backend, by the library too.
 */
function checkCertificatePath(P: Primitives, leaf: CertificateFields, anchor: CertificateFields, purpose: 'server' | 'client', dnsName: string | undefined, time: string): void {
  const fail = (why: string): never => {
    throw new Error(`the ${purpose} certificate does not validate: ${why}`);
  };
  if (!anchor.isCA || !anchor.keyUsage?.includes('keyCertSign')) fail('the anchor is not a CA');
  if (!anchor.issuerDer.equals(anchor.subjectDer) || !P.mldsa87.verify(anchor.publicKey, anchor.tbs, anchor.signature)) fail('the anchor is not self-signed');
  if (!leaf.issuerDer.equals(anchor.subjectDer)) fail('its issuer is not the anchor');
  if (!P.mldsa87.verify(anchor.publicKey, leaf.tbs, leaf.signature)) fail("the CA's signature does not verify");
  if (leaf.isCA) fail('a CA certificate');
  for (const c of [anchor, leaf]) if (!(c.notBefore <= time && time <= c.notAfter)) fail(`not valid at ${time}`);
  if (leaf.keyUsage !== null && !leaf.keyUsage.includes('digitalSignature')) fail('keyUsage without digitalSignature');
  if (leaf.extendedKeyUsage !== null && !leaf.extendedKeyUsage.includes(`${purpose}Auth`)) fail(`extendedKeyUsage without ${purpose}Auth`);
  if (dnsName !== undefined && !leaf.dnsNames.includes(dnsName)) fail(`no dNSName ${dnsName}`);
  P.verifyCertificateChain?.(leaf.der, anchor.der, purpose, dnsName, new Date(time));
}

/** The certificates, read from the fixture and checked against their seeds, profiles and one another. */
function deriveCertificates(P: Primitives) {
  const fixture = readCertificatesFixture();
  const fields = {} as Record<CertificateRole, CertificateFields>;
  const seeds = {} as Record<CertificateRole, DerivedInput>;
  const doc: Record<string, unknown> = { verificationTime: CERTIFICATE_CHECK_TIME };
  for (const role of CERTIFICATE_ROLES) {
    const what = `the ${role} certificate (${CERTIFICATES_FIXTURE.pathname})`;
    const fail = (why: string): never => {
      throw new Error(`${what}: ${why}`);
    };
    const seed = certificateSeed(P, role);
    const stored = fixture.certificates[role];
    if (stored.seed.shake !== seed.shake || stored.seed.hex !== hex(seed.value)) fail('its seed is not the derived one');
    const der = fromHex(stored.der);
    if (!pemToDer(stored.pem, what).equals(der)) fail('its PEM and DER differ');
    const c = readCertificate(der, what);
    const publicKey = P.mldsa87.publicKey(seed.value);
    if (!c.publicKey.equals(publicKey)) fail('it does not hold the key of its seed');
    const p = CERTIFICATE_PROFILES[role];
    const profile = (name: string, got: unknown, want: unknown) => {
      if (JSON.stringify(got) !== JSON.stringify(want)) fail(`${name} is ${JSON.stringify(got)}, not ${JSON.stringify(want)}`);
    };
    profile('subject', c.subject, `CN=${p.commonName}`);
    profile('issuer', c.issuer, `CN=${CERTIFICATE_PROFILES.ca.commonName}`);
    profile('serialNumber', hex(c.serialNumber), p.serialNumber);
    profile('validity', [c.notBefore, c.notAfter], [CERTIFICATE_NOT_BEFORE, CERTIFICATE_NOT_AFTER]);
    profile('dNSNames', c.dnsNames, p.dnsNames);
    profile('keyUsage', c.keyUsage, p.keyUsage);
    profile('extendedKeyUsage', c.extendedKeyUsage, p.extendedKeyUsage);
    profile('basicConstraints cA', c.isCA, p.isCA);
    const fingerprint = certificateFingerprint(P, c.spki);
    if (P.certificateInfo) {
      // The library's reading of the same DER.
      const l = P.certificateInfo(der);
      const second = (d: Date) => d.toISOString().replace(/\.000Z$/, 'Z');
      profile('subject (library)', l.subject, c.subject);
      profile('issuer (library)', l.issuer, c.issuer);
      // (x509.ts says "without leading zeros"; it gives whole octets, "01".)
      profile('serialNumber (library)', l.serialNumber.replace(/^0+(?=.)/, ''), hex(c.serialNumber).toUpperCase().replace(/^0+(?=.)/, ''));
      profile('validity (library)', [second(l.notBefore), second(l.notAfter)], [c.notBefore, c.notAfter]);
      profile('dNSNames (library)', l.dnsNames, c.dnsNames);
      profile('keyUsage (library)', l.keyUsage, c.keyUsage);
      profile('extendedKeyUsage (library)', l.extendedKeyUsage, c.extendedKeyUsage);
      profile('cA (library)', l.isCA, c.isCA);
      profile('algorithms (library)', [l.publicKeyAlgorithm, l.signatureAlgorithm], ['ML-DSA-87', 'ML-DSA-87']);
      profile('SPKI fingerprint (library)', certificateFingerprint(P, c.spki), `SHA256:${l.spkiFingerprint.toString('base64').replace(/=+$/, '')}`);
    }
    fields[role] = c;
    seeds[role] = seed;
    doc[role] = {
      mldsaSeed: seed,
      publicKey,
      subject: c.subject,
      issuer: c.issuer,
      serialNumber: c.serialNumber,
      notBefore: c.notBefore,
      notAfter: c.notAfter,
      basicConstraintsCa: c.isCA,
      keyUsage: c.keyUsage!.join(', '),
      ...(c.extendedKeyUsage ? { extendedKeyUsage: c.extendedKeyUsage.join(', ') } : {}),
      ...(c.dnsNames.length > 0 ? { dnsName: c.dnsNames.join(', ') } : {}),
      fingerprint,
      der,
      pem: stored.pem,
    };
  }
  checkCertificatePath(P, fields.server, fields.ca, 'server', SERVER_DNS_NAME, CERTIFICATE_CHECK_TIME);
  checkCertificatePath(P, fields.client, fields.ca, 'client', undefined, CERTIFICATE_CHECK_TIME);
  return { doc, fields, seeds };
}
type VectorCertificates = ReturnType<typeof deriveCertificates>;

// ---------------------------------------------------------------------------------------------
// (b) The specification, step by step

/** HkdfLabel = BE16(length) ‖ vec8("qtun2 " ‖ label) ‖ vec8(context). */
function hkdfLabel(label: string, context: Buffer, length: number): Buffer {
  return cat(u16(length), vec8(ascii(LABEL_PREFIX + label)), vec8(context));
}

interface TrafficKeys {
  key: Buffer;
  iv: Buffer;
}

/** One direction of the record layer: the epoch's keys and the next sequence number. */
interface Direction {
  epoch: number;
  keys: TrafficKeys;
  seq: number;
}

/** Resumption state a 'resumption' case takes from the case that issued its ticket. */
export interface IssuedTicketState {
  ticket: Buffer;
  psk: Buffer;
  ageAdd: number;
  peerIdentity: Buffer;
}

class Spec {
  constructor(readonly P: Primitives, readonly suite: number) {}

  hash(...messages: Buffer[]): Buffer {
    return this.P.sha384(cat(...messages));
  }

  expandLabel(secret: Buffer, label: string, context: Buffer, length: number): Buffer {
    const out = this.P.expand(secret, hkdfLabel(label, context, length), length);
    if (this.P.expandLabel) same(`expandLabel "${label}"`, out, this.P.expandLabel(secret, label, context, length));
    return out;
  }

  deriveSecret(secret: Buffer, label: string, transcriptHash: Buffer): Buffer {
    return this.expandLabel(secret, label, transcriptHash, HASH_LEN);
  }

  trafficKeys(secret: Buffer): TrafficKeys {
    return { key: this.expandLabel(secret, 'key', EMPTY, 32), iv: this.expandLabel(secret, 'iv', EMPTY, 12) };
  }

  /** finished_key = HKDF-Expand-Label(base, "finished", "", 48); MAC = HMAC(finished_key, hash). */
  finished(base: Buffer, transcriptHash: Buffer): { key: Buffer; mac: Buffer } {
    const key = this.expandLabel(base, 'finished', EMPTY, HASH_LEN);
    return { key, mac: this.P.hmac(key, transcriptHash) };
  }

  /**
   * The hybrid combiner: K = HKDF-Expand(HKDF-Extract(label, Zc ‖ Zm), SHA-384(FixedInfo), 48),
   * both KEMs run from both ends (the two ends must agree). The label is "qtun v2 hybrid" for the
   * ephemeral exchanges; for an encapsulation to a long-term key (§13.1) the key is the initiator
   * and the label names its role.
   */
  hybrid(
    group: GroupDef,
    initiator: { classicalPrivateKey: Buffer; mlkemSeed: Buffer },
    responder: { classicalPrivateKey: Buffer; mlkemCoins: Buffer },
    label: string = HYBRID_LABEL,
  ) {
    const cl = this.P.classical(group.classical);
    const kem = this.P.mlkem(group.kem);
    const initiatorClassical = cl.publicKey(initiator.classicalPrivateKey);
    const { ek, dk } = kem.keygen(initiator.mlkemSeed);
    const responderClassical = cl.publicKey(responder.classicalPrivateKey);
    const classicalSharedSecret = cl.sharedSecret(responder.classicalPrivateKey, initiatorClassical);
    same('classical shared secret at both ends', classicalSharedSecret, cl.sharedSecret(initiator.classicalPrivateKey, responderClassical));
    const { ct, ss: mlkemSharedSecret } = kem.encapsulate(ek, responder.mlkemCoins);
    same('ML-KEM shared secret at both ends', mlkemSharedSecret, kem.decapsulate(dk, ct));
    const fixedInfo = cat(ascii(label), u16(VERSION), u16(group.id), vec16(initiatorClassical), vec16(responderClassical), vec16(ek), vec16(ct));
    const fixedInfoHash = this.P.sha384(fixedInfo);
    const prk = this.P.extract(ascii(label), cat(classicalSharedSecret, mlkemSharedSecret));
    const secret = this.P.expand(prk, fixedInfoHash, HASH_LEN);
    if (this.P.combine) {
      same(`combiner "${label}"`, secret, this.P.combine(group.id, { initiatorClassical, responderClassical, encapsulationKey: ek, ciphertext: ct }, classicalSharedSecret, mlkemSharedSecret, ascii(label)));
    }
    return {
      initiatorClassicalPublicKey: initiatorClassical,
      mlkemEncapsulationKey: ek,
      responderClassicalPublicKey: responderClassical,
      mlkemCiphertext: ct,
      initiatorShare: cat(initiatorClassical, ek),
      responderShare: cat(responderClassical, ct),
      classicalSharedSecret,
      mlkemSharedSecret,
      fixedInfo,
      fixedInfoHash,
      combinerPrk: prk,
      secret,
    };
  }

  /**
   * CertificateVerify (§14.3): signed content = 0x20 × 64 ‖ context ‖ 0x00 ‖ H(transcript up to and
   * including the Certificate); signature = ML-DSA-87.Sign(leaf key, signed content, ctx = empty),
   * deterministic here; verified with the key read from the certificate.
   */
  certificateVerify(role: 'server' | 'client', seed: Buffer, leafPublicKey: Buffer, transcriptHash: Buffer) {
    const signedContent = cat(Buffer.alloc(64, 0x20), ascii(CERTIFICATE_VERIFY_CONTEXT[role]), u8(0), transcriptHash);
    const signature = this.P.mldsa87.sign(seed, signedContent);
    if (signature.length !== ML_DSA_87_SIGNATURE_SIZE) throw new Error(`the ${role}'s signature is ${signature.length} bytes`);
    if (!this.P.mldsa87.verify(leafPublicKey, signedContent, signature)) throw new Error(`the ${role}'s CertificateVerify does not verify with its certificate's key`);
    return { transcriptHash, signedContent, signature, message: cat(u8(Msg.CERTIFICATE_VERIFY), u24(4 + signature.length), u16(ML_DSA_87_SCHEME), vec16(signature)) };
  }

  /** record = 0x30 ‖ BE32(2 + |sealed|) ‖ BE16(epoch) ‖ AEAD(key, iv XOR BE96(seq), AD = those 7 bytes, content ‖ type). */
  record(d: Direction, type: number, content: Buffer) {
    const seq = d.seq++;
    const inner = cat(content, u8(type));
    const header = cat(u8(RECORD_TYPE), u32(2 + inner.length + AEAD_SIZES.tag), u16(d.epoch));
    const nonce = Buffer.from(d.keys.iv);
    const seqBytes = cat(Buffer.alloc(4), u64(seq));
    for (let i = 0; i < 12; i++) nonce[i]! ^= seqBytes[i]!;
    const sealed = this.P.aeadSeal(this.suite, d.keys.key, nonce, header, inner);
    if (this.P.sealRecord) same('record AEAD context', sealed, this.P.sealRecord(this.suite, d.keys.key, d.keys.iv, seq, header, inner));
    return { epoch: d.epoch, seq, innerType: INNER_NAMES[type]!, content, nonce, record: cat(header, sealed) };
  }
}

/**
 * A long-term key (§13.1): public key = classical public key ‖ encapsulation key, key blob =
 * BE16(group) ‖ public key, fingerprint = "SHA256:" ‖ base64(SHA-256(key blob)) without padding,
 * text form = "qtun-" ‖ group name ‖ " " ‖ base64(public key).
 */
function identityKeyDoc(P: Primitives, group: GroupDef, classicalPublicKey: Buffer, encapsulationKey: Buffer) {
  const publicKey = cat(classicalPublicKey, encapsulationKey);
  const keyBlob = cat(u16(group.id), publicKey);
  const fingerprint = `SHA256:${P.sha256(keyBlob).toString('base64').replace(/=+$/, '')}`;
  const publicKeyText = `${PUBLIC_KEY_TEXT_PREFIX}${group.option} ${publicKey.toString('base64')}`;
  if (fingerprint.length !== 7 + 43) throw new Error('a fingerprint is "SHA256:" and 43 characters');
  if (P.identityKey) {
    const lib = P.identityKey(group.id, publicKey);
    if (lib.fingerprint !== fingerprint || lib.publicKeyText !== publicKeyText) throw new Error(`identity key: the library's fingerprint or text form differs\n  ${lib.fingerprint}\n  ${fingerprint}`);
  }
  return { group: u16(group.id), groupName: group.option, classicalPublicKey, mlkemEncapsulationKey: encapsulationKey, keyBlob, fingerprint, publicKeyText };
}

/** An encapsulation to a long-term key as the vectors list it (§13.1). */
function encapsulationDoc(label: string, e: ReturnType<Spec['hybrid']>) {
  return {
    label,
    freshClassicalPublicKey: e.responderClassicalPublicKey,
    mlkemCiphertext: e.mlkemCiphertext,
    ciphertext: e.responderShare,
    classicalSharedSecret: e.classicalSharedSecret,
    mlkemSharedSecret: e.mlkemSharedSecret,
    fixedInfoHash: e.fixedInfoHash,
    combinerPrk: e.combinerPrk,
    secret: e.secret,
  };
}

const handshakeMessage = (type: number, body: Buffer): Buffer => cat(u8(type), u24(body.length), body);
const frame = (type: number, payload: Buffer): Buffer => cat(u8(type), u32(payload.length), payload);

/** A KeyUpdate or KeyUpdateAck body: mode (0 symmetric, 1 kem) ‖ BE16(epoch) ‖ [vec16(share)]. */
const updateBody = (mode: 0 | 1, epoch: number, share?: Buffer): Buffer => cat(u8(mode), u16(epoch), share ? vec16(share) : EMPTY);

/** One case, derived from its inputs by the specification alone. */
function deriveCase(P: Primitives, spec: CaseSpec, global: ReturnType<typeof globalInputs>, resumed: IssuedTicketState | undefined, certificates: VectorCertificates) {
  const S = new Spec(P, spec.suite);
  const g = spec.group;
  const I = caseInputs(P, spec);
  const H = (...m: Buffer[]) => S.hash(...m);
  const emptyHash = H();

  // ---- ClientHello
  const hs = S.hybrid(
    g,
    { classicalPrivateKey: I.clientClassicalPrivateKey.value, mlkemSeed: I.clientMlkemSeed.value },
    { classicalPrivateKey: I.serverClassicalPrivateKey.value, mlkemCoins: I.serverMlkemCoins.value },
  );
  const offered =
    spec.auth === 'psk'
      ? { identity: ascii(PSK_IDENTITY), obfuscatedAge: 0, psk: global.pskKey.value, binderLabel: 'ext binder' }
      : spec.auth === 'resumption'
        ? { identity: resumed!.ticket, obfuscatedAge: (RESUMPTION_TICKET_AGE_MS + resumed!.ageAdd) >>> 0, psk: resumed!.psk, binderLabel: 'res binder' }
        : undefined;
  const early = P.extract(ZEROS, offered ? offered.psk : ZEROS);
  const earlyDerived = S.deriveSecret(early, 'derived', emptyHash);

  // ---- Pinned keys (§13): the long-term keys, the client's encapsulation to the server's key
  // (K_s), ks and the identity block; in key-mutual, the server's encapsulation to the client's
  // key (K_c). Each encapsulation is run from both ends (the key holder's decapsulation must agree).
  const keyMode = isKeyMode(spec.auth);
  const KI = keyMode ? (keyInputs(P, spec) as Record<string, DerivedInput>) : {};
  const fail = (what: string): never => {
    throw new Error(`${spec.name}: ${what}`);
  };
  const keyInput = (name: string): Buffer => (KI[name] ?? fail(`no input ${name}`)).value;
  const keyAuth = keyMode ? pinnedKeys() : undefined;
  function pinnedKeys() {
    const toServerKey = S.hybrid(
      g,
      { classicalPrivateKey: keyInput('serverIdentityKeyClassicalPrivateKey'), mlkemSeed: keyInput('serverIdentityKeyMlkemSeed') },
      { classicalPrivateKey: keyInput('serverKeyEncapsulationClassicalPrivateKey'), mlkemCoins: keyInput('serverKeyEncapsulationMlkemCoins') },
      SERVER_KEY_LABEL,
    );
    const serverKey = identityKeyDoc(P, g, toServerKey.initiatorClassicalPublicKey, toServerKey.mlkemEncapsulationKey);
    const toClientKey =
      spec.auth === 'key-mutual'
        ? S.hybrid(
            g,
            { classicalPrivateKey: keyInput('clientIdentityKeyClassicalPrivateKey'), mlkemSeed: keyInput('clientIdentityKeyMlkemSeed') },
            { classicalPrivateKey: keyInput('clientKeyEncapsulationClassicalPrivateKey'), mlkemCoins: keyInput('clientKeyEncapsulationMlkemCoins') },
            CLIENT_KEY_LABEL,
          )
        : undefined;
    const clientKey = toClientKey && identityKeyDoc(P, g, toClientKey.initiatorClassicalPublicKey, toClientKey.mlkemEncapsulationKey);
    // ks = HKDF-Extract(Derive-Secret(early, "derived", ""), K_s), early without a PSK.
    const keySecret = P.extract(earlyDerived, toServerKey.secret);
    const identitySecret = S.deriveSecret(keySecret, 'c identity', emptyHash);
    const block = S.trafficKeys(identitySecret);
    const identity = clientKey ? clientKey.keyBlob : EMPTY;
    // AES-256-GCM whatever the suite, nonce = iv, no AD.
    const sealedIdentity = P.aeadSeal(CipherSuite.AES_256_GCM, block.key, block.iv, EMPTY, identity);
    if (P.sealRecord) same('identity block', sealedIdentity, P.sealRecord(CipherSuite.AES_256_GCM, block.key, block.iv, 0, EMPTY, identity));
    return {
      serverKey,
      clientKey,
      toServerKey,
      toClientKey,
      keySecret,
      identitySecret,
      identityBlockKey: block.key,
      identityBlockIv: block.iv,
      identity,
      sealedIdentity,
      clientHelloData: cat(vec16(toServerKey.responderShare), vec16(sealedIdentity)),
      serverHelloData: toClientKey ? vec16(toClientKey.responderShare) : undefined,
    };
  }
  /** One extension: BE16(type) ‖ vec16(data). */
  const extension = (type: number, data: Buffer): Buffer => cat(u16(type), vec16(data));

  // ---- Certificates (§14): the client lists ML-DSA-87 in certificate_auth.
  const certificateMode = isCertificateMode(spec.auth);
  const certificateMutual = spec.auth === 'certificate-mutual';
  const certificateAuth = certificateMode ? vec16(u16(ML_DSA_87_SCHEME)) : undefined;
  const clientHelloExtensions = keyAuth ? extension(KEY_AUTH, keyAuth.clientHelloData) : certificateAuth ? extension(CERTIFICATE_AUTH, certificateAuth) : EMPTY;

  const chBody = cat(
    u8(2),
    u8(0),
    I.clientRandom.value,
    vec8(u16(VERSION)),
    vec16(cat(...offeredSuites(spec).map(u16))),
    vec16(cat(...offeredGroups(spec).map(u16))),
    u16(g.id),
    vec16(hs.initiatorShare),
    vec16(offered ? cat(vec16(offered.identity), u32(offered.obfuscatedAge)) : EMPTY),
    vec16(clientHelloExtensions),
  );
  let clientHello: Buffer;
  let binder: Record<string, Buffer> = {};
  if (offered) {
    // The binders list: one vec8(48-byte HMAC); the frame length counts it, the truncated hello stops before it.
    const bindersLength = 2 + 1 + HASH_LEN;
    const truncated = cat(u8(0x01), u32(chBody.length + bindersLength), chBody);
    const truncatedHash = H(truncated);
    const binderKey = S.deriveSecret(early, offered.binderLabel, emptyHash);
    const fin = S.finished(binderKey, truncatedHash);
    clientHello = cat(truncated, vec16(vec8(fin.mac)));
    binder = { truncatedClientHelloHash: truncatedHash, binderKey, binderFinishedKey: fin.key, binder: fin.mac };
  } else {
    clientHello = frame(0x01, cat(chBody, vec16(EMPTY)));
  }

  // ---- ServerHello
  const serverHelloExtensions = keyAuth?.serverHelloData ? extension(KEY_AUTH, keyAuth.serverHelloData) : EMPTY;
  const serverHello = frame(0x02, cat(u8(2), u8(0), I.serverRandom.value, u16(spec.suite), u16(g.id), vec16(hs.responderShare), u16(offered ? 0 : NO_PSK), vec16(serverHelloExtensions)));

  // ---- Handshake secrets: hs = HKDF-Extract(Derive-Secret(early, or ks under a pinned key, "derived", ""), K [‖ K_c]).
  const keySecretDerived = keyAuth ? S.deriveSecret(keyAuth.keySecret, 'derived', emptyHash) : undefined;
  const handshakeSecret = P.extract(keySecretDerived ?? earlyDerived, keyAuth?.toClientKey ? cat(hs.secret, keyAuth.toClientKey.secret) : hs.secret);
  const helloHash = H(clientHello, serverHello);
  const cHs = S.deriveSecret(handshakeSecret, 'c hs traffic', helloHash);
  const sHs = S.deriveSecret(handshakeSecret, 's hs traffic', helloHash);
  const cHsKeys = S.trafficKeys(cHs);
  const sHsKeys = S.trafficKeys(sHs);

  // ---- The server's flight: ServerHello, {EncryptedExtensions}, in the certificate modes
  // [{CertificateRequest}], {Certificate}, {CertificateVerify}; then {Finished}.
  const transcript: Buffer[] = [clientHello, serverHello];
  const serverHsDir: Direction = { epoch: 1, keys: sHsKeys, seq: 0 };
  const ee = handshakeMessage(Msg.ENCRYPTED_EXTENSIONS, vec16(EMPTY));
  const eeRecord = S.record(serverHsDir, Inner.HANDSHAKE, ee);
  transcript.push(ee);
  const eeHash = H(...transcript);
  const serverCertificates = certificateMode ? serverCertificateMessages() : undefined;
  function serverCertificateMessages() {
    // CertificateRequest: vec16(extensions), none defined.
    const cr = certificateMutual ? handshakeMessage(Msg.CERTIFICATE_REQUEST, vec16(EMPTY)) : undefined;
    const crRecord = cr && S.record(serverHsDir, Inner.HANDSHAKE, cr);
    if (cr) transcript.push(cr);
    // Certificate: vec24(certificate_list), each entry vec24(DER); the leaf alone (the CA is the client's anchor).
    const certificate = handshakeMessage(Msg.CERTIFICATE, vec24(vec24(certificates.fields.server.der)));
    const certificateRecord = S.record(serverHsDir, Inner.HANDSHAKE, certificate);
    transcript.push(certificate);
    const verify = S.certificateVerify('server', certificates.seeds.server.value, certificates.fields.server.publicKey, H(...transcript));
    const verifyRecord = S.record(serverHsDir, Inner.HANDSHAKE, verify.message);
    transcript.push(verify.message);
    return {
      ...(cr ? { certificateRequest: cr, certificateRequestRecord: crRecord } : {}),
      serverCertificate: certificate,
      serverCertificateRecord: certificateRecord,
      transcriptHashServerCertificate: verify.transcriptHash,
      serverCertificateVerifySignedContent: verify.signedContent,
      serverCertificateVerifySignature: verify.signature,
      serverCertificateVerify: verify.message,
      serverCertificateVerifyRecord: verifyRecord,
      transcriptHashServerCertificateVerify: H(...transcript),
    };
  }
  // The server's Finished covers the transcript up to its last message before it.
  const sFin = S.finished(sHs, H(...transcript));
  const sf = handshakeMessage(Msg.FINISHED, sFin.mac);
  const sfRecord = S.record(serverHsDir, Inner.HANDSHAKE, sf);
  transcript.push(sf);
  const sfHash = H(...transcript);

  // ---- Master secret and application secrets
  const hsDerived = S.deriveSecret(handshakeSecret, 'derived', emptyHash);
  const master = P.extract(hsDerived, ZEROS);
  const cAp = S.deriveSecret(master, 'c ap traffic', sfHash);
  const sAp = S.deriveSecret(master, 's ap traffic', sfHash);
  const exporterMaster = S.deriveSecret(master, 'exp master', sfHash);

  // ---- The client's flight: in certificate-mutual {Certificate}, {CertificateVerify}; then {Finished}.
  const clientHsDir: Direction = { epoch: 1, keys: cHsKeys, seq: 0 };
  const clientCertificates = certificateMutual ? clientCertificateMessages() : undefined;
  function clientCertificateMessages() {
    const certificate = handshakeMessage(Msg.CERTIFICATE, vec24(vec24(certificates.fields.client.der)));
    const certificateRecord = S.record(clientHsDir, Inner.HANDSHAKE, certificate);
    transcript.push(certificate);
    const verify = S.certificateVerify('client', certificates.seeds.client.value, certificates.fields.client.publicKey, H(...transcript));
    const verifyRecord = S.record(clientHsDir, Inner.HANDSHAKE, verify.message);
    transcript.push(verify.message);
    return {
      clientCertificate: certificate,
      clientCertificateRecord: certificateRecord,
      transcriptHashClientCertificate: verify.transcriptHash,
      clientCertificateVerifySignedContent: verify.signedContent,
      clientCertificateVerifySignature: verify.signature,
      clientCertificateVerify: verify.message,
      clientCertificateVerifyRecord: verifyRecord,
      transcriptHashClientCertificateVerify: H(...transcript),
    };
  }
  const cFin = S.finished(cHs, H(...transcript));
  const cf = handshakeMessage(Msg.FINISHED, cFin.mac);
  const cfRecord = S.record(clientHsDir, Inner.HANDSHAKE, cf);
  transcript.push(cf);
  const cfHash = H(...transcript);
  const resumptionMaster = S.deriveSecret(master, 'res master', cfHash);

  // ---- The session script
  const c: Direction = { epoch: 2, keys: S.trafficKeys(cAp), seq: 0 };
  const s: Direction = { epoch: 2, keys: S.trafficKeys(sAp), seq: 0 };
  const epoch2 = { clientTrafficSecret: cAp, serverTrafficSecret: sAp, clientKey: c.keys.key, clientIv: c.keys.iv, serverKey: s.keys.key, serverIv: s.keys.iv };
  const records: Array<Record<string, unknown>> = [];
  const send = (what: string, from: 'client' | 'server', type: number, content: Buffer, text?: string) => {
    const r = S.record(from === 'client' ? c : s, type, content);
    const { epoch, seq, innerType, ...rest } = r;
    records.push({ what, from, epoch, seq, innerType, ...(text !== undefined ? { text } : {}), ...rest });
    return r;
  };

  // Ticket (server): PSK, key ID, AD, plaintext, sealed ticket, NewSessionTicket. Sessions
  // authenticated by keys or certificates get none (§13.5, §14.4).
  const ticket = issuesTickets(spec.auth) ? issueTicket() : undefined;
  function issueTicket() {
    const ticketKey = global.ticketKey.value;
    const ageAdd = I.ticketAgeAdd.value.readUInt32BE(0);
    const ticketPsk = S.expandLabel(resumptionMaster, 'resumption', I.ticketNonce.value, HASH_LEN);
    // HKDF-Expand-Label(ticketKey, "ticket key id", "", 8): one HMAC block, the 32-byte ticket key as the PRK.
    const keyId = P.hmac(ticketKey, cat(hkdfLabel('ticket key id', EMPTY, 8), u8(1))).subarray(0, 8);
    const ticketAd = cat(ascii('qtun2 ticket'), keyId, vec16(ascii(SERVER_IDENTITY)));
    const peerIdentity = spec.auth === 'psk' ? ascii(PSK_IDENTITY) : spec.auth === 'resumption' ? resumed!.peerIdentity : EMPTY;
    const ticketPlaintext = cat(
      u16(VERSION),
      u16(spec.suite),
      u16(g.id),
      u64(TICKET_ISSUED_AT_MS),
      u32(TICKET_LIFETIME_SECONDS),
      u32(ageAdd),
      I.ticketId.value,
      vec8(peerIdentity),
      ticketPsk,
    );
    const ticketBytes = cat(keyId, I.ticketAeadNonce.value, P.aeadSeal(CipherSuite.AES_256_GCM, ticketKey, I.ticketAeadNonce.value, ticketAd, ticketPlaintext));
    const newSessionTicket = cat(u32(TICKET_LIFETIME_SECONDS), u32(ageAdd), vec8(I.ticketNonce.value), vec16(ticketBytes), vec16(EMPTY));
    send('new_session_ticket', 'server', Inner.NEW_SESSION_TICKET, newSessionTicket);
    const doc = {
      lifetimeSeconds: TICKET_LIFETIME_SECONDS,
      ageAdd,
      nonce: I.ticketNonce.value,
      issuedAtMs: TICKET_ISSUED_AT_MS,
      ticketId: I.ticketId.value,
      peerIdentity,
      psk: ticketPsk,
      keyId,
      associatedData: ticketAd,
      plaintext: ticketPlaintext,
      aeadNonce: I.ticketAeadNonce.value,
      ticket: ticketBytes,
      newSessionTicket,
    };
    const issued: IssuedTicketState = { ticket: ticketBytes, psk: ticketPsk, ageAdd, peerIdentity };
    return { doc, issued };
  }

  send(`data "${TEXTS.clientEpoch2}"`, 'client', Inner.DATA, ascii(TEXTS.clientEpoch2), TEXTS.clientEpoch2);
  send(`data "${TEXTS.serverEpoch2}"`, 'server', Inner.DATA, ascii(TEXTS.serverEpoch2), TEXTS.serverEpoch2);
  send('ping', 'client', Inner.PING, EMPTY);
  send('pong', 'server', Inner.PONG, EMPTY);

  // Symmetric KeyUpdate to epoch 3, started by the client.
  send('key_update (symmetric, to epoch 3)', 'client', Inner.KEY_UPDATE, updateBody(0, 3));
  send('key_update_ack (symmetric, to epoch 3)', 'server', Inner.KEY_UPDATE_ACK, updateBody(0, 3));
  const cAp3 = S.expandLabel(cAp, 'traffic upd', EMPTY, HASH_LEN);
  const sAp3 = S.expandLabel(sAp, 'traffic upd', EMPTY, HASH_LEN);
  Object.assign(s, { epoch: 3, keys: S.trafficKeys(sAp3), seq: 0 });
  Object.assign(c, { epoch: 3, keys: S.trafficKeys(cAp3), seq: 0 });
  const epoch3 = { clientTrafficSecret: cAp3, serverTrafficSecret: sAp3, clientKey: c.keys.key, clientIv: c.keys.iv, serverKey: s.keys.key, serverIv: s.keys.iv };
  send(`data "${TEXTS.clientEpoch3}"`, 'client', Inner.DATA, ascii(TEXTS.clientEpoch3), TEXTS.clientEpoch3);
  send(`data "${TEXTS.serverEpoch3}"`, 'server', Inner.DATA, ascii(TEXTS.serverEpoch3), TEXTS.serverEpoch3);

  // KEM KeyUpdate to epoch 4, started by the server: it is the combiner's initiator.
  const kem = S.hybrid(
    g,
    { classicalPrivateKey: I.kemUpdateInitiatorClassicalPrivateKey.value, mlkemSeed: I.kemUpdateInitiatorMlkemSeed.value },
    { classicalPrivateKey: I.kemUpdateResponderClassicalPrivateKey.value, mlkemCoins: I.kemUpdateResponderMlkemCoins.value },
  );
  send('key_update (kem, to epoch 4)', 'server', Inner.KEY_UPDATE, updateBody(1, 4, kem.initiatorShare));
  send('key_update_ack (kem, to epoch 4)', 'client', Inner.KEY_UPDATE_ACK, updateBody(1, 4, kem.responderShare));
  const cUpd = S.expandLabel(cAp3, 'traffic upd', EMPTY, HASH_LEN);
  const sUpd = S.expandLabel(sAp3, 'traffic upd', EMPTY, HASH_LEN);
  const cAp4 = P.extract(cUpd, kem.secret);
  const sAp4 = P.extract(sUpd, kem.secret);
  Object.assign(c, { epoch: 4, keys: S.trafficKeys(cAp4), seq: 0 });
  Object.assign(s, { epoch: 4, keys: S.trafficKeys(sAp4), seq: 0 });
  const epoch4 = {
    clientTrafficUpdate: cUpd,
    serverTrafficUpdate: sUpd,
    clientTrafficSecret: cAp4,
    serverTrafficSecret: sAp4,
    clientKey: c.keys.key,
    clientIv: c.keys.iv,
    serverKey: s.keys.key,
    serverIv: s.keys.iv,
  };
  send(`data "${TEXTS.clientEpoch4}"`, 'client', Inner.DATA, ascii(TEXTS.clientEpoch4), TEXTS.clientEpoch4);
  send(`data "${TEXTS.serverEpoch4}"`, 'server', Inner.DATA, ascii(TEXTS.serverEpoch4), TEXTS.serverEpoch4);
  send('close_notify', 'client', Inner.CLOSE_NOTIFY, EMPTY);

  // Exporter: HKDF-Expand-Label(Derive-Secret(exporter master, label, ""), "exporter", Hash(context), length).
  const exporter: Array<Record<string, unknown>> = [];
  for (const context of [ascii(EXPORTER_CONTEXT), EMPTY, undefined]) {
    for (const length of EXPORTER_LENGTHS) {
      const secret = S.deriveSecret(exporterMaster, EXPORTER_LABEL, emptyHash);
      exporter.push({ label: EXPORTER_LABEL, context: context ?? null, length, output: S.expandLabel(secret, 'exporter', H(context ?? EMPTY), length) });
    }
  }

  const inputs: Record<string, unknown> = { ...I, ...KI };
  if (!issuesTickets(spec.auth)) for (const name of TICKET_INPUTS) delete inputs[name];
  if (spec.auth === 'resumption') {
    inputs.resumption = {
      resumes: spec.resumes!,
      ticket: resumed!.ticket,
      ticketPsk: resumed!.psk,
      ticketAgeAdd: resumed!.ageAdd,
      ticketAgeMs: RESUMPTION_TICKET_AGE_MS,
      obfuscatedTicketAge: offered!.obfuscatedAge,
    };
  }
  if (spec.auth === 'psk') inputs.psk = { identity: ascii(PSK_IDENTITY), key: global.pskKey.value };

  const doc = {
    name: spec.name,
    group: u16(g.id),
    groupName: g.option,
    suite: u16(spec.suite),
    suiteName: spec.suiteName,
    auth: spec.auth,
    offeredCipherSuites: cat(...offeredSuites(spec).map(u16)),
    offeredGroups: cat(...offeredGroups(spec).map(u16)),
    inputs,
    handshake: {
      ...(keyAuth ? { identityKeys: { server: keyAuth.serverKey, ...(keyAuth.clientKey ? { client: keyAuth.clientKey } : {}) } } : {}),
      clientHello: {
        clientClassicalPublicKey: hs.initiatorClassicalPublicKey,
        mlkemEncapsulationKey: hs.mlkemEncapsulationKey,
        ...(offered ? { earlySecret: early, ...binder } : {}),
        ...(keyAuth
          ? {
              serverKeyEncapsulation: encapsulationDoc(SERVER_KEY_LABEL, keyAuth.toServerKey),
              keySecret: keyAuth.keySecret,
              identitySecret: keyAuth.identitySecret,
              identityBlockKey: keyAuth.identityBlockKey,
              identityBlockIv: keyAuth.identityBlockIv,
              identity: keyAuth.identity,
              sealedIdentity: keyAuth.sealedIdentity,
              keyAuth: keyAuth.clientHelloData,
            }
          : {}),
        ...(certificateAuth ? { certificateAuth } : {}),
        frame: clientHello,
      },
      serverHello: {
        serverClassicalPublicKey: hs.responderClassicalPublicKey,
        mlkemCiphertext: hs.mlkemCiphertext,
        ...(keyAuth?.toClientKey ? { clientKeyEncapsulation: encapsulationDoc(CLIENT_KEY_LABEL, keyAuth.toClientKey), keyAuth: keyAuth.serverHelloData } : {}),
        selectedPsk: offered ? 0 : NO_PSK,
        frame: serverHello,
      },
      hybrid: {
        classicalSharedSecret: hs.classicalSharedSecret,
        mlkemSharedSecret: hs.mlkemSharedSecret,
        fixedInfoHash: hs.fixedInfoHash,
        combinerPrk: hs.combinerPrk,
        secret: hs.secret,
      },
      schedule: {
        earlySecret: early,
        earlyDerived,
        ...(keySecretDerived ? { keySecretDerived } : {}),
        handshakeSecret,
        transcriptHashServerHello: helloHash,
        clientHandshakeTrafficSecret: cHs,
        serverHandshakeTrafficSecret: sHs,
        clientHandshakeKey: cHsKeys.key,
        clientHandshakeIv: cHsKeys.iv,
        serverHandshakeKey: sHsKeys.key,
        serverHandshakeIv: sHsKeys.iv,
      },
      serverFlight: {
        encryptedExtensions: ee,
        encryptedExtensionsRecord: eeRecord,
        ...(serverCertificates ?? { transcriptHashEncryptedExtensions: eeHash }),
        serverFinishedKey: sFin.key,
        serverVerifyData: sFin.mac,
        serverFinished: sf,
        serverFinishedRecord: sfRecord,
        transcriptHashServerFinished: sfHash,
      },
      application: {
        handshakeDerived: hsDerived,
        masterSecret: master,
        clientApplicationTrafficSecret: cAp,
        serverApplicationTrafficSecret: sAp,
        exporterMasterSecret: exporterMaster,
      },
      clientFlight: {
        ...(clientCertificates ?? {}),
        clientFinishedKey: cFin.key,
        clientVerifyData: cFin.mac,
        clientFinished: cf,
        clientFinishedRecord: cfRecord,
        transcriptHashClientFinished: cfHash,
        resumptionMasterSecret: resumptionMaster,
        sessionId: cfHash.subarray(0, 16),
      },
    },
    session: {
      epoch2,
      ...(ticket ? { ticket: ticket.doc } : {}),
      epoch3,
      kemUpdate: {
        initiatorClassicalPublicKey: kem.initiatorClassicalPublicKey,
        mlkemEncapsulationKey: kem.mlkemEncapsulationKey,
        responderClassicalPublicKey: kem.responderClassicalPublicKey,
        mlkemCiphertext: kem.mlkemCiphertext,
        classicalSharedSecret: kem.classicalSharedSecret,
        mlkemSharedSecret: kem.mlkemSharedSecret,
        fixedInfoHash: kem.fixedInfoHash,
        combinerPrk: kem.combinerPrk,
        secret: kem.secret,
      },
      epoch4,
      records,
      exporter,
    },
  };
  return { doc, issued: ticket?.issued };
}

// ---------------------------------------------------------------------------------------------
// The document

/** JSON form: Buffers become lowercase hex; DerivedInput becomes { shake, hex }. */
export function toJson(value: unknown): unknown {
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return hex(value);
  if (Array.isArray(value)) return value.map(toJson);
  if (value !== null && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    if ('shake' in o && 'value' in o && Object.keys(o).length === 2) return { shake: o.shake, hex: hex(o.value as Buffer) };
    return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, toJson(v)]));
  }
  return value;
}

export const INPUT_DERIVATION = [
  'Every fixed input is derived, never chosen: input = the first L bytes of SHAKE-256(A), where A is the ASCII string',
  `"${INPUT_PREFIX}" ‖ scope ‖ " " ‖ name, scope being the case name (e.g. "x25519-mlkem1024/none/aes-256-gcm") or "global",`,
  'and L the input\'s length. Each input lists its string A as "shake". X25519 private keys are the 32 bytes as RFC 7748 defines',
  'them (X25519 clamps them). A P-384 private key is the 48 bytes read as a big-endian integer d, which must satisfy',
  '1 ≤ d < n (the group order); the generator checks it and would stop otherwise (no label used here needed a retry).',
  'ML-KEM key pairs come from the 64-byte seed d ‖ z of FIPS 203 ML-KEM.KeyGen_internal; encapsulations from the 32-byte',
  'message m of ML-KEM.Encaps_internal. The ticket age_add is the 4 bytes read as BE32. Constants: PSK identity',
  `"${PSK_IDENTITY}", ticket server identity "${SERVER_IDENTITY}", ticket lifetime ${TICKET_LIFETIME_SECONDS} s, issuedAtMs`,
  `${TICKET_ISSUED_AT_MS} (2026-01-01T00:00:00Z) for every ticket, and a ticket age of ${RESUMPTION_TICKET_AGE_MS} ms when it is offered.`,
].join(' ');

/** Descriptions of every field; `[]` stands for any array index. */
export const FIELD_DESCRIPTIONS: Readonly<Record<string, string>> = {
  title: 'This document.',
  generator: 'The program that writes this file and docs/PROTOCOL-V2-VECTORS.md.',
  inputDerivation: 'How every fixed input is derived.',
  'global.protocolVersion': 'BE16 protocol version in supported_versions, the combiner and tickets (0x0200).',
  'global.labelPrefix': 'Prefix of every HKDF-Expand-Label label (ASCII).',
  'global.pskIdentity': 'External PSK identity (bytes of the ASCII string vector-psk).',
  'global.pskKey': 'External PSK key (32 bytes).',
  'global.ticketKey': 'The server\'s AES-256-GCM ticket key (32 bytes), one for every case.',
  'global.serverIdentity': 'The ticket issuer\'s serverIdentity (in every ticket\'s AD).',
  'global.ticketLifetimeSeconds': 'Lifetime of every ticket, seconds.',
  'global.ticketIssuedAtMs': 'issuedAtMs in every ticket (ms since the Unix epoch).',
  'global.resumptionTicketAgeMs': 'The ticket age (ms) when a resumption case offers its ticket.',
  'global.certificates.verificationTime': 'Certificate cases: the time at which the generator validates both chains (RFC 5280, by hand and by the library). The handshakes themselves validate them at the current time.',
  'global.certificates.ca.mldsaSeed': 'Certificate cases: the CA\'s ML-DSA-87 key is KeyGen_internal(ξ) of this 32-byte seed ξ (FIPS 204).',
  'global.certificates.ca.publicKey': 'Certificate cases: the CA\'s ML-DSA-87 public key pk (2592 bytes), the subjectPublicKey of its certificate.',
  'global.certificates.ca.subject': 'Certificate cases: the CA certificate\'s subject (RFC 4514).',
  'global.certificates.ca.issuer': 'Certificate cases: its issuer: itself (self-signed, the trust anchor of both chains).',
  'global.certificates.ca.serialNumber': 'Certificate cases: its serial number (the INTEGER\'s content octets).',
  'global.certificates.ca.notBefore': 'Certificate cases: start of its validity.',
  'global.certificates.ca.notAfter': 'Certificate cases: end of its validity.',
  'global.certificates.ca.basicConstraintsCa': 'Certificate cases: basicConstraints cA (critical).',
  'global.certificates.ca.keyUsage': 'Certificate cases: its keyUsage bits (critical).',
  'global.certificates.ca.fingerprint': 'Certificate cases: "SHA256:" ‖ base64(SHA-256(SubjectPublicKeyInfo DER)) without padding.',
  'global.certificates.ca.der': 'Certificate cases: the CA certificate, DER (X.509 v3, signature id-ml-dsa-87: pure ML-DSA-87, empty context, over the tbsCertificate DER).',
  'global.certificates.ca.pem': 'Certificate cases: the same certificate, PEM.',
  'global.certificates.server.mldsaSeed': 'Certificate cases: the server\'s ML-DSA-87 key is KeyGen_internal(ξ) of this seed; it signs the server\'s CertificateVerify.',
  'global.certificates.server.publicKey': 'Certificate cases: the server\'s ML-DSA-87 public key, the subjectPublicKey of its certificate.',
  'global.certificates.server.subject': 'Certificate cases: the server certificate\'s subject (its CN is never checked as a name, §14.1).',
  'global.certificates.server.issuer': 'Certificate cases: its issuer, the CA.',
  'global.certificates.server.serialNumber': 'Certificate cases: its serial number.',
  'global.certificates.server.notBefore': 'Certificate cases: start of its validity.',
  'global.certificates.server.notAfter': 'Certificate cases: end of its validity.',
  'global.certificates.server.basicConstraintsCa': 'Certificate cases: basicConstraints cA (an end entity).',
  'global.certificates.server.keyUsage': 'Certificate cases: its keyUsage bits (critical).',
  'global.certificates.server.extendedKeyUsage': 'Certificate cases: its extendedKeyUsage.',
  'global.certificates.server.dnsName': 'Certificate cases: its subjectAltName dNSName, the name the client expects (ServerCertificatePolicy.dnsName).',
  'global.certificates.server.fingerprint': 'Certificate cases: "SHA256:" ‖ base64(SHA-256(SubjectPublicKeyInfo DER)) without padding: the client\'s peerIdentity.fingerprint.',
  'global.certificates.server.der': 'Certificate cases: the server certificate, DER, issued by the CA: the one entry of the server\'s Certificate message.',
  'global.certificates.server.pem': 'Certificate cases: the same certificate, PEM.',
  'global.certificates.client.mldsaSeed': 'certificate-mutual: the client\'s ML-DSA-87 key is KeyGen_internal(ξ) of this seed; it signs the client\'s CertificateVerify.',
  'global.certificates.client.publicKey': 'certificate-mutual: the client\'s ML-DSA-87 public key, the subjectPublicKey of its certificate.',
  'global.certificates.client.subject': 'certificate-mutual: the client certificate\'s subject.',
  'global.certificates.client.issuer': 'certificate-mutual: its issuer, the CA.',
  'global.certificates.client.serialNumber': 'certificate-mutual: its serial number.',
  'global.certificates.client.notBefore': 'certificate-mutual: start of its validity.',
  'global.certificates.client.notAfter': 'certificate-mutual: end of its validity.',
  'global.certificates.client.basicConstraintsCa': 'certificate-mutual: basicConstraints cA (an end entity).',
  'global.certificates.client.keyUsage': 'certificate-mutual: its keyUsage bits (critical).',
  'global.certificates.client.extendedKeyUsage': 'certificate-mutual: its extendedKeyUsage (no subjectAltName: a client\'s name is not checked).',
  'global.certificates.client.fingerprint': 'certificate-mutual: "SHA256:" ‖ base64(SHA-256(SubjectPublicKeyInfo DER)) without padding: the server\'s peerIdentity.fingerprint.',
  'global.certificates.client.der': 'certificate-mutual: the client certificate, DER, issued by the CA: the one entry of the client\'s Certificate message.',
  'global.certificates.client.pem': 'certificate-mutual: the same certificate, PEM.',
  'cases[].name': 'The case: group/authentication/suite; also the scope of its input labels.',
  'cases[].group': 'BE16 group ID of the key share and of the ServerHello.',
  'cases[].groupName': 'The group\'s option name.',
  'cases[].suite': 'BE16 cipher suite chosen by the server.',
  'cases[].suiteName': 'The suite\'s option name.',
  'cases[].auth':
    'Authentication: none, psk (external PSK), resumption (a ticket from the case named in inputs.resumption.resumes), key (the client pins the server\'s long-term key and stays anonymous, §13) or key-mutual (both long-term keys; the server authorizes the client\'s), certificate (the server proves the key of its ML-DSA-87 certificate, global.certificates.server; the client stays anonymous, §14) or certificate-mutual (the server also sends a CertificateRequest and the client proves global.certificates.client). The pinned-key and certificate cases get no NewSessionTicket (§13.5, §14.4).',
  'cases[].offeredCipherSuites': 'The ClientHello\'s cipher suite list (BE16 each): the case\'s suite first.',
  'cases[].offeredGroups': 'The ClientHello\'s group list (BE16 each): the case\'s group first, the key share is for it.',
  'cases[].inputs.clientRandom': 'ClientHello random (32 bytes).',
  'cases[].inputs.serverRandom': 'ServerHello random (32 bytes).',
  'cases[].inputs.clientClassicalPrivateKey': 'Client\'s classical private key (X25519 scalar, or P-384 d big-endian).',
  'cases[].inputs.clientMlkemSeed': 'Client\'s ML-KEM key generation seed d ‖ z (64 bytes).',
  'cases[].inputs.serverClassicalPrivateKey': 'Server\'s classical private key.',
  'cases[].inputs.serverMlkemCoins': 'Server\'s ML-KEM encapsulation message m (32 bytes).',
  'cases[].inputs.ticketNonce': 'Nonce of the NewSessionTicket this session issues (8 bytes).',
  'cases[].inputs.ticketAgeAdd': 'age_add of that ticket (4 bytes, BE32).',
  'cases[].inputs.ticketAeadNonce': 'AES-GCM nonce sealing that ticket (12 bytes).',
  'cases[].inputs.ticketId': 'Ticket ID inside that ticket (16 bytes; the anti-replay key).',
  'cases[].inputs.kemUpdateInitiatorClassicalPrivateKey': 'KEM KeyUpdate: the requester\'s (server\'s) classical private key.',
  'cases[].inputs.kemUpdateInitiatorMlkemSeed': 'KEM KeyUpdate: the requester\'s ML-KEM seed d ‖ z.',
  'cases[].inputs.kemUpdateResponderClassicalPrivateKey': 'KEM KeyUpdate: the responder\'s (client\'s) classical private key.',
  'cases[].inputs.kemUpdateResponderMlkemCoins': 'KEM KeyUpdate: the responder\'s ML-KEM encapsulation message m.',
  'cases[].inputs.serverIdentityKeyClassicalPrivateKey': 'Pinned-key modes: the server\'s long-term key (of the case\'s group), its classical private key.',
  'cases[].inputs.serverIdentityKeyMlkemSeed': 'Pinned-key modes: the server\'s long-term key, its ML-KEM key generation seed d ‖ z (64 bytes).',
  'cases[].inputs.serverKeyEncapsulationClassicalPrivateKey': 'Pinned-key modes: the client\'s encapsulation to the server\'s key, its fresh classical private key.',
  'cases[].inputs.serverKeyEncapsulationMlkemCoins': 'Pinned-key modes: the client\'s encapsulation to the server\'s key, its ML-KEM encapsulation message m (32 bytes).',
  'cases[].inputs.clientIdentityKeyClassicalPrivateKey': 'key-mutual: the client\'s long-term key (of the case\'s group), its classical private key.',
  'cases[].inputs.clientIdentityKeyMlkemSeed': 'key-mutual: the client\'s long-term key, its ML-KEM key generation seed d ‖ z (64 bytes).',
  'cases[].inputs.clientKeyEncapsulationClassicalPrivateKey': 'key-mutual: the server\'s encapsulation to the client\'s key, its fresh classical private key.',
  'cases[].inputs.clientKeyEncapsulationMlkemCoins': 'key-mutual: the server\'s encapsulation to the client\'s key, its ML-KEM encapsulation message m (32 bytes).',
  'cases[].inputs.psk.identity': 'PSK case: the identity offered (vector-psk).',
  'cases[].inputs.psk.key': 'PSK case: the external PSK (global.pskKey).',
  'cases[].inputs.resumption.resumes': 'Resumption case: the case whose session issued the ticket.',
  'cases[].inputs.resumption.ticket': 'Resumption case: the ticket (that case\'s session.ticket.ticket), sent as the PSK identity.',
  'cases[].inputs.resumption.ticketPsk': 'Resumption case: the ticket\'s PSK (that case\'s session.ticket.psk).',
  'cases[].inputs.resumption.ticketAgeAdd': 'Resumption case: the ticket\'s age_add.',
  'cases[].inputs.resumption.ticketAgeMs': 'Resumption case: the ticket age when offered (ms).',
  'cases[].inputs.resumption.obfuscatedTicketAge': 'Resumption case: (ticketAgeMs + ageAdd) mod 2^32, in the PSK identity.',
  'cases[].handshake.identityKeys.server.group': 'Pinned-key modes: the server\'s long-term key: BE16 group ID (the case\'s group).',
  'cases[].handshake.identityKeys.server.groupName': 'Pinned-key modes: the server\'s long-term key: the group\'s name, as in the text form.',
  'cases[].handshake.identityKeys.server.classicalPublicKey': 'Pinned-key modes: the server\'s long-term key: classical public key.',
  'cases[].handshake.identityKeys.server.mlkemEncapsulationKey': 'Pinned-key modes: the server\'s long-term key: ML-KEM encapsulation key.',
  'cases[].handshake.identityKeys.server.keyBlob': 'Pinned-key modes: the server\'s long-term key: key blob = BE16(group) ‖ classical public key ‖ encapsulation key (public key = the blob without its first 2 bytes).',
  'cases[].handshake.identityKeys.server.fingerprint': 'Pinned-key modes: the server\'s long-term key: "SHA256:" ‖ base64(SHA-256(keyBlob)) without padding.',
  'cases[].handshake.identityKeys.server.publicKeyText': 'Pinned-key modes: the server\'s long-term key: text form "qtun-" ‖ group name ‖ " " ‖ base64(public key) (no comment).',
  'cases[].handshake.identityKeys.client.group': 'key-mutual: the client\'s long-term key: BE16 group ID (the case\'s group).',
  'cases[].handshake.identityKeys.client.groupName': 'key-mutual: the client\'s long-term key: the group\'s name, as in the text form.',
  'cases[].handshake.identityKeys.client.classicalPublicKey': 'key-mutual: the client\'s long-term key: classical public key.',
  'cases[].handshake.identityKeys.client.mlkemEncapsulationKey': 'key-mutual: the client\'s long-term key: ML-KEM encapsulation key.',
  'cases[].handshake.identityKeys.client.keyBlob': 'key-mutual: the client\'s long-term key: key blob = BE16(group) ‖ classical public key ‖ encapsulation key (public key = the blob without its first 2 bytes).',
  'cases[].handshake.identityKeys.client.fingerprint': 'key-mutual: the client\'s long-term key: "SHA256:" ‖ base64(SHA-256(keyBlob)) without padding.',
  'cases[].handshake.identityKeys.client.publicKeyText': 'key-mutual: the client\'s long-term key: text form "qtun-" ‖ group name ‖ " " ‖ base64(public key) (no comment).',
  'cases[].handshake.clientHello.clientClassicalPublicKey': 'Client\'s classical public key (X25519 32 bytes; P-384 uncompressed 04 ‖ X ‖ Y, 97 bytes).',
  'cases[].handshake.clientHello.mlkemEncapsulationKey': 'Client\'s ML-KEM encapsulation key.',
  'cases[].handshake.clientHello.earlySecret': 'PSK modes: HKDF-Extract(0^48, PSK), the binder\'s early secret.',
  'cases[].handshake.clientHello.truncatedClientHelloHash': 'PSK modes: SHA-384 of the truncated ClientHello: the frame without its last 51 bytes (the binders list: BE16 length ‖ vec8(48-byte binder)); its frame header keeps the length of the whole message.',
  'cases[].handshake.clientHello.binderKey': 'PSK modes: Derive-Secret(early, "ext binder" or "res binder", "").',
  'cases[].handshake.clientHello.binderFinishedKey': 'PSK modes: HKDF-Expand-Label(binderKey, "finished", "", 48).',
  'cases[].handshake.clientHello.binder': 'PSK modes: HMAC-SHA-384(binderFinishedKey, truncatedClientHelloHash).',
  'cases[].handshake.clientHello.serverKeyEncapsulation.label': 'Pinned-key modes: the client\'s encapsulation to the server\'s key: the role label, salt of the combiner and first bytes of its FixedInfo (ASCII, 18 bytes).',
  'cases[].handshake.clientHello.serverKeyEncapsulation.freshClassicalPublicKey': 'Pinned-key modes: the client\'s encapsulation to the server\'s key: the fresh classical public key.',
  'cases[].handshake.clientHello.serverKeyEncapsulation.mlkemCiphertext': 'Pinned-key modes: the client\'s encapsulation to the server\'s key: ML-KEM ciphertext to the key\'s encapsulation key.',
  'cases[].handshake.clientHello.serverKeyEncapsulation.ciphertext': 'Pinned-key modes: the client\'s encapsulation to the server\'s key: ciphertext = freshClassicalPublicKey ‖ mlkemCiphertext (the server share layout).',
  'cases[].handshake.clientHello.serverKeyEncapsulation.classicalSharedSecret': 'Pinned-key modes: the client\'s encapsulation to the server\'s key: Z_classical, with the key\'s classical half.',
  'cases[].handshake.clientHello.serverKeyEncapsulation.mlkemSharedSecret': 'Pinned-key modes: the client\'s encapsulation to the server\'s key: Z_mlkem.',
  'cases[].handshake.clientHello.serverKeyEncapsulation.fixedInfoHash': 'Pinned-key modes: the client\'s encapsulation to the server\'s key: SHA-384(FixedInfo), FixedInfo = "qtun v2 server key" ‖ BE16(0x0200) ‖ BE16(key\'s group) ‖ vec16(key\'s classical pk) ‖ vec16(fresh classical pk) ‖ vec16(key\'s ek) ‖ vec16(ct), the key\'s values from identityKeys.server.',
  'cases[].handshake.clientHello.serverKeyEncapsulation.combinerPrk': 'Pinned-key modes: the client\'s encapsulation to the server\'s key: HKDF-Extract(salt = "qtun v2 server key", IKM = Z_classical ‖ Z_mlkem).',
  'cases[].handshake.clientHello.serverKeyEncapsulation.secret': 'Pinned-key modes: the client\'s encapsulation to the server\'s key: K_s = HKDF-Expand(combinerPrk, fixedInfoHash, 48).',
  'cases[].handshake.clientHello.keySecret': 'Pinned-key modes: ks = HKDF-Extract(salt = schedule.earlyDerived, IKM = K_s), the early secret being the one without a PSK.',
  'cases[].handshake.clientHello.identitySecret': 'Pinned-key modes: identity_secret = Derive-Secret(ks, "c identity", "").',
  'cases[].handshake.clientHello.identityBlockKey': 'Pinned-key modes: HKDF-Expand-Label(identity_secret, "key", "", 32), the identity block\'s AES-256-GCM key.',
  'cases[].handshake.clientHello.identityBlockIv': 'Pinned-key modes: HKDF-Expand-Label(identity_secret, "iv", "", 12), the identity block\'s nonce.',
  'cases[].handshake.clientHello.identity': 'Pinned-key modes: the identity sealed: the client\'s keyBlob (key-mutual), or empty (key).',
  'cases[].handshake.clientHello.sealedIdentity': 'Pinned-key modes: AES-256-GCM(identityBlockKey, nonce = identityBlockIv, AD = empty, identity): ciphertext ‖ 16-byte tag.',
  'cases[].handshake.clientHello.keyAuth': 'Pinned-key modes: the data of the ClientHello\'s key_auth extension (type 0x0001): vec16(serverKeyEncapsulation.ciphertext) ‖ vec16(sealedIdentity); the extensions list is vec16(BE16(0x0001) ‖ vec16(keyAuth)).',
  'cases[].handshake.clientHello.certificateAuth': 'Certificate modes: the data of the ClientHello\'s certificate_auth extension (type 0x0003): vec16(signature schemes, BE16 each) = ML-DSA-87 (0x0906) alone; the extensions list is vec16(BE16(0x0003) ‖ vec16(certificateAuth)).',
  'cases[].handshake.clientHello.frame': 'The ClientHello on the wire: 01 ‖ BE32(length) ‖ payload (the transcript\'s first message).',
  'cases[].handshake.serverHello.serverClassicalPublicKey': 'Server\'s classical public key.',
  'cases[].handshake.serverHello.mlkemCiphertext': 'ML-KEM ciphertext to the client\'s encapsulation key.',
  'cases[].handshake.serverHello.clientKeyEncapsulation.label': 'key-mutual: the server\'s encapsulation to the client\'s key: the role label, salt of the combiner and first bytes of its FixedInfo (ASCII, 18 bytes).',
  'cases[].handshake.serverHello.clientKeyEncapsulation.freshClassicalPublicKey': 'key-mutual: the server\'s encapsulation to the client\'s key: the fresh classical public key.',
  'cases[].handshake.serverHello.clientKeyEncapsulation.mlkemCiphertext': 'key-mutual: the server\'s encapsulation to the client\'s key: ML-KEM ciphertext to the key\'s encapsulation key.',
  'cases[].handshake.serverHello.clientKeyEncapsulation.ciphertext': 'key-mutual: the server\'s encapsulation to the client\'s key: ciphertext = freshClassicalPublicKey ‖ mlkemCiphertext (the server share layout).',
  'cases[].handshake.serverHello.clientKeyEncapsulation.classicalSharedSecret': 'key-mutual: the server\'s encapsulation to the client\'s key: Z_classical, with the key\'s classical half.',
  'cases[].handshake.serverHello.clientKeyEncapsulation.mlkemSharedSecret': 'key-mutual: the server\'s encapsulation to the client\'s key: Z_mlkem.',
  'cases[].handshake.serverHello.clientKeyEncapsulation.fixedInfoHash': 'key-mutual: the server\'s encapsulation to the client\'s key: SHA-384(FixedInfo), FixedInfo = "qtun v2 client key" ‖ BE16(0x0200) ‖ BE16(key\'s group) ‖ vec16(key\'s classical pk) ‖ vec16(fresh classical pk) ‖ vec16(key\'s ek) ‖ vec16(ct), the key\'s values from identityKeys.client.',
  'cases[].handshake.serverHello.clientKeyEncapsulation.combinerPrk': 'key-mutual: the server\'s encapsulation to the client\'s key: HKDF-Extract(salt = "qtun v2 client key", IKM = Z_classical ‖ Z_mlkem).',
  'cases[].handshake.serverHello.clientKeyEncapsulation.secret': 'key-mutual: the server\'s encapsulation to the client\'s key: K_c = HKDF-Expand(combinerPrk, fixedInfoHash, 48).',
  'cases[].handshake.serverHello.keyAuth': 'key-mutual: the data of the ServerHello\'s key_auth extension (type 0x0001): vec16(clientKeyEncapsulation.ciphertext); the extensions list is vec16(BE16(0x0001) ‖ vec16(keyAuth)).',
  'cases[].handshake.serverHello.selectedPsk': 'Selected PSK index, 65535 (0xffff) for none.',
  'cases[].handshake.serverHello.frame': 'The ServerHello on the wire: 02 ‖ BE32(length) ‖ payload.',
  'cases[].handshake.hybrid.classicalSharedSecret': 'Z_classical (X25519 32 bytes; P-384 x-coordinate 48 bytes).',
  'cases[].handshake.hybrid.mlkemSharedSecret': 'Z_mlkem (32 bytes).',
  'cases[].handshake.hybrid.fixedInfoHash': 'SHA-384(FixedInfo), the HKDF-Expand info; FixedInfo = "qtun v2 hybrid" ‖ BE16(0x0200) ‖ BE16(group) ‖ vec16(client classical pk) ‖ vec16(server classical pk) ‖ vec16(ek) ‖ vec16(ct).',
  'cases[].handshake.hybrid.combinerPrk': 'HKDF-Extract(salt = "qtun v2 hybrid", IKM = Z_classical ‖ Z_mlkem).',
  'cases[].handshake.hybrid.secret': 'K = HKDF-Expand(combinerPrk, fixedInfoHash, 48).',
  'cases[].handshake.schedule.earlySecret': 'HKDF-Extract(0^48, PSK or 0^48).',
  'cases[].handshake.schedule.earlyDerived': 'Derive-Secret(early, "derived", ""); in the pinned-key modes the salt of ks (clientHello.keySecret).',
  'cases[].handshake.schedule.keySecretDerived': 'Pinned-key modes: Derive-Secret(ks, "derived", ""), ks taking the early secret\'s place.',
  'cases[].handshake.schedule.handshakeSecret': 'HKDF-Extract(earlyDerived, K); pinned-key modes: HKDF-Extract(keySecretDerived, K), and in key-mutual HKDF-Extract(keySecretDerived, K ‖ K_c).',
  'cases[].handshake.schedule.transcriptHashServerHello': 'SHA-384(ClientHello ‖ ServerHello).',
  'cases[].handshake.schedule.clientHandshakeTrafficSecret': 'c_hs = Derive-Secret(handshake, "c hs traffic", CH ‖ SH).',
  'cases[].handshake.schedule.serverHandshakeTrafficSecret': 's_hs = Derive-Secret(handshake, "s hs traffic", CH ‖ SH).',
  'cases[].handshake.schedule.clientHandshakeKey': 'HKDF-Expand-Label(c_hs, "key", "", 32).',
  'cases[].handshake.schedule.clientHandshakeIv': 'HKDF-Expand-Label(c_hs, "iv", "", 12).',
  'cases[].handshake.schedule.serverHandshakeKey': 'HKDF-Expand-Label(s_hs, "key", "", 32).',
  'cases[].handshake.schedule.serverHandshakeIv': 'HKDF-Expand-Label(s_hs, "iv", "", 12).',
  'cases[].handshake.serverFlight.encryptedExtensions': 'EncryptedExtensions message: 08 ‖ BE24(2) ‖ vec16(no extensions).',
  'cases[].handshake.serverFlight.transcriptHashEncryptedExtensions': 'SHA-384(CH ‖ SH ‖ EE), what the server\'s Finished covers.',
  'cases[].handshake.serverFlight.certificateRequest': 'certificate-mutual: CertificateRequest message: 0d ‖ BE24(2) ‖ vec16(no extensions).',
  'cases[].handshake.serverFlight.serverCertificate': 'Certificate modes: the server\'s Certificate message: 0b ‖ BE24(length) ‖ vec24(certificate_list), the list holding one entry, vec24(global.certificates.server.der).',
  'cases[].handshake.serverFlight.transcriptHashServerCertificate': 'Certificate modes: SHA-384(CH ‖ SH ‖ EE ‖ [CertificateRequest] ‖ server Certificate), what the server\'s CertificateVerify signs.',
  'cases[].handshake.serverFlight.serverCertificateVerifySignedContent': 'Certificate modes: the content the server signs: 0x20 × 64 ‖ "qtun2 server CertificateVerify" ‖ 00 ‖ transcriptHashServerCertificate.',
  'cases[].handshake.serverFlight.serverCertificateVerifySignature': 'Certificate modes: ML-DSA-87.Sign(server key, signed content, ctx = empty), pure, deterministic (rnd = 0^32) so that it reproduces; our endpoints sign hedged.',
  'cases[].handshake.serverFlight.serverCertificateVerify': 'Certificate modes: the server\'s CertificateVerify message: 0f ‖ BE24(length) ‖ BE16(0x0906) ‖ vec16(signature).',
  'cases[].handshake.serverFlight.transcriptHashServerCertificateVerify': 'Certificate modes: SHA-384(CH ‖ SH ‖ EE ‖ [CertificateRequest] ‖ Certificate ‖ CertificateVerify), what the server\'s Finished covers.',
  'cases[].handshake.serverFlight.serverFinishedKey': 'HKDF-Expand-Label(s_hs, "finished", "", 48).',
  'cases[].handshake.serverFlight.serverVerifyData': 'HMAC-SHA-384(serverFinishedKey, transcriptHashEncryptedExtensions); certificate modes: over transcriptHashServerCertificateVerify.',
  'cases[].handshake.serverFlight.serverFinished': 'Finished message: 14 ‖ BE24(48) ‖ verify_data.',
  'cases[].handshake.serverFlight.transcriptHashServerFinished': 'SHA-384(CH ‖ SH ‖ EE ‖ server Finished); certificate modes: SHA-384(CH ‖ SH ‖ EE ‖ [CertificateRequest] ‖ Certificate ‖ CertificateVerify ‖ server Finished).',
  'cases[].handshake.application.handshakeDerived': 'Derive-Secret(handshake, "derived", "").',
  'cases[].handshake.application.masterSecret': 'HKDF-Extract(handshakeDerived, 0^48).',
  'cases[].handshake.application.clientApplicationTrafficSecret': 'c_ap = Derive-Secret(master, "c ap traffic", CH … server Finished).',
  'cases[].handshake.application.serverApplicationTrafficSecret': 's_ap = Derive-Secret(master, "s ap traffic", CH … server Finished).',
  'cases[].handshake.application.exporterMasterSecret': 'Derive-Secret(master, "exp master", CH … server Finished).',
  'cases[].handshake.clientFlight.clientCertificate': 'certificate-mutual: the client\'s Certificate message: 0b ‖ BE24(length) ‖ vec24(certificate_list), one entry, vec24(global.certificates.client.der).',
  'cases[].handshake.clientFlight.transcriptHashClientCertificate': 'certificate-mutual: SHA-384(CH … server Finished ‖ client Certificate), what the client\'s CertificateVerify signs.',
  'cases[].handshake.clientFlight.clientCertificateVerifySignedContent': 'certificate-mutual: the content the client signs: 0x20 × 64 ‖ "qtun2 client CertificateVerify" ‖ 00 ‖ transcriptHashClientCertificate.',
  'cases[].handshake.clientFlight.clientCertificateVerifySignature': 'certificate-mutual: ML-DSA-87.Sign(client key, signed content, ctx = empty), pure, deterministic (rnd = 0^32).',
  'cases[].handshake.clientFlight.clientCertificateVerify': 'certificate-mutual: the client\'s CertificateVerify message: 0f ‖ BE24(length) ‖ BE16(0x0906) ‖ vec16(signature).',
  'cases[].handshake.clientFlight.transcriptHashClientCertificateVerify': 'certificate-mutual: SHA-384(CH … server Finished ‖ client Certificate ‖ client CertificateVerify), what the client\'s Finished covers.',
  'cases[].handshake.clientFlight.clientFinishedKey': 'HKDF-Expand-Label(c_hs, "finished", "", 48).',
  'cases[].handshake.clientFlight.clientVerifyData': 'HMAC-SHA-384(clientFinishedKey, transcriptHashServerFinished); certificate-mutual: over transcriptHashClientCertificateVerify.',
  'cases[].handshake.clientFlight.clientFinished': 'Finished message: 14 ‖ BE24(48) ‖ verify_data.',
  'cases[].handshake.clientFlight.transcriptHashClientFinished': 'SHA-384(CH ‖ SH ‖ EE ‖ server Finished ‖ client Finished); in the certificate modes every handshake message in order, the certificate messages included.',
  'cases[].handshake.clientFlight.resumptionMasterSecret': 'Derive-Secret(master, "res master", CH … client Finished).',
  'cases[].handshake.clientFlight.sessionId': 'The first 16 bytes of transcriptHashClientFinished (info().sessionId; not on the wire).',
  'cases[].session.epoch2.clientTrafficSecret': 'Epoch 2 (first application keys): c_ap.',
  'cases[].session.epoch2.serverTrafficSecret': 'Epoch 2: s_ap.',
  'cases[].session.epoch2.clientKey': 'Epoch 2: client write key, HKDF-Expand-Label(c_ap, "key", "", 32).',
  'cases[].session.epoch2.clientIv': 'Epoch 2: client write IV, HKDF-Expand-Label(c_ap, "iv", "", 12).',
  'cases[].session.epoch2.serverKey': 'Epoch 2: server write key.',
  'cases[].session.epoch2.serverIv': 'Epoch 2: server write IV.',
  'cases[].session.ticket.lifetimeSeconds': 'NewSessionTicket lifetime.',
  'cases[].session.ticket.ageAdd': 'NewSessionTicket age_add (inputs.ticketAgeAdd as a number).',
  'cases[].session.ticket.nonce': 'NewSessionTicket nonce (inputs.ticketNonce).',
  'cases[].session.ticket.issuedAtMs': 'issuedAtMs inside the ticket.',
  'cases[].session.ticket.ticketId': 'Ticket ID inside the ticket (inputs.ticketId).',
  'cases[].session.ticket.peerIdentity': 'Peer identity inside the ticket: the PSK identity, or empty.',
  'cases[].session.ticket.psk': 'Ticket PSK = HKDF-Expand-Label(resumption master, "resumption", nonce, 48).',
  'cases[].session.ticket.keyId': 'Ticket key ID = HKDF-Expand-Label(ticket key, "ticket key id", "", 8) (one HMAC block; the 32-byte key is the PRK).',
  'cases[].session.ticket.associatedData': 'Ticket AD = "qtun2 ticket" ‖ keyId ‖ vec16(serverIdentity).',
  'cases[].session.ticket.plaintext': 'BE16(0x0200) ‖ BE16(suite) ‖ BE16(group) ‖ BE64(issuedAtMs) ‖ BE32(lifetime) ‖ BE32(ageAdd) ‖ ticketId ‖ vec8(peerIdentity) ‖ PSK.',
  'cases[].session.ticket.aeadNonce': 'AES-256-GCM nonce of the ticket (inputs.ticketAeadNonce).',
  'cases[].session.ticket.ticket': 'The opaque ticket: keyId ‖ aeadNonce ‖ AES-256-GCM(ticket key, aeadNonce, AD, plaintext) (ciphertext ‖ tag).',
  'cases[].session.ticket.newSessionTicket': 'NewSessionTicket: BE32(lifetime) ‖ BE32(age_add) ‖ vec8(nonce) ‖ vec16(ticket) ‖ vec16(extensions).',
  'cases[].session.epoch3.clientTrafficSecret': 'Epoch 3 (symmetric KeyUpdate): HKDF-Expand-Label(c_ap, "traffic upd", "", 48).',
  'cases[].session.epoch3.serverTrafficSecret': 'Epoch 3: HKDF-Expand-Label(s_ap, "traffic upd", "", 48).',
  'cases[].session.epoch3.clientKey': 'Epoch 3: client write key.',
  'cases[].session.epoch3.clientIv': 'Epoch 3: client write IV.',
  'cases[].session.epoch3.serverKey': 'Epoch 3: server write key.',
  'cases[].session.epoch3.serverIv': 'Epoch 3: server write IV.',
  'cases[].session.kemUpdate.initiatorClassicalPublicKey': 'KEM KeyUpdate (requested by the server, the combiner\'s initiator): its classical public key.',
  'cases[].session.kemUpdate.mlkemEncapsulationKey': 'KEM KeyUpdate: the requester\'s ML-KEM encapsulation key.',
  'cases[].session.kemUpdate.responderClassicalPublicKey': 'KEM KeyUpdate: the responder\'s (client\'s) classical public key.',
  'cases[].session.kemUpdate.mlkemCiphertext': 'KEM KeyUpdate: the ML-KEM ciphertext.',
  'cases[].session.kemUpdate.classicalSharedSecret': 'KEM KeyUpdate: Z_classical.',
  'cases[].session.kemUpdate.mlkemSharedSecret': 'KEM KeyUpdate: Z_mlkem.',
  'cases[].session.kemUpdate.fixedInfoHash': 'KEM KeyUpdate: SHA-384(FixedInfo), FixedInfo as in the handshake (same version and group) with the requester (server) as initiator: vec16(server classical pk) ‖ vec16(client classical pk) ‖ vec16(ek) ‖ vec16(ct).',
  'cases[].session.kemUpdate.combinerPrk': 'KEM KeyUpdate: HKDF-Extract("qtun v2 hybrid", Z_classical ‖ Z_mlkem).',
  'cases[].session.kemUpdate.secret': 'KEM KeyUpdate: K_new.',
  'cases[].session.epoch4.clientTrafficUpdate': 'Epoch 4 (KEM KeyUpdate): HKDF-Expand-Label(client epoch-3 secret, "traffic upd", "", 48).',
  'cases[].session.epoch4.serverTrafficUpdate': 'Epoch 4: HKDF-Expand-Label(server epoch-3 secret, "traffic upd", "", 48).',
  'cases[].session.epoch4.clientTrafficSecret': 'Epoch 4: HKDF-Extract(salt = clientTrafficUpdate, IKM = K_new).',
  'cases[].session.epoch4.serverTrafficSecret': 'Epoch 4: HKDF-Extract(salt = serverTrafficUpdate, IKM = K_new).',
  'cases[].session.epoch4.clientKey': 'Epoch 4: client write key.',
  'cases[].session.epoch4.clientIv': 'Epoch 4: client write IV.',
  'cases[].session.epoch4.serverKey': 'Epoch 4: server write key.',
  'cases[].session.epoch4.serverIv': 'Epoch 4: server write IV.',
  'cases[].session.records[].what': 'What the record carries; records are listed in the order they are sent, each delivered before the next is made.',
  'cases[].session.records[].from': 'The sender.',
  'cases[].session.records[].text': 'Data records: the content as ASCII.',
  'cases[].session.exporter[].label': 'Exporter label (prefixed "qtun2 " inside HKDF-Expand-Label).',
  'cases[].session.exporter[].context': 'Exporter context; null = no context (the same output as an empty one).',
  'cases[].session.exporter[].length': 'Exporter output length.',
  'cases[].session.exporter[].output': 'HKDF-Expand-Label(Derive-Secret(exporter master, label, ""), "exporter", SHA-384(context), length).',
  // Record objects (the handshake's and the session's).
  '*.epoch': 'Record: the epoch in its header (1 handshake keys, 2 first application keys, +1 a KeyUpdate).',
  '*.seq': 'Record: its sequence number in its epoch and direction (not on the wire).',
  '*.innerType': 'Record: the inner content type, by its name in docs/PROTOCOL.md §5 (handshake 01, data 02, ping 03, pong 04, close_notify 05, key_update 07, key_update_ack 08, new_session_ticket 09).',
  '*.content': 'Record: its content (a handshake message; data; a key_update or key_update_ack body, mode ‖ BE16(new epoch) ‖ [vec16(share)]; a NewSessionTicket; empty for ping, pong, close_notify).',
  '*.nonce': 'Record: the AEAD nonce, iv XOR (0^4 ‖ BE64(seq)).',
  '*.record': 'Record on the wire: 30 ‖ BE32(2 + sealed length) ‖ BE16(epoch) ‖ sealed, sealed = AEAD(key, nonce, AD = those 7 header bytes, content ‖ inner type byte), no padding; ciphertext ‖ 16-byte tag.',
};

/** The description of a leaf path ("cases[].handshake..."), or undefined. */
export function describe(path: string): string | undefined {
  const p = path.replace(/\[\d+\]/g, '[]').replace(/\.(shake|hex)$/, '');
  if (FIELD_DESCRIPTIONS[p] !== undefined) return FIELD_DESCRIPTIONS[p];
  const last = p.slice(p.lastIndexOf('.'));
  return FIELD_DESCRIPTIONS[`*${last}`];
}

/**
 * (b) The whole document, from the specification over `P`. `chacha: false` leaves out the
 * ChaCha20-Poly1305 case, `group` the cases of the groups it refuses (a build or mode without them).
 */
export function deriveDocument(P: Primitives, options: { chacha?: boolean; group?: (id: number) => boolean } = {}): Record<string, unknown> {
  const global = globalInputs(P);
  const certificates = deriveCertificates(P);
  const issued = new Map<string, IssuedTicketState>();
  const cases: unknown[] = [];
  for (const spec of caseSpecs()) {
    if (spec.suite === CipherSuite.CHACHA20_POLY1305 && options.chacha === false) continue;
    if (options.group && !options.group(spec.group.id)) continue;
    const resumed = spec.resumes === undefined ? undefined : issued.get(spec.resumes);
    if (spec.resumes !== undefined && resumed === undefined) throw new Error(`${spec.name}: ${spec.resumes} comes first`);
    const { doc, issued: ticket } = deriveCase(P, spec, global, resumed, certificates);
    if (ticket) issued.set(spec.name, ticket);
    cases.push(doc);
  }
  const body = {
    title: VECTORS_TITLE,
    generator: 'scripts/v2-vectors.ts (test/helpers/v2Vectors.ts); reproduced by test/protocol/v2-vectors.test.ts',
    inputDerivation: INPUT_DERIVATION,
    global: {
      protocolVersion: u16(VERSION),
      labelPrefix: LABEL_PREFIX,
      pskIdentity: ascii(PSK_IDENTITY),
      pskKey: global.pskKey,
      ticketKey: global.ticketKey,
      serverIdentity: ascii(SERVER_IDENTITY),
      ticketLifetimeSeconds: TICKET_LIFETIME_SECONDS,
      ticketIssuedAtMs: TICKET_ISSUED_AT_MS,
      resumptionTicketAgeMs: RESUMPTION_TICKET_AGE_MS,
      certificates: certificates.doc,
    },
    cases,
  };
  return {
    $comment: {
      about:
        'Protocol v2 known-answer vectors. Byte strings are lowercase hex; numbers are JSON numbers; an input derived by SHAKE-256 is { shake: the ASCII string hashed, hex: the value }. ' +
        'vec8/vec16/vec24 are 1/2/3-byte big-endian length prefixes. "fields" describes every field ([] = any array index; *.x = the field x of any record object).',
      fields: FIELD_DESCRIPTIONS,
    },
    ...(toJson(body) as Record<string, unknown>),
  };
}

// ---------------------------------------------------------------------------------------------
// (a) The state machines

function frames(bytes: Buffer): Frame[] {
  const r = new FrameReader();
  // A copy: the receiver decrypts records in place, and the wire bytes are compared afterwards.
  r.push(Buffer.from(bytes));
  const out: Frame[] = [];
  for (let f = r.nextFrame(); f !== null; f = r.nextFrame()) out.push(f);
  if (r.buffered !== 0) throw new Error('trailing bytes after the frames');
  return out;
}

function oneFrame(bytes: Buffer): Frame {
  const all = frames(bytes);
  if (all.length !== 1) throw new Error(`expected one frame, got ${all.length}`);
  return all[0]!;
}

const inputOf = (inputs: Record<string, unknown>, name: string): Buffer => fromHex((inputs[name] as { hex: string }).hex);

/**
 * (a) Runs the real handshake and session of every case with the fixed inputs of `doc` (a
 * document from {@link deriveDocument}, or the fixture), and returns what they produce, in the
 * document's shape: every wire byte, the secrets a handshake result carries, the ticket, the
 * exporter. Throws when the machines do not accept each other's messages as expected.
 */
export async function runStateMachines(doc: Record<string, unknown>): Promise<Record<string, unknown>> {
  const global = doc.global as Record<string, unknown>;
  const ticketKey = testing.secretFromBytes(fromHex((global.ticketKey as { hex: string }).hex));
  const pskKey = testing.secretFromBytes(fromHex((global.pskKey as { hex: string }).hex));
  const resumeAt = TICKET_ISSUED_AT_MS + RESUMPTION_TICKET_AGE_MS;
  const issuer = new TicketIssuer({ key: ticketKey, serverIdentity: ascii(SERVER_IDENTITY), lifetimeSeconds: TICKET_LIFETIME_SECONDS, now: () => resumeAt });
  const store = new ClientTicketStore({ now: () => resumeAt });
  const certificates = global.certificates as Record<CertificateRole, { mldsaSeed: { hex: string }; der: string; fingerprint: string }>;
  const out: unknown[] = [];
  const peerFingerprints: Partial<Record<'server' | 'client', string>> = {};
  try {
    for (const c of doc.cases as Array<Record<string, unknown>>) out.push(await runCase(c, { issuer, store, pskKey, certificates, peerFingerprints }));
  } finally {
    issuer.destroy();
    store.destroy();
    pskKey.destroy();
  }
  // The fingerprints the certificate cases' ends reported for their peers' certificates.
  const fingerprints = Object.entries(peerFingerprints).map(([role, fingerprint]) => [role, { fingerprint }]);
  return { ...(fingerprints.length > 0 ? { global: { certificates: Object.fromEntries(fingerprints) } } : {}), cases: out };
}

interface MachineContext {
  issuer: TicketIssuer;
  store: ClientTicketStore;
  pskKey: Secret;
  /** The certificates and their seeds, from the document's global.certificates. */
  certificates: Record<CertificateRole, { mldsaSeed: { hex: string }; der: string; fingerprint: string }>;
  /** Filled by the certificate cases: the fingerprint each end reported for its peer's certificate. */
  peerFingerprints: Partial<Record<'server' | 'client', string>>;
}

/** A certificate identity (§14) from the document: the leaf and the key pair of its seed. */
function certificateIdentityOf(certificates: MachineContext['certificates'], role: 'server' | 'client'): CertificateIdentity {
  const key = mldsa.generateKeyPair(fromHex(certificates[role].mldsaSeed.hex)).privateKey;
  try {
    return new CertificateIdentity([parseCertificate(fromHex(certificates[role].der))], key);
  } catch (err) {
    key.destroy();
    throw err;
  }
}

async function runCase(doc: Record<string, unknown>, ctx: MachineContext): Promise<Record<string, unknown>> {
  const name = doc.name as string;
  const spec = caseSpecs().find((s) => s.name === name);
  if (spec === undefined) throw new Error(`unknown case ${name}`);
  const I = doc.inputs as Record<string, unknown>;
  const group = kemGroupById(spec.group.id)!;
  const importClassical = (b: Buffer): PrivateKey => (spec.group.classical === 'x25519' ? testing.x25519PrivateKeyFromBytes(b) : testing.p384PrivateKeyFromBytes(b));
  const fail = (what: string): never => {
    throw new Error(`${name}: ${what}`);
  };

  // Pinned keys (§13): both long-term key pairs from their seeds; the client pins the server's key
  // by its text form in the vectors, the server admits the client's by its fingerprint there.
  const keyMode = isKeyMode(spec.auth);
  const mutual = spec.auth === 'key-mutual';
  const H = doc.handshake as Record<string, Record<string, Record<string, unknown>>>;
  const identityKeyFrom = (who: 'server' | 'client') =>
    IdentityKey.fromPrivateKeys(group, importClassical(inputOf(I, `${who}IdentityKeyClassicalPrivateKey`)), libKem(spec.group.kem).generateKeyPair(inputOf(I, `${who}IdentityKeyMlkemSeed`)).privateKey);
  const keyShareOf = (which: 'server' | 'client') => ({ classical: importClassical(inputOf(I, `${which}KeyEncapsulationClassicalPrivateKey`)), coins: inputOf(I, `${which}KeyEncapsulationMlkemCoins`) });
  let serverIdentity: IdentityKey | undefined;
  let clientIdentity: IdentityKey | undefined;
  // Certificates (§14): the identities from the seeds and certificates of the document.
  let serverCertificate: CertificateIdentity | undefined;
  let clientCertificate: CertificateIdentity | undefined;
  try {
    serverIdentity = keyMode ? identityKeyFrom('server') : undefined;
    clientIdentity = mutual ? identityKeyFrom('client') : undefined;
    const pinned = keyMode ? PublicIdentityKey.parse(H.identityKeys!.server!.publicKeyText as string) : undefined;
    serverCertificate = isCertificateMode(spec.auth) ? certificateIdentityOf(ctx.certificates, 'server') : undefined;
    clientCertificate = spec.auth === 'certificate-mutual' ? certificateIdentityOf(ctx.certificates, 'client') : undefined;
    return await runHandshakeAndSession({
      doc,
      ctx,
      spec,
      I,
      importClassical,
      fail,
      keys: { serverIdentity, clientIdentity, pinned, keyShareOf },
      certificates: { server: serverCertificate, client: clientCertificate },
    });
  } finally {
    serverIdentity?.destroy();
    clientIdentity?.destroy();
    serverCertificate?.destroy();
    clientCertificate?.destroy();
  }
}

/** The pinned-key material of a case (§13), undefined where its mode has none. */
interface CaseKeys {
  serverIdentity: IdentityKey | undefined;
  clientIdentity: IdentityKey | undefined;
  /** The server's key as the client pins it. */
  pinned: PublicIdentityKey | undefined;
  /** The fixed inputs of the encapsulation to the server's or the client's key. */
  keyShareOf(which: 'server' | 'client'): FixedServerShare;
}

async function runHandshakeAndSession(args: {
  doc: Record<string, unknown>;
  ctx: MachineContext;
  spec: CaseSpec;
  I: Record<string, unknown>;
  importClassical: (b: Buffer) => PrivateKey;
  fail: (what: string) => never;
  keys: CaseKeys;
  certificates: { server: CertificateIdentity | undefined; client: CertificateIdentity | undefined };
}): Promise<Record<string, unknown>> {
  const { ctx, spec, I, importClassical, fail } = args;
  const { serverIdentity, clientIdentity, pinned, keyShareOf } = args.keys;
  const name = spec.name;
  const keyMode = isKeyMode(spec.auth);
  const mutual = spec.auth === 'key-mutual';
  const certificateMode = isCertificateMode(spec.auth);
  const certificateMutual = spec.auth === 'certificate-mutual';
  // The client trusts the CA and expects the server's name; in certificate-mutual the server
  // trusts the same CA for clients and requires a certificate.
  const anchor = certificateMode ? [parseCertificate(fromHex(ctx.certificates.ca.der))] : [];
  const H = args.doc.handshake as Record<string, Record<string, Record<string, unknown>>>;
  let resumption: ResumptionOffer | undefined;
  let ticketPskHandle: Secret | undefined;
  if (spec.auth === 'resumption') {
    const t = ctx.store.take(spec.resumes!) ?? fail('no ticket from the issuing case');
    ticketPskHandle = t.psk;
    resumption = { ticket: t.ticket, psk: t.psk, obfuscatedAge: ctx.store.obfuscatedAge(t) };
  }
  const client = new ClientHandshakeV2({
    cipherSuites: offeredSuites(spec),
    groups: offeredGroups(spec).map((id) => kemGroupById(id)!),
    ...(spec.auth === 'psk' ? { psk: { identity: ascii(PSK_IDENTITY), secret: ctx.pskKey } } : {}),
    ...(resumption ? { resumption } : {}),
    ...(pinned ? { serverKey: pinned } : {}),
    ...(clientIdentity ? { identity: clientIdentity } : {}),
    ...(certificateMode ? { serverCertificate: { trusted: anchor, dnsName: SERVER_DNS_NAME } } : {}),
    ...(args.certificates.client ? { certificate: args.certificates.client } : {}),
    fixed: {
      random: inputOf(I, 'clientRandom'),
      clientShare: { classical: importClassical(inputOf(I, 'clientClassicalPrivateKey')), mlkemSeed: inputOf(I, 'clientMlkemSeed') },
      ...(keyMode ? { serverKeyShare: keyShareOf('server') } : {}),
      ...(certificateMode ? { deterministicSignatures: true } : {}),
    },
  });
  const server = new ServerHandshakeV2({
    cipherSuites: [CipherSuite.AES_256_GCM, CipherSuite.CHACHA20_POLY1305],
    groups: KEM_GROUPS,
    ...(spec.auth === 'psk' ? { psk: (id: Buffer) => (id.equals(ascii(PSK_IDENTITY)) ? ctx.pskKey : undefined) } : {}),
    ...(spec.auth === 'resumption' ? { tickets: ctx.issuer } : {}),
    ...(serverIdentity ? { identities: [serverIdentity] } : {}),
    ...(mutual ? { authorizedPeers: new AuthorizedPeers([H.identityKeys!.client!.fingerprint as string]), requirePeerIdentity: true } : {}),
    ...(args.certificates.server ? { certificate: args.certificates.server } : {}),
    ...(certificateMutual ? { clientCertificates: { trusted: anchor }, requirePeerIdentity: true } : {}),
    fixed: {
      random: inputOf(I, 'serverRandom'),
      serverShare: { classical: importClassical(inputOf(I, 'serverClassicalPrivateKey')), coins: inputOf(I, 'serverMlkemCoins') },
      ...(mutual ? { clientKeyShare: keyShareOf('client') } : {}),
      ...(certificateMode ? { deterministicSignatures: true } : {}),
    },
  });

  // ---- The handshake, message by message.
  const c1 = await client.start();
  await server.start();
  if (c1.send.length !== 1) fail('the client sent more than a ClientHello');
  const clientHello = c1.send[0]!;
  const s1 = await server.receive(oneFrame(clientHello));
  // ServerHello, EncryptedExtensions, [CertificateRequest, ] [Certificate, CertificateVerify, ] Finished.
  const serverRecordNames = [
    'encryptedExtensionsRecord',
    ...(certificateMutual ? ['certificateRequestRecord'] : []),
    ...(certificateMode ? ['serverCertificateRecord', 'serverCertificateVerifyRecord'] : []),
    'serverFinishedRecord',
  ];
  if (s1.send.length !== 1 + serverRecordNames.length) fail(`the server flight is not ServerHello and ${serverRecordNames.join(', ')}`);
  const [serverHello, ...serverRecords] = s1.send as [Buffer, ...Buffer[]];
  let c: HandshakeStep = c1;
  for (const b of s1.send) {
    if (c.next === 'done') fail('the client finished before the end of the server flight');
    c = await client.receive(oneFrame(b));
  }
  // [Certificate, CertificateVerify, ] Finished.
  const clientRecordNames = [...(certificateMutual ? ['clientCertificateRecord', 'clientCertificateVerifyRecord'] : []), 'clientFinishedRecord'];
  if (c.next !== 'done' || c.send.length !== clientRecordNames.length || c.result === undefined) fail(`the client did not finish with ${clientRecordNames.join(', ')}`);
  let s2: HandshakeStep = s1;
  for (const b of c.send) {
    if (s2.next === 'done') fail('the server finished before the end of the client flight');
    s2 = await server.receive(oneFrame(b));
  }
  if (s2.next !== 'done' || s2.result === undefined) fail('the server did not finish');
  const recordsOf = (names: string[], records: Buffer[]) => Object.fromEntries(names.map((n, i) => [n, { record: records[i]! }]));
  ticketPskHandle?.destroy();
  const cr = c.result as V2HandshakeResult;
  const sr = s2.result as V2HandshakeResult;
  const secretsOf = (r: V2HandshakeResult) => ({
    clientApplicationTrafficSecret: testing.exportSecret(r.clientTrafficSecret),
    serverApplicationTrafficSecret: testing.exportSecret(r.serverTrafficSecret),
    exporterMasterSecret: testing.exportSecret(r.exporterSecret),
    resumptionMasterSecret: testing.exportSecret(r.resumptionSecret),
  });
  const clientSecrets = secretsOf(cr);
  const serverSecrets = secretsOf(sr);
  for (const k of Object.keys(clientSecrets) as Array<keyof typeof clientSecrets>) if (!clientSecrets[k].equals(serverSecrets[k])) fail(`${k} differs between the ends`);
  if (!cr.sessionId.equals(sr.sessionId)) fail('the session IDs differ');
  const resumed = spec.auth === 'resumption';
  if (cr.resumed !== resumed || sr.resumed !== resumed) fail(`resumed should be ${resumed}`);
  const expectIdentity = spec.auth === 'psk' ? PSK_IDENTITY : undefined;
  const pskIdentity = (p: V2HandshakeResult['peerIdentity']) => (p?.type === 'psk' ? p.identity : undefined);
  if (pskIdentity(cr.peerIdentity) !== expectIdentity || pskIdentity(sr.peerIdentity) !== expectIdentity) fail('peerIdentity');
  // Pinned keys: the client proved nothing but reached the holder of the pinned key; the server
  // knows the client's key in key-mutual only.
  const keyFingerprint = (p: V2HandshakeResult['peerIdentity']) => (p?.type === 'key' ? p.fingerprint : undefined);
  if (keyFingerprint(cr.peerIdentity) !== serverIdentity?.fingerprint) fail("the client's peerIdentity is not the server's key");
  if (keyFingerprint(sr.peerIdentity) !== clientIdentity?.fingerprint) fail("the server's peerIdentity is not the client's key");
  // Certificates: the client proved nothing; the server's certificate, and in certificate-mutual the client's.
  const certificateOf = (p: V2HandshakeResult['peerIdentity']) => (p?.type === 'certificate' ? p : undefined);
  const serverLeaf = certificateOf(cr.peerIdentity);
  const clientLeaf = certificateOf(sr.peerIdentity);
  if ((serverLeaf !== undefined) !== certificateMode || (clientLeaf !== undefined) !== certificateMutual) fail('peerIdentity (certificates)');
  if (serverLeaf) {
    if (serverLeaf.dnsNames.join() !== SERVER_DNS_NAME) fail("the client's peerIdentity is not the server's certificate");
    ctx.peerFingerprints.server = serverLeaf.fingerprint;
  }
  if (clientLeaf) ctx.peerFingerprints.client = clientLeaf.fingerprint;
  if (cr.resumable !== issuesTickets(spec.auth) || sr.resumable !== issuesTickets(spec.auth)) fail('resumable');
  if (cr.suite !== spec.suite || sr.group.id !== spec.group.id) fail('suite or group');

  // ---- The session script.
  const kemUpdateClassical = (which: 'Initiator' | 'Responder') => importClassical(inputOf(I, `kemUpdate${which}ClassicalPrivateKey`));
  const cs = new SessionV2(cr, {
    fixedKemUpdate: () => ({ serverShare: { classical: kemUpdateClassical('Responder'), coins: inputOf(I, 'kemUpdateResponderMlkemCoins') } }),
  });
  const ss = new SessionV2(sr, {
    fixedKemUpdate: () => ({ clientShare: { classical: kemUpdateClassical('Initiator'), mlkemSeed: inputOf(I, 'kemUpdateInitiatorMlkemSeed') } }),
  });
  const records: Array<Record<string, unknown>> = [];
  const deliver = (bytes: Buffer, to: SessionV2, expect: SessionEvent['kind'], content?: Buffer): SessionEvent => {
    const event = to.receive(oneFrame(bytes));
    if (event.kind !== expect) fail(`record ${records.length + 1}: the peer saw ${event.kind}, expected ${expect}`);
    const r: Record<string, unknown> = { record: bytes };
    if (content !== undefined) r.content = content;
    records.push(r);
    return event;
  };
  const data = (from: SessionV2, to: SessionV2, text: string) => {
    const event = deliver(from.sealData([ascii(text)]), to, 'data');
    const got = (event as { data: Buffer }).data;
    if (got.toString('ascii') !== text) fail(`data ${JSON.stringify(text)} arrived as ${JSON.stringify(got.toString())}`);
    records[records.length - 1]!.content = Buffer.from(got);
  };

  try {
    // Sessions authenticated by keys or certificates get no tickets (§13.5, §14.4).
    const ticket = issuesTickets(spec.auth) ? issueTicket(ctx, name, I, ss, cs, deliver, records) : undefined;

    data(cs, ss, TEXTS.clientEpoch2);
    data(ss, cs, TEXTS.serverEpoch2);
    deliver(cs.pingFrame(), ss, 'ping', EMPTY);
    deliver(ss.pongFrame(), cs, 'pong', EMPTY);
    const ack3 = (deliver(cs.startRekey('symmetric'), ss, 'rekey-response-sent') as { frame: Buffer }).frame;
    deliver(ack3, cs, 'rekey-complete');
    data(cs, ss, TEXTS.clientEpoch3);
    data(ss, cs, TEXTS.serverEpoch3);
    const ack4 = (deliver(ss.startRekey('kem'), cs, 'rekey-response-sent') as { frame: Buffer }).frame;
    deliver(ack4, ss, 'rekey-complete');
    data(cs, ss, TEXTS.clientEpoch4);
    data(ss, cs, TEXTS.serverEpoch4);
    deliver(cs.closeNotifyFrame(), ss, 'peer-close', EMPTY);
    if (cs.stats.rekeys !== 2 || ss.stats.rekeys !== 2) fail('two key updates on each side');

    const exporter: Array<Record<string, unknown>> = [];
    for (const context of [ascii(EXPORTER_CONTEXT), EMPTY, undefined]) {
      for (const length of EXPORTER_LENGTHS) {
        const a = cs.exportKeyingMaterial(EXPORTER_LABEL, context, length);
        if (!a.equals(ss.exportKeyingMaterial(EXPORTER_LABEL, context, length))) fail('the exporters differ between the ends');
        exporter.push({ label: EXPORTER_LABEL, context: context ?? null, length, output: a });
      }
    }

    const keyDoc = (k: IdentityKey) => ({ fingerprint: k.fingerprint, publicKeyText: k.publicKey.toString() });
    return toJson({
      name,
      handshake: {
        ...(serverIdentity ? { identityKeys: { server: keyDoc(serverIdentity), ...(clientIdentity ? { client: keyDoc(clientIdentity) } : {}) } } : {}),
        clientHello: { frame: clientHello },
        serverHello: { frame: serverHello },
        serverFlight: recordsOf(serverRecordNames, serverRecords),
        application: {
          clientApplicationTrafficSecret: clientSecrets.clientApplicationTrafficSecret,
          serverApplicationTrafficSecret: clientSecrets.serverApplicationTrafficSecret,
          exporterMasterSecret: clientSecrets.exporterMasterSecret,
        },
        clientFlight: { ...recordsOf(clientRecordNames, c.send), resumptionMasterSecret: clientSecrets.resumptionMasterSecret, sessionId: cr.sessionId },
      },
      session: {
        ...(ticket ? { ticket } : {}),
        records,
        exporter,
      },
    }) as Record<string, unknown>;
  } finally {
    cs.destroy();
    ss.destroy();
  }
}

/** The server issues the session's ticket (fixed inputs) and the client receives and keeps it. */
function issueTicket(
  ctx: { issuer: TicketIssuer; store: ClientTicketStore },
  name: string,
  I: Record<string, unknown>,
  ss: SessionV2,
  cs: SessionV2,
  deliver: (bytes: Buffer, to: SessionV2, expect: SessionEvent['kind']) => SessionEvent,
  records: Array<Record<string, unknown>>,
) {
  const fields = { suite: ss.suite, group: ss.group.id, ...(ss.peerIdentity?.type === 'psk' ? { peerIdentity: Buffer.from(ss.peerIdentity.identity, 'utf8') } : {}) };
  const issued = ss.withResumptionSecret((r) =>
    ctx.issuer.issue(r, fields, {
      nonce: inputOf(I, 'ticketNonce'),
      ageAdd: inputOf(I, 'ticketAgeAdd').readUInt32BE(0),
      aeadNonce: inputOf(I, 'ticketAeadNonce'),
      ticketId: inputOf(I, 'ticketId'),
      issuedAtMs: TICKET_ISSUED_AT_MS,
    }),
  );
  const ticketEvent = deliver(ss.ticketFrame(issued.message), cs, 'ticket');
  const message = (ticketEvent as { message: Buffer }).message;
  records[0]!.content = Buffer.from(message);
  const nst = decodeNewSessionTicket(message);
  const clientTicket = cs.withResumptionSecret((r) => clientTicketFromMessage(nst, r, { suite: cs.suite, group: cs.group.id }, TICKET_ISSUED_AT_MS));
  const ticketPsk = testing.exportSecret(clientTicket.psk);
  ctx.store.add(name, clientTicket); // the store owns the PSK now
  return {
    lifetimeSeconds: nst.lifetimeSeconds,
    ageAdd: nst.ageAdd,
    nonce: nst.nonce,
    ticket: nst.ticket,
    keyId: ctx.issuer.keyId,
    psk: ticketPsk,
    newSessionTicket: issued.message,
  };
}

// ---------------------------------------------------------------------------------------------
// Comparison

/** Leaf paths and values of a JSON value. */
export function leaves(value: unknown, path = ''): Array<[string, unknown]> {
  if (Array.isArray(value)) return value.flatMap((v, i) => leaves(v, `${path}[${i}]`));
  if (value !== null && typeof value === 'object') {
    return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) => leaves(v, path === '' ? k : `${path}.${k}`));
  }
  return [[path, value]];
}

/** A short account of two different values: long strings from their first differing character. */
function mismatch(want: unknown, got: unknown): string {
  if (typeof want !== 'string' || typeof got !== 'string' || (want.length <= 64 && got.length <= 64)) {
    return `${JSON.stringify(want)} in the vectors, ${JSON.stringify(got)} computed`;
  }
  let i = 0;
  while (i < want.length && want[i] === got[i]) i++;
  const at = Math.max(0, i - 8);
  return `lengths ${want.length}/${got.length}, first difference at character ${i}: …${want.slice(at, i + 24)}… in the vectors, …${got.slice(at, i + 24)}… computed`;
}

/**
 * Differences between `expected` and `actual`: every leaf of `actual` must be in `expected` with the
 * same value; with `complete`, every leaf of `expected` must also be in `actual`.
 */
export function differences(expected: unknown, actual: unknown, complete: boolean): string[] {
  const want = new Map(leaves(expected));
  const got = leaves(actual);
  const out: string[] = [];
  for (const [path, value] of got) {
    if (!want.has(path)) out.push(`${path}: not in the vectors`);
    else if (want.get(path) !== value) out.push(`${path}: ${mismatch(want.get(path), value)}`);
  }
  if (complete) {
    const seen = new Set(got.map(([p]) => p));
    for (const path of want.keys()) if (!seen.has(path)) out.push(`${path}: missing from the computation`);
  }
  return out;
}

/** Whether this mode permits a group (strict FIPS mode: p384-mlkem1024 only). */
export function groupPermitted(id: number): boolean {
  return kemGroupById(id)?.permitted() === true;
}

/** Whether this build can run the ChaCha20-Poly1305 case. */
export function chachaAvailable(): boolean {
  return cryptoInfo().chacha20.available;
}

/**
 * Generates the document: (b) over both backends, which must agree on every value, and (a), whose
 * every value must be in it. Throws on any difference.
 */
export async function generateDocument(): Promise<{ doc: Record<string, unknown>; checked: Record<string, number> }> {
  if (!chachaAvailable()) throw new Error('the vectors need a build with ChaCha20-Poly1305');
  const doc = deriveDocument(libraryPrimitives());
  const reference = deriveDocument(referencePrimitives());
  const refDiff = differences(doc, reference, true);
  if (refDiff.length > 0) throw new Error(`library and reference derivations differ:\n${refDiff.slice(0, 20).join('\n')}`);
  const machines = await runStateMachines(doc);
  const smDiff = differences(doc, machines, false);
  if (smDiff.length > 0) throw new Error(`the state machines differ from the derivation:\n${smDiff.slice(0, 20).join('\n')}`);
  return { doc, checked: { derivation: leaves(doc).length, reference: leaves(reference).length, stateMachines: leaves(machines).length } };
}
