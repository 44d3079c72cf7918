/**
 * The seams every protocol version plugs into: the suite and version registries, the handshake
 * interface the driver loops over, and the session's handling of every post-handshake frame.
 */
import { expect } from 'chai';
import { crypto, ErrorCode, QuantumTunnelError } from '../../lib/index.js';
import { CipherSuite, MessageType } from '../../lib/protocol/constants.js';
import { encodeFrame, FrameReader, type Frame } from '../../lib/protocol/frame.js';
import type { Handshake, HandshakeResult, HandshakeStep, HandshakeSummary } from '../../lib/protocol/handshake.js';
import { CLOSE_NOTIFY_ALERT, encodeAlert, PING_FRAME, PONG_FRAME } from '../../lib/protocol/messages.js';
import {
  CIPHER_SUITES,
  cipherNames,
  cipherSuiteById,
  cipherSuiteName,
  defaultCipherSuites,
  resolveCipherSuites,
  suitePermitted,
} from '../../lib/protocol/suites.js';
import { DEFAULT_PROTOCOL_VERSION, initiatorVersion, PROTOCOL_VERSIONS, responderVersion, V1, V2 } from '../../lib/protocol/versions.js';
import * as testing from '../../lib/testing.js';

const chacha = crypto.info().chacha20.available;

function frame(bytes: Buffer): Frame {
  const r = new FrameReader();
  r.push(bytes);
  return r.nextFrame()!;
}

/** The sealed part of an encrypted handshake record (what the driver hands to receive()). */
function recordOf(bytes: Buffer): Buffer {
  const r = new FrameReader();
  r.push(bytes);
  return r.nextHandshakeRecord()!;
}

/** Runs both sides of a handshake through the interface alone, as the driver does. */
async function converse(initiator: Handshake, responder: Handshake): Promise<[HandshakeSummary, HandshakeSummary]> {
  let i: HandshakeStep = await initiator.start();
  let r: HandshakeStep = await responder.start();
  for (let turn = 0; turn < 8; turn++) {
    if (i.result && r.result) return [i.result, r.result];
    if (i.send.length > 0 && r.next !== 'done') {
      const bytes = i.send.shift()!;
      r = await responder.receive(r.next === 'frame' ? frame(bytes) : recordOf(bytes));
    } else if (r.send.length > 0 && i.next !== 'done') {
      const bytes = r.send.shift()!;
      i = await initiator.receive(i.next === 'frame' ? frame(bytes) : recordOf(bytes));
    }
  }
  throw new Error('the handshake did not finish in 8 turns');
}

describe('registries: cipher suites', () => {
  it('one entry per suite: unique wire IDs, option names and display names, in preference order', () => {
    expect(CIPHER_SUITES.map((s) => s.id)).to.deep.equal([CipherSuite.AES_256_GCM, CipherSuite.CHACHA20_POLY1305]);
    expect(cipherNames()).to.deep.equal(['aes-256-gcm', 'chacha20-poly1305']);
    expect(new Set(CIPHER_SUITES.map((s) => s.displayName)).size).to.equal(CIPHER_SUITES.length);
    expect(cipherSuiteName(CipherSuite.AES_256_GCM)).to.equal('AES-256-GCM');
    expect(cipherSuiteName(0x9999)).to.equal('Unknown');
    expect(cipherSuiteById(0x9999)).to.equal(undefined);
  });

  it('FIPS approval and availability come from the table: defaults offer exactly the permitted suites', () => {
    expect(cipherSuiteById(CipherSuite.AES_256_GCM)!.fipsApproved).to.equal(true);
    expect(cipherSuiteById(CipherSuite.CHACHA20_POLY1305)!.fipsApproved).to.equal(false);
    expect(suitePermitted(CipherSuite.AES_256_GCM)).to.equal(true);
    expect(suitePermitted(CipherSuite.CHACHA20_POLY1305)).to.equal(chacha);
    expect(defaultCipherSuites()).to.deep.equal(chacha ? [CipherSuite.AES_256_GCM, CipherSuite.CHACHA20_POLY1305] : [CipherSuite.AES_256_GCM]);
  });

  it('resolves option names and refuses unknown or unavailable ones with ERR_QT_INVALID_ARGUMENT', () => {
    expect(resolveCipherSuites(['aes-256-gcm'])).to.deep.equal([CipherSuite.AES_256_GCM]);
    expect(resolveCipherSuites(undefined)).to.deep.equal(defaultCipherSuites());
    for (const bad of [[], ['rot13'], 'aes-256-gcm', ...(chacha ? [] : [['chacha20-poly1305']])]) {
      expect(() => resolveCipherSuites(bad as never)).to.throw(QuantumTunnelError).with.property('code', ErrorCode.INVALID_ARGUMENT);
    }
  });
});

