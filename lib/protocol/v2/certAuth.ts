/**
 * Certificate authentication (docs/PROTOCOL.md §14): the certificate_auth extension, the
 * CertificateRequest, Certificate and CertificateVerify messages, the signed content, and the
 * verification of a peer's chain. The handshake (handshake.ts) decides when each is sent.
 */
import { ErrorCode, qtError, type QuantumTunnelError } from '../../errors.js';
import * as mldsa from '../../crypto/mldsa.js';
import { type Certificate, type CertificateInput, parseCertificate, verifyChain } from '../../crypto/x509.js';
import type { CertificatePeerIdentity } from '../peerIdentity.js';
import type { CertificateIdentity } from '../../identity/certificates.js';
import type { Extension } from './messages.js';

/** Signature schemes (TLS code points). */
export const SignatureScheme = Object.freeze({ ML_DSA_87: 0x0906 });
const OUR_SCHEMES = [SignatureScheme.ML_DSA_87];

/** The ClientHello extension type of certificate_auth. */
export const CERTIFICATE_AUTH = 0x0003;

/** At most this many certificates in a Certificate message. */
export const MAX_CHAIN = 16;

const SERVER_CONTEXT = Buffer.from('qtun2 server CertificateVerify', 'ascii');
const CLIENT_CONTEXT = Buffer.from('qtun2 client CertificateVerify', 'ascii');
const PAD = Buffer.alloc(64, 0x20);

/** What a client needs to authenticate a server by certificate. */
export interface ServerCertificatePolicy {
  /** Trust anchors. */
  trusted: readonly Certificate[];
  /** The name the leaf must hold: a DNS name or an IP address. */
  dnsName?: string;
  ipAddress?: string;
  crls?: readonly CertificateInput[];
}

/** What a server needs to authenticate clients by certificate. */
export interface ClientCertificatePolicy {
  trusted: readonly Certificate[];
  crls?: readonly CertificateInput[];
}

export function certificateAuthExtension(): Extension {
  const data = Buffer.alloc(2 + 2 * OUR_SCHEMES.length);
  data.writeUInt16BE(2 * OUR_SCHEMES.length, 0);
  OUR_SCHEMES.forEach((s, i) => data.writeUInt16BE(s, 2 + 2 * i));
  return { type: CERTIFICATE_AUTH, data };
}

/** The schemes a client's certificate_auth lists. */
export function decodeCertificateAuth(data: Buffer): number[] {
  if (data.length < 2 || data.readUInt16BE(0) !== data.length - 2 || data.length % 2 !== 0 || data.length === 2) {
    throw qtError(ErrorCode.MALFORMED_MESSAGE, 'malformed certificate_auth');
  }
  const out: number[] = [];
  for (let at = 2; at < data.length; at += 2) out.push(data.readUInt16BE(at));
  return out;
}

/** Whether we can sign for one of `schemes`. */
export function commonScheme(schemes: readonly number[]): number | undefined {
  return schemes.find((s) => OUR_SCHEMES.includes(s as 0x0906));
}

/** Certificate body: vec24(list of vec24(DER)). */
export function encodeCertificateBody(chain: readonly Certificate[]): Buffer {
  const entries = chain.map((c) => {
    const der = c.der;
    const e = Buffer.alloc(3 + der.length);
    e.writeUIntBE(der.length, 0, 3);
    der.copy(e, 3);
    return e;
  });
  const list = Buffer.concat(entries);
  const out = Buffer.alloc(3 + list.length);
  out.writeUIntBE(list.length, 0, 3);
  list.copy(out, 3);
  return out;
}

/** The certificates of a Certificate body (parsed; leaf first). Empty list allowed (a client without one). */
export function decodeCertificateBody(body: Buffer): Certificate[] {
  const bad = (why: string): never => {
    throw qtError(ErrorCode.MALFORMED_MESSAGE, `malformed Certificate (${why})`);
  };
  if (body.length < 3 || body.readUIntBE(0, 3) !== body.length - 3) bad('length');
  const out: Certificate[] = [];
  for (let at = 3; at < body.length; ) {
    if (at + 3 > body.length) bad('entry length');
    const n = body.readUIntBE(at, 3);
    if (n === 0 || at + 3 + n > body.length) bad('entry length');
    if (out.length === MAX_CHAIN) bad(`more than ${MAX_CHAIN} certificates`);
    try {
      out.push(parseCertificate(body.subarray(at + 3, at + 3 + n)));
    } catch (err) {
      throw qtError(ErrorCode.CERTIFICATE_MALFORMED, `a certificate in the peer's chain does not parse: ${(err as Error).message}`, { cause: err });
    }
    at += 3 + n;
  }
  return out;
}

