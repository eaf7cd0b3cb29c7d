#!/usr/bin/env bash
# The VM wall, side by side in one hyperfine run (TCG here; KVM where usable):
#   hull-vm-cold    hull run --rm --vm --vm-boot cold busybox echo hello   (a kernel boot; hull's start-up included)
#   hull-vm-restore hull run --rm --vm --vm-boot auto busybox echo hello   (a template restored; built before the runs)
#   hull-vm-pool    hull run --rm --vm busybox echo hello, claiming a paused guest of a warm pool of
#                   2 (`hull vm pool --size 2`; refilled to 2 before each run, which is not timed)
#   hull-container  hull run --rm busybox echo hello
#   debian-cloud    a plain QEMU microvm boot of Debian's linux-image-cloud-amd64 kernel with a
#                   busybox initramfs that prints hello and powers off (no hull at all)
# then the host memory of idle VMs: N (default 10) `hull run -d --vm -m 128m busybox sleep`,
# booted cold, then restored from one template; PSS of each QEMU from /proc/PID/smaps_rollup
# once all are up.
#   RUNS=20 IDLE_VMS=10 bash bench/vm.sh
# Needs: scripts/setup.sh done (guest kernel, busybox image), hyperfine, apt-get (the Debian
# kernel is downloaded once with `apt-get download` and cached under build/bench-vm/).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
RUNS=${RUNS:-20}
IDLE_VMS=${IDLE_VMS:-10}
C=$REPO/build/bench-vm
mkdir -p "$C"
for t in hyperfine qemu-system-x86_64 cpio busybox; do command -v $t >/dev/null || { echo "bench/vm.sh: missing $t" >&2; exit 1; }; done

# ---------------------------------------------------------------- Debian cloud kernel + hello initramfs
if ! ls "$C"/cloud/boot/vmlinuz-* >/dev/null 2>&1; then
  pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
  [ -n "$pkg" ] || { echo "bench/vm.sh: cannot resolve linux-image-cloud-amd64 (apt-get update?)" >&2; exit 1; }
  (cd "$C" && apt-get download -q "$pkg" >/dev/null && dpkg -x "$pkg"_*.deb cloud && rm -f "$pkg"_*.deb)
fi
VMLINUZ=$(ls "$C"/cloud/boot/vmlinuz-* | head -n1)
if [ ! -s "$C/hello.cpio" ]; then
  s=$(mktemp -d); mkdir -p "$s"/{bin,dev,proc}
  cp "$(command -v busybox)" "$s/bin/busybox"; ln -s busybox "$s/bin/sh"
  printf '#!/bin/sh\n/bin/busybox echo hello\n/bin/busybox reboot -f\n' > "$s/init"; chmod +x "$s/init"
  (cd "$s" && find . | cpio -o -H newc --quiet -R 0:0) > "$C/hello.cpio"; rm -rf "$s"
fi
TSC=$(awk '/^cpu MHz/{printf "%d", $4*1000; exit}' /proc/cpuinfo)
cat > "$C/debian-cloud.sh" <<EOS
#!/bin/sh
exec qemu-system-x86_64 -M microvm,pit=on,pic=on,rtc=on -accel tcg -cpu max -m 128 -smp 1 -nodefaults -no-user-config \
  -display none -no-reboot -kernel $VMLINUZ -initrd $C/hello.cpio -serial stdio \
  -append "console=ttyS0 panic=-1 reboot=t quiet tsc_early_khz=$TSC" </dev/null
EOS
chmod +x "$C/debian-cloud.sh"

