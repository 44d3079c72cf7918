/**
 * Session tickets for resumption (shared reference PROTOCOL.md §10), in the reference's 71-byte
 * wire format, with the defects of §14 #3 and #4 fixed where the wire allows it:
 *
 * - a fresh random nonce per ticket (the reference seals every ticket under the zero nonce, so
 *   two tickets share a GCM keystream and the GHASH key leaks);
 * - the AD binds the issuing server: a label, an ID of the ticket key and optional identity bytes;
 * - the version byte is checked, created_at may be at most {@link TICKET_CLOCK_SKEW_SECONDS} in the
 *   future, a suite policy hook is applied, and tickets can be made single-use.
 *
 * The master secret never enters the JS heap: it is sealed from and opened into Secret handles.
 * A ticket sealed our way cannot be opened by the reference and vice versa (different nonce
 * rules and AD); only the issuing server ever opens a ticket, so this changes nothing on the wire.
 */
import type { Secret } from '../native.js';
import { ErrorCode, QuantumTunnelError, invalidArgument } from '../errors.js';
import { AeadSuite, createAead, type AeadContext } from '../crypto/aead.js';
import { checkInteger } from '../crypto/bytes.js';
import { sha3_256 } from '../crypto/hash.js';
import { deriveKey } from '../crypto/kdf.js';
import { randomBytes, randomSecret } from '../crypto/random.js';
import { isSecret } from '../crypto/secret.js';
import {
  DEFAULT_TICKET_LIFETIME_SECONDS,
  NONCE_SIZE,
  TICKET_PLAINTEXT_SIZE,
  TICKET_SIZE,
  TICKET_VERSION,
} from './constants.js';
import { MASTER_SECRET_SIZE } from './keySchedule.js';

/** Ours: first bytes of every ticket's AD (the reference uses an empty AD). */
export const TICKET_AAD_LABEL = 'quantum-tunnel ticket v1';
/** Ours: KDF label of the ticket key ID, a public fingerprint of the key placed in the AD. */
export const TICKET_KEY_ID_LABEL = 'quantum-tunnel-ticket-key-id';
/** Ours: length of the ticket key ID. */
export const TICKET_KEY_ID_SIZE = 8;
/** Ours: how far in the future a ticket's created_at may be (the reference accepts any). */
export const TICKET_CLOCK_SKEW_SECONDS = 60;
/** Ours: default number of redeemed tickets a single-use manager remembers. */
export const DEFAULT_SINGLE_USE_CAPACITY = 100_000;
/** Ticket keys are AES-256-GCM keys. */
export const TICKET_KEY_SIZE = 32;

// Plaintext layout (§10.1): version(1) ‖ suite BE16 ‖ master(32) ‖ created_at BE64.
const MASTER_OFFSET = 3;
const CREATED_AT_OFFSET = MASTER_OFFSET + MASTER_SECRET_SIZE;
/** created_at travels as BE64; we hold it as a JS number, so it must stay a safe integer. */
const MAX_CREATED_AT = Number.MAX_SAFE_INTEGER;

/** Options of a {@link TicketManager}. */
export interface TicketManagerOptions {
  /**
   * The 32-byte ticket key; default: a random one. The manager takes ownership: the handle is
   * destroyed as soon as the AEAD context and key ID have been made from it.
   */
  key?: Secret;
  /** Lifetime of a ticket in seconds; default (and when 0, as in the reference) DEFAULT_TICKET_LIFETIME_SECONDS. */
  lifetimeSeconds?: number;
  /**
   * When true, a ticket whose redemption was consumed (the resuming client proved the secret) is
   * refused afterwards until it would have expired. Default false.
   */
  singleUse?: boolean;
  /** How many redeemed tickets a single-use manager remembers; default DEFAULT_SINGLE_USE_CAPACITY. */
  singleUseCapacity?: number;
  /** Extra AD bytes naming this server (or cluster), so its tickets open nowhere else. */
  serverIdentity?: Uint8Array;
  /** Suite policy: return false to refuse a ticket's suite (FIPS mode refuses non-approved suites). */
  acceptSuite?: (suite: number) => boolean;
  /** Clock in milliseconds, for tests; default Date.now. */
  now?: () => number;
}

