#!/usr/bin/env node
'use strict';
// Coverage report and gate of `npm run coverage` (docs/SECURITY.md, "Coverage").
//
// `c8 --reporter=none mocha` leaves V8's raw coverage of every process in coverage/tmp; this
// script turns it into line, branch and function coverage of lib/, writes
// coverage/coverage-summary.json, coverage/coverage-final.json and an HTML report
// (coverage/index.html), prints the figures per directory and for lib/ as a whole, and fails
// unless each gated tree (a directory with everything under it) reaches its line threshold.
//
// Why not c8's own report: c8 merges the raw coverage of all processes by file URL before it
// applies source maps, assuming every process ran the same JavaScript for a file. Here they do
// not: tsx transpiles a .ts file differently in the test process and in the CLI children the
// tests start, so c8's merged offsets point into the wrong code (whole files it reports
// unexecuted ran hundreds of times). This script merges only coverage of identical transpiled
// code (same file, same source map), maps each variant to the .ts source on its own, and merges
// the results there, where positions agree.
//
// Lines are the .ts file's lines, as c8 counts them (a comment inside code that ran counts as
// covered). Files under lib/ that no process loaded count as wholly uncovered, measured on their
// transpiled code (so their comments and types are not lines); files that transpile to nothing
// (type declarations only, such as lib/protocol/peerIdentity.ts) have no lines.
//
// Usage: node scripts/coverage-check.cjs [raw-coverage-dir]   (default coverage/tmp)
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const { fileURLToPath } = require('node:url');
// c8's own libraries (and tsx's esbuild), resolved from those packages so that no other
// devDependency is needed.
const from = (pkg, name) => require(require.resolve(name, { paths: [path.dirname(require.resolve(`${pkg}/package.json`))] }));
const { mergeScriptCovs } = from('c8', '@bcoe/v8-coverage');
const v8toIstanbul = from('c8', 'v8-to-istanbul');
const libCoverage = from('c8', 'istanbul-lib-coverage');
const libReport = from('c8', 'istanbul-lib-report');
const reports = from('c8', 'istanbul-reports');
const esbuild = from('tsx', 'esbuild');

// Trees held to a floor (issue 13): the wire protocol and the cryptography wrappers.
const GATES = [
  { tree: 'lib/protocol', lines: 90 },
  { tree: 'lib/crypto', lines: 90 },
];
const METRICS = ['lines', 'branches', 'functions'];

const root = path.resolve(__dirname, '..');
const lib = path.join(root, 'lib');
const outDir = path.join(root, 'coverage');
const rawDir = path.resolve(process.argv[2] ?? path.join(outDir, 'tmp'));

const inLib = (file) => file.startsWith(`${lib}${path.sep}`) && file.endsWith('.ts') && !file.endsWith('.d.ts');
const toPath = (url) => (url.startsWith('file:') ? fileURLToPath(url) : url);

function listLibFiles(dir) {
  const out = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listLibFiles(full));
    else if (inLib(full)) out.push(full);
  }
  return out;
}

// ---- raw coverage: group each file's script coverage by the code it ran ----------------------
let rawFiles;
try {
  rawFiles = fs.readdirSync(rawDir).filter((f) => f.endsWith('.json'));
} catch (err) {
  console.error(`coverage-check: cannot read ${rawDir} (${err.message}); run \`npm run coverage\` first`);
  process.exit(2);
}
if (rawFiles.length === 0) {
  console.error(`coverage-check: no raw coverage in ${rawDir}; run \`npm run coverage\` first`);
  process.exit(2);
}

/** key (file + hash of its source map) → { file, sourceMap, lineLengths, covs: ScriptCov[] } */
const variants = new Map();
for (const name of rawFiles) {
  const raw = JSON.parse(fs.readFileSync(path.join(rawDir, name), 'utf8'));
  if (!Array.isArray(raw.result)) continue;
  const maps = new Map();
  for (const [url, entry] of Object.entries(raw['source-map-cache'] ?? {})) maps.set(toPath(url), entry);
  for (const script of raw.result) {
    const file = toPath(script.url);
    if (!inLib(file)) continue;
    const map = maps.get(file);
    // Without a source map the script is the file itself (never the case under tsx).
    const id = map?.data ? crypto.createHash('sha256').update(JSON.stringify(map.data)).update(String(map.lineLengths)).digest('hex') : 'raw';
    const key = `${file}\0${id}`;
    let v = variants.get(key);
    if (!v) variants.set(key, (v = { file, map, covs: [] }));
    v.covs.push(script);
  }
}

async function toIstanbul(file, sources, functions) {
  const converter = v8toIstanbul(file, 0, sources);
  await converter.load();
  converter.applyCoverage(functions);
  return converter.toIstanbul();
}

