#!/usr/bin/env bash
# Builds the addon with AddressSanitizer + UndefinedBehaviorSanitizer into build-asan/ and runs
# the whole test suite against it. (Leaks are checked by scripts/memcheck.sh: LeakSanitizer
# cannot tell V8's deliberate at-exit allocations from ours.)
set -euo pipefail
cd "$(dirname "$0")/.."
npx cmake-js build --out build-asan --CDQT_SANITIZE=ON --CDQT_FIPS_PROFILE=OFF >/dev/null
export QUANTUM_TUNNEL_ADDON="$PWD/build-asan/Release/quantum_tunnel.node"
export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
exec node node_modules/mocha/bin/mocha.js "$@"
