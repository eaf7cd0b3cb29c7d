#!/usr/bin/env bash
# bench/run.sh - `hull run --rm busybox echo hello` side by side with the OCI runtimes and podman,
# timed by hyperfine in ONE run (same machine, same minute), medians and ratios.
#
#   hull     hull run --rm --network none busybox echo hello (temp hull root, busybox imported;
#            no network, like podman below: bench/network.sh measures the bridge)
#   hull-userns  the same with --userns=auto (its own id range, idmapped layers, no-new-privileges)
#   crun     crun run of an equal bundle: the same busybox root, read-only, `crun spec` defaults;
#            on a cgroup v1 hybrid host in the form crun needs there (private mount namespace
#            with /sys/fs/cgroup/unified unmounted: `unshare -m` + umount + crun)
#   runc     runc run of the same bundle
#   podman   podman run --rm --network none (temp podman root, busybox imported into it,
#            ulimits clamped to this host's hard limits as /work/shared/anchors/containers.sh does;
#            on a hybrid host in the same private-mount-namespace form as crun)
#
# Note what differs: hull's containers get docker's seccomp profile, an overlay root and a
# SQLite record; the bare crun/runc bundle has neither seccomp nor overlay.
# Usage (root): bench/run.sh            RUNS=30 bench/run.sh            KEEP=1 (keep the work dir)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
RUNS=${RUNS:-20}
W=$(mktemp -d /var/tmp/hull-bench-run.XXXXXX)
# --userns=auto: the container's root (an unprivileged host uid) must pass through to its root
chmod 0711 "$W"
RES=$W/results; mkdir -p "$RES"
cleanup() {
  for rt in crun runc; do
    for id in $($rt --root "$W/rt-$rt" list -q 2>/dev/null); do $rt --root "$W/rt-$rt" delete -f "$id" >/dev/null 2>&1 || true; done
  done
  [ -d "$W/podman" ] && podman --root "$W/podman/root" --runroot "$W/podman/run" rm -af >/dev/null 2>&1 || true
  [ -d "$W/podman" ] && podman --root "$W/podman/root" --runroot "$W/podman/run" system reset -f >/dev/null 2>&1 || true
  for _ in $(seq 1 100); do pgrep -f "$W" >/dev/null || break; sleep 0.2; done
  if [ "${KEEP:-0}" != 1 ]; then
    umount -R "$W/podman/root/overlay" >/dev/null 2>&1 || true
    rm -rf "$W"
  fi
}
trap cleanup EXIT
command -v hyperfine >/dev/null || { echo "hyperfine is missing (apt-get install hyperfine)" >&2; exit 1; }
[ -f dist/src/cli/main.js ] || npx tsc -p .
[ -f build/images/busybox-rootfs.tar ] || bash scripts/make-busybox-rootfs.sh build/images

# ---------------------------------------------------------------- hull
HROOT=$W/hull
bash scripts/import-busybox.sh "$HROOT"
HULL="$REPO/bin/hull --root $HROOT"
# the first run of a root compiles the seccomp profile once and caches it, as any user's first run does
$HULL run --rm --network none busybox echo hello >/dev/null
$HULL run --rm --network none --userns auto busybox echo hello >/dev/null

# ---------------------------------------------------------------- the equal bundle
ROOTFS=$W/rootfs; BUNDLE=$W/bundle
mkdir -p "$ROOTFS" "$BUNDLE"
tar -C "$ROOTFS" -xf build/images/busybox-rootfs.tar
(cd "$BUNDLE" && crun spec)
node -e '
const fs=require("fs"); const f=process.argv[1]; const c=JSON.parse(fs.readFileSync(f));
c.process.terminal=false; c.process.args=["echo","hello"]; c.root={path:process.argv[2],readonly:true};
fs.writeFileSync(f, JSON.stringify(c));' "$BUNDLE/config.json" "$ROOTFS"
unified=""
if [ -n "$(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null)" ]; then unified=/sys/fs/cgroup/unified; fi
# a unique container id per call; on a hybrid host crun in a private mount namespace
cat > "$W/crun.sh" <<EOS
#!/bin/sh
if [ -n "$unified" ]; then
  exec unshare -m --propagation private sh -c 'umount $unified && exec crun --root $W/rt-crun run -b $BUNDLE b-\$\$'
