/**
 * The protocol version registry: for each version its initiator and responder handshakes and its
 * session. dial() and listen() go through it, so a new version is its files plus one entry here.
 * v2 is the default; v1 (Quantum-Go) is spoken only when the application asks for legacy mode.
 */
import type { Frame } from './frame.js';
import { MessageType } from './constants.js';
import {
  type Handshake,
  type HandshakeResult,
  type HandshakeSummary,
  InitiatorHandshake,
  ResponderHandshake,
} from './handshake.js';
import { SecureSession, type Session, type SessionOptions } from './session.js';
import type { TicketManager } from './ticket.js';
import type { Secret } from '../native.js';
import type { CipherSuiteId } from './constants.js';
import type { KemGroupSpec } from './v2/groups.js';
import {
  ClientHandshakeV2,
  type ExternalPsk,
  type FixedHandshakeInputs,
  type PeerAuthorizer,
  type ResumptionOffer,
  ServerHandshakeV2,
  type TicketOpener,
  type V2HandshakeResult,
} from './v2/handshake.js';
import { SessionV2 } from './v2/session.js';
import { destroyAll } from '../crypto/secret.js';
import type { IdentityKey, PublicIdentityKey } from '../identity/keys.js';
import type { CertificateIdentity } from '../identity/certificates.js';
import type { ClientCertificatePolicy, ServerCertificatePolicy } from './v2/certAuth.js';
import type { OffloadPolicy } from './offload.js';

/** What dial() hands every version's initiator; each reads what it uses. */
export interface InitiatorConfig {
  cipherSuites: readonly CipherSuiteId[];
  offloadCrypto?: OffloadPolicy;
  /** v1: a ticket and the master secret it resumes. */
  resumption?: { ticket: Uint8Array; psk: Secret };
  /** v2: the groups to offer, the key share for the first. */
  groups: readonly KemGroupSpec[];
  /** v2: mutual authentication with an external PSK. */
  psk?: ExternalPsk;
  /** v2: a ticket to offer. */
  ticket?: ResumptionOffer;
  /** v2: the server's pinned key, and our identity key (§13). */
  serverKey?: PublicIdentityKey;
  identity?: IdentityKey;
  /** v2: ask the server for its key (§13.6). */
  requestServerKey?: boolean;
  /** v2 certificates (§14): how to verify the server's, and ours if it asks. */
  serverCertificate?: ServerCertificatePolicy;
  certificate?: CertificateIdentity;
  /** v2 known-answer vectors only. */
  fixed?: FixedHandshakeInputs;
}

/** What listen() hands every version's responder. */
export interface ResponderConfig {
  cipherSuites: readonly CipherSuiteId[];
  offloadCrypto?: OffloadPolicy;
  /** v1 tickets. */
  tickets?: TicketManager;
  /** v2 groups accepted. */
  groups: readonly KemGroupSpec[];
  /** v2: external PSKs by identity; set means required. */
  psk?: (identity: Buffer) => Secret | undefined;
  /** v2 tickets. */
  ticketOpener?: TicketOpener;
  /** v2 pinned keys (§13): ours, who is admitted, and whether a client key is required. */
  identities?: readonly IdentityKey[];
  authorizedPeers?: PeerAuthorizer;
  requirePeerIdentity?: boolean;
  /** v2 certificates (§14): ours, and the CAs of client certificates. */
  certificate?: CertificateIdentity;
  clientCertificates?: ClientCertificatePolicy;
  fixed?: FixedHandshakeInputs;
}

/** One protocol version. */
export interface ProtocolVersionSpec {
  /** The major version byte of the hellos. */
  readonly major: number;
  /** How info() and logs name it. */
  readonly name: string;
  initiator(config: InitiatorConfig): Promise<Handshake>;
  responder(config: ResponderConfig): Handshake;
  session(result: HandshakeSummary, options: SessionOptions): Session;
  /** Cleanses a completed handshake's secrets that no session took (a listener closing meanwhile). */
  discard(result: HandshakeSummary): void;
}

/** Quantum-Go protocol v1 (docs/PROTOCOL.md, part II): legacy mode only. */
export const V1: ProtocolVersionSpec = {
  major: 1,
  name: 'v1',
  initiator: (config) => InitiatorHandshake.create({ cipherSuites: config.cipherSuites, resumption: config.resumption, offloadCrypto: config.offloadCrypto }),
  responder: (config) => new ResponderHandshake({ cipherSuites: config.cipherSuites, tickets: config.tickets, offloadCrypto: config.offloadCrypto }),
  session: (result, options) => new SecureSession(result as HandshakeResult, options),
  discard: (result) => {
    const r = result as HandshakeResult;
    destroyAll(r.master, r.sendKey, r.receiveKey);
  },
};

/** Protocol v2 (docs/PROTOCOL.md, part I): the default. */
export const V2: ProtocolVersionSpec = {
  major: 2,
  name: 'v2',
  initiator: async (config) =>
    new ClientHandshakeV2({
      cipherSuites: config.cipherSuites,
      groups: config.groups,
      psk: config.psk,
      resumption: config.ticket,
      serverKey: config.serverKey,
      identity: config.identity,
      requestServerKey: config.requestServerKey,
      serverCertificate: config.serverCertificate,
      certificate: config.certificate,
      offloadCrypto: config.offloadCrypto,
      fixed: config.fixed,
    }),
  responder: (config) =>
    new ServerHandshakeV2({
      cipherSuites: config.cipherSuites,
      groups: config.groups,
      psk: config.psk,
      tickets: config.ticketOpener,
      identities: config.identities,
      authorizedPeers: config.authorizedPeers,
      requirePeerIdentity: config.requirePeerIdentity,
      certificate: config.certificate,
      clientCertificates: config.clientCertificates,
      offloadCrypto: config.offloadCrypto,
      fixed: config.fixed,
    }),
  session: (result, options) => new SessionV2(result as V2HandshakeResult, options),
  discard: (result) => {
    const r = result as V2HandshakeResult;
    destroyAll(r.clientTrafficSecret, r.serverTrafficSecret, r.exporterSecret, r.resumptionSecret);
  },
};

/** Every version we speak, by major version. */
export const PROTOCOL_VERSIONS: ReadonlyMap<number, ProtocolVersionSpec> = new Map([
  [V2.major, V2],
  [V1.major, V1],
]);

/** The version dial() speaks unless asked for legacy v1. */
export const DEFAULT_PROTOCOL_VERSION: ProtocolVersionSpec = V2;

/** The version a client speaks. */
export function initiatorVersion(legacyV1: boolean): ProtocolVersionSpec {
  return legacyV1 ? V1 : V2;
}

/**
 * The version whose responder answers a ClientHello, by the major version it announces. v1 only
 * when the listener accepts legacy clients; anything else goes to v2's responder, which refuses
 * what it does not speak with the right error and alert.
 */
export function responderVersion(firstFrame: Frame, acceptV1: boolean): ProtocolVersionSpec {
  const major = firstFrame.type === MessageType.CLIENT_HELLO ? firstFrame.payload[0] : undefined;
  if (major === V1.major) return acceptV1 ? V1 : V2;
  return V2;
}
