#!/usr/bin/env bash
# Finds or builds the OpenSSL 3.5 that the addon links statically (libcrypto.a, headers, fips.so).
#
# Order: $QUANTUM_TUNNEL_OPENSSL_DIR, then a system OpenSSL >= 3.5 with everything we need, then a
# build from Debian 13's `openssl` source package, fetched with apt through a private sources list
# and private state (the machine's apt configuration is never touched), cached per user and version.
#
# stdout: one line, the prefix (include/, lib/libcrypto.a, lib/ossl-modules/fips.so, bin/openssl).
# stderr: progress and errors.  Exit status non-zero with a message saying how to fix it.
set -euo pipefail

log() { printf '[quantum-tunnel openssl] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Pinned source versions, newest first: "<debian version> <upstream version> <sha256 of orig.tar.gz>".
# The archive sometimes lists a version whose files are gone (404); the next pin is tried then.
PINS=(
  "3.5.9-1~deb13u1 3.5.9 603f5602e2eef00d77fbd429d34dcd5822bb301757a1bc9cdb24c670f1eb859a"
  "3.5.7-1~deb13u2 3.5.7 a8c0d28a529ca480f9f36cf5792e2cd21984552a3c8e4aa11a24aa31aeac98e8"
)
CONFIGURE_FLAGS=(enable-fips enable-ec_nistp_64_gcc_128 no-docs no-tests no-shared -fPIC)
# Bump when the build recipe changes, so old caches are not reused.
RECIPE=2

CACHE_ROOT="${QUANTUM_TUNNEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/quantum-tunnel}"

# A prefix is usable when it has OpenSSL >= 3.5 headers, a static libcrypto and the FIPS module.
usable_prefix() {
  local p="$1" v libdir
  [ -f "$p/include/openssl/opensslv.h" ] || return 1
  v=$(awk '/# *define OPENSSL_VERSION_MAJOR/{ma=$NF} /# *define OPENSSL_VERSION_MINOR/{mi=$NF} END{print ma"."mi}' "$p/include/openssl/opensslv.h")
  case "$v" in 3.[5-9]|3.[1-9][0-9]|[4-9].*) ;; *) return 1 ;; esac
  for libdir in lib lib64 "lib/$(gcc -print-multiarch 2>/dev/null || echo x)"; do
    if [ -f "$p/$libdir/libcrypto.a" ] && [ -f "$p/$libdir/ossl-modules/fips.so" ]; then
      return 0
    fi
  done
  return 1
}

if [ -n "${QUANTUM_TUNNEL_OPENSSL_DIR:-}" ]; then
  usable_prefix "$QUANTUM_TUNNEL_OPENSSL_DIR" ||
    die "QUANTUM_TUNNEL_OPENSSL_DIR=$QUANTUM_TUNNEL_OPENSSL_DIR lacks OpenSSL >= 3.5 headers, lib/libcrypto.a or lib/ossl-modules/fips.so (configure OpenSSL with enable-fips -fPIC)"
  log "using QUANTUM_TUNNEL_OPENSSL_DIR=$QUANTUM_TUNNEL_OPENSSL_DIR"
  echo "$QUANTUM_TUNNEL_OPENSSL_DIR"; exit 0
fi
for p in /usr/local /usr; do
  if usable_prefix "$p"; then log "using the system OpenSSL in $p"; echo "$p"; exit 0; fi
done

# Reuse a finished build of any pinned version.
for pin in "${PINS[@]}"; do
  read -r _deb ver _sum <<<"$pin"
  prefix="$CACHE_ROOT/openssl-$ver-r$RECIPE"
  if [ -f "$prefix/.complete" ] && usable_prefix "$prefix"; then echo "$prefix"; exit 0; fi
done

command -v apt-get >/dev/null || die "no OpenSSL >= 3.5 found and apt-get is missing to fetch its source; build OpenSSL 3.5 with 'enable-fips -fPIC' and set QUANTUM_TUNNEL_OPENSSL_DIR to its prefix"
for tool in make perl gcc; do
  command -v "$tool" >/dev/null || die "building OpenSSL needs '$tool' (apt-get install build-essential perl)"
done

mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.provision.lock"
flock 9   # one build at a time; a second caller waits and then finds the cache

