/**
 * The protocol flags every command that listens or dials shares: `--legacy-v1`, `--groups`,
 * `--psk-file` / `--psk-identity`, and how a tunnel's protocol is described in output and logs.
 */
import type { PeerIdentity } from '../protocol/peerIdentity.js';
import type { Logger } from '../ops/index.js';
import { KEM_GROUPS, defaultKemGroup, type KemGroupSpec } from '../protocol/v2/groups.js';
import type { KemGroupName, ListenOptions, PskOption } from '../tunnel/options.js';
import { CliError, type FlagSpec, type FlagValues, printable, UsageError } from './args.js';
import { type Observability, observabilityFromFlags } from './common.js';
import { KEY_AUTH_FLAGS, keyAuthFromFlags, type KeyAuthSetup } from './auth.js';
import { PSK_FLAGS, pskFromFlags, type PskSelection } from './psk.js';

export { KEY_AUTH_FLAGS, PSK_FLAGS };

export const LEGACY_V1_FLAG: FlagSpec = {
  name: 'legacy-v1',
  kind: 'boolean',
  default: false,
  help:
    'Speak protocol v1 (Quantum-Go) to talk to Go peers: a client speaks v1 only, a server also answers v1 clients. ' +
    'v1 does not authenticate the peer (refused with --psk-file). Default: protocol v2',
};

const GROUP_NAMES = KEM_GROUPS.map((g) => g.option);

export const GROUPS_FLAG: FlagSpec = {
  name: 'groups',
  kind: 'string',
  metavar: 'LIST',
  defaultText: 'x25519-mlkem1024 first; p384-mlkem1024 first in FIPS mode',
  help:
    `Protocol v2 key exchange groups, comma-separated, in preference order: ${GROUP_NAMES.join(', ')}. ` +
    'A client sends its key share for the first; a server accepts only these',
};

/** The `--groups` list, checked (after FIPS mode is set: strict FIPS mode permits P-384 only); undefined when not given. */
export function groupsFromFlag(value: unknown): KemGroupName[] | undefined {
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  const names = value.split(',').map((s) => s.trim().toLowerCase()).filter((s) => s !== '');
  const seen = new Set<string>();
  for (const name of names) {
    const spec = KEM_GROUPS.find((g) => g.option === name);
    if (spec === undefined) throw new UsageError(`invalid --groups ${JSON.stringify(value)}: unknown group "${printable(name)}"; expected ${GROUP_NAMES.join(', ')}`);
    if (seen.has(name)) throw new UsageError(`invalid --groups ${JSON.stringify(value)}: ${name} appears twice`);
    seen.add(name);
    if (!spec.permitted()) throw new CliError(`${spec.displayName} (${name}) is not permitted in strict FIPS mode: use p384-mlkem1024`);
  }
  if (names.length === 0) throw new UsageError(`invalid --groups ${JSON.stringify(value)}: name at least one group`);
  return names as KemGroupName[];
}

/** The group specs a `groups` option means (the library's default order when undefined). */
export function groupSpecs(names: readonly KemGroupName[] | undefined): KemGroupSpec[] {
  if (names !== undefined) return names.map((n) => KEM_GROUPS.find((g) => g.option === n)!);
  const first = defaultKemGroup();
  return [first, ...KEM_GROUPS.filter((g) => g !== first)].filter((g) => g.permitted());
}

/** The protocol options of one listener or dialer, from the flags. */
export interface ProtocolSetup {
  legacyV1: boolean;
  groups: KemGroupName[] | undefined;
  /** Client: its key; server: every key it accepts. */
  psk: PskSelection | undefined;
  /** The `psk` option of dial() (client). */
  dialPsk(): PskOption | undefined;
  /** The `psk` option of listen() (server). */
  listenPsk(): PskOption[] | undefined;
  /** Pinned keys (--identity, --authorized-peers, --server-key, --known-servers). */
  keys: KeyAuthSetup;
  /** Destroys the loaded keys (when the command stops). */
  destroy(): void;
}

/**
 * Reads `--legacy-v1`, `--groups`, `--psk-file` and `--psk-identity` (call it after FIPS mode is
 * set). A v1-only client cannot use v2 groups or a PSK; a server with --legacy-v1 still speaks v2
 * (with its groups) to v2 clients, but cannot require a PSK, since v1 clients could not give one.
 */
