import { expect } from 'chai';
import { crypto, QuantumTunnelError } from '../../lib/index.js';
import { MAX_RECORD_PLAINTEXT, MessageType } from '../../lib/protocol/constants.js';
import { FrameReader, type Frame } from '../../lib/protocol/frame.js';
import type { HandshakeResult } from '../../lib/protocol/handshake.js';
import { SecureSession, type RecordEvent } from '../../lib/protocol/session.js';
import { hex, loadFixture, sha256Hex } from '../helpers/fixtures.js';
import * as testing from '../../lib/testing.js';

const V = loadFixture('protocol-vectors.json');
const A5 = V['A.5'].fullHandshake;


function frames(bytes: Buffer): Frame[] {
  const r = new FrameReader();
  r.push(Buffer.from(bytes));
  const out: Frame[] = [];
  for (let f = r.nextFrame(); f; f = r.nextFrame()) out.push(f);
  return out;
}

/** A pair of sessions over the same fresh master, as a handshake would leave them. */
function pair(suite = 1, options = {}): { client: SecureSession; server: SecureSession } {
  const master = crypto.randomSecret(32);
  const i2r = crypto.randomSecret(32);
  const r2i = crypto.randomSecret(32);
  const copy = (s: crypto.Secret) => testing.secretFromBytes(testing.exportSecret(s));
  const base = { suite, sessionId: Buffer.alloc(16, 7), resumed: false } as const;
  const c: HandshakeResult = { ...base, role: 'initiator', master: copy(master), sendKey: copy(i2r), receiveKey: copy(r2i) } as HandshakeResult;
  const s: HandshakeResult = { ...base, role: 'responder', master, sendKey: r2i, receiveKey: i2r } as HandshakeResult;
  return { client: new SecureSession(c, options), server: new SecureSession(s, options) };
}

/** A pair plus a copy of the client's send key, for records sealed by hand. */
function pairWithKeys(): { client: SecureSession; server: SecureSession; i2r: crypto.Secret } {
  const master = crypto.randomSecret(32);
  const i2r = crypto.randomSecret(32);
  const r2i = crypto.randomSecret(32);
  const copy = (s: crypto.Secret) => testing.secretFromBytes(testing.exportSecret(s));
  const base = { suite: 1, sessionId: Buffer.alloc(16, 7), resumed: false } as const;
  const keep = copy(i2r);
  const c = { ...base, role: 'initiator', master: copy(master), sendKey: copy(i2r), receiveKey: copy(r2i) } as HandshakeResult;
  const s = { ...base, role: 'responder', master, sendKey: r2i, receiveKey: i2r } as HandshakeResult;
  return { client: new SecureSession(c), server: new SecureSession(s), i2r: keep };
}

function deliver(to: SecureSession, bytes: Buffer): RecordEvent[] {
  return frames(bytes).map((f) => to.openRecord(f));
}

function dataOf(events: RecordEvent[]): string {
  return events.filter((e) => e.kind === 'data').map((e) => (e as { data: Buffer }).data.toString()).join('');
}

describe('record layer: Appendix A.5 records byte for byte', () => {
  function a5Client(): SecureSession {
    const result: HandshakeResult = {
      role: 'initiator', suite: 1, sessionId: hex(A5.inputs.responder.sessionIdHex), resumed: false,
      master: testing.secretFromBytes(hex(A5.masterHex)),
      sendKey: testing.secretFromBytes(hex(A5.trafficKeys.initiatorToResponderKeyHex)),
      receiveKey: testing.secretFromBytes(hex(A5.trafficKeys.responderToInitiatorKeyHex)),
    } as HandshakeResult;
    const rk = A5.rekeyRequest;
    return new SecureSession(result, {
      rekeyActivationOffset: 16n,
      rekeyKeyPair: () => testing.chkemKeyPairFromBytes(hex(rk.newX25519PrivateKeyHex), hex(rk.newMlkemSeedHex)),
    });
  }

  it('seals the first I->R Data record and opens the first R->I one', () => {
    const client = a5Client();
    const [i2r, r2i] = A5.dataRecords;
    expect(client.sealRecords(MessageType.DATA, [Buffer.from(i2r.plaintext)]).toString('hex')).to.equal(i2r.recordHex);
    const ev = client.openRecord(frames(hex(r2i.recordHex))[0]!);
    expect(ev).to.include({ kind: 'data' });
    expect((ev as { data: Buffer }).data.toString()).to.equal('world');
  });

  it('produces the A.5 rekey request after one record each way (seq 1, nonce 1, activation 17)', () => {
    const client = a5Client();
    client.sealRecords(MessageType.DATA, [Buffer.from('hello')]);
    client.openRecord(frames(hex(A5.dataRecords[1].recordHex))[0]!);
    const req = client.startRekey();
    const rk = A5.rekeyRequest;
    expect(req).to.have.length(rk.recordLength).and.to.have.length(1649);
    expect(req.subarray(0, hex(rk.recordPrefixHex).length).toString('hex')).to.equal(rk.recordPrefixHex);
    expect(sha256Hex(req)).to.equal(rk.recordSha256Hex);
  });
});

