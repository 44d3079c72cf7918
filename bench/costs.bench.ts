/**
 * Where the time goes (issue 11's first step): for a handshake (dial, handshake, close; both ends
 * in this process) and for a megabyte of one-stream bulk data, counts per unit of
 *  - calls into the addon (every function and method of its exports and objects) and the time
 *    spent inside them,
 *  - Buffer allocations made through the Buffer API (calls and bytes; Node's own socket read
 *    buffers are allocated in C++ and show up as page faults instead),
 *  - event-loop turns, garbage collections and their time, minor page faults, CPU time.
 * For protocol v2, legacy v1, Node's TLS 1.3 and plain TCP (the floor) side by side. Not a timed
 * test: a measurement.
 *
 *   npm run bench:costs -- [--handshakes N] [--megabytes N] [--json FILE]
 */
import { writeFileSync } from 'node:fs';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import net from 'node:net';
import tls from 'node:tls';
import { parseArgs } from 'node:util';
import { native } from '../lib/native.js';
import { selfSignedP256, TLS13_SUITES } from '../lib/cli/benchPeers.js';

const { values: args } = parseArgs({
  options: {
    handshakes: { type: 'string', default: '400' },
    megabytes: { type: 'string', default: '256' },
    json: { type: 'string' },
  },
});
const HANDSHAKES = Number(args.handshakes);
const MEGABYTES = Number(args.megabytes);

// ---- counters ---------------------------------------------------------------------------------

const nativeCalls = { n: 0, ms: 0 };
const allocations = { n: 0, bytes: 0 };
let counting = false;

/** Wraps `f` so each call is counted while `counting` is on. */
function counted<F extends (...a: never[]) => unknown>(f: F): F {
  return function (this: unknown, ...a: never[]) {
    if (!counting) return f.apply(this, a);
    const t0 = performance.now();
    try {
      return f.apply(this, a);
    } finally {
      nativeCalls.n++;
      nativeCalls.ms += performance.now() - t0;
    }
  } as F;
}

/** The addon's classes: their methods are neither writable nor configurable, so each instance gets counted own copies. */
const addonPrototypes = new Set<object>();

/** Shadows the methods of an addon object (or of the addon objects one level inside a plain result). */
function countMethodsOf(value: unknown, depth = 0): void {
  if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value)) return;
  const proto = Object.getPrototypeOf(value) as object | null;
  if (proto !== null && addonPrototypes.has(proto)) {
    if (!Object.isExtensible(value)) return;
    for (const m of Object.getOwnPropertyNames(proto)) {
      const d = Object.getOwnPropertyDescriptor(proto, m)!;
      if (m !== 'constructor' && typeof d.value === 'function') Object.defineProperty(value, m, { value: counted(d.value), configurable: true });
    }
    return;
  }
  if (depth === 0 && proto === Object.prototype) for (const v of Object.values(value)) countMethodsOf(v, 1);
}

/** Every function of the addon's exports, and the methods of every object they return. */
function wrapAddon(): void {
  const exports = native as unknown as Record<string, unknown>;
  for (const [name, value] of Object.entries(exports)) {
    if (typeof value !== 'function') continue;
    const f = value as (...a: never[]) => unknown;
    if (/^[A-Z]/.test(name) && f.prototype) {
      addonPrototypes.add(f.prototype as object);
      // Classes the library constructs itself (a running hash): construct the original, count
      // its methods. Handle classes (Secret, keys) stay as they are: the library checks instanceof.
      if (name !== 'Sha384Hash') continue;
      exports[name] = function (...a: never[]) {
        const obj = Reflect.construct(f as unknown as new (...x: never[]) => object, a);
        countMethodsOf(obj);
        return obj;
      };
      continue;
    }
    const wrapped = counted(f);
    exports[name] = function (this: unknown, ...a: never[]) {
      const out = wrapped.apply(this, a);
      countMethodsOf(out);
      return out;
    };
  }
}

function wrapBuffer(): void {
  const b = Buffer as unknown as Record<string, (...a: never[]) => Buffer>;
  for (const name of ['alloc', 'allocUnsafe', 'allocUnsafeSlow', 'from', 'concat']) {
    const f = b[name]!;
    b[name] = function (this: unknown, ...a: never[]) {
      const out = f.apply(this, a);
      if (counting) {
        allocations.n++;
        allocations.bytes += out.length;
      }
      return out;
    };
  }
}

