/**
 * An independent implementation of quantum-tunnel protocol v2, written from docs/PROTOCOL.md
 * Part I alone, without reading lib/protocol/ or lib/tunnel/: its purpose is to show that the
 * specification is exact enough to interoperate with our library (v2-independent.test.ts).
 *
 * Primitives: node:crypto (SHA-384, HMAC, HKDF built from HMAC, AES-256-GCM, ChaCha20-Poly1305,
 * X25519, ECDH P-384), which is an implementation independent of our addon; ML-KEM from our
 * addon (Node 20 has none), its shared secret read as bytes through the test-only export hook.
 * Everything is kept as plain bytes: this is test code that must see every key and IV.
 *
 * Section numbers (§) refer to docs/PROTOCOL.md Part I.
 */
import {
  createCipheriv,
  createDecipheriv,
  createECDH,
  createHash,
  createHmac,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  randomBytes,
  timingSafeEqual,
  type KeyObject,
} from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { mlkem1024, mlkem768, type MlKem, type MlKemKeyPair } from '../../lib/crypto/mlkem.js';
import { exportSecret } from '../../lib/testing.js';

// ---- constants (§2, §3, §4, §5, §9) ------------------------------------------------------------

export const VERSION = 0x0200;
export const Suite = { AES_256_GCM: 0x0001, CHACHA20_POLY1305: 0x0002 } as const;
export const Group = { X25519_MLKEM1024: 0x0101, P384_MLKEM1024: 0x0102, X25519_MLKEM768: 0x0103 } as const;
export const FrameType = { CLIENT_HELLO: 0x01, SERVER_HELLO: 0x02, RECORD: 0x30, ALERT: 0xf0 } as const;
export const Inner = {
  HANDSHAKE: 0x01,
  DATA: 0x02,
  PING: 0x03,
  PONG: 0x04,
  CLOSE_NOTIFY: 0x05,
  ALERT: 0x06,
  KEY_UPDATE: 0x07,
  KEY_UPDATE_ACK: 0x08,
  NEW_SESSION_TICKET: 0x09,
} as const;
const HandshakeType = { ENCRYPTED_EXTENSIONS: 0x08, FINISHED: 0x14 } as const;
export const AlertCode = {
  UNEXPECTED_MESSAGE: 0x01,
  BAD_RECORD: 0x02,
  HANDSHAKE_FAILURE: 0x03,
  UNSUPPORTED_VERSION: 0x04,
  UNSUPPORTED_CIPHER: 0x05,
  PSK_MISMATCH: 0x09,
  KEY_EXHAUSTED: 0x0a,
  RATE_LIMITED: 0x0b,
} as const;
export const KeyUpdateMode = { symmetric: 0x00, kem: 0x01 } as const;
export type KeyUpdateModeName = keyof typeof KeyUpdateMode;

const HASH_LEN = 48;
const MAX_FRAME_PAYLOAD = 65_536;
const MAX_INNER = 65_518;
/** What we put in one data record at most (§5 "Sizes"). */
export const MAX_DATA_PER_RECORD = 65_479;
const TAG_LEN = 16;
const ZERO48 = Buffer.alloc(HASH_LEN);
const EMPTY = Buffer.alloc(0);
const HYBRID_LABEL = Buffer.from('qtun v2 hybrid', 'ascii');

// ---- errors -------------------------------------------------------------------------------------

/** A failure this implementation detected; `alert` is the §9 code it sends for it. */
export class V2Error extends Error {
  constructor(
    readonly alert: number,
    message: string,
  ) {
    super(message);
    this.name = 'V2Error';
  }
}

/** The peer refused or ended the connection with an alert (plaintext frame or record). */
export class PeerAlertError extends Error {
  constructor(
    readonly level: number,
    readonly code: number,
    readonly description?: string,
  ) {
    super(`peer alert level ${level} code 0x${code.toString(16).padStart(2, '0')}${description ? ` (${description})` : ''}`);
    this.name = 'PeerAlertError';
  }
}

const malformed = (what: string): never => {
  throw new V2Error(AlertCode.UNEXPECTED_MESSAGE, `malformed: ${what}`); // §9: malformed → unexpected_message
};

// ---- bytes (§1) ---------------------------------------------------------------------------------

