/**
 * Loading a configuration: the file (source.ts), then the environment overrides, then the schema
 * (schema.ts), then each service's checks across keys with forward's own code (forwardSettings,
 * requireAuthentication). The result is either the resolved configuration or every issue found,
 * each naming where it is. Nothing here listens; loadServiceKeys() reads a service's key files the
 * way serve does (check-config runs it for every service).
 *
 * Environment rule: QUANTUM_VPN_<KEY> sets a top-level key, QUANTUM_VPN_DEFAULTS__<KEY> a key of
 * `defaults`, QUANTUM_VPN_SERVICES__<NAME>__<KEY> a key of one service (creating it if the file has
 * none). Names and keys are written in upper case with "-" as "_" (service names have no "_", so
 * the rule is reversible); booleans and numbers are read as their flags read them. The environment
 * wins over the file. Any other QUANTUM_VPN_ variable is an error, so a misspelt one is noticed.
 */
import { statSync } from 'node:fs';
import { type FlagSpec, type FlagValues, formatHostPort, type HostPort, parseArgs } from '../cli/args.js';
import { ciphersFromFlag } from '../cli/common.js';
import { FORWARD_FLAGS, forwardSettings, type ForwardSettings, requireAuthentication } from '../cli/forward.js';
import { protocolFromFlags } from '../cli/protocol.js';
import type { LogLevel } from '../ops/index.js';
import { ConfigSchema, type ConfigFile, SERVICE_KEYS, type ServiceKeys, stripFlagPrefix, TOP_LEVEL_KEYS } from './schema.js';
import { type ConfigIssue, type Origin, pathKey, type Positions, readSource } from './source.js';

/** The prefix of the environment overrides. */
export const ENV_PREFIX = 'QUANTUM_VPN_';
/** QUANTUM_VPN_ variables that are not configuration (forward's worker processes). */
const ENV_NOT_CONFIG = new Set(['QUANTUM_VPN_WORKER']);

export type ServiceRole = 'server' | 'client' | 'echo';

/** One service, resolved: forward's flag values and their checked meaning. */
export interface ServiceConfig {
  name: string;
  role: ServiceRole;
  /** forward's flags: their defaults, then `defaults`, then the service's own keys. */
  flags: FlagValues;
  /** The keys set (in `defaults` or the service). */
  given: Set<string>;
  settings: ForwardSettings;
  /** Where each key set is (for errors found later: a key file that does not load). */
  origins: Map<string, Origin>;
  /**
   * What a reload compares: the flags, and the size and time of every file they name, so a
   * rotated key file replaces the service too.
   */
  fingerprint: string;
}

export interface ResolvedConfig {
  file: string;
  logLevel: LogLevel;
  logFormat: 'text' | 'json';
  obsAddr: string;
  fips: boolean;
  tracing: 'none' | 'simple' | 'otel';
  watch: boolean;
  services: ServiceConfig[];
}

export type LoadResult = { ok: true; config: ResolvedConfig } | { ok: false; issues: ConfigIssue[] };

/** Keys that `defaults` gives only to the roles they apply to (a client inherits no rate limit). */
const CLIENT_ONLY = new Set(['connect', 'server-key', 'known-servers', 'server-name', 'trust-on-first-use', 'pool-min-idle', 'pool-max-lifetime']);
const SERVER_ONLY = new Set([
  'to',
  'authorized-peers',
  'backend-check-interval',
  'max-conns-per-ip',
  'handshake-rate',
  'handshake-burst',
  'global-handshake-rate',
  'global-handshake-burst',
  'proxy-protocol',
  'proxy-from',
  'send-proxy',
]);
/** Keys naming files whose change replaces the service on reload. */
const FILE_KEYS = ['identity', 'passphrase-file', 'authorized-peers', 'server-key', 'known-servers', 'cert', 'ca', 'crl', 'psk-file'];

const KEY_SPECS = new Map<string, FlagSpec>([
  ...FORWARD_FLAGS.map((s) => [s.name, s] as const),
  ['watch', { name: 'watch', kind: 'boolean', help: '' }],
  ['role', { name: 'role', kind: 'string', help: '' }],
]);

