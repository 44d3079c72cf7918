#!/usr/bin/env bash
# Runs scripts/memcheck-workload.ts under valgrind memcheck and fails if valgrind reports an
# invalid access anywhere or a definite/indirect leak whose stack passes through our addon.
# Node and V8 keep memory alive at exit by design, so leaks outside the addon are not ours.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
log=$(mktemp)
valgrind --tool=memcheck --suppressions=scripts/valgrind.supp --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=none \
  --num-callers=30 --track-origins=yes --log-file="$log" \
  node --expose-gc --import tsx scripts/memcheck-workload.ts "${1:-5}"
errors=$(grep -Eo 'ERROR SUMMARY: [0-9]+' "$log" | grep -Eo '[0-9]+$')
# A leak record is a block of lines from "are definitely/indirectly lost" to the blank line after it.
ours=$(awk '/are (definitely|indirectly) lost/{rec=$0; inrec=1; next} inrec && /^==[0-9]+== $/{if (rec ~ /quantum_tunnel/) n++; inrec=0; next} inrec{rec=rec "\n" $0} END{print n+0}' "$log")
grep -E 'ERROR SUMMARY|definitely lost:|indirectly lost:' "$log" || true
echo "memcheck: $errors errors, $ours leak records through the addon (full log: $log)"
[ "$errors" = 0 ] && [ "$ours" = 0 ]
