import { expect } from 'chai';
import { Registry } from 'prom-client';
import { crypto, registerProcessMetrics, TunnelMetrics } from '../../lib/index.js';
import { VERSION } from '../../lib/ops/version.js';

describe('process metrics and build_info', () => {
  it('registers process_*, nodejs_* and <prefix>build_info (value 1, labels that say what runs) once per registry', async () => {
    const registry = new Registry();
    registerProcessMetrics(registry, { prefix: 'qt_', labels: { service: 'x' } });
    registerProcessMetrics(registry, { prefix: 'qt_', labels: { service: 'x' } }); // a second call is a no-op
    const text = await registry.metrics();
    expect(text).to.match(/^process_cpu_user_seconds_total\{service="x"\} \d/m);
    expect(text).to.match(/^process_open_fds\{service="x"\} \d+$/m);
    expect(text).to.match(/^nodejs_heap_size_used_bytes\{service="x"\} \d+$/m);
    const build = (await registry.getSingleMetric('qt_build_info')!.get()).values;
    expect(build).to.have.length(1);
    expect(build[0]!.value).to.equal(1);
    const info = crypto.info();
    expect(build[0]!.labels).to.deep.equal({
      version: VERSION,
      openssl: info.openssl.split(' ').slice(0, 2).join(' '),
      mode: info.mode,
      chacha20: String(info.chacha20.compiled),
      node: process.version,
      service: 'x',
    });
  });

  it('TunnelMetrics alone registers none of them (a library embedding tunnels has its own process metrics)', async () => {
    const metrics = new TunnelMetrics();
    const text = await metrics.registry.metrics();
    expect(text).to.match(/^quantum_vpn_sessions_total /m);
    expect(text).not.to.match(/^(process_|nodejs_|quantum_vpn_build_info)/m);
  });
});
