/**
 * Identity commands, as ssh-keygen and `wg genkey` users know them:
 *
 *   quantum-vpn keygen FILE [--group G] [--passphrase-file P] [--comment C] [--force]
 *       a new identity key: FILE (private, mode 0600) and FILE.pub (one line, the public key)
 *   quantum-vpn fingerprint FILE|KEY
 *       SHA256:… of a public key line, a .pub file or an identity key file
 *   quantum-vpn keyscan HOST:PORT
 *       the key a server announces, as a known-servers line (unauthenticated: compare its
 *       fingerprint with the server's own output before you trust it)
 *
 * And the loaders the servers and clients use for `--identity`, `--passphrase-file`.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { ErrorCode, QuantumTunnelError } from '../errors.js';
import { decodeIdentityKeyFile, encodeIdentityKeyFile } from '../identity/keyFile.js';
import { hostPortKey } from '../identity/files.js';
import { IdentityKey, parsePublicKeyLine, type PublicIdentityKey } from '../identity/keys.js';
import { KEM_GROUPS, defaultKemGroup } from '../protocol/v2/groups.js';
import { fetchServerKey } from '../tunnel/dial.js';
import { CliError, type FlagSpec, type ParsedArgs, parseHostPort, printable, UsageError } from './args.js';
import { applyFips, type Command, FIPS_FLAG, out } from './common.js';
import { readPrivateFile, writePrivateFile } from './privateFiles.js';

/** Largest identity key file read (two PEM blocks of a few KB). */
const MAX_KEY_FILE_BYTES = 64 * 1024;
/** Largest passphrase file read. */
const MAX_PASSPHRASE_FILE_BYTES = 4096;

export const PASSPHRASE_FLAG: FlagSpec = {
  name: 'passphrase-file',
  kind: 'string',
  metavar: 'FILE',
  help: 'The passphrase of an encrypted private key (keygen: encrypt with it), read from this file (mode 0600; one line, the newline is not part of it)',
};

/** The passphrase in a 0600 file, without its final line break. The caller zero-fills it. */
export function readPassphrase(path: string): Buffer {
  const file = readPrivateFile(path, 'passphrase file', MAX_PASSPHRASE_FILE_BYTES);
  let end = file.length;
  while (end > 0 && (file[end - 1] === 0x0a || file[end - 1] === 0x0d)) end--;
  const passphrase = Buffer.from(file.subarray(0, end));
  file.fill(0);
  if (passphrase.length === 0) throw new CliError(`the passphrase file ${path} is empty`);
  return passphrase;
}

/** An identity key from its file (mode 0600 enforced), decrypted with the passphrase file if given. */
export function loadIdentityKey(path: string, passphraseFile?: string): IdentityKey {
  const passphrase = passphraseFile ? readPassphrase(passphraseFile) : undefined;
  const file = readPrivateFile(path, 'private key file', MAX_KEY_FILE_BYTES);
  try {
    return decodeIdentityKeyFile(file, { passphrase });
  } catch (e) {
    if (e instanceof QuantumTunnelError && e.code === ErrorCode.BAD_PASSPHRASE) {
      throw new CliError(passphrase ? `wrong passphrase for ${path}` : `${path} is encrypted: give its passphrase with --passphrase-file`, { cause: e });
    }
    throw new CliError(`${path} is not an identity key file: ${(e as Error).message}`, { cause: e });
  } finally {
    file.fill(0);
    passphrase?.fill(0);
  }
}

/** A public key from a one-line key or a file holding one (a .pub file). */
export function publicKeyFromArgument(value: string, flag: string): PublicIdentityKey {
  const text = value.trim().startsWith('qtun-') ? value : readPublicFile(value, flag);
  try {
    return parsePublicKeyLine(text.split(/\r?\n/).find((l) => l.trim() !== '' && !l.trim().startsWith('#')) ?? '').key;
  } catch (e) {
    throw new CliError(`${flag}: ${(e as Error).message}`, { cause: e });
  }
}

