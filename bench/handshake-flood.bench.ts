/**
 * Handshake-flood benchmark: does a stateless retry cookie earn its place on TCP next to the
 * listener's rate limiter and pending-handshake caps? (issue 9, item 10; findings in
 * docs/design/retry-cookie.md.) Not part of `npm run bench`; run it from the repository root:
 *
 *   node --import tsx bench/handshake-flood.bench.ts [--quick] [--legacy-v1] [--seconds N] [--rate N] [--json PATH]
 *
 * About two minutes (--quick: one); --seconds is the measured window per scenario (default 5),
 * --rate the flood's connections per second (default 3,000), --legacy-v1 floods with protocol v1
 * ClientHellos instead of v2 ones; JSON goes to bench/results/handshake-flood.json unless --json
 * says otherwise.
 *
 * Part 1, per operation, in this process (bench/harness.ts medians, and CPU time per call):
 *   - what one ClientHello costs the server: the v2 and v1 responders' whole answer (decode, the
 *     hybrid KEM's encapsulation with ML-KEM-1024, key schedule, the server's messages), and v1's
 *     CH-KEM encapsulation alone;
 *   - what a refusal decides with: RateLimiter.admit() on an empty bucket;
 *   - what a cookie would cost: HMAC-SHA-256(key, address ‖ timestamp ‖ SHA-256(ClientHello)) to
 *     issue and to verify; the loopback RTT; and how many round trips dial() takes through a
 *     delay proxy, v2 and v1 (a cookie would add one).
 * Part 2, over loopback TCP: the server in one child process (the listener, or a bare net.Server
 * that prices one path alone: answer, cookie retry, close at accept), a flooder in another (one
 * valid ClientHello replayed from many 127.0.x.y source addresses, open loop at --rate
 * connections/s, each connection reset at its first answer byte), and honest clients in this
 * process (open loop, 50 dial() + close() a second, protocol v2, from five addresses of their
 * own). Per scenario: honest handshakes served and their latency, what the flood got, the
 * server's CPU per connection and the flooder's. All three share this machine's cores.
 *
 * Should the server answer the flood's hellos with an Alert, the benchmark stops rather than
 * report those refusals as handshakes.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import * as os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crypto as qt, dial, listen, type Listener, RateLimiter, type RateLimitOptions, type Tunnel } from '../lib/index.js';
import { CipherSuite, MessageType } from '../lib/protocol/constants.js';
import { encodeFrame, FrameReader, type Frame } from '../lib/protocol/frame.js';
import { type ProtocolVersionSpec, responderVersion, V1, V2 } from '../lib/protocol/versions.js';
import { resolveGroups } from '../lib/tunnel/options.js';
import { type Case, type HarnessOptions, measureGroup, renderTable } from './harness.js';
import { startDelayProxy } from '../test/helpers/proxies.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const quick = args.includes('--quick');
const seconds = Number(flag('--seconds') ?? (quick ? 2 : 5));
const floodRate = Number(flag('--rate') ?? 3000);
const jsonPath = resolve(flag('--json') ?? join(root, 'bench/results/handshake-flood.json'));
/** The protocol of the flood's ClientHello: v2 (the default), or v1 with --legacy-v1. */
const floodVersion = args.includes('--legacy-v1') ? V1 : V2;
const harness: HarnessOptions = quick
  ? { warmupMs: 50, timeMs: 300, rounds: 4, gcBefore: 'case' }
  : { warmupMs: 300, timeMs: 2000, rounds: 8, gcBefore: 'case' };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const cpuMs = (c: NodeJS.CpuUsage) => (c.user + c.system) / 1000;

/** What both ends of every handshake here use: AES-256-GCM, the default groups (v2). */
const handshakeConfig = { cipherSuites: [CipherSuite.AES_256_GCM], groups: resolveGroups(undefined) };

/** One valid ClientHello of `spec` (a fresh key share), as a flooder would replay it. */
async function clientHelloFrame(spec: ProtocolVersionSpec): Promise<Frame> {
  const hs = await spec.initiator(handshakeConfig);
  const { send } = await hs.start();
  hs.destroy();
  const reader = new FrameReader();
  reader.push(send[0]!);
  return reader.nextFrame()!;
}

