#!/usr/bin/env bash
# Pull the same multi-layer image (>= 100 MiB compressed, several gzip layers) from a local
# docker-registry with hull, skopeo (copy to an OCI layout: download + verify, no unpacking)
# and podman (download + unpack into its store, like hull), in one hyperfine run. The row
# "hull-fetch" is only the download phase of hull's pull (every blob verified into a content
# store; no unpacking, no image record), the part that does what skopeo copy does.
# Prints medians and ratios. Needs: docker-registry skopeo podman hyperfine (scripts/setup.sh).
# Usage: bench/pull.sh [RUNS]   (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO_DIR=$PWD
RUNS=${1:-5}
for t in docker-registry skopeo hyperfine node; do
  command -v "$t" >/dev/null || { echo "bench/pull.sh: $t is missing (run scripts/setup.sh)" >&2; exit 1; }
done
[ -f dist/bench/pull-image.js ] || npx tsc -p tsconfig.json

W=$(mktemp -d /tmp/hull-bench-pull.XXXXXX)
REG_PID=
cleanup() {
  [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null && wait "$REG_PID" 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT

PORT=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
cat >"$W/config.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $W/storage
http:
  addr: 127.0.0.1:$PORT
YAML
docker-registry serve "$W/config.yml" >"$W/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/v2/" >/dev/null 2>&1 && break; sleep 0.1; done

HOST=127.0.0.1:$PORT
IMG=bench/big:latest
echo "building and pushing the image (layers of 48, 40, 24, 16, 8 MiB uncompressed) ..." >&2
read -r DIGEST BYTES NLAYERS < <(node dist/bench/pull-image.js "$HOST" "$IMG" 48 40 24 16 8)
echo "image $HOST/$IMG: $NLAYERS layers, $((BYTES / 1048576)) MiB compressed, $DIGEST" >&2
if [ "$BYTES" -lt $((100 * 1048576)) ]; then echo "bench/pull.sh: image smaller than 100 MiB" >&2; exit 1; fi

cmds=(
  -n hull --prepare "rm -rf $W/hull" "$REPO_DIR/bin/hull --root $W/hull pull -q $HOST/$IMG"
  -n hull-fetch --prepare "rm -rf $W/fetch" "node $REPO_DIR/dist/bench/pull-image.js fetch $HOST $IMG $W/fetch"
  -n skopeo --prepare "rm -rf $W/oci" "skopeo copy -q --src-tls-verify=false docker://$HOST/$IMG oci:$W/oci:latest"
)
if command -v podman >/dev/null; then
  PODMAN="podman --root $W/podman/root --runroot $W/podman/run --storage-driver overlay"
  cmds+=(-n podman --prepare "$PODMAN rmi -a -f >/dev/null 2>&1; rm -rf $W/podman" "$PODMAN pull -q --tls-verify=false $HOST/$IMG")
fi
hyperfine --runs "$RUNS" --warmup 1 --export-json "$W/result.json" "${cmds[@]}" >&2

node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).results;
const med = Object.fromEntries(r.map((x) => [x.command, x.median]));
const bytes = Number(process.argv[2]);
console.log("pull of " + (bytes / 1048576).toFixed(0) + " MiB, " + process.argv[3] + " layers (median of " + r[0].times.length + " runs):");
for (const x of r) console.log("  " + x.command.padEnd(11) + (x.median * 1000).toFixed(0).padStart(6) + " ms   " + (bytes / 1048576 / x.median).toFixed(0).padStart(5) + " MiB/s");
console.log("  ratio hull/skopeo: " + (med.hull / med.skopeo).toFixed(2) + "   hull-fetch/skopeo: " + (med["hull-fetch"] / med.skopeo).toFixed(2) + (med.podman ? "   hull/podman: " + (med.hull / med.podman).toFixed(2) : ""));
' "$W/result.json" "$BYTES" "$NLAYERS"