/** Loads, checks and resolves the configuration file `path` with the overrides of `env`. */
export function loadConfig(path: string, env: NodeJS.ProcessEnv = process.env): LoadResult {
  const source = readSource(path);
  if (source.issues.length > 0) return { ok: false, issues: source.issues };
  const file = source.issues[0]?.origin ?? { file: path.split('/').pop()! };
  const { positions } = source;
  const issues: ConfigIssue[] = [];
  let data = source.data ?? {};
  if (typeof data === 'object' && data !== null && !Array.isArray(data)) data = applyEnvironment(data as Record<string, unknown>, env, positions, issues);
  if (isEmpty(data)) return { ok: false, issues: [...issues, { origin: file, path: '', message: 'empty configuration: define at least one service under "services"' }] };

  const parsed = ConfigSchema.safeParse(data);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) issues.push(...fromZod(issue, data, positions, file));
    return { ok: false, issues: sortIssues(issues) };
  }
  if (issues.length > 0) return { ok: false, issues: sortIssues(issues) };
  const cfg = parsed.data;
  const names = Object.keys(cfg.services);
  if (names.length === 0) issues.push({ origin: locate(positions, ['services'], file), path: 'services', message: 'define at least one service' });
  const services: ServiceConfig[] = [];
  for (const name of names) {
    const service = resolveService(name, cfg, positions, file, issues);
    if (service) services.push(service);
  }
  if (issues.length > 0) return { ok: false, issues: sortIssues(issues) };
  return {
    ok: true,
    config: {
      file: path,
      logLevel: cfg['log-level'] ?? 'info',
      logFormat: cfg['log-format'] ?? 'text',
      obsAddr: cfg['obs-addr'] ?? '',
      fips: cfg.fips ?? false,
      tracing: cfg.tracing ?? 'none',
      watch: cfg.watch ?? false,
      services,
    },
  };
}

function isEmpty(data: unknown): boolean {
  return data === null || data === undefined || (typeof data === 'object' && !Array.isArray(data) && Object.keys(data).length === 0);
}

/** File order: by line, then column; environment issues last. */
function sortIssues(issues: ConfigIssue[]): ConfigIssue[] {
  const rank = (i: ConfigIssue) => ('env' in i.origin ? [Infinity, 0] : [i.origin.line ?? 0, i.origin.line === undefined ? 0 : i.origin.column]);
  return issues.map((i, n) => ({ i, n })).sort((a, b) => {
    const [la, ca] = rank(a.i);
    const [lb, cb] = rank(b.i);
    return la! - lb! || ca! - cb! || a.n - b.n;
  }).map((x) => x.i);
}

/** The position of `path`'s value (or key), or of its nearest ancestor; else the file. */
function locate(positions: Positions, path: readonly (string | number)[], file: Origin, which: 'key' | 'value' = 'value'): Origin {
  for (let n = path.length; n > 0; n--) {
    const k = pathKey(path.slice(0, n));
    const found = (n === path.length && which === 'key' ? positions.key.get(k) : undefined) ?? positions.value.get(k) ?? positions.key.get(k);
    if (found) return found;
  }
  return file;
}

/** `services.pg.listen`. */
function dotted(path: readonly PropertyKey[]): string {
  return path.map(String).join('.');
}

// ---- environment --------------------------------------------------------------------------------

function keyFromEnv(part: string): string {
  return part.toLowerCase().replace(/_/g, '-');
}

/**
 * `obj[key]` if it is `obj`'s own property: keys from the file and the environment (a service
 * called `constructor`) never read Object.prototype.
 */
function ownValue(obj: object, key: PropertyKey): unknown {
  // eslint-disable-next-line security/detect-object-injection -- an own property, checked just before
  return Object.hasOwn(obj, key) ? (obj as Record<PropertyKey, unknown>)[key] : undefined;
}

/** Sets `obj[key]` as an own data property: a `__proto__` key from the file or the environment stays a key. */
function setOwn<T>(obj: object, key: PropertyKey, value: T): T {
  Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
  return value;
}

/** Applies the QUANTUM_VPN_ overrides to `data` (a copy), recording their origin. */
function applyEnvironment(data: Record<string, unknown>, env: NodeJS.ProcessEnv, positions: Positions, issues: ConfigIssue[]): Record<string, unknown> {
  const out: Record<string, unknown> = structuredClone(data);
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || ENV_NOT_CONFIG.has(name) || raw === undefined) continue;
    const parts = name.slice(ENV_PREFIX.length).split('__');
    let path: string[] | undefined;
    if (parts.length === 1 && TOP_LEVEL_KEYS.includes(keyFromEnv(parts[0]!)) && !['defaults', 'services'].includes(keyFromEnv(parts[0]!))) path = [keyFromEnv(parts[0]!)];
    else if (parts.length === 2 && parts[0] === 'DEFAULTS' && SERVICE_KEYS.includes(keyFromEnv(parts[1]!))) path = ['defaults', keyFromEnv(parts[1]!)];
    else if (parts.length === 3 && parts[0] === 'SERVICES' && parts[1] !== '' && SERVICE_KEYS.includes(keyFromEnv(parts[2]!))) path = ['services', keyFromEnv(parts[1]!), keyFromEnv(parts[2]!)];
    if (path === undefined) {
      issues.push({
        origin: { env: name },
        path: '',
        message: 'not a configuration key: use QUANTUM_VPN_<KEY>, QUANTUM_VPN_DEFAULTS__<KEY> or QUANTUM_VPN_SERVICES__<NAME>__<KEY> (docs/OPERATIONS.md)',
      });
      continue;
    }
    const key = path[path.length - 1]!;
    let value: unknown = raw;
    const spec = KEY_SPECS.get(key);
    if (spec && spec.kind !== 'string') {
      try {
        value = ownValue(parseArgs([spec], [`--${key}=${raw}`]).flags, key);
      } catch (e) {
        issues.push({ origin: { env: name }, path: dotted(path), message: spec.kind === 'boolean' ? 'expected true or false' : stripFlagPrefix((e as Error).message) });
        continue;
      }
    }
    let node: Record<string, unknown> = out;
    let ok = true;
    for (const part of path.slice(0, -1)) {
      const next = ownValue(node, part) ?? setOwn(node, part, {});
      if (typeof next !== 'object' || next === null || Array.isArray(next)) {
        ok = false;
        break;
      }
      node = next as Record<string, unknown>;
    }
    if (!ok) {
      issues.push({ origin: { env: name }, path: dotted(path), message: 'the file does not have a map here' });
      continue;
    }
    setOwn(node, key, value);
    positions.value.set(pathKey(path), { env: name });
    positions.key.set(pathKey(path), { env: name });
  }
  return out;
}