async function main() {
  const coverageMap = libCoverage.createCoverageMap({});
  const seen = new Set();
  for (const v of variants.values()) {
    const merged = mergeScriptCovs(v.covs);
    let sources = {};
    if (v.map?.data) {
      // As c8 does: the transpiled text is not kept, only its line lengths, which is all the
      // mapping needs.
      sources = { sourceMap: { sourcemap: v.map.data } };
      if (v.map.lineLengths) sources.source = v.map.lineLengths.map((n) => `${''.padEnd(n, '.')}\n`).join('');
    }
    coverageMap.merge(await toIstanbul(v.file, sources, merged.functions));
    seen.add(v.file);
  }

  // Files no process loaded: all of their executable code is uncovered.
  for (const file of listLibFiles(lib)) {
    if (seen.has(file)) continue;
    const { code, map } = esbuild.transformSync(fs.readFileSync(file, 'utf8'), { loader: 'ts', format: 'esm', sourcemap: 'external', sourcefile: file });
    if (code.trim() === '') continue; // types only: nothing runs
    const sourcemap = JSON.parse(map);
    sourcemap.sources = [file];
    const empty = [{ functionName: '(not loaded)', ranges: [{ startOffset: 0, endOffset: code.length, count: 0 }], isBlockCoverage: true }];
    coverageMap.merge(await toIstanbul(file, { source: code, sourceMap: { sourcemap } }, empty));
  }

  // Source maps may name sources that are no files (esbuild's `<define:import.meta>`): drop them.
  coverageMap.filter((file) => inLib(file) && fs.existsSync(file));

  fs.mkdirSync(outDir, { recursive: true });
  const context = libReport.createContext({ dir: outDir, coverageMap });
  for (const name of ['json-summary', 'json', 'html']) reports.create(name, { skipEmpty: false }).execute(context);
  report(coverageMap);
}

// ---- per-directory figures and the gate ----------------------------------------------------
function report(coverageMap) {
  const empty = () => Object.fromEntries(METRICS.map((m) => [m, { covered: 0, total: 0 }]));
  const add = (acc, summary) => {
    for (const m of METRICS) {
      acc[m].covered += summary[m].covered;
      acc[m].total += summary[m].total;
    }
  };
  // A directory with nothing to count (no branches, say) is fully covered, as istanbul reports it.
  const pct = (c) => (c.total === 0 ? 100 : (100 * c.covered) / c.total);
  const cell = (c) => `${pct(c).toFixed(1).padStart(5)}% ${`${c.covered}/${c.total}`.padStart(11)}`;

  const dirs = new Map();
  const trees = new Map(GATES.map((g) => [g.tree, empty()]));
  const total = empty();
  for (const file of coverageMap.files()) {
    const rel = path.relative(root, file).split(path.sep).join('/');
    const summary = coverageMap.fileCoverageFor(file).toSummary().data;
    const dir = path.posix.dirname(rel);
    if (!dirs.has(dir)) dirs.set(dir, empty());
    add(dirs.get(dir), summary);
    for (const [tree, acc] of trees) if (rel.startsWith(`${tree}/`)) add(acc, summary);
    add(total, summary);
  }

  const names = [...dirs.keys(), ...[...trees.keys()].map((t) => `${t}/**`)];
  const width = Math.max(...names.map((d) => d.length), 10);
  const row = (name, acc) => `${name.padEnd(width)}  ${METRICS.map((m) => cell(acc[m]).padEnd(19)).join('  ')}`;
  console.log(`\ncoverage per directory (covered/total), from ${rawFiles.length} processes`);
  console.log(`${'directory'.padEnd(width)}  ${METRICS.map((m) => m.padEnd(19)).join('  ')}`);
  for (const dir of [...dirs.keys()].sort()) console.log(row(dir, dirs.get(dir)));
  console.log(row('lib (all)', total));

  console.log('\ngated trees');
  let failed = false;
  for (const gate of GATES) {
    const acc = trees.get(gate.tree);
    const ok = acc.lines.total > 0 && pct(acc.lines) >= gate.lines;
    if (!ok) failed = true;
    console.log(`${row(`${gate.tree}/**`, acc)}  ${ok ? 'ok' : 'FAIL'} (lines >= ${gate.lines}%)`);
  }
  console.log(`\nreport: ${path.relative(process.cwd(), path.join(outDir, 'index.html'))}`);
  if (failed) {
    console.error('coverage-check: a gated tree is below its line threshold (docs/SECURITY.md, "Coverage")');
    process.exit(1);
  }
  console.log('coverage-check: ok');
}

main().catch((err) => {
  console.error(err);
  process.exit(2);
});