export const be8 = (n: number): Buffer => Buffer.from([n]);
export const be16 = (n: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
};
export const be24 = (n: number): Buffer => Buffer.from([(n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
export const be32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};
export const vec8 = (x: Uint8Array): Buffer => {
  if (x.length > 0xff) throw new RangeError('vec8 too long');
  return Buffer.concat([be8(x.length), x]);
};
export const vec16 = (x: Uint8Array): Buffer => {
  if (x.length > 0xffff) throw new RangeError('vec16 too long');
  return Buffer.concat([be16(x.length), x]);
};
const list16 = (values: readonly number[]): Buffer => Buffer.concat(values.map(be16));

/** A cursor over a message; every read past the end is a malformed message. */
export class Reader {
  private off = 0;
  constructor(private readonly buf: Buffer) {}
  get offset(): number {
    return this.off;
  }
  get left(): number {
    return this.buf.length - this.off;
  }
  bytes(n: number, what = 'field'): Buffer {
    if (this.left < n) malformed(`${what} runs past its container`);
    const out = this.buf.subarray(this.off, this.off + n);
    this.off += n;
    return out;
  }
  u8(what?: string): number {
    return this.bytes(1, what).readUInt8(0);
  }
  u16(what?: string): number {
    return this.bytes(2, what).readUInt16BE(0);
  }
  u24(what?: string): number {
    const b = this.bytes(3, what);
    return b.readUIntBE(0, 3);
  }
  u32(what?: string): number {
    return this.bytes(4, what).readUInt32BE(0);
  }
  vec8(what?: string): Buffer {
    return this.bytes(this.u8(what), what);
  }
  vec16(what?: string): Buffer {
    return this.bytes(this.u16(what), what);
  }
  end(what: string): void {
    if (this.left !== 0) malformed(`trailing bytes after ${what}`);
  }
}

function readList16(bytes: Buffer, what: string): number[] {
  if (bytes.length % 2 !== 0) malformed(`${what}: odd byte count`);
  const out: number[] = [];
  for (let i = 0; i < bytes.length; i += 2) out.push(bytes.readUInt16BE(i));
  return out;
}

// ---- hash, HMAC, HKDF (§1, §6) -------------------------------------------------------------------

export function sha384(...parts: Uint8Array[]): Buffer {
  const h = createHash('sha384');
  for (const p of parts) h.update(p);
  return h.digest();
}

export function hmac(key: Uint8Array, ...parts: Uint8Array[]): Buffer {
  const h = createHmac('sha384', key);
  for (const p of parts) h.update(p);
  return h.digest();
}

/** RFC 5869 HKDF-Extract with SHA-384; null salt = 0^48. */
export function hkdfExtract(salt: Uint8Array | null, ikm: Uint8Array): Buffer {
  return hmac(salt ?? ZERO48, ikm);
}

/** RFC 5869 HKDF-Expand with SHA-384. */
export function hkdfExpand(prk: Uint8Array, info: Uint8Array, length: number): Buffer {
  const blocks: Buffer[] = [];
  let prev: Buffer = EMPTY;
  for (let i = 1; blocks.length * HASH_LEN < length; i++) {
    prev = hmac(prk, prev, info, be8(i));
    blocks.push(prev);
  }
  return Buffer.concat(blocks).subarray(0, length);
}

/** §6 HKDF-Expand-Label with the "qtun2 " prefix. */
export function expandLabel(secret: Uint8Array, label: string, context: Uint8Array, length: number): Buffer {
  const info = Buffer.concat([be16(length), vec8(Buffer.from(`qtun2 ${label}`, 'ascii')), vec8(context)]);
  return hkdfExpand(secret, info, length);
}

/** §6 Derive-Secret(Secret, Label, Messages). */
export function deriveSecret(secret: Uint8Array, label: string, messages: Uint8Array): Buffer {
  return expandLabel(secret, label, sha384(messages), HASH_LEN);
}

// ---- key schedule (§6, §7, §8.1) ----------------------------------------------------------------

export const earlySecret = (psk?: Uint8Array): Buffer => hkdfExtract(ZERO48, psk ?? ZERO48);
export const binderKey = (early: Buffer, kind: 'ext' | 'res'): Buffer => deriveSecret(early, `${kind} binder`, EMPTY);
export const handshakeSecret = (early: Buffer, k: Buffer): Buffer => hkdfExtract(deriveSecret(early, 'derived', EMPTY), k);
export const masterSecret = (hs: Buffer): Buffer => hkdfExtract(deriveSecret(hs, 'derived', EMPTY), ZERO48);
export const finishedKey = (base: Buffer): Buffer => expandLabel(base, 'finished', EMPTY, HASH_LEN);
/** HMAC(finished_key(base), Hash(transcript)): a Finished verify_data or a binder. */
export const verifyData = (base: Buffer, transcript: Uint8Array): Buffer => hmac(finishedKey(base), sha384(transcript));
/** §8.1: the next generation of one traffic secret; with `kUpdate`, the kem tier. */
export function nextTrafficSecret(secret: Buffer, kUpdate?: Buffer): Buffer {
  const next = expandLabel(secret, 'traffic upd', EMPTY, HASH_LEN);
  return kUpdate ? hkdfExtract(next, kUpdate) : next;
}
/** §6 Exporter. An absent context is the empty string. */
export function exportKeyingMaterial(exporter: Buffer, label: string, context: Uint8Array | undefined, length: number): Buffer {
  return expandLabel(deriveSecret(exporter, label, EMPTY), 'exporter', sha384(context ?? EMPTY), length);
}

// ---- hybrid groups and combiner (§4) --------------------------------------------------------------

interface GroupSpec {
  id: number;
  name: 'x25519-mlkem1024' | 'p384-mlkem1024' | 'x25519-mlkem768';
  classical: 'x25519' | 'p384';
  classicalLength: number;
  kem: MlKem;
}

export const GROUPS: Readonly<Record<number, GroupSpec>> = {
  [Group.X25519_MLKEM1024]: { id: Group.X25519_MLKEM1024, name: 'x25519-mlkem1024', classical: 'x25519', classicalLength: 32, kem: mlkem1024 },
  [Group.P384_MLKEM1024]: { id: Group.P384_MLKEM1024, name: 'p384-mlkem1024', classical: 'p384', classicalLength: 97, kem: mlkem1024 },
  [Group.X25519_MLKEM768]: { id: Group.X25519_MLKEM768, name: 'x25519-mlkem768', classical: 'x25519', classicalLength: 32, kem: mlkem768 },
};

function groupSpec(id: number): GroupSpec {
  const g = GROUPS[id];
  if (!g) throw new V2Error(AlertCode.HANDSHAKE_FAILURE, `unknown group 0x${id.toString(16)}`);
  return g;
}

export const clientShareSize = (id: number): number => groupSpec(id).classicalLength + groupSpec(id).kem.sizes.publicKey;
export const serverShareSize = (id: number): number => groupSpec(id).classicalLength + groupSpec(id).kem.sizes.ciphertext;

/** A fresh classical key pair (node:crypto) that can agree once with a peer's public key. */
interface ClassicalKey {
  publicKey: Buffer;
  agree(peer: Buffer): Buffer;
}

function classicalKey(kind: GroupSpec['classical']): ClassicalKey {
  if (kind === 'p384') {
    const ecdh = createECDH('secp384r1');
    ecdh.generateKeys();
    return {
      publicKey: ecdh.getPublicKey(), // uncompressed 04 ‖ X ‖ Y
      agree(peer) {
        if (peer.length !== 97 || peer[0] !== 0x04) throw new V2Error(AlertCode.HANDSHAKE_FAILURE, 'P-384 key is not an uncompressed point');
        try {
          return ecdh.computeSecret(peer); // validates the point; Z = x-coordinate, 48 bytes
        } catch {
          throw new V2Error(AlertCode.HANDSHAKE_FAILURE, 'invalid P-384 public key');
        }
      },
    };
  }
  const { publicKey, privateKey } = generateKeyPairSync('x25519');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x as string, 'base64url');
  return {
    publicKey: raw,
    agree(peer) {
      let peerKey: KeyObject;
      let z: Buffer;
      try {
        peerKey = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: peer.toString('base64url') }, format: 'jwk' });
        z = diffieHellman({ privateKey, publicKey: peerKey });
      } catch {
        throw new V2Error(AlertCode.HANDSHAKE_FAILURE, 'X25519 agreement failed (low-order point?)');
      }
      if (z.every((b) => b === 0)) throw new V2Error(AlertCode.HANDSHAKE_FAILURE, 'X25519 low-order point');
      return z;
    },
  };
}

/**
 * §4: K = HKDF-Expand(HKDF-Extract("qtun v2 hybrid", Z_c ‖ Z_m), Hash(FixedInfo), 48), the
 * initiator's classical key first.
 */
export function combine(groupId: number, zc: Buffer, zm: Buffer, initiatorPk: Buffer, responderPk: Buffer, ek: Buffer, ct: Buffer): Buffer {
  const fixedInfo = Buffer.concat([HYBRID_LABEL, be16(VERSION), be16(groupId), vec16(initiatorPk), vec16(responderPk), vec16(ek), vec16(ct)]);
  const prk = hkdfExtract(HYBRID_LABEL, Buffer.concat([zc, zm]));
  return hkdfExpand(prk, sha384(fixedInfo), HASH_LEN);
}

/** The initiator's half of an exchange: its share (classical public key ‖ encapsulation key). */
export interface InitiatorShare {
  groupId: number;
  share: Buffer;
  classical: ClassicalKey;
  kem: MlKemKeyPair;
}

export function initiate(groupId: number): InitiatorShare {
  const g = groupSpec(groupId);
  const classical = classicalKey(g.classical);
  const kem = g.kem.generateKeyPair();
  return { groupId, share: Buffer.concat([classical.publicKey, kem.publicKey]), classical, kem };
}

/** The responder's half: its share (classical public key ‖ ciphertext) and K. */
export function respond(groupId: number, initiatorShare: Buffer): { share: Buffer; k: Buffer } {
  const g = groupSpec(groupId);
  if (initiatorShare.length !== clientShareSize(groupId)) malformed('key share of the wrong size');
  const peerPk = initiatorShare.subarray(0, g.classicalLength);
  const ek = initiatorShare.subarray(g.classicalLength);
  const classical = classicalKey(g.classical);
  const zc = classical.agree(peerPk);
  let enc;
  try {
    enc = g.kem.encapsulate(ek);
  } catch {
    throw new V2Error(AlertCode.HANDSHAKE_FAILURE, 'invalid ML-KEM encapsulation key');
  }
  const zm = exportSecret(enc.sharedSecret);
  enc.sharedSecret.destroy();
  const k = combine(groupId, zc, zm, peerPk, classical.publicKey, ek, enc.ciphertext);
  return { share: Buffer.concat([classical.publicKey, enc.ciphertext]), k };
}

/** The initiator completes with the responder's share. */
export function complete(state: InitiatorShare, responderShare: Buffer): Buffer {
  const g = groupSpec(state.groupId);
  if (responderShare.length !== serverShareSize(state.groupId)) malformed('responder key share of the wrong size');
  const peerPk = responderShare.subarray(0, g.classicalLength);
  const ct = responderShare.subarray(g.classicalLength);
  const zc = state.classical.agree(peerPk);
  const secret = g.kem.decapsulate(state.kem.privateKey, ct);
  const zm = exportSecret(secret);
  secret.destroy();
  state.kem.privateKey.destroy();
  return combine(state.groupId, zc, zm, state.classical.publicKey, peerPk, state.kem.publicKey, ct);
}

// ---- hellos (§3.1, §3.2) --------------------------------------------------------------------------

export interface PskIdentity {
  identity: Buffer;
  obfuscatedTicketAge: number;
}

export interface ClientHello {
  major: number;
  minor: number;
  random: Buffer;
  versions: number[];
  suites: number[];
  groups: number[];
  keyShareGroup: number;
  keyShare: Buffer;
  pskIdentities: PskIdentity[];
  extensions: { type: number; data: Buffer }[];
  binders: Buffer[];
}

