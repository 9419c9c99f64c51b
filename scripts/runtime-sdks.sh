#!/usr/bin/env bash
# Installs the AWS SDKs berth's function runtimes carry, as AWS's runtimes do, at the versions
# pinned in src/berth/runtimes/python/sdk-requirements.txt (boto3, into runtimes/python/sdk)
# and src/berth/runtimes/nodejs/package-lock.json (the AWS SDK for JavaScript v3, into
# runtimes/nodejs/node_modules). Sandboxes see both read-only. Does nothing when the installed
# trees match the pins. Usage: runtime-sdks.sh PYTHON (the interpreter whose pip installs).
set -euo pipefail
python=${1:-python3}
root=$(cd "$(dirname "$0")/.." && pwd)
runtimes=$root/src/berth/runtimes

pins=$runtimes/python/sdk-requirements.txt
tree=$runtimes/python/sdk
if ! cmp -s "$pins" "$tree/.pins" 2>/dev/null || [ ! -f "$tree/boto3/__init__.py" ]; then
  echo "installing the Python runtime SDK (boto3) into $tree"
  rm -rf "$tree.new"
  # Pure-Python wheels, resolved for the oldest Python runtime (python3.9) so that one tree
  # serves every python3.x function.
  "$python" -m pip install -q --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version 3.9 --no-compile --target "$tree.new" -r "$pins"
  # Byte-code for every interpreter a python3.x function may run on: sandboxes see the tree
  # read-only, so an interpreter without its own .pyc files would compile on every cold start.
  for exe in /root/.pyenv/versions/3.*/bin/python3.* /usr/local/bin/python3.* \
             /usr/bin/python3.*; do
    case "$exe" in *-config|*m) continue ;; esac
    [ -x "$exe" ] || continue
    "$exe" -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null || continue
    "$exe" -m compileall -q -j 0 "$tree.new" >/dev/null 2>&1 || true
  done
  cp "$pins" "$tree.new/.pins"
  rm -rf "$tree"
  mv "$tree.new" "$tree"
fi

lock=$runtimes/nodejs/package-lock.json
modules=$runtimes/nodejs/node_modules
if ! command -v npm >/dev/null 2>&1; then
  echo "npm is not installed: nodejs functions run without the AWS SDK for JavaScript" >&2
  exit 0
fi
if ! cmp -s "$lock" "$modules/.berth-lock" 2>/dev/null \
    || [ ! -f "$modules/@aws-sdk/client-sts/package.json" ]; then
  echo "installing the Node.js runtime SDK (@aws-sdk/client-*) into $modules"
  (cd "$runtimes/nodejs" && npm ci --omit=dev --no-audit --no-fund --loglevel=error >/dev/null)
  cp "$lock" "$modules/.berth-lock"
fi
