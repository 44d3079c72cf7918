import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crypto, QuantumTunnelError } from '../../lib/index.js';
import { addonPath, native } from '../../lib/native.js';
import { runChild } from '../helpers/child.js';
import { hex, loadFixture } from '../helpers/fixtures.js';
import * as testing from '../../lib/testing.js';

interface CdhCase {
  count: number;
  QCAVSx: string;
  QCAVSy: string;
  dIUT: string;
  QIUTx: string;
  QIUTy: string;
  ZIUT: string;
}

const V = loadFixture<{ curve: string; cases: CdhCase[] }>('p384-ecccdh.json');
const { p384 } = crypto;

/** The uncompressed SEC1 encoding of (x, y), hex in. */
const point = (x: string, y: string): Buffer => hex(`04${x}${y}`);

// P-384's field prime and curve coefficient b (y² = x³ - 3x + b), FIPS 186-4 D.1.2.4.
const P = 2n ** 384n - 2n ** 128n - 2n ** 96n + 2n ** 32n - 1n;
const B = 0xb3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aefn;

const be48 = (n: bigint): string => n.toString(16).padStart(96, '0');

function modPow(base: bigint, exp: bigint, m: bigint): bigint {
  let r = 1n;
  let b = base % m;
  for (let e = exp; e > 0n; e >>= 1n) {
    if (e & 1n) r = (r * b) % m;
    b = (b * b) % m;
  }
  return r;
}

/** A curve point with a small x (so x + p still fits in 48 bytes); p ≡ 3 (mod 4) gives the root. */
function smallXPoint(): { x: bigint; y: bigint } {
  for (let x = 1n; ; x++) {
    const rhs = (((x * x * x - 3n * x + B) % P) + P) % P;
    const y = modPow(rhs, (P + 1n) / 4n, P);
    if ((y * y) % P === rhs) return { x, y };
  }
}

function expectCode(fn: () => unknown, code: string, what: string): void {
  expect(fn, what).to.throw(QuantumTunnelError).with.property('code', code);
}