describe('record layer: sealing, opening, replay', () => {
  it('round-trips many records in one batch, and sizes follow 41 + plaintext', () => {
    const { client, server } = pair();
    const chunks = [Buffer.from('a'), Buffer.alloc(1000, 1), Buffer.alloc(MAX_RECORD_PLAINTEXT, 2)];
    const wire = client.sealRecords(MessageType.DATA, chunks);
    expect(wire.length).to.equal(chunks.reduce((a, c) => a + 41 + c.length, 0));
    const got = deliver(server, wire).map((e) => (e as { data: Buffer }).data);
    expect(got.map((b) => b.length)).to.deep.equal([1, 1000, MAX_RECORD_PLAINTEXT]);
    expect(Buffer.concat(got).equals(Buffer.concat(chunks))).to.equal(true);
    expect(client.stats).to.include({ recordsSent: 3, bytesSent: 1 + 1000 + MAX_RECORD_PLAINTEXT });
  });

  it('refuses empty and oversized plaintexts when sealing', () => {
    const { client } = pair();
    for (const bad of [Buffer.alloc(0), Buffer.alloc(MAX_RECORD_PLAINTEXT + 1)]) {
      expect(() => client.sealRecords(MessageType.DATA, [bad])).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_INVALID_ARGUMENT');
    }
  });

  it('accepts an empty Data record from a peer (the reference cannot open one)', () => {
    const { client, server, i2r } = pairWithKeys();
    // We never send one, so seal it by hand with the client's send key (seq 0, nonce 0).
    const rec = Buffer.alloc(41);
    rec[0] = 0x10;
    rec.writeUInt32BE(36, 1);
    const key = crypto.createAead(1, i2r);
    key.seal(rec, 25, rec.subarray(13, 25), rec.subarray(5, 13), Buffer.alloc(0));
    key.destroy();
    const ev = server.openRecord(frames(rec)[0]!);
    expect(ev).to.include({ kind: 'data' });
    expect((ev as { data: Buffer }).data.length).to.equal(0);
    client.destroy();
  });

  it('a replayed record is fatal (ERR_QT_REPLAY), checked before any decryption', () => {
    const { client, server } = pair();
    const r0 = client.sealRecords(MessageType.DATA, [Buffer.from('one')]);
    expect(dataOf(deliver(server, Buffer.from(r0)))).to.equal('one');
    expect(() => deliver(server, Buffer.from(r0))).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_REPLAY');
  });

  it('a dropped or reordered record is fatal (ERR_QT_RECORD_OUT_OF_ORDER); the records before it were delivered', () => {
    const { client, server } = pair();
    const r0 = client.sealRecords(MessageType.DATA, [Buffer.from('a')]);
    client.sealRecords(MessageType.DATA, [Buffer.from('b')]); // dropped on the way
    const r2 = client.sealRecords(MessageType.DATA, [Buffer.from('c')]);
    expect(dataOf(deliver(server, r0))).to.equal('a');
    expect(() => deliver(server, r2)).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_RECORD_OUT_OF_ORDER');
    const { client: c2, server: s2 } = pair();
    const x0 = c2.sealRecords(MessageType.DATA, [Buffer.from('x')]);
    const x1 = c2.sealRecords(MessageType.DATA, [Buffer.from('y')]);
    expect(() => deliver(s2, x1)).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_RECORD_OUT_OF_ORDER');
    expect(x0.length).to.be.greaterThan(0);
  });

  it('a forged sequence number is refused before decryption: 2^64-1 is out of order, not a range error', () => {
    const { client, server } = pair();
    const forged = Buffer.from(client.sealRecords(MessageType.DATA, [Buffer.from('x')]));
    forged.writeBigUInt64BE(2n ** 64n - 1n, 5);
    expect(() => server.openRecord(frames(forged)[0]!)).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_RECORD_OUT_OF_ORDER');
  });

  it('the sequence space ends at 2^64-1: sending past it and receiving after it are typed failures', () => {
    const { client, server } = pair(1, { firstSequence: 2n ** 64n - 2n });
    const last = client.sealRecords(MessageType.DATA, [Buffer.from('a'), Buffer.from('b')]);
    expect(dataOf(deliver(server, last))).to.equal('ab');
    expect(() => client.sealRecords(MessageType.DATA, [Buffer.from('c')])).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_SEQUENCE_EXHAUSTED');
    expect(() => client.startRekey()).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_SEQUENCE_EXHAUSTED');
    const again = Buffer.from(last.subarray(0, last.length / 2));
    expect(() => server.openRecord(frames(again)[0]!)).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_SEQUENCE_EXHAUSTED');
  });

  it('treats a tampered tag or ciphertext as an authentication failure', () => {
    const { client, server } = pair();
    const r = Buffer.from(client.sealRecords(MessageType.DATA, [Buffer.from('secret')]));
    r[30]! ^= 1;
    expect(() => server.openRecord(frames(r)[0]!)).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_AUTHENTICATION_FAILED');
  });

  it('refuses records shorter than their overhead as malformed', () => {
    const { server } = pair();
    const short = Buffer.alloc(5 + 35);
    short[0] = 0x10; short.writeUInt32BE(35, 1);
    expect(() => server.openRecord(frames(short)[0]!)).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_MALFORMED_MESSAGE');
  });
});

