/**
 * Keeps the compliance documents true to the repository (docs/compliance/README.md, "How these
 * stay true"): every path and relative link they name exists, none makes a claim we cannot make,
 * and the library opens no network connection of its own (docs/compliance/EXPORT-CONTROL.md,
 * "Nothing phones home").
 */
import { expect } from 'chai';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** The documents held to these rules: every file in docs/compliance/, and the policy files beside them. */
const DOCUMENTS = [
  ...readdirSync(join(root, 'docs/compliance')).filter((f) => f.endsWith('.md')).map((f) => `docs/compliance/${f}`),
  'SECURITY.md',
  'docs/VERSIONING.md',
  'CHANGELOG.md',
];

/** A repository path: one of these top-level directories, then anything up to a space, quote or bracket. */
const PATH = /(?<![\w./~-])(?:lib|native|test|docs|scripts|fips|bench|\.ci)\/[\w./*-]*/g;
/**
 * A test cited by title: `test/x.test.ts, "title"` or `test/x.test.ts ("title" and "title")`. A
 * title may elide parts with "..." (where the test interpolates); each remaining piece must occur
 * in that file.
 */
const CITATION = /(test\/[\w./-]+\.test\.ts)(?:,\s*|\s*\()((?:"[^"]+"(?:\s*(?:and|or|;|,)\s*)?)+)/g;
/** A relative Markdown link: [text](target), not a URL or an anchor. */
const LINK = /\]\((?!https?:|mailto:|#)([^)\s#]+)/g;

/**
 * Claims we do not hold. A line may name one only to deny it: it must carry the marker comment
 * below and a negation word. Matching is case-insensitive on the text as written.
 */
const FORBIDDEN = [
  'FIPS 140-3 validated',
  'FIPS 140-2 validated',
  'FIPS validated',
  'FIPS-validated',
  'FIPS certified',
  'FIPS-certified',
  'FIPS 140-3 certified',
  'FIPS 140-3 compliant',
  'CMVP certificate #',
  'CMVP validated',
  'CMVP-validated',
  'NIST certified',
  'NIST-certified',
  'SOC 2 compliant',
  'SOC 2 certified',
  'PCI DSS compliant',
  'PCI compliant',
  'PCI certified',
  'HIPAA compliant',
  'HIPAA certified',
];
const NEGATED_MARKER = '<!-- compliance:negated -->';
const NEGATION = /\b(?:not|no|never|none|without|cannot|neither|nor)\b|n't\b/i;

/** Files that may import Node's networking modules, and why (listening, dialling, parsing addresses). */
const NETWORK_MODULES_ALLOWED = new Set([
  'lib/ops/health.ts', // the metrics and health server, at the address the deployer gives
  'lib/ops/logger.ts', // isIP, to mask addresses
  'lib/ops/rateLimit.ts', // isIP, to key buckets by address
  'lib/tunnel/dial.ts',
  'lib/tunnel/listener.ts',
  'lib/tunnel/handshakeDriver.ts',
  'lib/tunnel/tunnel.ts',
  'lib/tunnel/options.ts', // BlockList and isIP, to check the PROXY protocol's trusted sources
  'lib/tunnel/proxyProtocol.ts', // isIP, to validate the addresses a PROXY header carries
  'lib/tunnel/proxyHeaderWriter.ts', // isIP, to write them
]);
const HTTP_IMPORT = /['"](?:node:)?(?:http|https|http2)['"]/;
const NET_IMPORT = /['"](?:node:)?(?:net|tls|dgram|dns)['"]/;

function read(path: string): string {
  return readFileSync(join(root, path), 'utf8');
}

function walk(dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(`${dir}/${e.name}`) : [`${dir}/${e.name}`],
  );
}

/** Whether a path exists; a path with `*` must match at least one file (`*` within a name, `**` across directories). */
function pathExists(path: string): boolean {
  if (!path.includes('*')) return existsSync(join(root, path));
  const base = path.slice(0, path.indexOf('*')).replace(/[^/]*$/, '').replace(/\/$/, '');
  if (!existsSync(join(root, base)) || !statSync(join(root, base)).isDirectory()) return false;
  const pattern = new RegExp(
    `^${path.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*\*\/?/g, '\u0000').replace(/\*/g, '[^/]*').replace(/\u0000/g, '.*')}$`,
  );
  return walk(base).some((f) => pattern.test(f));
}

describe('compliance documents', () => {
  it('exist and are linked from the README', () => {
    const readme = read('README.md');
    for (const doc of DOCUMENTS) {
      expect(existsSync(join(root, doc)), doc).to.equal(true);
      expect(readme, `README.md links ${doc}`).to.include(`(${doc})`);
    }
  });

  it('name only paths that exist: every lib/, native/, test/, docs/, scripts/, fips/ path and relative link', () => {
    const missing: string[] = [];
    let checked = 0;
    for (const doc of DOCUMENTS) {
      const text = read(doc);
      for (const m of text.matchAll(PATH)) {
        const path = m[0].replace(/[.,;:]+$/, '');
        checked++;
        if (!pathExists(path)) missing.push(`${doc}: ${path}`);
      }
      for (const m of text.matchAll(LINK)) {
        const target = relative(root, join(root, dirname(doc), m[1]!));
        checked++;
        if (!existsSync(join(root, target))) missing.push(`${doc}: link ${m[1]}`);
      }
    }
    expect(missing, 'paths named in the documents that do not exist').to.deep.equal([]);
    expect(checked).to.be.greaterThan(100);
  });

  it('quote only test titles that exist in the test file they cite', () => {
    const missing: string[] = [];
    let quoted = 0;
    for (const doc of DOCUMENTS) {
      const text = read(doc).replace(/\s*\n\s*/g, ' ');
      for (const m of text.matchAll(CITATION)) {
        const source = read(m[1]!);
        for (const q of m[2]!.matchAll(/"([^"]+)"/g)) {
          quoted++;
          for (const piece of q[1]!.split('...').map((s) => s.trim()).filter((s) => s.length > 3)) {
            if (!source.includes(piece)) missing.push(`${doc}: ${m[1]} "${piece}"`);
          }
        }
      }
    }
    expect(missing, 'test titles quoted in the documents that their test file does not contain').to.deep.equal([]);
    expect(quoted).to.be.greaterThan(40);
  });

  it('the path check catches a missing file, a glob that matches nothing, and accepts globs that match', () => {
    expect(pathExists('lib/fips/selfTests.ts')).to.equal(true);
    expect(pathExists('lib/fips/selfTest.ts')).to.equal(false);
    expect(pathExists('native/secret.*')).to.equal(true);
    expect(pathExists('lib/fips/**')).to.equal(true);
    expect(pathExists('native/nothing.*')).to.equal(false);
    expect('see test/fips/fips.test.ts.'.match(PATH)![0].replace(/[.,;:]+$/, '')).to.equal('test/fips/fips.test.ts');
    expect('ossl-modules/fips.so and quantum-tunnel/testing'.match(PATH)).to.equal(null);
  });

  it('claim no certificate, validation or approval we do not have (a line may deny one, with the marker)', () => {
    const offending: string[] = [];
    for (const doc of DOCUMENTS) {
      read(doc).split('\n').forEach((line, i) => {
        const hit = FORBIDDEN.find((p) => line.toLowerCase().includes(p.toLowerCase()));
        if (hit === undefined) return;
        if (line.includes(NEGATED_MARKER) && NEGATION.test(line.replace(NEGATED_MARKER, ''))) return;
        offending.push(`${doc}:${i + 1}: "${hit}" in: ${line.trim()}`);
      });
    }
    expect(offending).to.deep.equal([]);
  });

  it('the marker alone does not excuse a claim: the line must also deny it', () => {
    const allowed = (line: string) =>
      !FORBIDDEN.some((p) => line.toLowerCase().includes(p.toLowerCase())) ||
      (line.includes(NEGATED_MARKER) && NEGATION.test(line.replace(NEGATED_MARKER, '')));
    expect(allowed('The module is FIPS 140-3 validated.')).to.equal(false);
    expect(allowed(`The module is FIPS 140-3 validated. ${NEGATED_MARKER}`)).to.equal(false);
    expect(allowed(`The module is not FIPS 140-3 validated. ${NEGATED_MARKER}`)).to.equal(true);
    expect(allowed('We hold CMVP certificate #1234.')).to.equal(false);
  });

  it('nothing phones home: only the listed tunnel and ops modules import networking, and nothing calls fetch', () => {
    const offending: string[] = [];
    for (const file of walk('lib').filter((f) => f.endsWith('.ts'))) {
      const src = read(file);
      if (/\bfetch\s*\(/.test(src)) offending.push(`${file}: fetch(`);
      if (HTTP_IMPORT.test(src) && file !== 'lib/ops/health.ts') offending.push(`${file}: imports http`);
      if (NET_IMPORT.test(src) && !file.startsWith('lib/cli/') && !NETWORK_MODULES_ALLOWED.has(file)) {
        offending.push(`${file}: imports a networking module`);
      }
    }
    expect(offending).to.deep.equal([]);
    for (const file of NETWORK_MODULES_ALLOWED) expect(existsSync(join(root, file)), file).to.equal(true);
  });
});