describe('P-384 ECDH (SP 800-56A rev. 3 ECC CDH)', () => {
  it('exports its sizes from native code', () => {
    expect(p384.P384_SIZES).to.deep.equal({ publicKey: 97, privateKey: 48, sharedSecret: 48 });
    expect(native.p384Sizes).to.deep.equal(p384.P384_SIZES);
  });

  it('computes the NIST CAVS 14.1 ECC CDH primitive vectors (curve P-384): QIUT = dIUT·G and Z = x(dIUT·QCAVS)', () => {
    expect(V.curve).to.equal('P-384');
    expect(V.cases.length).to.be.greaterThanOrEqual(5);
    for (const c of V.cases) {
      const key = testing.p384PrivateKeyFromBytes(hex(c.dIUT));
      try {
        expect(key.algorithm).to.equal('P-384');
        expect(p384.publicKeyOf(key).toString('hex'), `QIUT, COUNT = ${c.count}`).to.equal(`04${c.QIUTx}${c.QIUTy}`);
        const z = p384.deriveSharedSecret(key, point(c.QCAVSx, c.QCAVSy));
        expect(z.length).to.equal(48);
        expect(testing.exportSecret(z).toString('hex'), `ZIUT, COUNT = ${c.count}`).to.equal(c.ZIUT);
        z.destroy();
      } finally {
        key.destroy();
      }
    }
  });

  it('agrees between two fresh key pairs; public keys are uncompressed points', () => {
    const a = p384.generateKeyPair();
    const b = p384.generateKeyPair();
    expect(a.privateKey.algorithm).to.equal('P-384');
    expect(a.publicKey).to.have.length(97);
    expect(a.publicKey[0]).to.equal(0x04);
    expect(a.publicKey.equals(b.publicKey)).to.equal(false);
    expect(p384.publicKeyOf(a.privateKey).equals(a.publicKey)).to.equal(true);
    const ab = p384.deriveSharedSecret(a.privateKey, b.publicKey);
    const ba = p384.deriveSharedSecret(b.privateKey, a.publicKey);
    expect(ab.length).to.equal(48);
    expect(crypto.timingSafeEqual(ab, ba)).to.equal(true);
    // A third party gets a different secret.
    const c = p384.generateKeyPair();
    expect(crypto.timingSafeEqual(p384.deriveSharedSecret(c.privateKey, b.publicKey), ab)).to.equal(false);
  });

  describe('refuses every peer key that is not a valid uncompressed point (ERR_QT_INVALID_KEY)', () => {
    const c0 = V.cases[0]!;
    const good = point(c0.QCAVSx, c0.QCAVSy);
    const { x: sx, y: sy } = smallXPoint();
    const yOdd = Number(sy & 1n);
    const cases: Array<[string, Buffer]> = [
      ['off the curve (last bit of y flipped)', Buffer.concat([good.subarray(0, 96), Buffer.from([good[96]! ^ 1])])],
      ['off the curve (x and y swapped)', point(c0.QCAVSy, c0.QCAVSx)],
      ['the point at infinity, all zero', Buffer.alloc(97)],
      ['the point at infinity, SEC1 single byte 0x00', Buffer.from([0x00])],
      ['x = y = 0 with the uncompressed prefix', Buffer.concat([Buffer.from([0x04]), Buffer.alloc(96)])],
      ['wrong prefix 0x05', Buffer.concat([Buffer.from([0x05]), good.subarray(1)])],
      ['compressed prefix 0x02 on 97 bytes', Buffer.concat([Buffer.from([0x02]), good.subarray(1)])],
      ['hybrid encoding 0x06/0x07 of a valid point (OpenSSL itself would parse it)', Buffer.concat([Buffer.from([0x06 | yOdd]), hex(be48(sx) + be48(sy))])],
      ['compressed point (49 bytes)', Buffer.concat([Buffer.from([0x02 | yOdd]), hex(be48(sx))])],
      ['wrong length: empty', Buffer.alloc(0)],
      ['wrong length: 96 bytes (no prefix)', good.subarray(1)],
      ['wrong length: 98 bytes', Buffer.concat([good, Buffer.from([0])])],
      ['wrong length: a P-256 point (65 bytes)', good.subarray(0, 65)],
      ['x ≥ p: x + p for a point on the curve', point(be48(sx + P), be48(sy))],
      ['x = p', point(be48(P), c0.QCAVSy)],
      ['y = p', point(c0.QCAVSx, be48(P))],
      ['x = y = 2^384 - 1', Buffer.concat([Buffer.from([0x04]), Buffer.alloc(96, 0xff)])],
    ];
    const { privateKey } = p384.generateKeyPair();

    it('the control points are accepted (so each refusal below is about the encoding)', () => {
      expect(p384.deriveSharedSecret(privateKey, good).length).to.equal(48);
      expect(p384.deriveSharedSecret(privateKey, point(be48(sx), be48(sy))).length).to.equal(48);
    });

    for (const [name, bytes] of cases) {
      it(name, () => {
        expectCode(() => p384.deriveSharedSecret(privateKey, bytes), 'ERR_QT_INVALID_KEY', `crypto.p384: ${name}`);
        // The addon checks on its own, whatever JS did first.
        expectCode(() => native.p384Derive(privateKey, bytes), 'ERR_QT_INVALID_KEY', `native: ${name}`);
      });
    }
  });

  it('refuses non-byte peer keys, other key kinds and destroyed handles with typed errors', () => {
    const a = p384.generateKeyPair();
    const x = crypto.x25519.generateKeyPair();
    expectCode(() => p384.deriveSharedSecret(a.privateKey, 'peer' as unknown as Uint8Array), 'ERR_QT_INVALID_ARGUMENT', 'string peer');
    expectCode(() => native.p384Derive(a.privateKey, [4, 1, 2] as unknown as Uint8Array), 'ERR_QT_INVALID_ARGUMENT', 'array peer');
    expectCode(() => p384.deriveSharedSecret(x.privateKey, a.publicKey), 'ERR_QT_INVALID_KEY', 'X25519 key');
    expectCode(() => crypto.x25519.deriveSharedSecret(a.privateKey, x.publicKey), 'ERR_QT_INVALID_KEY', 'P-384 key into X25519');
    expectCode(() => p384.publicKeyOf({} as never), 'ERR_QT_INVALID_ARGUMENT', 'not a handle');
    a.privateKey.destroy();
    expect(a.privateKey.destroyed).to.equal(true);
    expectCode(() => p384.deriveSharedSecret(a.privateKey, p384.generateKeyPair().publicKey), 'ERR_QT_HANDLE_DESTROYED', 'derive');
    expectCode(() => p384.publicKeyOf(a.privateKey), 'ERR_QT_HANDLE_DESTROYED', 'publicKeyOf');
    a.privateKey.destroy(); // twice is fine
  });

  it('refuses a detached peer key and copies a SharedArrayBuffer-backed one before use', () => {
    const a = p384.generateKeyPair();
    const b = p384.generateKeyPair();
    const buffer = new ArrayBuffer(97);
    const detached = new Uint8Array(buffer);
    detached.set(b.publicKey);
    structuredClone(buffer, { transfer: [buffer] });
    expectCode(() => native.p384Derive(a.privateKey, detached), 'ERR_QT_INVALID_ARGUMENT', 'detached');
    expectCode(() => p384.deriveSharedSecret(a.privateKey, detached), 'ERR_QT_INVALID_KEY', 'detached, through crypto.p384');
    const shared = new Uint8Array(new SharedArrayBuffer(97));
    shared.set(b.publicKey);
    expect(crypto.timingSafeEqual(p384.deriveSharedSecret(a.privateKey, shared), p384.deriveSharedSecret(b.privateKey, a.publicKey))).to.equal(true);
  });

  it('imports only private scalars in [1, n-1] of 48 bytes', () => {
    expectCode(() => testing.p384PrivateKeyFromBytes(Buffer.alloc(48)), 'ERR_QT_INVALID_KEY', 'd = 0');
    expectCode(() => testing.p384PrivateKeyFromBytes(Buffer.alloc(48, 0xff)), 'ERR_QT_INVALID_KEY', 'd > n');
    for (const n of [0, 47, 49]) {
      expectCode(() => testing.p384PrivateKeyFromBytes(Buffer.alloc(n, 1)), 'ERR_QT_INVALID_ARGUMENT', `${n} bytes`);
      expectCode(() => native.p384PrivateKeyFromBytes(Buffer.alloc(n, 1)), 'ERR_QT_INVALID_ARGUMENT', `native, ${n} bytes`);
    }
    // d = 1: the public key is the base point G.
    const one = testing.p384PrivateKeyFromBytes(hex(be48(1n)));
    expect(p384.publicKeyOf(one).toString('hex')).to.equal(
      '04aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7' +
        '3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5f',
    );
  });
});