/**
 * The result of {@link TicketManager.redeem}. On success the caller owns (and destroys) `master`,
 * and calls `consume()` once the client has proven it holds the ticket's secret (its Finished
 * verified): a single-use ticket is used up then, not when merely presented, so a replayed
 * ClientHello cannot burn an honest client's ticket. `consume()` is false when the ticket was
 * consumed in the meantime (or the single-use memory is full): refuse the resumption then.
 */
export type TicketRedemption =
  | {
      /** The ticket is valid. */
      ok: true;
      /** The session's resumption master secret (the caller destroys it). */
      master: Secret;
      /** The cipher suite of the session the ticket resumes. */
      suite: number;
      /** When the ticket was issued, Unix seconds. */
      createdAt: number;
      /** Uses the ticket up; false when it already was (refuse the resumption then). */
      consume: () => boolean;
    }
  | {
      /** The ticket is refused. */
      ok: false;
      /**
       * Why: a wrong size, an unknown key or a bad tag, past its lifetime, issued in the future
       * (beyond the clock skew), another ticket version, a suite not accepted, or already used.
       */
      reason: 'malformed' | 'invalid' | 'expired' | 'future' | 'version' | 'suite' | 'replayed';
    };

type RefusalReason = Extract<TicketRedemption, { ok: false }>['reason'];

/** The fields of a ticket plaintext (§10.1). `createdAt` is in Unix seconds. */
export interface TicketFields {
  version: number;
  suite: number;
  master: Secret;
  createdAt: number;
}

function requireMaster(master: unknown): asserts master is Secret {
  if (!isSecret(master) || master.length !== MASTER_SECRET_SIZE) {
    throw new QuantumTunnelError('master must be a 32-byte Secret', ErrorCode.INVALID_KEY);
  }
  if (master.destroyed) throw new QuantumTunnelError('master has been destroyed', ErrorCode.HANDLE_DESTROYED);
}

function requireTicketKey(key: unknown): asserts key is Secret {
  if (!isSecret(key) || key.length !== TICKET_KEY_SIZE) {
    throw new QuantumTunnelError('the ticket key must be a 32-byte Secret', ErrorCode.INVALID_KEY);
  }
  if (key.destroyed) throw new QuantumTunnelError('the ticket key has been destroyed', ErrorCode.HANDLE_DESTROYED);
}

/**
 * The AD a manager seals its tickets with: ASCII {@link TICKET_AAD_LABEL} ‖ keyId ‖ serverIdentity,
 * where keyId = DeriveKey({@link TICKET_KEY_ID_LABEL}, ticketKey, 8). The key ID is a one-way
 * fingerprint, so the AD is public. Exported so tests (and tools) can craft tickets for a key.
 */
export function ticketAssociatedData(ticketKey: Secret, serverIdentity: Uint8Array = new Uint8Array(0)): Buffer {
  requireTicketKey(ticketKey);
  if (!(serverIdentity instanceof Uint8Array)) invalidArgument('serverIdentity must be a Uint8Array');
  const keyId = deriveKey(TICKET_KEY_ID_LABEL, ticketKey, TICKET_KEY_ID_SIZE);
  return Buffer.concat([Buffer.from(TICKET_AAD_LABEL, 'ascii'), keyId, serverIdentity]);
}

/**
 * Seals the §10.1 plaintext with a given context, nonce and AD, and returns the 71-byte ticket
 * nonce ‖ ciphertext ‖ tag. The master is passed to the addon as a handle. Exposed for the
 * Appendix A.4 vector (zero nonce, empty AD) and for crafting test tickets.
 */
export function sealTicket(ctx: AeadContext, nonce: Uint8Array, aad: Uint8Array, fields: TicketFields): Buffer {
  if (!(nonce instanceof Uint8Array) || nonce.length !== NONCE_SIZE) invalidArgument(`nonce must be ${NONCE_SIZE} bytes`);
  if (!(aad instanceof Uint8Array)) invalidArgument('aad must be a Uint8Array');
  checkInteger(fields.version, 'version', 0, 0xff);
  checkInteger(fields.suite, 'suite', 0, 0xffff);
  checkInteger(fields.createdAt, 'createdAt', 0, MAX_CREATED_AT);
  requireMaster(fields.master);
  const head = Buffer.from([fields.version, fields.suite >> 8, fields.suite & 0xff]);
  const tail = Buffer.allocUnsafe(8);
  tail.writeBigUInt64BE(BigInt(fields.createdAt), 0);
  const sealed = ctx.sealParts(nonce, aad, [head, fields.master, tail]);
  return Buffer.concat([nonce, sealed], TICKET_SIZE);
}

