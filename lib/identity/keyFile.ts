/**
 * Identity key files: the private key of pinned-key authentication, as standard PKCS#8 that
 * OpenSSL reads (`openssl pkey -in FILE`), one PEM block per half of the hybrid key:
 *
 *   # quantum-vpn identity key, x25519-mlkem1024, SHA256:…
 *   -----BEGIN PRIVATE KEY-----            (X25519 or P-384, PKCS#8)
 *   -----END PRIVATE KEY-----
 *   -----BEGIN PRIVATE KEY-----            (ML-KEM-1024 or ML-KEM-768, PKCS#8)
 *   -----END PRIVATE KEY-----
 *
 * Either block may be "ENCRYPTED PRIVATE KEY" (PBES2, with a passphrase). The group follows from
 * the two key types. The file's bytes never become a JS string: blocks are found by their public
 * markers and handed to the addon as byte ranges, and the buffer is zero-filled afterwards.
 */
import { ErrorCode, qtError } from '../errors.js';
import { exportPrivateKeyPem, importPrivateKeyPem } from '../crypto/keyFiles.js';
import type { PrivateKey } from '../native.js';
import { destroyAll } from '../crypto/secret.js';
import { KEM_GROUPS } from '../protocol/v2/groups.js';
import { IdentityKey } from './keys.js';

const BEGIN = Buffer.from('-----BEGIN ');
const END = Buffer.from('-----END ');

/** The classical and ML-KEM algorithm names of each group. */
function groupOfAlgorithms(classical: string, mlkem: string) {
  return KEM_GROUPS.find((g) => {
    const [c, m] = g.displayName.split(' + ');
    return c === classical && m === mlkem;
  });
}

/** Byte ranges of the PEM blocks in `file`, markers included. */
function pemBlocks(file: Buffer): Buffer[] {
  const blocks: Buffer[] = [];
  let at = 0;
  for (;;) {
    const begin = file.indexOf(BEGIN, at);
    if (begin < 0) break;
    const end = file.indexOf(END, begin);
    if (end < 0) break;
    const lineEnd = file.indexOf(0x0a, end);
    const stop = lineEnd < 0 ? file.length : lineEnd + 1;
    blocks.push(file.subarray(begin, stop));
    at = stop;
  }
  return blocks;
}

/**
 * The identity key in a key file's bytes (which the caller zero-fills). Throws
 * ERR_QT_BAD_PASSPHRASE for a wrong or missing passphrase, ERR_QT_INVALID_KEY for anything that is
 * not an identity key.
 */
export function decodeIdentityKeyFile(file: Buffer, options: { passphrase?: Uint8Array } = {}): IdentityKey {
  const blocks = pemBlocks(file);
  if (blocks.length !== 2) throw qtError(ErrorCode.INVALID_KEY, `an identity key file holds two PEM blocks (the classical and the ML-KEM key), not ${blocks.length}`);
  const keys: PrivateKey[] = [];
  try {
    for (const block of blocks) keys.push(importPrivateKeyPem(block, { passphrase: options.passphrase }));
    const group = groupOfAlgorithms(keys[0]!.algorithm, keys[1]!.algorithm);
    if (group === undefined) throw qtError(ErrorCode.INVALID_KEY, `${keys[0]!.algorithm} and ${keys[1]!.algorithm} are not the halves of an identity key (a classical key, then an ML-KEM key)`);
    return IdentityKey.fromPrivateKeys(group, keys[0]!, keys[1]!);
  } catch (err) {
    destroyAll(...keys);
    throw err;
  }
}

/**
 * A key file's bytes for `key` (write them with mode 0600; the caller zero-fills them). With a
 * passphrase both halves are encrypted (PBES2: PBKDF2-HMAC-SHA-256, AES-256-CBC).
 */
export function encodeIdentityKeyFile(key: IdentityKey, options: { passphrase?: Uint8Array; comment?: string } = {}): Buffer {
  const { classical, mlkem } = key.keyPair.privateKeys();
  const header = Buffer.from(
    `# quantum-vpn identity key, ${key.group.option}, ${key.fingerprint}${options.comment ? `, ${options.comment.replace(/[\r\n]/g, ' ')}` : ''}\n` +
      '# Keep it secret (mode 0600); the public key is in the .pub file next to it.\n',
    'utf8',
  );
  const parts = [exportPrivateKeyPem(classical, { passphrase: options.passphrase }), exportPrivateKeyPem(mlkem, { passphrase: options.passphrase })];
  try {
    return Buffer.concat([header, ...parts]);
  } finally {
    for (const p of parts) p.fill(0);
  }
}
