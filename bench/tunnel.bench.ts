/**
 * Tunnel benchmark: quantum-tunnel's protocol v2 and legacy v1 against Node's own TLS 1.3 on the
 * same machine and Node (24), side by side in one process, over loopback:
 *   - handshakes/s, sequential (dial, handshake, close) and concurrent (64 clients);
 *   - bulk throughput of one connection: 64 KiB and 8 KiB writes with AES-256-GCM, 64 KiB writes
 *     with ChaCha20-Poly1305, the same suite on every side;
 *   - time to the first echoed byte through a proxy adding 25 ms each way (the round trip v2 saves);
 *   - memory per idle established tunnel at 1,000 tunnels, beyond plain TCP sockets, v2 and v1;
 *   - FIPS mode (v2, P-384 + ML-KEM-1024) against standard mode (v2, X25519 + ML-KEM-1024).
 * TLS uses its Node 24 default groups (X25519MLKEM768: TLS-PQ) with an ECDSA P-256 certificate,
 * and both ends set `ciphers` to the one TLS 1.3 suite of the row; a pre-check fails the run
 * unless every side negotiates the suite (and TLS the group) the table names.
 * Each case runs in alternating rounds (lib/cli/benchCompare.ts) and reports each side's median;
 * after the tables come the targets (the registry in lib/cli/benchCompare.ts), met or missed.
 * Flags: --quick (short run), --json PATH (default bench/results/tunnel.json), --identities (that
 * block alone).
 * With QUANTUM_GO_BIN set, the handshake rows and the 64 KiB AES-256-GCM row also get a Go column:
 * the Go reference's client against its own server (lib/cli/benchPeers.ts), a side of the
 * alternation like the others. Its driver cannot choose ChaCha20-Poly1305, so that row has none.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import * as os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import * as tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { alternate, checkTarget, formatTargets, median, type TargetResult } from '../lib/cli/benchCompare.js';
import { checkTlsSocket, goPeer, GO_MAX_BULK_BYTES, selfSignedP256, TLS13_SUITES, type TlsCredentials, tlsPeer } from '../lib/cli/benchPeers.js';
import { CertificateIdentity, crypto, dial, type DialOptions, IdentityKey, listen, type ListenOptions, type Tunnel } from '../lib/index.js';
import type { CipherName } from '../lib/tunnel/options.js';
import { startDelayProxy } from '../test/helpers/proxies.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const quick = process.argv.includes('--quick');
const jsonArg = process.argv.indexOf('--json');
const jsonPath = jsonArg > 0 ? resolve(process.argv[jsonArg + 1]!) : join(root, 'bench/results/tunnel.json');

const SEQUENTIAL = quick ? 40 : 300;
const CONCURRENCY = 64;
const CONCURRENT_TOTAL = quick ? 128 : 1024;
const BULK_BYTES = quick ? 128 * 2 ** 20 : 2 ** 30;
const IDLE_TUNNELS = quick ? 200 : 1000;
/** Rounds of each comparison; every side's figure is its median over them. */
const ROUNDS = quick ? 3 : 5;
/** The group the TLS column stands for (TLS-PQ); the pre-check fails the run on anything else. */
const TLS_GROUP = 'X25519MLKEM768';

interface Endpoint {
  name: string;
  port: number;
  /** Connects (to `port`, default the endpoint's own) and completes the handshake. */
  connect(port?: number): Promise<Socket | Tunnel>;
  close(): Promise<void>;
}

const ONE_WAY_DELAY_MS = 25;
const SUITE_NAMES: Record<CipherName, string> = { 'aes-256-gcm': 'AES-256-GCM', 'chacha20-poly1305': 'ChaCha20-Poly1305' };

