/**
 * Command-line parsing for quantum-vpn, compatible with the Go reference's `flag` package:
 * `-name` and `--name` both work, a value follows as `--name value` or `--name=value`, a boolean
 * flag takes no value (`--verbose`, or `--verbose=false`), `-h`/`--help` asks for help, and `--`
 * ends the flags. Unlike Go's package, a stray argument is an error instead of being ignored.
 * Also: host:port, size ("1GB") and duration ("10s") values.
 */

/** A bad command line: printed with the command's usage, exit code 1. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** A failure the user can act on (bad value, port in use...): printed as `quantum-vpn: <message>`, exit code 1. */
export class CliError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CliError';
  }
}

export interface FlagSpec {
  name: string;
  kind: 'string' | 'boolean' | 'int';
  /** Shown in the usage ("--addr HOST:PORT"). */
  metavar?: string;
  default?: string | boolean | number;
  /** Text of the default in the usage, when it is not simply the value. */
  defaultText?: string;
  help: string;
}

export type FlagValues = Record<string, string | boolean | number | undefined>;

export interface ParsedArgs {
  flags: FlagValues;
  /** Flags given explicitly on the command line (as opposed to defaults). */
  given: Set<string>;
  positionals: string[];
  help: boolean;
}

const HELP_NAMES = new Set(['h', 'help']);

/** Parses `argv` against `specs`; throws UsageError on anything it does not understand. */
export function parseArgs(specs: readonly FlagSpec[], argv: readonly string[], maxPositionals = 0): ParsedArgs {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const flags: FlagValues = {};
  for (const s of specs) flags[s.name] = s.default;
  const given = new Set<string>();
  const positionals: string[] = [];
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg);
      continue;
    }
    const body = arg.startsWith('--') ? arg.slice(2) : arg.slice(1);
    if (body === '' || body.startsWith('-') || body.startsWith('=')) throw new UsageError(`bad flag syntax: ${arg}`);
    const eq = body.indexOf('=');
    const name = eq >= 0 ? body.slice(0, eq) : body;
    const inline = eq >= 0 ? body.slice(eq + 1) : undefined;
    const spec = byName.get(name);
    if (!spec) {
      if (HELP_NAMES.has(name) && inline === undefined) {
        help = true;
        continue;
      }
      throw new UsageError(`unknown flag: --${name}`);
    }
    let raw: string;
    if (spec.kind === 'boolean') {
      raw = inline ?? 'true';
    } else if (inline !== undefined) {
      raw = inline;
    } else {
      // As in Go, the next argument is the value even when it starts with "-" (`--message -`).
      if (i + 1 >= argv.length) throw new UsageError(`flag needs a value: --${name}`);
      raw = argv[++i]!;
    }
    flags[name] = convert(spec, raw);
    given.add(name);
  }
  if (!help && positionals.length > maxPositionals) {
    throw new UsageError(`unexpected argument: ${positionals[maxPositionals]}`);
  }
  return { flags, given, positionals, help };
}

function convert(spec: FlagSpec, raw: string): string | boolean | number {
  switch (spec.kind) {
    case 'string':
      return raw;
    case 'boolean': {
      const v = raw.toLowerCase();
      if (['1', 't', 'true', 'yes', 'on'].includes(v)) return true;
      if (['0', 'f', 'false', 'no', 'off'].includes(v)) return false;
      throw new UsageError(`invalid boolean value ${JSON.stringify(raw)} for --${spec.name}`);
    }
    case 'int': {
      if (!/^\d+$/.test(raw.trim())) throw new UsageError(`invalid value ${JSON.stringify(raw)} for --${spec.name}: expected a non-negative integer`);
      const n = Number(raw.trim());
      if (!Number.isSafeInteger(n)) throw new UsageError(`invalid value ${JSON.stringify(raw)} for --${spec.name}: too large`);
      return n;
    }
  }
}

