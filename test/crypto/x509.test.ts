/**
 * X.509: issuing (self-signed ML-DSA-87 CA, intermediates, leaves, CRLs), parsing (PEM bundles,
 * DER, every field), chain verification and each of its typed failures, hybrid chains with a
 * P-384 CA, interoperability with the OpenSSL 3.5 command line both ways (fixtures it made; live
 * when the CLI is present), and FIPS mode.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crypto, QuantumTunnelError } from '../../lib/index.js';
import { addonPath, native } from '../../lib/native.js';
import type { Certificate } from '../../lib/crypto/x509.js';
import { runChild } from '../helpers/child.js';
import { openssl, opensslCli } from '../helpers/opensslCli.js';

const { x509, mldsa87, p384, keyFiles, mlkem1024, x25519 } = crypto;
const fixture = (name: string): Buffer => readFileSync(fileURLToPath(new URL(`../fixtures/pki/${name}`, import.meta.url)));
const DAY = 86_400_000;
/** A second boundary a day ago: certificates are valid from here, so "now" is inside every validity period below. */
const T0 = new Date(Math.floor(Date.now() / 1000) * 1000 - DAY);
const daysAfter = (days: number): Date => new Date(T0.getTime() + days * DAY);
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

function expectCode(fn: () => unknown, code: string, what: string): QuantumTunnelError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err, what).to.be.instanceOf(QuantumTunnelError);
  expect((err as QuantumTunnelError).code, `${what}: ${(err as Error).message}`).to.equal(code);
  return err as QuantumTunnelError;
}

// One PKI for the whole file: root (pathLength 1) → intermediate (pathLength 0) → leaves.
const rootKey = mldsa87.generateKeyPair().privateKey;
const root = x509.createSelfSignedCa({
  privateKey: rootKey,
  subject: { commonName: 'QT Test Root', organization: 'Quantum Tunnel', country: 'DE' },
  notBefore: T0,
  notAfter: daysAfter(3650),
  serialNumber: '01',
  pathLength: 1,
});
const interKey = mldsa87.generateKeyPair().privateKey;
const inter = x509.issueCertificate({
  issuer: root,
  issuerKey: rootKey,
  publicKey: keyFiles.publicKeyOf(interKey),
  subject: { commonName: 'QT Test Intermediate' },
  isCA: true,
  pathLength: 0,
  notBefore: T0,
  notAfter: daysAfter(1825),
});
const leafKey = mldsa87.generateKeyPair().privateKey;
const leaf = x509.issueCertificate({
  issuer: inter,
  issuerKey: interKey,
  publicKey: leafKey,
  subject: { commonName: 'vpn.example.com', organization: 'Ünïcode, Org' },
  dnsNames: ['vpn.example.com', '*.example.net'],
  ipAddresses: ['192.0.2.7', '2001:db8::1'],
  notBefore: T0,
  notAfter: daysAfter(365),
  serialNumber: Buffer.from([0x0a, 0x1b, 0x2c]),
  extendedKeyUsage: ['serverAuth'],
});
const clientLeaf = x509.issueCertificate({
  issuer: inter,
  issuerKey: interKey,
  publicKey: mldsa87.generateKeyPair().privateKey,
  subject: { commonName: 'client 7' },
  dnsNames: ['client7.example.com'],
  notBefore: T0,
  notAfter: daysAfter(365),
  extendedKeyUsage: ['clientAuth'],
});
const chainOf = (c: Certificate[]): string[] => c.map((x) => x.subject);

