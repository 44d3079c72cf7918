/**
 * Tunnel benchmark: quantum-tunnel's protocol v2 and legacy v1 against Node's own TLS 1.3 on the
 * same machine and Node (24), side by side in one process, over loopback:
 *   - handshakes/s, sequential (dial, handshake, close) and concurrent (64 clients);
 *   - bulk throughput of one connection (8 KiB and 64 KiB writes), AES-256-GCM on all;
 *   - time to the first echoed byte through a proxy adding 25 ms each way (the round trip v2 saves);
 *   - memory per idle established tunnel at 1,000 tunnels, beyond plain TCP sockets;
 *   - FIPS mode (v2, P-384 + ML-KEM-1024) against standard mode (v2, X25519 + ML-KEM-1024).
 * TLS uses its Node 24 defaults (group X25519MLKEM768) with an ECDSA P-256 certificate.
 * Flags: --quick (short run), --json PATH (default bench/results/tunnel.json), --identities (that
 * block alone).
 * With QUANTUM_GO_BIN set, the first three cases also get a Go column: the Go reference's client
 * against its own server (a Go driver program over Quantum-Go's tunnel API, built outside this
 * repository; test/interop/go-v1.test.ts documents it). The benches use three more of its modes:
 * `sink` (a server that discards, prints {"port"}, answers "ok" to "__fin__"), `bench-hs -addr
 * A -n N -c C` ({"perSecond"}: N Dial+Close, C at once) and `bench-tp -addr A -bytes B -chunk K`
 * ({"MiBps"}: B bytes in K-byte writes, each cut into Sends of at most 65,479 bytes, the
 * reference's limit).
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import * as os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import * as tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { CertificateIdentity, crypto, dial, type DialOptions, IdentityKey, listen, type ListenOptions, type Tunnel } from '../lib/index.js';
import { startDelayProxy } from '../test/helpers/proxies.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const quick = process.argv.includes('--quick');
const jsonArg = process.argv.indexOf('--json');
const jsonPath = jsonArg > 0 ? resolve(process.argv[jsonArg + 1]!) : join(root, 'bench/results/tunnel.json');

const SEQUENTIAL = quick ? 40 : 300;
const CONCURRENCY = 64;
const CONCURRENT_TOTAL = quick ? 128 : 1024;
const BULK_BYTES = quick ? 128 * 2 ** 20 : 2 ** 30;
/** The Go reference rekeys at 1 GiB, where its transfers stall: it sends half as much (a rate either way). */
const GO_BULK_BYTES = 2 ** 29;
const IDLE_TUNNELS = quick ? 200 : 1000;

