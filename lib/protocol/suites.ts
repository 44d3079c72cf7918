/**
 * The cipher suite registry: every suite's wire ID, option name, display name, AEAD, FIPS
 * approval and availability, named once. Options, the handshake's defaults, FIPS policy, tickets,
 * the CLI, demo and bench all read this table; a new suite is one entry here.
 */
import { invalidArgument } from '../errors.js';
import { AeadSuite, type AeadSuiteId } from '../crypto/aead.js';
import { info as cryptoInfo } from '../crypto/info.js';
import { cryptoPolicy } from '../crypto/policy.js';
import { CipherSuite, type CipherSuiteId } from './constants.js';

/** Cipher suite names accepted in options and on the command line. */
export type CipherName = 'aes-256-gcm' | 'chacha20-poly1305';

/** One cipher suite. */
export interface CipherSuiteSpec {
  /** The wire ID in hellos and tickets (§7.4). */
  readonly id: CipherSuiteId;
  /** The name options and flags use. */
  readonly option: CipherName;
  /** The name people read (info(), logs, metrics labels). */
  readonly displayName: string;
  readonly aead: AeadSuiteId;
  /** An approved service of the FIPS provider (docs/FIPS.md). */
  readonly fipsApproved: boolean;
  /** Whether this build and the current mode can run it. */
  available(): boolean;
}

/** Every suite, in our preference order. */
export const CIPHER_SUITES: readonly CipherSuiteSpec[] = Object.freeze([
  {
    id: CipherSuite.AES_256_GCM,
    option: 'aes-256-gcm',
    displayName: 'AES-256-GCM',
    aead: AeadSuite.AES_256_GCM,
    fipsApproved: true,
    available: () => true,
  },
  {
    id: CipherSuite.CHACHA20_POLY1305,
    option: 'chacha20-poly1305',
    displayName: 'ChaCha20-Poly1305',
    aead: AeadSuite.CHACHA20_POLY1305,
    fipsApproved: false,
    // Compiled out of the FIPS profile and absent from the FIPS provider.
    available: () => cryptoInfo().chacha20.available,
  },
] satisfies CipherSuiteSpec[]);

/** The suite with wire ID `id`, or undefined for an ID we do not know. */
export function cipherSuiteById(id: number): CipherSuiteSpec | undefined {
  return CIPHER_SUITES.find((s) => s.id === id);
}

/** The suite an option names, or undefined. */
export function cipherSuiteByOption(name: string): CipherSuiteSpec | undefined {
  return CIPHER_SUITES.find((s) => s.option === name);
}

/** The display name of a wire ID ("Unknown" for others). */
export function cipherSuiteName(id: number): string {
  return cipherSuiteById(id)?.displayName ?? 'Unknown';
}

/** Every option name (for usage text and validation). */
export function cipherNames(): CipherName[] {
  return CIPHER_SUITES.map((s) => s.option);
}

/**
 * Whether the current mode may use a suite for a session, including one resumed from a ticket:
 * in FIPS mode only approved suites.
 */
export function suitePermitted(id: number): boolean {
  const spec = cipherSuiteById(id);
  return spec !== undefined && spec.available() && (!cryptoPolicy.fips || spec.fipsApproved);
}

/** The suites this build and mode offer by default, in preference order. */
export function defaultCipherSuites(): CipherSuiteId[] {
  return CIPHER_SUITES.filter((s) => suitePermitted(s.id)).map((s) => s.id);
}

/** The suites of a `ciphers` option, checked against what this build and mode offer. */
export function resolveCipherSuites(ciphers: readonly CipherName[] | undefined): CipherSuiteId[] {
  if (ciphers === undefined) return defaultCipherSuites();
  if (!Array.isArray(ciphers) || ciphers.length === 0) invalidArgument('ciphers must be a non-empty array');
  return ciphers.map((name) => {
    const spec = CIPHER_SUITES.find((s) => s.option === name);
    if (spec === undefined) return invalidArgument(`unknown cipher ${JSON.stringify(name)}`);
    if (!suitePermitted(spec.id)) invalidArgument(`${spec.option} is not available in this build or mode`);
    return spec.id;
  });
}