export interface ServerHello {
  major: number;
  minor: number;
  random: Buffer;
  suite: number;
  group: number;
  keyShare: Buffer;
  selectedPsk: number;
  extensions: { type: number; data: Buffer }[];
}

export function frame(type: number, payload: Buffer): Buffer {
  if (payload.length > MAX_FRAME_PAYLOAD) throw new RangeError('frame too large');
  return Buffer.concat([be8(type), be32(payload.length), payload]);
}

const encodeExtensions = (exts: readonly { type: number; data: Buffer }[]): Buffer => vec16(Buffer.concat(exts.map((e) => Buffer.concat([be16(e.type), vec16(e.data)]))));

function decodeExtensions(bytes: Buffer): { type: number; data: Buffer }[] {
  const r = new Reader(bytes);
  const out: { type: number; data: Buffer }[] = [];
  while (r.left > 0) {
    const type = r.u16('extension type');
    const data = r.vec16('extension data');
    if (out.some((e) => e.type === type)) malformed('an extension type twice');
    out.push({ type, data });
  }
  return out;
}

/** The binders field: vec16 of vec8(binder). */
const encodeBinders = (binders: readonly Buffer[]): Buffer => vec16(Buffer.concat(binders.map(vec8)));

/** ClientHello frame bytes (§3.1). */
export function encodeClientHello(ch: ClientHello): Buffer {
  const identities = Buffer.concat(ch.pskIdentities.map((p) => Buffer.concat([vec16(p.identity), be32(p.obfuscatedTicketAge)])));
  const payload = Buffer.concat([
    Buffer.from([ch.major, ch.minor]),
    ch.random,
    vec8(list16(ch.versions)),
    vec16(list16(ch.suites)),
    vec16(list16(ch.groups)),
    be16(ch.keyShareGroup),
    vec16(ch.keyShare),
    vec16(identities),
    encodeExtensions(ch.extensions),
    encodeBinders(ch.binders),
  ]);
  return frame(FrameType.CLIENT_HELLO, payload);
}

/** Decodes a ClientHello payload; `bindersOffset` is where the binders field starts in the payload. */
export function decodeClientHello(payload: Buffer): { hello: ClientHello; bindersOffset: number } {
  const r = new Reader(payload);
  const major = r.u8('version');
  if (major !== 2) throw new V2Error(AlertCode.UNSUPPORTED_VERSION, `ClientHello major version ${major}`);
  const minor = r.u8('version');
  const random = r.bytes(32, 'random');
  const versions = readList16(r.vec8('supported_versions'), 'supported_versions');
  const suites = readList16(r.vec16('cipher_suites'), 'cipher_suites');
  const groups = readList16(r.vec16('groups'), 'groups');
  if (suites.length === 0 || groups.length === 0) malformed('empty suite or group list');
  const keyShareGroup = r.u16('key_share_group');
  const keyShare = r.vec16('key_share');
  const idReader = new Reader(r.vec16('psk_identities'));
  const pskIdentities: PskIdentity[] = [];
  while (idReader.left > 0) pskIdentities.push({ identity: idReader.vec16('identity'), obfuscatedTicketAge: idReader.u32('ticket age') });
  const extensions = decodeExtensions(r.vec16('extensions'));
  const bindersOffset = r.offset;
  const bReader = new Reader(r.vec16('binders'));
  const binders: Buffer[] = [];
  while (bReader.left > 0) binders.push(bReader.vec8('binder'));
  r.end('ClientHello');
  if (binders.length !== pskIdentities.length) malformed('binder count differs from identity count');
  return { hello: { major, minor, random, versions, suites, groups, keyShareGroup, keyShare, pskIdentities, extensions, binders }, bindersOffset };
}

export function encodeServerHello(sh: ServerHello): Buffer {
  const payload = Buffer.concat([
    Buffer.from([sh.major, sh.minor]),
    sh.random,
    be16(sh.suite),
    be16(sh.group),
    vec16(sh.keyShare),
    be16(sh.selectedPsk),
    encodeExtensions(sh.extensions),
  ]);
  return frame(FrameType.SERVER_HELLO, payload);
}

export function decodeServerHello(payload: Buffer): ServerHello {
  const r = new Reader(payload);
  const major = r.u8('version');
  if (major !== 2) throw new V2Error(AlertCode.UNSUPPORTED_VERSION, `ServerHello major version ${major}`);
  const minor = r.u8('version');
  const random = r.bytes(32, 'random');
  const suite = r.u16('cipher_suite');
  const group = r.u16('group');
  const keyShare = r.vec16('key_share');
  const selectedPsk = r.u16('selected_psk');
  const extensions = decodeExtensions(r.vec16('extensions'));
  r.end('ServerHello');
  return { major, minor, random, suite, group, keyShare, selectedPsk, extensions };
}

/** §9 plaintext Alert frame: level ‖ code ‖ vec8(description). */
export const plainAlert = (code: number, level = 2, description = 'handshake failed'): Buffer =>
  frame(FrameType.ALERT, Buffer.concat([be8(level), be8(code), vec8(Buffer.from(description, 'ascii'))]));

export function decodePlainAlert(payload: Buffer): PeerAlertError {
  const r = new Reader(payload);
  const level = r.u8('alert level');
  const code = r.u8('alert code');
  const description = r.left > 0 ? r.vec8('alert description').toString('latin1') : undefined;
  return new PeerAlertError(level, code, description);
}

// ---- handshake messages (§3.3) ---------------------------------------------------------------------

export const handshakeMessage = (type: number, body: Buffer): Buffer => Buffer.concat([be8(type), be24(body.length), body]);

function decodeHandshakeMessage(content: Buffer, expected: number): Buffer {
  const r = new Reader(content);
  const type = r.u8('msg_type');
  const length = r.u24('length');
  const body = r.bytes(length, 'handshake body');
  r.end('handshake message (one per record)');
  if (type !== expected) throw new V2Error(AlertCode.UNEXPECTED_MESSAGE, `handshake message 0x${type.toString(16)} where 0x${expected.toString(16)} was due`);
  return body;
}

// ---- framing over a socket (§2) ----------------------------------------------------------------------

export interface Frame {
  type: number;
  payload: Buffer;
  /** The whole frame, header included. */
  bytes: Buffer;
}

/** Splits a socket's bytes into frames; the header's length is checked before buffering. */
export class FrameStream {
  private buffer: Buffer = EMPTY;
  private readonly frames: Frame[] = [];
  private waiter: (() => void) | undefined;
  ended = false;
  error: Error | undefined;
  /** The first byte the peer sent (to tell a protocol mismatch). */
  firstByte: number | undefined;

  constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      if (this.firstByte === undefined && chunk.length > 0) this.firstByte = chunk[0];
      this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
      this.split();
      this.wake();
    });
    const end = () => {
      this.ended = true;
      this.wake();
    };
    socket.on('end', end);
    socket.on('close', end);
    socket.on('error', (err) => {
      this.error ??= err;
      end();
    });
  }

  private split(): void {
    while (this.buffer.length >= 5 && this.error === undefined) {
      const length = this.buffer.readUInt32BE(1);
      if (length > MAX_FRAME_PAYLOAD) {
        this.error = new V2Error(AlertCode.UNEXPECTED_MESSAGE, `frame length ${length} over 65,536`);
        return;
      }
      if (this.buffer.length < 5 + length) return;
      const bytes = this.buffer.subarray(0, 5 + length);
      this.buffer = this.buffer.subarray(5 + length);
      this.frames.push({ type: bytes.readUInt8(0), payload: bytes.subarray(5), bytes });
    }
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  /** The next frame; null once the stream ended; rejects after `ms` (Infinity: never). */
  async next(ms: number): Promise<Frame | null> {
    const deadline = Date.now() + ms;
    for (;;) {
      const f = this.frames.shift();
      if (f) return f;
      if (this.error) throw this.error;
      if (this.ended) return null;
      await new Promise<void>((resolve, reject) => {
        this.waiter = resolve;
        if (Number.isFinite(ms)) {
          const timer = setTimeout(() => reject(new Error('timed out waiting for a frame')), Math.max(0, deadline - Date.now()));
          const previous = this.waiter;
          this.waiter = () => {
            clearTimeout(timer);
            previous();
          };
        }
      });
    }
  }
}