# ---------------------------------------------------------------- a hull root with busybox
ROOT=$(mktemp -d /tmp/hull-bench-vm-XXXXXX)
cleanup() {
  # the warm pool first: its keeper and its paused QEMUs are not containers
  if [ -d "$ROOT/vmpool" ]; then "$REPO/bin/hull" --root "$ROOT" vm pool --size 0 >/dev/null || echo "bench/vm.sh: draining the pool failed" >&2; fi
  "$REPO/bin/hull" --root "$ROOT" ps -aq 2>/dev/null | xargs -r "$REPO/bin/hull" --root "$ROOT" rm -f >/dev/null 2>&1 || true
  # exit hooks of removed VMs may still be running against the root: let them finish first
  for _ in $(seq 100); do pgrep -f "$ROOT" >/dev/null || break; sleep 0.1; done
  if pgrep -f "$ROOT" >/dev/null; then
    echo "bench/vm.sh: processes of $ROOT are still running (left in place):" >&2; pgrep -af "$ROOT" >&2; exit 1
  fi
  rm -rf "$ROOT"
  # the root's (now empty) parent of VM cgroups: hull-vm/<first 12 hex of sha256 of the root path>
  key=$(printf %s "$ROOT" | sha256sum | cut -c1-12)
  for d in /sys/fs/cgroup/memory/hull-vm/"$key" /sys/fs/cgroup/hull-vm/"$key"; do [ ! -d "$d" ] || rmdir "$d" || echo "bench/vm.sh: $d is not empty (left in place)" >&2; done
}
trap cleanup EXIT
bash scripts/import-busybox.sh "$ROOT" >/dev/null
H="$REPO/bin/hull --root $ROOT"
[ "$($H run --rm --vm --vm-boot cold --network none busybox echo hello)" = hello ] || { echo "bench/vm.sh: hull --vm does not print hello" >&2; exit 1; }
# builds the template of this shape (the restore rows time restores only)
[ "$($H run --rm --vm --vm-boot auto --network none busybox echo hello 2>&1)" = hello ] || { echo "bench/vm.sh: a restored hull --vm does not print hello alone" >&2; exit 1; }
[ "$("$C/debian-cloud.sh" | tr -d '\r' | grep -x hello)" = hello ] || { echo "bench/vm.sh: the Debian kernel boot does not print hello" >&2; exit 1; }

# the warm pool: a foreground --rm run of its shape (128 MiB, 1 vCPU, no NIC) must claim a guest
pool_ids() { $H vm pool --format json | node -e 'let s="";process.stdin.on("data",(d)=>s+=d).on("end",()=>console.log(JSON.parse(s).guests.map((g)=>g.id).join(" ")))'; }
$H vm pool --size 2 >/dev/null
before=$(pool_ids)
out=$($H run --rm --vm --network none busybox echo hello 2>&1)
after=$(pool_ids)
[ "$out" = hello ] || { echo "bench/vm.sh: a pool run printed '$out', not hello alone" >&2; exit 1; }
claimed=0; for id in $before; do case " $after " in *" $id "*) ;; *) claimed=1 ;; esac; done
[ $claimed = 1 ] || { echo "bench/vm.sh: a pool run did not claim a pool guest (pool before: $before; after: $after); keeper.log:" >&2; tail -n 5 "$ROOT/vmpool/keeper.log" >&2; exit 1; }
$H vm pool --size 0 >/dev/null

echo "# $(date -u +%FT%TZ) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $(qemu-system-x86_64 --version | head -n1)"
echo "# accelerator: $($H run --rm --vm --network none busybox true >/dev/null; cat /run/hull/accel.json 2>/dev/null | sed -n 's/.*"reason":"\([^"]*\)".*/\1/p' || echo unknown)"
# One --prepare per row: every row but the pool's runs with the pool drained (a restore run of the
# pool's shape would claim a guest; the keeper's refills would compete with the cold boots), and
# each pool run starts from a full pool of 2 ('vm pool --size 2' waits for it; the keeper is
# started again at the first).
l0=$(wc -l < "$ROOT/vmpool/keeper.log")
hyperfine -N -w 1 -r "$RUNS" --export-json "$C/startup.json" \
  -p "$H vm pool --size 0" -p "$H vm pool --size 0" -p "$H vm pool --size 0" -p "$H vm pool --size 0" -p "$H vm pool --size 2" \
  -n hull-vm-cold "$H run --rm --vm --vm-boot cold --network none busybox echo hello" \
  -n hull-vm-restore "$H run --rm --vm --vm-boot auto --network none busybox echo hello" \
  -n hull-container "$H run --rm --network none busybox echo hello" \
  -n debian-cloud "$C/debian-cloud.sh" \
  -n hull-vm-pool "$H run --rm --vm --network none busybox echo hello" >/dev/null
# every pool run (warm-up included) claimed: of the guests the keeper made ready since, all but
# those still in the pool were claimed, and none was drained (a drained guest would count as a
# claim). A guest that failed to start never was ready: it only delayed a --prepare (not timed).
$H vm pool --size 2 >/dev/null
now=" $(pool_ids) "; claims=0
for id in $(sed -n "$((l0 + 1)),\$p" "$ROOT/vmpool/keeper.log" | sed -n 's/.* guest \([^ ]*\) ready in .*/\1/p'); do
  case "$now" in *" $id "*) ;; *) claims=$((claims + 1)) ;; esac