/**
 * FIPS mode, in a child process (the mode is process-wide), with the module configuration
 * generated for this machine by fips/install.sh, as test/fips/fips.test.ts does; skipped when the
 * addon has no FIPS module beside it.
 */
describe('P-384 ECDH in FIPS mode (approved service)', function () {
  this.timeout(120_000);
  let configDir = '';

  before(function () {
    if (!existsSync(join(dirname(addonPath), 'ossl-modules', 'fips.so'))) this.skip();
    configDir = mkdtempSync(join(tmpdir(), 'qt-p384-fips-'));
    const root = fileURLToPath(new URL('../..', import.meta.url));
    execFileSync('bash', [join(root, 'fips/install.sh'), dirname(addonPath)], { env: { ...process.env, QUANTUM_TUNNEL_FIPS_DIR: configDir }, stdio: 'pipe' });
  });
  after(() => configDir && rmSync(configDir, { recursive: true, force: true }));

  it('runs in strict FIPS mode: the vectors, a round trip and full validation, with no non-approved service', () => {
    const testingUrl = new URL('../../lib/testing.ts', import.meta.url).href;
    const r = runChild(
      `
      const t = await import(${JSON.stringify(testingUrl)});
      const { p384 } = qt.crypto;
      const cases = ${JSON.stringify(V.cases.slice(0, 5))};
      const kat = cases.map((c) => {
        const k = t.p384PrivateKeyFromBytes(Buffer.from(c.dIUT, 'hex'));
        return {
          pub: p384.publicKeyOf(k).toString('hex') === '04' + c.QIUTx + c.QIUTy,
          z: t.exportSecret(p384.deriveSharedSecret(k, Buffer.from('04' + c.QCAVSx + c.QCAVSy, 'hex'))).toString('hex') === c.ZIUT,
        };
      });
      const a = p384.generateKeyPair(), b = p384.generateKeyPair();
      const agree = qt.crypto.timingSafeEqual(p384.deriveSharedSecret(a.privateKey, b.publicKey), p384.deriveSharedSecret(b.privateKey, a.publicKey));
      const bad = Buffer.from(b.publicKey); bad[96] ^= 1;
      let offCurve = null; try { p384.deriveSharedSecret(a.privateKey, bad); } catch (e) { offCurve = e.code; }
      let x25519 = null; try { qt.crypto.x25519.generateKeyPair(); } catch (e) { x25519 = e.code; }
      const s = qt.fips.status();
      return { mode: s.mode, strict: s.strict, failed: s.errorState.failed, providers: qt.crypto.info().providers.map((p) => p.name), kat, agree, offCurve, x25519 };`,
      { QUANTUM_TUNNEL_FIPS_DIR: configDir, QUANTUM_TUNNEL_FIPS: '1', QUANTUM_TUNNEL_FIPS_STRICT: '1' },
    );
    expect(r.json?.ok, r.stdout + r.stderr).to.equal(true);
    const v = r.json.value;
    expect(v).to.deep.include({ mode: 'fips', strict: true, failed: false, agree: true, offCurve: 'ERR_QT_INVALID_KEY' });
    expect(v.providers).to.deep.equal(['OpenSSL FIPS Provider', 'OpenSSL Base Provider']);
    expect(v.kat).to.deep.equal(Array(5).fill({ pub: true, z: true }));
    // Strict mode refuses the non-approved X25519 while P-384 ran: the addon also checked the FIPS
    // provider's approval indicator after every P-384 key generation and derivation (it throws
    // ERR_QT_FIPS_NOT_APPROVED when the provider reports an unapproved operation).
    expect(v.x25519).to.equal('ERR_QT_FIPS_NOT_APPROVED');
  });
});
