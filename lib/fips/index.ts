/**
 * FIPS mode. `fips.enable()` (or QUANTUM_TUNNEL_FIPS=1, or the FIPS build profile) switches the
 * addon to a private library context over the OpenSSL 3.5 FIPS provider, after:
 *   1. loading the provider from the addon's own directory with the configuration that
 *      `quantum-vpn fips install` generated on this machine (the provider checks its module MAC and runs
 *      its power-on self-tests as it loads);
 *   2. checking the addon's own HMAC-SHA256 against the value recorded when it was built;
 *   3. running our known-answer self-tests (lib/fips/selfTests.ts) in that context.
 * Any failure puts the module in its error state (every crypto call then fails with
 * ERR_QT_FIPS_SELFTEST_FAILED until the process restarts) and FIPS mode refuses to start.
 * docs/FIPS.md says what is and is not claimed.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { addonPath, native } from '../native.js';
import { ErrorCode, qtError, QuantumTunnelError } from '../errors.js';
import { cryptoPolicy } from '../crypto/policy.js';
import { timingSafeEqual } from '../crypto/secret.js';
import { conditionalStats, pairwiseConsistencyTest, pairwiseConsistencyTestGroup } from './conditional.js';
import { injectedFailures, runPowerOnSelfTests, SELF_TEST_NAMES, type SelfTestResult } from './selfTests.js';

export type { SelfTestResult };

/** Options of {@link enable}. */
export interface FipsOptions {
  /** Refuse non-approved services (X25519, so every v1 handshake) instead of using them. */
  strict?: boolean;
  /** Where `quantum-vpn fips install` wrote openssl-fips.cnf. Default {@link defaultConfigDir}. */
  configDir?: string;
}

/** Approval of each service in FIPS mode (OpenSSL 3.5 FIPS provider; docs/FIPS.md). */
export interface ServiceApproval {
  /** The algorithm, e.g. 'ML-KEM-1024'. */
  service: string;
  /** What quantum-tunnel uses it for. */
  use: string;
  /** Whether it is an approved service of the FIPS provider. */
  approved: boolean;
  /** How a non-approved service is used or kept out. */
  note?: string;
}

/** Every cryptographic service quantum-tunnel uses and its FIPS approval (docs/FIPS.md). */
export const SERVICES: readonly ServiceApproval[] = Object.freeze([
  { service: 'ML-KEM-1024', use: "post-quantum half of v2's groups 0x0101 and 0x0102, and of v1's CH-KEM", approved: true },
  { service: 'ML-KEM-768', use: "post-quantum half of v2's group 0x0103", approved: true },
  { service: 'X25519', use: "classical half of v2's groups 0x0101 and 0x0103, and of v1's CH-KEM", approved: false, note: 'in the FIPS module as a non-approved service (fips=no); combined with the approved ML-KEM secret as SP 800-56C rev. 2 allows; refused in strict mode' },
  { service: 'ECDH P-384', use: "classical half of v2's group 0x0102 (p384-mlkem1024, the FIPS-mode default)", approved: true },
  { service: 'SHAKE-256', use: "v1's KDFs", approved: true },
  { service: 'SHA3-256', use: "v1's CH-KEM transcript hash", approved: true },
  { service: 'AES-256-GCM', use: 'records (both versions), v1 Finished, tickets', approved: true },
  { service: 'HMAC-SHA256', use: 'addon integrity check', approved: true },
  { service: 'HKDF-SHA-384 (and -SHA-256)', use: 'protocol v2: the hybrid combiner and the whole key schedule', approved: true },
  { service: 'HMAC-SHA-384 (and -SHA-256)', use: 'protocol v2 Finished and binder MACs, exporter output', approved: true },
  { service: 'SHA-384', use: 'protocol v2 transcript hash', approved: true },
  { service: 'ML-DSA-87', use: 'certificate authentication (CertificateVerify signatures, certificate chains)', approved: true },
  { service: 'PBKDF2-HMAC-SHA-256 + AES-256-CBC', use: 'encrypted private key files (PKCS#8 PBES2)', approved: true },
  { service: 'SHA-256', use: 'fingerprints of public keys (identity keys, certificate SPKI)', approved: true },
  { service: 'CTR-DRBG', use: 'all randomness', approved: true },
  { service: 'ChaCha20-Poly1305', use: 'suite 0x0002', approved: false, note: 'absent from the FIPS provider; never offered in FIPS mode' },
]);

/** The outcome of the addon's integrity check (its HMAC-SHA256 against the build record). */
export interface IntegrityResult {
  /** The addon file's MAC matched the record. */
  verified: boolean;
  /** Where the expected value came from. */
  file: string;
  /** Why it did not verify. */
  reason?: string;
}

