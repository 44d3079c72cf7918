#!/usr/bin/env bash
# The package as a dependent gets it: `npm pack` (with prebuilds/, made by `npm run build:prebuild`,
# and dist/), then fresh projects in a temporary directory outside the repository install the
# tarball (its dependencies from the npm registry) on a machine state without a compiler (cc, c++,
# make, cmake... on PATH are shims that record any call and fail) and with an empty OpenSSL cache:
#
#   --ignore-scripts      what npm 12 does when the dependent has not approved the install script
#   scripts enabled       (approved in allowScripts): scripts/install.cjs must take the prebuild
#
# each on Node 20 (the `node` on PATH) and Node 24 (scripts/node24.sh). In every project: import
# the package as ESM and as CommonJS, run a tunnel handshake over 127.0.0.1 and echo data through
# it, run `npx quantum-vpn version`; once, set up FIPS mode with the shipped module
# (fips/install.sh) and run the handshake in FIPS mode; once, type-check a TypeScript dependent
# against the shipped declarations (tsc without skipLibCheck, as ESM and CommonJS under node16
# resolution, and under bundler and node10). Fails on the first failed check.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

say() { printf '[test-package] %s\n' "$*"; }
die() { printf '[test-package] FAILED: %b\n' "$*"; exit 1; }

[ -f dist/index.js ] && [ -f dist/index.cjs ] && [ -f dist/cli.js ] || die "dist/ is not built (npm run build:ts)"
target="linux-$(node -p process.arch)"
[ -f "prebuilds/$target/quantum_tunnel.node" ] && [ -f "prebuilds/$target/BUILD-INFO.json" ] || die "prebuilds/$target is missing (npm run build:prebuild)"

