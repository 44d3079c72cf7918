/**
 * Pre-shared keys on the command line: the --psk-file format and its permission check (in
 * process), `quantum-vpn psk generate`, and demo servers and clients that authenticate with the
 * same file, fail with different ones, and refuse --legacy-v1 with a PSK (real processes).
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { crypto } from '../../lib/index.js';
import { CliError, UsageError } from '../../lib/cli/args.js';
import { loadPskFile, pskFromFlags } from '../../lib/cli/psk.js';
import { groupsFromFlag, protocolFromFlags } from '../../lib/cli/protocol.js';
import { killAll, makePskFiles, runCli, startCli, type CliProcess } from './helpers.js';

const KEY_A = 'a1'.repeat(32);
const KEY_B = '5c'.repeat(40);
const posix = process.platform !== 'win32';

describe('cli: --psk-file format and permissions (in process)', () => {
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), 'qt-cli-psk-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** Writes a PSK file with `mode` (0600 by default). */
  function file(name: string, text: string, mode = 0o600): string {
    const p = join(dir, name);
    writeFileSync(p, text, { mode });
    chmodSync(p, mode);
    return p;
  }

  function cliError(fn: () => unknown, re: RegExp): string {
    let message = '';
    expect(() => {
      try {
        fn();
      } catch (e) {
        message = (e as Error).message;
        throw e;
      }
    }).to.throw(CliError, re);
    return message;
  }

  it('reads IDENTITY:HEXKEY lines, skips comments and blank lines, and loads each key into a Secret', () => {
    const p = file('two.psk', `# a comment\n\n  alice : ${KEY_A}\r\nhost:with:colons:${KEY_B.toUpperCase()}\n`);
    const keys = loadPskFile(p);
    expect(keys.map((k) => [k.identity, k.line])).to.deep.equal([
      ['alice', 3],
      ['host:with:colons', 4],
    ]);
    expect(keys[0]!.secret.length).to.equal(32);
    expect(crypto.timingSafeEqual(keys[0]!.secret, Buffer.from(KEY_A, 'hex'))).to.equal(true);
    expect(crypto.timingSafeEqual(keys[1]!.secret, Buffer.from(KEY_B, 'hex'))).to.equal(true);
    for (const k of keys) k.secret.destroy();
  });

  it('a bare key takes --psk-identity; without one it is an error', () => {
    const p = file('bare.psk', `${KEY_A}\n`);
    cliError(() => loadPskFile(p), /line 1: the key has no identity: write the line as IDENTITY:HEXKEY, or give --psk-identity NAME/);
    const [k] = loadPskFile(p, 'from-flag');
    expect(k!.identity).to.equal('from-flag');
    k!.secret.destroy();
  });

  it('refuses short, odd, non-hex and duplicate keys and empty files, without echoing the key', () => {
    const short = file('short.psk', `x:${'ab'.repeat(31)}\n`);
    cliError(() => loadPskFile(short), /line 1: the key is 31 bytes; a PSK must be 32 to 65536 bytes/);
    const secretText = `${'zz'.repeat(32)}`;
    const bad = file('bad.psk', `x:${secretText}\n`);
    const m = cliError(() => loadPskFile(bad), /line 1: the key must be hexadecimal, at least 32 bytes \(64 hex digits\)/);
    expect(m).not.to.include(secretText);
    cliError(() => loadPskFile(file('odd.psk', `x:${KEY_A}a\n`)), /must be hexadecimal/);
    cliError(() => loadPskFile(file('dup.psk', `x:${KEY_A}\nx:${KEY_B}\n`)), /line 2: the identity "x" appears twice/);
    cliError(() => loadPskFile(file('empty.psk', '# nothing\n\n')), /holds no key/);
    cliError(() => loadPskFile(file('noid.psk', `:${KEY_A}\n`)), /line 1: the identity before ":" is empty/);
    cliError(() => loadPskFile(join(dir, 'missing.psk')), /cannot read the PSK file .*missing\.psk: no such file/);
  });

  it('refuses a file the group or others may access, like ssh, naming the mode and the fix', function () {
    if (!posix) this.skip();
    for (const mode of [0o644, 0o640, 0o604, 0o660, 0o602]) {
      const p = file(`open-${mode.toString(8)}.psk`, `x:${KEY_A}\n`, mode);
      cliError(
        () => loadPskFile(p),
        new RegExp(`^permissions 0${mode.toString(8)} for the PSK file ${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} are too open: it must be accessible by its owner only; run chmod 600 `),
      );
    }
    for (const mode of [0o600, 0o400]) {
      const [k] = loadPskFile(file(`ok-${mode.toString(8)}.psk`, `x:${KEY_A}\n`, mode));
      k!.secret.destroy();
    }
  });

  it('a client uses the one key of its file, or the one --psk-identity names; a server takes them all', () => {
    const one = file('one.psk', `alice:${KEY_A}\n`);
    const two = file('pair.psk', `alice:${KEY_A}\nbob:${KEY_B}\n`);
    const c1 = pskFromFlags({ 'psk-file': one }, 'client')!;
    expect(c1.keys.map((k) => k.identity)).to.deep.equal(['alice']);
    c1.destroy();
    cliError(() => pskFromFlags({ 'psk-file': two }, 'client'), /holds 2 keys: choose the one to use with --psk-identity NAME/);
    const c2 = pskFromFlags({ 'psk-file': two, 'psk-identity': 'bob' }, 'client')!;
    expect(c2.keys.map((k) => k.identity)).to.deep.equal(['bob']);
    c2.destroy();
    cliError(() => pskFromFlags({ 'psk-file': two, 'psk-identity': 'carol' }, 'client'), /holds no key for the identity "carol"/);
    const s = pskFromFlags({ 'psk-file': two }, 'server')!;
    expect(s.keys.map((k) => k.identity)).to.deep.equal(['alice', 'bob']);
    s.destroy();
    expect(pskFromFlags({}, 'server')).to.equal(undefined);
  });

  it('flag combinations: --legacy-v1 with --psk-file, --psk-identity alone, --groups on a v1 client', () => {
    const p = file('combo.psk', `alice:${KEY_A}\n`);
    expect(() => protocolFromFlags({ 'legacy-v1': true, 'psk-file': p }, 'client')).to.throw(UsageError, /--legacy-v1 cannot be combined with --psk-file: protocol v1 cannot authenticate/);
    expect(() => protocolFromFlags({ 'legacy-v1': true, 'psk-file': p }, 'server')).to.throw(UsageError, /--legacy-v1 cannot be combined with --psk-file/);
    expect(() => protocolFromFlags({ 'psk-identity': 'x' }, 'client')).to.throw(UsageError, /--psk-identity needs --psk-file/);
    expect(() => protocolFromFlags({ 'legacy-v1': true, groups: 'p384-mlkem1024' }, 'client')).to.throw(UsageError, /--groups applies to protocol v2/);
    const server = protocolFromFlags({ 'legacy-v1': true, groups: 'p384-mlkem1024' }, 'server');
    expect(server).to.include({ legacyV1: true });
    expect(server.groups).to.deep.equal(['p384-mlkem1024']);
    expect(server.listenPsk()).to.equal(undefined);
  });

  it('--groups: names in order, case and spaces forgiven; unknown or repeated names are usage errors', () => {
    expect(groupsFromFlag(undefined)).to.equal(undefined);
    expect(groupsFromFlag('')).to.equal(undefined);
    expect(groupsFromFlag(' P384-MLKEM1024 , x25519-mlkem768')).to.deep.equal(['p384-mlkem1024', 'x25519-mlkem768']);
    expect(() => groupsFromFlag('x25519')).to.throw(UsageError, /invalid --groups "x25519": unknown group "x25519"; expected x25519-mlkem1024, p384-mlkem1024, x25519-mlkem768/);
    expect(() => groupsFromFlag('p384-mlkem1024,p384-mlkem1024')).to.throw(UsageError, /appears twice/);
    expect(() => groupsFromFlag(',')).to.throw(UsageError, /name at least one group/);
  });
});