/** The content a CertificateVerify signs: 64 spaces ‖ context ‖ 0 ‖ transcript hash. */
function signedContent(role: 'server' | 'client', transcriptHash: Uint8Array): Buffer {
  return Buffer.concat([PAD, role === 'server' ? SERVER_CONTEXT : CLIENT_CONTEXT, Buffer.of(0), transcriptHash]);
}

/**
 * CertificateVerify body over `transcriptHash` (up to and including our Certificate). The
 * signature (milliseconds) is made on the threadpool, so the event loop keeps serving other
 * tunnels while a server signs for a client that asked.
 */
export async function certificateVerifyBody(identity: CertificateIdentity, role: 'server' | 'client', transcriptHash: Uint8Array, deterministic = false): Promise<Buffer> {
  // Hedged signing (FIPS 204's default); deterministic only for known-answer vectors.
  const signature = await mldsa.signAsync(identity.privateKey, signedContent(role, transcriptHash), { deterministic });
  const out = Buffer.alloc(4 + signature.length);
  out.writeUInt16BE(SignatureScheme.ML_DSA_87, 0);
  out.writeUInt16BE(signature.length, 2);
  signature.copy(out, 4);
  return out;
}

/** Checks a peer's CertificateVerify with its leaf's key (the verification on the threadpool). */
export async function checkCertificateVerify(body: Buffer, leaf: Certificate, role: 'server' | 'client', transcriptHash: Uint8Array): Promise<void> {
  if (body.length < 4 || body.readUInt16BE(2) !== body.length - 4) throw qtError(ErrorCode.MALFORMED_MESSAGE, 'malformed CertificateVerify');
  if (body.readUInt16BE(0) !== SignatureScheme.ML_DSA_87 || leaf.publicKeyAlgorithm !== 'ML-DSA-87') {
    throw qtError(ErrorCode.CERTIFICATE_BAD_SIGNATURE, 'the CertificateVerify scheme is not ML-DSA-87 with an ML-DSA-87 certificate');
  }
  const key = leaf.publicKey();
  try {
    if (!(await mldsa.verifyAsync(key, signedContent(role, transcriptHash), body.subarray(4)))) {
      throw qtError(ErrorCode.CERTIFICATE_BAD_SIGNATURE, `the ${role}'s CertificateVerify signature does not verify`);
    }
  } finally {
    key.destroy();
  }
}

/** Verifies a peer's chain (leaf first) for its role; returns the leaf. Throws the x509 error codes. */
export function verifyPeerChain(chain: readonly Certificate[], role: 'server' | 'client', policy: ServerCertificatePolicy | ClientCertificatePolicy): Certificate {
  const [leaf, ...intermediates] = chain;
  if (leaf === undefined) throw qtError(ErrorCode.CERTIFICATE_REQUIRED, `the ${role} sent no certificate`);
  const p = policy as ServerCertificatePolicy;
  verifyChain(leaf, {
    trusted: policy.trusted,
    intermediates,
    purpose: role,
    ...(role === 'server' && p.dnsName !== undefined ? { dnsName: p.dnsName } : {}),
    ...(role === 'server' && p.ipAddress !== undefined ? { ipAddress: p.ipAddress } : {}),
    ...(policy.crls ? { crls: policy.crls } : {}),
  });
  if (leaf.publicKeyAlgorithm !== 'ML-DSA-87') throw qtError(ErrorCode.CERTIFICATE_BAD_SIGNATURE, `the ${role}'s certificate key is ${leaf.publicKeyAlgorithm}, not ML-DSA-87`);
  return leaf;
}

/** `SHA256:base64` of a certificate's SubjectPublicKeyInfo, the form users compare. */
export function certificateFingerprint(leaf: Certificate): string {
  return `SHA256:${leaf.spkiFingerprint.toString('base64').replace(/=+$/, '')}`;
}

export function certificateIdentityOf(leaf: Certificate): CertificatePeerIdentity {
  return {
    type: 'certificate',
    subject: leaf.subject,
    issuer: leaf.issuer,
    serialNumber: leaf.serialNumber,
    fingerprint: certificateFingerprint(leaf),
    notAfter: leaf.notAfter,
    dnsNames: [...leaf.dnsNames],
    ipAddresses: [...leaf.ipAddresses],
  };
}

/** Whether `error` is one of the certificate failures (for the alert and the error mapping). */
export function isCertificateError(error: QuantumTunnelError): boolean {
  return error.code.startsWith('ERR_QT_CERTIFICATE_');
}
