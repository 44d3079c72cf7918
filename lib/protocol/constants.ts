/**
 * Wire constants of protocol v1 (docs/PROTOCOL.md, shared reference PROTOCOL.md §6-§11), each
 * named once. Limits we choose ourselves (timeouts, replay window) are marked as ours.
 */

/** Message type bytes (§6.3). */
export const MessageType = Object.freeze({
  CLIENT_HELLO: 0x01,
  SERVER_HELLO: 0x02,
  CLIENT_FINISHED: 0x03,
  SERVER_FINISHED: 0x04,
  DATA: 0x10,
  REKEY: 0x11,
  PING: 0x12,
  PONG: 0x13,
  CLOSE: 0x14,
  ALERT: 0xf0,
});
export type MessageTypeValue = (typeof MessageType)[keyof typeof MessageType];

/** Diagnostic names of the message types ("Unknown" for any other value). */
export function messageTypeName(type: number): string {
  const names: Record<number, string> = {
    0x01: 'ClientHello', 0x02: 'ServerHello', 0x03: 'ClientFinished', 0x04: 'ServerFinished', 0x10: 'Data',
    0x11: 'Rekey', 0x12: 'Ping', 0x13: 'Pong', 0x14: 'Close', 0xf0: 'Alert',
  };
  return names[type] ?? 'Unknown';
}

/** Cipher suites (§7.4). Their IDs are also the AEAD suite IDs of lib/crypto. */
export const CipherSuite = Object.freeze({ AES_256_GCM: 0x0001, CHACHA20_POLY1305: 0x0002 });
export type CipherSuiteId = (typeof CipherSuite)[keyof typeof CipherSuite];

/** Protocol version carried in the hellos: major 1, minor 0 (the bytes `01 00`). */
export const PROTOCOL_VERSION = Object.freeze({ major: 1, minor: 0 });

/** Frame header: type (1) + BE32 length (4). */
export const FRAME_HEADER_SIZE = 5;
/** Encrypted handshake record header: BE32 length only. */
export const HANDSHAKE_RECORD_HEADER_SIZE = 4;
/** Largest frame payload and largest encrypted handshake record (§6.1, §6.2). */
export const MAX_MESSAGE_SIZE = 65536;
/** Random values in the hellos. */
export const RANDOM_SIZE = 32;
/** A new session's ID (the responder's random 16 bytes). */
export const SESSION_ID_SIZE = 16;
/** The wire's session_id_len is one byte. */
export const MAX_SESSION_ID_SIZE = 255;
/** AEAD nonce and tag; the sealed form is nonce ‖ ciphertext ‖ tag. */
export const NONCE_SIZE = 12;
export const TAG_SIZE = 16;
export const AEAD_OVERHEAD = NONCE_SIZE + TAG_SIZE;
/** Smallest AEAD output a v1 peer opens: 29 bytes (so it cannot open an empty plaintext). */
export const MIN_SEALED_SIZE = AEAD_OVERHEAD + 1;
/** Sequence number in Data and Rekey records (BE64, also the whole AD). */
export const SEQ_SIZE = 8;
/** Data/Rekey record overhead on the wire: header 5 + seq 8 + nonce 12 + tag 16. */
export const RECORD_OVERHEAD = FRAME_HEADER_SIZE + SEQ_SIZE + AEAD_OVERHEAD;
/**
 * Largest Data plaintext we put in one record: 65,479. The reference's encoder refuses AEAD
 * output over 65,507 bytes (§8.1), so a larger record could be refused by a v1 peer's tooling.
 */
export const MAX_RECORD_PLAINTEXT = 65_479;
/** Finished: inner message type(1) ‖ BE32(32) ‖ verify_data(32). */
export const FINISHED_PLAINTEXT_SIZE = FRAME_HEADER_SIZE + 32;
/** Rekey inner plaintext: CH-KEM public key or ciphertext (1600) ‖ BE64 activation seq. */
export const REKEY_PAYLOAD_SIZE = 1600 + 8;
/** The initiator activates new keys this many sequence numbers after its request (§9.2). */
export const REKEY_ACTIVATION_OFFSET = 16n;

/** Per-key nonce budget: seal fails at 2^28 (§8.2); rekey is wanted from 90 % of it (§9.1). */
export const NONCE_LIMIT = 2 ** 28;
export const REKEY_NONCE_THRESHOLD = Math.floor((NONCE_LIMIT * 9) / 10);
/** Rekey triggers of §9.1 (ours reset on every activation). */
export const REKEY_BYTES_THRESHOLD = 2 ** 30;
export const REKEY_RECORDS_THRESHOLD = 2 ** 28;
export const REKEY_INTERVAL_MS = 3600 * 1000;

/** Ours: replay window size in sequence numbers (the reference uses 64; WireGuard 8128). */
export const REPLAY_WINDOW_SIZE = 8192;
/** Ours: default handshake timeout (the reference has none). */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 30_000;
/** Ticket lifetime default (§10.3). */
export const DEFAULT_TICKET_LIFETIME_SECONDS = 24 * 3600;
/** Ticket layout (§10.1-10.2): plaintext version(1) ‖ suite(2) ‖ master(32) ‖ created_at(8). */
export const TICKET_PLAINTEXT_SIZE = 43;
export const TICKET_SIZE = NONCE_SIZE + TICKET_PLAINTEXT_SIZE + TAG_SIZE;
export const TICKET_VERSION = 1;
