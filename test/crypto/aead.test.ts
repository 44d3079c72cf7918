import { expect } from 'chai';
import { crypto, QuantumTunnelError } from '../../lib/index.js';
import { hex, loadFixture } from '../helpers/fixtures.js';
import * as testing from '../../lib/testing.js';

const GCM = loadFixture('aes-256-gcm.json');
const CHACHA = loadFixture('rfc8439.json');
const PV = loadFixture('protocol-vectors.json');
const { AeadSuite, AEAD_SIZES, createAead, seal, open } = crypto;

interface Case { name: string; key: string; iv: string; pt: string; aad: string; ct: string; tag: string; valid: boolean }

function contextFor(suite: number, keyHex: string): crypto.AeadContext {
  return createAead(suite as crypto.AeadSuiteId, testing.secretFromBytes(hex(keyHex)));
}

function runVectors(suite: number, cases: Case[]): void {
  for (const c of cases) {
    const ctx = contextFor(suite, c.key);
    if (c.valid) {
      const sealed = seal(ctx, hex(c.iv), hex(c.aad), hex(c.pt));
      expect(sealed.toString('hex'), c.name).to.equal(c.ct + c.tag);
      expect(open(ctx, hex(c.iv), hex(c.aad), sealed).toString('hex'), c.name).to.equal(c.pt);
    } else {
      expect(() => open(ctx, hex(c.iv), hex(c.aad), hex(c.ct + c.tag)), c.name)
        .to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_AUTHENTICATION_FAILED');
    }
  }
}

describe('AES-256-GCM (SP 800-38D / GCM spec / NIST CAVP)', () => {
  it('seals and opens every valid case and refuses every invalid one', () => {
    const cases: Case[] = GCM.cases;
    expect(cases.filter((c) => c.valid).length).to.be.greaterThanOrEqual(6);
    expect(cases.filter((c) => !c.valid).length).to.be.greaterThanOrEqual(1);
    runVectors(AeadSuite.AES_256_GCM, cases);
  });

  it('reproduces the PROTOCOL.md A.1 POST and NIST cases', () => {
    for (const c of PV['A.1'].aes256gcm) {
      const ctx = contextFor(AeadSuite.AES_256_GCM, c.keyHex);
      expect(seal(ctx, hex(c.nonceHex), hex(c.aadHex), hex(c.plaintextHex)).toString('hex')).to.equal(c.ciphertextAndTagHex);
    }
  });
});

describe('ChaCha20-Poly1305 (RFC 8439)', () => {
  it('seals the §2.8.2 example and opens the Appendix A.5 vector', function () {
    if (!crypto.info().chacha20.available) this.skip(); // FIPS profile: compiled out
    expect(CHACHA.cases.length).to.be.greaterThanOrEqual(2);
    runVectors(AeadSuite.CHACHA20_POLY1305, CHACHA.cases);
  });
});

describe('AEAD records of PROTOCOL.md Appendix A.5 and A.7', () => {
  // Data record: 10 || BE32(8 + A) || BE64(seq) || nonce(12) || ciphertext || tag(16); AD = BE64(seq).
  const recordCases = [
    ...PV['A.5'].fullHandshake.dataRecords.map((r: object) => ({ ...r, keys: PV['A.5'].fullHandshake.trafficKeys })),
    ...PV['A.7'].responderHandshake.dataRecords.map((r: object) => ({ ...r, keys: PV['A.7'].responderHandshake.trafficKeys })),
  ];
  it('rebuilds every data record byte for byte (both suites, both directions)', function () {
    expect(recordCases).to.have.length(5);
    for (const r of recordCases) {
      if (r.cipherSuite === AeadSuite.CHACHA20_POLY1305 && !crypto.info().chacha20.available) continue;
      const keyHex = r.direction === 'initiatorToResponder' ? r.keys.initiatorToResponderKeyHex : r.keys.responderToInitiatorKeyHex;
      const ctx = contextFor(r.cipherSuite, keyHex);
      const pt = hex(r.plaintextHex);
      const record = Buffer.alloc(41 + pt.length);
      record[0] = 0x10;
      record.writeUInt32BE(8 + 28 + pt.length, 1);
      record.writeBigUInt64BE(BigInt(r.seq), 5);
      // nonce = 0^4 || BE64(counter): the first record of a key has counter 0.
      ctx.seal(record, 25, record.subarray(13, 25), record.subarray(5, 13), pt);
      expect(record.toString('hex')).to.equal(r.recordHex);
    }
  });

  it('opens the Finished records of A.5 with the handshake keys (nonce 0^12, empty AD)', () => {
    const hs = PV['A.5'].fullHandshake;
    for (const [recHex, keyHex, type, vd] of [
      [hs.clientFinishedRecordHex, hs.handshakeKeys.initiatorKeyHex, 0x03, hs.clientVerifyDataHex],
      [hs.serverFinishedRecordHex, hs.handshakeKeys.responderKeyHex, 0x04, hs.serverVerifyDataHex],
    ]) {
      const rec = hex(recHex);
      expect(rec.readUInt32BE(0)).to.equal(65);
      const pt = open(contextFor(AeadSuite.AES_256_GCM, keyHex), rec.subarray(4, 16), Buffer.alloc(0), rec.subarray(16));
      expect(pt.toString('hex')).to.equal(Buffer.from([type, 0, 0, 0, 32]).toString('hex') + vd);
    }
  });

  it('seals the A.4 ticket (AES-256-GCM, zero nonce) byte for byte', () => {
    const t = PV['A.4'].ticket;
    const ctx = contextFor(AeadSuite.AES_256_GCM, t.ticketKeyHex);
    const sealed = seal(ctx, Buffer.alloc(12), Buffer.alloc(0), hex(t.plaintextHex));
    expect(Buffer.concat([Buffer.alloc(12), sealed]).toString('hex')).to.equal(t.ticketHex);
  });
});

