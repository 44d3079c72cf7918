/**
 * `quantum-vpn forward --workers N`: handshakes per second with 1 and with N worker processes
 * (issue 11, item 3). Not part of `npm run bench`; run it from the repository root:
 *
 *   node --import tsx bench/forward-workers.bench.ts [--workers 1,2] [--rounds 3] [--seconds 8] [--warmup 1] [--concurrency 64] [--json PATH]
 *
 * Each round starts, for each worker count in turn (so the counts alternate and share the
 * machine's drift), a forward server (`node --import tsx lib/cli/main.ts forward --listen
 * 127.0.0.1:0 --to <echo> --no-auth --workers N`) in its own process tree, with a TCP echo service
 * in this process. This process is the client: `--concurrency` loops, each one tunnel at a time
 * (dial(), protocol v2 with its default group, send 16 bytes, read them back, close and wait for
 * the close), for `--warmup` seconds (default 1) and then `--seconds` measured. Reported per run: tunnels
 * completed per second, latency p50/p99 of one loop iteration, and the CPU the server's process
 * tree used per tunnel (the primary and its workers, from /proc). The summary is the median of the
 * rounds. Client and server share the machine's cores.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import * as os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dial } from '../lib/index.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const workerCounts = (flag('--workers') ?? '1,2').split(',').map(Number);
const rounds = Number(flag('--rounds') ?? 3);
const seconds = Number(flag('--seconds') ?? 8);
const concurrency = Number(flag('--concurrency') ?? 64);
const warmupSeconds = Number(flag('--warmup') ?? 1);
const jsonPath = resolve(flag('--json') ?? join(root, 'bench/results/forward-workers.json'));
const CLK_TCK = 100; // USER_HZ on Linux

interface Run {
  workers: number;
  round: number;
  tunnels: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  failed: number;
  /** CPU of the server's process tree per tunnel (user + system), in ms. */
  serverCpuMsPerTunnel: number;
  /** Of that, the top process's: the primary with workers, the whole server with 1. */
  topCpuMsPerTunnel: number;
  /** Of that, the kernel's (system time). */
  systemCpuMsPerTunnel: number;
  /** The server tree's CPU over the window, in cores (1.0 = one core busy). */
  serverCores: number;
  /** This process's (the client's) CPU over the window, in cores. */
  clientCores: number;
}

/** utime + stime (clock ticks) of `pid` and every process below it, and of `pid` alone. */
function treeTicks(pid: number): { tree: number; top: number; system: number } {
  const stats = new Map<number, { ppid: number; ticks: number; system: number }>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const text = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
      stats.set(Number(name), { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]), system: Number(fields[12]) });
    } catch {
      /* gone meanwhile */
    }
  }
  let total = 0;
  let system = 0;
  const queue = [pid];
  while (queue.length > 0) {
    const p = queue.pop()!;
    total += stats.get(p)?.ticks ?? 0;
    system += stats.get(p)?.system ?? 0;
    for (const [child, s] of stats) if (s.ppid === p) queue.push(child);
  }
  return { tree: total, top: stats.get(pid)?.ticks ?? 0, system };
}

function percentile(sorted: number[], q: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function startForward(workers: number, servicePort: number): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'lib/cli/main.ts', 'forward', '--listen', '127.0.0.1:0', '--to', `127.0.0.1:${servicePort}`, '--no-auth', '--workers', String(workers), '--drain-timeout', '0'], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  child.stderr!.on('data', () => undefined);
  const port = await new Promise<number>((resolvePort, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      text += d;
      const m = /listening on [^\s:]+:(\d+)/.exec(text);
      if (m) resolvePort(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`forward exited with code ${code}: ${text}`)));
  });
  return { child, port };
}