/** The server's answer to a ClientHello (v1: ServerHello; v2: ServerHello and its encrypted flight up to Finished). */
async function respond(spec: ProtocolVersionSpec, hello: Frame): Promise<Buffer[]> {
  const hs = spec.responder(handshakeConfig);
  try {
    await hs.start();
    return (await hs.receive(hello)).send;
  } finally {
    hs.destroy();
  }
}

// ---- roles: the server and the flooder run in child processes -----------------------------------

/**
 * `toy` replaces the listener by a bare net.Server that handles each connection one way, to price
 * the paths apart from the listener's bookkeeping: `refuse` (close at accept), `cookie` (read the
 * ClientHello, answer a 45-byte retry frame with a timestamp and an HMAC cookie, close; what a
 * cookie challenge would cost), `answer` (read the ClientHello, run the responder of its version,
 * write its answer).
 */
type Toy = 'refuse' | 'cookie' | 'answer';
type ToServer = { cmd: 'listen'; limits?: RateLimitOptions; maxPendingHandshakes?: number; toy?: Toy } | { cmd: 'snapshot' } | { cmd: 'close' };
/** An unassigned message type for the toy retry frame. */
const RETRY_TYPE = 0x15;
interface ServerCounters {
  connections: number;
  refused: number;
  started: number;
  tunnels: number;
  handshakeErrors: number;
}
interface Snapshot {
  cpu: NodeJS.CpuUsage;
  at: number;
  counters: ServerCounters;
}

/** A bare server for one `toy` path (see ToServer). */
function toyServer(toy: Toy, counters: ServerCounters): Server {
  const cookieKey = qt.randomSecret(32);
  return createServer({ noDelay: true }, (socket) => {
    counters.connections++;
    socket.on('error', () => undefined);
    if (toy === 'refuse') {
      counters.refused++;
      socket.destroy();
      return;
    }
    counters.started++;
    const reader = new FrameReader();
    const onData = async (chunk: Buffer) => {
      reader.push(chunk);
      const hello = reader.nextFrame();
      if (hello === null) return;
      socket.off('data', onData);
      if (toy === 'cookie') {
        const timestamp = Buffer.alloc(8);
        timestamp.writeBigUInt64BE(BigInt(Date.now()));
        const mac = qt.hkdf.hmac(qt.hkdf.HkdfDigest.SHA256, cookieKey, [Buffer.from(socket.remoteAddress ?? ''), timestamp, createHash('sha256').update(hello.raw).digest()]);
        socket.end(encodeFrame(RETRY_TYPE, Buffer.concat([timestamp, mac])));
      } else {
        await respond(responderVersion(hello, true), hello).then((answer) => socket.write(Buffer.concat(answer)), () => socket.destroy());
      }
    };
    socket.on('data', onData);
  });
}

async function serverRole(): Promise<void> {
  let listener: Listener | undefined;
  let toy: Server | undefined;
  const counters: ServerCounters = { connections: 0, refused: 0, started: 0, tunnels: 0, handshakeErrors: 0 };
  const reply = (m: unknown) => process.send!(m);
  process.on('message', async (m: ToServer) => {
    if (m.cmd === 'listen' && m.toy) {
      toy = toyServer(m.toy, counters);
      toy.listen({ host: '127.0.0.1', port: 0, backlog: 4096 });
      await once(toy, 'listening');
      reply({ port: (toy.address() as AddressInfo).port });
    } else if (m.cmd === 'listen') {
      listener = listen({
        host: '127.0.0.1',
        port: 0,
        backlog: 4096,
        legacyV1: true, // answers v1 ClientHellos too (--legacy-v1)
        ...(m.limits ? { admission: new RateLimiter(m.limits) } : {}),
        ...(m.maxPendingHandshakes ? { maxPendingHandshakes: m.maxPendingHandshakes } : {}),
        observer: {
          onConnection: () => void counters.connections++,
          onRateLimited: () => void counters.refused++,
          onHandshakeStart: () => void counters.started++,
        },
      });
      listener.on('tunnel', (t: Tunnel) => {
        counters.tunnels++;
        t.on('error', () => undefined);
        t.resume();
      });
      listener.on('handshakeError', () => counters.handshakeErrors++);
      listener.on('tunnelError', () => undefined);
      await listener.ready;
      reply({ port: listener.address().port });
    } else if (m.cmd === 'snapshot') {
      reply({ cpu: process.cpuUsage(), at: performance.now(), counters: { ...counters } } satisfies Snapshot);
    } else {
      await listener?.close({ tunnels: true });
      toy?.close();
      reply({ closed: true });
      process.disconnect();
    }
  });
}