describe('X.509: issuing and parsing', () => {
  it('a self-signed ML-DSA-87 CA has the fields asked for', () => {
    expect(root).to.deep.include({
      version: 3,
      subject: 'CN=QT Test Root,O=Quantum Tunnel,C=DE',
      issuer: 'CN=QT Test Root,O=Quantum Tunnel,C=DE',
      serialNumber: '01',
      isCA: true,
      pathLength: 1,
      extendedKeyUsage: null,
      publicKeyAlgorithm: 'ML-DSA-87',
      signatureAlgorithm: 'ML-DSA-87',
      selfSigned: true,
    });
    expect(root.keyUsage).to.deep.equal(['keyCertSign', 'cRLSign']);
    expect(root.notBefore.getTime()).to.equal(T0.getTime());
    expect(root.notAfter.getTime()).to.equal(daysAfter(3650).getTime());
    expect(root.dnsNames).to.deep.equal([]);
    expect(root.spkiFingerprint.equals(keyFiles.spkiFingerprint(rootKey))).to.equal(true);
  });

  it('a leaf has its names, SANs, key usages, basic constraints, serial and fingerprints', () => {
    expect(leaf).to.deep.include({
      subject: 'CN=vpn.example.com,O=Ünïcode\\, Org',
      issuer: 'CN=QT Test Intermediate',
      serialNumber: '0A1B2C',
      isCA: false,
      pathLength: null,
      selfSigned: false,
      publicKeyAlgorithm: 'ML-DSA-87',
    });
    expect(leaf.dnsNames).to.deep.equal(['vpn.example.com', '*.example.net']);
    expect(leaf.ipAddresses).to.deep.equal(['192.0.2.7', '2001:db8::1']);
    expect(leaf.keyUsage).to.deep.equal(['digitalSignature']);
    expect(leaf.extendedKeyUsage).to.deep.equal(['serverAuth']);
    expect(clientLeaf.extendedKeyUsage).to.deep.equal(['clientAuth']);
    expect(leaf.fingerprint256.toString('hex')).to.equal(sha256(leaf.der));
    expect(leaf.spkiFingerprint.equals(keyFiles.spkiFingerprint(leafKey))).to.equal(true);
    expect(inter).to.deep.include({ isCA: true, pathLength: 0, issuer: root.subject });
    // Buffers handed out are copies.
    leaf.der.fill(0);
    expect(leaf.fingerprint256.toString('hex')).to.equal(sha256(leaf.der));
    // The default serial: 16 random bytes, positive, different each time.
    const serials = [0, 1].map(
      () => x509.issueCertificate({ issuer: inter, issuerKey: interKey, publicKey: leafKey, subject: { commonName: 's' }, notAfter: daysAfter(2) }).serialNumber,
    );
    expect(serials[0]).to.match(/^[4-7][0-9A-F]{31}$/);
    expect(serials[0]).to.not.equal(serials[1]);
  });

  it('the subject public key comes out as a handle that verifies the subject\'s signatures', () => {
    const pk = leaf.publicKey();
    expect(pk.algorithm).to.equal('ML-DSA-87');
    expect(keyFiles.spkiFingerprint(pk).equals(leaf.spkiFingerprint)).to.equal(true);
    expect(mldsa87.verify(pk, Buffer.from('hi'), mldsa87.sign(leafKey, Buffer.from('hi')))).to.equal(true);
    pk.destroy();
  });

  it('certifies KEM keys too (ML-KEM-1024: keyEncipherment; X25519: keyAgreement), usable from the certificate', () => {
    const kem = mlkem1024.generateKeyPair();
    const cert = x509.issueCertificate({ issuer: inter, issuerKey: interKey, publicKey: kem.privateKey, subject: { commonName: 'kem' }, dnsNames: ['kem.example'], notAfter: daysAfter(30) });
    expect(cert.publicKeyAlgorithm).to.equal('ML-KEM-1024');
    expect(cert.keyUsage).to.deep.equal(['keyEncipherment']);
    const e = mlkem1024.encapsulate(cert.publicKey());
    expect(crypto.timingSafeEqual(mlkem1024.decapsulate(kem.privateKey, e.ciphertext), e.sharedSecret)).to.equal(true);
    const x = x25519.generateKeyPair();
    const xc = x509.issueCertificate({ issuer: inter, issuerKey: interKey, publicKey: x.privateKey, subject: { commonName: 'x' }, notAfter: daysAfter(30) });
    expect([xc.publicKeyAlgorithm, ...(xc.keyUsage ?? [])]).to.deep.equal(['X25519', 'keyAgreement']);
    expect(keyFiles.publicKeyBytes(xc.publicKey()).equals(x.publicKey)).to.equal(true);
  });

  it('parses PEM bundles in order (text between blocks allowed), DER, and its own PEM output', () => {
    const bundle = `leaf\n${leaf.toPem()}\nintermediate\n${inter.toPem()}${root.toPem()}trailing text\n`;
    const all = x509.parseCertificates(bundle);
    expect(chainOf(all)).to.deep.equal([leaf.subject, inter.subject, root.subject]);
    expect(all.map((c) => c.fingerprint256.toString('hex'))).to.deep.equal([leaf, inter, root].map((c) => c.fingerprint256.toString('hex')));
    expect(x509.parseCertificate(leaf.der).fingerprint256.equals(leaf.fingerprint256)).to.equal(true);
    expect(x509.parseCertificate(Buffer.from(leaf.toPem())).serialNumber).to.equal('0A1B2C');
    expect(leaf.toPem()).to.match(/^-----BEGIN CERTIFICATE-----\n([A-Za-z0-9+/=]{64}\n)+[A-Za-z0-9+/=]{1,64}\n-----END CERTIFICATE-----\n$/);
  });

  it('refuses what does not parse with ERR_QT_CERTIFICATE_MALFORMED', () => {
    const der = leaf.der;
    const wrap = (label: string, b: Buffer): string => `-----BEGIN ${label}-----\n${b.toString('base64')}\n-----END ${label}-----\n`;
    const cases: Array<[string, string | Buffer]> = [
      ['empty', Buffer.alloc(0)],
      ['garbage', Buffer.from('not a certificate')],
      ['truncated DER', der.subarray(0, der.length - 1)],
      ['trailing byte after DER', Buffer.concat([der, Buffer.from([0])])],
      ['trailing byte inside PEM', wrap('CERTIFICATE', Buffer.concat([der, Buffer.from([0])]))],
      ['a private key block in a bundle', leaf.toPem() + keyFiles.exportPrivateKeyPem(leafKey).toString()],
      ['a broken second block', `${leaf.toPem()}-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n`],
      ['a CRL', wrap('X509 CRL', x509.createCrl({ issuer: inter, issuerKey: interKey, revoked: [], nextUpdate: daysAfter(7) }))],
    ];
    for (const [what, input] of cases) expectCode(() => x509.parseCertificates(input), 'ERR_QT_CERTIFICATE_MALFORMED', what);
    expectCode(() => x509.parseCertificate(leaf.toPem() + root.toPem()), 'ERR_QT_CERTIFICATE_MALFORMED', 'two where one is expected');
    expectCode(() => native.x509Parse(Buffer.alloc((4 << 20) + 1)), 'ERR_QT_INVALID_ARGUMENT', 'over 4 MiB');
  });

  it('refuses to issue what it should not, with typed errors', () => {
    const base = { issuer: inter, issuerKey: interKey, publicKey: leafKey, subject: { commonName: 'x' }, notAfter: daysAfter(10) };
    const cases: Array<[string, () => unknown, string]> = [
      ['a bad DNS name', () => x509.issueCertificate({ ...base, dnsNames: ['bad_name.example'] }), 'ERR_QT_INVALID_ARGUMENT'],
      ['a partial wildcard', () => x509.issueCertificate({ ...base, dnsNames: ['a*.example.com'] }), 'ERR_QT_INVALID_ARGUMENT'],
      ['a wildcard alone', () => x509.issueCertificate({ ...base, dnsNames: ['*'] }), 'ERR_QT_INVALID_ARGUMENT'],
      ['a label of 64', () => x509.issueCertificate({ ...base, dnsNames: [`${'a'.repeat(64)}.example`] }), 'ERR_QT_INVALID_ARGUMENT'],
      ['a bad IP', () => x509.issueCertificate({ ...base, ipAddresses: ['192.0.2.300'] }), 'ERR_QT_INVALID_ARGUMENT'],
      ['notAfter before notBefore', () => x509.issueCertificate({ ...base, notBefore: daysAfter(10), notAfter: daysAfter(9) }), 'ERR_QT_INVALID_ARGUMENT'],
      ['an invalid date', () => x509.issueCertificate({ ...base, notAfter: new Date(NaN) }), 'ERR_QT_INVALID_ARGUMENT'],
      ['a serial of zero', () => x509.issueCertificate({ ...base, serialNumber: '00' }), 'ERR_QT_INVALID_ARGUMENT'],
      ['a serial of 21 bytes', () => x509.issueCertificate({ ...base, serialNumber: Buffer.alloc(21, 1) }), 'ERR_QT_INVALID_ARGUMENT'],
      ['a CN of 65 bytes', () => x509.issueCertificate({ ...base, subject: { commonName: 'c'.repeat(65) } }), 'ERR_QT_INVALID_ARGUMENT'],
      ['a country of 3 letters', () => x509.issueCertificate({ ...base, subject: { commonName: 'c', country: 'DEU' } }), 'ERR_QT_INVALID_ARGUMENT'],
      ['a NUL in the CN', () => x509.issueCertificate({ ...base, subject: { commonName: 'a\0b' } }), 'ERR_QT_INVALID_ARGUMENT'],
      ['the wrong issuer key', () => x509.issueCertificate({ ...base, issuerKey: rootKey }), 'ERR_QT_INVALID_KEY'],
      ['an issuer that is no CA', () => x509.issueCertificate({ ...base, issuer: leaf, issuerKey: leafKey }), 'ERR_QT_INVALID_ARGUMENT'],
      ['an ML-KEM issuer key', () => x509.issueCertificate({ ...base, issuerKey: mlkem1024.generateKeyPair().privateKey }), 'ERR_QT_INVALID_KEY'],
      ['a pathLength on a leaf', () => x509.issueCertificate({ ...base, pathLength: 0 }), 'ERR_QT_INVALID_ARGUMENT'],
      ['an unknown EKU', () => x509.issueCertificate({ ...base, extendedKeyUsage: ['codeSigning' as never] }), 'ERR_QT_INVALID_ARGUMENT'],
      ['a self-signed CA for another key', () => native.x509Issue(rootKey, null, leafKey, ['CN', 'x'], undefined, 0, 10, [], [], true, -1, 96, 0), 'ERR_QT_INVALID_ARGUMENT'],
      ['an ML-KEM CA key', () => x509.createSelfSignedCa({ privateKey: mlkem1024.generateKeyPair().privateKey, subject: { commonName: 'k' }, notAfter: daysAfter(1) }), 'ERR_QT_INVALID_KEY'],
    ];
    for (const [what, fn, code] of cases) expectCode(fn, code, what);
  });
});

