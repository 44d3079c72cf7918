/**
 * `quantum-vpn cert`: a small ML-DSA-87 certificate authority for certificate authentication
 * (docs/PROTOCOL.md §14), for users without an OpenSSL 3.5 of their own:
 *
 *   quantum-vpn cert ca NAME [--subject CN] [--days N]           NAME.key (0600) and NAME.crt
 *   quantum-vpn cert issue NAME --ca CA [--dns LIST] [--ip LIST] [--usage server|client|both] [--days N]
 *                                                                NAME.key (0600) and NAME.crt
 *
 * Keys are PKCS#8 PEM (encrypted with --passphrase-file); certificates PEM. `--ca CA` reads
 * CA.key and CA.crt (its passphrase: --ca-passphrase-file).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { exportPrivateKeyPem, importPrivateKeyPem } from '../crypto/keyFiles.js';
import * as mldsa from '../crypto/mldsa.js';
import { createSelfSignedCa, issueCertificate, parseCertificate } from '../crypto/x509.js';
import { CliError, type FlagSpec, type ParsedArgs, UsageError } from './args.js';
import { applyFips, type Command, FIPS_FLAG, out } from './common.js';
import { PASSPHRASE_FLAG, readPassphrase } from './identity.js';
import { readPrivateFile, writePrivateFile } from './privateFiles.js';

const DAY = 86_400_000;

const FLAGS: FlagSpec[] = [
  { name: 'subject', kind: 'string', metavar: 'CN', help: 'The subject common name (default: NAME)' },
  { name: 'days', kind: 'int', metavar: 'N', help: 'Validity in days (default: 3650 for a CA, 397 for a certificate)' },
  { name: 'ca', kind: 'string', metavar: 'CA', help: 'issue: the CA, as the path without .key/.crt (CA.key and CA.crt)' },
  { name: 'dns', kind: 'string', metavar: 'LIST', help: 'issue: DNS names for the certificate, comma-separated (what clients dial)' },
  { name: 'ip', kind: 'string', metavar: 'LIST', help: 'issue: IP addresses for the certificate, comma-separated' },
  { name: 'usage', kind: 'string', metavar: 'server|client|both', default: 'both', help: 'issue: what the certificate may authenticate (extended key usage)' },
  PASSPHRASE_FLAG,
  { name: 'ca-passphrase-file', kind: 'string', metavar: 'FILE', help: "issue: the CA key's passphrase file" },
  { name: 'force', kind: 'boolean', default: false, help: 'Replace NAME.key and NAME.crt if they exist' },
  FIPS_FLAG,
];

function list(value: unknown): string[] {
  return typeof value === 'string' ? value.split(',').map((s) => s.trim()).filter((s) => s !== '') : [];
}

function passphraseOf(flag: unknown): Buffer | undefined {
  return typeof flag === 'string' && flag !== '' ? readPassphrase(flag) : undefined;
}

/** Writes NAME.key (0600) and NAME.crt for a new key and its certificate. */
function writePair(name: string, key: ReturnType<typeof mldsa.generateKeyPair>['privateKey'], certPem: string, passphrase: Buffer | undefined, force: boolean): void {
  const pem = exportPrivateKeyPem(key, { passphrase });
  try {
    writePrivateFile(`${name}.key`, pem, force);
  } finally {
    pem.fill(0);
  }
  writeFileSync(`${name}.crt`, certPem, { mode: 0o644 });
}

