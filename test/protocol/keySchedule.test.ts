import { expect } from 'chai';
import { crypto } from '../../lib/index.js';
import {
  computeVerifyData,
  deriveHandshakeKeys,
  deriveRekeyMaster,
  deriveResumptionMaster,
  deriveTrafficKeys,
} from '../../lib/protocol/keySchedule.js';
import { Label } from '../../lib/protocol/labels.js';
import { hex, loadFixture } from '../helpers/fixtures.js';
import * as testing from '../../lib/testing.js';

const V = loadFixture('protocol-vectors.json');
const A3 = V['A.3'];


/** A Secret holding exactly these bytes (test-only import). */
function secretOf(bytesHex: string): crypto.Secret {
  return testing.secretFromBytes(hex(bytesHex));
}

describe('key schedule (PROTOCOL.md §3.4, Appendix A.3)', () => {
  it('has the seven protocol labels and the POST label with the §4 bytes', () => {
    const table = V.labels.entries as Array<{ label: string; labelHex: string; length: number }>;
    const ours = Object.values(Label);
    expect(ours).to.have.length(8);
    for (const e of table) {
      expect(ours).to.include(e.label);
      expect(Buffer.from(e.label, 'ascii').toString('hex')).to.equal(e.labelHex);
      expect(e.label.length).to.equal(e.length);
    }
  });

  it('derives the handshake keys of A.3 and discards the IVs', () => {
    const m = secretOf(A3.handshakeKeys.masterHex);
    const keys = deriveHandshakeKeys(m);
    expect(testing.exportSecret(keys.initiatorToResponder).toString('hex')).to.equal(A3.handshakeKeys.initiatorKeyHex);
    expect(testing.exportSecret(keys.responderToInitiator).toString('hex')).to.equal(A3.handshakeKeys.responderKeyHex);
  });

  it('derives the traffic keys of A.3', () => {
    const keys = deriveTrafficKeys(secretOf(A3.trafficKeys.masterHex));
    expect(testing.exportSecret(keys.initiatorToResponder).toString('hex')).to.equal(A3.trafficKeys.initiatorToResponderKeyHex);
    expect(testing.exportSecret(keys.responderToInitiator).toString('hex')).to.equal(A3.trafficKeys.responderToInitiatorKeyHex);
  });

  it('derives the resumption master of A.3', () => {
    const r = A3.resumptionMaster;
    const out = deriveResumptionMaster(secretOf(r.pskHex), secretOf(r.freshHex));
    expect(testing.exportSecret(out).toString('hex')).to.equal(r.outputHex);
  });

  it('derives all three rekey ratchet vectors of A.3 (32-byte, 4-byte and ASCII second inputs)', () => {
    expect(A3.rekeyRatchet).to.have.length(3);
    for (const r of A3.rekeyRatchet) {
      const second = r.freshHex.length === 64 ? secretOf(r.freshHex) : hex(r.freshHex);
      const out = deriveRekeyMaster(secretOf(r.currentMasterHex), second);
      expect(testing.exportSecret(out).toString('hex')).to.equal(r.outputHex);
    }
  });

  it('computes the client verify_data of A.3', () => {
    const v = A3.verifyData[0];
    expect(computeVerifyData('client', secretOf(v.masterHex), hex(v.transcriptHex)).toString('hex')).to.equal(v.outputHex);
  });

  it('refuses a master secret that is not 32 bytes', () => {
    expect(() => deriveTrafficKeys(secretOf('00'.repeat(31)))).to.throw().with.property('code', 'ERR_QT_INVALID_KEY');
    expect(() => deriveHandshakeKeys(hex('00'.repeat(32)) as never)).to.throw().with.property('code', 'ERR_QT_INVALID_KEY');
  });
});
