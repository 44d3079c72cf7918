/**
 * quantum-vpn's command line as a user meets it: help, usage errors (exit 1 with usage on
 * stderr), version, the example list and the launcher. Each case spawns the CLI.
 */
import { existsSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { expect } from 'chai';
import { fips } from '../../lib/index.js';
import { killAll, ROOT, runCli } from './helpers.js';

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string> };
const COMMANDS = ['demo', 'bench', 'forward', 'psk', 'example', 'version', 'fips', 'help'];

const FLAGS: Record<string, string[]> = {
  demo: [
    '--mode', '--addr', '--message', '--verbose', '--obs-addr', '--log-level', '--log-format', '--tracing', '--cipher', '--fips', '--timeout', '--max-conns-per-ip',
    '--handshake-rate', '--groups', '--legacy-v1', '--psk-file', '--psk-identity',
  ],
  bench: ['--handshakes', '--throughput', '--size', '--duration', '--cipher', '--concurrency', '--json', '--fips', '--protocols', '--groups', '--legacy-v1'],
  forward: [
    '--listen', '--to', '--connect', '--cipher', '--obs-addr', '--log-level', '--log-format', '--tracing', '--fips', '--connect-timeout', '--linger', '--drain-timeout',
    '--backend-check-interval', '--groups', '--legacy-v1', '--psk-file', '--psk-identity', '--tickets',
  ],
  psk: ['--identity', '--bytes', '--force'],
  example: ['--list'],
  version: ['--json', '--fips'],
  fips: ['--dir', '--json'],
};

