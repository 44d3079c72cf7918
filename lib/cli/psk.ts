/**
 * Pre-shared keys for the CLI (protocol v2 authentication): the `--psk-file` format, its loader,
 * and `quantum-vpn psk generate`.
 *
 * A PSK file is text, one key per line:
 *
 *   # comments and blank lines are ignored
 *   IDENTITY:HEXKEY
 *
 * IDENTITY names the key (sent in the clear in the ClientHello; 1 to 1,024 bytes of UTF-8, any
 * character but a line break; the key is what follows the last ":"). HEXKEY is the key in
 * hexadecimal, at least 32 bytes (64 hex digits). A line may hold a bare HEXKEY, whose identity
 * is then `--psk-identity`. The file must be accessible by its owner only (as ssh requires of a
 * private key): any permission for the group or others is refused.
 *
 * The key bytes are decoded from the file's bytes without ever becoming a JS string, handed to
 * `crypto.importSecret()` (which copies them into native memory and zero-fills the buffer), and
 * the file's buffer is zero-filled too: afterwards the key lives only in native memory. Nothing
 * here prints or logs a key.
 */
import type { Secret } from '../native.js';
import { importSecret, randomBytes, randomFill } from '../crypto/random.js';
import type { PskOption } from '../tunnel/options.js';
import { CliError, type FlagSpec, type FlagValues, type ParsedArgs, printable, UsageError } from './args.js';
import { type Command, out } from './common.js';
import { readPrivateFile, writePrivateFile } from './privateFiles.js';

/** Shortest key accepted, in bytes (the library's minimum). */
export const MIN_PSK_BYTES = 32;
/** Longest key accepted, in bytes (what `crypto.importSecret()` takes). */
export const MAX_PSK_BYTES = 65_536;
/** Longest identity, in bytes of UTF-8 (the library's limit). */
export const MAX_PSK_IDENTITY = 1024;
/** Largest PSK file read (a file of 1,000 keys is far smaller). */
const MAX_FILE_BYTES = 1 << 20;

/** One key of a PSK file. */
export interface LoadedPsk extends PskOption {
  identity: string;
  /** 1-based line number in the file. */
  line: number;
}

export function checkPskIdentity(identity: string, what: string): string {
  const bytes = Buffer.byteLength(identity, 'utf8');
  if (bytes === 0 || bytes > MAX_PSK_IDENTITY) throw new CliError(`${what}: a PSK identity must be 1 to ${MAX_PSK_IDENTITY} bytes`);
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(identity)) throw new CliError(`${what}: a PSK identity must not contain control characters`);
  if (identity.trim() !== identity) throw new CliError(`${what}: a PSK identity must not start or end with spaces`);
  if (identity.startsWith('#')) throw new CliError(`${what}: a PSK identity must not start with "#" (that is a comment)`);
  return identity;
}

const HEX_VALUE = new Int8Array(256).fill(-1);
for (let i = 0; i < 10; i++) HEX_VALUE[0x30 + i] = i;
for (let i = 0; i < 6; i++) {
  HEX_VALUE[0x41 + i] = 10 + i;
  HEX_VALUE[0x61 + i] = 10 + i;
}
const HEX_DIGITS = Buffer.from('0123456789abcdef', 'ascii');

/** Decodes hex bytes into a new buffer without making a string; undefined if not hex. */
function decodeHex(text: Uint8Array): Buffer | undefined {
  if (text.length % 2 !== 0) return undefined;
  const outBuf = Buffer.alloc(text.length / 2);
  for (let i = 0; i < outBuf.length; i++) {
    const hi = HEX_VALUE[text[2 * i]!]!;
    const lo = HEX_VALUE[text[2 * i + 1]!]!;
    if (hi < 0 || lo < 0) {
      outBuf.fill(0);
      return undefined;
    }
    outBuf[i] = (hi << 4) | lo;
  }
  return outBuf;
}

/** Encodes bytes as lower-case hex bytes without making a string. */
function encodeHex(bytes: Uint8Array): Buffer {
  const outBuf = Buffer.alloc(bytes.length * 2);
  for (let i = 0; i < bytes.length; i++) {
    outBuf[2 * i] = HEX_DIGITS[bytes[i]! >> 4]!;
    outBuf[2 * i + 1] = HEX_DIGITS[bytes[i]! & 15]!;
  }
  return outBuf;
}

const isBlank = (b: number) => b === 0x20 || b === 0x09 || b === 0x0d;

