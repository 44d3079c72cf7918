/**
 * KeyReserve (lib/crypto/keyReserve.ts): ephemeral keys made ahead on the threadpool are bounded,
 * single use, discarded when stale or made in another mode; and P-384's reserve hands out valid,
 * distinct key pairs.
 */
import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import * as testing from '../../lib/testing.js';
import type { PrivateKey } from '../../lib/native.js';
import { KeyReserve } from '../../lib/crypto/keyReserve.js';
import { cryptoPolicy } from '../../lib/crypto/policy.js';
import * as p384 from '../../lib/crypto/p384.js';

/** A stand-in key: records destroy(). */
function fakeKey(id: number): PrivateKey & { id: number } {
  let destroyed = false;
  return {
    id,
    algorithm: 'P-384',
    get destroyed() {
      return destroyed;
    },
    destroy() {
      destroyed = true;
    },
  };
}

describe('KeyReserve: keys made ahead on the threadpool', () => {
  let made: Array<PrivateKey & { id: number }>;
  const generator = () => async () => {
    const k = fakeKey(made.length);
    made.push(k);
    return k;
  };
  beforeEach(() => {
    made = [];
  });

  it('starts empty; the first take() starts a refill of `size` keys and later takes use them once each', async () => {
    const r = new KeyReserve(generator(), { size: 2 });
    expect(r.take()).to.equal(undefined);
    await sleep(0);
    expect(r.ready).to.equal(2);
    const a = r.take();
    const b = r.take();
    expect(a).to.not.equal(undefined);
    expect(b).to.not.equal(a);
    await sleep(0);
    expect(r.ready).to.equal(2); // refilled, never more than size
    expect(made).to.have.length(4);
  });

  it('never holds more than `size` keys however often take() runs', async () => {
    const r = new KeyReserve(generator(), { size: 3 });
    for (let i = 0; i < 10; i++) r.take();
    await sleep(0);
    expect(r.ready).to.equal(3);
    expect(made.length).to.be.at.most(3 + 10);
    expect(made.filter((k) => !k.destroyed).length).to.be.at.most(3 + 10);
  });

  it('discards (destroys) a key older than maxAgeMs instead of handing it out', async () => {
    const r = new KeyReserve(generator(), { size: 1, maxAgeMs: 20 });
    r.take();
    await sleep(0);
    const stale = made[0]!;
    await sleep(40);
    expect(r.take()).to.equal(undefined);
    expect(stale.destroyed).to.equal(true);
  });

  it('discards keys made in another mode (standard vs FIPS)', async () => {
    const r = new KeyReserve(generator(), { size: 1 });
    r.take();
    await sleep(0);
    const before = cryptoPolicy.fips;
    cryptoPolicy.fips = !before;
    try {
      expect(r.take()).to.equal(undefined);
      expect(made[0]!.destroyed).to.equal(true);
    } finally {
      cryptoPolicy.fips = before;
    }
  });

  it('a failing generator (error state) leaves the reserve empty without an unhandled rejection; clear() cleanses', async () => {
    const failing = new KeyReserve(async () => {
      throw new Error('refused');
    });
    expect(failing.take()).to.equal(undefined);
    await sleep(0);
    expect(failing.ready).to.equal(0);
    const throwing = new KeyReserve(() => {
      throw new Error('refused synchronously');
    });
    expect(throwing.take()).to.equal(undefined);
    const r = new KeyReserve(generator(), { size: 2 });
    r.take();
    await sleep(0);
    r.clear();
    expect(r.ready).to.equal(0);
    expect(made.every((k) => k.destroyed)).to.equal(true);
  });
});

describe('P-384 key pairs from the reserve', () => {
  it('are valid and distinct: each derives the same secret as its peer, no public key repeats', async () => {
    p384.generateKeyPair().privateKey.destroy(); // starts the refill
    await sleep(20);
    expect(p384.reserve.ready).to.equal(2);
    const pairs = [];
    for (let i = 0; i < 6; i++) {
      pairs.push(p384.generateKeyPair());
      await sleep(5); // let the threadpool refill between takes
    }
    expect(new Set(pairs.map((p) => p.publicKey.toString('hex'))).size).to.equal(6);
    for (let i = 0; i + 1 < pairs.length; i += 2) {
      const [a, b] = [pairs[i]!, pairs[i + 1]!];
      const ab = testing.exportSecret(p384.deriveSharedSecret(a.privateKey, b.publicKey));
      const ba = testing.exportSecret(p384.deriveSharedSecret(b.privateKey, a.publicKey));
      expect(ab.equals(ba)).to.equal(true);
    }
    expect(p384.reserve.ready).to.be.at.most(2);
  });
});
