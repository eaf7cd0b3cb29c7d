#!/usr/bin/env bash
# Pull the same multi-layer image (>= 100 MiB compressed, several gzip layers, the bottom one
# a static busybox so it runs) from a local docker-registry, in one hyperfine run:
#   hull          `hull pull` as by default: every blob verified into the content store and the
#                 image recorded; layers unpacked at first use (like skopeo copy / ctr content fetch)
#   hull-unpack   `hull pull --unpack`: also unpacks every layer, checked against its diff id
#                 (what docker and podman pull do)
#   hull+run      `hull pull` then the first `hull run --rm IMAGE true`, which pays the deferred
#                 unpack (and starts a container): the deferred cost made visible
#   skopeo        `skopeo copy docker://... oci:DIR`: download + verify, no unpacking
#   podman        `podman pull`: download + unpack into its overlay store
# Prints medians and ratios. Needs: docker-registry skopeo hyperfine (scripts/setup.sh); podman
# and an OCI runtime (crun or runc) for their rows.
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
echo "building and pushing the image (busybox, then layers of 48, 40, 24, 16, 8 MiB uncompressed) ..." >&2
read -r DIGEST BYTES NLAYERS < <(node dist/bench/pull-image.js "$HOST" "$IMG" 48 40 24 16 8)
echo "image $HOST/$IMG: $NLAYERS layers, $((BYTES / 1048576)) MiB compressed, $DIGEST" >&2
if [ "$BYTES" -lt $((100 * 1048576)) ]; then echo "bench/pull.sh: image smaller than 100 MiB" >&2; exit 1; fi

HULL="$REPO_DIR/bin/hull"
cmds=(
  -n hull --prepare "rm -rf $W/hull" "$HULL --root $W/hull pull -q $HOST/$IMG"
  -n hull-unpack --prepare "rm -rf $W/hullu" "$HULL --root $W/hullu pull -q --unpack $HOST/$IMG"
)
if command -v crun >/dev/null || command -v runc >/dev/null; then
  cmds+=(-n hull+run --prepare "rm -rf $W/hullr" "$HULL --root $W/hullr pull -q $HOST/$IMG && $HULL --root $W/hullr run --rm $HOST/$IMG true")
else
  echo "bench/pull.sh: no crun or runc: the hull+run row is left out" >&2
fi
cmds+=(-n skopeo --prepare "rm -rf $W/oci" "skopeo copy -q --src-tls-verify=false docker://$HOST/$IMG oci:$W/oci:latest")
if command -v podman >/dev/null; then
  PODMAN="podman --root $W/podman/root --runroot $W/podman/run --storage-driver overlay"
  cmds+=(-n podman --prepare "$PODMAN rmi -a -f >/dev/null 2>&1; rm -rf $W/podman" "$PODMAN pull -q --tls-verify=false $HOST/$IMG")
fi
hyperfine --runs "$RUNS" --warmup 1 --export-json "$W/result.json" "${cmds[@]}" >&2

node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).results;
const med = Object.fromEntries(r.map((x) => [x.command, x.median]));
const bytes = Number(process.argv[2]);
console.log("pull of " + (bytes / 1048576).toFixed(0) + " MiB, " + process.argv[3] + " layers (median of " + r[0].times.length + " runs; load average " + require("os").loadavg()[0].toFixed(1) + " on " + require("os").availableParallelism() + " CPUs):");
for (const x of r) console.log("  " + x.command.padEnd(12) + (x.median * 1000).toFixed(0).padStart(6) + " ms   " + (bytes / 1048576 / x.median).toFixed(0).padStart(5) + " MiB/s");
const ratio = (a, b, label) => { if (med[a] !== undefined && med[b] !== undefined) console.log("  " + label.padEnd(34) + (med[a] / med[b]).toFixed(2)); };
console.log("ratios:");
ratio("hull", "skopeo", "hull pull / skopeo copy");
ratio("hull-unpack", "skopeo", "hull pull --unpack / skopeo copy");
ratio("hull-unpack", "podman", "hull pull --unpack / podman pull");
ratio("hull+run", "hull-unpack", "hull pull + first run / --unpack");
ratio("hull+run", "hull", "hull pull + first run / hull pull");
' "$W/result.json" "$BYTES" "$NLAYERS"
