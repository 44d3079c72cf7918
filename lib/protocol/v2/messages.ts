/**
 * Protocol v2's hellos (docs/PROTOCOL.md §3): encoders and bound-checked
 * decoders. Both travel in v1's plaintext frame (`type ‖ BE32 length ‖ payload`) with version
 * bytes `02 00`, so a v1-only peer refuses them by version instead of misreading them.
 * Every length is checked against what remains; a decoder never reads past its input and refuses
 * trailing bytes (a v2 hello has no room for unparsed data: all of it is in the transcript).
 */
import { ErrorCode, invalidArgument, qtError } from '../../errors.js';
import { MessageType } from '../constants.js';
import { encodeFrame } from '../frame.js';

/** Version bytes of a v2 hello. */
export const V2_VERSION = Object.freeze({ major: 2, minor: 0 });
/** The version number in supported_versions lists and the combiner: 0x0200. */
export const V2_VERSION_NUMBER = 0x0200;
export const HELLO_RANDOM_SIZE = 32;
/** "No PSK selected" in ServerHello. */
export const NO_PSK = 0xffff;

/** An extension: type and opaque data (issue 10's identity modes travel here). */
export interface Extension {
  type: number;
  data: Buffer;
}

export interface PskIdentity {
  identity: Buffer;
  obfuscatedTicketAge: number;
}

export interface ClientHelloV2 {
  random: Buffer;
  /** Versions the client supports (BE16 each, 0x0200 = v2): in the transcript, so no downgrade goes unnoticed. */
  supportedVersions: number[];
  cipherSuites: number[];
  groups: number[];
  keyShareGroup: number;
  keyShare: Buffer;
  pskIdentities: PskIdentity[];
  extensions: Extension[];
  /** One binder per PSK identity, over the ClientHello up to the binders (see {@link truncatedClientHello}). */
  binders: Buffer[];
}

export interface ServerHelloV2 {
  random: Buffer;
  cipherSuite: number;
  group: number;
  keyShare: Buffer;
  /** Index of the accepted PSK identity, or NO_PSK. */
  selectedPsk: number;
  extensions: Extension[];
}

function malformed(what: string): never {
  throw qtError(ErrorCode.MALFORMED_MESSAGE, `malformed ${what}`);
}