export function protocolFromFlags(flags: FlagValues, role: 'client' | 'server'): ProtocolSetup {
  const legacyV1 = flags['legacy-v1'] === true;
  const groups = groupsFromFlag(flags.groups);
  if (legacyV1 && role === 'client' && groups !== undefined) {
    throw new UsageError('--groups applies to protocol v2; with --legacy-v1 a client speaks protocol v1 only');
  }
  const psk = pskFromFlags(flags, role);
  let keys: KeyAuthSetup;
  try {
    keys = keyAuthFromFlags(flags, role, [psk && '--psk-file', legacyV1 && '--legacy-v1'].filter(Boolean) as string[]);
  } catch (e) {
    psk?.destroy();
    throw e;
  }
  return {
    legacyV1,
    groups,
    psk,
    dialPsk: () => (psk ? { identity: psk.keys[0]!.identity, secret: psk.keys[0]!.secret } : undefined),
    listenPsk: () => psk?.keys.map((k) => ({ identity: k.identity, secret: k.secret })),
    keys,
    destroy: () => {
      psk?.destroy();
      keys.destroy();
    },
  };
}

/** The identity and client-policy options of listen() from the flags (keys and certificates). */
export function listenAuthOptions(setup: ProtocolSetup): Pick<ListenOptions, 'identity' | 'authorizedPeers' | 'ca' | 'crls'> {
  const k = setup.keys;
  const identity = [...k.identities, ...(k.certificate ? [k.certificate] : [])];
  return {
    ...(identity.length > 0 ? { identity } : {}),
    ...(k.authorizedPeers ? { authorizedPeers: k.authorizedPeers } : {}),
    ...(k.clientCa ? { ca: k.clientCa } : {}),
    ...(k.crls ? { crls: k.crls } : {}),
  };
}

/**
 * The protocol flags (loading any PSK file first, so a bad one fails before anything starts),
 * then the logger (`logger`, or the one of the flags), metrics and tracing; the loaded keys are
 * destroyed if the latter fails.
 */
export async function protocolAndObservability(flags: FlagValues, role: 'client' | 'server', logger?: Logger): Promise<{ setup: ProtocolSetup; obs: Observability }> {
  const setup = protocolFromFlags(flags, role);
  try {
    return { setup, obs: await observabilityFromFlags(flags, logger) };
  } catch (e) {
    setup.destroy();
    throw e;
  }
}

/** What info() says about a tunnel's protocol. */
export interface ProtocolInfo {
  protocol: string;
  group: string | undefined;
  suite: string;
  peerIdentity?: PeerIdentity | undefined;
}

/** How the peer authenticated, in words: `PSK identity "name"` or `key SHA256:… (comment)`. */
export function describePeerIdentity(peer: PeerIdentity): string {
  if (peer.type === 'psk') return `PSK identity "${printable(peer.identity)}"`;
  if (peer.type === 'certificate') return `certificate "${printable(peer.subject)}" (${peer.fingerprint})`;
  return `key ${peer.fingerprint}${peer.comment ? ` (${printable(peer.comment)})` : ''}`;
}

/** v1's key exchange, which info() does not name. */
export const V1_KEY_EXCHANGE = 'CH-KEM X25519 + ML-KEM-1024';

/**
 * `protocol v2, X25519 + ML-KEM-1024, AES-256-GCM` (and `, PSK identity "name"` when the peer
 * authenticated), or `protocol v1 (legacy), CH-KEM X25519 + ML-KEM-1024, AES-256-GCM`.
 */
export function protocolSummary(info: ProtocolInfo): string {
  const parts = [info.protocol === 'v1' ? 'protocol v1 (legacy)' : `protocol ${info.protocol}`, info.group ?? V1_KEY_EXCHANGE, info.suite];
  if (info.peerIdentity) parts.push(describePeerIdentity(info.peerIdentity));
  return parts.join(', ');
}

/**
 * Log fields of a tunnel's protocol: `protocol`, and `group` and `peer_identity` (the PSK identity
 * the peer proved; not secret, and not named `psk...`, which the logger redacts) or `peer_fingerprint`
 * (the fingerprint of the key it proved) when there are.
 */
export function protocolFields(info: ProtocolInfo): Record<string, string> {
  const fields: Record<string, string> = { protocol: info.protocol };
  if (info.group !== undefined) fields.group = info.group;
  if (info.peerIdentity?.type === 'psk') fields.peer_identity = info.peerIdentity.identity;
  if (info.peerIdentity?.type === 'key') fields.peer_fingerprint = info.peerIdentity.fingerprint;
  if (info.peerIdentity?.type === 'certificate') {
    fields.peer_subject = info.peerIdentity.subject;
    fields.peer_fingerprint = info.peerIdentity.fingerprint;
  }
  return fields;
}

/** Whether this mode can run protocol v1 (strict FIPS mode refuses its X25519). */
export function v1Permitted(): boolean {
  return KEM_GROUPS.find((g) => g.option === 'x25519-mlkem1024')!.permitted();
}
