/**
 * Pinned-key authentication flags for the commands that listen or dial (forward, demo):
 *
 *   server: --identity FILE[,FILE]  our key (several while replacing one)
 *           --authorized-peers FILE  the clients admitted (keys or fingerprints); required then
 *   client: --server-key KEY|FILE|SHA256:…  the server's key, a file holding it, or its fingerprint
 *           --known-servers FILE     host:port → key, as ssh's known_hosts (default
 *                                    ~/.config/quantum-vpn/known_servers when it exists)
 *           --trust-on-first-use     with --known-servers: learn and record an unknown server's key
 *           --identity FILE          our key, for a server with --authorized-peers
 *   both:   --passphrase-file FILE   for an encrypted identity key
 *
 * Certificates (§14): --cert FILE (our chain, leaf first) makes --identity its ML-DSA-87 key;
 * --ca FILE is, on a server, the CAs of admitted clients, on a client the CAs of the server,
 * whose certificate must name --server-name (default: the --connect host); --crl FILE adds CRLs.
 *
 * Keys are loaded before anything listens; a client's known-servers entry is looked up when it
 * first dials, and kept.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { appendKnownServer, hostPortKey, knownServerKey, readAuthorizedPeers } from '../identity/files.js';
import { type AuthorizedPeers, type IdentityKey, isFingerprint, type PublicIdentityKey } from '../identity/keys.js';
import { fetchServerKey } from '../tunnel/dial.js';
import type { DialOptions, ServerAuthOption } from '../tunnel/options.js';
import { CliError, type FlagSpec, type FlagValues, UsageError } from './args.js';
import { err } from './common.js';
import { loadIdentityKey, PASSPHRASE_FLAG, publicKeyFromArgument, readPassphrase } from './identity.js';
import { readPrivateFile } from './privateFiles.js';
import { CertificateIdentity } from '../identity/certificates.js';
import { type Certificate, parseCertificates } from '../crypto/x509.js';

export const KEY_AUTH_FLAGS: FlagSpec[] = [
  {
    name: 'identity',
    kind: 'string',
    metavar: 'FILE',
    help: 'Our identity key (quantum-vpn keygen; mode 0600). Server: clients that pin its public key know they reach this server; several files, comma-separated, while replacing a key. Client: presented to a server with --authorized-peers',
  },
  PASSPHRASE_FLAG,
  {
    name: 'authorized-peers',
    kind: 'string',
    metavar: 'FILE',
    help: 'Server: admit only clients whose key is in this file (one public key line or SHA256: fingerprint per line, with a comment); needs --identity',
  },
  {
    name: 'server-key',
    kind: 'string',
    metavar: 'KEY|FILE|SHA256:…',
    help: "Client: the server's public key (a qtun-… line, or a .pub file), or its fingerprint; the server must prove it",
  },
  {
    name: 'known-servers',
    kind: 'string',
    metavar: 'FILE',
    defaultText: '~/.config/quantum-vpn/known_servers when it exists',
    help: "Client: a file of 'HOST:PORT qtun-<group> <base64>' lines; the key listed for --connect must be proved",
  },
  {
    name: 'cert',
    kind: 'string',
    metavar: 'FILE',
    help: 'Our X.509 certificate chain (PEM, leaf first; quantum-vpn cert); --identity is then its ML-DSA-87 private key',
  },
  {
    name: 'ca',
    kind: 'string',
    metavar: 'FILE',
    help: 'CA certificates (PEM). Server: admit only clients with a certificate from them (needs --cert). Client: authenticate the server by a certificate from them',
  },
  { name: 'server-name', kind: 'string', metavar: 'NAME', help: 'Client, with --ca: the DNS name or IP address the server certificate must hold (default: the --connect host)' },
  { name: 'crl', kind: 'string', metavar: 'FILE', help: 'With --ca: certificate revocation lists (PEM) the peer certificate is checked against' },
  {
    name: 'trust-on-first-use',
    kind: 'boolean',
    default: false,
    help: 'Client, with --known-servers: a server not in the file is asked for its key, which is recorded and pinned from then on (the first connection trusts the network)',
  },
];

/** Where a client looks for known servers when --known-servers is not given. */
export function defaultKnownServersPath(): string {
  const base = process.env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(base, 'quantum-vpn', 'known_servers');
}

/** The key authentication of one listener or dialer, from the flags. */
export interface KeyAuthSetup {
  /** Server: our keys and certificate, and who is admitted. */
  identities: IdentityKey[];
  authorizedPeers: AuthorizedPeers | undefined;
  certificate: CertificateIdentity | undefined;
  /** Server: the CAs of admitted client certificates, and CRLs. */
  clientCa: Certificate[] | undefined;
  crls: string[] | undefined;
  /** Client: whether the server at host:port will be authenticated by key (forward refuses to run unauthenticated). */
  pinsServer(host: string, port: number): boolean;
  /** Client: the dial() options that pin the server's key (looked up and kept on the first call). */
  dialOptions(host: string, port: number): Promise<Pick<DialOptions, 'server' | 'identity'>>;
  /** One line for the startup banner, or undefined without key authentication. */
  describe(): string | undefined;
  destroy(): void;
}

