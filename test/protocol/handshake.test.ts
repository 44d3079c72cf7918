import { expect } from 'chai';
import { crypto, QuantumTunnelError } from '../../lib/index.js';
import { CipherSuite, MessageType } from '../../lib/protocol/constants.js';
import { FrameReader, type Frame } from '../../lib/protocol/frame.js';
import { InitiatorHandshake, ResponderHandshake, type HandshakeResult } from '../../lib/protocol/handshake.js';
import { HANDSHAKE_FAILURE_ALERT, encodeClientHello, decodeClientHello } from '../../lib/protocol/messages.js';
import { hex, loadFixture, sha256Hex } from '../helpers/fixtures.js';
import * as testing from '../../lib/testing.js';

const V = loadFixture('protocol-vectors.json');
const A5 = V['A.5'].fullHandshake;
const A7 = V['A.7'].responderHandshake;


function frameOf(bytes: Buffer): Frame {
  const r = new FrameReader();
  r.push(bytes);
  const f = r.nextFrame();
  expect(f).to.not.equal(null);
  return f!;
}

function sealedOf(record: Buffer): Buffer {
  expect(record.readUInt32BE(0)).to.equal(record.length - 4);
  return record.subarray(4);
}

async function a5Initiator(): Promise<InitiatorHandshake> {
  return InitiatorHandshake.create({
    cipherSuites: [CipherSuite.AES_256_GCM, CipherSuite.CHACHA20_POLY1305],
    keyPair: testing.chkemKeyPairFromBytes(hex(A5.inputs.initiator.x25519PrivateKeyHex), hex(A5.inputs.initiator.mlkemSeedHex)),
    random: hex(A5.inputs.initiator.clientRandomHex),
  });
}

function a7Responder(): ResponderHandshake {
  const r = A7.inputs.responder;
  return new ResponderHandshake({
    cipherSuites: [CipherSuite.AES_256_GCM, CipherSuite.CHACHA20_POLY1305],
    random: hex(r.serverRandomHex),
    sessionId: hex(r.sessionIdHex),
    encapsulate: (pk) => testing.chkemEncapsulateDeterministic(pk, hex(r.ephemeralX25519PrivateKeyHex), hex(r.mlkemEncapsCoinsHex)),
  });
}

function keyHex(s: crypto.Secret): string {
  return testing.exportSecret(s).toString('hex');
}

describe('handshake: Appendix A.5 (initiator side, byte for byte)', () => {
  it('produces the A.5 ClientHello (1,646 bytes)', async () => {
    const ch = (await a5Initiator()).clientHello();
    expect(ch).to.have.length(A5.clientHello.length).and.to.have.length(1646);
    expect(ch.subarray(0, hex(A5.clientHello.prefixHex).length).toString('hex')).to.equal(A5.clientHello.prefixHex);
    expect(sha256Hex(ch)).to.equal(A5.clientHello.sha256Hex);
  });

  it('answers the A.5 ServerHello with the A.5 ClientFinished record and accepts the A.5 ServerFinished', async () => {
    const init = await a5Initiator();
    init.clientHello();
    const sh = hex(A5.serverHello.hex);
    expect(sha256Hex(sh)).to.equal(A5.serverHello.sha256Hex);
    const cf = await init.onServerHello(frameOf(sh));
    expect(cf.toString('hex')).to.equal(A5.clientFinishedRecordHex);
    expect(cf).to.have.length(69);
    const result = init.onServerFinished(sealedOf(hex(A5.serverFinishedRecordHex)));
    expect(result).to.include({ role: 'initiator', suite: 1, resumed: false });
    expect(result.sessionId.toString('hex')).to.equal(A5.inputs.responder.sessionIdHex);
    expect(keyHex(result.master)).to.equal(A5.masterHex);
    expect(keyHex(result.sendKey)).to.equal(A5.trafficKeys.initiatorToResponderKeyHex);
    expect(keyHex(result.receiveKey)).to.equal(A5.trafficKeys.responderToInitiatorKeyHex);
  });

  it('refuses a ServerFinished whose verify_data or tag is wrong', async () => {
    for (const mutate of [(b: Buffer) => { b[20]! ^= 1; }, (b: Buffer) => { b[b.length - 1]! ^= 1; }]) {
      const init = await a5Initiator();
      init.clientHello();
      await init.onServerHello(frameOf(hex(A5.serverHello.hex)));
      const sf = Buffer.from(sealedOf(hex(A5.serverFinishedRecordHex)));
      mutate(sf);
      expect(() => init.onServerFinished(sf)).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_HANDSHAKE_FAILED');
    }
  });
});