/** What {@link status} reports: the crypto module's mode, tests and error state. */
export interface FipsStatus {
  /** `fips` once {@link enable} succeeded (or FIPS mode started at load). */
  mode: 'standard' | 'fips';
  /** `fips` when this addon was built with the FIPS profile (ChaCha20 compiled out). */
  profile: 'fips' | 'standard';
  /** Strict mode: non-approved services (X25519) are refused. */
  strict: boolean;
  /** The loaded FIPS provider; null in standard mode. */
  provider: {
    /** The provider's name. */
    name: string;
    /** The provider's version, e.g. '3.5.x'. */
    version: string;
    /** The provider's build information. */
    buildinfo: string;
  } | null;
  /** The last run of our known-answer self-tests; null if they have not run. */
  selfTests: {
    /** When they ran, ISO 8601 UTC. */
    ranAt: string;
    /** Every test passed. */
    passed: boolean;
    /** Each test's result. */
    results: SelfTestResult[];
  } | null;
  /** The last integrity check of the addon; null if it has not run. */
  integrity: IntegrityResult | null;
  /** The conditional self-tests (pairwise consistency of generated key pairs) so far. */
  conditionalTests: {
    /** How many ran. */
    pairwiseTests: number;
    /** How many failed (any failure puts the module in its error state). */
    failures: number;
  };
  /** The module's error state: once failed, every crypto call throws `ERR_QT_FIPS_SELFTEST_FAILED` until the process restarts. */
  errorState: {
    /** The module is in its error state. */
    failed: boolean;
    /** Why (empty when not failed). */
    reason: string;
  };
  /** Why FIPS mode requested at load (environment or FIPS build) could not start. */
  startupError: {
    /** The `ERR_QT_*` code of the failure. */
    code: string;
    /** Its message. */
    message: string;
  } | null;
  /** The same as {@link SERVICES}. */
  services: readonly ServiceApproval[];
}

let lastSelfTests: FipsStatus['selfTests'] = null;
let lastIntegrity: IntegrityResult | null = null;

/**
 * Where the FIPS configuration of this machine is read from (and `quantum-vpn fips install`
 * writes it): $QUANTUM_TUNNEL_FIPS_DIR, or ${XDG_CONFIG_HOME:-~/.config}/quantum-tunnel/fips.
 */
export function defaultConfigDir(): string {
  return process.env.QUANTUM_TUNNEL_FIPS_DIR ?? join(process.env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'quantum-tunnel', 'fips');
}

/** Checks the addon file's HMAC-SHA256 (computed by the FIPS provider) against its build record. */
function checkIntegrity(): IntegrityResult {
  const file = `${addonPath}.hmac`;
  if (!existsSync(file)) return { verified: false, file, reason: 'no integrity record next to the addon (build it with npm run build or build:fips)' };
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return { verified: false, file, reason: 'the integrity record is unreadable' };
  }
  // JSON `null` or a number is malformed too, not a TypeError on the property reads below.
  const record = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as { algorithm?: unknown; key?: unknown; mac?: unknown };
  if (record.algorithm !== 'HMAC-SHA256' || typeof record.key !== 'string' || typeof record.mac !== 'string') {
    return { verified: false, file, reason: 'the integrity record is malformed' };
  }
  const mac = native.fipsModuleMac(addonPath, Buffer.from(record.key, 'hex'));
  const expected = Buffer.from(record.mac, 'hex');
  if (injectedFailures.has('integrity')) expected[0]! ^= 0x01;
  return timingSafeEqual(mac, expected) ? { verified: true, file } : { verified: false, file, reason: 'the addon does not match its recorded HMAC-SHA256' };
}

function fail(code: typeof ErrorCode[keyof typeof ErrorCode], reason: string): never {
  native.fipsEnterErrorState(reason);
  throw qtError(code, `FIPS mode refused to start: ${reason}; the crypto module is in its error state until the process restarts`);
}

/** Whether FIPS mode is active. */
export function isEnabled(): boolean {
  return cryptoPolicy.fips;
}

/**
 * Switches the process to FIPS mode (idempotent). Throws ERR_QT_FIPS_UNAVAILABLE when the FIPS
 * configuration is not installed on this machine (nothing changes then), and
 * ERR_QT_FIPS_INTEGRITY_FAILED / ERR_QT_FIPS_SELFTEST_FAILED when a check fails (the module is then
 * in its error state).
 *
 * @example
 * ```ts
 * import { fips } from 'quantum-tunnel';
 *
 * // After `quantum-vpn fips install` on this machine; before any tunnel is opened.
 * const status = fips.enable({ strict: true });
 * console.log(status.mode, status.provider?.version); // fips 3.5.x
 * ```
 */
