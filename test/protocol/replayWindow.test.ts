import { expect } from 'chai';
import { QuantumTunnelError } from '../../lib/index.js';
import { REPLAY_WINDOW_SIZE } from '../../lib/protocol/constants.js';
import { ReplayWindow, type ReplayVerdict } from '../../lib/protocol/replayWindow.js';

const MAX_SEQ = (1n << 64n) - 1n;

/** What the record layer does: check, then commit only when the (simulated) tag verified. */
function receive(w: ReplayWindow, seq: bigint, authentic = true): ReplayVerdict {
  const verdict = w.check(seq);
  if (verdict === 'ok' && authentic) w.commit(seq);
  return verdict;
}

/** The obvious model: a set of every committed seq plus the §8.4 range rule, without wrapping. */
class ModelWindow {
  private readonly seen = new Set<bigint>();
  private top: bigint | undefined;
  constructor(private readonly size: bigint) {}
  receive(seq: bigint): ReplayVerdict {
    if (this.top !== undefined && seq <= this.top) {
      if (seq + this.size <= this.top) return 'too-old';
      if (this.seen.has(seq)) return 'replay';
    }
    this.seen.add(seq);
    if (this.top === undefined || seq > this.top) this.top = seq;
    return 'ok';
  }
}

/** Small deterministic PRNG (xorshift32) so failures reproduce. */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

