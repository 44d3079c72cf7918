/**
 * openRecordParts(parts, seq, aad) on record AEAD contexts: a record whose ciphertext ‖ tag lies
 * in 1..16 disjoint Uint8Arrays (as a record spanning socket reads does) is opened in place, part
 * by part. The reference is openRecord on the joined bytes and the published vectors (SP 800-38D /
 * GCM spec / CAVP, RFC 8439) sealed as records with iv = nonce XOR BE64(seq).
 */
import { expect } from 'chai';
import { crypto } from '../../lib/index.js';
import { native, type NativeAeadContext, type NativeRecordAeadContext } from '../../lib/native.js';
import * as testing from '../../lib/testing.js';
import { detach, expectCode, own, withGetter } from '../helpers/buffers.js';
import { hex, loadFixture } from '../helpers/fixtures.js';

const GCM = loadFixture('aes-256-gcm.json');
const CHACHA = loadFixture('rfc8439.json');
const { AeadSuite, createAead, createRecordAead, sealRecord, openRecord } = crypto;

const INVALID = 'ERR_QT_INVALID_ARGUMENT';
const STATE = 'ERR_QT_INVALID_STATE';
const AUTH = 'ERR_QT_AUTHENTICATION_FAILED';
const DESTROYED = 'ERR_QT_HANDLE_DESTROYED';
const TAG = 16;
const MAX_PARTS = 16;

interface Case { name: string; key: string; iv: string; pt: string | null; aad: string; ct: string; tag: string; valid: boolean }

/** The IV under which record `seq`'s nonce is `nonce` (RFC 8446 §5.3 solved for the IV), with BigInt, not the addon. */
function ivFor(nonce: Buffer, seq: number): Buffer {
  const iv = Buffer.from(nonce);
  iv.writeBigUInt64BE(iv.readBigUInt64BE(4) ^ BigInt(seq), 4);
  return iv;
}

const secret = (bytes: Uint8Array) => testing.secretFromBytes(bytes);
const recordCtx = (suite: number, key: Uint8Array, iv: Uint8Array) =>
  createRecordAead(suite as crypto.AeadSuiteId, secret(key), secret(iv));

const SUITES: Array<[string, number]> = [
  ['AES-256-GCM', AeadSuite.AES_256_GCM],
  ['ChaCha20-Poly1305', AeadSuite.CHACHA20_POLY1305],
];

function needSuite(ctx: Mocha.Context, suite: number): void {
  if (suite === AeadSuite.CHACHA20_POLY1305 && !crypto.info().chacha20.available) ctx.skip(); // FIPS profile
}

/** Random choices below `n` (a failure's label names the lengths it used). */
function rng(_seed: number): (n: number) => number {
  return (n: number) => crypto.randomBytes(4).readUInt32LE(0) % n;
}

/**
 * `sealed` copied into parts of the given lengths (summing to its length), each over an
 * ArrayBuffer of its own with guard bytes (0xa5) on both sides, so writes outside a part show.
 */
function partsOf(sealed: Uint8Array, lengths: number[]): { parts: Uint8Array[]; guards: () => boolean } {
  expect(lengths.reduce((a, b) => a + b, 0)).to.equal(sealed.length);
  const backing: Uint8Array[] = [];
  const parts: Uint8Array[] = [];
  let at = 0;
  for (const n of lengths) {
    const b = new Uint8Array(new ArrayBuffer(n + 8)).fill(0xa5);
    b.set(sealed.subarray(at, at + n), 4);
    backing.push(b);
    parts.push(b.subarray(4, 4 + n));
    at += n;
  }
  const guards = () => backing.every((b) => [0, 1, 2, 3, b.length - 4, b.length - 3, b.length - 2, b.length - 1].every((i) => b[i] === 0xa5));
  return { parts, guards };
}

/** `sealed` split at `cuts` into views of one copy (the layout of reads in one buffer, in order). */
function viewsAt(sealed: Uint8Array, cuts: number[]): Uint8Array[] {
  const copy = Buffer.from(sealed);
  const bounds = [0, ...cuts, copy.length];
  return bounds.slice(1).map((end, i) => copy.subarray(bounds[i]!, end));
}

const joined = (parts: Uint8Array[]) => Buffer.concat(parts);

/** Opens `parts`; checks the return value and that the first `length` bytes are `pt`. */
function expectOpens(ctx: NativeRecordAeadContext, parts: Uint8Array[], seq: number, aad: Uint8Array, pt: Uint8Array, label: string): void {
  const n = ctx.openRecordParts(parts, seq, aad);
  expect(n, label).to.equal(pt.length);
  expect(joined(parts).subarray(0, n).equals(Buffer.from(pt)), label).to.equal(true);
}