function certificate(): { key: string; cert: string } {
  const dir = mkdtempSync(join(os.tmpdir(), 'qt-bench-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=localhost',
    '-days', '1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
  return { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8') };
}

interface Endpoint {
  name: string;
  port: number;
  /** Connects (to `port`, default the endpoint's own) and completes the handshake. */
  connect(port?: number): Promise<Socket | Tunnel>;
  close(): Promise<void>;
}

const ONE_WAY_DELAY_MS = 25;

async function quantumEndpoint(onStream: (t: Tunnel) => void, version: 'v2' | 'v1' = 'v2', auth: { listen?: ListenOptions; dial?: DialOptions; name?: string } = {}): Promise<Endpoint> {
  const legacyV1 = version === 'v1';
  const l = listen({ port: 0, ciphers: ['aes-256-gcm'], legacyV1, ...auth.listen });
  l.on('tunnel', onStream);
  await l.ready;
  const port = l.address().port;
  return {
    name: auth.name ?? (legacyV1 ? 'quantum-tunnel v1 (CH-KEM X25519+ML-KEM-1024, AES-256-GCM)' : 'quantum-tunnel v2 (X25519+ML-KEM-1024, AES-256-GCM)'),
    port,
    connect: (to = port) => dial({ host: '127.0.0.1', port: to }, { ciphers: ['aes-256-gcm'], legacyV1, ...auth.dial }),
    close: () => l.close({ tunnels: true }),
  };
}

/**
 * Time from dial() to the first byte of the echo through a proxy adding ONE_WAY_DELAY_MS each
 * way: the handshake's round trips plus one for the data. v2 sends data with its Finished.
 */
async function firstByteMs(ep: Endpoint, runs: number): Promise<number> {
  const proxy = await startDelayProxy({ targetPort: ep.port, delayMs: ONE_WAY_DELAY_MS });
  const times: number[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      const started = performance.now();
      const c = await ep.connect(proxy.port);
      c.write('x');
      await new Promise<void>((resolve) => c.once('data', () => resolve()));
      times.push(performance.now() - started);
      await closeConn(c);
    }
  } finally {
    await proxy.close();
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

async function tlsEndpoint(creds: { key: string; cert: string; ca?: string }, onStream: (s: tls.TLSSocket) => void, mutual = false): Promise<Endpoint & { group: () => string }> {
  // Mutual: the same certificate authenticates the client too (the cost is what is measured).
  const trusted = creds.ca ?? creds.cert;
  const server = tls.createServer({ key: creds.key, cert: creds.cert, minVersion: 'TLSv1.3', ciphers: 'TLS_AES_256_GCM_SHA384', ...(mutual ? { requestCert: true, rejectUnauthorized: true, ca: trusted } : {}) }, onStream);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  let group = '?';
  return {
    name: `node:tls TLS 1.3 (Node default groups, ECDSA P-256${mutual ? ', mutual' : ''}, AES-256-GCM)`,
    port,
    group: () => group,
    connect: (to = port) => new Promise((resolveConn, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: to, ca: trusted, servername: 'localhost', checkServerIdentity: creds.ca ? () => undefined : tls.checkServerIdentity, minVersion: 'TLSv1.3', ciphersuites: 'TLS_AES_256_GCM_SHA384', ...(mutual ? { key: creds.key, cert: creds.cert } : {}) } as tls.ConnectionOptions, () => {
        const info = s.getEphemeralKeyInfo() as { name?: string } | null;
        group = info?.name ?? group;
        resolveConn(s);
      });
      s.once('error', reject);
    }),
    close: () => new Promise((r) => server.close(() => r())),
  };
}

function closeConn(c: Socket | Tunnel): Promise<void> {
  if ('close' in c && typeof (c as Tunnel).close === 'function' && !(c instanceof tls.TLSSocket)) return (c as Tunnel).close();
  return new Promise((r) => { c.once('close', () => r()); c.end(); });
}

/** The Go reference's own client and server (QUANTUM_GO_BIN), or undefined without it. */
async function goReference(): Promise<{ measure(args: string[]): number; close(): void } | undefined> {
  const bin = process.env.QUANTUM_GO_BIN;
  if (!bin) return undefined;
  const server = spawn(bin, ['sink', '-addr', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const first = await new Promise<string>((r) => server.stdout.once('data', (d: Buffer) => r(d.toString())));
  const addr = `127.0.0.1:${(JSON.parse(first.split('\n')[0]!) as { port: string }).port}`;
  return {
    // The Go client runs in its own process: this one waits, so it adds no load.
    // A run that fails or hangs (the reference stalls at its 1 GiB rekey point) gives NaN.
    measure: (args) => {
      try {
        const out = JSON.parse(execFileSync(bin, [args[0]!, '-addr', addr, ...args.slice(1)], { encoding: 'utf8', timeout: 120_000 }).trim()) as { perSecond?: number; MiBps?: number };
        return out.perSecond ?? (out.MiBps! * 2 ** 20) / 1e6;
      } catch {
        return Number.NaN;
      }
    },
    close: () => server.kill(),
  };
}

async function sequentialHandshakes(ep: Endpoint, n: number): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await closeConn(await ep.connect());
  return n / ((performance.now() - t0) / 1000);
}

async function concurrentHandshakes(ep: Endpoint, total: number, concurrency: number): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next++ < total) await closeConn(await ep.connect());
  }));
  return total / ((performance.now() - t0) / 1000);
}

