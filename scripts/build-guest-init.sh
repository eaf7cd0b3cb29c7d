#!/usr/bin/env bash
# Builds hull's guest init/agent (guest/*.c) as a small static binary and the base initramfs
# that carries it (build/guest/initramfs.cpio: /init plus the directories it mounts on).
# The per-run spec is appended to this archive by the VM driver at run time.
# Idempotent: rebuilt only when a source file or the compiler changes (hash in build/guest/init.key).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=build/guest
mkdir -p "$OUT"
exec 8>"$OUT/.init.lock"
flock 8
CC=${HULL_GUEST_CC:-}
if [ -z "$CC" ]; then
  if command -v musl-gcc >/dev/null; then CC=musl-gcc; else CC=gcc; fi   # musl: ~10x smaller
fi
SRCS=(guest/agent.c guest/layer.c guest/logfmt.c guest/net.c guest/ports.c guest/pod.c guest/rootfs.c guest/snapshot.c guest/spawn.c guest/spec.c guest/user.c)
key=$( (cat guest/*.c guest/*.h; "$CC" --version 2>&1 | head -n1; echo "$CC") | sha256sum | cut -c1-16)
if [ -s "$OUT/initramfs.cpio" ] && [ "$(cat "$OUT/init.key" 2>/dev/null)" = "$key" ]; then exit 0; fi
command -v cpio >/dev/null || { echo "build-guest-init: cpio missing (apt-get install cpio)" >&2; exit 1; }
stage=$(mktemp -d "$OUT/.stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/root"/{dev,proc,sys,mnt,hull}
"$CC" -static -Os -s -std=gnu11 -Wall -Wextra -Werror -o "$stage/root/init" "${SRCS[@]}"
(cd "$stage/root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) > "$stage/initramfs.cpio"
cp "$stage/root/init" "$OUT/hull-init.tmp" && mv "$OUT/hull-init.tmp" "$OUT/hull-init"
mv "$stage/initramfs.cpio" "$OUT/initramfs.cpio"
echo "$key" > "$OUT/init.key"
[ "${HULL_SETUP_QUIET:-}" = 1 ] || echo "[guest-init] built $OUT/initramfs.cpio ($(stat -c %s "$OUT/hull-init") byte init, $CC)" >&2
