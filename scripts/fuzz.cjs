#!/usr/bin/env node
// `npm run fuzz [-- --time SECONDS] [--only a,b]`: runs each fuzz target of fuzz/targets.ts under
// Jazzer.js (coverage-guided, libFuzzer inside) for SECONDS (default 60) and reports executions and
// coverage. Jazzer.js is installed on first use into fuzz/node_modules (apart from the project's
// own dependencies). Seeds come from fuzz/corpus/<target>/ (committed, written by fuzz/seeds.ts);
// what the fuzzer finds interesting goes to fuzz/.build/corpus/<target>/, and a failing input to
// fuzz/findings/<target>/, to be copied into fuzz/regressions/<target>/ once fixed (the test suite
// replays both directories: test/fuzz/corpus.test.ts). Exit status 1 when any target fails.
// The native targets (native/fuzz/*.cc, libFuzzer) run afterwards through scripts/fuzz-native.sh
// with the same --time; --only takes names from both sets.
'use strict';
const { spawnSync, execFileSync } = require('node:child_process');
const { cpSync, existsSync, mkdirSync, readdirSync } = require('node:fs');
const { join } = require('node:path');

const root = join(__dirname, '..');
const fuzzDir = join(root, 'fuzz');
const build = join(fuzzDir, '.build');
// Targets that return a promise (the handshakes) run asynchronously; the rest with --sync.
const TARGETS = { frames: 'sync', messages: 'sync', identities: 'sync', config: 'sync', responder: 'async', initiator: 'async' };
// Jazzer.js's bug detectors stay on (prototype pollution, command injection, path traversal), but
// for the config target path traversal: a config file names key files by path, and `../` in
// those is the operator's to write (no path ever comes from a peer).
const DISABLED_DETECTORS = { config: ['path-traversal'] };
const NATIVE = readdirSync(join(root, 'native', 'fuzz')).filter((f) => f.endsWith('.cc')).map((f) => f.slice(0, -3));

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

function ensureJazzer() {
  if (existsSync(join(fuzzDir, 'node_modules', '@jazzer.js', 'core'))) return;
  console.log('[fuzz] installing Jazzer.js into fuzz/node_modules');
  execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--prefix', fuzzDir], { stdio: 'inherit' });
}

async function bundle() {
  // One CommonJS file holding lib/ and the targets, so Jazzer.js instruments exactly our code.
  const { build: tsup } = require('tsup');
  await tsup({
    config: false, // not the package's tsup.config.ts (its builds and their clean-up)
    entry: { targets: join(fuzzDir, 'targets.ts') },
    outDir: build,
    format: ['cjs'],
    platform: 'node',
    target: 'node20',
    shims: true,
    silent: true,
    clean: false,
    dts: false,
    sourcemap: false,
    splitting: false,
  });
  return join(build, 'targets.cjs');
}

function addon() {
  if (process.env.QUANTUM_TUNNEL_ADDON) return process.env.QUANTUM_TUNNEL_ADDON;
  for (const dir of ['build/Release', 'build-r2/Release']) {
    const p = join(root, dir, 'quantum_tunnel.node');
    if (existsSync(p)) return p;
  }
  throw new Error('no built addon: run npm run build:native first (or set QUANTUM_TUNNEL_ADDON)');
}

/** libFuzzer's last status line and its run count. */
function summary(output) {
  const cov = [...output.matchAll(/cov: (\d+) ft: (\d+) corp: (\d+)\/(\S+)/g)].pop();
  const done = output.match(/Done (\d+) runs in (\d+) second/);
  return {
    runs: done ? Number(done[1]) : undefined,
    seconds: done ? Number(done[2]) : undefined,
    edges: cov ? Number(cov[1]) : undefined,
    features: cov ? Number(cov[2]) : undefined,
    corpus: cov ? `${cov[3]} inputs, ${cov[4]}` : undefined,
  };
}

async function main() {
  const seconds = Number(option('time', '60'));
  const all = [...Object.keys(TARGETS), ...NATIVE];
  const requested = option('only', all.join(',')).split(',');
  for (const t of requested) if (!all.includes(t)) throw new Error(`unknown target ${t} (targets: ${all.join(', ')})`);
  const only = requested.filter((t) => t in TARGETS);
  const native = requested.filter((t) => NATIVE.includes(t));
  let failed = only.length > 0 ? await fuzzJs(seconds, only) : 0;
  if (native.length > 0) {
    const r = spawnSync('bash', [join(__dirname, 'fuzz-native.sh'), '--time', String(seconds), '--only', native.join(',')],
      { cwd: root, stdio: 'inherit' });
    if (r.status !== 0) failed++;
  }
  process.exit(failed ? 1 : 0);
}

/** The Jazzer.js targets; returns how many failed. */
async function fuzzJs(seconds, only) {
  ensureJazzer();
  const preload = execFileSync(process.execPath, [join(__dirname, 'fuzz-compat.cjs')], { encoding: 'utf8' }).trim();
  const targets = await bundle();
  const jazzer = join(fuzzDir, 'node_modules', '@jazzer.js', 'core', 'dist', 'cli.js');
  const env = { ...process.env, QUANTUM_TUNNEL_ADDON: addon(), ...(preload ? { LD_PRELOAD: preload } : {}) };
  let failed = 0;
  const rows = [];
  for (const name of only) {
    const seeds = join(fuzzDir, 'corpus', name);
    const work = join(build, 'corpus', name);
    const findings = join(fuzzDir, 'findings', name);
    mkdirSync(work, { recursive: true });
    mkdirSync(findings, { recursive: true });
    if (existsSync(seeds)) cpSync(seeds, work, { recursive: true });
    const disabled = (DISABLED_DETECTORS[name] ?? []).flatMap((d) => ['--disable_bug_detectors', d]);
    const args = [jazzer, targets, work, '-f', name, '-i', 'targets.cjs', '--timeout', '10000', ...(TARGETS[name] === 'sync' ? ['--sync'] : []), ...disabled, '--',
      `-max_total_time=${seconds}`, `-artifact_prefix=${findings}/`, '-print_final_stats=1', '-max_len=16384'];
    console.log(`[fuzz] ${name}: ${seconds} s`);
    const r = spawnSync(process.execPath, args, { cwd: root, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    const output = `${r.stdout}${r.stderr}`;
    const s = summary(output);
    const ok = r.status === 0;
    if (!ok) {
      failed++;
      console.log(output.split('\n').slice(-40).join('\n'));
      console.log(`[fuzz] ${name}: FAILED (exit ${r.status}); the input is in ${findings}/`);
    }
    rows.push({ target: name, ok, ...s, corpusFiles: readdirSync(work).length });
  }
  console.log('\ntarget       result  runs        exec/s   edges  features  corpus');
  for (const r of rows) {
    const rate = r.runs !== undefined && r.seconds ? Math.round(r.runs / r.seconds) : '';
    console.log(`${r.target.padEnd(12)} ${(r.ok ? 'ok' : 'FAIL').padEnd(7)} ${String(r.runs ?? '').padEnd(11)} ${String(rate).padEnd(8)} ${String(r.edges ?? '').padEnd(6)} ${String(r.features ?? '').padEnd(9)} ${r.corpus ?? ''}`);
  }
  return failed;
}

main().catch((e) => {
  console.error(`[fuzz] ${e.message}`);
  process.exit(1);
});