describe('cli: psk generate', function () {
  this.timeout(120_000);
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), 'qt-cli-pskgen-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));
  afterEach(killAll);

  it('writes a new random key with mode 0600, never prints it, and refuses to overwrite without --force', async () => {
    const p = join(dir, 'gen.psk');
    const r = await runCli(['psk', 'generate', p, '--identity', 'site-a']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.equal(`wrote a new 32-byte pre-shared key, identity "site-a", to ${p} (mode 0600)\nuse it on both ends: --psk-file ${p}\n`);
    if (posix) expect(statSync(p).mode & 0o777).to.equal(0o600);
    const text = readFileSync(p, 'utf8');
    const line = text.split('\n').find((l) => l.startsWith('site-a:'))!;
    const hex = line.slice('site-a:'.length);
    expect(hex).to.match(/^[0-9a-f]{64}$/);
    expect(r.stdout + r.stderr).not.to.include(hex);
    const [k] = loadPskFile(p);
    expect(k!.identity).to.equal('site-a');
    expect(crypto.timingSafeEqual(k!.secret, Buffer.from(hex, 'hex'))).to.equal(true);
    k!.secret.destroy();

    const again = await runCli(['psk', 'generate', p]);
    expect(again.code).to.equal(1);
    expect(again.stderr).to.equal(`quantum-vpn: ${p} already exists: choose another file, or replace it with --force\n`);
    expect(readFileSync(p, 'utf8')).to.equal(text);

    const forced = await runCli(['psk', 'generate', p, '--force', '--bytes', '48']);
    expect(forced.code, forced.stderr).to.equal(0);
    expect(forced.stdout).to.match(/^wrote a new 48-byte pre-shared key, identity "psk-[0-9a-f]{8}", to /);
    if (posix) expect(statSync(p).mode & 0o777).to.equal(0o600);
    expect(readFileSync(p, 'utf8')).to.match(/^psk-[0-9a-f]{8}:[0-9a-f]{96}$/m);
  });

  it('usage errors: no action, an unknown action, no FILE, "-", a short key', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['psk'], /^quantum-vpn psk: say what to do: generate$/m],
      [['psk', 'show'], /unknown action "show": expected generate/],
      [['psk', 'generate'], /psk generate needs the FILE to write/],
      [['psk', 'generate', '-'], /the key is never written to stdout/],
      [['psk', 'generate', join(dir, 'short.psk'), '--bytes', '16'], /--bytes must be 32 to 1024/],
    ];
    const results = await Promise.all(cases.map(([args]) => runCli(args)));
    for (const [i, [args, re]] of cases.entries()) {
      expect(results[i]!.code, args.join(' ')).to.equal(1);
      expect(results[i]!.stderr, args.join(' ')).to.match(re);
      expect(results[i]!.stderr).to.match(/^Usage: quantum-vpn psk generate FILE/m);
    }
  });
});

