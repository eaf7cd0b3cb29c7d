#!/usr/bin/env bash
# bench/network.sh - hull's networks side by side with podman's (netavark), in ONE run:
#
#  1. start-up: `run --rm busybox true` with the default bridge and with --network none, for hull
#     and for podman (temp roots; hyperfine, medians). Target: hull's bridge start <= 0.5 x podman's.
#  2. request latency (a small file, REQS requests one after another, each a new TCP connection:
#     busybox httpd closes it) and throughput (a MIB MiB file, 3 downloads, median) of a busybox
#     httpd server:
#       host -> container   curl to 127.0.0.1:<published port>   hull and podman
#       host -> VM          the same into a hull microVM          (podman: no VM; its container row is the reference)
#       container -> VM     busybox wget in a hull container, by name on a user network
#       container -> container  the same to a container (hull), or to the server's address (podman)
#     In-guest timings come from busybox `time` (10 ms resolution; a loop of REQS requests).
#
# Traffic goes only to 127.0.0.1 and to the bridges the two engines make here.
# Usage (root): bench/network.sh     RUNS=20 REQS=100 MIB=100 bench/network.sh     KEEP=1 (keep the work dir)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
# podman's crun refuses a cgroup v1 hybrid host: like /work/shared/anchors, the whole benchmark
# runs in one private mount namespace with /sys/fs/cgroup/unified unmounted, so every later
# podman call (inspect, its exit cleanup) sees the network namespaces podman mounted there
if [ -z "${HULL_BENCH_INNER:-}" ] && [ -n "$(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null)" ]; then
  exec unshare -m --propagation private env HULL_BENCH_INNER=1 bash -c 'umount /sys/fs/cgroup/unified && exec bash "$0" "$@"' "$REPO/bench/network.sh" "$@"
fi
RUNS=${RUNS:-10}
REQS=${REQS:-50}
MIB=${MIB:-100}
W=$(mktemp -d /var/tmp/hull-bench-net.XXXXXX)
RES=$W/results; mkdir -p "$RES"
HROOT=$W/hull
H="$REPO/bin/hull --root $HROOT"
P="podman --root $W/podman/root --runroot $W/podman/run --cgroup-manager cgroupfs --events-backend file"
nofile=$(ulimit -Hn); nproc=$(ulimit -Hu); [ "$nproc" = unlimited ] && nproc=32768; [ "$nproc" -gt 32768 ] && nproc=32768
PU="--ulimit nofile=$nofile:$nofile --ulimit nproc=$nproc:$nproc"
pod() { $P "$@"; }
podman_cmd() { printf '%s' "$P $*"; }
TAG=$(node -e 'console.log(require("crypto").createHash("sha256").update(require("path").resolve(process.argv[1])).digest("hex").slice(0, 6))' "$HROOT")

cleanup() {
  $H rm -f hsrv hvm >/dev/null 2>&1 || true
  $H network rm benchnet >/dev/null 2>&1 || true
  [ -d "$W/podman" ] && $P rm -af >/dev/null 2>&1 || true
  [ -d "$W/podman" ] && $P system reset -f >/dev/null 2>&1 || true
  # hull removes an idle bridge a second after its last container (src/network/idle.ts)
  for _ in $(seq 1 100); do pgrep -f "$W" >/dev/null || pgrep -f "locks/network-$TAG" >/dev/null || break; sleep 0.2; done
  if [ "${KEEP:-0}" != 1 ]; then
    umount -R "$W/podman/root/overlay" >/dev/null 2>&1 || true
    rm -rf "$W"
  fi
}
trap cleanup EXIT
for t in hyperfine curl podman node; do command -v $t >/dev/null || { echo "bench/network.sh: $t is missing" >&2; exit 1; }; done
[ -f build/images/busybox-rootfs.tar ] || bash scripts/make-busybox-rootfs.sh build/images

bash scripts/import-busybox.sh "$HROOT" >/dev/null
$P import -q build/images/busybox-rootfs.tar localhost/busybox:bench >/dev/null
# first runs fill caches (hull's seccomp filter, podman's network config), as any user's first run does
$H run --rm busybox true
$H run --rm --network none busybox true
pod run --rm $PU localhost/busybox:bench true
pod run --rm --network none $PU localhost/busybox:bench true

# ---------------------------------------------------------------- 1. start-up
hyperfine -N --style basic --warmup 2 --runs "$RUNS" --export-json "$RES/start.json" \
  -n hull-bridge "$H run --rm busybox true" \
  -n hull-none "$H run --rm --network none busybox true" \
  -n podman-bridge "$(podman_cmd run --rm $PU localhost/busybox:bench true)" \
  -n podman-none "$(podman_cmd run --rm --network none $PU localhost/busybox:bench true)" >&2

