#!/usr/bin/env bash
# Prints the path of a Node 24 binary (scripts/node-bin.sh; QUANTUM_TUNNEL_NODE24 overrides the
# version range, as before).
set -euo pipefail
exec bash "$(dirname "$0")/node-bin.sh" "${QUANTUM_TUNNEL_NODE24:-24}"