wrapAddon();
wrapBuffer();
// The library is loaded after the wrapping, so its modules see the counted functions.
const { crypto, dial, listen } = await import('../lib/index.js');

const gc = { n: 0, ms: 0 };
new PerformanceObserver((list) => {
  if (!counting) return;
  for (const e of list.getEntries()) {
    gc.n++;
    gc.ms += e.duration;
  }
}).observe({ entryTypes: ['gc'] });

/** Counts event-loop turns: one immediate per turn, re-armed each time. */
let turns = 0;
function countTurns(): () => void {
  let on = true;
  const tick = () => {
    if (!on) return;
    turns++;
    setImmediate(tick);
  };
  setImmediate(tick);
  return () => (on = false);
}

interface Costs {
  nativeCalls: number;
  nativeUs: number;
  bufferAllocations: number;
  bufferBytes: number;
  eventLoopTurns: number;
  gcs: number;
  gcUs: number;
  minorFaults: number;
  cpuUs: number;
  wallUs: number;
}

/** Runs `work` with every counter on and returns the counts divided by `units`. */
async function measure(units: number, work: () => Promise<void>): Promise<Costs> {
  nativeCalls.n = nativeCalls.ms = allocations.n = allocations.bytes = gc.n = gc.ms = 0;
  turns = 0;
  const r0 = process.resourceUsage();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  counting = true;
  const stop = countTurns();
  await work();
  stop();
  counting = false;
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(c0);
  const r1 = process.resourceUsage();
  await new Promise((r) => setTimeout(r, 50)); // let the GC observer deliver
  const per = (x: number) => Number((x / units).toPrecision(3));
  return {
    nativeCalls: per(nativeCalls.n),
    nativeUs: per(nativeCalls.ms * 1000),
    bufferAllocations: per(allocations.n),
    bufferBytes: per(allocations.bytes),
    eventLoopTurns: per(turns),
    gcs: per(gc.n),
    gcUs: per(gc.ms * 1000),
    minorFaults: per(r1.minorPageFault - r0.minorPageFault),
    cpuUs: per(cpu.user + cpu.system),
    wallUs: per(wall * 1000),
  };
}

// ---- endpoints --------------------------------------------------------------------------------

interface Endpoint {
  name: string;
  handshake(): Promise<void>;
  bulk(bytes: number): Promise<void>;
  close(): Promise<void>;
}

const CHUNK = Buffer.alloc(64 * 1024, 7);

async function pump(write: (b: Buffer) => boolean, once: (ev: 'drain', f: () => void) => void, bytes: number): Promise<void> {
  for (let sent = 0; sent < bytes; sent += CHUNK.length) {
    if (!write(CHUNK)) await new Promise<void>((r) => once('drain', r));
  }
}

async function tunnelEndpoint(legacyV1: boolean): Promise<Endpoint> {
  let sink: ((n: number) => void) | undefined;
  const l = listen({ port: 0, ciphers: ['aes-256-gcm'], legacyV1 });
  l.on('tunnel', (t) => {
    t.on('data', (d: Buffer) => sink?.(d.length));
    t.on('error', () => {});
  });
  await l.ready;
  const port = l.address()!.port;
  const connect = () => dial({ host: '127.0.0.1', port }, { ciphers: ['aes-256-gcm'], legacyV1 });
  return {
    name: legacyV1 ? 'v1' : 'v2',
    async handshake() {
      const t = await connect();
      await t.close();
    },
    async bulk(bytes) {
      const t = await connect();
      let got = 0;
      const done = new Promise<void>((r) => (sink = (n) => (got += n) >= bytes && r()));
      await pump((b) => t.write(b), (ev, f) => t.once(ev, f), bytes);
      await done;
      await t.close();
    },
    close: () => l.close({ tunnels: true }),
  };
}

async function tlsEndpoint(): Promise<Endpoint> {
  const { key, cert } = selfSignedP256(); // the certificate bench/tunnel.bench.ts compares with
  const suite = TLS13_SUITES['aes-256-gcm'];
  let sink: ((n: number) => void) | undefined;
  const server = tls.createServer({ key, cert, minVersion: 'TLSv1.3', ciphers: suite }, (s) => {
    s.on('data', (d: Buffer) => sink?.(d.length));
    s.on('end', () => s.end());
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const connect = () =>
    new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port, ca: cert, servername: 'localhost', minVersion: 'TLSv1.3', ciphers: suite }, () => resolve(s));
      s.once('error', reject);
    });
  return socketEndpoint('node:tls', connect, (f) => (sink = f), () => new Promise<void>((r) => server.close(() => r())));
}