/** Random lengths (each >= min) of `count` parts summing to `total`. */
function randomLengths(total: number, count: number, next: (n: number) => number, min = 1): number[] {
  const cuts = new Set<number>();
  while (cuts.size < count - 1) {
    const c = min + next(total - 2 * min + 1);
    if (c > 0 && c < total) cuts.add(c);
  }
  const sorted = [...cuts].sort((a, b) => a - b);
  const bounds = [0, ...sorted, total];
  return bounds.slice(1).map((e, i) => e - bounds[i]!);
}

describe('openRecordParts: known answers', () => {
  const run = (suite: number, cases: Case[]) => {
    let opened = 0;
    for (const c of cases) {
      const seq = 2 ** 32 + 7;
      const ctx = recordCtx(suite, hex(c.key), ivFor(hex(c.iv), seq));
      const sealed = hex(c.ct + c.tag);
      // Every split point into two parts (the tag's own 16 split points included), and the last
      // byte of the ciphertext and every tag byte alone.
      for (let cut = 0; cut <= sealed.length; cut++) {
        const label = `${c.name}: cut at ${cut}`;
        const parts = viewsAt(sealed, [cut]);
        if (!c.valid) {
          expectCode(() => ctx.openRecordParts(parts, seq, hex(c.aad)), AUTH);
          continue;
        }
        expectOpens(ctx, parts, seq, hex(c.aad), hex(c.pt!), label);
        opened++;
      }
      if (c.valid && sealed.length >= MAX_PARTS) {
        const ones = Array.from({ length: MAX_PARTS - 1 }, (_, i) => sealed.length - MAX_PARTS + 1 + i);
        expectOpens(ctx, viewsAt(sealed, ones), seq, hex(c.aad), hex(c.pt!), `${c.name}: 15 one-byte parts at the end`);
      }
    }
    return opened;
  };

  it('AES-256-GCM: every fixture case, valid ones open to the published plaintext at every split point, FAIL ones fail at every one', () => {
    const cases: Case[] = GCM.cases.filter((c: Case) => c.iv.length === 24);
    expect(cases.filter((c) => !c.valid).length).to.be.greaterThanOrEqual(5);
    expect(run(AeadSuite.AES_256_GCM, cases)).to.be.greaterThan(1000);
  });

  it('ChaCha20-Poly1305: RFC 8439 §2.8.2 and A.5 at every split point', function () {
    needSuite(this, AeadSuite.CHACHA20_POLY1305);
    const cases: Case[] = CHACHA.cases;
    expect(run(AeadSuite.CHACHA20_POLY1305, cases)).to.equal(cases.reduce((n, c) => n + (c.ct.length + c.tag.length) / 2 + 1, 0));
  });
});

