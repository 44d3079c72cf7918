/**
 * Loads the C++ addon (QUANTUM_TUNNEL_ADDON, else build/Release/quantum_tunnel.node built by
 * cmake-js or node-gyp, else the prebuilt prebuilds/<platform>-<arch>/quantum_tunnel.node) and
 * describes its surface. Only lib/crypto talks to this module; everything above uses lib/crypto.
 */
import { createRequire } from 'node:module';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCode, QuantumTunnelError } from './errors.js';

/** A secret held in native memory. Its bytes never enter the JS heap. */
export interface Secret {
  /** Length of the secret in bytes (not secret). */
  readonly length: number;
  /** True once destroy() has cleansed it. */
  readonly destroyed: boolean;
  /** Cleanses the secret now. Safe to call twice. */
  destroy(): void;
  /** A new handle holding a copy (destroyed independently of this one). */
  clone(): Secret;
}

/** A private key (X25519, P-384, ML-KEM or ML-DSA-87) held in native memory. */
export interface PrivateKey {
  /** `X25519`, `P-384`, `ML-KEM-768`, `ML-KEM-1024` or `ML-DSA-87`. */
  readonly algorithm: string;
  /** True once destroy() has freed it; using it then throws ERR_QT_HANDLE_DESTROYED. */
  readonly destroyed: boolean;
  /** Frees (and so cleanses) the key now. Safe to call twice. */
  destroy(): void;
}

/**
 * A parsed, checked public key (parse once, use many times): an ML-KEM encapsulation key, an
 * ML-DSA-87 verification key, or any of the private key kinds read from an SPKI or a certificate.
 */
export interface PublicKey {
  /** As {@link PrivateKey.algorithm}. */
  readonly algorithm: string;
  /** True once destroy() has freed it; using it then throws ERR_QT_HANDLE_DESTROYED. */
  readonly destroyed: boolean;
  /** Frees the key now. Safe to call twice. */
  destroy(): void;
}

/** What every AEAD context has, whichever nonce discipline it follows. */
export interface NativeAeadContextBase {
  readonly suite: number;
  readonly destroyed: boolean;
  /** True for a record context (created with an IV); destroy() does not change it. */
  readonly hasIv: boolean;
  destroy(): void;
}

/**
 * An AEAD key schedule, created once per key and reused for every record; every call takes an
 * explicit nonce. Its record methods (see {@link NativeRecordAeadContext}) throw
 * ERR_QT_INVALID_STATE.
 */
export interface NativeAeadContext extends NativeAeadContextBase {
  seal(dst: Uint8Array, dstOffset: number, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): number;
  open(dst: Uint8Array, dstOffset: number, nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): number;
  sealBatch(src: Uint8Array, dst: Uint8Array, table: Uint32Array, count: number): number;
  openBatch(src: Uint8Array, dst: Uint8Array, table: Uint32Array, count: number, results: Int32Array): number;
  sealParts(nonce: Uint8Array, aad: Uint8Array, parts: Array<Uint8Array | Secret>): Buffer;
  openWithSecret(
    nonce: Uint8Array,
    aad: Uint8Array,
    sealed: Uint8Array,
    secretOffset: number,
    secretLength: number,
  ): { plaintext: Buffer; secret: Secret };
}

/**
 * An AEAD key schedule holding a per-direction IV natively: the nonce of record `seq` is
 * iv XOR (0^32 ‖ BE64(seq)), computed natively, so the IV never reaches JavaScript. `seq` and
 * `firstSeq` are safe integers from 0 (and firstSeq + count - 1 ≤ 2^53 - 1). Its explicit-nonce
 * methods (see {@link NativeAeadContext}) throw ERR_QT_INVALID_STATE.
 */
