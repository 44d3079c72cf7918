/**
 * Edge cases of the protocol's small building blocks that the handshake and tunnel tests do not
 * reach on their own: the alert tables of v2 (every local error's alert and every peer alert's
 * error), v1 message codecs on malformed input, the frame reader's limits, the anti-replay store
 * when full, the version registry on a non-hello frame and the v2 record layer's refusals.
 */
import { expect } from 'chai';
import { ErrorCode } from '../../lib/index.js';
import { qtError } from '../../lib/errors.js';
import { CipherSuite, MessageType } from '../../lib/protocol/constants.js';
import { encodeFrame, encodeHandshakeRecord, type Frame, FrameReader } from '../../lib/protocol/frame.js';
import {
  AlertCode,
  AlertLevel,
  decodeAlert,
  decodeClientHello,
  decodeFinished,
  decodeRekeyPayload,
  decodeServerHello,
  encodeAlert,
  encodeClientHello,
  encodeFinished,
  encodeRekeyPayload,
  encodeServerHello,
  isCompatibleVersion,
} from '../../lib/protocol/messages.js';
import { MemoryAntiReplayStore } from '../../lib/protocol/antiReplay.js';
import { offloadNow } from '../../lib/protocol/offload.js';
import type { Handshake, HandshakeResult, HandshakeStep, HandshakeSummary } from '../../lib/protocol/handshake.js';
import { kemGroupById, KemGroup } from '../../lib/protocol/v2/groups.js';
import type { V2HandshakeResult } from '../../lib/protocol/v2/handshake.js';
import { responderVersion, V1, V2 } from '../../lib/protocol/versions.js';
import { alertBody, alertCodeFor, alertError, isPeerAlert, plaintextAlert, V2AlertCode } from '../../lib/protocol/v2/alerts.js';
import { epochKey, FIRST_APPLICATION_EPOCH, InnerType, type InnerTypeValue, MAX_INNER_PLAINTEXT, RECORD_TYPE, RecordLayer } from '../../lib/protocol/v2/record.js';
import * as testing from '../../lib/testing.js';
import { expectCode, expectReject } from '../helpers/buffers.js';

function frameOf(bytes: Buffer): Frame {
  const r = new FrameReader();
  r.push(Buffer.from(bytes));
  return r.nextFrame()!;
}

