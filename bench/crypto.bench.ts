/**
 * Crypto core benchmark: quantum-tunnel's addon (its own OpenSSL 3.5) against node:crypto and, for
 * ML-KEM, @noble/post-quantum, side by side in one Node 24 process. Run it with `npm run bench`
 * (scripts/bench.js finds Node 24 and tsx); flags:
 *
 *   --quick          short run (< 20 s) for a smoke test; figures are noisier
 *   --json PATH      where to write the JSON results (default bench/results/crypto.json)
 *   --filter REGEX   only the comparisons whose "group / case" name matches
 *   --time MS        timed budget per case (default 1800, quick 200)
 *   --check          exit with status 1 when a target is missed
 *
 * See docs/BENCHMARKS.md for how the figures are taken and what the targets are.
 */
import * as nodeCrypto from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ml_kem1024 } from '@noble/post-quantum/ml-kem.js';
import { crypto as qt } from '../lib/index.js';
import { type Case, type CaseResult, type HarnessOptions, formatRate, measureGroup, renderTable } from './harness.js';
import * as testing from '../lib/testing.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

// ---------------------------------------------------------------------------------------------
// Command line

interface Cli {
  quick: boolean;
  json: string;
  filter?: RegExp;
  timeMs?: number;
  check: boolean;
}

function parseCli(argv: string[]): Cli {
  const cli: Cli = { quick: false, json: resolve(repoRoot, 'bench/results/crypto.json'), check: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--quick') cli.quick = true;
    else if (a === '--check') cli.check = true;
    else if (a === '--json') cli.json = resolve(value());
    else if (a === '--filter') cli.filter = new RegExp(value(), 'i');
    else if (a === '--time') cli.timeMs = Number(value());
    else throw new Error(`unknown argument ${a} (expected --quick, --json PATH, --filter REGEX, --time MS, --check)`);
  }
  return cli;
}

const cli = parseCli(process.argv.slice(2));
const harness: HarnessOptions = cli.quick
  ? { warmupMs: 40, timeMs: cli.timeMs ?? 200, rounds: 4, gcBefore: 'case' }
  : { warmupMs: 250, timeMs: cli.timeMs ?? 1800, rounds: 9, gcBefore: 'slot' };

// ---------------------------------------------------------------------------------------------
// Node 24 additions that @types/node 20 does not describe

interface NodeEncapsulation {
  sharedKey: Buffer;
  ciphertext: Buffer;
}
interface Node24Crypto {
  encapsulate(key: KeyObject): NodeEncapsulation;
  encapsulate(key: KeyObject, cb: (err: Error | null, r: NodeEncapsulation) => void): void;
  decapsulate(key: KeyObject, ciphertext: Uint8Array): Buffer;
  decapsulate(key: KeyObject, ciphertext: Uint8Array, cb: (err: Error | null, sharedKey: Buffer) => void): void;
}
type KeyPair = { publicKey: KeyObject; privateKey: KeyObject };

const n24 = nodeCrypto as unknown as Node24Crypto;
if (typeof n24.encapsulate !== 'function' || typeof n24.decapsulate !== 'function') {
  throw new Error(`node:crypto in Node ${process.version} has no ML-KEM; run the benchmark with Node 24 (npm run bench)`);
}
const generateKeyPairSync = nodeCrypto.generateKeyPairSync as unknown as (type: string) => KeyPair;
const generateKeyPair = nodeCrypto.generateKeyPair as unknown as (
  type: string,
  options: undefined,
  cb: (err: Error | null, publicKey: KeyObject, privateKey: KeyObject) => void,
) => void;

/** A public key from raw bytes (Node 24's `raw-public` import; SPKI DER where that is missing). */
function makeRawImporter(type: string, sample: KeyObject): (raw: Uint8Array) => KeyObject {
  const raw = sample.export({ format: 'raw-public' } as never) as Buffer;
  try {
    nodeCrypto.createPublicKey({ key: raw, format: 'raw-public', asymmetricKeyType: type } as never);
    return (r) => nodeCrypto.createPublicKey({ key: r, format: 'raw-public', asymmetricKeyType: type } as never);
  } catch {
    const der = sample.export({ format: 'der', type: 'spki' });
    const prefix = der.subarray(0, der.length - raw.length);
    return (r) => nodeCrypto.createPublicKey({ key: Buffer.concat([prefix, r]), format: 'der', type: 'spki' });
  }
}

