/**
 * ML-DSA-87 (FIPS 204): the NIST ACVP keyGen, sigGen and sigVer vectors (internal interface, as
 * these ACVP groups are), the pure interface with context strings on top of them, the external-μ
 * interface, and the API's handling of keys, contexts and bad input; FIPS mode in a child process.
 */
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

interface KeyGenCase {
  tcId: number;
  seed: string;
  pk: string;
  sk: string;
}
interface SigGenCase {
  tcId: number;
  deterministic: boolean;
  sk: string;
  message: string;
  rnd?: string;
  signature: string;
}
interface SigVerCase {
  tcId: number;
  message: string;
  signature: string;
  testPassed: boolean;
}

const V = loadFixture<{ keyGen: KeyGenCase[]; sigGen: SigGenCase[]; sigVer: { pk: string; tests: SigVerCase[] } }>('acvp/mldsa87.json');
const { mldsa87 } = crypto;
const ZEROS = Buffer.alloc(32);

function expectCode(fn: () => unknown, code: string, what: string): void {
  expect(fn, what).to.throw(QuantumTunnelError).with.property('code', code);
}

/** FIPS 204 Algorithm 2's M' for pure ML-DSA: 0x00 ‖ |ctx| ‖ ctx ‖ M. */
const pureMessage = (ctx: Uint8Array, m: Uint8Array): Buffer => Buffer.concat([Buffer.from([0, ctx.length]), ctx, m]);

describe('ML-DSA-87 (FIPS 204, NIST ACVP vectors)', () => {
  it('has the FIPS 204 sizes, read from the addon', () => {
    expect(mldsa87.ML_DSA_87_SIZES).to.include({ publicKey: 2592, privateKey: 4896, signature: 4627, seed: 32, maxContext: 255 });
  });

  it('keyGen: each ACVP seed ξ gives the expected pk and sk', () => {
    expect(V.keyGen.length).to.be.greaterThanOrEqual(8);
    for (const c of V.keyGen) {
      const kp = mldsa87.generateKeyPair(hex(c.seed));
      expect(kp.privateKey.algorithm).to.equal('ML-DSA-87');
      expect(kp.publicKey.toString('hex'), `tcId ${c.tcId} pk`).to.equal(c.pk);
      expect(testing.exportPrivateKey(kp.privateKey).toString('hex'), `tcId ${c.tcId} sk`).to.equal(c.sk);
      kp.privateKey.destroy();
    }
  });

  it('sigGen: each ACVP case (internal interface; deterministic and hedged groups) gives the expected signature', () => {
    const groups = new Set(V.sigGen.map((c) => c.deterministic));
    expect([...groups].sort()).to.deep.equal([false, true]);
    for (const c of V.sigGen) {
      const key = testing.mldsaPrivateKeyFromBytes(hex(c.sk));
      const rnd = c.deterministic ? ZEROS : hex(c.rnd!);
      const sig = testing.mldsaSignWithRandomness(key, hex(c.message), rnd, { interface: 'internal' });
      expect(sig.toString('hex'), `tcId ${c.tcId}`).to.equal(c.signature);
      // The same signature verifies through the internal interface, and is not a pure signature of M'.
      const pk = mldsa87.publicKeyOf(key);
      expect(testing.mldsaVerifyWithInterface(pk, hex(c.message), sig, { interface: 'internal' }), `tcId ${c.tcId}`).to.equal(true);
      expect(mldsa87.verify(pk, hex(c.message), sig), `tcId ${c.tcId} as pure`).to.equal(false);
      key.destroy();
    }
  });

  it('sigVer: each ACVP case verifies (or not) as expected, valid and invalid cases alike', () => {
    const results = V.sigVer.tests.map((c) => ({
      tcId: c.tcId,
      ok: testing.mldsaVerifyWithInterface(hex(V.sigVer.pk), hex(c.message), hex(c.signature), { interface: 'internal' }),
    }));
    expect(results).to.deep.equal(V.sigVer.tests.map((c) => ({ tcId: c.tcId, ok: c.testPassed })));
    expect(results.filter((r) => r.ok).length).to.be.within(1, results.length - 1);
  });

  it('pure ML-DSA (Algorithm 2) is Sign_internal over 0x00 ‖ |ctx| ‖ ctx ‖ M: deterministic signatures match, for several contexts', () => {
    const c = V.sigGen.find((x) => x.deterministic)!;
    const key = testing.mldsaPrivateKeyFromBytes(hex(c.sk));
    const pk = mldsa87.publicKeyOf(key);
    const m = hex(c.message);
    for (const ctx of [Buffer.alloc(0), Buffer.from('quantum-tunnel identity'), Buffer.alloc(255, 0xa5)]) {
      const pure = mldsa87.sign(key, m, { context: ctx, deterministic: true });
      const internal = testing.mldsaSignWithRandomness(key, pureMessage(ctx, m), ZEROS, { interface: 'internal' });
      expect(pure.toString('hex'), `|ctx| = ${ctx.length}`).to.equal(internal.toString('hex'));
      expect(mldsa87.verify(pk, m, pure, { context: ctx })).to.equal(true);
      // The testing hook's pure interface with rnd = 0 is the same signature.
      expect(testing.mldsaSignWithRandomness(key, m, ZEROS, { context: ctx }).equals(pure)).to.equal(true);
    }
    // No context and the empty context are the same thing.
    expect(mldsa87.sign(key, m, { deterministic: true }).equals(mldsa87.sign(key, m, { context: Buffer.alloc(0), deterministic: true }))).to.equal(true);
  });

  it('external μ: signing μ = SHAKE256(SHAKE256(pk, 64) ‖ M′, 64) gives the ACVP signature of M′', () => {
    for (const c of V.sigGen.slice(0, 2)) {
      const key = testing.mldsaPrivateKeyFromBytes(hex(c.sk));
      const tr = crypto.shake256(mldsa87.publicKeyOf(key), 64);
      const mu = crypto.shake256([tr, hex(c.message)], 64);
      const rnd = c.deterministic ? ZEROS : hex(c.rnd!);
      expect(testing.mldsaSignWithRandomness(key, mu, rnd, { interface: 'external-mu' }).toString('hex'), `tcId ${c.tcId}`).to.equal(c.signature);
      expect(() => testing.mldsaSignWithRandomness(key, mu.subarray(1), rnd, { interface: 'external-mu' })).to.throw(/64 bytes/);
    }
  });
});

