/** What the addon is: its own OpenSSL (not Node's), the mode and the providers in use. */
import { addonPath, native, type NativeProviderInfo } from '../native.js';

/** Result of {@link info}. */
export interface CryptoInfo {
  /** Version string of the libcrypto linked into the addon, e.g. `OpenSSL 3.5.7 9 Jun 2026`. */
  openssl: string;
  /** Whether the active library context is the FIPS one. */
  fips: boolean;
  /** `standard` or `fips`. */
  mode: 'standard' | 'fips';
  /** Whether this build contains ChaCha20-Poly1305 and whether the active mode offers it. */
  chacha20: {
    /** This build contains it (the FIPS build profile compiles it out). */
    compiled: boolean;
    /** The active mode offers it (not in FIPS mode). */
    available: boolean;
  };
  /** Providers loaded into the active library context. */
  providers: NativeProviderInfo[];
  /** The addon file that was loaded. */
  addonPath: string;
}

/** Describes the crypto core. */
export function info(): CryptoInfo {
  const n = native.info();
  return {
    openssl: n.openssl,
    fips: n.fips,
    mode: n.mode,
    chacha20: { compiled: n.chacha20Compiled, available: n.chacha20Available },
    providers: n.providers,
    addonPath,
  };
}