async function bulk(ep: Endpoint, received: () => Promise<{ bytes: number; digest: string }>, writeSize: number): Promise<{ mbps: number; ok: boolean }> {
  const conn = await ep.connect() as Tunnel | tls.TLSSocket;
  const chunk = Buffer.alloc(writeSize, 0xa5);
  const hash = createHash('sha256');
  const done = received();
  const t0 = performance.now();
  let sent = 0;
  while (sent < BULK_BYTES) {
    hash.update(chunk);
    sent += chunk.length;
    if (!conn.write(chunk)) await new Promise((r) => conn.once('drain', r));
  }
  conn.end();
  const got = await done;
  const seconds = (performance.now() - t0) / 1000;
  return { mbps: sent / 1e6 / seconds, ok: got.bytes === sent && got.digest === hash.digest('hex') };
}

/** A server-side sink that hashes what it receives; `next()` resolves when a stream ends. */
function sink() {
  let pending: ((r: { bytes: number; digest: string }) => void) | undefined;
  return {
    next: () => new Promise<{ bytes: number; digest: string }>((r) => (pending = r)),
    attach: (s: NodeJS.ReadableStream & { on: Function }) => {
      const h = createHash('sha256');
      let bytes = 0;
      s.on('data', (d: Buffer) => { bytes += d.length; h.update(d); });
      s.on('end', () => pending?.({ bytes, digest: h.digest('hex') }));
      s.on('error', () => undefined);
    },
  };
}

function settle(): Promise<void> {
  (globalThis as { gc?: () => void }).gc?.();
  return new Promise((r) => setTimeout(r, 200));
}

async function idleMemory(connectMany: (n: number) => Promise<Array<{ destroy(): void }>>, n: number): Promise<{ rssKiB: number; heapKiB: number; externalKiB: number }> {
  await settle();
  const before = process.memoryUsage();
  const conns = await connectMany(n);
  await settle();
  const after = process.memoryUsage();
  for (const c of conns) c.destroy();
  await settle();
  // Both ends live in this process: per tunnel end = delta / (2n).
  const per = (a: number, b: number) => (b - a) / 1024 / (2 * n);
  return { rssKiB: per(before.rss, after.rss), heapKiB: per(before.heapUsed, after.heapUsed), externalKiB: per(before.external + before.arrayBuffers, after.external + after.arrayBuffers) };
}

