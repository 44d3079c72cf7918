/**
 * Protocol v2's handshake (docs/PROTOCOL.md, "v2 handshake") as two state machines over frames,
 * read top to bottom like the specification:
 *
 *   Client                                          Server
 *   ClientHello (key share, PSK identities, binders) ──▶
 *                        ◀── ServerHello, {EncryptedExtensions}, {Finished}
 *   {Finished}, [application data]                  ──▶
 *
 * {…} are records under the handshake keys (epoch 1). Every byte of every handshake message is
 * in the transcript; the keys come from the hybrid KEM secret and the PSK (if any) through the
 * schedule of lib/protocol/v2/keySchedule.ts. The client proves a PSK by its binder and Finished,
 * the server by its Finished; without a PSK the handshake is anonymous (like v1, but bound).
 */
import type { Secret } from '../../native.js';
import { ErrorCode, qtError } from '../../errors.js';
import { randomBytes } from '../../crypto/random.js';
import { Sha384Hash } from '../../crypto/hash.js';
import { destroyAll } from '../../crypto/secret.js';
import { cryptoPolicy } from '../../crypto/policy.js';
import { type CipherSuiteId, MessageType } from '../constants.js';
import type { Frame } from '../frame.js';
import type { Handshake, HandshakeStep, HandshakeSummary } from '../handshake.js';
import { decodeAlert } from '../messages.js';
import { cipherSuiteById, suitePermitted } from '../suites.js';
import { type ClientKeyShare, CLIENT_KEY_LABEL, type FixedClientShare, type FixedServerShare, type KemGroupSpec, SERVER_KEY_LABEL } from './groups.js';
import { type IdentityKey, PublicIdentityKey } from '../../identity/keys.js';
import type { KeyPeerIdentity, PeerIdentity } from '../peerIdentity.js';

export type { KeyPeerIdentity, PeerIdentity, PskPeerIdentity } from '../peerIdentity.js';
import {
  certificateAuthExtension,
  CERTIFICATE_AUTH,
  certificateIdentityOf,
  certificateVerifyBody,
  checkCertificateVerify,
  type ClientCertificatePolicy,
  commonScheme,
  decodeCertificateAuth,
  decodeCertificateBody,
  encodeCertificateBody,
  type ServerCertificatePolicy,
  verifyPeerChain,
} from './certAuth.js';
import type { CertificateIdentity } from '../../identity/certificates.js';
import type { Certificate } from '../../crypto/x509.js';
import {
  decodeClientKeyAuth,
  decodeServerKeyAuth,
  encodeClientKeyAuth,
  encodeServerKeyAuth,
  ExtensionType,
  findExtension,
  openIdentity,
  sealIdentity,
} from './keyAuth.js';
import { KeySchedule } from './keySchedule.js';
import {
  type ClientHelloV2,
  decodeClientHelloV2,
  decodeServerHelloV2,
  encodeClientHelloV2,
  encodeServerHelloV2,
  decodeExtensionList,
  encodeExtensionList,
  type Extension,
  HELLO_RANDOM_SIZE,
  NO_PSK,
  type PskIdentity,
  truncatedClientHello,
  V2_VERSION_NUMBER,
} from './messages.js';
import { HANDSHAKE_EPOCH, InnerType, RecordLayer } from './record.js';
import { alertError } from './alerts.js';
import { type OffloadPolicy, offloadNow } from '../offload.js';

/** Handshake message types inside epoch-1 records: `type ‖ BE24(length) ‖ body`. */
export const HandshakeType = Object.freeze({
  ENCRYPTED_EXTENSIONS: 0x08,
  CERTIFICATE: 0x0b,
  CERTIFICATE_REQUEST: 0x0d,
  CERTIFICATE_VERIFY: 0x0f,
  FINISHED: 0x14,
});

/** The binder and Finished MACs: HMAC-SHA-384. */
export const FINISHED_SIZE = 48;

/** An external pre-shared key: an identity both sides know and the secret (a native handle). */
export interface ExternalPsk {
  identity: Buffer;
  secret: Secret;
}

/** Who may connect by key: the entry that admits a presented client key, or undefined. */
export interface PeerAuthorizer {
  lookup(key: PublicIdentityKey): { comment: string } | undefined;
}

/** A ticket the client offers: from an earlier session with the same server. */
export interface ResumptionOffer {
  ticket: Buffer;
  /** The ticket's PSK (not consumed: the caller destroys it). */
  psk: Secret;
  obfuscatedAge: number;
  /** The server's identity when the ticket was issued (an external PSK identity), if any. */
  peerIdentity?: Buffer;
}

/** What the server learns from a ticket it opened. */
export interface OpenedTicket {
  psk: Secret;
  peerIdentity?: Buffer;
  /** Uses a single-use ticket up (after the binder verified); false: it was used already. */
  consume(): Promise<boolean>;
}

/** Opens the tickets this server issued. */
export interface TicketOpener {
  open(ticket: Uint8Array, obfuscatedAge: number): OpenedTicket | undefined;
}

/** What a completed v2 handshake hands to the session. The session owns (and destroys) the secrets. */
export interface V2HandshakeResult extends HandshakeSummary {
  group: KemGroupSpec;
  peerIdentity: PeerIdentity | undefined;
  /** Every service used is FIPS-approved (FIPS mode, an approved group and suite). */
  approvedServicesOnly: boolean;
  clientTrafficSecret: Secret;
  serverTrafficSecret: Secret;
  exporterSecret: Secret;
  resumptionSecret: Secret;
  /** Whether the server may issue tickets: not after pinned keys or certificates (§13.5, §14.4). */
  resumable: boolean;
  /**
   * Client, when it asked (§13.6): the key the server announced. Not proved in this handshake:
   * check its fingerprint, or trust it on first use, then pin it.
   */
  announcedServerKey?: PublicIdentityKey;
}

/** Fixed inputs for known-answer vectors only (docs/PROTOCOL.md appendix): never in production. */
export interface FixedHandshakeInputs {
  random: Buffer;
  clientShare?: FixedClientShare;
  serverShare?: FixedServerShare;
  /** The client's encapsulation to the server's key (§13). */
  serverKeyShare?: FixedServerShare;
  /** The server's encapsulation to the client's key (§13). */
  clientKeyShare?: FixedServerShare;
  /** Deterministic ML-DSA-87 CertificateVerify signatures (§14), so that vectors reproduce. */
  deterministicSignatures?: boolean;
}