export interface NativeRecordAeadContext extends NativeAeadContextBase {
  sealRecord(dst: Uint8Array, dstOffset: number, seq: number, aad: Uint8Array, plaintext: Uint8Array): number;
  openRecord(dst: Uint8Array, dstOffset: number, seq: number, aad: Uint8Array, sealed: Uint8Array): number;
  /**
   * Opens a record whose ciphertext ‖ tag lies in `parts` (1..16 disjoint arrays, in order), each
   * decrypted in place: a record spanning socket reads needs no gathering copy. Returns the
   * plaintext length (the parts' first bytes, in order); on a bad tag wipes them and throws.
   */
  openRecordParts(parts: Uint8Array[], seq: number, aad: Uint8Array): number;
  /** `trailer` (0..255): a byte appended to every row's plaintext (v2's inner content type). */
  sealRecordBatch(src: Uint8Array, dst: Uint8Array, table: Uint32Array, count: number, firstSeq: number, trailer?: number): number;
  openRecordBatch(
    src: Uint8Array,
    dst: Uint8Array,
    table: Uint32Array,
    count: number,
    firstSeq: number,
    results: Int32Array,
  ): number;
}

export interface MlKemNativeSizes {
  publicKey: number;
  privateKey: number;
  ciphertext: number;
  sharedSecret: number;
  seed: number;
  encapsulationCoins: number;
  id: number;
}

export interface NativeProviderInfo {
  name: string;
  version: string;
  buildinfo: string;
  active: boolean;
}

export interface NativeInfo {
  openssl: string;
  opensslHeaders: string;
  mode: 'standard' | 'fips';
  fips: boolean;
  chacha20Compiled: boolean;
  chacha20Available: boolean;
  providers: NativeProviderInfo[];
}

/** The result of ML-KEM encapsulation. */
export interface Encapsulation {
  /** The ciphertext to send to the holder of the decapsulation key. */
  ciphertext: Buffer;
  /** The 32-byte shared secret, a native handle: destroy it when done. */
  sharedSecret: Secret;
}

type Part = Uint8Array | Secret;

export interface MlDsaNativeSizes {
  publicKey: number;
  privateKey: number;
  signature: number;
  seed: number;
  maxContext: number;
  id: number;
}

/** The fields of a certificate, as native code reads them once. */
export interface NativeCertificateInfo {
  version: number;
  subject: string;
  issuer: string;
  serialNumber: string;
  notBefore: number;
  notAfter: number;
  dnsNames: string[];
  ipAddresses: string[];
  keyUsage: string[] | null;
  extendedKeyUsage: string[] | null;
  isCA: boolean;
  pathLength: number | null;
  publicKeyAlgorithm: string;
  signatureAlgorithm: string;
  selfSigned: boolean;
  spkiFingerprint: Buffer;
  fingerprint256: Buffer;
}

/** An X.509 certificate parsed natively (an X509 object). Holds nothing secret; freed by GC. */
export interface NativeCertificate {
  info(): NativeCertificateInfo;
  publicKey(): PublicKey;
  der(): Buffer;
}

