/**
 * Protocol v2's established session (docs/PROTOCOL.md, "v2 session"), pure: records, the
 * encrypted control messages, KeyUpdate in two tiers, exporters and tickets. No sockets, no
 * timers: the tunnel feeds it frames and sends what it returns.
 *
 * KeyUpdate (either side may start one; request, then acknowledgement):
 *
 *   requester: KeyUpdate(mode, epoch N+1 [, key share])     sealed under epoch N, keeps sending N
 *   responder: KeyUpdateAck(mode, epoch N+1 [, ciphertext]) sealed under N, then sends under N+1;
 *              receives N until the requester's first N+1 record
 *   requester: on the ack, receives and sends under N+1
 *
 * Neither side seals under a key before the peer has said it can open it, and TCP's order means
 * no record is ever opened under the wrong key. `symmetric` ratchets both traffic secrets
 * (RFC 8446 §7.2); `kem` also mixes a fresh hybrid KEM secret of the handshake's group.
 * Simultaneous requests: the client's wins; a server drops its own and answers.
 */
import type { Secret } from '../../native.js';
import { ErrorCode, type QuantumTunnelError, qtError } from '../../errors.js';
import { destroyAll } from '../../crypto/secret.js';
import * as hkdf from '../../crypto/hkdf.js';
import { type CipherSuiteId, FRAME_HEADER_SIZE, MessageType } from '../constants.js';
import type { Frame, SplitFrame } from '../frame.js';
import { AlertLevel, decodeAlert } from '../messages.js';
import type { OutputAllocator, Session, SessionEvent, SessionOptions, SessionStats } from '../session.js';
import { alertBody, alertCodeFor, alertError } from './alerts.js';
import type { ClientKeyShare, KemGroupSpec } from './groups.js';
import type { PeerIdentity, V2HandshakeResult } from './handshake.js';
import { KeySchedule } from './keySchedule.js';
import { V2_VERSION_NUMBER } from './messages.js';
import { type EpochKey, FIRST_APPLICATION_EPOCH, InnerType, KEY_RECORD_LIMIT, MAX_EPOCH, type OpenedRecord, RecordLayer } from './record.js';

/** How a KeyUpdate renews the keys. */
export type RekeyMode = 'symmetric' | 'kem';
const MODE_BYTE: Readonly<Record<RekeyMode, number>> = { symmetric: 0x00, kem: 0x01 };

/**
 * Ours: automatic KeyUpdate triggers per send key, far inside the usage limits of record.ts.
 * The cheap symmetric tier on volume and age, the KEM tier on age.
 */
export const SYMMETRIC_UPDATE_RECORDS = 2 ** 20;
export const SYMMETRIC_UPDATE_BYTES = 2 ** 30;
export const SYMMETRIC_UPDATE_INTERVAL_MS = 10 * 60 * 1000;
export const KEM_UPDATE_INTERVAL_MS = 60 * 60 * 1000;
/** Ours: the longest exporter label and output. */
export const MAX_EXPORTER_LABEL = 200;
export const MAX_EXPORTER_LENGTH = 255 * 48;

const EMPTY = Buffer.alloc(0);

interface PendingUpdate {
  mode: RekeyMode;
  epoch: number;
  share?: ClientKeyShare;
}

/** A KeyUpdate or KeyUpdateAck body: mode ‖ BE16(epoch) ‖ [vec16(key share or ciphertext)]. */
function encodeUpdate(mode: RekeyMode, epoch: number, kem?: Uint8Array): Buffer {
  const out = Buffer.alloc(3 + (kem ? 2 + kem.length : 0));
  out[0] = MODE_BYTE[mode];
  out.writeUInt16BE(epoch, 1);
  if (kem) {
    out.writeUInt16BE(kem.length, 3);
    out.set(kem, 5);
  }
  return out;
}

