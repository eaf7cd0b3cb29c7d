#!/usr/bin/env bash
# bench/kernel-compare.sh OLD_VMLINUX NEW_VMLINUX - what a guest kernel change costs a VM that
# does not use it: `run --rm --vm --network none busybox true` (no NIC attached) with each kernel,
# interleaved run by run in both orders (the second run of a pair is slower here: order matters),
# medians and the median paired difference per order; then 3 idle 128 MiB VMs per kernel, QEMU's
# PSS and the guest's MemTotal. Used for the network options (guest/kernel.config, issue 12):
# target no more than +10 ms and +2 MiB.
#   N=30 bench/kernel-compare.sh /var/cache/hull/guest/kernel-A/vmlinux /var/cache/hull/guest/kernel-B/vmlinux
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=${1:?usage: kernel-compare.sh OLD_VMLINUX NEW_VMLINUX}; NEW=${2:?usage: kernel-compare.sh OLD_VMLINUX NEW_VMLINUX}
N=${N:-30}
T=$(mktemp -d /var/tmp/hull-kcmp.XXXXXX)
trap 'bin/hull --root "$T" rm -f $(bin/hull --root "$T" ps -aq) >/dev/null 2>&1 || true; rm -rf "$T"' EXIT
bash scripts/import-busybox.sh "$T" >/dev/null
run() { HULL_VM_KERNEL=$1 bin/hull --root "$T" run --rm --vm --network none busybox true; }
for k in "$OLD" "$NEW"; do run "$k"; done
ms() { local s e; s=$(date +%s%N); run "$1"; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
for order in "old new" "new old"; do
  : > "$T/times"
  for _ in $(seq "$N"); do
    for k in $order; do K=$OLD; [ "$k" = new ] && K=$NEW; echo "$k $(ms "$K")" >> "$T/times"; done
  done
  node -e '
    const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map((l) => l.split(" "));
    const med = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor((s.length - 1) / 2)]; };
    const o = rows.filter((r) => r[0] === "old").map((r) => +r[1]), n = rows.filter((r) => r[0] === "new").map((r) => +r[1]);
    console.log(`order ${process.argv[2]}: median old ${med(o)} ms, new ${med(n)} ms, paired new-old ${med(n.map((x, i) => x - o[i]))} ms`);
  ' "$T/times" "$order"
done
for k in old new; do
  K=$OLD; [ $k = new ] && K=$NEW
  ids=(); for _ in 1 2 3; do ids+=("$(HULL_VM_KERNEL=$K bin/hull --root "$T" run -d --vm --network none -m 128m busybox sleep 600)"); done
  sleep 5
  pss=0
  for id in "${ids[@]}"; do
    pid=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).pid)' "$T/containers/$id/vm/monitor.json")
    pss=$((pss + $(awk '/^Pss:/{print $2}' "/proc/$pid/smaps_rollup")))
  done
  echo "$k: idle VM QEMU PSS $((pss / 3)) KiB; guest $(bin/hull --root "$T" exec "${ids[0]}" grep MemTotal /proc/meminfo | tr -s ' ')"
  bin/hull --root "$T" rm -f "${ids[@]}" >/dev/null
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