/** The addon's exports, as native/addon.cc registers them. */
export interface NativeAddon {
  setErrorConstructor(ctor: typeof QuantumTunnelError): void;
  info(): NativeInfo;
  mlkemSizes: Record<'ML-KEM-768' | 'ML-KEM-1024', MlKemNativeSizes>;
  mlkemGenerateKeyPair(kind: number, seed?: Uint8Array): PrivateKey;
  mlkemGenerateKeyPairAsync(kind: number): Promise<PrivateKey>;
  mlkemPublicKey(key: PrivateKey, kind: number): Buffer;
  mlkemCheckPublicKey(kind: number, publicKey: Uint8Array): true;
  mlkemImportPublicKey(kind: number, publicKey: Uint8Array): PublicKey;
  mlkemEncapsulate(kind: number, publicKey: Uint8Array | PublicKey, coins?: Uint8Array): Encapsulation;
  mlkemEncapsulateAsync(kind: number, publicKey: Uint8Array | PublicKey): Promise<Encapsulation>;
  mlkemDecapsulate(key: PrivateKey, kind: number, ciphertext: Uint8Array): Secret;
  mlkemDecapsulateAsync(key: PrivateKey, kind: number, ciphertext: Uint8Array): Promise<Secret>;
  mlkemPrivateKeyFromBytes(kind: number, bytes: Uint8Array): PrivateKey;
  x25519Sizes: {
    /** Public key, bytes (32). */
    publicKey: number;
    /** Private key, bytes (32). */
    privateKey: number;
    /** Shared secret, bytes (32). */
    sharedSecret: number;
  };
  x25519GenerateKeyPair(): PrivateKey;
  x25519PublicKey(key: PrivateKey): Buffer;
  x25519Derive(key: PrivateKey, peerPublicKey: Uint8Array): Secret;
  /**
   * Protocol v2's X25519 + ML-KEM exchange, one call per side's step (standard mode only; `group`
   * 0x0101 or 0x0103): the client's two key pairs and share; the server's share and K; the
   * client's K. With `async` true, the step runs as one threadpool job and a Promise is returned.
   */
  hybridClientShare(group: number, async: false): { classical: PrivateKey; mlkem: PrivateKey; share: Buffer };
  hybridClientShare(group: number, async: true): Promise<{ classical: PrivateKey; mlkem: PrivateKey; share: Buffer }>;
  hybridEncapsulate(group: number, version: number, clientShare: Uint8Array, label: Uint8Array, async: false): { share: Buffer; secret: Secret };
  hybridEncapsulate(group: number, version: number, clientShare: Uint8Array, label: Uint8Array, async: true): Promise<{ share: Buffer; secret: Secret }>;
  hybridDecapsulate(group: number, version: number, classicalKey: PrivateKey, mlkemKey: PrivateKey, clientShare: Uint8Array, serverShare: Uint8Array, label: Uint8Array, async: false): Secret;
  hybridDecapsulate(group: number, version: number, classicalKey: PrivateKey, mlkemKey: PrivateKey, clientShare: Uint8Array, serverShare: Uint8Array, label: Uint8Array, async: true): Promise<Secret>;
  x25519PrivateKeyFromBytes(bytes: Uint8Array): PrivateKey;
  p384Sizes: {
    /** Public key, bytes (97, an uncompressed point). */
    publicKey: number;
    /** Private key, bytes (48). */
    privateKey: number;
    /** Shared secret, bytes (48). */
    sharedSecret: number;
  };
  p384GenerateKeyPair(): PrivateKey;
  p384GenerateKeyPairAsync(): Promise<PrivateKey>;
  p384PublicKey(key: PrivateKey): Buffer;
  p384Derive(key: PrivateKey, peerPublicKey: Uint8Array): Secret;
  p384PrivateKeyFromBytes(bytes: Uint8Array): PrivateKey;
  mldsaSizes: MlDsaNativeSizes;
  mldsaGenerateKeyPair(seed?: Uint8Array): PrivateKey;
  mldsaPublicKey(key: PrivateKey): Buffer;
  mldsaImportPublicKey(publicKey: Uint8Array): PublicKey;
  mldsaSign(key: PrivateKey, message: Uint8Array, context: Uint8Array | undefined, deterministic: boolean): Buffer;
  mldsaVerify(publicKey: Uint8Array | PublicKey, message: Uint8Array, signature: Uint8Array, context: Uint8Array | undefined): boolean;
  mldsaSignAsync(key: PrivateKey, message: Uint8Array, context: Uint8Array | undefined, deterministic: boolean): Promise<Buffer>;
  mldsaVerifyAsync(publicKey: Uint8Array | PublicKey, message: Uint8Array, signature: Uint8Array, context?: Uint8Array): Promise<boolean>;
  mldsaSignForTesting(key: PrivateKey, message: Uint8Array, context: Uint8Array | undefined, rnd: Uint8Array, iface: number): Buffer;
  mldsaVerifyForTesting(
    publicKey: Uint8Array | PublicKey,
    message: Uint8Array,
    signature: Uint8Array,
    context: Uint8Array | undefined,
    iface: number,
  ): boolean;
  mldsaPrivateKeyFromBytes(bytes: Uint8Array): PrivateKey;
  keyFileLimits: {
    /** Fewest PBKDF2 iterations accepted (1000). */
    minIterations: number;
    /** Most PBKDF2 iterations written or read (10,000,000). */
    maxIterations: number;
    /** Longest passphrase, bytes (1024). */
    maxPassphrase: number;
  };
  keyExportPrivatePem(key: PrivateKey, passphrase: Uint8Array | undefined, iterations: number): Buffer;
  keyImportPrivatePem(pem: Uint8Array, passphrase: Uint8Array | undefined): PrivateKey;
  keyExportPublicPem(key: PrivateKey | PublicKey): string;
  keyImportPublic(spki: Uint8Array): PublicKey;
  keyPublicKey(key: PrivateKey): PublicKey;
  keyPublicBytes(key: PrivateKey | PublicKey): Buffer;
  keySpki(key: PrivateKey | PublicKey): Buffer;
  keySpkiFingerprint(key: PrivateKey | PublicKey): Buffer;
  x509Parse(input: Uint8Array): NativeCertificate[];
  x509Verify(
    leaf: NativeCertificate,
    intermediates: NativeCertificate[],
    trusted: NativeCertificate[],
    crls: Uint8Array[],
    time: number,
    name: string | undefined,
    nameKind: number,
    purpose: number,
    crlCheckAll: boolean,
  ): NativeCertificate[];
  x509Issue(
    issuerKey: PrivateKey,
    issuer: NativeCertificate | null,
    subjectKey: PrivateKey | PublicKey,
    subject: string[],
    serialNumber: Uint8Array | undefined,
    notBefore: number,
    notAfter: number,
    dnsNames: string[],
    ipAddresses: string[],
    isCA: boolean,
    pathLength: number,
    keyUsage: number,
    extendedKeyUsage: number,
  ): NativeCertificate;
  x509CreateCrl(
    issuerKey: PrivateKey,
    issuer: NativeCertificate,
    serials: Uint8Array[],
    revocationTimes: number[],
    thisUpdate: number,
    nextUpdate: number,
    crlNumber: number,
  ): Buffer;
  digestSizes: { sha3_256: number; sha384: number; maxShake256Output: number };
  shake256(parts: Part[], outputLength: number): Buffer;
  shake256Secrets(parts: Part[], sizes: number[]): Secret[];
  sha3_256(parts: Part[]): Buffer;
  sha384(parts: Uint8Array[]): Buffer;
  /** A running SHA-384 (public inputs): digest() hashes everything so far and goes on. */
  Sha384Hash: new () => { update(bytes: Uint8Array): void; digest(): Buffer };
  sha256(parts: Uint8Array[]): Buffer;
  hkdfDigests: {
    /** SHA-256 (HashLen 32). */
    SHA256: number;
    /** SHA-384 (HashLen 48). */
    SHA384: number;
  };
  hkdfSizes: {
    hashLength: { SHA256: number; SHA384: number };
    maxExpandBlocks: number;
    maxInfo: number;
    maxKeyInput: number;
    maxExpandOutputs: number;
  };
  hkdfExtract(digest: number, salt: Uint8Array | Secret | null, ikm: Part[], saltInfo?: Uint8Array): Secret;
  hkdfExpand(digest: number, prk: Secret, info: Uint8Array, length: number): Secret;
  hkdf(digest: number, salt: Uint8Array | Secret | null, ikm: Part[], info: Uint8Array, length: number): Secret;
  hkdfExpandSecrets(digest: number, prk: Secret, infos: Uint8Array[], lengths: number[]): Secret[];
  hkdfExpandAead(digest: number, secret: Secret, suite: number, keyInfo: Uint8Array, ivInfo: Uint8Array): NativeRecordAeadContext;
  hmac(digest: number, key: Secret, parts: Uint8Array[], keyInfo?: Uint8Array): Buffer;
  hmacVerify(digest: number, key: Secret, parts: Uint8Array[], expected: Uint8Array, keyInfo?: Uint8Array): boolean;
  aeadSizes: {
    /** Key, bytes (32). */
    key: number;
    /** Nonce, bytes (12). */
    nonce: number;
    /** A record context's IV, bytes (12). */
    iv: number;
    /** Authentication tag, bytes (16). */
    tag: number;
    /** Uint32 words per row of a `sealBatch`/`openBatch` table. */
    batchRowWords: number;
    /** Uint32 words per row of a `sealRecordBatch`/`openRecordBatch` table. */
    recordBatchRowWords: number;
  };
  aeadSuites: {
    /** AES-256-GCM, cipher suite 0x0001. */
    AES_256_GCM: number;
    /** ChaCha20-Poly1305, cipher suite 0x0002 (absent in FIPS mode). */
    CHACHA20_POLY1305: number;
  };
  aeadCreate(suite: number, key: Secret): NativeAeadContext;
  aeadCreate(suite: number, key: Secret, iv: Secret): NativeRecordAeadContext;
  randomFill<T extends Uint8Array>(buffer: T): T;
  randomSecret(length: number): Secret;
  importSecret(bytes: Uint8Array): Secret;
  timingSafeEqual(a: Part, b: Part): boolean;
  enableSecretExportForTesting(): boolean;
  exportSecretForTesting(secret: Secret): Buffer;
  secretStorageForTesting(secret: Secret): Buffer;
  secretFromBytesForTesting(bytes: Uint8Array): Secret;
  exportPrivateKeyForTesting(key: PrivateKey, kind: number): Buffer;
  buildProfile: 'fips' | 'standard';
  fipsLoad(moduleDir: string, configPath: string): true;
  fipsActivate(): true;
  fipsUseContext(mode: 'fips' | 'standard'): void;
  fipsProviderSelfTest(): boolean;
  fipsEnterErrorState(reason: string): void;
  fipsErrorState(): { failed: boolean; reason: string };
  fipsModuleMac(path: string, key: Uint8Array): Buffer;
  testingRepeatNextRandomBlock(): void;
  isOperational(): boolean;
}

