/**
 * Pinned identity keys end to end over real sockets (127.0.0.1): mutual authentication through
 * dial() and listen(), what info() reports, the errors each end sees for a wrong server key or an
 * unknown client, option checks, and a raw client whose key_auth is garbage.
 */
import { expect } from 'chai';
import { connect } from 'node:net';
import { AuthorizedPeers, CertificateIdentity, crypto, type DialOptions, ErrorCode, fetchServerKey, IdentityKey, type Listener, type ListenOptions, listen, type Tunnel } from '../../lib/index.js';
import { MessageType } from '../../lib/protocol/constants.js';
import { FrameReader } from '../../lib/protocol/frame.js';
import { decodeAlert } from '../../lib/protocol/messages.js';
import { V2AlertCode } from '../../lib/protocol/v2/alerts.js';
import { defaultKemGroup } from '../../lib/protocol/v2/groups.js';
import { encodeClientKeyAuth } from '../../lib/protocol/v2/keyAuth.js';
import { encodeClientHelloV2, V2_VERSION_NUMBER } from '../../lib/protocol/v2/messages.js';
import { resolveDialAuth } from '../../lib/tunnel/options.js';
import { assertEchoes, echo, handshakeErrors, nextTunnel, rejectsWithCode, Resources, until } from '../helpers/tunnel.js';

