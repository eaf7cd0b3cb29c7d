#!/usr/bin/env bash
# A small multi-step build (FROM busybox, ENV, WORKDIR, two COPYs, three RUNs, CMD), cold
# (--no-cache: every step runs) and fully cached, side by side in one hyperfine run for
#   hull          RUN steps in containers (crun)
#   hull --vm     RUN steps in microVMs (TCG here)
#   podman build  buildah, private storage root (overlay driver), --network none (skipped when not installed)
# Each with its own throw-away store holding the same busybox image (hull save | podman load).
# Usage: bench/build.sh [RUNS=5]   Prints medians and the ratios hull/podman, vm/container.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
command -v hyperfine >/dev/null || { echo "hyperfine is missing (apt-get install hyperfine)" >&2; exit 1; }
[ -x bin/hull ] && [ -f dist/src/cli/main.js ] || { echo "build first: bash scripts/setup.sh" >&2; exit 1; }

work=$(mktemp -d /var/tmp/hull-bench-build.XXXXXX)
prun=$(mktemp -d /tmp/hbb-XXXX) # podman wants a short runroot
cleanup() {
  { grep -o " $work[^ ]*" /proc/self/mountinfo || true; } | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$work" "$prun"
}
trap cleanup EXIT

ctx=$work/ctx
mkdir -p "$ctx/src"
for i in 1 2 3 4 5; do head -c 65536 /dev/urandom | base64 > "$ctx/src/file$i.txt"; done
echo 'echo app' > "$ctx/app.sh"
cat > "$ctx/Dockerfile" <<'EOF'
FROM busybox
ENV APP_HOME=/srv/app
WORKDIR /srv/app
COPY src/ ./src/
COPY app.sh ./
RUN chmod +x app.sh && mkdir -p /var/cache/app && cat src/*.txt | md5sum > /var/cache/app/sum
RUN adduser -D -H builder 2>/dev/null || true; ls -la /srv/app > /srv/app/listing
RUN sh ./app.sh > /srv/app/out
CMD ["sh", "/srv/app/app.sh"]
EOF

hroot=$work/hull
bash scripts/import-busybox.sh "$hroot" >/dev/null
hb="bin/hull --root $hroot build -q"
# check each builds the image before timing
$hb -t bench-ct "$ctx" >/dev/null
[ "$(bin/hull --root "$hroot" run --rm bench-ct)" = app ] || { echo "the hull-built image does not run" >&2; exit 1; }
$hb --vm -t bench-vm "$ctx" >/dev/null

cmds=(-n "hull cold" "$hb --no-cache $ctx" -n "hull cached" "$hb $ctx"
      -n "hull --vm cold" "$hb --vm --no-cache $ctx" -n "hull --vm cached" "$hb --vm $ctx")
if command -v podman >/dev/null; then
  hybrid=""
  if [ -d /sys/fs/cgroup/unified ] && [ ! -e /sys/fs/cgroup/cgroup.controllers ]; then hybrid="--runtime runc"; fi
  pod="podman --root $work/podman --runroot $prun --storage-driver overlay --cgroup-manager cgroupfs --events-backend none --log-level error $hybrid"
  bin/hull --root "$hroot" save busybox | $pod load -q >/dev/null
  pb="$pod build -q --network none --layers"
  $pb -t bench-pm "$ctx" >/dev/null
  cmds+=(-n "podman cold" "$pb --no-cache $ctx" -n "podman cached" "$pb $ctx")
else
  echo "podman is not installed: no podman build row" >&2
fi

json=$work/result.json
hyperfine --runs "$runs" --warmup 1 --export-json "$json" "${cmds[@]}" >&2

node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).results;
const med = Object.fromEntries(r.map((x) => [x.command, x.median]));
for (const x of r) console.log(`${x.command.padEnd(18)} median ${(x.median * 1000).toFixed(0)} ms  (min ${(x.min * 1000).toFixed(0)}, max ${(x.max * 1000).toFixed(0)})`);
const ratio = (a, b) => (med[a] && med[b] ? (med[a] / med[b]).toFixed(2) : "n/a");
console.log(`ratio hull/podman: cold ${ratio("hull cold", "podman cold")}, cached ${ratio("hull cached", "podman cached")}`);
console.log(`ratio hull --vm / hull: cold ${ratio("hull --vm cold", "hull cold")}, cached ${ratio("hull --vm cached", "hull cached")}`);
' "$json"
