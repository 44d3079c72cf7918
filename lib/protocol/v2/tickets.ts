/**
 * Protocol v2 resumption tickets (docs/PROTOCOL.md §7, §10, tickets, anti-replay"):
 * the NewSessionTicket message, the ticket PSK, the server's {@link TicketIssuer} and the
 * client's {@link ClientTicketStore}. Pure: no sockets, no timers; every clock is injectable.
 *
 * NewSessionTicket, the content of an encrypted record of inner type 0x09 after the handshake:
 *
 * ```
 * BE32(lifetime_seconds) ‖ BE32(age_add) ‖ vec8(nonce) ‖ vec16(ticket) ‖ vec16(extensions)
 * extensions = (BE16(type) ‖ vec16(data))…, each type at most once
 * PSK        = HKDF-Expand-Label(resumption, "resumption", nonce, 48)     -- "qtun2 resumption"
 * ```
 *
 * The ticket is opaque to the client. Ours is
 *
 * ```
 * ticket    = keyId(8) ‖ aeadNonce(12) ‖ AES-256-GCM(ticketKey, aeadNonce, AD, plaintext)
 * keyId     = HKDF-Expand-Label(ticketKey, "ticket key id", "", 8)      -- public fingerprint
 * AD        = "qtun2 ticket" ‖ keyId ‖ vec16(serverIdentity)
 * plaintext = BE16(0x0200) ‖ BE16(suite) ‖ BE16(group) ‖ BE64(issuedAtMs) ‖ BE32(lifetime)
 *           ‖ BE32(ageAdd) ‖ ticketId(16) ‖ vec8(peerIdentity) ‖ PSK(48)
 * ```
 *
 * The PSK is last, so its offset follows from the ticket's length and the addon can open the
 * ticket straight into a Secret: it never enters the JS heap, neither when sealed nor when opened.
 * The key ID (HMAC-SHA-384 under the ticket key, like every v2 derivation) picks the key without
 * trial decryption and, in the AD, binds it. AES-256-GCM with a random 96-bit IV is SP 800-38D
 * §8.2.2's construction: at most 2^32 tickets per key, far beyond any sane rotation period.
 */
import type { Secret } from '../../native.js';
import { ErrorCode, QuantumTunnelError, invalidArgument, qtError } from '../../errors.js';
import { AEAD_SIZES, AeadSuite, createAead, type AeadContext } from '../../crypto/aead.js';
import { checkInteger } from '../../crypto/bytes.js';
import { hashLength } from '../../crypto/hkdf.js';
import { randomBytes, randomSecret } from '../../crypto/random.js';
import { destroyAll, isSecret } from '../../crypto/secret.js';
import { type AntiReplayStore, MemoryAntiReplayStore } from '../antiReplay.js';
import { expandLabel, expandLabelPublic, V2_SCHEDULE } from './keySchedule.js';
import { type Extension, V2_VERSION_NUMBER } from './messages.js';

/** Longest ticket lifetime, 7 days (RFC 8446 §4.6.1): a longer one is a malformed message. */
export const MAX_TICKET_LIFETIME_SECONDS = 604_800;
/**
 * Default ticket lifetime: 2 hours, OpenSSL's default. Short enough that the anti-replay store
 * holds few live entries (its size is the resumption rate times the lifetime), long enough for
 * reconnects after sleep or a network change. Resumption always runs a fresh KEM exchange too.
 */
