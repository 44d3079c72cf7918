import { expect } from 'chai';
import { crypto, QuantumTunnelError } from '../../lib/index.js';
import { hex, loadFixture, sha256Hex } from '../helpers/fixtures.js';
import * as testing from '../../lib/testing.js';

const KEYGEN = loadFixture('acvp/mlkem-keygen.json');
const ENCDEC = loadFixture('acvp/mlkem-encapdecap.json');
const PV = loadFixture('protocol-vectors.json');


for (const kem of [crypto.mlkem1024, crypto.mlkem768]) {
  describe(`${kem.name} (FIPS 203, NIST ACVP vectors)`, () => {
    it('has the FIPS 203 sizes, read from the addon', () => {
      const expected = kem.name === 'ML-KEM-1024'
        ? { publicKey: 1568, privateKey: 3168, ciphertext: 1568 }
        : { publicKey: 1184, privateKey: 2400, ciphertext: 1088 };
      expect(kem.sizes).to.include({ ...expected, sharedSecret: 32, seed: 64, encapsulationCoins: 32 });
    });

    it('keyGen: every ACVP (d, z) gives the expected ek and dk', () => {
      const cases = KEYGEN[kem.name];
      expect(cases.length).to.be.greaterThanOrEqual(25);
      for (const c of cases) {
        const kp = kem.generateKeyPair(Buffer.concat([hex(c.d), hex(c.z)]));
        expect(kp.publicKey.toString('hex'), `tcId ${c.tcId}`).to.equal(c.ek.toLowerCase());
        expect(testing.exportPrivateKey(kp.privateKey).toString('hex'), `tcId ${c.tcId}`).to.equal(c.dk.toLowerCase());
        kp.privateKey.destroy();
      }
    });

    it('encapsulation: every ACVP (ek, m) gives the expected c and k', () => {
      const cases = ENCDEC[kem.name].encapsulation;
      expect(cases.length).to.be.greaterThanOrEqual(25);
      for (const c of cases) {
        const enc = kem.encapsulate(hex(c.ek), hex(c.m));
        expect(enc.ciphertext.toString('hex'), `tcId ${c.tcId}`).to.equal(c.c.toLowerCase());
        expect(testing.exportSecret(enc.sharedSecret).toString('hex'), `tcId ${c.tcId}`).to.equal(c.k.toLowerCase());
      }
    });

    it('decapsulation: every ACVP (dk, c) gives the expected k, including implicit-rejection cases', () => {
      const cases = ENCDEC[kem.name].decapsulation;
      expect(cases.length).to.be.greaterThanOrEqual(10);
      for (const c of cases) {
        const dk = testing.mlkemPrivateKeyFromBytes(kem, hex(c.dk));
        const k = kem.decapsulate(dk, hex(c.c));
        expect(testing.exportSecret(k).toString('hex'), `tcId ${c.tcId}`).to.equal(c.k.toLowerCase());
      }
    });

    it('async keygen, encapsulation and decapsulation agree with each other', async () => {
      const kp = await kem.generateKeyPairAsync();
      const enc = await kem.encapsulateAsync(kp.publicKey);
      const k = await kem.decapsulateAsync(kp.privateKey, enc.ciphertext);
      expect(crypto.timingSafeEqual(k, enc.sharedSecret)).to.equal(true);
      expect(kem.publicKeyOf(kp.privateKey).equals(kp.publicKey)).to.equal(true);
    });

    it('imports an encapsulation key once (checked) and encapsulates to the handle, sync and async', async () => {
      const kp = kem.generateKeyPair();
      const pk = kem.importPublicKey(kp.publicKey);
      expect(pk.algorithm).to.equal(kem.name);
      const a = kem.encapsulate(pk);
      const b = await kem.encapsulateAsync(pk);
      expect(crypto.timingSafeEqual(kem.decapsulate(kp.privateKey, a.ciphertext), a.sharedSecret)).to.equal(true);
      expect(crypto.timingSafeEqual(kem.decapsulate(kp.privateKey, b.ciphertext), b.sharedSecret)).to.equal(true);
      const vector = ENCDEC[kem.name].encapsulation[0];
      const fixed = kem.encapsulate(kem.importPublicKey(hex(vector.ek)), hex(vector.m));
      expect(fixed.ciphertext.toString('hex')).to.equal(vector.c.toLowerCase());
      pk.destroy();
      expect(() => kem.encapsulate(pk)).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_HANDLE_DESTROYED');
      const bad = Buffer.from(kp.publicKey);
      bad[0] = 0xff;
      bad[1] = bad[1]! | 0x0f;
      expect(() => kem.importPublicKey(bad)).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_INVALID_KEY');
    });

    it('applies the FIPS 203 modulus check to imported encapsulation keys', () => {
      const kp = kem.generateKeyPair();
      expect(kem.isValidPublicKey(kp.publicKey)).to.equal(true);
      const bad = Buffer.from(kp.publicKey);
      bad[0] = 0xff; // coefficient 0 = 0xfff > q
      bad[1] = bad[1]! | 0x0f;
      expect(kem.isValidPublicKey(bad)).to.equal(false);
      expect(() => kem.encapsulate(bad)).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_INVALID_KEY');
      expect(kem.isValidPublicKey(kp.publicKey.subarray(1))).to.equal(false);
    });

    it('rejects wrong sizes with typed errors (seed, coins, key, ciphertext)', () => {
      const kp = kem.generateKeyPair();
      const code = (fn: () => unknown) => expect(fn).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_INVALID_ARGUMENT');
      code(() => kem.generateKeyPair(Buffer.alloc(63)));
      code(() => kem.encapsulate(kp.publicKey, Buffer.alloc(31)));
      code(() => kem.encapsulate(kp.publicKey.subarray(0, 100)));
      code(() => kem.decapsulate(kp.privateKey, Buffer.alloc(kem.sizes.ciphertext - 1)));
      code(() => kem.decapsulate(kp.privateKey, 'x' as never));
      code(() => testing.mlkemPrivateKeyFromBytes(kem, Buffer.alloc(10)));
    });
  });
}

describe('ML-KEM-1024 in PROTOCOL.md Appendix A.1', () => {
  it('derives the POST encapsulation key from the POST seed', () => {
    const v = PV['A.1'].mlkemKeygen;
    const kp = crypto.mlkem1024.generateKeyPair(hex(v.seedHex));
    expect(kp.publicKey.subarray(0, 16).toString('hex')).to.equal(v.encapsulationKeyPrefixHex);
    expect(sha256Hex(kp.publicKey)).to.equal(v.encapsulationKeySha256Hex);
  });
});
