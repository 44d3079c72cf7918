/**
 * X.509 certificates for public-key identities, all in the addon's own OpenSSL: parsing (PEM,
 * several blocks for a chain or bundle, or DER), chain verification against trusted CAs (time,
 * expected DNS name or IP address, server/client purpose, CRLs), and issuing: a self-signed CA
 * and the certificates it signs, with ML-DSA-87 (or P-384 ECDSA with SHA-384) keys, and CRLs.
 *
 * Verification failures are typed: ERR_QT_CERTIFICATE_UNTRUSTED, _EXPIRED, _NAME_MISMATCH,
 * _REVOKED, _REVOCATION_UNKNOWN, _BAD_SIGNATURE, _WRONG_PURPOSE and _MALFORMED (docs/ERRORS.md).
 */
import { native, type NativeCertificate, type PrivateKey, type PublicKey } from '../native.js';
import { ErrorCode, invalidArgument, qtError } from '../errors.js';
import { checkBytes } from './bytes.js';

/** The KeyUsage bits, by their RFC 5280 names. */
export type KeyUsage =
  | 'digitalSignature'
  | 'nonRepudiation'
  | 'keyEncipherment'
  | 'dataEncipherment'
  | 'keyAgreement'
  | 'keyCertSign'
  | 'cRLSign'
  | 'encipherOnly'
  | 'decipherOnly';

/** The extended key usages this module issues and checks. */
export type ExtendedKeyUsage = 'serverAuth' | 'clientAuth';

/** A certificate or bundle: PEM text (one or more "CERTIFICATE" blocks) or bytes (PEM or DER). */
export type CertificateInput = Uint8Array | string;

const KEY_USAGE_BITS: Record<KeyUsage, number> = {
  digitalSignature: 0,
  nonRepudiation: 1,
  keyEncipherment: 2,
  dataEncipherment: 3,
  keyAgreement: 4,
  keyCertSign: 5,
  cRLSign: 6,
  encipherOnly: 7,
  decipherOnly: 8,
};

const PrivateKeyClass = (native as unknown as { PrivateKey: new (...args: never[]) => PrivateKey }).PrivateKey;
const PublicKeyClass = (native as unknown as { PublicKey: new (...args: never[]) => PublicKey }).PublicKey;

const handles = new WeakMap<Certificate, NativeCertificate>();

/** A parsed certificate. Its fields are read once, natively; it holds nothing secret. */
export class Certificate {
  /** X.509 version (3 for anything issued here). */
  readonly version: number;
  /** Subject as an RFC 4514 string, e.g. `CN=vpn.example.com,O=Example`. */
  readonly subject: string;
  /** Issuer as an RFC 4514 string. */
  readonly issuer: string;
  /** Serial number, upper-case hexadecimal without leading zeros. */
  readonly serialNumber: string;
  /** Start of the validity period. */
  readonly notBefore: Date;
  /** End of the validity period. */
  readonly notAfter: Date;
  /** subjectAltName dNSName entries. */
  readonly dnsNames: readonly string[];
  /** subjectAltName iPAddress entries, as text (`192.0.2.1`, `2001:db8::1`). */
  readonly ipAddresses: readonly string[];
  /** KeyUsage bits set, or null when the certificate has no KeyUsage extension. */
  readonly keyUsage: readonly KeyUsage[] | null;
  /** ExtendedKeyUsage purposes (names, or dotted OIDs for others), or null when absent. */
  readonly extendedKeyUsage: readonly string[] | null;
  /** basicConstraints cA. */
  readonly isCA: boolean;
  /** basicConstraints pathLenConstraint of a CA, or null. */
  readonly pathLength: number | null;
  /** `ML-DSA-87`, `P-384`, `ML-KEM-1024`, `ML-KEM-768`, `X25519`, or OpenSSL's name for another algorithm. */
  readonly publicKeyAlgorithm: string;
  /** OpenSSL's name of the signature algorithm, e.g. `ML-DSA-87` or `ecdsa-with-SHA384`. */
  readonly signatureAlgorithm: string;
  /** Whether issuer and subject match and the signature verifies with the certificate's own key. */
  readonly selfSigned: boolean;
  readonly #spkiFingerprint: Buffer;
  readonly #fingerprint256: Buffer;
  readonly #der: Buffer;