describe('ReplayWindow (PROTOCOL.md §8.4, §14 #6 fixed)', () => {
  it('defaults to REPLAY_WINDOW_SIZE and starts empty', () => {
    const w = new ReplayWindow();
    expect(w.size).to.equal(REPLAY_WINDOW_SIZE);
    expect(w.highest).to.equal(undefined);
    for (const s of [0n, 1n, 12345n, 1n << 63n, MAX_SEQ]) expect(w.check(s)).to.equal('ok');
  });

  it('runs the reference scenario: accept 0..99, then 36..99 are replays, 35 is too old, 100 is new', () => {
    const w = new ReplayWindow(64);
    for (let s = 0n; s < 100n; s++) expect(receive(w, s), `seq ${s}`).to.equal('ok');
    expect(w.highest).to.equal(99n);
    for (let s = 36n; s < 100n; s++) expect(w.check(s), `seq ${s}`).to.equal('replay');
    for (const s of [35n, 10n, 0n]) expect(w.check(s), `seq ${s}`).to.equal('too-old');
    expect(receive(w, 100n)).to.equal('ok');
    expect(w.check(100n)).to.equal('replay');
    expect(w.check(36n)).to.equal('too-old'); // 36 + 64 <= 100
  });

  it('never moves on check() alone: a forged seq 2^63 that fails authentication is harmless', () => {
    const w = new ReplayWindow();
    for (let s = 0n; s < 10n; s++) receive(w, s);
    // The reference would move highest to 2^63 here and refuse every later record (a permanent DoS).
    for (let i = 0; i < 5; i++) expect(receive(w, 1n << 63n, false)).to.equal('ok');
    expect(w.highest).to.equal(9n);
    for (let s = 10n; s < 20n; s++) expect(receive(w, s), `seq ${s}`).to.equal('ok');
    expect(w.highest).to.equal(19n);
    // A record replayed after a failed forgery of the same seq is still caught.
    expect(receive(w, 15n)).to.equal('replay');
  });

  it('check() is pure for every verdict', () => {
    const w = new ReplayWindow(64);
    for (const s of [5n, 70n, 100n]) w.commit(s);
    const before = [...Array(200).keys()].map((i) => w.check(BigInt(i)));
    for (let i = 0; i < 200; i++) w.check(BigInt(i) * 7919n);
    w.check(MAX_SEQ);
    expect([...Array(200).keys()].map((i) => w.check(BigInt(i)))).to.deep.equal(before);
    expect(w.highest).to.equal(100n);
  });

  it('handles the top of the uint64 range without wrapping', () => {
    const w = new ReplayWindow(64);
    expect(receive(w, MAX_SEQ - 1n)).to.equal('ok');
    expect(receive(w, MAX_SEQ)).to.equal('ok');
    expect(w.highest).to.equal(MAX_SEQ);
    expect(w.check(MAX_SEQ)).to.equal('replay');
    expect(w.check(MAX_SEQ - 1n)).to.equal('replay');
    expect(receive(w, MAX_SEQ - 63n)).to.equal('ok');
    expect(w.check(MAX_SEQ - 64n)).to.equal('too-old');
    // The reference computes seq + 64 in uint64: for these it wraps and they would pass as in-window.
    expect(w.check(0n)).to.equal('too-old');
    expect(w.check(1n)).to.equal('too-old');
  });

  it('accepts each out-of-order seq inside the window exactly once', () => {
    const w = new ReplayWindow(128);
    receive(w, 1000n);
    const order = [999n, 873n, 950n, 1000n, 901n, 999n, 873n, 872n];
    expect(order.map((s) => receive(w, s))).to.deep.equal(['ok', 'ok', 'ok', 'replay', 'ok', 'replay', 'replay', 'too-old']);
    // Gaps left behind stay acceptable until the window passes them.
    expect(receive(w, 1001n)).to.equal('ok');
    expect(receive(w, 874n)).to.equal('ok');
    expect(w.check(873n)).to.equal('too-old');
  });

  it('forgets everything on a jump larger than the window, and keeps the right bits on partial jumps', () => {
    const w = new ReplayWindow(64);
    for (let s = 0n; s < 64n; s++) receive(w, s);
    expect(receive(w, 64n + 1000n)).to.equal('ok');
    for (let s = 1064n - 63n; s < 1064n; s++) expect(w.check(s), `seq ${s}`).to.equal('ok');
    expect(w.check(1064n - 64n)).to.equal('too-old');
    // A jump of exactly the window size keeps nothing of the old window in range.
    const v = new ReplayWindow(64);
    for (let s = 100n; s < 164n; s++) receive(v, s);
    expect(receive(v, 163n + 64n)).to.equal('ok');
    for (let s = 164n; s < 227n; s++) expect(v.check(s), `seq ${s}`).to.equal('ok');
    // A jump of 40 (crossing word boundaries) keeps the 24 still in range.
    const u = new ReplayWindow(64);
    for (let s = 0n; s < 64n; s++) receive(u, s);
    receive(u, 103n);
    for (let s = 40n; s < 64n; s++) expect(u.check(s), `seq ${s}`).to.equal('replay');
    for (let s = 64n; s < 103n; s++) expect(u.check(s), `seq ${s}`).to.equal('ok');
    expect(u.check(39n)).to.equal('too-old');
  });

  it('with size 64 accepts exactly the reference range [highest-63, highest]', () => {
    for (const top of [63n, 64n, 95n, 96n, 1000n, 1023n, 1024n, MAX_SEQ]) {
      const w = new ReplayWindow(64);
      w.commit(top);
      for (let d = 1n; d <= 70n && d <= top; d++) {
        expect(w.check(top - d), `highest ${top}, seq highest-${d}`).to.equal(d <= 63n ? 'ok' : 'too-old');
      }
    }
  });

  it('agrees with a set-based model on random traffic (reordering, duplicates, jumps)', () => {
    for (const size of [64, 96, 256]) {
      const rand = prng(size * 7 + 1);
      const w = new ReplayWindow(size);
      const model = new ModelWindow(BigInt(size));
      let next = 0n;
      for (let i = 0; i < 20000; i++) {
        const r = rand();
        let seq: bigint;
        if (r < 0.6) seq = next++;
        else if (r < 0.95) seq = next - BigInt(Math.floor(rand() * size * 1.5)) - 1n;
        else seq = next += BigInt(Math.floor(rand() * size * 3));
        if (seq < 0n) seq = 0n;
        expect(receive(w, seq), `size ${size}, step ${i}, seq ${seq}`).to.equal(model.receive(seq));
      }
    }
  });

  it('commit ignores a too-old seq and is idempotent', () => {
    const w = new ReplayWindow(64);
    w.commit(500n);
    w.commit(10n);
    w.commit(500n);
    w.commit(450n);
    w.commit(450n);
    expect(w.highest).to.equal(500n);
    expect(w.check(450n)).to.equal('replay');
    expect(w.check(449n)).to.equal('ok');
    expect(w.check(10n)).to.equal('too-old');
  });

  it('reset() returns to the initial state', () => {
    const w = new ReplayWindow(64);
    for (let s = 0n; s < 100n; s++) receive(w, s);
    w.reset();
    expect(w.highest).to.equal(undefined);
    for (const s of [0n, 50n, 99n]) expect(receive(w, s)).to.equal('ok');
    expect(w.check(50n)).to.equal('replay');
  });

  it('validates the size and the sequence numbers', () => {
    for (const bad of [0, 32, 63, 65, 100, -64, 64.5, Number.NaN, 2 ** 25]) {
      expect(() => new ReplayWindow(bad), String(bad)).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_INVALID_ARGUMENT');
    }
    for (const good of [64, 96, 128, 8192]) expect(new ReplayWindow(good).size).to.equal(good);
    const w = new ReplayWindow();
    for (const bad of [-1n, MAX_SEQ + 1n, 5 as unknown as bigint, '5' as unknown as bigint]) {
      expect(() => w.check(bad)).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_INVALID_ARGUMENT');
      expect(() => w.commit(bad)).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_INVALID_ARGUMENT');
    }
  });
});