describe('openRecordParts: the same as openRecord', () => {
  for (const [name, suite] of SUITES) {
    it(`${name}: for every split point of a 600-byte record and random splits into 1..16 parts (1-byte parts, the tag across parts, parts of separate buffers)`, function () {
      needSuite(this, suite);
      const ctx = recordCtx(suite, crypto.randomBytes(32), crypto.randomBytes(12));
      const aad = Buffer.from('30000002620002', 'hex');
      const pt = crypto.randomBytes(600);
      const seq = 12345;
      const sealed = sealRecord(ctx, seq, aad, pt);
      expect(openRecord(ctx, seq, aad, sealed).equals(pt)).to.equal(true);
      for (let cut = 0; cut <= sealed.length; cut++) expectOpens(ctx, viewsAt(sealed, [cut]), seq, aad, pt, `cut ${cut}`);
      // Three parts: the tag cut twice, everywhere.
      for (let a = pt.length - 1; a <= sealed.length; a++) {
        for (let b = a; b <= sealed.length; b++) expectOpens(ctx, viewsAt(sealed, [a, b]), seq, aad, pt, `cuts ${a}, ${b}`);
      }
      const next = rng(suite);
      for (let round = 0; round < 200; round++) {
        const count = 1 + (round % MAX_PARTS);
        const lengths = randomLengths(sealed.length, count, next);
        const { parts, guards } = partsOf(sealed, lengths);
        expectOpens(ctx, parts, seq, aad, pt, `lengths ${lengths.join(',')}`);
        expect(guards(), `nothing written outside the parts (${lengths.join(',')})`).to.equal(true);
        // What is left of each part after the plaintext is the tag, untouched.
        expect(joined(parts).subarray(pt.length).equals(sealed.subarray(pt.length))).to.equal(true);
      }
      // 16 parts: 15 one-byte parts holding the last ciphertext byte and the tag minus its last two bytes.
      const ones = Array.from({ length: MAX_PARTS - 1 }, (_, i) => pt.length - 1 + i);
      expectOpens(ctx, viewsAt(sealed, ones), seq, aad, pt, '15 one-byte parts');
      // Every part one byte long: a 16-byte record is only a tag (empty plaintext).
      const empty = sealRecord(ctx, 9, aad, Buffer.alloc(0));
      expect(ctx.openRecordParts(viewsAt(empty, Array.from({ length: 15 }, (_, i) => i + 1)), 9, aad)).to.equal(0);
    });

    it(`${name}: a full-size record (65,519 bytes of plaintext) in 16 parts; parts need not lie in memory order; empty parts are allowed`, function () {
      needSuite(this, suite);
      const ctx = recordCtx(suite, crypto.randomBytes(32), crypto.randomBytes(12));
      const aad = crypto.randomBytes(7);
      const pt = crypto.randomBytes(65_536 - 2 - TAG);
      const sealed = sealRecord(ctx, 0, aad, pt);
      const next = rng(99 + suite);
      const lengths = randomLengths(sealed.length, MAX_PARTS, next, 100);
      const { parts, guards } = partsOf(sealed, lengths);
      expectOpens(ctx, parts, 0, aad, pt, '16 parts');
      expect(guards()).to.equal(true);
      // Parts of one buffer, laid out backwards in memory (the record order is the array order).
      const back = Buffer.alloc(sealed.length);
      const views: Buffer[] = [];
      let end = back.length;
      for (const [i, n] of [1000, 20_000, sealed.length - 21_000].entries()) {
        const v = back.subarray(end - n, end);
        sealed.copy(v, 0, [0, 1000, 21_000][i]!);
        views.push(v);
        end -= n;
      }
      expectOpens(ctx, views, 0, aad, pt, 'parts in reverse memory order');
      // Empty parts (zero-length views, even of the same buffer) are skipped.
      const b = Buffer.from(sealed);
      const withEmpty = [b.subarray(0, 0), b.subarray(0, 10), b.subarray(10, 10), b.subarray(10, 10), b.subarray(10), Buffer.alloc(0)];
      expectOpens(ctx, withEmpty, 0, aad, pt, 'with empty parts');
    });
  }
});

describe('openRecordParts: failures wipe every decrypted byte', () => {
  for (const [name, suite] of SUITES) {
    it(`${name}: a flipped bit in the ciphertext or the tag (in any part), the AD, a wrong seq or another IV: ERR_QT_AUTHENTICATION_FAILED, every part's ciphertext bytes zero, tag bytes and guards untouched`, function () {
      needSuite(this, suite);
      const key = crypto.randomBytes(32);
      const iv = crypto.randomBytes(12);
      const ctx = recordCtx(suite, key, iv);
      const seq = 2 ** 40 + 5;
      const aad = Buffer.from('0123456', 'latin1');
      const pt = crypto.randomBytes(300).map((b) => b | 1); // no zero bytes: a wiped byte shows
      const sealed = sealRecord(ctx, seq, aad, pt);
      // Parts: 100 | 150 | 45 | 10 (5 ct + 5 tag) | 3 (tag) | 8 (tag): the tag lies in three parts.
      const lengths = [100, 150, 45, 10, 3, 8];
      type Try = { what: string; ctx: NativeRecordAeadContext; seq: number; aad: Uint8Array; bytes: Buffer };
      const tries: Try[] = [];
      for (const i of [0, 99, 100, 250, 299, 300, 304, 305, 307, 308, sealed.length - 1]) {
        const t = Buffer.from(sealed);
        t[i]! ^= 0x10;
        tries.push({ what: `bit flipped at ${i}`, ctx, seq, aad, bytes: t });
      }
      const otherIv = Buffer.from(iv);
      otherIv[11]! ^= 1;
      const badAad = Buffer.from(aad);
      badAad[6]! ^= 1;
      tries.push(
        { what: 'AD flipped', ctx, seq, aad: badAad, bytes: sealed },
        { what: 'no AD', ctx, seq, aad: Buffer.alloc(0), bytes: sealed },
        { what: 'seq + 1', ctx, seq: seq + 1, aad, bytes: sealed },
        { what: 'seq - 1', ctx, seq: seq - 1, aad, bytes: sealed },
        { what: 'seq + 2^32', ctx, seq: seq + 2 ** 32, aad, bytes: sealed },
        { what: 'another IV', ctx: recordCtx(suite, key, otherIv), seq, aad, bytes: sealed },
      );
      for (const t of tries) {
        const { parts, guards } = partsOf(t.bytes, lengths);
        expectCode(() => t.ctx.openRecordParts(parts, t.seq, t.aad), AUTH);
        const after = joined(parts);
        expect(after.subarray(0, pt.length).every((b) => b === 0), `${t.what}: every ciphertext byte wiped`).to.equal(true);
        expect(after.subarray(pt.length).equals(t.bytes.subarray(pt.length)), `${t.what}: the tag bytes are as they came`).to.equal(true);
        expect(guards(), `${t.what}: nothing outside the parts`).to.equal(true);
      }
      // The same record still opens; the context is not left in a bad state by the failures.
      const { parts } = partsOf(sealed, lengths);
      expectOpens(ctx, parts, seq, aad, pt, 'after the failures');
    });
  }

  it('a record shorter than the tag fails authentication and writes nothing; a bare tag in parts that does not verify leaves it as it was', () => {
    const ctx = recordCtx(AeadSuite.AES_256_GCM, crypto.randomBytes(32), crypto.randomBytes(12));
    const short = [Buffer.alloc(5, 7), Buffer.alloc(10, 8)];
    expectCode(() => ctx.openRecordParts(short, 0, Buffer.alloc(0)), AUTH);
    expect(short[0]!.every((b) => b === 7) && short[1]!.every((b) => b === 8)).to.equal(true);
    const tag = [Buffer.alloc(8, 1), Buffer.alloc(8, 2)];
    expectCode(() => ctx.openRecordParts(tag, 0, Buffer.alloc(0)), AUTH);
    expect(tag[0]!.every((b) => b === 1) && tag[1]!.every((b) => b === 2)).to.equal(true);
  });
});