function packageRoot(): string {
  // lib/native.ts (run from source) and dist/index.js (bundled) both sit one level below the root.
  const here = typeof __dirname === 'string' ? __dirname : dirname(fileURLToPath(import.meta.url));
  return resolve(here, '..');
}

/** The C library of this Linux machine (prebuilt addons exist per libc); undefined elsewhere. */
export function linuxLibc(): 'glibc' | 'musl' | undefined {
  if (process.platform !== 'linux') return undefined;
  // The C library mapped into this process names itself (a millisecond; Node's diagnostic report,
  // the fallback, takes tens).
  try {
    const maps = readFileSync('/proc/self/maps', 'utf8');
    if (/\/ld-musl-[^/\s]+\.so/.test(maps)) return 'musl';
    if (/\/libc\.so\.6\b/.test(maps)) return 'glibc';
  } catch {
    // no /proc: ask the report
  }
  return glibcVersion() === undefined ? 'musl' : 'glibc';
}

let glibc: { version: string | undefined } | undefined;

/** The running glibc's version (`2.36`), from Node's own diagnostic report; undefined on musl. */
function glibcVersion(): string | undefined {
  glibc ??= { version: reportedGlibc() };
  return glibc.version;
}

function reportedGlibc(): string | undefined {
  const report = process.report as NodeJS.ProcessReport & { excludeNetwork?: boolean };
  const excludeNetwork = report.excludeNetwork;
  report.excludeNetwork = true; // the report would otherwise resolve network interfaces (slow)
  try {
    return (report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime;
  } finally {
    report.excludeNetwork = excludeNetwork;
  }
}

/** The prebuilt addon's directory for this machine: prebuilds/<platform>-<arch>[-musl] (scripts/prebuild.cjs). */
export function prebuildDir(root = packageRoot()): string {
  return join(root, 'prebuilds', `${process.platform}-${process.arch}${linuxLibc() === 'musl' ? '-musl' : ''}`);
}

/**
 * Where the addon is looked for, in order. QUANTUM_TUNNEL_ADDON names one file explicitly.
 *
 * A local build comes before the prebuilt addon: in an installed package build/Release exists only
 * when a source build was chosen (scripts/install.cjs builds only when the prebuild does not load
 * here, for the FIPS profile, or on QUANTUM_TUNNEL_BUILD_FROM_SOURCE=1), and in a checkout it is
 * the build being worked on; a prebuild shipped in the tarball must shadow neither.
 */
export function addonCandidates(root = packageRoot()): string[] {
  const explicit = process.env.QUANTUM_TUNNEL_ADDON;
  if (explicit) return [resolve(explicit)];
  return [join(root, 'build', 'Release', 'quantum_tunnel.node'), join(prebuildDir(root), 'quantum_tunnel.node')];
}

/** What scripts/prebuild.cjs records next to a prebuilt addon (BUILD-INFO.json). */
interface PrebuildInfo {
  target: string;
  libc: 'glibc' | 'musl';
  glibcMin: string | null;
}

function readPrebuildInfo(dir: string): PrebuildInfo | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, 'BUILD-INFO.json'), 'utf8')) as PrebuildInfo;
  } catch {
    return undefined;
  }
}