// ---- records (§5) -----------------------------------------------------------------------------------

/** One direction's key, IV and sequence number under one epoch. */
export class RecordKeys {
  readonly key: Buffer;
  readonly iv: Buffer;
  seq = 0n;

  constructor(
    readonly suite: number,
    readonly secret: Buffer,
    readonly epoch: number,
  ) {
    this.key = expandLabel(secret, 'key', EMPTY, 32);
    this.iv = expandLabel(secret, 'iv', EMPTY, 12);
  }

  /** iv XOR (0^4 ‖ BE64(seq)). */
  nonce(): Buffer {
    const n = Buffer.from(this.iv);
    const s = Buffer.alloc(8);
    s.writeBigUInt64BE(this.seq);
    for (let i = 0; i < 8; i++) n.writeUInt8(n.readUInt8(4 + i) ^ s.readUInt8(i), 4 + i);
    return n;
  }
}

function aeadAlgorithm(suite: number): 'aes-256-gcm' | 'chacha20-poly1305' {
  if (suite === Suite.AES_256_GCM) return 'aes-256-gcm';
  if (suite === Suite.CHACHA20_POLY1305) return 'chacha20-poly1305';
  throw new V2Error(AlertCode.UNSUPPORTED_CIPHER, `unknown suite 0x${suite.toString(16)}`);
}

export function aeadSeal(suite: number, key: Buffer, nonce: Buffer, ad: Buffer, plaintext: Buffer): Buffer {
  const c = createCipheriv(aeadAlgorithm(suite) as 'aes-256-gcm', key, nonce, { authTagLength: TAG_LEN });
  c.setAAD(ad, { plaintextLength: plaintext.length });
  return Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
}

export function aeadOpen(suite: number, key: Buffer, nonce: Buffer, ad: Buffer, sealed: Buffer): Buffer {
  if (sealed.length < TAG_LEN) throw new V2Error(AlertCode.BAD_RECORD, 'record shorter than a tag');
  const d = createDecipheriv(aeadAlgorithm(suite) as 'aes-256-gcm', key, nonce, { authTagLength: TAG_LEN });
  d.setAAD(ad, { plaintextLength: sealed.length - TAG_LEN });
  d.setAuthTag(sealed.subarray(sealed.length - TAG_LEN));
  try {
    return Buffer.concat([d.update(sealed.subarray(0, sealed.length - TAG_LEN)), d.final()]);
  } catch {
    throw new V2Error(AlertCode.BAD_RECORD, 'record does not authenticate');
  }
}

/** record = 30 ‖ BE32(2 + |sealed|) ‖ BE16(epoch) ‖ sealed; AD = the 7-byte header. */
export function sealRecord(keys: RecordKeys, innerType: number, content: Buffer, padding = 0): Buffer {
  const inner = Buffer.concat([content, be8(innerType), Buffer.alloc(padding)]);
  if (inner.length > MAX_INNER) throw new RangeError('inner plaintext too large');
  const header = Buffer.concat([be8(FrameType.RECORD), be32(2 + inner.length + TAG_LEN), be16(keys.epoch)]);
  const sealed = aeadSeal(keys.suite, keys.key, keys.nonce(), header, inner);
  keys.seq += 1n;
  return Buffer.concat([header, sealed]);
}

export const recordEpoch = (f: Frame): number => {
  if (f.payload.length < 2) malformed('record without an epoch');
  return f.payload.readUInt16BE(0);
};

export function openRecord(keys: RecordKeys, f: Frame): { type: number; content: Buffer } {
  if (f.type !== FrameType.RECORD) throw new V2Error(AlertCode.UNEXPECTED_MESSAGE, `frame type 0x${f.type.toString(16)} where a record was due`);
  const epoch = recordEpoch(f);
  if (epoch !== keys.epoch) throw new V2Error(AlertCode.UNEXPECTED_MESSAGE, `record of epoch ${epoch}, expected ${keys.epoch}`);
  const inner = aeadOpen(keys.suite, keys.key, keys.nonce(), f.bytes.subarray(0, 7), f.payload.subarray(2));
  keys.seq += 1n;
  let end = inner.length;
  while (end > 0 && inner[end - 1] === 0) end--;
  if (end === 0) throw new V2Error(AlertCode.UNEXPECTED_MESSAGE, 'record without a content type');
  const type = inner.readUInt8(end - 1);
  if (type < Inner.HANDSHAKE || type > Inner.NEW_SESSION_TICKET) throw new V2Error(AlertCode.UNEXPECTED_MESSAGE, `unknown inner type 0x${type.toString(16)}`);
  return { type, content: inner.subarray(0, end - 1) };
}

// ---- the session after the handshake (§8) ---------------------------------------------------------------

export interface SessionParams {
  role: 'client' | 'server';
  socket: Socket;
  frames: FrameStream;
  suite: number;
  group: number;
  /** Generation-2 (c_ap / s_ap) secrets of what this side sends and receives. */
  sendSecret: Buffer;
  recvSecret: Buffer;
  exporter: Buffer;
  resumption: Buffer;
  transcriptHash: Buffer;
  /** Index of the selected PSK, or 0xFFFF. */
  selectedPsk: number;
  /** Zero bytes appended to every record this side seals (§5 padding). */
  padding: number;
}

interface Outstanding {
  mode: number;
  epoch: number;
  share?: InitiatorShare;
  resolve(): void;
  reject(err: Error): void;
}

export interface NewSessionTicket {
  /** Date.now() when it arrived (for obfuscated_ticket_age). */
  receivedAt: number;
  lifetimeSeconds: number;
  ageAdd: number;
  nonce: Buffer;
  ticket: Buffer;
}

/** An established v2 session: data, ping/pong, close_notify, alerts, KeyUpdate, exporter. */
export class IndependentSession {
  readonly role: 'client' | 'server';
  readonly suite: number;
  readonly group: number;
  readonly exporterSecret: Buffer;
  readonly resumptionSecret: Buffer;
  /** H(CH‖SH‖EE‖SF‖CF). */
  readonly fullTranscriptHash: Buffer;
  readonly selectedPsk: number;
  padding: number;
  private readonly socket: Socket;
  private readonly frames: FrameStream;
  private sendSecret: Buffer;
  private recvSecret: Buffer;
  private sendKeys: RecordKeys;
  private recvKeys: RecordKeys;
  /** As KeyUpdate responder: the requester's next keys, used from its first record of that epoch on. */
  private pendingRecv: RecordKeys | undefined;
  private outstanding: Outstanding | undefined;
  private readonly received: Buffer[] = [];
  private receivedBytes = 0;
  private readonly waiters = new Set<() => void>();
  readonly tickets: NewSessionTicket[] = [];
  readonly alerts: { level: number; code: number }[] = [];
  /** Plaintext Alert frames received after this side completed its handshake (§9). */
  readonly plaintextAlerts: { level: number; code: number }[] = [];
  /** KeyUpdates this side answered (as responder) and completed (as requester). */
  readonly keyUpdates: { role: 'requester' | 'responder'; mode: number; epoch: number }[] = [];
  /** Requests of the peer this side ignored (simultaneous requests, the client's wins). */
  ignoredRequests = 0;
  pongs = 0;
  pingsAnswered = 0;
  closeNotifyReceived = false;
  closeNotifySent = false;
  /** The epoch of the last record opened. */
  lastRecvEpoch = 2;
  failure: Error | undefined;
  readonly closed: Promise<void>;
  private socketClosed = false;

  constructor(p: SessionParams) {
    this.role = p.role;
    this.suite = p.suite;
    this.group = p.group;
    this.exporterSecret = p.exporter;
    this.resumptionSecret = p.resumption;
    this.fullTranscriptHash = p.transcriptHash;
    this.selectedPsk = p.selectedPsk;
    this.padding = p.padding;
    this.socket = p.socket;
    this.frames = p.frames;
    this.sendSecret = p.sendSecret;
    this.recvSecret = p.recvSecret;
    this.sendKeys = new RecordKeys(p.suite, p.sendSecret, 2);
    this.recvKeys = new RecordKeys(p.suite, p.recvSecret, 2);
    this.closed = new Promise((resolve) => {
      const done = () => {
        this.socketClosed = true;
        this.notify();
        resolve();
      };
      if (this.socket.destroyed) done();
      else this.socket.once('close', done);
    });
    void this.loop();
  }

