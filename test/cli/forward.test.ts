/**
 * `quantum-vpn forward` end to end: a real Redis server (redis-server from PATH) behind a forward
 * server, reached through a forward client with a raw RESP client, plus raw TCP services for the
 * reset and half-close cases:
 *
 *   RESP client --TCP--> forward client --tunnel--> forward server --TCP--> redis-server
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { delay, freePort, httpGet, killAll, makePskFiles, metricValue, runCli, startCli, type CliProcess } from './helpers.js';

// ---- a minimal RESP client -------------------------------------------------------------------

type Reply = string | number | Buffer | null | Error | Reply[];

/** Parses one RESP reply at `offset`; null if incomplete. */
function parseReply(buf: Buffer, offset: number): { value: Reply; next: number } | null {
  const eol = buf.indexOf('\r\n', offset);
  if (eol < 0) return null;
  const type = String.fromCharCode(buf[offset]!);
  const line = buf.toString('utf8', offset + 1, eol);
  switch (type) {
    case '+':
      return { value: line, next: eol + 2 };
    case '-':
      return { value: new Error(line), next: eol + 2 };
    case ':':
      return { value: Number(line), next: eol + 2 };
    case '$': {
      const n = Number(line);
      if (n < 0) return { value: null, next: eol + 2 };
      if (buf.length < eol + 2 + n + 2) return null;
      return { value: buf.subarray(eol + 2, eol + 2 + n), next: eol + 2 + n + 2 };
    }
    case '*': {
      const n = Number(line);
      const items: Reply[] = [];
      let next = eol + 2;
      for (let i = 0; i < n; i++) {
        const r = parseReply(buf, next);
        if (!r) return null;
        items.push(r.value);
        next = r.next;
      }
      return { value: items, next };
    }
    default:
      throw new Error(`bad RESP type ${JSON.stringify(type)}`);
  }
}

function encodeCommand(args: Array<string | Buffer>): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = typeof a === 'string' ? Buffer.from(a) : a;
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/** A raw `net` RESP connection: one command at a time, replies in order. */
class Resp {
  private buf = Buffer.alloc(0);
  private waiting: Array<(r: Reply) => void> = [];
  ended = false;
  closed = false;
  error: NodeJS.ErrnoException | undefined;
  readonly closedPromise: Promise<void>;

  constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      for (;;) {
        const r = parseReply(this.buf, 0);
        if (!r) break;
        this.buf = this.buf.subarray(r.next);
        this.waiting.shift()?.(r.value);
      }
    });
    socket.on('end', () => (this.ended = true));
    socket.on('error', (e) => (this.error = e));
    this.closedPromise = new Promise((resolve) => socket.once('close', () => {
      this.closed = true;
      resolve();
    }));
  }

  static async open(port: number): Promise<Resp> {
    const s = connect({ host: '127.0.0.1', port });
    await Promise.race([once(s, 'connect'), delay(10_000).then(() => { throw new Error('connect timed out'); })]);
    return new Resp(s);
  }

  command(...args: Array<string | Buffer>): Promise<Reply> {
    const reply = new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no reply to ${String(args[0])} within 15 s`)), 15_000);
      this.waiting.push((r) => {
        clearTimeout(timer);
        resolve(r);
      });
    });
    this.socket.write(encodeCommand(args));
    return reply;
  }

  async waitClosed(ms = 10_000): Promise<void> {
    await Promise.race([this.closedPromise, delay(ms).then(() => { throw new Error('socket did not close'); })]);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Polls `check` until it holds (at most `ms`). */
async function eventually(check: () => Promise<boolean> | boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(50);
  }
}

// ---- processes ----------------------------------------------------------------------------------

const redisAvailable = spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).status === 0;

async function startRedis(): Promise<{ proc: ChildProcess; port: number }> {
  const port = await freePort();
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'yes'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout!.resume();
  proc.stderr!.resume();
  await eventually(async () => {
    try {
      const c = await Resp.open(port);
      const ok = (await c.command('PING')) === 'PONG';
      c.destroy();
      return ok;
    } catch {
      return false;
    }
  }, 15_000, 'redis-server to answer PING');
  return { proc, port };
}

const AUTH_FLAGS = ['--psk-file', '--identity', '--server-key', '--known-servers'];
/** `--no-auth` unless the flags choose an authentication mode (forward refuses to run without one). */
function authOr(extra: readonly string[]): string[] {
  return extra.some((a) => AUTH_FLAGS.includes(a)) ? [] : ['--no-auth'];
}

/** forward server (--to target) and forward client in front of it; returns the client's port. */
async function forwardPair(targetPort: number, serverExtra: string[] = [], clientExtra: string[] = []): Promise<{ fserver: CliProcess; fclient: CliProcess; port: number; tunnelPort: number }> {
  const fserver = startCli(['forward', ...authOr(serverExtra), '--listen', '127.0.0.1:0', '--to', `127.0.0.1:${targetPort}`, '--linger', '2s', ...serverExtra]);
  const tunnelPort = await fserver.listeningPort();
  const fclient = startCli(['forward', ...authOr(clientExtra), '--listen', '0', '--connect', `127.0.0.1:${tunnelPort}`, '--linger', '2s', ...clientExtra]);
  const port = await fclient.listeningPort();
  return { fserver, fclient, port, tunnelPort };
}

/** CLIENT LIST names as seen by Redis itself (a direct connection). */
async function redisClientNames(redisPort: number): Promise<string[]> {
  const c = await Resp.open(redisPort);
  const list = String(await c.command('CLIENT', 'LIST'));
  c.destroy();
  return [...list.matchAll(/ name=(\S*)/g)].map((m) => m[1]!).filter((n) => n !== '');
}

describe('cli: forward with a real Redis server', function () {
  this.timeout(120_000);
  let redis: { proc: ChildProcess; port: number } | undefined;
  const sockets: Socket[] = [];

  before(async function () {
    if (!redisAvailable) {
      console.warn('    redis-server not found on PATH (apt-get install -y redis-server): skipping the Redis tests');
      this.skip();
    }
    redis = await startRedis();
  });

  after(async () => {
    if (redis) {
      redis.proc.kill('SIGKILL');
      await once(redis.proc, 'close');
    }
  });

  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await killAll();
  });

  async function client(port: number): Promise<Resp> {
    const c = await Resp.open(port);
    sockets.push(c.socket);
    return c;
  }

  it('PING, and SET/GET of a 1 MiB value round-trip through the tunnel to the real Redis', async () => {
    const { port, fserver } = await forwardPair(redis!.port, ['--obs-addr', '127.0.0.1:0']);
    const c = await client(port);
    expect(await c.command('PING')).to.equal('PONG');
    const value = randomBytes(1024 * 1024);
    expect(await c.command('SET', 'qt:big', value)).to.equal('OK');
    const back = (await c.command('GET', 'qt:big')) as Buffer;
    expect(Buffer.isBuffer(back)).to.equal(true);
    expect(back.equals(value)).to.equal(true);
    // The value really is in Redis: read it directly, bypassing the tunnel.
    const direct = await client(redis!.port);
    expect(((await direct.command('GET', 'qt:big')) as Buffer).equals(value)).to.equal(true);
    expect(await direct.command('STRLEN', 'qt:big')).to.equal(1024 * 1024);
    // Several connections at once, each its own tunnel.
    const many = await Promise.all([1, 2, 3, 4].map(() => client(port)));
    const replies = await Promise.all(many.map((m, i) => m.command('ECHO', `conn ${i}`)));
    expect(replies.map(String)).to.deep.equal(['conn 0', 'conn 1', 'conn 2', 'conn 3']);
    // The forward server's metrics saw the sessions.
    const metrics = await httpGet(await fserver.observabilityPort(), '/metrics');
    expect(metricValue(metrics.body, 'quantum_vpn_sessions_total')).to.be.at.least(5);
    expect(metricValue(metrics.body, 'quantum_vpn_bytes_received_total')).to.be.greaterThan(1024 * 1024);
  });

  it('behind a mutually authenticated forward, as docs/CLI.md shows it: keygen on both hosts, authorized peers, pinned server key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qt-forward-keys-'));
    try {
      const [serverKey, clientKey, strangerKey] = ['server', 'client', 'stranger'].map((n) => join(dir, `${n}.key`));
      for (const file of [serverKey, clientKey, strangerKey]) expect((await runCli(['keygen', file!])).code).to.equal(0);
      // The server admits the client's public key; the client pins the server's.
      writeFileSync(join(dir, 'authorized_peers'), `# who may reach Redis\n${readFileSync(`${clientKey}.pub`, 'utf8')}`);
      const { port, fserver } = await forwardPair(
        redis!.port,
        ['--identity', serverKey!, '--authorized-peers', join(dir, 'authorized_peers'), '--log-level', 'info'],
        ['--identity', clientKey!, '--server-key', `${serverKey}.pub`],
      );
      const c = await client(port);
      expect(await c.command('PING')).to.equal('PONG');
      expect(await c.command('SET', 'qt:auth', 'mutual')).to.equal('OK');
      expect(String(await c.command('GET', 'qt:auth'))).to.equal('mutual');
      // The server logged the client's fingerprint.
      const fingerprint = (await runCli(['fingerprint', `${clientKey}.pub`])).stdout.split(' ')[0]!.trim();
      await fserver.waitFor(new RegExp(`peer_fingerprint="?${fingerprint.replace(/[+/]/g, '\\$&')}`), 10_000, 'stderr');
      // A client whose key is not authorized gets nowhere near Redis.
      const intruder = startCli(['forward', '--listen', '0', '--connect', `127.0.0.1:${await fserver.listeningPort()}`, '--identity', strangerKey!, '--server-key', `${serverKey}.pub`]);
      const refused = await client(await intruder.listeningPort());
      await refused.waitClosed();
      await intruder.waitFor(/ERR_QT_UNKNOWN_PEER/, 10_000, 'stderr');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('half-close, app side: the app\'s FIN reaches Redis (it drops the client) and the app gets FIN back', async () => {
    const { port } = await forwardPair(redis!.port);
    const c = await client(port);
    expect(await c.command('CLIENT', 'SETNAME', 'qt-halfclose')).to.equal('OK');
    expect(await redisClientNames(redis!.port)).to.include('qt-halfclose');
    c.socket.end(); // FIN from the application
    await c.waitClosed();
    expect(c.ended, 'the app got a FIN').to.equal(true);
    expect(c.error).to.equal(undefined);
    await eventually(async () => !(await redisClientNames(redis!.port)).includes('qt-halfclose'), 10_000, 'Redis to drop the connection');
  });

  it('half-close, service side: QUIT makes Redis reply and close; the app gets +OK then FIN', async () => {
    const { port } = await forwardPair(redis!.port);
    const c = await client(port);
    expect(await c.command('QUIT')).to.equal('OK');
    await c.waitClosed();
    expect(c.ended).to.equal(true);
    expect(c.error).to.equal(undefined);
  });

  it('Redis killing the connection (CLIENT KILL) closes the app connection', async () => {
    const { port } = await forwardPair(redis!.port);
    const c = await client(port);
    const id = await c.command('CLIENT', 'ID');
    const admin = await client(redis!.port);
    expect(await admin.command('CLIENT', 'KILL', 'ID', String(id))).to.equal(1);
    await c.waitClosed();
  });

  it('a reset from the app tears down the Redis connection', async () => {
    const { port } = await forwardPair(redis!.port);
    const c = await client(port);
    expect(await c.command('CLIENT', 'SETNAME', 'qt-reset')).to.equal('OK');
    c.socket.resetAndDestroy();
    await eventually(async () => !(await redisClientNames(redis!.port)).includes('qt-reset'), 10_000, 'Redis to lose the connection');
  });

  it('SIGTERM on the forward server with --drain-timeout 0 closes tunnels gracefully at once: exit 0, the app gets FIN', async () => {
    const { port, fserver, fclient } = await forwardPair(redis!.port, ['--drain-timeout', '0']);
    const c = await client(port);
    expect(await c.command('PING')).to.equal('PONG');
    fserver.kill('SIGTERM');
    expect(await fserver.exit()).to.equal(0);
    expect(fserver.stdout).to.match(/^SIGTERM received: closing 1 open connection and shutting down$/m);
    expect(fserver.stdout).to.match(/^forwarder stopped$/m);
    await c.waitClosed();
    expect(c.ended).to.equal(true);
    // With the server gone, new connections through the client are refused (reset). The reset
    // can arrive before the connection is even reported as established.
    let refused = false;
    try {
      const late = await client(port);
      await late.waitClosed();
      refused = late.ended || late.error !== undefined;
    } catch (e) {
      refused = (e as NodeJS.ErrnoException).code === 'ECONNRESET';
    }
    expect(refused).to.equal(true);
    fclient.kill('SIGTERM');
    expect(await fclient.exit()).to.equal(0);
  });
});