async function run(args: ParsedArgs): Promise<number> {
  const [action, name] = args.positionals;
  if (action !== 'ca' && action !== 'issue') throw new UsageError(action === undefined ? 'say what to do: ca or issue' : `unknown action ${JSON.stringify(action)}: expected ca or issue`);
  if (name === undefined || name === '') throw new UsageError(`cert ${action} needs NAME (the files are NAME.key and NAME.crt)`);
  await applyFips(args.flags);
  const force = args.flags.force === true;
  if (!force && existsSync(`${name}.crt`)) throw new CliError(`${name}.crt already exists: choose another NAME, or replace it with --force`);
  const subject = { commonName: typeof args.flags.subject === 'string' && args.flags.subject !== '' ? args.flags.subject : name.split('/').pop()! };
  const days = typeof args.flags.days === 'number' ? args.flags.days : action === 'ca' ? 3650 : 397;
  if (!Number.isInteger(days) || days < 1 || days > 36500) throw new UsageError('--days must be 1 to 36500');
  const notAfter = new Date(Date.now() + days * DAY);
  const passphrase = passphraseOf(args.flags['passphrase-file']);
  const { privateKey } = mldsa.generateKeyPair();
  try {
    if (action === 'ca') {
      const ca = createSelfSignedCa({ privateKey, subject, notAfter });
      writePair(name, privateKey, ca.toPem(), passphrase, force);
      out(`wrote the CA key ${name}.key (mode 0600) and certificate ${name}.crt: ${ca.subject}, valid until ${ca.notAfter.toISOString()}`);
      out(`give ${name}.crt to --ca; issue certificates with: quantum-vpn cert issue NAME --ca ${name} --dns HOST`);
      return 0;
    }
    const caPath = typeof args.flags.ca === 'string' ? args.flags.ca : undefined;
    if (caPath === undefined || caPath === '') throw new UsageError('cert issue needs --ca CA (CA.key and CA.crt)');
    const usage = String(args.flags.usage);
    if (!['server', 'client', 'both'].includes(usage)) throw new UsageError('--usage must be server, client or both');
    const dnsNames = list(args.flags.dns);
    const ipAddresses = list(args.flags.ip);
    if (usage !== 'client' && dnsNames.length === 0 && ipAddresses.length === 0) throw new UsageError('a server certificate needs the names clients dial: --dns and/or --ip');
    const issuer = parseCertificate(readFileSync(`${caPath}.crt`, 'utf8'));
    const caPassphrase = passphraseOf(args.flags['ca-passphrase-file']);
    const caKeyFile = readPrivateFile(`${caPath}.key`, 'CA key file', 64 * 1024);
    let issuerKey;
    try {
      issuerKey = importPrivateKeyPem(caKeyFile, { passphrase: caPassphrase, algorithm: 'ML-DSA-87' });
    } finally {
      caKeyFile.fill(0);
      caPassphrase?.fill(0);
    }
    try {
      const cert = issueCertificate({
        issuer,
        issuerKey,
        publicKey: privateKey,
        subject,
        dnsNames,
        ipAddresses,
        notAfter,
        extendedKeyUsage: usage === 'both' ? ['serverAuth', 'clientAuth'] : usage === 'server' ? ['serverAuth'] : ['clientAuth'],
      });
      writePair(name, privateKey, cert.toPem(), passphrase, force);
      out(`wrote ${name}.key (mode 0600) and ${name}.crt: ${cert.subject}, issued by ${cert.issuer}, valid until ${cert.notAfter.toISOString()}`);
      out(`use them with --cert ${name}.crt --identity ${name}.key`);
      return 0;
    } finally {
      issuerKey.destroy();
    }
  } finally {
    privateKey.destroy();
    passphrase?.fill(0);
  }
}

export const certCommand: Command = {
  name: 'cert',
  summary: 'A small ML-DSA-87 certificate authority for certificate authentication',
  synopsis: 'quantum-vpn cert ca NAME [--subject CN] [--days N]\n       quantum-vpn cert issue NAME --ca CA [--dns LIST] [--ip LIST] [--usage server|client|both] [--days N]',
  description:
    'ca: a new self-signed CA: NAME.key (ML-DSA-87, PKCS#8, mode 0600) and NAME.crt.\n' +
    'issue: a new key and a certificate for it signed by CA (CA.key, CA.crt): NAME.key and NAME.crt,\n' +
    'with the DNS names and IP addresses clients dial (--dns, --ip) and the usage. Give a server\n' +
    '--cert NAME.crt --identity NAME.key, its clients --ca CA.crt (and, for client certificates,\n' +
    'the server --ca CA.crt and each client its own --cert/--identity).',
  flags: FLAGS,
  maxPositionals: 2,
  run,
};
