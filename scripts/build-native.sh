#!/usr/bin/env bash
# Builds hull's host-side helpers (native/*.c) into build/bin/:
#   hull-tapfd   opens a VM's tap devices inside its network namespace for QEMU (src/network/vm-tap.ts)
#   hull-vmmux   lets many host callers share one VM's control port (src/runtime/vm/control.ts);
#                static with musl where musl-gcc is installed (one per running VM: ~0.1 MiB)
#   hull-inroot  runs a static host program (busybox tar, stat) chrooted into a container's root
#                filesystem (docker cp: src/runtime/container/inroot.ts)
#   hull-console the terminal of a foreground crun run/exec with a TTY (src/runtime/container/console.ts)
#   hull-attach  stdin into a detached container through conmon's attach socket (src/runtime/container/attach.ts)
#   hull-idmap   idmapped layer mounts for --userns=auto containers (src/runtime/container/userns.ts)
# Idempotent: rebuilt only when a source or the compiler changes (hash in build/bin/native.key).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=build/bin
mkdir -p "$OUT"
exec 8>"$OUT/.native.lock"
flock 8
CC=${CC:-gcc}
SMALL_CC=$(command -v musl-gcc >/dev/null && echo musl-gcc || echo "$CC")
key=$( (cat native/*.c native/*.h; "$CC" --version 2>&1 | head -n1; echo "$SMALL_CC") | sha256sum | cut -c1-16)
if [ -x "$OUT/hull-tapfd" ] && [ -x "$OUT/hull-vmmux" ] && [ -x "$OUT/hull-inroot" ] && [ -x "$OUT/hull-console" ] && [ -x "$OUT/hull-idmap" ] && [ -x "$OUT/hull-attach" ] && [ "$(cat "$OUT/native.key" 2>/dev/null)" = "$key" ]; then exit 0; fi
"$CC" -O2 -std=gnu11 -Wall -Wextra -Werror -o "$OUT/hull-tapfd.tmp" native/hull-tapfd.c
mv "$OUT/hull-tapfd.tmp" "$OUT/hull-tapfd"
"$SMALL_CC" -static -Os -s -std=gnu11 -Wall -Wextra -Werror -o "$OUT/hull-vmmux.tmp" native/hull-vmmux.c
mv "$OUT/hull-vmmux.tmp" "$OUT/hull-vmmux"
"$SMALL_CC" -static -Os -s -std=gnu11 -Wall -Wextra -Werror -o "$OUT/hull-inroot.tmp" native/hull-inroot.c
mv "$OUT/hull-inroot.tmp" "$OUT/hull-inroot"
"$SMALL_CC" -static -Os -s -std=gnu11 -Wall -Wextra -Werror -o "$OUT/hull-console.tmp" native/hull-console.c
mv "$OUT/hull-console.tmp" "$OUT/hull-console"
"$SMALL_CC" -static -Os -s -std=gnu11 -Wall -Wextra -Werror -o "$OUT/hull-idmap.tmp" native/hull-idmap.c
mv "$OUT/hull-idmap.tmp" "$OUT/hull-idmap"
"$SMALL_CC" -static -Os -s -std=gnu11 -Wall -Wextra -Werror -o "$OUT/hull-attach.tmp" native/hull-attach.c
mv "$OUT/hull-attach.tmp" "$OUT/hull-attach"
echo "$key" > "$OUT/native.key"
[ "${HULL_SETUP_QUIET:-}" = 1 ] || echo "[native] built $OUT/hull-tapfd, $OUT/hull-vmmux, $OUT/hull-inroot, $OUT/hull-console, $OUT/hull-idmap, $OUT/hull-attach" >&2
