/**
 * Protocol v2 groundwork (docs/PROTOCOL.md Part I): the key schedule, checked against TLS 1.3's
 * published trace (RFC 8448 §3, with SHA-256 and the "tls13 " prefix: the same construction v2
 * runs with SHA-384 and "qtun2 "), and the hybrid KEM groups with their labelled combiner.
 */
import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { crypto, ErrorCode, QuantumTunnelError } from '../../lib/index.js';
import { KEM_GROUPS, KemGroup, combine, defaultKemGroup, kemGroupById, kemGroupByOption } from '../../lib/protocol/v2/groups.js';
import { deriveSecret, expandLabel, expandLabelPublic, hkdfLabel, KeySchedule, type ScheduleParams, V2_SCHEDULE } from '../../lib/protocol/v2/keySchedule.js';
import { hex, loadFixture } from '../helpers/fixtures.js';
import * as testing from '../../lib/testing.js';

const R = loadFixture('rfc8448.json');
/** TLS 1.3's parameters for the RFC 8448 trace (node:crypto hashes only public transcript bytes here). */
const TLS13: ScheduleParams = {
  digest: crypto.hkdf.HkdfDigest.SHA256,
  labelPrefix: 'tls13 ',
  hash: (messages) => {
    const h = createHash('sha256');
    for (const m of messages) h.update(m);
    return h.digest();
  },
};

const out = (s: crypto.Secret) => testing.exportSecret(s).toString('hex');