export const DEFAULT_TICKET_LIFETIME_SECONDS = 7200;
/** PSK length: HashLen of SHA-384. */
export const TICKET_PSK_SIZE = hashLength(V2_SCHEDULE.digest);
/** Ticket keys are AES-256-GCM keys. */
export const TICKET_KEY_SIZE = 32;
/** Length of the public key ID at the front of every ticket. */
export const TICKET_KEY_ID_SIZE = 8;
/** Length of the random ticket ID, the anti-replay store's key. */
export const TICKET_ID_SIZE = 16;
/** Length of the nonce an issuer puts in NewSessionTicket (the wire allows 0 to 255). */
export const TICKET_NONCE_SIZE = 8;
/** First bytes of a ticket's AD. */
export const TICKET_AAD_LABEL = 'qtun2 ticket';
/** Label of the key ID (with the "qtun2 " prefix on the wire: "qtun2 ticket key id"). */
export const TICKET_KEY_ID_LABEL = 'ticket key id';
/** Longest peer identity a ticket carries (vec8): a name or a fingerprint, not a certificate. */
export const MAX_TICKET_PEER_IDENTITY = 255;
/** How far in the future a ticket's issuedAt may be (clocks of servers sharing a key). */
export const TICKET_CLOCK_SKEW_MS = 60_000;
/**
 * How far the client's ticket age may be from the server's (ms). The two ages run from the
 * issue and the receipt of the ticket on two clocks, so they differ by the one-way delay, the
 * drift of the two clocks over the ticket's age (0.7 s at 100 ppm over the default 2 hours) and,
 * when another server of the cluster opens the ticket, the offset between the two servers'
 * clocks: servers sharing a ticket key must keep their clocks well within 10 s of each other.
 * A ticket issued more than this far in the future therefore fails the age check too.
 */
export const TICKET_AGE_TOLERANCE_MS = 10_000;

const AD_LABEL = Buffer.from(TICKET_AAD_LABEL, 'ascii');
const TAG_SIZE = AEAD_SIZES.tag;
const AEAD_NONCE_SIZE = AEAD_SIZES.nonce;
const HEADER_SIZE = TICKET_KEY_ID_SIZE + AEAD_NONCE_SIZE;
// Plaintext offsets.
const SUITE_AT = 2;
const GROUP_AT = 4;
const ISSUED_AT = 6;
const LIFETIME_AT = 14;
const AGE_ADD_AT = 18;
const TICKET_ID_AT = 22;
const PEER_AT = TICKET_ID_AT + TICKET_ID_SIZE;
const MIN_PLAINTEXT = PEER_AT + 1 + TICKET_PSK_SIZE;
const MIN_TICKET = HEADER_SIZE + MIN_PLAINTEXT + TAG_SIZE;
const MAX_TICKET = MIN_TICKET + MAX_TICKET_PEER_IDENTITY;
const U32 = 2 ** 32;

// ---------------------------------------------------------------------------------------------
// NewSessionTicket

/** The NewSessionTicket message. */
export interface NewSessionTicket {
  /** Seconds the client may keep the ticket, 0 to {@link MAX_TICKET_LIFETIME_SECONDS} (0: discard it). */
  lifetimeSeconds: number;
  /** Added (mod 2^32) to the ticket age in ms, so an observer cannot link the ticket to its use. */
  ageAdd: number;
  /** Makes each ticket's PSK distinct (0 to 255 bytes). */
  nonce: Buffer;
  /** The opaque ticket, 1 to 65535 bytes. */
  ticket: Buffer;
  extensions: Extension[];
}

function malformed(what: string): never {
  throw qtError(ErrorCode.MALFORMED_MESSAGE, `malformed NewSessionTicket (${what})`);
}

function vec(lengthBytes: 1 | 2, body: Uint8Array, name: string): Buffer {
  if (!(body instanceof Uint8Array)) invalidArgument(`${name} must be a Uint8Array`);
  if (body.length >= 2 ** (8 * lengthBytes)) invalidArgument(`${name} must be under ${2 ** (8 * lengthBytes)} bytes`);
  const head = Buffer.alloc(lengthBytes);
  head.writeUIntBE(body.length, 0, lengthBytes);
  return Buffer.concat([head, body]);
}

/**
 * Encodes a NewSessionTicket; throws ERR_QT_INVALID_ARGUMENT for a field the wire cannot carry
 * or the decoder would refuse (lifetime over 7 days, empty ticket, a repeated extension type).
 */
export function encodeNewSessionTicket(message: NewSessionTicket): Buffer {
  checkInteger(message.lifetimeSeconds, 'lifetimeSeconds', 0, MAX_TICKET_LIFETIME_SECONDS);
  checkInteger(message.ageAdd, 'ageAdd', 0, U32 - 1);
  if (!(message.ticket instanceof Uint8Array) || message.ticket.length === 0) invalidArgument('ticket must be a non-empty Uint8Array');
  if (!Array.isArray(message.extensions)) invalidArgument('extensions must be an array');
  const extensions = message.extensions.map((e) => {
    checkInteger(e.type, 'extension type', 0, 0xffff);
    return Buffer.concat([Buffer.of(e.type >> 8, e.type & 0xff), vec(2, e.data, 'extension data')]);
  });
  if (new Set(message.extensions.map((e) => e.type)).size !== extensions.length) invalidArgument('each extension type at most once');
  const head = Buffer.alloc(8);
  head.writeUInt32BE(message.lifetimeSeconds, 0);
  head.writeUInt32BE(message.ageAdd, 4);
  return Buffer.concat([head, vec(1, message.nonce, 'nonce'), vec(2, message.ticket, 'ticket'), vec(2, Buffer.concat(extensions), 'extensions')]);
}

