/**
 * Record AEAD contexts (protocol v2's record layer): the context holds the IV natively and seals
 * record `seq` under nonce = iv XOR (0x00000000 ‖ BE64(seq)) (RFC 8446 §5.3, SP 800-38D §8.2.1).
 * The reference here is the explicit-nonce context with that nonce computed in JS, and the
 * published vectors with an IV chosen so that iv XOR seq is their nonce.
 */
import { expect } from 'chai';
import { crypto, QuantumTunnelError } from '../../lib/index.js';
import { native, type NativeAeadContext, type NativeRecordAeadContext } from '../../lib/native.js';
import * as testing from '../../lib/testing.js';
import { detach, expectCode, own } from '../helpers/buffers.js';
import { hex, loadFixture } from '../helpers/fixtures.js';

const GCM = loadFixture('aes-256-gcm.json');
const CHACHA = loadFixture('rfc8439.json');
const { AeadSuite, AEAD_SIZES, createAead, createRecordAead, seal, open, sealRecord, openRecord } = crypto;

const INVALID = 'ERR_QT_INVALID_ARGUMENT';
const INVALID_KEY = 'ERR_QT_INVALID_KEY';
const STATE = 'ERR_QT_INVALID_STATE';
const AUTH = 'ERR_QT_AUTHENTICATION_FAILED';
const DESTROYED = 'ERR_QT_HANDLE_DESTROYED';

const MAX_SEQ = Number.MAX_SAFE_INTEGER; // 2^53 - 1
const SEQS = [0, 1, 255, 2 ** 32, MAX_SEQ];

interface Case { name: string; key: string; iv: string; pt: string; aad: string; ct: string; tag: string; valid: boolean }

/** iv XOR (0^32 ‖ BE64(seq)), computed here with BigInt, independently of the addon. */
function xorSeq(iv: Uint8Array, seq: number): Buffer {
  const n = Buffer.alloc(12);
  n.writeBigUInt64BE(BigInt(seq), 4);
  for (let i = 0; i < 12; i++) n[i]! ^= iv[i]!;
  return n;
}

const secret = (bytes: Uint8Array) => testing.secretFromBytes(bytes);
const recordCtx = (suite: number, key: Uint8Array, iv: Uint8Array) =>
  createRecordAead(suite as crypto.AeadSuiteId, secret(key), secret(iv));
const plainCtx = (suite: number, key: Uint8Array) => createAead(suite as crypto.AeadSuiteId, secret(key));

const SUITES: Array<[string, number]> = [
  ['AES-256-GCM', AeadSuite.AES_256_GCM],
  ['ChaCha20-Poly1305', AeadSuite.CHACHA20_POLY1305],
];

function needSuite(ctx: Mocha.Context, suite: number): void {
  if (suite === AeadSuite.CHACHA20_POLY1305 && !crypto.info().chacha20.available) ctx.skip(); // FIPS profile
}

/** Each valid case sealed as record `seq` under iv = nonce XOR seq, for every seq in SEQS; invalid ones refused. */
function runVectorsAsRecords(suite: number, cases: Case[]): void {
  for (const c of cases) {
    for (const seq of SEQS) {
      const ctx = recordCtx(suite, hex(c.key), xorSeq(hex(c.iv), seq));
      const label = `${c.name}, seq ${seq}`;
      if (!c.valid) {
        expectCode(() => openRecord(ctx, seq, hex(c.aad), hex(c.ct + c.tag)), AUTH);
        continue;
      }
      const sealed = sealRecord(ctx, seq, hex(c.aad), hex(c.pt));
      expect(sealed.toString('hex'), label).to.equal(c.ct + c.tag);
      expect(openRecord(ctx, seq, hex(c.aad), sealed).toString('hex'), label).to.equal(c.pt);
    }
  }
}

describe('record AEAD: sizes', () => {
  it('exports the IV size and the record batch row width', () => {
    expect(AEAD_SIZES.iv).to.equal(12);
    expect(AEAD_SIZES.recordBatchRowWords).to.equal(5);
    expect(native.aeadSizes.iv).to.equal(12);
    expect(native.aeadSizes.recordBatchRowWords).to.equal(5);
  });
});