function versionBelow(a: string, b: string): boolean {
  const [x, y] = [a.split('.').map(Number), b.split('.').map(Number)];
  for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) < (y[i] ?? 0);
  return false;
}

/** The prebuilds this package ships, for messages: `linux-x64 (glibc >= 2.34)`. */
function shippedPrebuilds(root: string): string[] {
  let dirs: string[];
  try {
    dirs = readdirSync(join(root, 'prebuilds'));
  } catch {
    return [];
  }
  return dirs.flatMap((d) => {
    const info = readPrebuildInfo(join(root, 'prebuilds', d));
    if (!info || !existsSync(join(root, 'prebuilds', d, 'quantum_tunnel.node'))) return [];
    return [`${d} (${info.libc}${info.glibcMin ? ` >= ${info.glibcMin}` : ''})`];
  });
}

/** Why the prebuilt addon in `dir` cannot run here (checked before dlopen), or undefined. */
function prebuildMismatch(dir: string): string | undefined {
  const info = readPrebuildInfo(dir);
  if (!info) return `${join(dir, 'BUILD-INFO.json')} is missing or unreadable`;
  const libc = linuxLibc();
  if (info.libc !== libc) return `it is built for ${info.libc} and this machine's C library is ${libc ?? process.platform}`;
  const glibc = libc === 'glibc' ? glibcVersion() : undefined;
  if (glibc && info.glibcMin && versionBelow(glibc, info.glibcMin)) return `it needs glibc >= ${info.glibcMin} and this machine has glibc ${glibc}`;
  return undefined;
}