export interface V2InitiatorOptions {
  /** Suites to offer, in preference order. */
  cipherSuites: readonly CipherSuiteId[];
  /** Groups to offer, in preference order; the key share is for the first. */
  groups: readonly KemGroupSpec[];
  /** Mutual authentication with an external PSK (the server must select it). */
  psk?: ExternalPsk;
  /** A ticket to try first (not offered with a pinned server key). */
  resumption?: ResumptionOffer;
  /** Pinned-key authentication (§13): the server's public key. Excludes `psk`. */
  serverKey?: PublicIdentityKey;
  /** Our identity key for a server that authorizes clients by key (needs `serverKey`). */
  identity?: IdentityKey;
  /** Ask the server for its key (§13.6; without `serverKey`): unauthenticated, to check or pin. */
  requestServerKey?: boolean;
  /** Certificate authentication of the server (§14): trust anchors and the name to expect. */
  serverCertificate?: ServerCertificatePolicy;
  /** Our certificate, sent when the server asks (needs `serverCertificate`). */
  certificate?: CertificateIdentity;
  /** Key-exchange steps on the libuv threadpool (TunnelOptions.offloadCrypto). */
  offloadCrypto?: OffloadPolicy;
  fixed?: FixedHandshakeInputs;
}

export interface V2ResponderOptions {
  cipherSuites: readonly CipherSuiteId[];
  groups: readonly KemGroupSpec[];
  /**
   * The external PSK of an identity, or undefined. When set, every client must authenticate with
   * a PSK (or a ticket issued under one). The handle stays the caller's.
   */
  psk?: (identity: Buffer) => Secret | undefined;
  tickets?: TicketOpener;
  /** Our identity keys (§13; several while a key is being replaced): clients that pinned one of them. */
  identities?: readonly IdentityKey[];
  /** Client authentication by key: who is admitted. Unset: a client's key is not authenticated. */
  authorizedPeers?: PeerAuthorizer;
  /** Our certificate (§14), for clients that authenticate us by certificate. */
  certificate?: CertificateIdentity;
  /** Client authentication by certificate: the CAs that issue client certificates. */
  clientCertificates?: ClientCertificatePolicy;
  /** Refuse clients that do not prove an authorized key or certificate (unknown_peer / certificate_required). */
  requirePeerIdentity?: boolean;
  /** Key-exchange steps on the libuv threadpool (TunnelOptions.offloadCrypto). */
  offloadCrypto?: OffloadPolicy;
  fixed?: FixedHandshakeInputs;
}

function handshakeMessage(type: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(4 + body.length);
  out[0] = type;
  out.writeUIntBE(body.length, 1, 3);
  body.copy(out, 4);
  return out;
}

/** One handshake message from an epoch-1 record: exactly one per record. */
function readHandshakeMessage(records: RecordLayer, frame: Frame, expected: number | readonly number[], name: string, foreignKeys?: () => Error): { type: number; raw: Buffer; body: Buffer } {
  if (frame.type === MessageType.ALERT) throw alertError(decodeAlert(frame.payload)?.code, 'during the handshake');
  let record;
  try {
    record = records.open(frame);
  } catch (err) {
    // Keys from a different transcript: a hello was changed on the way (or the peer is not the one
    // that answered our hello).
    if ((err as { code?: string }).code === ErrorCode.AUTHENTICATION_FAILED) {
      throw foreignKeys?.() ?? qtError(ErrorCode.HANDSHAKE_FAILED, 'a handshake record does not authenticate: the hellos differ between the ends');
    }
    throw err;
  }
  if (record.type !== InnerType.HANDSHAKE) throw qtError(ErrorCode.UNEXPECTED_MESSAGE, `expected ${name}, got a record of type ${record.type}`);
  const raw = record.content;
  const allowed = typeof expected === 'number' ? [expected] : expected;
  if (raw.length < 4 || !allowed.includes(raw[0]!)) throw qtError(ErrorCode.UNEXPECTED_MESSAGE, `expected ${name}`);
  if (raw.readUIntBE(1, 3) !== raw.length - 4) throw qtError(ErrorCode.MALFORMED_MESSAGE, `malformed ${name}`);
  return { type: raw[0]!, raw: Buffer.from(raw), body: Buffer.from(raw.subarray(4)) };
}

/** EncryptedExtensions: vec16(extensions); server_key (§13.6) is the one defined. */
function encryptedExtensions(extensions: readonly Extension[]): Buffer {
  return handshakeMessage(HandshakeType.ENCRYPTED_EXTENSIONS, encodeExtensionList(extensions));
}

function peerIdentityOf(identity: Buffer | undefined): PeerIdentity | undefined {
  return identity === undefined || identity.length === 0 ? undefined : { type: 'psk', identity: identity.toString('utf8') };
}

/** K_s under one of our keys, or undefined when the ciphertext's classical key is invalid for it (§13.3). */
function decapsulateOrUndefined(key: IdentityKey, ciphertext: Buffer): Secret | undefined {
  try {
    return key.keyPair.decapsulate(ciphertext, V2_VERSION_NUMBER, SERVER_KEY_LABEL);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === ErrorCode.INVALID_KEY || code === ErrorCode.X25519_LOW_ORDER_POINT) return undefined;
    throw err;
  }
}

function keyIdentityOf(key: PublicIdentityKey, comment: string): KeyPeerIdentity {
  return { type: 'key', fingerprint: key.fingerprint, group: key.group.option, comment };
}

const NO_IDENTITY = Buffer.alloc(0);

/** A key blob from the wire: an unknown group or a wrong size is a malformed message (§13.3). */
function keyFromBlob(blob: Buffer, what: string): PublicIdentityKey {
  try {
    return PublicIdentityKey.fromBlob(blob);
  } catch (err) {
    throw qtError(ErrorCode.MALFORMED_MESSAGE, `malformed ${what}: ${(err as Error).message}`, { cause: err });
  }
}

function approved(group: KemGroupSpec, suite: number): boolean {
  return cryptoPolicy.fips && group.fipsApproved && cipherSuiteById(suite)?.fipsApproved === true;
}