fi
exec crun --root $W/rt-crun run -b $BUNDLE b-\$\$
EOS
cat > "$W/runc.sh" <<EOS
#!/bin/sh
exec runc --root $W/rt-runc run -b $BUNDLE b-\$\$
EOS
chmod +x "$W/crun.sh" "$W/runc.sh"

# ---------------------------------------------------------------- podman (temp root)
PODMAN=""
if command -v podman >/dev/null; then
  nofile=$(ulimit -Hn); nproc=$(ulimit -Hu); [ "$nproc" = unlimited ] && nproc=32768; [ "$nproc" -gt 32768 ] && nproc=32768
  P="podman --root $W/podman/root --runroot $W/podman/run --cgroup-manager cgroupfs --events-backend file"
  if $P import -q build/images/busybox-rootfs.tar localhost/busybox:bench >/dev/null 2>"$RES/podman-import.err"; then
    PODMAN="$P run --rm --network none --ulimit nofile=$nofile:$nofile --ulimit nproc=$nproc:$nproc localhost/busybox:bench echo hello"
    if [ -n "$unified" ]; then
      # podman's crun refuses the hybrid layout too: the same private-namespace form
      printf '#!/bin/sh\nexec unshare -m --propagation private sh -c %s\n' "'umount $unified && exec $PODMAN'" > "$W/podman.sh"
      chmod +x "$W/podman.sh"; PODMAN=$W/podman.sh
    fi
    $PODMAN >/dev/null 2>"$RES/podman-check.err" || { echo "podman check run failed: $(tail -n2 "$RES/podman-check.err")" >&2; PODMAN=""; }
  else
    echo "podman import failed: $(tail -n2 "$RES/podman-import.err")" >&2
  fi
fi

cmds=(-n hull "$HULL run --rm --network none busybox echo hello" -n hull-userns "$HULL run --rm --network none --userns auto busybox echo hello" -n crun "$W/crun.sh" -n runc "$W/runc.sh")
[ -n "$PODMAN" ] && cmds+=(-n podman "$PODMAN")
hyperfine -N --style basic --warmup 3 --runs "$RUNS" --export-json "$RES/run.json" "${cmds[@]}" >&2

node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1])).results;
const med = Object.fromEntries(r.map((x) => [x.command, x.median * 1000]));
console.log(`\n== run --rm busybox echo hello: ${r[0].times.length} runs each, medians (ms) ==`);
console.log("tool          median     min     max   x crun   hull / tool");
for (const x of r) {
  const m = x.median * 1000;
  console.log(`${x.command.padEnd(12)}${m.toFixed(1).padStart(8)}${(x.min * 1000).toFixed(1).padStart(8)}${(x.max * 1000).toFixed(1).padStart(8)}${(m / med.crun).toFixed(2).padStart(9)}${(med.hull / m).toFixed(2).padStart(14)}`);
}
const ok100 = med.hull <= 100, okP = med.podman === undefined ? null : med.hull <= 0.75 * med.podman;
if (med["hull-userns"] !== undefined) console.log(`\n--userns=auto start-up: ${med["hull-userns"].toFixed(1)} ms, ${(med["hull-userns"] / med.hull).toFixed(2)} x the default (${(med["hull-userns"] - med.hull).toFixed(1)} ms more)`);
console.log(`\ntargets: hull median <= 100 ms: ${ok100 ? "met" : "NOT met"} (${med.hull.toFixed(1)} ms)` +
  (okP === null ? "; podman not measured" : `; hull <= 0.75 x podman: ${okP ? "met" : "NOT met"} (${(med.hull / med.podman).toFixed(2)} x)`));
' "$RES/run.json"
echo "load average during the run: $(cut -d" " -f1-3 /proc/loadavg)"