describe('AEAD contexts: reuse, batches and failures', () => {
  const suites = [AeadSuite.AES_256_GCM, AeadSuite.CHACHA20_POLY1305].filter(
    (s) => s === AeadSuite.AES_256_GCM || crypto.info().chacha20.available,
  );
  for (const suite of suites) {
    const name = suite === AeadSuite.AES_256_GCM ? 'AES-256-GCM' : 'ChaCha20-Poly1305';
    const nonce = (i: number) => { const n = Buffer.alloc(12); n.writeBigUInt64BE(BigInt(i), 4); return n; };

    it(`${name}: one context seals and opens many messages with different nonces`, () => {
      const ctx = createAead(suite, crypto.randomSecret(32));
      for (let i = 0; i < 100; i++) {
        const pt = crypto.randomBytes(i * 7);
        expect(open(ctx, nonce(i), Buffer.from([i]), seal(ctx, nonce(i), Buffer.from([i]), pt)).equals(pt)).to.equal(true);
      }
    });

    it(`${name}: any flipped bit in ciphertext, tag, nonce or AD fails and wipes the output`, () => {
      const ctx = createAead(suite, crypto.randomSecret(32));
      const pt = Buffer.from('attack at dawn, attack at dawn!!');
      const aad = Buffer.from('hdr');
      const sealed = seal(ctx, nonce(1), aad, pt);
      const tries: Array<[Buffer, Buffer, Buffer]> = [];
      for (const i of [0, pt.length - 1, pt.length, sealed.length - 1]) {
        const t = Buffer.from(sealed); t[i]! ^= 1; tries.push([nonce(1), aad, t]);
      }
      tries.push([nonce(2), aad, sealed], [nonce(1), Buffer.from('hdR'), sealed], [nonce(1), aad, sealed.subarray(0, 15)]);
      for (const [n, a, s] of tries) {
        const out = Buffer.alloc(64, 0xee);
        expect(() => ctx.open(out, 0, n, a, s)).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_AUTHENTICATION_FAILED');
        if (s.length >= 16) expect(out.subarray(0, s.length - 16).every((b) => b === 0)).to.equal(true);
      }
    });

    it(`${name}: sealBatch equals one seal per record, and openBatch flags only the forged record`, () => {
      const ctx = createAead(suite, crypto.randomSecret(32));
      const n = 64, size = 1024, W = AEAD_SIZES.batchRowWords;
      const src = crypto.randomBytes(n * size);
      const frame = 5 + 8 + 12 + size + 16; // header, seq (AD), nonce, ct, tag
      const dst = Buffer.alloc(n * frame);
      const table = new Uint32Array(n * W);
      for (let i = 0; i < n; i++) {
        const base = i * frame;
        dst.writeBigUInt64BE(BigInt(i), base + 5);
        nonce(i).copy(dst, base + 13);
        table.set([i * size, size, base + 25, base + 13, base + 5, 8], i * W);
      }
      expect(ctx.sealBatch(src, dst, table, n)).to.equal(n * (size + 16));
      for (const i of [0, 17, 63]) {
        const single = seal(ctx, nonce(i), dst.subarray(i * frame + 5, i * frame + 13), src.subarray(i * size, (i + 1) * size));
        expect(dst.subarray(i * frame + 25, (i + 1) * frame).equals(single)).to.equal(true);
      }
      dst[17 * frame + 30]! ^= 0x80;
      const openTable = new Uint32Array(n * W);
      for (let i = 0; i < n; i++) openTable.set([i * frame + 25, size + 16, i * size, i * frame + 13, i * frame + 5, 8], i * W);
      const out = Buffer.alloc(n * size);
      const results = new Int32Array(n);
      expect(ctx.openBatch(dst, out, openTable, n, results)).to.equal(1);
      expect(results[17]).to.equal(-1);
      expect(Array.from(results).filter((r) => r === size)).to.have.length(n - 1);
      expect(out.subarray(0, 17 * size).equals(src.subarray(0, 17 * size))).to.equal(true);
      expect(out.subarray(17 * size, 18 * size).every((b) => b === 0)).to.equal(true);
    });

    it(`${name}: batch rows out of bounds or overlapping their input are typed errors, not crashes`, () => {
      const ctx = createAead(suite, crypto.randomSecret(32));
      const src = Buffer.alloc(64), dst = Buffer.alloc(128);
      const bad = (row: number[], fn = 'sealBatch') =>
        expect(() => (fn === 'sealBatch'
          ? ctx.sealBatch(src, dst, Uint32Array.from(row), 1)
          : ctx.openBatch(src, dst, Uint32Array.from(row), 1, new Int32Array(1))))
          .to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_INVALID_ARGUMENT');
      bad([0, 65, 0, 100, 112, 8]);
      bad([0, 64, 100, 0, 8, 8]);
      bad([0, 16, 0, 126, 0, 0]);
      bad([0, 16, 0, 0xffffffff, 0, 0]);
      bad([0, 16, 40, 0, 0, 0xfffffff0]);
      bad([0, 32, 8, 0, 0, 0]);
      bad([60, 32, 0, 0, 0, 0], 'openBatch');
      expect(() => ctx.sealBatch(src, dst, new Uint32Array(6), 2)).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_INVALID_ARGUMENT');
      expect(() => ctx.sealBatch(src, dst, new Uint8Array(6) as never, 1)).to.throw(QuantumTunnelError);
      expect(() => ctx.seal(Buffer.alloc(10), 0, nonce(0), Buffer.alloc(0), Buffer.alloc(8))).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_INVALID_ARGUMENT');
    });

    it(`${name}: seal in place (plaintext and output the same bytes) works`, () => {
      const ctx = createAead(suite, crypto.randomSecret(32));
      const buf = Buffer.alloc(48);
      const pt = crypto.randomBytes(32);
      pt.copy(buf);
      ctx.seal(buf, 0, nonce(3), Buffer.alloc(0), buf.subarray(0, 32));
      expect(open(ctx, nonce(3), Buffer.alloc(0), buf).equals(pt)).to.equal(true);
    });
  }

  it('rejects bad keys, suites and nonces, and use after destroy, with typed errors', () => {
    const code = (fn: () => unknown, c: string) => expect(fn).to.throw(QuantumTunnelError).with.property('code', c);
    code(() => createAead(AeadSuite.AES_256_GCM, crypto.randomSecret(16)), 'ERR_QT_INVALID_KEY');
    code(() => createAead(3 as never, crypto.randomSecret(32)), 'ERR_QT_INVALID_ARGUMENT');
    const ctx = createAead(AeadSuite.AES_256_GCM, crypto.randomSecret(32));
    code(() => seal(ctx, Buffer.alloc(11), Buffer.alloc(0), Buffer.alloc(1)), 'ERR_QT_INVALID_ARGUMENT');
    ctx.destroy();
    ctx.destroy();
    expect(ctx.destroyed).to.equal(true);
    code(() => seal(ctx, Buffer.alloc(12), Buffer.alloc(0), Buffer.alloc(1)), 'ERR_QT_HANDLE_DESTROYED');
  });

  it('keeps working after its key handle is destroyed (the context holds its own key schedule)', () => {
    const key = crypto.randomSecret(32);
    const ctx = createAead(AeadSuite.AES_256_GCM, key);
    key.destroy();
    const n = Buffer.alloc(12);
    expect(open(ctx, n, Buffer.alloc(0), seal(ctx, n, Buffer.alloc(0), Buffer.from('x'))).toString()).to.equal('x');
  });
});