describe('record AEAD: known answers', () => {
  it('AES-256-GCM: every fixture case (SP 800-38D / GCM spec / CAVP) as a record, iv = nonce XOR BE64(seq)', () => {
    const cases: Case[] = GCM.cases;
    expect(cases.filter((c) => c.valid && c.iv.length === 24).length).to.be.greaterThanOrEqual(6);
    expect(cases.some((c) => c.name === 'GCM spec Test Case 16')).to.equal(true);
    runVectorsAsRecords(AeadSuite.AES_256_GCM, cases.filter((c) => c.iv.length === 24));
  });

  it('ChaCha20-Poly1305: RFC 8439 §2.8.2 and A.5 as records (§2.8.2 with iv = 07000000‖4041424344454647, seq 0 among them)', function () {
    needSuite(this, AeadSuite.CHACHA20_POLY1305);
    const cases: Case[] = CHACHA.cases;
    expect(cases[0]!.iv).to.equal('070000004041424344454647');
    runVectorsAsRecords(AeadSuite.CHACHA20_POLY1305, cases);
  });

  it('GCM spec Test Case 16 as record 0 of iv cafebabefacedbaddecaf888 (the IV is the nonce)', () => {
    const c: Case = GCM.cases.find((x: Case) => x.name === 'GCM spec Test Case 16');
    const ctx = recordCtx(AeadSuite.AES_256_GCM, hex(c.key), hex(c.iv));
    expect(sealRecord(ctx, 0, hex(c.aad), hex(c.pt)).toString('hex')).to.equal(c.ct + c.tag);
  });

  for (const [name, suite] of SUITES) {
    it(`${name}: sealRecord(seq) is seal() with nonce iv XOR BE64(seq), for seq 0, 1, 255, 2^32, 2^53-1`, function () {
      needSuite(this, suite);
      const key = crypto.randomBytes(32);
      // Every IV bit set somewhere: a seq bit that is not XORed in (or lands in the wrong byte) shows.
      for (const iv of [crypto.randomBytes(12), Buffer.alloc(12, 0xff), Buffer.alloc(12)]) {
        const rec = recordCtx(suite, key, iv);
        const ref = plainCtx(suite, key);
        for (const seq of SEQS) {
          for (const pt of [Buffer.alloc(0), crypto.randomBytes(1), crypto.randomBytes(100)]) {
            const aad = crypto.randomBytes(seq % 13);
            const sealed = sealRecord(rec, seq, aad, pt);
            expect(sealed.equals(seal(ref, xorSeq(iv, seq), aad, pt)), `seq ${seq}`).to.equal(true);
            expect(openRecord(rec, seq, aad, sealed).equals(pt)).to.equal(true);
            expect(open(ref, xorSeq(iv, seq), aad, sealed).equals(pt)).to.equal(true);
          }
        }
      }
    });
  }
});

/** `n` records laid out as a record layer does: a 5-byte header (the AD) then ciphertext‖tag. */
function recordBatch(n: number): { src: Buffer; dst: Buffer; table: Uint32Array; sizes: number[]; at: number[]; inAt: number[] } {
  const W = AEAD_SIZES.recordBatchRowWords;
  const sizes = Array.from({ length: n }, (_, i) => (i * 37) % 300);
  const src = crypto.randomBytes(sizes.reduce((a, b) => a + b, 0));
  const dst = Buffer.alloc(sizes.reduce((a, b) => a + 5 + b + 16, 0));
  const table = new Uint32Array(n * W);
  const at: number[] = [];
  const inAt: number[] = [];
  let s = 0;
  let o = 0;
  sizes.forEach((size, i) => {
    dst[o] = 0x17;
    dst.writeUInt32BE(size + 16, o + 1);
    table.set([s, size, o + 5, o, 5], i * W);
    at.push(o);
    inAt.push(s);
    s += size;
    o += 5 + size + 16;
  });
  return { src, dst, table, sizes, at, inAt };
}

/** The open table for a batch sealed by recordBatch: ciphertext‖tag and the AD read from the sealed buffer. */
function openTable(b: ReturnType<typeof recordBatch>): Uint32Array {
  const W = AEAD_SIZES.recordBatchRowWords;
  const t = new Uint32Array(b.sizes.length * W);
  b.sizes.forEach((size, i) => t.set([b.at[i]! + 5, size + 16, b.inAt[i]!, b.at[i]!, 5], i * W));
  return t;
}

