/**
 * `quantum-vpn forward --keepalive / --idle-timeout`: a client whose path dies without a FIN is
 * found and its service connection closed; an idle forwarded connection is closed gracefully.
 *
 *   tunnel client (library) --relay that can freeze--> forward server --> TCP service
 */
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { expect } from 'chai';
import { dial } from '../../lib/index.js';
import { startFreezableRelay } from '../helpers/proxies.js';
import { killAll, runCli, startCli } from './helpers.js';

describe('quantum-vpn forward --keepalive and --idle-timeout', function () {
  this.timeout(30_000);
  let service: Server;
  const serviceSockets: Socket[] = [];
  let closedServiceSockets = 0;
  const cleanup: Array<() => void> = [];

  beforeEach(async () => {
    closedServiceSockets = 0;
    service = createServer((s) => {
      serviceSockets.push(s);
      s.on('error', () => undefined);
      s.on('close', () => closedServiceSockets++);
      s.pipe(s);
    });
    service.listen(0, '127.0.0.1');
    await once(service, 'listening');
  });

  afterEach(async () => {
    for (const c of cleanup.splice(0)) c();
    await killAll();
    for (const s of serviceSockets.splice(0)) s.destroy();
    await new Promise<void>((r) => service.close(() => r()));
  });

  it('--keepalive: a client gone silent is pinged, then its tunnel and service connection are closed', async () => {
    const servicePort = (service.address() as AddressInfo).port;
    const fserver = startCli(['forward', '--no-auth', '--listen', '127.0.0.1:0', '--to', `127.0.0.1:${servicePort}`, '--backend-check-interval', '0', '--keepalive', '150ms', '--log-level', 'info']);
    const path = await startFreezableRelay(await fserver.listeningPort());
    cleanup.push(() => void path.close());
    const t = await dial({ host: '127.0.0.1', port: path.port }, { allowHalfOpen: true, keepAliveMs: 0 });
    t.on('error', () => undefined);
    cleanup.push(() => t.destroy());
    t.write('hello');
    await once(t, 'data');
    expect(closedServiceSockets).to.equal(0);
    path.freeze(); // no FIN, no reset: the client's host is simply gone
    const [line] = await fserver.waitFor(/^.*connection ended abnormally.*$/m, 5000, 'stderr');
    expect(line).to.match(/keepalive|ERR_QT_TIMEOUT/);
    // The forwarder resets its service connection; its close reaches the service a moment later.
    for (const deadline = Date.now() + 3000; closedServiceSockets === 0 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 20));
    expect(closedServiceSockets, 'the service connection was closed').to.equal(1);
  });

  it('--idle-timeout: a forwarded connection without data is closed gracefully', async () => {
    const servicePort = (service.address() as AddressInfo).port;
    const fserver = startCli(['forward', '--no-auth', '--listen', '127.0.0.1:0', '--to', `127.0.0.1:${servicePort}`, '--backend-check-interval', '0', '--idle-timeout', '300ms']);
    const t = await dial({ host: '127.0.0.1', port: await fserver.listeningPort() }, { allowHalfOpen: true });
    cleanup.push(() => t.destroy());
    const errors: unknown[] = [];
    t.on('error', (e) => errors.push(e));
    t.write('hello');
    await once(t, 'data');
    t.resume();
    await once(t, 'end'); // the server's close_notify
    expect(errors).to.deep.equal([]);
    t.end();
    await once(t, 'close');
    expect(t.info().closeError).to.equal(undefined);
  });

  it('refuses a keepalive or idle timeout Node timers cannot hold', async () => {
    const r = await runCli(['forward', '--no-auth', '--listen', '127.0.0.1:0', '--to', '127.0.0.1:1', '--keepalive', '1000h']);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.include('--keepalive must be at most 24 days');
  });
});