async function quantumEndpoint(
  onStream: (t: Tunnel) => void,
  version: 'v2' | 'v1' = 'v2',
  auth: { listen?: ListenOptions; dial?: DialOptions; name?: string } = {},
  cipher: CipherName = 'aes-256-gcm',
): Promise<Endpoint> {
  const legacyV1 = version === 'v1';
  const ciphers: CipherName[] = [cipher];
  const l = listen({ port: 0, ciphers, legacyV1, ...auth.listen });
  l.on('tunnel', onStream);
  await l.ready;
  const port = l.address().port;
  const suite = SUITE_NAMES[cipher];
  return {
    name: auth.name ?? (legacyV1 ? `quantum-tunnel v1 (CH-KEM X25519+ML-KEM-1024, ${suite})` : `quantum-tunnel v2 (X25519+ML-KEM-1024, ${suite})`),
    port,
    connect: (to = port) => dial({ host: '127.0.0.1', port: to }, { ciphers, legacyV1, ...auth.dial }),
    close: () => l.close({ tunnels: true }),
  };
}

/** node:tls 1.3 limited to `cipher`'s suite, as an Endpoint (lib/cli/benchPeers.ts). */
async function tlsEndpoint(creds: TlsCredentials & { ca?: string }, onStream: (s: tls.TLSSocket) => void, mutual = false, cipher: CipherName = 'aes-256-gcm'): Promise<Endpoint> {
  const peer = await tlsPeer({ credentials: creds, cipher, onStream, mutual, ...(creds.ca ? { ca: creds.ca } : {}) });
  return { name: `node:tls TLS 1.3 (Node default groups${mutual ? ', mutual' : ''}, ${peer.suite})`, port: peer.port, connect: (to) => peer.connect(to), close: () => peer.close() };
}

/**
 * Connects once and fails the run unless the endpoint negotiates what its column says: our
 * tunnels the protocol and suite, TLS the suite (checked by the peer) and the TLS-PQ group.
 */