describe('ML-DSA-87 signing and verification', () => {
  const kp = mldsa87.generateKeyPair();
  const message = Buffer.from('the handshake transcript hash, or any other message');

  it('hedged signatures differ each time and all verify; deterministic ones repeat', () => {
    const a = mldsa87.sign(kp.privateKey, message);
    const b = mldsa87.sign(kp.privateKey, message);
    expect(a).to.have.length(4627);
    expect(a.equals(b)).to.equal(false);
    expect(mldsa87.verify(kp.publicKey, message, a)).to.equal(true);
    expect(mldsa87.verify(kp.publicKey, message, b)).to.equal(true);
    const d1 = mldsa87.sign(kp.privateKey, message, { deterministic: true });
    const d2 = mldsa87.sign(kp.privateKey, message, { deterministic: true });
    expect(d1.equals(d2)).to.equal(true);
    expect(d1.equals(a)).to.equal(false);
  });

  it('on the threadpool: signAsync and verifyAsync agree with sign and verify, contexts and keys included', async () => {
    const context = Buffer.from('ctx');
    const hedged = await mldsa87.signAsync(kp.privateKey, message, { context });
    expect(hedged).to.have.length(4627);
    expect(mldsa87.verify(kp.publicKey, message, hedged, { context })).to.equal(true);
    expect(await mldsa87.verifyAsync(kp.publicKey, message, hedged, { context })).to.equal(true);
    expect(await mldsa87.verifyAsync(mldsa87.importPublicKey(kp.publicKey), message, hedged, { context })).to.equal(true);
    expect(await mldsa87.verifyAsync(kp.publicKey, message, hedged)).to.equal(false); // another context
    const tampered = Buffer.from(hedged);
    tampered[100]! ^= 1;
    expect(await mldsa87.verifyAsync(kp.publicKey, message, tampered, { context })).to.equal(false);
    expect(await mldsa87.verifyAsync(kp.publicKey, message, hedged.subarray(1), { context })).to.equal(false);
    const deterministic = await mldsa87.signAsync(kp.privateKey, message, { deterministic: true });
    expect(deterministic.equals(mldsa87.sign(kp.privateKey, message, { deterministic: true }))).to.equal(true);
  });

  it('on the threadpool: the job keeps its own copies, so destroying the key or changing the message after the call does not matter', async () => {
    const k = mldsa87.generateKeyPair();
    const m = Buffer.from(message);
    const signing = mldsa87.signAsync(k.privateKey, m, { deterministic: true });
    k.privateKey.destroy();
    m.fill(0);
    const signature = await signing;
    expect(mldsa87.verify(k.publicKey, message, signature)).to.equal(true);
    const verifying = mldsa87.verifyAsync(k.publicKey, m, signature);
    m.set(message.subarray(0, m.length));
    expect(await verifying).to.equal(false); // it checked the zeroed message it was given
    expect(() => mldsa87.signAsync(k.privateKey, message)).to.throw(QuantumTunnelError).with.property('code', 'ERR_QT_HANDLE_DESTROYED');
  });

  it('refuses a changed message, signature, context or key', () => {
    const ctx = Buffer.from('ctx');
    const sig = mldsa87.sign(kp.privateKey, message, { context: ctx });
    expect(mldsa87.verify(kp.publicKey, message, sig, { context: ctx })).to.equal(true);
    const m2 = Buffer.from(message);
    m2[0]! ^= 1;
    expect(mldsa87.verify(kp.publicKey, m2, sig, { context: ctx }), 'message').to.equal(false);
    for (const i of [0, 100, 4626]) {
      const s2 = Buffer.from(sig);
      s2[i]! ^= 0x10;
      expect(mldsa87.verify(kp.publicKey, message, s2, { context: ctx }), `signature byte ${i}`).to.equal(false);
    }
    expect(mldsa87.verify(kp.publicKey, message, sig), 'no context').to.equal(false);
    expect(mldsa87.verify(kp.publicKey, message, sig, { context: Buffer.from('ctX') }), 'other context').to.equal(false);
    expect(mldsa87.verify(mldsa87.generateKeyPair().publicKey, message, sig, { context: ctx }), 'other key').to.equal(false);
    // Signatures of the wrong length are invalid, not errors.
    expect(mldsa87.verify(kp.publicKey, message, sig.subarray(0, 4626), { context: ctx })).to.equal(false);
    expect(mldsa87.verify(kp.publicKey, message, Buffer.concat([sig, Buffer.alloc(1)]), { context: ctx })).to.equal(false);
    expect(mldsa87.verify(kp.publicKey, message, Buffer.alloc(0), { context: ctx })).to.equal(false);
  });

  it('signs the empty message and long messages, from a SharedArrayBuffer too', () => {
    const empty = mldsa87.sign(kp.privateKey, Buffer.alloc(0));
    expect(mldsa87.verify(kp.publicKey, Buffer.alloc(0), empty)).to.equal(true);
    const big = new Uint8Array(new SharedArrayBuffer(1 << 20)).fill(7);
    const sig = mldsa87.sign(kp.privateKey, big);
    expect(mldsa87.verify(kp.publicKey, Buffer.from(big), sig)).to.equal(true);
  });

  it('verifies with a public key handle parsed once, and refuses keys of the wrong size or kind', () => {
    const handle = mldsa87.importPublicKey(kp.publicKey);
    expect(handle.algorithm).to.equal('ML-DSA-87');
    const sig = mldsa87.sign(kp.privateKey, message);
    expect(mldsa87.verify(handle, message, sig)).to.equal(true);
    expectCode(() => mldsa87.importPublicKey(kp.publicKey.subarray(1)), 'ERR_QT_INVALID_KEY', 'short pk');
    expectCode(() => mldsa87.verify(Buffer.alloc(2593), message, sig), 'ERR_QT_INVALID_KEY', 'long pk');
    const kem = crypto.mlkem1024.generateKeyPair();
    expectCode(() => mldsa87.verify(crypto.mlkem1024.importPublicKey(kem.publicKey), message, sig), 'ERR_QT_INVALID_KEY', 'ML-KEM handle');
    expectCode(() => mldsa87.sign(kem.privateKey, message), 'ERR_QT_INVALID_KEY', 'ML-KEM private key');
    expectCode(() => crypto.mlkem1024.decapsulate(kp.privateKey, Buffer.alloc(1568)), 'ERR_QT_INVALID_KEY', 'ML-DSA key into ML-KEM');
    handle.destroy();
    expectCode(() => mldsa87.verify(handle, message, sig), 'ERR_QT_HANDLE_DESTROYED', 'destroyed handle');
  });

  it('destroy() frees the private key: signing afterwards is refused', () => {
    const k = mldsa87.generateKeyPair();
    expect(k.privateKey.destroyed).to.equal(false);
    k.privateKey.destroy();
    expect(k.privateKey.destroyed).to.equal(true);
    expectCode(() => mldsa87.sign(k.privateKey, message), 'ERR_QT_HANDLE_DESTROYED', 'sign');
    expectCode(() => mldsa87.publicKeyOf(k.privateKey), 'ERR_QT_HANDLE_DESTROYED', 'publicKeyOf');
    k.privateKey.destroy();
  });

  it('checks arguments in JS and again natively', () => {
    expectCode(() => mldsa87.sign(kp.privateKey, message, { context: Buffer.alloc(256) }), 'ERR_QT_INVALID_ARGUMENT', 'ctx 256');
    expectCode(() => native.mldsaSign(kp.privateKey, message, Buffer.alloc(256), false), 'ERR_QT_INVALID_ARGUMENT', 'native ctx 256');
    expectCode(() => native.mldsaVerify(kp.publicKey, message, Buffer.alloc(4627), Buffer.alloc(256)), 'ERR_QT_INVALID_ARGUMENT', 'native verify ctx 256');
    expectCode(() => native.mldsaSign(kp.privateKey, message, undefined, 1 as unknown as boolean), 'ERR_QT_INVALID_ARGUMENT', 'deterministic');
    expectCode(() => mldsa87.sign(kp.privateKey, 'text' as unknown as Uint8Array), 'ERR_QT_INVALID_ARGUMENT', 'string message');
    expectCode(() => native.mldsaSign(kp.privateKey, [1, 2] as unknown as Uint8Array, undefined, false), 'ERR_QT_INVALID_ARGUMENT', 'native array message');
    expectCode(() => mldsa87.generateKeyPair(Buffer.alloc(31)), 'ERR_QT_INVALID_ARGUMENT', 'seed 31');
    expectCode(() => native.mldsaGenerateKeyPair(Buffer.alloc(33)), 'ERR_QT_INVALID_ARGUMENT', 'native seed 33');
    expectCode(() => testing.mldsaPrivateKeyFromBytes(Buffer.alloc(4895)), 'ERR_QT_INVALID_ARGUMENT', 'sk size');
    expectCode(() => native.mldsaSignForTesting(kp.privateKey, message, undefined, ZEROS, 3), 'ERR_QT_INVALID_ARGUMENT', 'interface 3');
    expectCode(() => mldsa87.sign({} as never, message), 'ERR_QT_INVALID_ARGUMENT', 'not a key');
    const detached = new Uint8Array(new ArrayBuffer(8));
    structuredClone(detached.buffer, { transfer: [detached.buffer] });
    expectCode(() => native.mldsaSign(kp.privateKey, detached, undefined, false), 'ERR_QT_INVALID_ARGUMENT', 'detached message');
  });

  it('a seed gives the same key pair every time, and different seeds different pairs', () => {
    const seed = Buffer.alloc(32, 9);
    const a = mldsa87.generateKeyPair(seed);
    const b = mldsa87.generateKeyPair(seed);
    expect(a.publicKey.equals(b.publicKey)).to.equal(true);
    expect(mldsa87.generateKeyPair(Buffer.alloc(32, 8)).publicKey.equals(a.publicKey)).to.equal(false);
    expect(mldsa87.generateKeyPair().publicKey.equals(mldsa87.generateKeyPair().publicKey)).to.equal(false);
  });
});

