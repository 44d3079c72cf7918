/**
 * Protocol v2's handshake and session through the Handshake and Session interfaces alone (no
 * sockets): every group and suite, transcript binding (a changed hello fails), PSK
 * authentication, reflection, records (drop, replay, reorder, epochs), KeyUpdate in both tiers,
 * exporters and tickets.
 */
import { expect } from 'chai';
import { crypto, ErrorCode, QuantumTunnelError } from '../../lib/index.js';
import { qtError } from '../../lib/errors.js';
import { CipherSuite, type CipherSuiteId } from '../../lib/protocol/constants.js';
import type { Handshake, HandshakeStep } from '../../lib/protocol/handshake.js';
import type { Session, SessionEvent } from '../../lib/protocol/session.js';
import { KEM_GROUPS, kemGroupById, KemGroup, type KemGroupSpec } from '../../lib/protocol/v2/groups.js';
import { ClientHandshakeV2, type ExternalPsk, ServerHandshakeV2, type V2HandshakeResult, type V2InitiatorOptions, type V2ResponderOptions } from '../../lib/protocol/v2/handshake.js';
import { decodeClientHelloV2, encodeClientHelloV2 } from '../../lib/protocol/v2/messages.js';
import { FIRST_APPLICATION_EPOCH, InnerType, KEY_BYTE_LIMIT, KEY_RECORD_LIMIT, RECORD_TYPE, RecordLayer } from '../../lib/protocol/v2/record.js';
import { SessionV2 } from '../../lib/protocol/v2/session.js';
import { ClientTicketStore, clientTicketFromMessage, decodeNewSessionTicket, TicketIssuer } from '../../lib/protocol/v2/tickets.js';
import { MemoryAntiReplayStore } from '../../lib/protocol/antiReplay.js';
import * as testing from '../../lib/testing.js';
import { converse, frame, frames, type Tamper, rejects } from '../helpers/handshakes.js';

const chacha = crypto.info().chacha20.available;
const AES = CipherSuite.AES_256_GCM;

function sides(client: Partial<V2InitiatorOptions> = {}, server: Partial<V2ResponderOptions> = {}): [ClientHandshakeV2, ServerHandshakeV2] {
  const groups = client.groups ?? [kemGroupById(KemGroup.X25519_MLKEM1024)!];
  return [
    new ClientHandshakeV2({ cipherSuites: [AES], groups, ...client }),
    new ServerHandshakeV2({ cipherSuites: [AES, CipherSuite.CHACHA20_POLY1305], groups: KEM_GROUPS, ...server }),
  ];
}

async function sessions(client: Partial<V2InitiatorOptions> = {}, server: Partial<V2ResponderOptions> = {}, options = {}): Promise<{ c: SessionV2; s: SessionV2; cr: V2HandshakeResult; sr: V2HandshakeResult }> {
  const [ch, sh] = sides(client, server);
  const [cr, sr] = await converse(ch, sh);
  return { c: new SessionV2(cr, options), s: new SessionV2(sr, options), cr, sr };
}

function deliver(to: Session, bytes: Buffer): SessionEvent[] {
  return frames(bytes).map((f) => to.receive(f));
}

function dataOf(events: SessionEvent[]): string {
  return events.map((e) => (e.kind === 'data' ? e.data.toString() : `<${e.kind}>`)).join('|');
}


function psk(identity: string, byte: number): ExternalPsk {
  return { identity: Buffer.from(identity), secret: testing.secretFromBytes(Buffer.alloc(32, byte)) };
}

