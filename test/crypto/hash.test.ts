import { expect } from 'chai';
import { crypto, QuantumTunnelError } from '../../lib/index.js';
import { hex, loadFixture } from '../helpers/fixtures.js';
import * as testing from '../../lib/testing.js';
import { sha256 } from '../../lib/crypto/hash.js';

const V = loadFixture('fips202.json');

describe('SHA3-256 and SHAKE-256 (FIPS 202)', () => {
  it('SHA3-256 matches every FIPS 202 / NIST example', () => {
    expect(V.sha3_256.length).to.be.greaterThanOrEqual(3);
    for (const c of V.sha3_256) expect(crypto.sha3_256(hex(c.msgHex)).toString('hex'), c.name).to.equal(c.mdHex);
  });

  it('SHAKE-256 matches every example, at every output length given', () => {
    expect(V.shake256.length).to.be.greaterThanOrEqual(3);
    for (const c of V.shake256) expect(crypto.shake256(hex(c.msgHex), c.outputLen).toString('hex'), c.name).to.equal(c.outHex);
  });

  it('hashes a list of parts as their concatenation, secrets included', () => {
    const msg = hex(V.sha3_256[1].msgHex);
    const cut = Math.floor(msg.length / 3);
    const parts = [msg.subarray(0, cut), testing.secretFromBytes(msg.subarray(cut, 2 * cut)), msg.subarray(2 * cut)];
    expect(crypto.sha3_256(parts).toString('hex')).to.equal(V.sha3_256[1].mdHex);
    expect(crypto.shake256(parts, 77).equals(crypto.shake256(msg, 77))).to.equal(true);
  });

  it('SHAKE-256 into secret handles splits one squeeze in order', () => {
    const msg = Buffer.from('split me');
    const whole = crypto.shake256(msg, 88);
    const [a, b, c] = crypto.shake256Secrets(msg, [32, 32, 24]);
    expect(Buffer.concat([a!, b!, c!].map((s) => testing.exportSecret(s))).equals(whole)).to.equal(true);
  });

  it('supports any output length, including 0 and long outputs', () => {
    expect(crypto.shake256(Buffer.alloc(0), 0)).to.have.length(0);
    const long = crypto.shake256(Buffer.from('x'), 1 << 20);
    expect(long).to.have.length(1 << 20);
    expect(long.subarray(0, 64).equals(crypto.shake256(Buffer.from('x'), 64))).to.equal(true);
  });

  it('rejects bad arguments with typed errors', () => {
    const bad = (fn: () => unknown) => expect(fn).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_INVALID_ARGUMENT');
    bad(() => crypto.shake256(Buffer.alloc(1), -1));
    bad(() => crypto.shake256(Buffer.alloc(1), crypto.MAX_SHAKE256_OUTPUT + 1));
    bad(() => crypto.shake256('abc' as never, 32));
    bad(() => crypto.sha3_256([Buffer.alloc(1), 5] as never));
    bad(() => crypto.shake256Secrets(Buffer.alloc(1), []));
    bad(() => crypto.shake256Secrets(Buffer.alloc(1), [0]));
  });
});

describe('SHA-256 (FIPS 180-4), for public-key fingerprints', () => {
  // FIPS 180-4 examples (NIST CSRC "SHA256.pdf"): "abc", the 448-bit message, and the empty string.
  it('known answers, and parts hash as their concatenation', () => {
    expect(sha256(Buffer.from('abc')).toString('hex')).to.equal('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(sha256(Buffer.from('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')).toString('hex')).to.equal('248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1');
    expect(sha256([]).toString('hex')).to.equal('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(sha256([Buffer.from('ab'), Buffer.from('c')]).equals(sha256(Buffer.from('abc')))).to.equal(true);
  });

  it('takes public bytes only: a Secret handle is refused', () => {
    const secret = crypto.randomSecret(32);
    expect(() => sha256([secret as unknown as Uint8Array])).to.throw().with.property('code', 'ERR_QT_INVALID_ARGUMENT');
    secret.destroy();
  });
});
