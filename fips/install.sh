#!/usr/bin/env bash
# Installs the OpenSSL FIPS provider configuration for this machine: runs `openssl fipsinstall`
# against the addon's own fips.so (the module MAC must be generated where the module runs, never
# copied) and writes the addon's FIPS configuration from fips/openssl-fips.cnf.in.
#
# Usage: fips/install.sh [ADDON_DIR]   (default: build/Release of this package)
# Output directory: $QUANTUM_TUNNEL_FIPS_DIR, default ${XDG_CONFIG_HOME:-~/.config}/quantum-tunnel/fips
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
addon_dir="${1:-$root/build/Release}"
module="$addon_dir/ossl-modules/fips.so"
openssl_bin="$addon_dir/openssl"
out="${QUANTUM_TUNNEL_FIPS_DIR:-${XDG_CONFIG_HOME:-$HOME/.config}/quantum-tunnel/fips}"

[ -f "$module" ] || { echo "fips install: $module not found; build the addon first (npm run build)" >&2; exit 1; }
[ -x "$openssl_bin" ] || { echo "fips install: $openssl_bin not found; build the addon first (npm run build)" >&2; exit 1; }
mkdir -p "$out"
chmod 700 "$out"

echo "[quantum-tunnel fips] running fipsinstall for $module" >&2
# The provider runs its self-tests here; a failure stops the install.
"$openssl_bin" fipsinstall -module "$module" -out "$out/fipsmodule.cnf.tmp" -provider_name fips >&2
mv "$out/fipsmodule.cnf.tmp" "$out/fipsmodule.cnf"
sed "s|@FIPSMODULE_CNF@|$out/fipsmodule.cnf|" "$here/openssl-fips.cnf.in" > "$out/openssl-fips.cnf"
echo "[quantum-tunnel fips] wrote $out/openssl-fips.cnf" >&2
echo "$out"
