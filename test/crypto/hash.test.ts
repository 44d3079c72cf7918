import { expect } from 'chai';
import { crypto, QuantumTunnelError } from '../../lib/index.js';
import { hex, loadFixture } from '../helpers/fixtures.js';
import * as testing from '../../lib/testing.js';

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