describe('pinned identity keys end to end', function () {
  this.timeout(30_000);
  const res = new Resources();
  const keys: IdentityKey[] = [];
  const key = () => {
    const k = IdentityKey.generate();
    keys.push(k);
    return k;
  };
  afterEach(() => res.cleanup());
  after(() => keys.forEach((k) => k.destroy()));

  async function pair(listenOptions: ListenOptions, dialOptions: DialOptions): Promise<{ listener: Listener; client: Tunnel; server: Tunnel }> {
    const listener = await res.listen(listenOptions, echo);
    const serverSide = nextTunnel(listener);
    const client = await res.dial(listener, dialOptions);
    return { listener, client, server: await serverSide };
  }

  async function bothFail(listener: Listener, dialOptions: DialOptions, clientCode: string, serverCode: string): Promise<void> {
    const errors = handshakeErrors(listener);
    await rejectsWithCode(res.dial(listener, dialOptions), clientCode);
    await until(() => errors.length >= 1, 5000, 'the server handshakeError');
    expect(errors.map((e) => e.error.code)).to.deep.equal([serverCode]);
  }

  it('mutual: each end reports the fingerprint the other proved, with the comment of its entry, and data flows', async () => {
    const serverKey = key();
    const clientKey = key();
    const { client, server } = await pair(
      { identity: serverKey, authorizedPeers: [clientKey.publicKey.toString('ci-runner')] },
      { server: { publicKey: serverKey.publicKey.toString() }, identity: clientKey },
    );
    expect(client.info().peerIdentity).to.deep.equal({ type: 'key', fingerprint: serverKey.fingerprint, group: serverKey.group.option, comment: '' });
    expect(server.info().peerIdentity).to.deep.equal({ type: 'key', fingerprint: clientKey.fingerprint, group: clientKey.group.option, comment: 'ci-runner' });
    await assertEchoes(client, 'authenticated by key');
  });

  it('a server key given as text is parsed once: every dial naming it gets the same key object (at most 64 kept)', () => {
    const serverKey = key();
    const text = serverKey.publicKey.toString('laptop');
    const first = resolveDialAuth({ server: { publicKey: text } }).serverKey!;
    expect(first.fingerprint).to.equal(serverKey.fingerprint);
    expect(resolveDialAuth({ server: { publicKey: text } }).serverKey).to.equal(first);
    // 64 other keys push it out; it is parsed again (an equal key, a new object).
    for (let i = 0; i < 64; i++) resolveDialAuth({ server: { publicKey: serverKey.publicKey.toString(`other ${i}`) } });
    const again = resolveDialAuth({ server: { publicKey: text } }).serverKey!;
    expect(again).to.not.equal(first);
    expect(again.fingerprint).to.equal(first.fingerprint);
  });

  it('an authorized-peers entry by fingerprint admits the client', async () => {
    const serverKey = key();
    const clientKey = key();
    const { server } = await pair({ identity: serverKey, authorizedPeers: new AuthorizedPeers([`${clientKey.fingerprint} by-fingerprint`]) }, { server: { publicKey: serverKey.publicKey }, identity: clientKey });
    expect(server.info().peerIdentity).to.include({ fingerprint: clientKey.fingerprint, comment: 'by-fingerprint' });
  });

  it('a wrong pinned key: ERR_QT_SERVER_KEY_MISMATCH at both ends, no tunnel', async () => {
    const listener = await res.listen({ identity: key() });
    await bothFail(listener, { server: { publicKey: key().publicKey } }, ErrorCode.SERVER_KEY_MISMATCH, ErrorCode.SERVER_KEY_MISMATCH);
  });

  it('an unknown client, and a client without a key: ERR_QT_UNKNOWN_PEER at both ends', async () => {
    const serverKey = key();
    const listener = await res.listen({ identity: serverKey, authorizedPeers: [key().publicKey] });
    await bothFail(listener, { server: { publicKey: serverKey.publicKey }, identity: key() }, ErrorCode.UNKNOWN_PEER, ErrorCode.UNKNOWN_PEER);
    const second = await res.listen({ identity: serverKey, authorizedPeers: [key().publicKey] });
    await bothFail(second, {}, ErrorCode.UNKNOWN_PEER, ErrorCode.UNKNOWN_PEER);
  });

  it('fetchServerKey() returns the key a server announces (§13.6), and nothing for a server without one', async () => {
    const serverKey = key();
    const withKey = await res.listen({ identity: [serverKey, key()] }, echo);
    const announced = await fetchServerKey({ host: '127.0.0.1', port: withKey.address().port });
    expect(announced?.equals(serverKey.publicKey)).to.equal(true);
    const without = await res.listen({}, echo);
    expect(await fetchServerKey({ host: '127.0.0.1', port: without.address().port })).to.equal(undefined);
  });

  it('server.fingerprint: the first dial learns and checks the key, then pins it; a wrong fingerprint fails before any data', async () => {
    const serverKey = key();
    const listener = await res.listen({ identity: serverKey }, echo);
    let handshakes = 0;
    listener.on('tunnel', () => handshakes++);
    const first = await res.dial(listener, { server: { fingerprint: serverKey.fingerprint } });
    expect(first.info().peerIdentity).to.include({ type: 'key', fingerprint: serverKey.fingerprint });
    await assertEchoes(first, 'pinned by fingerprint');
    await until(() => handshakes === 2, 5000, 'the key request, then the pinned handshake');
    const second = await res.dial(listener, { server: { fingerprint: serverKey.fingerprint } });
    expect(second.info().peerIdentity).to.include({ fingerprint: serverKey.fingerprint });
    await until(() => handshakes === 3, 5000, 'one more handshake: the key was learned');
    expect(handshakes).to.equal(3);
    await rejectsWithCode(res.dial(listener, { server: { fingerprint: key().fingerprint } }), ErrorCode.SERVER_KEY_MISMATCH);
  });

  describe('certificates (§14)', () => {
    const DAY = 86_400_000;
    const rootKey = crypto.mldsa87.generateKeyPair().privateKey;
    const root = crypto.x509.createSelfSignedCa({ privateKey: rootKey, subject: { commonName: 'Test Root' }, notAfter: new Date(Date.now() + 30 * DAY) });
    const issue = (cn: string, extra: { dnsNames?: string[]; ipAddresses?: string[] }) => {
      const { privateKey } = crypto.mldsa87.generateKeyPair();
      const cert = crypto.x509.issueCertificate({ issuer: root, issuerKey: rootKey, publicKey: privateKey, subject: { commonName: cn }, notAfter: new Date(Date.now() + DAY), ...extra });
      return new CertificateIdentity([cert], privateKey);
    };
    const serverId = issue('localhost', { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    const clientId = issue('client-1', {});

    it('mutual over sockets: the server name is the host dialled (an IP address here), both ends report the subject', async () => {
      const { client, server } = await pair({ identity: serverId, ca: root.toPem() }, { server: { ca: [root] }, identity: clientId });
      expect(client.info().peerIdentity).to.include({ type: 'certificate', subject: 'CN=localhost' });
      expect(server.info().peerIdentity).to.include({ type: 'certificate', subject: 'CN=client-1' });
      await assertEchoes(client, 'authenticated by certificates');
    });

    it('a wrong expected name: ERR_QT_CERTIFICATE_NAME_MISMATCH at the client, ERR_QT_CERTIFICATE_REJECTED (alert bad_certificate) at the server', async () => {
      const listener = await res.listen({ identity: serverId });
      await bothFail(listener, { server: { ca: [root], name: 'db.example.com' } }, ErrorCode.CERTIFICATE_NAME_MISMATCH, ErrorCode.CERTIFICATE_REJECTED);
    });

    it('a client without the certificate the server requires: the client completes, then its tunnel fails with ERR_QT_CERTIFICATE_REQUIRED', async () => {
      const listener = await res.listen({ identity: serverId, ca: [root] });
      const errors = handshakeErrors(listener);
      const client = await res.dial(listener, { server: { ca: [root] } });
      const failed = new Promise<Error>((resolve) => client.once('error', resolve));
      client.resume();
      expect((await failed as { code?: string }).code).to.equal(ErrorCode.CERTIFICATE_REQUIRED);
      await until(() => errors.length === 1, 5000, 'the server handshakeError');
      expect(errors[0]!.error.code).to.equal(ErrorCode.CERTIFICATE_REQUIRED);
    });

    it('a server with both a key and a certificate serves clients of either mode', async () => {
      const serverKey = key();
      const listener = await res.listen({ identity: [serverKey, serverId] }, echo);
      const byKey = await res.dial(listener, { server: { publicKey: serverKey.publicKey } });
      const byCert = await res.dial(listener, { server: { ca: [root] } });
      expect(byKey.info().peerIdentity?.type).to.equal('key');
      expect(byCert.info().peerIdentity?.type).to.equal('certificate');
    });
  });

  it('refuses option combinations that cannot authenticate', () => {
    const k = key();
    expect(() => listen({ port: 0, authorizedPeers: [k.publicKey] })).to.throw().with.property('code', ErrorCode.INVALID_ARGUMENT);
    expect(() => listen({ port: 0, identity: k, requirePeerIdentity: true })).to.throw().with.property('code', ErrorCode.INVALID_ARGUMENT);
    expect(() => listen({ port: 0, identity: k, legacyV1: true })).to.throw().with.property('code', ErrorCode.INVALID_ARGUMENT);
  });

  it('dial() refuses identity without server, server with psk, and server with legacyV1', async () => {
    const k = key();
    const listener = await res.listen({ identity: k });
    await rejectsWithCode(res.dial(listener, { identity: k }), ErrorCode.INVALID_ARGUMENT);
    await rejectsWithCode(res.dial(listener, { server: { publicKey: k.publicKey }, legacyV1: true }), ErrorCode.INVALID_ARGUMENT);
    await rejectsWithCode(res.dial(listener, { server: { publicKey: 'qtun-x25519-mlkem1024 AAAA' } }), ErrorCode.INVALID_KEY);
  });

  it('a raw client with a garbage key_auth gets alert server_key_mismatch, and the listener keeps serving', async () => {
    const serverKey = key();
    const listener = await res.listen({ identity: serverKey }, echo);
    const group = defaultKemGroup();
    const share = group.generateClientShare();
    const hello = encodeClientHelloV2({
      random: Buffer.alloc(32, 7),
      supportedVersions: [V2_VERSION_NUMBER],
      cipherSuites: [1],
      groups: [group.id],
      keyShareGroup: group.id,
      keyShare: share.share,
      pskIdentities: [],
      extensions: [encodeClientKeyAuth({ ciphertext: Buffer.alloc(group.serverShareSize, 0x42), sealedIdentity: Buffer.alloc(16, 0x17) })],
      binders: [],
    });
    share.destroy();
    const socket = connect(listener.address().port, '127.0.0.1');
    res.socket(socket);
    const reader = new FrameReader();
    const reply = await new Promise<Buffer>((resolve, reject) => {
      socket.on('data', (d) => {
        reader.push(d);
        const f = reader.nextFrame();
        if (f) resolve(f.raw);
      });
      socket.on('error', reject);
      socket.on('close', () => reject(new Error('closed without an alert')));
      socket.write(hello);
    });
    socket.destroy();
    expect(reply[0]).to.equal(MessageType.ALERT);
    expect(decodeAlert(reply.subarray(5))?.code).to.equal(V2AlertCode.SERVER_KEY_MISMATCH);
    const ok = await res.dial(listener, { server: { publicKey: serverKey.publicKey } });
    await assertEchoes(ok, 'still serving');
  });
});