describe('handshake: Appendix A.7 (responder side, byte for byte)', () => {
  it('produces the A.7 ServerHello and ServerFinished and the A.7 traffic keys', async () => {
    const init = await a5Initiator();
    const resp = a7Responder();
    const sh = await resp.onClientHello(frameOf(init.clientHello()));
    expect(sh).to.have.length(A7.serverHello.length);
    expect(sha256Hex(sh)).to.equal(A7.serverHello.sha256Hex);
    const cf = await init.onServerHello(frameOf(sh));
    expect(cf.toString('hex')).to.equal(A7.clientFinishedRecordHex);
    const { serverFinished, result } = resp.onClientFinished(sealedOf(cf));
    expect(serverFinished.toString('hex')).to.equal(A7.serverFinishedRecordHex);
    expect(keyHex(result.master)).to.equal(A7.masterHex);
    expect(keyHex(result.receiveKey)).to.equal(A7.trafficKeys.initiatorToResponderKeyHex);
    expect(keyHex(result.sendKey)).to.equal(A7.trafficKeys.responderToInitiatorKeyHex);
    const initResult = init.onServerFinished(sealedOf(serverFinished));
    expect(keyHex(initResult.sendKey)).to.equal(A7.trafficKeys.initiatorToResponderKeyHex);
  });
});

async function runHandshake(
  initOpts: Partial<Parameters<typeof InitiatorHandshake.create>[0]> = {},
  respOpts: Partial<ConstructorParameters<typeof ResponderHandshake>[0]> = {},
): Promise<{ client: HandshakeResult; server: HandshakeResult }> {
  const init = await InitiatorHandshake.create({ cipherSuites: [1, 2], ...initOpts });
  const resp = new ResponderHandshake({ cipherSuites: [1, 2], ...respOpts });
  const sh = await resp.onClientHello(frameOf(init.clientHello()));
  const cf = await init.onServerHello(frameOf(sh));
  const { serverFinished, result: server } = resp.onClientFinished(sealedOf(cf));
  return { client: init.onServerFinished(sealedOf(serverFinished)), server };
}