interface FloodOrder {
  port: number;
  addresses: string[];
  rate: number;
  maxInFlight: number;
  durationMs: number;
  hello: string;
}
interface FloodResult {
  launched: number;
  /** Connections that got an answer (a ServerHello, or the toy cookie retry). */
  answered: number;
  /** Connections answered with an Alert: the server refused the hello itself (see main()). */
  alerted: number;
  refused: number;
  failed: number;
  skipped: number;
  cpuMs: number;
  durationMs: number;
}

/**
 * Opens `rate` connections a second (open loop, at most `maxInFlight` at once), each from the next
 * source address, writes the ClientHello and resets the connection at its first answer byte: a
 * server's full handshake work for one connect and one write of the attacker's.
 */
function flood(order: FloodOrder): Promise<FloodResult> {
  const hello = Buffer.from(order.hello, 'hex');
  const r: FloodResult = { launched: 0, answered: 0, alerted: 0, refused: 0, failed: 0, skipped: 0, cpuMs: 0, durationMs: 0 };
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  let inFlight = 0;
  let next = 0;
  const launch = () => {
    inFlight++;
    r.launched++;
    const s: Socket = connect({ host: '127.0.0.1', port: order.port, localAddress: order.addresses[next++ % order.addresses.length]!, noDelay: true });
    let connected = false;
    let answered = false;
    const timer = setTimeout(() => s.destroy(), 10_000);
    s.on('connect', () => {
      connected = true;
      s.write(hello);
    });
    s.on('data', (chunk: Buffer) => {
      if (answered) return;
      answered = true;
      if (chunk[0] === MessageType.ALERT) r.alerted++;
      else r.answered++;
      s.resetAndDestroy();
    });
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      inFlight--;
      if (!answered) connected ? r.refused++ : r.failed++;
    });
  };
  return new Promise((done) => {
    const tick = setInterval(() => {
      const elapsed = performance.now() - start;
      if (elapsed >= order.durationMs) {
        clearInterval(tick);
        const wait = setInterval(() => {
          if (inFlight > 0 && performance.now() - start < order.durationMs + 10_000) return;
          clearInterval(wait);
          r.cpuMs = cpuMs(process.cpuUsage(cpu0));
          r.durationMs = elapsed;
          done(r);
        }, 20);
        return;
      }
      const due = Math.floor((order.rate * elapsed) / 1000);
      while (r.launched + r.skipped < due) {
        if (inFlight >= order.maxInFlight) r.skipped++;
        else launch();
      }
    }, 2);
  });
}

function flooderRole(): void {
  process.on('message', async (m: FloodOrder) => {
    process.send!({ started: true });
    process.send!(await flood(m));
    process.exit(0);
  });
}

// ---- the orchestrator ---------------------------------------------------------------------------

