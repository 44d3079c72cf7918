/**
 * Refusals of protocol v2's certificate messages (§14) on hostile input, and the parts of the
 * shared Session API that a v2 session refuses (master secrets, tickets from a client).
 */
import { expect } from 'chai';
import { crypto, ErrorCode } from '../../lib/index.js';
import { qtError } from '../../lib/errors.js';
import { createSelfSignedCa, type Certificate, issueCertificate } from '../../lib/crypto/x509.js';
import { CertificateIdentity } from '../../lib/identity/certificates.js';
import * as mldsa from '../../lib/crypto/mldsa.js';
import { CipherSuite } from '../../lib/protocol/constants.js';
import {
  certificateAuthExtension,
  checkCertificateVerify,
  commonScheme,
  decodeCertificateAuth,
  decodeCertificateBody,
  encodeCertificateBody,
  isCertificateError,
  MAX_CHAIN,
  SignatureScheme,
} from '../../lib/protocol/v2/certAuth.js';
import { kemGroupById, KemGroup } from '../../lib/protocol/v2/groups.js';
import { ClientHandshakeV2, ServerHandshakeV2 } from '../../lib/protocol/v2/handshake.js';
import { SessionV2 } from '../../lib/protocol/v2/session.js';
import { converse } from '../helpers/handshakes.js';
import { expectCode, expectReject } from '../helpers/buffers.js';