/** The schedule state both sides walk through: early → handshake → master. */
class Secrets {
  readonly schedule = new KeySchedule();
  /** The early secret with a PSK, ks in pinned-key mode; undefined: the early secret without PSK. */
  early: Secret | undefined;
  handshake: Secret | undefined;
  clientHs: Secret | undefined;
  serverHs: Secret | undefined;
  master: Secret | undefined;
  clientAp: Secret | undefined;
  serverAp: Secret | undefined;
  exporter: Secret | undefined;
  resumption: Secret | undefined;

  /** Pinned-key mode (§13): the key secret ks takes the early secret's place. Consumes K_s. */
  enterKeySecret(serverKeySecret: Secret): void {
    const early = this.early;
    try {
      this.early = this.schedule.keySecret(early, serverKeySecret);
    } finally {
      destroyAll(early, serverKeySecret);
    }
  }

  /** Handshake secret and both handshake traffic secrets, over CH ‖ SH. Consumes K (and K_c). */
  enterHandshake(shared: Secret, helloHash: Buffer, clientKeySecret?: Secret): void {
    try {
      this.handshake = this.schedule.handshakeSecret(this.early, shared, clientKeySecret);
    } finally {
      destroyAll(shared, clientKeySecret);
    }
    const t = this.schedule.handshakeTrafficSecrets(this.handshake, helloHash);
    this.clientHs = t.client;
    this.serverHs = t.server;
  }

  /** Master secret, application traffic and exporter secrets, over CH … server Finished. */
  enterApplication(serverFinishedHash: Buffer): void {
    this.master = this.schedule.masterSecret(this.handshake!);
    const t = this.schedule.applicationSecrets(this.master, serverFinishedHash);
    this.clientAp = t.client;
    this.serverAp = t.server;
    this.exporter = t.exporter;
  }

  /** Hands the session its secrets; everything else is cleansed. */
  take(clientFinishedHash: Buffer): Pick<V2HandshakeResult, 'clientTrafficSecret' | 'serverTrafficSecret' | 'exporterSecret' | 'resumptionSecret'> {
    this.resumption = this.schedule.resumptionMasterSecret(this.master!, clientFinishedHash);
    const out = {
      clientTrafficSecret: this.clientAp!,
      serverTrafficSecret: this.serverAp!,
      exporterSecret: this.exporter!,
      resumptionSecret: this.resumption,
    };
    this.clientAp = this.serverAp = this.exporter = this.resumption = undefined;
    this.destroy();
    return out;
  }

  destroy(): void {
    destroyAll(this.early, this.handshake, this.clientHs, this.serverHs, this.master, this.clientAp, this.serverAp, this.exporter, this.resumption);
    this.early = this.handshake = this.clientHs = this.serverHs = this.master = undefined;
    this.clientAp = this.serverAp = this.exporter = this.resumption = undefined;
  }
}

/** The session ID info() shows: public, the first 16 bytes of the full transcript hash. */
function sessionIdOf(transcriptHash: Buffer): Buffer {
  return Buffer.from(transcriptHash.subarray(0, 16));
}

/** A PSK the client offers: a ticket or its external PSK. */
interface OfferedPsk {
  kind: 'resumption' | 'external';
  identity: Buffer;
  psk: Secret;
  peerIdentity?: Buffer;
}

/** The client side. */
export class ClientHandshakeV2 implements Handshake {
  #state: 'initial' | 'wait-server-hello' | 'wait-encrypted-extensions' | 'wait-certificate' | 'wait-certificate-verify' | 'wait-finished' | 'done' | 'failed' = 'initial';
  readonly #options: V2InitiatorOptions;
  /** Certificate mode (§14): the server's verified leaf, and whether it asked for ours. */
  #serverLeaf: Certificate | undefined;
  #certificateRequested = false;
  readonly #secrets = new Secrets();
  /** Every handshake message so far, absorbed once (docs/PROTOCOL.md §3.6). */
  readonly #transcript = new Sha384Hash();
  #share: ClientKeyShare | undefined;
  #records: RecordLayer | undefined;
  #offered: OfferedPsk[] = [];
  #selected: OfferedPsk | undefined;
  #suite: CipherSuiteId | undefined;
  #group: KemGroupSpec | undefined;
  #announcedServerKey: PublicIdentityKey | undefined;

  constructor(options: V2InitiatorOptions) {
    if (options.cipherSuites.length === 0) throw qtError(ErrorCode.INVALID_ARGUMENT, 'offer at least one cipher suite');
    if (options.groups.length === 0) throw qtError(ErrorCode.INVALID_ARGUMENT, 'offer at least one key exchange group');
    if (options.identity && !options.serverKey) throw qtError(ErrorCode.INVALID_ARGUMENT, "a client identity key needs the server's key (it is sealed to it)");
    const modes = [options.serverKey, options.psk, options.serverCertificate].filter((m) => m !== undefined).length;
    if (modes > 1) throw qtError(ErrorCode.INVALID_ARGUMENT, 'choose one authentication mode: a PSK, pinned keys or certificates');
    if (options.certificate && !options.serverCertificate) throw qtError(ErrorCode.INVALID_ARGUMENT, "a client certificate needs the server's authenticated first (serverCertificate)");
    // Tickets would stand in for the server's key or certificate: such a client always runs the full handshake.
    this.#options = options.serverKey || options.serverCertificate ? { ...options, resumption: undefined } : options;
  }

