/**
 * TunnelMetrics: counter values after real tunnels over loopback (one metrics instance per end, so
 * the two ends can be compared), the handshake histogram, user registries, labels and prefixes.
 */
import { expect } from 'chai';
import { register as globalRegistry, Registry, Counter } from 'prom-client';
import { crypto, ErrorCode, QuantumTunnelError, TicketManager, TunnelMetrics, type Tunnel } from '../../lib/index.js';
import { MessageType } from '../../lib/protocol/constants.js';
import { echo, forgedRecord, nextTunnel, rawClientHandshake, rawClientHandshakeV2, readExactly, rejectsWithCode, Resources, roundTrip, sealTexts, until, within } from '../helpers/tunnel.js';

/** The value of an unlabelled (or single-series) sample `name` in the registry's text. */
async function sample(registry: Registry, name: string): Promise<number> {
  const text = await registry.metrics();
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
  if (!m) throw new Error(`no sample ${name} in:\n${text}`);
  return Number(m[1]);
}

describe('ops: TunnelMetrics over real tunnels', function () {
  this.timeout(30_000);
  const res = new Resources();
  afterEach(() => res.cleanup());

  it('counts sessions, plaintext bytes and records the same way on both ends', async () => {
    const server = new TunnelMetrics();
    const client = new TunnelMetrics();
    const listener = await res.listen({ observer: server }, echo);
    const t = await res.dial(listener, { observer: client });
    expect((await roundTrip(t, Buffer.alloc(1000, 1))).length).to.equal(1000);
    expect((await roundTrip(t, Buffer.alloc(5000, 2))).length).to.equal(5000);
    await until(() => server.snapshot().bytesSent === 6000, 5000, 'server echo counted');
    expect(server.snapshot().sessionsActive).to.equal(1);
    expect(client.snapshot().sessionsActive).to.equal(1);
    expect(await sample(server.registry, 'quantum_vpn_sessions_active')).to.equal(1);

    await within(t.close(), 5000, 'client close');
    await until(() => server.snapshot().sessionsActive === 0 && client.snapshot().sessionsActive === 0, 5000, 'both sessions closed');

    for (const m of [server, client]) {
      const r = m.registry;
      expect(await sample(r, 'quantum_vpn_sessions_total')).to.equal(1);
      expect(await sample(r, 'quantum_vpn_sessions_active')).to.equal(0);
      expect(await sample(r, 'quantum_vpn_sessions_failed_total')).to.equal(0);
      // Plaintext both ways: 6000 out and 6000 back through the echo.
      expect(await sample(r, 'quantum_vpn_bytes_sent_total')).to.equal(6000);
      expect(await sample(r, 'quantum_vpn_bytes_received_total')).to.equal(6000);
      expect(await sample(r, 'quantum_vpn_auth_failures_total')).to.equal(0);
      expect(await sample(r, 'quantum_vpn_replay_attacks_blocked_total')).to.equal(0);
    }
    // What one end sent is what the other received, records included.
    const c = client.snapshot();
    const s = server.snapshot();
    expect(c.bytesSent).to.equal(s.bytesReceived);
    expect(c.packetsSent).to.equal(s.packetsReceived);
    expect(s.packetsSent).to.equal(c.packetsReceived);
    expect(c.packetsSent).to.be.greaterThanOrEqual(2);
    expect(await sample(server.registry, 'quantum_vpn_packets_received_total')).to.equal(s.packetsReceived);
    expect(s.connectionsAccepted).to.equal(1);
    expect(c.connectionsAccepted).to.equal(0);
  });

  it('counts rekeys on activation: initiated on the client only, completed on both ends', async () => {
    const server = new TunnelMetrics();
    const client = new TunnelMetrics();
    const listener = await res.listen({ observer: server, rekeyMinIntervalMs: 0 }, echo);
    const t = await res.dial(listener, { observer: client });
    await within(t.rekey(), 10_000, 'rekey');
    await within(t.rekey(), 10_000, 'second rekey');
    await roundTrip(t, Buffer.from('after rekeys'));
    expect(await sample(client.registry, 'quantum_vpn_rekeys_initiated_total')).to.equal(2);
    expect(await sample(client.registry, 'quantum_vpn_rekeys_completed_total')).to.equal(2);
    expect(await sample(client.registry, 'quantum_vpn_rekeys_failed_total')).to.equal(0);
    expect(await sample(server.registry, 'quantum_vpn_rekeys_initiated_total')).to.equal(0);
    expect(await sample(server.registry, 'quantum_vpn_rekeys_completed_total')).to.equal(2);
    expect(client.snapshot().rekeysCompleted).to.equal(2);
  });

  it('a rekey cut short by the tunnel closing counts as failed, not completed', async () => {
    const client = new TunnelMetrics();
    // A server that completes the handshake and then ignores everything (never answers the rekey).
    const listener = await res.listen({}, () => undefined);
    const t = await res.dial(listener, { observer: client });
    const rekey = t.rekey();
    rekey.catch(() => undefined);
    t.destroy();
    await rejectsWithCode(rekey, [ErrorCode.TUNNEL_CLOSED, ErrorCode.CONNECTION_FAILED]);
    expect(client.snapshot().rekeysInitiated).to.equal(1);
    expect(client.snapshot().rekeysCompleted).to.equal(0);
    expect(await sample(client.registry, 'quantum_vpn_rekeys_failed_total')).to.equal(1);
  });

  it('counts failed handshakes, and a wrong v1 resumption PSK as an authentication failure (legacy)', async () => {
    const server = new TunnelMetrics();
    const tickets = new TicketManager();
    const listener = await res.listen({ observer: server, tickets, legacyV1: true }, (t) => {
      if (!t.info().resumed) t.send(t.issueTicket()).catch(() => undefined);
    });
    // A connection that goes away before its handshake.
    const raw = await res.connect(listener.address().port);
    raw.destroy();
    await until(() => server.snapshot().sessionsFailed === 1, 5000, 'the aborted handshake counted');
    expect(server.snapshot().authFailures).to.equal(0);

    const first = await res.dial(listener, { legacyV1: true });
    const ticket = await readExactly(first, 71, 5000);
    const wrong = { ticket, psk: crypto.randomSecret(32) };
    const client = new TunnelMetrics();
    await rejectsWithCode(res.dial(listener, { resumption: wrong, observer: client, legacyV1: true }), [ErrorCode.HANDSHAKE_FAILED, ErrorCode.PEER_ALERT, ErrorCode.MESSAGE_TOO_LARGE]);
    wrong.psk.destroy();
    await until(() => server.snapshot().sessionsFailed === 2, 5000, 'the wrong-PSK handshake counted');
    expect(await sample(server.registry, 'quantum_vpn_sessions_failed_total')).to.equal(2);
    expect(await sample(server.registry, 'quantum_vpn_auth_failures_total')).to.equal(1);
    expect(await sample(server.registry, 'quantum_vpn_sessions_total')).to.equal(1);
    expect(client.snapshot().sessionsFailed).to.equal(1);
    expect(client.snapshot().sessionsTotal).to.equal(0);
  });

  it('counts a wrong external PSK as an authentication failure on both ends (v2)', async () => {
    const server = new TunnelMetrics();
    const client = new TunnelMetrics();
    const listener = await res.listen({ observer: server, psk: { identity: 'svc', secret: crypto.importSecret(Buffer.alloc(32, 1)) } }, echo);
    await rejectsWithCode(res.dial(listener, { observer: client, psk: { identity: 'svc', secret: crypto.importSecret(Buffer.alloc(32, 2)) } }), ErrorCode.PSK_MISMATCH);
    await until(() => server.snapshot().sessionsFailed === 1, 5000, 'the server counted it');
    expect(await sample(server.registry, 'quantum_vpn_auth_failures_total')).to.equal(1);
    expect(client.snapshot().authFailures).to.equal(1);
    expect(client.snapshot().sessionsFailed).to.equal(1);
  });

  it('counts a forged v2 record as an authentication and decrypt failure', async () => {
    const server = new TunnelMetrics();
    const listener = await res.listen({ observer: server }, echo);
    const raw = await rawClientHandshakeV2(res, listener.address().port);
    await until(() => server.snapshot().sessionsActive === 1, 5000, 'server tunnel open');
    raw.peer.write(sealTexts(raw.session, 'hello'));
    raw.peer.write(forgedRecord(raw.session));
    await until(() => server.snapshot().authFailures === 1, 5000, 'the forgery counted');
    await until(() => server.snapshot().sessionsActive === 0, 5000, 'the tunnel closed');
    expect(await sample(server.registry, 'quantum_vpn_auth_failures_total')).to.equal(1);
    expect(await sample(server.registry, 'quantum_vpn_decrypt_errors_total')).to.equal(1);
    expect(await sample(server.registry, 'quantum_vpn_protocol_errors_total')).to.equal(0);
    expect(await sample(server.registry, 'quantum_vpn_bytes_received_total')).to.equal(5);
    raw.session.destroy();
  });

  it('counts a forged record as an authentication and decrypt failure (v1, legacy)', async () => {
    const server = new TunnelMetrics();
    const listener = await res.listen({ observer: server, legacyV1: true }, echo);
    const raw = await rawClientHandshake(res, listener.address().port);
    await until(() => server.snapshot().sessionsActive === 1, 5000, 'server tunnel open');
    raw.peer.write(raw.session.sealRecords(MessageType.DATA, [Buffer.from('hello')]));
    const forged = Buffer.from(raw.session.sealRecords(MessageType.DATA, [Buffer.from('forged')]));
    forged[forged.length - 1]! ^= 0x01;
    raw.peer.write(forged);
    await until(() => server.snapshot().authFailures === 1, 5000, 'the forgery counted');
    await until(() => server.snapshot().sessionsActive === 0, 5000, 'the tunnel closed');
    expect(await sample(server.registry, 'quantum_vpn_auth_failures_total')).to.equal(1);
    expect(await sample(server.registry, 'quantum_vpn_decrypt_errors_total')).to.equal(1);
    expect(await sample(server.registry, 'quantum_vpn_protocol_errors_total')).to.equal(0);
    expect(await sample(server.registry, 'quantum_vpn_bytes_received_total')).to.equal(5);
    raw.session.destroy();
  });

  it('counts a replayed v1 record as blocked (it ends the tunnel: on TCP a replay is an attack; legacy)', async () => {
    const server = new TunnelMetrics();
    const listener = await res.listen({ observer: server, legacyV1: true }, echo);
    const raw = await rawClientHandshake(res, listener.address().port);
    await until(() => server.snapshot().sessionsActive === 1, 5000, 'server tunnel open');
    const record = raw.session.sealRecords(MessageType.DATA, [Buffer.from('hello')]);
    raw.peer.write(record);
    raw.peer.write(record);
    await until(() => server.snapshot().replayAttacksBlocked === 1, 5000, 'the replay counted');
    await until(() => server.snapshot().sessionsActive === 0, 5000, 'the tunnel closed');
    expect(await sample(server.registry, 'quantum_vpn_replay_attacks_blocked_total')).to.equal(1);
    expect(await sample(server.registry, 'quantum_vpn_auth_failures_total')).to.equal(0);
    expect(await sample(server.registry, 'quantum_vpn_bytes_received_total')).to.equal(5);
    raw.session.destroy();
  });

  it('counts a protocol error that ends a tunnel', async () => {
    const server = new TunnelMetrics();
    const listener = await res.listen({ observer: server }, echo);
    const raw = await rawClientHandshakeV2(res, listener.address().port);
    await until(() => server.snapshot().sessionsActive === 1, 5000, 'server tunnel open');
    raw.peer.write(Buffer.from([0x7e, 0, 0, 0, 0])); // an unknown message type
    await until(() => server.snapshot().protocolErrors === 1, 5000, 'the protocol error counted');
    expect(await sample(server.registry, 'quantum_vpn_protocol_errors_total')).to.equal(1);
    raw.session.destroy();
  });
});

