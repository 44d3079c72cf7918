/**
 * Codecs of the handshake and control messages (PROTOCOL.md §7.2, §7.3, §7.7, §8.6, §8.7, §9.2).
 * Decoders bound-check every length and count against the bytes actually present (the reference
 * does not, §14 #13) and throw ERR_QT_MALFORMED_MESSAGE; they never read past their input.
 */
import { ErrorCode, qtError } from '../errors.js';
import { CHKEM_SIZES } from '../crypto/chkem.js';
import {
  FINISHED_PLAINTEXT_SIZE,
  FRAME_HEADER_SIZE,
  MAX_SESSION_ID_SIZE,
  MessageType,
  PROTOCOL_VERSION,
  RANDOM_SIZE,
  REKEY_PAYLOAD_SIZE,
} from './constants.js';
import { encodeFrame } from './frame.js';

export interface ProtocolVersion {
  major: number;
  minor: number;
}

export interface ClientHello {
  version: ProtocolVersion;
  random: Buffer;
  /** Empty for a new session; a session ticket when resuming. */
  sessionId: Buffer;
  /** CH-KEM public key, 1600 bytes. */
  publicKey: Buffer;
  /** Offered suites in preference order (unknown IDs included, as received). */
  cipherSuites: number[];
}

export interface ServerHello {
  version: ProtocolVersion;
  random: Buffer;
  sessionId: Buffer;
  /** CH-KEM ciphertext, 1600 bytes. */
  ciphertext: Buffer;
  cipherSuite: number;
}

function malformed(what: string): never {
  throw qtError(ErrorCode.MALFORMED_MESSAGE, `malformed ${what}`);
}

/** A cursor that refuses to read past the end of its buffer. */
class Reader {
  private offset = 0;
  constructor(private readonly buf: Buffer, private readonly what: string) {}
  bytes(n: number): Buffer {
    if (n > this.buf.length - this.offset) malformed(this.what);
    const out = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }
  u8(): number {
    return this.bytes(1)[0]!;
  }
  u16(): number {
    return this.bytes(2).readUInt16BE(0);
  }
}

function checkSessionId(sessionId: Uint8Array): void {
  if (sessionId.length > MAX_SESSION_ID_SIZE) throw qtError(ErrorCode.INVALID_ARGUMENT, 'session ID longer than 255 bytes');
}

/** ClientHello frame: version(2) ‖ random(32) ‖ sid_len(1) ‖ sid ‖ public key(1600) ‖ BE16 count ‖ suites. */
export function encodeClientHello(hello: ClientHello): Buffer {
  checkSessionId(hello.sessionId);
  const suites = Buffer.alloc(2 + 2 * hello.cipherSuites.length);
  suites.writeUInt16BE(hello.cipherSuites.length, 0);
  hello.cipherSuites.forEach((s, i) => suites.writeUInt16BE(s, 2 + 2 * i));
  return encodeFrame(
    MessageType.CLIENT_HELLO,
    Buffer.concat([
      Buffer.from([hello.version.major, hello.version.minor]),
      hello.random,
      Buffer.from([hello.sessionId.length]),
      hello.sessionId,
      hello.publicKey,
      suites,
    ]),
  );
}

/** Decodes a ClientHello payload. Trailing bytes after the suite list are ignored (they stay in the transcript). */
export function decodeClientHello(payload: Buffer): ClientHello {
  const r = new Reader(payload, 'ClientHello');
  const version = { major: r.u8(), minor: r.u8() };
  const random = r.bytes(RANDOM_SIZE);
  const sessionId = r.bytes(r.u8());
  const publicKey = r.bytes(CHKEM_SIZES.publicKey);
  const count = r.u16();
  if (count === 0) malformed('ClientHello (no cipher suites)');
  const cipherSuites: number[] = [];
  for (let i = 0; i < count; i++) cipherSuites.push(r.u16());
  return { version, random, sessionId, publicKey, cipherSuites };
}

/** ServerHello frame: version(2) ‖ random(32) ‖ sid_len(1) ‖ sid ‖ ciphertext(1600) ‖ BE16 suite. */
export function encodeServerHello(hello: ServerHello): Buffer {
  checkSessionId(hello.sessionId);
  const suite = Buffer.alloc(2);
  suite.writeUInt16BE(hello.cipherSuite, 0);
  return encodeFrame(
    MessageType.SERVER_HELLO,
    Buffer.concat([
      Buffer.from([hello.version.major, hello.version.minor]),
      hello.random,
      Buffer.from([hello.sessionId.length]),
      hello.sessionId,
      hello.ciphertext,
      suite,
    ]),
  );
}

export function decodeServerHello(payload: Buffer): ServerHello {
  const r = new Reader(payload, 'ServerHello');
  const version = { major: r.u8(), minor: r.u8() };
  const random = r.bytes(RANDOM_SIZE);
  const sessionId = r.bytes(r.u8());
  const ciphertext = r.bytes(CHKEM_SIZES.ciphertext);
  const cipherSuite = r.u16();
  return { version, random, sessionId, ciphertext, cipherSuite };
}

