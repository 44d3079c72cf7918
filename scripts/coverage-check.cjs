#!/usr/bin/env node
'use strict';
// Reads c8's json-summary (coverage/coverage-summary.json, written by `npm run coverage`), prints
// line, branch and function coverage per directory of lib/ and for lib/ as a whole, and fails
// unless each gated tree (a directory with everything under it) reaches its line threshold.
// Usage: node scripts/coverage-check.cjs [path/to/coverage-summary.json]
const fs = require('node:fs');
const path = require('node:path');

// Trees held to a floor (issue 13): the wire protocol and the cryptography wrappers.
const GATES = [
  { tree: 'lib/protocol', lines: 90 },
  { tree: 'lib/crypto', lines: 90 },
];
const METRICS = ['lines', 'branches', 'functions'];

const root = path.resolve(__dirname, '..');
const summaryPath = path.resolve(process.argv[2] ?? path.join(root, 'coverage', 'coverage-summary.json'));
let summary;
try {
  summary = JSON.parse(fs.readFileSync(summaryPath, 'utf8'));
} catch (err) {
  console.error(`coverage-check: cannot read ${summaryPath} (${err.message}); run \`npm run coverage\` first`);
  process.exit(2);
}

// c8 keys files by absolute path; anything outside lib/ (none with the shipped .c8rc.json) is ignored.
const files = [];
for (const [key, entry] of Object.entries(summary)) {
  if (key === 'total') continue;
  const rel = path.relative(root, path.resolve(key)).split(path.sep).join('/');
  if (rel.startsWith('lib/')) files.push({ rel, entry });
}
if (files.length === 0) {
  console.error(`coverage-check: no files under lib/ in ${summaryPath}`);
  process.exit(2);
}

const empty = () => Object.fromEntries(METRICS.map((m) => [m, { covered: 0, total: 0 }]));
const add = (acc, entry) => {
  for (const m of METRICS) {
    acc[m].covered += entry[m].covered;
    acc[m].total += entry[m].total;
  }
};
// A directory with nothing to count (no branches, say) is fully covered, as c8 reports it.
const pct = (c) => (c.total === 0 ? 100 : (100 * c.covered) / c.total);
const cell = (c) => `${pct(c).toFixed(1).padStart(5)}% ${`${c.covered}/${c.total}`.padStart(11)}`;

// Each file's own directory, and each gated tree (the directory and everything under it).
const dirs = new Map();
const trees = new Map(GATES.map((g) => [g.tree, empty()]));
const total = empty();
for (const { rel, entry } of files) {
  const dir = path.posix.dirname(rel);
  if (!dirs.has(dir)) dirs.set(dir, empty());
  add(dirs.get(dir), entry);
  for (const [tree, acc] of trees) if (rel.startsWith(`${tree}/`)) add(acc, entry);
  add(total, entry);
}

const width = Math.max(...[...dirs.keys(), ...[...trees.keys()].map((t) => `${t}/**`)].map((d) => d.length), 10);
const header = `${'directory'.padEnd(width)}  ${METRICS.map((m) => m.padEnd(19)).join('  ')}`;
const row = (name, acc) => `${name.padEnd(width)}  ${METRICS.map((m) => cell(acc[m]).padEnd(19)).join('  ')}`;
console.log('\ncoverage per directory (covered/total)');
console.log(header);
for (const dir of [...dirs.keys()].sort()) console.log(row(dir, dirs.get(dir)));
console.log(row('lib (all)', total));

console.log('\ngated trees');
let failed = false;
for (const gate of GATES) {
  const acc = trees.get(gate.tree);
  const lines = pct(acc.lines);
  const ok = acc.lines.total > 0 && lines >= gate.lines;
  if (!ok) failed = true;
  console.log(`${row(`${gate.tree}/**`, acc)}  ${ok ? 'ok' : 'FAIL'} (lines >= ${gate.lines}%)`);
}
if (failed) {
  console.error('\ncoverage-check: a gated tree is below its line threshold (docs/SECURITY.md, "Coverage")');
  process.exit(1);
}
console.log('\ncoverage-check: ok');