  /**
   * The session ID info() shows. §3.6 says of H(CH‖SH‖EE‖SF‖CF) "resumption secret; its first 16
   * bytes are the session ID": "its" is the transcript hash, not the resumption secret (which
   * would put 16 bytes of a secret in a public ID); interop confirms this reading.
   */
  get sessionId(): Buffer {
    return this.fullTranscriptHash.subarray(0, 16);
  }

  get sendEpoch(): number {
    return this.sendKeys.epoch;
  }

  get recvEpoch(): number {
    return this.recvKeys.epoch;
  }

  exportKeyingMaterial(label: string, context: Uint8Array | undefined, length: number): Buffer {
    return exportKeyingMaterial(this.exporterSecret, label, context, length);
  }

  // ---- sending ----

  private seal(type: number, content: Buffer): void {
    if (this.socket.destroyed || this.socket.writableEnded) throw new Error('the socket is closed');
    this.socket.write(sealRecord(this.sendKeys, type, content, this.padding));
  }

  /** Sends `data` as data records of at most MAX_DATA_PER_RECORD bytes (minus padding). */
  sendData(data: Buffer, perRecord = MAX_DATA_PER_RECORD): void {
    if (this.closeNotifySent) throw new Error('close_notify already sent');
    const size = Math.min(perRecord, MAX_INNER - 1 - this.padding);
    for (let off = 0; off < data.length; off += size) this.seal(Inner.DATA, data.subarray(off, off + size));
  }

  /** Sends a Ping and waits for a Pong. */
  async ping(ms = 10_000): Promise<void> {
    const before = this.pongs;
    this.seal(Inner.PING, EMPTY);
    await this.until(() => this.pongs > before, ms, 'a pong');
  }

  /** §10: sends a NewSessionTicket (server only) whose ticket is an opaque random ID kept in `store`. */
  issueTicket(store: Map<string, ServerTicket>, lifetimeSeconds = 3600): Buffer {
    const ticket = randomBytes(32);
    const nonce = randomBytes(8);
    const ageAdd = randomBytes(4).readUInt32BE(0);
    store.set(ticket.toString('hex'), { resumptionSecret: this.resumptionSecret, nonce, ageAdd, issuedAt: Date.now() });
    this.seal(Inner.NEW_SESSION_TICKET, Buffer.concat([be32(lifetimeSeconds), be32(ageAdd), vec8(nonce), vec16(ticket), vec16(EMPTY)]));
    return ticket;
  }

  /** Sends an alert record (§8). */
  sendAlert(level: number, code: number): void {
    this.seal(Inner.ALERT, Buffer.from([level, code]));
  }