/**
 * Plain TCP, no protocol and no cryptography: the floor any Node implementation with both ends in
 * one process starts from. Its "handshake" has v2's shape: connect, a ClientHello-sized message,
 * a ServerHello-flight-sized answer, a Finished-sized message, then both ends close.
 */
async function plainTcpEndpoint(): Promise<Endpoint> {
  let sink: ((n: number) => void) | undefined;
  const server = net.createServer({ noDelay: true }, (s) => {
    s.once('data', () => {
      s.write(Buffer.alloc(1700));
      s.on('data', (d: Buffer) => sink?.(d.length));
    });
    s.on('end', () => s.end());
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const connect = () =>
    new Promise<net.Socket>((resolve, reject) => {
      const c = net.connect({ host: '127.0.0.1', port, noDelay: true }, () => c.write(Buffer.alloc(1650)));
      c.once('data', () => {
        c.write(Buffer.alloc(90));
        resolve(c);
      });
      c.once('error', reject);
    });
  // (The 90-byte "Finished" may reach the sink during bulk: the count ends 90 bytes early, never hangs.)
  return socketEndpoint('plain TCP', connect, (f) => (sink = f), () => new Promise<void>((r) => server.close(() => r())));
}

/** handshake() and bulk() over a connect() that gives a ready socket; the server's sink counts what arrives. */
function socketEndpoint(name: string, connect: () => Promise<net.Socket>, onSink: (f: (n: number) => void) => void, close: () => Promise<void>): Endpoint {
  const end = (s: net.Socket) => new Promise<void>((r) => { s.once('close', () => r()); s.end(); s.resume(); });
  return {
    name,
    async handshake() {
      await end(await connect());
    },
    async bulk(bytes) {
      const s = await connect();
      let got = 0;
      const done = new Promise<void>((r) => onSink((n) => (got += n) >= bytes && r()));
      await pump((b) => s.write(b), (ev, f) => s.once(ev, f), bytes);
      await done;
      await end(s);
    },
    close,
  };
}

// ---- run --------------------------------------------------------------------------------------

const results: Record<string, { handshake: Costs; megabyte: Costs }> = {};
for (const make of [() => tunnelEndpoint(false), () => tunnelEndpoint(true), tlsEndpoint, plainTcpEndpoint]) {
  const e = await make();
  for (let i = 0; i < 30; i++) await e.handshake(); // warm up
  const handshake = await measure(HANDSHAKES, async () => {
    for (let i = 0; i < HANDSHAKES; i++) await e.handshake();
  });
  await e.bulk(16 * 2 ** 20); // warm up
  const megabyte = await measure(MEGABYTES, () => e.bulk(MEGABYTES * 2 ** 20));
  results[e.name] = { handshake, megabyte };
  await e.close();
}

const rows: Array<[string, keyof Costs]> = [
  ['calls into the addon', 'nativeCalls'],
  ['µs inside the addon', 'nativeUs'],
  ['Buffer allocations (JS API)', 'bufferAllocations'],
  ['bytes allocated (JS API)', 'bufferBytes'],
  ['event-loop turns', 'eventLoopTurns'],
  ['garbage collections', 'gcs'],
  ['µs in garbage collection', 'gcUs'],
  ['minor page faults', 'minorFaults'],
  ['CPU µs (all threads)', 'cpuUs'],
  ['wall µs', 'wallUs'],
];
const names = Object.keys(results);
for (const unit of ['handshake', 'megabyte'] as const) {
  console.log(`\nper ${unit === 'handshake' ? 'handshake pair (dial, handshake, close; both ends)' : 'MiB of one-stream bulk data, 64 KiB writes (both ends)'}`);
  console.log(`| | ${names.join(' | ')} |`);
  console.log(`|---|${names.map(() => '--:').join('|')}|`);
  for (const [label, key] of rows) console.log(`| ${label} | ${names.map((n) => results[n]![unit][key].toLocaleString('en-US')).join(' | ')} |`);
}
console.log(`\n${process.version}, ${crypto.info().openssl}; ${HANDSHAKES} handshakes, ${MEGABYTES} MiB`);
if (args.json) writeFileSync(args.json, JSON.stringify({ node: process.version, handshakes: HANDSHAKES, megabytes: MEGABYTES, results }, null, 2));
