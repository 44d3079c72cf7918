/**
 * `quantum-vpn forward --workers N` end to end: the server side as a cluster of worker processes
 * on one port, reached with the library's dial() against a TCP echo service:
 *
 *   dial() --tunnel--> forward primary's port --round robin--> worker 1 | worker 2 --TCP--> echo
 */
import { once } from 'node:events';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { fips } from '../../lib/index.js'; // applies QUANTUM_TUNNEL_FIPS here as the CLI does
import { ClientTicketStore } from '../../lib/protocol/v2/tickets.js';
import { dial } from '../../lib/tunnel/dial.js';
import type { Tunnel } from '../../lib/tunnel/tunnel.js';
import { delay, httpGet, killAll, metricValue, runCli, startCli, type CliProcess } from './helpers.js';

/** Sends `text` through a new tunnel to the echo service and returns the tunnel and the echo. */
async function echo(port: number, text: string, keepOpen = false, ticketStore?: ClientTicketStore): Promise<{ tunnel: Tunnel; reply: string }> {
  const tunnel = await dial(`127.0.0.1:${port}`, { handshakeTimeoutMs: 15_000, ticketStore });
  const reply = new Promise<string>((resolve, reject) => {
    let got = '';
    tunnel.on('data', (d: Buffer) => {
      got += d.toString('utf8');
      if (got.length >= text.length) resolve(got);
    });
    tunnel.once('error', reject);
  });
  tunnel.write(text);
  const r = await reply;
  if (!keepOpen) tunnel.end();
  return { tunnel, reply: r };
}

/** The JSON log lines of a process's stderr with message `msg`. */
function logLines(p: CliProcess, msg: string): Array<Record<string, unknown>> {
  return p.stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((r) => r.msg === msg);
}

/** The worker pids /health names (`2 of 2 workers running (pids 11, 12)`), and the check. */
async function workersCheck(obsPort: number): Promise<{ status: string; detail: string; pids: number[] }> {
  const health = JSON.parse((await httpGet(obsPort, '/health')).body) as { checks: Record<string, { status: string; detail: string }> };
  const check = health.checks.workers!;
  const pids = (/pids ([\d, ]+)\)/.exec(check.detail)?.[1] ?? '').split(', ').filter((s) => s !== '').map(Number);
  return { ...check, pids };
}

async function until<T>(what: string, f: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(200);
  }
}