/** The one message for "no addon can run here", with both ways out. */
function notLoadable(what: string, root: string): QuantumTunnelError {
  const platform = `${process.platform}-${process.arch}${linuxLibc() ? ` (${linuxLibc()})` : ''}`;
  const shipped = shippedPrebuilds(root);
  return new QuantumTunnelError(
    `${what}. Either build it from source on this machine (a C++17 compiler, make and python3; in a checkout ` +
      '`npm run build`; in a project that depends on quantum-tunnel, npm 12 first needs the install script ' +
      'approved: `npm install-scripts approve quantum-tunnel`, then `npm rebuild quantum-tunnel`), or run on a platform ' +
      `with a prebuilt addon (this is ${platform}; this package ships ${shipped.length > 0 ? shipped.join(', ') : 'none'}). ` +
      'README "Installing as a dependency"',
    ErrorCode.ADDON_NOT_FOUND,
  );
}

function load(): { addon: NativeAddon; path: string } {
  const root = packageRoot();
  const requireNative = createRequire(join(root, 'package.json'));
  const candidates = addonCandidates(root);
  const path = candidates.find((p) => existsSync(p));
  if (path === undefined) throw notLoadable(`the quantum-tunnel addon is not built (looked in ${candidates.join(', ')})`, root);
  const prebuilt = path === join(prebuildDir(root), 'quantum_tunnel.node') && !process.env.QUANTUM_TUNNEL_ADDON;
  if (prebuilt) {
    const mismatch = prebuildMismatch(dirname(path));
    if (mismatch) throw notLoadable(`the prebuilt addon ${path} cannot run here: ${mismatch}`, root);
  }
  let addon: NativeAddon;
  try {
    addon = requireNative(path) as NativeAddon;
  } catch (e) {
    if (!prebuilt) throw e;
    throw notLoadable(`the prebuilt addon ${path} does not load here (${(e as Error).message.split('\n')[0]})`, root);
  }
  addon.setErrorConstructor(QuantumTunnelError);
  return { addon, path };
}

const loaded = load();

/** The loaded addon. */
export const native: NativeAddon = loaded.addon;
/** The file it was loaded from. */
export const addonPath: string = loaded.path;
