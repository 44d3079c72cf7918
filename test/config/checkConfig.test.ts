/** `quantum-vpn check-config`: the example files pass (with their key files present); errors exit 1. */
import { expect } from 'chai';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killAll, makePskFiles, ROOT, runCli } from '../cli/helpers.js';

describe('config: quantum-vpn check-config', function () {
  this.timeout(60_000);
  let dir: string;
  let pskDir: string;
  afterEach(killAll);
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qt-check-config-'));
    const [server, client, psk] = await Promise.all([runCli(['keygen', join(dir, 'server.key')]), runCli(['keygen', join(dir, 'client.key')]), makePskFiles(['echo'])]);
    expect(server.code, server.stderr).to.equal(0);
    expect(client.code, client.stderr).to.equal(0);
    pskDir = psk.dir;
    copyFileSync(psk.files[0]!, join(dir, 'echo.psk'));
    writeFileSync(join(dir, 'authorized_peers'), readFileSync(join(dir, 'client.key.pub')));
    copyFileSync(join(dir, 'server.key.pub'), join(dir, 'server.pub'));
    // The examples name /etc/quantum-tunnel/...: the same files, here.
    for (const name of ['server.yaml', 'client.toml']) {
      writeFileSync(join(dir, name), readFileSync(join(ROOT, 'examples/config', name), 'utf8').replaceAll('/etc/quantum-tunnel', dir));
    }
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(pskDir, { recursive: true, force: true });
  });

  it('accepts examples/config/server.yaml and client.toml: one line per service, exit 0', async () => {
    const server = await runCli(['check-config', join(dir, 'server.yaml')]);
    expect(server.code, server.stderr).to.equal(0);
    expect(server.stdout).to.contain('postgres: server on 0.0.0.0:8443 (tunnels) -> 127.0.0.1:5432 (TCP); auth: identity, authorized-peers\n');
    expect(server.stdout).to.contain('echo: echo on 0.0.0.0:8444 (tunnels) -> echo; auth: psk-file\n');
    const client = await runCli(['check-config', join(dir, 'client.toml')]);
    expect(client.code, client.stderr).to.equal(0);
    expect(client.stdout).to.match(/^pg-client: client on 127\.0\.0\.1:15432 \(TCP\) -> db\.example\.net:8443 \(tunnels\); auth: identity, server-key\n/);
    expect(client.stdout).to.contain('(2 services)');
  });

  it('prints every error with file, line and key, and exits 1; a key file that does not load is one', async () => {
    const text = readFileSync(join(dir, 'server.yaml'), 'utf8').replace('to: 127.0.0.1:5432', 'to: 127.0.0.1').replace('log-format: text', 'log-format: xml');
    writeFileSync(join(dir, 'broken.yaml'), text);
    const r = await runCli(['check-config', join(dir, 'broken.yaml')]);
    expect(r.code).to.equal(1);
    expect(r.stdout).to.equal('');
    expect(r.stderr).to.match(/^broken\.yaml:5:13: log-format: expected text or json$/m);
    expect(r.stderr).to.match(/^broken\.yaml:19:9: services\.postgres\.to: expected HOST:PORT$/m);
    expect(r.stderr).to.contain('quantum-vpn check-config: 2 errors');
    // Valid keys, but the identity file is missing: found by loading it, as serve would.
    writeFileSync(join(dir, 'nokey.yaml'), readFileSync(join(dir, 'server.yaml'), 'utf8').replace('server.key', 'absent.key'));
    const missing = await runCli(['check-config', join(dir, 'nokey.yaml')]);
    expect(missing.code).to.equal(1);
    expect(missing.stderr).to.match(/^nokey\.yaml:20:15: services\.postgres\.identity: .*absent\.key/m);
  });
});