describe('protocol v2: handshake', () => {
  for (const group of KEM_GROUPS) {
    for (const suite of [AES, CipherSuite.CHACHA20_POLY1305] as CipherSuiteId[]) {
      const it_ = suite === CipherSuite.CHACHA20_POLY1305 && !chacha ? it.skip : it;
      it_(`${group.option} with suite ${suite}: both sides agree on keys, data flows both ways`, async () => {
        const { c, s, cr, sr } = await sessions({ groups: [group], cipherSuites: [suite] });
        expect(cr.group.id).to.equal(group.id);
        expect(sr.suite).to.equal(suite);
        expect(cr.sessionId.equals(sr.sessionId)).to.equal(true);
        expect(cr.resumed).to.equal(false);
        expect(cr.peerIdentity).to.equal(undefined);
        expect(dataOf(deliver(s, c.sealData([Buffer.from('hello'), Buffer.from('server')])))).to.equal('hello|server');
        expect(dataOf(deliver(c, s.sealData([Buffer.from('hi client')])))).to.equal('hi client');
        c.destroy();
        s.destroy();
      });
    }
  }

  it('offloadCrypto: ML-KEM on the threadpool on both sides gives the same handshake, every group', async () => {
    for (const group of KEM_GROUPS) {
      const { c, s, cr } = await sessions({ groups: [group], offloadCrypto: true }, { offloadCrypto: true });
      expect(cr.group.id).to.equal(group.id);
      expect(dataOf(deliver(s, c.sealData([Buffer.from('offloaded')])))).to.equal('offloaded');
      c.destroy();
      s.destroy();
    }
  });

  it('three messages: ServerHello, EncryptedExtensions and Finished leave in one flight, the client answers with Finished only', async () => {
    const [client, server] = sides();
    const c1 = await client.start();
    expect(c1.send).to.have.length(1);
    await server.start();
    const s1 = await server.receive(frame(c1.send[0]!));
    expect(s1.send).to.have.length(3);
    expect(s1.send.slice(1).map((b) => b[0])).to.deep.equal([RECORD_TYPE, RECORD_TYPE]);
    let c: HandshakeStep = c1;
    for (const b of s1.send) c = await client.receive(frame(b));
    expect(c.next).to.equal('done');
    expect(c.send).to.have.length(1);
    const s2 = await server.receive(frame(c.send[0]!));
    expect(s2.next).to.equal('done');
    (c.result as V2HandshakeResult).clientTrafficSecret.destroy();
  });

  it('a changed ClientHello (suites, groups, versions: a downgrade) fails the Finished check', async () => {
    const rewrites: Array<(h: ReturnType<typeof decodeClientHelloV2>) => void> = [
      (h) => (h.cipherSuites = chacha ? [AES] : [AES, 0x7777]), // drop the preferred suite (or, without ChaCha, add one)
      (h) => (h.groups = [h.keyShareGroup]),
      (h) => (h.supportedVersions = [0x0200, 0x0100]),
      (h) => h.random.fill(7),
    ];
    for (const rewrite of rewrites) {
      const [client, server] = sides({ cipherSuites: chacha ? [CipherSuite.CHACHA20_POLY1305, AES] : [AES], groups: [...KEM_GROUPS] });
      const tamper: Tamper = (from, bytes, i) => {
        if (from !== 'client' || i !== 0) return bytes;
        const hello = decodeClientHelloV2(Buffer.from(frame(bytes).payload));
        rewrite(hello);
        return encodeClientHelloV2(hello);
      };
      await rejects(converse(client, server, tamper), ErrorCode.HANDSHAKE_FAILED);
    }
  });

  it('a changed ServerHello or handshake record fails', async () => {
    for (const which of [1, 2, 3]) {
      const [client, server] = sides();
      const tamper: Tamper = (from, bytes, i) => {
        if (from !== 'server' || i !== which) return bytes;
        const out = Buffer.from(bytes);
        out[out.length - 5]! ^= 1;
        return out;
      };
      try {
        await converse(client, server, tamper);
        expect.fail('the handshake should fail');
      } catch (err) {
        expect([ErrorCode.AUTHENTICATION_FAILED, ErrorCode.HANDSHAKE_FAILED, ErrorCode.INVALID_KEY]).to.include((err as QuantumTunnelError).code);
      }
    }
  });

  it('reflection: a client fed its own ClientHello fails', async () => {
    const [client] = sides();
    const hello = await client.start();
    await rejects(client.receive(frame(hello.send[0]!)), ErrorCode.UNEXPECTED_MESSAGE);
  });

  it('a v1 ServerHello in answer to a v2 ClientHello is refused (no silent downgrade)', async () => {
    const [client] = sides();
    await client.start();
    const v1 = Buffer.concat([Buffer.from([0x02, 0, 0, 0, 3]), Buffer.from([1, 0, 0])]);
    await rejects(client.receive(frame(v1)), ErrorCode.UNSUPPORTED_VERSION);
  });

  it('the server refuses a key share for a group it does not accept', async () => {
    const [client, server] = sides({ groups: [kemGroupById(KemGroup.X25519_MLKEM768)!] }, { groups: [kemGroupById(KemGroup.P384_MLKEM1024)!] });
    await rejects(converse(client, server), ErrorCode.HANDSHAKE_FAILED);
  });
});