async function tcpPairs(n: number): Promise<{ server: Server; conns: Socket[] }> {
  const conns: Socket[] = [];
  const server = createServer((s) => conns.push(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  for (let i = 0; i < n; i++) conns.push(await new Promise<Socket>((r) => { const s = netConnect(port, '127.0.0.1', () => r(s)); }));
  return { server, conns };
}

/** `--handshakes-only`: sequential handshakes/s of this process's mode, printed as JSON (for the FIPS comparison). */
async function handshakesOnly(): Promise<void> {
  const q = await quantumEndpoint((t) => { t.resume(); t.on('end', () => t.end()); });
  await sequentialHandshakes(q, 5);
  const rate = await sequentialHandshakes(q, SEQUENTIAL);
  await q.close();
  console.log(JSON.stringify({ rate }));
}

/** Runs this script with --handshakes-only in a child process with extra environment. */
function childRate(env: NodeJS.ProcessEnv): number {
  const out = execFileSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--handshakes-only', ...(quick ? ['--quick'] : [])], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
  return (JSON.parse(out.trim().split('\n').pop()!) as { rate: number }).rate;
}

/**
 * Identities, sequential handshakes/s, every endpoint interleaved: pinned keys (docs/PROTOCOL.md
 * §13) against the anonymous v2 handshake, and ML-DSA-87 certificates (§14) against node:tls 1.3
 * with the same kind of certificate and with ECDSA P-256.
 */
async function identityRows(creds: { key: string; cert: string }, results: Record<string, unknown>): Promise<void> {
  const serverKey = IdentityKey.generate();
  const clientKey = IdentityKey.generate();
  const drain = (tn: Tunnel) => { tn.resume(); tn.on('end', () => tn.end()); };
  const eps = [
    await quantumEndpoint(drain, 'v2', { name: 'v2 anonymous' }),
    await quantumEndpoint(drain, 'v2', { name: 'v2 pinned server key', listen: { identity: serverKey }, dial: { server: { publicKey: serverKey.publicKey } } }),
    await quantumEndpoint(drain, 'v2', {
      name: 'v2 pinned keys, mutual',
      listen: { identity: serverKey, authorizedPeers: [clientKey.publicKey] },
      dial: { server: { publicKey: serverKey.publicKey }, identity: clientKey },
    }),
  ];
  // Certificates: ML-DSA-87 (ours) against node:tls 1.3 with the ECDSA P-256 certificate above.
  const day = 86_400_000;
  const caKey = crypto.mldsa87.generateKeyPair().privateKey;
  const ca = crypto.x509.createSelfSignedCa({ privateKey: caKey, subject: { commonName: 'bench CA' }, notAfter: new Date(Date.now() + day) });
  const leaf = (cn: string) => {
    const { privateKey } = crypto.mldsa87.generateKeyPair();
    const cert = crypto.x509.issueCertificate({ issuer: ca, issuerKey: caKey, publicKey: privateKey, subject: { commonName: cn }, ipAddresses: ['127.0.0.1'], notAfter: new Date(Date.now() + day) });
    return new CertificateIdentity([cert], privateKey);
  };
  const serverCert = leaf('bench server');
  const clientCert = leaf('bench client');
  // node:tls 1.3 with the same kind of certificate (Node 24's OpenSSL 3.5 signs with ML-DSA-87).
  const mldsaCreds = {
    key: crypto.keyFiles.exportPrivateKeyPem(serverCert.privateKey).toString(),
    cert: serverCert.leaf.toPem(),
    ca: ca.toPem(),
  };
  eps.push(
    await quantumEndpoint(drain, 'v2', { name: 'v2 certificate (ML-DSA-87)', listen: { identity: serverCert }, dial: { server: { ca: [ca] } } }),
    await quantumEndpoint(drain, 'v2', { name: 'v2 certificates, mutual', listen: { identity: serverCert, ca: [ca] }, dial: { server: { ca: [ca] }, identity: clientCert } }),
    await tlsEndpoint(creds, (st) => { st.resume(); st.on('end', () => st.end()); }),
    await tlsEndpoint(creds, (st) => { st.resume(); st.on('end', () => st.end()); }, true),
    await tlsEndpoint(mldsaCreds, (st) => { st.resume(); st.on('end', () => st.end()); }),
    await tlsEndpoint(mldsaCreds, (st) => { st.resume(); st.on('end', () => st.end()); }, true),
  );
  for (const ep of eps) await sequentialHandshakes(ep, 5);
  const rates = eps.map(() => 0);
  const orders = [eps.map((_, i) => i), eps.map((_, i) => eps.length - 1 - i)];
  for (const order of orders) for (const i of order) rates[i] = Math.max(rates[i]!, await sequentialHandshakes(eps[i]!, SEQUENTIAL));
  const [anon, server, mutual, cert, certMutual, tlsCert, tlsMutual, tlsMldsa, tlsMldsaMutual] = rates as [number, number, number, number, number, number, number, number, number];
  console.log(`handshakes/s sequential, pinned keys: anonymous ${anon.toFixed(1)}, server key ${server.toFixed(1)} (${(server / anon).toFixed(2)}x), mutual ${mutual.toFixed(1)} (${(mutual / anon).toFixed(2)}x ${mutual / anon >= 0.8 ? 'met' : 'MISSED'}, target 0.8x)`);
  console.log(`handshakes/s sequential, certificates: ours (ML-DSA-87) server ${cert.toFixed(1)}, mutual ${certMutual.toFixed(1)}; node:tls 1.3 ML-DSA-87 server ${tlsMldsa.toFixed(1)}, mutual ${tlsMldsaMutual.toFixed(1)} (ours/TLS: ${(cert / tlsMldsa).toFixed(2)}x, mutual ${(certMutual / tlsMldsaMutual).toFixed(2)}x); node:tls 1.3 ECDSA P-256 server ${tlsCert.toFixed(1)}, mutual ${tlsMutual.toFixed(1)}`);
  results['handshakes/s sequential, pinned keys'] = { anonymous: anon, serverKey: server, mutual, mutualVsAnonymous: mutual / anon, target: 0.8 };
  results['handshakes/s sequential, certificates'] = { mldsa87Server: cert, mldsa87Mutual: certMutual, tlsMldsa87Server: tlsMldsa, tlsMldsa87Mutual: tlsMldsaMutual, tlsEcdsaP256Server: tlsCert, tlsEcdsaP256Mutual: tlsMutual };
  for (const ep of eps) await ep.close();
  for (const k of [serverKey, clientKey, serverCert, clientCert]) k.destroy();
  caKey.destroy();
  }

async function main(): Promise<void> {
  if (process.argv.includes('--handshakes-only')) return handshakesOnly();
  const creds = certificate();
  if (process.argv.includes('--identities')) {
  await identityRows(creds, {});
  return;
  }
  const sinks = { v2: sink(), v1: sink(), tls: sink() };
  const echoFirst = (stream: { once(e: 'data', f: (d: Buffer) => void): unknown; write(d: Buffer): unknown }) => stream.once('data', (d) => stream.write(d.subarray(0, 1)));
  const serve = (which: 'v2' | 'v1' | 'tls') => (stream: Tunnel | tls.TLSSocket) => {
  sinks[which].attach(stream);
  stream.on('end', () => stream.end());
  };
  const q = await quantumEndpoint(serve('v2'), 'v2');
  const q1 = await quantumEndpoint(serve('v1'), 'v1');
  const t = await tlsEndpoint(creds, serve('tls'));
  const results: Record<string, unknown> = {};
  /** One row: v2, v1 and TLS side by side; `higherIsBetter` false for times. */
  const row = (name: string, v2: number, v1: number, tlsValue: number, unit: string, targets: { tls?: number; v1?: number } = {}, higherIsBetter = true) => {
  const vsTls = higherIsBetter ? v2 / tlsValue : tlsValue / v2;
  const vsV1 = higherIsBetter ? v2 / v1 : v1 / v2;
  const verdict = (ratio: number, target?: number) => (target === undefined ? '' : ratio >= target ? 'met' : `MISSED (${target}x)`);
  console.log(`${name.padEnd(36)} ${v2.toFixed(1).padStart(9)} ${v1.toFixed(1).padStart(9)} ${tlsValue.toFixed(1).padStart(9)} ${unit.padEnd(5)} ${vsTls.toFixed(2).padStart(6)}x ${verdict(vsTls, targets.tls).padEnd(12)} ${vsV1.toFixed(2).padStart(6)}x ${verdict(vsV1, targets.v1)}`);
  results[name] = { v2, v1, tls: tlsValue, unit, v2VsTls: vsTls, v2VsV1: vsV1, targets };
  };
  console.log(`Node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'} x${os.cpus().length}; quantum-tunnel v2 and v1 vs node:tls (ratios: v2 over the other, better = higher)`);
  console.log(`${'case'.padEnd(36)} ${'v2'.padStart(9)} ${'v1'.padStart(9)} ${'tls'.padStart(9)} unit  ${'v2/tls'.padStart(7)} ${''.padEnd(12)} ${'v2/v1'.padStart(7)}`);

  // Warm all up.
  for (const ep of [q, q1, t]) await sequentialHandshakes(ep, 5);
  // Each case runs twice with the three endpoints interleaved, in rotated order, and keeps each
  // endpoint's better run: no endpoint always goes first (cold) or last (after the others' garbage).
  const best = async (measure: (ep: Endpoint, i: number) => Promise<number>): Promise<[number, number, number]> => {
  const eps = [q, q1, t];
  const out = [0, 0, 0];
  for (const order of [[0, 1, 2], [2, 1, 0]]) for (const i of order) out[i] = Math.max(out[i]!, await measure(eps[i]!, i));
  return out as [number, number, number];
  };
  const go = await goReference();
  /** With the Go column: Go runs before and after the others (best of the two, as in best()). */
  const withGo = async (goArgs: string[], others: () => Promise<[number, number, number]>): Promise<{ rates: [number, number, number]; go?: number }> => {
    const goFirst = go?.measure(goArgs);
    const rates = await others();
    const goSecond = go?.measure(goArgs);
    const runs = [goFirst, goSecond].filter((v): v is number => v !== undefined && !Number.isNaN(v));
    return { rates, go: go ? (runs.length > 0 ? Math.max(...runs) : Number.NaN) : undefined };
  };
  /** The Go line under a row, with v2 and v1 over Go (better = higher). */
  const goRow = (name: string, unit: string, [v2, v1]: [number, number, number], goValue?: number) => {
    if (goValue === undefined) return;
    if (Number.isNaN(goValue)) {
      console.log('  Go reference (Go client <-> Go server): did not finish');
      return;
    }
    console.log(`  Go reference (Go client <-> Go server) ${goValue.toFixed(1)} ${unit}: v2/Go ${(v2 / goValue).toFixed(2)}x, v1/Go ${(v1 / goValue).toFixed(2)}x`);
    results[`${name}, Go reference`] = { go: goValue, unit, v2VsGo: v2 / goValue, v1VsGo: v1 / goValue };
  };
  const sequential = await withGo(['bench-hs', '-n', String(SEQUENTIAL), '-c', '1'], () => best((ep) => sequentialHandshakes(ep, SEQUENTIAL)));
  row('handshakes/s sequential', ...sequential.rates, 'hs/s', { tls: 3, v1: 1 });
  goRow('handshakes/s sequential', 'hs/s', sequential.rates, sequential.go);
  console.log(`  (TLS key exchange group: ${t.group()})`);
  const concurrentName = `handshakes/s concurrent (${CONCURRENCY} clients)`;
  const concurrent = await withGo(['bench-hs', '-n', String(CONCURRENT_TOTAL), '-c', String(CONCURRENCY)], () => best((ep) => concurrentHandshakes(ep, CONCURRENT_TOTAL, CONCURRENCY)));
  row(concurrentName, ...concurrent.rates, 'hs/s', { v1: 1 });
  goRow(concurrentName, 'hs/s', concurrent.rates, concurrent.go);
  const nexts = [sinks.v2.next, sinks.v1.next, sinks.tls.next];
  for (const size of [64 * 1024, 8 * 1024]) {
  const name = `throughput ${BULK_BYTES / 2 ** 20} MiB, ${size / 1024} KiB writes`;
  const measureAll = () => best(async (ep, i) => {
    const r = await bulk(ep, nexts[i]!, size);
    if (!r.ok) throw new Error('bulk transfer corrupted or incomplete');
    return r.mbps;
  });
  const measured = size === 64 * 1024 ? await withGo(['bench-tp', '-bytes', String(Math.min(BULK_BYTES, GO_BULK_BYTES)), '-chunk', String(size)], measureAll) : { rates: await measureAll() };
  row(name, ...measured.rates, 'MB/s', { tls: 1.5, v1: 1 });
  goRow(name, 'MB/s', measured.rates, measured.go);
  }
  go?.close();
  await q.close();
  await q1.close();
  await t.close();

  await identityRows(creds, results);

  // Round trips: time to the first echoed byte through a delaying proxy.
  const echoServers = [await quantumEndpoint((s) => echoFirst(s), 'v2'), await quantumEndpoint((s) => echoFirst(s), 'v1'), await tlsEndpoint(creds, (s) => echoFirst(s))];
  const runs = quick ? 5 : 15;
  const [fb2, fb1, fbTls] = [await firstByteMs(echoServers[0]!, runs), await firstByteMs(echoServers[1]!, runs), await firstByteMs(echoServers[2]!, runs)];
  row(`first byte, ${2 * ONE_WAY_DELAY_MS} ms RTT (median)`, fb2, fb1, fbTls, 'ms', {}, false);
  const rtt = 2 * ONE_WAY_DELAY_MS;
  console.log(`  (round trips to the first echoed byte: v2 ${(fb2 / rtt).toFixed(2)}, v1 ${(fb1 / rtt).toFixed(2)}, TLS ${(fbTls / rtt).toFixed(2)}; v2 saves one: ${fb1 - fb2 >= 0.75 * rtt ? 'met' : 'MISSED'})`);
  for (const ep of echoServers) await ep.close();

  // Memory: idle tunnels vs idle plain TCP pairs.
  const base = await idleMemory(async (n) => { const p = await tcpPairs(n); return [...p.conns, { destroy: () => p.server.close() }]; }, IDLE_TUNNELS);
  const idleServer = listen({ port: 0 });
  const serverSide: Tunnel[] = [];
  idleServer.on('tunnel', (tn) => serverSide.push(tn));
  await idleServer.ready;
  const tun = await idleMemory(async (n) => {
  const out: Tunnel[] = [];
  for (let i = 0; i < n; i++) out.push(await dial({ host: '127.0.0.1', port: idleServer.address().port }));
  return [...out, ...serverSide];
  }, IDLE_TUNNELS);
  await idleServer.close();
  const beyond = { rssKiB: tun.rssKiB - base.rssKiB, heapKiB: tun.heapKiB - base.heapKiB, externalKiB: tun.externalKiB - base.externalKiB };
  console.log(`memory per idle tunnel end at ${IDLE_TUNNELS} tunnels, beyond a plain TCP socket: RSS ${beyond.rssKiB.toFixed(1)} KiB, JS heap ${beyond.heapKiB.toFixed(1)} KiB, external ${beyond.externalKiB.toFixed(1)} KiB (target <= 64 KiB: ${beyond.rssKiB <= 64 ? 'met' : 'MISSED'})`);
  results.memoryPerIdleTunnel = { tunnels: IDLE_TUNNELS, tcpBaseline: base, tunnel: tun, beyondSocket: beyond };

  // FIPS mode against standard mode, each in its own process (FIPS mode is process-wide). Needs
  // the FIPS configuration of this machine (npm run fips:install).
  try {
  const standard = childRate({ QUANTUM_TUNNEL_FIPS: '' });
  const fipsRate = childRate({ QUANTUM_TUNNEL_FIPS: '1' });
  const ratio = fipsRate / standard;
  console.log(`handshakes/s, FIPS mode (v2, P-384 + ML-KEM-1024) ${fipsRate.toFixed(1)} vs standard mode (v2, X25519 + ML-KEM-1024) ${standard.toFixed(1)}: ${ratio.toFixed(2)}x ${ratio >= 0.5 ? 'met' : 'MISSED'} (target 0.5x)`);
  results['handshakes/s, FIPS mode vs standard'] = { fips: fipsRate, standard, ratio, target: 0.5 };
  } catch (err) {
  console.log(`FIPS comparison skipped: ${(err as Error).message.split('\n')[0]} (run npm run fips:install)`);
  }

  mkdirSync(dirname(jsonPath), { recursive: true });
  writeFileSync(jsonPath, JSON.stringify({ node: process.version, cpu: os.cpus()[0]?.model, cores: os.cpus().length, quick, results }, null, 2));
  console.log(`results written to ${jsonPath}`);
}

main().then(() => process.exit(0), (err) => { console.error(err); process.exit(1); });
