/**
 * Issue 8 item 5: secrets out of reach. No production entry point exports raw secrets; a tunnel's
 * session is private; resumption state is made only from a ticket; a single-use ticket is used up
 * only after the client proved its secret.
 */
import { expect } from 'chai';
import * as qt from '../../lib/index.js';
import { ClientTicketStore, ErrorCode, type Listener, TicketIssuer, TicketManager, type Tunnel } from '../../lib/index.js';
import { runChild } from '../helpers/child.js';
import { assertEchoes, echo, rawClientHandshakeV2, readExactly, rejectsWithCode, Resources, until, V1_WIRE, within } from '../helpers/tunnel.js';

const V1 = V1_WIRE.options;

describe('secrets out of reach (issue 8)', function () {
  this.timeout(30_000);
  const res = new Resources();
  afterEach(() => res.cleanup());

  it('the package exports no raw-secret hooks: crypto.testing is gone', () => {
    expect((qt.crypto as Record<string, unknown>).testing).to.equal(undefined);
    expect(Object.keys(qt)).to.not.include('testing');
    for (const name of Object.keys(qt.crypto)) expect(name.toLowerCase()).to.not.include('export');
  });

  it('quantum-tunnel/testing refuses to load without QUANTUM_TUNNEL_TESTING=1, and the addon refuses raw export until it loaded', () => {
    const env = { QUANTUM_TUNNEL_TESTING: '' };
    const entry = new URL('../../lib/testing.ts', import.meta.url).href;
    const load = runChild(`await import(${JSON.stringify(entry)}); return 'loaded';`, env);
    expect(load.json).to.include({ ok: false, code: ErrorCode.INVALID_STATE });
    const native = new URL('../../lib/native.ts', import.meta.url).href;
    const direct = runChild(
      `const { native } = await import(${JSON.stringify(native)}); const s = qt.crypto.randomSecret(32);
       try { native.exportSecretForTesting(s); return 'exported'; } catch (e) { return e.code; }`,
      env,
    );
    expect(direct.json).to.deep.include({ ok: true, value: ErrorCode.INVALID_STATE });
  });

  async function pair(listener: Listener, options = {}): Promise<{ client: Tunnel; server: Tunnel }> {
    const serverSide = new Promise<Tunnel>((resolve) => listener.once('tunnel', resolve));
    const client = await res.dial(listener, options);
    return { client, server: res.tunnel(await serverSide) };
  }

  it("a tunnel's session, keys and master secret are not properties anyone can read", async () => {
    const listener = await res.listen({}, echo);
    const { client } = await pair(listener);
    const t = client as unknown as Record<string, unknown>;
    for (const name of ['session', 'masterSecret', 'master', 'keys', 'tickets', 'socket']) expect(t[name], name).to.equal(undefined);
    const own = [...Object.getOwnPropertyNames(client), ...Object.getOwnPropertySymbols(client).map(String)];
    expect(own.join(' ')).to.not.match(/session|master|secret|key/i);
    await assertEchoes(client);
  });

  it('v1 (legacy): resumptionState() takes only a ticket-sized value, and its PSK is an opaque handle', async () => {
    const listener = await res.listen({ tickets: new TicketManager(), ...V1 }, echo);
    const { client } = await pair(listener, V1);
    for (const bad of [Buffer.alloc(0), Buffer.alloc(16), Buffer.alloc(70), Buffer.alloc(72), 'ticket', undefined]) {
      expect(() => client.resumptionState(bad as Uint8Array)).to.throw(qt.QuantumTunnelError).with.property('code', ErrorCode.INVALID_ARGUMENT);
    }
    const state = client.resumptionState(Buffer.alloc(71));
    expect(Object.keys(state.psk)).to.deep.equal([]);
    expect(JSON.stringify(state.psk)).to.not.match(/[0-9a-f]{64}/);
    state.psk.destroy();
  });

  it('v1 (legacy): a single-use ticket presented with a wrong PSK is not used up: the honest client still resumes, once', async () => {
    const tickets = new TicketManager({ singleUse: true });
    const listener = await res.listen({ tickets, ...V1 }, (t) => {
      if (t.info().resumed) t.pipe(t);
      else t.send(t.issueTicket()).catch(() => undefined);
    });
    const first = await res.dial(listener, V1);
    const ticket = await readExactly(first, 71, 5000);
    const state = first.resumptionState(ticket);
    await within(first.close(), 5000, 'first close');
    // An attacker replays the ticket without the secret: the handshake fails...
    await rejectsWithCode(res.dial(listener, { resumption: { ticket, psk: qt.crypto.randomSecret(32) }, ...V1 }), [
      ErrorCode.HANDSHAKE_FAILED,
      ErrorCode.PEER_ALERT,
      ErrorCode.MESSAGE_TOO_LARGE,
      ErrorCode.CONNECTION_FAILED,
    ]);
    // ...and the ticket is still good for its owner.
    const resumed = await res.dial(listener, { resumption: state, ...V1 });
    expect(resumed.info().resumed).to.equal(true);
    await assertEchoes(resumed, 'resumed');
    // Used up now: the next presentation falls back to a full handshake.
    const again = await res.dial(listener, { resumption: state, ...V1 });
    expect(again.info().resumed).to.equal(false);
    state.psk.destroy();
  });

  it('v2: a single-use ticket presented with a wrong PSK (its binder fails) is not used up: the honest client still resumes, once', async () => {
    const listener = await res.listen({ tickets: new TicketIssuer({ serverIdentity: Buffer.from('secrets test') }) }, echo);
    const port = listener.address().port;
    const store = new ClientTicketStore();
    const first = await res.dial(listener, { ticketStore: store });
    await until(() => store.size === 1, 5000, 'the ticket from the server');
    await within(first.close(), 5000, 'first close');
    // The ticket travels in the clear in a ClientHello; its PSK never leaves the client.
    const scope = `127.0.0.1:${port}`; // how dial() keys its tickets: the server's address
    const held = store.take(scope)!;
    expect(held, 'the ticket is kept under the server address').to.not.equal(undefined);
    const replay = { ticket: Buffer.from(held.ticket), psk: held.psk.clone(), obfuscatedAge: store.obfuscatedAge(held) };
    store.add(scope, held);
    // An attacker presents the ticket without its secret: the binder fails, the handshake fails...
    const wrong = qt.crypto.randomSecret(48);
    await rejectsWithCode(rawClientHandshakeV2(res, port, { resumption: { ...replay, psk: wrong } }), ErrorCode.PSK_MISMATCH);
    wrong.destroy();
    // ...and the ticket is still good for its owner.
    const resumed = await res.dial(listener, { ticketStore: store });
    expect(resumed.info().resumed).to.equal(true);
    await assertEchoes(resumed, 'resumed');
    // Used up now: presented again, even with its PSK, it gets a full handshake.
    const again = await rawClientHandshakeV2(res, port, { resumption: replay });
    expect(again.session.resumed).to.equal(false);
    again.session.destroy();
    replay.psk.destroy();
    store.destroy();
  });
});