function child(role: 'server' | 'flooder'): ChildProcess {
  return fork(fileURLToPath(import.meta.url), ['--role', role], { execArgv: process.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

function ask<T>(c: ChildProcess, message: unknown): Promise<T> {
  const answer = once(c, 'message').then(([m]) => m as T);
  c.send(message as object);
  return answer;
}

/** `127.0.a.b` source addresses: honest clients use 127.0.1.x, flooders 127.0.2.x onwards. */
function addresses(count: number, base: number): string[] {
  return Array.from({ length: count }, (_, i) => `127.0.${base + Math.floor(i / 250)}.${1 + (i % 250)}`);
}

interface HonestResult {
  offered: number;
  served: number;
  refused: number;
  servedPerSecond: number;
  p50Ms: number;
  p95Ms: number;
}

/**
 * Honest clients, open loop: `rate` dials a second in all, each from the next of `from`, each a
 * full handshake then close(). A dial that fails (refused by a limit, timed out) is not retried.
 */
async function honest(port: number, from: string[], rate: number, durationMs: number): Promise<HonestResult> {
  const latencies: number[] = [];
  let refused = 0;
  const pending: Array<Promise<void>> = [];
  const start = performance.now();
  for (let i = 0; performance.now() - start < durationMs; i++) {
    const wait = start + (i * 1000) / rate - performance.now();
    if (wait > 0) await sleep(wait);
    const t0 = performance.now();
    pending.push(
      dial({ host: '127.0.0.1', port }, { localAddress: from[i % from.length]!, connectTimeoutMs: 10_000, handshakeTimeoutMs: 10_000 }).then(
        async (t) => {
          latencies.push(performance.now() - t0);
          t.on('error', () => undefined);
          await t.close();
        },
        () => void refused++,
      ),
    );
  }
  await Promise.all(pending);
  const sorted = [...latencies].sort((a, b) => a - b);
  const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
  return { offered: pending.length, served: latencies.length, refused, servedPerSecond: latencies.length / (durationMs / 1000), p50Ms: pct(0.5), p95Ms: pct(0.95) };
}

interface Scenario {
  name: string;
  limits?: RateLimitOptions;
  /** Listener cap on handshakes in progress (default 1,024). */
  maxPendingHandshakes?: number;
  /** Hold this many idle connections open first (they sit in the pending-handshake cap). */
  idle?: number;
  /** A bare server instead of the listener (see ToServer). */
  toy?: Toy;
  floodAddresses: number;
  /** Honest dials per second (from 5 addresses), 0 for none. */
  honestRate: number;
}

interface ScenarioResult {
  scenario: Scenario;
  honest?: HonestResult;
  flood?: FloodResult & { answeredPerSecond: number; refusedPerSecond: number; attackerUsPerConnection: number };
  /** Over the measured window: CPU as a share of one core, connections accepted, handshakes started, connections refused. */
  server: { cpuPercent: number; systemPercent: number; connections: number; started: number; refused: number; usPerConnection: number };
}

async function runScenario(s: Scenario, hello: Buffer): Promise<ScenarioResult> {
  const server = child('server');
  const { port } = await ask<{ port: number }>(server, { cmd: 'listen', limits: s.limits, maxPendingHandshakes: s.maxPendingHandshakes, toy: s.toy } satisfies ToServer);
  const idle: Socket[] = [];
  for (let i = 0; i < (s.idle ?? 0); i++) {
    const sock = connect({ host: '127.0.0.1', port });
    sock.on('error', () => undefined);
    await once(sock, 'connect');
    idle.push(sock);
  }
  await sleep(100);
  const durationMs = seconds * 1000;
  const warmMs = 500; // the flood runs this long before and after the measured window
  let flooding: Promise<FloodResult> | undefined;
  let flooder: ChildProcess | undefined;
  if (s.floodAddresses > 0) {
    flooder = child('flooder');
    const order: FloodOrder = { port, addresses: addresses(s.floodAddresses, 2), rate: floodRate, maxInFlight: 512, durationMs: durationMs + 2 * warmMs, hello: hello.toString('hex') };
    const f = flooder;
    flooding = new Promise<FloodResult>((done) => f.on('message', (m: object) => 'launched' in m && done(m as FloodResult)));
    await ask<{ started: true }>(flooder, order); // the child has loaded and begun: only now does the warm-up count
    await sleep(warmMs);
  }
  const before = await ask<Snapshot>(server, { cmd: 'snapshot' });
  const honestResult = s.honestRate > 0 ? await honest(port, addresses(5, 1), s.honestRate, durationMs) : (await sleep(durationMs), undefined);
  const after = await ask<Snapshot>(server, { cmd: 'snapshot' });
  const floodResult = await flooding;
  for (const sock of idle) sock.destroy();
  await ask(server, { cmd: 'close' });
  server.kill();
  flooder?.kill();
  const windowMs = after.at - before.at;
  const cpu = cpuMs(after.cpu) - cpuMs(before.cpu);
  const delta = (k: keyof ServerCounters) => after.counters[k] - before.counters[k];
  const connections = delta('connections');
  return {
    scenario: s,
    ...(honestResult ? { honest: honestResult } : {}),
    ...(floodResult
      ? {
          flood: {
            ...floodResult,
            answeredPerSecond: floodResult.answered / (floodResult.durationMs / 1000),
            refusedPerSecond: floodResult.refused / (floodResult.durationMs / 1000),
            attackerUsPerConnection: (floodResult.cpuMs * 1000) / Math.max(1, floodResult.launched),
          },
        }
      : {}),
    server: {
      cpuPercent: (cpu / windowMs) * 100,
      systemPercent: ((after.cpu.system - before.cpu.system) / 1000 / windowMs) * 100,
      connections,
      started: delta('started'),
      refused: delta('refused'),
      usPerConnection: (cpu * 1000) / Math.max(1, connections),
    },
  };
}

/** Median loopback TCP round trip (1 byte each way, Nagle off), in microseconds. */
async function loopbackRttUs(n: number): Promise<number> {
  const server = createServer((s) => s.on('data', (d) => s.write(d)));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const s = connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, noDelay: true });
  await once(s, 'connect');
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const back = once(s, 'data');
    s.write('x');
    await back;
    samples.push((performance.now() - t0) * 1000);
  }
  s.destroy();
  server.close();
  samples.sort((a, b) => a - b);
  return samples[samples.length >> 1]!;
}

