import { expect } from 'chai';
import { crypto, QuantumTunnelError } from '../../lib/index.js';
import { hex, loadFixture, sha256Hex } from '../helpers/fixtures.js';
import * as testing from '../../lib/testing.js';

const V = loadFixture('protocol-vectors.json');
const A5 = V['A.5'].fullHandshake;
const A7 = V['A.7'].responderHandshake;
const { chkem } = crypto;

function initiatorKeyPair(): crypto.chkem.ChKemKeyPair {
  return testing.chkemKeyPairFromBytes(hex(A5.inputs.initiator.x25519PrivateKeyHex), hex(A5.inputs.initiator.mlkemSeedHex));
}

describe('CH-KEM (PROTOCOL.md §5, Appendix A.5 and A.7)', () => {
  it('builds the A.5 initiator public key: x25519_pub || mlkem_ek, 1600 bytes', () => {
    const kp = initiatorKeyPair();
    expect(kp.publicKey).to.have.length(chkem.CHKEM_SIZES.publicKey).and.to.have.length(1600);
    expect(kp.publicKey.subarray(0, 32).toString('hex')).to.equal(A5.inputs.initiator.x25519PublicKeyHex);
    expect(sha256Hex(kp.publicKey.subarray(32))).to.equal(A5.inputs.initiator.mlkemEncapsulationKeySha256Hex);
    expect(sha256Hex(kp.publicKey)).to.equal(A5.inputs.initiator.chkemPublicKeySha256Hex);
    kp.destroy();
  });

  it('decapsulates the A.5 responder ciphertext to the A.5 master secret', () => {
    const kp = initiatorKeyPair();
    const ct = Buffer.concat([hex(A5.inputs.responder.ephemeralX25519PublicKeyHex), hex(A5.inputs.responder.mlkemCiphertextHex)]);
    expect(ct).to.have.length(chkem.CHKEM_SIZES.ciphertext);
    // The halves, checked one by one before the combiner:
    const kM = crypto.mlkem1024.decapsulate(kp.mlkemPrivateKey, ct.subarray(32));
    expect(testing.exportSecret(kM).toString('hex')).to.equal(A5.mlkemSharedSecretHex);
    const kX = crypto.x25519.deriveSharedSecret(kp.x25519PrivateKey, ct.subarray(0, 32));
    expect(testing.exportSecret(kX).toString('hex')).to.equal(A5.x25519SharedSecretHex);
    const t = crypto.transcriptHash([kp.publicKey.subarray(0, 32), kp.publicKey.subarray(32), ct.subarray(0, 32), ct.subarray(32)]);
    expect(t.toString('hex')).to.equal(A5.chkemTranscriptHashHex);
    const master = chkem.decapsulate(kp, ct);
    expect(testing.exportSecret(master).toString('hex')).to.equal(A5.masterHex);
  });

  it('encapsulates like the A.7 responder (fixed ephemeral key and coins m) and the initiator agrees', () => {
    const kp = initiatorKeyPair();
    const r = A7.inputs.responder;
    const enc = testing.chkemEncapsulateDeterministic(kp.publicKey, hex(r.ephemeralX25519PrivateKeyHex), hex(r.mlkemEncapsCoinsHex));
    expect(enc.ciphertext.subarray(0, 32).toString('hex')).to.equal(r.ephemeralX25519PublicKeyHex);
    const ctM = enc.ciphertext.subarray(32);
    expect(ctM).to.have.length(A7.mlkemCiphertext.length);
    expect(ctM.subarray(0, 32).toString('hex')).to.equal(A7.mlkemCiphertext.prefixHex);
    expect(sha256Hex(ctM)).to.equal(A7.mlkemCiphertext.sha256Hex);
    expect(testing.exportSecret(enc.sharedSecret).toString('hex')).to.equal(A7.masterHex);
    const back = chkem.decapsulate(kp, enc.ciphertext);
    expect(crypto.timingSafeEqual(back, enc.sharedSecret)).to.equal(true);
  });

  it('round-trips with fresh keys, sync and async, and every run gives a new secret', async () => {
    const kp = chkem.generateKeyPair();
    const a = chkem.encapsulate(kp.publicKey);
    expect(crypto.timingSafeEqual(chkem.decapsulate(kp, a.ciphertext), a.sharedSecret)).to.equal(true);
    const kp2 = await chkem.generateKeyPairAsync();
    const b = await chkem.encapsulateAsync(kp2.publicKey);
    const back = await chkem.decapsulateAsync(kp2, b.ciphertext);
    expect(crypto.timingSafeEqual(back, b.sharedSecret)).to.equal(true);
    expect(crypto.timingSafeEqual(a.sharedSecret, b.sharedSecret)).to.equal(false);
  });

  it('gives a different secret, not an error, for a tampered ML-KEM ciphertext (implicit rejection)', () => {
    const kp = chkem.generateKeyPair();
    const enc = chkem.encapsulate(kp.publicKey);
    const tampered = Buffer.from(enc.ciphertext);
    tampered[100]! ^= 0x01;
    const k = chkem.decapsulate(kp, tampered);
    expect(k.length).to.equal(32);
    expect(crypto.timingSafeEqual(k, enc.sharedSecret)).to.equal(false);
  });

  it('refuses a public key whose ML-KEM half fails the FIPS 203 modulus check', () => {
    const kp = chkem.generateKeyPair();
    const bad = Buffer.from(kp.publicKey);
    bad[32] = 0xff; // first 12-bit coefficient becomes >= q (3329)
    bad[33] = bad[33]! | 0x0f;
    expect(chkem.isValidPublicKey(bad)).to.equal(false);
    expect(chkem.isValidPublicKey(kp.publicKey)).to.equal(true);
    expect(() => chkem.encapsulate(bad)).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_INVALID_KEY');
  });

  it('refuses a low-order X25519 public key (all-zero shared secret) with a typed error', () => {
    const kp = chkem.generateKeyPair();
    const bad = Buffer.from(kp.publicKey);
    bad.fill(0, 0, 32);
    expect(() => chkem.encapsulate(bad)).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_X25519_LOW_ORDER_POINT');
    const enc = chkem.encapsulate(kp.publicKey);
    const badCt = Buffer.from(enc.ciphertext);
    badCt.fill(0, 0, 32);
    expect(() => chkem.decapsulate(kp, badCt)).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_X25519_LOW_ORDER_POINT');
  });

  it('checks sizes of keys and ciphertexts', () => {
    const kp = chkem.generateKeyPair();
    for (const n of [0, 1599, 1601]) {
      expect(() => chkem.encapsulate(Buffer.alloc(n))).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_INVALID_ARGUMENT');
      expect(() => chkem.decapsulate(kp, Buffer.alloc(n))).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_INVALID_ARGUMENT');
    }
    expect(() => chkem.decapsulate({} as never, Buffer.alloc(1600))).to.throw(QuantumTunnelError);
  });

  it('fails with ERR_QT_HANDLE_DESTROYED after the key pair is destroyed', () => {
    const kp = chkem.generateKeyPair();
    const enc = chkem.encapsulate(kp.publicKey);
    kp.destroy();
    kp.destroy();
    expect(kp.destroyed).to.equal(true);
    expect(() => chkem.decapsulate(kp, enc.ciphertext)).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_HANDLE_DESTROYED');
  });
});
