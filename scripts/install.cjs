#!/usr/bin/env node
// `npm install` step. Uses a prebuilt addon when one ships for this platform; otherwise
// provisions OpenSSL 3.5 (scripts/provision-openssl.sh) and builds the addon from source with
// node-gyp, which is what npm provides to every package. Set QUANTUM_TUNNEL_SKIP_BUILD=1 to skip
// (CI builds explicitly afterwards).
'use strict';
const { existsSync } = require('node:fs');
const { join } = require('node:path');
const { spawnSync } = require('node:child_process');

const root = join(__dirname, '..');
if (process.env.QUANTUM_TUNNEL_SKIP_BUILD === '1') {
  console.log('[quantum-tunnel] QUANTUM_TUNNEL_SKIP_BUILD=1: the native addon is not built now (npm rebuild quantum-tunnel builds it)');
  process.exit(0);
}

const prebuilt = join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'quantum_tunnel.node');
if (existsSync(prebuilt) && process.env.QUANTUM_TUNNEL_FIPS_PROFILE !== '1') {
  console.log(`[quantum-tunnel] using the prebuilt addon ${prebuilt}`);
  process.exit(0);
}

const r = spawnSync(process.execPath, [join(__dirname, 'build-native.cjs'), 'gyp'], { cwd: root, stdio: 'inherit' });
if (r.status !== 0) {
  console.error(
    '[quantum-tunnel] building the native addon failed. It needs OpenSSL 3.5 with its FIPS module ' +
      '(found or built by scripts/provision-openssl.sh; or set QUANTUM_TUNNEL_OPENSSL_DIR), a C++17 ' +
      'compiler, make and python3. See README.md "Installing as a dependency".',
  );
  process.exit(r.status ?? 1);
}