describe('rekey: request, response, switch; nothing lost in either direction', () => {
  it('ratchets both sides to the same new keys; records before and after the exchange all open', () => {
    const { client, server } = pair();
    const req = client.startRekey();
    expect(client.rekeyInProgress).to.equal(true);
    // Traffic crosses the request in both directions before the response arrives.
    const c1 = client.sealRecords(MessageType.DATA, [Buffer.from('c1')]);
    const s1 = server.sealRecords(MessageType.DATA, [Buffer.from('s1')]);
    const evs = deliver(server, Buffer.concat([req, c1]));
    const resp = evs.find((e) => e.kind === 'rekey-response-sent') as { frame: Buffer };
    expect(resp).to.not.equal(undefined);
    expect(dataOf(evs)).to.equal('c1');
    const s2 = server.sealRecords(MessageType.DATA, [Buffer.from('s2')]); // new key already
    const back = deliver(client, Buffer.concat([s1, resp.frame, s2]));
    expect(dataOf(back)).to.equal('s1s2');
    expect(back.some((e) => e.kind === 'rekey-complete')).to.equal(true);
    expect(client.rekeyInProgress).to.equal(false);
    expect(crypto.timingSafeEqual(client.masterSecretCopy(), server.masterSecretCopy())).to.equal(true);
    const c2 = client.sealRecords(MessageType.DATA, [Buffer.from('c2')]);
    expect(dataOf(deliver(server, c2))).to.equal('c2');
    expect(client.stats.rekeys).to.equal(1);
    expect(server.stats.rekeys).to.equal(1);
  });

  it('holds back initiator records that would reach the activation point before the response', () => {
    const { client } = pair(1, { rekeyActivationOffset: 4n });
    client.startRekey();
    expect(client.sendBudget()).to.equal(3);
    client.sealRecords(MessageType.DATA, [Buffer.from('a'), Buffer.from('b'), Buffer.from('c')]);
    expect(client.sendBudget()).to.equal(0);
    expect(() => client.sealRecords(MessageType.DATA, [Buffer.from('d')])).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_INVALID_STATE');
  });

  it('survives many consecutive rekeys with traffic both ways', () => {
    const { client, server } = pair(1, { rekeyMinIntervalMs: 0 });
    for (let round = 0; round < 5; round++) {
      const req = client.startRekey();
      const evs = deliver(server, Buffer.concat([req, client.sealRecords(MessageType.DATA, [Buffer.from(`c${round}`)])]));
      const resp = (evs.find((e) => e.kind === 'rekey-response-sent') as { frame: Buffer }).frame;
      const back = deliver(client, Buffer.concat([resp, server.sealRecords(MessageType.DATA, [Buffer.from(`s${round}`)])]));
      expect(dataOf(evs) + dataOf(back)).to.equal(`c${round}s${round}`);
    }
    expect(crypto.timingSafeEqual(client.masterSecretCopy(), server.masterSecretCopy())).to.equal(true);
  });

  it('sequence numbers stay contiguous through rekeys in both directions (no jump an attacker could hide a drop in)', () => {
    const { client, server } = pair(1, { rekeyMinIntervalMs: 0 });
    const seqs = (bytes: Buffer) => frames(bytes).map((f) => f.payload.readBigUInt64BE(0));
    const sent: bigint[] = [];
    const back: bigint[] = [];
    for (let round = 0; round < 3; round++) {
      const toServer = Buffer.concat([client.startRekey()]);
      sent.push(...seqs(toServer));
      const evs = deliver(server, toServer);
      const resp = (evs.find((e) => e.kind === 'rekey-response-sent') as { frame: Buffer }).frame;
      const fromServer = Buffer.concat([resp, server.sealRecords(MessageType.DATA, [Buffer.from('s')])]);
      back.push(...seqs(fromServer));
      deliver(client, fromServer);
      const more = client.sealRecords(MessageType.DATA, [Buffer.from('c'), Buffer.from('d')]);
      sent.push(...seqs(more));
      expect(dataOf(deliver(server, more))).to.equal('cd');
    }
    expect(sent).to.deep.equal(sent.map((_, i) => BigInt(i)));
    expect(back).to.deep.equal(back.map((_, i) => BigInt(i)));
    expect(client.stats.rekeys).to.equal(3);
  });

  it('a peer asking for rekeys faster than rekeyMinIntervalMs is refused (ERR_QT_REKEY_RATE_LIMITED), and admission control is consulted', () => {
    let now = 1_000_000;
    const { client, server } = pair(1, { now: () => now, rekeyMinIntervalMs: 250 });
    const answer = () => {
      const evs = deliver(server, client.startRekey());
      deliver(client, (evs.find((e) => e.kind === 'rekey-response-sent') as { frame: Buffer }).frame);
    };
    answer();
    now += 100;
    expect(() => deliver(server, client.startRekey())).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_REKEY_RATE_LIMITED');
    let admitted = 0;
    const { client: c2, server: s2 } = pair(1, { rekeyMinIntervalMs: 0, admitRekey: () => ++admitted <= 1 });
    const evs = deliver(s2, c2.startRekey());
    deliver(c2, (evs.find((e) => e.kind === 'rekey-response-sent') as { frame: Buffer }).frame);
    expect(() => deliver(s2, c2.startRekey())).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_REKEY_RATE_LIMITED');
    expect(admitted).to.equal(2);
  });

  it('a rekey response relabelled as Data is refused at the initiator, never delivered (§14 #12)', () => {
    const { client, server } = pair();
    const evs = deliver(server, client.startRekey());
    const resp = Buffer.from((evs.find((e) => e.kind === 'rekey-response-sent') as { frame: Buffer }).frame);
    resp[0] = MessageType.DATA;
    expect(() => deliver(client, resp)).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_UNEXPECTED_MESSAGE');
  });

  it('a rekey request relabelled as Data is refused at the responder; 1,608 bytes of ordinary data are not', () => {
    const { client, server } = pair();
    const req = Buffer.from(client.startRekey());
    req[0] = MessageType.DATA;
    expect(() => deliver(server, req)).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_UNEXPECTED_MESSAGE');
    const { client: c2, server: s2 } = pair();
    const data = Buffer.alloc(1608, 0xff); // not a valid ML-KEM key: delivered as data
    expect(deliver(s2, c2.sealRecords(MessageType.DATA, [data]))[0]).to.include({ kind: 'data' });
  });

  it('only the initiator may start a rekey; one at a time', () => {
    const { client, server } = pair();
    expect(() => server.startRekey()).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_INVALID_STATE');
    client.startRekey();
    expect(() => client.startRekey()).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_INVALID_STATE');
  });

  it('a Data record relabelled as Rekey (type outside the AD, §14 #12) is refused as malformed, not executed', () => {
    const { client, server } = pair();
    const r = Buffer.from(client.sealRecords(MessageType.DATA, [Buffer.from('not a rekey')]));
    r[0] = MessageType.REKEY;
    expect(() => server.openRecord(frames(r)[0]!)).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_MALFORMED_MESSAGE');
  });

  it('needsRekey fires on the time trigger and resets after activation', () => {
    let now = 0;
    const { client, server } = pair(1, { now: () => now });
    expect(client.needsRekey()).to.equal(false);
    now = 3600 * 1000;
    expect(client.needsRekey()).to.equal(true);
    expect(server.needsRekey()).to.equal(false);
    const resp = (deliver(server, client.startRekey()).find((e) => e.kind === 'rekey-response-sent') as { frame: Buffer }).frame;
    deliver(client, resp);
    expect(client.needsRekey()).to.equal(false);
  });
});
