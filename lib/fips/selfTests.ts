/**
 * Our power-on self-tests, run in the FIPS library context before any service is offered (on top
 * of the FIPS provider's own, which run when it loads and again through OSSL_PROVIDER_self_test).
 * Each test compares against a stored expected value; the first failure stops the run.
 */
import { native } from '../native.js';
import { createAead, seal } from '../crypto/aead.js';
import { deriveKey } from '../crypto/kdf.js';
import { sha3_256 } from '../crypto/hash.js';
import { mlkem1024 } from '../crypto/mlkem.js';
import { randomBytes } from '../crypto/random.js';
import { timingSafeEqual } from '../crypto/secret.js';
import * as testing from '../crypto/testing.js';
import { AES256GCM_KATS, MLKEM1024_KAT, SHA3_256_KAT, SHAKE256_KDF_KAT } from './kats.js';

/** The result of one known-answer self-test. */
export interface SelfTestResult {
  /** The test's name, e.g. 'provider'. */
  name: string;
  /** It produced the expected answer. */
  passed: boolean;
  /** Why it failed (never secret data). */
  detail?: string;
}

/** Test-only: names of self-tests whose expected value is corrupted, to prove failures are caught. */
export const injectedFailures = new Set<string>();

const hex = (s: string) => Buffer.from(s, 'hex');

/** The expected value, corrupted when a test asked for this self-test to fail. */
function expected(name: string, value: string): Buffer {
  const b = hex(value);
  if (injectedFailures.has(name)) b[0]! ^= 0x01;
  return b;
}

function check(name: string, ok: boolean, detail: string): SelfTestResult {
  return ok ? { name, passed: true } : { name, passed: false, detail };
}

type SelfTest = { name: string; run(): SelfTestResult };

const TESTS: SelfTest[] = [
  {
    name: 'provider',
    run: () => check('provider', native.fipsProviderSelfTest() && !injectedFailures.has('provider'), 'OSSL_PROVIDER_self_test failed'),
  },
  {
    name: 'ML-KEM-1024 keygen',
    run() {
      const kp = mlkem1024.generateKeyPair(hex(MLKEM1024_KAT.seed));
      kp.privateKey.destroy();
      return check(this.name, sha3_256(kp.publicKey).equals(expected(this.name, MLKEM1024_KAT.ekSha3)), 'encapsulation key differs');
    },
  },
  {
    name: 'ML-KEM-1024 encapsulate/decapsulate',
    run() {
      const kp = mlkem1024.generateKeyPair(hex(MLKEM1024_KAT.seed));
      const k = expected(this.name, MLKEM1024_KAT.k);
      try {
        const enc = mlkem1024.encapsulate(kp.publicKey, hex(MLKEM1024_KAT.m));
        if (!sha3_256(enc.ciphertext).equals(hex(MLKEM1024_KAT.ctSha3))) return check(this.name, false, 'ciphertext differs');
        if (!timingSafeEqual(enc.sharedSecret, k)) return check(this.name, false, 'encapsulated secret differs');
        if (!timingSafeEqual(mlkem1024.decapsulate(kp.privateKey, enc.ciphertext), k)) return check(this.name, false, 'decapsulated secret differs');
        const tampered = Buffer.from(enc.ciphertext);
        tampered[0]! ^= 0x01;
        const rejected = mlkem1024.decapsulate(kp.privateKey, tampered);
        return check(this.name, timingSafeEqual(rejected, hex(MLKEM1024_KAT.kReject)), 'implicit rejection differs');
      } finally {
        kp.privateKey.destroy();
      }
    },
  },
  {
    name: 'SHAKE-256 KDF',
    run() {
      const out = deriveKey(SHAKE256_KDF_KAT.label, hex(SHAKE256_KDF_KAT.input), 32);
      return check(this.name, out.equals(expected(this.name, SHAKE256_KDF_KAT.output)), 'DeriveKey output differs');
    },
  },
  {
    name: 'SHA3-256',
    run() {
      return check(this.name, sha3_256(hex(SHA3_256_KAT.message)).equals(expected(this.name, SHA3_256_KAT.digest)), 'digest differs');
    },
  },
  {
    name: 'AES-256-GCM',
    run() {
      for (const v of AES256GCM_KATS) {
        const key = testing.secretFromBytes(hex(v.key));
        const ctx = createAead(1, key);
        key.destroy();
        const out = seal(ctx, hex(v.nonce), Buffer.alloc(0), hex(v.plaintext));
        ctx.destroy();
        if (!out.equals(expected(this.name, v.sealed))) return check(this.name, false, `${v.name} differs`);
      }
      return check(this.name, true, '');
    },
  },
  {
    name: 'DRBG',
    run() {
      // Health: outputs are produced, differ from each other, and are not constant.
      const a = randomBytes(64);
      const b = randomBytes(64);
      const ok = !a.equals(b) && !a.every((x) => x === a[0]) && !injectedFailures.has('DRBG');
      return check(this.name, ok, 'DRBG output failed the health check');
    },
  },
];

/** Runs every self-test in order; stops at the first failure. */
export function runPowerOnSelfTests(): SelfTestResult[] {
  const results: SelfTestResult[] = [];
  for (const t of TESTS) {
    let r: SelfTestResult;
    try {
      r = t.run();
    } catch (err) {
      r = { name: t.name, passed: false, detail: `raised ${(err as { code?: string }).code ?? 'an error'}` };
    }
    results.push(r);
    if (!r.passed) break;
  }
  return results;
}

/** Names of the power-on self-tests, in order. */
export const SELF_TEST_NAMES = TESTS.map((t) => t.name);
