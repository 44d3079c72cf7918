/**
 * The v1 handshake (PROTOCOL.md §7) as two small state machines over bytes: no sockets, no
 * timers. The tunnel layer feeds them frames and writes what they return.
 *
 *   Initiator                         Responder
 *   clientHello()        ── CH ──▶    onClientHello()      (encapsulates to the client's key)
 *   onServerHello()      ◀── SH ──    returns ServerHello
 *   returns ClientFinished ── CF ──▶  onClientFinished()   (checks it, installs traffic keys)
 *   onServerFinished()   ◀── SF ──    returns ServerFinished
 *
 * Fixes over the reference that keep the wire: the initiator refuses a suite it did not offer;
 * the responder skips unknown suite IDs instead of refusing the hello; decoders are bound-checked;
 * Finished must carry the expected type; verify_data is compared in constant time.
 */
import type { Secret } from '../native.js';
import { ErrorCode, QuantumTunnelError, qtError } from '../errors.js';
import { createAead, open as aeadOpen, seal as aeadSeal, type AeadContext } from '../crypto/aead.js';
import * as chkem from '../crypto/chkem.js';
import { randomBytes } from '../crypto/random.js';
import { destroyAll, timingSafeEqual } from '../crypto/secret.js';
import {
  type CipherSuiteId,
  MessageType,
  MIN_SEALED_SIZE,
  NONCE_SIZE,
  PROTOCOL_VERSION,
  RANDOM_SIZE,
  SESSION_ID_SIZE,
} from './constants.js';
import { encodeHandshakeRecord, type Frame } from './frame.js';
import { computeVerifyData, deriveHandshakeKeys, deriveResumptionMaster, deriveTrafficKeys } from './keySchedule.js';
import {
  AlertCode,
  decodeAlert,
  decodeClientHello,
  decodeFinished,
  decodeServerHello,
  encodeClientHello,
  encodeFinished,
  encodeServerHello,
  isCompatibleVersion,
} from './messages.js';
import { suitePermitted } from './suites.js';
import type { TicketManager } from './ticket.js';
import { type OffloadPolicy, offloadNow } from './offload.js';

/** What every version's completed handshake says about itself (its secrets are the version's own). */
export interface HandshakeSummary {
  role: 'initiator' | 'responder';
  suite: CipherSuiteId;
  /** v1: the responder's random 16 bytes, or the ticket when resumed; v2: 16 bytes of the transcript hash. */
  sessionId: Buffer;
  resumed: boolean;
  /** A ticket was offered (client) or received (server), whether or not it was accepted. */
  resumptionAttempted: boolean;
  /** The key exchange group as people read it (v2; v1 has one fixed exchange). */
  groupName?: string;
}

/** What a completed v1 handshake hands to the record layer. The caller owns (and destroys) the secrets. */
export interface HandshakeResult extends HandshakeSummary {
  /** The session's master secret (kept for rekey and tickets). */
  master: Secret;
  sendKey: Secret;
  receiveKey: Secret;
}

/**
 * One step of a handshake, as the driver sees every version's handshake: the messages to send
 * now, then what to read next (a frame, or an encrypted handshake record), or the result.
 */
export interface HandshakeStep {
  send: Buffer[];
  next: 'frame' | 'record' | 'done';
  result?: HandshakeSummary;
}

/**
 * The interface every protocol version's handshake implements, so the driver in lib/tunnel is
 * one loop: `start()`, then `receive()` with what `next` asks for until `next` is 'done'.
 */
export interface Handshake {
  start(): Promise<HandshakeStep>;
  /** A frame when the last step asked for 'frame', a handshake record's sealed bytes for 'record'. */
  receive(input: Frame | Buffer): Promise<HandshakeStep>;
  /** Cleanses whatever the handshake still holds (safe after completion and twice). */
  destroy(): void;
}

const ZERO_NONCE = Buffer.alloc(NONCE_SIZE);
const EMPTY = Buffer.alloc(0);

