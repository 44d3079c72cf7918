/** crypto.importSecret: loaded key material (a PSK file, say) into native memory, the source wiped. */
import { expect } from 'chai';
import { crypto, ErrorCode, QuantumTunnelError } from '../../lib/index.js';
import * as testing from '../../lib/testing.js';

describe('crypto.importSecret', () => {
  it('copies the bytes into a Secret and zero-fills the source', () => {
    const key = Buffer.from('00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff', 'hex');
    const expected = Buffer.from(key);
    const secret = crypto.importSecret(key);
    expect(secret.length).to.equal(32);
    expect(key.equals(Buffer.alloc(32))).to.equal(true);
    expect(testing.exportSecret(secret).equals(expected)).to.equal(true);
    expect(crypto.timingSafeEqual(secret, expected)).to.equal(true);
    secret.destroy();
  });

  it('keeps the source with { wipe: false }', () => {
    const key = Buffer.alloc(48, 7);
    const secret = crypto.importSecret(key, { wipe: false });
    expect(key.equals(Buffer.alloc(48, 7))).to.equal(true);
    expect(testing.exportSecret(secret).equals(key)).to.equal(true);
    secret.destroy();
  });

  it('refuses an empty or oversized input, a non-byte array, a SharedArrayBuffer view and a detached buffer', () => {
    const detached = new Uint8Array(new ArrayBuffer(32));
    structuredClone(detached.buffer, { transfer: [detached.buffer] });
    for (const bad of [new Uint8Array(0), new Uint8Array(65537), 'key', [1, 2, 3], new Uint8Array(new SharedArrayBuffer(32)), detached]) {
      expect(() => crypto.importSecret(bad as Uint8Array)).to.throw(QuantumTunnelError).with.property('code', ErrorCode.INVALID_ARGUMENT);
    }
  });
});