describe('record AEAD: batches', () => {
  for (const [name, suite] of SUITES) {
    it(`${name}: sealRecordBatch equals one sealRecord per record (seq firstSeq + i, across 2^32)`, function () {
      needSuite(this, suite);
      const ctx = recordCtx(suite, crypto.randomBytes(32), crypto.randomBytes(12));
      const n = 40;
      const first = 2 ** 32 - 20;
      const b = recordBatch(n);
      const total = b.sizes.reduce((a, size) => a + size + 16, 0);
      expect(ctx.sealRecordBatch(b.src, b.dst, b.table, n, first)).to.equal(total);
      b.sizes.forEach((size, i) => {
        const aad = b.dst.subarray(b.at[i]!, b.at[i]! + 5);
        const single = sealRecord(ctx, first + i, aad, b.src.subarray(b.inAt[i]!, b.inAt[i]! + size));
        expect(b.dst.subarray(b.at[i]! + 5, b.at[i]! + 5 + size + 16).equals(single), `record ${i}`).to.equal(true);
      });
    });

    it(`${name}: sealRecordBatch with a trailer byte seals each row's plaintext followed by that byte (v2's inner type)`, function () {
      needSuite(this, suite);
      const ctx = recordCtx(suite, crypto.randomBytes(32), crypto.randomBytes(12));
      const src = crypto.randomBytes(300);
      const sizes = [100, 1, 199];
      const dst = Buffer.alloc(sizes.reduce((a, n) => a + 7 + n + 1 + 16, 0));
      const table = new Uint32Array(sizes.length * AEAD_SIZES.recordBatchRowWords);
      let inAt = 0;
      let at = 0;
      const rows: Array<{ inAt: number; at: number; size: number }> = [];
      sizes.forEach((size, i) => {
        crypto.randomFill(dst.subarray(at, at + 7)); // the AD (a record header)
        table.set([inAt, size, at + 7, at, 7], i * AEAD_SIZES.recordBatchRowWords);
        rows.push({ inAt, at, size });
        inAt += size;
        at += 7 + size + 1 + 16;
      });
      expect(ctx.sealRecordBatch(src, dst, table, sizes.length, 9, 0x02)).to.equal(dst.length - 7 * sizes.length);
      rows.forEach(({ inAt: i, at: a, size }, row) => {
        const inner = Buffer.concat([src.subarray(i, i + size), Buffer.of(0x02)]);
        const single = sealRecord(ctx, 9 + row, dst.subarray(a, a + 7), inner);
        expect(dst.subarray(a + 7, a + 7 + size + 1 + 16).equals(single), `row ${row}`).to.equal(true);
      });
      for (const bad of [256, -1, 1.5, '2', 2n, null]) {
        expectCode(() => ctx.sealRecordBatch(src, dst, table, sizes.length, 9, bad as number), INVALID);
      }
    });

    it(`${name}: openRecordBatch opens them, flags only the forged record (wiped) and fails all under a wrong firstSeq`, function () {
      needSuite(this, suite);
      const ctx = recordCtx(suite, crypto.randomBytes(32), crypto.randomBytes(12));
      const n = 24;
      const first = 1000;
      const b = recordBatch(n);
      ctx.sealRecordBatch(b.src, b.dst, b.table, n, first);
      const t = openTable(b);
      const out = Buffer.alloc(b.src.length);
      const results = new Int32Array(n);
      expect(ctx.openRecordBatch(b.dst, out, t, n, first, results)).to.equal(0);
      expect(Array.from(results)).to.deep.equal(b.sizes);
      expect(out.equals(b.src)).to.equal(true);

      const forged = 9; // its AD (the header) is flipped: only it fails
      b.dst[b.at[forged]! + 2]! ^= 0x01;
      out.fill(0xee);
      expect(ctx.openRecordBatch(b.dst, out, t, n, first, results)).to.equal(1);
      expect(results[forged]).to.equal(-1);
      expect(out.subarray(b.inAt[forged]!, b.inAt[forged]! + b.sizes[forged]!).every((x) => x === 0)).to.equal(true);
      b.sizes.forEach((size, i) => {
        if (i !== forged) expect(out.subarray(b.inAt[i]!, b.inAt[i]! + size).equals(b.src.subarray(b.inAt[i]!, b.inAt[i]! + size))).to.equal(true);
      });
      b.dst[b.at[forged]! + 2]! ^= 0x01;

      for (const wrong of [first - 1, first + 1, first + 2 ** 32]) {
        expect(ctx.openRecordBatch(b.dst, out, t, n, wrong, results), `firstSeq ${wrong}`).to.equal(n);
        expect(Array.from(results).every((r) => r === -1)).to.equal(true);
      }
    });
  }

  it('the last seq of a batch may be 2^53-1, not more; zero rows accept any safe firstSeq', () => {
    const ctx = recordCtx(AeadSuite.AES_256_GCM, crypto.randomBytes(32), crypto.randomBytes(12));
    const b = recordBatch(4);
    expect(ctx.sealRecordBatch(b.src, b.dst, b.table, 4, MAX_SEQ - 3)).to.be.greaterThan(0);
    const last = b.dst.subarray(b.at[3]! + 5, b.at[3]! + 5 + b.sizes[3]! + 16);
    expect(openRecord(ctx, MAX_SEQ, b.dst.subarray(b.at[3]!, b.at[3]! + 5), last).equals(b.src.subarray(b.inAt[3]!))).to.equal(true);
    expectCode(() => ctx.sealRecordBatch(b.src, b.dst, b.table, 4, MAX_SEQ - 2), INVALID);
    expectCode(() => ctx.openRecordBatch(b.dst, Buffer.alloc(b.src.length), openTable(b), 4, MAX_SEQ - 2, new Int32Array(4)), INVALID);
    expect(ctx.sealRecordBatch(b.src, b.dst, b.table, 0, MAX_SEQ)).to.equal(0);
    expect(ctx.openRecordBatch(b.dst, Buffer.alloc(0), new Uint32Array(0), 0, MAX_SEQ, new Int32Array(0))).to.equal(0);
  });

  it('rows out of bounds or overlapping their input are typed errors; a short record is a failure', () => {
    const ctx = recordCtx(AeadSuite.AES_256_GCM, crypto.randomBytes(32), crypto.randomBytes(12));
    const src = Buffer.alloc(64), dst = Buffer.alloc(128);
    const sealBad = (row: number[]) => expectCode(() => ctx.sealRecordBatch(src, dst, Uint32Array.from(row), 1, 0), INVALID);
    const openBad = (row: number[]) => expectCode(() => ctx.openRecordBatch(src, dst, Uint32Array.from(row), 1, 0, new Int32Array(1)), INVALID);
    sealBad([0, 65, 0, 100, 8]); // input past src
    sealBad([0, 64, 100, 0, 8]); // output past dst
    sealBad([0, 16, 0, 0xffffffff, 1]); // AD past dst
    sealBad([0, 16, 40, 0, 0xfffffff0]);
    sealBad([0, 16, 8, 0, 16]); // output over its own AD
    expectCode(() => ctx.sealRecordBatch(dst, dst, Uint32Array.from([0, 32, 8, 100, 0]), 1, 0), INVALID); // output over its input
    openBad([60, 32, 0, 0, 0]);
    openBad([0, 32, 120, 0, 0]);
    openBad([0, 32, 0, 60, 8]);
    expectCode(() => ctx.openRecordBatch(dst, dst, Uint32Array.from([0, 32, 8, 100, 0]), 1, 0, new Int32Array(1)), INVALID);
    const results = new Int32Array(1);
    expect(ctx.openRecordBatch(src, dst, Uint32Array.from([0, 15, 0, 0, 0]), 1, 0, results)).to.equal(1);
    expect(results[0]).to.equal(-1);
    expectCode(() => ctx.sealRecordBatch(src, dst, new Uint32Array(5), 2, 0), INVALID); // count > rows
    expectCode(() => ctx.sealRecordBatch(src, dst, new Uint8Array(10) as never, 1, 0), INVALID); // not a Uint32Array
    expectCode(() => ctx.openRecordBatch(src, dst, new Uint32Array(10), 2, 0, new Int32Array(1)), INVALID); // results too short
  });
});

