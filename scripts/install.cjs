#!/usr/bin/env node
// `npm install` step. Uses the prebuilt addon (prebuilds/<platform>-<arch>[-musl], made by
// scripts/prebuild.cjs) when it loads on this machine; otherwise provisions OpenSSL 3.5
// (scripts/provision-openssl.sh) and builds the addon from source with node-gyp, which is what npm
// provides to every package. npm 12 skips this script unless the dependent approves it: the
// prebuild is then found by lib/native.ts all the same.
//   QUANTUM_TUNNEL_BUILD_FROM_SOURCE=1  build from source even when the prebuild loads
//   QUANTUM_TUNNEL_FIPS_PROFILE=1       build the FIPS profile (from source; no prebuild has it)
//   QUANTUM_TUNNEL_SKIP_BUILD=1         do nothing (CI builds explicitly afterwards)
'use strict';
const { existsSync } = require('node:fs');
const { join } = require('node:path');
const { spawnSync } = require('node:child_process');

const root = join(__dirname, '..');
const say = (msg) => console.log(`[quantum-tunnel] ${msg}`);
if (process.env.QUANTUM_TUNNEL_SKIP_BUILD === '1') {
  say('QUANTUM_TUNNEL_SKIP_BUILD=1: the native addon is not built now (npm rebuild quantum-tunnel builds it)');
  process.exit(0);
}

/** prebuilds/<platform>-<arch>, with -musl on a musl Linux (as lib/native.ts looks it up). */
function prebuildDir() {
  process.report.excludeNetwork = true; // the report need not resolve network interfaces
  const musl = process.platform === 'linux' && !process.report.getReport().header.glibcVersionRuntime;
  return join(root, 'prebuilds', `${process.platform}-${process.arch}${musl ? '-musl' : ''}`);
}

/** Whether the prebuilt addon loads and works here: tried in a child, so a dlopen failure is not ours. */
function prebuildLoads(addon) {
  const r = spawnSync(process.execPath, ['-e', `console.log(require(${JSON.stringify(addon)}).info().openssl)`], { encoding: 'utf8', timeout: 60_000 });
  if (r.status === 0) return { ok: true, openssl: r.stdout.trim() };
  return { ok: false, reason: (r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n').find((l) => /Error|error/.test(l)) ?? 'it did not load' };
}

const fromSource = process.env.QUANTUM_TUNNEL_BUILD_FROM_SOURCE === '1' ? 'QUANTUM_TUNNEL_BUILD_FROM_SOURCE=1'
  : process.env.QUANTUM_TUNNEL_FIPS_PROFILE === '1' ? 'QUANTUM_TUNNEL_FIPS_PROFILE=1 (the FIPS profile is built from source)'
  : undefined;
const prebuilt = join(prebuildDir(), 'quantum_tunnel.node');
if (fromSource) {
  say(`${fromSource}: building the addon from source`);
} else if (!existsSync(prebuilt)) {
  say(`no prebuilt addon for ${process.platform}-${process.arch} in this package (${prebuilt}): building it from source`);
} else {
  const probe = prebuildLoads(prebuilt);
  if (probe.ok) {
    say(`using the prebuilt addon ${prebuilt} (${probe.openssl}); nothing to compile`);
    process.exit(0);
  }
  say(`the prebuilt addon ${prebuilt} does not load here (${probe.reason}): building it from source`);
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
