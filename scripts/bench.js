#!/usr/bin/env node
// `npm run bench`: runs bench/crypto.bench.ts under Node 24 (node:crypto has ML-KEM from Node 24
// on; the machine's default Node may be older). scripts/node24.sh prints the Node 24 binary,
// installing it into a per-user cache when needed. TypeScript runs through tsx (a devDependency),
// whose loader is resolved from this package so the run works from any working directory.
//
// Extra arguments are passed to the benchmark: --quick, --json PATH, --filter REGEX, --time MS,
// --check (see bench/crypto.bench.ts).
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function fail(message) {
  console.error(`[bench] ${message}`);
  process.exit(1);
}

let node24;
try {
  node24 = execFileSync('bash', [join(root, 'scripts', 'node24.sh')], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  })
    .trim()
    .split('\n')
    .pop();
} catch (err) {
  fail(`cannot get a Node 24 binary from scripts/node24.sh: ${err.message}`);
}
if (!node24 || !existsSync(node24)) fail(`scripts/node24.sh printed no usable Node 24 binary (${node24})`);

let tsxLoader;
try {
  tsxLoader = pathToFileURL(createRequire(join(root, 'package.json')).resolve('tsx')).href;
} catch {
  fail('tsx is not installed; run `npm install` (it is a devDependency)');
}

if (!existsSync(join(root, 'build', 'Release', 'quantum_tunnel.node')) && !process.env.QUANTUM_TUNNEL_ADDON) {
  fail('the addon is not built (build/Release/quantum_tunnel.node); run `npm run build:native` first');
}

// The crypto benchmark, then the tunnel benchmark (against node:tls), each in its own process.
// `--only crypto|tunnel` runs one of them.
const argv = process.argv.slice(2);
const onlyIndex = argv.indexOf('--only');
const only = onlyIndex >= 0 ? argv.splice(onlyIndex, 2)[1] : undefined;
// Run only when asked: `--only costs` (npm run bench:costs, counts per handshake and per MiB),
// `--only offload` (the threadpool crossover behind offloadCrypto: 'auto') and `--only pool`
// (connection setup through forward with and without --pool-min-idle).
const ON_REQUEST = ['costs', 'offload', 'pool'];
const suites = ON_REQUEST.includes(only) ? [only] : ['crypto', 'tunnel'].filter((s) => !only || s === only);

function runSuite(name) {
  return new Promise((resolveRun) => {
    const args = ['--expose-gc', '--import', tsxLoader, join(root, 'bench', `${name}.bench.ts`), ...(name === 'tunnel' ? argv.filter((a) => a === '--quick') : argv)];
    const child = spawn(node24, args, { cwd: root, stdio: 'inherit' });
    const forward = (sig) => child.kill(sig);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    child.on('error', (err) => fail(`cannot start ${node24}: ${err.message}`));
    child.on('exit', (code, signal) => {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      resolveRun(signal ? 1 : (code ?? 1));
    });
  });
}

let status = 0;
for (const name of suites) {
  console.log(`\n=== ${name} benchmark ===`);
  status = Math.max(status, await runSuite(name));
}
process.exit(status);