describe('protocol v2 alerts: both directions of the table', () => {
  // What each local failure tells the peer (docs/ERRORS.md): a changed entry changes the wire.
  const LOCAL: Array<[string, number]> = [
    [ErrorCode.AUTHENTICATION_FAILED, V2AlertCode.BAD_CIPHERTEXT],
    [ErrorCode.PSK_MISMATCH, V2AlertCode.PSK_MISMATCH],
    [ErrorCode.UNSUPPORTED_VERSION, V2AlertCode.UNSUPPORTED_VERSION],
    [ErrorCode.UNSUPPORTED_CIPHER_SUITE, V2AlertCode.UNSUPPORTED_CIPHER],
    [ErrorCode.SEQUENCE_EXHAUSTED, V2AlertCode.KEY_EXHAUSTED],
    [ErrorCode.REKEY_RATE_LIMITED, V2AlertCode.RATE_LIMITED],
    [ErrorCode.SERVER_KEY_MISMATCH, V2AlertCode.SERVER_KEY_MISMATCH],
    [ErrorCode.UNKNOWN_PEER, V2AlertCode.UNKNOWN_PEER],
    [ErrorCode.CERTIFICATE_REQUIRED, V2AlertCode.CERTIFICATE_REQUIRED],
    [ErrorCode.CERTIFICATE_EXPIRED, V2AlertCode.CERTIFICATE_EXPIRED],
    [ErrorCode.CERTIFICATE_REVOKED, V2AlertCode.CERTIFICATE_REVOKED],
    [ErrorCode.CERTIFICATE_UNTRUSTED, V2AlertCode.UNKNOWN_CA],
    [ErrorCode.CERTIFICATE_MALFORMED, V2AlertCode.BAD_CERTIFICATE],
    [ErrorCode.CERTIFICATE_NAME_MISMATCH, V2AlertCode.BAD_CERTIFICATE],
    [ErrorCode.CERTIFICATE_BAD_SIGNATURE, V2AlertCode.BAD_CERTIFICATE],
    [ErrorCode.CERTIFICATE_WRONG_PURPOSE, V2AlertCode.BAD_CERTIFICATE],
    [ErrorCode.CERTIFICATE_REVOCATION_UNKNOWN, V2AlertCode.BAD_CERTIFICATE],
    [ErrorCode.HANDSHAKE_FAILED, V2AlertCode.HANDSHAKE_FAILURE],
    [ErrorCode.INVALID_KEY, V2AlertCode.HANDSHAKE_FAILURE],
    [ErrorCode.X25519_LOW_ORDER_POINT, V2AlertCode.HANDSHAKE_FAILURE],
    [ErrorCode.MALFORMED_MESSAGE, V2AlertCode.UNEXPECTED_MESSAGE],
    [ErrorCode.UNEXPECTED_MESSAGE, V2AlertCode.UNEXPECTED_MESSAGE],
  ];

  it('every local error maps to its alert code; anything else is unexpected_message', () => {
    for (const [code, alert] of LOCAL) expect(alertCodeFor(code), code).to.equal(alert);
    expect(alertCodeFor('ERR_SOMETHING_ELSE')).to.equal(V2AlertCode.UNEXPECTED_MESSAGE);
  });

  it("every alert we send comes back as the matching error on the peer's side, marked as the peer's", () => {
    // The peer-side error of each alert (bad_certificate is reported as CERTIFICATE_REJECTED).
    const PEER: Array<[number, string]> = [
      [V2AlertCode.PSK_MISMATCH, ErrorCode.PSK_MISMATCH],
      [V2AlertCode.UNSUPPORTED_VERSION, ErrorCode.UNSUPPORTED_VERSION],
      [V2AlertCode.UNSUPPORTED_CIPHER, ErrorCode.UNSUPPORTED_CIPHER_SUITE],
      [V2AlertCode.BAD_CIPHERTEXT, ErrorCode.AUTHENTICATION_FAILED],
      [V2AlertCode.SERVER_KEY_MISMATCH, ErrorCode.SERVER_KEY_MISMATCH],
      [V2AlertCode.UNKNOWN_PEER, ErrorCode.UNKNOWN_PEER],
      [V2AlertCode.CERTIFICATE_REQUIRED, ErrorCode.CERTIFICATE_REQUIRED],
      [V2AlertCode.UNKNOWN_CA, ErrorCode.CERTIFICATE_UNTRUSTED],
      [V2AlertCode.CERTIFICATE_EXPIRED, ErrorCode.CERTIFICATE_EXPIRED],
      [V2AlertCode.CERTIFICATE_REVOKED, ErrorCode.CERTIFICATE_REVOKED],
      [V2AlertCode.BAD_CERTIFICATE, ErrorCode.CERTIFICATE_REJECTED],
    ];
    for (const [alert, code] of PEER) {
      const err = alertError(alert, 'during a test');
      expect(err.code, `alert ${alert}`).to.equal(code);
      expect(err.message).to.contain('(alert during a test)');
      expect(isPeerAlert(err)).to.equal(true);
    }
    // Alerts without a dedicated error, and a frame with no readable code, are PEER_ALERT.
    for (const alert of [V2AlertCode.HANDSHAKE_FAILURE, V2AlertCode.KEY_EXHAUSTED, V2AlertCode.RATE_LIMITED, 0x7f]) {
      const err = alertError(alert, 'later');
      expect(err.code).to.equal(ErrorCode.PEER_ALERT);
      expect(err.message).to.contain(`code ${alert} later`);
    }
    expect(alertError(undefined, 'x').message).to.contain('code unknown');
    // Our own errors are never taken for the peer's (they get answered with an alert).
    expect(isPeerAlert(qtError(ErrorCode.PSK_MISMATCH, 'ours'))).to.equal(false);
  });

  it('a plaintext refusal is a fatal v1-format alert with fixed text; an encrypted alert body is level ‖ code', () => {
    const frame = frameOf(plaintextAlert(qtError(ErrorCode.UNKNOWN_PEER, 'details that must not leak')));
    expect(frame.type).to.equal(MessageType.ALERT);
    expect(decodeAlert(frame.payload)).to.deep.equal({ level: AlertLevel.FATAL, code: V2AlertCode.UNKNOWN_PEER, description: 'handshake failed' });
    expect([...alertBody(AlertLevel.WARNING, AlertCode.CLOSE_NOTIFY)]).to.deep.equal([1, 8]);
  });
});