  private constructor(handle: NativeCertificate) {
    const i = handle.info();
    handles.set(this, handle);
    this.version = i.version;
    this.subject = i.subject;
    this.issuer = i.issuer;
    this.serialNumber = i.serialNumber;
    this.notBefore = new Date(i.notBefore);
    this.notAfter = new Date(i.notAfter);
    this.dnsNames = Object.freeze([...i.dnsNames]);
    this.ipAddresses = Object.freeze([...i.ipAddresses]);
    this.keyUsage = i.keyUsage === null ? null : Object.freeze([...i.keyUsage] as KeyUsage[]);
    this.extendedKeyUsage = i.extendedKeyUsage === null ? null : Object.freeze([...i.extendedKeyUsage]);
    this.isCA = i.isCA;
    this.pathLength = i.pathLength;
    this.publicKeyAlgorithm = i.publicKeyAlgorithm;
    this.signatureAlgorithm = i.signatureAlgorithm;
    this.selfSigned = i.selfSigned;
    this.#spkiFingerprint = i.spkiFingerprint;
    this.#fingerprint256 = i.fingerprint256;
    this.#der = handle.der();
  }

  /** @internal */
  static fromNative(handle: NativeCertificate): Certificate {
    return new Certificate(handle);
  }

  /** SHA-256 of the SubjectPublicKeyInfo DER: the same as `keyFiles.spkiFingerprint` of the key. */
  get spkiFingerprint(): Buffer {
    return Buffer.from(this.#spkiFingerprint);
  }

  /** SHA-256 of the certificate's DER. */
  get fingerprint256(): Buffer {
    return Buffer.from(this.#fingerprint256);
  }

  /** The certificate's DER encoding. */
  get der(): Buffer {
    return Buffer.from(this.#der);
  }

  /** The certificate as one "CERTIFICATE" PEM block. */
  toPem(): string {
    return pem('CERTIFICATE', this.#der);
  }

  /**
   * The subject public key as a new handle (destroy it when done), for ML-DSA-87, P-384,
   * ML-KEM and X25519 keys; ERR_QT_UNSUPPORTED_ALGORITHM for any other.
   */
  publicKey(): PublicKey {
    return handleOf(this).publicKey();
  }
}

function handleOf(c: unknown, name = 'certificate'): NativeCertificate {
  const h = c instanceof Certificate ? handles.get(c) : undefined;
  if (h === undefined) invalidArgument(`${name} must be a Certificate`);
  return h;
}

/** PEM encoding of DER bytes under `label`. */
export function pem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

function inputBytes(input: unknown, name: string): Uint8Array {
  if (typeof input === 'string') return Buffer.from(input, 'latin1');
  checkBytes(input, name);
  return input;
}

function seconds(d: unknown, name: string): number {
  if (!(d instanceof Date) || Number.isNaN(d.getTime())) invalidArgument(`${name} must be a valid Date`);
  const s = Math.floor(d.getTime() / 1000);
  if (s < 0 || s > 253402300799) invalidArgument(`${name} must be from 1970 to 9999`);
  return s;
}

function checkList<T>(value: unknown, name: string): T[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) invalidArgument(`${name} must be an array`);
  return value as T[];
}

/**
 * Every certificate in `input`: each "CERTIFICATE" PEM block in order (text between blocks is
 * ignored; a block of another kind is an error), or one DER certificate. Throws
 * ERR_QT_CERTIFICATE_MALFORMED for anything that does not parse, including trailing bytes and
 * undecodable or duplicated extensions.
 */
export function parseCertificates(input: CertificateInput): Certificate[] {
  return native.x509Parse(inputBytes(input, 'input')).map((h) => Certificate.fromNative(h));
}

/** Exactly one certificate (PEM or DER); ERR_QT_CERTIFICATE_MALFORMED otherwise. */
export function parseCertificate(input: CertificateInput): Certificate {
  const all = parseCertificates(input);
  if (all.length !== 1) throw qtError(ErrorCode.CERTIFICATE_MALFORMED, `expected one certificate, found ${all.length}`);
  return all[0]!;
}

/** Options of {@link verifyChain}. */
export interface VerifyChainOptions {
  /** The trust anchors: self-signed CA certificates (at least one). */
  trusted: readonly Certificate[];
  /** Untrusted intermediates to build the chain with (the peer sends them with its leaf). */
  intermediates?: readonly Certificate[];
  /** The verification time (default now). */
  time?: Date;
  /** The expected DNS name, matched against the leaf's subjectAltName dNSNames (never the CN). */
  dnsName?: string;
  /** The expected IP address, matched against the leaf's subjectAltName iPAddresses. */
  ipAddress?: string;
  /**
   * `server` or `client`: the leaf's extendedKeyUsage, when present, must allow serverAuth or
   * clientAuth (and so must the CAs' when they have one); its keyUsage must allow signing.
   */
  purpose?: 'server' | 'client';
  /**
   * CRLs (PEM, several blocks allowed, or DER). When given, the leaf's revocation is checked
   * against them: its issuer's CRL must be among them and current.
   */
  crls?: readonly CertificateInput[];
  /** With `crls`: check every certificate of the chain, not only the leaf. */
  crlCheckAll?: boolean;
}

/**
 * Verifies `leaf` up to one of `options.trusted` and returns the chain, leaf first and trust
 * anchor last. Signatures are checked in the active mode's provider (ML-DSA-87, ECDSA...), so in
 * FIPS mode the FIPS provider verifies them. Throws a typed error (see the module comment); its
 * message names the depth of the certificate at fault.
 */
export function verifyChain(leaf: Certificate, options: VerifyChainOptions): Certificate[] {
  if (options === null || typeof options !== 'object') invalidArgument('options must be an object');
  const trusted = checkList<Certificate>(options.trusted, 'trusted').map((c) => handleOf(c, 'each trusted certificate'));
  const intermediates = checkList<Certificate>(options.intermediates, 'intermediates').map((c) => handleOf(c, 'each intermediate'));
  const crls = checkList<CertificateInput>(options.crls, 'crls').map((c) => inputBytes(c, 'each CRL'));
  const time = options.time === undefined ? -1 : seconds(options.time, 'time');
  if (options.dnsName !== undefined && options.ipAddress !== undefined) invalidArgument('give dnsName or ipAddress, not both');
  let name: string | undefined;
  let nameKind = 0;
  if (options.dnsName !== undefined) {
    if (typeof options.dnsName !== 'string' || options.dnsName === '') invalidArgument('dnsName must be a non-empty string');
    [name, nameKind] = [options.dnsName, 1];
  } else if (options.ipAddress !== undefined) {
    if (typeof options.ipAddress !== 'string' || options.ipAddress === '') invalidArgument('ipAddress must be a non-empty string');
    [name, nameKind] = [options.ipAddress, 2];
  }
  let purpose = 0;
  if (options.purpose === 'server') purpose = 1;
  else if (options.purpose === 'client') purpose = 2;
  else if (options.purpose !== undefined) invalidArgument("purpose must be 'server' or 'client'");
  const crlCheckAll = options.crlCheckAll ?? false;
  if (typeof crlCheckAll !== 'boolean') invalidArgument('crlCheckAll must be a boolean');
  const chain = native.x509Verify(handleOf(leaf, 'leaf'), intermediates, trusted, crls, time, name, nameKind, purpose, crlCheckAll);
  return chain.map((h) => Certificate.fromNative(h));
}

/** A distinguished name, written in the order C, ST, L, O, OU, CN. Each value 1 to 64 bytes. */
export interface DistinguishedName {
  /** CN (never used for name matching: subjectAltName is). */
  commonName: string;
  /** O. */
  organization?: string;
  /** OU. */
  organizationalUnit?: string;
  /** C: two letters. */
  country?: string;
  /** ST. */
  stateOrProvince?: string;
  /** L. */
  locality?: string;
}

function subjectPairs(dn: unknown): string[] {
  if (dn === null || typeof dn !== 'object') invalidArgument('subject must be an object with a commonName');
  const d = dn as DistinguishedName;
  if (typeof d.commonName !== 'string' || d.commonName === '') invalidArgument('subject.commonName must be a non-empty string');
  const out: string[] = [];
  for (const [attr, value] of [
    ['C', d.country],
    ['ST', d.stateOrProvince],
    ['L', d.locality],
    ['O', d.organization],
    ['OU', d.organizationalUnit],
    ['CN', d.commonName],
  ] as const) {
    if (value === undefined) continue;
    if (typeof value !== 'string') invalidArgument(`subject attribute ${attr} must be a string`);
    out.push(attr, value);
  }
  return out;
}

function keyUsageBits(usages: readonly KeyUsage[]): number {
  let bits = 0;
  for (const u of usages) {
    const bit = KEY_USAGE_BITS[u];
    if (bit === undefined) invalidArgument(`unknown key usage ${String(u)}`);
    bits |= 1 << bit;
  }
  return bits;
}

function serialBytes(serial: unknown): Uint8Array | undefined {
  if (serial === undefined) return undefined;
  if (typeof serial === 'string') {
    if (!/^[0-9A-Fa-f]{1,40}$/.test(serial)) invalidArgument('serialNumber must be 1 to 40 hexadecimal digits');
    return Buffer.from(serial.length % 2 ? `0${serial}` : serial, 'hex');
  }
  checkBytes(serial, 'serialNumber');
  return serial;
}

function checkKeyHandle(key: unknown, name: string): asserts key is PrivateKey | PublicKey {
  if (!(key instanceof PrivateKeyClass) && !(key instanceof PublicKeyClass)) invalidArgument(`${name} must be a PrivateKey or PublicKey handle`);
}

/** Options of {@link createSelfSignedCa}. */
export interface CreateCaOptions {
  /** The CA's key: ML-DSA-87 (or P-384). It signs the certificate itself. */
  privateKey: PrivateKey;
  /** The CA's name, also its issuer name. */
  subject: DistinguishedName;
  /** Default now. */
  notBefore?: Date;
  /** End of the validity period. */
  notAfter: Date;
  /** Unsigned big-endian bytes or hex, 1 to 20 bytes, not zero; default 16 random bytes. */
  serialNumber?: Uint8Array | string;
  /** basicConstraints pathLenConstraint (default none). */
  pathLength?: number;
}

/**
 * A self-signed CA certificate: basicConstraints cA (critical), keyUsage keyCertSign and cRLSign
 * (critical), subject and authority key identifiers (RFC 7093: SHA-256 of the key, truncated).
 */
export function createSelfSignedCa(options: CreateCaOptions): Certificate {
  const { privateKey, subject, notBefore = new Date(), notAfter, serialNumber, pathLength } = options;
  if (pathLength !== undefined && (!Number.isInteger(pathLength) || pathLength < 0 || pathLength > 255)) {
    invalidArgument('pathLength must be an integer from 0 to 255');
  }
  const handle = native.x509Issue(
    privateKey,
    null,
    privateKey,
    subjectPairs(subject),
    serialBytes(serialNumber),
    seconds(notBefore, 'notBefore'),
    seconds(notAfter, 'notAfter'),
    [],
    [],
    true,
    pathLength ?? -1,
    keyUsageBits(['keyCertSign', 'cRLSign']),
    0,
  );
  return Certificate.fromNative(handle);
}

/** Options of {@link issueCertificate}. */
export interface IssueCertificateOptions {
  /** The issuing CA's certificate and key (ML-DSA-87 or P-384). */
  issuer: Certificate;
  /** The issuing CA's private key; it must match `issuer`'s public key. */
  issuerKey: PrivateKey;
  /** The subject's key: a public key handle, or a private key whose public half is certified. */
  publicKey: PublicKey | PrivateKey;
  /** The subject's name. */
  subject: DistinguishedName;
  /** subjectAltName dNSNames: host names, `*.` as the whole first label at most. */
  dnsNames?: readonly string[];
  /** subjectAltName iPAddresses (IPv4 or IPv6 text). */
  ipAddresses?: readonly string[];
  /** Default now. */
  notBefore?: Date;
  /** End of the validity period. */
  notAfter: Date;
  /** As for {@link createSelfSignedCa}. */
  serialNumber?: Uint8Array | string;
  /**
   * Default for an end entity: ['serverAuth', 'clientAuth']; none for a CA. An empty array
   * leaves the extension out.
   */
  extendedKeyUsage?: readonly ExtendedKeyUsage[];
  /**
   * Default: an end entity's follows its key (ML-DSA-87 and P-384: digitalSignature; ML-KEM:
   * keyEncipherment; X25519: keyAgreement); a CA's is keyCertSign and cRLSign.
   */
  keyUsage?: readonly KeyUsage[];
  /** An intermediate CA certificate instead of an end entity (cA true, no subjectAltName needed). */
  isCA?: boolean;
  /** A CA's pathLenConstraint. */
  pathLength?: number;
}

const DEFAULT_KEY_USAGE: Record<string, KeyUsage[]> = {
  'ML-DSA-87': ['digitalSignature'],
  'P-384': ['digitalSignature'],
  'ML-KEM-1024': ['keyEncipherment'],
  'ML-KEM-768': ['keyEncipherment'],
  X25519: ['keyAgreement'],
};

/**
 * A certificate signed by `issuer`'s key: basicConstraints (critical; cA false for an end
 * entity), keyUsage (critical), extendedKeyUsage, subjectAltName, key identifiers.
 */
export function issueCertificate(options: IssueCertificateOptions): Certificate {
  const { issuer, issuerKey, publicKey, subject, notBefore = new Date(), notAfter, serialNumber } = options;
  const isCA = options.isCA ?? false;
  if (typeof isCA !== 'boolean') invalidArgument('isCA must be a boolean');
  checkKeyHandle(publicKey, 'publicKey');
  const pathLength = options.pathLength;
  if (pathLength !== undefined && (!isCA || !Number.isInteger(pathLength) || pathLength < 0 || pathLength > 255)) {
    invalidArgument('pathLength must be an integer from 0 to 255, for a CA only');
  }
  const eku = options.extendedKeyUsage ?? (isCA ? [] : ['serverAuth', 'clientAuth']);
  let ekuBits = 0;
  for (const e of checkList<ExtendedKeyUsage>(eku, 'extendedKeyUsage')) {
    if (e === 'serverAuth') ekuBits |= 1;
    else if (e === 'clientAuth') ekuBits |= 2;
    else invalidArgument(`extendedKeyUsage must hold 'serverAuth' or 'clientAuth', not ${String(e)}`);
  }
  const keyUsage = options.keyUsage ?? (isCA ? ['keyCertSign', 'cRLSign'] : DEFAULT_KEY_USAGE[publicKey.algorithm] ?? []);
  const handle = native.x509Issue(
    issuerKey,
    handleOf(issuer, 'issuer'),
    publicKey,
    subjectPairs(subject),
    serialBytes(serialNumber),
    seconds(notBefore, 'notBefore'),
    seconds(notAfter, 'notAfter'),
    checkList<string>(options.dnsNames, 'dnsNames'),
    checkList<string>(options.ipAddresses, 'ipAddresses'),
    isCA,
    pathLength ?? -1,
    keyUsageBits(checkList<KeyUsage>(keyUsage, 'keyUsage')),
    ekuBits,
  );
  return Certificate.fromNative(handle);
}

/** One entry of a CRL ({@link CreateCrlOptions.revoked}). */
export interface RevokedCertificate {
  /** As {@link Certificate.serialNumber} (hex), or its unsigned big-endian bytes. */
  serialNumber: string | Uint8Array;
  /** Default: the CRL's thisUpdate. */
  revocationDate?: Date;
}

/** Options of {@link createCrl}. */
export interface CreateCrlOptions {
  /** The CA certificate whose certificates the CRL lists (it must have keyUsage cRLSign). */
  issuer: Certificate;
  /** That CA's private key, which signs the CRL. */
  issuerKey: PrivateKey;
  /** The revoked certificates (may be empty). */
  revoked: readonly RevokedCertificate[];
  /** Default now. */
  thisUpdate?: Date;
  /** When the next CRL is due; after it, verification with this CRL fails with ERR_QT_CERTIFICATE_REVOCATION_UNKNOWN. */
  nextUpdate: Date;
  /** The cRLNumber extension (default 1); increase it with each CRL. */
  crlNumber?: number;
}

/** A v2 CRL signed by `issuer`'s key, as DER (use {@link pem} with `X509 CRL` for PEM). */
export function createCrl(options: CreateCrlOptions): Buffer {
  const { issuer, issuerKey, thisUpdate = new Date(), nextUpdate, crlNumber = 1 } = options;
  const revoked = checkList<RevokedCertificate>(options.revoked, 'revoked');
  const thisUpdateSeconds = seconds(thisUpdate, 'thisUpdate');
  const serials = revoked.map((r) => serialBytes(r?.serialNumber) ?? invalidArgument('each revoked entry needs a serialNumber'));
  const times = revoked.map((r) => (r.revocationDate === undefined ? thisUpdateSeconds : seconds(r.revocationDate, 'revocationDate')));
  if (!Number.isSafeInteger(crlNumber) || crlNumber < 0) invalidArgument('crlNumber must be a non-negative safe integer');
  return native.x509CreateCrl(issuerKey, handleOf(issuer, 'issuer'), serials, times, thisUpdateSeconds, seconds(nextUpdate, 'nextUpdate'), crlNumber);
}