describe('record AEAD: failures', () => {
  for (const [name, suite] of SUITES) {
    it(`${name}: a flipped bit in ciphertext, tag or AD, a wrong seq or another IV fails and wipes the output`, function () {
      needSuite(this, suite);
      const key = crypto.randomBytes(32);
      const iv = crypto.randomBytes(12);
      const ctx = recordCtx(suite, key, iv);
      const seq = 2 ** 40 + 5;
      const pt = Buffer.from('attack at dawn, attack at dawn!!');
      const aad = Buffer.from('hdr12');
      const sealed = sealRecord(ctx, seq, aad, pt);
      const tries: Array<[NativeRecordAeadContext, number, Buffer, Buffer]> = [];
      for (const i of [0, pt.length - 1, pt.length, sealed.length - 1]) {
        const t = Buffer.from(sealed);
        t[i]! ^= 1;
        tries.push([ctx, seq, aad, t]);
      }
      const otherIv = Buffer.from(iv);
      otherIv[0]! ^= 0x80;
      tries.push(
        [ctx, seq, Buffer.from('hdr13'), sealed],
        [ctx, seq, Buffer.alloc(0), sealed],
        [ctx, seq + 1, aad, sealed],
        [ctx, seq - 1, aad, sealed],
        [ctx, seq + 2 ** 32, aad, sealed],
        [ctx, 0, aad, sealed],
        [recordCtx(suite, key, otherIv), seq, aad, sealed],
        [ctx, seq, aad, sealed.subarray(0, 15)],
      );
      for (const [c, s, a, x] of tries) {
        const out = Buffer.alloc(64, 0xee);
        expectCode(() => c.openRecord(out, 0, s, a, x), AUTH);
        if (x.length >= 16) expect(out.subarray(0, x.length - 16).every((b) => b === 0)).to.equal(true);
      }
      expect(openRecord(ctx, seq, aad, sealed).equals(pt)).to.equal(true);
    });
  }

  it('seals in place (plaintext and output the same bytes) and checks dst ranges and overlaps like seal/open', () => {
    const ctx = recordCtx(AeadSuite.AES_256_GCM, crypto.randomBytes(32), crypto.randomBytes(12));
    const buf = Buffer.alloc(48);
    const pt = crypto.randomBytes(32);
    pt.copy(buf);
    expect(ctx.sealRecord(buf, 0, 7, Buffer.alloc(0), buf.subarray(0, 32))).to.equal(48);
    expect(openRecord(ctx, 7, Buffer.alloc(0), buf).equals(pt)).to.equal(true);
    expect(ctx.openRecord(buf, 0, 7, Buffer.alloc(0), buf)).to.equal(32);
    expect(buf.subarray(0, 32).equals(pt)).to.equal(true);
    expectCode(() => ctx.sealRecord(Buffer.alloc(10), 0, 0, Buffer.alloc(0), Buffer.alloc(8)), INVALID);
    expectCode(() => ctx.sealRecord(Buffer.alloc(40), 20, 0, Buffer.alloc(0), Buffer.alloc(8)), INVALID);
    expectCode(() => ctx.sealRecord(buf, 4, 0, Buffer.alloc(0), buf.subarray(0, 16)), INVALID); // overlap
    const sealed = sealRecord(ctx, 1, Buffer.alloc(0), Buffer.alloc(32));
    expectCode(() => ctx.openRecord(Buffer.alloc(31), 0, 1, Buffer.alloc(0), sealed), INVALID);
    expectCode(() => ctx.openRecord(Buffer.alloc(40), 0, 1, Buffer.alloc(0), Buffer.alloc(15)), AUTH);
  });
});