function assert(cond: boolean, what: string): void {
  if (!cond) throw new Error(`benchmark self-check failed: ${what}`);
}

// ---------------------------------------------------------------------------------------------
// What is measured. An "op" is one row family: our case first, then the peers it is compared
// with. A peer may carry a target: ours / peer must reach `min`.

interface Target {
  id: string;
  min: number;
}
interface OpSpec {
  name: string;
  /** Unit of the figures (default ops/s). */
  unit?: string;
  ours: Case;
  peers: Array<Case & { target?: Target }>;
}
interface GroupSpec {
  title: string;
  /** Name used in the target list. */
  short: string;
  ops: OpSpec[];
}

let sink = 0; // results are fed here so no call is dead code
const keep = (x: { length: number }): void => {
  sink ^= x.length;
};

const NOBLE = '@noble/post-quantum';
const NODE = 'node:crypto';
const KEM_TARGET = 0.9;
const NOBLE_TARGET = 10;
const BATCH_TARGET = 2;

function mlkemGroups(): GroupSpec[] {
  const K = qt.mlkem1024;
  // Long-lived keys and ciphertexts for the encapsulate/decapsulate cases.
  const ours = K.generateKeyPair();
  const ourCt = (() => {
    const e = K.encapsulate(ours.publicKey);
    e.sharedSecret.destroy();
    return e.ciphertext;
  })();
  const nodeKp = generateKeyPairSync('ml-kem-1024');
  const nodePubRaw = nodeKp.publicKey.export({ format: 'raw-public' } as never) as Buffer;
  const nodeCt = n24.encapsulate(nodeKp.publicKey).ciphertext;
  const oursImported = K.importPublicKey(ours.publicKey);
  const importMlKem = makeRawImporter('ml-kem-1024', nodeKp.publicKey);
  const noble = ml_kem1024.keygen();
  const nobleCt = ml_kem1024.encapsulate(noble.publicKey).cipherText;

  // Self-checks: the three implementations interoperate, so they do the same work.
  {
    const viaNode = n24.encapsulate(importMlKem(ours.publicKey));
    const s = K.decapsulate(ours.privateKey, viaNode.ciphertext);
    assert(qt.timingSafeEqual(s, viaNode.sharedKey), 'node:crypto encapsulation to our ML-KEM key');
    s.destroy();
    const viaNoble = ml_kem1024.encapsulate(ours.publicKey);
    const t = K.decapsulate(ours.privateKey, viaNoble.cipherText);
    assert(qt.timingSafeEqual(t, viaNoble.sharedSecret), '@noble encapsulation to our ML-KEM key');
    t.destroy();
    const e = K.encapsulate(nodePubRaw);
    assert(qt.timingSafeEqual(e.sharedSecret, n24.decapsulate(nodeKp.privateKey, e.ciphertext)), 'our encapsulation to a node:crypto key');
    e.sharedSecret.destroy();
  }

  const vsNode = (id: string): Target => ({ id: `mlkem.${id}.node`, min: KEM_TARGET });
  const vsNoble = (id: string): Target => ({ id: `mlkem.${id}.noble`, min: NOBLE_TARGET });

  const sync: GroupSpec = {
    title: 'ML-KEM-1024',
    short: 'ML-KEM-1024',
    ops: [
      {
        name: 'keygen',
        ours: {
          impl: 'ours',
          fn: () => {
            const kp = K.generateKeyPair();
            kp.privateKey.destroy();
            keep(kp.publicKey);
          },
        },
        peers: [
          { impl: NODE, fn: () => generateKeyPairSync('ml-kem-1024'), target: vsNode('keygen') },
          { impl: NOBLE, fn: () => keep(ml_kem1024.keygen().publicKey), target: vsNoble('keygen') },
        ],
      },
      {
        name: 'encapsulate (key parsed once)',
        ours: {
          impl: 'ours',
          note: 'mlkem1024.importPublicKey() once',
          fn: () => {
            const e = K.encapsulate(oursImported);
            e.sharedSecret.destroy();
            keep(e.ciphertext);
          },
        },
        peers: [
          {
            impl: NODE,
            note: 'KeyObject created once',
            fn: () => keep(n24.encapsulate(nodeKp.publicKey).ciphertext),
            target: vsNode('encapsulate'),
          },
        ],
      },
      {
        name: 'encapsulate (raw key per op, as in a handshake)',
        ours: {
          impl: 'ours',
          note: 'raw 1568-byte key, parsed and checked per op',
          fn: () => {
            const e = K.encapsulate(ours.publicKey);
            e.sharedSecret.destroy();
            keep(e.ciphertext);
          },
        },
        peers: [
          {
            impl: NODE,
            note: 'key imported from raw bytes per op',
            fn: () => keep(n24.encapsulate(importMlKem(nodePubRaw)).ciphertext),
          },
          { impl: NOBLE, fn: () => keep(ml_kem1024.encapsulate(noble.publicKey).cipherText), target: vsNoble('encapsulate') },
        ],
      },
      {
        name: 'decapsulate',
        ours: { impl: 'ours', fn: () => K.decapsulate(ours.privateKey, ourCt).destroy() },
        peers: [
          { impl: NODE, fn: () => keep(n24.decapsulate(nodeKp.privateKey, nodeCt)), target: vsNode('decapsulate') },
          { impl: NOBLE, fn: () => keep(ml_kem1024.decapsulate(nobleCt, noble.secretKey)), target: vsNoble('decapsulate') },
        ],
      },
    ],
  };

  const IN_FLIGHT = 4;
  const nodeGenAsync = (): Promise<KeyObject> =>
    new Promise((ok, fail) => generateKeyPair('ml-kem-1024', undefined, (err, pub) => (err ? fail(err) : ok(pub))));
  const nodeEncAsync = (): Promise<NodeEncapsulation> =>
    new Promise((ok, fail) => n24.encapsulate(nodeKp.publicKey, (err, r) => (err ? fail(err) : ok(r))));
  const nodeDecAsync = (): Promise<Buffer> =>
    new Promise((ok, fail) => n24.decapsulate(nodeKp.privateKey, nodeCt, (err, k) => (err ? fail(err) : ok(k))));
  const note = `${IN_FLIGHT} in flight`;
  const async: GroupSpec = {
    title: `ML-KEM-1024 async (threadpool, ${IN_FLIGHT} in flight, UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? '4'})`,
    short: 'ML-KEM-1024 async',
    ops: [
      {
        name: 'keygen async',
        ours: {
          impl: 'ours',
          note,
          inFlight: IN_FLIGHT,
          asyncFn: async () => (await K.generateKeyPairAsync()).privateKey.destroy(),
        },
        peers: [{ impl: NODE, note: `generateKeyPair(cb), ${note}`, inFlight: IN_FLIGHT, asyncFn: nodeGenAsync }],
      },
      {
        name: 'encapsulate async',
        ours: {
          impl: 'ours',
          note,
          inFlight: IN_FLIGHT,
          asyncFn: async () => (await K.encapsulateAsync(ours.publicKey)).sharedSecret.destroy(),
        },
        peers: [{ impl: NODE, note: `encapsulate(cb), ${note}`, inFlight: IN_FLIGHT, asyncFn: nodeEncAsync }],
      },
      {
        name: 'decapsulate async',
        ours: {
          impl: 'ours',
          note,
          inFlight: IN_FLIGHT,
          asyncFn: async () => (await K.decapsulateAsync(ours.privateKey, ourCt)).destroy(),
        },
        peers: [{ impl: NODE, note: `decapsulate(cb), ${note}`, inFlight: IN_FLIGHT, asyncFn: nodeDecAsync }],
      },
    ],
  };
  return [sync, async];
}