/** Versions are compatible when their major numbers match (§7.4). */
export function isCompatibleVersion(v: ProtocolVersion): boolean {
  return v.major === PROTOCOL_VERSION.major;
}

/** Finished inner plaintext: type ‖ BE32(32) ‖ verify_data (37 bytes). */
export function encodeFinished(type: typeof MessageType.CLIENT_FINISHED | typeof MessageType.SERVER_FINISHED, verifyData: Uint8Array): Buffer {
  if (verifyData.length !== 32) throw qtError(ErrorCode.INVALID_ARGUMENT, 'verify_data must be 32 bytes');
  return encodeFrame(type, verifyData);
}

/**
 * The verify_data of a decrypted Finished. We require the expected type byte (the reference
 * accepts 0x03 or 0x04 either way; every v1 sender writes the right one). Bytes past 37 are
 * ignored, as in the reference.
 */
export function decodeFinished(plaintext: Buffer, expectedType: number): Buffer {
  if (plaintext.length < FINISHED_PLAINTEXT_SIZE || plaintext[0] !== expectedType) malformed('Finished');
  return plaintext.subarray(FRAME_HEADER_SIZE, FINISHED_PLAINTEXT_SIZE);
}

/** Alert levels and codes (§8.6). */
export const AlertLevel = Object.freeze({ WARNING: 0x01, FATAL: 0x02 });
export const AlertCode = Object.freeze({
  UNEXPECTED_MESSAGE: 0x01,
  BAD_CIPHERTEXT: 0x02,
  HANDSHAKE_FAILURE: 0x03,
  UNSUPPORTED_VERSION: 0x04,
  UNSUPPORTED_CIPHER: 0x05,
  DECRYPTION_FAILED: 0x06,
  INTERNAL_ERROR: 0x07,
  CLOSE_NOTIFY: 0x08,
});

export interface Alert {
  level: number;
  code: number;
  description: string;
}

/** The only descriptions we send: fixed text, never error details (§7.9, §8.6). */
export const AlertDescription = Object.freeze({
  HANDSHAKE_FAILED: 'handshake failed',
  CONNECTION_CLOSED: 'connection closed',
  BAD_RECORD: 'bad record',
  UNEXPECTED_MESSAGE: 'unexpected message',
});

/** Alert frame: level ‖ code ‖ n ‖ description (n ≤ 255; longer text is truncated as in the reference). */
export function encodeAlert(alert: Alert): Buffer {
  const desc = Buffer.from(alert.description, 'utf8').subarray(0, 255);
  return encodeFrame(MessageType.ALERT, Buffer.concat([Buffer.from([alert.level, alert.code, desc.length]), desc]));
}

/** Decodes an Alert payload; null when it is too short or its description overruns the frame. */
export function decodeAlert(payload: Buffer): Alert | null {
  if (payload.length < 3 || payload.length < 3 + payload[2]!) return null;
  return { level: payload[0]!, code: payload[1]!, description: payload.subarray(3, 3 + payload[2]!).toString('latin1') };
}

/** The two alerts the protocol sends, byte for byte as in Appendix A.6. */
export const HANDSHAKE_FAILURE_ALERT = encodeAlert({ level: AlertLevel.FATAL, code: AlertCode.HANDSHAKE_FAILURE, description: AlertDescription.HANDSHAKE_FAILED });
export const CLOSE_NOTIFY_ALERT = encodeAlert({ level: AlertLevel.WARNING, code: AlertCode.CLOSE_NOTIFY, description: AlertDescription.CONNECTION_CLOSED });
export const PING_FRAME = encodeFrame(MessageType.PING);
export const PONG_FRAME = encodeFrame(MessageType.PONG);
export const CLOSE_FRAME = encodeFrame(MessageType.CLOSE);

/** Rekey inner plaintext: CH-KEM public key or ciphertext (1600) ‖ BE64 activation seq (§9.2). */
export function encodeRekeyPayload(key: Uint8Array, activationSeq: bigint): Buffer {
  if (key.length !== CHKEM_SIZES.publicKey) throw qtError(ErrorCode.INVALID_ARGUMENT, 'rekey key must be 1600 bytes');
  const out = Buffer.allocUnsafe(REKEY_PAYLOAD_SIZE);
  out.set(key, 0);
  out.writeBigUInt64BE(activationSeq, CHKEM_SIZES.publicKey);
  return out;
}

/** Decodes a rekey payload; extra bytes are ignored as in the reference. */
export function decodeRekeyPayload(plaintext: Buffer): { key: Buffer; activationSeq: bigint } {
  if (plaintext.length < REKEY_PAYLOAD_SIZE) malformed('Rekey payload');
  return { key: plaintext.subarray(0, CHKEM_SIZES.publicKey), activationSeq: plaintext.readBigUInt64BE(CHKEM_SIZES.publicKey) };
}
