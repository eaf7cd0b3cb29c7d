#!/usr/bin/env bash
# Builds hull's guest kernel: Debian's linux-source plus guest/kernel-patches/*.patch,
# `make tinyconfig` merged with guest/kernel.config, no modules, uncompressed vmlinux (booted by
# QEMU microvm via PVH), compiled with KCFLAGS_GUEST (below).
#
# Idempotent and cached per machine: the result lives in $HULL_CACHE_DIR/guest/kernel-<key>/vmlinux
# (default /var/cache/hull), where <key> is the linux-source package version plus the hash of the
# fragment, the patches and the extra compiler flags, so every checkout on the machine (a fresh CI
# clone too) shares one build; build/guest/vmlinux points at the current one. A rerun with the same
# key does nothing.
#   HULL_KERNEL_JOBS=N   parallel make jobs (default: nproc)
#   HULL_CACHE_DIR=DIR   machine-wide build cache (default /var/cache/hull)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
OUT=$REPO/build/guest
FRAG=$REPO/guest/kernel.config
say() { [ "${HULL_SETUP_QUIET:-}" = 1 ] || printf '[guest-kernel] %s\n' "$*" >&2; }
CACHE=${HULL_CACHE_DIR:-/var/cache/hull}/guest
mkdir -p "$OUT" "$CACHE"
exec 8>"$CACHE/.kernel.lock"
flock 8

tarball=$(ls /usr/src/linux-source-*.tar.xz 2>/dev/null | sort -V | tail -n1 || true)
[ -n "$tarball" ] || { echo "build-guest-kernel: no /usr/src/linux-source-*.tar.xz (apt-get install linux-source)" >&2; exit 1; }
series=$(basename "$tarball" .tar.xz)                       # linux-source-6.1
version=$(dpkg-query -W -f='${Version}' "$series" 2>/dev/null || stat -c %Y "$tarball")
# Extra compiler flags, part of the cache key. -mstringop-strategy=libcall: with -Os (tinyconfig)
# gcc expands memset/memcpy of unknown length inline as `rep stosb`/`rep movsb`, which QEMU's TCG
# runs one byte per loop trip (~10 ms of boot in memblock alone); as calls they use the kernel's
# memset/memcpy, which pick word-sized copies for the CPU.
KCFLAGS_GUEST="-mstringop-strategy=libcall"
fraghash=$( (cat "$FRAG" "$REPO"/guest/kernel-patches/*.patch 2>/dev/null; echo "KCFLAGS=$KCFLAGS_GUEST") | sha256sum | cut -c1-16)
patchhash=$(cat "$REPO"/guest/kernel-patches/*.patch 2>/dev/null | sha256sum | cut -c1-16)
key=${series#linux-source-}-$version-$fraghash
dest=$CACHE/kernel-$key
if [ -s "$dest/vmlinux" ]; then
  ln -sfn "$dest/vmlinux" "$OUT/vmlinux"
  exit 0
fi

for t in make gcc flex bison bc; do command -v $t >/dev/null || { echo "build-guest-kernel: missing $t" >&2; exit 1; }; done

src=$CACHE/src-${series#linux-source-}-$version
if [ -f "$src/.extracted" ] && [ "$(cat "$src/.patches" 2>/dev/null)" != "$patchhash" ]; then
  rm -rf "$src"   # other patches applied: start again from the pristine tarball
fi
if [ ! -f "$src/.extracted" ]; then
  say "extracting $tarball"
  rm -rf "$src" "$src.tmp"; mkdir -p "$src.tmp"
  tar -xJf "$tarball" -C "$src.tmp" --strip-components=1
  for p in "$REPO"/guest/kernel-patches/*.patch; do
    [ -e "$p" ] || continue
    say "applying $(basename "$p")"
    patch -s -p1 -d "$src.tmp" < "$p"
  done
  echo "$patchhash" > "$src.tmp/.patches"
  touch "$src.tmp/.extracted"
  mv "$src.tmp" "$src"
fi

# one object tree per source version, kept: a changed fragment rebuilds only what it touches
obj=$CACHE/obj-${series#linux-source-}-$version
mkdir -p "$obj"
say "configuring (tinyconfig + guest/kernel.config)"
make -s -C "$src" O="$obj" tinyconfig >/dev/null
(cd "$obj" && "$src/scripts/kconfig/merge_config.sh" -m .config "$FRAG" >/dev/null)
make -s -C "$src" O="$obj" olddefconfig >/dev/null
lost=0
while IFS= read -r line; do
  case $line in
    CONFIG_*=*) grep -qx "$line" "$obj/.config" || { echo "build-guest-kernel: option lost after olddefconfig: $line" >&2; lost=1; } ;;
    "# CONFIG_"*" is not set") o=${line#\# }; o=${o%% *}; ! grep -q "^$o=" "$obj/.config" || { echo "build-guest-kernel: option should be off: $o" >&2; lost=1; } ;;
  esac
done < "$FRAG"
[ $lost = 0 ] || exit 1
say "building vmlinux ($key); a few minutes"
nice -n 5 make -s -C "$src" O="$obj" -j"${HULL_KERNEL_JOBS:-$(nproc)}" KCFLAGS="$KCFLAGS_GUEST" vmlinux >/dev/null
mkdir -p "$dest.tmp"
strip -o "$dest.tmp/vmlinux" "$obj/vmlinux"
cp "$obj/.config" "$dest.tmp/config"
make -s -C "$src" O="$obj" kernelrelease > "$dest.tmp/release"
rm -rf "$dest"; mv "$dest.tmp" "$dest"
ln -sfn "$dest/vmlinux" "$OUT/vmlinux"
say "guest kernel ready: $dest/vmlinux ($(cat "$dest/release"))"
