/**
 * `quantum-vpn serve --config`: several services in one process (an echo server and a forward
 * client in front of it), one metrics endpoint labelled by service, SIGTERM drains all; an
 * invalid file starts nothing; SIGHUP reloads (add, remove, a broken file keeps the old
 * configuration, the log level changes in place). A real process, as a user runs it.
 */
import { expect } from 'chai';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, httpGet, killAll, startCli } from './helpers.js';

/** Sends `text` through 127.0.0.1:port, half-closes, and resolves with everything that came back. */
function echoThrough(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.end(text));
    let got = '';
    s.setEncoding('utf8').on('data', (d: string) => (got += d));
    s.on('error', reject);
    s.on('close', () => resolve(got));
  });
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.on('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.on('error', () => resolve(true));
  });
}

describe('cli: serve --config', function () {
  this.timeout(60_000);
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'qt-serve-'))));
  afterEach(async () => {
    await killAll();
    rmSync(dir, { recursive: true, force: true });
  });

  const config = (echoPort: number, opts: { front?: boolean; level?: string } = {}) =>
    [
      `log-level: ${opts.level ?? 'warn'}`,
      'obs-addr: 127.0.0.1:0',
      'defaults:',
      '  no-auth: true',
      '  drain-timeout: 2s',
      'services:',
      '  echo:',
      '    role: echo',
      `    listen: 127.0.0.1:${echoPort}`,
      ...(opts.front === false ? [] : ['  front:', '    role: client', '    listen: 127.0.0.1:0', `    connect: 127.0.0.1:${echoPort}`]),
      '',
    ].join('\n');

  it('runs an echo server and a forward client in one process: bytes echo through, metrics per service, /readyz, SIGTERM drains all', async () => {
    const file = join(dir, 'serve.yaml');
    writeFileSync(file, config(await freePort()));
    const p = startCli(['serve', '--config', file]);
    const front = Number((await p.waitFor(/listening: front: client on 127\.0\.0\.1:(\d+) /))[1]);
    const obs = await p.observabilityPort();
    await p.waitFor(/serving 2 services from /);
    expect(await echoThrough(front, 'hello through two services')).to.equal('hello through two services');
    expect((await httpGet(obs, '/readyz')).status).to.equal(200);
    const metrics = (await httpGet(obs, '/metrics')).body;
    expect(metrics).to.match(/^quantum_vpn_sessions_total\{service="echo"\} 1$/m);
    expect(metrics).to.match(/^quantum_vpn_sessions_total\{service="front"\} 1$/m);
    p.kill('SIGTERM');
    expect(await p.exit()).to.equal(0);
    expect(p.stdout).to.match(/^echo: stopped$/m);
    expect(p.stdout).to.match(/^front: stopped$/m);
    expect(p.stdout).to.match(/serve stopped\n$/);
  });

  it('an invalid file starts nothing: every error with its line, exit 1', async () => {
    const port = await freePort();
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, config(port).replace('role: client', 'role: cleint').replace('drain-timeout: 2s', 'drain-timeout: 2 s'));
    const p = startCli(['serve', '--config', file]);
    expect(await p.exit()).to.equal(1);
    expect(p.stdout).to.equal('');
    expect(p.stderr).to.contain('bad.yaml:5:18: defaults.drain-timeout: expected a duration such as 10s, 500ms or 1m30s\n');
    expect(p.stderr).to.contain('bad.yaml:11:11: services.front.role: expected server, client or echo\n');
    expect(p.stderr).to.contain('quantum-vpn serve: the configuration is invalid, nothing started: 2 errors');
    expect(await refused(port)).to.equal(true);
  });

  it('SIGHUP reloads: a service added, the log level changed in place, a broken file keeps the old configuration, limits changed in place, a changed service replaced, a service removed', async () => {
    const echoPort = await freePort();
    const file = join(dir, 'reload.yaml');
    writeFileSync(file, config(echoPort, { front: false }));
    const p = startCli(['serve', '--config', file]);
    await p.waitFor(/serving 1 service from /);

    // Added, and the log level from warn to info: the new connection's "connection opened" is logged.
    writeFileSync(file, config(echoPort, { level: 'info' }));
    p.kill('SIGHUP');
    const front = Number((await p.waitFor(/reload: added: front: client on 127\.0\.0\.1:(\d+) /))[1]);
    expect(p.stdout).to.contain('reload: log-level warn -> info\n');
    expect(await echoThrough(front, 'one')).to.equal('one');
    await p.waitFor(/connection opened.*service="?echo/, 10_000, 'stderr');

    // Broken: nothing changes, every error is logged with its line.
    writeFileSync(file, `${config(echoPort, { level: 'info' })}  extra:\n    role: server\n`);
    p.kill('SIGHUP');
    await p.waitFor(/reload failed: 1 error; the running configuration stays/);
    await p.waitFor(/reload\.yaml:14:3: services\.extra: listen is required/, 10_000, 'stderr');
    expect(await echoThrough(front, 'still here')).to.equal('still here');

    // Limits and timeouts change in place: same listener, open connections go on.
    const held = connect(front, '127.0.0.1');
    await new Promise((resolve) => held.once('connect', resolve));
    const limited = config(echoPort, { level: 'info' }).replace('    role: echo', '    role: echo\n    max-conns-per-ip: 5');
    writeFileSync(file, limited.replace('    connect: 127.0.0.1', '    connect-timeout: 3s\n    connect: 127.0.0.1'));
    p.kill('SIGHUP');
    await p.waitFor(/reload: updated: front: connect-timeout=3s \(in place; open connections go on\)/);
    await p.waitFor(/reload: updated: echo: max-conns-per-ip=5 /);
    expect(await echoThrough(front, 'same port')).to.equal('same port');
    const heldEcho = new Promise<string>((resolve) => {
      let got = '';
      held.setEncoding('utf8').on('data', (d: string) => (got += d));
      held.on('close', () => resolve(got));
    });
    held.end('held across the reload');
    expect(await heldEcho).to.equal('held across the reload');

    // Any other change (here the handshake timeout) replaces the service: a new listener (port 0:
    // a new port) with its keys read afresh; the old one drains and stops.
    writeFileSync(file, limited.replace('    connect: 127.0.0.1', '    handshake-timeout: 9s\n    connect: 127.0.0.1'));
    p.kill('SIGHUP');
    const replaced = Number((await p.waitFor(/reload: replaced: front: client on 127\.0\.0\.1:(\d+) /))[1]);
    expect(await echoThrough(replaced, 'two')).to.equal('two');
    await p.waitFor(/^front: stopped$/m);
    expect(await refused(front)).to.equal(true);

    // Removed: it drains and stops; its port is closed.
    writeFileSync(file, config(echoPort, { front: false, level: 'info' }));
    p.kill('SIGHUP');
    await p.waitFor(/reload: removed: front/);
    await p.waitFor(/^front: stopped\n(?:.*\n)*front: stopped$/m);
    expect(await refused(replaced)).to.equal(true);
    p.kill('SIGTERM');
    expect(await p.exit()).to.equal(0);
  });

  it('watch: true reloads when the file is replaced (as editors save it), without a signal', async () => {
    const echoPort = await freePort();
    const file = join(dir, 'watched.yaml');
    writeFileSync(file, `watch: true\n${config(echoPort, { front: false })}`);
    const p = startCli(['serve', '--config', file]);
    await p.waitFor(/serving 1 service from /);
    writeFileSync(`${file}.tmp`, `watch: true\n${config(echoPort)}`);
    renameSync(`${file}.tmp`, file);
    const front = Number((await p.waitFor(/reload: added: front: client on 127\.0\.0\.1:(\d+) /, 10_000))[1]);
    expect(p.stdout).to.contain('file changed: reloading');
    expect(await echoThrough(front, 'watched')).to.equal('watched');
  });
});
