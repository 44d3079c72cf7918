/**
 * `quantum-vpn demo` end to end: real processes over 127.0.0.1, real HTTP requests to the
 * observability server, stdin piped into the interactive client, signals to the server.
 */
import { expect } from 'chai';
import { crypto, fips } from '../../lib/index.js';
import { httpGet, killAll, metricValue, runCli, startCli, type CliProcess } from './helpers.js';

const chachaAvailable = crypto.info().chacha20.available;
/** The CLI runs in the same mode as this test process (the suite also runs in CI's FIPS job). */
const fipsMode = fips.status().mode === 'fips';

/** A demo server on a free port, observability on another free port (or none). */
async function server(extra: string[] = [], obs = true): Promise<{ proc: CliProcess; port: number; obsPort?: number }> {
  const proc = startCli(['demo', '--mode', 'server', '--addr', '127.0.0.1:0', '--obs-addr', obs ? '127.0.0.1:0' : '', ...extra]);
  const port = await proc.listeningPort();
  const obsPort = obs ? await proc.observabilityPort() : undefined;
  return { proc, port, obsPort };
}

describe('cli: demo', function () {
  this.timeout(120_000);
  afterEach(killAll);

  it('echoes a message: the client prints "Echo: <msg>" and exits 0', async () => {
    const { port } = await server([], false);
    const r = await runCli(['demo', '--mode', 'client', '--addr', `127.0.0.1:${port}`, '--message', 'hello tunnel']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.equal('Echo: hello tunnel\n');
    const def = await runCli(['demo', '-mode=client', `-addr=127.0.0.1:${port}`]); // Go-style single dashes
    expect(def.stdout).to.equal('Echo: Hello from quantum-vpn!\n');
  });

  it('serves /metrics, /health, /healthz and /readyz; sessions_total counts the echo sessions', async () => {
    const { port, obsPort } = await server();
    const before = await httpGet(obsPort!, '/metrics');
    expect(before.status).to.equal(200);
    expect(before.contentType).to.match(/^text\/plain/);
    expect(metricValue(before.body, 'quantum_vpn_sessions_total')).to.equal(0);

    const r = await runCli(['demo', '--mode', 'client', '--addr', `127.0.0.1:${port}`, '--message', 'count me']);
    expect(r.code, r.stderr).to.equal(0);

    const after = await httpGet(obsPort!, '/metrics');
    expect(metricValue(after.body, 'quantum_vpn_sessions_total')).to.be.at.least(1);
    expect(after.body).to.match(/^quantum_vpn_sessions_total\{service="quantum-vpn"\} 1$/m);
    expect(metricValue(after.body, 'quantum_vpn_bytes_received_total')).to.equal('count me'.length);
    expect(metricValue(after.body, 'quantum_vpn_bytes_sent_total')).to.equal('Echo: count me'.length);
    // The process and build metrics a server is expected to export.
    expect(metricValue(after.body, 'process_resident_memory_bytes')).to.be.greaterThan(0);
    expect(after.body).to.match(/^nodejs_eventloop_lag_seconds\{service="quantum-vpn"\} /m);
    expect(after.body).to.match(/^quantum_vpn_build_info\{version="[^"]+",openssl="OpenSSL 3\.[5-9][^"]*",mode="(standard|fips)",chacha20="(true|false)",node="v\d+[^"]*",service="quantum-vpn"\} 1$/m);

    const health = await httpGet(obsPort!, '/health');
    expect(health.status).to.equal(200);
    const h = JSON.parse(health.body) as { status: string; version: string; metrics: { sessions_total: number } };
    expect(h.status).to.equal('healthy');
    expect(h.metrics.sessions_total).to.equal(1);
    expect(JSON.parse((await httpGet(obsPort!, '/healthz')).body)).to.deep.equal({ status: 'alive' });
    const ready = await httpGet(obsPort!, '/readyz');
    expect(ready.status).to.equal(200);
    expect(JSON.parse(ready.body).ready).to.equal(true);
  });

  it('interactive mode (--message -) sends one message per stdin line and exits 0 at EOF', async () => {
    const { port } = await server([], false);
    const r = await runCli(['demo', '--mode', 'client', '--addr', `127.0.0.1:${port}`, '--message', '-'], { input: 'first\nsecond line\n\nthird\r\n' });
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.equal('Echo: first\nEcho: second line\nEcho: third\n');
  });

  it('--verbose shows the protocol, handshake steps, suite, session ID, handshake time and statistics', async () => {
    const { proc, port } = await server(['--verbose'], false);
    await proc.waitFor(/^Protocols accepted: v2 \(groups .+\)$/m);
    const r = await runCli(['demo', '--mode', 'client', '--addr', `127.0.0.1:${port}`, '--verbose', '--message', 'hi']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/^Security: protocol v2: hybrid key exchange .*nobody is authenticated/m);
    expect(r.stdout).to.match(/^Offering protocol v2: key exchange groups /m);
    expect(r.stdout).to.match(/^  2\. ClientHello sent: key share for .+ \([\d,]+ bytes\)/m);
    expect(r.stdout).to.match(/^  3\. ServerHello received: .* suite AES-256-GCM$/m);
    // What ran: protocol v2, the group (P-384 + ML-KEM-1024 in FIPS mode) and the suite.
    const group = fipsMode ? 'P-384 \\+ ML-KEM-1024' : 'X25519 \\+ ML-KEM-1024';
    expect(r.stdout).to.match(new RegExp(`^Tunnel: protocol v2, ${group}, AES-256-GCM$`, 'm'));
    expect(r.stdout).to.match(/^Cipher suite: AES-256-GCM$/m);
    expect(r.stdout).to.match(/^Peer authenticated: no \(no pre-shared key or pinned key\)$/m);
    const sid = r.stdout.match(/^Session ID: ([0-9a-f]{16})\.\.\. \(first 8 bytes\)$/m);
    expect(sid, r.stdout).to.not.equal(null);
    expect(r.stdout).to.match(/^Handshake time: \d+\.\d\d ms$/m);
    expect(r.stdout).to.match(/^Sent: hi$/m);
    expect(r.stdout).to.match(/^Received: Echo: hi$/m);
    // v2 counts its close_notify, an encrypted record, among the records.
    expect(r.stdout).to.match(/^Statistics: sent \d+ records? \(2 bytes\), received \d+ records? \(8 bytes\)/m);
    // The server saw the same session.
    await proc.waitFor(new RegExp(`tunnel established: protocol v2, ${group}, AES-256-GCM, session ${sid![1]}`));
    await proc.waitFor(/received 2 bytes: hi/);
  });

  it('--legacy-v1: a v1 client talks to a --legacy-v1 server, which still answers v2 clients; a v2-only server refuses v1', async () => {
    const { proc, port } = await server(['--verbose', '--legacy-v1'], false);
    await proc.waitFor(/^Protocols accepted: v2 \(groups .+\), and v1 \(--legacy-v1\)$/m);
    const v1 = await runCli(['demo', '--mode', 'client', '--addr', `127.0.0.1:${port}`, '--legacy-v1', '--verbose', '--message', 'hi']);
    expect(v1.code, v1.stderr).to.equal(0);
    expect(v1.stdout).to.match(/^Security: protocol v1 \(legacy\): CH-KEM hybrid key exchange \(X25519 \+ ML-KEM-1024/m);
    expect(v1.stdout).to.match(/^Offering protocol v1 only \(--legacy-v1\)/m);
    expect(v1.stdout).to.match(/^  2\. ClientHello sent: ephemeral CH-KEM public key \(X25519 32 \+ ML-KEM-1024 1,568 bytes\)/m);
    expect(v1.stdout).to.match(/^Tunnel: protocol v1 \(legacy\), CH-KEM X25519 \+ ML-KEM-1024, AES-256-GCM$/m);
    expect(v1.stdout).to.match(/^Peer authenticated: no \(protocol v1 cannot authenticate\)$/m);
    expect(v1.stdout).to.match(/^Statistics: sent 1 record \(2 bytes\), received 1 record \(8 bytes\)/m);
    await proc.waitFor(/tunnel established: protocol v1 \(legacy\), CH-KEM X25519 \+ ML-KEM-1024, AES-256-GCM, session /);
    const v2 = await runCli(['demo', '--mode', 'client', '--addr', `127.0.0.1:${port}`, '--message', 'v2 too']);
    expect(v2.code, v2.stderr).to.equal(0);
    expect(v2.stdout).to.equal('Echo: v2 too\n');
    await proc.waitFor(/tunnel established: protocol v2, /);

    const plain = await server([], false);
    const refused = await runCli(['demo', '--mode', 'client', '--addr', `127.0.0.1:${plain.port}`, '--legacy-v1']);
    expect(refused.code).to.equal(1);
    expect(refused.stderr).to.match(/^quantum-vpn: cannot connect to 127\.0\.0\.1:\d+: /m);
  });

  it('--groups: the client offers its list, the server accepts only its own', async () => {
    const { proc, port } = await server(['--verbose', '--groups', 'p384-mlkem1024'], false);
    await proc.waitFor(/^Protocols accepted: v2 \(groups P-384 \+ ML-KEM-1024\)$/m);
    const r = await runCli(['demo', '--mode', 'client', '--addr', `127.0.0.1:${port}`, '--groups', 'p384-mlkem1024', '--verbose', '--message', 'p384']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/^Tunnel: protocol v2, P-384 \+ ML-KEM-1024, AES-256-GCM$/m);
    await proc.waitFor(/tunnel established: protocol v2, P-384 \+ ML-KEM-1024, AES-256-GCM/);
  });

  it('--cipher chacha20 really negotiates ChaCha20-Poly1305', async function () {
    if (!chachaAvailable) this.skip();
    const { proc, port } = await server(['--verbose'], false);
    const r = await runCli(['demo', '--mode', 'client', '--addr', `127.0.0.1:${port}`, '--verbose', '--cipher', 'chacha20', '--message', 'x']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/^Connecting to 127\.0\.0\.1:\d+, offering ChaCha20-Poly1305$/m);
    expect(r.stdout).to.match(/^Cipher suite: ChaCha20-Poly1305$/m);
    await proc.waitFor(/tunnel established: protocol v2, .*, ChaCha20-Poly1305, session /);
    // A server limited to AES refuses a ChaCha-only client: the client exits 1.
    const aes = await server(['--cipher', 'aes-gcm'], false);
    const refused = await runCli(['demo', '--mode', 'client', '--addr', `127.0.0.1:${aes.port}`, '--cipher', 'chacha20']);
    expect(refused.code).to.equal(1);
    expect(refused.stderr).to.match(/^quantum-vpn: cannot connect to 127\.0\.0\.1:\d+: /m);
  });

  it('SIGTERM closes every tunnel with close_notify and exits 0; the interactive client sees the close', async () => {
    const { proc, port } = await server();
    const client = startCli(['demo', '--mode', 'client', '--addr', `127.0.0.1:${port}`, '--message', '-']);
    client.child.stdin!.write('before shutdown\n');
    await client.waitFor(/^Echo: before shutdown$/m);
    proc.kill('SIGTERM');
    expect(await proc.exit()).to.equal(0);
    expect(proc.stdout).to.match(/^SIGTERM received: closing 1 tunnel and shutting down$/m);
    expect(proc.stdout).to.match(/^server stopped$/m);
    // stdin is still open: the client ends because the server closed the tunnel, cleanly.
    expect(await client.exit()).to.equal(0);
    expect(client.stderr).to.match(/the server closed the connection/);
  });

  it('SIGINT also stops the server with exit code 0', async () => {
    const { proc } = await server([], false);
    proc.kill('SIGINT');
    expect(await proc.exit()).to.equal(0);
    expect(proc.stdout).to.match(/^SIGINT received/m);
  });

  it('--max-conns-per-ip refuses a second concurrent connection before any handshake', async () => {
    const { proc, port, obsPort } = await server(['--max-conns-per-ip', '1']);
    const first = startCli(['demo', '--mode', 'client', '--addr', `127.0.0.1:${port}`, '--message', '-']);
    first.child.stdin!.write('hold\n');
    await first.waitFor(/^Echo: hold$/m);
    const second = await runCli(['demo', '--mode', 'client', '--addr', `127.0.0.1:${port}`]);
    expect(second.code).to.equal(1);
    expect(second.stderr).to.match(/cannot connect to 127\.0\.0\.1:\d+/);
    await proc.waitFor(/WARN +connection rate limit exceeded .*component=rate_limit/, 20_000, 'stderr');
    const metrics = await httpGet(obsPort!, '/metrics');
    expect(metricValue(metrics.body, 'quantum_vpn_rate_limit_connections_total')).to.equal(1);
    first.child.stdin!.end();
    expect(await first.exit()).to.equal(0);
    // Once the first has gone, a new client is admitted.
    const third = await runCli(['demo', '--mode', 'client', '--addr', `127.0.0.1:${port}`, '--message', 'again']);
    expect(third.stdout).to.equal('Echo: again\n');
  });

  it('logs to stderr in JSON with --log-format json, with app=quantum-vpn', async () => {
    const { proc, port } = await server(['--log-level', 'info', '--log-format', 'json'], false);
    const r = await runCli(['demo', '--mode', 'client', '--addr', `127.0.0.1:${port}`, '--log-level', 'info', '--log-format', 'json']);
    expect(r.code).to.equal(0);
    expect(r.stdout).to.equal('Echo: Hello from quantum-vpn!\n');
    const clientLines = r.stderr.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(clientLines.find((l) => l.msg === 'handshake completed')).to.include({ app: 'quantum-vpn', role: 'client', level: 'info' });
    await proc.waitFor(/"msg":"session ended"/, 20_000, 'stderr');
    const serverLines = proc.stderr.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(serverLines.find((l) => l.msg === 'handshake completed')).to.include({ app: 'quantum-vpn', role: 'server' });
    // The default level (warn) keeps a normal run quiet.
    const quiet = await server([], false);
    const q = await runCli(['demo', '--mode', 'client', '--addr', `127.0.0.1:${quiet.port}`]);
    expect(q.stderr).to.equal('');
  });

  it('--tracing simple prints the handshake spans to stderr', async () => {
    const { proc, port } = await server(['--tracing', 'simple'], false);
    const r = await runCli(['demo', '--mode', 'client', '--addr', `127.0.0.1:${port}`, '--tracing', 'simple']);
    expect(r.code).to.equal(0);
    expect(r.stderr).to.match(/^span quantum\.handshake\.initiator [\d.]+ms status=OK kind=CLIENT /m);
    expect(r.stderr).to.match(/quantum\.suite="AES-256-GCM"/);
    await proc.waitFor(/^span quantum\.handshake\.responder [\d.]+ms status=OK kind=SERVER /m, 20_000, 'stderr');
  });

  it('--tracing otel starts the OpenTelemetry SDK (exporter from OTEL_* variables)', async () => {
    const env = { OTEL_TRACES_EXPORTER: 'console', OTEL_METRICS_EXPORTER: 'none', OTEL_LOGS_EXPORTER: 'none' };
    const proc = startCli(['demo', '--addr', '127.0.0.1:0', '--obs-addr', '', '--tracing', 'otel'], { env });
    const port = await proc.listeningPort(60_000);
    const r = await runCli(['demo', '--mode', 'client', '--addr', `127.0.0.1:${port}`, '--tracing', 'otel'], { env });
    expect(r.code, r.stderr).to.equal(0);
    // The console exporter prints each span on stdout after the reply.
    expect(r.stdout).to.match(/^Echo: Hello from quantum-vpn!$/m);
    expect(r.stdout).to.match(/name: 'quantum\.handshake\.initiator'/);
    expect(r.stdout).to.match(/'service\.name': 'quantum-vpn'/);
    proc.kill('SIGTERM');
    expect(await proc.exit()).to.equal(0);
    expect(proc.stdout).to.match(/name: 'quantum\.handshake\.responder'/);
  });

  it('fails clearly: nothing listening, address in use, message too long', async () => {
    const { port } = await server([], false);
    const inUse = await runCli(['demo', '--mode', 'server', '--addr', `127.0.0.1:${port}`, '--obs-addr', '']);
    expect(inUse.code).to.equal(1);
    expect(inUse.stderr).to.match(/^quantum-vpn: cannot listen on 127\.0\.0\.1:\d+ \(--addr\): address already in use \(ERR_QT_ADDRESS_IN_USE\)$/m);

    const refused = await runCli(['demo', '--mode', 'client', '--addr', '127.0.0.1:1']);
    expect(refused.code).to.equal(1);
    expect(refused.stderr).to.match(/^quantum-vpn: cannot connect to 127\.0\.0\.1:1: .*ECONNREFUSED/m);

    const long = await runCli(['demo', '--mode', 'client', '--addr', `127.0.0.1:${port}`, '--message', 'x'.repeat(70_000)]);
    expect(long.code).to.equal(1);
    expect(long.stderr).to.match(/message too long: 70000 bytes \(at most 65473/);
  });

  describe('--fips', () => {
    before(async function () {
      const probe = await runCli(['version', '--fips']);
      if (probe.code !== 0) this.skip(); // FIPS mode is not installed on this machine (quantum-vpn fips install)
    });

    it('runs both ends in FIPS mode with AES-256-GCM, and refuses ChaCha20', async () => {
      const { proc, port } = await server(['--fips', '--verbose'], false);
      await proc.waitFor(/^FIPS mode: on \(OpenSSL FIPS Provider/m);
      await proc.waitFor(/^Cipher suites accepted: AES-256-GCM$/m);
      const r = await runCli(['demo', '--mode', 'client', '--addr', `127.0.0.1:${port}`, '--fips', '--verbose', '--message', 'fips']);
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout).to.match(/^FIPS mode: on/m);
      expect(r.stdout).to.match(/^Cipher suite: AES-256-GCM$/m);
      expect(r.stdout).to.match(/^Tunnel: protocol v2, P-384 \+ ML-KEM-1024, AES-256-GCM$/m); // the FIPS default group
      expect(r.stdout).to.match(/^Received: Echo: fips$/m);
      const chacha = await runCli(['demo', '--mode', 'client', '--addr', `127.0.0.1:${port}`, '--fips', '--cipher', 'chacha20']);
      expect(chacha.code).to.equal(1);
      expect(chacha.stderr).to.match(/ChaCha20-Poly1305 is not allowed in FIPS mode/);
      const v = await runCli(['version', '--fips']);
      expect(v.stdout).to.match(/^FIPS mode: on/m);
    });
  });
});