function handshakeFailed(message: string): QuantumTunnelError {
  return qtError(ErrorCode.HANDSHAKE_FAILED, message);
}

/** A frame of the wrong type where a hello was expected; a peer's Alert is reported as such. */
function unexpected(frame: Frame, expected: string): QuantumTunnelError {
  if (frame.type === MessageType.ALERT) {
    const alert = decodeAlert(frame.payload);
    // A protocol v2 server refuses a v1 ClientHello with unsupported_version.
    if (alert?.code === AlertCode.UNSUPPORTED_VERSION) {
      return qtError(ErrorCode.UNSUPPORTED_VERSION, 'the server does not speak protocol v1 (it speaks v2: drop legacyV1 / --legacy-v1)');
    }
    return qtError(ErrorCode.PEER_ALERT, `peer sent alert code ${alert?.code ?? 'unknown'} during the handshake`);
  }
  return qtError(ErrorCode.UNEXPECTED_MESSAGE, `expected ${expected}, got message type 0x${frame.type.toString(16)}`);
}

/** Seals a Finished plaintext as an encrypted handshake record (nonce 0^12, empty AD, §7.7). */
function sealFinished(ctx: AeadContext, plaintext: Buffer): Buffer {
  return encodeHandshakeRecord(Buffer.concat([ZERO_NONCE, aeadSeal(ctx, ZERO_NONCE, EMPTY, plaintext)]));
}

/** Opens an encrypted handshake record with the nonce it carries; any failure is a handshake failure. */
function openFinished(ctx: AeadContext, sealed: Buffer): Buffer {
  if (sealed.length < MIN_SEALED_SIZE) throw handshakeFailed('Finished record too short');
  try {
    return aeadOpen(ctx, sealed.subarray(0, NONCE_SIZE), EMPTY, sealed.subarray(NONCE_SIZE));
  } catch {
    throw handshakeFailed('Finished record did not authenticate');
  }
}

/** Keys and expectations shared by both sides once the master secret is known. */
class KeySchedule {
  readonly sendCtx: AeadContext;
  readonly receiveCtx: AeadContext;
  constructor(readonly master: Secret, readonly suite: CipherSuiteId, role: 'initiator' | 'responder') {
    const hs = deriveHandshakeKeys(master);
    const [send, receive] = role === 'initiator'
      ? [hs.initiatorToResponder, hs.responderToInitiator]
      : [hs.responderToInitiator, hs.initiatorToResponder];
    try {
      this.sendCtx = createAead(suite, send);
      this.receiveCtx = createAead(suite, receive);
    } finally {
      destroyAll(send, receive);
    }
  }

  trafficKeys(role: 'initiator' | 'responder'): { sendKey: Secret; receiveKey: Secret } {
    const t = deriveTrafficKeys(this.master);
    return role === 'initiator'
      ? { sendKey: t.initiatorToResponder, receiveKey: t.responderToInitiator }
      : { sendKey: t.responderToInitiator, receiveKey: t.initiatorToResponder };
  }

  destroy(): void {
    destroyAll(this.sendCtx, this.receiveCtx);
  }
}

/** State handling shared by both sides: one step at a time, and everything freed on failure. */
abstract class HandshakeSide<State extends string> {
  protected state: State | 'complete' | 'failed';

  protected constructor(initial: State) {
    this.state = initial;
  }

  get isComplete(): boolean {
    return this.state === 'complete';
  }

  /** Frees everything a failed or abandoned handshake holds. */
  destroy(): void {
    if (this.state !== 'complete') this.fail();
  }

  protected expect(state: State): void {
    if (this.state !== state) throw qtError(ErrorCode.INVALID_STATE, `handshake is ${this.state}, not ${state}`);
  }

  /** Marks the handshake failed and cleanses its secrets. */
  protected fail(): void {
    this.state = 'failed';
    this.release();
  }

