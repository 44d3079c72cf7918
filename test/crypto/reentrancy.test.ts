/**
 * Hostile JS values against every native entry point that reads more than one JS value (issue 8,
 * item 2). JS can run inside a native call only where native code reads an array element (an
 * indexed getter, an Array subclass, a getter on Array.prototype for a hole): such a getter may
 * detach a buffer, shrink a resizable one or destroy a handle the call has already looked at.
 * Everywhere else native code must run no JS at all (no valueOf/toString, no accessor of a
 * Uint8Array). Calls go straight to the addon, as any code with JS access could, and must end in
 * a typed QuantumTunnelError or in the result a clean copy of the inputs gives: never a crash,
 * never bytes from freed memory.
 *
 * SharedArrayBuffer views (native/bytes.h): accepted where bytes are read once (sealing, digests,
 * comparisons, randomFill); refused for AEAD opening (ciphertext, output) and batch tables; key
 * material and ML-KEM inputs are copied before OpenSSL reads them.
 */
import { expect } from 'chai';
import { createHash, createHmac } from 'node:crypto';
import { crypto, QuantumTunnelError } from '../../lib/index.js';
import { native, type NativeAeadContext, type NativeRecordAeadContext, type PrivateKey, type Secret } from '../../lib/native.js';
import * as testing from '../../lib/testing.js';
import { detach, expectCode, own, withGetter } from '../helpers/buffers.js';

const INVALID = 'ERR_QT_INVALID_ARGUMENT';
const INVALID_KEY = 'ERR_QT_INVALID_KEY';
const DESTROYED = 'ERR_QT_HANDLE_DESTROYED';
const AUTH = 'ERR_QT_AUTHENTICATION_FAILED';

// A detached buffer's memory is freed only when its transferred twin is collected; collecting at
// once makes the old use-after-free real (a crash, or an ASan report) instead of a stale read.

// Over glibc's largest mmap threshold (32 MiB): freeing it unmaps it.
const BIG = 40 << 20;

const HAS_RESIZABLE = typeof (ArrayBuffer.prototype as { resize?: unknown }).resize === 'function';
interface ResizableArrayBuffer extends ArrayBuffer {
  resize(byteLength: number): void;
}
const ResizableArrayBufferCtor = ArrayBuffer as unknown as new (
  byteLength: number,
  options: { maxByteLength: number },
) => ResizableArrayBuffer;

function needResizable(ctx: Mocha.Context): void {
  if (HAS_RESIZABLE) return;
  ctx.test!.title += ' (skipped: this Node has no resizable ArrayBuffer; it needs Node 20+)';
  ctx.skip();
}


function detachedView(): Uint8Array {
  const v = own(Buffer.alloc(16, 1));
  detach(v.buffer);
  return v;
}

/** A length-tracking Uint8Array over a resizable ArrayBuffer holding `bytes`. */
function resizable(bytes: Uint8Array, maxByteLength = Math.max(2 * bytes.length, 4096)): {
  view: Uint8Array;
  buffer: ResizableArrayBuffer;
} {
  const buffer = new ResizableArrayBufferCtor(bytes.length, { maxByteLength });
  const view = new Uint8Array(buffer);
  view.set(bytes);
  return { view, buffer };
}

function shared(bytes: Uint8Array): Uint8Array {
  const v = new Uint8Array(new SharedArrayBuffer(bytes.length));
  v.set(bytes);
  return v;
}

/** Zero-length views in the shapes V8 gives them (several have a null data pointer). */
function emptyViews(): Array<[string, Uint8Array]> {
  const views: Array<[string, Uint8Array]> = [
    ['new Uint8Array(0)', new Uint8Array(0)],
    ['Buffer.alloc(0)', Buffer.alloc(0)],
    ['an empty ArrayBuffer', new Uint8Array(new ArrayBuffer(0))],
    ['the end of a buffer', own(Buffer.alloc(32, 7)).subarray(32)],
    ['an empty SharedArrayBuffer', new Uint8Array(new SharedArrayBuffer(0))],
  ];
  if (HAS_RESIZABLE) {
    const r = resizable(Buffer.alloc(64, 7));
    r.buffer.resize(0);
    views.push(['a resizable buffer shrunk to 0', r.view]);
  }
  return views;
}

/** Counts calls of JS hooks that native code must never make; each call runs `action`. */
class Tripwire {
  fired = 0;
  constructor(private readonly action: () => void = () => {}) {}
  fire(): void {
    this.fired++;
    this.action();
  }
  /** A value whose coercion hooks (valueOf, toString, Symbol.toPrimitive) fire. */
  coercible(value: number | string = 0): never {
    const f = (): number | string => {
      this.fire();
      return value;
    };
    return { valueOf: f, toString: f, [Symbol.toPrimitive]: f } as never;
  }
  /** `view` with own length/byteLength/byteOffset/buffer accessors that fire. */
  arm(view: Uint8Array): Uint8Array {
    for (const k of ['length', 'byteLength', 'byteOffset', 'buffer']) {
      Object.defineProperty(view, k, { get: () => (this.fire(), 0) });
    }
    return view;
  }
  /** An armed copy of `bytes`. */
  bytes(bytes: Uint8Array): Uint8Array {
    return this.arm(own(bytes));
  }
  /** An object dressed as a handle whose property reads fire. */
  lookalike(): never {
    return new Proxy({}, { get: () => (this.fire(), undefined), has: () => (this.fire(), true) }) as never;
  }
}


/** Runs `fn` with a getter at Array.prototype[index] (reached through a hole), removed after. */
function withArrayPrototypeGetter<R>(index: number, get: () => unknown, fn: () => R): R {
  Object.defineProperty(Array.prototype, index, { get, configurable: true });
  try {
    return fn();
  } finally {
    delete (Array.prototype as unknown as Record<number, unknown>)[index];
  }
}

/** Runs `fn` with a setter for `key` on `proto`, removed after; returns what the setter received. */
function withSetter<R>(proto: object, key: string, fn: () => R): { result: R; received: unknown[] } {
  const received: unknown[] = [];
  Object.defineProperty(proto, key, { set: (v: unknown) => received.push(v), configurable: true });
  try {
    return { result: fn(), received };
  } finally {
    delete (proto as Record<string, unknown>)[key];
  }
}

const cat = (...parts: Uint8Array[]): Buffer => Buffer.concat(parts.map((p) => Buffer.from(p)));

// ---- AEAD ---------------------------------------------------------------------------------

const GCM = native.aeadSuites.AES_256_GCM;
const AEAD_KEY = Buffer.alloc(32, 0x5a);
const aead = (): NativeAeadContext => native.aeadCreate(GCM, testing.secretFromBytes(AEAD_KEY));
const NONCE = Buffer.alloc(12, 0x0c);

