/**
 * A microVM's NIC joined to a prepared network namespace, the way Kata Containers does it by
 * default ("tcfilter"): the namespace is wired exactly as for a container (a veth with its
 * address, routes, firewall and DNS rules); inside it a tap device is made per veth, and tc
 * mirrors every frame from the veth to the tap and back (an ingress qdisc with a u32 match-all
 * filter and a mirred egress redirect, each way). The guest's virtio-net NIC takes the veth's
 * MAC, and the guest agent gives it the veth's address, so every network, port and DNS rule made
 * for the veth holds for the VM unchanged.
 *
 * QEMU does not open the taps itself: `hull-tapfd` (native/hull-tapfd.c) enters the namespace,
 * attaches each tap, and execs QEMU with the descriptors inherited (`-netdev tap,fd=N,vhost=off`).
 * QEMU then needs no CAP_NET_ADMIN and no /dev/net/tun, and runs as nobody in the host's own
 * network namespace. This host has no /dev/vhost-net: vhost=off.
 *
 * Pure builders (tapScript, tapFdArgv, qemuNicArgs) are tested as data; attachVmTaps and
 * detachVmTaps run them. Nothing here knows which driver made the namespace.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { HullError } from '../errors.js';
import { packageRoot } from '../paths.js';

/** One guest NIC: the veth inside the namespace it mirrors, and the tap made for it. */
export interface VmNic {
  /** The veth (container side) inside the namespace, e.g. eth0. */
  ifname: string;
  /** The tap made next to it, e.g. tap0 (at most 15 characters). */
  tap: string;
  /** MTU of the veth, bytes; the tap gets the same. */
  mtu: number;
  /** The veth's MAC (aa:bb:cc:dd:ee:ff): the guest NIC's MAC. */
  mac: string;
}

/** A NIC as QEMU gets it: the inherited tap descriptor and the MAC. */
export interface QemuNic {
  /** Descriptor number QEMU inherits the attached tap on. */
  fd: number;
  mac: string;
}

const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

function check(n: VmNic): void {
  if (!IFNAME.test(n.ifname)) throw new HullError('INVALID_ARGUMENT', `bad interface name ${JSON.stringify(n.ifname)}`);
  if (!IFNAME.test(n.tap)) throw new HullError('INVALID_ARGUMENT', `bad tap name ${JSON.stringify(n.tap)}`);
  if (!MAC.test(n.mac)) throw new HullError('INVALID_ARGUMENT', `bad MAC address ${JSON.stringify(n.mac)}`);
  if (!Number.isInteger(n.mtu) || n.mtu < 68 || n.mtu > 65535) throw new HullError('INVALID_ARGUMENT', `bad MTU ${n.mtu}`);
}

/** The tap name for the n-th NIC (tap0, tap1, ...). */
export function tapName(index: number): string {
  return `tap${index}`;
}

/**
 * The shell script that runs inside the namespace (pure): per NIC a tap with the veth's MTU, no
 * IPv6 on it (the namespace's own stack never uses it), and the two mirred redirects.
 */
export function tapScript(nics: VmNic[]): string {
  const lines = ['set -e'];
  for (const n of nics) {
    check(n);
    lines.push(
      `ip tuntap add dev ${n.tap} mode tap vnet_hdr`,
      `echo 1 > /proc/sys/net/ipv6/conf/${n.tap}/disable_ipv6 2>/dev/null || true`,
      `ip link set dev ${n.tap} mtu ${n.mtu} up`,
      `tc qdisc add dev ${n.ifname} handle ffff: ingress`,
      `tc filter add dev ${n.ifname} parent ffff: protocol all u32 match u8 0 0 action mirred egress redirect dev ${n.tap}`,
      `tc qdisc add dev ${n.tap} handle ffff: ingress`,
      `tc filter add dev ${n.tap} parent ffff: protocol all u32 match u8 0 0 action mirred egress redirect dev ${n.ifname}`,
    );
  }
  return lines.join('\n');
}