describe('cli: forward with raw TCP services (resets and ends)', function () {
  this.timeout(120_000);
  const servers: Server[] = [];
  const sockets: Socket[] = [];

  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await killAll();
    await Promise.all(servers.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
  });

  /** A TCP service on a free port; each connection is handed to `onSocket`. */
  async function service(onSocket: (s: Socket) => void): Promise<number> {
    const server = createServer({ allowHalfOpen: true }, (s) => {
      sockets.push(s);
      s.on('error', () => undefined);
      onSocket(s);
    });
    servers.push(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return (server.address() as AddressInfo).port;
  }

  async function app(port: number): Promise<{ socket: Socket; data: () => Buffer; ended: Promise<void>; closed: Promise<{ error?: NodeJS.ErrnoException }> }> {
    const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    sockets.push(socket);
    const chunks: Buffer[] = [];
    let error: NodeJS.ErrnoException | undefined;
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', (e) => (error = e));
    const ended = new Promise<void>((resolve) => socket.once('end', () => resolve()));
    const closed = new Promise<{ error?: NodeJS.ErrnoException }>((resolve) => socket.once('close', () => resolve({ error })));
    await once(socket, 'connect');
    return { socket, data: () => Buffer.concat(chunks), ended, closed };
  }

  it('a service that resets: the app sees ECONNRESET', async () => {
    const port = await service((s) => s.once('data', () => s.resetAndDestroy()));
    const pair = await forwardPair(port);
    const a = await app(pair.port);
    a.socket.write('trigger');
    const { error } = await a.closed;
    expect(error?.code).to.equal('ECONNRESET');
  });

  it('an app that resets: the service sees the connection reset', async () => {
    let gotData!: () => void;
    const connected = new Promise<void>((resolve) => (gotData = resolve));
    let serviceClosed!: Promise<{ error?: NodeJS.ErrnoException }>;
    const port = await service((s) => {
      let error: NodeJS.ErrnoException | undefined;
      s.on('error', (e) => (error = e));
      serviceClosed = new Promise((resolve) => s.once('close', () => resolve({ error })));
      s.once('data', () => gotData());
    });
    const pair = await forwardPair(port);
    const a = await app(pair.port);
    a.socket.write('hello');
    await connected;
    a.socket.resetAndDestroy();
    const { error } = await serviceClosed;
    expect(error?.code).to.equal('ECONNRESET');
  });

  it('the service\'s data and FIN reach the app in order; what the app sent earlier reaches the service', async () => {
    const payload = randomBytes(3 * 1024 * 1024);
    let serviceGot!: Promise<Buffer>;
    const port = await service((s) => {
      const chunks: Buffer[] = [];
      s.on('data', (d: Buffer) => chunks.push(d));
      serviceGot = new Promise((resolve) => s.once('end', () => resolve(Buffer.concat(chunks))));
      s.end(payload); // 3 MiB, then FIN
    });
    const pair = await forwardPair(port);
    const a = await app(pair.port);
    a.socket.write('request bytes');
    await a.ended; // FIN after all 3 MiB
    expect(a.data().equals(payload)).to.equal(true);
    // Half-close: the service's FIN closed one direction only; the app's own FIN closes the other.
    a.socket.end();
    const got = await serviceGot;
    expect(got.toString()).to.equal('request bytes');
    const { error } = await a.closed;
    expect(error).to.equal(undefined);
  });

  it('a one-shot client (request, FIN, then wait) gets the reply the service sends after the FIN', async () => {
    const port = await service((s) => {
      const chunks: Buffer[] = [];
      s.on('data', (d: Buffer) => chunks.push(d));
      s.once('end', () => s.end(`reply to ${Buffer.concat(chunks).toString()}`)); // answers only after the FIN
    });
    const pair = await forwardPair(port);
    const a = await app(pair.port);
    a.socket.end('one-shot request'); // like `nc -N`: send, half-close, read the answer
    await a.ended;
    expect(a.data().toString()).to.equal('reply to one-shot request');
    const { error } = await a.closed;
    expect(error).to.equal(undefined);
  });

  it('a service that cannot be reached: the app connection is reset', async () => {
    const dead = await service(() => undefined);
    await new Promise<void>((r) => servers.pop()!.close(() => r())); // nothing listens there now
    const pair = await forwardPair(dead);
    const a = await app(pair.port);
    const { error } = await a.closed;
    expect(error?.code).to.equal('ECONNRESET');
    await pair.fserver.waitFor(/WARN +cannot connect to the service .*error="the service 127\.0\.0\.1:\d+ cannot be reached \(ERR_QT_BACKEND_UNAVAILABLE, ECONNREFUSED\)"/, 10_000, 'stderr');
  });
});

