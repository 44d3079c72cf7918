import { expect } from 'chai';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { addonPath, linuxLibc } from '../lib/native.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  license: string;
  bin: Record<string, string>;
  scripts: Record<string, string>;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  optionalDependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
};

describe('the published bundle (tsup: ESM + CJS + .d.ts)', function () {
  before(function () {
    if (!existsSync(`${root}dist/index.js`)) this.skip(); // `npm test` builds it first
  });

  it('loads as CommonJS and as ESM, both on the addon\'s own OpenSSL', () => {
    const cjs = execFileSync(process.execPath, ['-e', "const q = require('./dist/index.cjs'); console.log(q.crypto.info().openssl, typeof q.QuantumTunnelError)"], { cwd: root, encoding: 'utf8' });
    const esm = execFileSync(process.execPath, ['--input-type=module', '-e', "import { crypto, QuantumTunnelError } from './dist/index.js'; console.log(crypto.info().openssl, typeof QuantumTunnelError)"], { cwd: root, encoding: 'utf8' });
    expect(cjs.trim()).to.match(/^OpenSSL 3\.5\.\d+ .* function$/);
    expect(esm.trim()).to.equal(cjs.trim());
  });

  it('the ESM entry is the CommonJS build re-exported: import and require share one copy of every export', () => {
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', `
      import * as esm from './dist/index.js';
      import * as testingEsm from './dist/testing.js';
      import { createRequire } from 'node:module';
      const require = createRequire(process.cwd() + '/');
      const cjs = require('./dist/index.cjs'), testingCjs = require('./dist/testing.cjs');
      // (The default export is the CommonJS exports object, as Node gives an imported CommonJS module.)
      const same = (a, b) => a.default === b && JSON.stringify(Object.keys(a).filter((k) => k !== 'default').sort()) === JSON.stringify(Object.keys(b).sort()) && Object.keys(b).every((k) => a[k] === b[k]);
      console.log(Object.keys(cjs).length, same(esm, cjs), same(testingEsm, testingCjs), esm.IdentityKey === cjs.IdentityKey);
    `], { cwd: root, encoding: 'utf8', env: { ...process.env, QUANTUM_TUNNEL_TESTING: '1' } });
    const [count, ...checks] = out.trim().split(' ');
    expect(Number(count)).to.be.greaterThan(30);
    expect(checks).to.deep.equal(['true', 'true', 'true']);
  });

  it('one set of declarations serves import and require (dist/types, marked CommonJS like the code; scripts/test-package.sh type-checks a dependent)', () => {
    const exported = pkg as unknown as { types: string; exports: Record<string, { types?: string }> };
    expect(exported.types).to.equal('./dist/types/index.d.ts');
    expect(exported.exports['.']!.types).to.equal('./dist/types/index.d.ts');
    expect(exported.exports['./testing']!.types).to.equal('./dist/types/testing.d.ts');
    for (const f of ['index.d.ts', 'testing.d.ts']) expect(existsSync(`${root}dist/types/${f}`), f).to.equal(true);
    expect(JSON.parse(readFileSync(`${root}dist/types/package.json`, 'utf8'))).to.deep.equal({ type: 'commonjs' });
    // The crypto namespace's types are types (the former rolled-up declarations made them values).
    expect(readFileSync(`${root}dist/types/crypto/index.d.ts`, 'utf8')).to.match(/export type \{ PrivateKey, PublicKey, Secret \}/);
  });

  it('errors from the CJS bundle are instances of its QuantumTunnelError', () => {
    const out = execFileSync(process.execPath, ['-e', `
      const q = require('./dist/index.cjs');
      try { q.crypto.createAead(1, q.crypto.randomSecret(16)); } catch (e) { console.log(e instanceof q.QuantumTunnelError, e.code); }`],
    { cwd: root, encoding: 'utf8' });
    expect(out.trim()).to.equal('true ERR_QT_INVALID_KEY');
  });
});

/** The environment of a child npm: none of the npm_* variables of an `npm test` that runs us. */
function npmEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  return { ...env, NO_UPDATE_NOTIFIER: '1', ...extra };
}

/** Runs npm (at most `timeoutMs`); never throws on a non-zero exit. */
async function npm(args: string[], cwd: string, options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<{ code: number | null; out: string }> {
  const child = spawn('npm', args, { cwd, env: npmEnv(options.env), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
  const [code] = (await once(child, 'close')) as [number | null];
  clearTimeout(timer);
  return { code, out };
}

interface PackEntry {
  filename: string;
  files: Array<{ path: string }>;
}

/** The one package of `npm pack --json` output (an array up to npm 11, an object by name from 12). */
function packEntry(json: string): PackEntry {
  const parsed = JSON.parse(json) as PackEntry[] | Record<string, PackEntry>;
  return (Array.isArray(parsed) ? parsed[0] : Object.values(parsed)[0])!;
}

/** The tarball's file list, as `npm pack` builds it (no lifecycle scripts run). */
function packList(): string[] {
  const json = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8', env: npmEnv(), timeout: 60_000 });
  return packEntry(json).files.map((f) => f.path).sort();
}

/** This machine's prebuild directory name and the files scripts/prebuild.cjs puts there (nothing else may ship). */
const prebuildTarget = `${process.platform}-${process.arch}`;
const PREBUILD_FILE = /^prebuilds\/linux-(x64|arm64)(-musl)?\/(quantum_tunnel\.node(\.hmac)?|ossl-modules\/fips\.so|openssl|BUILD-INFO\.json)$/;

describe('the package tarball (npm pack)', function () {
  this.timeout(60_000);
  let files: string[];

  before(function () {
    if (!existsSync(`${root}dist/index.js`)) this.skip(); // `npm test` builds dist/ first
    files = packList();
  });

  it('ships the bundles, the native sources, the install step and the license', () => {
    for (const f of ['package.json', 'README.md', 'LICENSE', 'bin/quantum-vpn.js', 'binding.gyp', 'dist/index.js', 'dist/index.cjs', 'dist/testing.js', 'dist/testing.cjs', 'dist/types/index.d.ts', 'dist/types/testing.d.ts', 'dist/types/package.json', 'dist/cli.js']) {
      expect(files, f).to.include(f);
    }
    expect(files).to.include.members(['scripts/install.cjs', 'scripts/build-native.cjs', 'scripts/provision-openssl.sh', 'fips/openssl-fips.cnf.in', 'fips/install.sh']);
    // Every source node-gyp compiles (what `npm install` runs at a dependent), and the linker script.
    const gyp = readFileSync(join(root, 'binding.gyp'), 'utf8');
    const sources = [...gyp.matchAll(/"(native\/[^"]+)"/g)].map((m) => m[1]!);
    expect(sources.length).to.be.greaterThan(5);
    expect(files).to.include.members([...sources, 'native/exports.map']);
    for (const header of readdirSync(join(root, 'native')).filter((f) => f.endsWith('.h'))) expect(files).to.include(`native/${header}`);
    // The launcher's target.
    expect(readFileSync(join(root, pkg.bin['quantum-vpn']!), 'utf8')).to.include("import('../dist/cli.js')");
  });

  it('ships no second copy of the sources, no tests or benchmarks, no dev-only scripts, no build leftovers', () => {
    const forbidden = files.filter(
      (f) =>
        !PREBUILD_FILE.test(f) && // the prebuilt addon and its FIPS files (checked below)
        (/^(lib|test|bench|docs|build[^/]*|prebuilds\/.*\.o)\//.test(f) ||
          /\.ts$/.test(f) && !/\.d\.c?ts$/.test(f) ||
          /(^|\/)(obj\.target|CMakeFiles|\.deps)\//.test(f) ||
          /\.(o|a|so|node|tgz|log)$/.test(f) ||
          /^CMakeLists\.txt$|^tsup\.config\.ts$|^tsconfig\.json$|^\.mocharc/.test(f)),
    );
    expect(forbidden).to.deep.equal([]);
    // scripts/: only what the install step and the node-gyp build run.
    expect(files.filter((f) => f.startsWith('scripts/'))).to.deep.equal(['scripts/build-native.cjs', 'scripts/install.cjs', 'scripts/provision-openssl.sh']);
    expect(pkg.scripts.install).to.equal('node scripts/install.cjs');
    // dist/cli is loaded as ESM by bin/quantum-vpn.js only: no CommonJS twin, no declarations.
    expect(files.filter((f) => f.startsWith('dist/cli'))).to.deep.equal(['dist/cli.js', 'dist/cli.js.map']);
  });

  it('ships prebuilds/ (when `npm run build:prebuild` made it) exactly as scripts/prebuild.cjs lays it out', function () {
    const shipped = files.filter((f) => f.startsWith('prebuilds/'));
    if (!existsSync(join(root, 'prebuilds', prebuildTarget, 'quantum_tunnel.node'))) {
      expect(shipped).to.deep.equal([]);
      this.skip();
    }
    expect(shipped.filter((f) => !PREBUILD_FILE.test(f))).to.deep.equal([]);
    for (const f of ['quantum_tunnel.node', 'quantum_tunnel.node.hmac', 'ossl-modules/fips.so', 'openssl', 'BUILD-INFO.json']) {
      expect(shipped).to.include(`prebuilds/${prebuildTarget}/${f}`);
    }
    const info = JSON.parse(readFileSync(join(root, 'prebuilds', prebuildTarget, 'BUILD-INFO.json'), 'utf8')) as { libc: string; glibcMin: string; napiVersion: number; files: Record<string, { sha256: string }> };
    expect(info.libc).to.equal('glibc');
    expect(info.glibcMin).to.match(/^2\.\d+$/);
    expect(info.napiVersion).to.equal((pkg as unknown as { binary: { napi_versions: number[] } }).binary.napi_versions[0]);
    for (const [f, { sha256 }] of Object.entries(info.files)) {
      expect(createHash('sha256').update(readFileSync(join(root, 'prebuilds', prebuildTarget, f))).digest('hex'), f).to.equal(sha256);
    }
  });

  it('sourcemaps map to lib/*.ts lines without embedding the sources', () => {
    const maps = files.filter((f) => /^dist\/.*\.map$/.test(f)); // (native/exports.map is a linker script)
    expect(maps).to.include.members(['dist/index.cjs.map', 'dist/cli.js.map']);
    const named: string[] = [];
    for (const m of maps) {
      const map = JSON.parse(readFileSync(join(root, m), 'utf8')) as { sources: string[]; sourcesContent?: unknown };
      expect(map.sourcesContent, m).to.equal(undefined);
      const own = map.sources.filter((s) => !s.includes('node_modules/'));
      expect(own.length, m).to.be.greaterThan(0);
      for (const s of own) expect(s, m).to.match(/^\.\.\/lib\/.*\.ts$/);
      named.push(...own);
    }
    expect(named).to.include.members(['../lib/index.ts', '../lib/cli/main.ts', '../lib/testing.ts']);
  });

  it('the bundles import only Node built-ins, dependencies and peer dependencies', () => {
    // The package itself too: the examples `quantum-vpn example` prints import it.
    const allowed = new Set([pkg.name, ...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.peerDependencies ?? {})]);
    const builtins = new Set(builtinModules);
    for (const f of files.filter((p) => /^dist\/.*\.(c?js)$/.test(p))) {
      const code = readFileSync(join(root, f), 'utf8');
      // (?<![-\w]): a flag's name such as "proxy-from" is not a `from` clause.
      const specifiers = [...code.matchAll(/(?:(?<![-\w])from\s*|\bimport\s*\(\s*|\brequire\s*\(\s*)["']([^"'./\n][^"'\n]*)["']/g)].map((m) => m[1]!);
      for (const s of specifiers) {
        const name = s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : s.split('/')[0]!;
        expect(s.startsWith('node:') || builtins.has(name) || allowed.has(name), `${f} imports ${s}`).to.equal(true);
      }
    }
  });

  it('LICENSE is the full Apache License 2.0 text, which package.json names', () => {
    expect(pkg.license).to.equal('Apache-2.0');
    const text = readFileSync(join(root, 'LICENSE'), 'utf8');
    expect(text).to.match(/^\s*Apache License\n\s*Version 2\.0, January 2004\n/);
    expect(text).to.include('TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION');
    expect(text).to.include('9. Accepting Warranty or Additional Liability.');
    expect(text).to.include('END OF TERMS AND CONDITIONS');
    expect(text).to.include('APPENDIX: How to apply the Apache License to your work.');
  });

  it('@opentelemetry/api is a peer dependency (^1), and the OpenTelemetry SDK is not installed by default', () => {
    expect(pkg.peerDependencies?.['@opentelemetry/api']).to.equal('^1');
    // The library imports it when it loads (lib/ops/tracing.ts), so it is not optional.
    expect(pkg.peerDependenciesMeta?.['@opentelemetry/api']?.optional ?? false).to.equal(false);
    expect(pkg.dependencies ?? {}).not.to.have.property('@opentelemetry/api');
    expect(pkg.devDependencies ?? {}).to.have.property('@opentelemetry/api'); // for the tests
    for (const deps of [pkg.dependencies, pkg.optionalDependencies, pkg.peerDependencies]) {
      expect(Object.keys(deps ?? {}).filter((d) => d.startsWith('@opentelemetry/sdk'))).to.deep.equal([]);
    }
  });
});

describe('loading a prebuilt addon (lib/native.ts): checked before dlopen, both remedies named', function () {
  this.timeout(30_000);
  let pkgDir: string;
  let prebuild: string;

  before(function () {
    if (!existsSync(`${root}dist/index.cjs`) || linuxLibc() !== 'glibc') this.skip();
    // A package without build/: the CommonJS bundle, package.json and this checkout's dependencies.
    pkgDir = mkdtempSync(join(tmpdir(), 'qt-prebuild-'));
    cpSync(join(root, 'dist'), join(pkgDir, 'dist'), { recursive: true });
    copyFileSync(join(root, 'package.json'), join(pkgDir, 'package.json'));
    symlinkSync(join(root, 'node_modules'), join(pkgDir, 'node_modules'));
    prebuild = join(pkgDir, 'prebuilds', prebuildTarget);
    mkdirSync(prebuild, { recursive: true });
    // The suite's addon stands in for the prebuild; with its integrity record (FIPS jobs check it at load).
    if (existsSync(`${addonPath}.hmac`)) copyFileSync(`${addonPath}.hmac`, join(prebuild, 'quantum_tunnel.node.hmac'));
  });
  after(() => {
    if (pkgDir) rmSync(pkgDir, { recursive: true, force: true });
  });

  /** Lays out a prebuild (its BUILD-INFO.json and addon bytes), loads the package: the addon path or the error. */
  function loadWith(info: { libc: string; glibcMin: string }, addon: Buffer): { path: string; error: string } {
    writeFileSync(join(prebuild, 'BUILD-INFO.json'), JSON.stringify({ target: prebuildTarget, ...info }));
    writeFileSync(join(prebuild, 'quantum_tunnel.node'), addon);
    try {
      const path = execFileSync(process.execPath, ['-e', "console.log(require('./dist/index.cjs').crypto.info().addonPath)"], {
        cwd: pkgDir,
        encoding: 'utf8',
        env: { ...process.env, QUANTUM_TUNNEL_ADDON: '', QUANTUM_TUNNEL_FIPS: '' },
        stdio: 'pipe',
      });
      return { path: path.trim(), error: '' };
    } catch (e) {
      return { path: '', error: String((e as { stderr?: string }).stderr) };
    }
  }
  const notAnElf = Buffer.from('not an ELF file');
  const remedies = (error: string) => {
    expect(error).to.include('ERR_QT_ADDON_NOT_FOUND');
    expect(error).to.include('`npm install-scripts approve quantum-tunnel`, then `npm rebuild quantum-tunnel`');
    expect(error).to.match(/run on a platform with a prebuilt addon \(this is linux-\w+ \(glibc\); this package ships linux-\w+ \(/);
  };

  it('a matching prebuild loads when there is no local build', () => {
    const r = loadWith({ libc: 'glibc', glibcMin: '2.17' }, readFileSync(addonPath));
    expect(r.path, r.error).to.equal(join(prebuild, 'quantum_tunnel.node'));
  });

  it('a prebuild for a newer glibc is refused with the versions, not handed to dlopen', () => {
    const r = loadWith({ libc: 'glibc', glibcMin: '99.0' }, notAnElf);
    expect(r.error).to.match(/cannot run here: it needs glibc >= 99\.0 and this machine has glibc 2\.\d+/);
    remedies(r.error);
  });

  it('a prebuild for the other libc (musl) is refused by name', () => {
    const r = loadWith({ libc: 'musl', glibcMin: '' }, notAnElf);
    expect(r.error).to.include('cannot run here: it is built for musl and this machine\'s C library is glibc');
    remedies(r.error);
  });

  it('a prebuild that fails to load says so, with the loader\'s reason', () => {
    const r = loadWith({ libc: 'glibc', glibcMin: '2.17' }, notAnElf);
    expect(r.error).to.match(/the prebuilt addon \S+quantum_tunnel\.node does not load here \(.+\)/);
    remedies(r.error);
  });
});

// ---- npm and install scripts --------------------------------------------------------------------

const npmVersion = execFileSync('npm', ['--version'], { encoding: 'utf8', env: npmEnv() }).trim();
const [npmMajor, npmMinor] = npmVersion.split('.').map(Number) as [number, number];
/**
 * What this npm does with a dependency's install script (README.md, "Installing as a
 * dependency"): before 11.16 it runs it; 11.16 to 11.x run it and warn when it is not approved in
 * `allowScripts`; 12 and later skip it unless approved.
 */
const policy: 'none' | 'advisory' | 'blocking' = npmMajor >= 12 ? 'blocking' : npmMajor === 11 && npmMinor >= 16 ? 'advisory' : 'none';

/**
 * README.md's "Installing as a dependency" section, with the package name replaced by the test
 * fixture's: the commands and settings it tells users to run are the ones tested here.
 */
function readmeInstall(): { approve: string[][]; npmrc: string[]; global: string[]; text: string } {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const text = /^## Installing as a dependency\n([\s\S]*?)^## /m.exec(readme)?.[1] ?? '';
  const blocks = [...text.matchAll(/```(\w+)\n([\s\S]*?)```/g)].map((m) => ({ lang: m[1]!, body: m[2]!.replaceAll('quantum-tunnel', 'qt-install-fixture') }));
  const commands = (body: string) => body.split('\n').map((l) => l.replace(/#.*$/, '').trim()).filter((l) => l.startsWith('npm ')).map((l) => l.split(/\s+/).slice(1));
  const approve = blocks.filter((b) => b.lang === 'sh').flatMap((b) => commands(b.body)).filter((c) => c[0] !== 'install');
  const npmrc = blocks.filter((b) => b.lang === 'ini').flatMap((b) => b.body.split('\n').filter((l) => l.trim() !== ''));
  const global = /`npm (install -g [^`]*)`/.exec(text)?.[1]?.replaceAll('quantum-tunnel', 'qt-install-fixture').split(/\s+/) ?? [];
  return { approve, npmrc, global, text };
}

/** A one-package npm registry on 127.0.0.1 serving `qt-install-fixture`, whose install script leaves a marker. */
async function fixtureRegistry(dir: string): Promise<{ server: Server; url: string }> {
  const src = join(dir, 'fixture-src');
  mkdirSync(src);
  const manifest = {
    name: 'qt-install-fixture',
    version: '1.0.0',
    scripts: { install: "node -e \"require('fs').writeFileSync(require('path').join(process.env.INIT_CWD, 'install-ran'), '')\"" },
  };
  writeFileSync(join(src, 'package.json'), JSON.stringify(manifest));
  const packed = execFileSync('npm', ['pack', '--json', '--pack-destination', dir], { cwd: src, encoding: 'utf8', env: npmEnv() });
  const tgz = readFileSync(join(dir, packEntry(packed).filename));
  const server = createServer((req, res) => {
    const port = (server.address() as { port: number }).port;
    if (req.url === '/qt-install-fixture') {
      const dist = {
        tarball: `http://127.0.0.1:${port}/qt-install-fixture/-/qt-install-fixture-1.0.0.tgz`,
        integrity: `sha512-${createHash('sha512').update(tgz).digest('base64')}`,
        shasum: createHash('sha1').update(tgz).digest('hex'),
      };
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ name: manifest.name, 'dist-tags': { latest: '1.0.0' }, versions: { '1.0.0': { ...manifest, hasInstallScript: true, dist } } }));
    } else if (req.url === '/qt-install-fixture/-/qt-install-fixture-1.0.0.tgz') {
      res.end(tgz);
    } else {
      res.statusCode = 404;
      res.end('{}');
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}/` };
}

describe(`npm ${npmVersion} and a dependency's install script (real npm, temporary projects)`, function () {
  this.timeout(600_000);
  let dir: string;
  let registry: { server: Server; url: string } | undefined;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qt-npm-'));
    registry = await fixtureRegistry(dir);
  });
  after(async () => {
    if (registry) await new Promise<void>((r) => registry!.server.close(() => r()));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** A fresh project using the fixture registry; `npmrc` lines are added to its .npmrc. */
  function project(name: string, npmrc: string[] = [], allowScripts?: Record<string, boolean>): string {
    const p = join(dir, name);
    mkdirSync(p);
    writeFileSync(join(p, 'package.json'), JSON.stringify({ name, version: '1.0.0', private: true, ...(allowScripts ? { allowScripts } : {}) }));
    writeFileSync(join(p, '.npmrc'), [`registry=${registry!.url}`, 'audit=false', 'fund=false', ...npmrc].join('\n') + '\n');
    return p;
  }
  const ran = (p: string) => existsSync(join(p, 'install-ran'));
  const reset = (p: string) => {
    rmSync(join(p, 'install-ran'), { force: true });
    rmSync(join(p, 'node_modules'), { recursive: true, force: true });
  };

  it(`unapproved: ${policy === 'none' ? 'the script runs, nothing is said' : policy === 'advisory' ? 'the script runs, and the install ends with a warning naming the package' : 'the script is skipped, and the install says so'}`, async () => {
    const p = project('unapproved');
    const r = await npm(['install', 'qt-install-fixture'], p);
    expect(r.code, r.out).to.equal(0);
    expect(ran(p), r.out).to.equal(policy !== 'blocking');
    if (policy === 'advisory') expect(r.out).to.match(/npm warn install-scripts .*not yet covered by allowScripts[\s\S]*qt-install-fixture@1\.0\.0/);
    if (policy === 'blocking') expect(r.out).to.match(/npm warn install-scripts .*blocked[\s\S]*qt-install-fixture@1\.0\.0/);
    if (policy === 'none') expect(r.out).not.to.include('allowScripts');
    if (policy !== 'none') {
      // --strict-allow-scripts turns the unreviewed script into a failed install.
      reset(p);
      const strict = await npm(['install', '--strict-allow-scripts'], p);
      expect(strict.code, strict.out).to.not.equal(0);
      expect(strict.out).to.include('ESTRICTALLOWSCRIPTS');
    }
    // `npm rebuild` runs it unless the policy blocks it.
    reset(p);
    expect((await npm(['install', '--ignore-scripts'], p)).code).to.equal(0);
    expect(ran(p)).to.equal(false);
    const rebuilt = await npm(['rebuild', 'qt-install-fixture'], p);
    expect(rebuilt.code, rebuilt.out).to.equal(0);
    expect(ran(p), rebuilt.out).to.equal(policy !== 'blocking');
  });

  it('the README\'s approval (install-scripts approve, then rebuild) writes allowScripts into the project\'s package.json and builds; later installs run the script without a word', async function () {
    const steps = readmeInstall().approve;
    expect(steps.map((c) => c.slice(0, 2).join(' '))).to.deep.equal(['install-scripts approve', 'rebuild qt-install-fixture']);
    if (policy === 'none') this.skip(); // this npm has no allowScripts
    const p = project('approved');
    expect((await npm(['install', 'qt-install-fixture'], p)).code).to.equal(0);
    rmSync(join(p, 'install-ran'), { force: true });
    for (const step of steps) {
      const r = await npm(step, p);
      expect(r.code, `npm ${step.join(' ')}\n${r.out}`).to.equal(0);
    }
    expect(ran(p), 'the rebuild ran the approved script').to.equal(true);
    const allow = (JSON.parse(readFileSync(join(p, 'package.json'), 'utf8')) as { allowScripts?: Record<string, boolean> }).allowScripts ?? {};
    expect(Object.keys(allow)).to.have.length(1);
    expect(Object.keys(allow)[0]).to.match(/^qt-install-fixture(@1\.0\.0)?$/); // pinned when the lockfile allows it
    expect(Object.values(allow)).to.deep.equal([true]);
    reset(p);
    const r = await npm(['install', '--strict-allow-scripts'], p);
    expect(r.code, r.out).to.equal(0);
    expect(ran(p)).to.equal(true);
    expect(r.out).not.to.include('install-scripts');
    // A denial skips it, even for npm rebuild.
    writeFileSync(join(p, 'package.json'), JSON.stringify({ name: 'approved', version: '1.0.0', private: true, dependencies: { 'qt-install-fixture': '^1.0.0' }, allowScripts: { 'qt-install-fixture': false } }));
    reset(p);
    expect((await npm(['install'], p)).code).to.equal(0);
    expect((await npm(['rebuild', 'qt-install-fixture'], p)).code).to.equal(0);
    expect(ran(p)).to.equal(false);
  });

  it('.npmrc takes the policy as the README says (`allow-scripts=<name>`); `allowScripts=` there is an unknown key; package.json wins over .npmrc', async function () {
    const { npmrc, text } = readmeInstall();
    expect(npmrc).to.deep.equal(['allow-scripts=qt-install-fixture']);
    expect(text).not.to.match(/`allowScripts` in `\.npmrc`/);
    if (policy === 'none') this.skip();
    const good = project('npmrc-good', npmrc);
    const r = await npm(['install', 'qt-install-fixture', '--strict-allow-scripts'], good);
    expect(r.code, r.out).to.equal(0);
    expect(ran(good)).to.equal(true);
    const bad = project('npmrc-bad', ['allowScripts=qt-install-fixture']);
    const b = await npm(['install', 'qt-install-fixture', '--strict-allow-scripts'], bad);
    expect(b.code, b.out).to.not.equal(0);
    expect(b.out).to.match(/Unknown project config "allowScripts"/);
    expect(ran(bad)).to.equal(false);
    const both = project('npmrc-and-package-json', npmrc, { 'qt-install-fixture': false });
    expect((await npm(['install', 'qt-install-fixture'], both)).code).to.equal(0);
    expect(ran(both), 'the denial in package.json wins').to.equal(false);
  });

  it('`--allow-scripts` is for global installs and npx only: in a project it is an error', async function () {
    if (policy === 'none') this.skip();
    const p = project('flag');
    const r = await npm(['install', 'qt-install-fixture', '--allow-scripts=qt-install-fixture'], p);
    expect(r.code).to.not.equal(0);
    expect(r.out).to.include('--allow-scripts is not allowed in project-scoped installs');
    // The README's global install; a global install reads no project .npmrc: the registry is given here.
    const global = readmeInstall().global;
    expect(global).to.deep.equal(['install', '-g', '--allow-scripts=qt-install-fixture', 'qt-install-fixture']);
    const g = await npm([...global, '--prefix', join(dir, 'global'), '--registry', registry!.url], p);
    expect(g.code, g.out).to.equal(0);
    expect(ran(p)).to.equal(true);
  });

  it('the packed quantum-tunnel in a project: the install step runs (or is reported), the OpenTelemetry API comes along, the SDK does not, quantum-vpn runs', async function () {
    if (!existsSync(`${root}dist/cli.js`)) this.skip(); // `npm test` builds dist/ first
    const packed = execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], { cwd: root, encoding: 'utf8', env: npmEnv(), timeout: 60_000 });
    const tgz = join(dir, packEntry(packed).filename);
    const app = join(dir, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true, type: 'module' }));
    // The dependencies come from the npm registry (or npm's cache); the addon build is skipped
    // (QUANTUM_TUNNEL_SKIP_BUILD: building it takes minutes) and this suite's addon is used.
    const r = await npm(['install', tgz, '--foreground-scripts', '--prefer-offline', '--no-audit', '--no-fund'], app, { env: { QUANTUM_TUNNEL_SKIP_BUILD: '1' }, timeoutMs: 300_000 });
    if (r.code !== 0 && /E(NOTFOUND|AI_AGAIN|TIMEDOUT|CONNREFUSED|NETUNREACH|CONNRESET)|network/i.test(r.out)) {
      console.warn(`    the npm registry cannot be reached for the tarball's dependencies (prom-client, node-addon-api, ...): skipped\n${r.out.split('\n').slice(-5).join('\n')}`);
      this.skip();
    }
    expect(r.code, r.out).to.equal(0);
    const skipLine = '[quantum-tunnel] QUANTUM_TUNNEL_SKIP_BUILD=1: the native addon is not built now';
    if (policy === 'blocking') expect(r.out).not.to.include(skipLine);
    else expect(r.out).to.include(skipLine);
    if (policy !== 'none') expect(r.out).to.match(/npm warn install-scripts [\s\S]*quantum-tunnel@0\.1\.0 \(install: node scripts\/install\.cjs/);

    const installed = join(app, 'node_modules');
    expect(existsSync(join(installed, '@opentelemetry', 'api', 'package.json')), 'the peer dependency is installed').to.equal(true);
    expect(existsSync(join(installed, '@opentelemetry', 'sdk-node')), 'the SDK is not installed').to.equal(false);
    expect(existsSync(join(installed, 'quantum-tunnel', 'lib'))).to.equal(false);
    expect(existsSync(join(installed, 'quantum-tunnel', 'LICENSE'))).to.equal(true);

    // Without the install step's build (npm 12 without an approval): the prebuild when the tarball
    // carries one (scripts/test-package.sh tests that path in full), else a message with both remedies.
    const shipsPrebuild = existsSync(join(installed, 'quantum-tunnel', 'prebuilds', prebuildTarget, 'quantum_tunnel.node'));
    let notBuilt = '';
    let loadedFrom = '';
    try {
      loadedFrom = execFileSync(process.execPath, ['--input-type=module', '-e', "const q = await import('quantum-tunnel'); console.log(q.crypto.info().addonPath)"], { cwd: app, encoding: 'utf8', env: { ...npmEnv(), QUANTUM_TUNNEL_ADDON: '' }, stdio: 'pipe', timeout: 60_000 });
    } catch (e) {
      notBuilt = String((e as { stderr?: string }).stderr);
    }
    if (shipsPrebuild) {
      expect(loadedFrom.trim(), notBuilt).to.equal(join(installed, 'quantum-tunnel', 'prebuilds', prebuildTarget, 'quantum_tunnel.node'));
    } else {
      expect(notBuilt).to.include('ERR_QT_ADDON_NOT_FOUND');
      expect(notBuilt).to.include('`npm rebuild quantum-tunnel`');
      expect(notBuilt).to.include('run on a platform with a prebuilt addon');
    }
    const env = { ...npmEnv(), QUANTUM_TUNNEL_ADDON: addonPath, QUANTUM_TUNNEL_FIPS: '' };
    const version = execFileSync(join(installed, '.bin', 'quantum-vpn'), ['version'], { cwd: app, encoding: 'utf8', env, timeout: 60_000 });
    expect(version).to.match(/^quantum-vpn version 0\.1\.0$/m);
    const lib = execFileSync(process.execPath, ['--input-type=module', '-e', "import { listen, TracingObserver } from 'quantum-tunnel'; console.log(typeof listen, typeof TracingObserver)"], { cwd: app, encoding: 'utf8', env, timeout: 60_000 });
    expect(lib.trim()).to.equal('function function');
    let otel = '';
    try {
      execFileSync(join(installed, '.bin', 'quantum-vpn'), ['demo', '--mode', 'client', '--addr', '127.0.0.1:1', '--tracing', 'otel'], { cwd: app, encoding: 'utf8', env, timeout: 60_000, stdio: 'pipe' });
    } catch (e) {
      otel = String((e as { stderr?: string }).stderr);
    }
    expect(otel).to.include('run `npm install @opentelemetry/sdk-node@0.223` in the project that runs quantum-vpn');
    // FIPS set-up from the installed package (no `npm run fips:install` there).
    if (existsSync(join(dirname(addonPath), 'ossl-modules', 'fips.so'))) {
      const fipsDir = join(dir, 'app-fips');
      const fips = execFileSync(join(installed, '.bin', 'quantum-vpn'), ['fips', 'install', '--dir', fipsDir], { cwd: app, encoding: 'utf8', env, timeout: 120_000 });
      expect(fips).to.match(/^FIPS mode starts on this machine: OpenSSL FIPS Provider 3\.5\.\d+; 7\/7 self-tests passed; addon integrity verified/m);
      expect(readFileSync(join(fipsDir, 'openssl-fips.cnf'), 'utf8')).to.include(`.include ${join(fipsDir, 'fipsmodule.cnf')}`);
    }
  });
});