/**
 * Decodes a NewSessionTicket, bound-checked: a truncation, a length past the end, trailing
 * bytes, an empty ticket, a lifetime over 7 days or a repeated extension type throws
 * ERR_QT_MALFORMED_MESSAGE. The returned buffers are copies (the record buffer may be reused).
 */
export function decodeNewSessionTicket(body: Uint8Array): NewSessionTicket {
  if (!(body instanceof Uint8Array)) invalidArgument('body must be a Uint8Array');
  const buf = Buffer.from(body.buffer, body.byteOffset, body.length);
  let at = 0;
  const take = (n: number): Buffer => {
    if (n > buf.length - at) malformed('truncated');
    at += n;
    return buf.subarray(at - n, at);
  };
  const lifetimeSeconds = take(4).readUInt32BE(0);
  const ageAdd = take(4).readUInt32BE(0);
  const nonce = Buffer.from(take(take(1)[0]!));
  const ticket = Buffer.from(take(take(2).readUInt16BE(0)));
  const extensionBytes = take(take(2).readUInt16BE(0));
  if (at !== buf.length) malformed('trailing bytes');
  if (lifetimeSeconds > MAX_TICKET_LIFETIME_SECONDS) malformed('lifetime over 7 days');
  if (ticket.length === 0) malformed('empty ticket');
  const extensions: Extension[] = [];
  for (let e = 0; e < extensionBytes.length; ) {
    if (extensionBytes.length - e < 4) malformed('truncated extension');
    const type = extensionBytes.readUInt16BE(e);
    const length = extensionBytes.readUInt16BE(e + 2);
    if (length > extensionBytes.length - e - 4) malformed('truncated extension');
    if (extensions.some((x) => x.type === type)) malformed('an extension type twice');
    extensions.push({ type, data: Buffer.from(extensionBytes.subarray(e + 4, e + 4 + length)) });
    e += 4 + length;
  }
  return { lifetimeSeconds, ageAdd, nonce, ticket, extensions };
}

/**
 * The PSK of a ticket: HKDF-Expand-Label(resumption, "resumption", nonce, 48) with SHA-384 (the
 * label on the wire is "qtun2 resumption"). Both sides compute it natively from the resumption
 * secret; the caller owns (and destroys) the result.
 */
export function deriveTicketPsk(resumptionSecret: Secret, nonce: Uint8Array): Secret {
  if (!isSecret(resumptionSecret)) invalidArgument('resumptionSecret must be a Secret handle');
  if (!(nonce instanceof Uint8Array) || nonce.length > 255) invalidArgument('nonce must be a Uint8Array of at most 255 bytes');
  return expandLabel(V2_SCHEDULE, resumptionSecret, 'resumption', nonce, TICKET_PSK_SIZE);
}

// ---------------------------------------------------------------------------------------------
// Server

function requireTicketKey(key: unknown): asserts key is Secret {
  if (!isSecret(key) || key.length !== TICKET_KEY_SIZE) {
    throw new QuantumTunnelError('the ticket key must be a 32-byte Secret', ErrorCode.INVALID_KEY);
  }
  if (key.destroyed) throw new QuantumTunnelError('the ticket key has been destroyed', ErrorCode.HANDLE_DESTROYED);
}

/** The public key ID of a ticket key: HKDF-Expand-Label(key, "ticket key id", "", 8). */
export function ticketKeyId(ticketKey: Secret): Buffer {
  requireTicketKey(ticketKey);
  return expandLabelPublic(V2_SCHEDULE, ticketKey, TICKET_KEY_ID_LABEL, Buffer.alloc(0), TICKET_KEY_ID_SIZE);
}

