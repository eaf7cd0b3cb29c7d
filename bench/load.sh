#!/usr/bin/env bash
# Load the same ~100 MiB multi-layer image with `hull load` and with `podman load`, side by side
# in one hyperfine run, each into a fresh store every time (blob store + unpacked layers).
# podman uses a throw-away storage root with its default overlay driver (the user's store is
# never touched); hull a throw-away --root.
# Usage: bench/load.sh [TOTAL_MIB=100] [LAYERS=4] [RUNS=5]
# Prints the medians and the ratio hull/podman (target: <= 1.0).
set -euo pipefail
cd "$(dirname "$0")/.."
total=${1:-100}
nlayers=${2:-4}
runs=${3:-5}
command -v hyperfine >/dev/null || { echo "hyperfine is missing (apt-get install hyperfine)" >&2; exit 1; }
command -v podman >/dev/null || { echo "podman is missing (apt-get install podman)" >&2; exit 1; }
[ -x bin/hull ] && [ -f dist/src/cli/main.js ] || { echo "build first: bash scripts/setup.sh" >&2; exit 1; }

work=$(mktemp -d /var/tmp/hull-bench-load.XXXXXX)
cleanup() {
  # podman's overlay storage may hold mounts under its root: unmount them before removing.
  { grep -o " $work[^ ]*" /proc/self/mountinfo || true; } | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
img=$work/image.tar
echo "making a ${total} MiB image with ${nlayers} gzip layers..." >&2
id=$(bash bench/load-make-image.sh "$img" "$total" "$nlayers")
echo "image $id, archive $(du -m "$img" | cut -f1) MiB" >&2

hroot=$work/hull
proot=$work/podman
pod="podman --root $proot/root --runroot $proot/run --storage-driver overlay"
# Check both load it and agree on the id before timing anything.
bin/hull --root "$hroot" load -q -i "$img"
got=$(bin/hull --root "$hroot" images -q --no-trunc)
[ "$got" = "$id" ] || { echo "hull loaded $got, expected $id" >&2; exit 1; }
$pod load -q -i "$img" >/dev/null
pgot=sha256:$($pod images -q --no-trunc | head -n1 | sed 's/^sha256://')
[ "$pgot" = "$id" ] || { echo "podman loaded $pgot, expected $id" >&2; exit 1; }

json=$work/result.json
hyperfine --runs "$runs" --warmup 1 --export-json "$json" \
  --prepare "rm -rf $hroot; $pod rmi -a -f >/dev/null 2>&1 || true; sync" \
  -n hull "bin/hull --root $hroot load -q -i $img" \
  -n podman "$pod load -q -i $img" >&2

node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).results;
const med = Object.fromEntries(r.map((x) => [x.command, x.median]));
for (const x of r) console.log(`${x.command.padEnd(8)} median ${(x.median * 1000).toFixed(0)} ms  (min ${(x.min * 1000).toFixed(0)}, max ${(x.max * 1000).toFixed(0)})`);
console.log(`ratio hull/podman: ${(med.hull / med.podman).toFixed(2)} (target <= 1.00)`);
' "$json"