describe('protocol v1 codecs: malformed input', () => {
  const hello = {
    version: { major: 1, minor: 0 },
    random: Buffer.alloc(32, 1),
    sessionId: Buffer.alloc(0),
    publicKey: Buffer.alloc(1600, 2),
    cipherSuites: [1, 2],
  };

  it('ClientHello: every truncation and an empty suite list are MALFORMED_MESSAGE; trailing bytes are ignored', () => {
    const payload = frameOf(encodeClientHello(hello)).payload;
    expect(decodeClientHello(payload).cipherSuites).to.deep.equal([1, 2]);
    for (const cut of [0, 1, 2, 34, 35, 35 + 1599, payload.length - 3, payload.length - 1]) {
      expectCode(() => decodeClientHello(payload.subarray(0, cut)), ErrorCode.MALFORMED_MESSAGE);
    }
    const none = frameOf(encodeClientHello({ ...hello, cipherSuites: [] })).payload;
    expect(expectCode(() => decodeClientHello(none), ErrorCode.MALFORMED_MESSAGE).message).to.contain('no cipher suites');
    // A session ID length that overruns the payload.
    const overrun = Buffer.from(payload);
    overrun[34] = 255;
    expectCode(() => decodeClientHello(overrun.subarray(0, 34 + 1 + 100)), ErrorCode.MALFORMED_MESSAGE);
    expect(decodeClientHello(Buffer.concat([payload, Buffer.from([9, 9])])).cipherSuites).to.deep.equal([1, 2]);
  });

  it('ServerHello: truncations are MALFORMED_MESSAGE; session IDs over 255 bytes are refused when encoding', () => {
    const sh = { version: { major: 1, minor: 0 }, random: Buffer.alloc(32, 3), sessionId: Buffer.alloc(4, 4), ciphertext: Buffer.alloc(1600, 5), cipherSuite: 2 };
    const payload = frameOf(encodeServerHello(sh)).payload;
    expect(decodeServerHello(payload)).to.deep.equal(sh);
    for (const cut of [0, 33, 36, payload.length - 1]) expectCode(() => decodeServerHello(payload.subarray(0, cut)), ErrorCode.MALFORMED_MESSAGE);
    expectCode(() => encodeServerHello({ ...sh, sessionId: Buffer.alloc(256) }), ErrorCode.INVALID_ARGUMENT);
    expectCode(() => encodeClientHello({ ...hello, sessionId: Buffer.alloc(256) }), ErrorCode.INVALID_ARGUMENT);
  });

  it('versions are compatible by major number only', () => {
    expect(isCompatibleVersion({ major: 1, minor: 7 })).to.equal(true);
    expect(isCompatibleVersion({ major: 2, minor: 0 })).to.equal(false);
  });

  it('Finished: 32-byte verify_data only; a short plaintext or the other side\'s type is malformed', () => {
    expectCode(() => encodeFinished(MessageType.CLIENT_FINISHED, Buffer.alloc(31)), ErrorCode.INVALID_ARGUMENT);
    const fin = encodeFinished(MessageType.CLIENT_FINISHED, Buffer.alloc(32, 7));
    expect(decodeFinished(fin, MessageType.CLIENT_FINISHED).equals(Buffer.alloc(32, 7))).to.equal(true);
    expectCode(() => decodeFinished(fin, MessageType.SERVER_FINISHED), ErrorCode.MALFORMED_MESSAGE);
    expectCode(() => decodeFinished(fin.subarray(0, 36), MessageType.CLIENT_FINISHED), ErrorCode.MALFORMED_MESSAGE);
    // Bytes past the 37 are ignored, as in the reference.
    expect(decodeFinished(Buffer.concat([fin, Buffer.alloc(3)]), MessageType.CLIENT_FINISHED).length).to.equal(32);
  });

  it('Rekey payload: a key of the wrong size is refused, a short payload is malformed, the activation seq round-trips', () => {
    expectCode(() => encodeRekeyPayload(Buffer.alloc(1599), 1n), ErrorCode.INVALID_ARGUMENT);
    const p = encodeRekeyPayload(Buffer.alloc(1600, 6), 2n ** 63n + 5n);
    const d = decodeRekeyPayload(p);
    expect(d.activationSeq).to.equal(2n ** 63n + 5n);
    expect(d.key.equals(Buffer.alloc(1600, 6))).to.equal(true);
    expectCode(() => decodeRekeyPayload(p.subarray(0, p.length - 1)), ErrorCode.MALFORMED_MESSAGE);
  });

  it('Alerts: descriptions are truncated to 255 bytes; a short or overrunning alert decodes to null', () => {
    const long = frameOf(encodeAlert({ level: AlertLevel.FATAL, code: AlertCode.INTERNAL_ERROR, description: 'x'.repeat(300) }));
    expect(decodeAlert(long.payload)!.description).to.have.length(255);
    expect(decodeAlert(Buffer.from([2, 3]))).to.equal(null);
    expect(decodeAlert(Buffer.from([2, 3, 5, 0x61]))).to.equal(null);
    expect(decodeAlert(Buffer.from([1, 8, 0]))).to.deep.equal({ level: 1, code: 8, description: '' });
  });
});

