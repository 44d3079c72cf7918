/**
 * Constant-time checks, dudect-style (Reparaz, Balasch, Verbauwhede, "Dude, is my code constant
 * time?", DATE 2017): each secret-dependent comparison or operation we own is timed on two
 * classes of input, interleaved at random, and Welch's t-test says whether the two timing
 * distributions differ. |t| above 4.5 is evidence of a difference (dudect's threshold); below it,
 * no difference was detected at this number of measurements, which is not a proof.
 *
 *   npm run timing [-- --measurements N] [--filter REGEX] [--json PATH] [--quick] [--strict]
 *
 * Each measurement times one call through the public API (JS, Node-API and the addon), so the
 * noise of V8, the allocator and the machine is in every sample; the test is sensitive to a
 * difference that survives it. Inputs are all prepared before timing starts, and measurements
 * are cropped at several percentiles (as dudect does) to drop interrupts and GC pauses; the largest
 * |t| of the crops is reported.
 */
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { crypto } from '../lib/index.js';
import type { Secret } from '../lib/native.js';
import { decodeNewSessionTicket, TicketIssuer } from '../lib/protocol/v2/tickets.js';

const hkdf = crypto.hkdf;

interface Check {
  name: string;
  /** A deliberately variable-time operation: the harness must find its difference. */
  control?: boolean;
  /** The check this one is the null test of (same operation, both classes alike). */
  nullOf?: string;
  /** What the two classes are. */
  classes: [string, string];
  /** Default number of measurements (both classes together). */
  measurements: number;
  /** Prepares `n` inputs of a class; returns the call to time for input i. */
  prepare(n: number): { run(cls: 0 | 1, i: number): unknown; done(): void };
}

/**
 * A copy in its own allocation. Buffer.from() slices a shared pool, so inputs made one after
 * another sit at alternating alignments, and a class made on alternate steps gets its own
 * alignment: a valid-against-valid ML-KEM run showed |t| of 20 from that alone.
 */
function own(bytes: Uint8Array): Buffer {
  const b = Buffer.alloc(bytes.length);
  b.set(bytes);
  return b;
}

function flip(bytes: Buffer, at: number): Buffer {
  const b = own(bytes);
  b.writeUInt8(b.readUInt8(at) ^ 0x01, at);
  return b;
}

/**
 * ML-KEM-1024 decapsulation of valid against implicitly rejected ciphertexts; or, as its null
 * test, valid against valid. When the null test differs too, differences of that size are the
 * machine's or the harness's, not the decapsulation's: the verdict is then inconclusive.
 */
function mlkemCheck(nullTest: boolean): Check {
  return {
    name: nullTest ? 'ML-KEM-1024 decapsulation, null test (valid against valid ciphertexts)' : 'ML-KEM-1024 decapsulation (valid against implicitly rejected ciphertexts)',
    nullOf: nullTest ? 'ML-KEM-1024 decapsulation (valid against implicitly rejected ciphertexts)' : undefined,
    classes: nullTest ? ['valid ciphertext', 'another valid ciphertext'] : ['valid ciphertext', 'ciphertext with one byte changed (implicit rejection)'],
    measurements: 40_000,
    prepare(n) {
      const pair = crypto.mlkem1024.generateKeyPair();
      // Distinct ciphertexts per measurement, so no cache or branch predictor learns one input,
      // each in its own allocation (see own()), made in random class order.
      const count = Math.min(n, 512);
      const inputs: [Buffer[], Buffer[]] = [[], []];
      const coin = crypto.randomBytes(2 * count);
      for (let k = 0; inputs[0].length < count || inputs[1].length < count; k++) {
        const cls: 0 | 1 = inputs[0].length === count ? 1 : inputs[1].length === count ? 0 : ((coin[k % coin.length]! & 1) as 0 | 1);
        const e = crypto.mlkem1024.encapsulate(pair.publicKey);
        e.sharedSecret.destroy();
        inputs[cls].push(cls === 0 || nullTest ? own(e.ciphertext) : flip(e.ciphertext, inputs[1].length % e.ciphertext.length));
      }
      // Every decapsulation reads its ciphertext from the same buffer: where an input lies in
      // memory (its cache-line alignment) otherwise differs between the two sets of inputs and
      // shows up as a difference even in the null test. The copy costs the same for both classes.
      const scratch = Buffer.alloc(inputs[0][0]!.length);
      return {
        run: (cls, i) => {
          scratch.set(inputs[cls][i % count]!);
          crypto.mlkem1024.decapsulate(pair.privateKey, scratch).destroy();
        },
        done: () => pair.privateKey.destroy(),
      };
    },
  };
}