describe('protocol v2: PSK authentication', () => {
  it('a shared PSK authenticates both ends: peerIdentity on both sides', async () => {
    const key = psk('service-a', 1);
    const { c, s, cr, sr } = await sessions({ psk: key }, { psk: (id) => (id.toString() === 'service-a' ? key.secret : undefined) });
    expect(cr.peerIdentity).to.deep.equal({ type: 'psk', identity: 'service-a' });
    expect(sr.peerIdentity).to.deep.equal({ type: 'psk', identity: 'service-a' });
    expect(dataOf(deliver(s, c.sealData([Buffer.from('authenticated')])))).to.equal('authenticated');
    c.destroy();
    s.destroy();
  });

  it('a wrong key fails at the server (binder) with ERR_QT_PSK_MISMATCH', async () => {
    const server = psk('service-a', 1);
    const [ch, sh] = sides({ psk: psk('service-a', 2) }, { psk: () => server.secret });
    await rejects(converse(ch, sh), ErrorCode.PSK_MISMATCH);
  });

  it('a server that requires a PSK refuses a client without one, and an unknown identity', async () => {
    const key = psk('service-a', 1);
    let [ch, sh] = sides({}, { psk: () => key.secret });
    await rejects(converse(ch, sh), ErrorCode.PSK_MISMATCH);
    [ch, sh] = sides({ psk: psk('service-b', 1) }, { psk: (id) => (id.toString() === 'service-a' ? key.secret : undefined) });
    await rejects(converse(ch, sh), ErrorCode.PSK_MISMATCH);
  });

  it('a client with a PSK refuses a server that does not prove it (an anonymous server, or a relay)', async () => {
    const [ch, sh] = sides({ psk: psk('service-a', 1) }, {});
    await rejects(converse(ch, sh), ErrorCode.PSK_MISMATCH);
  });

  it('a relay that rewrites the PSK identity or binder fails', async () => {
    const key = psk('service-a', 1);
    const [ch, sh] = sides({ psk: key }, { psk: () => key.secret });
    const tamper: Tamper = (from, bytes, i) => {
      if (from !== 'client' || i !== 0) return bytes;
      const hello = decodeClientHelloV2(Buffer.from(frame(bytes).payload));
      hello.binders[0]![0]! ^= 1;
      return encodeClientHelloV2(hello);
    };
    await rejects(converse(ch, sh, tamper), ErrorCode.PSK_MISMATCH);
  });
});

describe('protocol v2: records', () => {
  it('AEAD usage limits: a sender stops at 2^24 records or 2^38 bytes per key, a receiver refuses a record past them', () => {
    for (const limit of ['records', 'bytes'] as const) {
      const layer = new RecordLayer(AES);
      const peer = new RecordLayer(AES);
      const secret = testing.secretFromBytes(Buffer.alloc(48, 9));
      layer.installSend(FIRST_APPLICATION_EPOCH, secret);
      peer.installReceive(FIRST_APPLICATION_EPOCH, secret);
      const send = layer.sendKey!;
      if (limit === 'records') send.records = KEY_RECORD_LIMIT - 1;
      else send.bytes = KEY_BYTE_LIMIT - 10;
      const last = layer.sealData([Buffer.alloc(limit === 'records' ? 100 : 10, 1)]); // exactly at the limit: allowed
      expect(() => layer.sealData([Buffer.from('x')])).to.throw(QuantumTunnelError).with.property('code', ErrorCode.SEQUENCE_EXHAUSTED);
      if (limit === 'records') expect(() => layer.seal(InnerType.PING, Buffer.alloc(0))).to.throw(QuantumTunnelError).with.property('code', ErrorCode.SEQUENCE_EXHAUSTED);
      const receive = peer.receiveKey!;
      if (limit === 'records') receive.records = KEY_RECORD_LIMIT;
      else receive.bytes = KEY_BYTE_LIMIT;
      expect(() => peer.open(frame(last))).to.throw(QuantumTunnelError).with.property('code', ErrorCode.SEQUENCE_EXHAUSTED);
      layer.destroy();
      peer.destroy();
      secret.destroy();
    }
  });

  it('every record has the same frame type, whatever it carries; the content type is encrypted', async () => {
    const { c, s } = await sessions();
    const kinds = [c.sealData([Buffer.from('x')]), c.pingFrame(), c.pongFrame(), c.startRekey('symmetric'), c.closeNotifyFrame()];
    for (const bytes of kinds) expect(bytes[0]).to.equal(RECORD_TYPE);
    c.destroy();
    s.destroy();
  });

  it('a dropped, replayed or reordered record fails authentication; a forged one too', async () => {
    for (const attack of ['drop', 'replay', 'reorder', 'flip', 'epoch'] as const) {
      const { c, s } = await sessions();
      const r = [0, 1, 2].map((i) => c.sealData([Buffer.from(`record ${i}`)]));
      const run = () => {
        if (attack === 'drop') return [r[0]!, r[2]!].flatMap((b) => deliver(s, b));
        if (attack === 'replay') return [r[0]!, r[0]!].flatMap((b) => deliver(s, b));
        if (attack === 'reorder') return [r[1]!, r[0]!].flatMap((b) => deliver(s, b));
        const bad = Buffer.from(r[0]!);
        if (attack === 'flip') bad[bad.length - 1]! ^= 1;
        else bad.writeUInt16BE(3, 5);
        return deliver(s, bad);
      };
      const code = attack === 'epoch' ? ErrorCode.UNEXPECTED_MESSAGE : ErrorCode.AUTHENTICATION_FAILED;
      expect(run).to.throw(QuantumTunnelError).with.property('code', code);
      c.destroy();
      s.destroy();
    }
  });

  it('control messages are records: Ping, Pong, close_notify, alerts', async () => {
    const { c, s } = await sessions();
    expect(deliver(s, c.pingFrame())).to.deep.equal([{ kind: 'ping' }]);
    expect(deliver(c, s.pongFrame())).to.deep.equal([{ kind: 'pong' }]);
    const fatal = deliver(c, s.fatalAlert(qtError(ErrorCode.PSK_MISMATCH, 'x')))[0]!;
    expect(fatal.kind).to.equal('peer-fatal');
    expect(fatal.kind === 'peer-fatal' && fatal.error.code).to.equal(ErrorCode.PSK_MISMATCH);
    expect(deliver(s, c.closeNotifyFrame())).to.deep.equal([{ kind: 'peer-close' }]);
    expect(() => deliver(s, c.sealData([Buffer.from('after close')]))).to.throw(QuantumTunnelError).with.property('code', ErrorCode.UNEXPECTED_MESSAGE);
    c.destroy();
    s.destroy();
  });
});