describe('handshake: negotiation and failures', () => {
  it('completes with fresh keys; both sides agree and every handshake differs', async () => {
    const a = await runHandshake();
    const b = await runHandshake();
    expect(crypto.timingSafeEqual(a.client.sendKey, a.server.receiveKey)).to.equal(true);
    expect(crypto.timingSafeEqual(a.client.receiveKey, a.server.sendKey)).to.equal(true);
    expect(crypto.timingSafeEqual(a.client.master, b.client.master)).to.equal(false);
    expect(a.client.sessionId.equals(a.server.sessionId)).to.equal(true);
    expect(a.client.sessionId).to.have.length(16);
  });

  it('picks the client\'s first suite the server supports; ChaCha20 end to end when offered first', async function () {
    if (!crypto.info().chacha20.available) this.skip();
    const { client, server } = await runHandshake({ cipherSuites: [2, 1] });
    expect(client.suite).to.equal(CipherSuite.CHACHA20_POLY1305);
    expect(server.suite).to.equal(CipherSuite.CHACHA20_POLY1305);
    const aes = await runHandshake({ cipherSuites: [2, 1] }, { cipherSuites: [1] });
    expect(aes.client.suite).to.equal(CipherSuite.AES_256_GCM);
  });

  it('responder skips unknown suite IDs instead of refusing the hello (the reference refuses)', async () => {
    const init = await InitiatorHandshake.create({ cipherSuites: [1] });
    const ch = decodeClientHello(frameOf(init.clientHello()).payload);
    const withUnknown = encodeClientHello({ ...ch, cipherSuites: [0x9999, 0x0001, 0xffff] });
    const resp = new ResponderHandshake({ cipherSuites: [1, 2] });
    const sh = await resp.onClientHello(frameOf(withUnknown));
    expect(sh.readUInt16BE(sh.length - 2)).to.equal(1);
  });

  it('responder refuses a hello with no suite in common, another major version, or a bad key', async () => {
    const init = await InitiatorHandshake.create({ cipherSuites: [2] });
    const ch = decodeClientHello(frameOf(init.clientHello()).payload);
    const cases: Array<[Buffer, string]> = [
      [encodeClientHello({ ...ch, cipherSuites: [2] }), 'ERR_QT_UNSUPPORTED_CIPHER_SUITE'],
      [encodeClientHello({ ...ch, cipherSuites: [1], version: { major: 2, minor: 0 } }), 'ERR_QT_UNSUPPORTED_VERSION'],
      [encodeClientHello({ ...ch, cipherSuites: [1], publicKey: Buffer.concat([ch.publicKey.subarray(0, 32), Buffer.alloc(1568, 0xff)]) }), 'ERR_QT_INVALID_KEY'],
      [HANDSHAKE_FAILURE_ALERT, 'ERR_QT_PEER_ALERT'],
    ];
    for (const [bytes, code] of cases) {
      const resp = new ResponderHandshake({ cipherSuites: [1] });
      let caught: unknown;
      try { await resp.onClientHello(frameOf(bytes)); } catch (e) { caught = e; }
      expect(caught, code).to.be.instanceOf(QuantumTunnelError).with.property('code', code);
    }
  });

  it('initiator refuses a suite it did not offer (the reference accepts it)', async () => {
    const init = await InitiatorHandshake.create({ cipherSuites: [1] });
    const resp = new ResponderHandshake({ cipherSuites: [1] });
    const sh = Buffer.from(await resp.onClientHello(frameOf(init.clientHello())));
    sh.writeUInt16BE(2, sh.length - 2);
    let caught: unknown;
    try { await init.onServerHello(frameOf(sh)); } catch (e) { caught = e; }
    expect(caught).to.be.instanceOf(QuantumTunnelError).with.property('code', 'ERR_QT_UNSUPPORTED_CIPHER_SUITE');
  });

  it('detects a tampered ServerHello through the Finished check', async () => {
    const init = await InitiatorHandshake.create({ cipherSuites: [1] });
    const resp = new ResponderHandshake({ cipherSuites: [1] });
    const sh = Buffer.from(await resp.onClientHello(frameOf(init.clientHello())));
    sh[10]! ^= 1; // server_random: not in any key, only in the transcript
    const cf = await init.onServerHello(frameOf(sh));
    expect(() => resp.onClientFinished(sealedOf(cf))).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_HANDSHAKE_FAILED');
  });

  it('refuses calls out of order with ERR_QT_INVALID_STATE', async () => {
    const init = await InitiatorHandshake.create({ cipherSuites: [1] });
    expect(() => init.onServerFinished(Buffer.alloc(65))).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_INVALID_STATE');
    const resp = new ResponderHandshake({ cipherSuites: [1] });
    expect(() => resp.onClientFinished(Buffer.alloc(65))).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_INVALID_STATE');
    init.clientHello();
    expect(() => init.clientHello()).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_INVALID_STATE');
    expect(MessageType.CLIENT_HELLO).to.equal(1);
  });
});
