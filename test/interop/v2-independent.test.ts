/**
 * Interoperability of our library with an independent implementation of protocol v2 written from
 * docs/PROTOCOL.md Part I alone (./v2-independent.ts), over real sockets on 127.0.0.1, in both
 * directions (independent client → listen(), dial() → independent server): the handshake in every
 * group and suite, data, padding, ping/pong, close_notify, the session ID, external PSKs and their
 * binders, tickets and resumption, KeyUpdate in both tiers from either side (and at once), the
 * exporter; and the alerts the spec names for what it refuses (hellos, server flights, records).
 */
import { expect } from 'chai';
import { once } from 'node:events';
import { connect } from 'node:net';
import type { Tunnel } from '../../lib/index.js';
import { ClientTicketStore, crypto, type Listener, QuantumTunnelError, TicketIssuer } from '../../lib/index.js';
import { delay, handshakeErrors, nextTunnel, pattern, readExactly, rejectsWithCode, Resources, until, within } from '../helpers/tunnel.js';
import {
  AlertCode,
  clientHelloWith,
  type ServerTicket,
  decodePlainAlert,
  firstReply,
  FrameType,
  Group,
  GROUPS,
  IndependentServer,
  type IndependentSession,
  independentConnect,
  Inner,
  initiate,
  PeerAlertError,
  Suite,
  V2Error,
} from './v2-independent.js';

const PSK_IDENTITY = 'interop';
const pskBytes = (fill: number): Buffer => Buffer.alloc(32, fill);
/** Our side's PSK option: identity 'interop', key 32 × 0x07 (or another fill). */
const ourPsk = (fill = 7) => ({ identity: PSK_IDENTITY, secret: crypto.importSecret(pskBytes(fill)) });
/** The independent side's PSK. */
const theirPsk = (fill = 7) => ({ identity: Buffer.from(PSK_IDENTITY, 'ascii'), key: pskBytes(fill) });

const EXPORT_LABEL = 'EXPERIMENTAL interop';
const SUITE_NAMES: Record<number, string> = { [Suite.AES_256_GCM]: 'aes-256-gcm', [Suite.CHACHA20_POLY1305]: 'chacha20-poly1305' };
/** How info().group names each group (the option names are GROUPS[id].name). */
const GROUP_DISPLAY: Record<number, string> = {
  [Group.X25519_MLKEM1024]: 'X25519 + ML-KEM-1024',
  [Group.P384_MLKEM1024]: 'P-384 + ML-KEM-1024',
  [Group.X25519_MLKEM768]: 'X25519 + ML-KEM-768',
};

/** A rekey a peer may request only 250 ms after the previous one (§8.1); we leave more. */
const REKEY_GAP_MS = 400;

/** Data both ways between our tunnel and the independent session, compared byte for byte. */
async function exchange(t: Tunnel, s: IndependentSession, size: number, seed: number): Promise<void> {
  const up = pattern(size, seed);
  const arrivedUp = readExactly(t, size);
  s.sendData(up);
  expect((await arrivedUp).equals(up), 'independent → ours').to.equal(true);
  const down = pattern(size, seed + 1);
  const arrivedDown = s.read(size);
  t.write(down);
  expect((await arrivedDown).equals(down), 'ours → independent').to.equal(true);
}

/** Waits until our tunnel has ended and returns its closeState. */
async function closeStateOf(t: Tunnel): Promise<string> {
  t.resume(); // consume the end of the stream
  await until(() => t.info().closeState !== 'open', 10_000, 'our tunnel to close');
  return t.info().closeState;
}

/** The exporter of both sides, with a context and without one. */
function expectSameExporter(t: Tunnel, s: IndependentSession): void {
  const ours = t.exportKeyingMaterial(EXPORT_LABEL, Buffer.from('ctx'), 32);
  expect(ours.toString('hex')).to.equal(s.exportKeyingMaterial(EXPORT_LABEL, Buffer.from('ctx'), 32).toString('hex'));
  const noContext = t.exportKeyingMaterial(EXPORT_LABEL, undefined, 64);
  expect(noContext.toString('hex')).to.equal(s.exportKeyingMaterial(EXPORT_LABEL, Buffer.alloc(0), 64).toString('hex'));
  expect(noContext.subarray(0, 32).equals(ours)).to.equal(false);
}