  protected abstract release(): void;
}

export interface InitiatorOptions {
  /** Suites to offer, in preference order. */
  cipherSuites: readonly CipherSuiteId[];
  /** Resume with a ticket and the PSK (the master secret of the session the ticket came from). */
  resumption?: { ticket: Uint8Array; psk: Secret };
  /** Run ML-KEM on the libuv threadpool instead of the event loop (see TunnelOptions.offloadCrypto). */
  offloadCrypto?: OffloadPolicy;
  /** Fixed inputs for known-answer tests; normally generated. */
  keyPair?: chkem.ChKemKeyPair;
  random?: Buffer;
}

/** The initiator (client) side. */
export class InitiatorHandshake extends HandshakeSide<'initial' | 'clientHelloSent' | 'clientFinishedSent'> implements Handshake {
  private clientHelloRaw: Buffer | undefined;
  private keys: KeySchedule | undefined;
  private expectedServerVerifyData: Buffer | undefined;
  private resumed = false;
  private sessionId: Buffer = EMPTY;

  private constructor(private readonly options: InitiatorOptions, private keyPair: chkem.ChKemKeyPair) {
    super('initial');
    if (options.cipherSuites.length === 0) throw qtError(ErrorCode.INVALID_ARGUMENT, 'offer at least one cipher suite');
  }

  /** Creates the initiator with a fresh CH-KEM key pair (ML-KEM key generation on the threadpool). */
  static async create(options: InitiatorOptions): Promise<InitiatorHandshake> {
    const keyPair = options.keyPair ?? (offloadNow(options.offloadCrypto) ? await chkem.generateKeyPairAsync() : chkem.generateKeyPair());
    return new InitiatorHandshake(options, keyPair);
  }

  /** The ClientHello frame to send first. */
  async start(): Promise<HandshakeStep> {
    return { send: [this.clientHello()], next: 'frame' };
  }

  async receive(input: Frame | Buffer): Promise<HandshakeStep> {
    if (this.state === 'clientHelloSent') return { send: [await this.onServerHello(input as Frame)], next: 'record' };
    return { send: [], next: 'done', result: this.onServerFinished(input as Buffer) };
  }

  clientHello(): Buffer {
    this.expect('initial');
    const ticket = this.options.resumption?.ticket;
    this.clientHelloRaw = encodeClientHello({
      version: PROTOCOL_VERSION,
      random: this.options.random ?? randomBytes(RANDOM_SIZE),
      sessionId: ticket ? Buffer.from(ticket) : EMPTY,
      publicKey: this.keyPair.publicKey,
      cipherSuites: [...this.options.cipherSuites],
    });
    this.state = 'clientHelloSent';
    return this.clientHelloRaw;
  }

  /** Processes ServerHello; returns the ClientFinished record to send. */
  async onServerHello(frame: Frame): Promise<Buffer> {
    this.expect('clientHelloSent');
    try {
      if (frame.type !== MessageType.SERVER_HELLO) throw unexpected(frame, 'ServerHello');
      const hello = decodeServerHello(frame.payload);
      if (!isCompatibleVersion(hello.version)) throw qtError(ErrorCode.UNSUPPORTED_VERSION, 'server speaks another major version');
      if (!this.options.cipherSuites.includes(hello.cipherSuite as CipherSuiteId)) {
        throw qtError(ErrorCode.UNSUPPORTED_CIPHER_SUITE, 'server chose a cipher suite we did not offer');
      }
      const suite = hello.cipherSuite as CipherSuiteId;
      const fresh = offloadNow(this.options.offloadCrypto)
        ? await chkem.decapsulateAsync(this.keyPair, hello.ciphertext)
        : chkem.decapsulate(this.keyPair, hello.ciphertext);
      this.keyPair.destroy();
      const resumption = this.options.resumption;
      this.resumed = resumption !== undefined && hello.sessionId.length > 0 && hello.sessionId.equals(Buffer.from(resumption.ticket));
      let master = fresh;
      if (this.resumed) {
        master = deriveResumptionMaster(resumption!.psk, fresh);
        fresh.destroy();
      }
      this.sessionId = Buffer.from(hello.sessionId);
      this.keys = new KeySchedule(master, suite, 'initiator');
      const transcript = Buffer.concat([this.clientHelloRaw!, frame.raw]);
      const finished = encodeFinished(MessageType.CLIENT_FINISHED, computeVerifyData('client', master, transcript));
      this.expectedServerVerifyData = computeVerifyData('server', master, Buffer.concat([transcript, finished]));
      this.state = 'clientFinishedSent';
      return sealFinished(this.keys.sendCtx, finished);
    } catch (err) {
      this.fail();
      throw err;
    }
  }