describe('protocol v2: KeyUpdate', () => {
  for (const mode of ['symmetric', 'kem'] as const) {
    for (const starter of ['client', 'server'] as const) {
      it(`${mode}, started by the ${starter}: acknowledged, both directions switch, no record lost`, async () => {
        const { c, s } = await sessions();
        const [a, b] = starter === 'client' ? [c, s] : [s, c];
        const request = a.startRekey(mode);
        expect(a.rekeyInProgress).to.equal(true);
        // Records sealed before the ack stay under the old key, and still open.
        const before = a.sealData([Buffer.from('old key')]);
        const answered = deliver(b, request);
        expect(answered[0]!.kind).to.equal('rekey-response-sent');
        const ack = (answered[0] as { frame: Buffer }).frame;
        const fromB = b.sealData([Buffer.from('new key from b')]);
        expect(dataOf(deliver(b, before))).to.equal('old key');
        expect(deliver(a, ack)).to.deep.equal([{ kind: 'rekey-complete' }]);
        expect(a.rekeyInProgress).to.equal(false);
        expect(dataOf(deliver(a, fromB))).to.equal('new key from b');
        expect(dataOf(deliver(b, a.sealData([Buffer.from('new key from a')])))).to.equal('new key from a');
        expect(a.stats.rekeys).to.equal(1);
        expect(b.stats.rekeys).to.equal(1);
        c.destroy();
        s.destroy();
      });
    }
  }

  it('the new keys differ from the old ones (an old-epoch record is refused afterwards)', async () => {
    const { c, s } = await sessions();
    const stale = c.sealData([Buffer.from('stale')]);
    deliver(s, stale);
    const ack = (deliver(s, c.startRekey('kem'))[0] as { frame: Buffer }).frame;
    deliver(c, ack);
    deliver(s, c.sealData([Buffer.from('switches s')]));
    expect(() => deliver(s, stale)).to.throw(QuantumTunnelError).with.property('code', ErrorCode.UNEXPECTED_MESSAGE);
    c.destroy();
    s.destroy();
  });

  it('simultaneous requests: the client\'s wins, the server drops its own and answers', async () => {
    const { c, s } = await sessions();
    const fromClient = c.startRekey('symmetric');
    const fromServer = s.startRekey('kem');
    expect(deliver(c, fromServer)).to.deep.equal([{ kind: 'none' }]);
    const answered = deliver(s, fromClient);
    expect(answered[0]!.kind).to.equal('rekey-response-sent');
    expect(s.rekeyInProgress).to.equal(false);
    expect(deliver(c, (answered[0] as { frame: Buffer }).frame)).to.deep.equal([{ kind: 'rekey-complete' }]);
    expect(dataOf(deliver(s, c.sealData([Buffer.from('after')])))).to.equal('after');
    expect(dataOf(deliver(c, s.sealData([Buffer.from('back')])))).to.equal('back');
    c.destroy();
    s.destroy();
  });

  it('a peer asking faster than rekeyMinIntervalMs is refused with ERR_QT_REKEY_RATE_LIMITED', async () => {
    const { c, s } = await sessions({}, {}, { rekeyMinIntervalMs: 60_000 });
    deliver(c, (deliver(s, c.startRekey('symmetric'))[0] as { frame: Buffer }).frame);
    expect(() => deliver(s, c.startRekey('symmetric'))).to.throw(QuantumTunnelError).with.property('code', ErrorCode.REKEY_RATE_LIMITED);
    c.destroy();
    s.destroy();
  });

  it('an ack that answers nothing is refused', async () => {
    const { c, s } = await sessions();
    const ack = (deliver(s, c.startRekey('symmetric'))[0] as { frame: Buffer }).frame;
    deliver(c, ack);
    const { c: c2, s: s2 } = await sessions();
    expect(() => deliver(c2, ack)).to.throw(QuantumTunnelError);
    for (const x of [c, s, c2, s2]) x.destroy();
  });
});