const CHECKS: Check[] = [
  {
    name: 'control: Buffer.equals of 4 KiB (memcmp, which stops at the first difference)',
    control: true,
    classes: ['differ in the first byte', 'differ in the last byte'],
    measurements: 100_000,
    prepare() {
      const a = crypto.randomBytes(4096);
      const b: [Buffer, Buffer] = [flip(a, 0), flip(a, a.length - 1)];
      return { run: (cls) => a.equals(b[cls]), done: () => undefined };
    },
  },
  {
    name: 'Finished / binder MAC check (hkdf.hmacVerify, HMAC-SHA-384)',
    classes: ['tag wrong in its first byte', 'tag wrong in its last byte'],
    measurements: 200_000,
    prepare() {
      const key = crypto.randomSecret(48);
      const transcript = crypto.randomBytes(48);
      const tag = hkdf.hmac(hkdf.HkdfDigest.SHA384, key, [transcript]);
      const wrong: [Buffer, Buffer] = [flip(tag, 0), flip(tag, tag.length - 1)];
      return {
        run: (cls) => hkdf.hmacVerify(hkdf.HkdfDigest.SHA384, key, [transcript], wrong[cls]),
        done: () => key.destroy(),
      };
    },
  },
  {
    name: 'secret comparison (crypto.timingSafeEqual of two 32-byte secrets)',
    classes: ['differ in the first byte', 'differ in the last byte'],
    measurements: 200_000,
    prepare() {
      const bytes = crypto.randomBytes(32);
      const a = crypto.importSecret(bytes);
      const b: [Secret, Secret] = [crypto.importSecret(flip(bytes, 0)), crypto.importSecret(flip(bytes, 31))];
      return {
        run: (cls) => crypto.timingSafeEqual(a, b[cls]),
        done: () => [a, ...b].forEach((s) => s.destroy()),
      };
    },
  },
  {
    name: 'ticket authentication (TicketIssuer.open of a forged ticket)',
    classes: ['tag wrong in its first byte', 'tag wrong in its last byte'],
    measurements: 100_000,
    prepare() {
      const issuer = new TicketIssuer({ serverIdentity: Buffer.from('timing') });
      const psk = crypto.randomSecret(48);
      const issued = issuer.issue(psk, { suite: 1, group: 0x0101 });
      psk.destroy();
      const ticket = Buffer.from(decodeNewSessionTicket(issued.message).ticket);
      const obfuscatedAge = issued.ageAdd; // age 0
      const tagAt = ticket.length - 16;
      const forged: [Buffer, Buffer] = [flip(ticket, tagAt), flip(ticket, ticket.length - 1)];
      return {
        run: (cls) => issuer.open(forged[cls], obfuscatedAge),
        done: () => issuer.destroy(),
      };
    },
  },
  mlkemCheck(false),
  mlkemCheck(true),
];

/** Welch's t statistic of two samples. */
function welch(a: Float64Array, b: Float64Array): number {
  const stats = (x: Float64Array) => {
    let mean = 0;
    for (const v of x) mean += v;
    mean /= x.length;
    let variance = 0;
    for (const v of x) variance += (v - mean) ** 2;
    return { mean, variance: variance / (x.length - 1), n: x.length };
  };
  const s = stats(a);
  const t = stats(b);
  return (s.mean - t.mean) / Math.sqrt(s.variance / s.n + t.variance / t.n);
}

interface Result {
  check: string;
  control: boolean;
  classes: [string, string];
  measurements: number;
  medianNs: [number, number];
  maxAbsT: number;
  /** |t| with no cropping and at each crop percentile. */
  tByCrop: Record<string, number>;
  verdict: 'no difference detected' | 'difference detected' | 'inconclusive: its null test differs too';
}

