#!/usr/bin/env bash
# Builds hull's host-side helpers (native/*.c) into build/bin/: hull-tapfd, which opens a VM's
# tap devices inside its network namespace for QEMU (src/network/vm-tap.ts).
# Idempotent: rebuilt only when a source or the compiler changes (hash in build/bin/native.key).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=build/bin
mkdir -p "$OUT"
exec 8>"$OUT/.native.lock"
flock 8
CC=${CC:-gcc}
key=$( (cat native/*.c; "$CC" --version 2>&1 | head -n1) | sha256sum | cut -c1-16)
if [ -x "$OUT/hull-tapfd" ] && [ "$(cat "$OUT/native.key" 2>/dev/null)" = "$key" ]; then exit 0; fi
"$CC" -O2 -std=gnu11 -Wall -Wextra -Werror -o "$OUT/hull-tapfd.tmp" native/hull-tapfd.c
mv "$OUT/hull-tapfd.tmp" "$OUT/hull-tapfd"
echo "$key" > "$OUT/native.key"
[ "${HULL_SETUP_QUIET:-}" = 1 ] || echo "[native] built $OUT/hull-tapfd" >&2