describe('X.509: chain verification', () => {
  const trusted = [root];
  const intermediates = [inter];

  it('verifies leaf → intermediate → root and returns the chain; by DNS name, wildcard and IP address; for its purpose', () => {
    expect(chainOf(x509.verifyChain(leaf, { trusted, intermediates }))).to.deep.equal([leaf.subject, inter.subject, root.subject]);
    expect(x509.verifyChain(leaf, { trusted, intermediates, dnsName: 'vpn.example.com', purpose: 'server' })).to.have.length(3);
    expect(x509.verifyChain(leaf, { trusted, intermediates, dnsName: 'VPN.Example.COM' })).to.have.length(3);
    expect(x509.verifyChain(leaf, { trusted, intermediates, dnsName: 'anything.example.net' })).to.have.length(3);
    expect(x509.verifyChain(leaf, { trusted, intermediates, ipAddress: '192.0.2.7' })).to.have.length(3);
    expect(x509.verifyChain(leaf, { trusted, intermediates, ipAddress: '2001:0db8:0000::0001' })).to.have.length(3);
    expect(x509.verifyChain(clientLeaf, { trusted, intermediates, purpose: 'client', dnsName: 'client7.example.com' })).to.have.length(3);
    expect(x509.verifyChain(inter, { trusted })).to.have.length(2);
    expect(x509.verifyChain(root, { trusted })).to.have.length(1);
    // An explicit time inside every validity period.
    expect(x509.verifyChain(leaf, { trusted, intermediates, time: daysAfter(100) })).to.have.length(3);
  });

  it('untrusted: no intermediate, another root, a self-signed leaf, a path length exceeded', () => {
    let e = expectCode(() => x509.verifyChain(leaf, { trusted }), 'ERR_QT_CERTIFICATE_UNTRUSTED', 'no intermediate');
    expect(e.message).to.equal('the certificate at depth 0 cannot be traced to a trusted CA');
    expect(e.detail).to.match(/unable to get local issuer certificate \(X509_V error 20, depth 0\)/);
    const otherKey = mldsa87.generateKeyPair().privateKey;
    const other = x509.createSelfSignedCa({ privateKey: otherKey, subject: { commonName: 'QT Test Root', organization: 'Quantum Tunnel', country: 'DE' }, notBefore: T0, notAfter: daysAfter(10) });
    expectCode(() => x509.verifyChain(leaf, { trusted: [other], intermediates }), 'ERR_QT_CERTIFICATE_UNTRUSTED', 'a root of the same name and another key');
    expectCode(() => x509.verifyChain(other, { trusted }), 'ERR_QT_CERTIFICATE_UNTRUSTED', 'self-signed, not trusted');
    // root (pathLength 1) → inter (pathLength 0) → sub-CA → leaf: one CA too many below inter.
    const subKey = mldsa87.generateKeyPair().privateKey;
    const sub = x509.issueCertificate({ issuer: inter, issuerKey: interKey, publicKey: subKey, subject: { commonName: 'sub' }, isCA: true, notBefore: T0, notAfter: daysAfter(10) });
    const deep = x509.issueCertificate({ issuer: sub, issuerKey: subKey, publicKey: leafKey, subject: { commonName: 'deep' }, notBefore: T0, notAfter: daysAfter(10) });
    e = expectCode(() => x509.verifyChain(deep, { trusted, intermediates: [inter, sub] }), 'ERR_QT_CERTIFICATE_UNTRUSTED', 'path length');
    expect(e.detail).to.include('path length constraint exceeded');
  });

  it('expired, and not yet valid', () => {
    let e = expectCode(() => x509.verifyChain(leaf, { trusted, intermediates, time: daysAfter(366) }), 'ERR_QT_CERTIFICATE_EXPIRED', 'expired');
    expect(e.message).to.equal('the certificate at depth 0 has expired');
    e = expectCode(() => x509.verifyChain(leaf, { trusted, intermediates, time: daysAfter(-1) }), 'ERR_QT_CERTIFICATE_EXPIRED', 'not yet valid');
    expect(e.message).to.match(/is not yet valid$/);
    e = expectCode(() => x509.verifyChain(leaf, { trusted, intermediates, time: daysAfter(1826) }), 'ERR_QT_CERTIFICATE_EXPIRED', 'intermediate expired');
    expect(e.message).to.match(/^the certificate at depth [01] has expired$/);
  });

  it('name mismatch: another name, a wildcard over two labels or none, another address, and never the CN', () => {
    for (const dnsName of ['other.example.com', 'a.b.example.net', 'example.net', 'vpn.example.com.evil']) {
      expectCode(() => x509.verifyChain(leaf, { trusted, intermediates, dnsName }), 'ERR_QT_CERTIFICATE_NAME_MISMATCH', dnsName);
    }
    expectCode(() => x509.verifyChain(leaf, { trusted, intermediates, ipAddress: '192.0.2.8' }), 'ERR_QT_CERTIFICATE_NAME_MISMATCH', 'ip');
    expectCode(() => x509.verifyChain(leaf, { trusted, intermediates, ipAddress: '::ffff:192.0.2.7' }), 'ERR_QT_CERTIFICATE_NAME_MISMATCH', 'mapped ip');
    const cnOnly = x509.issueCertificate({ issuer: inter, issuerKey: interKey, publicKey: leafKey, subject: { commonName: 'cn.example.com' }, notBefore: T0, notAfter: daysAfter(10) });
    expectCode(() => x509.verifyChain(cnOnly, { trusted, intermediates, dnsName: 'cn.example.com' }), 'ERR_QT_CERTIFICATE_NAME_MISMATCH', 'CN only');
    expectCode(() => x509.verifyChain(leaf, { trusted, intermediates, ipAddress: 'vpn.example.com' }), 'ERR_QT_INVALID_ARGUMENT', 'not an address');
  });

  it('wrong purpose: a server certificate used by a client and the other way round', () => {
    const e = expectCode(() => x509.verifyChain(leaf, { trusted, intermediates, purpose: 'client' }), 'ERR_QT_CERTIFICATE_WRONG_PURPOSE', 'server cert as client');
    expect(e.message).to.match(/^the certificate at depth 0 is not for this purpose/);
    expectCode(() => x509.verifyChain(clientLeaf, { trusted, intermediates, purpose: 'server' }), 'ERR_QT_CERTIFICATE_WRONG_PURPOSE', 'client cert as server');
    // Both EKUs (the default) allow both.
    const both = x509.issueCertificate({ issuer: inter, issuerKey: interKey, publicKey: leafKey, subject: { commonName: 'b' }, notBefore: T0, notAfter: daysAfter(10) });
    expect(both.extendedKeyUsage).to.deep.equal(['serverAuth', 'clientAuth']);
    for (const purpose of ['server', 'client'] as const) expect(x509.verifyChain(both, { trusted, intermediates, purpose })).to.have.length(3);
  });

  it('revoked, and revocation unknown (no CRL of the issuer, an expired CRL, crlCheckAll without the root\'s CRL)', () => {
    const revoking = x509.createCrl({ issuer: inter, issuerKey: interKey, revoked: [{ serialNumber: leaf.serialNumber }], thisUpdate: T0, nextUpdate: daysAfter(30) });
    const other = x509.createCrl({ issuer: inter, issuerKey: interKey, revoked: [{ serialNumber: 'FFEE', revocationDate: T0 }], thisUpdate: T0, nextUpdate: daysAfter(30), crlNumber: 2 });
    const rootCrl = x509.createCrl({ issuer: root, issuerKey: rootKey, revoked: [], thisUpdate: T0, nextUpdate: daysAfter(30) });
    const e = expectCode(() => x509.verifyChain(leaf, { trusted, intermediates, crls: [revoking] }), 'ERR_QT_CERTIFICATE_REVOKED', 'revoked');
    expect(e.message).to.equal('the certificate at depth 0 has been revoked');
    expectCode(() => x509.verifyChain(leaf, { trusted, intermediates, crls: [x509.pem('X509 CRL', revoking)] }), 'ERR_QT_CERTIFICATE_REVOKED', 'revoked, PEM');
    expect(x509.verifyChain(leaf, { trusted, intermediates, crls: [other] })).to.have.length(3);
    expect(x509.verifyChain(clientLeaf, { trusted, intermediates, crls: [revoking] })).to.have.length(3);
    expectCode(() => x509.verifyChain(leaf, { trusted, intermediates, crls: [rootCrl] }), 'ERR_QT_CERTIFICATE_REVOCATION_UNKNOWN', 'no CRL of the issuer');
    expectCode(() => x509.verifyChain(leaf, { trusted, intermediates, crls: [other], time: daysAfter(31) }), 'ERR_QT_CERTIFICATE_REVOCATION_UNKNOWN', 'expired CRL');
    expectCode(() => x509.verifyChain(leaf, { trusted, intermediates, crls: [other], crlCheckAll: true }), 'ERR_QT_CERTIFICATE_REVOCATION_UNKNOWN', 'crlCheckAll');
    expect(x509.verifyChain(leaf, { trusted, intermediates, crls: [`${x509.pem('X509 CRL', other)}${x509.pem('X509 CRL', rootCrl)}`], crlCheckAll: true })).to.have.length(3);
    // A CRL signed by another key under the issuer's name is not the issuer's CRL.
    const impostorKey = mldsa87.generateKeyPair().privateKey;
    const impostor = x509.createSelfSignedCa({ privateKey: impostorKey, subject: { commonName: 'QT Test Intermediate' }, notBefore: T0, notAfter: daysAfter(30) });
    const forged = x509.createCrl({ issuer: impostor, issuerKey: impostorKey, revoked: [], thisUpdate: T0, nextUpdate: daysAfter(30) });
    expectCode(() => x509.verifyChain(leaf, { trusted, intermediates, crls: [forged] }), 'ERR_QT_CERTIFICATE_REVOCATION_UNKNOWN', 'forged CRL');
    expectCode(() => x509.verifyChain(leaf, { trusted, intermediates, crls: [Buffer.from('junk')] }), 'ERR_QT_CERTIFICATE_MALFORMED', 'junk CRL');
  });

  it('bad signature: a certificate changed after signing', () => {
    const der = leaf.der;
    der[der.length - 10]! ^= 1; // inside the signature value
    const tampered = x509.parseCertificate(der);
    const e = expectCode(() => x509.verifyChain(tampered, { trusted, intermediates }), 'ERR_QT_CERTIFICATE_BAD_SIGNATURE', 'signature');
    expect(e.message).to.equal('the certificate at depth 0 has a signature that does not verify');
    // The same for a changed to-be-signed part (the last SAN address byte).
    const tbs = leaf.der;
    const i = tbs.indexOf(Buffer.from([0x20, 0x01, 0x0d, 0xb8]));
    tbs[i + 15]! ^= 1;
    const changed = x509.parseCertificate(tbs);
    expect(changed.ipAddresses[1]).to.equal('2001:db8::');
    expectCode(() => x509.verifyChain(changed, { trusted, intermediates }), 'ERR_QT_CERTIFICATE_BAD_SIGNATURE', 'tbs');
  });

  it('a hybrid chain: a P-384 (ECDSA with SHA-384) root over an ML-DSA-87 intermediate, and a P-384 leaf under ML-DSA', () => {
    const ecKey = p384.generateKeyPair().privateKey;
    const ecRoot = x509.createSelfSignedCa({ privateKey: ecKey, subject: { commonName: 'EC root' }, notBefore: T0, notAfter: daysAfter(100) });
    expect([ecRoot.publicKeyAlgorithm, ecRoot.signatureAlgorithm]).to.deep.equal(['P-384', 'ecdsa-with-SHA384']);
    const mlInter = x509.issueCertificate({ issuer: ecRoot, issuerKey: ecKey, publicKey: interKey, subject: { commonName: 'ML inter' }, isCA: true, notBefore: T0, notAfter: daysAfter(100) });
    expect([mlInter.publicKeyAlgorithm, mlInter.signatureAlgorithm]).to.deep.equal(['ML-DSA-87', 'ecdsa-with-SHA384']);
    const ecLeafKey = p384.generateKeyPair();
    const ecLeaf = x509.issueCertificate({ issuer: mlInter, issuerKey: interKey, publicKey: ecLeafKey.privateKey, subject: { commonName: 'ec leaf' }, dnsNames: ['ec.example'], notBefore: T0, notAfter: daysAfter(100) });
    expect([ecLeaf.publicKeyAlgorithm, ecLeaf.signatureAlgorithm]).to.deep.equal(['P-384', 'ML-DSA-87']);
    expect(chainOf(x509.verifyChain(ecLeaf, { trusted: [ecRoot], intermediates: [mlInter], dnsName: 'ec.example', purpose: 'server' }))).to.deep.equal([
      'CN=ec leaf',
      'CN=ML inter',
      'CN=EC root',
    ]);
    expect(keyFiles.publicKeyBytes(ecLeaf.publicKey()).equals(ecLeafKey.publicKey)).to.equal(true);
    expectCode(() => x509.verifyChain(ecLeaf, { trusted: [root], intermediates: [mlInter] }), 'ERR_QT_CERTIFICATE_UNTRUSTED', 'other root');
  });

  it('checks its arguments', () => {
    expectCode(() => x509.verifyChain(leaf, { trusted: [] }), 'ERR_QT_INVALID_ARGUMENT', 'no trust anchor');
    expectCode(() => x509.verifyChain(leaf, { trusted: [{}] as never }), 'ERR_QT_INVALID_ARGUMENT', 'not a certificate');
    expectCode(() => x509.verifyChain({} as never, { trusted }), 'ERR_QT_INVALID_ARGUMENT', 'leaf not a certificate');
    expectCode(() => x509.verifyChain(leaf, { trusted, dnsName: 'a', ipAddress: '192.0.2.1' }), 'ERR_QT_INVALID_ARGUMENT', 'both names');
    expectCode(() => x509.verifyChain(leaf, { trusted, purpose: 'email' as never }), 'ERR_QT_INVALID_ARGUMENT', 'purpose');
    expectCode(() => x509.verifyChain(leaf, { trusted, time: new Date(-1000) }), 'ERR_QT_INVALID_ARGUMENT', 'time before 1970');
    expectCode(() => native.x509Verify(leaf as never, [], [], [], -1, undefined, 0, 0, false), 'ERR_QT_INVALID_ARGUMENT', 'native: a JS Certificate is not a handle');
    expectCode(() => native.x509Verify(null as never, [], [], [], -1, undefined, 0, 0, false), 'ERR_QT_INVALID_ARGUMENT', 'native: null leaf');
    expectCode(() => native.x509Verify(null as never, {} as never, [], [], -1, undefined, 0, 0, false), 'ERR_QT_INVALID_ARGUMENT', 'native: not an array');
    expectCode(() => native.x509Verify(null as never, [], [], [], 1.5, undefined, 0, 0, false), 'ERR_QT_INVALID_ARGUMENT', 'native: fractional time');
  });
});