// ---- schema issues ------------------------------------------------------------------------------

/** Keys within two edits of `word`: a suggestion for a misspelt key. */
function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const c of candidates) {
    const d = editDistance(word, c);
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best;
}

/* eslint-disable security/detect-object-injection -- integer indexes into a number array and strings */
function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}
/* eslint-enable security/detect-object-injection */

function valueAt(data: unknown, path: readonly PropertyKey[]): unknown {
  let v = data;
  for (const p of path) v = v !== null && typeof v === 'object' ? ownValue(v, p) : undefined;
  return v;
}

interface ZodIssueLike {
  code: string;
  path: PropertyKey[];
  message: string;
  keys?: string[];
  issues?: Array<{ message: string }>;
}

function fromZod(issue: ZodIssueLike, data: unknown, positions: Positions, file: Origin): ConfigIssue[] {
  const path = issue.path.map<string | number>((p) => (typeof p === 'symbol' ? String(p) : p));
  if (issue.code === 'unrecognized_keys') {
    const known = path.length === 0 ? TOP_LEVEL_KEYS : SERVICE_KEYS;
    return (issue.keys ?? []).map((key) => {
      const hint = closest(key, known);
      return { origin: locate(positions, [...path, key], file, 'key'), path: dotted([...path, key]), message: hint ? `unknown key (did you mean "${hint}"?)` : 'unknown key' };
    });
  }
  if (issue.code === 'invalid_key') {
    return [{ origin: locate(positions, path, file, 'key'), path: dotted(path), message: issue.issues?.[0]?.message ?? issue.message }];
  }
  const missing = issue.code === 'invalid_type' && valueAt(data, path) === undefined;
  return [{ origin: locate(positions, path, file), path: dotted(path), message: missing ? 'required' : issue.message }];
}

// ---- services -----------------------------------------------------------------------------------

/** A service's keys over `defaults` (each default only for the roles it applies to), and where each is. */
function mergeService(name: string, cfg: ConfigFile, positions: Positions, file: Origin): { keys: ServiceKeys; origins: Map<string, Origin> } {
  const own = ownValue(cfg.services, name) as ConfigFile['services'][string];
  const role = own.role ?? cfg.defaults?.role;
  const keys: Record<string, unknown> = {};
  const origins = new Map<string, Origin>();
  for (const [k, v] of Object.entries(cfg.defaults ?? {})) {
    if ((role === 'client' && SERVER_ONLY.has(k)) || (role !== 'client' && CLIENT_ONLY.has(k))) continue;
    setOwn(keys, k, v);
    origins.set(k, locate(positions, ['defaults', k], file));
  }
  for (const [k, v] of Object.entries(own)) {
    setOwn(keys, k, v);
    origins.set(k, locate(positions, ['services', name, k], file));
  }
  origins.set('', locate(positions, ['services', name], file, 'key'));
  return { keys, origins };
}

/**
 * An error of forward's code (which names flags: `--to`) as an issue of the service: at the
 * first key it names that the service sets, with the flags written as keys.
 */
