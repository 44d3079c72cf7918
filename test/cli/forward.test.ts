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
import { expect } from 'chai';
import { delay, freePort, httpGet, killAll, metricValue, startCli, type CliProcess } from './helpers.js';

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

/** forward server (--to target) and forward client in front of it; returns the client's port. */
async function forwardPair(targetPort: number, serverExtra: string[] = []): Promise<{ fserver: CliProcess; fclient: CliProcess; port: number; tunnelPort: number }> {
  const fserver = startCli(['forward', '--listen', '127.0.0.1:0', '--to', `127.0.0.1:${targetPort}`, '--linger', '2s', ...serverExtra]);
  const tunnelPort = await fserver.listeningPort();
  const fclient = startCli(['forward', '--listen', '0', '--connect', `127.0.0.1:${tunnelPort}`, '--linger', '2s']);
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

  it('SIGTERM on the forward server closes tunnels gracefully: exit 0, the app gets FIN', async () => {
    const { port, fserver, fclient } = await forwardPair(redis!.port);
    const c = await client(port);
    expect(await c.command('PING')).to.equal('PONG');
    fserver.kill('SIGTERM');
    expect(await fserver.exit()).to.equal(0);
    expect(fserver.stdout).to.match(/^SIGTERM received: closing 1 tunnel and shutting down$/m);
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
    await pair.fserver.waitFor(/WARN +cannot connect to the service .*ECONNREFUSED/, 10_000, 'stderr');
  });
});