/** A ticket's AD: "qtun2 ticket" ‖ keyId ‖ vec16(serverIdentity). Exported to craft test tickets. */
export function ticketAssociatedDataV2(keyId: Uint8Array, serverIdentity: Uint8Array): Buffer {
  if (!(keyId instanceof Uint8Array) || keyId.length !== TICKET_KEY_ID_SIZE) invalidArgument(`keyId must be ${TICKET_KEY_ID_SIZE} bytes`);
  return Buffer.concat([AD_LABEL, keyId, vec(2, serverIdentity, 'serverIdentity')]);
}

/** Options of a {@link TicketIssuer}. */
export interface TicketIssuerOptions {
  /**
   * The 32-byte AES-256-GCM ticket key; default a random one. The issuer takes ownership: the
   * handle is destroyed once the AEAD context and key ID are made from it. Servers that share
   * tickets share this key (and the serverIdentity, and an anti-replay store).
   */
  key?: Secret;
  /** Bytes naming this server or cluster (1 to 65535), in every ticket's AD: its tickets open nowhere else. */
  serverIdentity: Uint8Array;
  /** Ticket lifetime in seconds, 1 to 604,800 (7 days, `MAX_TICKET_LIFETIME_SECONDS`); default 7200 (`DEFAULT_TICKET_LIFETIME_SECONDS`). */
  lifetimeSeconds?: number;
  /** Where redeemed single-use tickets are recorded; default a new {@link MemoryAntiReplayStore}. */
  antiReplay?: AntiReplayStore;
  /** When true (the default), a ticket redeems once: the opened ticket's `consume()` is true only the first time. */
  singleUse?: boolean;
  /** Clock in milliseconds since the epoch, for tests; default Date.now. */
  now?: () => number;
}

/** Fields of the session a ticket resumes. */
export interface TicketSessionFields {
  suite: number;
  group: number;
  /** The authenticated peer (e.g. an external PSK identity), at most 255 bytes; empty means none. */
  peerIdentity?: Uint8Array;
}

/**
 * Fixed entropy for known-answer vectors. TEST ONLY: a repeated aeadNonce under one ticket key
 * breaks AES-GCM (it leaks the authentication key), so production code never passes this.
 */
export interface TicketEntropyForTesting {
  nonce?: Uint8Array;
  ageAdd?: number;
  aeadNonce?: Uint8Array;
  ticketId?: Uint8Array;
  issuedAtMs?: number;
}

/** What {@link TicketIssuer.issue} returns: the message to send and its fields. */
export interface IssuedTicket {
  /** The encoded NewSessionTicket, to send in an encrypted record of inner type 0x09. */
  message: Buffer;
  lifetimeSeconds: number;
  ageAdd: number;
  nonce: Buffer;
}

/**
 * A ticket that opened and passed every check. The caller owns (and destroys) `psk`, and calls
 * `consume()` only once the client has proven it holds the PSK (its binder verified), so that a
 * replayed ClientHello cannot use up an honest client's ticket. `consume()` resolves false when
 * the ticket was redeemed before, or the store refused or failed: the server then refuses the
 * resumption (a full handshake). It resolves true always when the issuer is not single-use.
 */
export interface OpenedTicket {
  psk: Secret;
  suite: number;
  group: number;
  peerIdentity?: Buffer;
  issuedAtMs: number;
  expiresAtMs: number;
  ticketId: Buffer;
  consume(): Promise<boolean>;
}

interface TicketKey {
  ctx: AeadContext;
  keyId: Buffer;
  aad: Buffer;
}

/**
 * Issues and opens v2 tickets under a current and (after {@link rotateKey}) a previous key.
 * {@link open} never throws: whatever a peer sends, a ticket that fails a check is undefined.
 */
export class TicketIssuer {
  #current: TicketKey | undefined;
  #previous: TicketKey | undefined;
  readonly #serverIdentity: Buffer;
  readonly #lifetime: number;
  readonly #store: AntiReplayStore | undefined;
  readonly #ownsStore: boolean;
  readonly #now: () => number;

