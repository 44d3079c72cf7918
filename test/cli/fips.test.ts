/**
 * `quantum-vpn fips install` and `fips status`: the FIPS set-up a project that depends on the
 * package runs (it has no `npm run fips:install`). Against the addon the suite runs on (the
 * standard build, or the FIPS-profile one through QUANTUM_TUNNEL_ADDON), with real fipsinstall
 * into a temporary directory; and against a copy of the addon without its FIPS files.
 */
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { expect } from 'chai';
import { addonPath } from '../../lib/native.js';
import { killAll, runCli } from './helpers.js';

const hasFipsFiles = existsSync(join(dirname(addonPath), 'ossl-modules', 'fips.so')) && existsSync(join(dirname(addonPath), 'openssl'));

describe('cli: fips install and fips status', function () {
  this.timeout(180_000);
  const dirs: string[] = [];
  afterEach(killAll);
  after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  function tempDir(): string {
    const d = mkdtempSync(join(tmpdir(), 'qt-cli-fips-'));
    dirs.push(d);
    return d;
  }

  it('install runs fipsinstall with the addon\'s own module, writes the configuration, and FIPS mode starts on it', async function () {
    if (!hasFipsFiles) this.skip(); // an addon built without its FIPS files (see the next test for that case)
    const dir = join(tempDir(), 'fips');
    const env = { QUANTUM_TUNNEL_FIPS: '', QUANTUM_TUNNEL_FIPS_DIR: join(dir, 'unused') };

    const before = await runCli(['fips', 'status', '--dir', dir], { env });
    expect(before.code).to.equal(1);
    expect(before.stdout).to.match(/^FIPS mode: does not start: FIPS mode is not installed on this machine: .*openssl-fips\.cnf is missing; run `npx quantum-vpn fips install` first/m);

    const r = await runCli(['fips', 'install', '--dir', dir], { env });
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.include(`Running openssl fipsinstall for ${join(dirname(addonPath), 'ossl-modules', 'fips.so')}`);
    expect(r.stdout).to.match(/^FIPS mode starts on this machine: OpenSSL FIPS Provider 3\.5\.\d+; 7\/7 self-tests passed; addon integrity verified/m);
    expect(r.stdout).to.include(`set QUANTUM_TUNNEL_FIPS_DIR=${dir} where the application runs`);
    expect(statSync(dir).mode & 0o777).to.equal(0o700);
    const config = readFileSync(join(dir, 'openssl-fips.cnf'), 'utf8');
    expect(config).to.include(`.include ${join(dir, 'fipsmodule.cnf')}`);
    expect(readFileSync(join(dir, 'fipsmodule.cnf'), 'utf8')).to.match(/^module-mac\s*=\s*[0-9A-F:]+$/m);

    const st = await runCli(['fips', 'status', '--dir', dir, '--json'], { env });
    expect(st.code, st.stderr).to.equal(0);
    const json = JSON.parse(st.stdout) as { started: boolean; installed: boolean; status: { mode: string; selfTests: { passed: boolean }; integrity: { verified: boolean } } };
    expect(json).to.include({ started: true, installed: true });
    expect(json.status.mode).to.equal('fips');
    expect(json.status.selfTests.passed).to.equal(true);
    expect(json.status.integrity.verified).to.equal(true);

    // The rest of the CLI finds it through QUANTUM_TUNNEL_FIPS_DIR.
    const v = await runCli(['version', '--fips'], { env: { QUANTUM_TUNNEL_FIPS: '', QUANTUM_TUNNEL_FIPS_DIR: dir } });
    expect(v.code, v.stderr).to.equal(0);
    expect(v.stdout).to.match(/^FIPS mode: on \(OpenSSL FIPS Provider/m);
  });

  it('an addon without its FIPS files: install says which file is missing and how to get it, exit 1', async () => {
    const lonely = tempDir();
    copyFileSync(addonPath, join(lonely, 'quantum_tunnel.node'));
    const dir = join(tempDir(), 'fips');
    const r = await runCli(['fips', 'install', '--dir', dir], { env: { QUANTUM_TUNNEL_ADDON: join(lonely, 'quantum_tunnel.node'), QUANTUM_TUNNEL_FIPS: '' } });
    expect(r.code).to.equal(1);
    expect(r.stderr).to.equal(
      `quantum-vpn: ${join(lonely, 'ossl-modules', 'fips.so')} is missing: the addon (${join(lonely, 'quantum_tunnel.node')}) was built without its FIPS files; ` +
        'rebuild it (npm rebuild quantum-tunnel, or npm run build in a checkout)\n',
    );
    expect(existsSync(join(dir, 'openssl-fips.cnf'))).to.equal(false);
  });

  it('needs an action: no action or an unknown one is a usage error', async () => {
    const none = await runCli(['fips']);
    expect(none.code).to.equal(1);
    expect(none.stderr).to.match(/^quantum-vpn fips: say what to do: install or status$/m);
    expect(none.stderr).to.match(/^Usage: quantum-vpn fips install \[--dir DIR\]$/m);
    const bad = await runCli(['fips', 'uninstall']);
    expect(bad.code).to.equal(1);
    expect(bad.stderr).to.match(/unknown action "uninstall": expected install or status/);
  });
});
