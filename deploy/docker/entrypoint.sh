#!/bin/sh
# Container entrypoint: prepares FIPS mode when asked, then runs quantum-vpn as PID 1's exec
# (so SIGTERM reaches it directly and drains; SIGHUP reloads).
#
# QUANTUM_TUNNEL_FIPS=1: the FIPS module configuration (`openssl fipsinstall`, through
# `quantum-vpn fips install`) is generated HERE, on the machine that runs the module, into
# $QUANTUM_TUNNEL_FIPS_DIR (a writable volume), never baked into the image: the module MAC
# belongs to this machine (docs/FIPS.md, "Deploying"). It runs on the first start and is reused
# afterwards, unless the module's SHA-256 differs from the one recorded when it ran (a new image),
# in which case it runs again. If it fails the container exits non-zero and never serves.
#
# Arguments: those of quantum-vpn; none means `serve --config $QUANTUM_TUNNEL_CONFIG`.
set -eu

app="${QUANTUM_TUNNEL_APP:-/app}"
config="${QUANTUM_TUNNEL_CONFIG:-/etc/quantum-tunnel/config.yaml}"

# The FIPS module beside the addon the package loads (lib/native.ts looks in the same places).
fips_module() {
  if [ -n "${QUANTUM_TUNNEL_FIPS_MODULE:-}" ]; then echo "$QUANTUM_TUNNEL_FIPS_MODULE"; return; fi
  if [ -n "${QUANTUM_TUNNEL_ADDON:-}" ]; then echo "$(dirname "$QUANTUM_TUNNEL_ADDON")/ossl-modules/fips.so"; return; fi
  case "$(uname -m)" in x86_64) arch=x64 ;; aarch64) arch=arm64 ;; *) arch="$(uname -m)" ;; esac
  for dir in "$app/build/Release" "$app/prebuilds/linux-$arch"; do
    if [ -f "$dir/quantum_tunnel.node" ]; then echo "$dir/ossl-modules/fips.so"; return; fi
  done
  echo "$app/build/Release/ossl-modules/fips.so"
}

prepare_fips() {
  dir="${QUANTUM_TUNNEL_FIPS_DIR:-/var/lib/quantum-tunnel/fips}"
  export QUANTUM_TUNNEL_FIPS_DIR="$dir"
  module="$(fips_module)"
  if [ ! -f "$module" ]; then
    echo "quantum-tunnel-entrypoint: QUANTUM_TUNNEL_FIPS=1 but the FIPS module $module is missing (the image was built without it)" >&2
    exit 1
  fi
  stamp="$dir/module.sha256"
  want="$(sha256sum "$module" | cut -d' ' -f1)"
  have="$(cat "$stamp" 2>/dev/null || true)"
  if [ -f "$dir/openssl-fips.cnf" ] && [ -f "$dir/fipsmodule.cnf" ] && [ "$have" = "$want" ]; then
    echo "quantum-tunnel-entrypoint: reusing the FIPS configuration in $dir (module sha256 $want)" >&2
    return
  fi
  if [ -n "$have" ]; then
    echo "quantum-tunnel-entrypoint: the FIPS module changed (sha256 $have -> $want): running fipsinstall again" >&2
  else
    echo "quantum-tunnel-entrypoint: first start in FIPS mode: running fipsinstall into $dir" >&2
  fi
  rm -f "$stamp"
  # Runs the provider's self-tests, writes the module MAC, then proves FIPS mode starts on it.
  quantum-vpn fips install --dir "$dir" >&2
  # Recorded last: an interrupted install is redone on the next start.
  echo "$want" > "$stamp.tmp" && mv "$stamp.tmp" "$stamp"
}

if [ $# -eq 0 ]; then
  set -- serve --config "$config"
fi
if [ "${QUANTUM_TUNNEL_FIPS:-0}" = 1 ] && [ "$1" != fips ]; then
  prepare_fips
fi
exec quantum-vpn "$@"