function decodeUpdate(body: Buffer, what: string): { mode: RekeyMode; epoch: number; kem?: Buffer } {
  const malformed = () => qtError(ErrorCode.MALFORMED_MESSAGE, `malformed ${what}`);
  if (body.length < 3) throw malformed();
  const mode = body[0] === 0 ? 'symmetric' : body[0] === 1 ? 'kem' : undefined;
  if (mode === undefined) throw malformed();
  const epoch = body.readUInt16BE(1);
  if (mode === 'symmetric') {
    if (body.length !== 3) throw malformed();
    return { mode, epoch };
  }
  if (body.length < 5 || body.readUInt16BE(3) !== body.length - 5) throw malformed();
  return { mode, epoch, kem: body.subarray(5) };
}

/** The protocol v2 session. */
export class SessionV2 implements Session {
  readonly version = 'v2';
  readonly role: 'initiator' | 'responder';
  readonly suite: CipherSuiteId;
  readonly group: KemGroupSpec;
  readonly sessionId: Buffer;
  readonly resumed: boolean;
  readonly peerIdentity: PeerIdentity | undefined;
  readonly resumable: boolean;
  readonly approvedServicesOnly: boolean;
  readonly canStartRekey = true;
  readonly stats: SessionStats = { bytesSent: 0, bytesReceived: 0, recordsSent: 0, recordsReceived: 0, rekeys: 0 };

  readonly #records: RecordLayer;
  readonly #schedule = new KeySchedule();
  #clientSecret: Secret;
  #serverSecret: Secret;
  readonly #exporter: Secret;
  readonly #resumption: Secret;
  readonly #now: () => number;
  readonly #options: SessionOptions;
  #epoch = FIRST_APPLICATION_EPOCH;
  #pending: PendingUpdate | undefined;
  #lastKemAt: number;
  #lastPeerUpdateAt: number | undefined;
  #peerClosed = false;
  #destroyed = false;

  constructor(handshake: V2HandshakeResult, options: SessionOptions = {}) {
    this.role = handshake.role;
    this.suite = handshake.suite;
    this.group = handshake.group;
    this.sessionId = handshake.sessionId;
    this.resumed = handshake.resumed;
    this.peerIdentity = handshake.peerIdentity;
    this.resumable = handshake.resumable;
    this.approvedServicesOnly = handshake.approvedServicesOnly;
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#lastKemAt = this.#now();
    this.#clientSecret = handshake.clientTrafficSecret;
    this.#serverSecret = handshake.serverTrafficSecret;
    this.#exporter = handshake.exporterSecret;
    this.#resumption = handshake.resumptionSecret;
    this.#records = new RecordLayer(this.suite, this.#now);
    this.#installBoth(this.#epoch, 'now');
  }

  /** Whether a record from the peer arrived (before it, a client accepts a plaintext Alert). */
  #peerRecordSeen = false;

  get groupName(): string {
    return this.group.displayName;
  }

  get groupId(): number {
    return this.group.id;
  }