function x25519Group(): GroupSpec {
  const X = qt.x25519;
  const ours = X.generateKeyPair();
  const nodeKp = generateKeyPairSync('x25519');
  const nodePeer = generateKeyPairSync('x25519');
  const peerRaw = nodePeer.publicKey.export({ format: 'raw-public' } as never) as Buffer;
  const importX = makeRawImporter('x25519', nodePeer.publicKey);
  {
    const s = X.deriveSharedSecret(ours.privateKey, peerRaw);
    const n = nodeCrypto.diffieHellman({ privateKey: nodePeer.privateKey, publicKey: importX(ours.publicKey) });
    assert(qt.timingSafeEqual(s, n), 'X25519 shared secrets agree');
    s.destroy();
  }
  return {
    title: 'X25519',
    short: 'X25519',
    ops: [
      {
        name: 'keygen',
        ours: {
          impl: 'ours',
          note: 'private handle + raw public key',
          fn: () => {
            const kp = X.generateKeyPair();
            kp.privateKey.destroy();
            keep(kp.publicKey);
          },
        },
        peers: [
          { impl: NODE, note: 'KeyObjects only', fn: () => generateKeyPairSync('x25519'), target: { id: 'x25519.keygen.node', min: KEM_TARGET } },
        ],
      },
      {
        name: 'derive',
        ours: { impl: 'ours', note: 'raw 32-byte peer key', fn: () => X.deriveSharedSecret(ours.privateKey, peerRaw).destroy() },
        peers: [
          {
            impl: NODE,
            note: 'KeyObjects created once',
            fn: () => keep(nodeCrypto.diffieHellman({ privateKey: nodeKp.privateKey, publicKey: nodePeer.publicKey })),
            target: { id: 'x25519.derive.node', min: KEM_TARGET },
          },
          {
            impl: NODE,
            note: 'peer key imported from raw bytes per op',
            fn: () => keep(nodeCrypto.diffieHellman({ privateKey: nodeKp.privateKey, publicKey: importX(peerRaw) })),
          },
        ],
      },
    ],
  };
}

