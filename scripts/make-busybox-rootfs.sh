#!/usr/bin/env bash
# Make a root filesystem tarball from Debian's busybox-static: every applet as a link,
# /etc/passwd, /etc/group, /tmp with mode 1777. Deterministic (fixed mtimes and owners), so the
# image hull imports from it has the same id on every machine with the same package version.
# Usage: make-busybox-rootfs.sh OUTDIR   -> OUTDIR/busybox-rootfs.tar, OUTDIR/busybox.env
set -euo pipefail
out=${1:?usage: make-busybox-rootfs.sh OUTDIR}
mkdir -p "$out"
ver=$(dpkg-query -W -f='${Version}' busybox-static)
tarball=$out/busybox-rootfs.tar
envf=$out/busybox.env
if [ -f "$tarball" ] && [ -f "$envf" ] && grep -qx "BUSYBOX_VERSION=$ver" "$envf"; then exit 0; fi
tmp=$(mktemp -d "$out/.rootfs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
r=$tmp/rootfs
mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc,root,home,tmp,proc,sys,dev,var/tmp,run}
chmod 1777 "$r/tmp" "$r/var/tmp"
chmod 0700 "$r/root"
cp /bin/busybox "$r/bin/busybox"
for app in $(/bin/busybox --list-full); do
  [ "$app" = bin/busybox ] && continue
  mkdir -p "$r/$(dirname "$app")"
  ln -sf /bin/busybox "$r/$app"
done
cat > "$r/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat > "$r/etc/group" <<'G'
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
tty:x:5:
www-data:x:33:
nogroup:x:65534:
G
echo 'hosts: files dns' > "$r/etc/nsswitch.conf"
epoch=$(stat -c %Y /bin/busybox)
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" -C "$r" -cf "$tarball.tmp" .
mv "$tarball.tmp" "$tarball"
printf "BUSYBOX_VERSION=%s\nBUSYBOX_EPOCH=%s\n" "$ver" "$epoch" > "$envf"