  get #isClient(): boolean {
    return this.role === 'initiator';
  }

  /** Installs the current secrets for `epoch`: send at once; receive at once or when the peer switches. */
  #installBoth(epoch: number, receive: 'now' | 'when-peer-switches'): void {
    const [send, recv] = this.#isClient ? [this.#clientSecret, this.#serverSecret] : [this.#serverSecret, this.#clientSecret];
    this.#records.installSend(epoch, send);
    if (receive === 'now') this.#records.installReceive(epoch, recv);
    else this.#records.installNextReceive(epoch, recv);
  }

  // ---- receiving ------------------------------------------------------------------------------

  /** Spanning records come split after their epoch: the head is the whole record header. */
  readonly splitAt = 2;

  receive(frame: Frame | SplitFrame): SessionEvent {
    this.#assertLive();
    if (this.#peerClosed) throw qtError(ErrorCode.UNEXPECTED_MESSAGE, 'record after close_notify');
    // A server that refuses our Finished or certificate answers with a plaintext Alert (§9),
    // which can only come before its first record.
    if (frame.type === MessageType.ALERT && this.#isClient && !this.#peerRecordSeen) {
      // Read the same however the reads cut it (a long one may come split).
      const payload = 'payload' in frame ? frame.payload : Buffer.concat([frame.head.subarray(FRAME_HEADER_SIZE), ...frame.parts]);
      throw alertError(decodeAlert(payload)?.code, 'in answer to our Finished');
    }
    if ('parts' in frame) return this.#receiveParts(frame);
    const record = this.#records.open(frame);
    this.#peerRecordSeen = true;
    if (record.type === InnerType.DATA) {
      this.#countData(record.content.length);
      return { kind: 'data', data: record.content };
    }
    return this.#onControl(record);
  }

  /** A record that spanned socket reads: data stays in the reads' buffers, anything else is joined. */
  #receiveParts(frame: SplitFrame): SessionEvent {
    const record = this.#records.openParts(frame);
    this.#peerRecordSeen = true;
    if (record.type === InnerType.DATA) {
      let length = 0;
      for (const p of record.parts) length += p.length;
      this.#countData(length);
      return { kind: 'data-parts', parts: record.parts };
    }
    return this.#onControl({ type: record.type, content: Buffer.concat(record.parts), epoch: record.epoch });
  }

  #countData(length: number): void {
    if (length === 0) throw qtError(ErrorCode.UNEXPECTED_MESSAGE, 'an empty data record');
    // Stats count data records, as v1's do (its control messages are not records).
    this.stats.recordsReceived++;
    this.stats.bytesReceived += length;
  }

  #onControl(record: OpenedRecord): SessionEvent {
    switch (record.type) {
      case InnerType.PING:
        return this.#empty(record, { kind: 'ping' });
      case InnerType.PONG:
        return this.#empty(record, { kind: 'pong' });
      case InnerType.CLOSE_NOTIFY:
        this.#empty(record, { kind: 'none' });
        this.#peerClosed = true;
        return { kind: 'peer-close' };
      case InnerType.ALERT:
        return this.#onAlert(record.content);
      case InnerType.KEY_UPDATE:
        return this.#onKeyUpdate(record.content);
      case InnerType.KEY_UPDATE_ACK:
        return this.#onKeyUpdateAck(record.content);
      case InnerType.NEW_SESSION_TICKET:
        if (!this.#isClient) throw qtError(ErrorCode.UNEXPECTED_MESSAGE, 'a client sent a ticket');
        return { kind: 'ticket', message: Buffer.from(record.content) };
      default:
        throw qtError(ErrorCode.UNEXPECTED_MESSAGE, `unexpected record type ${record.type} after the handshake`);
    }
  }

  #empty(record: OpenedRecord, event: SessionEvent): SessionEvent {
    if (record.content.length !== 0) throw qtError(ErrorCode.MALFORMED_MESSAGE, 'a control record with a body');
    return event;
  }

  #onAlert(body: Buffer): SessionEvent {
    if (body.length !== 2) throw qtError(ErrorCode.MALFORMED_MESSAGE, 'malformed alert');
    const [level, code] = [body[0]!, body[1]!];
    if (level === AlertLevel.FATAL) return { kind: 'peer-fatal', error: alertError(code, 'during the session') };
    return { kind: 'alert', level, code, description: '' };
  }

  #onKeyUpdate(body: Buffer): SessionEvent {
    const request = decodeUpdate(body, 'KeyUpdate');
    if (this.#pending) {
      // Both asked at once: the client's request wins.
      if (this.#isClient) return { kind: 'none' };
      this.#pending.share?.destroy();
      this.#pending = undefined;
    }
    const next = this.#epoch + 1;
    if (request.epoch !== next) throw qtError(ErrorCode.UNEXPECTED_MESSAGE, `a KeyUpdate to epoch ${request.epoch}, expected ${next}`);
    if (next > MAX_EPOCH) throw qtError(ErrorCode.SEQUENCE_EXHAUSTED, 'the key epochs are used up');
    const now = this.#now();
    const minInterval = this.#options.rekeyMinIntervalMs ?? 0;
    if (this.#lastPeerUpdateAt !== undefined && now - this.#lastPeerUpdateAt < minInterval) {
      throw qtError(ErrorCode.REKEY_RATE_LIMITED, `the peer asked for key updates less than ${minInterval} ms apart`);
    }
    if (request.mode === 'kem' && this.#options.admitRekey && !this.#options.admitRekey()) {
      throw qtError(ErrorCode.REKEY_RATE_LIMITED, 'key update refused by admission control');
    }
    this.#lastPeerUpdateAt = now;
    let shared: Secret | undefined;
    let ack: Buffer;
    if (request.mode === 'kem') {
      if (request.kem!.length !== this.group.clientShareSize) throw qtError(ErrorCode.MALFORMED_MESSAGE, 'a KeyUpdate key share of the wrong size');
      const enc = this.group.encapsulate(request.kem!, V2_VERSION_NUMBER, this.#options.fixedKemUpdate?.().serverShare);
      shared = enc.secret;
      ack = encodeUpdate('kem', next, enc.share);
    } else {
      ack = encodeUpdate('symmetric', next);
    }
    const frame = this.#seal(InnerType.KEY_UPDATE_ACK, ack);
    this.#advance(next, shared, 'when-peer-switches');
    return { kind: 'rekey-response-sent', frame };
  }

  #onKeyUpdateAck(body: Buffer): SessionEvent {
    const ack = decodeUpdate(body, 'KeyUpdateAck');
    const pending = this.#pending;
    if (pending === undefined || ack.mode !== pending.mode || ack.epoch !== pending.epoch) {
      throw qtError(ErrorCode.UNEXPECTED_MESSAGE, 'a KeyUpdateAck that answers no KeyUpdate of ours');
    }
    this.#pending = undefined;
    let shared: Secret | undefined;
    if (pending.mode === 'kem') {
      if (ack.kem!.length !== this.group.serverShareSize) {
        pending.share!.destroy();
        throw qtError(ErrorCode.MALFORMED_MESSAGE, 'a KeyUpdateAck ciphertext of the wrong size');
      }
      shared = pending.share!.finish(ack.kem!, V2_VERSION_NUMBER);
    }
    this.#advance(pending.epoch, shared, 'now');
    return { kind: 'rekey-complete' };
  }

  /**
   * The next generation of both traffic secrets: `traffic upd` of each (RFC 8446 §7.2), and for a
   * KEM update HKDF-Extract(that, K) so the new keys also depend on a fresh hybrid secret.
   */
  #advance(epoch: number, shared: Secret | undefined, receive: 'now' | 'when-peer-switches'): void {
    const ratchet = (secret: Secret): Secret => {
      const next = this.#schedule.nextTrafficSecret(secret);
      if (shared === undefined) return next;
      try {
        return hkdf.extract(hkdf.HkdfDigest.SHA384, next, [shared]);
      } finally {
        next.destroy();
      }
    };
    try {
      const client = ratchet(this.#clientSecret);
      const server = ratchet(this.#serverSecret);
      destroyAll(this.#clientSecret, this.#serverSecret);
      this.#clientSecret = client;
      this.#serverSecret = server;
    } finally {
      shared?.destroy();
    }
    this.#epoch = epoch;
    this.#installBoth(epoch, receive);
    if (shared !== undefined) this.#lastKemAt = this.#now();
    this.stats.rekeys++;
  }

  // ---- sending --------------------------------------------------------------------------------

  #seal(type: (typeof InnerType)[keyof typeof InnerType], content: Uint8Array): Buffer {
    this.#assertLive();
    return this.#records.seal(type, content);
  }

  sealData(chunks: readonly Buffer[], alloc?: OutputAllocator): Buffer {
    this.#assertLive();
    const out = this.#records.sealData(chunks, alloc);
    this.stats.recordsSent += chunks.length;
    for (const c of chunks) this.stats.bytesSent += c.length;
    return out;
  }

  /** Records the send key may still seal (its usage limit); a pending update never holds writes back. */
  sendBudget(): number {
    const key: EpochKey | undefined = this.#records.sendKey;
    return key === undefined ? 0 : KEY_RECORD_LIMIT - key.records;
  }

  get rekeyInProgress(): boolean {
    return this.#pending !== undefined;
  }

  /** Whether an automatic KeyUpdate is due (either side checks its own send key). */
  needsRekey(): boolean {
    return !this.#destroyed && this.#pending === undefined && this.#dueMode() !== undefined;
  }

  #dueMode(): RekeyMode | undefined {
    const now = this.#now();
    if (now - this.#lastKemAt >= KEM_UPDATE_INTERVAL_MS) return 'kem';
    const k = this.#records.sendKey!;
    if (k.records >= SYMMETRIC_UPDATE_RECORDS || k.bytes >= SYMMETRIC_UPDATE_BYTES || now - k.since >= SYMMETRIC_UPDATE_INTERVAL_MS) return 'symmetric';
    return undefined;
  }

  /** Our KeyUpdate request: `mode`, or whichever tier is due (symmetric when none is). */
  startRekey(mode?: RekeyMode): Buffer {
    this.#assertLive();
    if (this.#pending) throw qtError(ErrorCode.INVALID_STATE, 'a key update is already in progress');
    const chosen = mode ?? this.#dueMode() ?? 'symmetric';
    const epoch = this.#epoch + 1;
    if (epoch > MAX_EPOCH) throw qtError(ErrorCode.SEQUENCE_EXHAUSTED, 'the key epochs are used up');
    const share = chosen === 'kem' ? this.group.generateClientShare(this.#options.fixedKemUpdate?.().clientShare) : undefined;
    try {
      const frame = this.#seal(InnerType.KEY_UPDATE, encodeUpdate(chosen, epoch, share?.share));
      this.#pending = { mode: chosen, epoch, share };
      return frame;
    } catch (err) {
      share?.destroy();
      throw err;
    }
  }

  pingFrame(): Buffer {
    return this.#seal(InnerType.PING, EMPTY);
  }

  pongFrame(): Buffer {
    return this.#seal(InnerType.PONG, EMPTY);
  }

  closeNotifyFrame(): Buffer {
    return this.#seal(InnerType.CLOSE_NOTIFY, EMPTY);
  }

  /** An encrypted fatal alert, or nothing when the keys can no longer seal one. */
  fatalAlert(error: QuantumTunnelError): Buffer {
    try {
      return this.#seal(InnerType.ALERT, alertBody(AlertLevel.FATAL, alertCodeFor(error.code)));
    } catch {
      return EMPTY;
    }
  }

  /** A NewSessionTicket record carrying `message` (server only). */
  ticketFrame(message: Buffer): Buffer {
    if (this.#isClient) throw qtError(ErrorCode.INVALID_STATE, 'only a server issues tickets');
    return this.#seal(InnerType.NEW_SESSION_TICKET, message);
  }

  /** @internal For the ticket code: runs `use` with the resumption secret (never exported). */
  withResumptionSecret<T>(use: (resumption: Secret) => T): T {
    this.#assertLive();
    return use(this.#resumption);
  }

  /** RFC 8446 §7.5 exporter over this session's exporter secret. */
  exportKeyingMaterial(label: string, context: Uint8Array | undefined, length: number): Buffer {
    this.#assertLive();
    if (typeof label !== 'string' || label.length === 0 || label.length > MAX_EXPORTER_LABEL || !/^[\x20-\x7e]+$/.test(label)) {
      throw qtError(ErrorCode.INVALID_ARGUMENT, `label must be 1..${MAX_EXPORTER_LABEL} printable ASCII characters`);
    }
    if (context !== undefined && !(context instanceof Uint8Array)) throw qtError(ErrorCode.INVALID_ARGUMENT, 'context must be a Uint8Array');
    if (!Number.isSafeInteger(length) || length < 1 || length > MAX_EXPORTER_LENGTH) {
      throw qtError(ErrorCode.INVALID_ARGUMENT, `length must be 1..${MAX_EXPORTER_LENGTH}`);
    }
    return this.#schedule.exporter(this.#exporter, label, context ?? EMPTY, length);
  }

  masterSecretCopy(): Secret {
    throw qtError(ErrorCode.INVALID_STATE, 'protocol v2 issues tickets in-band; there is no master secret to hand out');
  }

  withMasterSecret<T>(): T {
    throw qtError(ErrorCode.INVALID_STATE, 'protocol v2 issues tickets in-band; there is no master secret to hand out');
  }

  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#pending?.share?.destroy();
    this.#pending = undefined;
    this.#records.destroy();
    destroyAll(this.#clientSecret, this.#serverSecret, this.#exporter, this.#resumption);
  }

  #assertLive(): void {
    if (this.#destroyed) throw qtError(ErrorCode.TUNNEL_CLOSED, 'session destroyed');
  }
}
