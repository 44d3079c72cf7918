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
 * Keys are loaded before anything listens; a client's known-servers entry is looked up when it
 * first dials, and kept.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { appendKnownServer, hostPortKey, knownServerKey, readAuthorizedPeers } from '../identity/files.js';
import { type AuthorizedPeers, type IdentityKey, isFingerprint, type PublicIdentityKey } from '../identity/keys.js';
import { fetchServerKey } from '../tunnel/dial.js';
import type { DialOptions, ServerAuthOption } from '../tunnel/options.js';
import { CliError, type FlagSpec, type FlagValues, UsageError } from './args.js';
import { err } from './common.js';
import { loadIdentityKey, PASSPHRASE_FLAG, publicKeyFromArgument } from './identity.js';

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
  /** Server: our keys, and who is admitted. */
  identities: IdentityKey[];
  authorizedPeers: AuthorizedPeers | undefined;
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
  const used = [identityFiles.length > 0 && '--identity', peersFile && '--authorized-peers', serverKeyArg && '--server-key', knownFile && '--known-servers', tofu && '--trust-on-first-use'].filter(Boolean) as string[];
  if (used.length > 0 && conflicts.length > 0) throw new UsageError(`${used[0]} (pinned keys) cannot be combined with ${conflicts[0]}`);
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