# ---------------------------------------------------------------- 2. servers
free_port() { node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
PC=$(free_port); PV=$(free_port); PP=$(free_port)
SERVE="mkdir -p /www && echo x > /www/small && dd if=/dev/zero of=/www/big bs=1M count=$MIB 2>/dev/null && exec httpd -f -p 80 -h /www"
$H network create benchnet >/dev/null
$H run -d --name hsrv --network benchnet -p "127.0.0.1:$PC:80" busybox sh -c "$SERVE" >/dev/null
$H run -d --vm -m 512m --name hvm --network benchnet -p "127.0.0.1:$PV:80" busybox sh -c "$SERVE" >/dev/null
pod run -d --name psrv -p "127.0.0.1:$PP:80" $PU localhost/busybox:bench sh -c "$SERVE" >/dev/null
PIP=$(pod inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' psrv)
for p in $PC $PV $PP; do
  for _ in $(seq 1 600); do curl -sf -o /dev/null "http://127.0.0.1:$p/big" && break; sleep 0.2; done
done

# host -> server: per-request latency (median, ms) and throughput (median of 3, MiB/s)
host_lat() { for _ in $(seq 1 "$REQS"); do curl -s -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$1/small"; done | sort -n | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)]*1000}'; }
host_tput() { for _ in 1 2 3; do curl -s -o /dev/null -w '%{speed_download}\n' "http://127.0.0.1:$1/big"; done | sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[2]/1048576}'; }
# in a client: `time` of a loop (10 ms resolution) -> ms per request; of one download -> MiB/s
GUEST_LAT='s() { sed -n "s/^real[^0-9]*\([0-9]*\)m \([0-9.]*\)s.*/\1 \2/p"; }; ( time sh -c "for i in \$(seq '"$REQS"'); do wget -q -O /dev/null http://$T/small; done" ) 2>&1 | s'
GUEST_TPUT='s() { sed -n "s/^real[^0-9]*\([0-9]*\)m \([0-9.]*\)s.*/\1 \2/p"; }; for i in 1 2 3; do ( time wget -q -O /dev/null http://$T/big ) 2>&1 | s; done'
lat_of() { awk -v n="$REQS" '{printf "%.2f", ($1*60+$2)*1000/n}'; }
tput_of() { awk '{print $1*60+$2}' | sort -n | sed -n 2p | awk -v m="$MIB" '{printf "%.1f", ($1 > 0 ? m/$1 : 0)}'; }
guest() { # wall target -> "latency throughput"
  local lat tput
  if [ "$1" = podman ]; then
    lat=$(pod run --rm $PU -e T="$2" localhost/busybox:bench sh -c "$GUEST_LAT" | lat_of)
    tput=$(pod run --rm $PU -e T="$2" localhost/busybox:bench sh -c "$GUEST_TPUT" | tput_of)
  else
    lat=$($H run --rm --network benchnet -e T="$2" busybox sh -c "$GUEST_LAT" | lat_of)
    tput=$($H run --rm --network benchnet -e T="$2" busybox sh -c "$GUEST_TPUT" | tput_of)
  fi
  echo "$lat $tput"
}

{
  echo "path hull_lat hull_tput podman_lat podman_tput"
  echo "host->container $(host_lat "$PC") $(host_tput "$PC") $(host_lat "$PP") $(host_tput "$PP")"
  echo "host->VM $(host_lat "$PV") $(host_tput "$PV") - -"
  read -r gl gt < <(guest podman "$PIP")
  echo "container->container $(guest hull hsrv) $gl $gt"
  echo "container->VM $(guest hull hvm) $gl $gt"
} > "$RES/paths.txt"

# ---------------------------------------------------------------- report
node -e '
const fs = require("fs");
const r = JSON.parse(fs.readFileSync(process.argv[1])).results;
const med = Object.fromEntries(r.map((x) => [x.command, x.median * 1000]));
console.log(`\n== start of run --rm busybox true: ${r[0].times.length} runs each, medians (ms) ==`);
console.log("engine     bridge     none   network costs");
for (const e of ["hull", "podman"]) {
  const b = med[`${e}-bridge`], n = med[`${e}-none`];
  console.log(`${e.padEnd(8)}${b.toFixed(1).padStart(9)}${n.toFixed(1).padStart(9)}${(b - n).toFixed(1).padStart(10)} ms`);
}
const ratio = med["hull-bridge"] / med["podman-bridge"];
console.log(`hull bridge / podman bridge: ${ratio.toFixed(2)} (target <= 0.5: ${ratio <= 0.5 ? "met" : "NOT met"})`);
const rows = fs.readFileSync(process.argv[2], "utf8").trim().split("\n").slice(1).map((l) => l.split(" "));
console.log(`\n== requests: latency = median ms per request (${process.argv[3]} requests, new connection each), throughput = MiB/s (${process.argv[4]} MiB file, median of 3) ==`);
console.log("path                    hull ms   hull MiB/s   podman ms  podman MiB/s   (podman: its container is the reference for VM rows)");
for (const [p, hl, ht, pl, pt] of rows) console.log(`${p.padEnd(22)}${hl.padStart(9)}${ht.padStart(13)}${pl.padStart(12)}${pt.padStart(14)}`);
' "$RES/start.json" "$RES/paths.txt" "$REQS" "$MIB"
echo "load average during the run: $(cut -d" " -f1-3 /proc/loadavg)"
