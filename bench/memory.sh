#!/usr/bin/env bash
# bench/memory.sh - host memory per idle detached container: N x `run -d --memory=128m busybox
# sleep 3600`, PSS of the monitor plus the container's process (from /proc/PID/smaps_rollup),
# for hull (conmon + sleep) and, side by side in the same run, podman (conmon + sleep).
# Target for hull: at most 1.5 MiB per container.
# Usage (root): bench/memory.sh        N=20 (default)        KEEP=1 keeps the work dir
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
N=${N:-20}
W=$(mktemp -d /var/tmp/hull-bench-mem.XXXXXX)
HROOT=$W/hull
HULL="$REPO/bin/hull --root $HROOT"
unified=""
if [ -n "$(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null)" ]; then unified=/sys/fs/cgroup/unified; fi
P="podman --root $W/podman/root --runroot $W/podman/run --cgroup-manager cgroupfs --events-backend file"
cleanup() {
  ids=$($HULL ps -aq 2>/dev/null || true)
  [ -n "$ids" ] && $HULL rm -f $ids >/dev/null 2>&1 || true
  if [ -d "$W/podman" ]; then
    if [ -n "$unified" ]; then unshare -m --propagation private sh -c "umount $unified; $P rm -af -t 0" >/dev/null 2>&1 || true
    else $P rm -af -t 0 >/dev/null 2>&1 || true; fi
    $P system reset -f >/dev/null 2>&1 || true
  fi
  # exit hooks (hull) and cleanup processes (podman) may still run: wait for them first
  for _ in $(seq 1 100); do pgrep -f "$W" >/dev/null || break; sleep 0.2; done
  [ "${KEEP:-0}" = 1 ] || rm -rf "$W"
}
trap cleanup EXIT
[ -f dist/src/cli/main.js ] || npx tsc -p .
[ -f build/images/busybox-rootfs.tar ] || bash scripts/make-busybox-rootfs.sh build/images

pss_kb() { awk '/^Pss:/{p=$2} END{print p+0}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
rss_kb() { awk '/^Rss:/{p=$2} END{print p+0}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }

report() {  # label monitor-pids... -- container-pids...
  local label=$1; shift
  local mons=() ctrs=() side=m
  for x in "$@"; do if [ "$x" = -- ]; then side=c; elif [ $side = m ]; then mons+=("$x"); else ctrs+=("$x"); fi; done
  local n=${#ctrs[@]} mp=0 cp=0 mr=0 cr=0 p
  for p in "${mons[@]}"; do mp=$((mp + $(pss_kb "$p"))); mr=$((mr + $(rss_kb "$p"))); done
  for p in "${ctrs[@]}"; do cp=$((cp + $(pss_kb "$p"))); cr=$((cr + $(rss_kb "$p"))); done
  [ "$n" -gt 0 ] || { echo "$label: no container running"; return; }
  awk -v l="$label" -v n="$n" -v mp="$mp" -v cp="$cp" -v mr="$mr" -v cr="$cr" 'BEGIN{
    printf "%-8s %2d running   PSS per container: %.2f MiB (monitor %.2f + process %.2f)   RSS: monitor %.2f, process %.2f MiB\n",
      l, n, (mp+cp)/n/1024, mp/n/1024, cp/n/1024, mr/n/1024, cr/n/1024 }'
}

# ---------------------------------------------------------------- hull
bash scripts/import-busybox.sh "$HROOT"
for i in $(seq 1 "$N"); do $HULL run -d --name "mem-$i" --memory=128m --network none busybox sleep 3600 >/dev/null; done
sleep 2
hm=(); hc=(); lim=0
for i in $(seq 1 "$N"); do
  read -r pid mon limit < <($HULL inspect -f '{{.State.Pid}} {{.Hull.Facts.conmonPid}} {{.HostConfig.Memory}}' "mem-$i")
  hm+=("$mon"); hc+=("$pid")
  cg=$(awk -F: '$2=="memory"{print $3}' "/proc/$pid/cgroup")
  [ "$(cat "/sys/fs/cgroup/memory$cg/memory.limit_in_bytes" 2>/dev/null)" = 134217728 ] && lim=$((lim + 1))
done
echo
echo "== idle detached containers: run -d --memory=128m busybox sleep 3600, N=$N =="
report hull "${hm[@]}" -- "${hc[@]}"
echo "         memory.limit_in_bytes = 128 MiB in $lim/$N containers' cgroups"
$HULL rm -f $($HULL ps -aq) >/dev/null

# ---------------------------------------------------------------- podman, side by side
if command -v podman >/dev/null; then
  nofile=$(ulimit -Hn); nproc=$(ulimit -Hu); [ "$nproc" = unlimited ] && nproc=32768; [ "$nproc" -gt 32768 ] && nproc=32768
  $P import -q build/images/busybox-rootfs.tar localhost/busybox:bench >/dev/null
  pm=(); pc=()
  for i in $(seq 1 "$N"); do
    cmd="$P run -d --name mem-$i --memory=128m --network none --ulimit nofile=$nofile:$nofile --ulimit nproc=$nproc:$nproc localhost/busybox:bench sleep 3600"
    # crun refuses the hybrid layout: podman runs in the same private-namespace form as hull's crun
    if [ -n "$unified" ]; then unshare -m --propagation private sh -c "umount $unified && $cmd" >/dev/null
    else $cmd >/dev/null; fi
  done
  sleep 2
  for i in $(seq 1 "$N"); do
    read -r pid mon < <($P inspect -f '{{.State.Pid}} {{.State.ConmonPid}}' "mem-$i")
    pm+=("$mon"); pc+=("$pid")
  done
  report podman "${pm[@]}" -- "${pc[@]}"
fi
echo "target: hull <= 1.5 MiB per container (monitor + process, PSS)"
