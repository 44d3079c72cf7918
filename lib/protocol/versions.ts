/**
 * The protocol version registry: for each version its initiator and responder handshakes and its
 * session. dial() and listen() go through it, so a new version is its files plus one entry here.
 */
import type { Frame } from './frame.js';
import { MessageType } from './constants.js';
import {
  type Handshake,
  type HandshakeResult,
  InitiatorHandshake,
  type InitiatorOptions,
  ResponderHandshake,
  type ResponderOptions,
} from './handshake.js';
import { SecureSession, type Session, type SessionOptions } from './session.js';

/** One protocol version. */
export interface ProtocolVersionSpec {
  /** The major version byte of the hellos. */
  readonly major: number;
  /** How info() and logs name it. */
  readonly name: string;
  initiator(options: InitiatorOptions): Promise<Handshake>;
  responder(options: ResponderOptions): Handshake;
  session(result: HandshakeResult, options: SessionOptions): Session;
}

/** Quantum-Go protocol v1 (docs/PROTOCOL.md). */
const V1: ProtocolVersionSpec = {
  major: 1,
  name: 'v1',
  initiator: (options) => InitiatorHandshake.create(options),
  responder: (options) => new ResponderHandshake(options),
  session: (result, options) => new SecureSession(result, options),
};

/** Every version we speak, by major version. */
export const PROTOCOL_VERSIONS: ReadonlyMap<number, ProtocolVersionSpec> = new Map([[V1.major, V1]]);

/** The version dial() speaks. */
export const DEFAULT_PROTOCOL_VERSION: ProtocolVersionSpec = V1;

/**
 * The version whose responder answers a ClientHello, by the major version it announces. An
 * unknown version (or a first frame that is no ClientHello) goes to v1's responder, which refuses
 * it with the right error and alert.
 */
export function responderVersion(firstFrame: Frame): ProtocolVersionSpec {
  const major = firstFrame.type === MessageType.CLIENT_HELLO ? firstFrame.payload[0] : undefined;
  return (major !== undefined && PROTOCOL_VERSIONS.get(major)) || V1;
}
