#!/usr/bin/env bash
# Import the busybox rootfs (made by make-busybox-rootfs.sh) as busybox:latest into a hull root.
# Usage: import-busybox.sh ROOT
set -euo pipefail
cd "$(dirname "$0")/.."
root=${1:?usage: import-busybox.sh ROOT}
# shellcheck disable=SC1091
. build/images/busybox.env
SOURCE_DATE_EPOCH=$BUSYBOX_EPOCH exec bin/hull --root "$root" import \
  --change 'CMD ["sh"]' \
  --change "LABEL org.opencontainers.image.source=\"debian:busybox-static $BUSYBOX_VERSION\"" \
  build/images/busybox-rootfs.tar busybox:latest >/dev/null
