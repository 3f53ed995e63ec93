#!/usr/bin/env bash
# Regenerates docker/constraints.txt, the lock file of the image's Python packages: resolves
# the package (setup.cfg's install_requires), the cron runner (yacron), the init (dumb-init)
# and the build backend (setuptools, wheel) together in a clean venv inside the image's own
# base image, so the versions are the ones pip picks for that Python and platform, then
# freezes them. Run it when setup.cfg's dependencies change, or to take newer releases; then
# rebuild the image, run the tests and commit the file.
#
#   bash docker/refresh-constraints.sh              # podman, else docker
#   ENGINE=docker bash docker/refresh-constraints.sh
#
# Behind a TLS-intercepting proxy, set CA_BUNDLE to its CA bundle (default: the host's).
set -euo pipefail
cd "$(dirname "$0")/.."

ENGINE=${ENGINE:-$(command -v podman || command -v docker || true)}
[ -n "$ENGINE" ] || { echo "refresh-constraints: neither podman nor docker found" >&2; exit 2; }
BASE=${BASE:-python:3.11-slim}
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
cp -r setup.cfg pyproject.toml README.md pipeline "$src"/
find "$src" -name __pycache__ -prune -exec rm -rf {} +

ca=()
[ -f "$CA_BUNDLE" ] && ca=(-v "$CA_BUNDLE:/tmp/ca.crt:ro" -e PIP_CERT=/tmp/ca.crt)

out=$(mktemp)
"$ENGINE" run --rm --pull=never "${ca[@]}" -v "$src:/src:ro" "$BASE" sh -euc '
  cp -r /src /tmp/src
  python -m venv /tmp/v
  /tmp/v/bin/pip install --quiet --disable-pip-version-check --no-cache-dir \
    /tmp/src yacron dumb-init "setuptools>=68" wheel
  /tmp/v/bin/pip freeze --all --exclude pip --exclude tlc-pipeline
' >"$out"
{
  echo "# The image's Python packages, resolved together by docker/refresh-constraints.sh"
  echo "# in $BASE on $(date -u +%Y-%m-%d). Used by the Dockerfile as pip constraints:"
  echo "# regenerate with that script, never edit by hand."
  sort -f "$out"
} >docker/constraints.txt
rm -f "$out"
echo "refresh-constraints: wrote docker/constraints.txt ($(grep -vc '^#' docker/constraints.txt) packages)"