function given(flags: FlagValues, name: string): string | undefined {
  const v = flags[name];
  return typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined;
}

/**
 * Reads the key flags for a server or a client. Loads keys at once, so a bad file fails before
 * anything listens. `conflicts` names flags already chosen that exclude key authentication
 * (--psk-file, --legacy-v1).
 */
export function keyAuthFromFlags(flags: FlagValues, role: 'client' | 'server', conflicts: string[] = []): KeyAuthSetup {
  const identityFiles = given(flags, 'identity')?.split(',').map((f) => f.trim()).filter((f) => f !== '') ?? [];
  const peersFile = given(flags, 'authorized-peers');
  const serverKeyArg = given(flags, 'server-key');
  const knownFile = given(flags, 'known-servers');
  const tofu = flags['trust-on-first-use'] === true;
  const passphraseFile = given(flags, 'passphrase-file');
  const certFile = given(flags, 'cert');
  const caFile = given(flags, 'ca');
  const serverName = given(flags, 'server-name');
  const crlFile = given(flags, 'crl');
  const used = [identityFiles.length > 0 && '--identity', peersFile && '--authorized-peers', serverKeyArg && '--server-key', knownFile && '--known-servers', tofu && '--trust-on-first-use', caFile && '--ca', certFile && '--cert'].filter(Boolean) as string[];
  if (used.length > 0 && conflicts.length > 0) throw new UsageError(`${used[0]} cannot be combined with ${conflicts[0]}`);
  if (certFile && identityFiles.length !== 1) throw new UsageError('--cert needs --identity: the certificate\'s ML-DSA-87 private key');
  if (serverName && !caFile) throw new UsageError('--server-name applies with --ca');
  if (crlFile && !caFile) throw new UsageError('--crl applies with --ca');
  if (caFile && (peersFile || serverKeyArg || knownFile)) throw new UsageError('--ca (certificates) and pinned keys (--authorized-peers, --server-key, --known-servers) are different modes: choose one');
  const ca = caFile ? readCertificates(caFile, '--ca') : undefined;
  const crls = crlFile ? [readText(crlFile, '--crl')] : undefined;
  if (certFile) return certificateSetup(role, certFile, identityFiles[0], passphraseFile, ca, crls, serverName);
  if (role === 'client' && ca) return certificateSetup(role, undefined, undefined, undefined, ca, crls, serverName);
  if (role === 'server' && ca) throw new UsageError('--ca on the server needs --cert: clients send certificates only to a server that sent one');
  if (role === 'server') {
    for (const flag of ['server-key', 'known-servers', 'trust-on-first-use']) if (flags[flag] !== undefined && flags[flag] !== false && flags[flag] !== '') throw new UsageError(`--${flag} is for the client side`);
    if (peersFile && identityFiles.length === 0) throw new UsageError("--authorized-peers needs --identity: a client's key is sealed to the server's key");
  } else {
    if (peersFile) throw new UsageError('--authorized-peers is for the server side');
    if (identityFiles.length > 1) throw new UsageError('a client has one --identity');
    if (tofu && !knownFile) throw new UsageError('--trust-on-first-use needs --known-servers FILE: where the learned keys are recorded');
    if (serverKeyArg && knownFile) throw new UsageError('give --server-key or --known-servers, not both');
  }
  const peers = peersFile ? readPeers(peersFile) : undefined;
  const identities: IdentityKey[] = [];
  try {
    for (const f of identityFiles) identities.push(loadIdentityKey(f, passphraseFile));
  } catch (e) {
    for (const k of identities) k.destroy();
    throw e;
  }
  const destroy = () => identities.forEach((k) => k.destroy());
  if (role === 'server') {
    return {
      identities,
      authorizedPeers: peers,
      certificate: undefined,
      clientCa: undefined,
      crls: undefined,
      pinsServer: () => false,
      dialOptions: async () => ({}),
      describe: () =>
        identities.length === 0 ? undefined
          : `Identity: ${identities.map((k) => k.fingerprint).join(', ')}${peers ? `; admits the ${peers.size} key(s) of ${peersFile}` : '; clients are not authenticated (no --authorized-peers)'}`,
      destroy,
    };
  }
  // Client: where the server's key comes from.
  const pinned = serverKeyArg === undefined ? undefined : isFingerprint(serverKeyArg) ? ({ fingerprint: serverKeyArg } as ServerAuthOption) : { publicKey: publicKeyFromArgument(serverKeyArg, '--server-key') };
  const knownPath = knownFile ?? (serverKeyArg === undefined && existsSync(defaultKnownServersPath()) ? defaultKnownServersPath() : undefined);
  const identity = identities[0];
  if (identity && !pinned && !knownPath) throw new UsageError("--identity on the client needs the server's key: --server-key or --known-servers");
  let resolved: ServerAuthOption | undefined = pinned;
  const lookup = async (host: string, port: number): Promise<ServerAuthOption | undefined> => {
    if (resolved || !knownPath) return resolved;
    const known = knownServerKey(knownPath, host, port);
    if (known) return (resolved = { publicKey: known.key });
    if (!tofu) {
      if (knownFile) throw new CliError(`${hostPortKey(host, port)} is not in ${knownPath}: add its key (quantum-vpn keyscan ${hostPortKey(host, port)}, then compare the fingerprint), or pass --trust-on-first-use`);
      return undefined; // the default file has no entry: no pinning (forward refuses, demo warns)
    }
    const key: PublicIdentityKey | undefined = await fetchServerKey({ host, port });
    if (key === undefined) throw new CliError(`${hostPortKey(host, port)} has no identity key to trust`);
    appendKnownServer(knownPath, host, port, key, `trusted on first use ${new Date().toISOString()}`);
    err(`warning: trusting ${hostPortKey(host, port)} on first use: recorded key ${key.fingerprint} in ${knownPath}; compare it with the server's`);
    return (resolved = { publicKey: key });
  };
  return {
    identities,
    authorizedPeers: undefined,
    certificate: undefined,
    clientCa: undefined,
    crls: undefined,
    pinsServer: (host, port) => pinned !== undefined || knownFile !== undefined || (knownPath !== undefined && knownServerKey(knownPath, host, port) !== undefined),
    async dialOptions(host, port) {
      const server = await lookup(host, port);
      return server ? { server, ...(identity ? { identity } : {}) } : {};
    },
    describe: () => (pinned ? `Server key: pinned (${'fingerprint' in pinned && pinned.fingerprint ? pinned.fingerprint : (pinned.publicKey as PublicIdentityKey).fingerprint})` : knownPath ? `Server key: from ${knownPath}${tofu ? ' (trust on first use)' : ''}` : undefined),
    destroy,
  };
}

