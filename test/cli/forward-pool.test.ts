/**
 * `quantum-vpn forward --connect ... --pool-min-idle N` end to end: the client side keeps N tunnels
 * open ahead of demand, each accepted TCP connection takes one, and the pool refills.
 *
 *   TCP client --> forward client (pool) --tunnel--> forward server --> echo service
 */
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { expect } from 'chai';
import { httpGet, killAll, runCli, startCli } from './helpers.js';

function poolGauge(metrics: string, state: string): number | undefined {
  const m = new RegExp(`^quantum_vpn_pool_tunnels\\{[^}]*state="${state}"[^}]*\\} (\\d+)$`, 'm').exec(metrics);
  return m ? Number(m[1]) : undefined;
}

function counter(metrics: string, name: string): number | undefined {
  const m = new RegExp(`^quantum_vpn_${name}(?:\\{[^}]*\\})? (\\d+)$`, 'm').exec(metrics);
  return m ? Number(m[1]) : undefined;
}

async function eventually(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Sends `text` and resolves with what comes back, then ends the connection. */
async function echoThrough(port: number, text: string): Promise<string> {
  const s: Socket = connect({ host: '127.0.0.1', port });
  await once(s, 'connect');
  s.write(text);
  let got = '';
  for await (const chunk of s) {
    got += String(chunk);
    if (got.length >= text.length) break;
  }
  s.destroy();
  return got;
}

describe('quantum-vpn forward --pool-min-idle', function () {
  this.timeout(30_000);
  let service: Server;

  beforeEach(async () => {
    service = createServer((s) => s.pipe(s).on('error', () => undefined));
    service.listen(0, '127.0.0.1');
    await once(service, 'listening');
  });

  afterEach(async () => {
    await killAll();
    await new Promise<void>((r) => service.close(() => r()));
  });

  it('keeps tunnels ready, hands one to each connection, refills, and drains on SIGTERM', async () => {
    const servicePort = (service.address() as AddressInfo).port;
    const fserver = startCli(['forward', '--no-auth', '--listen', '127.0.0.1:0', '--to', `127.0.0.1:${servicePort}`, '--backend-check-interval', '0']);
    const tunnelPort = await fserver.listeningPort();
    const fclient = startCli(['forward', '--no-auth', '--listen', '0', '--connect', `127.0.0.1:${tunnelPort}`, '--pool-min-idle', '2', '--obs-addr', '127.0.0.1:0']);
    const port = await fclient.listeningPort();
    const obsPort = await fclient.observabilityPort();
    const metrics = async () => (await httpGet(obsPort, '/metrics')).body;
    await eventually(async () => poolGauge(await metrics(), 'idle') === 2, 10_000, 'two ready tunnels');

    for (let i = 1; i <= 3; i++) {
      expect(await echoThrough(port, `hello ${i}`)).to.equal(`hello ${i}`);
      await eventually(async () => {
        const m = await metrics();
        return counter(m, 'pool_tunnels_taken_total') === i && poolGauge(m, 'idle') === 2;
      }, 10_000, `connection ${i} took a tunnel and the pool refilled`);
    }
    const m = await metrics();
    expect(counter(m, 'pool_tunnels_created_total')).to.equal(5);
    expect(m).to.not.match(/^quantum_vpn_pool_dial_failures_total\{[^}]*\} [1-9]/m);
    expect(m).to.match(/^quantum_vpn_pool_acquire_seconds_count\{[^}]*\} 3$/m);

    fclient.kill('SIGTERM');
    expect(await fclient.exit(10_000)).to.equal(0);
    expect(fclient.stdout).to.include('forwarder stopped');
    // The ready tunnels were closed with close_notify: the server saw no truncated tunnel.
    await new Promise((r) => setTimeout(r, 200));
    expect(fserver.stderr + fserver.stdout).to.not.match(/TRUNCATED|truncated/);
  });

  it('the server side refuses the pool flags; a bad --pool-max-lifetime stops the client before it starts', async () => {
    const r = await runCli(['forward', '--no-auth', '--listen', '127.0.0.1:0', '--to', '127.0.0.1:1', '--pool-min-idle', '1']);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.include('--pool-min-idle applies to the client side (--connect) only');
    const bad = await runCli(['forward', '--no-auth', '--listen', '0', '--connect', '127.0.0.1:1', '--pool-min-idle', '1', '--pool-max-lifetime', 'soon']);
    expect(bad.code).to.equal(1);
    expect(bad.stderr).to.match(/invalid --pool-max-lifetime "soon"/);
  });
});