done
if [ "$claims" -ne $((RUNS + 1)) ] || sed -n "$((l0 + 1)),\$p" "$ROOT/vmpool/keeper.log" | grep -q 'draining guest'; then
  echo "bench/vm.sh: the hull-vm-pool row claimed $claims guests in $((RUNS + 1)) runs (or the keeper drained one); its figure is not a pool claim. keeper.log:" >&2
  tail -n 20 "$ROOT/vmpool/keeper.log" >&2; exit 1
fi
failed=$(sed -n "$((l0 + 1)),\$p" "$ROOT/vmpool/keeper.log" | grep -c 'failed to start' || true)
$H vm pool --size 0 >/dev/null
node -e '
  const r = require(process.argv[1]).results;
  const m = Object.fromEntries(r.map((x) => [x.command, x.median]));
  console.log("startup (median of " + r[0].times.length + " runs, s):");
  for (const x of r) console.log("  " + x.command.padEnd(16) + x.median.toFixed(3) + "  (min " + x.min.toFixed(3) + ", max " + x.max.toFixed(3) + ")");
  const ratio = m["hull-vm-restore"] / m["hull-vm-cold"];
  console.log("  ratio hull-vm-cold / hull-container:    " + (m["hull-vm-cold"] / m["hull-container"]).toFixed(2));
  console.log("  ratio hull-vm-restore / hull-container: " + (m["hull-vm-restore"] / m["hull-container"]).toFixed(2));
  console.log("  ratio hull-vm-pool / hull-container:    " + (m["hull-vm-pool"] / m["hull-container"]).toFixed(2));
  console.log("  ratio hull-vm-cold / debian-cloud:      " + (m["hull-vm-cold"] / m["debian-cloud"]).toFixed(2));
  console.log("  target: hull-vm-cold median <= 0.600 s -> " + (m["hull-vm-cold"] <= 0.6 ? "met" : "NOT met"));
  console.log("  target: restore <= 0.45 x cold boot: " + ratio.toFixed(2) + " -> " + (ratio <= 0.45 ? "met" : "NOT met"));
  const pr = m["hull-vm-pool"] / m["hull-container"];
  console.log("  target: pool claim <= 2 x container: " + pr.toFixed(2) + " -> " + (pr <= 2 ? "met" : "NOT met"));
' "$C/startup.json"
echo "  pool: $claims of $((RUNS + 1)) runs (warm-up included) claimed a guest; refills that failed to start a guest (retried by the keeper, between runs): $failed"

# ---------------------------------------------------------------- memory of idle VMs, cold and restored
idle() { # $1: cold|auto
  local ids=() pss=0 rss=0 n=0 id pid p r
  for i in $(seq "$IDLE_VMS"); do ids+=("$($H run -d --vm --vm-boot "$1" -m 128m --network none busybox sleep 3600)"); done
  sleep 3
  for id in "${ids[@]}"; do
    pid=$(sed -n 's/.*"pid":\([0-9]*\).*/\1/p' "$ROOT/containers/$id/vm/monitor.json")
    p=$(awk '/^Pss:/{print $2}' "/proc/$pid/smaps_rollup"); r=$(awk '/^Rss:/{print $2}' "/proc/$pid/smaps_rollup")
    pss=$((pss + p)); rss=$((rss + r)); n=$((n + 1))
  done
  $H rm -f "${ids[@]}" >/dev/null
  awk -v p=$pss -v r=$rss -v n=$n -v how="$1" -v t="$2" 'BEGIN { printf "idle VMs (%s): %d x 128 MiB, QEMU per VM: PSS %.1f MiB, RSS %.1f MiB; target PSS <= %d MiB -> %s\n", how, n, p/1024/n, r/1024/n, t, (p/1024/n <= t ? "met" : "NOT met") }'
}
idle cold 48
idle auto 30
