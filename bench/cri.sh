#!/usr/bin/env bash
# Kubernetes' view of a pod start, hull-vm against runc in one run, through a real containerd
# (Debian's 1.6, started here with a temporary config, root, state, sockets and CNI bridge):
#   time from RunPodSandbox to the first container's first output line in its CRI log
#   (median of RUNS, interleaved run by run), and the host memory (PSS) one idle pod adds:
#   hull-vm = shim + QEMU + virtiofsd, runc = shim + pause. The memory figure is what a
#   RuntimeClass's overhead.podFixed must cover (docs/kubernetes.md).
# Needs: scripts/setup.sh done (containerd, CNI plugins, guest kernel, the build).
# Usage: bench/cri.sh [RUNS]   (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
for t in containerd ctr node; do
  command -v "$t" >/dev/null || { echo "bench/cri.sh: $t is missing (run scripts/setup.sh)" >&2; exit 1; }
done
[ -f dist/bench/cri.js ] && [ ! bench/cri.ts -nt dist/bench/cri.js ] || npx tsc -p tsconfig.json
exec node dist/bench/cri.js "${1:-5}"