/** CPU time (user + system, all threads) per call of `fn` over `n` calls, in microseconds. */
async function cpuUsPerCall(fn: () => unknown, n: number): Promise<number> {
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) await fn();
  return cpuMs(process.cpuUsage(c0)) * 1000 / n;
}

async function microbenchmarks(hellos: { v1: Frame; v2: Frame }, floodHello: Frame): Promise<Record<string, { wallUs: number; cpuUs: number }>> {
  const chkemKey = hellos.v1.payload.subarray(2 + 32 + 1, 2 + 32 + 1 + 1600); // after version, random and an empty session ID
  const cookieKey = qt.randomSecret(32);
  const address = Buffer.from([127, 0, 2, 1]);
  const timestamp = Buffer.alloc(8);
  const cookieParts = () => {
    timestamp.writeBigUInt64BE(BigInt(Date.now()));
    return [address, timestamp, createHash('sha256').update(floodHello.raw).digest()];
  };
  const cookie = qt.hkdf.hmac(qt.hkdf.HkdfDigest.SHA256, cookieKey, cookieParts());
  const refuser = new RateLimiter({ handshakesPerSecondPerIp: 1e-9, handshakeBurstPerIp: 1 });
  refuser.admit({ address: '127.0.2.1', port: 1 }); // takes the only token: every later call refuses
  const cases: Array<Case & { key: string; calls: number }> = [
    { key: 'v2Responder', impl: 'v2 responder: ClientHello -> server flight', note: 'decode, hybrid KEM (X25519 + ML-KEM-1024), key schedule, SH + EE + Finished', inFlight: 1, asyncFn: () => respond(V2, hellos.v2), calls: 2000 },
    { key: 'v1Responder', impl: 'v1 responder: ClientHello -> ServerHello', note: 'decode, CH-KEM encapsulation, key schedule, ServerHello', inFlight: 1, asyncFn: () => respond(V1, hellos.v1), calls: 2000 },
    { key: 'chkemEncapsulate', impl: 'v1 CH-KEM encapsulation alone', note: 'ML-KEM-1024 encaps, X25519 keygen + DH, SHAKE-256', fn: () => qt.chkem.encapsulate(chkemKey).sharedSecret.destroy(), calls: 2000 },
    { key: 'rateLimiterRefusal', impl: 'RateLimiter.admit() refusing', note: 'empty per-address bucket', fn: () => refuser.admit({ address: '127.0.2.1', port: 1 }), calls: 200_000 },
    { key: 'cookieIssue', impl: 'cookie issue', note: 'SHA-256(ClientHello); HMAC-SHA-256(addr ‖ ts ‖ hash)', fn: () => qt.hkdf.hmac(qt.hkdf.HkdfDigest.SHA256, cookieKey, cookieParts()), calls: 50_000 },
    { key: 'cookieVerify', impl: 'cookie verify', note: 'the same, compared in constant time', fn: () => qt.hkdf.hmacVerify(qt.hkdf.HkdfDigest.SHA256, cookieKey, cookieParts(), cookie), calls: 50_000 },
  ];
  const results = await measureGroup(cases, harness);
  const out: Record<string, { wallUs: number; cpuUs: number }> = {};
  const rows: string[][] = [];
  for (const [i, c] of cases.entries()) {
    const cpuUs = await cpuUsPerCall('fn' in c ? c.fn : c.asyncFn, quick ? Math.ceil(c.calls / 10) : c.calls);
    const wallUs = results[i]!.nsPerOp / 1000;
    out[c.key] = { wallUs, cpuUs };
    rows.push([c.impl, c.note ?? '', wallUs.toFixed(2), results[i]!.rsdPercent.toFixed(1), cpuUs.toFixed(2)]);
  }
  console.log(renderTable(['operation', 'what', 'µs/op (median wall)', 'rsd %', 'µs CPU/op'], rows, [false, false, true, true, true]));
  cookieKey.destroy();
  return out;
}

