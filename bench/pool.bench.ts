/**
 * Connection setup latency through `quantum-vpn forward` with and without the client side's
 * tunnel pool (issue 12, item 2). Not part of the default `npm run bench`; run it with
 * `node scripts/bench.js --only pool` or from the repository root:
 *
 *   node --import tsx bench/pool.bench.ts [--connections 300] [--rounds 3] [--gap 20] [--min-idle 4] [--delay 0,10] [--json PATH]
 *
 * Setup, all on 127.0.0.1: a TCP echo service in this process; one forward server
 * (`forward --to <echo> --no-auth`, protocol v2, default group); two forward clients to it, one
 * plain (a dial per connection) and one with `--pool-min-idle N`, each a `quantum-vpn` process.
 * Measured: for each connection, the time from `connect()` to the forward client until the first
 * echoed byte is back (TCP connect, tunnel, the server's TCP connect to the service, one byte
 * there and back). With `--delay D` (ms, a list) a delay line (test/helpers/proxies.ts) sits
 * between the forward client and server, adding a round trip of 2·D as a network would; the
 * default measures direct loopback (0) and a 20 ms round trip (10). Connections are made one at a time, `--gap` ms apart (clients that make short
 * requests now and then, with time for the pool to refill). Each round runs both clients in turn
 * (alternating which goes first); reported are p10, p50 and p99 per round and the median over rounds.
 *
 * Then the library alone, in this process against a listener in this process: how long `dial()`
 * takes against how long `pool.take()` takes from a pool with `minIdle` ready tunnels, for the
 * same number of tunnels at the same pace.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTunnelPool, dial, listen } from '../lib/index.js';
import { type Proxy, startDelayProxy } from '../test/helpers/proxies.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const connections = Number(flag('--connections') ?? 300);
const rounds = Number(flag('--rounds') ?? 3);
const gapMs = Number(flag('--gap') ?? 20);
const minIdle = Number(flag('--min-idle') ?? 4);
/** One-way delays (ms) of a delay line between forward client and server; 0 = direct. */
const delays = (flag('--delay') ?? '0,10').split(',').map(Number);
const jsonPath = resolve(flag('--json') ?? join(root, 'bench/results/pool.json'));

/** A `quantum-vpn` process; resolves with it once it printed its listening port. */
async function quantumVpn(cliArgs: string[]): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'lib/cli/main.ts'), ...cliArgs], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderr!.resume();
  let out = '';
  const port = await new Promise<number>((resolvePort, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /listening on [^\s]+:(\d+)/.exec(out);
      if (m) resolvePort(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`quantum-vpn ${cliArgs.join(' ')} exited with ${code}: ${out}`)));
  });
  child.stdout!.resume();
  return { child, port };
}

