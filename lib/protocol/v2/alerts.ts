/**
 * Protocol v2's alerts. Before the handshake keys exist a refusal is a plaintext Alert frame
 * (v1's format, so a v1 peer reads it too); afterwards an alert is a record of inner type
 * ALERT whose body is `level ‖ code`, encrypted like everything else. Codes 0x01-0x08 are v1's;
 * v2 adds the ones below. No alert carries text: a peer's description could only mislead.
 */
import { ErrorCode, type ErrorCodeValue, type QuantumTunnelError, qtError } from '../../errors.js';
import { AlertCode, AlertDescription, AlertLevel, encodeAlert } from '../messages.js';

export const V2AlertCode = Object.freeze({
  ...AlertCode,
  /** The PSK (binder or Finished) did not verify, or a required PSK is missing. */
  PSK_MISMATCH: 0x09,
  /** A key reached its usage limit, or the epochs ran out. */
  KEY_EXHAUSTED: 0x0a,
  /** The peer asked for key updates faster than allowed. */
  RATE_LIMITED: 0x0b,
  /** The client's ClientHello is not for any key this server holds (§13). */
  SERVER_KEY_MISMATCH: 0x0c,
  /** The server does not admit the client: no identity, or one it does not authorize (§13). */
  UNKNOWN_PEER: 0x0d,
  /** A certificate chain, name, purpose or signature that does not verify (§14). */
  BAD_CERTIFICATE: 0x0e,
  /** No certificate where one is required (§14). */
  CERTIFICATE_REQUIRED: 0x0f,
  CERTIFICATE_EXPIRED: 0x10,
  CERTIFICATE_REVOKED: 0x11,
  /** No path from the certificate to a trust anchor. */
  UNKNOWN_CA: 0x12,
});

/** The alert code that reports a local failure to the peer. */
export function alertCodeFor(code: string): number {
  switch (code) {
    case ErrorCode.AUTHENTICATION_FAILED:
      return V2AlertCode.BAD_CIPHERTEXT;
    case ErrorCode.PSK_MISMATCH:
      return V2AlertCode.PSK_MISMATCH;
    case ErrorCode.UNSUPPORTED_VERSION:
      return V2AlertCode.UNSUPPORTED_VERSION;
    case ErrorCode.UNSUPPORTED_CIPHER_SUITE:
      return V2AlertCode.UNSUPPORTED_CIPHER;
    case ErrorCode.SEQUENCE_EXHAUSTED:
      return V2AlertCode.KEY_EXHAUSTED;
    case ErrorCode.REKEY_RATE_LIMITED:
      return V2AlertCode.RATE_LIMITED;
    case ErrorCode.SERVER_KEY_MISMATCH:
      return V2AlertCode.SERVER_KEY_MISMATCH;
    case ErrorCode.UNKNOWN_PEER:
      return V2AlertCode.UNKNOWN_PEER;
    case ErrorCode.CERTIFICATE_REQUIRED:
      return V2AlertCode.CERTIFICATE_REQUIRED;
    case ErrorCode.CERTIFICATE_EXPIRED:
      return V2AlertCode.CERTIFICATE_EXPIRED;
    case ErrorCode.CERTIFICATE_REVOKED:
      return V2AlertCode.CERTIFICATE_REVOKED;
    case ErrorCode.CERTIFICATE_UNTRUSTED:
      return V2AlertCode.UNKNOWN_CA;
    case ErrorCode.CERTIFICATE_MALFORMED:
    case ErrorCode.CERTIFICATE_NAME_MISMATCH:
    case ErrorCode.CERTIFICATE_BAD_SIGNATURE:
    case ErrorCode.CERTIFICATE_WRONG_PURPOSE:
    case ErrorCode.CERTIFICATE_REVOCATION_UNKNOWN:
      return V2AlertCode.BAD_CERTIFICATE;
    case ErrorCode.HANDSHAKE_FAILED:
    case ErrorCode.INVALID_KEY:
    case ErrorCode.X25519_LOW_ORDER_POINT:
      return V2AlertCode.HANDSHAKE_FAILURE;
    default:
      return V2AlertCode.UNEXPECTED_MESSAGE;
  }
}

const PEER_ERRORS: Readonly<Record<number, [ErrorCodeValue, string]>> = {
  [V2AlertCode.PSK_MISMATCH]: [ErrorCode.PSK_MISMATCH, 'the peer refused our PSK (wrong key or identity, or none where one is required)'],
  [V2AlertCode.UNSUPPORTED_VERSION]: [ErrorCode.UNSUPPORTED_VERSION, 'the peer does not speak this protocol version'],
  [V2AlertCode.UNSUPPORTED_CIPHER]: [ErrorCode.UNSUPPORTED_CIPHER_SUITE, 'the peer has no cipher suite in common with us'],
  [V2AlertCode.BAD_CIPHERTEXT]: [ErrorCode.AUTHENTICATION_FAILED, 'the peer could not authenticate a record of ours'],
  [V2AlertCode.SERVER_KEY_MISMATCH]: [ErrorCode.SERVER_KEY_MISMATCH, 'the server holds no key we pinned for it (a different server, or its key changed)'],
  [V2AlertCode.UNKNOWN_PEER]: [ErrorCode.UNKNOWN_PEER, 'the server does not authorize our identity (or requires one and we presented none)'],
  [V2AlertCode.CERTIFICATE_REQUIRED]: [ErrorCode.CERTIFICATE_REQUIRED, 'the peer requires a certificate we did not give (or has none to give)'],
  [V2AlertCode.UNKNOWN_CA]: [ErrorCode.CERTIFICATE_UNTRUSTED, 'the peer does not trust the CA of our certificate'],
  [V2AlertCode.CERTIFICATE_EXPIRED]: [ErrorCode.CERTIFICATE_EXPIRED, 'the peer finds our certificate expired or not yet valid'],
  [V2AlertCode.CERTIFICATE_REVOKED]: [ErrorCode.CERTIFICATE_REVOKED, 'the peer finds our certificate revoked'],
  [V2AlertCode.BAD_CERTIFICATE]: [ErrorCode.CERTIFICATE_REJECTED, 'the peer refused our certificate (its chain, name, purpose or signature)'],
};

/** Errors that report the peer's own alert: the receiver of an alert closes without answering it. */
const fromPeer = new WeakSet<Error>();

/** The error a peer's fatal alert becomes on our side. */
export function alertError(code: number | undefined, when: string): QuantumTunnelError {
  const known = code === undefined ? undefined : PEER_ERRORS[code];
  const error = known ? qtError(known[0], `${known[1]} (alert ${when})`) : qtError(ErrorCode.PEER_ALERT, `peer sent alert code ${code ?? 'unknown'} ${when}`);
  fromPeer.add(error);
  return error;
}

/** Whether `error` reports an alert the peer sent (never to be answered with one of ours). */
export function isPeerAlert(error: Error): boolean {
  return fromPeer.has(error);
}

/** A plaintext Alert frame for a handshake refusal, before any keys. */
export function plaintextAlert(error: QuantumTunnelError): Buffer {
  return encodeAlert({ level: AlertLevel.FATAL, code: alertCodeFor(error.code), description: AlertDescription.HANDSHAKE_FAILED });
}

/** The body of an encrypted alert record. */
export function alertBody(level: number, code: number): Buffer {
  return Buffer.of(level, code);
}