  /** Checks ServerFinished and returns the traffic keys. */
  onServerFinished(sealed: Buffer): HandshakeResult {
    this.expect('clientFinishedSent');
    const keys = this.keys!;
    try {
      const verifyData = decodeFinished(openFinished(keys.receiveCtx, sealed), MessageType.SERVER_FINISHED);
      if (!timingSafeEqual(verifyData, this.expectedServerVerifyData!)) throw handshakeFailed('server verify_data mismatch');
      this.state = 'complete';
      keys.destroy();
      return {
        role: 'initiator', suite: keys.suite, sessionId: this.sessionId, resumed: this.resumed,
        resumptionAttempted: this.options.resumption !== undefined, master: keys.master, ...keys.trafficKeys('initiator'),
      };
    } catch (err) {
      this.fail();
      throw err;
    }
  }

  protected release(): void {
    this.keyPair.destroy();
    if (this.keys) {
      this.keys.destroy();
      this.keys.master.destroy();
    }
  }
}

export interface ResponderOptions {
  /** Suites this responder accepts; it picks the client's first offered suite found here. */
  cipherSuites: readonly CipherSuiteId[];
  /** Enables resumption: tickets in ClientHello are redeemed here. */
  tickets?: TicketManager;
  /** Run ML-KEM on the libuv threadpool instead of the event loop (see TunnelOptions.offloadCrypto). */
  offloadCrypto?: OffloadPolicy;
  /** Fixed inputs for known-answer tests; normally generated. */
  random?: Buffer;
  sessionId?: Buffer;
  encapsulate?: (publicKey: Buffer) => chkem.ChKemEncapsulation;
}

/** The responder (server) side. */
export class ResponderHandshake extends HandshakeSide<'initial' | 'serverHelloSent'> implements Handshake {
  private keys: KeySchedule | undefined;
  private transcript: Buffer = EMPTY;
  private expectedClientVerifyData: Buffer | undefined;
  private resumed = false;
  private ticketOffered = false;
  /** Marks a single-use ticket used, once the client has proven its secret (ClientFinished). */
  private consumeTicket: (() => boolean) | undefined;
  private sessionId: Buffer = EMPTY;

  constructor(private readonly options: ResponderOptions) {
    super('initial');
  }

  /** Processes ClientHello; returns the ServerHello frame to send. */
  async start(): Promise<HandshakeStep> {
    return { send: [], next: 'frame' };
  }

  async receive(input: Frame | Buffer): Promise<HandshakeStep> {
    if (this.state === 'initial') return { send: [await this.onClientHello(input as Frame)], next: 'record' };
    const { serverFinished, result } = this.onClientFinished(input as Buffer);
    return { send: [serverFinished], next: 'done', result };
  }