describe('openRecordParts: arguments and state', () => {
  const key = Buffer.alloc(32, 0x55);
  const iv = Buffer.alloc(12, 0x66);
  const aad = Buffer.from('abcdefg');
  const pt = Buffer.alloc(40, 0x77);

  function fresh(): { ctx: NativeRecordAeadContext; sealed: Buffer } {
    const ctx = recordCtx(AeadSuite.AES_256_GCM, key, iv);
    return { ctx, sealed: sealRecord(ctx, 3, aad, pt) };
  }

  it('parts must be an array of 1..16 Uint8Arrays: none, 17 (even of a valid record), and anything else are typed argument errors that touch nothing', () => {
    const { ctx, sealed } = fresh();
    expectCode(() => ctx.openRecordParts([], 3, aad), INVALID);
    const seventeen = viewsAt(sealed, Array.from({ length: 16 }, (_, i) => i + 1));
    expect(seventeen).to.have.length(17);
    const before = joined(seventeen);
    expectCode(() => ctx.openRecordParts(seventeen, 3, aad), INVALID);
    expect(joined(seventeen).equals(before)).to.equal(true);
    const sixteen = viewsAt(sealed, Array.from({ length: 15 }, (_, i) => i + 1));
    expect(ctx.openRecordParts(sixteen, 3, aad)).to.equal(pt.length);
    const u8 = () => Buffer.from(sealed);
    const notParts: unknown[] = [
      undefined, null, u8(), 'parts', 3, { 0: u8(), length: 1 },
      [u8(), new Uint16Array(4)], [new DataView(new ArrayBuffer(56))], [u8().buffer], [Array.from(u8())],
      [u8(), 'x'], [u8(), null], [new Uint8ClampedArray(56)], [new Int8Array(56)],
      [testing.secretFromBytes(sealed)],
    ];
    for (const p of notParts) expectCode(() => ctx.openRecordParts(p as Uint8Array[], 3, aad), INVALID);
    // A hole in the array.
    const holey: Uint8Array[] = [];
    holey[1] = u8();
    expectCode(() => ctx.openRecordParts(holey, 3, aad), INVALID);
    // seq and aad are checked too.
    for (const seq of [-1, 0.5, 2 ** 53, NaN, '3', 3n, undefined]) expectCode(() => ctx.openRecordParts([u8()], seq as number, aad), INVALID);
    for (const a of [undefined, 'abcdefg', [1, 2], new Uint16Array(2)]) expectCode(() => ctx.openRecordParts([u8()], 3, a as unknown as Uint8Array), INVALID);
    // The record itself is fine.
    expectOpens(ctx, [u8()], 3, aad, pt, 'one part');
  });

  it('overlapping parts (the same view twice, views sharing bytes, a sub-view inside another) are refused and nothing is decrypted', () => {
    const { ctx, sealed } = fresh();
    const b = Buffer.from(sealed);
    const cases: Uint8Array[][] = [
      [b.subarray(0, 20), b.subarray(0, 20), b.subarray(20)],
      [b.subarray(0, 21), b.subarray(20)],
      [b, b.subarray(10, 11)],
      [b.subarray(30), b.subarray(0, 31)],
      [b.subarray(0, 10), b.subarray(10, 30), b.subarray(29, 30), b.subarray(30)],
      [new Uint8Array(b.buffer, b.byteOffset, b.length), b.subarray(b.length - 1)],
    ];
    for (const [i, parts] of cases.entries()) {
      expectCode(() => ctx.openRecordParts(parts, 3, aad), INVALID);
      expect(b.equals(sealed), `case ${i}: nothing decrypted`).to.equal(true);
    }
    // Adjacent views of one buffer do not overlap.
    expectOpens(ctx, [b.subarray(0, 20), b.subarray(20, 21), b.subarray(21)], 3, aad, pt, 'adjacent');
  });

  it('a part over a SharedArrayBuffer, or a detached part or AD, is a typed argument error (the other parts untouched)', () => {
    const { ctx, sealed } = fresh();
    const shared = new Uint8Array(new SharedArrayBuffer(20));
    shared.set(sealed.subarray(36));
    const first = Buffer.from(sealed.subarray(0, 36));
    expectCode(() => ctx.openRecordParts([first, shared], 3, aad), INVALID);
    expectCode(() => ctx.openRecordParts([shared, first], 3, aad), INVALID);
    expect(first.equals(sealed.subarray(0, 36))).to.equal(true);
    const gone = own(sealed.subarray(36));
    detach(gone.buffer);
    expectCode(() => ctx.openRecordParts([first, gone], 3, aad), INVALID);
    expect(first.equals(sealed.subarray(0, 36))).to.equal(true);
    const goneAad = own(aad);
    detach(goneAad.buffer);
    expectCode(() => ctx.openRecordParts([Buffer.from(sealed)], 3, goneAad), INVALID);
    expectOpens(ctx, [first, own(sealed.subarray(36))], 3, aad, pt, 'unshared, attached');
  });

  it('a getter in the parts array that detaches another part, destroys the context or throws: a typed error or its own exception, nothing decrypted', () => {
    const { ctx, sealed } = fresh();
    const a = own(sealed.subarray(0, 30));
    const b = own(sealed.subarray(30));
    expectCode(() => ctx.openRecordParts(withGetter([a, b], 1, () => detach(a.buffer)), 3, aad), INVALID);
    const c = Buffer.from(sealed.subarray(0, 30));
    const thrown = new Error('from a getter');
    expect(() => ctx.openRecordParts(withGetter([c, Buffer.from(sealed.subarray(30))], 1, () => { throw thrown; }), 3, aad)).to.throw(thrown);
    expect(c.equals(sealed.subarray(0, 30))).to.equal(true);
    const victim = recordCtx(AeadSuite.AES_256_GCM, key, iv);
    expectCode(() => victim.openRecordParts(withGetter([c, Buffer.from(sealed.subarray(30))], 1, () => victim.destroy()), 3, aad), DESTROYED);
    expect(c.equals(sealed.subarray(0, 30))).to.equal(true);
  });

  it('a destroyed context: ERR_QT_HANDLE_DESTROYED; an explicit-nonce context: ERR_QT_INVALID_STATE (both leave the parts as they were)', () => {
    const { ctx, sealed } = fresh();
    ctx.destroy();
    const parts = viewsAt(sealed, [10]);
    expectCode(() => ctx.openRecordParts(parts, 3, aad), DESTROYED);
    expect(joined(parts).equals(sealed)).to.equal(true);
    const plain = createAead(AeadSuite.AES_256_GCM, secret(key)) as unknown as NativeRecordAeadContext;
    expect(plain.hasIv).to.equal(false);
    expectCode(() => plain.openRecordParts(parts, 3, aad), STATE);
    expect(joined(parts).equals(sealed)).to.equal(true);
    // And the explicit-nonce API is no way around it: a record context has no sealParts/open.
    const rec = recordCtx(AeadSuite.AES_256_GCM, key, iv) as unknown as NativeAeadContext;
    expectCode(() => rec.open(Buffer.alloc(64), 0, Buffer.alloc(12), aad, sealed), STATE);
  });

  it('is a method of every record context the addon makes (lib/native.ts declares it)', () => {
    const ctx = recordCtx(AeadSuite.AES_256_GCM, key, iv);
    expect(ctx.openRecordParts).to.be.a('function');
    expect(native.aeadSizes.tag).to.equal(TAG);
  });
});
