/**
 * Key files: PKCS#8 PEM private keys (plain and PBES2-encrypted) and SPKI public keys for the five
 * identity key kinds, typed errors for wrong passphrases and bad files, interoperability with the
 * OpenSSL 3.5 command line both ways (fixtures it made; live when the CLI is present), and
 * PKCS#8 decryption in FIPS mode.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crypto, QuantumTunnelError } from '../../lib/index.js';
import { addonPath, native, type PrivateKey } from '../../lib/native.js';
import { runChild } from '../helpers/child.js';
import { openssl, opensslCli } from '../helpers/opensslCli.js';

const { keyFiles, mldsa87, mlkem1024, mlkem768, x25519, p384 } = crypto;
const fixture = (name: string): Buffer => readFileSync(fileURLToPath(new URL(`../fixtures/pki/${name}`, import.meta.url)));
const PASS = Buffer.from('correct horse battery staple');
const FAST = 1000; // the smallest iteration count allowed: the tests need not be slow

function expectCode(fn: () => unknown, code: string, what: string): void {
  expect(fn, what).to.throw(QuantumTunnelError).with.property('code', code);
}

/** DER: one TLV. */
function tlv(tag: number, ...parts: Uint8Array[]): Buffer {
  const body = Buffer.concat(parts);
  const n = body.length;
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return Buffer.concat([Buffer.from([tag, ...len]), body]);
}
const oid = (hexBody: string): Buffer => tlv(0x06, Buffer.from(hexBody, 'hex'));
const OID_PBES2 = '2a864886f70d01050d';
const OID_PBKDF2 = '2a864886f70d01050c';
const OID_HMAC_SHA256 = '2a864886f70d0209';
const OID_AES256_CBC = '60864801650304012a'; // 2.16.840.1.101.3.4.1.42
function derInteger(n: bigint): Buffer {
  let h = n.toString(16);
  if (h.length % 2) h = `0${h}`;
  if (parseInt(h.slice(0, 2), 16) & 0x80) h = `00${h}`;
  return tlv(0x02, Buffer.from(h, 'hex'));
}

/** An EncryptedPrivateKeyInfo (PBES2, PBKDF2-HMAC-SHA-256, AES-256-CBC) around random "ciphertext". */
function craftedEncryptedKey(iterations: bigint, saltLength = 16): string {
  const kdf = tlv(0x30, oid(OID_PBKDF2), tlv(0x30, tlv(0x04, Buffer.alloc(saltLength, 1)), derInteger(iterations), tlv(0x30, oid(OID_HMAC_SHA256), Buffer.from([5, 0]))));
  const enc = tlv(0x30, oid(OID_AES256_CBC), tlv(0x04, Buffer.alloc(16, 2)));
  const der = tlv(0x30, tlv(0x30, oid(OID_PBES2), tlv(0x30, kdf, enc)), tlv(0x04, Buffer.alloc(64, 3)));
  return `-----BEGIN ENCRYPTED PRIVATE KEY-----\n${der.toString('base64')}\n-----END ENCRYPTED PRIVATE KEY-----\n`;
}