function readPublicFile(path: string, flag: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new CliError(`${flag}: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
  }
}

const GROUP_NAMES = KEM_GROUPS.map((g) => g.option);

const KEYGEN_FLAGS: FlagSpec[] = [
  { name: 'group', kind: 'string', metavar: 'GROUP', defaultText: 'x25519-mlkem1024; p384-mlkem1024 in FIPS mode', help: `The key's group: ${GROUP_NAMES.join(', ')}` },
  PASSPHRASE_FLAG,
  { name: 'comment', kind: 'string', metavar: 'TEXT', help: 'A comment for the public key line (default: user@host)' },
  { name: 'force', kind: 'boolean', default: false, help: 'Replace FILE and FILE.pub if they exist' },
  FIPS_FLAG,
];

async function keygen(args: ParsedArgs): Promise<number> {
  const path = args.positionals[0];
  if (path === undefined || path === '' || path === '-') throw new UsageError('keygen needs the FILE to write the private key to (never stdout)');
  await applyFips(args.flags);
  const option = typeof args.flags.group === 'string' ? args.flags.group.trim().toLowerCase() : undefined;
  const group = option === undefined ? defaultKemGroup() : KEM_GROUPS.find((g) => g.option === option);
  if (group === undefined) throw new UsageError(`invalid --group ${JSON.stringify(option)}: expected ${GROUP_NAMES.join(', ')}`);
  if (!group.permitted()) throw new CliError(`${group.option} is not permitted in strict FIPS mode: use p384-mlkem1024`);
  const force = args.flags.force === true;
  const pubPath = `${path}.pub`;
  if (!force && existsSync(pubPath)) throw new CliError(`${pubPath} already exists: choose another file, or replace it with --force`);
  const comment = typeof args.flags.comment === 'string' ? args.flags.comment : `${process.env.USER ?? 'user'}@${(await import('node:os')).hostname()}`;
  const passphrase = typeof args.flags['passphrase-file'] === 'string' ? readPassphrase(args.flags['passphrase-file']) : undefined;
  const key = IdentityKey.generate(group);
  try {
    const file = encodeIdentityKeyFile(key, { passphrase, comment });
    try {
      writePrivateFile(path, file, force);
    } finally {
      file.fill(0);
    }
    writeFileSync(pubPath, `${key.publicKey.toString(comment)}\n`, { mode: 0o644 });
    out(`wrote a new ${group.option} identity key to ${path} (mode 0600${passphrase ? ', encrypted' : ''}) and its public key to ${pubPath}`);
    out(`fingerprint: ${key.fingerprint}`);
    return 0;
  } finally {
    key.destroy();
    passphrase?.fill(0);
  }
}

export const keygenCommand: Command = {
  name: 'keygen',
  summary: 'Make an identity key (pinned-key authentication): FILE and FILE.pub',
  synopsis: 'quantum-vpn keygen FILE [--group GROUP] [--passphrase-file FILE] [--comment TEXT] [--force]',
  description:
    'Writes a new hybrid identity key (a classical and an ML-KEM key pair) to FILE as PKCS#8 PEM with mode 0600\n' +
    '(encrypted when --passphrase-file is given), and its public key to FILE.pub as one line\n' +
    '"qtun-<group> <base64> <comment>". Give FILE to --identity; give the public line (or its\n' +
    'fingerprint) to the peers: a server\'s to its clients (--server-key, a known-servers file), a\n' +
    'client\'s to the server\'s --authorized-peers file.',
  flags: KEYGEN_FLAGS,
  maxPositionals: 1,
  run: keygen,
};

export const fingerprintCommand: Command = {
  name: 'fingerprint',
  summary: 'Print the SHA-256 fingerprint of a public key or identity key file',
  synopsis: 'quantum-vpn fingerprint FILE|KEY [--passphrase-file FILE]',
  description:
    'FILE is a .pub file, a file of public key lines (each is printed), or an identity key file;\n' +
    'KEY a public key line. Prints "SHA256:<base64> <comment>" per key: the form to compare, and\n' +
    'what an --authorized-peers line may hold instead of the whole key.',
  flags: [PASSPHRASE_FLAG],
  maxPositionals: 1,
  async run(args: ParsedArgs): Promise<number> {
    const what = args.positionals[0];
    if (what === undefined || what === '') throw new UsageError('fingerprint needs a FILE or a public key');
    if (what.trim().startsWith('qtun-')) {
      const { key, comment } = parsePublicKeyLine(what);
      out(`${key.fingerprint}${comment ? ` ${printable(comment)}` : ''}`);
      return 0;
    }
    const text = readPublicFile(what, 'fingerprint');
    if (text.includes('-----BEGIN ')) {
      const key = loadIdentityKey(what, typeof args.flags['passphrase-file'] === 'string' ? args.flags['passphrase-file'] : undefined);
      out(key.fingerprint);
      key.destroy();
      return 0;
    }
    let n = 0;
    for (const line of text.split(/\r?\n/)) {
      if (line.trim() === '' || line.trim().startsWith('#')) continue;
      const { key, comment } = parsePublicKeyLine(line);
      out(`${key.fingerprint}${comment ? ` ${printable(comment)}` : ''}`);
      n++;
    }
    if (n === 0) throw new CliError(`${what} holds no public key`);
    return 0;
  },
};

export const keyscanCommand: Command = {
  name: 'keyscan',
  summary: "Ask a server for its identity key and print it as a known-servers line",
  synopsis: 'quantum-vpn keyscan HOST:PORT',
  description:
    'Runs an anonymous handshake that asks the server for its key (docs/PROTOCOL.md §13.6) and prints\n' +
    '"HOST:PORT qtun-<group> <base64>", ready for a known-servers file, and its fingerprint on a\n' +
    'second line. Nothing proves the answer came from the real server: compare the fingerprint\n' +
    'with `quantum-vpn fingerprint` run on the server before you trust it.',
  flags: [FIPS_FLAG],
  maxPositionals: 1,
  async run(args: ParsedArgs): Promise<number> {
    const target = args.positionals[0];
    if (target === undefined) throw new UsageError('keyscan needs HOST:PORT');
    await applyFips(args.flags);
    const { host, port } = parseHostPort(target, 'HOST:PORT', { defaultHost: '127.0.0.1' });
    const key = await fetchServerKey({ host, port });
    if (key === undefined) throw new CliError(`${hostPortKey(host, port)} announced no identity key (it is not configured with --identity)`);
    out(`${hostPortKey(host, port)} ${key.toString()}`);
    out(`# ${key.fingerprint} (unverified: compare it with the server's)`);
    return 0;
  },
};