/** Time to complete dial() through a delay proxy: how many round trips a handshake costs (a cookie would add one). */
async function handshakeRoundTrips(legacyV1: boolean, oneWayMs: number, n: number): Promise<{ medianMs: number; roundTrips: number }> {
  const listener = listen({ host: '127.0.0.1', port: 0, legacyV1 });
  listener.on('tunnel', (t: Tunnel) => t.on('error', () => undefined).resume());
  await listener.ready;
  const proxy = await startDelayProxy({ targetPort: listener.address().port, delayMs: oneWayMs });
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const t = await dial({ host: '127.0.0.1', port: proxy.port }, { legacyV1 });
    times.push(performance.now() - t0);
    t.destroy();
  }
  await proxy.close();
  await listener.close();
  times.sort((a, b) => a - b);
  const medianMs = times[times.length >> 1]!;
  return { medianMs, roundTrips: medianMs / (2 * oneWayMs) };
}

async function main(): Promise<void> {
  console.log(`Node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'} x${os.cpus().length}, load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}; ${seconds} s per scenario, flood of ${floodVersion.name} ClientHellos at ${floodRate} connections/s`);
  const hellos = { v1: await clientHelloFrame(V1), v2: await clientHelloFrame(V2) };
  const hello = floodVersion === V1 ? hellos.v1 : hellos.v2;

  console.log('\nPart 1: cost per operation (this process)');
  const perOp = await microbenchmarks(hellos, hello);
  const rttUs = await loopbackRttUs(quick ? 200 : 2000);
  console.log(`loopback TCP round trip (median): ${rttUs.toFixed(1)} µs`);
  const delayed: Record<string, { medianMs: number; roundTrips: number }> = {};
  for (const legacyV1 of [false, true]) {
    const name = legacyV1 ? 'v1' : 'v2';
    const d = (delayed[name] = await handshakeRoundTrips(legacyV1, 25, quick ? 3 : 9));
    console.log(`${name} dial() through a 25 ms one-way delay proxy (RTT 50 ms): median ${d.medianMs.toFixed(1)} ms = ${d.roundTrips.toFixed(2)} RTT`);
  }

  console.log('\nPart 2: floods over loopback (server and flooder in child processes, honest clients here)');
  const perIp: RateLimitOptions = { handshakesPerSecondPerIp: 20 };
  const honestRate = 50;
  const scenarios: Scenario[] = [
    { name: 'A default limits, no flood', floodAddresses: 0, honestRate },
    { name: 'B default limits, flood from 16 addresses', floodAddresses: 16, honestRate },
    { name: 'C RateLimiter 20/s per address, flood from 16 addresses', limits: perIp, floodAddresses: 16, honestRate },
    { name: 'D RateLimiter 20/s per address, flood from 500 addresses', limits: perIp, floodAddresses: 500, honestRate },
    { name: 'E RateLimiter 20/s per address + 300/s global, flood from 500 addresses', limits: { ...perIp, globalHandshakesPerSecond: 300 }, floodAddresses: 500, honestRate },
    { name: 'F every flood ClientHello answered, no honest clients', floodAddresses: 16, honestRate: 0 },
    { name: 'G RateLimiter refuses every flood connection', limits: { handshakesPerSecondPerIp: 1e-9, handshakeBurstPerIp: 1 }, floodAddresses: 16, honestRate: 0 },
    { name: 'H pending-handshake cap full (cap 1, one idle connection)', maxPendingHandshakes: 1, idle: 1, floodAddresses: 16, honestRate: 0 },
    { name: 'I bare server: ServerHello to every ClientHello', toy: 'answer', floodAddresses: 16, honestRate: 0 },
    { name: 'J bare server: cookie retry to every ClientHello', toy: 'cookie', floodAddresses: 16, honestRate: 0 },
    { name: 'K bare server: close at accept', toy: 'refuse', floodAddresses: 16, honestRate: 0 },
  ];
  const results: ScenarioResult[] = [];
  const rows: string[][] = [];
  for (const s of scenarios) {
    const r = await runScenario(s, hello.raw);
    if (r.flood && r.flood.alerted > 0) {
      // The figures would price a refused hello, not a handshake: stop rather than mislead.
      throw new Error(`${s.name}: ${r.flood.alerted} flood ClientHellos were answered with an Alert instead of a handshake`);
    }
    results.push(r);
    const h = r.honest;
    const f = r.flood;
    rows.push([
      s.name,
      h ? `${h.served}/${h.offered}` : '-',
      h ? `${h.p50Ms.toFixed(1)} / ${h.p95Ms.toFixed(1)}` : '-',
      f ? f.answeredPerSecond.toFixed(0) : '-',
      f ? f.refusedPerSecond.toFixed(0) : '-',
      `${r.server.cpuPercent.toFixed(0)} (${r.server.systemPercent.toFixed(0)})`,
      `${r.server.connections} / ${r.server.started} / ${r.server.refused}`,
      r.server.usPerConnection.toFixed(0),
      f ? f.attackerUsPerConnection.toFixed(0) : '-',
    ]);
    console.log(`  ${s.name}: done`);
  }
  console.log(
    renderTable(
      ['scenario', 'honest served/offered', 'honest p50/p95 ms', 'flood answered/s', 'flood refused/s', 'server CPU % (sys)', 'server conns/started/refused', 'server µs CPU/conn', 'attacker µs CPU/conn'],
      rows,
      [false, true, true, true, true, true, true, true, true],
    ),
  );

  mkdirSync(dirname(jsonPath), { recursive: true });
  writeFileSync(jsonPath, JSON.stringify({ node: process.version, cpu: os.cpus()[0]?.model, cores: os.cpus().length, loadavg: os.loadavg(), quick, seconds, floodRate, floodVersion: floodVersion.name, perOp, loopbackRttUs: rttUs, delayed, scenarios: results }, null, 2));
  console.log(`\nresults written to ${jsonPath}`);
}

const role = flag('--role');
if (role === 'server') void serverRole();
else if (role === 'flooder') flooderRole();
else main().then(() => process.exit(0), (err) => { console.error(err); process.exit(1); });
