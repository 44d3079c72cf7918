#!/usr/bin/env node
// `npm run build:prebuild` (not `prebuild`, which npm would run before every `npm run build` as
// its pre-script): builds the release addon (cmake-js, standard profile, OpenSSL 3.5 linked
// statically with its symbols hidden: the same build as `npm run build:native`) and lays it out as
// the package ships it, so a dependent needs no compiler and no install script:
//
//   prebuilds/<platform>-<arch>[-musl]/quantum_tunnel.node        the addon (Node-API 8: Node 20, 22, 24)
//                                      quantum_tunnel.node.hmac   its integrity record (FIPS mode checks it)
//                                      ossl-modules/fips.so       the OpenSSL FIPS provider it was built with
//                                      openssl                    the `openssl` program, for fipsinstall
//                                      BUILD-INFO.json            versions, the glibc it needs, sha256 of each file
//
// The glibc minimum is measured, not assumed: the highest GLIBC_x.y symbol version any shipped
// file imports (objdump -T). lib/native.ts reads it to refuse an older glibc with a clear message.
'use strict';
const { spawnSync } = require('node:child_process');
const { createHash } = require('node:crypto');
const { copyFileSync, chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');

const root = join(__dirname, '..');
const buildDir = 'build-prebuild';
const FILES = ['quantum_tunnel.node', 'quantum_tunnel.node.hmac', 'ossl-modules/fips.so', 'openssl'];

function die(msg) {
  console.error(`[quantum-tunnel prebuild] error: ${msg}`);
  process.exit(1);
}

function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', ...options });
  if (r.error) die(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) die(`${cmd} ${args.join(' ')} exited with ${r.status}\n${r.stderr ?? ''}`);
  return r.stdout ?? '';
}

/** `glibc`, `musl`, or undefined off Linux (as lib/native.ts decides it). */
function libc() {
  if (process.platform !== 'linux') return undefined;
  const header = process.report.getReport().header;
  return header.glibcVersionRuntime ? 'glibc' : 'musl';
}

/** Orders dotted versions numerically (2.9 < 2.14). */
function compareVersions(a, b) {
  const [x, y] = [a.split('.').map(Number), b.split('.').map(Number)];
  for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
  return 0;
}

function newest(versions) {
  return versions.filter(Boolean).sort(compareVersions).at(-1) ?? null;
}

/** The highest version of `prefix` (GLIBC, GLIBCXX) among a file's dynamic symbols (objdump -T). */
function maxSymbolVersion(file, prefix) {
  return newest([...run('objdump', ['-T', file]).matchAll(new RegExp(`\\b${prefix}_([0-9][0-9.]*)\\b`, 'g'))].map((m) => m[1]));
}

const c = libc();
if (c === undefined) die(`prebuilds are made on Linux only (this is ${process.platform}); elsewhere the package builds from source`);
const target = `${process.platform}-${process.arch}${c === 'musl' ? '-musl' : ''}`;
const out = join(root, 'prebuilds', target);

// 1. The release build, standard profile (the FIPS profile, with ChaCha20 compiled out, is a
//    source build: QUANTUM_TUNNEL_FIPS_PROFILE=1 makes scripts/install.cjs build it).
const env = { ...process.env };
delete env.QUANTUM_TUNNEL_FIPS_PROFILE;
console.log(`[quantum-tunnel prebuild] building the release addon into ${buildDir}/ (cmake-js, standard profile)`);
const build = spawnSync(process.execPath, [join(__dirname, 'build-native.cjs'), 'cmake', '--out', buildDir], { cwd: root, stdio: 'inherit', env });
if (build.status !== 0) die('the addon build failed');
const release = join(root, buildDir, 'Release');
for (const f of FILES) if (!existsSync(join(release, f))) die(`${join(release, f)} is missing after the build`);

// 2. What the normal build promises: only the Node-API entry points are exported.
const exported = run('nm', ['-D', '--defined-only', join(release, 'quantum_tunnel.node')])
  .split('\n').map((l) => l.trim().split(/\s+/).pop()).filter(Boolean);
const unexpected = exported.filter((s) => !/^(napi_register_module_v1|node_api_module_get_api_version_v1)$/.test(s));
if (unexpected.length > 0) die(`the addon exports more than its Node-API entry points: ${unexpected.slice(0, 5).join(', ')}`);

// 3. The layout the package ships.
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'ossl-modules'), { recursive: true });
for (const f of FILES) copyFileSync(join(release, f), join(out, f));
chmodSync(join(out, 'openssl'), 0o755);

// 4. It loads, and says what it is (in a child: a load failure must not be this process's).
const probe = spawnSync(process.execPath, ['-e', `
  const a = require(${JSON.stringify(join(out, 'quantum_tunnel.node'))});
  const i = a.info();
  console.log(JSON.stringify({ openssl: i.openssl, profile: a.buildProfile }));`], { encoding: 'utf8' });
if (probe.status !== 0) die(`the prebuilt addon does not load: ${probe.stderr}`);
const loaded = JSON.parse(probe.stdout.trim());
const opensslVersion = run(join(out, 'openssl'), ['version']).trim();

const files = {};
for (const f of FILES) {
  const path = join(out, f);
  files[f] = {
    sha256: createHash('sha256').update(readFileSync(path)).digest('hex'),
    ...(f.endsWith('.hmac') ? {} : { glibc: maxSymbolVersion(path, 'GLIBC'), glibcxx: maxSymbolVersion(path, 'GLIBCXX') }),
  };
}
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const compiler = spawnSync('c++', ['--version'], { encoding: 'utf8' }).stdout?.split('\n')[0] ?? null;
const info = {
  package: `${pkg.name}@${pkg.version}`,
  target,
  platform: process.platform,
  arch: process.arch,
  libc: c,
  // The oldest glibc (and libstdc++) every shipped file runs on: their highest symbol versions.
  glibcMin: newest(Object.values(files).map((f) => f.glibc)),
  glibcxxMin: newest(Object.values(files).map((f) => f.glibcxx)),
  napiVersion: pkg.binary.napi_versions[0],
  profile: loaded.profile,
  openssl: loaded.openssl,
  opensslProgram: opensslVersion,
  builtWith: { node: process.version, compiler, glibc: process.report.getReport().header.glibcVersionRuntime ?? null },
  builtAt: new Date().toISOString(),
  files,
};
writeFileSync(join(out, 'BUILD-INFO.json'), JSON.stringify(info, null, 2) + '\n');
console.log(`[quantum-tunnel prebuild] ${out}: ${info.openssl}, N-API ${info.napiVersion}, needs glibc >= ${info.glibcMin} and libstdc++ with GLIBCXX_${info.glibcxxMin}`);