function readPeers(path: string): AuthorizedPeers {
  try {
    return readAuthorizedPeers(path);
  } catch (e) {
    throw new CliError((e as Error).message, { cause: e });
  }
}

function readText(path: string, flag: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new CliError(`${flag}: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
  }
}

function readCertificates(path: string, flag: string): Certificate[] {
  try {
    const certs = parseCertificates(readText(path, flag));
    if (certs.length === 0) throw new CliError(`${flag}: ${path} holds no certificate`);
    return certs;
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new CliError(`${flag}: ${path}: ${(e as Error).message}`, { cause: e });
  }
}

/** Certificate mode: our certificate and key (if any), the CAs we trust, the name to expect. */
function certificateSetup(
  role: 'client' | 'server',
  certFile: string | undefined,
  keyFile: string | undefined,
  passphraseFile: string | undefined,
  ca: Certificate[] | undefined,
  crls: string[] | undefined,
  serverName: string | undefined,
): KeyAuthSetup {
  let certificate: CertificateIdentity | undefined;
  if (certFile && keyFile) {
    const passphrase = passphraseFile ? readPassphrase(passphraseFile) : undefined;
    const key = readPrivateFile(keyFile, 'private key file', 64 * 1024);
    try {
      certificate = CertificateIdentity.fromPem(readText(certFile, '--cert'), key, { passphrase });
    } catch (e) {
      throw new CliError(`--cert ${certFile} with --identity ${keyFile}: ${(e as Error).message}`, { cause: e });
    } finally {
      key.fill(0);
      passphrase?.fill(0);
    }
  }
  if (role === 'client' && !ca) throw new UsageError("--cert on the client needs --ca: the server's certificate is verified first");
  const destroy = () => certificate?.destroy();
  return {
    identities: [],
    authorizedPeers: undefined,
    certificate: role === 'server' ? certificate : undefined,
    clientCa: role === 'server' ? ca : undefined,
    crls,
    pinsServer: () => role === 'client',
    dialOptions: async () => (role === 'client' ? { server: { ca: ca!, ...(serverName ? { name: serverName } : {}), ...(crls ? { crls } : {}) }, ...(certificate ? { identity: certificate } : {}) } : {}),
    describe: () =>
      role === 'server'
        ? `Certificate: ${certificate!.leaf.subject}${ca ? `; admits clients with a certificate from ${ca.map((c) => c.subject).join(', ')}` : '; clients are not authenticated (no --ca)'}`
        : `Server certificate: from ${ca!.map((c) => c.subject).join(', ')}${serverName ? `, name ${serverName}` : ''}`,
    destroy,
  };
}