describe('cli: forward readiness, failure metrics and drain', function () {
  this.timeout(120_000);
  const servers: Server[] = [];
  const sockets: Socket[] = [];

  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await killAll();
    await Promise.all(servers.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
  });

  /** An echo service on `port` (0 = any); counts the connections it accepted. */
  async function echoService(port = 0): Promise<{ server: Server; port: number; accepted: () => number }> {
    let accepted = 0;
    const server = createServer({ allowHalfOpen: true }, (s) => {
      accepted++;
      sockets.push(s);
      s.on('error', () => undefined);
      s.pipe(s);
    });
    servers.push(server);
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
    return { server, port: (server.address() as AddressInfo).port, accepted: () => accepted };
  }

  async function stop(server: Server): Promise<void> {
    servers.splice(servers.indexOf(server), 1);
    for (const s of sockets.splice(0)) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  }

  async function readyz(obsPort: number): Promise<{ status: number; body: Record<string, unknown> }> {
    const r = await httpGet(obsPort, '/readyz');
    return { status: r.status, body: JSON.parse(r.body) as Record<string, unknown> };
  }

  /** An app connection through the forward client; resolves with helpers to talk and watch. */
  async function app(port: number): Promise<{ socket: Socket; echo: (text: string) => Promise<string>; ended: Promise<void>; closed: Promise<void> }> {
    const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    sockets.push(socket);
    socket.on('error', () => undefined);
    let buf = '';
    const waiters: Array<() => void> = [];
    socket.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      for (const w of waiters.splice(0)) w();
    });
    const ended = new Promise<void>((resolve) => socket.once('end', () => resolve()));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    // A forwarder that refuses may reset the connection before 'connect' is seen here (under
    // load): that is a closed connection too, which the callers check, not a failed test.
    await new Promise<void>((resolve) => {
      socket.once('connect', resolve);
      socket.once('close', resolve);
    });
    const echo = async (text: string): Promise<string> => {
      buf = '';
      socket.write(text);
      const deadline = Date.now() + 15_000;
      while (buf.length < text.length) {
        if (Date.now() > deadline) throw new Error(`no echo of ${JSON.stringify(text)} (got ${JSON.stringify(buf)})`);
        await Promise.race([new Promise<void>((r) => waiters.push(r)), delay(200)]);
      }
      return buf;
    };
    return { socket, echo, ended, closed };
  }

  it('/readyz is 503 while the --to service is down and 200 once it answers; /health says why', async () => {
    const port = await freePort(); // nothing listens there yet
    const fserver = startCli(['forward', '--no-auth', '--listen', '127.0.0.1:0', '--to', `127.0.0.1:${port}`, '--obs-addr', '127.0.0.1:0', '--backend-check-interval', '200ms']);
    const obsPort = await fserver.observabilityPort();
    const down = await readyz(obsPort);
    expect(down.status).to.equal(503);
    expect(down.body.ready).to.equal(false);
    const health = JSON.parse((await httpGet(obsPort, '/health')).body) as { status: string; checks: Record<string, { status: string; detail: string }> };
    expect(health.status).to.equal('degraded');
    expect(health.checks.backend!.status).to.equal('warn');
    expect(health.checks.backend!.detail).to.equal(`127.0.0.1:${port} unreachable: ECONNREFUSED`);
    expect(metricValue((await httpGet(obsPort, '/metrics')).body, 'quantum_vpn_forward_backend_up')).to.equal(0);
    await fserver.waitFor(/WARN +backend unreachable .*ECONNREFUSED/, 10_000, 'stderr');

    const service = await echoService(port);
    await eventually(async () => (await readyz(obsPort)).status === 200, 20_000, '/readyz to become 200');
    expect(metricValue((await httpGet(obsPort, '/metrics')).body, 'quantum_vpn_forward_backend_up')).to.equal(1);

    await stop(service.server);
    await eventually(async () => (await readyz(obsPort)).status === 503, 20_000, '/readyz to become 503 again');
  });

  it('the probe is cached: scrapes do not connect to the service', async () => {
    const service = await echoService();
    const fserver = startCli(['forward', '--no-auth', '--listen', '127.0.0.1:0', '--to', `127.0.0.1:${service.port}`, '--obs-addr', '127.0.0.1:0', '--backend-check-interval', '10m']);
    const obsPort = await fserver.observabilityPort();
    await eventually(() => service.accepted() === 1, 10_000, 'the start-up probe');
    for (let i = 0; i < 20; i++) expect((await readyz(obsPort)).status).to.equal(200);
    expect(service.accepted()).to.equal(1);
  });

  it('counts failures: backend (server side) and dial (client side) by reason', async () => {
    const deadPort = await freePort();
    const { fserver, fclient, port } = await (async () => {
      const fserver = startCli(['forward', '--no-auth', '--listen', '127.0.0.1:0', '--to', `127.0.0.1:${deadPort}`, '--obs-addr', '127.0.0.1:0', '--backend-check-interval', '0']);
      const tunnelPort = await fserver.listeningPort();
      const fclient = startCli(['forward', '--no-auth', '--listen', '0', '--connect', `127.0.0.1:${tunnelPort}`, '--obs-addr', '127.0.0.1:0']);
      return { fserver, fclient, port: await fclient.listeningPort() };
    })();
    const a = await app(port);
    await a.closed; // reset: the service cannot be reached
    const serverObs = await fserver.observabilityPort();
    await eventually(async () => /reason="refused"\} 1$/m.test((await httpGet(serverObs, '/metrics')).body), 10_000, 'the backend failure counted');
    const serverMetrics = (await httpGet(serverObs, '/metrics')).body;
    expect(serverMetrics).to.match(/^quantum_vpn_forward_backend_failures_total\{service="quantum-vpn",reason="refused"\} 1$/m);
    expect(serverMetrics).to.match(/^quantum_vpn_forward_backend_failures_total\{service="quantum-vpn",reason="timeout"\} 0$/m);
    expect(serverMetrics).not.to.include('forward_dial_failures_total'); // each side has its own
    // --backend-check-interval 0: no probe, so readiness does not follow the backend.
    expect((await readyz(serverObs)).status).to.equal(200);

    // Client side: a forward server that is not there, and a "server" that is not a forward server.
    const clientObs = await fclient.observabilityPort();
    fserver.kill('SIGTERM');
    expect(await fserver.exit()).to.equal(0);
    const b = await app(port);
    await b.closed;
    const http = createServer((s) => {
      sockets.push(s);
      s.on('error', () => undefined);
      s.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
    });
    servers.push(http);
    http.listen(0, '127.0.0.1');
    await once(http, 'listening');
    const toHttp = startCli(['forward', '--no-auth', '--listen', '0', '--connect', `127.0.0.1:${(http.address() as AddressInfo).port}`, '--obs-addr', '127.0.0.1:0']);
    const c = await app(await toHttp.listeningPort());
    await c.closed;
    await eventually(async () => /reason="refused"\} 1$/m.test((await httpGet(clientObs, '/metrics')).body), 10_000, 'the refused dial counted');
    const httpObs = await toHttp.observabilityPort();
    await eventually(async () => /reason="handshake"\} 1$/m.test((await httpGet(httpObs, '/metrics')).body), 10_000, 'the failed handshake counted');
    const clientMetrics = (await httpGet(httpObs, '/metrics')).body;
    expect(clientMetrics).to.match(/^quantum_vpn_forward_dial_failures_total\{service="quantum-vpn",reason="handshake"\} 1$/m);
    expect(clientMetrics).not.to.include('forward_backend');
  });

  it('SIGTERM drains: new connections are refused and /readyz is 503 at once, open ones go on until they end', async () => {
    const service = await echoService();
    const fserver = startCli(['forward', '--no-auth', '--listen', '127.0.0.1:0', '--to', `127.0.0.1:${service.port}`, '--obs-addr', '127.0.0.1:0', '--drain-timeout', '2m']);
    const tunnelPort = await fserver.listeningPort();
    const obsPort = await fserver.observabilityPort();
    const fclient = startCli(['forward', '--no-auth', '--listen', '0', '--connect', `127.0.0.1:${tunnelPort}`]);
    const port = await fclient.listeningPort();
    const a = await app(port);
    expect(await a.echo('before')).to.equal('before');

    fserver.kill('SIGTERM');
    await fserver.waitFor(/^SIGTERM received: no longer accepting; waiting up to 120s for 1 open connection to finish$/m);
    expect((await readyz(obsPort)).status).to.equal(503);
    // A new connection gets no tunnel: the forward server no longer accepts.
    const late = await app(port);
    await late.closed;
    // The open one still works, both ways.
    expect(await a.echo('during the drain')).to.equal('during the drain');
    expect(fserver.child.exitCode).to.equal(null);
    // It ends: the forwarder stops at once, without waiting for the deadline.
    a.socket.end();
    await a.ended;
    expect(await fserver.exit(30_000)).to.equal(0);
    expect(fserver.stdout).to.match(/^forwarder stopped$/m);
    expect(fserver.stdout).not.to.match(/drain timeout/);
  });

  it('SIGTERM with --drain-timeout: at the deadline the open connections are closed gracefully (the app gets FIN)', async () => {
    const service = await echoService();
    const { fserver, port } = await forwardPair(service.port, ['--drain-timeout', '1s']);
    const a = await app(port);
    expect(await a.echo('held open')).to.equal('held open');
    fserver.kill('SIGTERM');
    expect(await fserver.exit(30_000)).to.equal(0);
    expect(fserver.stdout).to.match(/^SIGTERM received: no longer accepting; waiting up to 1s for 1 open connection to finish$/m);
    expect(fserver.stdout).to.match(/^drain timeout: closing 1 open connection$/m);
    await a.ended; // close_notify became a FIN, not a reset
  });
});