export function enable(options: FipsOptions = {}): FipsStatus {
  if (cryptoPolicy.fips) {
    if (options.strict) cryptoPolicy.strict = true;
    return status();
  }
  const configPath = join(options.configDir ?? defaultConfigDir(), 'openssl-fips.cnf');
  if (!existsSync(configPath)) {
    throw qtError(
      ErrorCode.FIPS_UNAVAILABLE,
      `FIPS mode is not installed on this machine: ${configPath} is missing; run \`npx quantum-vpn fips install\` first (it runs openssl fipsinstall here)`,
    );
  }
  try {
    native.fipsLoad(join(dirname(addonPath), 'ossl-modules'), configPath);
    if (injectedFailures.has('provider-load')) throw qtError(ErrorCode.FIPS_UNAVAILABLE, 'injected provider load failure');
  } catch (err) {
    const reason = err instanceof QuantumTunnelError ? err.message : 'the FIPS provider could not be loaded';
    fail(ErrorCode.FIPS_UNAVAILABLE, reason);
  }
  native.fipsUseContext('fips');
  try {
    lastIntegrity = checkIntegrity();
    if (!lastIntegrity.verified) fail(ErrorCode.FIPS_INTEGRITY_FAILED, `integrity check failed: ${lastIntegrity.reason}`);
    const results = runPowerOnSelfTests();
    const passed = results.length === SELF_TEST_NAMES.length && results.every((r) => r.passed);
    lastSelfTests = { ranAt: new Date().toISOString(), passed, results };
    if (!passed) {
      const failed = results.find((r) => !r.passed)!;
      fail(ErrorCode.FIPS_SELFTEST_FAILED, `self-test "${failed.name}" failed (${failed.detail})`);
    }
  } catch (err) {
    native.fipsUseContext('standard');
    throw err;
  }
  native.fipsActivate();
  cryptoPolicy.fips = true;
  cryptoPolicy.strict = options.strict === true;
  cryptoPolicy.checkKeyPair = pairwiseConsistencyTest;
  cryptoPolicy.checkGroupKeyPair = pairwiseConsistencyTestGroup;
  return status();
}

/** Mode, profile, provider, self-test and integrity results, and per-service approval. */
export function status(): FipsStatus {
  const info = native.info();
  const provider = info.fips ? info.providers.find((p) => p.name.includes('FIPS')) ?? null : null;
  return {
    mode: info.fips ? 'fips' : 'standard',
    profile: native.buildProfile,
    strict: cryptoPolicy.strict,
    provider: provider ? { name: provider.name, version: provider.version, buildinfo: provider.buildinfo } : null,
    selfTests: lastSelfTests,
    integrity: lastIntegrity,
    conditionalTests: { ...conditionalStats },
    errorState: native.fipsErrorState(),
    startupError,
    services: SERVICES,
  };
}

/**
 * QUANTUM_TUNNEL_TESTING=1 as the package loaded (read once: code that sets process.env later does
 * not turn the hooks below on). They stop the crypto module at will.
 */
const STARTED_FOR_TESTING = process.env.QUANTUM_TUNNEL_TESTING === '1';

function testingOnly(): void {
  if (!STARTED_FOR_TESTING) {
    throw qtError(ErrorCode.INVALID_STATE, 'fips.testing is for tests only: start the process with QUANTUM_TUNNEL_TESTING=1');
  }
}

/**
 * Test-only hooks: make one self-test or check fail, to prove failures are handled. Not part of
 * the public API: each hook can put the crypto module in its error state, so each throws
 * `ERR_QT_INVALID_STATE` unless QUANTUM_TUNNEL_TESTING=1 was set when the package loaded.
 *
 * @internal
 */
export const testing = Object.freeze({
  /** Makes the self-test or check of this name fail on its next run. */
  injectFailure(name: string): void {
    testingOnly();
    injectedFailures.add(name);
  },
  /** Undoes every {@link testing.injectFailure}. */
  clearInjectedFailures(): void {
    injectedFailures.clear();
  },
  /** The next FIPS-mode DRBG block repeats the previous one, so the continuous RNG test trips. */
  repeatNextRandomBlock(): void {
    testingOnly();
    native.testingRepeatNextRandomBlock();
  },
});

let startupError: { code: string; message: string } | null = null;

/**
 * Enables FIPS mode at load when asked to by QUANTUM_TUNNEL_FIPS=1 or by the FIPS build profile.
 * It fails closed without throwing from the import: if FIPS mode cannot start, the module enters
 * its error state (every crypto call fails) and `status().startupError` says why.
 * QUANTUM_TUNNEL_FIPS_TEST_INJECT (comma-separated self-test names) is a test-only hook; it can only
 * make checks fail, never skip them.
 */
export function enableFromEnvironment(): void {
  const asked = process.env.QUANTUM_TUNNEL_FIPS;
  if (native.buildProfile !== 'fips' && (asked === undefined || asked === '' || asked === '0')) return;
  for (const name of (process.env.QUANTUM_TUNNEL_FIPS_TEST_INJECT ?? '').split(',').filter(Boolean)) injectedFailures.add(name);
  try {
    enable({ strict: process.env.QUANTUM_TUNNEL_FIPS_STRICT === '1' });
  } catch (err) {
    const e = err as QuantumTunnelError;
    startupError = { code: e.code, message: e.message };
    native.fipsEnterErrorState(e.message);
    process.emitWarning(e.message, { code: e.code });
  }
}