# The dependent sees none of this checkout: no npm_* variables of a calling npm, no addon override,
# no NODE_PATH, and a working directory in a temporary directory outside the repository.
for v in $(env | grep -Eo '^npm_[A-Za-z0-9_]+' || true); do unset "$v"; done
unset QUANTUM_TUNNEL_ADDON QUANTUM_TUNNEL_FIPS QUANTUM_TUNNEL_FIPS_DIR QUANTUM_TUNNEL_FIPS_PROFILE QUANTUM_TUNNEL_SKIP_BUILD QUANTUM_TUNNEL_BUILD_FROM_SOURCE NODE_PATH NODE_OPTIONS
export NO_UPDATE_NOTIFIER=1 CI=true
work=$(mktemp -d "${TMPDIR:-/tmp}/qt-package.XXXXXX")
case "$work" in "$root"/*) die "the temporary directory $work is inside the repository" ;; esac
trap 'rm -rf "$work"' EXIT

say "npm pack"
tgz="$work/$(npm pack --ignore-scripts --pack-destination "$work" 2>/dev/null | tail -1)"
[ -f "$tgz" ] || die "npm pack produced no tarball"
listing=$(tar -tzvf "$tgz")
for f in quantum_tunnel.node quantum_tunnel.node.hmac ossl-modules/fips.so openssl BUILD-INFO.json; do
  grep -q " package/prebuilds/$target/$f\$" <<<"$listing" || die "the tarball lacks prebuilds/$target/$f"
done
grep -Eq '^-rwx.* package/prebuilds/'"$target"'/openssl$' <<<"$listing" || die "prebuilds/$target/openssl is not executable in the tarball"
say "$(basename "$tgz"): $(du -h "$tgz" | cut -f1), prebuilds/$target included"

# Before the cache is emptied below (scripts/node24.sh keeps Node 24 in it).
node20=$(command -v node)
node24=$(bash scripts/node24.sh)

# No compiler: every build tool on PATH records its call and fails. An empty OpenSSL cache: a
# source build would have to download and compile OpenSSL, which the shims stop at once.
shims="$work/no-compiler"
mkdir -p "$shims" "$work/empty-cache"
for tool in cc c++ gcc g++ clang clang++ make gmake cmake ld; do
  printf '#!/bin/sh\necho "$(basename "$0") $*" >> %q\necho "%s: no compiler on this machine (test-package.sh)" >&2\nexit 127\n' "$work/compiler-calls.log" "$tool" >"$shims/$tool"
  chmod +x "$shims/$tool"
done
export QUANTUM_TUNNEL_CACHE="$work/empty-cache"

# The dependent's code: the README example (a listener echoing, a client dialing), as ESM and CJS.
# It prints the echoed text, the addon file and the mode.
example_body='
  const listener = listen({ host: "127.0.0.1", port: 0 });
  await listener.ready;
  listener.on("tunnel", (tunnel) => tunnel.pipe(tunnel));
  const tunnel = await dial({ host: "127.0.0.1", port: listener.address().port });
  const message = `hello over a tunnel from ${FORMAT} on Node ${process.version}`;
  tunnel.write(message);
  let echoed = "";
  await new Promise((resolve, reject) => {
    tunnel.on("error", reject);
    tunnel.on("data", (chunk) => { echoed += chunk; if (echoed.length >= message.length) resolve(); });
  });
  if (echoed !== message) throw new Error(`echo mismatch: ${JSON.stringify(echoed)}`);
  const info = crypto.info();
  console.log(JSON.stringify({ echoed, suite: tunnel.info().suite, addon: info.addonPath, openssl: info.openssl, mode: info.mode }));
  await tunnel.close();
  await listener.close();'
write_examples() {
  local app="$1"
  printf 'import { listen, dial, crypto } from "quantum-tunnel";\n%s\n' "${example_body//\$\{FORMAT\}/ESM}" >"$app/example.mjs"
  printf 'const { listen, dial, crypto } = require("quantum-tunnel");\n(async () => {%s\n})().catch((e) => { console.error(e); process.exit(1); });\n' "${example_body//\$\{FORMAT\}/CommonJS}" >"$app/example.cjs"
}

# Runs the example in $1 with the node in $2; checks the echo and that the prebuild was loaded.
run_example() {
  local app="$1" node="$2" file="$3" expect_mode="${4:-standard}" out
  out=$(cd "$app" && timeout 60 "$node" "$file" 2>&1) || die "$file in $app failed:\n$out"
  grep -q '"echoed":"hello over a tunnel from' <<<"$out" || die "$file: no echo: $out"
  grep -q "\"addon\":\"$app/node_modules/quantum-tunnel/prebuilds/$target/quantum_tunnel.node\"" <<<"$out" || die "$file did not load the prebuilt addon: $out"
  grep -q "\"mode\":\"$expect_mode\"" <<<"$out" || die "$file: not in $expect_mode mode: $out"
  say "  $file: $out"
}

# A TypeScript dependent: values, classes as types and the crypto namespace's types, as ESM and
# CommonJS (the checkout's tsc and @types/node; the declarations are the installed package's).
typecheck_dependent() {
  local app="$1" tsc="$root/node_modules/typescript/bin/tsc" body out
  body='
const key: IdentityKey = IdentityKey.generate();
const options: ListenOptions = { identity: key };
let secret: crypto.Secret | undefined; let pair: crypto.MlKemKeyPair | undefined; let priv: crypto.PrivateKey | undefined;
const error: QuantumTunnelError | undefined = undefined;
void listen; void dial; void options; void secret; void pair; void priv; void error; void ErrorCode.TIMEOUT;'
  for f in esm.mts cjs.cts node10.ts; do
    printf 'import { crypto, dial, listen, ErrorCode, IdentityKey, QuantumTunnelError, type ListenOptions } from "quantum-tunnel";\n%s\n' "$body" >"$app/$f"
  done
  local common=(--noEmit --strict --target es2022 --types node --typeRoots "$root/node_modules/@types")
  out=$(cd "$app" && node "$tsc" "${common[@]}" --module node16 --moduleResolution node16 esm.mts cjs.cts 2>&1) || die "tsc (node16, ESM and CommonJS) failed:\n$out"
  out=$(cd "$app" && node "$tsc" "${common[@]}" --module esnext --moduleResolution bundler esm.mts 2>&1) || die "tsc (bundler) failed:\n$out"
  out=$(cd "$app" && node "$tsc" "${common[@]}" --module commonjs --moduleResolution node10 node10.ts 2>&1) || die "tsc (node10) failed:\n$out"
  say "  tsc: a TypeScript dependent type-checks against the shipped declarations (node16 ESM and CommonJS, bundler, node10)"
}

fips_done=0
types_done=0
for node in "$node20" "$node24"; do
  nodedir=$(dirname "$node")
  version=$("$node" --version)
  for mode in ignore-scripts scripts; do
    app="$work/app-$version-$mode"
    mkdir -p "$app"
    # Scripts enabled means approved, as npm 12 requires (npm 11 runs them anyway and warns).
    allow=''
    [ "$mode" = scripts ] && allow=', "allowScripts": { "quantum-tunnel": true }'
    printf '{ "name": "dependent", "version": "1.0.0", "private": true%s }\n' "$allow" >"$app/package.json"
    write_examples "$app"
    flags=(--no-audit --no-fund --foreground-scripts)
    [ "$mode" = ignore-scripts ] && flags+=(--ignore-scripts)
    say "Node $version, npm install ${flags[*]} <tarball>"
    : >"$work/compiler-calls.log"
    start=$(date +%s)
    log=$(cd "$app" && PATH="$nodedir:$shims:$PATH" timeout 300 npm install "${flags[@]}" "$tgz" 2>&1) || die "npm install failed:\n$log"
    say "  installed in $(( $(date +%s) - start )) s"
    [ -s "$work/compiler-calls.log" ] && die "a build tool ran during the install: $(cat "$work/compiler-calls.log")"
    [ -e "$app/node_modules/quantum-tunnel/build" ] && die "the install built the addon from source (node_modules/quantum-tunnel/build exists)"
    if [ "$mode" = scripts ]; then
      grep -q "\[quantum-tunnel\] using the prebuilt addon .*prebuilds/$target/quantum_tunnel.node .*nothing to compile" <<<"$log" ||
        die "scripts/install.cjs did not report using the prebuild:\n$log"
      say "  $(grep -o '\[quantum-tunnel\] using the prebuilt addon.*' <<<"$log")"
    else
      grep -q '\[quantum-tunnel\]' <<<"$log" && die "the install script ran despite --ignore-scripts:\n$log"
    fi
    PATH="$nodedir:$shims:$PATH" run_example "$app" "$node" example.mjs
    PATH="$nodedir:$shims:$PATH" run_example "$app" "$node" example.cjs
    v=$(cd "$app" && PATH="$nodedir:$shims:$PATH" timeout 60 npx --no-install quantum-vpn version 2>&1) || die "npx quantum-vpn version failed: $v"
    grep -Eq "^quantum-vpn version $(node -p 'require("./package.json").version')\$" <<<"$v" || die "unexpected quantum-vpn version output: $v"
    say "  npx quantum-vpn version: $(head -1 <<<"$v")"
    if [ $types_done -eq 0 ]; then typecheck_dependent "$app"; types_done=1; fi

    # FIPS mode from the prebuild, once (what npm 12 leaves: no install script ran): the shipped
    # fips.so, fipsinstall on this machine, then the example in FIPS mode.
    if [ $fips_done -eq 0 ] && [ "$mode" = ignore-scripts ]; then
      fips="$work/fips-config"
      f=$(cd "$app" && PATH="$nodedir:$shims:$PATH" QUANTUM_TUNNEL_FIPS_DIR="$fips" timeout 180 bash node_modules/quantum-tunnel/fips/install.sh 2>&1) || die "fips/install.sh failed:\n$f"
      grep -q "^Running openssl fipsinstall for $app/node_modules/quantum-tunnel/prebuilds/$target/ossl-modules/fips.so" <<<"$f" || die "fips/install.sh did not use the shipped module:\n$f"
      grep -q '^FIPS mode starts on this machine: .*addon integrity verified' <<<"$f" || die "FIPS mode did not start:\n$f"
      say "  fips/install.sh: $(grep '^FIPS mode starts' <<<"$f")"
      PATH="$nodedir:$shims:$PATH" QUANTUM_TUNNEL_FIPS=1 QUANTUM_TUNNEL_FIPS_DIR="$fips" run_example "$app" "$node" example.mjs fips
      fips_done=1
    fi
  done
done
say "passed: the packed tarball works without a compiler, with and without install scripts, on Node 20 and 24"
