import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

describe('npm run demo (the README\'s main job)', function () {
  this.timeout(120_000);

  it('echoes through a post-quantum tunnel, serves metrics and health, and stops cleanly', function () {
    if (process.env.QUANTUM_TUNNEL_FIPS === '1' || process.env.QUANTUM_TUNNEL_ADDON) this.skip(); // runs the default build once
    const r = spawnSync(process.execPath, ['scripts/demo.cjs'], { cwd: root, encoding: 'utf8', timeout: 110_000 });
    expect(r.status, r.stdout + r.stderr).to.equal(0);
    expect(r.stdout).to.match(/Received: Echo: Hello from a post-quantum tunnel/);
    expect(r.stdout).to.match(/quantum_vpn_sessions_total\{[^}]*\} 1/);
    expect(r.stdout).to.match(/\/health -> 200 healthy/);
    expect(r.stdout).to.match(/server stopped on SIGTERM \(exit code 0\)/);
  });
});