describe('X.509: certificates made by the OpenSSL CLI (fixtures)', () => {
  const cliCa = x509.parseCertificate(fixture('cli-ca.pem'));
  const cliLeaf = x509.parseCertificate(fixture('cli-leaf.pem'));
  const AT = new Date('2027-01-01T00:00:00Z');

  it('parses every field', () => {
    expect(cliCa).to.deep.include({ subject: 'CN=CLI Root CA,O=OpenSSL CLI', serialNumber: '1001', isCA: true, selfSigned: true, publicKeyAlgorithm: 'ML-DSA-87' });
    expect(cliCa.keyUsage).to.deep.equal(['keyCertSign', 'cRLSign']);
    expect(cliLeaf).to.deep.include({ subject: 'CN=cli.example.com', issuer: 'CN=CLI Root CA,O=OpenSSL CLI', serialNumber: '2002', isCA: false, signatureAlgorithm: 'ML-DSA-87' });
    expect([cliLeaf.notBefore.toISOString(), cliLeaf.notAfter.toISOString()]).to.deep.equal(['2026-01-01T00:00:00.000Z', '2126-01-01T00:00:00.000Z']);
    expect(cliLeaf.dnsNames).to.deep.equal(['cli.example.com']);
    expect(cliLeaf.ipAddresses).to.deep.equal(['198.51.100.4']);
    expect(cliLeaf.keyUsage).to.deep.equal(['digitalSignature']);
    expect(cliLeaf.extendedKeyUsage).to.deep.equal(['serverAuth', 'clientAuth']);
  });

  it('verifies its chain, finds the leaf revoked by its CRL, and accepts a leaf we issue with its CA key', () => {
    expect(x509.verifyChain(cliLeaf, { trusted: [cliCa], time: AT, dnsName: 'cli.example.com', purpose: 'server' })).to.have.length(2);
    expect(x509.verifyChain(cliLeaf, { trusted: [cliCa], time: AT, ipAddress: '198.51.100.4', purpose: 'client' })).to.have.length(2);
    expectCode(() => x509.verifyChain(cliLeaf, { trusted: [cliCa], time: AT, crls: [fixture('cli-crl.pem')] }), 'ERR_QT_CERTIFICATE_REVOKED', 'CLI CRL');
    expectCode(() => x509.verifyChain(cliLeaf, { trusted: [root], time: AT }), 'ERR_QT_CERTIFICATE_UNTRUSTED', 'our root');
    const caKey = keyFiles.importPrivateKeyPem(fixture('cli-ca-key.pem'), { algorithm: 'ML-DSA-87' });
    const ours = x509.issueCertificate({ issuer: cliCa, issuerKey: caKey, publicKey: leafKey, subject: { commonName: 'ours' }, dnsNames: ['ours.example'], notBefore: T0, notAfter: daysAfter(10) });
    expect(x509.verifyChain(ours, { trusted: [cliCa], dnsName: 'ours.example' })).to.have.length(2);
    expect(x509.verifyChain(ours, { trusted: [cliCa], crls: [fixture('cli-crl.pem')] })).to.have.length(2);
  });
});