describe('registries: protocol versions', () => {
  it('v2 and v1 are registered; v2 is what dial() speaks, v1 only in legacy mode', () => {
    expect([...PROTOCOL_VERSIONS.keys()]).to.deep.equal([2, 1]);
    expect(DEFAULT_PROTOCOL_VERSION.major).to.equal(2);
    expect(DEFAULT_PROTOCOL_VERSION.name).to.equal('v2');
    expect(initiatorVersion(false)).to.equal(V2);
    expect(initiatorVersion(true)).to.equal(V1);
  });

  it('a ClientHello picks its responder by major version, v1 only when legacy is accepted; anything else goes to v2, which refuses it', () => {
    const v1Hello = frame(encodeFrame(MessageType.CLIENT_HELLO, Buffer.from([1, 0])));
    expect(responderVersion(v1Hello, true).major).to.equal(1);
    expect(responderVersion(v1Hello, false).major).to.equal(2);
    expect(responderVersion(frame(encodeFrame(MessageType.CLIENT_HELLO, Buffer.from([2, 0]))), true).major).to.equal(2);
    expect(responderVersion(frame(encodeFrame(MessageType.CLIENT_HELLO, Buffer.from([9, 0]))), true).major).to.equal(2);
    expect(responderVersion(frame(encodeFrame(MessageType.DATA, Buffer.from([1, 0]))), true).major).to.equal(2);
  });

  it('both v1 handshake sides complete through the Handshake interface alone, with matching keys', async () => {
    const v = V1;
    const initiator = await v.initiator({ cipherSuites: [CipherSuite.AES_256_GCM], groups: [] });
    const responder = v.responder({ cipherSuites: [CipherSuite.AES_256_GCM], groups: [] });
    const [c, s] = (await converse(initiator, responder)) as [HandshakeResult, HandshakeResult];
    expect(c.role).to.equal('initiator');
    expect(s.role).to.equal('responder');
    expect(c.sessionId.equals(s.sessionId)).to.equal(true);
    expect(crypto.timingSafeEqual(c.master, s.master)).to.equal(true);
    expect(testing.exportSecret(c.sendKey).equals(testing.exportSecret(s.receiveKey))).to.equal(true);
    const client = v.session(c, {});
    const server = v.session(s, {});
    const ev = server.receive(frame(client.sealData([Buffer.from('through the registry')])));
    expect(ev.kind === 'data' && ev.data.toString()).to.equal('through the registry');
    initiator.destroy();
    responder.destroy();
    client.destroy();
    server.destroy();
  });
});

describe('session: every post-handshake frame becomes an event or a fatal error', () => {
  async function sessions() {
    const v = V1;
    const [c, s] = await converse(await v.initiator({ cipherSuites: [CipherSuite.AES_256_GCM], groups: [] }), v.responder({ cipherSuites: [CipherSuite.AES_256_GCM], groups: [] }));
    return { client: v.session(c, {}), server: v.session(s, {}) };
  }

  it('Ping, Pong, warning and fatal alerts, close_notify (once), Close', async () => {
    const { client, server } = await sessions();
    expect(server.receive(frame(PING_FRAME))).to.deep.equal({ kind: 'ping' });
    expect(server.receive(frame(PONG_FRAME))).to.deep.equal({ kind: 'pong' });
    expect(server.pongFrame().equals(PONG_FRAME)).to.equal(true);
    expect(server.receive(frame(encodeAlert({ level: 1, code: 5, description: 'hi' })))).to.deep.equal({ kind: 'alert', level: 1, code: 5, description: 'hi' });
    const fatal = server.receive(frame(encodeAlert({ level: 2, code: 3, description: 'x' })));
    expect(fatal.kind).to.equal('peer-fatal');
    expect(fatal.kind === 'peer-fatal' && fatal.error.code).to.equal(ErrorCode.PEER_ALERT);
    expect(server.receive(frame(CLOSE_NOTIFY_ALERT))).to.deep.equal({ kind: 'peer-close' });
    expect(server.receive(frame(encodeFrame(MessageType.CLOSE)))).to.deep.equal({ kind: 'none' });
    // A record after the peer's close_notify is a violation.
    expect(() => server.receive(frame(client.sealData([Buffer.from('late')])))).to.throw(QuantumTunnelError).with.property('code', ErrorCode.UNEXPECTED_MESSAGE);
    client.destroy();
    server.destroy();
  });

  it('unknown types and malformed alerts are fatal; the fatal alert names bad records as such', async () => {
    const { client, server } = await sessions();
    expect(() => server.receive(frame(encodeFrame(0x99, Buffer.alloc(2))))).to.throw(QuantumTunnelError).with.property('code', ErrorCode.UNEXPECTED_MESSAGE);
    expect(() => server.receive(frame(encodeFrame(MessageType.ALERT, Buffer.from([2]))))).to.throw(QuantumTunnelError).with.property('code', ErrorCode.MALFORMED_MESSAGE);
    const bad = server.fatalAlert(new QuantumTunnelError('x', ErrorCode.RECORD_OUT_OF_ORDER));
    expect(bad.toString('hex')).to.equal('f00000000d02020a626164207265636f7264');
    expect(server.fatalAlert(new QuantumTunnelError('x', ErrorCode.REKEY_RATE_LIMITED))[6]).to.equal(0x01); // unexpected_message
    client.destroy();
    server.destroy();
  });
});