function shakeGroup(): GroupSpec {
  const op = (label: string, inputLength: number): OpSpec => {
    const input = qt.randomBytes(inputLength);
    assert(
      qt.shake256(input, 32).equals(nodeCrypto.createHash('shake256', { outputLength: 32 }).update(input).digest()),
      `SHAKE-256 of ${label} agrees`,
    );
    return {
      name: label,
      ours: { impl: 'ours', fn: () => keep(qt.shake256(input, 32)) },
      peers: [
        {
          impl: NODE,
          fn: () => keep(nodeCrypto.createHash('shake256', { outputLength: 32 }).update(input).digest()),
          target: { id: `shake256.${inputLength}.node`, min: KEM_TARGET },
        },
      ],
    };
  };
  return { title: 'SHAKE-256 (32-byte output)', short: 'SHAKE-256', ops: [op('64 B input', 64), op('1 MiB input', 1 << 20)] };
}

// Record framing as in lib/protocol/session.ts: a Data record is
//   type(1) ‖ BE32 length(4) ‖ BE64 seq(8) ‖ nonce(12) ‖ ciphertext ‖ tag(16),  AD = BE64(seq),
// nonce = 0^4 ‖ BE64(counter). The seal cases write a new seq and nonce counter for every record.
const NONCE = 12;
const AAD = 8;
const FRAME_HEADER = 5;
const TAG = 16;

interface AeadSuiteSpec {
  label: string;
  id: qt.AeadSuiteId;
  nodeName: 'aes-256-gcm' | 'chacha20-poly1305';
  short: string;
}

