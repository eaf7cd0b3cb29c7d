#!/usr/bin/env bash
# Every benchmark in one go (`npm run bench`), each printing medians and ratios against its peers
# measured in the same run. The output is also kept in bench/results/<UTC time>.txt.
#   ONLY="run vm" npm run bench     run a subset (names: run memory vm load pull api network build)
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/results
out=bench/results/$(date -u +%Y%m%dT%H%M%SZ).txt
{
  rc=0
  echo "# hull benchmarks, $(date -u +%FT%TZ)"
  echo "# machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
  for b in ${ONLY:-run memory vm load pull api network build}; do
    echo; echo "## bench/$b.sh"
    bash "bench/$b.sh" || { echo "bench/$b.sh failed"; rc=1; }
  done
  exit $rc
} 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
echo "results kept in $out"
exit "$rc"
