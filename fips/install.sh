#!/usr/bin/env bash
# Installs the OpenSSL FIPS provider configuration for this machine: `quantum-vpn fips install`
# (lib/cli/fips.ts) runs `openssl fipsinstall` against the addon's own fips.so (the module MAC must
# be generated where the module runs, never copied), writes the addon's FIPS configuration from
# fips/openssl-fips.cnf.in, and checks that FIPS mode starts on it. Kept for checkouts and CI
# (`npm run fips:install`); a project that depends on the package runs `npx quantum-vpn fips install`.
#
# Usage: fips/install.sh [ADDON_DIR]   (default: the addon the package loads, lib/native.ts: a local
# build/Release, else the prebuilt prebuilds/<platform>-<arch>, whose ossl-modules/fips.so ships beside it)
# Output directory: $QUANTUM_TUNNEL_FIPS_DIR, default ${XDG_CONFIG_HOME:-~/.config}/quantum-tunnel/fips
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ $# -ge 1 ]; then
  QUANTUM_TUNNEL_ADDON="$(cd "$1" && pwd)/quantum_tunnel.node"
  export QUANTUM_TUNNEL_ADDON
fi
# From the TypeScript sources in a checkout (tsx), from the bundle in an installed package.
if [ -f "$root/lib/cli/main.ts" ] && [ -f "$root/node_modules/tsx/dist/loader.mjs" ]; then
  exec node --import "file://$root/node_modules/tsx/dist/loader.mjs" "$root/lib/cli/main.ts" fips install
fi
exec node "$root/bin/quantum-vpn.js" fips install
