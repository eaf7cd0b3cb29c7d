#!/usr/bin/env bash
# hull's one set-up script: Debian packages, npm packages, the build, the guest kernel and
# init, and the offline busybox base image. Idempotent; quick when everything is there.
# Run as root on Debian 12. HULL_SETUP_QUIET=1 silences the progress lines.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
BUILD=$REPO/build
say() { [ "${HULL_SETUP_QUIET:-}" = 1 ] || printf '[setup] %s\n' "$*" >&2; }

# ---------------------------------------------------------------- Debian packages
# runtime: crun runc conmon tini (containers; tini for --init), qemu-system-x86 erofs-utils (VMs), busybox-static (base image),
#   nftables (the bridge network: masquerade and published ports), aardvark-dns (names on user networks;
#   podman only recommends it, and recommends are not installed here)
# containerd runtime (containerd-shim-hull-v2): containerd (its tests, and the runc baseline), containernetworking-plugins (CNI bridge for CRI pods)
# tests and benchmarks: podman skopeo docker-registry hyperfine (independent peers), chromium (HTML report test),
#   docker-compose (Debian's 1.29, a real Engine API client driving hull serve),
#   fio iperf3 sockperf arp-scan (`hull contrast` disk, network and its ARP-spoof probe: the same Debian binaries on the host and inside)
# guest kernel build: linux-source bc flex bison libelf-dev libssl-dev cpio xz-utils
PKGS=(crun runc conmon tini qemu-system-x86 erofs-utils busybox-static attr iproute2 nftables aardvark-dns util-linux procps
      containerd containernetworking-plugins
      podman skopeo docker-registry golang-github-containers-common hyperfine chromium docker-compose fio iperf3 sockperf arp-scan
      linux-source bc flex bison libelf-dev libssl-dev cpio xz-utils build-essential musl-tools)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # several checkouts may run set-up at once: wait for the dpkg lock instead of failing
  apt-get -o DPkg::Lock::Timeout=900 update -qq
  apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The docker-registry package starts a registry on :5000 through its init script; hull's tests
# run their own on free ports, so a packaged one is not needed (and is left alone).

# ---------------------------------------------------------------- npm packages and the build
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm packages"
  # `npm install` honours package-lock.json (and keeps node_modules when nothing changed).
  npm install --no-audit --no-fund --loglevel=error >/dev/null
fi
stamp=dist/.build-stamp
if [ ! -f "$stamp" ] || [ -n "$(find src test bench scripts/bundle.mjs tsconfig.json package.json -newer "$stamp" -type f 2>/dev/null | head -n1)" ]; then
  say "building TypeScript"
  npx tsc -p tsconfig.json
  # the CLI's one-file bundle (dist/cli.cjs), which bin/hull starts
  node scripts/bundle.mjs
  touch "$stamp"
fi

# ---------------------------------------------------------------- guest kernel and init (VM wall)
mkdir -p "$BUILD"
if [ -f scripts/build-guest-kernel.sh ]; then bash scripts/build-guest-kernel.sh; fi
if [ -f scripts/build-guest-init.sh ]; then bash scripts/build-guest-init.sh; fi
# host helpers: hull-tapfd (a VM's taps opened in its network namespace), hull-vmmux (many
# callers on one VM's control port)
bash scripts/build-native.sh

# ---------------------------------------------------------------- the containerd shim on PATH
# containerd finds runtime io.containerd.hull.v2 as containerd-shim-hull-v2 on its PATH. Linked
# from this checkout (HULL_SETUP_NO_SHIM_LINK=1 leaves /usr/local/bin alone; hull's own tests put
# the checkout's bin/ first on the PATH of the containerd they start and need no link).
if [ "${HULL_SETUP_NO_SHIM_LINK:-}" != 1 ] && [ -w /usr/local/bin ]; then
  ln -sfn "$REPO/bin/containerd-shim-hull-v2" /usr/local/bin/containerd-shim-hull-v2
fi

# ---------------------------------------------------------------- offline base image
bash scripts/make-busybox-rootfs.sh "$BUILD/images"
ROOT=${HULL_ROOT:-/var/lib/hull}
if [ "${HULL_SETUP_SKIP_IMAGE:-}" != 1 ] && ! "$REPO/bin/hull" --root "$ROOT" image inspect busybox:latest >/dev/null 2>&1; then
  say "importing busybox:latest into $ROOT"
  bash scripts/import-busybox.sh "$ROOT"
fi
say "ready"
