import { expect } from 'chai';
import { crypto, QuantumTunnelError } from '../../lib/index.js';
import { hex, loadFixture } from '../helpers/fixtures.js';
import * as testing from '../../lib/testing.js';

const V = loadFixture('rfc7748.json');
const { x25519 } = crypto;

/** X25519(k, u) as bytes, through the handle API (test-only import/export at the edges). */
function scalarMult(k: Uint8Array, u: Uint8Array): Buffer {
  const key = testing.x25519PrivateKeyFromBytes(k);
  try {
    return testing.exportSecret(x25519.deriveSharedSecret(key, u));
  } finally {
    key.destroy();
  }
}

describe('X25519 (RFC 7748)', () => {
  it('computes the §5.2 test vectors', () => {
    expect(V.x25519).to.have.length(2);
    for (const c of V.x25519) expect(scalarMult(hex(c.scalar), hex(c.u)).toString('hex'), c.name).to.equal(c.output);
  });

  it('computes the §5.2 iterated vector after 1 and 1,000 iterations', () => {
    let k = hex(V.iterated.start);
    let u = hex(V.iterated.start);
    const want = new Map<number, string>(V.iterated.results.map((r: { iterations: number; k: string }) => [r.iterations, r.k]));
    expect(want.has(1) && want.has(1000)).to.equal(true);
    for (let i = 1; i <= 1000; i++) {
      const r = scalarMult(k, u);
      u = k;
      k = r;
      if (want.has(i)) expect(k.toString('hex'), `after ${i}`).to.equal(want.get(i));
    }
  });

  it('performs the §6.1 Diffie-Hellman exchange (public keys and shared secret)', () => {
    const alice = testing.x25519PrivateKeyFromBytes(hex(V.dh.alicePrivate));
    const bob = testing.x25519PrivateKeyFromBytes(hex(V.dh.bobPrivate));
    expect(x25519.publicKeyOf(alice).toString('hex')).to.equal(V.dh.alicePublic);
    expect(x25519.publicKeyOf(bob).toString('hex')).to.equal(V.dh.bobPublic);
    const ab = x25519.deriveSharedSecret(alice, hex(V.dh.bobPublic));
    const ba = x25519.deriveSharedSecret(bob, hex(V.dh.alicePublic));
    expect(testing.exportSecret(ab).toString('hex')).to.equal(V.dh.shared);
    expect(crypto.timingSafeEqual(ab, ba)).to.equal(true);
  });

  it('rejects every low-order point (all-zero shared secret) with ERR_QT_X25519_LOW_ORDER_POINT', () => {
    const points: string[] = V.lowOrderPoints.points.map((p: { u: string }) => p.u);
    expect(points.length).to.be.greaterThanOrEqual(5);
    const { privateKey } = x25519.generateKeyPair();
    let rejected = 0;
    for (const p of points) {
      try {
        x25519.deriveSharedSecret(privateKey, hex(p));
      } catch (err) {
        expect(err).to.be.instanceOf(QuantumTunnelError).with.property('code', 'ERR_QT_X25519_LOW_ORDER_POINT');
        rejected++;
      }
    }
    // Small-order points give zero for every scalar; p-1, p and p+1 encode small-order points too.
    expect(rejected).to.equal(points.length);
  });

  it('accepts any 32 bytes as a peer key, high bit included (as the reference does)', () => {
    const { privateKey } = x25519.generateKeyPair();
    const peer = x25519.generateKeyPair().publicKey;
    const high = Buffer.from(peer);
    high[31]! |= 0x80;
    // RFC 7748 masks the top bit, so both encodings give the same secret.
    expect(crypto.timingSafeEqual(x25519.deriveSharedSecret(privateKey, peer), x25519.deriveSharedSecret(privateKey, high))).to.equal(true);
  });

  it('rejects wrong sizes with typed errors', () => {
    const { privateKey } = x25519.generateKeyPair();
    for (const n of [0, 31, 33]) {
      expect(() => x25519.deriveSharedSecret(privateKey, Buffer.alloc(n, 9))).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_INVALID_ARGUMENT');
      expect(() => testing.x25519PrivateKeyFromBytes(Buffer.alloc(n))).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_INVALID_ARGUMENT');
    }
  });

  it('generates distinct key pairs', () => {
    const a = x25519.generateKeyPair();
    const b = x25519.generateKeyPair();
    expect(a.publicKey).to.have.length(32);
    expect(a.publicKey.equals(b.publicKey)).to.equal(false);
  });
});
