import { expect } from 'chai';
import { crypto, QuantumTunnelError } from '../../lib/index.js';
import { hex, loadFixture } from '../helpers/fixtures.js';
import * as testing from '../../lib/testing.js';

const V = loadFixture('protocol-vectors.json');
const { deriveKey, deriveKeyMultiple, deriveSecrets, deriveSecretsMultiple, transcriptHash } = crypto;

describe('KDF constructions (PROTOCOL.md §3, Appendix A.1-A.2)', () => {
  it('DeriveKey reproduces A.1 (POST KAT) and every A.2 vector', () => {
    const cases = [...V['A.1'].deriveKey, ...V['A.2'].deriveKey];
    expect(cases).to.have.length(6);
    for (const c of cases) {
      expect(deriveKey(c.label, hex(c.inputHex), c.length).toString('hex'), c.label).to.equal(c.outputHex);
    }
  });

  it('DeriveKey gives the same bytes when the input is a Secret handle, and can output handles', () => {
    for (const c of V['A.2'].deriveKey.filter((x: { inputHex: string }) => x.inputHex.length > 0)) {
      const input = testing.secretFromBytes(hex(c.inputHex));
      expect(deriveKey(c.label, input, c.length).toString('hex')).to.equal(c.outputHex);
      const [out] = deriveSecrets(c.label, input, [c.length]);
      expect(testing.exportSecret(out!).toString('hex')).to.equal(c.outputHex);
    }
  });

  it('SHAKE-256 output is a prefix-stable XOF: shorter output is a prefix of longer', () => {
    const long = deriveKey('test-domain', Buffer.alloc(32), 64);
    const short = deriveKey('test-domain', Buffer.alloc(32), 20);
    expect(long.subarray(0, 20).equals(short)).to.equal(true);
  });

  it('DeriveKeyMultiple reproduces A.2 (combiner and the 88-byte handshake-label case)', () => {
    for (const c of V['A.2'].deriveKeyMultiple) {
      const inputs = c.inputsHex.map(hex);
      expect(deriveKeyMultiple(c.label, inputs, c.length).toString('hex'), c.name).to.equal(c.outputHex);
      const sizes = c.length === 88 ? [32, 32, 24] : [32];
      const secrets = deriveSecretsMultiple(c.label, inputs, sizes);
      expect(Buffer.concat(secrets.map((s) => testing.exportSecret(s))).toString('hex')).to.equal(c.outputHex);
    }
  });

  it('DeriveKey and DeriveKeyMultiple differ for the same label and input (the count prefix)', () => {
    const input = hex('deadbeefcafebabe0123456789abcdef0123456789abcdef0123456789abcdef');
    expect(deriveKey('CH-KEM-VPN-Handshake', input, 32).equals(deriveKeyMultiple('CH-KEM-VPN-Handshake', [input], 32)))
      .to.equal(false);
  });

  it('TranscriptHash reproduces every A.2 vector, including zero components', () => {
    expect(V['A.2'].transcriptHash).to.have.length(4);
    for (const c of V['A.2'].transcriptHash) {
      expect(transcriptHash(c.componentsHex.map(hex)).toString('hex')).to.equal(c.outputHex);
    }
  });

  it('rejects output lengths outside 1..2^20 and non-byte inputs with typed errors', () => {
    for (const bad of [0, -1, 2 ** 20 + 1, 1.5, NaN]) {
      expect(() => deriveKey('x', Buffer.alloc(1), bad)).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_INVALID_ARGUMENT');
    }
    expect(deriveKey('x', Buffer.alloc(1), 2 ** 20)).to.have.length(2 ** 20);
    expect(() => deriveKey('x', 'string' as never, 32)).to.throw(QuantumTunnelError);
    expect(() => deriveKeyMultiple('x', [{}] as never, 32)).to.throw(QuantumTunnelError);
    expect(() => transcriptHash(['ab'] as never)).to.throw(QuantumTunnelError);
  });
});