describe('X.509 with the OpenSSL 3.5 command line (skipped when absent)', function () {
  let dir = '';
  before(function () {
    if (opensslCli === undefined) this.skip();
    dir = mkdtempSync(join(tmpdir(), 'qt-x509-cli-'));
    writeFileSync(join(dir, 'root.pem'), root.toPem());
    writeFileSync(join(dir, 'inter.pem'), inter.toPem());
    writeFileSync(join(dir, 'leaf.pem'), leaf.toPem());
  });
  after(() => dir && rmSync(dir, { recursive: true, force: true }));

  it('the CLI verifies our chain strictly (-x509_strict, sslserver, host and IP) and reads every extension', () => {
    const ok = openssl(['verify', '-x509_strict', '-purpose', 'sslserver', '-verify_hostname', 'vpn.example.com', '-verify_ip', '2001:db8::1', '-CAfile', 'root.pem', '-untrusted', 'inter.pem', 'leaf.pem'], { cwd: dir });
    expect(ok.status, ok.stdout + ok.stderr).to.equal(0);
    expect(ok.stdout).to.include('leaf.pem: OK');
    const wrongHost = openssl(['verify', '-verify_hostname', 'other.example.com', '-CAfile', 'root.pem', '-untrusted', 'inter.pem', 'leaf.pem'], { cwd: dir });
    expect(wrongHost.status).to.not.equal(0);
    const text = openssl(['x509', '-in', 'leaf.pem', '-noout', '-text'], { cwd: dir }).stdout;
    for (const s of ['Signature Algorithm: ML-DSA-87', 'Public Key Algorithm: ML-DSA-87', 'CA:FALSE', 'Digital Signature', 'TLS Web Server Authentication', 'DNS:vpn.example.com', 'DNS:*.example.net', 'IP Address:192.0.2.7', 'IP Address:2001:DB8:0:0:0:0:0:1', 'Serial Number: 662316 (0xa1b2c)', 'X509v3 Subject Key Identifier', 'X509v3 Authority Key Identifier']) {
      expect(text, s).to.include(s);
    }
  });

  it('the CLI checks our CRLs and our P-384-rooted hybrid chain', () => {
    writeFileSync(join(dir, 'crl.pem'), x509.pem('X509 CRL', x509.createCrl({ issuer: inter, issuerKey: interKey, revoked: [{ serialNumber: leaf.serialNumber }], thisUpdate: T0, nextUpdate: daysAfter(30) })));
    const revoked = openssl(['verify', '-crl_check', '-CRLfile', 'crl.pem', '-CAfile', 'root.pem', '-untrusted', 'inter.pem', 'leaf.pem'], { cwd: dir });
    expect(revoked.status).to.not.equal(0);
    expect(revoked.stdout + revoked.stderr).to.include('certificate revoked');
    const clean = openssl(['verify', '-crl_check', '-CRLfile', 'crl.pem', '-CAfile', 'root.pem', '-untrusted', 'inter.pem', 'client.pem'], {
      cwd: (writeFileSync(join(dir, 'client.pem'), clientLeaf.toPem()), dir),
    });
    expect(clean.status, clean.stdout + clean.stderr).to.equal(0);
    const ecKey = p384.generateKeyPair().privateKey;
    const ecRoot = x509.createSelfSignedCa({ privateKey: ecKey, subject: { commonName: 'EC root' }, notBefore: T0, notAfter: daysAfter(100) });
    const ml = x509.issueCertificate({ issuer: ecRoot, issuerKey: ecKey, publicKey: leafKey, subject: { commonName: 'ml leaf' }, dnsNames: ['ml.example'], notBefore: T0, notAfter: daysAfter(100) });
    writeFileSync(join(dir, 'ecroot.pem'), ecRoot.toPem());
    writeFileSync(join(dir, 'ml.pem'), ml.toPem());
    const hybrid = openssl(['verify', '-x509_strict', '-purpose', 'sslclient', '-verify_hostname', 'ml.example', '-CAfile', 'ecroot.pem', 'ml.pem'], { cwd: dir });
    expect(hybrid.status, hybrid.stdout + hybrid.stderr).to.equal(0);
  });

  it('we verify a chain the CLI makes now (ML-DSA-87 root and leaf), and find its tampered copy bad', () => {
    const run = (args: string[]): void => {
      const r = openssl(args, { cwd: dir });
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).to.equal(0);
    };
    run(['genpkey', '-algorithm', 'ML-DSA-87', '-out', 'cli-ca.key']);
    run(['req', '-x509', '-new', '-key', 'cli-ca.key', '-subj', '/CN=Live CLI CA', '-days', '2', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', 'cli-ca.pem']);
    run(['genpkey', '-algorithm', 'ML-DSA-87', '-out', 'cli-leaf.key']);
    run(['req', '-new', '-key', 'cli-leaf.key', '-subj', '/CN=live.example', '-out', 'cli-leaf.csr']);
    writeFileSync(join(dir, 'ext.cnf'), 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:live.example\n');
    run(['x509', '-req', '-in', 'cli-leaf.csr', '-CA', 'cli-ca.pem', '-CAkey', 'cli-ca.key', '-days', '1', '-extfile', 'ext.cnf', '-out', 'cli-leaf.pem']);
    const ca = x509.parseCertificate(readFileSync(join(dir, 'cli-ca.pem')));
    const lf = x509.parseCertificate(readFileSync(join(dir, 'cli-leaf.pem')));
    expect(chainOf(x509.verifyChain(lf, { trusted: [ca], dnsName: 'live.example', purpose: 'server' }))).to.deep.equal(['CN=live.example', 'CN=Live CLI CA']);
    const key = keyFiles.importPrivateKeyPem(readFileSync(join(dir, 'cli-leaf.key')));
    expect(keyFiles.spkiFingerprint(key).equals(lf.spkiFingerprint)).to.equal(true);
    const der = lf.der;
    der[der.length - 1]! ^= 1;
    expectCode(() => x509.verifyChain(x509.parseCertificate(der), { trusted: [ca] }), 'ERR_QT_CERTIFICATE_BAD_SIGNATURE', 'tampered');
  });
});

/** FIPS mode in a child process, configured for this machine (skipped without a FIPS module). */
describe('X.509 in FIPS mode', function () {
  this.timeout(120_000);
  let configDir = '';

  before(function () {
    if (!existsSync(join(dirname(addonPath), 'ossl-modules', 'fips.so'))) this.skip();
    configDir = mkdtempSync(join(tmpdir(), 'qt-x509-fips-'));
    const root = fileURLToPath(new URL('../..', import.meta.url));
    execFileSync('bash', [join(root, 'fips/install.sh'), dirname(addonPath)], { env: { ...process.env, QUANTUM_TUNNEL_FIPS_DIR: configDir }, stdio: 'pipe' });
  });
  after(() => configDir && rmSync(configDir, { recursive: true, force: true }));

  it('issues, parses and verifies ML-DSA-87 and P-384 chains with the FIPS provider, in strict mode', () => {
    const r = runChild(
      `
      const { x509, mldsa87, p384 } = qt.crypto;
      const day = 86400000, now = Date.now();
      const caKey = mldsa87.generateKeyPair().privateKey;
      const ca = x509.createSelfSignedCa({ privateKey: caKey, subject: { commonName: 'FIPS root' }, notAfter: new Date(now + day) });
      const ecKey = p384.generateKeyPair().privateKey;
      const ecInter = x509.issueCertificate({ issuer: ca, issuerKey: caKey, publicKey: ecKey, subject: { commonName: 'EC inter' }, isCA: true, notAfter: new Date(now + day) });
      const leaf = x509.issueCertificate({ issuer: ecInter, issuerKey: ecKey, publicKey: mldsa87.generateKeyPair().privateKey, subject: { commonName: 'l' }, dnsNames: ['fips.example'], notAfter: new Date(now + day) });
      const out = { mode: qt.crypto.info().mode, provider: qt.crypto.info().providers[0].name, sig: leaf.signatureAlgorithm,
                    chain: x509.verifyChain(leaf, { trusted: [ca], intermediates: [ecInter], dnsName: 'fips.example', purpose: 'server' }).length };
      try { x509.verifyChain(leaf, { trusted: [ca], intermediates: [ecInter], dnsName: 'other.example' }); } catch (e) { out.mismatch = e.code; }
      const crl = x509.createCrl({ issuer: ecInter, issuerKey: ecKey, revoked: [{ serialNumber: leaf.serialNumber }], nextUpdate: new Date(now + day) });
      try { x509.verifyChain(leaf, { trusted: [ca], intermediates: [ecInter], crls: [crl] }); } catch (e) { out.revoked = e.code; }
      const cliCa = x509.parseCertificate(${JSON.stringify(fixture('cli-ca.pem').toString())});
      const cliLeaf = x509.parseCertificate(${JSON.stringify(fixture('cli-leaf.pem').toString())});
      out.cli = x509.verifyChain(cliLeaf, { trusted: [cliCa], time: new Date('2027-01-01T00:00:00Z'), dnsName: 'cli.example.com' }).length;
      return out;`,
      { QUANTUM_TUNNEL_FIPS_DIR: configDir, QUANTUM_TUNNEL_FIPS: '1', QUANTUM_TUNNEL_FIPS_STRICT: '1' },
    );
    expect(r.json?.ok, r.stdout + r.stderr).to.equal(true);
    expect(r.json.value).to.deep.equal({
      mode: 'fips',
      provider: 'OpenSSL FIPS Provider',
      sig: 'ecdsa-with-SHA384',
      chain: 3,
      mismatch: 'ERR_QT_CERTIFICATE_NAME_MISMATCH',
      revoked: 'ERR_QT_CERTIFICATE_REVOKED',
      cli: 2,
    });
  });
});