describe('FrameReader: limits and partial input', () => {
  it('an encrypted handshake record over 65,536 bytes is refused from its header; a partial one waits', () => {
    const r = new FrameReader();
    r.push(Buffer.from([0x00, 0x01, 0x00, 0x01])); // 65,537
    expectCode(() => r.nextHandshakeRecord(), ErrorCode.MESSAGE_TOO_LARGE);

    const ok = new FrameReader();
    const record = encodeHandshakeRecord(Buffer.alloc(40, 0xee));
    ok.push(record.subarray(0, 2));
    expect(ok.nextHandshakeRecord()).to.equal(null); // not even the header
    ok.push(record.subarray(2, 20));
    expect(ok.nextHandshakeRecord()).to.equal(null); // header, part of the body
    ok.push(record.subarray(20));
    expect(ok.nextHandshakeRecord()!.equals(Buffer.alloc(40, 0xee))).to.equal(true);
    expect(ok.buffered).to.equal(0);
  });

  it('empty pushes are ignored; firstByte peeks; drain returns every buffered byte across chunks, once', () => {
    const r = new FrameReader();
    expect(r.firstByte()).to.equal(undefined);
    r.push(Buffer.alloc(0));
    expect(r.buffered).to.equal(0);
    const bytes = Buffer.concat([encodeFrame(MessageType.PING), Buffer.from([1, 2, 3])]);
    r.push(bytes.subarray(0, 3));
    r.push(bytes.subarray(3));
    expect(r.firstByte()).to.equal(MessageType.PING);
    expect(r.nextFrame()!.type).to.equal(MessageType.PING);
    expect([...r.drain()]).to.deep.equal([1, 2, 3]);
    expect(r.buffered).to.equal(0);
    r.push(Buffer.from([4]));
    r.push(Buffer.from([5]));
    expect([...r.drain()]).to.deep.equal([4, 5]);
  });
});