describe('record AEAD: one nonce discipline per key', () => {
  const key = Buffer.alloc(32, 0x11);
  const iv = Buffer.alloc(12, 0x22);

  it('hasIv tells a record context from an explicit-nonce one', () => {
    expect(recordCtx(AeadSuite.AES_256_GCM, key, iv).hasIv).to.equal(true);
    expect(plainCtx(AeadSuite.AES_256_GCM, key).hasIv).to.equal(false);
  });

  it('a record context refuses every explicit-nonce method with ERR_QT_INVALID_STATE', () => {
    const ctx = recordCtx(AeadSuite.AES_256_GCM, key, iv) as unknown as NativeAeadContext;
    const n = Buffer.alloc(12);
    expectCode(() => ctx.seal(Buffer.alloc(64), 0, n, Buffer.alloc(0), Buffer.alloc(8)), STATE);
    expectCode(() => ctx.open(Buffer.alloc(64), 0, n, Buffer.alloc(0), Buffer.alloc(24)), STATE);
    expectCode(() => ctx.sealBatch(Buffer.alloc(64), Buffer.alloc(128), new Uint32Array(6), 1), STATE);
    expectCode(() => ctx.openBatch(Buffer.alloc(64), Buffer.alloc(128), new Uint32Array(6), 1, new Int32Array(1)), STATE);
    expectCode(() => ctx.sealParts(n, Buffer.alloc(0), [Buffer.alloc(1)]), STATE);
    expectCode(() => ctx.openWithSecret(n, Buffer.alloc(0), Buffer.alloc(48), 0, 32), STATE);
    expectCode(() => seal(ctx, n, Buffer.alloc(0), Buffer.alloc(1)), STATE);
  });

  it('an explicit-nonce context refuses every record method with ERR_QT_INVALID_STATE', () => {
    const ctx = plainCtx(AeadSuite.AES_256_GCM, key) as unknown as NativeRecordAeadContext;
    expectCode(() => ctx.sealRecord(Buffer.alloc(64), 0, 0, Buffer.alloc(0), Buffer.alloc(8)), STATE);
    expectCode(() => ctx.openRecord(Buffer.alloc(64), 0, 0, Buffer.alloc(0), Buffer.alloc(24)), STATE);
    expectCode(() => ctx.sealRecordBatch(Buffer.alloc(64), Buffer.alloc(128), new Uint32Array(5), 1, 0), STATE);
    expectCode(() => ctx.openRecordBatch(Buffer.alloc(64), Buffer.alloc(128), new Uint32Array(5), 1, 0, new Int32Array(1)), STATE);
    expectCode(() => sealRecord(ctx, 0, Buffer.alloc(0), Buffer.alloc(1)), STATE);
  });

  it('after destroy(): ERR_QT_HANDLE_DESTROYED (hasIv unchanged); destroying the key and IV handles leaves the context working', () => {
    const k = secret(key), v = secret(iv);
    const ctx = createRecordAead(AeadSuite.AES_256_GCM, k, v);
    const sealed = sealRecord(ctx, 3, Buffer.from('a'), Buffer.from('x'));
    k.destroy();
    v.destroy();
    expect(openRecord(ctx, 3, Buffer.from('a'), sealed).toString()).to.equal('x');
    expect(sealRecord(ctx, 3, Buffer.from('a'), Buffer.from('x')).equals(sealed)).to.equal(true);
    ctx.destroy();
    ctx.destroy();
    expect(ctx.destroyed).to.equal(true);
    expect(ctx.hasIv).to.equal(true);
    expectCode(() => sealRecord(ctx, 3, Buffer.from('a'), Buffer.from('x')), DESTROYED);
    expectCode(() => ctx.openRecordBatch(Buffer.alloc(0), Buffer.alloc(0), new Uint32Array(0), 0, 0, new Int32Array(0)), DESTROYED);
  });
});