/** The options block of a command's usage text, wrapped to about 100 columns. */
export function formatFlags(specs: readonly FlagSpec[]): string {
  const rows = specs.map((s) => {
    const left = `  --${s.name}${s.metavar ? ` ${s.metavar}` : ''}`;
    let def = '';
    if (s.defaultText !== undefined) def = s.defaultText;
    else if (s.default !== undefined && s.default !== false && s.default !== '') def = String(s.default);
    return { left, right: def ? `${s.help} (default ${def})` : s.help };
  });
  const width = Math.min(34, Math.max(...rows.map((r) => r.left.length)) + 2);
  const textWidth = Math.max(40, 100 - width);
  return rows
    .map(({ left, right }) => {
      const lines = wrap(right, textWidth);
      const first = left.length + 2 > width ? `${left}\n${' '.repeat(width)}${lines[0]}` : `${left.padEnd(width)}${lines[0]}`;
      return [first, ...lines.slice(1).map((l) => `${' '.repeat(width)}${l}`)].join('\n');
    })
    .join('\n');
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  lines.push(line);
  return lines;
}

// ---- values -------------------------------------------------------------------------------------

export interface HostPort {
  host: string;
  port: number;
}

/**
 * Parses `HOST:PORT`, `[IPv6]:PORT`, `:PORT` or `PORT`. A missing host becomes `defaultHost`.
 * `allowZero` permits port 0 (listen on any free port).
 */
export function parseHostPort(value: string, what: string, options: { defaultHost: string; allowZero?: boolean }): HostPort {
  const v = value.trim();
  let host: string;
  let portText: string;
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d+)$/.exec(v);
  if (m) {
    host = m[1] ?? m[2] ?? '';
    portText = m[3]!;
  } else if (/^\d+$/.test(v)) {
    host = '';
    portText = v;
  } else {
    throw new UsageError(`invalid ${what} ${JSON.stringify(value)}: expected HOST:PORT`);
  }
  const port = Number(portText);
  const min = options.allowZero ? 0 : 1;
  if (!Number.isInteger(port) || port < min || port > 65535) {
    throw new UsageError(`invalid ${what} ${JSON.stringify(value)}: port must be ${min} to 65535`);
  }
  return { host: host === '' ? options.defaultHost : host, port };
}

/** `host:port`, with brackets around an IPv6 host. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
};

/** `100MB`, `1GB`, `512K`, `4096` (bytes). K/M/G are powers of 1024, as in the reference. */
export function parseSize(value: string, what = '--size'): number {
  // eslint-disable-next-line security/detect-unsafe-regex -- linear: each quantified part is a disjoint character class
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value);
  const suffix = m ? m[2]!.toLowerCase() : '';
  // Own keys only: `10constructor` is an unknown unit, not Object.prototype's constructor.
  const unit = m && Object.hasOwn(SIZE_UNITS, suffix) ? SIZE_UNITS[suffix] : undefined;
  if (!m || unit === undefined) throw new UsageError(`invalid ${what} ${JSON.stringify(value)}: expected a number with an optional unit K, KB, M, MB, G or GB`);
  const bytes = Math.floor(Number(m[1]) * unit);
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new UsageError(`invalid ${what} ${JSON.stringify(value)}: must be at least 1 byte`);
  return bytes;
}

const DURATION_UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A Go duration string (`10s`, `1m30s`, `250ms`, `1.5h`; `0` alone) in milliseconds. */
export function parseDuration(value: string, what: string): number {
  const v = value.trim();
  if (v === '0') return 0;
  // eslint-disable-next-line security/detect-unsafe-regex -- linear: digits, an optional fraction, then a literal unit
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;
  let total = 0;
  let pos = 0;
  while (pos < v.length) {
    re.lastIndex = pos;
    const m = re.exec(v);
    if (!m) throw new UsageError(`invalid ${what} ${JSON.stringify(value)}: expected a duration such as 10s, 500ms or 1m30s`);
    total += Number(m[1]) * DURATION_UNITS[m[2]!]!;
    pos = re.lastIndex;
  }
  if (v === '') throw new UsageError(`invalid ${what} "": expected a duration such as 10s`);
  return total;
}

/** 1234567 → "1.18 MiB" (for human output). */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(2)} ${units[i]}`;
}

/** Peer-supplied or arbitrary text made safe for a terminal line: control characters escaped. */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\x00-\x08\x0b-\x1f\x7f\x80-\x9f\n]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
