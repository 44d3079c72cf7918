/**
 * Reading a configuration file: YAML (`yaml`) or TOML (`toml-eslint-parser`), chosen by the file
 * extension, into plain data and a map from each key path to its line and column, so that every
 * later error can say where it is. Syntax errors and duplicate keys are errors here. A file that
 * is too large, not UTF-8 text or nested absurdly is refused before it is parsed.
 */
import { readFileSync, statSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { isMap, isScalar, LineCounter, parseDocument, type Node as YamlNode } from 'yaml';
import { getStaticTOMLValue, parseTOML, type AST } from 'toml-eslint-parser';

/** A configuration file is a page of settings: anything larger is a mistake (or hostile). */
export const MAX_CONFIG_BYTES = 1024 * 1024;

/** Where something is: a line and column (1-based) of the file, or an environment variable. */
export type Origin = { file: string; line: number; column: number } | { file: string; line?: undefined } | { env: string };

/** One problem of a configuration, with where it is and the key path (`services.pg.listen`). */
export interface ConfigIssue {
  origin: Origin;
  /** The key path, dot-separated; empty for the whole file. */
  path: string;
  message: string;
}

/** `config.yaml:12:5: services.postgres.listen: expected HOST:PORT`. */
export function formatIssue(issue: ConfigIssue): string {
  const o = issue.origin;
  const where = 'env' in o ? `environment ${o.env}` : o.line === undefined ? o.file : `${o.file}:${o.line}:${o.column}`;
  return issue.path === '' ? `${where}: ${issue.message}` : `${where}: ${issue.path}: ${issue.message}`;
}

/** Where each key path (segments joined by "\0") is: its key, and its value. */
export interface Positions {
  key: Map<string, Origin>;
  value: Map<string, Origin>;
}

export interface ParsedSource {
  data: unknown;
  positions: Positions;
  issues: ConfigIssue[];
}

/** The map key of a path. */
export function pathKey(path: readonly (string | number)[]): string {
  return path.map(String).join('\0');
}

/** Reads and parses `path`; never throws for a bad file (every problem is an issue). */
export function readSource(path: string): ParsedSource {
  const name = basename(path);
  const positions: Positions = { key: new Map(), value: new Map() };
  const fail = (message: string): ParsedSource => ({ data: undefined, positions, issues: [{ origin: { file: name }, path: '', message }] });
  const ext = extname(path).toLowerCase();
  if (ext !== '.yaml' && ext !== '.yml' && ext !== '.toml') return fail('unknown file type: the name must end in .yaml, .yml or .toml');
  let bytes: Buffer;
  try {
    // Check the size before reading, so a huge file (or /dev/zero) is not read at all.
    const st = statSync(path);
    if (!st.isFile()) return fail('not a regular file');
    if (st.size > MAX_CONFIG_BYTES) return fail(`too large (${st.size} bytes; at most ${MAX_CONFIG_BYTES})`);
    bytes = readFileSync(path);
  } catch (e) {
    return fail(`cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (bytes.length > MAX_CONFIG_BYTES) return fail(`too large (at most ${MAX_CONFIG_BYTES} bytes)`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return fail('not a text file (invalid UTF-8)');
  }
  if (text.includes('\0')) return fail('not a text file (contains NUL bytes)');
  return ext === '.toml' ? parseTomlText(text, name) : parseYamlText(text, name);
}

/** A parser's message, first line only; a stack overflow on absurd nesting said in words. */
function parserMessage(message: string): string {
  const first = message.split('\n')[0]!;
  return /Maximum call stack size exceeded/.test(first) ? 'nested too deeply' : first;
}

/** Parses YAML `text` (from the file `name`). */
export function parseYamlText(text: string, name: string): ParsedSource {
  const positions: Positions = { key: new Map(), value: new Map() };
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number): Origin => {
    const p = lines.linePos(offset);
    return { file: name, line: p.line, column: p.col };
  };
  // Messages only: the parser's excerpts of the source could show a value that is better not copied.
  const issues: ConfigIssue[] = doc.errors.map((e) => ({ origin: at(e.pos[0]), path: '', message: parserMessage(e.message) }));
  if (issues.length > 0) return { data: undefined, positions, issues };
  const walk = (node: YamlNode | null | undefined, path: string[]): void => {
    if (!isMap(node)) return;
    for (const pair of node.items) {
      const k = pair.key as YamlNode | null;
      const keyName = isScalar(k) ? String(k.value) : String(k);
      const p = [...path, keyName];
      const keyRange = (k as { range?: [number, number] } | null)?.range;
      if (keyRange) positions.key.set(pathKey(p), at(keyRange[0]));
      const v = pair.value as YamlNode | null;
      const valueRange = (v as { range?: [number, number] } | null)?.range;
      positions.value.set(pathKey(p), valueRange ? at(valueRange[0]) : (positions.key.get(pathKey(p)) ?? { file: name }));
      walk(v, p);
    }
  };
  walk(doc.contents, []);
  let data: unknown;
  try {
    // A bounded alias expansion: a "billion laughs" file is an error, not an out-of-memory.
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    return { data: undefined, positions, issues: [{ origin: { file: name }, path: '', message: parserMessage((e as Error).message) }] };
  }
  return { data, positions, issues: [] };
}

/** Parses TOML `text` (from the file `name`). */
export function parseTomlText(text: string, name: string): ParsedSource {
  const positions: Positions = { key: new Map(), value: new Map() };
  let ast: AST.TOMLProgram;
  try {
    ast = parseTOML(text);
  } catch (e) {
    const pe = e as { lineNumber?: number; column?: number; message?: string };
    const origin: Origin = pe.lineNumber !== undefined ? { file: name, line: pe.lineNumber, column: (pe.column ?? 0) + 1 } : { file: name };
    return { data: undefined, positions, issues: [{ origin, path: '', message: parserMessage(String(pe.message ?? e)) }] };
  }
  const at = (n: AST.HasLocs): Origin => ({ file: name, line: n.loc.start.line, column: n.loc.start.column + 1 });
  const keyNames = (key: AST.TOMLKey) => key.keys.map((k) => (k.type === 'TOMLBare' ? k.name : k.value));
  // The TOML parser's values are built by assignment, where a `__proto__` key sets the table's
  // prototype (its settings hidden from the schema, yet read as inherited): refused by name,
  // before the values are built. (YAML keeps such a key as an own property; the schema refuses it.)
  const refused: ConfigIssue[] = [];
  const refuseProto = (path: readonly (string | number)[], node: AST.HasLocs) => {
    if (refused.length === 0 && path.includes('__proto__')) refused.push({ origin: at(node), path: path.map(String).join('.'), message: 'the key "__proto__" is not allowed' });
  };
  const record = (prefix: readonly (string | number)[], kv: AST.TOMLKeyValue) => {
    const names = keyNames(kv.key);
    refuseProto([...prefix, ...names], kv.key);
    // Dotted keys (`a.b = 1`) define their parents too: each part points at the key.
    for (let i = 1; i <= names.length; i++) {
      const p = pathKey([...prefix, ...names.slice(0, i)]);
      if (!positions.key.has(p)) positions.key.set(p, at(kv.key));
      if (i < names.length && !positions.value.has(p)) positions.value.set(p, at(kv.key));
    }
    const full = [...prefix, ...names];
    positions.value.set(pathKey(full), at(kv.value));
    if (kv.value.type === 'TOMLInlineTable') for (const inner of kv.value.body) record(full, inner);
  };
  for (const item of ast.body[0].body) {
    if (item.type === 'TOMLKeyValue') {
      record([], item);
      continue;
    }
    const path = item.resolvedKey;
    refuseProto(path, item.key);
    for (let i = 1; i <= path.length; i++) {
      const p = pathKey(path.slice(0, i));
      if (!positions.key.has(p)) positions.key.set(p, at(item.key));
      if (!positions.value.has(p)) positions.value.set(p, at(item));
    }
    for (const kv of item.body) record(path, kv);
  }
  if (refused.length > 0) return { data: undefined, positions, issues: refused };
  return { data: getStaticTOMLValue(ast), positions, issues: [] };
}