describe('protocol v2: key schedule (RFC 8446 §7.1)', () => {
  const ks = new KeySchedule(TLS13);

  it('reproduces RFC 8448 §3: early, handshake and master secrets', () => {
    const early = ks.earlySecret();
    expect(out(early)).to.equal(R.earlySecret);
    const hs = ks.handshakeSecret(early, testing.secretFromBytes(hex(R.ecdheSharedSecret)));
    expect(out(hs)).to.equal(R.handshakeSecret);
    expect(out(ks.masterSecret(hs))).to.equal(R.masterSecret);
  });

  it('reproduces RFC 8448 §3: handshake and application traffic secrets, keys and IVs', () => {
    const hs = testing.secretFromBytes(hex(R.handshakeSecret));
    const h = ks.handshakeTrafficSecrets(hs, hex(R.helloHash));
    expect([out(h.client), out(h.server)]).to.deep.equal([R.clientHandshakeTrafficSecret, R.serverHandshakeTrafficSecret]);
    const ck = ks.trafficKeys(h.client, 16, 12);
    const sk = ks.trafficKeys(h.server, 16, 12);
    expect([out(ck.key), out(ck.iv), out(sk.key), out(sk.iv)]).to.deep.equal([R.clientHandshakeKey, R.clientHandshakeIv, R.serverHandshakeKey, R.serverHandshakeIv]);
    const master = testing.secretFromBytes(hex(R.masterSecret));
    const ap = ks.applicationSecrets(master, hex(R.serverFinishedHash));
    expect([out(ap.client), out(ap.server)]).to.deep.equal([R.clientApplicationTrafficSecret, R.serverApplicationTrafficSecret]);
    const ca = ks.trafficKeys(ap.client, 16, 12);
    const sa = ks.trafficKeys(ap.server, 16, 12);
    expect([out(ca.key), out(ca.iv), out(sa.key), out(sa.iv)]).to.deep.equal([R.clientApplicationKey, R.clientApplicationIv, R.serverApplicationKey, R.serverApplicationIv]);
    expect(out(ap.exporter)).to.equal(R.exporterMasterSecret);
    expect(out(ks.resumptionMasterSecret(master, hex(R.clientFinishedHash)))).to.equal(R.resumptionMasterSecret);
  });

  it("reproduces RFC 8448 §3: the client's finished key and verify_data, verified in constant time", () => {
    const c = testing.secretFromBytes(hex(R.clientHandshakeTrafficSecret));
    expect(out(expandLabel(TLS13, c, 'finished', Buffer.alloc(0), 32))).to.equal(R.clientFinishedKey);
    expect(ks.finishedMac(c, hex(R.serverFinishedHash)).toString('hex')).to.equal(R.clientFinishedVerifyData);
    expect(ks.verifyFinished(c, hex(R.serverFinishedHash), hex(R.clientFinishedVerifyData))).to.equal(true);
    const wrong = hex(R.clientFinishedVerifyData);
    wrong[31]! ^= 1;
    expect(ks.verifyFinished(c, hex(R.serverFinishedHash), wrong)).to.equal(false);
  });

  it('HkdfLabel is BE16(length) ‖ vec8(prefix ‖ label) ‖ vec8(context), and labels over 255 bytes are refused', () => {
    expect(hkdfLabel(V2_SCHEDULE, 'key', Buffer.alloc(0), 32).toString('hex')).to.equal('0020097174756e32206b657900');
    expect(() => hkdfLabel(V2_SCHEDULE, 'x'.repeat(250), Buffer.alloc(0), 32)).to.throw(QuantumTunnelError).with.property('code', ErrorCode.INVALID_ARGUMENT);
  });

  it('v2 runs SHA-384: 48-byte secrets, an exporter that depends on label, context and length', () => {
    const v2 = new KeySchedule();
    const early = v2.earlySecret();
    expect(testing.exportSecret(early).length).to.equal(48);
    const exporter = v2.applicationSecrets(v2.masterSecret(v2.handshakeSecret(early, crypto.randomSecret(48))), Buffer.alloc(48, 1)).exporter;
    const a = v2.exporter(exporter, 'EXPORTER-test', Buffer.from('ctx'), 64);
    expect(a.length).to.equal(64);
    expect(v2.exporter(exporter, 'EXPORTER-test', Buffer.from('ctx'), 64).equals(a)).to.equal(true);
    expect(v2.exporter(exporter, 'EXPORTER-other', Buffer.from('ctx'), 64).equals(a)).to.equal(false);
    expect(v2.exporter(exporter, 'EXPORTER-test', Buffer.from('ctY'), 64).equals(a)).to.equal(false);
    expect(v2.exporter(exporter, 'EXPORTER-test', Buffer.from('ctx'), 32).equals(a.subarray(0, 32))).to.equal(false); // length is in the label
  });

  it('without a PSK (early undefined) the schedule equals the one from the explicit zero early secret; application secrets in one call', () => {
    const v2 = new KeySchedule();
    const shared = crypto.randomSecret(48);
    const implicit = v2.handshakeSecret(undefined, shared);
    const explicit = v2.handshakeSecret(v2.earlySecret(), shared);
    expect(testing.exportSecret(implicit).equals(testing.exportSecret(explicit))).to.equal(true);
    expect(testing.exportSecret(v2.keySecret(undefined, shared)).equals(testing.exportSecret(v2.keySecret(v2.earlySecret(), shared)))).to.equal(true);
    const master = v2.masterSecret(implicit);
    const hash = Buffer.alloc(48, 9);
    const all = v2.applicationSecrets(master, hash);
    // Each is its own Derive-Secret (RFC 8446 §7.1) over the one transcript hash.
    for (const [secret, label] of [[all.client, 'c ap traffic'], [all.server, 's ap traffic'], [all.exporter, 'exp master']] as const) {
      expect(testing.exportSecret(secret).equals(testing.exportSecret(deriveSecret(V2_SCHEDULE, master, label, hash))), label).to.equal(true);
    }
    expect(testing.exportSecret(all.client).equals(testing.exportSecret(all.server))).to.equal(false);
  });

  it('the public HKDF-Expand-Label (exporters) equals the native one, for lengths across block boundaries', () => {
    const secret = crypto.randomSecret(48);
    for (const length of [1, 47, 48, 49, 100, 255]) {
      const viaHmac = expandLabelPublic(V2_SCHEDULE, secret, 'exporter', Buffer.alloc(48, 2), length);
      expect(viaHmac.toString('hex'), `length ${length}`).to.equal(out(expandLabel(V2_SCHEDULE, secret, 'exporter', Buffer.alloc(48, 2), length)));
    }
  });
});