function trimBytes(b: Buffer): Buffer {
  let s = 0;
  let e = b.length;
  while (s < e && isBlank(b[s]!)) s++;
  while (e > s && isBlank(b[e - 1]!)) e--;
  return b.subarray(s, e);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Loads every key of a PSK file into native memory. A bare key (no identity on its line) takes
 * `defaultIdentity`; without one it is an error. Identities must be distinct.
 */
export function loadPskFile(path: string, defaultIdentity?: string): LoadedPsk[] {
  const file = readPrivateFile(path, 'PSK file', MAX_FILE_BYTES);
  const loaded: LoadedPsk[] = [];
  const fail = (line: number, reason: string): never => {
    throw new CliError(`the PSK file ${path}, line ${line}: ${reason}`);
  };
  try {
    let start = 0;
    let lineNo = 0;
    while (start <= file.length) {
      let end = file.indexOf(0x0a, start);
      if (end < 0) end = file.length;
      lineNo++;
      const line = trimBytes(file.subarray(start, end));
      start = end + 1;
      if (line.length === 0 || line[0] === 0x23 /* # */) continue;
      const colon = line.lastIndexOf(0x3a);
      const keyText = trimBytes(colon >= 0 ? line.subarray(colon + 1) : line);
      let identity: string;
      if (colon >= 0) {
        try {
          identity = utf8.decode(trimBytes(line.subarray(0, colon)));
        } catch {
          return fail(lineNo, 'the identity is not valid UTF-8');
        }
        if (identity === '') return fail(lineNo, 'the identity before ":" is empty');
        try {
          checkPskIdentity(identity, 'identity');
        } catch (e) {
          return fail(lineNo, (e as Error).message.replace(/^identity: /, ''));
        }
      } else if (defaultIdentity !== undefined) {
        identity = defaultIdentity;
      } else {
        return fail(lineNo, 'the key has no identity: write the line as IDENTITY:HEXKEY, or give --psk-identity NAME');
      }
      if (loaded.some((p) => p.identity === identity)) return fail(lineNo, `the identity "${printable(identity)}" appears twice`);
      const key = decodeHex(keyText);
      if (key === undefined) return fail(lineNo, `the key must be hexadecimal, at least ${MIN_PSK_BYTES} bytes (${2 * MIN_PSK_BYTES} hex digits)`);
      if (key.length < MIN_PSK_BYTES || key.length > MAX_PSK_BYTES) {
        const n = key.length;
        key.fill(0);
        return fail(lineNo, `the key is ${n} bytes; a PSK must be ${MIN_PSK_BYTES} to ${MAX_PSK_BYTES} bytes`);
      }
      const secret: Secret = importSecret(key); // copies into native memory, zero-fills `key`
      loaded.push({ identity, secret, line: lineNo });
    }
    if (loaded.length === 0) throw new CliError(`the PSK file ${path} holds no key (expected lines IDENTITY:HEXKEY)`);
    return loaded;
  } catch (e) {
    for (const p of loaded) p.secret.destroy();
    throw e;
  } finally {
    file.fill(0);
  }
}

// ---- flags ----------------------------------------------------------------------------------

export const PSK_FLAGS: FlagSpec[] = [
  {
    name: 'psk-file',
    kind: 'string',
    metavar: 'PATH',
    help:
      'Protocol v2: authenticate both ends with a pre-shared key from this file (lines IDENTITY:HEXKEY, mode 0600; ' +
      'make one with `quantum-vpn psk generate`). A server requires every client to prove one of the keys in its file',
  },
  {
    name: 'psk-identity',
    kind: 'string',
    metavar: 'NAME',
    help: 'The identity of a key written without one in --psk-file; a client whose file holds several keys uses the one of this identity',
  },
];

/** The keys a server accepts or the key a client proves, from --psk-file and --psk-identity. */
export interface PskSelection {
  /** Client: the one key; server: every key of the file. */
  keys: LoadedPsk[];
  path: string;
  /** Destroys the native copies of the keys (when the command stops). */
  destroy(): void;
}

/**
 * Loads `--psk-file` for a client (one key, chosen by `--psk-identity` when the file holds
 * several) or a server (every key). Undefined without `--psk-file`.
 */
export function pskFromFlags(flags: FlagValues, role: 'client' | 'server'): PskSelection | undefined {
  const path = typeof flags['psk-file'] === 'string' ? flags['psk-file'] : '';
  const identityFlag = typeof flags['psk-identity'] === 'string' && flags['psk-identity'] !== '' ? checkPskIdentity(flags['psk-identity'], '--psk-identity') : undefined;
  if (path === '') {
    if (identityFlag !== undefined) throw new UsageError('--psk-identity needs --psk-file');
    return undefined;
  }
  if (flags['legacy-v1'] === true) throw new UsageError('--legacy-v1 cannot be combined with --psk-file: protocol v1 cannot authenticate the peer');
  const all = loadPskFile(path, identityFlag);
  let keys = all;
  if (role === 'client') {
    const chosen = identityFlag === undefined ? (all.length === 1 ? all[0] : undefined) : all.find((p) => p.identity === identityFlag);
    if (chosen === undefined) {
      for (const p of all) p.secret.destroy();
      throw new CliError(
        identityFlag === undefined
          ? `the PSK file ${path} holds ${all.length} keys: choose the one to use with --psk-identity NAME`
          : `the PSK file ${path} holds no key for the identity "${printable(identityFlag)}"`,
      );
    }
    for (const p of all) if (p !== chosen) p.secret.destroy();
    keys = [chosen];
  }
  return { keys, path, destroy: () => keys.forEach((k) => k.secret.destroy()) };
}

/** `"a"`, `"a", "b"`: identities for a status line. */
export function identityList(keys: readonly { identity: string }[]): string {
  return keys.map((k) => `"${printable(k.identity)}"`).join(', ');
}

// ---- quantum-vpn psk generate ---------------------------------------------------------------

const GENERATE_FLAGS: FlagSpec[] = [
  { name: 'identity', kind: 'string', metavar: 'NAME', defaultText: 'psk- and 8 random hex digits', help: 'The identity written with the key (sent in the clear when the key is used)' },
  { name: 'bytes', kind: 'int', metavar: 'N', default: 32, help: `Key length in bytes, ${MIN_PSK_BYTES} to 1024` },
  { name: 'force', kind: 'boolean', default: false, help: 'Replace FILE if it exists' },
];

async function generate(args: ParsedArgs): Promise<number> {
  const path = args.positionals[1];
  if (path === undefined || path === '') throw new UsageError('psk generate needs the FILE to write');
  if (path === '-') throw new UsageError('the key is never written to stdout: name a FILE');
  const n = Number(args.flags.bytes);
  if (n < MIN_PSK_BYTES || n > 1024) throw new UsageError(`--bytes must be ${MIN_PSK_BYTES} to 1024`);
  const identity = args.given.has('identity') ? checkPskIdentity(String(args.flags.identity), '--identity') : `psk-${randomBytes(4).toString('hex')}`;
  const key = randomFill(Buffer.alloc(n)); // straight from the addon's DRBG, not the public pool
  const hex = encodeHex(key);
  key.fill(0);
  const header = Buffer.from(
    `# quantum-vpn pre-shared key, ${n} bytes, created ${new Date().toISOString()}.\n` +
      '# Keep it secret: copy it to the other end over a secure channel; use it with --psk-file.\n' +
      `${identity}:`,
    'utf8',
  );
  const content = Buffer.concat([header, hex, Buffer.from('\n')]);
  hex.fill(0);
  try {
    writePrivateFile(path, content, args.flags.force === true);
  } finally {
    content.fill(0);
  }
  out(`wrote a new ${n}-byte pre-shared key, identity "${printable(identity)}", to ${path} (mode 0600)`);
  out(`use it on both ends: --psk-file ${path}`);
  return 0;
}

export const pskCommand: Command = {
  name: 'psk',
  summary: 'Make a pre-shared key file for --psk-file (protocol v2 authentication)',
  synopsis: 'quantum-vpn psk generate FILE [--identity NAME] [--bytes N] [--force]',
  description:
    'generate: writes a new random key from the addon\'s DRBG to FILE, as one line IDENTITY:HEXKEY,\n' +
    'with mode 0600 (never to stdout; the key is not printed). Copy the file to the other end over\n' +
    'a secure channel, and give it to both with --psk-file. A server may accept several keys: put\n' +
    'one line per client identity in its file. FILE must not exist unless --force is given.',
  flags: GENERATE_FLAGS,
  maxPositionals: 2,
  async run(args: ParsedArgs): Promise<number> {
    const action = args.positionals[0];
    if (action === 'generate') return generate(args);
    throw new UsageError(action === undefined ? 'say what to do: generate' : `unknown action ${JSON.stringify(action)}: expected generate`);
  },
};
