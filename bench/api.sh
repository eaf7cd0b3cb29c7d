#!/usr/bin/env bash
# bench/api.sh - `docker run --rm busybox echo hello` through `hull serve` (the real docker 28
# CLI over the Docker Engine API) side by side with `hull run --rm busybox echo hello` (the hull
# CLI calling the engine directly), timed by hyperfine in ONE run on the same hull root.
#
#   docker->hull serve   create, attach (hijacked), wait, start over the unix socket; the
#                        container runs under its monitor (conmon) and the server streams its log
#   hull run             the engine's foreground path (no monitor)
#
# Usage (root): bench/api.sh        RUNS=30 bench/api.sh        KEEP=1 (keep the work dir)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-20}
W=$(mktemp -d /var/tmp/hull-bench-api.XXXXXX)
SERVE_PID=
cleanup() {
  if [ -n "$SERVE_PID" ]; then
    DOCKER_HOST=unix://$W/docker.sock docker ps -aq 2>/dev/null | xargs -r env DOCKER_HOST=unix://$W/docker.sock docker rm -f >/dev/null 2>&1 || true
    kill "$SERVE_PID" 2>/dev/null || true
    wait "$SERVE_PID" 2>/dev/null || true
  fi
  if [ "${KEEP:-0}" != 1 ]; then rm -rf "$W"; fi
}
trap cleanup EXIT
command -v hyperfine >/dev/null || { echo "hyperfine is missing (apt-get install hyperfine)" >&2; exit 1; }
command -v docker >/dev/null || { echo "the docker CLI is missing" >&2; exit 1; }
[ -f dist/src/cli/main.js ] || npx tsc -p .
[ -f build/images/busybox-rootfs.tar ] || bash scripts/make-busybox-rootfs.sh build/images

ROOT=$W/root
bash scripts/import-busybox.sh "$ROOT" >/dev/null
bin/hull --root "$ROOT" serve --socket "$W/docker.sock" 2>"$W/serve.log" &
SERVE_PID=$!
for _ in $(seq 1 100); do [ -S "$W/docker.sock" ] && break; sleep 0.1; done
export DOCKER_HOST=unix://$W/docker.sock DOCKER_CONFIG=$W/docker-config
mkdir -p "$DOCKER_CONFIG"
# Both paths must print hello before they are timed.
[ "$(docker run --rm --network none busybox echo hello)" = hello ] || { echo "docker via hull serve failed" >&2; cat "$W/serve.log" >&2; exit 1; }
[ "$(bin/hull --root "$ROOT" run --rm --network none busybox echo hello)" = hello ] || { echo "hull run failed" >&2; exit 1; }

hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$W/api.json" \
  -n 'docker -> hull serve' "docker run --rm --network none busybox echo hello" \
  -n 'hull run' "bin/hull --root $ROOT run --rm --network none busybox echo hello"

node -e '
const r = require(process.argv[1]).results;
const med = (x) => x.median * 1000;
console.log("\nmedians (ms):");
for (const x of r) console.log(`  ${x.command.padEnd(22)} ${med(x).toFixed(1)}`);
const [api, cli] = r;
console.log(`ratio docker->hull serve / hull run: ${(med(api) / med(cli)).toFixed(2)}`);
' "$W/api.json"
left=$(docker ps -aq | wc -l)
[ "$left" = 0 ] || { echo "containers left behind: $left" >&2; exit 1; }