describe('AEAD with secret plaintext parts (tickets)', () => {
  it('sealParts seals public and secret parts as their concatenation; openWithSecret moves the secret range into a handle', () => {
    const ctx = createAead(AeadSuite.AES_256_GCM, crypto.randomSecret(32));
    const master = testing.secretFromBytes(Buffer.alloc(32, 0x42));
    const head = Buffer.from([1, 0, 1]);
    const tail = Buffer.from('000000006553f100', 'hex');
    const nonce = crypto.randomBytes(12);
    const sealed = ctx.sealParts(nonce, Buffer.from('ad'), [head, master, tail]);
    expect(sealed.equals(seal(ctx, nonce, Buffer.from('ad'), Buffer.concat([head, Buffer.alloc(32, 0x42), tail])))).to.equal(true);
    const { plaintext, secret } = ctx.openWithSecret(nonce, Buffer.from('ad'), sealed, 3, 32);
    expect(plaintext.toString('hex')).to.equal('010001' + '00'.repeat(32) + '000000006553f100');
    expect(crypto.timingSafeEqual(secret, master)).to.equal(true);
    const bad = Buffer.from(sealed); bad[5]! ^= 1;
    expect(() => ctx.openWithSecret(nonce, Buffer.from('ad'), bad, 3, 32)).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_AUTHENTICATION_FAILED');
    expect(() => ctx.openWithSecret(nonce, Buffer.from('ad'), sealed, 30, 32)).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_AUTHENTICATION_FAILED');
    expect(() => ctx.sealParts(nonce, Buffer.alloc(0), [5] as never)).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_INVALID_ARGUMENT');
  });
});