describe('protocol v2: hybrid KEM groups', () => {
  it('three groups; P-384 + ML-KEM-1024 is the approved one and the default in FIPS mode only', () => {
    expect(KEM_GROUPS.map((g) => g.option)).to.deep.equal(['x25519-mlkem1024', 'p384-mlkem1024', 'x25519-mlkem768']);
    expect(KEM_GROUPS.map((g) => g.fipsApproved)).to.deep.equal([false, true, false]);
    expect(kemGroupById(KemGroup.P384_MLKEM1024)!.displayName).to.equal('P-384 + ML-KEM-1024');
    expect(defaultKemGroup().id).to.equal(crypto.info().fips ? KemGroup.P384_MLKEM1024 : KemGroup.X25519_MLKEM1024);
    expect(() => kemGroupByOption('rsa')).to.throw(QuantumTunnelError).with.property('code', ErrorCode.INVALID_ARGUMENT);
  });

  for (const group of KEM_GROUPS) {
    it(`${group.displayName}: both sides agree on K; shares have the documented sizes`, function () {
      if (!group.permitted()) this.skip();
      const client = group.generateClientShare();
      expect(client.share.length).to.equal(group.clientShareSize);
      const server = group.encapsulate(client.share, 2);
      expect(server.share.length).to.equal(group.serverShareSize);
      const k = client.finish(server.share, 2);
      expect(crypto.timingSafeEqual(k, server.secret)).to.equal(true);
      expect(testing.exportSecret(k).length).to.equal(48);
      expect(() => client.finish(server.share, 2)).to.throw(QuantumTunnelError).with.property('code', ErrorCode.INVALID_STATE);
    });

    it(`${group.displayName}: K depends on the version (a share reused under another version disagrees)`, function () {
      if (!group.permitted()) this.skip();
      const client = group.generateClientShare();
      const server = group.encapsulate(client.share, 2);
      const k = client.finish(server.share, 3);
      expect(crypto.timingSafeEqual(k, server.secret)).to.equal(false);
    });
  }

  it('the combiner binds every public value, the version and the group, not only the two secrets', () => {
    const z1 = Buffer.alloc(32, 1);
    const z2 = Buffer.alloc(32, 2);
    const base = { initiatorClassical: Buffer.alloc(32, 3), responderClassical: Buffer.alloc(32, 4), encapsulationKey: Buffer.alloc(1568, 5), ciphertext: Buffer.alloc(1568, 6) };
    const k = (group: number, version: number, pv = base) => out(combine(group, version, pv, testing.secretFromBytes(z1), testing.secretFromBytes(z2)));
    const reference = k(0x0101, 2);
    expect(k(0x0101, 2)).to.equal(reference);
    expect(k(0x0103, 2)).to.not.equal(reference);
    expect(k(0x0101, 3)).to.not.equal(reference);
    for (const field of Object.keys(base) as Array<keyof typeof base>) {
      const changed = { ...base, [field]: Buffer.from(base[field]) };
      changed[field][0]! ^= 1;
      expect(k(0x0101, 2, changed), field).to.not.equal(reference);
    }
    // Swapping the roles' classical keys changes K: positions are bound to roles.
    expect(k(0x0101, 2, { ...base, initiatorClassical: base.responderClassical, responderClassical: base.initiatorClassical })).to.not.equal(reference);
  });

  it('a tampered server share is refused or gives another K (ML-KEM implicit rejection)', function () {
    const group = kemGroupById(KemGroup.P384_MLKEM1024)!;
    const client = group.generateClientShare();
    const server = group.encapsulate(client.share, 2);
    const tampered = Buffer.from(server.share);
    tampered[tampered.length - 1]! ^= 1; // in the ML-KEM ciphertext
    const k = client.finish(tampered, 2);
    expect(crypto.timingSafeEqual(k, server.secret)).to.equal(false);
    const badPoint = group.generateClientShare();
    const bad = Buffer.from(server.share);
    bad[0] = 0x02; // a compressed P-384 point: refused
    expect(() => badPoint.finish(bad, 2)).to.throw(QuantumTunnelError).with.property('code', ErrorCode.INVALID_KEY);
  });
});
