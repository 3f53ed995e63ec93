#!/usr/bin/env bash
# Headless Chromium from Debian's packages, for the report's browser test
# (tests/integration/observe/test_report_browser.py) and tools/report_screenshot.py. Playwright
# drives it (executable_path=/usr/bin/chromium): no browser is downloaded, only Debian's.
# Idempotent: installs only when it is missing. Exits 1 with one line when it cannot.
set -euo pipefail

fail() { echo "install-chromium: $*" >&2; exit 1; }

PACKAGES=(chromium fonts-dejavu-core)

if ! command -v chromium >/dev/null 2>&1; then
  [ "$(id -u)" -eq 0 ] || fail "chromium missing and not root: run as root, or apt-get install ${PACKAGES[*]}"
  command -v apt-get >/dev/null 2>&1 || fail "chromium missing and no apt-get to install it with"
  echo "install-chromium: installing ${PACKAGES[*]}"
  log=$(mktemp)
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
         apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}"; } >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    fail "apt-get could not install ${PACKAGES[*]} (log above)"
  fi
  rm -f "$log"
fi

version=$(chromium --headless --no-sandbox --version 2>&1 | tail -n 1) ||
  fail "chromium is installed but does not start: $version"
echo "install-chromium: $version"
