/**
 * Protocol v2 end to end over real sockets (127.0.0.1): authentication with pre-shared keys,
 * legacy v1 beside v2, resumption tickets, the exporter, key updates from either side under load,
 * and what v2's handshake and records stop on the way: a downgrade of the offer, a relay (when a
 * PSK authenticates the ends), a dropped, reordered or repeated record.
 */
import { expect } from 'chai';
import { defaultKemGroup } from '../../lib/protocol/v2/groups.js';
import {
  ClientTicketStore,
  crypto,
  type DialOptions,
  ErrorCode,
  type HandshakeErrorEvent,
  type Listener,
  type ListenOptions,
  listen,
  type QuantumTunnelError,
  TicketIssuer,
  type Tunnel,
} from '../../lib/index.js';
import { MessageType } from '../../lib/protocol/constants.js';
import { AlertCode } from '../../lib/protocol/messages.js';
import { type ClientHelloV2, decodeClientHelloV2, encodeClientHelloV2 } from '../../lib/protocol/v2/messages.js';
import { RECORD_TYPE } from '../../lib/protocol/v2/record.js';
import { startFrameRewriteProxy, type WireFrame } from '../helpers/proxies.js';
import {
  assertEchoes,
  echo,
  handshakeErrors,
  nextTunnel,
  rejectsWithCode,
  Resources,
  roundTrip,
  streamIn,
  streamOut,
  until,
  V1_WIRE,
  within,
} from '../helpers/tunnel.js';

const chachaAvailable = crypto.info().chacha20.available;
const V1 = V1_WIRE.options;
const MiB = 2 ** 20;

/** A PSK option: `identity` and a fresh 32-byte secret, or the given one. */
function pskOf(identity: string, secret = crypto.randomSecret(32)): { identity: string; secret: ReturnType<typeof crypto.randomSecret> } {
  return { identity, secret };
}

function codeOf(err: unknown): string | undefined {
  return (err as { code?: string } | undefined)?.code;
}