  constructor(options: TicketIssuerOptions) {
    if (options === null || typeof options !== 'object') invalidArgument('options are required (serverIdentity)');
    const { lifetimeSeconds = DEFAULT_TICKET_LIFETIME_SECONDS, singleUse = true, now = Date.now, antiReplay } = options;
    const id = options.serverIdentity;
    if (!(id instanceof Uint8Array) || id.length === 0 || id.length > 0xffff) invalidArgument('serverIdentity must be 1 to 65535 bytes');
    checkInteger(lifetimeSeconds, 'lifetimeSeconds', 1, MAX_TICKET_LIFETIME_SECONDS);
    if (typeof singleUse !== 'boolean') invalidArgument('singleUse must be a boolean');
    if (typeof now !== 'function') invalidArgument('now must be a function');
    if (antiReplay !== undefined && typeof antiReplay?.consume !== 'function') invalidArgument('antiReplay must have a consume method');
    if (options.key !== undefined) requireTicketKey(options.key);
    this.#serverIdentity = Buffer.from(id);
    this.#lifetime = lifetimeSeconds;
    this.#now = now;
    this.#store = singleUse ? (antiReplay ?? new MemoryAntiReplayStore({ now })) : undefined;
    this.#ownsStore = singleUse && antiReplay === undefined;
    this.#current = this.#adopt(options.key ?? randomSecret(TICKET_KEY_SIZE));
  }

  /** Lifetime of the tickets this issuer issues, in seconds. */
  get lifetimeSeconds(): number {
    return this.#lifetime;
  }