/** One ticket key, reduced to what the manager needs: its AEAD context and its AD. */
interface TicketKey {
  ctx: AeadContext;
  aad: Buffer;
}

/**
 * Digests of redeemed tickets, each with the last second at which its ticket is still valid.
 * Insertion order roughly follows expiry (the lifetime is fixed), so pruning from the front is
 * amortised O(1); a full sweep runs only when the table is full, at most once a second.
 */
class RedeemedTickets {
  private readonly entries = new Map<string, number>();
  private lastSweep = Number.NaN;

  constructor(private readonly capacity: number) {}

  /** Whether a ticket was consumed and is still within its lifetime. */
  has(digest: string, nowSeconds: number): boolean {
    const until = this.entries.get(digest);
    return until !== undefined && until >= nowSeconds;
  }

  /**
   * Records a ticket; false when it was already consumed, or when the table is full of live
   * entries. Failing closed there is cheap: a refused ticket means a full handshake, not an error.
   */
  add(digest: string, validUntil: number, nowSeconds: number): boolean {
    for (const [key, until] of this.entries) {
      if (until >= nowSeconds) break;
      this.entries.delete(key);
    }
    if (this.entries.has(digest)) return false;
    if (this.entries.size >= this.capacity && this.lastSweep !== nowSeconds) {
      this.lastSweep = nowSeconds;
      for (const [key, until] of this.entries) if (until < nowSeconds) this.entries.delete(key);
    }
    if (this.entries.size >= this.capacity) return false;
    this.entries.set(digest, validUntil);
    return true;
  }

  clear(): void {
    this.entries.clear();
  }
}

/**
 * Issues and redeems session tickets under a current and (after {@link rotateKey}) a previous key.
 * Tickets are always AES-256-GCM, whatever the session suite (§10.2).
 */
export class TicketManager {
  private current: TicketKey | undefined;
  private previous: TicketKey | undefined;
  private readonly lifetime: number;
  private readonly serverIdentity: Buffer;
  private readonly acceptSuite: (suite: number) => boolean;
  private readonly now: () => number;
  private readonly redeemed: RedeemedTickets | undefined;

  constructor(options: TicketManagerOptions = {}) {
    const { lifetimeSeconds = 0, singleUse = false, singleUseCapacity = DEFAULT_SINGLE_USE_CAPACITY } = options;
    checkInteger(lifetimeSeconds, 'lifetimeSeconds', 0, MAX_CREATED_AT);
    checkInteger(singleUseCapacity, 'singleUseCapacity', 1, 2 ** 24); // a JS Map holds at most ~2^24 entries
    if (options.serverIdentity !== undefined && !(options.serverIdentity instanceof Uint8Array)) {
      invalidArgument('serverIdentity must be a Uint8Array');
    }
    if (options.acceptSuite !== undefined && typeof options.acceptSuite !== 'function') invalidArgument('acceptSuite must be a function');
    if (options.now !== undefined && typeof options.now !== 'function') invalidArgument('now must be a function');
    if (options.key !== undefined) requireTicketKey(options.key);

    this.lifetime = lifetimeSeconds === 0 ? DEFAULT_TICKET_LIFETIME_SECONDS : lifetimeSeconds;
    this.serverIdentity = Buffer.from(options.serverIdentity ?? []);
    this.acceptSuite = options.acceptSuite ?? (() => true);
    this.now = options.now ?? Date.now;
    this.redeemed = singleUse ? new RedeemedTickets(singleUseCapacity) : undefined;
    this.current = this.adopt(options.key ?? randomSecret(TICKET_KEY_SIZE));
  }

  /** Lifetime of a ticket in seconds. */
  get lifetimeSeconds(): number {
    return this.lifetime;
  }

  /** True once {@link destroy} has run. */
  get destroyed(): boolean {
    return this.current === undefined;
  }

  /**
   * Seals a ticket for `master` (a 32-byte Secret, copied natively) under the current key.
   * `createdAtSeconds` defaults to now; the protocol passes the session's establishment time.
   * Throws typed errors for bad arguments or a destroyed manager.
   */
  issue(master: Secret, suite: number, createdAtSeconds?: number): Buffer {
    const key = this.live();
    const createdAt = createdAtSeconds ?? this.nowSeconds();
    return sealTicket(key.ctx, randomBytes(NONCE_SIZE), key.aad, { version: TICKET_VERSION, suite, master, createdAt });
  }

