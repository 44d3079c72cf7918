/**
 * What a new user runs into first: output piped into a program that stops reading
 * (`quantum-vpn version | head -1`), and a port that another program already holds. Each case
 * runs quantum-vpn as a real process.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import { CLI_ARGS, killAll, ROOT, runCli } from './helpers.js';

const WITHOUT_OTEL_SDK = fileURLToPath(new URL('./fixtures/without-otel-sdk.mjs', import.meta.url));

/**
 * Runs quantum-vpn with its stdout (or stderr) connected to a pipe whose reading end is closed
 * before the program writes anything: what `quantum-vpn ... | head -0` does to it.
 */
async function runIntoClosedPipe(args: string[], closed: 'stdout' | 'stderr'): Promise<{ code: number | null; signal: NodeJS.Signals | null; other: string }> {
  const child = spawn(process.execPath, [...CLI_ARGS, ...args], {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const gone = child[closed]!;
  gone.on('error', () => undefined);
  gone.destroy(); // the reader went away
  let other = '';
  const kept = child[closed === 'stdout' ? 'stderr' : 'stdout']!;
  kept.setEncoding('utf8').on('data', (d: string) => (other += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  clearTimeout(timer);
  return { code, signal, other };
}

/** A plain TCP server holding a port on 127.0.0.1 (another program, for quantum-vpn). */
async function occupy(): Promise<{ server: Server; port: number }> {
  const server = createServer((s) => s.destroy());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port };
}

describe('cli: output into a closed pipe', function () {
  this.timeout(120_000);

  it('`version | head -0`: exits 0 without a stack trace', async () => {
    const r = await runIntoClosedPipe(['version'], 'stdout');
    expect(r.signal).to.equal(null);
    expect(r.code, r.other).to.equal(0);
    expect(r.other).to.equal('');
  });

  it('`example` (many lines) into a closed pipe: exits 0, nothing on stderr', async () => {
    const r = await runIntoClosedPipe(['example'], 'stdout');
    expect(r.code, r.other).to.equal(0);
    expect(r.other).to.equal('');
  });

  it('help into a closed pipe, and a usage error whose stderr is closed: no stack trace, no crash', async () => {
    const help = await runIntoClosedPipe(['help'], 'stdout');
    expect(help.code, help.other).to.equal(0);
    expect(help.other).to.equal('');
    const usage = await runIntoClosedPipe(['demo', '--bogus'], 'stderr');
    expect(usage.signal).to.equal(null);
    expect(usage.code).to.equal(0);
    expect(usage.other).to.equal('');
  });
});

describe('cli: an address already in use', function () {
  this.timeout(120_000);
  const held: Server[] = [];

  afterEach(async () => {
    await killAll();
    await Promise.all(held.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
  });

  async function busyPort(): Promise<number> {
    const { server, port } = await occupy();
    held.push(server);
    return port;
  }

  /** Exit 1, nothing announced on stdout, one line on stderr naming the address, the flag and the code. */
  function expectAddressInUse(r: { code: number | null; stdout: string; stderr: string }, port: number, flag: string): void {
    expect(r.code, r.stderr).to.equal(1);
    expect(r.stdout, 'nothing is announced').to.equal('');
    // forward runs with --no-auth here, which warns first.
    const lines = r.stderr.trim().split('\n').filter((l) => !l.startsWith('warning: --no-auth'));
    expect(lines, r.stderr).to.have.length(1);
    expect(lines[0]).to.match(new RegExp(`^quantum-vpn: cannot listen on 127\\.0\\.0\\.1:${port} \\(${flag}\\): address already in use \\(ERR_QT_ADDRESS_IN_USE\\)`));
  }

  it('demo server: --obs-addr in use fails before anything is announced', async () => {
    const port = await busyPort();
    const r = await runCli(['demo', '--addr', '127.0.0.1:0', '--obs-addr', `127.0.0.1:${port}`]);
    expectAddressInUse(r, port, '--obs-addr');
    expect(r.stderr).to.include('--obs-addr ""'); // says how to turn it off
  });

  it('demo server: --addr in use', async () => {
    const port = await busyPort();
    const r = await runCli(['demo', '--addr', `127.0.0.1:${port}`, '--obs-addr', '127.0.0.1:0']);
    expectAddressInUse(r, port, '--addr');
  });

  it('forward server: --listen in use, and --obs-addr in use', async () => {
    const port = await busyPort();
    const listen = await runCli(['forward', '--no-auth', '--listen', `127.0.0.1:${port}`, '--to', '127.0.0.1:1', '--obs-addr', '127.0.0.1:0']);
    expectAddressInUse(listen, port, '--listen');
    const obs = await runCli(['forward', '--no-auth', '--listen', '127.0.0.1:0', '--to', '127.0.0.1:1', '--obs-addr', `127.0.0.1:${port}`]);
    expectAddressInUse(obs, port, '--obs-addr');
  });

  it('forward client: --listen in use, and --obs-addr in use', async () => {
    const port = await busyPort();
    const listen = await runCli(['forward', '--no-auth', '--listen', `127.0.0.1:${port}`, '--connect', '127.0.0.1:1', '--obs-addr', '127.0.0.1:0']);
    expectAddressInUse(listen, port, '--listen');
    const obs = await runCli(['forward', '--no-auth', '--listen', '127.0.0.1:0', '--connect', '127.0.0.1:1', '--obs-addr', `127.0.0.1:${port}`]);
    expectAddressInUse(obs, port, '--obs-addr');
  });
});

describe('cli: --tracing otel without the OpenTelemetry SDK installed', function () {
  this.timeout(60_000);
  afterEach(killAll);

  it('exits 1 with one line saying exactly what to install (a version that runs on Node 20)', async () => {
    const r = await runCli(['demo', '--mode', 'client', '--addr', '127.0.0.1:1', '--tracing', 'otel'], { nodeArgs: ['--import', WITHOUT_OTEL_SDK] });
    expect(r.code).to.equal(1);
    expect(r.stdout).to.equal('');
    expect(r.stderr).to.equal(
      'quantum-vpn: --tracing otel needs the OpenTelemetry SDK, which quantum-tunnel does not install: ' +
        'run `npm install @opentelemetry/sdk-node@0.223` in the project that runs quantum-vpn (with -g beside a global quantum-vpn), or use --tracing simple\n',
    );
  });
});