describe('MemoryAntiReplayStore: full, expired and long keys', () => {
  it('refuses bad options and arguments with ERR_QT_INVALID_ARGUMENT', async () => {
    expectCode(() => new MemoryAntiReplayStore({ capacity: 0 }), ErrorCode.INVALID_ARGUMENT);
    expectCode(() => new MemoryAntiReplayStore({ capacity: 2 ** 24 + 1 }), ErrorCode.INVALID_ARGUMENT);
    expectCode(() => new MemoryAntiReplayStore({ now: 5 as unknown as () => number }), ErrorCode.INVALID_ARGUMENT);
    const store = new MemoryAntiReplayStore();
    await expectReject(store.consume('key' as unknown as Buffer, 1), ErrorCode.INVALID_ARGUMENT);
    await expectReject(store.consume(Buffer.from('k'), Number.NaN), ErrorCode.INVALID_ARGUMENT);
    await expectReject(store.consume(Buffer.from('k'), Number.POSITIVE_INFINITY), ErrorCode.INVALID_ARGUMENT);
  });

  it('fails closed when full of live entries; a sweep (at most once a second) frees expired ones out of order', async () => {
    let now = 1_000_000;
    const store = new MemoryAntiReplayStore({ capacity: 2, now: () => now });
    expect(store.capacity).to.equal(2);
    // Out of expiry order: the front entry outlives the second, so front pruning stops at it.
    expect(await store.consume(Buffer.from('a'), now + 10_000)).to.equal(true);
    expect(await store.consume(Buffer.from('b'), now + 100)).to.equal(true);
    expect(await store.consume(Buffer.from('c'), now + 10_000)).to.equal(false); // full: refused, not recorded
    expect(store.size).to.equal(2);
    now += 200; // 'b' expired, but the last sweep was under a second ago
    expect(await store.consume(Buffer.from('c'), now + 10_000)).to.equal(false);
    now += 1000; // the next sweep may run and frees 'b'
    expect(await store.consume(Buffer.from('c'), now + 10_000)).to.equal(true);
    expect(await store.consume(Buffer.from('c'), now + 10_000)).to.equal(false); // now a replay
    expect(await store.consume(Buffer.from('a'), now + 10_000)).to.equal(false);
    store.clear();
    expect(store.size).to.equal(0);
    expect(await store.consume(Buffer.from('a'), now + 10_000)).to.equal(true);
  });

  it('an expiry already past is not recorded; an expired record is replaced; keys over 32 bytes are hashed, not confused', async () => {
    let now = 5000;
    const store = new MemoryAntiReplayStore({ now: () => now });
    expect(await store.consume(Buffer.from('old'), now)).to.equal(true);
    expect(store.size).to.equal(0);
    const long1 = Buffer.alloc(100, 1);
    const long2 = Buffer.alloc(100, 1);
    long2[99] = 2;
    expect(await store.consume(long1, now + 50)).to.equal(true);
    expect(await store.consume(long2, now + 10)).to.equal(true);
    expect(await store.consume(Buffer.from(long1), now + 50)).to.equal(false);
    now += 20; // long2's record expired (not at the front): found, dropped and recorded again
    expect(await store.consume(long2, now + 10)).to.equal(true);
    expect(await store.consume(long2, now + 10)).to.equal(false);
  });
});

/** Both sides of a handshake through the Handshake interface, as the tunnel's driver runs them (v1 and v2). */
async function converse(initiator: Handshake, responder: Handshake): Promise<[HandshakeSummary, HandshakeSummary]> {
  let i: HandshakeStep = await initiator.start();
  let r: HandshakeStep = await responder.start();
  const next = (step: HandshakeStep, bytes: Buffer): Frame | Buffer => {
    const reader = new FrameReader();
    reader.push(Buffer.from(bytes));
    return step.next === 'frame' ? reader.nextFrame()! : reader.nextHandshakeRecord()!;
  };
  for (let turn = 0; turn < 12; turn++) {
    if (i.result && r.result) return [i.result, r.result];
    if (i.send.length > 0 && r.next !== 'done') r = await responder.receive(next(r, i.send.shift()!));
    else if (r.send.length > 0 && i.next !== 'done') i = await initiator.receive(next(i, r.send.shift()!));
    else if (i.send.length > 0) i.send.shift(); // v2: the client's last flight after the server is done
  }
  throw new Error('the handshake did not finish');
}