describe('cli: help and usage errors', function () {
  this.timeout(180_000); // each case starts a process: seconds each on a loaded machine
  afterEach(killAll);

  it('with no arguments prints the usage on stderr and exits 1', async () => {
    const r = await runCli([]);
    expect(r.code).to.equal(1);
    expect(r.stdout).to.equal('');
    expect(r.stderr).to.match(/^Usage: quantum-vpn <command> \[options\]$/m);
    for (const c of COMMANDS) expect(r.stderr).to.match(new RegExp(`^  ${c} `, 'm'));
  });

  it('help, --help, -h and -help print the usage on stdout and exit 0', async () => {
    for (const arg of ['help', '--help', '-h', '-help']) {
      const r = await runCli([arg]);
      expect(r.code, arg).to.equal(0);
      expect(r.stdout, arg).to.match(/Usage: quantum-vpn <command> \[options\]/);
      expect(r.stderr, arg).to.equal('');
    }
  });

  it('an unknown command says so, prints the usage and exits 1', async () => {
    const r = await runCli(['benchmark']); // the reference README's misspelling of `bench`
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/^Unknown command: benchmark$/m);
    expect(r.stderr).to.match(/Usage: quantum-vpn <command>/);
  });

  it('every command has --help (and -h, help <command>) listing its flags', async () => {
    for (const [cmd, flags] of Object.entries(FLAGS)) {
      const r = await runCli([cmd, '--help']);
      expect(r.code, cmd).to.equal(0);
      expect(r.stdout, cmd).to.match(new RegExp(`^Usage: quantum-vpn ${cmd}`, 'm'));
      for (const f of flags) expect(r.stdout, `${cmd} ${f}`).to.match(new RegExp(`^  ${f}\\b`, 'm'));
    }
    const short = await runCli(['bench', '-h']);
    expect(short.code).to.equal(0);
    expect(short.stdout).to.match(/^Usage: quantum-vpn bench/m);
    const viaHelp = await runCli(['help', 'forward']);
    expect(viaHelp.code).to.equal(0);
    expect(viaHelp.stdout).to.match(/^Usage: quantum-vpn forward/m);
  });

  it('bad flags and bad values print the reason and the command usage on stderr, exit 1', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['demo', '--bogus'], /unknown flag: --bogus/],
      [['demo', '--addr'], /flag needs a value: --addr/],
      [['demo', '--mode', 'relay'], /invalid --mode "relay"/],
      [['demo', '--log-level', 'loud'], /invalid --log-level "loud"/],
      [['demo', '--log-format', 'xml'], /invalid --log-format "xml"/],
      [['demo', '--tracing', 'jaeger'], /invalid --tracing "jaeger"/],
      [['demo', '--cipher', 'des'], /invalid --cipher "des"/],
      [['demo', '--addr', 'nowhere'], /invalid --addr "nowhere"/],
      [['demo', '--mode', 'client', '--timeout', '5'], /invalid --timeout "5"/],
      [['demo', 'extra'], /unexpected argument: extra/],
      [['demo', '--groups', 'x448-mlkem1024'], /invalid --groups "x448-mlkem1024": unknown group "x448-mlkem1024"/],
      [['demo', '--mode', 'client', '--legacy-v1', '--groups', 'p384-mlkem1024'], /--groups applies to protocol v2; with --legacy-v1 a client speaks protocol v1 only/],
      [['demo', '--mode', 'client', '--psk-identity', 'x'], /--psk-identity needs --psk-file/],
      [['forward', '--listen', '0', '--to', '127.0.0.1:1', '--legacy-v1', '--psk-file', '/nonexistent.psk'], /--legacy-v1 cannot be combined with --psk-file/],
      [['forward', '--listen', '0', '--connect', '127.0.0.1:1', '--legacy-v1', '--tickets'], /--tickets is protocol v2 resumption/],
      [['bench', '--handshakes', '1', '--legacy-v1', '--protocols', 'v2'], /give --legacy-v1 or --protocols, not both/],
      [['bench', '--handshakes', '1', '--protocols', 'v1', '--groups', 'p384-mlkem1024'], /--groups applies to protocol v2 runs/],
      [['bench'], /nothing to run/],
      [['bench', '--handshakes', 'many'], /invalid value "many" for --handshakes/],
      [['bench', '--throughput', '--size', '12XB'], /invalid --size "12XB"/],
      [['bench', '--throughput', '--duration', '10'], /invalid --duration "10"/],
      [['bench', '--handshakes', '1', '--concurrency', '0'], /--concurrency must be at least 1/],
      [['forward', '--to', '127.0.0.1:1'], /--listen is required/],
      [['forward', '--listen', ':0'], /exactly one of --to .* and --connect/],
      [['forward', '--listen', ':0', '--to', 'a:1', '--connect', 'b:2'], /exactly one of --to/],
      [['forward', '--listen', '0', '--connect', '127.0.0.1:0'], /invalid --connect "127.0.0.1:0"/],
      [['forward', '--listen', '0', '--connect', '127.0.0.1:1', '--handshake-rate', '5'], /--handshake-rate applies to the server side/],
      [['forward', '--listen', '0', '--connect', '127.0.0.1:1', '--backend-check-interval', '5s'], /--backend-check-interval applies to the server side/],
      [['forward', '--listen', '0', '--to', '127.0.0.1:1', '--drain-timeout', 'soon'], /invalid --drain-timeout "soon"/],
      [['example', 'nope'], /unknown example "nope"/],
      [['version', '--verbose'], /unknown flag: --verbose/],
    ];
    // A few at a time: each case is a process start.
    const results: Array<Awaited<ReturnType<typeof runCli>>> = [];
    for (let i = 0; i < cases.length; i += 4) results.push(...(await Promise.all(cases.slice(i, i + 4).map(([args]) => runCli(args)))));
    for (const [i, [args, reason]] of cases.entries()) {
      const r = results[i]!;
      const label = args.join(' ');
      expect(r.code, label).to.equal(1);
      expect(r.stderr, label).to.match(reason);
      expect(r.stderr, label).to.match(new RegExp(`^Usage: quantum-vpn ${args[0]}`, 'm'));
    }
  });

  it('version prints the package version, the addon OpenSSL and the FIPS state', async () => {
    const r = await runCli(['version']);
    expect(r.code).to.equal(0);
    expect(r.stdout).to.match(new RegExp(`^quantum-vpn version ${pkg.version.replace(/\./g, '\\.')}$`, 'm'));
    expect(r.stdout).to.match(/^OpenSSL: OpenSSL 3\.5\.\d+/m);
    expect(r.stdout).to.match(new RegExp(`^FIPS mode: ${fips.status().mode === 'fips' ? 'on' : 'off'}`, 'm'));
    const json = await runCli(['version', '--json']);
    const v = JSON.parse(json.stdout) as { version: string; openssl: string; fips: { enabled: boolean } };
    expect(v.version).to.equal(pkg.version);
    expect(v.openssl).to.match(/^OpenSSL 3\.5\./);
    expect(v.fips.enabled).to.equal(fips.status().mode === 'fips');
    const alias = await runCli(['--version']);
    expect(alias.stdout).to.equal(r.stdout);
  });

  it('example --list names the examples; example NAME prints one', async () => {
    const list = await runCli(['example', '--list']);
    expect(list.code).to.equal(0);
    expect(list.stdout.trim().split('\n').map((l) => l.split(/\s+/)[0])).to.deep.equal(['basic', 'streams', 'crypto', 'config', 'resumption', 'errors', 'security', 'identities']);
    const one = await runCli(['example', 'basic']);
    expect(one.code).to.equal(0);
    expect(one.stdout).to.match(/==== 1\. basic:/);
    expect(one.stdout).to.include("from 'quantum-tunnel'");
    expect(one.stdout).not.to.match(/==== 2\./);
  });

  it('package.json names bin/quantum-vpn.js, which runs dist/cli.js when it is built', function () {
    expect(pkg.bin['quantum-vpn']).to.equal('./bin/quantum-vpn.js');
    if (!existsSync(join(ROOT, 'dist', 'cli.js'))) this.skip(); // `npm run build` makes it
    const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'quantum-vpn.js'), 'version'], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
    expect(r.status).to.equal(0);
    expect(r.stdout).to.match(/^quantum-vpn version /m);
    const bad = spawnSync(process.execPath, [join(ROOT, 'bin', 'quantum-vpn.js'), 'nope'], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
    expect(bad.status).to.equal(1);
    expect(bad.stderr).to.match(/Unknown command: nope/);
  });
});