  async start(): Promise<HandshakeStep> {
    if (this.#state !== 'initial') throw qtError(ErrorCode.INVALID_STATE, 'handshake already started');
    const o = this.#options;
    const group = o.groups[0]!;
    this.#share = offloadNow(o.offloadCrypto) && !o.fixed ? await group.generateClientShareAsync() : group.generateClientShare(o.fixed?.clientShare);
    if (o.resumption) this.#offered.push({ kind: 'resumption', identity: o.resumption.ticket, psk: o.resumption.psk, peerIdentity: o.resumption.peerIdentity });
    if (o.psk) this.#offered.push({ kind: 'external', identity: o.psk.identity, psk: o.psk.secret, peerIdentity: o.psk.identity });
    const extensions = o.serverKey ? [this.#keyAuth(o.serverKey, o.identity)]
      : o.serverCertificate ? [certificateAuthExtension()]
      : o.requestServerKey ? [{ type: ExtensionType.SERVER_KEY, data: NO_IDENTITY }] : [];
    const hello: ClientHelloV2 = {
      random: o.fixed?.random ?? randomBytes(HELLO_RANDOM_SIZE),
      supportedVersions: [V2_VERSION_NUMBER],
      cipherSuites: [...o.cipherSuites],
      groups: o.groups.map((g) => g.id),
      keyShareGroup: group.id,
      keyShare: this.#share.share,
      pskIdentities: this.#offered.map((p): PskIdentity => ({
        identity: p.identity,
        obfuscatedTicketAge: p.kind === 'resumption' ? o.resumption!.obfuscatedAge : 0,
      })),
      extensions,
      binders: this.#offered.map(() => Buffer.alloc(FINISHED_SIZE)),
    };
    if (this.#offered.length > 0) {
      const truncatedHash = this.#secrets.schedule.transcriptHash([truncatedClientHello(hello)]);
      hello.binders = this.#offered.map((p) => binder(this.#secrets.schedule, p.psk, p.kind, truncatedHash));
    }
    const frame = encodeClientHelloV2(hello);
    this.#transcript.update(frame);
    this.#state = 'wait-server-hello';
    return { send: [frame], next: 'frame' };
  }

  /**
   * key_auth (§13.2): encapsulate to the server's key, enter ks, and seal our identity (or
   * nothing) under it, so that only the holder of the pinned key learns who we are.
   */
  #keyAuth(serverKey: PublicIdentityKey, identity: IdentityKey | undefined) {
    const { share: ciphertext, secret } = serverKey.group.encapsulate(serverKey.bytes, V2_VERSION_NUMBER, this.#options.fixed?.serverKeyShare, SERVER_KEY_LABEL);
    const s = this.#secrets;
    s.enterKeySecret(secret);
    const sealedIdentity = sealIdentity(s.schedule, s.early!, identity ? identity.publicKey.blob : NO_IDENTITY);
    return encodeClientKeyAuth({ ciphertext, sealedIdentity });
  }

  async receive(input: Frame | Buffer): Promise<HandshakeStep> {
    const frame = input as Frame;
    try {
      switch (this.#state) {
        case 'wait-server-hello':
          await this.#onServerHello(frame);
          return { send: [], next: 'frame' };
        case 'wait-encrypted-extensions':
          this.#onEncryptedExtensions(frame);
          return { send: [], next: 'frame' };
        case 'wait-certificate':
          this.#onServerCertificate(frame);
          return { send: [], next: 'frame' };
        case 'wait-certificate-verify':
          await this.#onServerCertificateVerify(frame);
          return { send: [], next: 'frame' };
        case 'wait-finished':
          return await this.#onFinished(frame);
        default:
          throw qtError(ErrorCode.INVALID_STATE, `handshake is ${this.#state}`);
      }
    } catch (err) {
      this.#fail();
      throw err;
    }
  }

  async #onServerHello(frame: Frame): Promise<void> {
    if (frame.type === MessageType.ALERT) throw alertError(decodeAlert(frame.payload)?.code, 'in answer to our ClientHello');
    if (frame.type !== MessageType.SERVER_HELLO) throw qtError(ErrorCode.UNEXPECTED_MESSAGE, `expected ServerHello, got message type 0x${frame.type.toString(16)}`);
    // A v1 ServerHello answers a v1 ClientHello only: here it is a downgrade (or a v1-only peer).
    if (frame.payload[0] !== 2) throw qtError(ErrorCode.UNSUPPORTED_VERSION, `the server answered with protocol version ${frame.payload[0] ?? 'none'}; this client speaks v2 (legacyV1 talks to v1 peers)`);
    const sh = decodeServerHelloV2(frame.payload);
    const o = this.#options;
    if (!o.cipherSuites.includes(sh.cipherSuite as CipherSuiteId)) throw qtError(ErrorCode.UNSUPPORTED_CIPHER_SUITE, 'the server chose a cipher suite we did not offer');
    if (sh.group !== this.#share!.group.id) throw qtError(ErrorCode.HANDSHAKE_FAILED, 'the server chose a group other than our key share');
    if (sh.keyShare.length !== this.#share!.group.serverShareSize) throw qtError(ErrorCode.MALFORMED_MESSAGE, 'a key share of the wrong size for its group');
    // The only ServerHello extension is key_auth, and only in answer to our identity.
    const keyAuth = findExtension(sh.extensions, ExtensionType.KEY_AUTH);
    if (sh.extensions.length > (keyAuth ? 1 : 0)) throw qtError(ErrorCode.UNEXPECTED_MESSAGE, 'a ServerHello extension we did not ask for');
    if (keyAuth && !o.identity) throw qtError(ErrorCode.UNEXPECTED_MESSAGE, 'a key_auth ServerHello extension, but we presented no identity');
    if (sh.selectedPsk !== NO_PSK) {
      this.#selected = this.#offered[sh.selectedPsk];
      if (this.#selected === undefined) throw qtError(ErrorCode.HANDSHAKE_FAILED, 'the server selected a PSK we did not offer');
    } else if (o.psk !== undefined) {
      throw qtError(ErrorCode.PSK_MISMATCH, 'the server did not authenticate with our PSK');
    }
    this.#suite = sh.cipherSuite as CipherSuiteId;
    this.#group = this.#share!.group;
    this.#transcript.update(frame.raw);
    const share = this.#share!;
    this.#share = undefined;
    const clientKeySecret = keyAuth ? this.#decapsulateClientKey(keyAuth) : undefined;
    let shared: Secret;
    try {
      shared = offloadNow(o.offloadCrypto) ? await share.finishAsync(sh.keyShare, V2_VERSION_NUMBER) : share.finish(sh.keyShare, V2_VERSION_NUMBER);
    } catch (err) {
      clientKeySecret?.destroy();
      throw err;
    }
    const s = this.#secrets;
    if (this.#selected) s.early = s.schedule.earlySecret(this.#selected.psk);
    s.enterHandshake(shared, this.#transcript.digest(), clientKeySecret);
    this.#records = new RecordLayer(this.#suite);
    this.#records.installReceive(HANDSHAKE_EPOCH, s.serverHs!);
    this.#records.installSend(HANDSHAKE_EPOCH, s.clientHs!);
    this.#state = 'wait-encrypted-extensions';
  }

  /** K_c: the server's encapsulation to our identity key (§13.3). */
  #decapsulateClientKey(data: Buffer): Secret {
    const ciphertext = decodeServerKeyAuth(data);
    const pair = this.#options.identity!.keyPair;
    if (ciphertext.length !== pair.group.serverShareSize) throw qtError(ErrorCode.MALFORMED_MESSAGE, 'a key_auth ciphertext of the wrong size for our key');
    return pair.decapsulate(ciphertext, V2_VERSION_NUMBER, CLIENT_KEY_LABEL);
  }

  #onEncryptedExtensions(frame: Frame): void {
    // Under a pinned key, handshake keys we cannot share mean the server lacks that key.
    const foreignKeys = this.#options.serverKey
      ? () => qtError(ErrorCode.SERVER_KEY_MISMATCH, 'the server did not prove the key we pinned for it (a different server, or a relay)')
      : undefined;
    const ee = readHandshakeMessage(this.#records!, frame, HandshakeType.ENCRYPTED_EXTENSIONS, 'EncryptedExtensions', foreignKeys);
    const announced = findExtension(decodeExtensionList(ee.body, 'EncryptedExtensions'), ExtensionType.SERVER_KEY);
    if (announced !== undefined) {
      if (!this.#options.requestServerKey || this.#options.serverKey) throw qtError(ErrorCode.UNEXPECTED_MESSAGE, 'a server_key we did not ask for');
      this.#announcedServerKey = keyFromBlob(announced, 'server_key');
    }
    this.#transcript.update(ee.raw);
    this.#state = this.#options.serverCertificate ? 'wait-certificate' : 'wait-finished';
  }

  /** [CertificateRequest], then the server's Certificate: its chain, verified with the name (§14.4). */
  #onServerCertificate(frame: Frame): void {
    const allowed = this.#certificateRequested ? [HandshakeType.CERTIFICATE] : [HandshakeType.CERTIFICATE_REQUEST, HandshakeType.CERTIFICATE];
    const msg = readHandshakeMessage(this.#records!, frame, allowed, 'Certificate');
    if (msg.type === HandshakeType.CERTIFICATE_REQUEST) {
      decodeExtensionList(msg.body, 'CertificateRequest'); // no extensions defined; unknown ones ignored
      this.#certificateRequested = true;
      this.#transcript.update(msg.raw);
      return;
    }
    const chain = decodeCertificateBody(msg.body);
    this.#serverLeaf = verifyPeerChain(chain, 'server', this.#options.serverCertificate!);
    this.#transcript.update(msg.raw);
    this.#state = 'wait-certificate-verify';
  }

  async #onServerCertificateVerify(frame: Frame): Promise<void> {
    const msg = readHandshakeMessage(this.#records!, frame, HandshakeType.CERTIFICATE_VERIFY, 'CertificateVerify');
    await checkCertificateVerify(msg.body, this.#serverLeaf!, 'server', this.#transcript.digest());
    this.#transcript.update(msg.raw);
    this.#state = 'wait-finished';
  }

  async #onFinished(frame: Frame): Promise<HandshakeStep> {
    const fin = readHandshakeMessage(this.#records!, frame, HandshakeType.FINISHED, 'Finished');
    const s = this.#secrets;
    if (!s.schedule.verifyFinished(s.serverHs!, this.#transcript.digest(), fin.body)) {
      // With a PSK the likeliest cause is the other PSK; without one, a changed message.
      throw this.#selected
        ? qtError(ErrorCode.PSK_MISMATCH, 'the server did not prove our PSK (wrong key, or a relay)')
        : qtError(ErrorCode.HANDSHAKE_FAILED, "the server's Finished does not match the transcript");
    }
    this.#transcript.update(fin.raw);
    s.enterApplication(this.#transcript.digest());
    // Asked for a certificate (§14.4): ours (or an empty list), and our signature when we have one.
    const send: Buffer[] = [];
    if (this.#certificateRequested) {
      const own = this.#options.certificate;
      const certificate = handshakeMessage(HandshakeType.CERTIFICATE, encodeCertificateBody(own?.chain ?? []));
      send.push(this.#records!.seal(InnerType.HANDSHAKE, certificate));
      this.#transcript.update(certificate);
      if (own) {
        const verify = handshakeMessage(HandshakeType.CERTIFICATE_VERIFY, await certificateVerifyBody(own, 'client', this.#transcript.digest(), this.#options.fixed?.deterministicSignatures));
        send.push(this.#records!.seal(InnerType.HANDSHAKE, verify));
        this.#transcript.update(verify);
      }
    }
    const ours = handshakeMessage(HandshakeType.FINISHED, s.schedule.finishedMac(s.clientHs!, this.#transcript.digest()));
    send.push(this.#records!.seal(InnerType.HANDSHAKE, ours));
    this.#transcript.update(ours);
    const fullHash = this.#transcript.digest();
    const secrets = s.take(fullHash);
    this.#records!.destroy();
    this.#state = 'done';
    const result: V2HandshakeResult = {
      role: 'initiator',
      suite: this.#suite!,
      group: this.#group!,
      groupName: this.#group!.displayName,
      sessionId: sessionIdOf(fullHash),
      resumed: this.#selected?.kind === 'resumption',
      resumptionAttempted: this.#options.resumption !== undefined,
      peerIdentity: this.#options.serverKey ? keyIdentityOf(this.#options.serverKey, '')
        : this.#serverLeaf ? certificateIdentityOf(this.#serverLeaf)
        : peerIdentityOf(this.#selected?.peerIdentity),
      resumable: this.#options.serverKey === undefined && this.#options.serverCertificate === undefined,
      approvedServicesOnly: approved(this.#group!, this.#suite!),
      ...secrets,
      ...(this.#announcedServerKey ? { announcedServerKey: this.#announcedServerKey } : {}),
    };
    return { send, next: 'done', result };
  }

  #fail(): void {
    this.#state = 'failed';
    this.destroy();
  }

  destroy(): void {
    this.#share?.destroy();
    this.#share = undefined;
    this.#secrets.destroy();
    this.#records?.destroy();
  }
}

/** binder = HMAC(finished key of the binder key, Hash(truncated ClientHello)). */
function binder(schedule: KeySchedule, psk: Secret, kind: 'resumption' | 'external', truncatedHash: Buffer): Buffer {
  const early = schedule.earlySecret(psk);
  const key = schedule.binderKey(early, kind);
  try {
    return schedule.finishedMac(key, truncatedHash);
  } finally {
    destroyAll(early, key);
  }
}

function binderValid(schedule: KeySchedule, psk: Secret, kind: 'resumption' | 'external', truncatedHash: Buffer, mac: Buffer): boolean {
  const early = schedule.earlySecret(psk);
  const key = schedule.binderKey(early, kind);
  try {
    return schedule.verifyFinished(key, truncatedHash, mac);
  } finally {
    destroyAll(early, key);
  }
}

/** The server side. */
export class ServerHandshakeV2 implements Handshake {
  #state: 'initial' | 'wait-client-hello' | 'wait-client-certificate' | 'wait-client-certificate-verify' | 'wait-finished' | 'done' | 'failed' = 'initial';
  readonly #options: V2ResponderOptions;
  /** Certificate mode (§14): the client asked for ours; we ask for its; its verified leaf. */
  #certificateAuth = false;
  #certificateRequested = false;
  #clientLeaf: Certificate | undefined;
  readonly #secrets = new Secrets();
  /** Every handshake message so far, absorbed once (docs/PROTOCOL.md §3.6). */
  readonly #transcript = new Sha384Hash();
  #records: RecordLayer | undefined;
  #suite: CipherSuiteId | undefined;
  #group: KemGroupSpec | undefined;
  #psk: { kind: 'resumption' | 'external'; secret: Secret; owned: boolean; peerIdentity?: Buffer } | undefined;
  #resumptionAttempted = false;
  /** The client's key, when it proved an authorized one (§13). */
  #peerKey: KeyPeerIdentity | undefined;
  /** The client pinned one of our keys (key_auth). */
  #keyAuthenticated = false;

  constructor(options: V2ResponderOptions) {
    this.#options = options;
  }

  async start(): Promise<HandshakeStep> {
    this.#state = 'wait-client-hello';
    return { send: [], next: 'frame' };
  }

  async receive(input: Frame | Buffer): Promise<HandshakeStep> {
    const frame = input as Frame;
    try {
      if (this.#state === 'wait-client-hello') return await this.#onClientHello(frame);
      if (this.#state === 'wait-client-certificate') return this.#onClientCertificate(frame);
      if (this.#state === 'wait-client-certificate-verify') return await this.#onClientCertificateVerify(frame);
      if (this.#state === 'wait-finished') return this.#onFinished(frame);
      throw qtError(ErrorCode.INVALID_STATE, `handshake is ${this.#state}`);
    } catch (err) {
      this.#fail();
      throw err;
    }
  }

  async #onClientHello(frame: Frame): Promise<HandshakeStep> {
    if (frame.type === MessageType.ALERT) throw alertError(decodeAlert(frame.payload)?.code, 'in place of a ClientHello');
    if (frame.type !== MessageType.CLIENT_HELLO) throw qtError(ErrorCode.UNEXPECTED_MESSAGE, `expected ClientHello, got message type 0x${frame.type.toString(16)}`);
    if (frame.payload[0] !== 2) throw qtError(ErrorCode.UNSUPPORTED_VERSION, 'this server speaks protocol v2 only');
    const ch = decodeClientHelloV2(frame.payload);
    const o = this.#options;
    if (!ch.supportedVersions.includes(V2_VERSION_NUMBER)) throw qtError(ErrorCode.UNSUPPORTED_VERSION, 'the client does not offer protocol v2.0');
    const suite = ch.cipherSuites.find((id) => o.cipherSuites.includes(id as CipherSuiteId) && suitePermitted(id));
    if (suite === undefined) throw qtError(ErrorCode.UNSUPPORTED_CIPHER_SUITE, 'no cipher suite in common');
    const group = o.groups.find((g) => g.id === ch.keyShareGroup && g.permitted());
    if (group === undefined || !ch.groups.includes(ch.keyShareGroup)) {
      throw qtError(ErrorCode.HANDSHAKE_FAILED, 'the client sent no key share for a group this server accepts');
    }
    if (ch.keyShare.length !== group.clientShareSize) throw qtError(ErrorCode.MALFORMED_MESSAGE, 'a key share of the wrong size for its group');
    this.#suite = suite as CipherSuiteId;
    this.#group = group;
    this.#checkAuthenticationModes(ch);
    const selected = await this.#selectPsk(ch, frame.raw);
    // Pinned keys (§13): which of our keys the client sealed to, and who it is, before any
    // ephemeral work; then the encapsulation to its key if we authenticate it.
    const clientKey = this.#acceptKeyAuth(ch);
    const announcement = this.#announceKey(ch);
    let clientKeyAuth: { share: Buffer; secret: Secret } | undefined;
    if (clientKey) clientKeyAuth = clientKey.group.encapsulate(clientKey.bytes, V2_VERSION_NUMBER, o.fixed?.clientKeyShare, CLIENT_KEY_LABEL);
    // Everything the client offered is in the transcript from here on.
    this.#transcript.update(frame.raw);
    let ephemeral: { share: Buffer; secret: Secret };
    try {
      ephemeral = offloadNow(o.offloadCrypto) && !o.fixed
        ? await group.encapsulateAsync(ch.keyShare, V2_VERSION_NUMBER)
        : group.encapsulate(ch.keyShare, V2_VERSION_NUMBER, o.fixed?.serverShare);
    } catch (err) {
      clientKeyAuth?.secret.destroy();
      throw err;
    }
    const sh = encodeServerHelloV2({
      random: o.fixed?.random ?? randomBytes(HELLO_RANDOM_SIZE),
      cipherSuite: suite,
      group: group.id,
      keyShare: ephemeral.share,
      selectedPsk: selected,
      extensions: clientKeyAuth ? [encodeServerKeyAuth(clientKeyAuth.share)] : [],
    });
    this.#transcript.update(sh);
    const s = this.#secrets;
    if (this.#psk) s.early = s.schedule.earlySecret(this.#psk.secret);
    s.enterHandshake(ephemeral.secret, this.#transcript.digest(), clientKeyAuth?.secret);
    this.#records = new RecordLayer(this.#suite);
    this.#records.installSend(HANDSHAKE_EPOCH, s.serverHs!);
    this.#records.installReceive(HANDSHAKE_EPOCH, s.clientHs!);
    const ee = encryptedExtensions(announcement);
    this.#transcript.update(ee);
    const certificates = await this.#certificateMessages();
    const flight = [ee, ...certificates];
    const fin = handshakeMessage(HandshakeType.FINISHED, s.schedule.finishedMac(s.serverHs!, this.#transcript.digest()));
    this.#transcript.update(fin);
    s.enterApplication(this.#transcript.digest());
    this.#state = this.#certificateRequested ? 'wait-client-certificate' : 'wait-finished';
    return { send: [sh, ...[...flight, fin].map((m) => this.#records!.seal(InnerType.HANDSHAKE, m))], next: 'frame' };
  }

  /**
   * Which authentication the ClientHello asks for: key_auth, certificate_auth, PSK identities or
   * none; at most one (§13.2, §14.2). A server that requires client authentication refuses a
   * client that cannot give it before any work.
   */
  #checkAuthenticationModes(ch: ClientHelloV2): void {
    const o = this.#options;
    const keyAuth = findExtension(ch.extensions, ExtensionType.KEY_AUTH) !== undefined;
    const certificateAuth = findExtension(ch.extensions, CERTIFICATE_AUTH);
    if ([keyAuth, certificateAuth !== undefined, ch.pskIdentities.length > 0].filter(Boolean).length > 1) {
      throw qtError(ErrorCode.HANDSHAKE_FAILED, 'a ClientHello may ask for one authentication mode only (PSK, key_auth or certificate_auth)');
    }
    if (certificateAuth !== undefined) {
      if (o.certificate === undefined || commonScheme(decodeCertificateAuth(certificateAuth)) === undefined) {
        throw qtError(ErrorCode.CERTIFICATE_REQUIRED, 'the client asks for a certificate (ML-DSA-87) and this server has none');
      }
      this.#certificateAuth = true;
      this.#certificateRequested = o.clientCertificates !== undefined;
    }
    if (o.requirePeerIdentity) {
      if (o.clientCertificates && !this.#certificateRequested) throw qtError(ErrorCode.CERTIFICATE_REQUIRED, 'this server requires a client certificate (the client did not ask for certificate authentication)');
      if (o.authorizedPeers && !keyAuth) throw qtError(ErrorCode.UNKNOWN_PEER, 'the client presented no identity key and this server requires one');
    }
  }

  /**
   * Certificate mode (§14.4): [CertificateRequest], Certificate, CertificateVerify (over
   * H(… Certificate)), each added to the transcript.
   */
  async #certificateMessages(): Promise<Buffer[]> {
    if (!this.#certificateAuth) return [];
    const own = this.#options.certificate!;
    const out: Buffer[] = [];
    if (this.#certificateRequested) out.push(handshakeMessage(HandshakeType.CERTIFICATE_REQUEST, encodeExtensionList([])));
    out.push(handshakeMessage(HandshakeType.CERTIFICATE, encodeCertificateBody(own.chain)));
    for (const m of out) this.#transcript.update(m);
    const verify = handshakeMessage(HandshakeType.CERTIFICATE_VERIFY, await certificateVerifyBody(own, 'server', this.#transcript.digest(), this.#options.fixed?.deterministicSignatures));
    this.#transcript.update(verify);
    out.push(verify);
    return out;
  }

  /** The client's Certificate: empty (refused when we require one) or a chain we verify (§14.4). */
  #onClientCertificate(frame: Frame): HandshakeStep {
    const msg = readHandshakeMessage(this.#records!, frame, HandshakeType.CERTIFICATE, 'Certificate');
    const chain = decodeCertificateBody(msg.body);
    if (chain.length === 0) {
      if (this.#options.requirePeerIdentity) throw qtError(ErrorCode.CERTIFICATE_REQUIRED, 'the client sent no certificate and this server requires one');
      this.#transcript.update(msg.raw);
      this.#state = 'wait-finished';
      return { send: [], next: 'frame' };
    }
    this.#clientLeaf = verifyPeerChain(chain, 'client', this.#options.clientCertificates!);
    this.#transcript.update(msg.raw);
    this.#state = 'wait-client-certificate-verify';
    return { send: [], next: 'frame' };
  }

  async #onClientCertificateVerify(frame: Frame): Promise<HandshakeStep> {
    const msg = readHandshakeMessage(this.#records!, frame, HandshakeType.CERTIFICATE_VERIFY, 'CertificateVerify');
    await checkCertificateVerify(msg.body, this.#clientLeaf!, 'client', this.#transcript.digest());
    this.#transcript.update(msg.raw);
    this.#state = 'wait-finished';
    return { send: [], next: 'frame' };
  }

  /**
   * key_auth (§13.4): find the server key the client encapsulated to by opening its identity block
   * (ks enters the schedule), then admit the client. Returns the client key to authenticate, or
   * undefined (no client authentication by key in this handshake).
   */
  #acceptKeyAuth(ch: ClientHelloV2): PublicIdentityKey | undefined {
    const o = this.#options;
    const data = findExtension(ch.extensions, ExtensionType.KEY_AUTH);
    if (data === undefined) return undefined; // requirePeerIdentity: #checkAuthenticationModes
    const { ciphertext, sealedIdentity } = decodeClientKeyAuth(data);
    const s = this.#secrets;
    let payload: Buffer | undefined;
    for (const key of o.identities ?? []) {
      if (ciphertext.length !== key.group.serverShareSize) continue;
      const serverKeySecret = decapsulateOrUndefined(key, ciphertext);
      if (serverKeySecret === undefined) continue; // not a ciphertext for this key
      let ks: Secret;
      try {
        ks = s.schedule.keySecret(undefined, serverKeySecret); // no PSK with key_auth (§13.4)
      } finally {
        serverKeySecret.destroy();
      }
      payload = openIdentity(s.schedule, ks, sealedIdentity);
      if (payload !== undefined) {
        s.early = ks;
        break;
      }
      ks.destroy();
    }
    if (payload === undefined) throw qtError(ErrorCode.SERVER_KEY_MISMATCH, 'the client pinned a key this server does not hold');
    this.#keyAuthenticated = true;
    const clientKey = payload.length === 0 ? undefined : keyFromBlob(payload, 'the client identity');
    if (o.authorizedPeers === undefined) {
      if (o.requirePeerIdentity) throw qtError(ErrorCode.UNKNOWN_PEER, 'this server admits clients by certificate, not by key');
      return undefined; // we do not authenticate clients by key: its identity is not used
    }
    if (clientKey === undefined) {
      if (o.requirePeerIdentity) throw qtError(ErrorCode.UNKNOWN_PEER, 'the client presented no identity key and this server requires one');
      return undefined;
    }
    const entry = o.authorizedPeers.lookup(clientKey);
    if (entry === undefined) throw qtError(ErrorCode.UNKNOWN_PEER, `the client's key ${clientKey.fingerprint} is not authorized`);
    this.#peerKey = keyIdentityOf(clientKey, entry.comment);
    return clientKey;
  }

  /** server_key (§13.6): our current key, to a client that asked and did not pin one. */
  #announceKey(ch: ClientHelloV2): Extension[] {
    const request = findExtension(ch.extensions, ExtensionType.SERVER_KEY);
    if (request === undefined) return [];
    if (request.length !== 0) throw qtError(ErrorCode.MALFORMED_MESSAGE, 'a server_key request carries no data');
    const key = this.#options.identities?.[0];
    if (key === undefined || findExtension(ch.extensions, ExtensionType.KEY_AUTH) !== undefined) return [];
    return [{ type: ExtensionType.SERVER_KEY, data: key.publicKey.blob }];
  }

  /**
   * The first PSK identity this server knows (a ticket it issued, or an external identity), its
   * binder verified; a single-use ticket is used up only then. A wrong binder is fatal. Without a
   * usable identity: a full handshake, unless this server requires a PSK.
   */
  async #selectPsk(ch: ClientHelloV2, raw: Buffer): Promise<number> {
    const o = this.#options;
    this.#resumptionAttempted = ch.pskIdentities.length > 0 && o.tickets !== undefined;
    if (ch.pskIdentities.length === 0) {
      if (o.psk) throw qtError(ErrorCode.PSK_MISMATCH, 'the client offered no PSK and this server requires one');
      return NO_PSK;
    }
    let bindersLength = 2;
    for (const b of ch.binders) bindersLength += 1 + b.length;
    const truncatedHash = this.#secrets.schedule.transcriptHash([raw.subarray(0, raw.length - bindersLength)]);
    for (let i = 0; i < ch.pskIdentities.length; i++) {
      const identity = ch.pskIdentities[i]!;
      const candidate = this.#candidate(identity);
      if (candidate === undefined) continue;
      const secret = candidate.kind === 'resumption' ? candidate.ticket.psk : candidate.secret;
      if (!binderValid(this.#secrets.schedule, secret, candidate.kind, truncatedHash, ch.binders[i]!)) {
        if (candidate.kind === 'resumption') candidate.ticket.psk.destroy();
        throw qtError(ErrorCode.PSK_MISMATCH, 'a PSK binder did not verify (wrong key, or a changed ClientHello)');
      }
      if (candidate.kind === 'resumption') {
        if (!(await candidate.ticket.consume())) {
          candidate.ticket.psk.destroy();
          continue; // used already: fall back to the next identity or a full handshake
        }
        this.#psk = { kind: 'resumption', secret: candidate.ticket.psk, owned: true, peerIdentity: candidate.ticket.peerIdentity };
      } else {
        this.#psk = { kind: 'external', secret, owned: false, peerIdentity: identity.identity };
      }
      return i;
    }
    if (o.psk) throw qtError(ErrorCode.PSK_MISMATCH, 'the client offered no PSK identity this server knows');
    return NO_PSK;
  }

  #candidate(identity: PskIdentity):
    | { kind: 'resumption'; ticket: OpenedTicket }
    | { kind: 'external'; secret: Secret }
    | undefined {
    const o = this.#options;
    const ticket = o.tickets?.open(identity.identity, identity.obfuscatedTicketAge);
    if (ticket !== undefined) {
      // A server that requires a PSK resumes only sessions that were authenticated by one.
      if (o.psk && (ticket.peerIdentity === undefined || ticket.peerIdentity.length === 0)) {
        ticket.psk.destroy();
        return undefined;
      }
      return { kind: 'resumption', ticket };
    }
    const secret = o.psk?.(identity.identity);
    return secret === undefined ? undefined : { kind: 'external', secret };
  }

  #onFinished(frame: Frame): HandshakeStep {
    const fin = readHandshakeMessage(this.#records!, frame, HandshakeType.FINISHED, 'Finished');
    const s = this.#secrets;
    if (!s.schedule.verifyFinished(s.clientHs!, this.#transcript.digest(), fin.body)) {
      throw this.#psk
        ? qtError(ErrorCode.PSK_MISMATCH, 'the client did not prove the PSK (a relay?)')
        : qtError(ErrorCode.HANDSHAKE_FAILED, "the client's Finished does not match the transcript");
    }
    this.#transcript.update(fin.raw);
    const fullHash = this.#transcript.digest();
    const secrets = s.take(fullHash);
    this.#records!.destroy();
    this.#state = 'done';
    const result: V2HandshakeResult = {
      role: 'responder',
      suite: this.#suite!,
      group: this.#group!,
      groupName: this.#group!.displayName,
      sessionId: sessionIdOf(fullHash),
      resumed: this.#psk?.kind === 'resumption',
      resumptionAttempted: this.#resumptionAttempted,
      peerIdentity: this.#peerKey ?? (this.#clientLeaf ? certificateIdentityOf(this.#clientLeaf) : peerIdentityOf(this.#psk?.peerIdentity)),
      resumable: !this.#keyAuthenticated && !this.#certificateAuth,
      approvedServicesOnly: approved(this.#group!, this.#suite!),
      ...secrets,
    };
    this.#releasePsk();
    return { send: [], next: 'done', result };
  }

  #releasePsk(): void {
    if (this.#psk?.owned) this.#psk.secret.destroy();
    this.#psk = undefined;
  }

  #fail(): void {
    this.#state = 'failed';
    this.destroy();
  }

  destroy(): void {
    this.#releasePsk();
    this.#secrets.destroy();
    this.#records?.destroy();
  }
}
