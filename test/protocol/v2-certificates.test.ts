/**
 * Certificate authentication (docs/PROTOCOL.md §14) through the Handshake interface: the server
 * by an ML-DSA-87 certificate and its name, mutual with client certificates, and each way a
 * chain or a signature can be wrong: another CA, an expired certificate, another name, a
 * certificate for the other purpose, a missing client certificate, a changed CertificateVerify.
 */
import { expect } from 'chai';
import { ErrorCode, QuantumTunnelError } from '../../lib/index.js';
import * as mldsa from '../../lib/crypto/mldsa.js';
import { type Certificate, createSelfSignedCa, issueCertificate } from '../../lib/crypto/x509.js';
import { CertificateIdentity } from '../../lib/identity/certificates.js';
import { CipherSuite } from '../../lib/protocol/constants.js';
import { KEM_GROUPS } from '../../lib/protocol/v2/groups.js';
import { ClientHandshakeV2, ServerHandshakeV2, type V2InitiatorOptions, type V2ResponderOptions } from '../../lib/protocol/v2/handshake.js';
import { converse, type Tamper, rejects } from '../helpers/handshakes.js';

const AES = CipherSuite.AES_256_GCM;
const groups = [KEM_GROUPS.find((g) => g.permitted())!];
const DAY = 86_400_000;

interface Ca {
  cert: Certificate;
  key: ReturnType<typeof mldsa.generateKeyPair>['privateKey'];
}

function ca(name: string): Ca {
  const { privateKey } = mldsa.generateKeyPair();
  return { cert: createSelfSignedCa({ privateKey, subject: { commonName: name }, notAfter: new Date(Date.now() + 30 * DAY) }), key: privateKey };
}

function leaf(issuer: Ca, cn: string, options: { dnsNames?: string[]; ipAddresses?: string[]; eku?: Array<'serverAuth' | 'clientAuth'>; notAfter?: Date; notBefore?: Date } = {}): CertificateIdentity {
  const { privateKey } = mldsa.generateKeyPair();
  const cert = issueCertificate({
    issuer: issuer.cert,
    issuerKey: issuer.key,
    publicKey: privateKey,
    subject: { commonName: cn },
    dnsNames: options.dnsNames ?? [],
    ipAddresses: options.ipAddresses ?? [],
    extendedKeyUsage: options.eku,
    notBefore: options.notBefore,
    notAfter: options.notAfter ?? new Date(Date.now() + 10 * DAY),
  });
  return new CertificateIdentity([cert], privateKey);
}

function pair(client: Partial<V2InitiatorOptions>, server: Partial<V2ResponderOptions>) {
  return [new ClientHandshakeV2({ cipherSuites: [AES], groups, ...client }), new ServerHandshakeV2({ cipherSuites: [AES], groups: KEM_GROUPS, ...server })] as const;
}