describe('cli: forward --workers (the server side on every core)', function () {
  this.timeout(90_000);
  let service: Server;
  let servicePort: number;
  const serviceSockets = new Set<Socket>();

  before(async () => {
    service = createServer((s) => {
      serviceSockets.add(s);
      s.once('close', () => serviceSockets.delete(s));
      s.on('error', () => undefined);
      s.pipe(s);
    });
    service.listen(0, '127.0.0.1');
    await once(service, 'listening');
    servicePort = (service.address() as AddressInfo).port;
  });

  after(async () => {
    for (const s of serviceSockets) s.destroy();
    await new Promise<void>((resolve) => service.close(() => resolve()));
  });

  afterEach(killAll);

  /** A forward server with two workers and the observability server, JSON logs at info. */
  async function startCluster(extra: string[] = []): Promise<{ fserver: CliProcess; port: number; obsPort: number }> {
    const fserver = startCli([
      'forward', '--listen', '127.0.0.1:0', '--to', `127.0.0.1:${servicePort}`, '--no-auth', '--workers', '2',
      '--obs-addr', '127.0.0.1:0', '--log-level', 'info', '--log-format', 'json', ...extra,
    ]);
    const port = await fserver.listeningPort(60_000);
    const obsPort = await fserver.observabilityPort();
    return { fserver, port, obsPort };
  }

  it('two workers serve one port: tunnels reach the service, both workers take connections, the primary sums their metrics', async () => {
    const { fserver, port, obsPort } = await startCluster();
    expect(fserver.stdout).to.match(/listening on 127\.0\.0\.1:\d+ \(tunnel\), forwarding to 127\.0\.0\.1:\d+ \(TCP\), 2 workers\n/);
    expect(fserver.stdout.match(/listening on/g)).to.have.length(1); // once, from the primary
    for (let i = 0; i < 6; i++) expect((await echo(port, `hello ${i}`)).reply).to.equal(`hello ${i}`);

    await fserver.waitFor(/(?:"msg":"connection closed".*\n[^]*){6}/, 10_000, 'stderr');
    const workers = logLines(fserver, 'connection opened').map((r) => r.worker);
    expect(workers).to.have.length(6);
    expect(new Set(workers)).to.deep.equal(new Set([1, 2]));

    const { status, pids } = await workersCheck(obsPort);
    expect(status).to.equal('pass');
    expect(pids).to.have.length(2);
    expect(pids).to.not.include(fserver.child.pid);

    const metrics = (await httpGet(obsPort, '/metrics')).body;
    expect(metricValue(metrics, 'quantum_vpn_sessions_total')).to.equal(6);
    expect(metricValue(metrics, 'quantum_vpn_handshake_duration_seconds_count')).to.equal(6);
    expect(metricValue(metrics, 'quantum_vpn_forward_workers')).to.equal(2);
    expect(metricValue(metrics, 'quantum_vpn_forward_backend_up')).to.equal(1); // min, not the sum
    // The workers run in the mode this process runs in (the FIPS job runs the suite in FIPS mode).
    expect(metricValue(metrics, 'quantum_vpn_fips_mode')).to.equal(fips.isEnabled() ? 1 : 0);
    expect((await httpGet(obsPort, '/readyz')).status).to.equal(200);
  });

  it('SIGTERM to the primary drains every worker: an open tunnel finishes, then exit 0', async () => {
    const { fserver, port, obsPort } = await startCluster(['--drain-timeout', '20s']);
    const { tunnel } = await echo(port, 'before', true);
    fserver.kill('SIGTERM');
    await fserver.waitFor(/SIGTERM received: draining 2 workers\n/);
    await fserver.waitFor(/worker \d: SIGTERM received: no longer accepting; waiting up to 20s for 1 open connection to finish\n/);
    expect((await httpGet(obsPort, '/readyz')).status).to.equal(503);
    // The open tunnel still works during the drain; its end lets the drain finish.
    const reply = new Promise<string>((resolve) => tunnel.once('data', (d: Buffer) => resolve(d.toString('utf8'))));
    tunnel.write('during');
    expect(await reply).to.equal('during');
    tunnel.end();
    expect(await fserver.exit(30_000)).to.equal(0);
    expect(fserver.stdout.match(/worker \d: forwarder stopped\n/g)).to.have.length(2);
    expect(fserver.stdout).to.match(/forwarder stopped\n$/);
    expect(fserver.stdout).to.not.match(/^forwarder stopped\n[^]+worker/m); // the primary's line is last
  });

  it('a worker that dies is replaced after a back-off; the sums keep what it had counted', async () => {
    const { fserver, port, obsPort } = await startCluster();
    for (let i = 0; i < 4; i++) await echo(port, `x${i}`);
    await until('4 sessions counted', async () => (metricValue((await httpGet(obsPort, '/metrics')).body, 'quantum_vpn_sessions_total') === 4 ? true : undefined));
    const before = await workersCheck(obsPort);
    const victim = before.pids[1]!;
    process.kill(victim, 'SIGKILL');

    await fserver.waitFor(new RegExp(`"msg":"worker exited unexpectedly".*"pid":${victim}`), 10_000, 'stderr');
    const exit = logLines(fserver, 'worker exited unexpectedly')[0]!;
    expect(exit).to.include({ component: 'workers', signal: 'SIGKILL', restart_in_ms: 1000 });
    const degraded = await workersCheck(obsPort);
    if (degraded.status !== 'pass') {
      // Caught within the back-off: /health names the dead worker and /readyz is 503.
      expect(degraded.status).to.equal('warn');
      expect(degraded.detail).to.match(new RegExp(`1 of 2 workers running: worker \\d \\(pid ${victim}\\) was killed by SIGKILL; restarting in 1s`));
    }
    const after = await until('a replacement', async () => {
      const c = await workersCheck(obsPort);
      return c.status === 'pass' ? c : undefined;
    });
    expect(after.pids).to.have.length(2);
    expect(after.pids).to.not.include(victim);
    expect(after.pids).to.include(before.pids[0]);
    expect(logLines(fserver, 'worker replaced')).to.have.length(1);

    const metrics = (await httpGet(obsPort, '/metrics')).body;
    expect(metricValue(metrics, 'quantum_vpn_forward_worker_restarts_total')).to.equal(1);
    expect(metricValue(metrics, 'quantum_vpn_sessions_total')).to.equal(4); // the dead worker's 2 are kept
    for (let i = 0; i < 4; i++) expect((await echo(port, `y${i}`)).reply).to.equal(`y${i}`);
    expect((await httpGet(obsPort, '/readyz')).status).to.equal(200);
  });

  it('--tickets: a ticket from one worker is not accepted by the other, which runs a full handshake; the primary warns', async () => {
    const { fserver, port } = await startCluster(['--tickets']);
    expect(fserver.stderr).to.match(/warning: --tickets with 2 workers: each worker has its own ticket key/);
    const store = new ClientTicketStore();
    try {
      const resumed: boolean[] = [];
      for (let i = 0; i < 4; i++) {
        const { tunnel, reply } = await echo(port, `t${i}`, false, store);
        expect(reply).to.equal(`t${i}`);
        resumed.push(tunnel.info().resumed);
        await delay(100); // the ticket arrives after the handshake
      }
      await fserver.waitFor(/(?:"msg":"connection opened".*\n[^]*){4}/, 10_000, 'stderr');
      const opened = logLines(fserver, 'connection opened');
      // Round robin alternates the workers, so each connection offers the other worker's ticket.
      const workers = opened.map((r) => r.worker);
      expect(workers.every((w, i) => i === 0 || w !== workers[i - 1]), `workers ${workers.join(',')}`).to.equal(true);
      expect(resumed).to.deep.equal([false, false, false, false]);
      expect(store.size).to.be.above(0); // tickets were issued: only their redemption failed
    } finally {
      store.destroy();
    }
    // The control: one process resumes with the same client.
    const single = startCli(['forward', '--listen', '127.0.0.1:0', '--to', `127.0.0.1:${servicePort}`, '--no-auth', '--tickets']);
    const singlePort = await single.listeningPort();
    const again = new ClientTicketStore();
    try {
      const first = await echo(singlePort, 'a', false, again);
      await delay(100);
      const second = await echo(singlePort, 'b', false, again);
      expect([first.tunnel.info().resumed, second.tunnel.info().resumed]).to.deep.equal([false, true]);
    } finally {
      again.destroy();
    }
  });

  describe('start-up errors fail fast with the single process\'s message and code', () => {
    let dir: string;
    before(() => {
      dir = mkdtempSync(join(tmpdir(), 'qt-cli-workers-'));
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    for (const [name, args] of [
      ['a bad identity file', () => ['--listen', '127.0.0.1:0', '--identity', join(dir, 'bad.key')]],
      ['--listen in use', (taken: number) => ['--listen', `127.0.0.1:${taken}`, '--no-auth']],
      ['--obs-addr in use', (taken: number) => ['--listen', '127.0.0.1:0', '--no-auth', '--obs-addr', `127.0.0.1:${taken}`]],
    ] as Array<[string, (taken: number) => string[]]>) {
      it(name, async () => {
        const key = join(dir, 'bad.key');
        writeFileSync(key, 'not a key\n');
        chmodSync(key, 0o600);
        const taken = createServer();
        taken.listen(0, '127.0.0.1');
        await once(taken, 'listening');
        try {
          const common = ['forward', '--to', `127.0.0.1:${servicePort}`, ...args((taken.address() as AddressInfo).port)];
          const single = await runCli(common);
          const started = Date.now();
          const workers = await runCli([...common, '--workers', '2']);
          expect(single.code).to.equal(1);
          expect(single.stderr).to.match(/^quantum-vpn: /m);
          expect(workers.code).to.equal(single.code);
          expect(workers.stderr).to.equal(single.stderr); // the same lines, once: no restart loop
          expect(workers.stdout).to.equal('');
          expect(Date.now() - started).to.be.below(15_000);
        } finally {
          taken.close();
        }
      });
    }
  });

  it('NODE_CLUSTER_SCHED_POLICY=none: the workers accept from the shared socket themselves, and tunnels work', async () => {
    const fserver = startCli(
      ['forward', '--listen', '127.0.0.1:0', '--to', `127.0.0.1:${servicePort}`, '--no-auth', '--workers', '2', '--log-level', 'info', '--log-format', 'json'],
      { env: { NODE_CLUSTER_SCHED_POLICY: 'none' } },
    );
    const port = await fserver.listeningPort(60_000);
    for (let i = 0; i < 4; i++) expect((await echo(port, `n${i}`)).reply).to.equal(`n${i}`);
    await fserver.waitFor(/(?:"msg":"connection opened".*\n[^]*){4}/, 10_000, 'stderr');
    const workers = logLines(fserver, 'connection opened').map((r) => r.worker);
    expect(workers.every((w) => w === 1 || w === 2)).to.equal(true);
    fserver.kill('SIGTERM');
    expect(await fserver.exit()).to.equal(0);
  });

  it('--workers is for the server side, and takes auto or 1 to 256', async () => {
    const client = await runCli(['forward', '--listen', '127.0.0.1:0', '--connect', '127.0.0.1:1', '--no-auth', '--workers', '2']);
    expect(client.code).to.equal(1);
    expect(client.stderr).to.match(/--workers applies to the server side \(--to\) only/);
    const zero = await runCli(['forward', '--listen', '127.0.0.1:0', '--to', '127.0.0.1:1', '--no-auth', '--workers', '0']);
    expect(zero.code).to.equal(1);
    expect(zero.stderr).to.match(/invalid --workers "0": expected auto or a number from 1 to 256/);
  });
});