describe('protocol v2 interop with an independent implementation of docs/PROTOCOL.md Part I', function () {
  const res = new Resources();
  const servers: IndependentServer[] = [];
  const sessions: IndependentSession[] = [];

  afterEach(async () => {
    for (const s of sessions.splice(0)) s.destroy();
    await Promise.all(servers.splice(0).map((s) => s.close()));
    await res.cleanup();
  });

  async function listenAndConnect(
    listenOptions: Parameters<Resources['listen']>[0],
    clientOptions: Parameters<typeof independentConnect>[1],
  ): Promise<{ listener: Listener; t: Tunnel; s: IndependentSession }> {
    const listener = await res.listen(listenOptions);
    const tunnel = nextTunnel(listener);
    const s = await within(independentConnect(listener.address().port, clientOptions), 15_000, 'the independent handshake');
    sessions.push(s);
    return { listener, t: await tunnel, s };
  }

  /** An independent server; `failure` settles with the error of its first handshake (undefined if it succeeded). */
  async function startFailingServer(options: Parameters<typeof IndependentServer.start>[0]): Promise<{ server: IndependentServer; failure: Promise<unknown> }> {
    const server = await IndependentServer.start(options);
    servers.push(server);
    const failure = server.next().then(
      () => undefined,
      (err: unknown) => err,
    );
    return { server, failure };
  }

  async function serveAndDial(
    serverOptions: Parameters<typeof IndependentServer.start>[0],
    dialOptions: Parameters<Resources['dial']>[1],
  ): Promise<{ server: IndependentServer; t: Tunnel; s: IndependentSession }> {
    const server = await IndependentServer.start(serverOptions);
    servers.push(server);
    const session = server.next();
    const t = await res.dial(server.port, dialOptions);
    const s = await session;
    sessions.push(s);
    return { server, t, s };
  }

  describe('independent client → our listen() (default options)', () => {
    for (const group of [Group.X25519_MLKEM1024, Group.P384_MLKEM1024, Group.X25519_MLKEM768]) {
      for (const suite of [Suite.AES_256_GCM, Suite.CHACHA20_POLY1305]) {
        // ChaCha20-Poly1305 is absent from FIPS mode (and from the FIPS build).
        const it_ = suite === Suite.CHACHA20_POLY1305 && !crypto.info().chacha20.available ? it.skip : it;
        it_(`${GROUPS[group]?.name}, ${SUITE_NAMES[suite]}: handshake, data both ways, ping/pong, exporter, close_notify → clean`, async () => {
          const { t, s } = await listenAndConnect({}, { groups: [group], suites: [suite] });
          const info = t.info();
          expect(info.role).to.equal('server');
          expect(info.group).to.equal(GROUP_DISPLAY[group]);
          expect(info.suite.toLowerCase()).to.equal(SUITE_NAMES[suite]);
          expect(info.peerIdentity).to.equal(undefined);
          expect(s.selectedPsk).to.equal(0xffff);
          expect(info.sessionId).to.equal(s.sessionId.toString('hex'));

          await exchange(t, s, 10, 1);
          await exchange(t, s, 200_000, 2); // several full records each way
          await s.ping();
          expect(s.pongs).to.equal(1);
          await within(t.ping(), 10_000, 'our ping answered');
          expect(s.pingsAnswered).to.equal(1);
          expectSameExporter(t, s);

          await s.close();
          expect(s.closeNotifyReceived).to.equal(true);
          expect(await closeStateOf(t)).to.equal('clean');
          expect(s.failure).to.equal(undefined);
        });
      }
    }

    it('padded records (trailing zeros after the inner type) are stripped by our side', async () => {
      const { t, s } = await listenAndConnect({}, { padding: 200 });
      await exchange(t, s, 70_000, 3);
      await s.ping();
      await s.close();
      expect(await closeStateOf(t)).to.equal('clean');
    });

    it('a second, unknown group offered after the key share group is ignored', async () => {
      const { t, s } = await listenAndConnect({}, { groups: [Group.X25519_MLKEM1024, 0x7777] });
      expect(t.info().group).to.equal(GROUP_DISPLAY[Group.X25519_MLKEM1024]);
      await exchange(t, s, 1000, 4);
    });
  });

  describe('our dial() → independent server', () => {
    const dialGroups = [
      ['x25519-mlkem1024', Group.X25519_MLKEM1024],
      ['p384-mlkem1024', Group.P384_MLKEM1024],
      ['x25519-mlkem768', Group.X25519_MLKEM768],
    ] as const;
    for (const [name, id] of dialGroups) {
      it(`${name}: handshake, data both ways, ping/pong, exporter, our close() → clean`, async () => {
        const { t, s } = await serveAndDial({}, { groups: [name] });
        expect(s.group).to.equal(id);
        const info = t.info();
        expect(info.role).to.equal('client');
        expect(info.group).to.equal(GROUP_DISPLAY[id]);
        expect(info.suite.toLowerCase()).to.equal(SUITE_NAMES[s.suite]);
        expect(info.sessionId).to.equal(s.sessionId.toString('hex'));

        await exchange(t, s, 10, 5);
        await exchange(t, s, 200_000, 6);
        await within(t.ping(), 10_000, 'our ping answered');
        expect(s.pingsAnswered).to.equal(1);
        await s.ping();
        expect(s.pongs).to.equal(1);
        expectSameExporter(t, s);

        await within(t.close(), 10_000, 'our close');
        expect(t.info().closeState).to.equal('clean');
        await s.until(() => s.closeNotifyReceived && s.closeNotifySent, 5000, 'the close_notify exchange');
        expect(s.failure).to.equal(undefined);
      });
    }

    it('ChaCha20-Poly1305 chosen by the server, padded records from the server', async function () {
      if (!crypto.info().chacha20.available) this.skip(); // absent from FIPS mode
      const { t, s } = await serveAndDial({ suites: [Suite.CHACHA20_POLY1305], padding: 33 }, {});
      expect(t.info().suite.toLowerCase()).to.equal('chacha20-poly1305');
      await exchange(t, s, 100_000, 7);
      await s.close();
      expect(await closeStateOf(t)).to.equal('clean');
    });
  });

  describe('external PSK', () => {
    it('independent client with the PSK → listen({ psk }): peerIdentity, data', async () => {
      const { t, s } = await listenAndConnect({ psk: ourPsk() }, { psks: [theirPsk()] });
      expect(s.selectedPsk).to.equal(0);
      expect(t.info().peerIdentity).to.deep.equal({ type: 'psk', identity: PSK_IDENTITY });
      await exchange(t, s, 5000, 8);
      expectSameExporter(t, s);
      await s.close();
      expect(await closeStateOf(t)).to.equal('clean');
    });

    it('the server takes the first identity it knows: an unknown identity first, then ours (index 1)', async () => {
      const unknown = { identity: Buffer.from('someone else'), key: pskBytes(9) };
      const { t, s } = await listenAndConnect({ psk: ourPsk() }, { psks: [unknown, theirPsk()] });
      expect(s.selectedPsk).to.equal(1);
      expect(t.info().peerIdentity).to.deep.equal({ type: 'psk', identity: PSK_IDENTITY });
      await exchange(t, s, 100, 9);
    });

    it('dial({ psk }) → independent server with the PSK: peerIdentity, data', async () => {
      const { t, s } = await serveAndDial({ psks: [theirPsk()] }, { psk: ourPsk() });
      expect(s.selectedPsk).to.equal(0);
      expect(t.info().peerIdentity).to.deep.equal({ type: 'psk', identity: PSK_IDENTITY });
      await exchange(t, s, 5000, 10);
      expectSameExporter(t, s);
      await within(t.close(), 10_000, 'our close');
      expect(t.info().closeState).to.equal('clean');
    });

    it('a wrong PSK from the independent client: our listener fails with ERR_QT_PSK_MISMATCH and alerts psk_mismatch', async () => {
      const listener = await res.listen({ psk: ourPsk() });
      const errors = handshakeErrors(listener);
      let refusal: unknown;
      try {
        sessions.push(await independentConnect(listener.address().port, { psks: [theirPsk(8)] }));
      } catch (err) {
        refusal = err;
      }
      expect(refusal).to.be.instanceOf(PeerAlertError);
      expect((refusal as PeerAlertError).code).to.equal(AlertCode.PSK_MISMATCH);
      await until(() => errors.length > 0, 10_000, 'the handshakeError event');
      expect(errors[0]?.error.code).to.equal('ERR_QT_PSK_MISMATCH');
    });

    it('no PSK from the independent client to a listener that requires one: psk_mismatch', async () => {
      const listener = await res.listen({ psk: ourPsk() });
      const errors = handshakeErrors(listener);
      let refusal: unknown;
      try {
        sessions.push(await independentConnect(listener.address().port, {}));
      } catch (err) {
        refusal = err;
      }
      expect((refusal as PeerAlertError).code).to.equal(AlertCode.PSK_MISMATCH);
      await until(() => errors.length > 0, 10_000, 'the handshakeError event');
      expect(errors[0]?.error.code).to.equal('ERR_QT_PSK_MISMATCH');
    });

    it('dial({ psk }) with a key the independent server does not share: ERR_QT_PSK_MISMATCH on our side', async () => {
      const { server, failure: outcome } = await startFailingServer({ psks: [theirPsk(8)] });
      await rejectsWithCode(res.dial(server.port, { psk: ourPsk() }), 'ERR_QT_PSK_MISMATCH');
      const failure = await outcome;
      expect(failure).to.be.instanceOf(V2Error);
      expect((failure as V2Error).alert).to.equal(AlertCode.PSK_MISMATCH);
    });

    it('dial({ psk }) to an independent server that selects no PSK (0xFFFF): ERR_QT_PSK_MISMATCH on our side', async () => {
      const { server, failure } = await startFailingServer({});
      await rejectsWithCode(res.dial(server.port, { psk: ourPsk() }), 'ERR_QT_PSK_MISMATCH');
      const alert = await failure;
      expect(alert).to.be.instanceOf(PeerAlertError);
      expect((alert as PeerAlertError).code).to.equal(AlertCode.PSK_MISMATCH);
    });
  });

  describe('KeyUpdate', () => {
    /** Four updates: symmetric then kem from the independent side, then from ours; data after each. */
    async function updatesBothWays(t: Tunnel, s: IndependentSession): Promise<void> {
      const exporterBefore = t.exportKeyingMaterial(EXPORT_LABEL, Buffer.from('ctx'), 32);
      const sessionId = t.info().sessionId;
      let seed = 100;
      expect(s.sendEpoch).to.equal(2);

      await within(s.keyUpdate('symmetric'), 10_000, 'the symmetric update we asked for');
      expect([s.sendEpoch, s.recvEpoch]).to.deep.equal([3, 3]);
      await exchange(t, s, 3000, seed++);
      expect(s.lastRecvEpoch).to.equal(3);

      await delay(REKEY_GAP_MS);
      await within(s.keyUpdate('kem'), 10_000, 'the kem update we asked for');
      expect([s.sendEpoch, s.recvEpoch]).to.deep.equal([4, 4]);
      await exchange(t, s, 3000, seed++);
      expect(s.lastRecvEpoch).to.equal(4);

      await delay(REKEY_GAP_MS);
      await within(t.rekey({ mode: 'symmetric' }), 10_000, 'our symmetric rekey');
      expect(s.keyUpdates.at(-1)).to.deep.equal({ role: 'responder', mode: 0, epoch: 5 });
      await exchange(t, s, 3000, seed++);
      expect([s.sendEpoch, s.recvEpoch, s.lastRecvEpoch]).to.deep.equal([5, 5, 5]);

      await delay(REKEY_GAP_MS);
      await within(t.rekey({ mode: 'kem' }), 10_000, 'our kem rekey');
      expect(s.keyUpdates.at(-1)).to.deep.equal({ role: 'responder', mode: 1, epoch: 6 });
      await exchange(t, s, 3000, seed++);
      expect([s.sendEpoch, s.recvEpoch, s.lastRecvEpoch]).to.deep.equal([6, 6, 6]);

      await s.ping();
      // §8.1: the exporter and resumption secrets do not change.
      expect(t.exportKeyingMaterial(EXPORT_LABEL, Buffer.from('ctx'), 32).equals(exporterBefore)).to.equal(true);
      expectSameExporter(t, s);
      expect(t.info().sessionId).to.equal(sessionId);
      expect(s.failure).to.equal(undefined);
    }

    it('independent client ↔ listen(): symmetric and kem updates from both sides, data after each', async () => {
      const { t, s } = await listenAndConnect({}, {});
      await updatesBothWays(t, s);
      await s.close();
      expect(await closeStateOf(t)).to.equal('clean');
    });

    it('dial() ↔ independent server: symmetric and kem updates from both sides, data after each', async () => {
      const { t, s } = await serveAndDial({}, {});
      await updatesBothWays(t, s);
      await within(t.close(), 10_000, 'our close');
      expect(t.info().closeState).to.equal('clean');
    });

    it('kem updates in p384-mlkem1024 and x25519-mlkem768 (share sizes of §4), both directions', async () => {
      for (const group of [Group.P384_MLKEM1024, Group.X25519_MLKEM768]) {
        const { t, s } = await listenAndConnect({}, { groups: [group] });
        await within(s.keyUpdate('kem'), 10_000, 'our kem update');
        await exchange(t, s, 1000, group);
        await delay(REKEY_GAP_MS);
        await within(t.rekey({ mode: 'kem' }), 10_000, 'their kem rekey');
        await exchange(t, s, 1000, group + 1);
        expect([s.sendEpoch, s.recvEpoch, s.lastRecvEpoch]).to.deep.equal([4, 4, 4]);
      }
    });

    it('data sent by the requester between its key_update and the ack arrives (still under epoch N)', async () => {
      const { t, s } = await listenAndConnect({}, {});
      const data = pattern(50_000, 11);
      const arrived = readExactly(t, data.length);
      const update = s.keyUpdate('kem');
      s.sendData(data); // sealed under epoch 2, after the request
      await within(update, 10_000, 'the ack');
      expect((await arrived).equals(data)).to.equal(true);
      await exchange(t, s, 1000, 12);
      expect(s.lastRecvEpoch).to.equal(3);
    });
  });

  describe('resumption (tickets, §7 and §10)', () => {
    it('a ticket from our listener resumes: res binder, ticket PSK from the resumption secret, obfuscated age', async () => {
      const tickets = new TicketIssuer({ serverIdentity: Buffer.from('interop server') });
      const { s: first } = await listenAndConnect({ tickets }, {});
      await first.until(() => first.tickets.length > 0, 10_000, 'a NewSessionTicket');
      const ticket = first.tickets[0]!;
      expect(ticket.lifetimeSeconds).to.be.within(1, 604_800);
      await first.close();

      const listener = await res.listen({ tickets });
      const tunnel = nextTunnel(listener);
      const second = await independentConnect(listener.address().port, { resumption: { ticket, resumptionSecret: first.resumptionSecret } });
      sessions.push(second);
      const t = await tunnel;
      expect(second.selectedPsk).to.equal(0);
      expect(t.info().resumed).to.equal(true);
      await exchange(t, second, 1000, 20);
      expectSameExporter(t, second);
    });

    it('our dial() stores a ticket from the independent server and resumes with it (ticket PSK, res binder, age)', async () => {
      const issued = new Map<string, ServerTicket>();
      const ticketStore = new ClientTicketStore();
      const server = await IndependentServer.start({ tickets: issued });
      servers.push(server);
      let outcome = server.next();
      const first = await res.dial(server.port, { ticketStore });
      sessions.push(await outcome);
      expect(issued.size).to.equal(1);
      const ticket = [...issued.values()][0]!;
      await until(() => ticketStore.size > 0, 10_000, 'our client to store the ticket');
      expect(first.info().resumed).to.equal(false);
      await within(first.close(), 10_000, 'our close');

      outcome = server.next();
      const t = await res.dial(server.port, { ticketStore });
      const s = await outcome;
      sessions.push(s);
      expect(s.selectedPsk).to.equal(0);
      expect(t.info().resumed).to.equal(true);
      // §10: obfuscated_ticket_age = ms since the client received it + age_add; the skew is a few ms.
      expect(Math.abs(ticket.ageSkewMs ?? Infinity)).to.be.below(5000);
      await exchange(t, s, 1000, 21);
      expectSameExporter(t, s);
    });

    it('a ticket whose PSK the client does not hold (wrong resumption secret): psk_mismatch', async () => {
      const tickets = new TicketIssuer({ serverIdentity: Buffer.from('interop server') });
      const { s: first } = await listenAndConnect({ tickets }, {});
      await first.until(() => first.tickets.length > 0, 10_000, 'a NewSessionTicket');
      const ticket = first.tickets[0]!;
      await first.close();
      const listener = await res.listen({ tickets });
      const wrong = Buffer.from(first.resumptionSecret);
      wrong.writeUInt8(wrong.readUInt8(0) ^ 1, 0);
      let refusal: unknown;
      await independentConnect(listener.address().port, { resumption: { ticket, resumptionSecret: wrong } }).catch((err) => (refusal = err));
      expect((refusal as PeerAlertError).code).to.equal(AlertCode.PSK_MISMATCH);
    });
  });

  describe('refusals of our listen() to hellos the spec refuses (plaintext alerts, §3.4, §9)', () => {
    /** The alert code of our listener's reply to `hello`, or 'hello' if it answered with a ServerHello. */
    async function replyTo(hello: Buffer, listenOptions = {}): Promise<number | 'hello' | 'closed'> {
      const listener = await res.listen(listenOptions);
      const reply = await firstReply(listener.address().port, hello);
      if (reply === null) return 'closed';
      if (reply.type === FrameType.SERVER_HELLO) return 'hello';
      expect(reply.type).to.equal(FrameType.ALERT);
      const alert = decodePlainAlert(reply.payload);
      expect(alert.level).to.equal(2);
      return alert.code;
    }

    it('accepts any minor version of 2, and ignores unknown extensions', async () => {
      expect(await replyTo(clientHelloWith({ minor: 9 }))).to.equal('hello');
      expect(await replyTo(clientHelloWith({ extensions: [{ type: 0x7a7a, data: Buffer.from('x') }] }))).to.equal('hello');
    });

    it('unsupported_version: a major version 1 payload, and supported_versions without 0x0200', async () => {
      expect(await replyTo(clientHelloWith({ major: 1 }))).to.equal(AlertCode.UNSUPPORTED_VERSION);
      expect(await replyTo(clientHelloWith({ versions: [0x0300] }))).to.equal(AlertCode.UNSUPPORTED_VERSION);
    });

    it('unsupported_cipher: no suite in common', async () => {
      expect(await replyTo(clientHelloWith({ suites: [0x0099] }))).to.equal(AlertCode.UNSUPPORTED_CIPHER);
    });

    it('handshake_failure: key_share_group not in groups, an unknown group, a low-order X25519 key, a bad encapsulation key', async () => {
      expect(await replyTo(clientHelloWith({ groups: [Group.P384_MLKEM1024] }))).to.equal(AlertCode.HANDSHAKE_FAILURE);
      expect(await replyTo(clientHelloWith({ groups: [0x7777], keyShareGroup: 0x7777, keyShare: Buffer.alloc(1600) }))).to.equal(AlertCode.HANDSHAKE_FAILURE);
      const share = initiate(Group.X25519_MLKEM1024).share;
      const lowOrder = Buffer.concat([Buffer.alloc(32), share.subarray(32)]);
      expect(await replyTo(clientHelloWith({ keyShare: lowOrder }))).to.equal(AlertCode.HANDSHAKE_FAILURE);
      const badEk = Buffer.concat([share.subarray(0, 32), Buffer.alloc(1568, 0xff)]); // coefficients ≥ q: fails the modulus check
      expect(await replyTo(clientHelloWith({ keyShare: badEk }))).to.equal(AlertCode.HANDSHAKE_FAILURE);
    });

    it('malformed hellos are answered with unexpected_message (§9): wrong key share size, trailing byte, binder count, duplicate extension', async () => {
      const share = initiate(Group.X25519_MLKEM1024).share;
      expect(await replyTo(clientHelloWith({ keyShare: share.subarray(0, 1599) }))).to.equal(AlertCode.UNEXPECTED_MESSAGE);
      const good = clientHelloWith();
      const trailing = Buffer.concat([good, Buffer.from([0])]);
      trailing.writeUInt32BE(good.length - 5 + 1, 1);
      expect(await replyTo(trailing)).to.equal(AlertCode.UNEXPECTED_MESSAGE);
      expect(await replyTo(clientHelloWith({ binders: [Buffer.alloc(48)] }))).to.equal(AlertCode.UNEXPECTED_MESSAGE);
      const twice = [
        { type: 0x7a7a, data: Buffer.alloc(0) },
        { type: 0x7a7a, data: Buffer.alloc(0) },
      ];
      expect(await replyTo(clientHelloWith({ extensions: twice }))).to.equal(AlertCode.UNEXPECTED_MESSAGE);
    });

    it("a client Finished that does not verify: ERR_QT_HANDSHAKE_FAILED, alert handshake_failure (as a plaintext frame: §9's 'received the last Finished' read as verified)", async () => {
      const listener = await res.listen();
      const errors = handshakeErrors(listener);
      const s = await independentConnect(listener.address().port, {
        tamperFinished: (v) => {
          const bad = Buffer.from(v);
          bad.writeUInt8(bad.readUInt8(47) ^ 1, 47);
          return bad;
        },
      });
      sessions.push(s);
      await s.until(() => s.failure !== undefined, 10_000, 'the refusal').catch(() => undefined);
      await until(() => errors.length > 0, 10_000, 'the handshakeError event');
      expect(errors[0]?.error.code).to.equal('ERR_QT_HANDSHAKE_FAILED');
      expect({ plaintext: s.plaintextAlerts, records: s.alerts }).to.deep.equal({ plaintext: [{ level: 2, code: AlertCode.HANDSHAKE_FAILURE }], records: [] });
    });

    it('a key share for a group other than groups[0], if in groups, is taken (§3.4 step 4 does not require groups[0])', async () => {
      const hello = clientHelloWith({ groups: [Group.P384_MLKEM1024, Group.X25519_MLKEM1024], keyShareGroup: Group.X25519_MLKEM1024 });
      expect(await replyTo(hello)).to.equal('hello');
    });

    it('a first byte of no frame type (an HTTP client): closed without a reply', async () => {
      const listener = await res.listen();
      const socket = res.socket(connect({ host: '127.0.0.1', port: listener.address().port }));
      await once(socket, 'connect');
      const received: Buffer[] = [];
      socket.on('data', (d: Buffer) => received.push(d));
      socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      await within(once(socket, 'close'), 10_000, 'the server to close');
      expect(Buffer.concat(received).length).to.equal(0);
    });
  });

  describe('refusals of our dial() to server flights the spec refuses (§3.5)', () => {
    /** Dials an independent server with `tamper`; returns our error and the alert our client sent. */
    async function dialTampered(tamper: Parameters<typeof IndependentServer.start>[0]): Promise<{ ours: QuantumTunnelError; alert: PeerAlertError }> {
      const { server, failure: outcome } = await startFailingServer(tamper);
      let ours: unknown;
      await res.dial(server.port).catch((err) => (ours = err));
      expect(ours).to.be.instanceOf(QuantumTunnelError);
      const alert = await outcome;
      expect(alert, 'our client sends a plaintext alert').to.be.instanceOf(PeerAlertError);
      return { ours: ours as QuantumTunnelError, alert: alert as PeerAlertError };
    }

    it('a ServerHello of major version 1: unsupported_version', async () => {
      const { alert } = await dialTampered({ tamper: { serverHello: (sh) => (sh.major = 1) } });
      expect(alert.code).to.equal(AlertCode.UNSUPPORTED_VERSION);
    });

    it('a suite it did not offer: unsupported_cipher', async () => {
      const { alert } = await dialTampered({ tamper: { serverHello: (sh) => (sh.suite = 0x0099) } });
      expect(alert.code).to.equal(AlertCode.UNSUPPORTED_CIPHER);
    });

    it("a group other than its key share's, or a selected_psk it did not offer: handshake_failure", async () => {
      // Any group but the key share's (FIPS mode's key share is already P-384's).
      const other = await dialTampered({ tamper: { serverHello: (sh) => (sh.group = sh.group === Group.P384_MLKEM1024 ? Group.X25519_MLKEM1024 : Group.P384_MLKEM1024) } });
      expect(other.alert.code).to.equal(AlertCode.HANDSHAKE_FAILURE);
      const psk = await dialTampered({ tamper: { serverHello: (sh) => (sh.selectedPsk = 0) } });
      expect(psk.alert.code).to.equal(AlertCode.HANDSHAKE_FAILURE);
    });

    it('a ServerHello with extensions (v2.0 defines none): refused', async () => {
      const { alert } = await dialTampered({ tamper: { serverHello: (sh) => sh.extensions.push({ type: 0x7a7a, data: Buffer.alloc(0) }) } });
      expect(alert.code).to.equal(AlertCode.UNEXPECTED_MESSAGE); // §3.5 names no code; §9: malformed → unexpected_message
    });

    it('EncryptedExtensions entries it does not know are ignored', async () => {
      const { t, s } = await serveAndDial({ tamper: { encryptedExtensions: [{ type: 0x7a7a, data: Buffer.from('ignored') }] } }, {});
      await exchange(t, s, 1000, 22);
    });

    it("a server Finished that does not verify: handshake_failure, ERR_QT_HANDSHAKE_FAILED", async () => {
      const { ours, alert } = await dialTampered({
        tamper: {
          finished: (v) => {
            const bad = Buffer.from(v);
            bad.writeUInt8(bad.readUInt8(0) ^ 1, 0);
            return bad;
          },
        },
      });
      expect(alert.code).to.equal(AlertCode.HANDSHAKE_FAILURE);
      expect(ours.code).to.equal('ERR_QT_HANDSHAKE_FAILED');
    });
  });

  describe('records and control messages the spec refuses (§5, §8)', () => {
    /** Our tunnel's error after the independent client did `act`, and the alert it sent back. */
    async function failureAfter(act: (s: IndependentSession) => void, listenOptions = {}): Promise<{ ours: QuantumTunnelError; alert?: { level: number; code: number } }> {
      const { t, s } = await listenAndConnect(listenOptions, {});
      const failed = new Promise<Error>((resolve) => t.once('error', resolve));
      t.resume();
      act(s);
      const ours = await within(failed, 10_000, 'our tunnel to fail');
      expect(ours).to.be.instanceOf(QuantumTunnelError);
      await s.until(() => s.failure !== undefined, 10_000, 'the independent session to end').catch(() => undefined);
      return { ours: ours as QuantumTunnelError, alert: s.alerts[0] };
    }

    it('a data record of the largest size (65,517 bytes of content, §8) is accepted, padded to 65,518 bytes inner', async () => {
      const { t, s } = await listenAndConnect({}, {});
      const data = pattern(65_517, 23);
      const arrived = readExactly(t, data.length);
      s.sendData(data, 65_517);
      expect((await arrived).equals(data)).to.equal(true);
      s.padding = 1000;
      const padded = pattern(65_517 - 1000, 24);
      const arrivedPadded = readExactly(t, padded.length);
      s.sendData(padded, 65_517);
      expect((await arrivedPadded).equals(padded)).to.equal(true);
    });

    it('a frame header announcing more than 65,536 bytes: ERR_QT_MESSAGE_TOO_LARGE from the header alone', async () => {
      const { ours } = await failureAfter((s) => s.writeRaw(Buffer.from([0x30, 0x00, 0x01, 0x00, 0x01, 0x00, 0x02])));
      expect(ours.code).to.equal('ERR_QT_MESSAGE_TOO_LARGE');
    });

    it('a skipped sequence number (a dropped record): ERR_QT_AUTHENTICATION_FAILED, alert bad_record', async () => {
      const { ours, alert } = await failureAfter((s) => s.sendRaw(Inner.DATA, Buffer.from('x'), { skipSeq: true }));
      expect(ours.code).to.equal('ERR_QT_AUTHENTICATION_FAILED');
      expect(alert).to.deep.equal({ level: 2, code: AlertCode.BAD_RECORD });
    });

    it('a record of an epoch the receiver does not expect: unexpected_message', async () => {
      const { alert } = await failureAfter((s) => s.sendRaw(Inner.DATA, Buffer.from('x'), { epoch: 3 }));
      expect(alert).to.deep.equal({ level: 2, code: AlertCode.UNEXPECTED_MESSAGE });
    });

    it('an empty data record, and a ping with content: unexpected_message', async () => {
      const empty = await failureAfter((s) => s.sendRaw(Inner.DATA, Buffer.alloc(0)));
      expect(empty.alert).to.deep.equal({ level: 2, code: AlertCode.UNEXPECTED_MESSAGE });
      const ping = await failureAfter((s) => s.sendRaw(Inner.PING, Buffer.from([1])));
      expect(ping.alert).to.deep.equal({ level: 2, code: AlertCode.UNEXPECTED_MESSAGE });
    });

    it('a handshake record after the handshake: unexpected_message', async () => {
      const { alert } = await failureAfter((s) => s.sendRaw(Inner.HANDSHAKE, Buffer.from([0x14, 0, 0, 0])));
      expect(alert).to.deep.equal({ level: 2, code: AlertCode.UNEXPECTED_MESSAGE });
    });

    it('a key_update to epoch N+2: unexpected_message', async () => {
      const { alert } = await failureAfter((s) => s.sendRaw(Inner.KEY_UPDATE, Buffer.from([0, 0, 4])));
      expect(alert).to.deep.equal({ level: 2, code: AlertCode.UNEXPECTED_MESSAGE });
    });

    it('KeyUpdates faster than rekeyMinIntervalMs: ERR_QT_REKEY_RATE_LIMITED, alert rate_limited', async () => {
      const { ours, alert } = await failureAfter(
        (s) => {
          void s
            .keyUpdate('symmetric')
            .then(() => s.keyUpdate('symmetric'))
            .catch(() => undefined);
        },
        { rekeyMinIntervalMs: 60_000 },
      );
      expect(ours.code).to.equal('ERR_QT_REKEY_RATE_LIMITED');
      expect(alert).to.deep.equal({ level: 2, code: AlertCode.RATE_LIMITED });
    });

    it('a warning alert (level 1) is ignored; a fatal one ends our tunnel with ERR_QT_PEER_ALERT', async () => {
      const { t, s } = await listenAndConnect({}, {});
      s.sendAlert(1, AlertCode.UNEXPECTED_MESSAGE);
      await exchange(t, s, 100, 30);
      const failed = new Promise<Error>((resolve) => t.once('error', resolve));
      s.sendAlert(2, AlertCode.HANDSHAKE_FAILURE);
      const err = await within(failed, 10_000, 'our tunnel to fail');
      expect((err as QuantumTunnelError).code).to.equal('ERR_QT_PEER_ALERT');
      expect(t.info().closeState).to.equal('failed');
    });

    it('the connection cut without close_notify: our side reports ERR_QT_TRUNCATED', async () => {
      const { t, s } = await listenAndConnect({}, {});
      await exchange(t, s, 100, 31);
      const failed = new Promise<Error>((resolve) => t.once('error', resolve));
      t.resume();
      s.destroy();
      const err = await within(failed, 10_000, 'our tunnel to fail');
      expect((err as QuantumTunnelError).code).to.equal('ERR_QT_TRUNCATED');
      expect(t.info().closeState).to.equal('truncated');
    });
  });

  describe('simultaneous KeyUpdates (§8.1: the client\'s wins)', () => {
    it('independent client and our server request at once: the client ignores the server\'s, data continues', async () => {
      const { t, s } = await listenAndConnect({}, {});
      const ours = t.rekey({ mode: 'symmetric' }).then(
        () => 'completed',
        (err: Error) => `rejected: ${(err as QuantumTunnelError).code ?? err.message}`,
      );
      const theirs = s.keyUpdate('symmetric'); // sent before either side reads the other's request
      await within(theirs, 10_000, "the client's KeyUpdate");
      await exchange(t, s, 1000, 40);
      await within(ours, 35_000, 'our rekey() to settle');
      expect(s.ignoredRequests).to.equal(1);
      expect(s.keyUpdates).to.deep.equal([{ role: 'requester', mode: 0, epoch: 3 }]);
      expect([s.sendEpoch, s.recvEpoch, s.lastRecvEpoch]).to.deep.equal([3, 3, 3]);
      expect(s.failure).to.equal(undefined);
    });
  });
});