async function precheck(ep: Endpoint, expected: { protocol?: 'v2' | 'v1'; suite: string }): Promise<void> {
  const c = await ep.connect();
  try {
    if (c instanceof tls.TLSSocket) {
      const { group } = checkTlsSocket(c, expected.suite);
      if (group !== TLS_GROUP) throw new Error(`${ep.name}: negotiated ${group}, the table says ${TLS_GROUP} (run under Node 24)`);
    } else {
      const i = (c as Tunnel).info();
      if (i.protocol !== expected.protocol || i.suite !== expected.suite) throw new Error(`${ep.name}: negotiated ${i.protocol} ${i.suite}, the table says ${expected.protocol} ${expected.suite}`);
    }
  } finally {
    await closeConn(c);
  }
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

function closeConn(c: Socket | Tunnel): Promise<void> {
  if ('close' in c && typeof (c as Tunnel).close === 'function' && !(c instanceof tls.TLSSocket)) return (c as Tunnel).close();
  return new Promise((r) => { c.once('close', () => r()); c.end(); });
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
async function identityRows(creds: TlsCredentials, results: Record<string, unknown>, targets: TargetResult[]): Promise<void> {
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
  const rates = (await alternate(eps.map((ep) => () => sequentialHandshakes(ep, SEQUENTIAL)), ROUNDS)).map(median);
  const [anon, server, mutual, cert, certMutual, tlsCert, tlsMutual, tlsMldsa, tlsMldsaMutual] = rates as [number, number, number, number, number, number, number, number, number];
  console.log(`handshakes/s sequential, pinned keys: anonymous ${anon.toFixed(1)}, server key ${server.toFixed(1)} (${(server / anon).toFixed(2)}x), mutual ${mutual.toFixed(1)} (${(mutual / anon).toFixed(2)}x)`);
  console.log(`handshakes/s sequential, certificates: ours (ML-DSA-87) server ${cert.toFixed(1)}, mutual ${certMutual.toFixed(1)}; node:tls 1.3 ML-DSA-87 server ${tlsMldsa.toFixed(1)}, mutual ${tlsMldsaMutual.toFixed(1)} (ours/TLS: ${(cert / tlsMldsa).toFixed(2)}x, mutual ${(certMutual / tlsMldsaMutual).toFixed(2)}x); node:tls 1.3 ECDSA P-256 server ${tlsCert.toFixed(1)}, mutual ${tlsMutual.toFixed(1)}`);
  results['handshakes/s sequential, pinned keys'] = { anonymous: anon, serverKey: server, mutual, mutualVsAnonymous: mutual / anon, target: 0.8 };
  targets.push(checkTarget('pinnedMutualVsAnonymous', 'v2', mutual, anon));
  results['handshakes/s sequential, certificates'] = { mldsa87Server: cert, mldsa87Mutual: certMutual, tlsMldsa87Server: tlsMldsa, tlsMldsa87Mutual: tlsMldsaMutual, tlsEcdsaP256Server: tlsCert, tlsEcdsaP256Mutual: tlsMutual };
  for (const ep of eps) await ep.close();
  for (const k of [serverKey, clientKey, serverCert, clientCert]) k.destroy();
  caKey.destroy();
}

/** A side of a comparison row: its name in the table and one measurement. */
interface Side {
  column: 'v2' | 'v1' | 'tls' | 'go';
  measure: () => number | Promise<number>;
}

/** Why the Go column of a row is empty (for the targets' n/a). */
const GO_UNSET = 'QUANTUM_GO_BIN not set';
const GO_NO_CHACHA = 'the Go driver cannot choose ChaCha20-Poly1305';

async function main(): Promise<void> {
  if (process.argv.includes('--handshakes-only')) return handshakesOnly();
  const creds = selfSignedP256();
  const results: Record<string, unknown> = {};
  const targets: TargetResult[] = [];
  if (process.argv.includes('--identities')) {
    await identityRows(creds, results, targets);
    for (const line of formatTargets(targets)) console.log(line);
    return;
  }
  const echoFirst = (stream: { once(e: 'data', f: (d: Buffer) => void): unknown; write(d: Buffer): unknown }) => stream.once('data', (d) => stream.write(d.subarray(0, 1)));
  /** v2, v1 and TLS with one cipher, each server end hashing what it receives. */
  const trio = async (cipher: CipherName) => {
    const sinks = [sink(), sink(), sink()] as const;
    const serve = (i: number) => (stream: Tunnel | tls.TLSSocket) => {
      sinks[i]!.attach(stream);
      stream.on('end', () => stream.end());
    };
    const eps = [await quantumEndpoint(serve(0), 'v2', {}, cipher), await quantumEndpoint(serve(1), 'v1', {}, cipher), await tlsEndpoint(creds, serve(2), false, cipher)] as const;
    await precheck(eps[0], { protocol: 'v2', suite: SUITE_NAMES[cipher] });
    await precheck(eps[1], { protocol: 'v1', suite: SUITE_NAMES[cipher] });
    await precheck(eps[2], { suite: TLS13_SUITES[cipher] });
    return { eps, nexts: sinks.map((s) => s.next), close: async () => { for (const ep of eps) await ep.close(); } };
  };
  const aes = await trio('aes-256-gcm');
  const chacha = await trio('chacha20-poly1305');
  const go = await goPeer();

  console.log(`Node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'} x${os.cpus().length}; quantum-tunnel v2 and v1 vs node:tls 1.3 (${TLS_GROUP}, ECDSA P-256)${go ? ' and the Go reference' : ` (Go reference skipped: ${GO_UNSET})`}`);
  console.log(`medians of ${ROUNDS} alternating rounds; ratios are v2 over the other, better = higher`);
  const header = `${'case'.padEnd(54)} ${'v2'.padStart(9)} ${'v1'.padStart(9)} ${'tls'.padStart(9)} ${'go'.padStart(9)} unit  ${'v2/tls'.padStart(7)} ${'v2/v1'.padStart(7)} ${'v2/go'.padStart(7)}`;
  console.log(header);
  const fmt = (v: number | undefined) => (v === undefined ? '' : Number.isNaN(v) ? 'failed' : v.toFixed(1));
  const ratio = (a: number, b: number | undefined) => (b === undefined || !Number.isFinite(a / b) ? '' : `${(a / b).toFixed(2)}x`);
  /** Measures the sides in alternating rounds, prints the row of medians, records it. */
  const row = async (name: string, unit: string, sides: Side[]): Promise<Record<string, number>> => {
    const samples = await alternate(sides.map((s) => s.measure), ROUNDS);
    const m: Record<string, number> = {};
    sides.forEach((s, i) => (m[s.column] = median(samples[i]!)));
    const { v2 = Number.NaN, v1, tls: t, go: g } = m;
    console.log(`${name.padEnd(54)} ${fmt(v2).padStart(9)} ${fmt(v1).padStart(9)} ${fmt(t).padStart(9)} ${fmt(g).padStart(9)} ${unit.padEnd(5)} ${ratio(v2, t).padStart(7)} ${ratio(v2, v1).padStart(7)} ${ratio(v2, g).padStart(7)}`);
    results[name] = { ...m, unit, rounds: ROUNDS, samples: Object.fromEntries(sides.map((s, i) => [s.column, samples[i]])) };
    return m;
  };
  /** The Go side of a row, when the driver is there. */
  const goSide = (measure: (g: NonNullable<typeof go>) => number): Side[] => (go ? [{ column: 'go', measure: () => measure(go) }] : []);
  const ours = (m: Record<string, number>) => [['v2', m.v2!], ['v1', m.v1!]] as const;

  // Warm all up.
  for (const ep of [...aes.eps, ...chacha.eps]) await sequentialHandshakes(ep, 5);
  const [q, q1, t] = aes.eps;
  const seq = await row('handshakes/s sequential', 'hs/s', [
    { column: 'v2', measure: () => sequentialHandshakes(q, SEQUENTIAL) },
    { column: 'v1', measure: () => sequentialHandshakes(q1, SEQUENTIAL) },
    { column: 'tls', measure: () => sequentialHandshakes(t, SEQUENTIAL) },
    ...goSide((g) => g.handshakes(SEQUENTIAL, 1)),
  ]);
  const concurrent = await row(`handshakes/s concurrent (${CONCURRENCY} clients)`, 'hs/s', [
    { column: 'v2', measure: () => concurrentHandshakes(q, CONCURRENT_TOTAL, CONCURRENCY) },
    { column: 'v1', measure: () => concurrentHandshakes(q1, CONCURRENT_TOTAL, CONCURRENCY) },
    { column: 'tls', measure: () => concurrentHandshakes(t, CONCURRENT_TOTAL, CONCURRENCY) },
    ...goSide((g) => g.handshakes(CONCURRENT_TOTAL, CONCURRENCY)),
  ]);
  for (const [side, v] of ours(seq)) {
    targets.push(checkTarget('handshakesSequentialVsTlsPq', side, v, seq.tls, undefined, TLS_GROUP));
    targets.push(checkTarget('handshakesSequentialVsGo', side, v, seq.go, go ? undefined : GO_UNSET));
  }
  for (const [side, v] of ours(concurrent)) {
    targets.push(checkTarget('handshakesConcurrentVsTlsPq', side, v, concurrent.tls, undefined, TLS_GROUP));
    targets.push(checkTarget('handshakesConcurrentVsGo', side, v, concurrent.go, go ? undefined : GO_UNSET));
  }
  targets.push(checkTarget('handshakesSequentialVsV1', 'v2', seq.v2!, seq.v1));
  targets.push(checkTarget('handshakesConcurrentVsV1', 'v2', concurrent.v2!, concurrent.v1));

  /** One bulk transfer per side and round, checked byte for byte. */
  const bulkSide = (set: typeof aes, i: 0 | 1 | 2, size: number): Side => ({
    column: (['v2', 'v1', 'tls'] as const)[i],
    measure: async () => {
      const r = await bulk(set.eps[i], set.nexts[i]!, size);
      if (!r.ok) throw new Error(`bulk transfer corrupted or incomplete (${set.eps[i].name})`);
      return r.mbps;
    },
  });
  const mib = BULK_BYTES / 2 ** 20;
  const aes64 = await row(`throughput ${mib} MiB, 64 KiB writes, AES-256-GCM`, 'MB/s', [
    bulkSide(aes, 0, 64 * 1024), bulkSide(aes, 1, 64 * 1024), bulkSide(aes, 2, 64 * 1024),
    // The Go reference sends at most 512 MiB (it stalls at its 1 GiB rekey): a rate either way.
    ...goSide((g) => g.throughput(Math.min(BULK_BYTES, GO_MAX_BULK_BYTES), 64 * 1024)),
  ]);
  const aes8 = await row(`throughput ${mib} MiB, 8 KiB writes, AES-256-GCM`, 'MB/s', [bulkSide(aes, 0, 8 * 1024), bulkSide(aes, 1, 8 * 1024), bulkSide(aes, 2, 8 * 1024)]);
  const chacha64 = await row(`throughput ${mib} MiB, 64 KiB writes, ChaCha20-Poly1305`, 'MB/s', [bulkSide(chacha, 0, 64 * 1024), bulkSide(chacha, 1, 64 * 1024), bulkSide(chacha, 2, 64 * 1024)]);
  for (const [side, v] of ours(aes64)) {
    targets.push(checkTarget('throughputAesVsTls', side, v, aes64.tls));
    targets.push(checkTarget('throughputAesVsGo', side, v, aes64.go, go ? undefined : GO_UNSET));
  }
  for (const [side, v] of ours(chacha64)) {
    targets.push(checkTarget('throughputChachaVsTls', side, v, chacha64.tls));
    targets.push(checkTarget('throughputChachaVsGo', side, v, undefined, go ? GO_NO_CHACHA : GO_UNSET));
  }
  targets.push(checkTarget('throughputVsV1', 'v2, 64 KiB AES-256-GCM', aes64.v2!, aes64.v1));
  targets.push(checkTarget('throughputVsV1', 'v2, 8 KiB AES-256-GCM', aes8.v2!, aes8.v1));
  targets.push(checkTarget('throughputVsV1', 'v2, 64 KiB ChaCha20-Poly1305', chacha64.v2!, chacha64.v1));
  go?.close();
  await aes.close();
  await chacha.close();

  await identityRows(creds, results, targets);

  // Round trips: time to the first echoed byte through a delaying proxy.
  const echoServers = [await quantumEndpoint((s) => echoFirst(s), 'v2'), await quantumEndpoint((s) => echoFirst(s), 'v1'), await tlsEndpoint(creds, (s) => echoFirst(s))];
  const runs = quick ? 5 : 15;
  const [fb2, fb1, fbTls] = [await firstByteMs(echoServers[0]!, runs), await firstByteMs(echoServers[1]!, runs), await firstByteMs(echoServers[2]!, runs)];
  const rtt = 2 * ONE_WAY_DELAY_MS;
  console.log(`first byte, ${rtt} ms RTT (median of ${runs}): v2 ${fb2.toFixed(1)} ms, v1 ${fb1.toFixed(1)} ms, TLS ${fbTls.toFixed(1)} ms; round trips: v2 ${(fb2 / rtt).toFixed(2)}, v1 ${(fb1 / rtt).toFixed(2)}, TLS ${(fbTls / rtt).toFixed(2)}`);
  results[`first byte, ${rtt} ms RTT (median)`] = { v2: fb2, v1: fb1, tls: fbTls, unit: 'ms' };
  targets.push(checkTarget('roundTripSaved', 'v2', (fb1 - fb2) / rtt));
  for (const ep of echoServers) await ep.close();

  // Memory: idle tunnels vs idle plain TCP pairs.
  const base = await idleMemory(async (n) => { const p = await tcpPairs(n); return [...p.conns, { destroy: () => p.server.close() }]; }, IDLE_TUNNELS);
  const memory: Record<string, unknown> = { tunnels: IDLE_TUNNELS, tcpBaseline: base };
  for (const version of ['v2', 'v1'] as const) {
    const legacyV1 = version === 'v1';
    const idleServer = listen({ port: 0, legacyV1 });
    const serverSide: Tunnel[] = [];
    idleServer.on('tunnel', (tn) => serverSide.push(tn));
    await idleServer.ready;
    const tun = await idleMemory(async (n) => {
      const conns: Tunnel[] = [];
      for (let i = 0; i < n; i++) conns.push(await dial({ host: '127.0.0.1', port: idleServer.address().port }, { legacyV1 }));
      return [...conns, ...serverSide];
    }, IDLE_TUNNELS);
    await idleServer.close();
    const beyond = { rssKiB: tun.rssKiB - base.rssKiB, heapKiB: tun.heapKiB - base.heapKiB, externalKiB: tun.externalKiB - base.externalKiB };
    console.log(`memory per idle ${version} tunnel end at ${IDLE_TUNNELS} tunnels, beyond a plain TCP socket: RSS ${beyond.rssKiB.toFixed(1)} KiB, JS heap ${beyond.heapKiB.toFixed(1)} KiB, external ${beyond.externalKiB.toFixed(1)} KiB`);
    memory[version] = { tunnel: tun, beyondSocket: beyond };
    // RSS moves in pages and barely at all at the quick run's 200 tunnels, so the verdict takes
    // the larger of it and what the JS heap and external buffers grew by.
    const judged = Math.max(beyond.rssKiB, beyond.heapKiB + beyond.externalKiB);
    targets.push(checkTarget('idleMemory', version, judged, undefined, undefined, judged === beyond.rssKiB ? 'RSS' : 'JS heap + external, above RSS'));
  }
  results.memoryPerIdleTunnel = memory;

  // FIPS mode against standard mode, each in its own process (FIPS mode is process-wide). Needs
  // the FIPS configuration of this machine (npm run fips:install).
  try {
    const standard = childRate({ QUANTUM_TUNNEL_FIPS: '' });
    const fipsRate = childRate({ QUANTUM_TUNNEL_FIPS: '1' });
    console.log(`handshakes/s, FIPS mode (v2, P-384 + ML-KEM-1024) ${fipsRate.toFixed(1)} vs standard mode (v2, X25519 + ML-KEM-1024) ${standard.toFixed(1)}: ${(fipsRate / standard).toFixed(2)}x`);
    results['handshakes/s, FIPS mode vs standard'] = { fips: fipsRate, standard, ratio: fipsRate / standard };
    targets.push(checkTarget('fipsVsStandard', 'v2', fipsRate, standard));
  } catch (err) {
    const why = `FIPS comparison skipped: ${(err as Error).message.split('\n')[0]} (run npm run fips:install)`;
    console.log(why);
    targets.push(checkTarget('fipsVsStandard', 'v2', Number.NaN, Number.NaN, 'skipped: no FIPS configuration'));
  }

  console.log('');
  for (const line of formatTargets(targets)) console.log(line);
  results.targets = targets;
  mkdirSync(dirname(jsonPath), { recursive: true });
  writeFileSync(jsonPath, JSON.stringify({ node: process.version, cpu: os.cpus()[0]?.model, cores: os.cpus().length, quick, rounds: ROUNDS, results }, null, 2));
  console.log(`results written to ${jsonPath}`);
}

main().then(() => process.exit(0), (err) => { console.error(err); process.exit(1); });