describe('versions and offload policy', () => {
  it("discard() cleanses every secret of a completed handshake no session took (a listener closing meanwhile), v1 and v2", async () => {
    const v1 = (await converse(await V1.initiator({ cipherSuites: [CipherSuite.AES_256_GCM], groups: [] }), V1.responder({ cipherSuites: [CipherSuite.AES_256_GCM], groups: [] }))) as [HandshakeResult, HandshakeResult];
    for (const r of v1) {
      V1.discard(r);
      expect([r.master.destroyed, r.sendKey.destroyed, r.receiveKey.destroyed]).to.deep.equal([true, true, true]);
    }
    const groups = [kemGroupById(KemGroup.X25519_MLKEM1024)!];
    const v2 = (await converse(await V2.initiator({ cipherSuites: [CipherSuite.AES_256_GCM], groups }), V2.responder({ cipherSuites: [CipherSuite.AES_256_GCM], groups }))) as [V2HandshakeResult, V2HandshakeResult];
    for (const r of v2) {
      V2.discard(r);
      expect([r.clientTrafficSecret, r.serverTrafficSecret, r.exporterSecret, r.resumptionSecret].map((x) => x.destroyed)).to.deep.equal([true, true, true, true]);
    }
  });

  it('a first frame that is not a ClientHello (or is empty) goes to v2, which refuses it', () => {
    expect(responderVersion({ type: MessageType.PING, payload: Buffer.from([1]), raw: Buffer.alloc(0) }, true)).to.equal(V2);
    expect(responderVersion({ type: MessageType.CLIENT_HELLO, payload: Buffer.alloc(0), raw: Buffer.alloc(0) }, true)).to.equal(V2);
    expect(responderVersion({ type: MessageType.CLIENT_HELLO, payload: Buffer.from([1]), raw: Buffer.alloc(0) }, true)).to.equal(V1);
  });

  it('offloadNow: true, false, unset, and a function asked each time', () => {
    expect(offloadNow(true)).to.equal(true);
    expect(offloadNow(false)).to.equal(false);
    expect(offloadNow(undefined)).to.equal(false);
    let calls = 0;
    const policy = () => ++calls % 2 === 1;
    expect([offloadNow(policy), offloadNow(policy), offloadNow(policy)]).to.deep.equal([true, false, true]);
  });
});