/**
 * FIPS mode in a child process (the mode is process-wide), configured for this machine by
 * fips/install.sh as test/fips/fips.test.ts does; skipped without a FIPS module beside the addon.
 */
describe('ML-DSA-87 in FIPS mode (approved service)', function () {
  this.timeout(120_000);
  let configDir = '';

  before(function () {
    if (!existsSync(join(dirname(addonPath), 'ossl-modules', 'fips.so'))) this.skip();
    configDir = mkdtempSync(join(tmpdir(), 'qt-mldsa-fips-'));
    const root = fileURLToPath(new URL('../..', import.meta.url));
    execFileSync('bash', [join(root, 'fips/install.sh'), dirname(addonPath)], { env: { ...process.env, QUANTUM_TUNNEL_FIPS_DIR: configDir }, stdio: 'pipe' });
  });
  after(() => configDir && rmSync(configDir, { recursive: true, force: true }));

  it('generates (ACVP seeds), signs and verifies with the FIPS provider, in strict mode', () => {
    const testingUrl = new URL('../../lib/testing.ts', import.meta.url).href;
    const r = runChild(
      `
      const t = await import(${JSON.stringify(testingUrl)});
      const { mldsa87 } = qt.crypto;
      const kat = ${JSON.stringify(V.keyGen.slice(0, 3))}.map((c) => {
        const kp = mldsa87.generateKeyPair(Buffer.from(c.seed, 'hex'));
        return kp.publicKey.toString('hex') === c.pk && t.exportPrivateKey(kp.privateKey).toString('hex') === c.sk;
      });
      const c = ${JSON.stringify(V.sigGen[0])};
      const key = t.mldsaPrivateKeyFromBytes(Buffer.from(c.sk, 'hex'));
      const sigKat = t.mldsaSignWithRandomness(key, Buffer.from(c.message, 'hex'), Buffer.alloc(32), { interface: 'internal' }).toString('hex') === c.signature;
      const kp = mldsa87.generateKeyPair();
      const m = Buffer.from('fips');
      const hedged = mldsa87.sign(kp.privateKey, m, { context: Buffer.from('c') });
      const det = mldsa87.sign(kp.privateKey, m, { deterministic: true });
      const s = qt.fips.status();
      return { mode: s.mode, strict: s.strict, failed: s.errorState.failed, provider: qt.crypto.info().providers[0].name, kat, sigKat,
               hedged: mldsa87.verify(kp.publicKey, m, hedged, { context: Buffer.from('c') }), det: mldsa87.verify(mldsa87.importPublicKey(kp.publicKey), m, det),
               wrong: mldsa87.verify(kp.publicKey, m, hedged) };`,
      { QUANTUM_TUNNEL_FIPS_DIR: configDir, QUANTUM_TUNNEL_FIPS: '1', QUANTUM_TUNNEL_FIPS_STRICT: '1' },
    );
    expect(r.json?.ok, r.stdout + r.stderr).to.equal(true);
    expect(r.json.value).to.deep.equal({
      mode: 'fips',
      strict: true,
      failed: false,
      provider: 'OpenSSL FIPS Provider',
      kat: [true, true, true],
      sigKat: true,
      hedged: true,
      det: true,
      wrong: false,
    });
  });
});