/** ms from connect() until the first echoed byte. */
async function setupLatency(port: number): Promise<number> {
  const started = performance.now();
  const s = connect({ host: '127.0.0.1', port, noDelay: true });
  s.on('error', () => undefined);
  await once(s, 'connect');
  s.write('x');
  await once(s, 'data');
  const ms = performance.now() - started;
  s.destroy();
  return ms;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** Library level: ms per dial() and per pool.take(), same pace. */
async function libraryLevel(): Promise<Array<{ mode: string; p50: number; p99: number }>> {
  const listener = listen({ host: '127.0.0.1', port: 0 });
  await listener.ready;
  listener.on('tunnel', (t) => t.on('error', () => undefined).resume());
  const address = `127.0.0.1:${listener.address().port}`;
  const pool = createTunnelPool(address, {}, { minIdle, max: minIdle + 8 });
  await new Promise((r) => setTimeout(r, 500));
  const rows: Array<{ mode: string; p50: number; p99: number }> = [];
  for (const [mode, open] of [['dial()', () => dial(address)], ['pool.take()', () => pool.take()]] as const) {
    const times: number[] = [];
    for (let i = 0; i < connections; i++) {
      const started = performance.now();
      const t = await open();
      times.push(performance.now() - started);
      t.destroy();
      await new Promise((r) => setTimeout(r, gapMs));
    }
    times.sort((a, b) => a - b);
    rows.push({ mode, p50: percentile(times, 50), p99: percentile(times, 99) });
  }
  await pool.close();
  await listener.close({ tunnels: true });
  return rows;
}

async function measure(port: number): Promise<{ p10: number; p50: number; p99: number; failed: number }> {
  const times: number[] = [];
  let failed = 0;
  for (let i = 0; i < connections; i++) {
    try {
      times.push(await setupLatency(port));
    } catch {
      failed++;
    }
    await new Promise((r) => setTimeout(r, gapMs));
  }
  times.sort((a, b) => a - b);
  return { p10: percentile(times, 10), p50: percentile(times, 50), p99: percentile(times, 99), failed };
}

const echo = createServer((s) => s.on('error', () => undefined).pipe(s));
echo.listen(0, '127.0.0.1');
await once(echo, 'listening');
const echoPort = (echo.address() as AddressInfo).port;
const children: ChildProcess[] = [];
const proxies: Proxy[] = [];
try {
  const server = await quantumVpn(['forward', '--no-auth', '--listen', '127.0.0.1:0', '--to', `127.0.0.1:${echoPort}`, '--backend-check-interval', '0']);
  children.push(server.child);
  const results: Array<{ delayMs: number; round: number; mode: string; p10: number; p50: number; p99: number; failed: number }> = [];
  const summary: Array<{ delayMs: number; mode: string; p10: number; p50: number; p99: number; failed: number }> = [];
  for (const delayMs of delays) {
    // A delay line between the forward client and server stands for the network: RTT = 2 x delay.
    const proxy = delayMs > 0 ? await startDelayProxy({ targetPort: server.port, delayMs }) : undefined;
    if (proxy) proxies.push(proxy);
    const connectTo = `127.0.0.1:${proxy?.port ?? server.port}`;
    const plain = await quantumVpn(['forward', '--no-auth', '--listen', '0', '--connect', connectTo]);
    children.push(plain.child);
    const pooled = await quantumVpn(['forward', '--no-auth', '--listen', '0', '--connect', connectTo, '--pool-min-idle', String(minIdle)]);
    children.push(pooled.child);
    await new Promise((r) => setTimeout(r, 1000)); // the pool fills; the processes settle
    for (const port of [plain.port, pooled.port]) for (let i = 0; i < 10; i++) await setupLatency(port); // warm-up
    const modes = ['no pool', `--pool-min-idle ${minIdle}`] as const;
    for (let round = 1; round <= rounds; round++) {
      const order = round % 2 ? [[modes[0], plain.port], [modes[1], pooled.port]] as const : [[modes[1], pooled.port], [modes[0], plain.port]] as const;
      for (const [mode, port] of order) {
        const r = await measure(port);
        results.push({ delayMs, round, mode, ...r });
        console.log(`RTT ${2 * delayMs} ms, round ${round}, ${mode.padEnd(18)} p10 ${r.p10.toFixed(2)} ms  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms  failed ${r.failed}`);
      }
    }
    for (const mode of modes) {
      const mine = results.filter((r) => r.mode === mode && r.delayMs === delayMs);
      summary.push({ delayMs, mode, p10: median(mine.map((r) => r.p10)), p50: median(mine.map((r) => r.p50)), p99: median(mine.map((r) => r.p99)), failed: mine.reduce((n, r) => n + r.failed, 0) });
    }
    for (const c of [plain.child, pooled.child]) c.kill('SIGTERM');
  }
  console.log(`\nConnection setup (connect -> first echoed byte), ${connections} connections ${gapMs} ms apart, median of ${rounds} rounds:`);
  console.log('| Added RTT | Client side | p10 | p50 | p99 |\n|---:|---|---:|---:|---:|');
  for (const row of summary) console.log(`| ${2 * row.delayMs} ms | ${row.mode} | ${row.p10.toFixed(2)} ms | ${row.p50.toFixed(2)} ms | ${row.p99.toFixed(2)} ms |`);
  const library = await libraryLevel();
  console.log(`\nA tunnel in the library (this process; ${connections} tunnels ${gapMs} ms apart):\n| Call | p50 | p99 |\n|---|---:|---:|`);
  for (const r of library) console.log(`| ${r.mode} | ${r.p50.toFixed(3)} ms | ${r.p99.toFixed(3)} ms |`);
  mkdirSync(dirname(jsonPath), { recursive: true });
  writeFileSync(jsonPath, JSON.stringify({ connections, rounds, gapMs, minIdle, delays, node: process.version, results, summary, library }, null, 2));
  console.log(`\nwrote ${jsonPath}`);
} finally {
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? once(c, 'exit') : undefined)));
  await Promise.all(proxies.map((p) => p.close()));
  echo.close();
}