describe('record AEAD: argument validation', () => {
  const key = Buffer.alloc(32, 0x33);
  const ctx = recordCtx(AeadSuite.AES_256_GCM, key, Buffer.alloc(12, 0x44));
  // Negative, fractional, past 2^53 - 1, not finite, a bigint, a string, absent, boxed.
  const BAD_SEQS: unknown[] = [-1, 0.5, 2 ** 53, 2 ** 53 + 2, 2 ** 64, NaN, Infinity, -Infinity, 1n, '1', undefined, null, Object(1)];

  it('seq must be a non-negative safe integer number (native and wrapper)', () => {
    for (const seq of BAD_SEQS) {
      const s = seq as number;
      expectCode(() => ctx.sealRecord(Buffer.alloc(64), 0, s, Buffer.alloc(0), Buffer.alloc(8)), INVALID);
      expectCode(() => ctx.openRecord(Buffer.alloc(64), 0, s, Buffer.alloc(0), Buffer.alloc(24)), INVALID);
      expectCode(() => sealRecord(ctx, s, Buffer.alloc(0), Buffer.alloc(8)), INVALID);
      expectCode(() => openRecord(ctx, s, Buffer.alloc(0), Buffer.alloc(24)), INVALID);
      expectCode(() => ctx.sealRecordBatch(Buffer.alloc(0), Buffer.alloc(0), new Uint32Array(0), 0, s), INVALID);
      expectCode(() => ctx.openRecordBatch(Buffer.alloc(0), Buffer.alloc(0), new Uint32Array(0), 0, s, new Int32Array(0)), INVALID);
    }
    // -0 is a safe integer: record 0.
    expect(sealRecord(ctx, -0, Buffer.alloc(0), Buffer.from('z')).equals(sealRecord(ctx, 0, Buffer.alloc(0), Buffer.from('z')))).to.equal(true);
  });

  it('detached dst, AD, plaintext, ciphertext, src, table or results: typed argument errors', () => {
    const detached = () => {
      const v = own(Buffer.alloc(16, 1));
      detach(v.buffer);
      return v;
    };
    const sealed = sealRecord(ctx, 0, Buffer.alloc(0), Buffer.alloc(8));
    expectCode(() => ctx.sealRecord(detached(), 0, 0, Buffer.alloc(0), Buffer.alloc(8)), INVALID);
    expectCode(() => ctx.sealRecord(Buffer.alloc(64), 0, 0, detached(), Buffer.alloc(8)), INVALID);
    expectCode(() => ctx.sealRecord(Buffer.alloc(64), 0, 0, Buffer.alloc(0), detached()), INVALID);
    expectCode(() => ctx.openRecord(detached(), 0, 0, Buffer.alloc(0), sealed), INVALID);
    expectCode(() => ctx.openRecord(Buffer.alloc(64), 0, 0, detached(), sealed), INVALID);
    expectCode(() => ctx.openRecord(Buffer.alloc(64), 0, 0, Buffer.alloc(0), detached()), INVALID);
    const table = () => Uint32Array.from([0, 8, 0, 0, 0]);
    expectCode(() => ctx.sealRecordBatch(detached(), Buffer.alloc(64), table(), 1, 0), INVALID);
    expectCode(() => ctx.sealRecordBatch(Buffer.alloc(8), detached(), table(), 1, 0), INVALID);
    const t = table();
    detach(t.buffer);
    expectCode(() => ctx.sealRecordBatch(Buffer.alloc(8), Buffer.alloc(64), t, 0, 0), INVALID);
    expectCode(() => ctx.openRecordBatch(Buffer.alloc(64), Buffer.alloc(64), t, 0, 0, new Int32Array(1)), INVALID);
    const r = new Int32Array(1);
    detach(r.buffer);
    expectCode(() => ctx.openRecordBatch(Buffer.alloc(64), Buffer.alloc(64), table(), 0, 0, r), INVALID);
  });

  it('aeadCreate(suite, key, iv): the IV must be a live 12-byte Secret', () => {
    const GCM_ID = AeadSuite.AES_256_GCM;
    for (const n of [0, 1, 11, 13, 16, 32]) {
      expectCode(() => createRecordAead(GCM_ID, secret(key), secret(Buffer.alloc(n))), INVALID_KEY);
      expectCode(() => native.aeadCreate(GCM_ID, secret(key), secret(Buffer.alloc(n))), INVALID_KEY);
    }
    for (const bad of [Buffer.alloc(12), new Uint8Array(12), {}, null, 12, 'iv', { length: 12, destroyed: false }]) {
      expectCode(() => createRecordAead(GCM_ID, secret(key), bad as never), INVALID);
      expectCode(() => native.aeadCreate(GCM_ID, secret(key), bad as never), INVALID);
    }
    expectCode(() => createRecordAead(GCM_ID, secret(key), undefined as never), INVALID);
    const dead = secret(Buffer.alloc(12));
    dead.destroy();
    expectCode(() => createRecordAead(GCM_ID, secret(key), dead), DESTROYED);
    expectCode(() => createRecordAead(GCM_ID, secret(Buffer.alloc(16)), secret(Buffer.alloc(12))), INVALID_KEY);
    expectCode(() => createRecordAead(3 as never, secret(key), secret(Buffer.alloc(12))), INVALID);
    expectCode(() => createRecordAead(GCM_ID, Buffer.alloc(32) as never, secret(Buffer.alloc(12))), INVALID);
    // Without an IV (undefined), aeadCreate makes an explicit-nonce context as before.
    expect(native.aeadCreate(GCM_ID, secret(key), undefined as never).hasIv).to.equal(false);
  });

  it('the error is a QuantumTunnelError (one family with the rest)', () => {
    expect(() => ctx.sealRecord(Buffer.alloc(64), 0, -1, Buffer.alloc(0), Buffer.alloc(8))).to.throw(QuantumTunnelError, /seq must be an integer/);
    expect(() => ctx.sealRecord(Buffer.alloc(64), 0, 1n as never, Buffer.alloc(0), Buffer.alloc(8))).to.throw(QuantumTunnelError, /seq must be a number/);
  });
});