  /**
   * Opens and validates a ticket received from the network. Never throws, whatever the bytes:
   * every failure is a reason, and a ticket that fails any check is simply not resumed.
   */
  redeem(ticket: Uint8Array): TicketRedemption {
    if (!(ticket instanceof Uint8Array) || ticket.length !== TICKET_SIZE) return { ok: false, reason: 'malformed' };
    let master: Secret | undefined;
    try {
      const opened = this.open(ticket);
      if (opened === undefined) return { ok: false, reason: 'invalid' };
      master = opened.secret;
      const result = this.validate(ticket, opened.plaintext);
      if (result !== undefined) return { ok: false, reason: result };
      const suite = opened.plaintext.readUInt16BE(1);
      const createdAt = Number(opened.plaintext.readBigUInt64BE(CREATED_AT_OFFSET));
      const redeemed = this.redeemed;
      const digest = redeemed && sha3_256(ticket).toString('hex');
      const consume = (): boolean => redeemed === undefined || redeemed.add(digest!, createdAt + this.lifetime, this.nowSeconds());
      const redemption: TicketRedemption = { ok: true, master, suite, createdAt, consume };
      master = undefined; // handed to the caller
      return redemption;
    } catch {
      // Tickets come from the network: even a throwing policy hook or clock must not escape.
      return { ok: false, reason: 'invalid' };
    } finally {
      master?.destroy();
    }
  }

  /**
   * Makes `newKey` (default: a random key) current. The current key becomes the previous one,
   * still accepted by {@link redeem}; the old previous key is destroyed.
   */
  rotateKey(newKey?: Secret): void {
    this.live();
    if (newKey !== undefined) requireTicketKey(newKey);
    const next = this.adopt(newKey ?? randomSecret(TICKET_KEY_SIZE));
    this.previous?.ctx.destroy();
    this.previous = this.current;
    this.current = next;
  }

  /** Destroys both key contexts and forgets redeemed tickets. Safe to call twice. */
  destroy(): void {
    this.current?.ctx.destroy();
    this.previous?.ctx.destroy();
    this.current = this.previous = undefined;
    this.redeemed?.clear();
  }

  /** Builds the context and AD for a key, then destroys the handle: the context holds the key. */
  private adopt(key: Secret): TicketKey {
    try {
      return { ctx: createAead(AeadSuite.AES_256_GCM, key), aad: ticketAssociatedData(key, this.serverIdentity) };
    } finally {
      key.destroy();
    }
  }

  private live(): TicketKey {
    if (this.current === undefined) {
      throw new QuantumTunnelError('the ticket manager has been destroyed', ErrorCode.HANDLE_DESTROYED);
    }
    return this.current;
  }

  private nowSeconds(): number {
    return Math.floor(this.now() / 1000);
  }

  /** Tries the current key, then the previous one; undefined when neither opens the ticket. */
  private open(ticket: Uint8Array): { plaintext: Buffer; secret: Secret } | undefined {
    const nonce = ticket.subarray(0, NONCE_SIZE);
    const sealed = ticket.subarray(NONCE_SIZE);
    for (const key of [this.current, this.previous]) {
      if (key === undefined) continue;
      try {
        return key.ctx.openWithSecret(nonce, key.aad, sealed, MASTER_OFFSET, MASTER_SECRET_SIZE);
      } catch {
        // Wrong key or forged: try the next one.
      }
    }
    return undefined;
  }

  /** The checks after authentication, in order; undefined when the ticket is good. */
  private validate(ticket: Uint8Array, plaintext: Buffer): RefusalReason | undefined {
    if (plaintext.length !== TICKET_PLAINTEXT_SIZE) return 'malformed';
    if (plaintext[0] !== TICKET_VERSION) return 'version';
    const now = this.nowSeconds();
    // BigInt: created_at is a full BE64 from the plaintext and may exceed 2^53.
    const createdAt = plaintext.readBigUInt64BE(CREATED_AT_OFFSET);
    if (createdAt > BigInt(now + TICKET_CLOCK_SKEW_SECONDS)) return 'future';
    if (BigInt(now) - createdAt > BigInt(this.lifetime)) return 'expired';
    if (!this.acceptSuite(plaintext.readUInt16BE(1))) return 'suite';
    if (this.redeemed?.has(sha3_256(ticket).toString('hex'), now)) return 'replayed';
    return undefined;
  }
}