/** The script that undoes tapScript (pure): the taps, and the veths' ingress qdiscs. */
export function untapScript(nics: VmNic[]): string {
  const lines: string[] = [];
  for (const n of nics) {
    check(n);
    lines.push(`ip link del dev ${n.tap} 2>/dev/null || true`, `tc qdisc del dev ${n.ifname} handle ffff: ingress 2>/dev/null || true`);
  }
  return lines.join('\n');
}

/** Runs `script` with sh inside the network namespace `netns` (a namespace file). */
function inNetns(netns: string, script: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn('nsenter', [`--net=${netns}`, 'sh', '-c', script], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    c.on('error', (e) => reject(new HullError('UNAVAILABLE', `cannot run nsenter: ${e.message}`, { cause: e, hint: 'apt-get install util-linux iproute2' })));
    c.on('close', (code) => (code === 0 ? resolve() : reject(new HullError('INTERNAL', `setting up the VM's tap devices in ${netns} failed: ${err.trim() || `exit ${code}`}`))));
  });
}

/** Makes the taps and the mirrors in `netns`. On failure, removes what it made. */
export async function attachVmTaps(netns: string, nics: VmNic[]): Promise<void> {
  if (nics.length === 0) return;
  try {
    await inNetns(netns, tapScript(nics));
  } catch (e) {
    await detachVmTaps(netns, nics).catch(() => undefined);
    throw e;
  }
}

/**
 * Removes the taps and mirrors from `netns` (idempotent). Needed only when the namespace outlives
 * the VM (a pod's namespace owned by someone else); deleting the namespace removes them too.
 */
export async function detachVmTaps(netns: string, nics: VmNic[]): Promise<void> {
  if (nics.length === 0 || !fs.existsSync(netns)) return;
  await inNetns(netns, untapScript(nics));
}

/** Path of the hull-tapfd helper (built by set-up into build/bin); HULL_TAPFD overrides. */
export function tapFdHelper(env: NodeJS.ProcessEnv = process.env): string {
  const p = env.HULL_TAPFD ?? path.join(packageRoot(), 'build', 'bin', 'hull-tapfd');
  if (!fs.existsSync(p)) throw new HullError('UNAVAILABLE', `the helper ${p} is missing`, { hint: 'run scripts/setup.sh (it builds build/bin/hull-tapfd)' });
  return p;
}

/**
 * The argv prefix that opens the taps for QEMU (pure): `hull-tapfd NETNS FD:TAP... --`. The
 * program to run follows. Descriptors are numbered from `firstFd` in NIC order.
 */
export function tapFdArgv(helper: string, netns: string, nics: VmNic[], firstFd: number): { argv: string[]; qemuNics: QemuNic[] } {
  if (!Number.isInteger(firstFd) || firstFd < 3) throw new HullError('INVALID_ARGUMENT', `firstFd must be >= 3, got ${firstFd}`);
  nics.forEach(check);
  const qemuNics = nics.map((n, i) => ({ fd: firstFd + i, mac: n.mac }));
  return { argv: [helper, netns, ...nics.map((n, i) => `${firstFd + i}:${n.tap}`), '--'], qemuNics };
}

/**
 * QEMU's arguments for the NICs (pure): a tap backend on the inherited descriptor, no vhost, and a
 * virtio-net device on the virtio-mmio bus with the veth's MAC. At most 8 virtio-mmio devices fit
 * a microvm machine; the caller counts them.
 */
export function qemuNicArgs(nics: QemuNic[]): string[] {
  const a: string[] = [];
  nics.forEach((n, i) => {
    if (!Number.isInteger(n.fd) || n.fd < 3) throw new HullError('INVALID_ARGUMENT', `bad tap descriptor ${n.fd}`);
    if (!MAC.test(n.mac)) throw new HullError('INVALID_ARGUMENT', `bad MAC address ${JSON.stringify(n.mac)}`);
    a.push('-netdev', `tap,id=net${i},fd=${n.fd},vhost=off`, '-device', `virtio-net-device,netdev=net${i},mac=${n.mac}`);
  });
  return a;
}