function aeadGroup(suite: AeadSuiteSpec): GroupSpec {
  const key = qt.randomSecret(32);
  const ctx = qt.createAead(suite.id, key);
  // node:crypto needs the key bytes; the testing hook exports them, for this benchmark only.
  const nodeKey = testing.exportSecret(key);
  const nodeSeal = (nonce: Uint8Array, aad: Uint8Array, pt: Uint8Array): [Buffer, Buffer] => {
    const c = nodeCrypto.createCipheriv(suite.nodeName as 'aes-256-gcm', nodeKey, nonce, { authTagLength: TAG });
    c.setAAD(aad, { plaintextLength: pt.length });
    const body = c.update(pt);
    c.final();
    return [body, c.getAuthTag()];
  };
  const nodeOpen = (nonce: Uint8Array, aad: Uint8Array, body: Uint8Array, tag: Uint8Array): Buffer => {
    const d = nodeCrypto.createDecipheriv(suite.nodeName as 'aes-256-gcm', nodeKey, nonce, { authTagLength: TAG });
    d.setAAD(aad, { plaintextLength: body.length });
    d.setAuthTag(tag);
    const pt = d.update(body);
    d.final();
    return pt;
  };

  const ops: OpSpec[] = [];
  for (const size of [1024, 16384]) {
    const kib = `${size / 1024} KiB`;
    const pt = qt.randomBytes(size);
    const aad = qt.randomBytes(AAD);
    const nonce = qt.randomBytes(NONCE);
    const sealed = Buffer.alloc(size + TAG);
    const opened = Buffer.alloc(size);
    ctx.seal(sealed, 0, nonce, aad, pt);
    const [nb, nt] = nodeSeal(nonce, aad, pt);
    assert(sealed.equals(Buffer.concat([nb, nt])), `${suite.label} ${kib}: our seal equals node:crypto's`);
    assert(ctx.open(opened, 0, nonce, aad, sealed) === size && opened.equals(pt), `${suite.label} ${kib}: open`);
    let seq = 0;
    ops.push({
      name: `seal ${kib}`,
      ours: {
        impl: 'ours',
        note: 'context reused, into a preallocated buffer',
        fn: () => {
          const n = seq++ >>> 0;
          aad.writeUInt32BE(n, 4);
          nonce.writeUInt32BE(n, 8);
          ctx.seal(sealed, 0, nonce, aad, pt);
        },
      },
      peers: [
        {
          impl: NODE,
          note: 'createCipheriv per message',
          fn: () => {
            const n = seq++ >>> 0;
            aad.writeUInt32BE(n, 4);
            nonce.writeUInt32BE(n, 8);
            keep(nodeSeal(nonce, aad, pt)[0]);
          },
          target: { id: `${suite.short}.seal.${size}.node`, min: KEM_TARGET },
        },
      ],
    });
    // open needs a record sealed under the nonce it uses: re-seal once with a fixed nonce.
    const openNonce = qt.randomBytes(NONCE);
    const openAad = Buffer.from(aad); // the seal cases keep rewriting aad
    const record = Buffer.alloc(size + TAG);
    ctx.seal(record, 0, openNonce, openAad, pt);
    const recBody = record.subarray(0, size);
    const recTag = record.subarray(size);
    assert(nodeOpen(openNonce, openAad, recBody, recTag).equals(pt), `${suite.label} ${kib}: node:crypto opens our record`);
    ops.push({
      name: `open ${kib}`,
      ours: { impl: 'ours', note: 'context reused, into a preallocated buffer', fn: () => ctx.open(opened, 0, openNonce, openAad, record) },
      peers: [
        {
          impl: NODE,
          note: 'createDecipheriv per message',
          fn: () => keep(nodeOpen(openNonce, openAad, recBody, recTag)),
          target: { id: `${suite.short}.open.${size}.node`, min: KEM_TARGET },
        },
      ],
    });
  }
  return { title: suite.label, short: suite.label, ops };
}

