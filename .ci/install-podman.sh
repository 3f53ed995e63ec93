#!/usr/bin/env bash
# podman from Debian's packages, configured for these machines (shared/notes/containers.md), for
# tests/integration/test_container.py. Idempotent: installs only what is missing and writes the
# engine settings only where they are not set yet. Exits 1 with one line when it cannot.
set -euo pipefail

fail() { echo "install-podman: $*" >&2; exit 1; }

PACKAGES=(podman runc crun netavark aardvark-dns containernetworking-plugins slirp4netns uidmap
          fuse-overlayfs catatonit mmdebstrap)

missing=()
for cmd in podman runc mmdebstrap; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
done
if [ "${#missing[@]}" -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || fail "${missing[*]} missing and not root: run as root, or apt-get install ${PACKAGES[*]}"
  command -v apt-get >/dev/null 2>&1 || fail "${missing[*]} missing and no apt-get to install them with"
  echo "install-podman: installing ${PACKAGES[*]}"
  log=$(mktemp)
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
         apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}"; } >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    fail "apt-get could not install ${PACKAGES[*]} (log above)"
  fi
  rm -f "$log"
fi

# Engine settings these VMs need: no CAP_SYS_RESOURCE (default ulimits fail with EPERM), crun
# refuses the hybrid cgroup layout, no systemd as PID 1.
SETTINGS='[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
'
CONF=/etc/containers/containers.conf
DROPIN=/etc/containers/containers.conf.d/50-tlc-pipeline.conf
if grep -qs '^cgroup_manager *= *"cgroupfs"' "$CONF" "$DROPIN"; then
  :  # already configured
elif [ "$(id -u)" -ne 0 ]; then
  fail "$CONF lacks the settings in shared/notes/containers.md and we are not root to write them"
elif [ ! -e "$CONF" ]; then
  printf '# Written by tlc-pipeline .ci/install-podman.sh (shared/notes/containers.md)\n%s' \
    "$SETTINGS" >"$CONF"
else  # someone else's containers.conf: leave it, and add ours as a drop-in that wins
  mkdir -p "$(dirname "$DROPIN")"
  printf '# Written by tlc-pipeline .ci/install-podman.sh (shared/notes/containers.md)\n%s' \
    "$SETTINGS" >"$DROPIN"
fi

info=$(podman info --format '{{.Host.OCIRuntime.Name}} {{.Host.CgroupManager}}' 2>&1) ||
  fail "podman info failed: $(echo "$info" | tail -n 1)"
[ "$info" = "runc cgroupfs" ] || fail "podman uses '$info', expected 'runc cgroupfs' (see $CONF)"
echo "install-podman: $(podman --version), runtime runc, cgroups cgroupfs"
