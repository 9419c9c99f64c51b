#!/usr/bin/env bash
# Installs the Debian packages berth's drivers and tests use, when they are missing:
# PostgreSQL (store tests), Docker Engine and runc (container drivers), libseccomp2 (the
# sandboxes' seccomp filter; runc brings it), busybox-static
# (berth's built-in image and the test images are built from it, since no image can be
# pulled), tini (the init of containers with initProcessEnabled), Chromium (the web
# console's browser tests).
set -euo pipefail
need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v runc >/dev/null 2>&1 || need+=(runc)
ls /usr/lib/*/libseccomp.so.2 /lib/*/libseccomp.so.2 2>/dev/null | grep -q . || need+=(libseccomp2)
[ -x /bin/busybox ] || need+=(busybox-static)
[ -x /usr/bin/tini-static ] || need+=(tini)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "missing Debian packages: ${need[*]} (run as root to install them)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