function batchGroup(): GroupSpec {
  const COUNT = 64;
  const SIZE = 1024;
  const W = qt.AEAD_SIZES.batchRowWords;
  const key = qt.randomSecret(32);
  const ctx = qt.createAead(qt.AeadSuite.AES_256_GCM, key);
  const nodeKey = testing.exportSecret(key);

  // Sealed-record layout, as the record layer writes it: header(5) ‖ seq(8) = AD ‖ nonce(12) ‖ ciphertext ‖ tag.
  const STRIDE = FRAME_HEADER + AAD + NONCE + SIZE + TAG;
  const src = qt.randomBytes(COUNT * SIZE);
  const dst = Buffer.alloc(COUNT * STRIDE);
  qt.randomFill(dst);
  const sealTable = new Uint32Array(COUNT * W);
  const openTable = new Uint32Array(COUNT * W);
  const nonceAt: number[] = [];
  const seqAt: number[] = [];
  const views: Array<{ nonce: Buffer; aad: Buffer; pt: Buffer; outOff: number; sealed: Buffer; body: Buffer; tag: Buffer; ptOff: number }> = [];
  for (let i = 0; i < COUNT; i++) {
    const base = i * STRIDE;
    const adOff = base + FRAME_HEADER;
    const nonceOff = adOff + AAD;
    const out = nonceOff + NONCE;
    sealTable.set([i * SIZE, SIZE, out, nonceOff, adOff, AAD], i * W);
    openTable.set([out, SIZE + TAG, i * SIZE, nonceOff, adOff, AAD], i * W);
    seqAt.push(adOff + 4);
    nonceAt.push(nonceOff + 8);
    views.push({
      nonce: dst.subarray(nonceOff, nonceOff + NONCE),
      aad: dst.subarray(adOff, adOff + AAD),
      pt: src.subarray(i * SIZE, (i + 1) * SIZE),
      outOff: out,
      sealed: dst.subarray(out, out + SIZE + TAG),
      body: dst.subarray(out, out + SIZE),
      tag: dst.subarray(out + SIZE, out + SIZE + TAG),
      ptOff: i * SIZE,
    });
  }
  let seq = 0;
  /** Writes each record's sequence number (the AD) and nonce counter, as the record layer does. */
  const stampNonces = (): void => {
    for (let i = 0; i < COUNT; i++) {
      const n = seq++ >>> 0;
      dst.writeUInt32BE(n, seqAt[i]!);
      dst.writeUInt32BE(n, nonceAt[i]!);
    }
  };

  // Self-checks: the batch writes what per-record seal writes, and node:crypto agrees.
  stampNonces();
  assert(ctx.sealBatch(src, dst, sealTable, COUNT) === COUNT * (SIZE + TAG), 'sealBatch length');
  const batchOut = Buffer.from(dst);
  for (const v of views) ctx.seal(dst, v.outOff, v.nonce, v.aad, v.pt);
  assert(batchOut.equals(dst), 'sealBatch equals 64 seal calls');
  const n0 = nodeCrypto.createCipheriv('aes-256-gcm', nodeKey, views[0]!.nonce, { authTagLength: TAG });
  n0.setAAD(views[0]!.aad);
  assert(Buffer.concat([n0.update(views[0]!.pt), n0.final(), n0.getAuthTag()]).equals(views[0]!.sealed), 'batch record equals node:crypto');
  const plain = Buffer.alloc(COUNT * SIZE);
  const results = new Int32Array(COUNT);
  assert(ctx.openBatch(dst, plain, openTable, COUNT, results) === 0 && plain.equals(src), 'openBatch round trip');

  const sealOurs = {
    impl: 'ours',
    note: '64 seal() calls',
    opsPerCall: COUNT,
    fn: () => {
      stampNonces();
      for (let i = 0; i < COUNT; i++) {
        const v = views[i]!;
        ctx.seal(dst, v.outOff, v.nonce, v.aad, v.pt);
      }
    },
  };
  // The open cases read a snapshot of the records sealed above (the seal cases keep restamping
  // the nonces in dst, and node:crypto's case does not write its output there).
  const records = Buffer.from(dst);
  const recordViews = views.map((v) => ({
    nonce: records.subarray(v.nonce.byteOffset - dst.byteOffset, v.nonce.byteOffset - dst.byteOffset + NONCE),
    aad: records.subarray(v.aad.byteOffset - dst.byteOffset, v.aad.byteOffset - dst.byteOffset + AAD),
    sealed: records.subarray(v.outOff, v.outOff + SIZE + TAG),
    body: records.subarray(v.outOff, v.outOff + SIZE),
    tag: records.subarray(v.outOff + SIZE, v.outOff + SIZE + TAG),
    ptOff: v.ptOff,
  }));
  const opened = Buffer.alloc(COUNT * SIZE);
  return {
    title: `Batch: AES-256-GCM, ${COUNT} records of 1 KiB (figures are records/s)`,
    short: 'AES-256-GCM batch',
    ops: [
      {
        name: `seal ${COUNT} x 1 KiB`,
        unit: 'records/s',
        ours: {
          impl: 'ours',
          note: 'one sealBatch() call',
          opsPerCall: COUNT,
          fn: () => {
            stampNonces();
            ctx.sealBatch(src, dst, sealTable, COUNT);
          },
        },
        peers: [
          { ...sealOurs, target: { id: 'batch.seal.64x1k.percall', min: BATCH_TARGET } },
          {
            impl: NODE,
            note: '64 createCipheriv',
            opsPerCall: COUNT,
            fn: () => {
              stampNonces();
              for (let i = 0; i < COUNT; i++) {
                const v = views[i]!;
                const c = nodeCrypto.createCipheriv('aes-256-gcm', nodeKey, v.nonce, { authTagLength: TAG });
                c.setAAD(v.aad, { plaintextLength: SIZE });
                keep(c.update(v.pt));
                c.final();
                keep(c.getAuthTag());
              }
            },
          },
        ],
      },
      {
        name: `open ${COUNT} x 1 KiB`,
        unit: 'records/s',
        ours: {
          impl: 'ours',
          note: 'one openBatch() call',
          opsPerCall: COUNT,
          fn: () => {
            if (ctx.openBatch(records, opened, openTable, COUNT, results) !== 0) throw new Error('openBatch failed');
          },
        },
        peers: [
          {
            impl: 'ours',
            note: '64 open() calls',
            opsPerCall: COUNT,
            fn: () => {
              for (let i = 0; i < COUNT; i++) {
                const v = recordViews[i]!;
                ctx.open(opened, v.ptOff, v.nonce, v.aad, v.sealed);
              }
            },
          },
          {
            impl: NODE,
            note: '64 createDecipheriv',
            opsPerCall: COUNT,
            fn: () => {
              for (let i = 0; i < COUNT; i++) {
                const v = recordViews[i]!;
                const d = nodeCrypto.createDecipheriv('aes-256-gcm', nodeKey, v.nonce, { authTagLength: TAG });
                d.setAAD(v.aad, { plaintextLength: SIZE });
                d.setAuthTag(v.tag);
                keep(d.update(v.body));
                d.final();
              }
            },
          },
        ],
      },
    ],
  };
}

