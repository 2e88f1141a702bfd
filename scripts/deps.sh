#!/usr/bin/env bash
# Installs what the build and the tests need and a fresh machine may lack: PostgreSQL's server
# binaries, libpq's headers, and Chromium with ChromeDriver for the browser test. Quiet when
# everything is there already.
set -euo pipefail

have_pg_server() { [ -n "$(scripts/pg.sh bindir 2>/dev/null)" ]; }
have_libpq() { [ -e /usr/lib/x86_64-linux-gnu/libpq.so ] || [ -e /usr/lib/aarch64-linux-gnu/libpq.so ] || pkg-config --exists libpq 2>/dev/null; }

missing=()
have_pg_server || missing+=(postgresql)
have_libpq || missing+=(libpq-dev)
command -v pkg-config >/dev/null || missing+=(pkg-config)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get -o DPkg::Lock::Timeout=300 update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -qq "${missing[@]}" >/dev/null
fi