# A private apt: its own sources list (trixie deb-src on the mirror this machine already uses),
# lists, cache and an empty status file.
APT_DIR="$CACHE_ROOT/apt"
mkdir -p "$APT_DIR"/{lists/partial,cache/archives/partial,sources.list.d,preferences.d,state}
mirror=""
for f in /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] || continue
  mirror=$(awk '/^URIs:/{for(i=2;i<=NF;i++) if ($i ~ /\/debian\/?$/) {print $i; exit}}' "$f")
  [ -n "$mirror" ] && break
done
if [ -z "$mirror" ]; then
  mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    awk '$1=="deb"||$1=="deb-src"{for(i=2;i<=NF;i++) if ($i ~ /\/debian\/?$/) {print $i; exit}}')
fi
[ -n "$mirror" ] || die "cannot find this machine's Debian mirror in /etc/apt; set QUANTUM_TUNNEL_OPENSSL_DIR instead"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -f "$keyring" ] || die "missing $keyring (apt-get install debian-archive-keyring)"
cat >"$APT_DIR/sources.list.d/trixie-src.sources" <<SRC
Types: deb-src
URIs: $mirror
Suites: trixie trixie-updates
Components: main
Signed-By: $keyring
SRC
APT_OPTS=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$APT_DIR/sources.list.d"
  -o "Dir::Etc::PreferencesParts=$APT_DIR/preferences.d" -o "Dir::State=$APT_DIR/state"
  -o "Dir::State::Lists=$APT_DIR/lists" -o "Dir::Cache=$APT_DIR/cache" -o "Dir::State::status=/dev/null"
  -o "APT::Sandbox::User=$(id -un)" -q)
log "updating a private apt source list for Debian 13 (trixie) source packages"
apt-get "${APT_OPTS[@]}" update >&2 ||
  die "apt-get update for trixie sources failed (network or mirror); set QUANTUM_TUNNEL_OPENSSL_DIR to an OpenSSL 3.5 build instead"

SRC_DIR="$CACHE_ROOT/src"
mkdir -p "$SRC_DIR"
tarball=""
for pin in "${PINS[@]}"; do
  read -r deb ver sum <<<"$pin"
  tb="$SRC_DIR/openssl_$ver.orig.tar.gz"
  if [ ! -f "$tb" ] || ! echo "$sum  $tb" | sha256sum -c --status; then
    log "downloading openssl $deb source"
    (cd "$SRC_DIR" && apt-get "${APT_OPTS[@]}" source --download-only "openssl=$deb" >&2) ||
      { log "openssl $deb is not downloadable from the archive; trying the next pinned version"; continue; }
  fi
  if echo "$sum  $tb" | sha256sum -c --status; then
    tarball="$tb"; break
  fi
  log "SHA-256 mismatch for $tb; discarding it"
  rm -f "$tb"
done
[ -n "$tarball" ] || die "none of the pinned OpenSSL versions (${PINS[*]}) could be downloaded and verified"

prefix="$CACHE_ROOT/openssl-$ver-r$RECIPE"
work="$CACHE_ROOT/build-$ver"
rm -rf "$work" "$prefix"
mkdir -p "$work"
log "building OpenSSL $ver (${CONFIGURE_FLAGS[*]}) into $prefix; about 4 minutes on 2 cores"
tar -xzf "$tarball" -C "$work" --strip-components=1
jobs=$(nproc 2>/dev/null || echo 2)
(
  cd "$work"
  ./Configure "${CONFIGURE_FLAGS[@]}" --prefix="$prefix" --openssldir="$prefix/ssl" --libdir=lib >"$work/configure.log" 2>&1 ||
    { tail -30 "$work/configure.log" >&2; exit 1; }
  log "configured; compiling with $jobs jobs (log: $work/make.log)"
  make -j"$jobs" >"$work/make.log" 2>&1 || { tail -40 "$work/make.log" >&2; exit 1; }
  log "compiled; installing"
  make install_sw install_fips >"$work/install.log" 2>&1 || { tail -30 "$work/install.log" >&2; exit 1; }
) || die "OpenSSL build failed (logs in $work)"
usable_prefix "$prefix" || die "OpenSSL installed into $prefix but libcrypto.a or fips.so is missing"
rm -rf "$work"
touch "$prefix/.complete"
log "OpenSSL $ver ready in $prefix"
echo "$prefix"
