/**
 * The public files of pinned-key authentication, in the forms ssh and WireGuard users know:
 *
 * authorized-peers (server): one admitted client per line, its public key or its fingerprint,
 * then an optional comment:
 *   # comments and blank lines are ignored
 *   qtun-x25519-mlkem1024 AAAA…= laptop
 *   SHA256:3q2+7w… ci-runner
 *
 * known-servers (client): one server per line, `host:port` (`[v6]:port` for IPv6) and its key:
 *   db.internal:7000 qtun-x25519-mlkem1024 AAAA…= added 2026-12-07
 *
 * Errors name the file and line. Public keys are not secrets: these files may be world-readable.
 */
import { appendFileSync, readFileSync } from 'node:fs';
import { ErrorCode, qtError } from '../errors.js';
import { AuthorizedPeers, isFingerprint, parsePublicKeyLine, type PublicIdentityKey } from './keys.js';

/** Largest file read (100,000 keys of ~2.2 KB would be larger; nobody has that many). */
const MAX_FILE_BYTES = 64 << 20;

function readLines(path: string, what: string): string[] {
  let text: string;
  try {
    const buf = readFileSync(path);
    if (buf.length > MAX_FILE_BYTES) throw qtError(ErrorCode.INVALID_ARGUMENT, `the ${what} ${path} is too large`);
    text = buf.toString('utf8');
  } catch (err) {
    if ((err as { code?: string }).code === ErrorCode.INVALID_ARGUMENT) throw err;
    throw qtError(ErrorCode.INVALID_ARGUMENT, `cannot read the ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  return text.split(/\r?\n/);
}

function lineError(path: string, line: number, message: string, cause?: unknown): Error {
  return qtError(ErrorCode.INVALID_ARGUMENT, `${path}:${line}: ${message}`, cause === undefined ? undefined : { cause });
}

/** Whether a line holds nothing (blank or a comment). */
function isBlank(line: string): boolean {
  const t = line.trim();
  return t === '' || t.startsWith('#');
}

/** Parses an authorized-peers file. */
export function readAuthorizedPeers(path: string): AuthorizedPeers {
  const peers = new AuthorizedPeers();
  readLines(path, 'authorized-peers file').forEach((text, i) => {
    if (isBlank(text)) return;
    const first = text.trim().split(/\s+/)[0]!;
    if (!isFingerprint(first) && !first.startsWith('qtun-')) throw lineError(path, i + 1, 'expected a public key (qtun-<group> <base64>) or a fingerprint (SHA256:…)');
    try {
      peers.add(text);
    } catch (err) {
      throw lineError(path, i + 1, (err as Error).message, err);
    }
  });
  return peers;
}

/** One known server: where, and its key. */
export interface KnownServer {
  host: string;
  port: number;
  key: PublicIdentityKey;
  comment: string;
  line: number;
}

/** `host:port` as known-servers writes it (`[v6]:port` for an IPv6 address). */
export function hostPortKey(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function parseHostPort(text: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:\s[\]]+)):(\d{1,5})$/.exec(text);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  return { host: (m[1] ?? m[2]!).toLowerCase(), port };
}

/** The servers of a known-servers file, by `host:port` (lowercase host). A missing file is empty. */
export function readKnownServers(path: string, { missingOk = true } = {}): Map<string, KnownServer> {
  const out = new Map<string, KnownServer>();
  let lines: string[];
  try {
    lines = readLines(path, 'known-servers file');
  } catch (err) {
    if (missingOk && /ENOENT/.test((err as Error).message)) return out;
    throw err;
  }
  lines.forEach((text, i) => {
    if (isBlank(text)) return;
    const m = /^\s*(\S+)\s+(.*)$/.exec(text);
    const where = m ? parseHostPort(m[1]!) : undefined;
    if (!m || !where) throw lineError(path, i + 1, 'expected host:port and a public key (qtun-<group> <base64>)');
    let parsed;
    try {
      parsed = parsePublicKeyLine(m[2]!);
    } catch (err) {
      throw lineError(path, i + 1, (err as Error).message, err);
    }
    const name = hostPortKey(where.host, where.port);
    if (out.has(name)) throw lineError(path, i + 1, `${name} is listed twice (line ${out.get(name)!.line} and this one)`);
    out.set(name, { ...where, key: parsed.key, comment: parsed.comment, line: i + 1 });
  });
  return out;
}

/** The known key of `host:port`, if the file lists one. */
export function knownServerKey(path: string, host: string, port: number): KnownServer | undefined {
  return readKnownServers(path).get(hostPortKey(host.toLowerCase(), port));
}

/** Appends a server's key (trust on first use, or keyscan output kept). */
export function appendKnownServer(path: string, host: string, port: number, key: PublicIdentityKey, comment: string): void {
  appendFileSync(path, `${hostPortKey(host.toLowerCase(), port)} ${key.toString(comment)}\n`, { mode: 0o644 });
}
