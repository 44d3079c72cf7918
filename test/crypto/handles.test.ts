import { expect } from 'chai';
import { crypto, QuantumTunnelError } from '../../lib/index.js';
import * as testing from '../../lib/testing.js';



describe('secret handles and their lifecycle', () => {
  it('keeps secret bytes out of JS: a Secret exposes only its length', () => {
    const s = crypto.randomSecret(32);
    expect(s.length).to.equal(32);
    expect(Object.keys(s)).to.deep.equal([]);
    expect(JSON.stringify(s)).to.equal('{}');
    expect(String(Object.getOwnPropertyNames(Object.getPrototypeOf(s)).sort())).to.equal('clone,constructor,destroy,destroyed,length');
  });

  it('destroy() cleanses the bytes (observed through the test-only storage view) and is idempotent', () => {
    const s = testing.secretFromBytes(Buffer.alloc(32, 0xab));
    expect(testing.secretStorage(s).equals(Buffer.alloc(32, 0xab))).to.equal(true);
    s.destroy();
    expect(s.destroyed).to.equal(true);
    expect(testing.secretStorage(s).equals(Buffer.alloc(32))).to.equal(true);
    s.destroy();
    expect(s.destroyed).to.equal(true);
  });

  it('clone() copies into an independent handle', () => {
    const a = testing.secretFromBytes(Buffer.alloc(32, 5));
    const b = a.clone();
    a.destroy();
    expect(testing.exportSecret(b).equals(Buffer.alloc(32, 5))).to.equal(true);
    expect(() => a.clone()).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_HANDLE_DESTROYED');
  });

  it('use after destroy is a typed error everywhere a secret is consumed', () => {
    const s = crypto.randomSecret(32);
    s.destroy();
    const expectDestroyed = (fn: () => unknown) =>
      expect(fn).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_HANDLE_DESTROYED');
    expectDestroyed(() => crypto.deriveKey('x', s, 32));
    expectDestroyed(() => crypto.createAead(crypto.AeadSuite.AES_256_GCM, s));
    expectDestroyed(() => crypto.timingSafeEqual(s, Buffer.alloc(32)));
    expectDestroyed(() => testing.exportSecret(s));
  });

  it('private keys: destroy frees them, use after destroy is typed, double destroy is safe', () => {
    const kp = crypto.mlkem1024.generateKeyPair();
    const x = crypto.x25519.generateKeyPair();
    expect(kp.privateKey.algorithm).to.equal('ML-KEM-1024');
    expect(x.privateKey.algorithm).to.equal('X25519');
    kp.privateKey.destroy();
    kp.privateKey.destroy();
    x.privateKey.destroy();
    expect(() => crypto.mlkem1024.decapsulate(kp.privateKey, Buffer.alloc(1568))).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_HANDLE_DESTROYED');
    expect(() => crypto.x25519.deriveSharedSecret(x.privateKey, Buffer.alloc(32, 9))).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_HANDLE_DESTROYED');
    expect(() => testing.exportPrivateKey(kp.privateKey)).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_HANDLE_DESTROYED');
  });

  it('destroying a private key while an async decapsulation runs is safe (the job holds its own reference)', async () => {
    const kp = crypto.mlkem1024.generateKeyPair();
    const enc = crypto.mlkem1024.encapsulate(kp.publicKey);
    const pending = crypto.mlkem1024.decapsulateAsync(kp.privateKey, enc.ciphertext);
    kp.privateKey.destroy();
    const ss = await pending;
    expect(crypto.timingSafeEqual(ss, enc.sharedSecret)).to.equal(true);
  });

  it('refuses handles of the wrong kind and objects that only look like handles', () => {
    const x = crypto.x25519.generateKeyPair();
    const m = crypto.mlkem1024.generateKeyPair();
    const fake = { length: 32, destroyed: false, destroy() {} };
    expect(() => crypto.mlkem1024.decapsulate(x.privateKey, Buffer.alloc(1568))).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_INVALID_KEY');
    expect(() => crypto.x25519.deriveSharedSecret(m.privateKey, Buffer.alloc(32, 9))).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_INVALID_KEY');
    expect(() => crypto.deriveKey('x', fake as never, 32)).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_INVALID_ARGUMENT');
    expect(() => crypto.createAead(1, fake as never)).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_INVALID_ARGUMENT');
    expect(() => crypto.mlkem1024.decapsulate(x.privateKey.constructor as never, Buffer.alloc(1568))).to.throw(QuantumTunnelError);
  });

  it('cannot be constructed from JavaScript', () => {
    const SecretCtor = crypto.randomSecret(1).constructor as new (...a: unknown[]) => unknown;
    expect(() => new SecretCtor()).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_INVALID_ARGUMENT');
    expect(() => new SecretCtor(Buffer.alloc(32))).to.throw(QuantumTunnelError);
  });

  it('compares in constant time with clear semantics for unequal lengths', () => {
    const a = testing.secretFromBytes(Buffer.from('00112233', 'hex'));
    expect(crypto.timingSafeEqual(a, Buffer.from('00112233', 'hex'))).to.equal(true);
    expect(crypto.timingSafeEqual(a, Buffer.from('00112234', 'hex'))).to.equal(false);
    expect(crypto.timingSafeEqual(a, Buffer.from('001122', 'hex'))).to.equal(false);
  });

  it('survives garbage collection of many undestroyed handles (finalizers cleanse and free)', async () => {
    for (let i = 0; i < 2000; i++) {
      crypto.randomSecret(32);
      crypto.x25519.generateKeyPair();
    }
    const gc = (globalThis as { gc?: () => void }).gc;
    if (gc) gc();
    await new Promise((r) => setImmediate(r));
    expect(crypto.randomSecret(16).length).to.equal(16);
  });
});