// ---------------------------------------------------------------------------------------------
// Machine description

function machine(): Record<string, unknown> {
  let cpuModel = os.cpus()[0]?.model ?? 'unknown';
  let flags: string[] = [];
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    cpuModel = /^model name\s*:\s*(.*)$/m.exec(info)?.[1]?.trim() ?? cpuModel;
    const all = new Set((/^flags\s*:\s*(.*)$/m.exec(info)?.[1] ?? '').split(/\s+/));
    flags = ['aes', 'pclmulqdq', 'avx2', 'avx512f', 'vaes', 'vpclmulqdq', 'sha_ni', 'adx', 'bmi2', 'hypervisor'].filter((f) => all.has(f));
  } catch {
    /* not Linux */
  }
  const ours = qt.info();
  let nobleVersion = 'unknown';
  try {
    nobleVersion = (JSON.parse(readFileSync(resolve(repoRoot, 'node_modules/@noble/post-quantum/package.json'), 'utf8')) as { version: string }).version;
  } catch {
    /* keep unknown */
  }
  return {
    cpuModel,
    logicalCpus: os.cpus().length,
    availableParallelism: os.availableParallelism(),
    cpuFlags: flags,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    nodeOpenssl: process.versions.openssl,
    oursOpenssl: ours.openssl,
    oursMode: ours.mode,
    noble: nobleVersion,
    uvThreadpoolSize: Number(process.env.UV_THREADPOOL_SIZE ?? 4),
    exposeGc: typeof (globalThis as { gc?: unknown }).gc === 'function',
  };
}

// ---------------------------------------------------------------------------------------------
// Run

interface OpResult {
  group: string;
  short: string;
  name: string;
  unit: string;
  ours: CaseResult;
  peers: Array<CaseResult & { ratio: number; target?: Target & { met: boolean } }>;
}

function label(r: { impl: string; note?: string }): string {
  return r.note ? `${r.impl} (${r.note})` : r.impl;
}