describe('cli: demo with --psk-file', function () {
  this.timeout(180_000);
  let dir: string;
  let fileA: string;
  let fileB: string;
  before(async () => {
    const made = await makePskFiles(['office', 'office']); // two keys under one identity
    dir = made.dir;
    [fileA, fileB] = made.files as [string, string];
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  afterEach(killAll);

  async function server(extra: string[]): Promise<{ proc: CliProcess; port: number }> {
    const proc = startCli(['demo', '--addr', '127.0.0.1:0', '--obs-addr', '', '--verbose', ...extra]);
    return { proc, port: await proc.listeningPort() };
  }

  it('the same file on both ends: both authenticate and report the identity', async () => {
    const { proc, port } = await server(['--psk-file', fileA]);
    await proc.waitFor(/^Pre-shared keys: every client must prove the key of the identity "office"$/m);
    const r = await runCli(['demo', '--mode', 'client', '--addr', `127.0.0.1:${port}`, '--psk-file', fileA, '--verbose', '--message', 'authenticated']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/^Tunnel: protocol v2, .+ \+ ML-KEM-\d+, AES-256-GCM, PSK identity "office"$/m);
    expect(r.stdout).to.match(/^Peer authenticated: yes, PSK identity "office"$/m);
    expect(r.stdout).to.match(/ClientHello sent: .*the PSK identity and its binder$/m);
    expect(r.stdout).to.match(/^Received: Echo: authenticated$/m);
    await proc.waitFor(/tunnel established: protocol v2, .*, PSK identity "office", session [0-9a-f]{16}/);
    // The key never reaches the output.
    const hex = readFileSync(fileA, 'utf8').match(/^office:([0-9a-f]+)$/m)![1]!;
    expect(r.stdout + r.stderr + proc.stdout + proc.stderr).not.to.include(hex);
  });

  it('different files fail with ERR_QT_PSK_MISMATCH on both ends; so does a client without a key', async () => {
    const { proc, port } = await server(['--psk-file', fileA]);
    const wrong = await runCli(['demo', '--mode', 'client', '--addr', `127.0.0.1:${port}`, '--psk-file', fileB]);
    expect(wrong.code).to.equal(1);
    expect(wrong.stdout).to.equal('');
    expect(wrong.stderr).to.match(/^quantum-vpn: cannot connect to 127\.0\.0\.1:\d+: .*\(ERR_QT_PSK_MISMATCH\)$/m);
    await proc.waitFor(/handshake failed: ERR_QT_PSK_MISMATCH/);
    const none = await runCli(['demo', '--mode', 'client', '--addr', `127.0.0.1:${port}`]);
    expect(none.code).to.equal(1);
    expect(none.stderr).to.match(/ERR_QT_PSK_MISMATCH/);
    // And a client with a key, against a server without one.
    const open = await server([]);
    const extra = await runCli(['demo', '--mode', 'client', '--addr', `127.0.0.1:${open.port}`, '--psk-file', fileA]);
    expect(extra.code).to.equal(1);
    expect(extra.stderr).to.match(/ERR_QT_PSK_MISMATCH/);
  });

  it('refuses a PSK file others can read, and --legacy-v1 with --psk-file, before connecting', async function () {
    if (!posix) this.skip();
    const open = join(dir, 'open.psk');
    writeFileSync(open, readFileSync(fileA));
    chmodSync(open, 0o644);
    const r = await runCli(['demo', '--mode', 'client', '--addr', '127.0.0.1:1', '--psk-file', open]);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.equal(`quantum-vpn: permissions 0644 for the PSK file ${open} are too open: it must be accessible by its owner only; run chmod 600 ${open}\n`);
    const srv = await runCli(['demo', '--addr', '127.0.0.1:0', '--obs-addr', '', '--psk-file', open]);
    expect(srv.code).to.equal(1);
    expect(srv.stdout).to.equal('');
    expect(srv.stderr).to.match(/^quantum-vpn: permissions 0644 .* too open/);
    const legacy = await runCli(['demo', '--mode', 'client', '--addr', '127.0.0.1:1', '--legacy-v1', '--psk-file', fileA]);
    expect(legacy.code).to.equal(1);
    expect(legacy.stderr).to.match(/^quantum-vpn demo: --legacy-v1 cannot be combined with --psk-file: protocol v1 cannot authenticate the peer$/m);
    expect(legacy.stderr).to.match(/^Usage: quantum-vpn demo/m);
  });
});