function measure(check: Check, n: number): Result {
  const prepared = check.prepare(n);
  // Random class order, fixed before timing.
  const order = new Uint8Array(n);
  const random = crypto.randomBytes(n);
  for (let i = 0; i < n; i++) order[i] = random[i]! & 1;
  // Warm-up: JIT both classes.
  for (let i = 0; i < 2000; i++) prepared.run((i & 1) as 0 | 1, i);
  const times = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const cls = order[i] as 0 | 1;
    const t0 = performance.now();
    prepared.run(cls, i);
    times[i] = (performance.now() - t0) * 1e6;
  }
  prepared.done();
  const sorted = Float64Array.from(times).sort();
  const tByCrop: Record<string, number> = {};
  const median: [number, number] = [0, 0];
  for (const crop of [1, 0.99, 0.95, 0.9, 0.75, 0.5]) {
    const limit = sorted[Math.min(n - 1, Math.floor(crop * n))]!;
    const a: number[] = [];
    const b: number[] = [];
    for (let i = 0; i < n; i++) {
      if (crop < 1 && times[i]! > limit) continue;
      (order[i] === 0 ? a : b).push(times[i]!);
    }
    tByCrop[crop === 1 ? 'all' : `p${Math.round(crop * 100)}`] = welch(Float64Array.from(a), Float64Array.from(b));
    if (crop === 1) {
      median[0] = Float64Array.from(a).sort()[a.length >> 1]!;
      median[1] = Float64Array.from(b).sort()[b.length >> 1]!;
    }
  }
  const maxAbsT = Math.max(...Object.values(tByCrop).map(Math.abs));
  return {
    check: check.name,
    control: check.control === true,
    classes: check.classes,
    measurements: n,
    medianNs: median,
    maxAbsT,
    tByCrop,
    verdict: maxAbsT > 4.5 ? 'difference detected' : 'no difference detected',
  };
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const quick = process.argv.includes('--quick');
const override = arg('measurements');
const results: Result[] = [];
const filter = arg('filter');
for (const check of CHECKS) {
  if (filter && !check.control && !new RegExp(filter, 'i').test(check.name)) continue;
  const n = override ? Number(override) : quick ? Math.floor(check.measurements / 10) : check.measurements;
  const r = measure(check, n);
  results.push(r);
  const t = Object.entries(r.tByCrop).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ');
  console.log(`${r.check}\n  ${r.classes[0]} vs ${r.classes[1]}: ${n} measurements, medians ${r.medianNs[0].toFixed(0)} / ${r.medianNs[1].toFixed(0)} ns`);
  console.log(`  t: ${t}\n  max |t| = ${r.maxAbsT.toFixed(2)}: ${r.verdict}`);
}
// A check whose null test also differs cannot tell its classes apart from the noise.
for (const r of results) {
  const nullTest = results.find((x) => CHECKS.find((c) => c.name === x.check)?.nullOf === r.check);
  if (nullTest?.verdict === 'difference detected' && r.verdict === 'difference detected') r.verdict = 'inconclusive: its null test differs too';
}
for (const r of results) console.log(`${r.verdict.padEnd(40)} max |t| ${r.maxAbsT.toFixed(2).padStart(7)}  ${r.check}`);
const json = arg('json');
if (json) writeFileSync(json, `${JSON.stringify({ date: new Date().toISOString(), node: process.version, results }, null, 2)}\n`);
// A control whose difference goes unseen means the harness (or the machine) cannot see
// differences of that size: the other verdicts mean nothing then.
if (results.some((r) => r.control && r.verdict !== 'difference detected')) {
  console.error('the control check found no difference: this run cannot tell constant-time code from variable-time code');
  process.exitCode = 1;
}
// Otherwise a report, not a gate: timing on a shared machine is evidence to read, not a pass/fail
// test (docs/SECURITY.md, "Timing"). --strict makes a detected difference the exit status.
if (process.argv.includes('--strict') && results.some((r) => !r.control && r.verdict === 'difference detected')) process.exitCode = 1;