describe('protocol v2: certificates (§14)', function () {
  this.timeout(60_000);
  const root = ca('Test Root');
  const other = ca('Other Root');
  const server = leaf(root, 'db.example.test', { dnsNames: ['db.example.test'], ipAddresses: ['127.0.0.1'], eku: ['serverAuth'] });
  const client = leaf(root, 'laptop', { eku: ['clientAuth'] });
  const trusted = [root.cert];

  it('server authentication by name: the client reports the subject and SPKI fingerprint; the server learns nothing of the client', async () => {
    const [cr, sr] = await converse(...pair({ serverCertificate: { trusted, dnsName: 'db.example.test' } }, { certificate: server }));
    expect(cr.peerIdentity).to.include({ type: 'certificate', subject: 'CN=db.example.test' });
    expect(cr.peerIdentity?.type === 'certificate' && cr.peerIdentity.fingerprint).to.match(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect(sr.peerIdentity).to.equal(undefined);
    expect(cr.resumable).to.equal(false);
    expect(cr.sessionId.equals(sr.sessionId)).to.equal(true);
  });

  it('by IP address too', async () => {
    const [cr] = await converse(...pair({ serverCertificate: { trusted, ipAddress: '127.0.0.1' } }, { certificate: server }));
    expect(cr.peerIdentity).to.include({ subject: 'CN=db.example.test' });
  });

  it('mutual: the server requests, the client sends its certificate after verifying the server', async () => {
    const [cr, sr] = await converse(
      ...pair({ serverCertificate: { trusted, dnsName: 'db.example.test' }, certificate: client }, { certificate: server, clientCertificates: { trusted }, requirePeerIdentity: true }),
    );
    expect(cr.peerIdentity).to.include({ subject: 'CN=db.example.test' });
    expect(sr.peerIdentity).to.include({ type: 'certificate', subject: 'CN=laptop' });
  });

  it('the client does not reveal its certificate to a server it could not verify', async () => {
    const wire: Buffer[] = [];
    const spy: Tamper = (from, bytes) => {
      if (from === 'client') wire.push(Buffer.from(bytes));
      return bytes;
    };
    await rejects(
      converse(...pair({ serverCertificate: { trusted: [other.cert], dnsName: 'db.example.test' }, certificate: client }, { certificate: server, clientCertificates: { trusted } }), spy),
      ErrorCode.CERTIFICATE_UNTRUSTED,
    );
    expect(wire.length, 'the ClientHello only').to.equal(1);
  });

  it('refuses: another CA, another name, an expired certificate, the wrong purpose', async () => {
    await rejects(converse(...pair({ serverCertificate: { trusted: [other.cert], dnsName: 'db.example.test' } }, { certificate: server })), ErrorCode.CERTIFICATE_UNTRUSTED);
    await rejects(converse(...pair({ serverCertificate: { trusted, dnsName: 'www.example.test' } }, { certificate: server })), ErrorCode.CERTIFICATE_NAME_MISMATCH);
    const expired = leaf(root, 'old', { dnsNames: ['old.test'], notBefore: new Date(Date.now() - 3 * DAY), notAfter: new Date(Date.now() - DAY) });
    await rejects(converse(...pair({ serverCertificate: { trusted, dnsName: 'old.test' } }, { certificate: expired })), ErrorCode.CERTIFICATE_EXPIRED);
    // A client certificate (clientAuth only) presented by a server.
    const clientOnly = leaf(root, 'svc', { dnsNames: ['svc.test'], eku: ['clientAuth'] });
    await rejects(converse(...pair({ serverCertificate: { trusted, dnsName: 'svc.test' } }, { certificate: clientOnly })), ErrorCode.CERTIFICATE_WRONG_PURPOSE);
  });

  it('a server that requires a client certificate refuses a client without one, or with one from another CA', async () => {
    const policy = { certificate: server, clientCertificates: { trusted }, requirePeerIdentity: true };
    await rejects(converse(...pair({ serverCertificate: { trusted, dnsName: 'db.example.test' } }, policy)), ErrorCode.CERTIFICATE_REQUIRED);
    const stranger = leaf(other, 'stranger', { eku: ['clientAuth'] });
    await rejects(converse(...pair({ serverCertificate: { trusted, dnsName: 'db.example.test' }, certificate: stranger }, policy)), ErrorCode.CERTIFICATE_UNTRUSTED);
    await rejects(converse(...pair({}, policy)), ErrorCode.CERTIFICATE_REQUIRED);
  });

  it('a server without a certificate refuses certificate_auth (certificate_required)', async () => {
    await rejects(converse(...pair({ serverCertificate: { trusted, dnsName: 'db.example.test' } }, {})), ErrorCode.CERTIFICATE_REQUIRED);
  });

  it("a changed byte of the server's CertificateVerify (inside its record) fails the handshake", async () => {
    // Records are authenticated: any change is caught, here as a record that does not open.
    const tamper: Tamper = (from, bytes, index) => {
      if (from !== 'server' || index !== 4) return bytes; // SH=1, EE=2, Certificate=3, CertificateVerify=4
      const out = Buffer.from(bytes);
      out[out.length - 30]! ^= 1;
      return out;
    };
    await rejects(converse(...pair({ serverCertificate: { trusted, dnsName: 'db.example.test' } }, { certificate: server }), tamper), ErrorCode.HANDSHAKE_FAILED);
  });

  it("a server that signs with another key than its certificate's: ERR_QT_CERTIFICATE_BAD_SIGNATURE at the client", async () => {
    const { privateKey } = mldsa.generateKeyPair();
    const impostor = { chain: server.chain, leaf: server.leaf, privateKey } as unknown as CertificateIdentity;
    await rejects(converse(...pair({ serverCertificate: { trusted, dnsName: 'db.example.test' } }, { certificate: impostor })), ErrorCode.CERTIFICATE_BAD_SIGNATURE);
    privateKey.destroy();
  });

  it('a server key that is not its certificate key is refused when the identity is made', () => {
    const { privateKey } = mldsa.generateKeyPair();
    expect(() => new CertificateIdentity([server.leaf], privateKey)).to.throw(QuantumTunnelError).with.property('code', ErrorCode.INVALID_KEY);
    privateKey.destroy();
  });
});