describe('protocol v2 end to end', function () {
  this.timeout(30_000);
  const res = new Resources();
  afterEach(() => res.cleanup());

  /** A listener, a client dialed to it with `dialOptions`, and the server's side of the tunnel. */
  async function pair(listenOptions: ListenOptions = {}, dialOptions: DialOptions = {}): Promise<{ listener: Listener; client: Tunnel; server: Tunnel }> {
    const listener = await res.listen(listenOptions);
    const serverSide = nextTunnel(listener);
    const client = await res.dial(listener, dialOptions);
    return { listener, client, server: await serverSide };
  }

  /** Both ends fail the handshake: the dial rejects with one of `clientCodes`, the listener reports `serverCode`, no tunnel. */
  async function expectBothFail(listener: Listener, dialing: Promise<Tunnel>, clientCodes: string | readonly string[], serverCode: string): Promise<{ client: QuantumTunnelError; server: HandshakeErrorEvent }> {
    const errors = handshakeErrors(listener);
    let tunnels = 0;
    listener.on('tunnel', () => tunnels++);
    const client = await rejectsWithCode(dialing, clientCodes);
    await until(() => errors.length >= 1, 5000, 'the server handshakeError');
    expect(errors.map((e) => e.error.code)).to.deep.equal([serverCode]);
    expect(tunnels, 'tunnels the server established').to.equal(0);
    return { client, server: errors[0]! };
  }

  // ---- authentication with pre-shared keys ------------------------------------------------------

  describe('PSK', () => {
    it('both ends prove the same PSK: info() names the peer identity on both sides; the listener picks the key by identity', async () => {
      const a = pskOf('site-a');
      const b = pskOf('site-b');
      const { client, server } = await pair({ psk: [a, b] }, { psk: b });
      server.pipe(server);
      for (const t of [client, server]) {
        const info = t.info();
        expect(info.protocol).to.equal('v2');
        expect(info.group).to.equal(defaultKemGroup().displayName);
        expect(info.peerIdentity).to.deep.equal({ type: 'psk', identity: 'site-b' });
        expect(info.approvedServicesOnly).to.equal(info.fips); // FIPS mode's default group and suite are approved
        expect(info.resumed).to.equal(false);
      }
      await assertEchoes(client, 'authenticated');
      a.secret.destroy();
      b.secret.destroy();
    });

    it('a wrong PSK (the same identity, another secret): ERR_QT_PSK_MISMATCH on both ends', async () => {
      const listener = await res.listen({ psk: pskOf('site-a') });
      await expectBothFail(listener, res.dial(listener, { psk: pskOf('site-a') }), ErrorCode.PSK_MISMATCH, ErrorCode.PSK_MISMATCH);
    });

    it('an identity the server does not know: ERR_QT_PSK_MISMATCH on both ends', async () => {
      const key = pskOf('site-a');
      const listener = await res.listen({ psk: key });
      await expectBothFail(listener, res.dial(listener, { psk: { identity: 'site-z', secret: key.secret } }), ErrorCode.PSK_MISMATCH, ErrorCode.PSK_MISMATCH);
    });

    it('the server requires a PSK and the client has none: ERR_QT_PSK_MISMATCH on both ends', async () => {
      const listener = await res.listen({ psk: pskOf('site-a') });
      await expectBothFail(listener, res.dial(listener), ErrorCode.PSK_MISMATCH, ErrorCode.PSK_MISMATCH);
    });

    it('the client has a PSK and the server none: the client refuses the anonymous server (ERR_QT_PSK_MISMATCH on both ends)', async () => {
      const listener = await res.listen();
      await expectBothFail(listener, res.dial(listener, { psk: pskOf('site-a') }), ErrorCode.PSK_MISMATCH, ErrorCode.PSK_MISMATCH);
    });

    it('legacyV1 with psk is refused (v1 cannot authenticate): ERR_QT_INVALID_ARGUMENT from dial() and listen()', async () => {
      const key = pskOf('site-a');
      const listener = await res.listen();
      let connections = 0;
      listener.on('tunnel', () => connections++);
      await rejectsWithCode(res.dial(listener, { psk: key, ...V1 }), ErrorCode.INVALID_ARGUMENT);
      expect(() => listen({ port: 0, psk: key, ...V1 })).to.throw().with.property('code', ErrorCode.INVALID_ARGUMENT);
      expect(connections).to.equal(0);
      key.secret.destroy();
    });
  });

  // ---- versions side by side --------------------------------------------------------------------

  describe('legacy v1 beside v2', () => {
    it('a legacyV1 listener answers a v2 client in v2 and a legacyV1 client in v1', async () => {
      const listener = await res.listen(V1, echo);
      const v2 = await res.dial(listener);
      const v1 = await res.dial(listener, V1);
      expect([v2.info().protocol, v2.info().group]).to.deep.equal(['v2', defaultKemGroup().displayName]);
      expect([v1.info().protocol, v1.info().group]).to.deep.equal(['v1', undefined]);
      await assertEchoes(v2, 'v2');
      await assertEchoes(v1, 'v1');
    });

    it('a legacyV1 client at a default (v2-only) listener is refused: the client fails, the server reports ERR_QT_UNSUPPORTED_VERSION', async () => {
      const listener = await res.listen({}, echo);
      await expectBothFail(listener, res.dial(listener, V1), [ErrorCode.UNSUPPORTED_VERSION, ErrorCode.PEER_ALERT], ErrorCode.UNSUPPORTED_VERSION);
      await assertEchoes(await res.dial(listener), 'a v2 client afterwards');
    });
  });

  // ---- tickets --------------------------------------------------------------------------------

  describe('resumption tickets', () => {
    const issuer = () => new TicketIssuer({ serverIdentity: Buffer.from('v2 e2e server') });

    /** Dials with `store` and waits until the server's ticket (sent after the handshake) is in it. */
    async function dialAndKeepTicket(listener: Listener, options: DialOptions & { ticketStore: ClientTicketStore }): Promise<Tunnel> {
      const before = options.ticketStore.size;
      const t = await res.dial(listener, options);
      await until(() => options.ticketStore.size > before || options.ticketStore.size === 1, 5000, 'the ticket from the server');
      return t;
    }

    it('the second dial with the same ClientTicketStore resumes on both sides, with new keys; the ticket is single-use', async () => {
      const listener = await res.listen({ tickets: issuer() }, echo);
      const store = new ClientTicketStore();
      const first = await dialAndKeepTicket(listener, { ticketStore: store });
      expect(first.info().resumed).to.equal(false);
      const firstExport = first.exportKeyingMaterial('EXPORTER-test', undefined, 32);
      await within(first.close(), 5000, 'the first close');

      // A copy of the ticket and its PSK in a second store, to present it twice.
      const scope = `127.0.0.1:${listener.address().port}`; // how dial() keys its tickets
      const held = store.take(scope)!;
      expect(held, 'the ticket is kept under the server address').to.not.equal(undefined);
      const copy = new ClientTicketStore();
      copy.add(scope, { ...held, psk: held.psk.clone() });
      store.add(scope, held);

      const serverSide = nextTunnel(listener);
      const resumed = await res.dial(listener, { ticketStore: store });
      const server = await serverSide;
      expect(resumed.info().resumed).to.equal(true);
      expect(server.info().resumed).to.equal(true);
      expect(resumed.info().sessionId).to.equal(server.info().sessionId);
      expect(resumed.exportKeyingMaterial('EXPORTER-test', undefined, 32).equals(firstExport), 'the resumed session has keys of its own').to.equal(false);
      await assertEchoes(resumed, 'resumed');
      // The store gave the ticket up; the server used it up: presented again, a full handshake.
      const againSide = nextTunnel(listener);
      const again = await res.dial(listener, { ticketStore: copy });
      expect(again.info().resumed).to.equal(false);
      expect((await againSide).info().resumed).to.equal(false);
      await assertEchoes(again, 'after the replay');
      store.destroy();
      copy.destroy();
    });

    it('a session resumed from a ticket issued under a PSK is still authenticated: peerIdentity on both sides', async () => {
      const key = pskOf('site-a');
      const listener = await res.listen({ tickets: issuer(), psk: key }, echo);
      const store = new ClientTicketStore();
      const first = await dialAndKeepTicket(listener, { ticketStore: store, psk: key });
      await within(first.close(), 5000, 'the first close');
      const serverSide = nextTunnel(listener);
      const resumed = await res.dial(listener, { ticketStore: store, psk: key });
      const server = await serverSide;
      for (const t of [resumed, server]) {
        expect(t.info().resumed).to.equal(true);
        expect(t.info().peerIdentity).to.deep.equal({ type: 'psk', identity: 'site-a' });
      }
      await assertEchoes(resumed, 'resumed under the PSK');
      store.destroy();
      key.secret.destroy();
    });
  });

  // ---- exporter -----------------------------------------------------------------------------------

  it('exportKeyingMaterial(): equal on both ends for a label and context; another label, context or session gives other bytes', async () => {
    const { client, server } = await pair();
    const context = Buffer.from('channel binding');
    const c = client.exportKeyingMaterial('EXPORTER-app', context, 48);
    expect(c).to.have.length(48);
    expect(server.exportKeyingMaterial('EXPORTER-app', context, 48).equals(c)).to.equal(true);
    expect(server.exportKeyingMaterial('EXPORTER-app', undefined, 48).equals(c)).to.equal(false);
    expect(server.exportKeyingMaterial('EXPORTER-other', context, 48).equals(c)).to.equal(false);
    expect(client.exportKeyingMaterial('EXPORTER-app', context, 32).equals(c.subarray(0, 32))).to.equal(false); // the length is an input
    const other = await res.dial(await res.listen());
    expect(other.exportKeyingMaterial('EXPORTER-app', context, 48).equals(c)).to.equal(false);
    for (const bad of [() => client.exportKeyingMaterial('', context, 16), () => client.exportKeyingMaterial('EXPORTER-app', context, 0)]) {
      expect(bad).to.throw().with.property('code', ErrorCode.INVALID_ARGUMENT);
    }
    const legacy = await res.dial(await res.listen(V1), V1);
    expect(() => legacy.exportKeyingMaterial('EXPORTER-app', context, 16)).to.throw().with.property('code', ErrorCode.INVALID_STATE);
  });

  // ---- key updates --------------------------------------------------------------------------------

  describe('key updates', () => {
    const total = 16 * MiB;

    for (const side of ['client', 'server'] as const) {
      for (const mode of ['kem', 'symmetric'] as const) {
        it(`the ${side} rekeys (${mode}) while 16 MiB flow each way: data intact, one key update counted on both sides`, async () => {
          const { client, server } = await pair({ rekeyMinIntervalMs: 0 });
          const events = { client: 0, server: 0 };
          client.on('rekey', () => events.client++);
          server.on('rekey', () => events.server++);
          const atServer = streamIn(server, total);
          const atClient = streamIn(client, total);
          // The key update starts as the first MiB arrives either way (checked as the data comes, not polled).
          let rekeyed: Promise<void> | undefined;
          let inFlight: number[] = [];
          const start = () => {
            if (rekeyed !== undefined || Math.max(atServer.received(), atClient.received()) < MiB) return;
            inFlight = [atServer.received(), atClient.received()];
            rekeyed = (side === 'client' ? client : server).rekey({ mode });
          };
          client.on('data', start);
          server.on('data', start);
          const sent = [streamOut(client, total, 31), streamOut(server, total, 32)];
          await until(() => rekeyed !== undefined, 10_000, 'the first MiB');
          await within(rekeyed!, 10_000, 'the key update');
          const [cs, ss, sr, cr] = await within(Promise.all([...sent, atServer.done, atClient.done]), 30_000, 'both streams');
          expect(sr, 'client to server').to.equal(cs);
          expect(cr, 'server to client').to.equal(ss);
          expect(inFlight.every((n) => n < total), 'the key update started with data still to come both ways').to.equal(true);
          expect([client.info().rekeys, server.info().rekeys]).to.deep.equal([1, 1]);
          expect(events).to.deep.equal({ client: 1, server: 1 });
          expect([client.info().bytesReceived, server.info().bytesReceived]).to.deep.equal([total, total]);
        });
      }
    }

    for (const mode of ['kem', 'symmetric'] as const) {
      it(`rekey() from both sides at the same moment (${mode}): both resolve, the client's request wins (one update each time); data flows`, async () => {
        const { client, server } = await pair({ rekeyMinIntervalMs: 0 });
        server.pipe(server);
        for (let i = 1; i <= 3; i++) {
          await within(Promise.all([client.rekey({ mode }), server.rekey({ mode })]), 10_000, `collision ${i}`);
          expect([client.info().rekeys, server.info().rekeys], `after collision ${i}`).to.deep.equal([i, i]);
          await assertEchoes(client, `after collision ${i}`);
        }
      });
    }
  });

  // ---- a relay --------------------------------------------------------------------------------

  describe('a man-in-the-middle relay that runs two handshakes', () => {
    /**
     * A relay: its own listener terminates the client's handshake, and for each connection it
     * dials the real server itself (as soon as the client connects), then copies plaintext both
     * ways, keeping what the client sent.
     */
    async function startRelay(serverPort: number, options: { listen?: ListenOptions; dial?: DialOptions } = {}): Promise<{ port: number; seen: () => string; upstreamErrors: unknown[] }> {
      const upstream: Array<Promise<Tunnel>> = [];
      const upstreamErrors: unknown[] = [];
      let seen = '';
      const relay = await res.listen(
        {
          ...options.listen,
          observer: {
            onConnection: () => {
              const dialing = res.dial(serverPort, options.dial);
              dialing.catch((err: unknown) => upstreamErrors.push(err));
              upstream.push(dialing);
            },
          },
        },
        (down) => {
          void upstream.shift()!.then((up) => {
            down.on('data', (d: Buffer) => {
              seen += d.toString();
              up.write(d);
            });
            up.pipe(down);
          }, () => down.destroy());
        },
      );
      return { port: relay.address().port, seen: () => seen, upstreamErrors };
    }

    it('with a PSK on both ends the relay fails: it cannot prove the PSK to either (client and server both ERR_QT_PSK_MISMATCH)', async () => {
      const key = pskOf('site-a');
      const listener = await res.listen({ psk: key }, echo);
      const errors = handshakeErrors(listener);
      // The identity travels in the clear; the relay knows it, but not the secret.
      const guess = pskOf('site-a');
      const relay = await startRelay(listener.address().port, { listen: { psk: guess }, dial: { psk: guess } });
      await rejectsWithCode(res.dial(relay.port, { psk: key }), ErrorCode.PSK_MISMATCH);
      await until(() => errors.length >= 1 && relay.upstreamErrors.length >= 1, 5000, 'the server and the relay to fail');
      expect(errors.map((e) => e.error.code)).to.deep.equal([ErrorCode.PSK_MISMATCH]);
      expect(relay.upstreamErrors.map(codeOf)).to.deep.equal([ErrorCode.PSK_MISMATCH]);
      expect(listener.activeTunnels).to.equal(0);
      expect(relay.seen()).to.equal('');
      key.secret.destroy();
      guess.secret.destroy();
    });

    it('without a PSK the relay succeeds and reads everything: an unauthenticated handshake cannot detect a relay (PSKs, and the identities of issue 10, are what stop one); only channel binding shows two sessions', async () => {
      const listener = await res.listen({}, echo);
      const serverSide = nextTunnel(listener);
      const relay = await startRelay(listener.address().port);
      const client = await res.dial(relay.port);
      const server = await serverSide;
      const secret = Buffer.from('for the server only');
      expect((await roundTrip(client, secret)).equals(secret)).to.equal(true);
      expect(relay.seen()).to.equal(secret.toString());
      expect(client.info().peerIdentity).to.equal(undefined);
      // Two handshakes: two sessions. The exporter differs between the ends, which channel
      // binding (an application signing it) would notice; the tunnel itself cannot.
      expect(client.info().sessionId).to.not.equal(server.info().sessionId);
      const label = 'EXPORTER-binding';
      expect(client.exportKeyingMaterial(label, undefined, 32).equals(server.exportKeyingMaterial(label, undefined, 32))).to.equal(false);
    });
  });

  // ---- on the wire ----------------------------------------------------------------------------------

  describe('a proxy that rewrites the wire', () => {
    /** A ClientHello frame with its offer changed by `change` (re-encoded: no PSK, so no binders). */
    function rewriteHello(frame: WireFrame, change: (hello: ClientHelloV2) => void): Buffer {
      const hello = decodeClientHelloV2(frame.payload);
      change(hello);
      return encodeClientHelloV2(hello);
    }

    const downgrades: Array<{ what: string; dial: DialOptions; skip?: boolean; change: (hello: ClientHelloV2) => void }> = [
      {
        what: 'removes ChaCha20-Poly1305 from the suites offered (the server then takes AES-256-GCM)',
        dial: { ciphers: ['chacha20-poly1305', 'aes-256-gcm'] },
        skip: !chachaAvailable,
        change: (h) => (h.cipherSuites = h.cipherSuites.slice(1)),
      },
      {
        what: 'removes a group from the groups offered (not the key share)',
        dial: {},
        change: (h) => (h.groups = h.groups.slice(0, -1)),
      },
    ];

    for (const d of downgrades) {
      it(`a downgrade that ${d.what}: the handshake fails on both ends (the client: ERR_QT_HANDSHAKE_FAILED; the server: the client's handshake_failure alert)`, async function () {
        if (d.skip) this.skip();
        const listener = await res.listen({}, echo);
        let rewritten = 0;
        const proxy = await res.proxy(
          startFrameRewriteProxy({
            targetPort: listener.address().port,
            clientToServer: (f) => {
              if (f.type !== MessageType.CLIENT_HELLO) return f.raw;
              rewritten++;
              return rewriteHello(f, d.change);
            },
          }),
        );
        // The server answers the changed offer as if it were the client's; the transcripts differ,
        // so the client cannot open the server's first record.
        const { server } = await expectBothFail(listener, res.dial(proxy.port, d.dial), ErrorCode.HANDSHAKE_FAILED, ErrorCode.PEER_ALERT);
        expect(server.error.message).to.match(new RegExp(`alert code ${AlertCode.HANDSHAKE_FAILURE}\\b`));
        expect(rewritten).to.equal(1);
        // Untouched, the same offer succeeds.
        await assertEchoes(await res.dial(listener, d.dial), 'without the proxy');
      });
    }

    const tampering: Array<{ what: string; rewrite: (f: WireFrame, nth: number) => Buffer | Buffer[] | null; delivered: string[] }> = [
      { what: 'drops the third data record', rewrite: (f, nth) => (nth === 2 ? null : f.raw), delivered: ['m0', 'm1'] },
      { what: 'swaps the third and fourth data records', rewrite: (f, nth) => (nth === 2 ? [] : nth === 3 ? [f.raw, held!] : f.raw), delivered: ['m0', 'm1'] },
      { what: 'repeats the third data record', rewrite: (f, nth) => (nth === 2 ? [f.raw, f.raw] : f.raw), delivered: ['m0', 'm1', 'm2'] },
    ];
    /** The record the swap holds back. */
    let held: Buffer | undefined;

    for (const t of tampering) {
      it(`a proxy that ${t.what}: ERR_QT_AUTHENTICATION_FAILED at the receiver, nothing after the gap delivered; the sender hears of it`, async () => {
        held = undefined;
        let serverView: { got: string[]; error?: unknown } | undefined;
        const listener = await res.listen({}, (server) => {
          const view: { got: string[]; error?: unknown } = { got: [] };
          serverView = view;
          void (async () => {
            try {
              for await (const m of server.messages()) view.got.push(m.toString());
            } catch (err) {
              view.error = err;
            }
          })();
        });
        let nth = -1; // data records from the client, counted from 0
        const proxy = await res.proxy(
          startFrameRewriteProxy({
            targetPort: listener.address().port,
            clientToServer: (f, index) => {
              if (f.type !== RECORD_TYPE || index < 2) return f.raw; // ClientHello, then the client's Finished
              nth++;
              if (nth === 2) held = f.raw;
              return t.rewrite(f, nth);
            },
          }),
        );
        const client = await res.dial(proxy.port);
        const clientErrors: unknown[] = [];
        client.on('error', (e: unknown) => clientErrors.push(e));
        // One record each; sent at once (the client may learn of the failure before the last is written).
        for (let i = 0; i < 5; i++) client.send(Buffer.from(`m${i}`)).catch(() => undefined);
        await until(() => serverView?.error !== undefined, 5000, 'the server to refuse the stream');
        expect(codeOf(serverView!.error)).to.equal(ErrorCode.AUTHENTICATION_FAILED);
        expect(serverView!.got).to.deep.equal(t.delivered);
        // The server's bad_record alert (a record) reaches the client: our record did not authenticate.
        await until(() => client.destroyed, 5000, 'the client tunnel to close');
        expect(clientErrors.map(codeOf)).to.deep.equal([ErrorCode.AUTHENTICATION_FAILED]);
        expect(client.info().closeState).to.equal('failed');
      });
    }
  });
});
