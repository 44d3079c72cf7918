#!/usr/bin/env bash
# Static analysis of the addon's own sources (native/*.cc and the native/*.h they include; never
# node-addon-api, the Node-API headers or OpenSSL): clang-tidy with .clang-tidy, then cppcheck.
# Exits non-zero on any finding. Installs nothing: CI installs the Debian 12 packages
# `clang-tidy cppcheck` (clang-tidy 14, cppcheck 2.10) first.
#
# Environment: QUANTUM_TUNNEL_OPENSSL_DIR (a prefix with include/openssl; otherwise the one
# scripts/provision-openssl.sh finds), LINT_NATIVE_JOBS (parallel clang-tidy runs, default: the number of CPUs).
set -euo pipefail
cd "$(dirname "$0")/.."

die() { printf 'lint-native: %s\n' "$*" >&2; exit 2; }

missing=()
for tool in clang-tidy cppcheck node; do command -v "$tool" >/dev/null || missing+=("$tool"); done
[ ${#missing[@]} -eq 0 ] || die "missing ${missing[*]}: install them first (Debian 12: apt-get install -y clang-tidy cppcheck)"

if [ -n "${QUANTUM_TUNNEL_OPENSSL_DIR:-}" ]; then
  openssl_dir="$QUANTUM_TUNNEL_OPENSSL_DIR"
else
  openssl_dir=$(bash scripts/provision-openssl.sh) || die "no OpenSSL 3.5 headers (see scripts/provision-openssl.sh)"
fi
[ -f "$openssl_dir/include/openssl/opensslv.h" ] || die "$openssl_dir/include has no OpenSSL headers"
napi_dir=$(node -p "require('node-api-headers').include_dir") || die "node-api-headers is not installed (npm ci)"
addon_api_dir=$(node -p "require('path').resolve(require('node-addon-api').include_dir)") || die "node-addon-api is not installed (npm ci)"

shopt -s nullglob
sources=(native/*.cc)
[ ${#sources[@]} -gt 0 ] || die "no native/*.cc"
jobs="${LINT_NATIVE_JOBS:-$(nproc)}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The flags of CMakeLists.txt and binding.gyp. Third-party headers are -isystem so that neither
# the compiler's warnings nor clang-tidy's checks report on them.
defines=(-DNAPI_VERSION=8 -DNAPI_DISABLE_CPP_EXCEPTIONS -DNODE_ADDON_API_DISABLE_DEPRECATED)
fips_defines=(-DQT_NO_CHACHA20 -DQT_FIPS_PROFILE)
node - "$work/compile_commands.json" "$napi_dir" "$addon_api_dir" "$openssl_dir/include" "${defines[*]}" "${sources[@]}" <<'EOF'
const fs = require('fs'), path = require('path');
const [out, napi, addonApi, openssl, defines, ...files] = process.argv.slice(2);
const db = files.map((f) => ({
  directory: process.cwd(),
  file: path.resolve(f),
  arguments: ['c++', '-std=c++17', ...defines.split(' '), '-fno-exceptions', '-Wall', '-Wextra',
    '-isystem', napi, '-isystem', addonApi, '-isystem', openssl, '-c', path.resolve(f)],
}));
fs.writeFileSync(out, JSON.stringify(db, null, 1));
EOF

status=0
start=$SECONDS
# clang-tidy: every source once, and the sources with FIPS-profile #ifs once more in that profile.
printf '%s\n' "${sources[@]}" >"$work/std.list"
grep -lE 'QT_NO_CHACHA20|QT_FIPS_PROFILE' "${sources[@]}" >"$work/fips.list" || true
tidy() {  # $1: list of files, $2...: extra clang-tidy arguments
  local list="$1"; shift
  # xargs appends one file to the extra arguments; its output is shown only when it has findings.
  LINT_WORK="$work" xargs -P "$jobs" -n 1 bash -c 'f="${*: -1}"; log="$LINT_WORK/${f//\//_}.$$.log"
    clang-tidy --quiet -p "$LINT_WORK" "${@:1:$#-1}" "$f" >"$log" 2>&1 || { cat "$log"; exit 1; }' \
    bash "$@" <"$list"
}
echo "lint-native: clang-tidy $(clang-tidy --version | grep -Eo 'version [0-9.]+' | head -1), ${#sources[@]} files, $jobs jobs"
tidy "$work/std.list" || status=1
if [ -s "$work/fips.list" ]; then
  echo "lint-native: clang-tidy, FIPS profile: $(tr '\n' ' ' <"$work/fips.list")"
  extra=()
  for d in "${fips_defines[@]}"; do extra+=("--extra-arg=$d"); done
  tidy "$work/fips.list" "${extra[@]}" || status=1
fi
echo "lint-native: clang-tidy done in $((SECONDS - start)) s"

# cppcheck over our sources and headers only (the third-party headers are not given: cppcheck
# would analyse them, slowly and with findings that are not ours); --library=openssl tells it
# which OpenSSL calls allocate and free. Both build profiles. Suppressions are inline, each with
# its reason.
start=$SECONDS
echo "lint-native: $(cppcheck --version)"
for profile in standard fips; do
  args=("${defines[@]}")
  [ "$profile" = fips ] && args+=("${fips_defines[@]}")
  cppcheck --enable=warning,performance,portability --error-exitcode=1 --inline-suppr --std=c++17 --language=c++ \
    --library=openssl -I native "${args[@]}" --quiet -j "$jobs" \
    --template='{file}:{line}:{column}: {severity}: {message} [{id}]' "${sources[@]}" || status=1
done
echo "lint-native: cppcheck done in $((SECONDS - start)) s"

if [ "$status" -ne 0 ]; then
  echo "lint-native: FAILED (findings above)" >&2
else
  echo "lint-native: no findings"
fi
exit "$status"
