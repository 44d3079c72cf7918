#!/usr/bin/env node
// Builds the addon with cmake-js (default, the primary build) or node-gyp (`gyp`), offline:
// cmake-js uses the npm package node-api-headers (package.json declares binary.napi_versions),
// node-gyp uses the local Node's headers. Extra flags: --fips (FIPS profile), --debug, --sanitize,
// --out DIR (cmake only).
'use strict';
const { spawnSync } = require('node:child_process');
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const root = join(__dirname, '..');
const args = process.argv.slice(2);
const tool = args[0] === 'gyp' ? 'gyp' : 'cmake';
const fips = args.includes('--fips') || process.env.QUANTUM_TUNNEL_FIPS_PROFILE === '1';
const debug = args.includes('--debug');
const sanitize = args.includes('--sanitize');
// --out DIR (cmake only): build elsewhere than build/, e.g. a FIPS-profile build beside the standard one.
const outIndex = args.indexOf('--out');
const outDir = outIndex >= 0 ? args[outIndex + 1] : 'build';

function run(cmd, cmdArgs, env = process.env) {
  const r = spawnSync(cmd, cmdArgs, { cwd: root, stdio: 'inherit', env });
  if (r.error) throw r.error;
  if (r.status !== 0) process.exit(r.status ?? 1);
}

function bin(name) {
  return join(root, 'node_modules', '.bin', name);
}

// The prefix of the running Node when it ships its headers (Debian/NodeSource: /usr/include/node).
function localNodeDir() {
  const prefix = join(process.execPath, '..', '..');
  return existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? prefix : undefined;
}

/**
 * After a build: put the FIPS module and the `openssl` app (for fipsinstall) next to the addon,
 * and record the addon's HMAC-SHA256 for the FIPS-mode integrity check. The key is public (as
 * OpenSSL's own module key is): this detects modification, it does not authenticate a publisher.
 */
const INTEGRITY_KEY_HEX = '7175616e74756d2d74756e6e656c2d6164646f6e2d696e74656772697479212a';
function finishBuild() {
  const { copyFileSync, mkdirSync, readFileSync, writeFileSync, chmodSync } = require('node:fs');
  const { createHmac } = require('node:crypto');
  const out = join(root, outDir, 'Release');
  const addon = join(out, 'quantum_tunnel.node');
  const prefix = spawnSync('bash', [join(root, 'scripts', 'provision-openssl.sh')], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
    .stdout.trim().split('\n').pop();
  mkdirSync(join(out, 'ossl-modules'), { recursive: true });
  copyFileSync(join(prefix, 'lib', 'ossl-modules', 'fips.so'), join(out, 'ossl-modules', 'fips.so'));
  copyFileSync(join(prefix, 'bin', 'openssl'), join(out, 'openssl'));
  chmodSync(join(out, 'openssl'), 0o755);
  const mac = createHmac('sha256', Buffer.from(INTEGRITY_KEY_HEX, 'hex')).update(readFileSync(addon)).digest('hex');
  writeFileSync(`${addon}.hmac`, JSON.stringify({ algorithm: 'HMAC-SHA256', key: INTEGRITY_KEY_HEX, mac, profile: fips ? 'fips' : 'standard' }, null, 2) + '\n');
}

if (tool === 'cmake') {
  const cmakeArgs = ['build', '--out', outDir];
  if (debug) cmakeArgs.push('--debug');
  cmakeArgs.push(`--CDQT_FIPS_PROFILE=${fips ? 'ON' : 'OFF'}`, `--CDQT_SANITIZE=${sanitize ? 'ON' : 'OFF'}`);
  run(bin('cmake-js'), cmakeArgs);
  finishBuild();
} else {
  // npm sets npm_config_node_gyp to its bundled node-gyp; fall back to the devDependency.
  const gyp = process.env.npm_config_node_gyp || bin('node-gyp');
  const gypArgs = ['rebuild'];
  // Offline: build against the running Node's own headers (never download them).
  const nodedir = process.env.npm_config_nodedir || localNodeDir();
  if (nodedir) gypArgs.push(`--nodedir=${nodedir}`);
  if (debug) gypArgs.push('--debug');
  const cmd = gyp.endsWith('.js') ? process.execPath : gyp;
  const full = gyp.endsWith('.js') ? [gyp, ...gypArgs] : gypArgs;
  run(cmd, full, { ...process.env, QUANTUM_TUNNEL_FIPS_PROFILE: fips ? '1' : '0' });
  finishBuild();
}