describe('protocol v2 record layer: refusals', () => {
  const AES = CipherSuite.AES_256_GCM;

  function pair(): { tx: RecordLayer; rx: RecordLayer } {
    const secret = testing.secretFromBytes(Buffer.alloc(48, 3));
    const tx = new RecordLayer(AES);
    const rx = new RecordLayer(AES);
    tx.installSend(FIRST_APPLICATION_EPOCH, secret);
    rx.installReceive(FIRST_APPLICATION_EPOCH, secret);
    secret.destroy();
    return { tx, rx };
  }

  it('an unknown suite has no record keys: UNSUPPORTED_CIPHER_SUITE', () => {
    const secret = testing.secretFromBytes(Buffer.alloc(48, 1));
    try {
      expectCode(() => epochKey(0x7777 as typeof AES, 2, secret, 0), ErrorCode.UNSUPPORTED_CIPHER_SUITE);
      expectCode(() => new RecordLayer(0x7777 as typeof AES).installSend(2, secret), ErrorCode.UNSUPPORTED_CIPHER_SUITE);
    } finally {
      secret.destroy();
    }
  });

  it('sealing without a send key is INVALID_STATE; content over a record, or an empty data chunk, INVALID_ARGUMENT', () => {
    const layer = new RecordLayer(AES);
    expectCode(() => layer.seal(InnerType.DATA, Buffer.from('x')), ErrorCode.INVALID_STATE);
    expectCode(() => layer.sealData([Buffer.from('x')]), ErrorCode.INVALID_STATE);
    const { tx } = pair();
    expectCode(() => tx.seal(InnerType.DATA, Buffer.alloc(MAX_INNER_PLAINTEXT)), ErrorCode.INVALID_ARGUMENT);
    expectCode(() => tx.seal(InnerType.DATA, Buffer.alloc(10), MAX_INNER_PLAINTEXT), ErrorCode.INVALID_ARGUMENT);
    expectCode(() => tx.sealData([Buffer.from('a'), Buffer.alloc(0)]), ErrorCode.INVALID_ARGUMENT);
    // Nothing was sealed: the sequence is untouched.
    expect(tx.sendKey!.seq).to.equal(0);
  });

  it('opening: another frame type, a record too short to hold a tag, an epoch with no key: typed errors, no key used', () => {
    const { tx, rx } = pair();
    expectCode(() => rx.open(frameOf(encodeFrame(MessageType.PING))), ErrorCode.UNEXPECTED_MESSAGE);
    expectCode(() => rx.open(frameOf(encodeFrame(RECORD_TYPE, Buffer.alloc(2 + 16)))), ErrorCode.MALFORMED_MESSAGE);
    const wrongEpoch = Buffer.from(tx.seal(InnerType.PING, Buffer.alloc(0)));
    wrongEpoch.writeUInt16BE(FIRST_APPLICATION_EPOCH + 5, 5);
    expect(expectCode(() => rx.open(frameOf(wrongEpoch)), ErrorCode.UNEXPECTED_MESSAGE).message).to.contain('epoch 7');
    // A layer with no receive key at all names none.
    const fresh = new RecordLayer(AES);
    expect(expectCode(() => fresh.open(frameOf(wrongEpoch)), ErrorCode.UNEXPECTED_MESSAGE).message).to.contain('epoch none');
    expect(rx.receiveKey!.seq).to.equal(0);
  });

  it('an inner plaintext of only padding, or an inner type past 0x09, is UNEXPECTED_MESSAGE after it authenticates', () => {
    const { tx, rx } = pair();
    // Type 0 with no content: every byte is zero, so there is no content type.
    const empty = tx.seal(0 as InnerTypeValue, Buffer.alloc(0), 4);
    expect(expectCode(() => rx.open(frameOf(empty)), ErrorCode.UNEXPECTED_MESSAGE).message).to.contain('without a content type');
    const unknown = tx.seal(0x0a as InnerTypeValue, Buffer.from('body'));
    expect(expectCode(() => rx.open(frameOf(unknown)), ErrorCode.UNEXPECTED_MESSAGE).message).to.contain('0xa');
    // Both records were authenticated and counted: the next one opens in sequence.
    expect(rx.open(frameOf(tx.seal(InnerType.DATA, Buffer.from('next')))).content.toString()).to.equal('next');
  });

  it('after destroy() every operation is TUNNEL_CLOSED, and destroy() again is harmless', () => {
    const { tx, rx } = pair();
    const record = tx.seal(InnerType.DATA, Buffer.from('x'));
    tx.destroy();
    rx.destroy();
    rx.destroy();
    expectCode(() => tx.seal(InnerType.DATA, Buffer.from('x')), ErrorCode.TUNNEL_CLOSED);
    expectCode(() => rx.open(frameOf(record)), ErrorCode.TUNNEL_CLOSED);
    const secret = testing.secretFromBytes(Buffer.alloc(48, 3));
    try {
      expectCode(() => rx.installReceive(2, secret), ErrorCode.TUNNEL_CLOSED);
      expectCode(() => rx.installNextReceive(3, secret), ErrorCode.TUNNEL_CLOSED);
      expectCode(() => tx.installSend(2, secret), ErrorCode.TUNNEL_CLOSED);
    } finally {
      secret.destroy();
    }
    expect(tx.sendKey).to.equal(undefined);
  });
});