describe('protocol v2 certificate messages: hostile encodings', () => {
  let key: crypto.PrivateKey;
  let ca: Certificate;
  before(() => {
    key = mldsa.generateKeyPair().privateKey;
    ca = createSelfSignedCa({ privateKey: key, subject: { commonName: 'edges CA' }, notAfter: new Date(Date.now() + 86_400_000) });
  });
  after(() => key.destroy());

  it('certificate_auth: our own extension decodes to ML-DSA-87; a bad length, an odd size or an empty list is malformed', () => {
    expect(decodeCertificateAuth(certificateAuthExtension().data)).to.deep.equal([SignatureScheme.ML_DSA_87]);
    expect(commonScheme([0x0807, SignatureScheme.ML_DSA_87])).to.equal(SignatureScheme.ML_DSA_87);
    expect(commonScheme([0x0807])).to.equal(undefined);
    for (const bad of [Buffer.alloc(0), Buffer.from([0]), Buffer.from([0, 0]), Buffer.from([0, 4, 9, 6]), Buffer.from([0, 3, 9, 6, 1])]) {
      expectCode(() => decodeCertificateAuth(bad), ErrorCode.MALFORMED_MESSAGE);
    }
  });

  it('Certificate body: lengths that disagree, an empty entry, a truncated entry header and too many certificates are malformed', () => {
    const one = encodeCertificateBody([ca]);
    expect(decodeCertificateBody(one)[0]!.der.equals(ca.der)).to.equal(true);
    expect(decodeCertificateBody(encodeCertificateBody([]))).to.deep.equal([]);
    const wrongOuter = Buffer.from(one);
    wrongOuter.writeUIntBE(one.length - 2, 0, 3);
    expectCode(() => decodeCertificateBody(wrongOuter), ErrorCode.MALFORMED_MESSAGE);
    expectCode(() => decodeCertificateBody(Buffer.from([0, 0])), ErrorCode.MALFORMED_MESSAGE);
    // An entry of length 0, and an entry whose 3-byte length does not fit.
    expectCode(() => decodeCertificateBody(Buffer.from([0, 0, 3, 0, 0, 0])), ErrorCode.MALFORMED_MESSAGE);
    expectCode(() => decodeCertificateBody(Buffer.from([0, 0, 2, 0, 0])), ErrorCode.MALFORMED_MESSAGE);
    const overrun = Buffer.from(one);
    overrun.writeUIntBE(ca.der.length + 1, 3, 3);
    expectCode(() => decodeCertificateBody(overrun), ErrorCode.MALFORMED_MESSAGE);
    const tooMany = encodeCertificateBody(Array.from({ length: MAX_CHAIN + 1 }, () => ca));
    expect(expectCode(() => decodeCertificateBody(tooMany), ErrorCode.MALFORMED_MESSAGE).message).to.contain(`more than ${MAX_CHAIN}`);
  });

  it('an entry that is not a certificate is CERTIFICATE_MALFORMED, a certificate error (bad_certificate to the peer)', () => {
    const junk = Buffer.from([0, 0, 7, 0, 0, 4, 0x30, 0x02, 0x05, 0x00]);
    const err = expectCode(() => decodeCertificateBody(junk), ErrorCode.CERTIFICATE_MALFORMED);
    expect(isCertificateError(err)).to.equal(true);
    expect(isCertificateError(qtError(ErrorCode.MALFORMED_MESSAGE, 'x'))).to.equal(false);
  });

  it('CertificateVerify: a short or mis-sized body is malformed; another scheme is a bad signature, checked before any verification', async () => {
    const hash = Buffer.alloc(48, 1);
    await expectReject(checkCertificateVerify(Buffer.from([9, 6, 0]), ca, 'server', hash), ErrorCode.MALFORMED_MESSAGE);
    await expectReject(checkCertificateVerify(Buffer.from([9, 6, 0, 5, 1]), ca, 'server', hash), ErrorCode.MALFORMED_MESSAGE);
    await expectReject(checkCertificateVerify(Buffer.from([8, 7, 0, 1, 1]), ca, 'client', hash), ErrorCode.CERTIFICATE_BAD_SIGNATURE);
    // The right scheme with a signature that does not verify.
    const sig = Buffer.alloc(mldsa.ML_DSA_87_SIZES.signature, 7);
    const body = Buffer.concat([Buffer.from([9, 6]), Buffer.from([sig.length >> 8, sig.length & 0xff]), sig]);
    await expectReject(checkCertificateVerify(body, ca, 'server', hash), ErrorCode.CERTIFICATE_BAD_SIGNATURE);
  });

  it('a server that asks for a client certificate without requiring one admits a client that has none, anonymously', async () => {
    const { privateKey } = mldsa.generateKeyPair();
    const cert = issueCertificate({
      issuer: ca,
      issuerKey: key,
      publicKey: privateKey,
      subject: { commonName: 'server.edges.test' },
      dnsNames: ['server.edges.test'],
      extendedKeyUsage: ['serverAuth'],
      notAfter: new Date(Date.now() + 3_600_000),
    });
    const identity = new CertificateIdentity([cert], privateKey);
    const group = kemGroupById(KemGroup.X25519_MLKEM1024)!;
    const [cr, sr] = await converse(
      new ClientHandshakeV2({ cipherSuites: [CipherSuite.AES_256_GCM], groups: [group], serverCertificate: { trusted: [ca], dnsName: 'server.edges.test' } }),
      new ServerHandshakeV2({ cipherSuites: [CipherSuite.AES_256_GCM], groups: [group], certificate: identity, clientCertificates: { trusted: [ca] } }),
    );
    try {
      expect(cr.peerIdentity?.type).to.equal('certificate');
      expect(sr.peerIdentity).to.equal(undefined);
      expect(sr.resumable).to.equal(false); // certificate mode never issues tickets
      expect(cr.clientTrafficSecret.length).to.equal(sr.clientTrafficSecret.length);
    } finally {
      for (const r of [cr, sr]) for (const x of [r.clientTrafficSecret, r.serverTrafficSecret, r.exporterSecret, r.resumptionSecret]) x.destroy();
      identity.destroy();
    }
  });

  it('createSelfSignedCa refuses a pathLength outside 0..255 or not an integer', () => {
    for (const pathLength of [-1, 256, 1.5]) {
      expectCode(() => createSelfSignedCa({ privateKey: key, subject: { commonName: 'x' }, notAfter: new Date(Date.now() + 1000), pathLength }), ErrorCode.INVALID_ARGUMENT);
    }
  });
});

describe('protocol v2 session: what v2 does not offer', () => {
  it('no master secret to hand out (tickets are in-band), and only a server issues tickets', async () => {
    const group = kemGroupById(KemGroup.X25519_MLKEM1024)!;
    const [cr, sr] = await converse(
      new ClientHandshakeV2({ cipherSuites: [CipherSuite.AES_256_GCM], groups: [group] }),
      new ServerHandshakeV2({ cipherSuites: [CipherSuite.AES_256_GCM], groups: [group] }),
    );
    const c = new SessionV2(cr);
    const s = new SessionV2(sr);
    try {
      expectCode(() => c.masterSecretCopy(), ErrorCode.INVALID_STATE);
      expectCode(() => s.withMasterSecret(), ErrorCode.INVALID_STATE);
      expectCode(() => c.ticketFrame(Buffer.from('t')), ErrorCode.INVALID_STATE);
      expect(s.ticketFrame(Buffer.from('t')).length).to.be.greaterThan(0);
    } finally {
      c.destroy();
      s.destroy();
    }
  });
});
