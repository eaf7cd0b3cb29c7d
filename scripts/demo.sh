#!/usr/bin/env bash
# The main job: a short tour of hull on this machine, in a throw-away root (HULL_ROOT to keep one).
# Run through `npm run demo`, which runs set-up first.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/bin:$PATH"
if [ -z "${HULL_ROOT:-}" ]; then
  HULL_ROOT=$(mktemp -d /tmp/hull-demo.XXXXXX)
  trap 'hull rm -f demo-web >/dev/null 2>&1 || true; rm -rf "$HULL_ROOT"' EXIT
fi
export HULL_ROOT
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

bash scripts/import-busybox.sh "$HULL_ROOT"
step hull images
step hull run --rm busybox echo hello from a container
step hull run --rm --vm busybox echo hello from a microVM
printf '\nThe two kernels:\n'
printf '  container: '; hull run --rm busybox uname -r
printf '  microVM:   '; hull run --rm --vm busybox uname -r
step hull run --rm busybox sh -c 'exit 7' || echo "exit code: $?"
step hull run -d --name demo-web --memory=128m busybox sh -c 'while true; do date; sleep 1; done'
sleep 2
step hull ps
step hull logs --tail 2 demo-web
step hull stop -t 1 demo-web
step hull rm demo-web
step hull info