describe('protocol v2: exporter', () => {
  it('both ends export the same bytes; label, context and session change them', async () => {
    const { c, s } = await sessions();
    const a = c.exportKeyingMaterial('EXPERIMENTAL app binding', Buffer.from('ctx'), 32);
    expect(a.equals(s.exportKeyingMaterial('EXPERIMENTAL app binding', Buffer.from('ctx'), 32))).to.equal(true);
    expect(a.equals(c.exportKeyingMaterial('EXPERIMENTAL other', Buffer.from('ctx'), 32))).to.equal(false);
    expect(a.equals(c.exportKeyingMaterial('EXPERIMENTAL app binding', Buffer.from('ctY'), 32))).to.equal(false);
    const other = await sessions();
    expect(a.equals(other.c.exportKeyingMaterial('EXPERIMENTAL app binding', Buffer.from('ctx'), 32))).to.equal(false);
    expect(() => c.exportKeyingMaterial('', undefined, 32)).to.throw(QuantumTunnelError).with.property('code', ErrorCode.INVALID_ARGUMENT);
    expect(() => c.exportKeyingMaterial('x', undefined, 0)).to.throw(QuantumTunnelError).with.property('code', ErrorCode.INVALID_ARGUMENT);
    for (const x of [c, s, other.c, other.s]) x.destroy();
  });
});

describe('protocol v2: tickets', () => {
  async function ticketed(group: KemGroupSpec = KEM_GROUPS[0]!) {
    const issuer = new TicketIssuer({ serverIdentity: Buffer.from('server-1'), antiReplay: new MemoryAntiReplayStore() });
    const store = new ClientTicketStore();
    const { c, s } = await sessions({ groups: [group] });
    const message = s.withResumptionSecret((r) => issuer.issue(r, { suite: s.suite, group: s.group.id })).message;
    const event = deliver(c, s.ticketFrame(message))[0]!;
    expect(event.kind).to.equal('ticket');
    const nst = decodeNewSessionTicket((event as { message: Buffer }).message);
    store.add('server-1', c.withResumptionSecret((r) => clientTicketFromMessage(nst, r, { suite: c.suite, group: c.group.id }, Date.now())));
    c.destroy();
    s.destroy();
    return { issuer, store };
  }

  it('a ticket resumes once: resumed on both sides, keys agree; the same ticket again gives a full handshake', async () => {
    const { issuer, store } = await ticketed();
    const t = store.take('server-1')!;
    const offer = { ticket: t.ticket, psk: t.psk, obfuscatedAge: store.obfuscatedAge(t) };
    const first = await sessions({ resumption: offer }, { tickets: issuer });
    expect(first.cr.resumed).to.equal(true);
    expect(first.sr.resumed).to.equal(true);
    expect(dataOf(deliver(first.s, first.c.sealData([Buffer.from('resumed')])))).to.equal('resumed');
    const again = await sessions({ resumption: offer }, { tickets: issuer });
    expect(again.sr.resumed).to.equal(false);
    expect(again.cr.resumed).to.equal(false);
    t.psk.destroy();
    for (const x of [first.c, first.s, again.c, again.s]) x.destroy();
    issuer.destroy();
  });

  it('a ticket from another server is not accepted (full handshake)', async () => {
    const { store } = await ticketed();
    const other = new TicketIssuer({ serverIdentity: Buffer.from('server-2') });
    const t = store.take('server-1')!;
    const r = await sessions({ resumption: { ticket: t.ticket, psk: t.psk, obfuscatedAge: store.obfuscatedAge(t) } }, { tickets: other });
    expect(r.sr.resumed).to.equal(false);
    t.psk.destroy();
    r.c.destroy();
    r.s.destroy();
    other.destroy();
  });
});
