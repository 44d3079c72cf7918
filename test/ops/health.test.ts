/**
 * The observability server over real HTTP on 127.0.0.1: /health, /healthz, /readyz, /metrics,
 * status codes, JSON shape, 503 when not ready or when a check fails.
 */
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { expect } from 'chai';
import {
  createLogger,
  ErrorCode,
  formatUptime,
  QuantumTunnelError,
  startObservabilityServer,
  TunnelMetrics,
  VERSION,
  type CheckResult,
  type HealthReport,
  type ObservabilityServer,
  type ObservabilityServerOptions,
} from '../../lib/index.js';
import { echo, Resources, roundTrip, until, within } from '../helpers/tunnel.js';

describe('ops: observability server', function () {
  this.timeout(30_000);
  const servers: ObservabilityServer[] = [];
  const res = new Resources();
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => within(s.close(), 5000, 'observability server close')));
    await res.cleanup();
  });

  async function start(options: Partial<ObservabilityServerOptions> = {}): Promise<{ server: ObservabilityServer; url: (path: string) => string }> {
    const server = await startObservabilityServer({ port: 0, version: '9.9.9-test', ready: () => true, ...options });
    servers.push(server);
    const { address, port } = server.address();
    return { server, url: (path) => `http://${address}:${port}${path}` };
  }

  async function getJson(url: string, init?: RequestInit): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
    const r = await within(fetch(url, init), 5000, `GET ${url}`);
    return { status: r.status, headers: r.headers, body: (await r.json()) as Record<string, unknown> };
  }

  it('binds 127.0.0.1 by default on the port asked (0 = any free one)', async () => {
    const { server } = await start();
    expect(server.address().address).to.equal('127.0.0.1');
    expect(server.address().port).to.be.greaterThan(0);
  });

  it('/healthz is 200 {"status":"alive"} even when not ready', async () => {
    const { url } = await start({ ready: () => false });
    const r = await getJson(url('/healthz'));
    expect(r.status).to.equal(200);
    expect(r.body).to.deep.equal({ status: 'alive' });
    expect(r.headers.get('content-type')).to.match(/^application\/json/);
    expect(r.headers.get('cache-control')).to.equal('no-store');
  });

  it('/readyz follows ready(): 200 while accepting, 503 otherwise (and when ready() throws)', async () => {
    let ready = false;
    const { url } = await start({ ready: () => ready });
    let r = await getJson(url('/readyz'));
    expect(r.status).to.equal(503);
    expect(r.body).to.include({ ready: false, status: 'not ready' });
    ready = true;
    r = await getJson(url('/readyz'));
    expect(r.status).to.equal(200);
    expect(r.body).to.include({ ready: true, status: 'ready', health: 'healthy' });
    const throwing = await start({
      ready: () => {
        throw new Error('no');
      },
    });
    expect((await getJson(throwing.url('/readyz'))).status).to.equal(503);
  });

  it('/health: JSON shape with version, uptime, checks (FIPS state included) and key metrics', async () => {
    const metrics = new TunnelMetrics();
    const { url } = await start({ metrics, checks: () => ({ database: { status: 'pass', detail: 'ok' } }) });
    const listener = await res.listen({ observer: metrics }, echo);
    const t = await res.dial(listener);
    await roundTrip(t, Buffer.from('0123456789'));
    await until(() => metrics.snapshot().bytesSent === 10, 5000, 'echo counted');
    const r = await getJson(url('/health'));
    expect(r.status).to.equal(200);
    const body = r.body as unknown as HealthReport;
    expect(body.status).to.equal('healthy');
    expect(body.version).to.equal('9.9.9-test');
    expect(body.ready).to.equal(true);
    expect(new Date(body.timestamp).toString()).to.not.equal('Invalid Date');
    expect(body.uptime).to.match(/^\d+s$|^\d+m\d\ds$/);
    expect(body.uptime_seconds).to.be.a('number').and.at.least(0);
    expect(Object.keys(body.checks)).to.include.members(['fips', 'readiness', 'error_rate', 'database']);
    expect(body.checks.fips!.status).to.equal('pass');
    expect(body.checks.fips!.detail).to.be.a('string').and.match(/standard mode|FIPS mode/);
    expect(body.checks.database).to.deep.equal({ status: 'pass', detail: 'ok' });
    expect(body.metrics).to.deep.include({ sessions_active: 1, sessions_total: 1, sessions_failed: 0, bytes_sent: 10, bytes_received: 10, error_rate: 0 });
    expect(body.metrics).to.have.keys(['sessions_active', 'sessions_total', 'sessions_failed', 'bytes_sent', 'bytes_received', 'rekeys_completed', 'auth_failures', 'replay_attacks_blocked', 'error_rate']);
  });

  it('/health is degraded (200) when not ready or a check warns, unhealthy (503) when a check fails or throws', async () => {
    let ready = true;
    let extra: Record<string, CheckResult> = {};
    const { url } = await start({ ready: () => ready, checks: () => extra });
    ready = false;
    let r = await getJson(url('/health'));
    expect([r.status, r.body.status]).to.deep.equal([200, 'degraded']);
    ready = true;
    extra = { disk: { status: 'warn', detail: '91% full' } };
    r = await getJson(url('/health'));
    expect([r.status, r.body.status]).to.deep.equal([200, 'degraded']);
    extra = { disk: { status: 'fail', detail: 'full' }, other: { status: 'pass' } };
    r = await getJson(url('/health'));
    expect([r.status, r.body.status]).to.deep.equal([503, 'unhealthy']);
    // A failing check also makes the service not ready.
    expect((await getJson(url('/readyz'))).status).to.equal(503);
    extra = { bogus: { status: 'maybe' } as unknown as CheckResult };
    r = await getJson(url('/health'));
    expect(r.status).to.equal(503);
    expect((r.body.checks as Record<string, CheckResult>).bogus).to.deep.equal({ status: 'fail', detail: 'invalid check result' });

    const throwing = await start({
      checks: () => {
        throw new Error('secret detail that must not leak');
      },
    });
    r = await getJson(throwing.url('/health'));
    expect(r.status).to.equal(503);
    expect(JSON.stringify(r.body)).to.not.include('secret detail');
  });

  it('a failed FIPS self-test state makes /health unhealthy; fipsCheck: false leaves it out', async () => {
    const failing = await start({ fipsCheck: () => ({ status: 'fail', detail: 'self-test "AES-256-GCM KAT" failed' }) });
    const r = await getJson(failing.url('/health'));
    expect(r.status).to.equal(503);
    expect((r.body.checks as Record<string, CheckResult>).fips).to.deep.equal({ status: 'fail', detail: 'self-test "AES-256-GCM KAT" failed' });
    const without = await start({ fipsCheck: false });
    expect((await getJson(without.url('/health'))).body.checks).to.not.have.property('fips');
  });

  it('/health is degraded when more than 1% of records failed', async () => {
    const metrics = new TunnelMetrics();
    const { url } = await start({ metrics });
    metrics.onTraffic('received', 1000, 50);
    metrics.onTraffic('sent', 1000, 49);
    metrics.onProtocolError(ErrorCode.UNEXPECTED_MESSAGE, { address: '10.0.0.1', port: 1 });
    let r = await getJson(url('/health'));
    expect([r.status, r.body.status]).to.deep.equal([200, 'degraded']);
    expect((r.body.metrics as Record<string, number>).error_rate).to.be.closeTo(1 / 99, 1e-9);
    metrics.onTraffic('sent', 1000, 1000);
    r = await getJson(url('/health'));
    expect(r.body.status).to.equal('healthy');
  });

  it('/metrics serves the Prometheus text of the metrics registry; 404 without metrics', async () => {
    const metrics = new TunnelMetrics({ labels: { service: 'quantum-vpn' } });
    const { url } = await start({ metrics });
    const r = await within(fetch(url('/metrics')), 5000, '/metrics');
    expect(r.status).to.equal(200);
    expect(r.headers.get('content-type')).to.equal(metrics.registry.contentType);
    const text = await r.text();
    expect(text).to.include('# TYPE quantum_vpn_sessions_total counter');
    expect(text).to.match(/^quantum_vpn_sessions_active\{service="quantum-vpn"\} 0$/m);
    const bare = await start();
    expect((await getJson(bare.url('/metrics'))).status).to.equal(404);
  });

  it('404 for unknown paths, 405 for other methods, HEAD without a body, query strings ignored', async () => {
    const { url } = await start();
    expect((await getJson(url('/nope'))).status).to.equal(404);
    const post = await within(fetch(url('/health'), { method: 'POST', body: 'x' }), 5000, 'POST');
    expect(post.status).to.equal(405);
    expect(post.headers.get('allow')).to.equal('GET, HEAD');
    await post.arrayBuffer();
    const head = await within(fetch(url('/healthz'), { method: 'HEAD' }), 5000, 'HEAD');
    expect(head.status).to.equal(200);
    expect((await head.arrayBuffer()).byteLength).to.equal(0);
    expect((await getJson(url('/healthz?verbose=1'))).status).to.equal(200);
  });

  it('close() stops serving and is idempotent', async () => {
    const { server, url } = await start();
    expect((await getJson(url('/healthz'))).status).to.equal(200);
    await within(Promise.all([server.close(), server.close()]), 5000, 'close twice');
    let failed = false;
    try {
      await within(fetch(url('/healthz')), 5000, 'fetch after close');
    } catch {
      failed = true;
    }
    expect(failed).to.equal(true);
  });

  it('a port in use rejects with ERR_QT_ADDRESS_IN_USE (syscallCode EADDRINUSE); invalid options throw ERR_QT_INVALID_ARGUMENT', async () => {
    const blocker = createServer();
    blocker.listen(0, '127.0.0.1');
    await once(blocker, 'listening');
    try {
      const port = (blocker.address() as AddressInfo).port;
      let error: unknown;
      try {
        servers.push(await startObservabilityServer({ port, version: 'x', ready: () => true }));
      } catch (err) {
        error = err;
      }
      expect(error).to.be.instanceOf(QuantumTunnelError).with.property('code', ErrorCode.ADDRESS_IN_USE);
      expect(error).to.have.property('syscallCode', 'EADDRINUSE');
      expect((error as Error).message).to.equal(`observability server cannot listen on 127.0.0.1:${port}: address already in use`);
    } finally {
      blocker.close();
    }
    for (const bad of [{ port: -1 }, { port: 70000 }, { port: 1.5 }, { ready: undefined }]) {
      let error: unknown;
      try {
        await startObservabilityServer({ port: 0, version: 'x', ready: () => true, ...bad } as ObservabilityServerOptions);
      } catch (err) {
        error = err;
      }
      expect(error, JSON.stringify(bad)).to.be.instanceOf(QuantumTunnelError).with.property('code', ErrorCode.INVALID_ARGUMENT);
    }
  });

  it('refresh is awaited before /metrics, /health and /readyz (not /healthz); a failing one is logged and the answer still comes', async () => {
    let ready = false;
    const calls: string[] = [];
    let fail = false;
    const lines: string[] = [];
    const logger = createLogger({ format: 'json', stream: { write: (l: string) => lines.push(l) } as unknown as NodeJS.WritableStream });
    const { url } = await start({
      ready: () => ready,
      metrics: new TunnelMetrics(),
      logger,
      refresh: async () => {
        calls.push('refresh');
        if (fail) throw new Error('a worker is gone');
        await new Promise((r) => setTimeout(r, 20));
        ready = true; // what the answer reads was gathered by the refresh
      },
    });
    expect((await getJson(url('/healthz'))).status).to.equal(200);
    expect(calls).to.deep.equal([]);
    expect((await getJson(url('/readyz'))).status).to.equal(200);
    expect(calls).to.have.length(1);
    expect((await within(fetch(url('/metrics')), 5000, 'GET /metrics')).status).to.equal(200);
    expect(calls).to.have.length(2);
    fail = true;
    ready = false;
    const health = await getJson(url('/health'));
    expect(health.status).to.equal(200);
    expect(health.body.ready).to.equal(false);
    expect(lines.map((l) => JSON.parse(l) as Record<string, unknown>).some((r) => r.msg === 'observability refresh failed')).to.equal(true);
  });

  it('logs where it listens', async () => {
    const lines: string[] = [];
    const logger = createLogger({ format: 'json', stream: { write: (l: string) => lines.push(l) } as unknown as NodeJS.WritableStream });
    const { server } = await start({ logger });
    const rec = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(rec).to.include({ msg: 'observability server listening', component: 'observability', port: server.address().port });
  });
});

describe('ops: helpers', () => {
  it('formatUptime', () => {
    expect(formatUptime(0)).to.equal('0s');
    expect(formatUptime(5.9)).to.equal('5s');
    expect(formatUptime(65)).to.equal('1m05s');
    expect(formatUptime(2 * 3600 + 3 * 60 + 4)).to.equal('2h03m04s');
    expect(formatUptime(86400 + 2 * 3600 + 3 * 60 + 4)).to.equal('1d02h03m04s');
    expect(formatUptime(-3)).to.equal('0s');
  });

  it('VERSION matches package.json', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(VERSION).to.equal(pkg.version);
  });
});
