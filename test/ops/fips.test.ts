/**
 * The ops layer in FIPS mode, each case in its own process (FIPS mode and the error state are
 * process-wide): the fips_mode gauge, the /health FIPS check, and the `quantum.fips` span
 * attribute; and a failed self-test making /health unhealthy. Skipped when the addon was built
 * without the FIPS module beside it.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { addonPath } from '../../lib/native.js';
import { runChild } from '../helpers/child.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

describe('ops: FIPS mode state in metrics, health and traces', function () {
  this.timeout(120_000);
  let env: NodeJS.ProcessEnv;
  let configDir: string;

  before(function () {
    try {
      execFileSync('test', ['-f', `${dirname(addonPath)}/ossl-modules/fips.so`]);
    } catch {
      this.skip();
    }
    configDir = mkdtempSync(join(tmpdir(), 'qt-ops-fips-'));
    execFileSync('bash', [join(root, 'fips/install.sh'), dirname(addonPath)], { env: { ...process.env, QUANTUM_TUNNEL_FIPS_DIR: configDir }, stdio: 'pipe' });
    env = { QUANTUM_TUNNEL_FIPS_DIR: configDir, QUANTUM_TUNNEL_FIPS: '' };
  });
  after(() => configDir && rmSync(configDir, { recursive: true, force: true }));

  it('FIPS mode: fips_mode 1, a passing FIPS check naming the self-tests, quantum.fips=true on spans', () => {
    const sdk = new URL('../../node_modules/@opentelemetry/sdk-trace-base/build/src/index-shim.js', import.meta.url).href;
    const r = runChild(
      `
      const { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } = await import(${JSON.stringify(sdk)});
      qt.fips.enable();
      const exporter = new InMemorySpanExporter();
      const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
      const metrics = new qt.TunnelMetrics();
      const observer = [metrics, new qt.TracingObserver({ tracer: provider.getTracer('t') })];
      const l = qt.listen({ port: 0, observer }); await l.ready; l.on('tunnel', (t) => t.pipe(t));
      const t = await qt.dial({ host: '127.0.0.1', port: l.address().port }, { observer });
      const server = await qt.startObservabilityServer({ port: 0, version: 'x', ready: () => true, metrics });
      const health = await (await fetch('http://127.0.0.1:' + server.address().port + '/health')).json();
      const text = await metrics.registry.metrics();
      const spans = exporter.getFinishedSpans().map((s) => ({ name: s.name, fips: s.attributes['quantum.fips'], suite: s.attributes['quantum.suite'] }));
      t.destroy(); await l.close(); await server.close();
      return { gauge: /^quantum_vpn_fips_mode (\\d)$/m.exec(text)[1], fips: health.checks.fips, status: health.status, spans };`,
      env,
    );
    expect(r.json?.ok, r.stdout + r.stderr).to.equal(true);
    const v = r.json.value;
    expect(v.gauge).to.equal('1');
    expect(v.status).to.equal('healthy');
    expect(v.fips.status).to.equal('pass');
    expect(v.fips.detail).to.match(/^FIPS mode: OpenSSL FIPS Provider 3\.5\.\S+, \d+ self-tests passed at /);
    expect(v.spans).to.have.length(2);
    for (const s of v.spans) expect(s).to.include({ fips: true, suite: 'AES-256-GCM' });
  });

  it('a failed self-test at start-up: the FIPS check fails and /health and /readyz are 503', () => {
    const r = runChild(
      `
      const server = await qt.startObservabilityServer({ port: 0, version: 'x', ready: () => true });
      const base = 'http://127.0.0.1:' + server.address().port;
      const health = await fetch(base + '/health');
      const ready = await fetch(base + '/readyz');
      const body = await health.json(); await ready.arrayBuffer();
      await server.close();
      return { health: health.status, ready: ready.status, status: body.status, fips: body.checks.fips };`,
      { ...env, QUANTUM_TUNNEL_FIPS: '1', QUANTUM_TUNNEL_FIPS_TEST_INJECT: 'AES-256-GCM' },
    );
    expect(r.json?.ok, r.stdout + r.stderr).to.equal(true);
    expect(r.json.value).to.deep.include({ health: 503, ready: 503, status: 'unhealthy' });
    expect(r.json.value.fips.status).to.equal('fail');
    expect(r.json.value.fips.detail).to.match(/^crypto module in error state: .*AES-256-GCM/);
  });
});