/** The reference: ciphertext‖tag from a fresh context over clean copies. */
function sealRef(nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Buffer {
  return crypto.seal(aead(), Buffer.from(nonce), Buffer.from(aad), Buffer.from(plaintext));
}

// A record context (the IV held natively: record seq's nonce is iv XOR (0^32 ‖ BE64(seq))).
const RECORD_IV = Buffer.alloc(12, 0xc3);
const recordAead = (): NativeRecordAeadContext =>
  native.aeadCreate(GCM, testing.secretFromBytes(AEAD_KEY), testing.secretFromBytes(RECORD_IV));

/** The reference for record `seq`: sealRef with the nonce computed here. */
function sealRecordRef(seq: number, aad: Uint8Array, plaintext: Uint8Array): Buffer {
  const nonce = Buffer.alloc(12);
  nonce.writeBigUInt64BE(BigInt(seq), 4);
  for (let i = 0; i < 12; i++) nonce[i]! ^= RECORD_IV[i]!;
  return sealRef(nonce, aad, plaintext);
}

describe('re-entrancy: AeadContext.sealParts(nonce, aad, parts) (array reads run JS)', () => {
  it('a getter that detaches an earlier part: typed error, never the freed bytes', () => {
    const first = own(Buffer.alloc(BIG, 0x41));
    const parts = withGetter([first, own('tail')], 1, () => detach(first.buffer));
    expectCode(() => aead().sealParts(own(NONCE), own('ad'), parts), INVALID);
  });

  it('a getter that detaches the nonce or the AD (read before the array): typed error', () => {
    const nonce = own(NONCE);
    expectCode(() => aead().sealParts(nonce, own('ad'), withGetter([own('a'), own('b')], 1, () => detach(nonce.buffer))), INVALID);
    const aad = own(Buffer.alloc(BIG, 0x61));
    expectCode(() => aead().sealParts(own(NONCE), aad, withGetter([own('a'), own('b')], 1, () => detach(aad.buffer))), INVALID);
  });

  it('a getter that destroys the context: ERR_QT_HANDLE_DESTROYED, not a call on a freed cipher context', () => {
    const ctx = aead();
    expectCode(() => ctx.sealParts(own(NONCE), own('ad'), withGetter([own('a'), own('b')], 1, () => ctx.destroy())), DESTROYED);
  });

  it('a getter that destroys an earlier Secret part: ERR_QT_HANDLE_DESTROYED, not sealed zeros', () => {
    const master = testing.secretFromBytes(Buffer.alloc(32, 0x42));
    const parts = withGetter<Uint8Array | Secret>([master, own('tail')], 1, () => master.destroy());
    expectCode(() => aead().sealParts(own(NONCE), own('ad'), parts), DESTROYED);
  });

  it('a getter that shrinks an earlier part (resizable ArrayBuffer): seals the bytes it has now', function () {
    needResizable(this);
    const { view, buffer } = resizable(Buffer.alloc(1 << 20, 0x42), 4 << 20);
    const tail = own('tail');
    const out = aead().sealParts(own(NONCE), own('ad'), withGetter([view, tail], 1, () => buffer.resize(16)));
    expect(view.length).to.equal(16);
    expect(out.equals(sealRef(NONCE, Buffer.from('ad'), cat(view, tail)))).to.equal(true);

    const r = resizable(Buffer.alloc(1 << 20, 0x43), 4 << 20);
    const out0 = aead().sealParts(own(NONCE), own('ad'), withGetter([r.view, tail], 1, () => r.buffer.resize(0)));
    expect(out0.equals(sealRef(NONCE, Buffer.from('ad'), tail))).to.equal(true);
  });

  it('a getter that shrinks the AD or the nonce: the AD as it is now; a short nonce is refused', function () {
    needResizable(this);
    const aad = resizable(Buffer.alloc(1 << 20, 0x61), 4 << 20);
    const out = aead().sealParts(own(NONCE), aad.view, withGetter([own('a'), own('b')], 1, () => aad.buffer.resize(3)));
    expect(out.equals(sealRef(NONCE, Buffer.alloc(3, 0x61), Buffer.from('ab')))).to.equal(true);
    const nonce = resizable(NONCE);
    expectCode(() => aead().sealParts(nonce.view, own('ad'), withGetter([own('a'), own('b')], 1, () => nonce.buffer.resize(0))), INVALID);
  });

  it('an Array subclass or Array.prototype getter reached through a hole: same protection', () => {
    class Parts extends Array<Uint8Array> {}
    const first = own(Buffer.alloc(BIG, 0x41));
    const parts = new Parts();
    parts.length = 2;
    parts[0] = first; // parts[1] is a hole
    Object.defineProperty(Parts.prototype, 1, { get: () => (detach(first.buffer), own('x')), configurable: true });
    expectCode(() => aead().sealParts(own(NONCE), own('ad'), parts), INVALID);

    const second = own(Buffer.alloc(BIG, 0x42));
    const holey: Uint8Array[] = [second];
    holey.length = 2;
    expectCode(
      () => withArrayPrototypeGetter(1, () => (detach(second.buffer), own('x')), () => aead().sealParts(own(NONCE), own('ad'), holey)),
      INVALID,
    );
  });

  it('a Proxy or an array-like object is not an array: refused before any trap runs', () => {
    const tw = new Tripwire();
    const proxy = new Proxy([own('a')], { get: (t, k, r) => (tw.fire(), Reflect.get(t, k, r)) });
    expectCode(() => aead().sealParts(own(NONCE), own('ad'), proxy), INVALID);
    const arrayLike = { get length() { tw.fire(); return 1; }, get 0() { tw.fire(); return own('a'); } };
    expectCode(() => aead().sealParts(own(NONCE), own('ad'), arrayLike as never), INVALID);
    expect(tw.fired).to.equal(0);
  });

  it('a getter that grows the array: the length is read once', () => {
    const a = own('a'), b = own('b');
    const parts = withGetter([a, b], 1, () => parts.push(own('grown')));
    expect(aead().sealParts(own(NONCE), own('ad'), parts).equals(sealRef(NONCE, Buffer.from('ad'), Buffer.from('ab')))).to.equal(true);
  });

  it('a getter that throws: its own exception comes through', () => {
    const boom = new Error('boom');
    const parts = withGetter([own('a'), own('b')], 1, () => { throw boom; });
    expect(() => aead().sealParts(own(NONCE), own('ad'), parts)).to.throw().that.equals(boom);
  });

  it('a getter that calls sealParts on the same context: both results correct', () => {
    const ctx = aead();
    let inner: Buffer | undefined;
    const parts = withGetter([own('outer-1'), own('outer-2')], 1, () => {
      inner = ctx.sealParts(own(NONCE), own('in'), [own('inner')]);
    });
    const outer = ctx.sealParts(own(NONCE), own('out'), parts);
    expect(outer.equals(sealRef(NONCE, Buffer.from('out'), Buffer.from('outer-1outer-2')))).to.equal(true);
    expect(inner!.equals(sealRef(NONCE, Buffer.from('in'), Buffer.from('inner')))).to.equal(true);
  });

  it('SharedArrayBuffer-backed nonce, AD and parts: sealed like a copy (each is read once)', () => {
    const pt = crypto.randomBytes(300);
    const out = aead().sealParts(shared(NONCE), shared(Buffer.from('ad')), [shared(pt.subarray(0, 100)), shared(pt.subarray(100))]);
    expect(out.equals(sealRef(NONCE, Buffer.from('ad'), pt))).to.equal(true);
  });

  it('zero-length views in every shape as AD and parts: sealed like empty input; a detached one is refused', () => {
    for (const [name, empty] of emptyViews()) {
      const out = aead().sealParts(own(NONCE), empty, [empty, own('x'), empty]);
      expect(out.equals(sealRef(NONCE, Buffer.alloc(0), Buffer.from('x'))), name).to.equal(true);
    }
    expect(aead().sealParts(own(NONCE), new Uint8Array(0), []).equals(sealRef(NONCE, Buffer.alloc(0), Buffer.alloc(0)))).to.equal(true);
    expectCode(() => aead().sealParts(own(NONCE), own('ad'), [own('a'), detachedView()]), INVALID);
    expectCode(() => aead().sealParts(own(NONCE), detachedView(), [own('a')]), INVALID);
  });
});

describe('re-entrancy: AeadContext.seal(dst, dstOffset, nonce, aad, plaintext)', () => {
  it('runs no JS: a dstOffset with coercion hooks is refused unread; accessors on the byte arguments never fire', () => {
    const pt = own(Buffer.alloc(4096, 3));
    const tw = new Tripwire(() => detach(pt.buffer));
    expectCode(() => aead().seal(new Uint8Array(4112), tw.coercible(0), own(NONCE), own('ad'), pt), INVALID);
    const dst = new Uint8Array(4112);
    expect(aead().seal(dst, 0, tw.bytes(NONCE), tw.bytes(Buffer.from('ad')), pt)).to.equal(4112);
    expect(tw.fired).to.equal(0);
    expect(Buffer.from(dst).equals(sealRef(NONCE, Buffer.from('ad'), Buffer.alloc(4096, 3)))).to.equal(true);
  });

  it('a detached plaintext, nonce, AD or dst: typed error, not sealed as empty input', () => {
    expectCode(() => aead().seal(new Uint8Array(64), 0, own(NONCE), own('ad'), detachedView()), INVALID);
    expectCode(() => aead().seal(new Uint8Array(64), 0, detachedView(), own('ad'), own('pt')), INVALID);
    expectCode(() => aead().seal(new Uint8Array(64), 0, own(NONCE), detachedView(), own('pt')), INVALID);
    expectCode(() => aead().seal(detachedView(), 0, own(NONCE), own('ad'), own('pt')), INVALID);
  });

  it('a resizable plaintext and AD shrunk before the call: sealed as they are now', function () {
    needResizable(this);
    const pt = resizable(Buffer.alloc(1 << 20, 0x50), 4 << 20);
    const aad = resizable(Buffer.alloc(64, 0x61));
    pt.buffer.resize(100);
    aad.buffer.resize(5);
    const dst = new Uint8Array(116);
    expect(aead().seal(dst, 0, own(NONCE), aad.view, pt.view)).to.equal(116);
    expect(Buffer.from(dst).equals(sealRef(NONCE, Buffer.alloc(5, 0x61), Buffer.alloc(100, 0x50)))).to.equal(true);
    // A fixed-length view pushed out of bounds reads as empty in JS, and so here.
    const fixed = new Uint8Array(pt.buffer, 0, 50);
    pt.buffer.resize(10);
    expect(fixed.length).to.equal(0);
    const out = new Uint8Array(16);
    expect(aead().seal(out, 0, own(NONCE), own('ad'), fixed)).to.equal(16);
    expect(Buffer.from(out).equals(sealRef(NONCE, Buffer.from('ad'), Buffer.alloc(0)))).to.equal(true);
  });

  it('SharedArrayBuffer-backed dst, nonce, AD and plaintext: sealed like a copy', () => {
    const pt = crypto.randomBytes(200);
    const dst = shared(new Uint8Array(216));
    expect(aead().seal(dst, 0, shared(NONCE), shared(Buffer.from('ad')), shared(pt))).to.equal(216);
    expect(Buffer.from(dst).equals(sealRef(NONCE, Buffer.from('ad'), pt))).to.equal(true);
  });

  it('zero-length plaintext and AD in every shape; a zero-length dst is too small', () => {
    for (const [name, empty] of emptyViews()) {
      const dst = new Uint8Array(16);
      expect(aead().seal(dst, 0, own(NONCE), empty, empty), name).to.equal(16);
      expect(Buffer.from(dst).equals(sealRef(NONCE, Buffer.alloc(0), Buffer.alloc(0))), name).to.equal(true);
      expectCode(() => aead().seal(empty, 0, own(NONCE), empty, empty), INVALID);
    }
  });
});

describe('re-entrancy: AeadContext.open(dst, dstOffset, nonce, aad, ciphertext)', () => {
  const PT = Buffer.alloc(4096, 0x70);
  const SEALED = sealRef(NONCE, Buffer.from('ad'), PT);

  it('runs no JS: a dstOffset with coercion hooks is refused unread; accessors on the byte arguments never fire', () => {
    const ct = own(SEALED);
    const tw = new Tripwire(() => detach(ct.buffer));
    expectCode(() => aead().open(new Uint8Array(4096), tw.coercible(0), own(NONCE), own('ad'), ct), INVALID);
    const dst = new Uint8Array(4096);
    expect(aead().open(dst, 0, tw.bytes(NONCE), tw.bytes(Buffer.from('ad')), ct)).to.equal(4096);
    expect(tw.fired).to.equal(0);
    expect(Buffer.from(dst).equals(PT)).to.equal(true);
  });

  it('a detached ciphertext, nonce or dst: typed argument error', () => {
    expectCode(() => aead().open(new Uint8Array(64), 0, own(NONCE), own('ad'), detachedView()), INVALID);
    expectCode(() => aead().open(new Uint8Array(4096), 0, detachedView(), own('ad'), own(SEALED)), INVALID);
    expectCode(() => aead().open(detachedView(), 0, own(NONCE), own('ad'), own(SEALED)), INVALID);
  });

  it('a resizable ciphertext shrunk before the call: opened as it is now (a bad tag), the output wiped', function () {
    needResizable(this);
    const ct = resizable(SEALED, 1 << 20);
    ct.buffer.resize(100);
    const dst = new Uint8Array(4096).fill(0xee);
    expectCode(() => aead().open(dst, 0, own(NONCE), own('ad'), ct.view), AUTH);
    expect(dst.subarray(0, 84).every((b) => b === 0)).to.equal(true);
  });

  it('SharedArrayBuffer-backed ciphertext or dst: refused; a shared nonce and AD: opened like a copy', () => {
    expectCode(() => aead().open(new Uint8Array(4096), 0, own(NONCE), own('ad'), shared(SEALED)), INVALID);
    expectCode(() => aead().open(shared(new Uint8Array(4096)), 0, own(NONCE), own('ad'), own(SEALED)), INVALID);
    const dst = new Uint8Array(4096);
    expect(aead().open(dst, 0, shared(NONCE), shared(Buffer.from('ad')), own(SEALED))).to.equal(4096);
    expect(Buffer.from(dst).equals(PT)).to.equal(true);
  });

  it('zero-length views: an empty plaintext opens into any zero-length dst; a zero-length ciphertext fails the tag', () => {
    const sealedEmpty = sealRef(NONCE, Buffer.alloc(0), Buffer.alloc(0));
    for (const [name, empty] of emptyViews()) {
      if (empty.buffer instanceof SharedArrayBuffer) continue; // refused as dst: see above
      expect(aead().open(empty, 0, own(NONCE), empty, own(sealedEmpty)), name).to.equal(0);
      expectCode(() => aead().open(new Uint8Array(16), 0, own(NONCE), own('ad'), empty), AUTH);
    }
  });
});

/** A batch of `n` records of `size` bytes laid out as the record layer does (AD and nonce in dst). */
function batchLayout(n: number, size: number): { src: Buffer; dst: Uint8Array; table: Uint32Array; frame: number } {
  const src = crypto.randomBytes(n * size);
  const frame = 8 + 12 + size + 16;
  const dst = new Uint8Array(n * frame);
  const table = new Uint32Array(n * 6);
  for (let i = 0; i < n; i++) {
    const base = i * frame;
    dst.set(Buffer.alloc(8, i), base);
    dst.set(Buffer.alloc(12, 0x80 + i), base + 8);
    table.set([i * size, size, base + 20, base + 8, base, 8], i * 6);
  }
  return { src, dst, table, frame };
}

function expectBatchSealed(dst: Uint8Array, src: Uint8Array, n: number, size: number, frame: number): void {
  for (let i = 0; i < n; i++) {
    const base = i * frame;
    const ref = sealRef(Buffer.alloc(12, 0x80 + i), Buffer.alloc(8, i), src.subarray(i * size, (i + 1) * size));
    expect(Buffer.from(dst.subarray(base + 20, base + frame)).equals(ref), `record ${i}`).to.equal(true);
  }
}

describe('re-entrancy: AeadContext.sealBatch(src, dst, table, count)', () => {
  it('runs no JS: a count with coercion hooks is refused unread; accessors on src and dst never fire', () => {
    const { src, dst, table, frame } = batchLayout(4, 256);
    const tw = new Tripwire(() => detach(table.buffer));
    expectCode(() => aead().sealBatch(own(src), dst, table, tw.coercible(4)), INVALID);
    const hostileSrc = tw.bytes(src);
    expect(aead().sealBatch(hostileSrc, dst, table, 4)).to.equal(4 * 272);
    expect(tw.fired).to.equal(0);
    expectBatchSealed(dst, src, 4, 256, frame);
  });

  it('a detached src, dst or table: typed argument error', () => {
    const { src, dst, table } = batchLayout(2, 64);
    expectCode(() => aead().sealBatch(detachedView(), dst, table, 2), INVALID);
    expectCode(() => aead().sealBatch(own(src), detachedView(), table, 2), INVALID);
    const t = new Uint32Array(table);
    detach(t.buffer);
    expectCode(() => aead().sealBatch(own(src), dst, t, 0), INVALID);
  });

  it('a resizable src shrunk before the call: rows past its end are out of bounds, rows within are sealed', function () {
    needResizable(this);
    const { src, dst, table, frame } = batchLayout(4, 256);
    const r = resizable(src, 1 << 20);
    r.buffer.resize(2 * 256);
    expectCode(() => aead().sealBatch(r.view, dst, table, 4), INVALID);
    expect(aead().sealBatch(r.view, dst, table, 2)).to.equal(2 * 272);
    expectBatchSealed(dst, src, 2, 256, frame);
  });

  it('SharedArrayBuffer-backed src and dst: sealed like a copy; a shared table is refused (rows are checked, then used)', () => {
    const { src, dst, table, frame } = batchLayout(3, 100);
    const sdst = shared(dst);
    expect(aead().sealBatch(shared(src), sdst, table, 3)).to.equal(3 * 116);
    expectBatchSealed(sdst, src, 3, 100, frame);
    const stable = new Uint32Array(new SharedArrayBuffer(table.byteLength));
    stable.set(table);
    expectCode(() => aead().sealBatch(own(src), dst, stable, 3), INVALID);
  });

  it('zero-length views: zero rows seal nothing; a zero-length record seals to a tag', () => {
    for (const [name, empty] of emptyViews()) {
      expect(aead().sealBatch(empty, empty, new Uint32Array(0), 0), name).to.equal(0);
      const dst = new Uint8Array(36);
      dst.set(NONCE, 0);
      expect(aead().sealBatch(empty, dst, Uint32Array.from([0, 0, 20, 0, 12, 0]), 1), name).to.equal(16);
      expect(Buffer.from(dst.subarray(20)).equals(sealRef(NONCE, Buffer.alloc(0), Buffer.alloc(0))), name).to.equal(true);
    }
  });
});

describe('re-entrancy: AeadContext.openBatch(src, dst, table, count, results)', () => {
  function sealedBatch(n: number, size: number): { sealed: Uint8Array; table: Uint32Array; plain: Buffer } {
    const { src, dst, table, frame } = batchLayout(n, size);
    aead().sealBatch(src, dst, table, n);
    const openTable = new Uint32Array(n * 6);
    for (let i = 0; i < n; i++) openTable.set([i * frame + 20, size + 16, i * size, i * frame + 8, i * frame, 8], i * 6);
    return { sealed: dst, table: openTable, plain: src };
  }

  it('runs no JS: count and results with hooks are refused unread; accessors on src and dst never fire', () => {
    const { sealed, table, plain } = sealedBatch(3, 128);
    const tw = new Tripwire(() => detach(table.buffer));
    expectCode(() => aead().openBatch(own(sealed), new Uint8Array(384), table, tw.coercible(3), new Int32Array(3)), INVALID);
    expectCode(() => aead().openBatch(own(sealed), new Uint8Array(384), table, 3, tw.lookalike()), INVALID);
    const backing = new ArrayBuffer(384);
    const results = new Int32Array(3);
    expect(aead().openBatch(tw.bytes(sealed), tw.arm(new Uint8Array(backing)), table, 3, results)).to.equal(0);
    expect(tw.fired).to.equal(0);
    expect(Array.from(results)).to.deep.equal([128, 128, 128]);
    expect(Buffer.from(backing).equals(plain)).to.equal(true);
  });

  it('a detached src, dst, table or results: typed argument error', () => {
    const { sealed, table } = sealedBatch(2, 64);
    expectCode(() => aead().openBatch(detachedView(), new Uint8Array(128), table, 2, new Int32Array(2)), INVALID);
    expectCode(() => aead().openBatch(own(sealed), detachedView(), table, 2, new Int32Array(2)), INVALID);
    const results = new Int32Array(2);
    detach(results.buffer);
    expectCode(() => aead().openBatch(own(sealed), new Uint8Array(128), table, 0, results), INVALID);
  });

  it('a resizable src shrunk before the call: rows past its end are out of bounds', function () {
    needResizable(this);
    const { sealed, table, plain } = sealedBatch(3, 64);
    const r = resizable(sealed, 1 << 20);
    r.buffer.resize(sealed.length - 1);
    expectCode(() => aead().openBatch(r.view, new Uint8Array(192), table, 3, new Int32Array(3)), INVALID);
    const dst = new Uint8Array(192);
    const results = new Int32Array(3);
    expect(aead().openBatch(r.view, dst, table, 2, results)).to.equal(0);
    expect(Buffer.from(dst.subarray(0, 128)).equals(plain.subarray(0, 128))).to.equal(true);
  });

  it('SharedArrayBuffer-backed src, dst or table: refused; shared results: filled', () => {
    const { sealed, table, plain } = sealedBatch(2, 64);
    expectCode(() => aead().openBatch(shared(sealed), new Uint8Array(128), table, 2, new Int32Array(2)), INVALID);
    expectCode(() => aead().openBatch(own(sealed), shared(new Uint8Array(128)), table, 2, new Int32Array(2)), INVALID);
    const stable = new Uint32Array(new SharedArrayBuffer(table.byteLength));
    stable.set(table);
    expectCode(() => aead().openBatch(own(sealed), new Uint8Array(128), stable, 2, new Int32Array(2)), INVALID);
    const results = new Int32Array(new SharedArrayBuffer(8));
    const dst = new Uint8Array(128);
    expect(aead().openBatch(own(sealed), dst, table, 2, results)).to.equal(0);
    expect(Array.from(results)).to.deep.equal([64, 64]);
    expect(Buffer.from(dst).equals(plain)).to.equal(true);
  });

  it('zero-length views: zero rows open nothing; an empty record opens into a zero-length dst', () => {
    const tag = sealRef(NONCE, Buffer.alloc(0), Buffer.alloc(0));
    for (const [name, empty] of emptyViews()) {
      if (empty.buffer instanceof SharedArrayBuffer) continue; // refused as src/dst: see above
      expect(aead().openBatch(empty, empty, new Uint32Array(0), 0, new Int32Array(0)), name).to.equal(0);
      const src = own(cat(NONCE, tag));
      const results = new Int32Array(1);
      expect(aead().openBatch(src, empty, Uint32Array.from([12, 16, 0, 0, 12, 0]), 1, results), name).to.equal(0);
      expect(results[0], name).to.equal(0);
    }
  });
});

describe('re-entrancy: AeadContext.openWithSecret(nonce, aad, sealed, secretOffset, secretLength)', () => {
  const PLAIN = Buffer.concat([Buffer.from([1, 2, 3]), Buffer.alloc(32, 0x42), Buffer.from('tail')]);
  const SEALED = sealRef(NONCE, Buffer.from('ad'), PLAIN);

  it('runs no JS: offsets with coercion hooks are refused unread; accessors on the byte arguments never fire', () => {
    const sealed = own(SEALED);
    const tw = new Tripwire(() => detach(sealed.buffer));
    expectCode(() => aead().openWithSecret(own(NONCE), own('ad'), sealed, tw.coercible(3), 32), INVALID);
    expectCode(() => aead().openWithSecret(own(NONCE), own('ad'), sealed, 3, tw.coercible(32)), INVALID);
    const { plaintext, secret } = aead().openWithSecret(tw.bytes(NONCE), tw.bytes(Buffer.from('ad')), sealed, 3, 32);
    expect(tw.fired).to.equal(0);
    expect(plaintext.toString('hex')).to.equal('010203' + '00'.repeat(32) + Buffer.from('tail').toString('hex'));
    expect(testing.exportSecret(secret).equals(Buffer.alloc(32, 0x42))).to.equal(true);
  });

  it('the result object is defined, not assigned: a setter on Object.prototype never sees the secret', () => {
    const { result, received } = withSetter(Object.prototype, 'secret', () => aead().openWithSecret(own(NONCE), own('ad'), own(SEALED), 3, 32));
    expect(received).to.have.length(0);
    expect(crypto.isSecret(result.secret)).to.equal(true);
  });

  it('a detached nonce or sealed input: typed argument error', () => {
    expectCode(() => aead().openWithSecret(own(NONCE), own('ad'), detachedView(), 0, 0), INVALID);
    expectCode(() => aead().openWithSecret(detachedView(), own('ad'), own(SEALED), 3, 32), INVALID);
  });

  it('a resizable sealed input shrunk before the call: opened as it is now (a bad tag)', function () {
    needResizable(this);
    const r = resizable(SEALED);
    r.buffer.resize(SEALED.length - 1);
    expectCode(() => aead().openWithSecret(own(NONCE), own('ad'), r.view, 3, 32), AUTH);
  });

  it('a SharedArrayBuffer-backed sealed input: refused; a shared nonce and AD: opened like a copy', () => {
    expectCode(() => aead().openWithSecret(own(NONCE), own('ad'), shared(SEALED), 3, 32), INVALID);
    const { secret } = aead().openWithSecret(shared(NONCE), shared(Buffer.from('ad')), own(SEALED), 3, 32);
    expect(testing.exportSecret(secret).equals(Buffer.alloc(32, 0x42))).to.equal(true);
  });

  it('zero-length views: empty AD in every shape, an empty secret range, an empty plaintext', () => {
    const sealedNoAd = sealRef(NONCE, Buffer.alloc(0), PLAIN);
    const sealedEmpty = sealRef(NONCE, Buffer.alloc(0), Buffer.alloc(0));
    for (const [name, empty] of emptyViews()) {
      const { plaintext, secret } = aead().openWithSecret(own(NONCE), empty, own(sealedNoAd), 3, 0);
      expect(plaintext.equals(PLAIN), name).to.equal(true);
      expect(secret.length, name).to.equal(0);
      expect(aead().openWithSecret(own(NONCE), empty, own(sealedEmpty), 0, 0).plaintext.length, name).to.equal(0);
    }
  });
});

describe('re-entrancy: aeadCreate(suite, key)', () => {
  it('runs no JS: a suite with coercion hooks and a handle look-alike are refused unread', () => {
    const tw = new Tripwire();
    expectCode(() => native.aeadCreate(tw.coercible(GCM), testing.secretFromBytes(AEAD_KEY)), INVALID);
    expectCode(() => native.aeadCreate(GCM, tw.lookalike()), INVALID);
    expect(tw.fired).to.equal(0);
  });

  it('key bytes of any backing (detached, resizable, shared, zero-length) are refused: keys are Secret handles only', () => {
    const candidates: Uint8Array[] = [detachedView(), shared(AEAD_KEY), own(AEAD_KEY), ...emptyViews().map(([, v]) => v)];
    if (HAS_RESIZABLE) candidates.push(resizable(AEAD_KEY).view);
    for (const key of candidates) expectCode(() => native.aeadCreate(GCM, key as never), INVALID);
    const destroyed = testing.secretFromBytes(AEAD_KEY);
    destroyed.destroy();
    expectCode(() => native.aeadCreate(GCM, destroyed), DESTROYED);
  });

  it('the iv of a record context: a look-alike is refused unread; IV bytes of any backing are refused (Secret handles only)', () => {
    const tw = new Tripwire();
    expectCode(() => native.aeadCreate(GCM, testing.secretFromBytes(AEAD_KEY), tw.lookalike()), INVALID);
    expect(tw.fired).to.equal(0);
    const candidates: Uint8Array[] = [detachedView(), shared(RECORD_IV), own(RECORD_IV), ...emptyViews().map(([, v]) => v)];
    if (HAS_RESIZABLE) candidates.push(resizable(RECORD_IV).view);
    for (const iv of candidates) expectCode(() => native.aeadCreate(GCM, testing.secretFromBytes(AEAD_KEY), iv as never), INVALID);
    const destroyed = testing.secretFromBytes(RECORD_IV);
    destroyed.destroy();
    expectCode(() => native.aeadCreate(GCM, testing.secretFromBytes(AEAD_KEY), destroyed), DESTROYED);
  });
});

describe('re-entrancy: AeadContext methods with a foreign receiver', () => {
  it('are refused by V8 (no handle of another class is reinterpreted)', () => {
    const ctx = aead();
    const secret = testing.secretFromBytes(AEAD_KEY);
    const proto = Object.getPrototypeOf(ctx) as NativeAeadContext;
    expect(() => proto.seal.call(secret as never, new Uint8Array(32), 0, own(NONCE), own('ad'), own('x'))).to.throw(TypeError);
    expect(() => proto.sealParts.call({} as never, own(NONCE), own('ad'), [])).to.throw(TypeError);
    const recordProto = Object.getPrototypeOf(recordAead()) as NativeRecordAeadContext;
    expect(() => recordProto.sealRecord.call(secret as never, new Uint8Array(32), 0, 0, own('ad'), own('x'))).to.throw(TypeError);
    expect(() => recordProto.openRecordBatch.call({} as never, own(''), own(''), new Uint32Array(0), 0, 0, new Int32Array(0))).to.throw(TypeError);
    const secretProto = Object.getPrototypeOf(secret) as Secret;
    expect(() => secretProto.clone.call(ctx as never)).to.throw(TypeError);
  });
});

// ---- record AEAD contexts (the IV held natively; record seq's nonce is iv XOR BE64(seq)) ------------

/** `n` records of `size` bytes for a record batch: AD (8 bytes) then ciphertext‖tag, in dst. */
function recordBatchLayout(n: number, size: number): { src: Buffer; dst: Uint8Array; table: Uint32Array; openTable: Uint32Array; frame: number } {
  const src = crypto.randomBytes(n * size);
  const frame = 8 + size + 16;
  const dst = new Uint8Array(n * frame);
  const table = new Uint32Array(n * 5);
  const openTable = new Uint32Array(n * 5);
  for (let i = 0; i < n; i++) {
    dst.set(Buffer.alloc(8, i), i * frame);
    table.set([i * size, size, i * frame + 8, i * frame, 8], i * 5);
    openTable.set([i * frame + 8, size + 16, i * size, i * frame, 8], i * 5);
  }
  return { src, dst, table, openTable, frame };
}

function expectRecordBatchSealed(dst: Uint8Array, src: Uint8Array, n: number, size: number, frame: number, firstSeq: number): void {
  for (let i = 0; i < n; i++) {
    const ref = sealRecordRef(firstSeq + i, Buffer.alloc(8, i), src.subarray(i * size, (i + 1) * size));
    expect(Buffer.from(dst.subarray(i * frame + 8, (i + 1) * frame)).equals(ref), `record ${i}`).to.equal(true);
  }
}

describe('re-entrancy: record AeadContext methods (sealRecord, openRecord, sealRecordBatch, openRecordBatch)', () => {
  const SEQ = 2 ** 32 + 9;
  const AD = Buffer.from('hdr');
  const PT = Buffer.alloc(4096, 0x72);
  const SEALED = sealRecordRef(SEQ, AD, PT);

  it('run no JS: seq, firstSeq, dstOffset, count and results with hooks (that detach a buffer) are refused unread', () => {
    const victim = own(PT);
    const tw = new Tripwire(() => detach(victim.buffer));
    const ctx = recordAead();
    const { dst, table, openTable } = recordBatchLayout(2, 64);
    expectCode(() => ctx.sealRecord(new Uint8Array(4112), 0, tw.coercible(SEQ), own(AD), victim), INVALID);
    expectCode(() => ctx.sealRecord(new Uint8Array(4112), tw.coercible(0), SEQ, own(AD), victim), INVALID);
    expectCode(() => ctx.openRecord(new Uint8Array(4096), 0, tw.coercible(SEQ), own(AD), own(SEALED)), INVALID);
    expectCode(() => ctx.openRecord(new Uint8Array(4096), tw.coercible(0), SEQ, own(AD), own(SEALED)), INVALID);
    expectCode(() => ctx.sealRecordBatch(victim, dst, table, tw.coercible(2), 0), INVALID);
    expectCode(() => ctx.sealRecordBatch(victim, dst, table, 2, tw.coercible(0)), INVALID);
    expectCode(() => ctx.openRecordBatch(own(dst), victim, openTable, 2, tw.coercible(0), new Int32Array(2)), INVALID);
    expectCode(() => ctx.openRecordBatch(own(dst), victim, openTable, 2, 0, tw.lookalike()), INVALID);
    expect(tw.fired).to.equal(0);
    expect(victim.length).to.equal(PT.length);
  });

  it('run no JS: accessors on every byte argument never fire; the results are the clean ones', () => {
    const tw = new Tripwire();
    const ctx = recordAead();
    const dst = new ArrayBuffer(4112);
    expect(ctx.sealRecord(tw.arm(new Uint8Array(dst)), 0, SEQ, tw.bytes(AD), tw.bytes(PT))).to.equal(4112);
    expect(Buffer.from(dst).equals(SEALED)).to.equal(true);
    const out = new ArrayBuffer(4096);
    expect(ctx.openRecord(tw.arm(new Uint8Array(out)), 0, SEQ, tw.bytes(AD), tw.bytes(SEALED))).to.equal(4096);
    expect(Buffer.from(out).equals(PT)).to.equal(true);
    const { src, dst: batch, table, openTable, frame } = recordBatchLayout(3, 100);
    const sealedBatch = new ArrayBuffer(batch.length);
    new Uint8Array(sealedBatch).set(batch);
    expect(ctx.sealRecordBatch(tw.bytes(src), tw.arm(new Uint8Array(sealedBatch)), table, 3, SEQ)).to.equal(3 * 116);
    expectRecordBatchSealed(new Uint8Array(sealedBatch), src, 3, 100, frame, SEQ);
    const opened = new ArrayBuffer(300);
    const results = new Int32Array(3);
    expect(ctx.openRecordBatch(tw.bytes(new Uint8Array(sealedBatch)), tw.arm(new Uint8Array(opened)), openTable, 3, SEQ, results)).to.equal(0);
    expect(Array.from(results)).to.deep.equal([100, 100, 100]);
    expect(Buffer.from(opened).equals(src)).to.equal(true);
    expect(tw.fired).to.equal(0);
  });

  it('a detached dst, AD, plaintext, ciphertext, src, table or results: typed errors, never read as empty', () => {
    const ctx = recordAead();
    const { src, dst, table, openTable } = recordBatchLayout(2, 64);
    expectCode(() => ctx.sealRecord(new Uint8Array(64), 0, 0, own('ad'), detachedView()), INVALID);
    expectCode(() => ctx.sealRecord(new Uint8Array(64), 0, 0, detachedView(), own('pt')), INVALID);
    expectCode(() => ctx.sealRecord(detachedView(), 0, 0, own('ad'), own('pt')), INVALID);
    expectCode(() => ctx.openRecord(new Uint8Array(4096), 0, SEQ, own(AD), detachedView()), INVALID);
    expectCode(() => ctx.openRecord(new Uint8Array(4096), 0, SEQ, detachedView(), own(SEALED)), INVALID);
    expectCode(() => ctx.openRecord(detachedView(), 0, SEQ, own(AD), own(SEALED)), INVALID);
    expectCode(() => ctx.sealRecordBatch(detachedView(), dst, table, 2, 0), INVALID);
    expectCode(() => ctx.sealRecordBatch(own(src), detachedView(), table, 2, 0), INVALID);
    const t = new Uint32Array(table);
    detach(t.buffer);
    expectCode(() => ctx.sealRecordBatch(own(src), dst, t, 0, 0), INVALID);
    expectCode(() => ctx.openRecordBatch(own(dst), new Uint8Array(128), t, 0, 0, new Int32Array(2)), INVALID);
    expectCode(() => ctx.openRecordBatch(detachedView(), new Uint8Array(128), openTable, 2, 0, new Int32Array(2)), INVALID);
    const results = new Int32Array(2);
    detach(results.buffer);
    expectCode(() => ctx.openRecordBatch(own(dst), new Uint8Array(128), openTable, 0, 0, results), INVALID);
  });

  it('resizable buffers shrunk before the call: read as they are now (a shrunk ciphertext is a bad tag, wiped)', function () {
    needResizable(this);
    const ctx = recordAead();
    const pt = resizable(Buffer.alloc(1 << 20, 0x50), 4 << 20);
    const aad = resizable(Buffer.alloc(64, 0x61));
    pt.buffer.resize(100);
    aad.buffer.resize(5);
    const dst = new Uint8Array(116);
    expect(ctx.sealRecord(dst, 0, SEQ, aad.view, pt.view)).to.equal(116);
    expect(Buffer.from(dst).equals(sealRecordRef(SEQ, Buffer.alloc(5, 0x61), Buffer.alloc(100, 0x50)))).to.equal(true);
    const ct = resizable(SEALED, 1 << 20);
    ct.buffer.resize(100);
    const out = new Uint8Array(4096).fill(0xee);
    expectCode(() => ctx.openRecord(out, 0, SEQ, own(AD), ct.view), AUTH);
    expect(out.subarray(0, 84).every((b) => b === 0)).to.equal(true);
    const { src, dst: batch, table, frame } = recordBatchLayout(4, 256);
    const r = resizable(src, 1 << 20);
    r.buffer.resize(2 * 256);
    expectCode(() => ctx.sealRecordBatch(r.view, batch, table, 4, 0), INVALID);
    expect(ctx.sealRecordBatch(r.view, batch, table, 2, 0)).to.equal(2 * 272);
    expectRecordBatchSealed(batch, src, 2, 256, frame, 0);
  });

  it('SharedArrayBuffer: sealRecord and sealRecordBatch seal like a copy; opening refuses shared ciphertext and output, every batch a shared table', () => {
    const ctx = recordAead();
    const sdst = shared(new Uint8Array(4112));
    expect(ctx.sealRecord(sdst, 0, SEQ, shared(AD), shared(PT))).to.equal(4112);
    expect(Buffer.from(sdst).equals(SEALED)).to.equal(true);
    expectCode(() => ctx.openRecord(new Uint8Array(4096), 0, SEQ, own(AD), shared(SEALED)), INVALID);
    expectCode(() => ctx.openRecord(shared(new Uint8Array(4096)), 0, SEQ, own(AD), own(SEALED)), INVALID);
    const out = new Uint8Array(4096);
    expect(ctx.openRecord(out, 0, SEQ, shared(AD), own(SEALED))).to.equal(4096);
    expect(Buffer.from(out).equals(PT)).to.equal(true);

    const { src, dst, table, openTable, frame } = recordBatchLayout(3, 100);
    const sbatch = shared(dst);
    expect(ctx.sealRecordBatch(shared(src), sbatch, table, 3, 7)).to.equal(3 * 116);
    expectRecordBatchSealed(sbatch, src, 3, 100, frame, 7);
    const sharedTable = (t: Uint32Array) => {
      const st = new Uint32Array(new SharedArrayBuffer(t.byteLength));
      st.set(t);
      return st;
    };
    expectCode(() => ctx.sealRecordBatch(own(src), dst, sharedTable(table), 3, 7), INVALID);
    const sealed = own(sbatch);
    expectCode(() => ctx.openRecordBatch(shared(sealed), new Uint8Array(300), openTable, 3, 7, new Int32Array(3)), INVALID);
    expectCode(() => ctx.openRecordBatch(sealed, shared(new Uint8Array(300)), openTable, 3, 7, new Int32Array(3)), INVALID);
    expectCode(() => ctx.openRecordBatch(sealed, new Uint8Array(300), sharedTable(openTable), 3, 7, new Int32Array(3)), INVALID);
    const results = new Int32Array(new SharedArrayBuffer(12));
    const opened = new Uint8Array(300);
    expect(ctx.openRecordBatch(sealed, opened, openTable, 3, 7, results)).to.equal(0);
    expect(Array.from(results)).to.deep.equal([100, 100, 100]);
    expect(Buffer.from(opened).equals(src)).to.equal(true);
  });

  it('zero-length views in every shape: empty AD and plaintext seal to a tag and open back; zero rows do nothing', () => {
    const ctx = recordAead();
    const tag = sealRecordRef(0, Buffer.alloc(0), Buffer.alloc(0));
    for (const [name, empty] of emptyViews()) {
      const dst = new Uint8Array(16);
      expect(ctx.sealRecord(dst, 0, 0, empty, empty), name).to.equal(16);
      expect(Buffer.from(dst).equals(tag), name).to.equal(true);
      expectCode(() => ctx.sealRecord(empty, 0, 0, empty, empty), INVALID);
      expect(ctx.sealRecordBatch(empty, empty, new Uint32Array(0), 0, 0), name).to.equal(0);
      if (empty.buffer instanceof SharedArrayBuffer) continue; // refused where opening writes or reads twice
      expect(ctx.openRecord(empty, 0, 0, empty, own(tag)), name).to.equal(0);
      expectCode(() => ctx.openRecord(new Uint8Array(16), 0, 0, empty, empty), AUTH);
      expect(ctx.openRecordBatch(empty, empty, new Uint32Array(0), 0, 0, new Int32Array(0)), name).to.equal(0);
      const results = new Int32Array(1);
      expect(ctx.openRecordBatch(own(tag), empty, Uint32Array.from([0, 16, 0, 0, 0]), 1, 0, results), name).to.equal(0);
      expect(results[0], name).to.equal(0);
    }
  });
});

// ---- digests --------------------------------------------------------------------------------

const sha3 = (data: Uint8Array): Buffer => createHash('sha3-256').update(data).digest();
const shake = (data: Uint8Array, n: number): Buffer => createHash('shake256', { outputLength: n }).update(data).digest();

type Digest = { name: string; run: (parts: Array<Uint8Array | Secret>) => Buffer; ref: (data: Uint8Array) => Buffer };
const DIGESTS: Digest[] = [
  { name: 'sha3_256(parts)', run: (p) => native.sha3_256(p), ref: sha3 },
  { name: 'shake256(parts, outputLength)', run: (p) => native.shake256(p, 48), ref: (d) => shake(d, 48) },
  {
    name: 'shake256Secrets(parts, sizes)',
    run: (p) => Buffer.concat(native.shake256Secrets(p, [16, 32]).map((s) => testing.exportSecret(s))),
    ref: (d) => shake(d, 48),
  },
];

for (const d of DIGESTS) {
  describe(`re-entrancy: ${d.name} (array reads run JS)`, () => {
    it('a getter that detaches an earlier part: typed error, never the freed bytes', () => {
      const first = own(Buffer.alloc(BIG, 0x41));
      expectCode(() => d.run(withGetter([first, own('tail')], 1, () => detach(first.buffer))), INVALID);
    });

    it('a getter that destroys an earlier Secret part: ERR_QT_HANDLE_DESTROYED', () => {
      const s = testing.secretFromBytes(Buffer.alloc(32, 0x53));
      expectCode(() => d.run(withGetter<Uint8Array | Secret>([s, own('tail')], 1, () => s.destroy())), DESTROYED);
    });

    it('a getter that shrinks an earlier part (resizable ArrayBuffer): hashes the bytes it has now', function () {
      needResizable(this);
      const r = resizable(Buffer.alloc(1 << 20, 0x42), 4 << 20);
      const tail = own('tail');
      expect(d.run(withGetter([r.view, tail], 1, () => r.buffer.resize(7))).equals(d.ref(cat(Buffer.alloc(7, 0x42), tail)))).to.equal(true);
      const r0 = resizable(Buffer.alloc(1 << 20, 0x43), 4 << 20);
      expect(d.run(withGetter([r0.view, tail], 1, () => r0.buffer.resize(0))).equals(d.ref(tail))).to.equal(true);
    });

    it('an Array.prototype getter through a hole, a growing array, a throwing getter, a Proxy', () => {
      const first = own(Buffer.alloc(BIG, 0x41));
      const holey: Uint8Array[] = [first];
      holey.length = 2;
      expectCode(() => withArrayPrototypeGetter(1, () => (detach(first.buffer), own('x')), () => d.run(holey)), INVALID);
      const grow = withGetter([own('a'), own('b')], 1, () => grow.push(own('c')));
      expect(d.run(grow).equals(d.ref(Buffer.from('ab')))).to.equal(true);
      const boom = new Error('boom');
      expect(() => d.run(withGetter([own('a'), own('b')], 1, () => { throw boom; }))).to.throw().that.equals(boom);
      const tw = new Tripwire();
      expectCode(() => d.run(new Proxy([own('a')], { get: (t, k, r) => (tw.fire(), Reflect.get(t, k, r)) })), INVALID);
      expect(tw.fired).to.equal(0);
    });

    it('SharedArrayBuffer-backed parts: hashed like a copy (each is read once)', () => {
      const data = crypto.randomBytes(500);
      expect(d.run([shared(data.subarray(0, 123)), shared(data.subarray(123))]).equals(d.ref(data))).to.equal(true);
    });

    it('zero-length parts in every shape: hashed as nothing; a detached part is refused', () => {
      for (const [name, empty] of emptyViews()) {
        expect(d.run([empty, own('x'), empty]).equals(d.ref(Buffer.from('x'))), name).to.equal(true);
      }
      expect(d.run([]).equals(d.ref(Buffer.alloc(0)))).to.equal(true);
      expectCode(() => d.run([own('x'), detachedView()]), INVALID);
    });
  });
}

describe('re-entrancy: shake256Secrets(parts, sizes) — the sizes array', () => {
  it('a sizes getter that detaches a part: typed error (the parts are read after the sizes)', () => {
    const part = own(Buffer.alloc(BIG, 0x41));
    expectCode(() => native.shake256Secrets([part], withGetter([16, 16], 1, () => detach(part.buffer))), INVALID);
  });

  it('a sizes getter that shrinks a part: hashes the part as it is after all getters ran', function () {
    needResizable(this);
    const r = resizable(Buffer.alloc(1 << 20, 0x42), 4 << 20);
    const out = native.shake256Secrets([r.view], withGetter([16, 16], 1, () => r.buffer.resize(9)));
    expect(Buffer.concat(out.map((s) => testing.exportSecret(s))).equals(shake(Buffer.alloc(9, 0x42), 32))).to.equal(true);
  });

  it('sizes are read once and never coerced; the result array is defined, not assigned', () => {
    const tw = new Tripwire();
    expectCode(() => native.shake256Secrets([own('x')], [16, tw.coercible(16)]), INVALID);
    expect(tw.fired).to.equal(0);
    const sizes = withGetter([16, 16], 1, () => sizes.push(16));
    expect(native.shake256Secrets([own('x')], sizes)).to.have.length(2);
    const { result, received } = withSetter(Array.prototype, '0', () => native.shake256Secrets([own('x')], [16, 16]));
    expect(received).to.have.length(0);
    expect(crypto.isSecret(result[0])).to.equal(true);
  });
});

// ---- HKDF, HMAC, SHA-384 (hkdf.test.ts covers detaching, destroying and shared buffers) ----------

describe('re-entrancy: HKDF, HMAC and SHA-384 with resizable buffers and argument hooks', () => {
  const SHA384 = native.hkdfDigests.SHA384;
  const hmac384 = (key: Uint8Array, data: Uint8Array): Buffer => createHmac('sha384', key).update(data).digest();

  it('hkdfExtract(digest, salt, ikm): a getter that shrinks the salt and an earlier IKM part: the bytes they have now', function () {
    needResizable(this);
    const salt = resizable(Buffer.alloc(1 << 20, 0x73), 4 << 20);
    const part = resizable(Buffer.alloc(1 << 20, 0x69), 4 << 20);
    const ikm = withGetter([part.view, own('tail')], 1, () => {
      salt.buffer.resize(20);
      part.buffer.resize(5);
    });
    const prk = native.hkdfExtract(SHA384, salt.view, ikm);
    expect(testing.exportSecret(prk).equals(hmac384(Buffer.alloc(20, 0x73), cat(Buffer.alloc(5, 0x69), own('tail'))))).to.equal(true);
  });

  it('hmac(digest, key, parts) and hmacVerify(..., expected): a getter that shrinks an earlier part or the tag', function () {
    needResizable(this);
    const keyBytes = Buffer.alloc(48, 0x6b);
    const key = testing.secretFromBytes(keyBytes);
    const r = resizable(Buffer.alloc(1 << 20, 0x61), 4 << 20);
    const mac = native.hmac(SHA384, key, withGetter([r.view, own('b')], 1, () => r.buffer.resize(3)));
    expect(mac.equals(hmac384(keyBytes, Buffer.from('aaab')))).to.equal(true);
    const tag = resizable(hmac384(keyBytes, Buffer.from('m')));
    expect(native.hmacVerify(SHA384, key, withGetter([own('m')], 0, () => {}), tag.view)).to.equal(true);
    expect(native.hmacVerify(SHA384, key, withGetter([own('m')], 0, () => tag.buffer.resize(47)), tag.view)).to.equal(false);
  });

  it('sha384(parts): a getter that shrinks an earlier part: hashes the bytes it has now', function () {
    needResizable(this);
    const r = resizable(Buffer.alloc(1 << 20, 0x42), 4 << 20);
    const out = native.sha384(withGetter([r.view, own('tail')], 1, () => r.buffer.resize(7)));
    expect(out.equals(createHash('sha384').update(cat(Buffer.alloc(7, 0x42), own('tail'))).digest())).to.equal(true);
  });

  it('hkdfExpand(digest, prk, info, length): runs no JS; a resizable info shrunk before the call is read as it is now', function () {
    const prkBytes = Buffer.alloc(48, 0x70);
    const prk = testing.secretFromBytes(prkBytes);
    const info = own('context info');
    const tw = new Tripwire(() => detach(info.buffer));
    expectCode(() => native.hkdfExpand(tw.coercible(SHA384), prk, info, 32), INVALID);
    expectCode(() => native.hkdfExpand(SHA384, prk, info, tw.coercible(32)), INVALID);
    expectCode(() => native.hkdfExpand(SHA384, tw.lookalike(), info, 32), INVALID);
    const okm = native.hkdfExpand(SHA384, prk, tw.bytes(Buffer.from('context info')), 32);
    expect(tw.fired).to.equal(0);
    // L <= HashLen: OKM = T(1) = HMAC(PRK, info || 0x01), truncated.
    const t1 = (i: Uint8Array): Buffer => hmac384(prkBytes, cat(i, Uint8Array.of(1))).subarray(0, 32);
    expect(testing.exportSecret(okm).equals(t1(Buffer.from('context info')))).to.equal(true);
    expectCode(() => native.hkdfExpand(SHA384, prk, detachedView(), 32), INVALID);
    if (!HAS_RESIZABLE) return;
    const r = resizable(Buffer.from('context info'));
    r.buffer.resize(7);
    expect(testing.exportSecret(native.hkdfExpand(SHA384, prk, r.view, 32)).equals(t1(Buffer.from('context')))).to.equal(true);
  });
});

// ---- comparisons and random ---------------------------------------------------------------------

describe('re-entrancy: timingSafeEqual(a, b)', () => {
  it('runs no JS: accessors on either argument never fire', () => {
    const b = own('same bytes');
    const tw = new Tripwire(() => detach(b.buffer));
    expect(native.timingSafeEqual(tw.bytes(Buffer.from('same bytes')), b)).to.equal(true);
    expectCode(() => native.timingSafeEqual(tw.lookalike(), b), INVALID);
    expect(tw.fired).to.equal(0);
  });

  it('a detached argument: typed error (not compared as empty)', () => {
    expectCode(() => native.timingSafeEqual(detachedView(), new Uint8Array(0)), INVALID);
    expectCode(() => native.timingSafeEqual(new Uint8Array(0), detachedView()), INVALID);
  });

  it('a resizable argument shrunk before the call: compared as it is now', function () {
    needResizable(this);
    const r = resizable(Buffer.from('abcdef'));
    r.buffer.resize(3);
    expect(native.timingSafeEqual(r.view, own('abc'))).to.equal(true);
    expect(native.timingSafeEqual(r.view, own('abcdef'))).to.equal(false);
  });

  it('SharedArrayBuffer-backed and zero-length arguments: compared like copies', () => {
    expect(native.timingSafeEqual(shared(Buffer.from('xyz')), own('xyz'))).to.equal(true);
    expect(native.timingSafeEqual(shared(Buffer.from('xyz')), shared(Buffer.from('xyw')))).to.equal(false);
    for (const [name, empty] of emptyViews()) {
      expect(native.timingSafeEqual(empty, new Uint8Array(0)), name).to.equal(true);
      expect(native.timingSafeEqual(empty, own('x')), name).to.equal(false);
    }
  });
});

describe('re-entrancy: randomFill(buffer)', () => {
  it('SharedArrayBuffer-backed and resizable targets are filled; zero-length ones returned; a detached one refused', function () {
    const s = new Uint8Array(new SharedArrayBuffer(64));
    expect(native.randomFill(s)).to.equal(s);
    expect(s.some((b) => b !== 0)).to.equal(true);
    for (const [name, empty] of emptyViews()) expect(native.randomFill(empty), name).to.equal(empty);
    expectCode(() => native.randomFill(detachedView()), INVALID);
    if (!HAS_RESIZABLE) return;
    const r = resizable(new Uint8Array(1 << 16));
    r.buffer.resize(32);
    native.randomFill(r.view);
    expect(r.view.some((b) => b !== 0)).to.equal(true);
  });
});

// ---- ML-KEM -------------------------------------------------------------------------------------

describe('re-entrancy: ML-KEM entry points', () => {
  const K = native.mlkemSizes['ML-KEM-768'];
  const SEED = Buffer.alloc(K.seed, 0x11);
  const M = Buffer.alloc(K.encapsulationCoins, 0x22);
  const ss = (s: Secret): Buffer => testing.exportSecret(s);
  // The clean results every hostile variant must reproduce.
  let priv: PrivateKey, EK: Buffer, DK: Buffer, CLEAN: { ciphertext: Buffer; sharedSecret: Secret }, CLEAN_SS: Buffer;
  before(() => {
    priv = native.mlkemGenerateKeyPair(K.id, own(SEED));
    EK = native.mlkemPublicKey(priv, K.id);
    DK = testing.exportPrivateKey(priv);
    CLEAN = native.mlkemEncapsulate(K.id, own(EK), own(M));
    CLEAN_SS = ss(CLEAN.sharedSecret);
  });

  it('mlkemGenerateKeyPair(kind, seed): runs no JS; a detached, shrunk or empty seed is refused; a shared one is copied', function () {
    const seed = own(SEED);
    const tw = new Tripwire(() => detach(seed.buffer));
    expectCode(() => native.mlkemGenerateKeyPair(tw.coercible(K.id), seed), INVALID);
    expect(native.mlkemPublicKey(native.mlkemGenerateKeyPair(K.id, tw.bytes(SEED)), K.id).equals(EK)).to.equal(true);
    expect(tw.fired).to.equal(0);
    expectCode(() => native.mlkemGenerateKeyPair(K.id, detachedView()), INVALID);
    for (const [, empty] of emptyViews()) expectCode(() => native.mlkemGenerateKeyPair(K.id, empty), INVALID);
    expect(native.mlkemPublicKey(native.mlkemGenerateKeyPair(K.id, shared(SEED)), K.id).equals(EK)).to.equal(true);
    if (!HAS_RESIZABLE) return;
    const r = resizable(SEED);
    r.buffer.resize(32);
    expectCode(() => native.mlkemGenerateKeyPair(K.id, r.view), INVALID);
  });

  it('mlkemPublicKey(privateKey, kind): runs no JS', () => {
    const tw = new Tripwire();
    expectCode(() => native.mlkemPublicKey(priv, tw.coercible(K.id)), INVALID);
    expectCode(() => native.mlkemPublicKey(tw.lookalike(), K.id), INVALID);
    expect(tw.fired).to.equal(0);
  });

  for (const fn of ['mlkemCheckPublicKey', 'mlkemImportPublicKey'] as const) {
    it(`${fn}(kind, ek): runs no JS; detached/empty/shrunk keys are typed errors; a shared key is copied`, function () {
      const ek = own(EK);
      const tw = new Tripwire(() => detach(ek.buffer));
      expectCode(() => native[fn](tw.coercible(K.id), ek), INVALID);
      expect(native[fn](K.id, tw.bytes(EK))).to.be.ok;
      expect(tw.fired).to.equal(0);
      expectCode(() => native[fn](K.id, detachedView()), INVALID);
      for (const [, empty] of emptyViews()) expectCode(() => native[fn](K.id, empty), INVALID_KEY);
      const parsed = native[fn](K.id, shared(EK));
      if (fn === 'mlkemImportPublicKey') {
        const enc = native.mlkemEncapsulate(K.id, parsed as never, own(M));
        expect(enc.ciphertext.equals(CLEAN.ciphertext)).to.equal(true);
        expect(ss(enc.sharedSecret).equals(CLEAN_SS)).to.equal(true);
      }
      if (!HAS_RESIZABLE) return;
      const r = resizable(EK);
      r.buffer.resize(EK.length - 1);
      expectCode(() => native[fn](K.id, r.view), INVALID_KEY);
    });
  }

  it('mlkemEncapsulate(kind, publicKey, m): runs no JS; detached/empty m refused; shared key and m give the clean result', function () {
    const m = own(M);
    const tw = new Tripwire(() => detach(m.buffer));
    expectCode(() => native.mlkemEncapsulate(tw.coercible(K.id), own(EK), m), INVALID);
    expectCode(() => native.mlkemEncapsulate(K.id, tw.lookalike(), m), INVALID);
    const viaHooks = native.mlkemEncapsulate(K.id, tw.bytes(EK), tw.bytes(M));
    expect(tw.fired).to.equal(0);
    expect(viaHooks.ciphertext.equals(CLEAN.ciphertext)).to.equal(true);
    expectCode(() => native.mlkemEncapsulate(K.id, own(EK), detachedView()), INVALID);
    expectCode(() => native.mlkemEncapsulate(K.id, detachedView(), own(M)), INVALID);
    for (const [, empty] of emptyViews()) expectCode(() => native.mlkemEncapsulate(K.id, own(EK), empty), INVALID);
    const enc = native.mlkemEncapsulate(K.id, shared(EK), shared(M));
    expect(enc.ciphertext.equals(CLEAN.ciphertext)).to.equal(true);
    expect(ss(enc.sharedSecret).equals(CLEAN_SS)).to.equal(true);
    if (!HAS_RESIZABLE) return;
    const r = resizable(M);
    r.buffer.resize(16);
    expectCode(() => native.mlkemEncapsulate(K.id, own(EK), r.view), INVALID);
  });

  it('mlkemEncapsulate: the result object is defined, not assigned (a setter never sees the shared secret)', () => {
    const { result, received } = withSetter(Object.prototype, 'sharedSecret', () => native.mlkemEncapsulate(K.id, own(EK), own(M)));
    expect(received).to.have.length(0);
    expect(ss(result.sharedSecret).equals(CLEAN_SS)).to.equal(true);
  });

  it('mlkemEncapsulateAsync(kind, publicKey): runs no JS; a detached key is refused; a shared one works', async () => {
    const tw = new Tripwire();
    expectCode(() => native.mlkemEncapsulateAsync(tw.coercible(K.id), own(EK)), INVALID);
    expectCode(() => native.mlkemEncapsulateAsync(K.id, detachedView()), INVALID);
    expectCode(() => native.mlkemEncapsulateAsync(K.id, new Uint8Array(0)), INVALID_KEY);
    const enc = await native.mlkemEncapsulateAsync(K.id, shared(EK));
    expect(tw.fired).to.equal(0);
    expect(ss(native.mlkemDecapsulate(priv, K.id, enc.ciphertext)).equals(ss(enc.sharedSecret))).to.equal(true);
  });

  for (const fn of ['mlkemDecapsulate', 'mlkemDecapsulateAsync'] as const) {
    it(`${fn}(privateKey, kind, ciphertext): runs no JS; detached/empty/shrunk ciphertexts are typed errors; a shared one is copied`, async function () {
      const ct = own(CLEAN.ciphertext);
      const tw = new Tripwire(() => detach(ct.buffer));
      expectCode(() => native[fn](priv, tw.coercible(K.id), ct), INVALID);
      expectCode(() => native[fn](tw.lookalike(), K.id, ct), INVALID);
      expect(ss(await native[fn](priv, K.id, tw.bytes(CLEAN.ciphertext))).equals(CLEAN_SS)).to.equal(true);
      expect(tw.fired).to.equal(0);
      expectCode(() => native[fn](priv, K.id, detachedView()), INVALID);
      for (const [, empty] of emptyViews()) {
        // The async form reports the wrong length when the job runs.
        try {
          await native[fn](priv, K.id, empty);
          expect.fail('an empty ciphertext was accepted');
        } catch (e) {
          expect(e).to.be.instanceOf(QuantumTunnelError).with.property('code', INVALID);
        }
      }
      expect(ss(await native[fn](priv, K.id, shared(CLEAN.ciphertext))).equals(CLEAN_SS)).to.equal(true);
      if (!HAS_RESIZABLE) return;
      const r = resizable(CLEAN.ciphertext);
      r.buffer.resize(100);
      try {
        await native[fn](priv, K.id, r.view);
        expect.fail('a shrunk ciphertext was accepted');
      } catch (e) {
        expect(e).to.be.instanceOf(QuantumTunnelError).with.property('code', INVALID);
      }
    });
  }

  it('mlkemPrivateKeyFromBytes(kind, dk): runs no JS; detached/empty keys refused; a shared one is copied', () => {
    const dk = own(DK);
    const tw = new Tripwire(() => detach(dk.buffer));
    expectCode(() => native.mlkemPrivateKeyFromBytes(tw.coercible(K.id), dk), INVALID);
    expect(native.mlkemPublicKey(native.mlkemPrivateKeyFromBytes(K.id, tw.bytes(DK)), K.id).equals(EK)).to.equal(true);
    expect(tw.fired).to.equal(0);
    expectCode(() => native.mlkemPrivateKeyFromBytes(K.id, detachedView()), INVALID);
    for (const [, empty] of emptyViews()) expectCode(() => native.mlkemPrivateKeyFromBytes(K.id, empty), INVALID);
    const fromShared = native.mlkemPrivateKeyFromBytes(K.id, shared(DK));
    expect(native.mlkemPublicKey(fromShared, K.id).equals(EK)).to.equal(true);
    expect(ss(native.mlkemDecapsulate(fromShared, K.id, CLEAN.ciphertext)).equals(CLEAN_SS)).to.equal(true);
  });
});

// ---- X25519 -------------------------------------------------------------------------------------

describe('re-entrancy: X25519 entry points', () => {
  const A = Buffer.from('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a', 'hex');
  const B_PUB = Buffer.from('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f', 'hex');
  const SHARED = Buffer.from('4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742', 'hex'); // RFC 7748 §6.1
  const priv = native.x25519PrivateKeyFromBytes(own(A));

  it('x25519Derive(privateKey, peer): runs no JS; detached/empty/shrunk peers refused; a shared peer gives the clean secret', () => {
    const peer = own(B_PUB);
    const tw = new Tripwire(() => detach(peer.buffer));
    expectCode(() => native.x25519Derive(tw.lookalike(), peer), INVALID);
    expect(testing.exportSecret(native.x25519Derive(priv, tw.bytes(B_PUB))).equals(SHARED)).to.equal(true);
    expect(tw.fired).to.equal(0);
    expectCode(() => native.x25519Derive(priv, detachedView()), INVALID);
    for (const [, empty] of emptyViews()) expectCode(() => native.x25519Derive(priv, empty), INVALID);
    expect(testing.exportSecret(native.x25519Derive(priv, shared(B_PUB))).equals(SHARED)).to.equal(true);
    if (!HAS_RESIZABLE) return;
    const r = resizable(B_PUB);
    r.buffer.resize(31);
    expectCode(() => native.x25519Derive(priv, r.view), INVALID);
  });

  it('x25519PrivateKeyFromBytes(raw): a detached or empty scalar refused; a shared one is copied', () => {
    expectCode(() => native.x25519PrivateKeyFromBytes(detachedView()), INVALID);
    for (const [, empty] of emptyViews()) expectCode(() => native.x25519PrivateKeyFromBytes(empty), INVALID);
    const k = native.x25519PrivateKeyFromBytes(shared(A));
    expect(native.x25519PublicKey(k).equals(native.x25519PublicKey(priv))).to.equal(true);
  });
});

// ---- P-384 (ecdh.test.ts covers detached and shared peers) -----------------------------------------

describe('re-entrancy: p384Derive(privateKey, peer)', () => {
  it('runs no JS; zero-length and shrunk peers are typed errors; a shared peer gives the clean secret', function () {
    const a = native.p384GenerateKeyPair();
    const b = native.p384GenerateKeyPair();
    const bPub = native.p384PublicKey(b);
    const clean = testing.exportSecret(native.p384Derive(b, own(native.p384PublicKey(a))));
    const peer = own(bPub);
    const tw = new Tripwire(() => detach(peer.buffer));
    expectCode(() => native.p384Derive(tw.lookalike(), peer), INVALID);
    expect(testing.exportSecret(native.p384Derive(a, tw.bytes(bPub))).equals(clean)).to.equal(true);
    expect(tw.fired).to.equal(0);
    for (const [, empty] of emptyViews()) expectCode(() => native.p384Derive(a, empty), INVALID_KEY);
    expect(testing.exportSecret(native.p384Derive(a, shared(bPub))).equals(clean)).to.equal(true);
    if (!HAS_RESIZABLE) return;
    const r = resizable(bPub);
    r.buffer.resize(96);
    expectCode(() => native.p384Derive(a, r.view), INVALID_KEY);
  });
});

// ---- FIPS entry points with several arguments ---------------------------------------------------

describe('re-entrancy: fipsLoad(moduleDir, configPath) and fipsModuleMac(path, key)', () => {
  it('run no JS: string arguments with coercion hooks are refused unread', () => {
    const tw = new Tripwire();
    expectCode(() => native.fipsLoad(tw.coercible('/nonexistent'), '/nonexistent'), INVALID);
    expectCode(() => native.fipsLoad('/nonexistent', tw.coercible('/nonexistent')), INVALID);
    expectCode(() => native.fipsModuleMac(tw.coercible('/nonexistent'), own('k')), INVALID);
    expect(tw.fired).to.equal(0);
  });

  it('fipsModuleMac: a detached key is refused before anything is read', () => {
    expectCode(() => native.fipsModuleMac('/nonexistent', detachedView()), INVALID);
  });
});

// ---- the JS error constructor -------------------------------------------------------------------

describe('re-entrancy: a hostile error constructor (setErrorConstructor takes any function)', () => {
  it('one that throws, or returns a Proxy whose traps throw: its exception comes through, sync and async, no crash', async () => {
    const boom = new Error('constructor threw');
    const ctors: Array<[string, unknown, (e: unknown) => void]> = [
      ['throws', function () { throw boom; }, (e) => expect(e).to.equal(boom)],
      [
        'a Proxy with throwing traps',
        function () {
          return new Proxy({}, { defineProperty: () => { throw boom; }, set: () => { throw boom; } });
        },
        (e) => expect(e).to.satisfy((v: unknown) => v === boom || (typeof v === 'object' && v !== null)),
      ],
    ];
    const failing: Array<() => unknown> = [
      () => aead().seal(new Uint8Array(1), 0, own(NONCE), own(''), own('pt')), // argument error
      () => aead().open(new Uint8Array(64), 0, own(NONCE), own(''), new Uint8Array(20)), // bad tag
      () => native.mlkemCheckPublicKey(native.mlkemSizes['ML-KEM-768'].id, new Uint8Array(1184).fill(0xff)), // with an OpenSSL detail
      () => native.sha3_256([1 as never]),
    ];
    const ctx = aead();
    try {
      for (const [name, ctor, check] of ctors) {
        native.setErrorConstructor(ctor as never);
        for (const call of failing) {
          let caught: unknown = 'nothing thrown';
          try {
            call();
          } catch (e) {
            caught = e;
          }
          expect(caught, name).to.not.equal('nothing thrown');
          check(caught);
        }
        const rejected = await native.mlkemDecapsulateAsync(native.mlkemGenerateKeyPair(native.mlkemSizes['ML-KEM-768'].id), native.mlkemSizes['ML-KEM-768'].id, new Uint8Array(5))
          .then(() => 'resolved', (e: unknown) => e);
        expect(rejected, name).to.not.equal('resolved');
        check(rejected);
        expect(ctx.destroyed).to.equal(false);
      }
    } finally {
      native.setErrorConstructor(QuantumTunnelError);
    }
    expectCode(() => aead().seal(new Uint8Array(1), 0, own(NONCE), own(''), own('pt')), INVALID);
  });
});