describe('ops: TunnelMetrics exposition', function () {
  this.timeout(30_000);
  const res = new Resources();
  afterEach(() => res.cleanup());

  it('handshake_duration_seconds is a histogram in seconds with cumulative buckets', async () => {
    const server = new TunnelMetrics();
    const listener = await res.listen({ observer: server }, echo);
    const tunnels: Tunnel[] = [];
    for (let i = 0; i < 3; i++) {
      const served = nextTunnel(listener);
      tunnels.push(await res.dial(listener));
      await served;
    }
    const text = await server.registry.metrics();
    expect(text).to.include('# TYPE quantum_vpn_handshake_duration_seconds histogram');
    expect(text).to.match(/^quantum_vpn_handshake_duration_seconds_count 3$/m);
    expect(text).to.match(/^quantum_vpn_handshake_duration_seconds_bucket\{le="\+Inf"\} 3$/m);
    const buckets = [...text.matchAll(/^quantum_vpn_handshake_duration_seconds_bucket\{le="([^"]+)"\} (\d+)$/gm)].map((m) => [m[1]!, Number(m[2])] as const);
    expect(buckets.map(([le]) => le)).to.include.members(['0.0005', '0.001', '0.01', '1', '10', '+Inf']);
    for (let i = 1; i < buckets.length; i++) expect(buckets[i]![1]).to.be.at.least(buckets[i - 1]![1]);
    const sum = Number(/^quantum_vpn_handshake_duration_seconds_sum (\S+)$/m.exec(text)![1]);
    // Seconds, not milliseconds: three loopback handshakes take well under a minute together.
    expect(sum).to.be.greaterThan(0).and.lessThan(60);
  });

  it('every required metric is present with HELP and TYPE, and nothing goes to the global registry', async () => {
    const before = globalRegistry.getMetricsAsArray().length;
    const m = new TunnelMetrics();
    expect(globalRegistry.getMetricsAsArray().length).to.equal(before);
    expect(globalRegistry.getSingleMetric('quantum_vpn_sessions_total')).to.equal(undefined);
    const text = await m.registry.metrics();
    const required: Array<[string, string]> = [
      ['sessions_active', 'gauge'],
      ['sessions_total', 'counter'],
      ['sessions_failed_total', 'counter'],
      ['bytes_sent_total', 'counter'],
      ['bytes_received_total', 'counter'],
      ['packets_sent_total', 'counter'],
      ['packets_received_total', 'counter'],
      ['replay_attacks_blocked_total', 'counter'],
      ['auth_failures_total', 'counter'],
      ['rekeys_initiated_total', 'counter'],
      ['rekeys_completed_total', 'counter'],
      ['rekeys_failed_total', 'counter'],
      ['encrypt_errors_total', 'counter'],
      ['decrypt_errors_total', 'counter'],
      ['protocol_errors_total', 'counter'],
      ['rate_limit_connections_total', 'counter'],
      ['rate_limit_handshakes_total', 'counter'],
      ['uptime_seconds', 'gauge'],
      ['handshake_duration_seconds', 'histogram'],
      ['fips_mode', 'gauge'],
    ];
    for (const [name, type] of required) {
      expect(text, name).to.include(`# HELP quantum_vpn_${name} `);
      expect(text, name).to.include(`# TYPE quantum_vpn_${name} ${type}`);
    }
    expect(await sample(m.registry, 'quantum_vpn_uptime_seconds')).to.be.at.least(0);
    expect(await sample(m.registry, 'quantum_vpn_fips_mode')).to.equal(crypto.info().fips ? 1 : 0);
    expect(await sample(new TunnelMetrics({ fipsMode: true }).registry, 'quantum_vpn_fips_mode')).to.equal(1);
    expect(await sample(new TunnelMetrics({ fipsMode: () => false }).registry, 'quantum_vpn_fips_mode')).to.equal(0);
    const throwing = new TunnelMetrics({
      fipsMode: () => {
        throw new Error('unknown');
      },
    });
    expect(await sample(throwing.registry, 'quantum_vpn_fips_mode')).to.equal(0);
  });

  it('registers in a user registry with a custom prefix and constant labels, beside the user metrics', async () => {
    const registry = new Registry();
    const mine = new Counter({ name: 'myapp_requests_total', help: 'app requests', registers: [registry] });
    mine.inc(3);
    const m = new TunnelMetrics({ registry, prefix: 'myapp_qt_', labels: { service: 'vpn' }, fipsMode: () => true });
    expect(m.registry).to.equal(registry);
    const listener = await res.listen({ observer: m }, echo);
    const t = await res.dial(listener);
    await roundTrip(t, Buffer.from('labelled'));
    await until(() => m.snapshot().bytesSent === 8, 5000, 'echo counted');
    const text = await registry.metrics();
    expect(text).to.match(/^myapp_requests_total 3$/m);
    expect(text).to.match(/^myapp_qt_sessions_total\{service="vpn"\} 1$/m);
    expect(text).to.match(/^myapp_qt_bytes_sent_total\{service="vpn"\} 8$/m);
    expect(text).to.match(/^myapp_qt_rate_limit_handshakes_total\{service="vpn"\} 0$/m);
    expect(text).to.match(/^myapp_qt_fips_mode\{service="vpn"\} 1$/m);
    expect(text).to.match(/^myapp_qt_handshake_duration_seconds_count\{service="vpn"\} 1$/m);
    expect(text).to.not.include('quantum_vpn_');
  });

  it('a second instance with the same prefix on one registry is refused and leaves the registry as it was', () => {
    const registry = new Registry();
    new TunnelMetrics({ registry });
    const count = registry.getMetricsAsArray().length;
    expect(() => new TunnelMetrics({ registry })).to.throw(QuantumTunnelError).with.property('code', ErrorCode.INVALID_ARGUMENT);
    expect(registry.getMetricsAsArray().length).to.equal(count);
    // Another prefix is fine.
    new TunnelMetrics({ registry, prefix: 'other_' });
    expect(registry.getMetricsAsArray().length).to.equal(2 * count);
  });

  it('the global default registry is used only when passed explicitly', async () => {
    const m = new TunnelMetrics({ registry: globalRegistry, prefix: 'qt_global_test_' });
    try {
      expect(globalRegistry.getSingleMetric('qt_global_test_sessions_total')).to.not.equal(undefined);
    } finally {
      for (const metric of m.registry.getMetricsAsArray()) {
        const name = (metric as unknown as { name: string }).name;
        if (name.startsWith('qt_global_test_')) globalRegistry.removeSingleMetric(name);
      }
    }
    expect(globalRegistry.getSingleMetric('qt_global_test_sessions_total')).to.equal(undefined);
  });

  it('rejects invalid prefixes, labels and buckets', () => {
    const bad = (o: ConstructorParameters<typeof TunnelMetrics>[0]) => expect(() => new TunnelMetrics(o)).to.throw(QuantumTunnelError).with.property('code', ErrorCode.INVALID_ARGUMENT);
    bad({ prefix: 'bad-prefix' });
    bad({ labels: { 'bad-label': 'x' } });
    bad({ labels: { le: 'x' } });
    bad({ handshakeBuckets: [] });
    bad({ handshakeBuckets: [-1] });
  });
});
