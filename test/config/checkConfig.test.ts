/** `quantum-vpn check-config`: the example files pass (with their key files present); errors exit 1. */
import { expect } from 'chai';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../lib/cli/main.js';
import { ROOT } from '../cli/helpers.js';

/** Runs quantum-vpn in this process (fast: no child process), with its output captured. */
async function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const captured = { stdout: '', stderr: '' };
  const writes = { stdout: process.stdout.write, stderr: process.stderr.write };
  process.stdout.write = ((chunk: string) => ((captured.stdout += chunk), true)) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string) => ((captured.stderr += chunk), true)) as typeof process.stderr.write;
  try {
    const code = await run(args);
    return { code, ...captured };
  } finally {
    process.stdout.write = writes.stdout;
    process.stderr.write = writes.stderr;
  }
}

describe('config: quantum-vpn check-config', function () {
  this.timeout(60_000);
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qt-check-config-'));
    for (const args of [['keygen', join(dir, 'server.key')], ['keygen', join(dir, 'client.key')], ['psk', 'generate', join(dir, 'echo.psk'), '--identity', 'echo']]) {
      const r = await runCli(args);
      expect(r.code, r.stderr).to.equal(0);
    }
    writeFileSync(join(dir, 'authorized_peers'), readFileSync(join(dir, 'client.key.pub')));
    copyFileSync(join(dir, 'server.key.pub'), join(dir, 'server.pub'));
    // The examples name /etc/quantum-tunnel/...: the same files, here.
    for (const name of ['server.yaml', 'client.toml']) {
      writeFileSync(join(dir, name), readFileSync(join(ROOT, 'examples/config', name), 'utf8').replaceAll('/etc/quantum-tunnel', dir));
    }
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

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