  async onClientHello(frame: Frame): Promise<Buffer> {
    this.expect('initial');
    try {
      if (frame.type !== MessageType.CLIENT_HELLO) throw unexpected(frame, 'ClientHello');
      const hello = decodeClientHello(frame.payload);
      if (!isCompatibleVersion(hello.version)) throw qtError(ErrorCode.UNSUPPORTED_VERSION, 'client speaks another major version');
      // Unknown suite IDs are skipped, not fatal: room for future suites (the reference refuses).
      const suite = hello.cipherSuites.find((s) => this.options.cipherSuites.includes(s as CipherSuiteId)) as CipherSuiteId | undefined;
      if (suite === undefined) throw qtError(ErrorCode.UNSUPPORTED_CIPHER_SUITE, 'no cipher suite in common');

      let psk: Secret | undefined;
      this.ticketOffered = hello.sessionId.length > 0;
      if (hello.sessionId.length > 0 && this.options.tickets) {
        const redeemed = this.options.tickets.redeem(hello.sessionId);
        // FIPS mode resumes only sessions whose suite is approved; anything else, like any ticket
        // that does not redeem, silently becomes a full handshake (§10.3, §10.5).
        if (redeemed.ok && !suitePermitted(redeemed.suite)) redeemed.master.destroy();
        else if (redeemed.ok) {
          psk = redeemed.master;
          this.consumeTicket = redeemed.consume;
        }
      }
      this.resumed = psk !== undefined;
      this.sessionId = this.resumed ? Buffer.from(hello.sessionId) : (this.options.sessionId ?? randomBytes(SESSION_ID_SIZE));

      const enc = this.options.encapsulate
        ? this.options.encapsulate(hello.publicKey)
        : offloadNow(this.options.offloadCrypto) ? await chkem.encapsulateAsync(hello.publicKey) : chkem.encapsulate(hello.publicKey);
      let master = enc.sharedSecret;
      if (psk) {
        master = deriveResumptionMaster(psk, enc.sharedSecret);
        destroyAll(psk, enc.sharedSecret);
      }
      this.keys = new KeySchedule(master, suite, 'responder');
      const serverHello = encodeServerHello({
        version: PROTOCOL_VERSION,
        random: this.options.random ?? randomBytes(RANDOM_SIZE),
        sessionId: this.sessionId,
        ciphertext: enc.ciphertext,
        cipherSuite: suite,
      });
      this.transcript = Buffer.concat([frame.raw, serverHello]);
      this.expectedClientVerifyData = computeVerifyData('client', master, this.transcript);
      this.state = 'serverHelloSent';
      return serverHello;
    } catch (err) {
      this.fail();
      throw err;
    }
  }

  /** Checks ClientFinished; returns the ServerFinished record to send and the traffic keys. */
  onClientFinished(sealed: Buffer): { serverFinished: Buffer; result: HandshakeResult } {
    this.expect('serverHelloSent');
    const keys = this.keys!;
    try {
      const plaintext = openFinished(keys.receiveCtx, sealed);
      const verifyData = decodeFinished(plaintext, MessageType.CLIENT_FINISHED);
      if (!timingSafeEqual(verifyData, this.expectedClientVerifyData!)) throw handshakeFailed('client verify_data mismatch');
      // Only now has the client proven the ticket's secret: a single-use ticket is used up here.
      if (this.consumeTicket && !this.consumeTicket()) throw handshakeFailed('the ticket was already used');
      // The transcript takes the whole decrypted plaintext, as the reference does.
      const serverVerifyData = computeVerifyData('server', keys.master, Buffer.concat([this.transcript, plaintext]));
      const serverFinished = sealFinished(keys.sendCtx, encodeFinished(MessageType.SERVER_FINISHED, serverVerifyData));
      this.state = 'complete';
      keys.destroy();
      const result: HandshakeResult = {
        role: 'responder', suite: keys.suite, sessionId: this.sessionId, resumed: this.resumed,
        resumptionAttempted: this.ticketOffered, master: keys.master, ...keys.trafficKeys('responder'),
      };
      return { serverFinished, result };
    } catch (err) {
      this.fail();
      throw err;
    }
  }

  protected release(): void {
    if (this.keys) {
      this.keys.destroy();
      this.keys.master.destroy();
    }
  }
}