export function serviceIssue(service: Pick<ServiceConfig, 'name' | 'origins'> & { flags?: FlagValues }, e: unknown): ConfigIssue {
  const message = String((e as Error)?.message ?? e);
  // The flag it names, else the key whose value (a file path) it quotes.
  const named =
    [...message.matchAll(/--([a-z0-9-]+)/g)].map((m) => m[1]!).find((k) => service.origins.has(k)) ??
    [...service.origins.keys()].find((k) => {
      const v = service.flags === undefined ? undefined : ownValue(service.flags, k);
      return k !== '' && typeof v === 'string' && v.length > 1 && message.includes(v);
    });
  const path = named ? `services.${service.name}.${named}` : `services.${service.name}`;
  const origin = service.origins.get(named ?? '')!;
  return { origin, path, message: stripFlagPrefix(message).replace(/--([a-z0-9-]+)/g, '$1') };
}

function resolveService(name: string, cfg: ConfigFile, positions: Positions, file: Origin, issues: ConfigIssue[]): ServiceConfig | undefined {
  const { keys, origins } = mergeService(name, cfg, positions, file);
  const at = (key: string) => origins.get(key) ?? origins.get('')!;
  const fail = (key: string, message: string) => {
    issues.push({ origin: at(key), path: key ? `services.${name}.${key}` : `services.${name}`, message });
    return undefined;
  };
  const role = keys.role;
  if (role === undefined) return fail('', 'role is required: server, client or echo');
  if (keys.listen === undefined) return fail('', 'listen is required');
  if (role === 'server' && keys.to === undefined) return fail('', 'to is required for role server (the TCP service to protect)');
  if (role === 'client' && keys.connect === undefined) return fail('', 'connect is required for role client (the forward server)');
  for (const k of ['to', 'connect'] as const) {
    if (ownValue(keys, k) !== undefined && (role === 'echo' || (k === 'to') !== (role === 'server'))) return fail(k, `does not apply to role ${role}`);
  }
  const flags: FlagValues = {};
  for (const spec of FORWARD_FLAGS) flags[spec.name] = spec.default;
  const given = new Set<string>();
  for (const [k, v] of Object.entries(keys)) {
    if (k === 'role') continue;
    setOwn(flags, k, v);
    given.add(k);
  }
  const partial = { name, origins, flags };
  try {
    const settings = forwardSettings(flags, given, role === 'echo');
    requireAuthentication(flags, role === 'client' ? 'client' : 'server', settings.remote === 'echo' ? settings.listenAddr : settings.remote, false);
    return { name, role, flags, given, settings, origins, fingerprint: fingerprint(role, flags) };
  } catch (e) {
    issues.push(serviceIssue(partial, e));
    return undefined;
  }
}

function fingerprint(role: ServiceRole, flags: FlagValues): string {
  const files = new Map<string, string>();
  for (const key of FILE_KEYS) {
    const v = ownValue(flags, key);
    if (typeof v !== 'string' || v === '') continue;
    for (const p of v.split(',')) {
      try {
        const st = statSync(p.trim());
        files.set(p, `${st.size}:${st.mtimeMs}`);
      } catch {
        files.set(p, 'absent');
      }
    }
  }
  const sorted = Object.fromEntries(Object.entries(flags).sort(([a], [b]) => a.localeCompare(b)));
  return JSON.stringify({ role, sorted, files: Object.fromEntries(files) });
}

/**
 * Loads a service's keys as serve would (key files, PSK, certificates; the cipher in the current
 * FIPS mode), then destroys them. Throws the error serve would, as a ConfigIssue.
 */
export function loadServiceKeys(service: ServiceConfig): ConfigIssue | undefined {
  try {
    ciphersFromFlag(service.flags.cipher as string | undefined);
    protocolFromFlags(service.flags, service.role === 'client' ? 'client' : 'server').destroy();
    return undefined;
  } catch (e) {
    return serviceIssue(service, e);
  }
}

/** One line about a service: `postgres: server on 0.0.0.0:8443 (tunnels) -> 127.0.0.1:5432 (TCP); auth: identity, authorized-peers`. */
export function serviceSummary(service: ServiceConfig, bound?: { address: string; port: number }): string {
  const { listenAddr, remote } = service.settings;
  // Once listening, the address bound (port 0 chose one).
  const listen = bound ? formatHostPort(bound.address, bound.port) : formatHostPort(listenAddr.host, listenAddr.port);
  const route =
    service.role === 'client'
      ? `${listen} (TCP) -> ${formatHostPort((remote as HostPort).host, (remote as HostPort).port)} (tunnels)`
      : service.role === 'echo'
        ? `${listen} (tunnels) -> echo`
        : `${listen} (tunnels) -> ${formatHostPort((remote as HostPort).host, (remote as HostPort).port)} (TCP)`;
  const auth = AUTH_KEYS.filter((k) => service.given.has(k) && ownValue(service.flags, k) !== false);
  return `${service.name}: ${service.role} on ${route}; auth: ${auth.length > 0 ? auth.join(', ') : 'none'}`;
}

const AUTH_KEYS = ['psk-file', 'identity', 'authorized-peers', 'cert', 'ca', 'server-key', 'known-servers', 'no-auth'];