function pemBody(pem: string | Buffer): Buffer {
  return Buffer.from(pem.toString().replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
}

interface Kind {
  name: 'ML-DSA-87' | 'ML-KEM-1024' | 'ML-KEM-768' | 'X25519' | 'P-384';
  generate(): { privateKey: PrivateKey; publicKey: Buffer };
  /** Proves `imported` is the same private key as `original` by using both. */
  sameKey(original: { privateKey: PrivateKey; publicKey: Buffer }, imported: PrivateKey): boolean;
}

const KINDS: Kind[] = [
  {
    name: 'ML-DSA-87',
    generate: () => mldsa87.generateKeyPair(),
    sameKey: (o, k) => mldsa87.verify(o.publicKey, Buffer.from('m'), mldsa87.sign(k, Buffer.from('m'))),
  },
  ...[mlkem1024, mlkem768].map((kem) => ({
    name: kem.name,
    generate: () => kem.generateKeyPair(),
    sameKey: (o: { publicKey: Buffer }, k: PrivateKey) => {
      const e = kem.encapsulate(o.publicKey);
      return crypto.timingSafeEqual(kem.decapsulate(k, e.ciphertext), e.sharedSecret);
    },
  })),
  {
    name: 'X25519',
    generate: () => x25519.generateKeyPair(),
    sameKey: (o, k) => {
      const peer = x25519.generateKeyPair();
      return crypto.timingSafeEqual(x25519.deriveSharedSecret(k, peer.publicKey), x25519.deriveSharedSecret(peer.privateKey, o.publicKey));
    },
  },
  {
    name: 'P-384',
    generate: () => p384.generateKeyPair(),
    sameKey: (o, k) => {
      const peer = p384.generateKeyPair();
      return crypto.timingSafeEqual(p384.deriveSharedSecret(k, peer.publicKey), p384.deriveSharedSecret(peer.privateKey, o.publicKey));
    },
  },
];

describe('key files: PKCS#8 private keys and SPKI public keys', () => {
  for (const kind of KINDS) {
    describe(kind.name, () => {
      const kp = kind.generate();

      it('a plain PKCS#8 PEM round trip gives the same key', () => {
        const pem = keyFiles.exportPrivateKeyPem(kp.privateKey);
        expect(pem).to.be.instanceOf(Buffer);
        expect(pem.toString()).to.match(/^-----BEGIN PRIVATE KEY-----\n[A-Za-z0-9+/=\n]+-----END PRIVATE KEY-----\n$/);
        const k = keyFiles.importPrivateKeyPem(pem, { algorithm: kind.name });
        expect(k.algorithm).to.equal(kind.name);
        expect(kind.sameKey(kp, k)).to.equal(true);
        expect(keyFiles.publicKeyBytes(k).equals(keyFiles.publicKeyBytes(kp.privateKey))).to.equal(true);
        // Text input works too; a passphrase given for a plain file is not needed and does no harm.
        expect(keyFiles.importPrivateKeyPem(pem.toString(), { passphrase: PASS }).algorithm).to.equal(kind.name);
        k.destroy();
      });

      it('an encrypted PEM decrypts with the passphrase only (ERR_QT_BAD_PASSPHRASE otherwise)', () => {
        const pem = keyFiles.exportPrivateKeyPem(kp.privateKey, { passphrase: PASS, iterations: FAST });
        expect(pem.toString()).to.match(/^-----BEGIN ENCRYPTED PRIVATE KEY-----\n/);
        expect(pem.toString()).to.not.include(keyFiles.exportPrivateKeyPem(kp.privateKey).toString().split('\n')[1]);
        const k = keyFiles.importPrivateKeyPem(pem, { passphrase: Buffer.from(PASS) });
        expect(kind.sameKey(kp, k)).to.equal(true);
        expectCode(() => keyFiles.importPrivateKeyPem(pem, { passphrase: Buffer.from('correct horse battery stapl3') }), 'ERR_QT_BAD_PASSPHRASE', 'wrong');
        expectCode(() => keyFiles.importPrivateKeyPem(pem), 'ERR_QT_BAD_PASSPHRASE', 'none');
        // Fresh salt and IV every time.
        expect(keyFiles.exportPrivateKeyPem(kp.privateKey, { passphrase: PASS, iterations: FAST }).equals(pem)).to.equal(false);
      });

      it('SPKI PEM and DER round trips give the same public key, fingerprint SHA-256(SPKI DER)', () => {
        const pem = keyFiles.exportPublicKeyPem(kp.privateKey);
        expect(pem).to.match(/^-----BEGIN PUBLIC KEY-----\n[A-Za-z0-9+/=\n]+-----END PUBLIC KEY-----\n$/);
        const der = keyFiles.spkiDer(kp.privateKey);
        expect(pemBody(pem).equals(der)).to.equal(true);
        for (const input of [pem, Buffer.from(pem), der]) {
          const pub = keyFiles.importPublicKey(input, { algorithm: kind.name });
          expect(pub.algorithm).to.equal(kind.name);
          expect(keyFiles.publicKeyBytes(pub).equals(kp.publicKey), 'the raw encoding of each module').to.equal(true);
          expect(keyFiles.spkiDer(pub).equals(der)).to.equal(true);
          pub.destroy();
        }
        const fp = keyFiles.spkiFingerprint(kp.privateKey);
        expect(fp.toString('hex')).to.equal(createHash('sha256').update(der).digest('hex'));
        const half = keyFiles.publicKeyOf(kp.privateKey);
        expect(half.algorithm).to.equal(kind.name);
        expect(keyFiles.spkiFingerprint(half).equals(fp)).to.equal(true);
        expect(keyFiles.exportPublicKeyPem(half)).to.equal(pem);
      });
    });
  }

  it('imported public keys are usable: ML-KEM encapsulation and ML-DSA verification to the handle', () => {
    const kem = mlkem1024.generateKeyPair();
    const ek = keyFiles.importPublicKey(keyFiles.exportPublicKeyPem(kem.privateKey));
    const e = mlkem1024.encapsulate(ek);
    expect(crypto.timingSafeEqual(mlkem1024.decapsulate(kem.privateKey, e.ciphertext), e.sharedSecret)).to.equal(true);
    const sig = mldsa87.generateKeyPair();
    const pk = keyFiles.importPublicKey(keyFiles.spkiDer(sig.privateKey), { algorithm: 'ML-DSA-87' });
    expect(mldsa87.verify(pk, Buffer.from('x'), mldsa87.sign(sig.privateKey, Buffer.from('x')))).to.equal(true);
  });

  it('writes PBES2 with PBKDF2-HMAC-SHA-256, a 16-byte salt, AES-256-CBC and the iteration count asked for (600,000 by default)', () => {
    const { privateKey } = p384.generateKeyPair();
    const der = pemBody(keyFiles.exportPrivateKeyPem(privateKey, { passphrase: PASS, iterations: 1234 }));
    const hexDer = der.toString('hex');
    for (const o of [OID_PBES2, OID_PBKDF2, OID_HMAC_SHA256, OID_AES256_CBC]) expect(hexDer, o).to.include(oid(o).toString('hex'));
    // PBKDF2-params start with the salt, an OCTET STRING of 16 bytes; the IV is 16 bytes too.
    expect(hexDer).to.match(new RegExp(`${oid(OID_PBKDF2).toString('hex')}30[0-9a-f]{2}0410`));
    expect(hexDer).to.include(`${oid(OID_AES256_CBC).toString('hex')}0410`);
    expect(hexDer).to.include(derInteger(1234n).toString('hex'));
    expect(keyFiles.DEFAULT_PBKDF2_ITERATIONS).to.equal(600_000);
    const dflt = pemBody(keyFiles.exportPrivateKeyPem(privateKey, { passphrase: PASS })).toString('hex');
    expect(dflt).to.include(derInteger(600_000n).toString('hex'));
    expect(keyFiles.importPrivateKeyPem(keyFiles.exportPrivateKeyPem(privateKey, { passphrase: PASS, iterations: 1234 }), { passphrase: PASS }).algorithm).to.equal('P-384');
  });

  it('reads the passphrase and forgets it: changing the caller\'s buffer afterwards changes nothing', () => {
    const { privateKey } = mldsa87.generateKeyPair();
    const pass = Buffer.from('ephemeral passphrase');
    const pem = keyFiles.exportPrivateKeyPem(privateKey, { passphrase: pass, iterations: FAST });
    pass.fill(0);
    expect(keyFiles.importPrivateKeyPem(pem, { passphrase: Buffer.from('ephemeral passphrase') }).algorithm).to.equal('ML-DSA-87');
    expectCode(() => keyFiles.importPrivateKeyPem(pem, { passphrase: pass }), 'ERR_QT_BAD_PASSPHRASE', 'the zeroed buffer');
  });

  it('refuses an algorithm other than the one asked for, and destroys the key it read', () => {
    const pem = keyFiles.exportPrivateKeyPem(mlkem1024.generateKeyPair().privateKey);
    expectCode(() => keyFiles.importPrivateKeyPem(pem, { algorithm: 'ML-DSA-87' }), 'ERR_QT_INVALID_KEY', 'private');
    expectCode(() => keyFiles.importPublicKey(keyFiles.exportPublicKeyPem(keyFiles.importPrivateKeyPem(pem)), { algorithm: 'X25519' }), 'ERR_QT_INVALID_KEY', 'public');
    expectCode(() => keyFiles.importPrivateKeyPem(pem, { algorithm: 'RSA' as never }), 'ERR_QT_INVALID_ARGUMENT', 'unknown algorithm');
  });

  it('refuses malformed files and other PEM kinds with typed errors', () => {
    const good = keyFiles.exportPrivateKeyPem(mldsa87.generateKeyPair().privateKey).toString();
    const body = pemBody(good);
    const wrap = (label: string, der: Buffer): string => `-----BEGIN ${label}-----\n${der.toString('base64')}\n-----END ${label}-----\n`;
    const cases: Array<[string, string, string]> = [
      ['not PEM', 'hello', 'ERR_QT_INVALID_KEY'],
      ['empty', '', 'ERR_QT_INVALID_KEY'],
      ['a public key', keyFiles.exportPublicKeyPem(p384.generateKeyPair().privateKey), 'ERR_QT_INVALID_KEY'],
      ['a certificate label', wrap('CERTIFICATE', body), 'ERR_QT_INVALID_KEY'],
      ['traditional EC', wrap('EC PRIVATE KEY', body), 'ERR_QT_INVALID_KEY'],
      ['truncated DER', wrap('PRIVATE KEY', body.subarray(0, body.length - 10)), 'ERR_QT_INVALID_KEY'],
      ['trailing bytes', wrap('PRIVATE KEY', Buffer.concat([body, Buffer.from([0])])), 'ERR_QT_INVALID_KEY'],
      ['bad base64', good.replace(/\n[A-Za-z0-9+/]{8}/, '\n!!!!!!!!'), 'ERR_QT_INVALID_KEY'],
      // RFC 8410 §10.3: an Ed25519 private key, which is none of ours.
      ['Ed25519', '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n', 'ERR_QT_UNSUPPORTED_ALGORITHM'],
      ['encrypted, malformed', wrap('ENCRYPTED PRIVATE KEY', body), 'ERR_QT_INVALID_KEY'],
    ];
    for (const [what, pem, code] of cases) expectCode(() => keyFiles.importPrivateKeyPem(pem, { passphrase: PASS }), code, what);
    // An ML-DSA key whose seed and expanded key disagree: the last byte of the expanded key changed.
    const bad = Buffer.from(body);
    bad[bad.length - 1]! ^= 1;
    expectCode(() => keyFiles.importPrivateKeyPem(wrap('PRIVATE KEY', bad)), 'ERR_QT_INVALID_KEY', 'inconsistent seed and key');
  });

  it('refuses bad public keys: not SPKI, an off-curve P-384 point, an ML-KEM key failing the modulus check, another algorithm', () => {
    expectCode(() => keyFiles.importPublicKey(Buffer.from('nope')), 'ERR_QT_INVALID_KEY', 'garbage');
    const p = keyFiles.spkiDer(p384.generateKeyPair().privateKey);
    p[p.length - 1]! ^= 1;
    expectCode(() => keyFiles.importPublicKey(p), 'ERR_QT_INVALID_KEY', 'off curve');
    const k = keyFiles.spkiDer(mlkem1024.generateKeyPair().privateKey);
    k.fill(0xff, k.length - 1568, k.length - 1568 + 12); // coefficients ≥ q
    expectCode(() => keyFiles.importPublicKey(k), 'ERR_QT_INVALID_KEY', 'ML-KEM modulus');
    const x = keyFiles.spkiDer(x25519.generateKeyPair().privateKey);
    expectCode(() => keyFiles.importPublicKey(Buffer.concat([x, Buffer.from([0])])), 'ERR_QT_INVALID_KEY', 'trailing byte');
    // RFC 8410 §10.1: an Ed25519 public key.
    const ed = '-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n';
    expectCode(() => keyFiles.importPublicKey(ed), 'ERR_QT_UNSUPPORTED_ALGORITHM', 'Ed25519');
    expectCode(() => keyFiles.importPublicKey(keyFiles.exportPrivateKeyPem(p384.generateKeyPair().privateKey)), 'ERR_QT_INVALID_KEY', 'a private key PEM');
  });

  it('refuses a file asking for more than 10,000,000 PBKDF2 iterations before running any', () => {
    const t0 = Date.now();
    expectCode(() => keyFiles.importPrivateKeyPem(craftedEncryptedKey(2n ** 31n), { passphrase: PASS }), 'ERR_QT_INVALID_KEY', '2^31');
    expectCode(() => keyFiles.importPrivateKeyPem(craftedEncryptedKey(2n ** 70n), { passphrase: PASS }), 'ERR_QT_INVALID_KEY', '2^70');
    expect(Date.now() - t0).to.be.below(1000);
    // Within the limit the file is decrypted (and its garbage refused as a wrong passphrase), except
    // in FIPS mode, where 500 iterations are below SP 800-132's minimum.
    const fips = crypto.info().fips;
    expectCode(() => keyFiles.importPrivateKeyPem(craftedEncryptedKey(500n), { passphrase: PASS }), fips ? 'ERR_QT_FIPS_NOT_APPROVED' : 'ERR_QT_BAD_PASSPHRASE', '500');
    expectCode(() => keyFiles.importPrivateKeyPem(craftedEncryptedKey(2000n), { passphrase: PASS }), 'ERR_QT_BAD_PASSPHRASE', '2000');
  });

  it('checks its arguments in JS and again natively', () => {
    const { privateKey } = mldsa87.generateKeyPair();
    expectCode(() => keyFiles.exportPrivateKeyPem(privateKey, { passphrase: PASS, iterations: 999 }), 'ERR_QT_INVALID_ARGUMENT', 'iterations 999');
    expectCode(() => native.keyExportPrivatePem(privateKey, PASS, 999), 'ERR_QT_INVALID_ARGUMENT', 'native iterations 999');
    expectCode(() => native.keyExportPrivatePem(privateKey, PASS, 10_000_001), 'ERR_QT_INVALID_ARGUMENT', 'native iterations 10M+1');
    expectCode(() => keyFiles.exportPrivateKeyPem(privateKey, { passphrase: Buffer.alloc(0) }), 'ERR_QT_INVALID_ARGUMENT', 'empty passphrase');
    expectCode(() => native.keyExportPrivatePem(privateKey, Buffer.alloc(1025, 1), FAST), 'ERR_QT_INVALID_ARGUMENT', 'long passphrase');
    expectCode(() => keyFiles.exportPrivateKeyPem(privateKey, { passphrase: 'text' as never }), 'ERR_QT_INVALID_ARGUMENT', 'string passphrase');
    expectCode(() => keyFiles.exportPrivateKeyPem(keyFiles.publicKeyOf(privateKey) as never), 'ERR_QT_INVALID_ARGUMENT', 'a public key');
    expectCode(() => keyFiles.spkiFingerprint({} as never), 'ERR_QT_INVALID_ARGUMENT', 'not a key');
    expectCode(() => native.keySpkiFingerprint(Buffer.alloc(3) as never), 'ERR_QT_INVALID_ARGUMENT', 'native, not a key');
    expectCode(() => native.keyImportPrivatePem(Buffer.alloc((1 << 20) + 1), undefined), 'ERR_QT_INVALID_ARGUMENT', 'over 1 MiB');
    const k = mldsa87.generateKeyPair().privateKey;
    k.destroy();
    expectCode(() => keyFiles.exportPrivateKeyPem(k), 'ERR_QT_HANDLE_DESTROYED', 'destroyed');
    expectCode(() => keyFiles.publicKeyBytes(k), 'ERR_QT_HANDLE_DESTROYED', 'destroyed');
  });

  it('reads the keys the OpenSSL CLI wrote (fixtures): an encrypted ML-DSA-87 leaf key and a plain CA key', () => {
    const leafKey = keyFiles.importPrivateKeyPem(fixture('cli-leaf-key.pem'), { passphrase: Buffer.from('cli-passphrase'), algorithm: 'ML-DSA-87' });
    const leafCert = crypto.x509.parseCertificate(fixture('cli-leaf.pem'));
    expect(keyFiles.spkiFingerprint(leafKey).equals(leafCert.spkiFingerprint)).to.equal(true);
    expectCode(() => keyFiles.importPrivateKeyPem(fixture('cli-leaf-key.pem'), { passphrase: Buffer.from('cli-passphrasE') }), 'ERR_QT_BAD_PASSPHRASE', 'wrong');
    const caKey = keyFiles.importPrivateKeyPem(fixture('cli-ca-key.pem'));
    expect(keyFiles.spkiFingerprint(caKey).equals(crypto.x509.parseCertificate(fixture('cli-ca.pem')).spkiFingerprint)).to.equal(true);
    // A key read from a file signs like any other.
    const sig = mldsa87.sign(leafKey, Buffer.from('hello'));
    expect(mldsa87.verify(leafCert.publicKey(), Buffer.from('hello'), sig)).to.equal(true);
  });

  describe('with the OpenSSL 3.5 command line (skipped when absent)', function () {
    let dir = '';
    before(function () {
      if (opensslCli === undefined) this.skip();
      dir = mkdtempSync(join(tmpdir(), 'qt-keyfiles-cli-'));
    });
    after(() => dir && rmSync(dir, { recursive: true, force: true }));

    it('the CLI decrypts our encrypted keys (and refuses a wrong passphrase) and reads our public keys', () => {
      for (const kind of KINDS) {
        const kp = kind.generate();
        const file = join(dir, `${kind.name}.pem`);
        writeFileSync(file, keyFiles.exportPrivateKeyPem(kp.privateKey, { passphrase: PASS, iterations: 2000 }), { mode: 0o600 });
        const pub = openssl(['pkey', '-in', file, '-passin', `pass:${PASS.toString()}`, '-pubout']);
        expect(pub.status, `${kind.name}: ${pub.stderr}`).to.equal(0);
        expect(pub.stdout, kind.name).to.equal(keyFiles.exportPublicKeyPem(kp.privateKey));
        expect(openssl(['pkey', '-in', file, '-passin', 'pass:wrong passphrase', '-noout']).status, `${kind.name} wrong`).to.not.equal(0);
        const pubFile = join(dir, `${kind.name}.pub.pem`);
        writeFileSync(pubFile, keyFiles.exportPublicKeyPem(kp.privateKey));
        const der = openssl(['pkey', '-pubin', '-in', pubFile, '-outform', 'DER', '-out', join(dir, 'pub.der')]);
        expect(der.status, der.stderr).to.equal(0);
        expect(readFileSync(join(dir, 'pub.der')).equals(keyFiles.spkiDer(kp.privateKey)), kind.name).to.equal(true);
      }
    });

    it('we read keys the CLI generates now, plain and encrypted, of every kind', () => {
      const algs: Array<[string, string[]]> = [
        ['ML-DSA-87', ['-algorithm', 'ML-DSA-87']],
        ['ML-KEM-1024', ['-algorithm', 'ML-KEM-1024']],
        ['ML-KEM-768', ['-algorithm', 'ML-KEM-768']],
        ['X25519', ['-algorithm', 'X25519']],
        ['P-384', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384']],
      ];
      for (const [name, args] of algs) {
        const plain = join(dir, `cli-${name}.pem`);
        const enc = join(dir, `cli-${name}.enc.pem`);
        expect(openssl(['genpkey', ...args, '-out', plain]).status, name).to.equal(0);
        expect(openssl(['pkcs8', '-topk8', '-in', plain, '-v2', 'aes-256-cbc', '-passout', 'pass:cli pass', '-out', enc]).status, name).to.equal(0);
        const a = keyFiles.importPrivateKeyPem(readFileSync(plain), { algorithm: name as never });
        const b = keyFiles.importPrivateKeyPem(readFileSync(enc), { passphrase: Buffer.from('cli pass'), algorithm: name as never });
        const cliPub = openssl(['pkey', '-in', plain, '-pubout']).stdout;
        expect(keyFiles.exportPublicKeyPem(a), name).to.equal(cliPub);
        expect(keyFiles.exportPublicKeyPem(b), name).to.equal(cliPub);
        expect(keyFiles.importPublicKey(cliPub).algorithm).to.equal(name);
      }
    });
  });
});

/** FIPS mode in a child process, configured for this machine (skipped without a FIPS module). */
describe('key files in FIPS mode', function () {
  this.timeout(120_000);
  let configDir = '';

  before(function () {
    if (!existsSync(join(dirname(addonPath), 'ossl-modules', 'fips.so'))) this.skip();
    configDir = mkdtempSync(join(tmpdir(), 'qt-keyfiles-fips-'));
    const root = fileURLToPath(new URL('../..', import.meta.url));
    execFileSync('bash', [join(root, 'fips/install.sh'), dirname(addonPath)], { env: { ...process.env, QUANTUM_TUNNEL_FIPS_DIR: configDir }, stdio: 'pipe' });
  });
  after(() => configDir && rmSync(configDir, { recursive: true, force: true }));

  it('encrypts and decrypts PKCS#8 with the FIPS provider (PBKDF2, AES-256-CBC), refuses weak PBKDF2 parameters and, in strict mode, X25519 keys', () => {
    const r = runChild(
      `
      const { keyFiles, mldsa87, p384, mlkem1024 } = qt.crypto;
      const pass = Buffer.from('fips passphrase');
      const out = { mode: qt.crypto.info().mode, provider: qt.crypto.info().providers[0].name, roundTrips: [] };
      for (const kp of [mldsa87.generateKeyPair(), p384.generateKeyPair(), mlkem1024.generateKeyPair()]) {
        const pem = keyFiles.exportPrivateKeyPem(kp.privateKey, { passphrase: pass, iterations: 1000 });
        const k = keyFiles.importPrivateKeyPem(pem, { passphrase: pass });
        out.roundTrips.push(k.algorithm + ':' + keyFiles.spkiFingerprint(k).equals(keyFiles.spkiFingerprint(kp.privateKey)));
        try { keyFiles.importPrivateKeyPem(pem, { passphrase: Buffer.from('wrong') }); } catch (e) { out.wrong = e.code; }
      }
      const cliKey = keyFiles.importPrivateKeyPem(${JSON.stringify(fixture('cli-leaf-key.pem').toString())}, { passphrase: Buffer.from('cli-passphrase') });
      out.cli = cliKey.algorithm;
      for (const [name, pem] of [['iter500', ${JSON.stringify(craftedEncryptedKey(500n))}], ['salt8', ${JSON.stringify(craftedEncryptedKey(2048n, 8))}]]) {
        try { keyFiles.importPrivateKeyPem(pem, { passphrase: pass }); out[name] = 'accepted'; } catch (e) { out[name] = e.code; }
      }
      try { keyFiles.importPrivateKeyPem(${JSON.stringify(keyFiles.exportPrivateKeyPem(x25519.generateKeyPair().privateKey).toString())}); out.x25519 = 'accepted'; } catch (e) { out.x25519 = e.code; }
      return out;`,
      { QUANTUM_TUNNEL_FIPS_DIR: configDir, QUANTUM_TUNNEL_FIPS: '1', QUANTUM_TUNNEL_FIPS_STRICT: '1' },
    );
    expect(r.json?.ok, r.stdout + r.stderr).to.equal(true);
    expect(r.json.value).to.deep.equal({
      mode: 'fips',
      provider: 'OpenSSL FIPS Provider',
      roundTrips: ['ML-DSA-87:true', 'P-384:true', 'ML-KEM-1024:true'],
      wrong: 'ERR_QT_BAD_PASSPHRASE',
      cli: 'ML-DSA-87',
      iter500: 'ERR_QT_FIPS_NOT_APPROVED',
      salt8: 'ERR_QT_FIPS_NOT_APPROVED',
      x25519: 'ERR_QT_FIPS_NOT_APPROVED',
    });
  });
});