/** Reads a payload front to back; any overrun is a malformed message. */
class Reader {
  #offset = 0;
  constructor(private readonly buf: Buffer, private readonly what: string) {}
  bytes(n: number): Buffer {
    if (n > this.buf.length - this.#offset) malformed(this.what);
    const out = this.buf.subarray(this.#offset, this.#offset + n);
    this.#offset += n;
    return out;
  }
  // The integers are read in place (no subarray per field).
  #advance(n: number): number {
    const at = this.#offset;
    if (n > this.buf.length - at) malformed(this.what);
    this.#offset = at + n;
    return at;
  }
  u8(): number {
    return this.buf[this.#advance(1)]!;
  }
  u16(): number {
    return this.buf.readUInt16BE(this.#advance(2));
  }
  u32(): number {
    return this.buf.readUInt32BE(this.#advance(4));
  }
  vec8(): Buffer {
    return this.bytes(this.u8());
  }
  vec16(): Buffer {
    return this.bytes(this.u16());
  }
  /** A vec16 holding a list, each item read by `item` from its own reader. */
  list<T>(lengthBytes: 1 | 2, item: (r: Reader) => T): T[] {
    const body = new Reader(lengthBytes === 1 ? this.vec8() : this.vec16(), this.what);
    const out: T[] = [];
    while (!body.done) out.push(item(body));
    return out;
  }
  get done(): boolean {
    return this.#offset === this.buf.length;
  }
  end(): void {
    if (!this.done) malformed(`${this.what} (trailing bytes)`);
  }
}

/**
 * Builds payloads with checked length prefixes, into one buffer that grows as needed (a hello is
 * written with a handful of allocations, not one per field).
 */
class Writer {
  #buf = Buffer.allocUnsafe(256);
  #length = 0;

  /** Room for n more bytes; returns where they go. */
  #reserve(n: number): number {
    const at = this.#length;
    if (at + n > this.#buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(2 * this.#buf.length, at + n));
      this.#buf.copy(grown, 0, 0, at);
      this.#buf = grown;
    }
    this.#length = at + n;
    return at;
  }
  raw(b: Uint8Array): this {
    const at = this.#reserve(b.length); // first: it may replace the buffer
    this.#buf.set(b, at);
    return this;
  }
  u8(n: number): this {
    if (!(n >= 0 && n <= 0xff)) invalidArgument(`${n} does not fit 8 bits`);
    const at = this.#reserve(1);
    this.#buf[at] = n;
    return this;
  }
  u16(n: number): this {
    if (!(n >= 0 && n <= 0xffff)) invalidArgument(`${n} does not fit 16 bits`);
    const at = this.#reserve(2);
    this.#buf.writeUInt16BE(n, at);
    return this;
  }
  u32(n: number): this {
    const at = this.#reserve(4);
    this.#buf.writeUInt32BE(n, at);
    return this;
  }
  vec(lengthBytes: 1 | 2, body: Uint8Array): this {
    if (body.length >= 2 ** (8 * lengthBytes)) invalidArgument(`a field of ${body.length} bytes does not fit a ${lengthBytes}-byte length`);
    return (lengthBytes === 1 ? this.u8(body.length) : this.u16(body.length)).raw(body);
  }
  list<T>(lengthBytes: 1 | 2, items: readonly T[], item: (w: Writer, x: T) => void): this {
    const w = new Writer();
    for (const x of items) item(w, x);
    return this.vec(lengthBytes, w.bytes());
  }
  /** What was written (a view of the writer's buffer). */
  bytes(): Buffer {
    return this.#buf.subarray(0, this.#length);
  }
}

function u16List(w: Writer, items: readonly number[]): void {
  w.list(2, items, (x, n) => x.u16(n));
}

function writeExtensions(w: Writer, extensions: readonly Extension[]): void {
  w.list(2, extensions, (x, e) => x.u16(e.type).vec(2, e.data));
}

function readExtensions(r: Reader): Extension[] {
  const extensions = r.list(2, (x) => ({ type: x.u16(), data: x.vec16() }));
  if (new Set(extensions.map((e) => e.type)).size !== extensions.length) malformed('extensions (a type twice)');
  return extensions;
}

function clientHelloBody(hello: ClientHelloV2): Writer {
  if (hello.random.length !== HELLO_RANDOM_SIZE) invalidArgument('random must be 32 bytes');
  const w = new Writer().u8(V2_VERSION.major).u8(V2_VERSION.minor).raw(hello.random);
  w.list(1, hello.supportedVersions, (x, v) => x.u16(v));
  u16List(w, hello.cipherSuites);
  u16List(w, hello.groups);
  w.u16(hello.keyShareGroup).vec(2, hello.keyShare);
  w.list(2, hello.pskIdentities, (x, p) => x.vec(2, p.identity).u32(p.obfuscatedTicketAge));
  writeExtensions(w, hello.extensions);
  return w;
}

/**
 * The ClientHello frame up to (not including) its binders, with the frame length of the whole
 * message: what each PSK binder's HMAC covers (as TLS 1.3's truncated ClientHello).
 */
export function truncatedClientHello(hello: ClientHelloV2): Buffer {
  const body = clientHelloBody(hello).bytes();
  const binders = new Writer().list(2, hello.binders, (x, b) => x.vec(1, b)).bytes();
  const frame = encodeFrame(MessageType.CLIENT_HELLO, Buffer.concat([body, binders]));
  return frame.subarray(0, frame.length - binders.length);
}

export function encodeClientHelloV2(hello: ClientHelloV2): Buffer {
  if (hello.binders.length !== hello.pskIdentities.length) invalidArgument('one binder per PSK identity');
  const w = clientHelloBody(hello);
  w.list(2, hello.binders, (x, b) => x.vec(1, b));
  return encodeFrame(MessageType.CLIENT_HELLO, w.bytes());
}

/** Decodes a v2 ClientHello payload (the frame's payload, version bytes included). */
export function decodeClientHelloV2(payload: Buffer): ClientHelloV2 {
  const r = new Reader(payload, 'ClientHello');
  if (r.u8() !== V2_VERSION.major) malformed('ClientHello (not version 2)');
  r.u8(); // minor: any minor version of 2 is compatible
  const random = r.bytes(HELLO_RANDOM_SIZE);
  const supportedVersions = r.list(1, (x) => x.u16());
  const cipherSuites = r.list(2, (x) => x.u16());
  const groups = r.list(2, (x) => x.u16());
  if (supportedVersions.length === 0 || cipherSuites.length === 0 || groups.length === 0) malformed('ClientHello (an empty offer)');
  const keyShareGroup = r.u16();
  const keyShare = r.vec16();
  const pskIdentities = r.list(2, (x) => ({ identity: x.vec16(), obfuscatedTicketAge: x.u32() }));
  const extensions = readExtensions(r);
  const binders = r.list(2, (x) => x.vec8());
  r.end();
  if (binders.length !== pskIdentities.length) malformed('ClientHello (binders do not match the PSK identities)');
  return { random, supportedVersions, cipherSuites, groups, keyShareGroup, keyShare, pskIdentities, extensions, binders };
}

export function encodeServerHelloV2(hello: ServerHelloV2): Buffer {
  if (hello.random.length !== HELLO_RANDOM_SIZE) invalidArgument('random must be 32 bytes');
  const w = new Writer().u8(V2_VERSION.major).u8(V2_VERSION.minor).raw(hello.random);
  w.u16(hello.cipherSuite).u16(hello.group).vec(2, hello.keyShare).u16(hello.selectedPsk);
  writeExtensions(w, hello.extensions);
  return encodeFrame(MessageType.SERVER_HELLO, w.bytes());
}

export function decodeServerHelloV2(payload: Buffer): ServerHelloV2 {
  const r = new Reader(payload, 'ServerHello');
  if (r.u8() !== V2_VERSION.major) malformed('ServerHello (not version 2)');
  r.u8();
  const hello: ServerHelloV2 = {
    random: r.bytes(HELLO_RANDOM_SIZE),
    cipherSuite: r.u16(),
    group: r.u16(),
    keyShare: r.vec16(),
    selectedPsk: r.u16(),
    extensions: readExtensions(r),
  };
  r.end();
  return hello;
}

/** An extension list alone, `vec16(extensions)`: the body of EncryptedExtensions (§3.3). */
export function encodeExtensionList(extensions: readonly Extension[]): Buffer {
  const w = new Writer();
  writeExtensions(w, extensions);
  return w.bytes();
}

export function decodeExtensionList(body: Buffer, what: string): Extension[] {
  const r = new Reader(body, what);
  const extensions = readExtensions(r);
  r.end();
  return extensions;
}
