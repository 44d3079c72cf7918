/**
 * The identity commands and flags: keygen (files, modes, encryption), fingerprint, keyscan, a
 * known-servers file with and without trust on first use, and forward's refusal to run without
 * authentication.
 */
import { expect } from 'chai';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AddressInfo, connect, createServer } from 'node:net';
import { once } from 'node:events';
import { killAll, runCli, startCli } from './helpers.js';

describe('cli: identities (keygen, fingerprint, keyscan, known servers)', function () {
  this.timeout(120_000);
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), 'qt-identity-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));
  afterEach(() => killAll());

  it('keygen writes a 0600 private key and a one-line public key; fingerprint agrees on both; a second keygen refuses to overwrite', async () => {
    const file = join(dir, 'a.key');
    const r = await runCli(['keygen', file, '--comment', 'alice@laptop']);
    expect(r.code, r.stderr).to.equal(0);
    expect(statSync(file).mode & 0o777).to.equal(0o600);
    const pub = readFileSync(`${file}.pub`, 'utf8');
    expect(pub).to.match(/^qtun-(x25519|p384)-mlkem1024 [A-Za-z0-9+/=]+ alice@laptop\n$/);
    const printed = r.stdout.match(/fingerprint: (SHA256:\S+)/)![1]!;
    expect((await runCli(['fingerprint', `${file}.pub`])).stdout.trim()).to.equal(`${printed} alice@laptop`);
    expect((await runCli(['fingerprint', file])).stdout.trim()).to.equal(printed);
    expect((await runCli(['fingerprint', pub.trim()])).stdout.trim()).to.equal(`${printed} alice@laptop`);
    const again = await runCli(['keygen', file]);
    expect(again.code).to.not.equal(0);
    expect(again.stderr).to.match(/already exists/);
  });

  it('an encrypted key needs its passphrase; a key readable by others is refused', async () => {
    const file = join(dir, 'enc.key');
    const pass = join(dir, 'pass');
    writeFileSync(pass, 'correct horse battery staple\n', { mode: 0o600 });
    expect((await runCli(['keygen', file, '--passphrase-file', pass])).code).to.equal(0);
    expect(readFileSync(file, 'utf8')).to.include('ENCRYPTED PRIVATE KEY');
    const without = await runCli(['fingerprint', file]);
    expect(without.code).to.not.equal(0);
    expect(without.stderr).to.match(/encrypted: give its passphrase/);
    const wrong = join(dir, 'wrong');
    writeFileSync(wrong, 'Tr0ub4dor&3', { mode: 0o600 });
    expect((await runCli(['fingerprint', file, '--passphrase-file', wrong])).stderr).to.match(/wrong passphrase/);
    expect((await runCli(['fingerprint', file, '--passphrase-file', pass])).code).to.equal(0);
    chmodSync(file, 0o644);
    const open = await runCli(['fingerprint', file, '--passphrase-file', pass]);
    expect(open.stderr).to.match(/too open/);
  });

  it('forward refuses to start without authentication unless --no-auth, which warns', async () => {
    const server = await runCli(['forward', '--listen', '127.0.0.1:0', '--to', '127.0.0.1:1']);
    expect(server.code).to.equal(1);
    expect(server.stderr).to.match(/forward needs an authentication mode: --identity/);
    const client = await runCli(['forward', '--listen', '0', '--connect', '127.0.0.1:1'], { env: { XDG_CONFIG_HOME: dir } });
    expect(client.code).to.equal(1);
    expect(client.stderr).to.match(/forward needs to authenticate the server/);
    const open = startCli(['forward', '--no-auth', '--listen', '127.0.0.1:0', '--to', '127.0.0.1:1']);
    await open.listeningPort();
    await open.waitFor(/warning: --no-auth: any client may connect/, 5000, 'stderr');
  });

  it('certificates: cert ca / cert issue, a forward with --cert/--identity/--ca on both sides; a client without a certificate is refused', async () => {
    const ca = join(dir, 'root');
    expect((await runCli(['cert', 'ca', ca, '--subject', 'Test Root'])).code).to.equal(0);
    expect((await runCli(['cert', 'issue', join(dir, 'srv'), '--ca', ca, '--ip', '127.0.0.1', '--usage', 'server'])).code).to.equal(0);
    expect((await runCli(['cert', 'issue', join(dir, 'cli'), '--ca', ca, '--usage', 'client'])).code).to.equal(0);
    expect(statSync(join(dir, 'srv.key')).mode & 0o777).to.equal(0o600);
    const echo = createServer((s) => s.pipe(s));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
    try {
      const service = (echo.address() as AddressInfo).port;
      const server = startCli(['forward', '--listen', '127.0.0.1:0', '--to', `127.0.0.1:${service}`, '--cert', join(dir, 'srv.crt'), '--identity', join(dir, 'srv.key'), '--ca', `${ca}.crt`, '--log-level', 'info']);
      const tunnelPort = await server.listeningPort();
      const client = startCli(['forward', '--listen', '0', '--connect', `127.0.0.1:${tunnelPort}`, '--ca', `${ca}.crt`, '--cert', join(dir, 'cli.crt'), '--identity', join(dir, 'cli.key')]);
      const app = connect(await client.listeningPort(), '127.0.0.1');
      app.write('through certificates');
      const [reply] = (await once(app, 'data')) as [Buffer];
      expect(reply.toString()).to.equal('through certificates');
      app.destroy();
      await server.waitFor(/connection opened .*peer_subject="?CN=cli/, 10_000, 'stderr');
      // No client certificate: the server refuses (certificate_required), the client logs why.
      const bare = startCli(['forward', '--listen', '0', '--connect', `127.0.0.1:${tunnelPort}`, '--ca', `${ca}.crt`]);
      const lonely = connect(await bare.listeningPort(), '127.0.0.1');
      lonely.on('error', () => undefined);
      await bare.waitFor(/ERR_QT_CERTIFICATE_REQUIRED/, 10_000, 'stderr');
      lonely.destroy();
    } finally {
      echo.close();
    }
  });

  it('keyscan prints the known-servers line; --known-servers pins it; --trust-on-first-use records an unknown server once', async () => {
    const key = join(dir, 'scan.key');
    expect((await runCli(['keygen', key])).code).to.equal(0);
    const fingerprint = (await runCli(['fingerprint', `${key}.pub`])).stdout.split(' ')[0]!.trim();
    const server = startCli(['forward', '--listen', '127.0.0.1:0', '--to', '127.0.0.1:1', '--identity', key]);
    const port = await server.listeningPort();
    const scan = await runCli(['keyscan', `127.0.0.1:${port}`]);
    expect(scan.code, `${scan.stdout}\n${scan.stderr}`).to.equal(0);
    const line = scan.stdout.split('\n')[0]!;
    expect(line.startsWith(`127.0.0.1:${port} qtun-`)).to.equal(true);
    expect(scan.stdout).to.include(fingerprint);
    // A known-servers file without the server: refused; with TOFU: recorded, with a warning.
    const known = join(dir, 'known_servers');
    writeFileSync(known, '# known servers\n');
    const knock = (appPort: number) => {
      const app = connect(appPort, '127.0.0.1');
      app.on('error', () => undefined);
      return app;
    };
    const strict = startCli(['forward', '--listen', '0', '--connect', `127.0.0.1:${port}`, '--known-servers', known, '--log-level', 'info']);
    const refusedApp = knock(await strict.listeningPort());
    await strict.waitFor(/is not in .*known_servers: add its key/, 15_000, 'stderr');
    refusedApp.destroy();
    const tofu = startCli(['forward', '--listen', '0', '--connect', `127.0.0.1:${port}`, '--known-servers', known, '--trust-on-first-use']);
    const app = knock(await tofu.listeningPort());
    await tofu.waitFor(/trusting 127\.0\.0\.1:\d+ on first use: recorded key SHA256:/, 15_000, 'stderr');
    app.destroy();
    expect(readFileSync(known, 'utf8')).to.include(line.split(' ').slice(1, 3).join(' '));
    expect(existsSync(known)).to.equal(true);
  });
});