  /** §8.1 as requester: sends key_update under epoch N and resolves once the ack moved both directions to N+1. */
  keyUpdate(modeName: KeyUpdateModeName, ms = 10_000): Promise<void> {
    if (this.outstanding) throw new Error('a KeyUpdate is outstanding');
    if (this.pendingRecv) throw new Error('still answering a KeyUpdate');
    const mode = KeyUpdateMode[modeName];
    const epoch = this.sendKeys.epoch + 1;
    const share = mode === KeyUpdateMode.kem ? initiate(this.group) : undefined;
    const content = Buffer.concat([be8(mode), be16(epoch), share ? vec16(share.share) : EMPTY]);
    const done = new Promise<void>((resolve, reject) => {
      this.outstanding = { mode, epoch, share, resolve, reject };
    });
    this.seal(Inner.KEY_UPDATE, content);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('timed out waiting for key_update_ack')), ms);
    });
    return Promise.race([done, timeout]).finally(() => clearTimeout(timer));
  }

  /** Sends close_notify (if not sent yet), waits for the peer's, then closes the socket. */
  async close(ms = 10_000): Promise<void> {
    if (!this.closeNotifySent) {
      this.seal(Inner.CLOSE_NOTIFY, EMPTY);
      this.closeNotifySent = true;
    }
    await this.until(() => this.closeNotifyReceived, ms, "the peer's close_notify");
    this.socket.end();
    await this.closed;
  }

  /** Ends the TCP connection without close_notify. */
  destroy(): void {
    this.socket.destroy();
  }

  /** Test hook: writes raw bytes to the connection. */
  writeRaw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Test hook: seals any inner type and content, optionally under another epoch or skipping a seq. */
  sendRaw(innerType: number, content: Buffer, options: { epoch?: number; skipSeq?: boolean } = {}): void {
    if (options.skipSeq) this.sendKeys.seq += 1n;
    if (options.epoch === undefined) {
      this.seal(innerType, content);
      return;
    }
    const keys = new RecordKeys(this.suite, this.sendSecret, options.epoch);
    keys.seq = this.sendKeys.seq;
    this.socket.write(sealRecord(keys, innerType, content, this.padding));
    this.sendKeys.seq += 1n;
  }

  // ---- receiving ----

  /** Exactly `n` bytes of received data. */
  async read(n: number, ms = 10_000): Promise<Buffer> {
    await this.until(() => this.receivedBytes >= n, ms, `${n} bytes of data`);
    const all = Buffer.concat(this.received);
    this.received.length = 0;
    if (all.length > n) this.received.push(all.subarray(n));
    this.receivedBytes = all.length - n;
    return all.subarray(0, n);
  }

  /** Waits until `condition` holds; rejects on the session's failure, its socket's close or after `ms`. */
  async until(condition: () => boolean, ms: number, what: string): Promise<void> {
    const deadline = Date.now() + ms;
    while (!condition()) {
      if (this.failure) throw this.failure;
      if (this.socketClosed) throw new Error(`the connection closed while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(wake, left);
        function wake(): void {
          clearTimeout(timer);
          resolve();
        }
        this.waiters.add(wake);
      });
    }
  }

  private notify(): void {
    const ws = [...this.waiters];
    this.waiters.clear();
    for (const w of ws) w();
  }

  private async loop(): Promise<void> {
    for (;;) {
      let f: Frame | null;
      try {
        f = await this.frames.next(Infinity);
      } catch (err) {
        this.fail(err as Error, false);
        return;
      }
      if (f === null) {
        if (!this.closeNotifyReceived) this.fail(new Error('truncated: the connection ended without close_notify'), false);
        this.notify();
        return;
      }
      try {
        this.onFrame(f);
      } catch (err) {
        this.fail(err as Error, !(err instanceof PeerAlertError));
        return;
      }
      this.notify();
    }
  }

  private fail(err: Error, sendAlert: boolean): void {
    this.failure ??= err;
    const o = this.outstanding;
    this.outstanding = undefined;
    o?.reject(err);
    if (sendAlert && !this.socket.destroyed) {
      try {
        this.sendAlert(2, err instanceof V2Error ? err.alert : AlertCode.UNEXPECTED_MESSAGE);
      } catch {
        // the socket is gone
      }
    }
    this.socket.end();
    this.notify();
  }

  private onFrame(f: Frame): void {
    if (f.type === FrameType.ALERT) {
      const alert = decodePlainAlert(f.payload);
      this.plaintextAlerts.push({ level: alert.level, code: alert.code });
      throw alert;
    }
    if (f.type !== FrameType.RECORD) throw new V2Error(AlertCode.UNEXPECTED_MESSAGE, `frame type 0x${f.type.toString(16)} after the handshake`);
    const epoch = recordEpoch(f);
    // §8.1 step 2: the responder opens the requester's records under N until the first of N+1.
    if (this.pendingRecv && epoch === this.pendingRecv.epoch) {
      this.recvKeys = this.pendingRecv;
      this.pendingRecv = undefined;
    }
    const { type, content } = openRecord(this.recvKeys, f);
    this.lastRecvEpoch = epoch;
    if (this.closeNotifyReceived) throw new V2Error(AlertCode.UNEXPECTED_MESSAGE, 'a record after close_notify');
    switch (type) {
      case Inner.DATA:
        if (content.length === 0) throw new V2Error(AlertCode.UNEXPECTED_MESSAGE, 'empty data record');
        this.received.push(Buffer.from(content));
        this.receivedBytes += content.length;
        return;
      case Inner.PING:
        if (content.length !== 0) malformed('ping with content');
        if (!this.closeNotifySent) this.seal(Inner.PONG, EMPTY);
        this.pingsAnswered++;
        return;
      case Inner.PONG:
        if (content.length !== 0) malformed('pong with content');
        this.pongs++;
        return;
      case Inner.CLOSE_NOTIFY:
        if (content.length !== 0) malformed('close_notify with content');
        this.closeNotifyReceived = true;
        if (!this.closeNotifySent) {
          this.seal(Inner.CLOSE_NOTIFY, EMPTY);
          this.closeNotifySent = true;
          this.socket.end();
        }
        return;
      case Inner.ALERT: {
        const r = new Reader(content);
        const level = r.u8('alert level');
        const code = r.u8('alert code');
        r.end('alert');
        this.alerts.push({ level, code });
        if (level === 2) throw new PeerAlertError(level, code);
        return;
      }
      case Inner.KEY_UPDATE:
        this.onKeyUpdate(content, epoch);
        return;
      case Inner.KEY_UPDATE_ACK:
        this.onKeyUpdateAck(content);
        return;
      case Inner.NEW_SESSION_TICKET:
        if (this.role !== 'client') throw new V2Error(AlertCode.UNEXPECTED_MESSAGE, 'NewSessionTicket to a server');
        this.tickets.push(decodeTicket(content));
        return;
      default: // Inner.HANDSHAKE
        throw new V2Error(AlertCode.UNEXPECTED_MESSAGE, 'a handshake record after the handshake');
    }
  }

  private onKeyUpdate(content: Buffer, recordEpoch: number): void {
    const r = new Reader(content);
    const mode = r.u8('key_update mode');
    const epoch = r.u16('key_update epoch');
    if (mode !== KeyUpdateMode.symmetric && mode !== KeyUpdateMode.kem) malformed(`key_update mode ${mode}`);
    const share = mode === KeyUpdateMode.kem ? r.vec16('key_update share') : undefined;
    r.end('key_update');
    if (this.outstanding) {
      if (this.role === 'client') {
        this.ignoredRequests++; // simultaneous requests: the client's wins
        return;
      }
      const dropped = this.outstanding;
      this.outstanding = undefined;
      dropped.reject(new Error("dropped: the client's simultaneous KeyUpdate won"));
    }
    const n = this.sendKeys.epoch;
    if (recordEpoch !== n || epoch !== n + 1 || epoch > 0xffff) throw new V2Error(AlertCode.UNEXPECTED_MESSAGE, `key_update to epoch ${epoch} at epoch ${n}`);
    let kUpdate: Buffer | undefined;
    let ack = Buffer.concat([be8(mode), be16(epoch)]);
    if (share) {
      const responded = respond(this.group, share);
      kUpdate = responded.k;
      ack = Buffer.concat([ack, vec16(responded.share)]);
    }
    this.seal(Inner.KEY_UPDATE_ACK, ack); // under N
    this.sendSecret = nextTrafficSecret(this.sendSecret, kUpdate);
    this.recvSecret = nextTrafficSecret(this.recvSecret, kUpdate);
    this.sendKeys = new RecordKeys(this.suite, this.sendSecret, epoch);
    this.pendingRecv = new RecordKeys(this.suite, this.recvSecret, epoch);
    this.keyUpdates.push({ role: 'responder', mode, epoch });
  }

  private onKeyUpdateAck(content: Buffer): void {
    const r = new Reader(content);
    const mode = r.u8('key_update_ack mode');
    const epoch = r.u16('key_update_ack epoch');
    const share = mode === KeyUpdateMode.kem ? r.vec16('key_update_ack share') : undefined;
    r.end('key_update_ack');
    const o = this.outstanding;
    if (!o || o.mode !== mode || o.epoch !== epoch) throw new V2Error(AlertCode.UNEXPECTED_MESSAGE, 'key_update_ack without a matching request');
    const kUpdate = share && o.share ? complete(o.share, share) : undefined;
    this.sendSecret = nextTrafficSecret(this.sendSecret, kUpdate);
    this.recvSecret = nextTrafficSecret(this.recvSecret, kUpdate);
    this.sendKeys = new RecordKeys(this.suite, this.sendSecret, epoch);
    this.recvKeys = new RecordKeys(this.suite, this.recvSecret, epoch);
    this.outstanding = undefined;
    this.keyUpdates.push({ role: 'requester', mode, epoch });
    o.resolve();
  }
}

/** §10 NewSessionTicket content. */
function decodeTicket(content: Buffer): NewSessionTicket {
  const r = new Reader(content);
  const lifetimeSeconds = r.u32('lifetime');
  const ageAdd = r.u32('age_add');
  const nonce = r.vec8('ticket nonce');
  const ticket = r.vec16('ticket');
  r.vec16('ticket extensions');
  r.end('NewSessionTicket');
  if (lifetimeSeconds > 604_800 || ticket.length === 0) malformed('NewSessionTicket');
  return { receivedAt: Date.now(), lifetimeSeconds, ageAdd, nonce: Buffer.from(nonce), ticket: Buffer.from(ticket) };
}

// ---- handshake: shared pieces (§3.6, §6) ----------------------------------------------------------------

export interface ExternalPsk {
  identity: Buffer;
  key: Buffer;
}

/** The traffic secrets after ClientHello ‖ ServerHello. */
function handshakeSecrets(psk: Buffer | undefined, k: Buffer, chsh: Buffer): { hs: Buffer; cHs: Buffer; sHs: Buffer } {
  const hs = handshakeSecret(earlySecret(psk), k);
  return { hs, cHs: deriveSecret(hs, 'c hs traffic', chsh), sHs: deriveSecret(hs, 's hs traffic', chsh) };
}

function applicationSecrets(hs: Buffer, throughSf: Buffer): { master: Buffer; cAp: Buffer; sAp: Buffer; exporter: Buffer } {
  const master = masterSecret(hs);
  return {
    master,
    cAp: deriveSecret(master, 'c ap traffic', throughSf),
    sAp: deriveSecret(master, 's ap traffic', throughSf),
    exporter: deriveSecret(master, 'exp master', throughSf),
  };
}

/** The session after the handshake: generation 2 of the traffic secrets, exporter and resumption secrets (§6). */
function establish(
  role: 'client' | 'server',
  socket: Socket,
  frames: FrameStream,
  chosen: { suite: number; group: number; selectedPsk: number; padding: number },
  app: ReturnType<typeof applicationSecrets>,
  transcript: readonly Buffer[],
): IndependentSession {
  const all = Buffer.concat(transcript); // CH‖SH‖EE‖SF‖CF
  return new IndependentSession({
    role,
    socket,
    frames,
    ...chosen,
    sendSecret: role === 'client' ? app.cAp : app.sAp,
    recvSecret: role === 'client' ? app.sAp : app.cAp,
    exporter: app.exporter,
    resumption: deriveSecret(app.master, 'res master', all),
    transcriptHash: sha384(all),
  });
}

function checkMac(expected: Buffer, got: Buffer, code: number, what: string): void {
  if (got.length !== expected.length || !timingSafeEqual(got, expected)) throw new V2Error(code, `${what} does not verify`);
}

/** A received frame that must exist. */
async function nextFrame(frames: FrameStream, ms: number, what: string): Promise<Frame> {
  const f = await frames.next(ms);
  if (!f) throw new Error(`the connection ended before ${what}`);
  return f;
}

/** Opens a handshake record; a record that does not authenticate is `failCode` (§3.5 step 4). */
function openHandshakeRecord(keys: RecordKeys, f: Frame, failCode: number): Buffer {
  let opened;
  try {
    opened = openRecord(keys, f);
  } catch (err) {
    if (err instanceof V2Error && err.alert === AlertCode.BAD_RECORD) throw new V2Error(failCode, 'handshake record does not authenticate');
    throw err;
  }
  if (opened.type !== Inner.HANDSHAKE) throw new V2Error(AlertCode.UNEXPECTED_MESSAGE, `inner type ${opened.type} during the handshake`);
  return opened.content;
}

/** Refuses a handshake with a plaintext alert (§9) and closes. */
function refuse(socket: Socket, err: unknown): void {
  if (err instanceof V2Error && !socket.destroyed) socket.end(plainAlert(err.alert));
  else socket.destroy();
}

// ---- client (§3.1, §3.5, §7) ----------------------------------------------------------------------------

export interface ClientOptions {
  /** Offered suites in preference order (default AES-256-GCM, ChaCha20-Poly1305). */
  suites?: number[];
  /** Offered groups; the key share is for groups[0] (default x25519-mlkem1024). */
  groups?: number[];
  /** External PSKs, offered in this order (one binder each). */
  psks?: ExternalPsk[];
  /** Require the server to select a PSK (default: when `psks` is given). */
  requirePsk?: boolean;
  /** A ticket of an earlier session and that session's resumption secret, offered first (§7, §10). */
  resumption?: { ticket: NewSessionTicket; resumptionSecret: Buffer };
  /** Test hook: change the client's verify_data before it is sent. */
  tamperFinished?: (verifyData: Buffer) => Buffer;
  padding?: number;
  timeoutMs?: number;
}

/** §10: ticket PSK = HKDF-Expand-Label(resumption, "resumption", nonce, 48). */
export const ticketPsk = (resumption: Buffer, nonce: Buffer): Buffer => expandLabel(resumption, 'resumption', nonce, HASH_LEN);

/** Runs one side's handshake over `socket`; a failure is refused with a plaintext alert (§9). */
async function handshakeOver<O>(socket: Socket, options: O, run: (socket: Socket, frames: FrameStream, options: O) => Promise<IndependentSession>): Promise<IndependentSession> {
  try {
    return await run(socket, new FrameStream(socket), options);
  } catch (err) {
    refuse(socket, err);
    throw err;
  }
}

/** The client's handshake over a connected socket. */
export const clientHandshake = (socket: Socket, options: ClientOptions = {}): Promise<IndependentSession> => handshakeOver(socket, options, runClient);

async function runClient(socket: Socket, frames: FrameStream, options: ClientOptions): Promise<IndependentSession> {
  const ms = options.timeoutMs ?? 15_000;
  const suites = options.suites ?? [Suite.AES_256_GCM, Suite.CHACHA20_POLY1305];
  const groups = options.groups ?? [Group.X25519_MLKEM1024];
  const psks = options.psks ?? [];
  const requirePsk = options.requirePsk ?? psks.length > 0;
  // §7: the ticket first (binder label "res binder"), then the external PSKs ("ext binder").
  const offers: { identity: Buffer; age: number; key: Buffer; kind: 'res' | 'ext' }[] = [];
  const r = options.resumption;
  if (r) {
    const age = (Date.now() - r.ticket.receivedAt + r.ticket.ageAdd) % 2 ** 32;
    offers.push({ identity: r.ticket.ticket, age, key: ticketPsk(r.resumptionSecret, r.ticket.nonce), kind: 'res' });
  }
  for (const p of psks) offers.push({ identity: p.identity, age: 0, key: p.key, kind: 'ext' });
  const shareGroup = groups[0] ?? Group.X25519_MLKEM1024;
  const share = initiate(shareGroup);
  const ch: ClientHello = {
    major: 2,
    minor: 0,
    random: randomBytes(32),
    versions: [VERSION],
    suites,
    groups,
    keyShareGroup: shareGroup,
    keyShare: share.share,
    pskIdentities: offers.map((o) => ({ identity: o.identity, obfuscatedTicketAge: o.age })),
    extensions: [],
    binders: offers.map(() => Buffer.alloc(HASH_LEN)),
  };
  let chBytes = encodeClientHello(ch);
  if (offers.length > 0) {
    // §7: the binders cover the frame without its final vec16(binders) field.
    const truncated = chBytes.subarray(0, chBytes.length - encodeBinders(ch.binders).length);
    ch.binders = offers.map((o) => verifyData(binderKey(earlySecret(o.key), o.kind), truncated));
    chBytes = encodeClientHello(ch);
  }
  socket.write(chBytes);

  const shFrame = await nextFrame(frames, ms, 'the ServerHello');
  if (shFrame.type === FrameType.ALERT) throw decodePlainAlert(shFrame.payload);
  if (shFrame.type !== FrameType.SERVER_HELLO) throw new V2Error(AlertCode.UNEXPECTED_MESSAGE, `frame 0x${shFrame.type.toString(16)} instead of ServerHello`);
  const sh = decodeServerHello(shFrame.payload);
  if (!suites.includes(sh.suite)) throw new V2Error(AlertCode.UNSUPPORTED_CIPHER, 'server chose a suite not offered');
  if (sh.group !== shareGroup) throw new V2Error(AlertCode.HANDSHAKE_FAILURE, "server's group is not the key share's");
  if (sh.keyShare.length !== serverShareSize(sh.group)) malformed('server key share of the wrong size');
  if (sh.extensions.length !== 0) malformed('ServerHello extensions');
  if (sh.selectedPsk !== 0xffff && sh.selectedPsk >= offers.length) throw new V2Error(AlertCode.HANDSHAKE_FAILURE, 'selected_psk out of range');
  if (requirePsk && sh.selectedPsk === 0xffff) throw new V2Error(AlertCode.PSK_MISMATCH, 'the server selected no PSK');
  const psk = sh.selectedPsk === 0xffff ? undefined : offers[sh.selectedPsk];
  const finishedFailure = psk ? AlertCode.PSK_MISMATCH : AlertCode.HANDSHAKE_FAILURE;

  const k = complete(share, sh.keyShare);
  const transcript: Buffer[] = [chBytes, shFrame.bytes];
  const { hs, cHs, sHs } = handshakeSecrets(psk?.key, k, Buffer.concat(transcript));
  const recv = new RecordKeys(sh.suite, sHs, 1);
  const send = new RecordKeys(sh.suite, cHs, 1);

  const ee = openHandshakeRecord(recv, await nextFrame(frames, ms, 'EncryptedExtensions'), AlertCode.HANDSHAKE_FAILURE);
  decodeExtensions(new Reader(decodeHandshakeMessage(ee, HandshakeType.ENCRYPTED_EXTENSIONS)).vec16('EncryptedExtensions'));
  transcript.push(ee);
  const sf = openHandshakeRecord(recv, await nextFrame(frames, ms, "the server's Finished"), AlertCode.HANDSHAKE_FAILURE);
  checkMac(verifyData(sHs, Buffer.concat(transcript)), decodeHandshakeMessage(sf, HandshakeType.FINISHED), finishedFailure, "the server's Finished");
  transcript.push(sf);

  const throughSf = Buffer.concat(transcript);
  const app = applicationSecrets(hs, throughSf);
  const clientVerify = verifyData(cHs, throughSf);
  const cf = handshakeMessage(HandshakeType.FINISHED, options.tamperFinished?.(clientVerify) ?? clientVerify);
  socket.write(sealRecord(send, Inner.HANDSHAKE, cf, options.padding ?? 0));
  transcript.push(cf);
  return establish('client', socket, frames, { suite: sh.suite, group: sh.group, selectedPsk: sh.selectedPsk, padding: options.padding ?? 0 }, app, transcript);
}

/** Connects to 127.0.0.1:`port` and runs the client handshake. */
export async function independentConnect(port: number, options: ClientOptions = {}): Promise<IndependentSession> {
  const socket = connect({ host: '127.0.0.1', port });
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  return clientHandshake(socket, options);
}

// ---- server (§3.2, §3.4, §7) ----------------------------------------------------------------------------

export interface ServerOptions {
  suites?: number[];
  groups?: number[];
  /** External PSKs the server knows. */
  psks?: ExternalPsk[];
  /** Refuse a hello without a usable PSK (default: when `psks` is given). */
  requirePsk?: boolean;
  padding?: number;
  timeoutMs?: number;
  /** Issue a NewSessionTicket after each handshake and accept its tickets (opaque random IDs kept here). */
  tickets?: Map<string, ServerTicket>;
  /** Test hooks: change the ServerHello, or the server's verify_data, before they are sent. */
  tamper?: {
    serverHello?: (sh: ServerHello) => void;
    encryptedExtensions?: { type: number; data: Buffer }[];
    finished?: (verifyData: Buffer) => Buffer;
  };
}

/** What our independent server keeps for a ticket it issued (its ticket is an opaque random ID). */
export interface ServerTicket {
  resumptionSecret: Buffer;
  nonce: Buffer;
  ageAdd: number;
  issuedAt: number;
  /** Set when a client redeems it: its claimed age minus the real one, in ms. */
  ageSkewMs?: number;
}

/** The server's handshake over an accepted socket. */
export const serverHandshake = (socket: Socket, options: ServerOptions = {}): Promise<IndependentSession> => handshakeOver(socket, options, runServer);

async function runServer(socket: Socket, frames: FrameStream, options: ServerOptions): Promise<IndependentSession> {
  const ms = options.timeoutMs ?? 15_000;
  const suites = options.suites ?? [Suite.AES_256_GCM, Suite.CHACHA20_POLY1305];
  const groups = options.groups ?? [Group.X25519_MLKEM1024, Group.P384_MLKEM1024, Group.X25519_MLKEM768];
  const psks = options.psks ?? [];
  const requirePsk = options.requirePsk ?? psks.length > 0;

  const chFrame = await nextFrame(frames, ms, 'the ClientHello');
  if (!Object.values(FrameType).includes(chFrame.type as never)) {
    socket.destroy(); // §2: no reply to a peer that does not speak the protocol
    throw new Error('protocol mismatch');
  }
  if (chFrame.type !== FrameType.CLIENT_HELLO) throw new V2Error(AlertCode.UNEXPECTED_MESSAGE, 'first frame is no ClientHello');
  const { hello: ch, bindersOffset } = decodeClientHello(chFrame.payload);
  if (!ch.versions.includes(VERSION)) throw new V2Error(AlertCode.UNSUPPORTED_VERSION, 'no 0x0200 in supported_versions');
  const suite = ch.suites.find((s) => suites.includes(s));
  if (suite === undefined) throw new V2Error(AlertCode.UNSUPPORTED_CIPHER, 'no common suite');
  if (!ch.groups.includes(ch.keyShareGroup) || !groups.includes(ch.keyShareGroup)) throw new V2Error(AlertCode.HANDSHAKE_FAILURE, 'key share group not acceptable');
  if (ch.keyShare.length !== clientShareSize(ch.keyShareGroup)) malformed('client key share of the wrong size');

  // §7: the first identity we know; its binder must verify.
  let selected = 0xffff;
  let psk: ExternalPsk | undefined;
  const truncated = chFrame.bytes.subarray(0, 5 + bindersOffset);
  for (const [i, offered] of ch.pskIdentities.entries()) {
    const ticket = options.tickets?.get(offered.identity.toString('hex'));
    const known = ticket
      ? { identity: offered.identity, key: ticketPsk(ticket.resumptionSecret, ticket.nonce), kind: 'res' as const }
      : psks.map((p) => ({ ...p, kind: 'ext' as const })).find((p) => p.identity.equals(offered.identity));
    if (!known) continue;
    checkMac(verifyData(binderKey(earlySecret(known.key), known.kind), truncated), ch.binders[i] ?? EMPTY, AlertCode.PSK_MISMATCH, 'the PSK binder');
    if (ticket) {
      ticket.ageSkewMs = ((offered.obfuscatedTicketAge - ticket.ageAdd + 2 ** 32) % 2 ** 32) - (Date.now() - ticket.issuedAt);
      options.tickets?.delete(offered.identity.toString('hex')); // single use
    }
    selected = i;
    psk = known;
    break;
  }
  if (requirePsk && !psk) throw new V2Error(AlertCode.PSK_MISMATCH, 'no usable PSK');

  const { share, k } = respond(ch.keyShareGroup, ch.keyShare);
  const sh: ServerHello = { major: 2, minor: 0, random: randomBytes(32), suite, group: ch.keyShareGroup, keyShare: share, selectedPsk: selected, extensions: [] };
  options.tamper?.serverHello?.(sh);
  const shBytes = encodeServerHello(sh);
  const transcript: Buffer[] = [chFrame.bytes, shBytes];
  const { hs, cHs, sHs } = handshakeSecrets(psk?.key, k, Buffer.concat(transcript));
  const send = new RecordKeys(suite, sHs, 1);
  const recv = new RecordKeys(suite, cHs, 1);
  const padding = options.padding ?? 0;
  const ee = handshakeMessage(HandshakeType.ENCRYPTED_EXTENSIONS, encodeExtensions(options.tamper?.encryptedExtensions ?? []));
  transcript.push(ee);
  const serverVerify = verifyData(sHs, Buffer.concat(transcript));
  const sf = handshakeMessage(HandshakeType.FINISHED, options.tamper?.finished?.(serverVerify) ?? serverVerify);
  transcript.push(sf);
  socket.write(Buffer.concat([shBytes, sealRecord(send, Inner.HANDSHAKE, ee, padding), sealRecord(send, Inner.HANDSHAKE, sf, padding)]));

  const throughSf = Buffer.concat(transcript);
  const app = applicationSecrets(hs, throughSf);
  const finishedFailure = psk ? AlertCode.PSK_MISMATCH : AlertCode.HANDSHAKE_FAILURE;
  const cfFrame = await nextFrame(frames, ms, "the client's Finished");
  if (cfFrame.type === FrameType.ALERT) throw decodePlainAlert(cfFrame.payload);
  const cf = openHandshakeRecord(recv, cfFrame, finishedFailure);
  checkMac(verifyData(cHs, throughSf), decodeHandshakeMessage(cf, HandshakeType.FINISHED), finishedFailure, "the client's Finished");
  transcript.push(cf);
  const session = establish('server', socket, frames, { suite, group: ch.keyShareGroup, selectedPsk: selected, padding }, app, transcript);
  if (options.tickets) session.issueTicket(options.tickets);
  return session;
}

/** A TCP server on 127.0.0.1 that runs the independent server handshake on each connection. */
export class IndependentServer {
  private readonly outcomes: Promise<IndependentSession>[] = [];
  private readonly sockets = new Set<Socket>();
  private wake: (() => void) | undefined;

  private constructor(
    private readonly server: Server,
    readonly options: ServerOptions,
  ) {}

  static async start(options: ServerOptions = {}): Promise<IndependentServer> {
    let self: IndependentServer | undefined;
    const server = createServer((socket) => self!.accept(socket));
    self = new IndependentServer(server, options);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return self;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('error', () => undefined);
    socket.once('close', () => this.sockets.delete(socket));
    const outcome = serverHandshake(socket, this.options);
    outcome.catch(() => undefined);
    this.outcomes.push(outcome);
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /** The outcome of the next connection's handshake (in order of arrival). */
  async next(ms = 15_000): Promise<IndependentSession> {
    const deadline = Date.now() + ms;
    while (this.outcomes.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for a connection');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return this.outcomes.shift()!;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

// ---- raw probes (conformance tests) -------------------------------------------------------------------------

/** A valid ClientHello (fresh key share unless given) with `overrides` applied, as frame bytes. */
export function clientHelloWith(overrides: Partial<ClientHello> = {}): Buffer {
  const group = overrides.keyShareGroup ?? Group.X25519_MLKEM1024;
  return encodeClientHello({
    major: 2,
    minor: 0,
    random: randomBytes(32),
    versions: [VERSION],
    suites: [Suite.AES_256_GCM],
    groups: [group],
    keyShareGroup: group,
    pskIdentities: [],
    extensions: [],
    binders: [],
    ...overrides,
    keyShare: overrides.keyShare ?? initiate(group).share,
  });
}

/** Sends `bytes` to 127.0.0.1:`port` and returns the first frame of the reply, or null if the server closed without one. */
export async function firstReply(port: number, bytes: Buffer, ms = 10_000): Promise<Frame | null> {
  const socket = connect({ host: '127.0.0.1', port });
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  const frames = new FrameStream(socket);
  socket.write(bytes);
  try {
    return await frames.next(ms);
  } finally {
    socket.destroy();
  }
}