describe('cli: forward with protocol options (--psk-file, --tickets, --legacy-v1)', function () {
  this.timeout(180_000);
  const servers: Server[] = [];
  const sockets: Socket[] = [];
  /** Two files with different keys under one identity. */
  let keys: { dir: string; files: string[] };

  before(async () => (keys = await makePskFiles(['branch-office', 'branch-office'])));
  after(() => rmSync(keys.dir, { recursive: true, force: true }));

  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await killAll();
    await Promise.all(servers.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
  });

  async function echoService(): Promise<number> {
    const server = createServer({ allowHalfOpen: true }, (s) => {
      sockets.push(s);
      s.on('error', () => undefined);
      s.pipe(s);
    });
    servers.push(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return (server.address() as AddressInfo).port;
  }

  async function pair(servicePort: number, serverExtra: string[], clientExtra: string[]): Promise<{ fserver: CliProcess; fclient: CliProcess; port: number }> {
    const fserver = startCli(['forward', ...authOr(serverExtra), '--listen', '127.0.0.1:0', '--to', `127.0.0.1:${servicePort}`, '--log-level', 'info', ...serverExtra]);
    const tunnelPort = await fserver.listeningPort();
    const fclient = startCli(['forward', ...authOr(clientExtra), '--listen', '0', '--connect', `127.0.0.1:${tunnelPort}`, '--log-level', 'info', ...clientExtra]);
    return { fserver, fclient, port: await fclient.listeningPort() };
  }

  /** One app connection: sends `text`, returns what came back before the connection closed. */
  async function roundTrip(port: number, text: string): Promise<{ reply: string; error?: string }> {
    const socket = connect({ host: '127.0.0.1', port });
    sockets.push(socket);
    let reply = '';
    let error: string | undefined;
    socket.setEncoding('utf8').on('data', (d: string) => {
      reply += d;
      if (reply.length >= text.length) socket.end();
    });
    socket.on('error', (e: NodeJS.ErrnoException) => (error = e.code));
    socket.write(text);
    await Promise.race([new Promise((resolve) => socket.once('close', resolve)), delay(15_000)]);
    return { reply, error };
  }

  it('the same --psk-file on both sides: authenticated tunnels, the identity and protocol in the logs; --tickets resumes', async () => {
    const port = await echoService();
    const { fserver, fclient, port: appPort } = await pair(port, ['--psk-file', keys.files[0]!, '--tickets'], ['--psk-file', keys.files[0]!, '--tickets']);
    expect((await roundTrip(appPort, 'first')).reply).to.equal('first');
    expect((await roundTrip(appPort, 'second')).reply).to.equal('second');
    const opened = /INFO +connection opened .*protocol=v2 group="[^"]+ \+ ML-KEM-1024" peer_identity=branch-office suite=AES-256-GCM resumed=(true|false)/g;
    await fserver.waitFor(/connection opened .*resumed=true/, 20_000, 'stderr');
    await fclient.waitFor(/connection opened .*resumed=true/, 20_000, 'stderr');
    expect([...fserver.stderr.matchAll(opened)].map((m) => m[1])).to.deep.equal(['false', 'true']);
    expect([...fclient.stderr.matchAll(opened)].map((m) => m[1])).to.deep.equal(['false', 'true']);
  });

  it('different keys: the app connection is reset, and both sides log ERR_QT_PSK_MISMATCH', async () => {
    const port = await echoService();
    const { fserver, fclient, port: appPort } = await pair(port, ['--psk-file', keys.files[0]!], ['--psk-file', keys.files[1]!, '--obs-addr', '127.0.0.1:0']);
    const r = await roundTrip(appPort, 'refused');
    expect(r.reply).to.equal('');
    expect(r.error).to.equal('ECONNRESET');
    await fclient.waitFor(/WARN +cannot open a tunnel .*ERR_QT_PSK_MISMATCH/, 20_000, 'stderr');
    await fserver.waitFor(/WARN +handshake failed .*error=ERR_QT_PSK_MISMATCH/, 20_000, 'stderr');
    const metrics = (await httpGet(await fclient.observabilityPort(), '/metrics')).body;
    expect(metrics).to.match(/^quantum_vpn_forward_dial_failures_total\{service="quantum-vpn",reason="handshake"\} 1$/m);
  });

  it('--legacy-v1 on both sides carries the connection over protocol v1', async () => {
    const port = await echoService();
    const { fserver, fclient, port: appPort } = await pair(port, ['--legacy-v1'], ['--legacy-v1']);
    expect((await roundTrip(appPort, 'over v1')).reply).to.equal('over v1');
    await fserver.waitFor(/INFO +connection opened .*protocol=v1 suite=AES-256-GCM resumed=false/, 20_000, 'stderr');
    await fclient.waitFor(/INFO +connection opened .*protocol=v1 suite=AES-256-GCM/, 20_000, 'stderr');
    // A v2 client still gets through to the --legacy-v1 server.
    const v2 = startCli(['forward', '--no-auth', '--listen', '0', '--connect', `127.0.0.1:${await fserver.listeningPort()}`, '--log-level', 'info']);
    expect((await roundTrip(await v2.listeningPort(), 'over v2')).reply).to.equal('over v2');
    await fserver.waitFor(/INFO +connection opened .*protocol=v2 group=/, 20_000, 'stderr');
  });
});