async function measure(workers: number, round: number, servicePort: number): Promise<Run> {
  const { child, port } = await startForward(workers, servicePort);
  const payload = Buffer.alloc(16, 0x61);
  let phase: 'warmup' | 'measure' | 'stop' = 'warmup';
  const latencies: number[] = [];
  let failed = 0;
  const loop = async () => {
    while (phase !== 'stop') {
      const started = performance.now();
      try {
        const tunnel = await dial(`127.0.0.1:${port}`, { handshakeTimeoutMs: 30_000 });
        const closed = once(tunnel, 'close');
        let got = 0;
        await new Promise<void>((resolveEcho, reject) => {
          tunnel.on('data', (d: Buffer) => {
            got += d.length;
            if (got >= payload.length) resolveEcho();
          });
          tunnel.once('error', reject);
          tunnel.write(payload);
        });
        tunnel.end();
        await closed;
        if (phase === 'measure') latencies.push(performance.now() - started);
      } catch {
        if (phase === 'measure') failed++;
      }
    }
  };
  const loops = Array.from({ length: concurrency }, loop);
  await new Promise((r) => setTimeout(r, warmupSeconds * 1_000));
  phase = 'measure';
  const t0 = performance.now();
  const ticks0 = treeTicks(child.pid!);
  const client0 = process.cpuUsage();
  await new Promise((r) => setTimeout(r, seconds * 1_000));
  const ticks1 = treeTicks(child.pid!);
  const client = process.cpuUsage(client0);
  const elapsed = (performance.now() - t0) / 1000;
  const tunnels = latencies.length;
  phase = 'stop';
  await Promise.all(loops);
  child.kill('SIGTERM');
  await once(child, 'exit');
  latencies.sort((a, b) => a - b);
  const cpuMs = ((ticks1.tree - ticks0.tree) / CLK_TCK) * 1000;
  const topMs = ((ticks1.top - ticks0.top) / CLK_TCK) * 1000;
  const systemMs = ((ticks1.system - ticks0.system) / CLK_TCK) * 1000;
  return {
    workers,
    round,
    tunnels,
    perSecond: Math.round((tunnels / elapsed) * 10) / 10,
    p50Ms: Math.round(percentile(latencies, 0.5) * 100) / 100,
    p99Ms: Math.round(percentile(latencies, 0.99) * 100) / 100,
    failed,
    serverCpuMsPerTunnel: tunnels > 0 ? Math.round((cpuMs / tunnels) * 1000) / 1000 : 0,
    topCpuMsPerTunnel: tunnels > 0 ? Math.round((topMs / tunnels) * 1000) / 1000 : 0,
    systemCpuMsPerTunnel: tunnels > 0 ? Math.round((systemMs / tunnels) * 1000) / 1000 : 0,
    serverCores: Math.round((cpuMs / 1000 / elapsed) * 100) / 100,
    clientCores: Math.round(((client.user + client.system) / 1e6 / elapsed) * 100) / 100,
  };
}

const service = createServer((s) => {
  s.on('error', () => undefined);
  s.pipe(s);
});
service.listen(0, '127.0.0.1');
await once(service, 'listening');
const servicePort = (service.address() as AddressInfo).port;

console.log(`node ${process.version}, ${os.availableParallelism()} CPUs (${os.cpus()[0]?.model ?? 'unknown'}), concurrency ${concurrency}, ${seconds} s per run, ${rounds} rounds`);
const runs: Run[] = [];
for (let round = 1; round <= rounds; round++) {
  for (const workers of workerCounts) {
    const run = await measure(workers, round, servicePort);
    runs.push(run);
    console.log(
      `round ${round}, ${workers} worker${workers === 1 ? '' : 's'}: ${run.perSecond} tunnels/s, p50 ${run.p50Ms} ms, p99 ${run.p99Ms} ms, ` +
        `server ${run.serverCores} cores, ${run.serverCpuMsPerTunnel} ms CPU per tunnel (top process ${run.topCpuMsPerTunnel}, system ${run.systemCpuMsPerTunnel}), client ${run.clientCores} cores, ${run.failed} failed`,
    );
  }
}
const summary = workerCounts.map((workers) => {
  const mine = runs.filter((r) => r.workers === workers);
  const rates = mine.map((r) => r.perSecond);
  return {
    workers,
    medianPerSecond: median(rates),
    minPerSecond: Math.min(...rates),
    maxPerSecond: Math.max(...rates),
    medianP50Ms: median(mine.map((r) => r.p50Ms)),
    medianP99Ms: median(mine.map((r) => r.p99Ms)),
    medianServerCores: median(mine.map((r) => r.serverCores)),
    medianServerCpuMsPerTunnel: median(mine.map((r) => r.serverCpuMsPerTunnel)),
    medianClientCores: median(mine.map((r) => r.clientCores)),
  };
});
console.log('\nmedians:');
for (const s of summary) {
  console.log(
    `  ${s.workers} worker${s.workers === 1 ? '' : 's'}: ${s.medianPerSecond} tunnels/s (${s.minPerSecond}-${s.maxPerSecond}), p50 ${s.medianP50Ms} ms, p99 ${s.medianP99Ms} ms, ` +
      `server ${s.medianServerCores} cores, ${s.medianServerCpuMsPerTunnel} ms CPU per tunnel, client ${s.medianClientCores} cores`,
  );
}
mkdirSync(dirname(jsonPath), { recursive: true });
writeFileSync(jsonPath, `${JSON.stringify({ node: process.version, cpus: os.availableParallelism(), concurrency, seconds, rounds, runs, summary }, null, 2)}\n`);
service.close();