  /** The current key's ID (the first 8 bytes of its tickets). */
  get keyId(): Buffer {
    return Buffer.from(this.#live().keyId);
  }

  /** True once {@link destroy} has run. */
  get destroyed(): boolean {
    return this.#current === undefined;
  }

  /**
   * Issues a ticket for the session whose resumption secret is `resumptionSecret` (48 bytes; not
   * consumed). The PSK is derived and sealed natively. Throws typed errors for bad arguments or
   * a destroyed issuer. `fixed` is for known-answer tests only (`TicketEntropyForTesting`).
   */
  issue(resumptionSecret: Secret, fields: TicketSessionFields, fixed?: TicketEntropyForTesting): IssuedTicket {
    const key = this.#live();
    if (!isSecret(resumptionSecret) || resumptionSecret.length !== TICKET_PSK_SIZE) {
      throw new QuantumTunnelError(`resumptionSecret must be a ${TICKET_PSK_SIZE}-byte Secret`, ErrorCode.INVALID_KEY);
    }
    if (resumptionSecret.destroyed) throw new QuantumTunnelError('resumptionSecret has been destroyed', ErrorCode.HANDLE_DESTROYED);
    checkInteger(fields?.suite, 'suite', 0, 0xffff);
    checkInteger(fields.group, 'group', 0, 0xffff);
    const peer = fields.peerIdentity ?? new Uint8Array(0);
    if (!(peer instanceof Uint8Array) || peer.length > MAX_TICKET_PEER_IDENTITY) invalidArgument('peerIdentity must be at most 255 bytes');
    const entropy = fixed ?? {};
    const nonce = fixedBytes(entropy.nonce, 'nonce', TICKET_NONCE_SIZE);
    const aeadNonce = fixedBytes(entropy.aeadNonce, 'aeadNonce', AEAD_NONCE_SIZE, AEAD_NONCE_SIZE);
    const ticketId = fixedBytes(entropy.ticketId, 'ticketId', TICKET_ID_SIZE, TICKET_ID_SIZE);
    const ageAdd = entropy.ageAdd ?? randomBytes(4).readUInt32BE(0);
    checkInteger(ageAdd, 'ageAdd', 0, U32 - 1);
    const issuedAtMs = entropy.issuedAtMs ?? Math.floor(this.#now());
    checkInteger(issuedAtMs, 'issuedAtMs', 0, Number.MAX_SAFE_INTEGER);

    const head = Buffer.alloc(PEER_AT);
    head.writeUInt16BE(V2_VERSION_NUMBER, 0);
    head.writeUInt16BE(fields.suite, SUITE_AT);
    head.writeUInt16BE(fields.group, GROUP_AT);
    head.writeBigUInt64BE(BigInt(issuedAtMs), ISSUED_AT);
    head.writeUInt32BE(this.#lifetime, LIFETIME_AT);
    head.writeUInt32BE(ageAdd, AGE_ADD_AT);
    ticketId.copy(head, TICKET_ID_AT);
    const psk = deriveTicketPsk(resumptionSecret, nonce);
    let sealed: Buffer;
    try {
      sealed = key.ctx.sealParts(aeadNonce, key.aad, [head, vec(1, peer, 'peerIdentity'), psk]);
    } finally {
      psk.destroy();
    }
    const ticket = Buffer.concat([key.keyId, aeadNonce, sealed]);
    const message = encodeNewSessionTicket({ lifetimeSeconds: this.#lifetime, ageAdd, nonce, ticket, extensions: [] });
    return { message, lifetimeSeconds: this.#lifetime, ageAdd, nonce };
  }

  /**
   * Opens a ticket a client presented with its obfuscated ticket age. Undefined when it does not
   * open under the current or previous key (another server, another key, a changed byte), is not
   * a v2 ticket, has expired (issuedAt + lifetime ≤ now), was issued more than
   * 60 s (`TICKET_CLOCK_SKEW_MS`) in the future, or when the client's age, (obfuscatedAge - ageAdd)
   * mod 2^32, is more than 10 s (`TICKET_AGE_TOLERANCE_MS`) from now - issuedAt. Never throws.
   * Single use is enforced by the opened ticket's `consume()`, not here.
   */
  open(ticket: Uint8Array, obfuscatedAge: number): OpenedTicket | undefined {
    let psk: Secret | undefined;
    try {
      if (!(ticket instanceof Uint8Array) || ticket.length < MIN_TICKET || ticket.length > MAX_TICKET) return undefined;
      if (!Number.isInteger(obfuscatedAge) || obfuscatedAge < 0 || obfuscatedAge >= U32) return undefined;
      const bytes = Buffer.from(ticket.buffer, ticket.byteOffset, ticket.length);
      const keyId = bytes.subarray(0, TICKET_KEY_ID_SIZE);
      const key = [this.#current, this.#previous].find((k) => k !== undefined && k.keyId.equals(keyId));
      if (key === undefined) return undefined;
      const sealed = bytes.subarray(HEADER_SIZE);
      const pskAt = sealed.length - TAG_SIZE - TICKET_PSK_SIZE;
      const opened = key.ctx.openWithSecret(bytes.subarray(TICKET_KEY_ID_SIZE, HEADER_SIZE), key.aad, sealed, pskAt, TICKET_PSK_SIZE);
      psk = opened.secret;
      const result = this.#check(opened.plaintext, pskAt, obfuscatedAge, psk);
      if (result !== undefined) psk = undefined; // handed to the caller
      return result;
    } catch {
      // Forged or damaged (the tag did not verify), or a throwing clock: not resumed.
      return undefined;
    } finally {
      psk?.destroy();
    }
  }

  /**
   * Makes `newKey` (default: a random key; the issuer takes ownership) current. The current key
   * becomes the previous one, whose tickets still open; the old previous key is destroyed.
   */
  rotateKey(newKey?: Secret): void {
    this.#live();
    if (newKey !== undefined) requireTicketKey(newKey);
    const next = this.#adopt(newKey ?? randomSecret(TICKET_KEY_SIZE));
    this.#previous?.ctx.destroy();
    this.#previous = this.#current;
    this.#current = next;
  }

  /**
   * Destroys both key contexts (cleansing the keys), and clears the anti-replay store if the
   * issuer made it (a store given in the options may be shared, so it is left alone). Safe twice.
   */
  destroy(): void {
    destroyAll(this.#current?.ctx, this.#previous?.ctx);
    this.#current = this.#previous = undefined;
    if (this.#ownsStore) (this.#store as MemoryAntiReplayStore).clear();
  }

  #adopt(key: Secret): TicketKey {
    try {
      const keyId = ticketKeyId(key);
      return { ctx: createAead(AeadSuite.AES_256_GCM, key), keyId, aad: ticketAssociatedDataV2(keyId, this.#serverIdentity) };
    } finally {
      key.destroy();
    }
  }

  #live(): TicketKey {
    if (this.#current === undefined) throw qtError(ErrorCode.HANDLE_DESTROYED, 'the ticket issuer has been destroyed');
    return this.#current;
  }

  /** The checks after authentication; the opened ticket when all pass. */
  #check(plaintext: Buffer, pskAt: number, obfuscatedAge: number, psk: Secret): OpenedTicket | undefined {
    if (plaintext.readUInt16BE(0) !== V2_VERSION_NUMBER) return undefined;
    const peerLength = plaintext[PEER_AT]!;
    if (PEER_AT + 1 + peerLength !== pskAt) return undefined;
    const issued = plaintext.readBigUInt64BE(ISSUED_AT);
    const lifetime = plaintext.readUInt32BE(LIFETIME_AT);
    if (issued > BigInt(Number.MAX_SAFE_INTEGER) || lifetime > MAX_TICKET_LIFETIME_SECONDS) return undefined;
    const issuedAtMs = Number(issued);
    const expiresAtMs = issuedAtMs + lifetime * 1000;
    const now = this.#now();
    if (!Number.isFinite(now) || expiresAtMs <= now || issuedAtMs > now + TICKET_CLOCK_SKEW_MS) return undefined;
    const clientAge = (obfuscatedAge - plaintext.readUInt32BE(AGE_ADD_AT)) >>> 0;
    if (Math.abs(clientAge - (now - issuedAtMs)) > TICKET_AGE_TOLERANCE_MS) return undefined;

    const ticketId = Buffer.from(plaintext.subarray(TICKET_ID_AT, PEER_AT));
    const store = this.#store;
    const consume = (): Promise<boolean> =>
      store === undefined
        ? Promise.resolve(true)
        : Promise.resolve()
            .then(() => store.consume(Buffer.from(ticketId), expiresAtMs))
            .then((fresh) => fresh === true, () => false);
    return {
      psk,
      suite: plaintext.readUInt16BE(SUITE_AT),
      group: plaintext.readUInt16BE(GROUP_AT),
      ...(peerLength > 0 ? { peerIdentity: Buffer.from(plaintext.subarray(PEER_AT + 1, pskAt)) } : {}),
      issuedAtMs,
      expiresAtMs,
      ticketId,
      consume,
    };
  }
}

/** A fixed value's bytes after checking its length, or fresh random bytes. */
function fixedBytes(value: Uint8Array | undefined, name: string, size: number, exact?: number): Buffer {
  if (value === undefined) return randomBytes(size);
  if (!(value instanceof Uint8Array) || value.length > 255 || (exact !== undefined && value.length !== exact)) {
    invalidArgument(`${name} must be ${exact ?? 'at most 255'} bytes`);
  }
  return Buffer.from(value);
}

// ---------------------------------------------------------------------------------------------
// Client

/** A ticket as a client keeps it. The store owns `psk` from {@link ClientTicketStore.add} on. */
export interface ClientTicket {
  /** The opaque ticket, sent as the PSK identity. */
  ticket: Buffer;
  /** deriveTicketPsk(resumption, nonce), a 48-byte Secret. */
  psk: Secret;
  /** Suite and group of the session it resumes (the client offers them again). */
  suite: number;
  group: number;
  lifetimeSeconds: number;
  ageAdd: number;
  /** When the client received it (ms since the epoch, the store's clock): the ticket age starts here. */
  receivedAtMs: number;
}

/**
 * The {@link ClientTicket} for a received NewSessionTicket: derives its PSK natively from the
 * session's resumption secret (not consumed). The caller owns the result until it adds it to a
 * {@link ClientTicketStore}.
 */
export function clientTicketFromMessage(
  message: NewSessionTicket,
  resumptionSecret: Secret,
  session: { suite: number; group: number },
  receivedAtMs: number,
): ClientTicket {
  return {
    ticket: Buffer.from(message.ticket),
    psk: deriveTicketPsk(resumptionSecret, message.nonce),
    suite: session.suite,
    group: session.group,
    lifetimeSeconds: message.lifetimeSeconds,
    ageAdd: message.ageAdd,
    receivedAtMs,
  };
}

/** Options of a {@link ClientTicketStore}. */
export interface ClientTicketStoreOptions {
  /** Most tickets kept for one server; default 4. The oldest goes first. */
  perServer?: number;
  /** Most tickets kept in all; default 1024. The oldest goes first. */
  total?: number;
  /** Clock in milliseconds since the epoch, for tests; default Date.now. */
  now?: () => number;
}

interface Held {
  server: string;
  ticket: ClientTicket;
}

/**
 * A client's tickets, per server key (a string naming the server: host and port, or a pinned
 * identity). Tickets are single-use: {@link take} removes the ticket it returns. Expired tickets
 * are dropped and their PSKs destroyed; so are tickets evicted over capacity.
 */
export class ClientTicketStore {
  readonly #byServer = new Map<string, Held[]>();
  /** Every held ticket, oldest first. */
  readonly #all = new Set<Held>();
  readonly #perServer: number;
  readonly #total: number;
  readonly #now: () => number;

  constructor(options: ClientTicketStoreOptions = {}) {
    const { perServer = 4, total = 1024, now = Date.now } = options;
    checkInteger(perServer, 'perServer', 1, 1024);
    checkInteger(total, 'total', 1, 2 ** 20);
    if (typeof now !== 'function') invalidArgument('now must be a function');
    this.#perServer = perServer;
    this.#total = total;
    this.#now = now;
  }

  /** How many tickets are held (expired ones included until they are dropped). */
  get size(): number {
    return this.#all.size;
  }

  /**
   * Keeps `t` for `serverKey` (the ticket bytes are copied; the store owns `t.psk` once this
   * returns). A ticket with lifetime 0 is discarded at once (its PSK destroyed), as RFC 8446 says.
   * Over capacity, the server's oldest ticket, or else the oldest of all, is evicted and destroyed.
   * Throws ERR_QT_INVALID_ARGUMENT (the caller keeps the PSK then) for malformed fields.
   */
  add(serverKey: string, t: ClientTicket): void {
    if (typeof serverKey !== 'string') invalidArgument('serverKey must be a string');
    if (!(t?.ticket instanceof Uint8Array) || t.ticket.length === 0 || t.ticket.length > 0xffff) invalidArgument('ticket must be 1 to 65535 bytes');
    if (!isSecret(t.psk) || t.psk.destroyed) invalidArgument('psk must be a live Secret handle');
    checkInteger(t.suite, 'suite', 0, 0xffff);
    checkInteger(t.group, 'group', 0, 0xffff);
    checkInteger(t.lifetimeSeconds, 'lifetimeSeconds', 0, MAX_TICKET_LIFETIME_SECONDS);
    checkInteger(t.ageAdd, 'ageAdd', 0, U32 - 1);
    if (typeof t.receivedAtMs !== 'number' || !Number.isFinite(t.receivedAtMs)) invalidArgument('receivedAtMs must be a finite number');
    if (t.lifetimeSeconds === 0) {
      t.psk.destroy();
      return;
    }
    const held: Held = { server: serverKey, ticket: { ...t, ticket: Buffer.from(t.ticket) } };
    const list = this.#byServer.get(serverKey) ?? [];
    this.#byServer.set(serverKey, list);
    list.push(held);
    this.#all.add(held);
    if (list.length > this.#perServer) this.#drop(list[0]!);
    if (this.#all.size > this.#total) this.#drop(this.#all.values().next().value!);
  }

  /**
   * Removes and returns the newest unexpired ticket for `serverKey` (the caller owns its PSK
   * then); undefined when there is none. Expired tickets of that server are dropped on the way.
   */
  take(serverKey: string): ClientTicket | undefined {
    const list = this.#byServer.get(serverKey);
    if (list === undefined) return undefined;
    const now = this.#now();
    for (const held of [...list]) if (held.ticket.receivedAtMs + held.ticket.lifetimeSeconds * 1000 <= now) this.#drop(held);
    const newest = list.at(-1);
    if (newest === undefined) return undefined;
    this.#remove(newest);
    return newest.ticket;
  }

  /**
   * The obfuscated ticket age to send with `t`: (now - receivedAt in ms + ageAdd) mod 2^32, the
   * age floored at 0 (a clock that went back).
   */
  obfuscatedAge(t: ClientTicket, now: number = this.#now()): number {
    return (Math.max(0, Math.floor(now - t.receivedAtMs)) + t.ageAdd) >>> 0;
  }

  /** Destroys every held PSK and forgets all tickets. Safe twice. */
  destroy(): void {
    for (const held of [...this.#all]) this.#drop(held);
  }

  #remove(held: Held): void {
    this.#all.delete(held);
    const list = this.#byServer.get(held.server)!;
    list.splice(list.indexOf(held), 1);
    if (list.length === 0) this.#byServer.delete(held.server);
  }

  #drop(held: Held): void {
    this.#remove(held);
    held.ticket.psk.destroy();
  }
}
