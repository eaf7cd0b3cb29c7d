/**
 * Linux capabilities for containers: hull's default set (podman 4's), --cap-add / --cap-drop
 * (with ALL), --privileged, and the host's bounding set (a runtime cannot grant what the caller
 * does not hold). Pure functions; names are CAP_* upper case.
 */
import { invalid } from '../../errors.js';

/** Every capability by number (linux/capability.h, up to CAP_CHECKPOINT_RESTORE = 40). */
export const ALL_CAPS = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN',
  'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ',
  'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
];

/**
 * hull's default set: podman 4's (containers.conf default_capabilities). Docker's 14 less
 * NET_RAW (raw sockets: spoofing a neighbour's traffic on a shared bridge), MKNOD (device
 * nodes) and AUDIT_WRITE (writing the host's audit log); `--cap-add` gives each back.
 */
export const DEFAULT_CAPS = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_NET_BIND_SERVICE', 'CAP_SETFCAP',
  'CAP_SETGID', 'CAP_SETPCAP', 'CAP_SETUID', 'CAP_SYS_CHROOT',
];

/** Docker's default capability set (moby oci/caps/defaults.go), for comparison (hull info, README). */
export const DOCKER_DEFAULT_CAPS = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

/** 'net_admin', 'NET_ADMIN', 'CAP_NET_ADMIN' -> 'CAP_NET_ADMIN'; 'all' -> 'ALL'. */
export function normalizeCap(name: string, flag: string): string {
  const u = name.trim().toUpperCase();
  if (u === 'ALL') return 'ALL';
  const c = u.startsWith('CAP_') ? u : `CAP_${u}`;
  if (!ALL_CAPS.includes(c)) throw invalid(`invalid argument "${name}" for "${flag}" flag: unknown capability`);
  return c;
}

/** The bounding set from /proc/self/status's CapBnd hex mask. */
export function capsFromMask(hex: string): string[] {
  const mask = BigInt(`0x${hex.trim()}`);
  return ALL_CAPS.filter((_, i) => (mask >> BigInt(i)) & 1n);
}

/**
 * docker's TweakCapabilities: start from the default set (or all of `bounding` with ALL),
 * add, then drop (drop wins, `--cap-drop ALL` keeps only what --cap-add names).
 * The result never exceeds the host bounding set.
 */
export function effectiveCaps(add: string[], drop: string[], bounding: string[] = ALL_CAPS, privileged = false): string[] {
  // docker: --privileged gives every capability the caller holds, whatever --cap-drop says
  if (privileged) return ALL_CAPS.filter((c) => bounding.includes(c));
  const a = add.map((c) => normalizeCap(c, '--cap-add'));
  const d = drop.map((c) => normalizeCap(c, '--cap-drop'));
  let set: Set<string>;
  if (d.includes('ALL')) set = new Set(a.includes('ALL') ? ALL_CAPS : a.filter((c) => c !== 'ALL'));
  else {
    set = new Set(a.includes('ALL') ? ALL_CAPS : [...DEFAULT_CAPS, ...a]);
    for (const c of d) set.delete(c);
  }
  return ALL_CAPS.filter((c) => set.has(c) && bounding.includes(c));
}
