/** Argument checks of the crypto layer and the suite registry that the wider tests never trip. */
import { expect } from 'chai';
import { crypto, ErrorCode } from '../../lib/index.js';
import { deriveKey } from '../../lib/crypto/kdf.js';
import { isPrivateKey } from '../../lib/crypto/secret.js';
import { CipherSuite } from '../../lib/protocol/constants.js';
import { cipherSuiteByOption } from '../../lib/protocol/suites.js';
import { expectCode } from '../helpers/buffers.js';

describe('crypto argument checks', () => {
  it('DeriveKey labels are strings or bytes (the same bytes either way); anything else is INVALID_ARGUMENT', () => {
    const input = Buffer.from('input');
    expect(deriveKey(Buffer.from('label'), input, 16).equals(deriveKey('label', input, 16))).to.equal(true);
    expectCode(() => deriveKey(42 as unknown as string, input, 16), ErrorCode.INVALID_ARGUMENT);
  });

  it('isPrivateKey tells private key handles from secrets and bytes', () => {
    const { privateKey } = crypto.x25519.generateKeyPair();
    const secret = crypto.randomSecret(32);
    try {
      expect(isPrivateKey(privateKey)).to.equal(true);
      expect(isPrivateKey(secret)).to.equal(false);
      expect(isPrivateKey(Buffer.alloc(32))).to.equal(false);
    } finally {
      privateKey.destroy();
      secret.destroy();
    }
  });

  it('cipherSuiteByOption finds suites by option name only', () => {
    expect(cipherSuiteByOption('aes-256-gcm')?.id).to.equal(CipherSuite.AES_256_GCM);
    expect(cipherSuiteByOption('AES-256-GCM')).to.equal(undefined);
  });
});