async function main(): Promise<void> {
  const started = Date.now();
  const info = machine();
  console.log(
    `quantum-tunnel crypto benchmark${cli.quick ? ' (--quick)' : ''}\n` +
      `  ${String(info.cpuModel)}, ${String(info.logicalCpus)} logical CPUs, ${String(info.os)}\n` +
      `  Node ${process.version} (node:crypto on OpenSSL ${process.versions.openssl}); ours on ${String(info.oursOpenssl)} (${String(info.oursMode)} mode); @noble/post-quantum ${String(info.noble)}\n` +
      `  per case: ${harness.warmupMs} ms warm-up, ${harness.timeMs} ms timed in ${harness.rounds} interleaved slots; figure = median slot rate\n`,
  );
  const chacha = qt.info().chacha20.available;
  const groups: GroupSpec[] = [
    ...mlkemGroups(),
    x25519Group(),
    shakeGroup(),
    aeadGroup({ label: 'AES-256-GCM', id: qt.AeadSuite.AES_256_GCM, nodeName: 'aes-256-gcm', short: 'aes256gcm' }),
    ...(chacha
      ? [aeadGroup({ label: 'ChaCha20-Poly1305', id: qt.AeadSuite.CHACHA20_POLY1305, nodeName: 'chacha20-poly1305', short: 'chacha20poly1305' })]
      : []),
    batchGroup(),
  ];
  if (!chacha) console.log('ChaCha20-Poly1305 is not available in this build/mode; skipped.\n');

  const results: OpResult[] = [];
  for (const g of groups) {
    const ops = g.ops.filter((o) => !cli.filter || cli.filter.test(`${g.title} / ${o.name}`));
    if (ops.length === 0) continue;
    const rows: string[][] = [];
    for (const op of ops) {
      const [ours, ...peers] = await measureGroup([op.ours, ...op.peers], harness);
      const res: OpResult = {
        group: g.title,
        short: g.short,
        name: op.name,
        unit: op.unit ?? 'ops/s',
        ours: ours!,
        peers: peers.map((p, i) => {
          const ratio = ours!.opsPerSec / p.opsPerSec;
          const t = op.peers[i]!.target;
          return { ...p, ratio, ...(t ? { target: { ...t, met: ratio >= t.min } } : {}) };
        }),
      };
      results.push(res);
      res.peers.forEach((p, i) => {
        rows.push([
          i === 0 ? op.name : '',
          i === 0 ? formatRate(res.ours.opsPerSec) : '',
          i === 0 ? `±${res.ours.rsdPercent.toFixed(0)}%` : '',
          label(p),
          formatRate(p.opsPerSec),
          `±${p.rsdPercent.toFixed(0)}%`,
          `${p.ratio.toFixed(2)}x`,
          p.target ? `${p.target.met ? 'ok' : 'MISS'} (>= ${p.target.min}x)` : '',
        ]);
      });
    }
    const unit = ops[0]!.unit ?? 'ops/s';
    console.log(`${g.title}`);
    const noted = ops.filter((o) => o.ours.note !== undefined);
    const sameNote = noted.length === ops.length && noted.every((o) => o.ours.note === noted[0]!.ours.note);
    if (sameNote) console.log(`  ours: ${noted[0]!.ours.note!}`);
    else if (noted.length > 0) console.log(`  ours: ${noted.map((o) => `${o.name}: ${o.ours.note!}`).join('; ')}`);
    console.log(
      renderTable(
        ['case', `ours ${unit}`, 'rsd', 'peer', `peer ${unit}`, 'rsd', 'ours/peer', 'target'],
        rows,
        [false, true, true, false, true, true, true, false],
      ).replace(/^/gm, '  '),
    );
    console.log('');
  }

  // Targets
  const targets = results.flatMap((r) =>
    r.peers.flatMap((p) =>
      p.target ? [{ id: p.target.id, what: `${r.short} ${r.name}: ours vs ${label(p)}`, min: p.target.min, ratio: p.ratio, met: p.target.met }] : [],
    ),
  );
  if (targets.length > 0) {
    console.log('Targets (ours / peer)');
    for (const t of targets) {
      console.log(`  ${t.met ? 'MET   ' : 'MISSED'}  ${t.ratio.toFixed(2)}x (>= ${t.min}x${t.met ? '' : `, short by ${((1 - t.ratio / t.min) * 100).toFixed(0)}%`})  ${t.what}`);
    }
    const missed = targets.filter((t) => !t.met).length;
    console.log(`  ${targets.length - missed} of ${targets.length} met\n`);
  }

  const seconds = (Date.now() - started) / 1000;
  const out = {
    benchmark: 'quantum-tunnel crypto',
    date: new Date().toISOString(),
    quick: cli.quick,
    harness,
    durationSeconds: Math.round(seconds * 10) / 10,
    machine: info,
    results,
    targets,
  };
  mkdirSync(dirname(cli.json), { recursive: true });
  writeFileSync(cli.json, `${JSON.stringify(out, null, 2)}\n`);
  console.log(`Wrote ${cli.json} (${seconds.toFixed(1)} s)`);
  if (sink === 0x7fffffff) console.log(''); // keeps `sink` observable
  if (cli.check && targets.some((t) => !t.met)) process.exitCode = 1;
}

await main();
