/**
 * The pure builder: InstanceSpec + host facts -> OCI runtime-spec config.json (as an object).
 * No I/O: everything the host decides (rootfs path, uid/gid, cgroup path, seccomp profile, hard
 * rlimits, capability bounding set) comes in through `ConfigHost`.
 */
import type { InstanceSpec } from '../types.js';
import { effectiveCaps } from './caps.js';
import { convertSeccomp, refuseUserNamespaces, type DockerSeccompProfile, type OciSeccomp } from './seccomp.js';
import type { HostDevice } from './devices.js';
import { idmapBindPoint } from './userns.js';

export interface ConfigHost {
  /** Mounted (or to-be-mounted) root filesystem directory. */
  rootfs: string;
  /** Numeric user, resolved from the image's /etc/passwd and /etc/group. */
  user: { uid: number; gid: number; additionalGids?: number[] };
  /** cgroupsPath given to the runtime, e.g. /hull/<id>. */
  cgroupsPath: string;
  /** The default profile (docker format); used when spec.seccomp is 'default'. */
  seccompProfile?: DockerSeccompProfile;
  /** Go architecture name, e.g. amd64. */
  arch: string;
  /** Host kernel release, e.g. 6.1.0-18-amd64. */
  kernel: string;
  /** The caller's hard rlimits by docker name (nofile, nproc, ...); -1 or absent = unlimited. */
  hardLimits: Record<string, number>;
  /** Capabilities the caller holds (bounding set); defaults to all. */
  bounding?: string[];
  /** Host files bind-mounted at /etc/hostname, /etc/hosts, /etc/resolv.conf. */
  etc?: { hostname?: string; hosts?: string; resolv?: string };
  /** Static init binary for --init (tini-static), mounted at /dev/init. */
  initPath?: string;
  /** Host device nodes to make inside (--device, resolved; for --privileged every host device). */
  devices?: HostDevice[];
  /** Whether the memory cgroup accounts swap (v1 memsw / v2 memory.swap.max). */
  swapAccounting: boolean;
}

export interface OciConfig {
  ociVersion: string;
  process: {
    terminal: boolean;
    user: { uid: number; gid: number; additionalGids?: number[] };
    args: string[];
    env: string[];
    cwd: string;
    capabilities: { bounding: string[]; effective: string[]; permitted: string[]; inheritable: string[] };
    rlimits: { type: string; soft: number; hard: number }[];
    noNewPrivileges: boolean;
  };
  root: { path: string; readonly: boolean };
  hostname: string;
  mounts: { destination: string; type: string; source: string; options: string[] }[];
  linux: {
    namespaces: { type: string; path?: string }[];
    cgroupsPath: string;
    resources: Record<string, unknown>;
    maskedPaths: string[];
    readonlyPaths: string[];
    seccomp?: OciSeccomp;
    devices?: { path: string; type: string; major: number; minor: number; fileMode: number; uid: number; gid: number }[];
    uidMappings?: { containerID: number; hostID: number; size: number }[];
    gidMappings?: { containerID: number; hostID: number; size: number }[];
    sysctl?: Record<string, string>;
  };
}

/** Docker's masked /proc and /sys paths. */
export const MASKED_PATHS = [
  '/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap',
];
/** Docker's read-only /proc paths. */
export const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

/** RLIMIT defaults when neither the image nor --ulimit says: docker's daemon gives 1048576 open files. */
const DEFAULT_ULIMITS: { name: string; soft: number; hard: number }[] = [{ name: 'nofile', soft: 1048576, hard: 1048576 }];

/** Character devices every container may use (docker's default allow list). */
const DEFAULT_DEVICE_RULES = [
  { allow: false, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' }, // null
  { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' }, // zero
  { allow: true, type: 'c', major: 1, minor: 7, access: 'rwm' }, // full
  { allow: true, type: 'c', major: 1, minor: 8, access: 'rwm' }, // random
  { allow: true, type: 'c', major: 1, minor: 9, access: 'rwm' }, // urandom
  { allow: true, type: 'c', major: 5, minor: 0, access: 'rwm' }, // tty
  { allow: true, type: 'c', major: 5, minor: 1, access: 'rwm' }, // console
  { allow: true, type: 'c', major: 5, minor: 2, access: 'rwm' }, // ptmx
  { allow: true, type: 'c', major: 136, access: 'rwm' }, // pts
  { allow: true, type: 'c', major: 10, minor: 200, access: 'rwm' }, // tun
];

/** Clamp a value to a hard limit (-1 / undefined = unlimited). */
function clamp(v: number, hard: number | undefined): number {
  const lim = hard === undefined || hard < 0 ? Infinity : hard;
  const val = v < 0 ? Infinity : v;
  const r = Math.min(val, lim);
  // The runtime-spec uses uint64; "unlimited" is RLIM_INFINITY = 2^64-1, which JSON numbers
  // cannot carry exactly, so it is written as the largest value the caller may hold.
  return r === Infinity ? Number.MAX_SAFE_INTEGER : r;
}

/** Rlimits: defaults, then --ulimit; every value clamped to the caller's hard limit. */
export function buildRlimits(ulimits: InstanceSpec['ulimits'], hard: Record<string, number>) {
  const byName = new Map<string, { soft: number; hard: number }>();
  for (const u of [...DEFAULT_ULIMITS, ...ulimits]) byName.set(u.name, { soft: u.soft, hard: u.hard });
  return [...byName].map(([name, v]) => {
    const h = clamp(v.hard, hard[name]);
    return { type: `RLIMIT_${name.toUpperCase()}`, soft: Math.min(clamp(v.soft, hard[name]), h), hard: h };
  });
}

/** The capabilities of the container's processes (its first and every exec), within `bounding`. */
export function containerCaps(spec: Pick<InstanceSpec, 'capAdd' | 'capDrop' | 'privileged'>, bounding?: string[]): string[] {
  return effectiveCaps(spec.capAdd, spec.capDrop, bounding, spec.privileged ?? false);
}

/**
 * The seccomp filter: none with seccomp=unconfined; else the profile (the default one, or the
 * caller's) converted for these capabilities. The default one also refuses new user namespaces
 * unless CAP_SYS_ADMIN was given (docker's rule); a profile of the caller's is taken as written.
 */
export function buildSeccomp(spec: Pick<InstanceSpec, 'seccomp' | 'seccompProfile' | 'privileged'>, defaultProfile: DockerSeccompProfile | undefined, caps: string[], host: { arch: string; kernel: string }): OciSeccomp | undefined {
  // docker: --privileged runs unconfined
  if (spec.seccomp === 'unconfined' || spec.privileged) return undefined;
  const profile = spec.seccomp === 'custom' ? spec.seccompProfile : defaultProfile;
  if (!profile) return undefined;
  const oci = convertSeccomp(profile, { caps, arch: host.arch, kernel: host.kernel });
  return spec.seccomp === 'default' && !caps.includes('CAP_SYS_ADMIN') ? refuseUserNamespaces(oci, host.arch) : oci;
}

export function buildOciConfig(spec: InstanceSpec, host: ConfigHost): OciConfig {
  const caps = containerCaps(spec, host.bounding);
  const priv = spec.privileged === true;
  const args = spec.init && host.initPath ? ['/dev/init', '--', ...spec.process.args] : spec.process.args;
  const namespaces: { type: string; path?: string }[] = ['pid', 'mount', 'ipc', 'uts', 'cgroup'].map((type) => ({ type }));
  // none: a namespace of its own (loopback only); netns: the one src/network prepared; host: the host's
  if (spec.network === 'none') namespaces.push({ type: 'network' });
  if (spec.network === 'netns' && spec.netns) namespaces.push({ type: 'network', path: spec.netns.path });
  // --userns=auto: a user namespace of its own, container ids 0..size-1 = the range on the host
  if (spec.userns) namespaces.push({ type: 'user' });

  const mounts: OciConfig['mounts'] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    // --privileged: /sys and the cgroup tree writable (docker's)
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', ...(priv ? [] : ['ro'])] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', priv ? 'rw' : 'ro'] },
  ];
  const etc = host.etc ?? {};
  if (etc.hostname) mounts.push({ destination: '/etc/hostname', type: 'bind', source: etc.hostname, options: ['rbind', 'rprivate', ...(spec.readOnlyRootfs ? ['ro'] : [])] });
  if (etc.hosts) mounts.push({ destination: '/etc/hosts', type: 'bind', source: etc.hosts, options: ['rbind', 'rprivate', ...(spec.readOnlyRootfs ? ['ro'] : [])] });
  if (etc.resolv) mounts.push({ destination: '/etc/resolv.conf', type: 'bind', source: etc.resolv, options: ['rbind', 'rprivate', ...(spec.readOnlyRootfs ? ['ro'] : [])] });
  if (spec.init && host.initPath) mounts.push({ destination: '/dev/init', type: 'bind', source: host.initPath, options: ['bind', 'ro'] });
  for (const [i, m] of spec.mounts.entries()) {
    if (m.type === 'bind') {
      // -v SRC:DST:idmap under --userns=auto: the idmapped mount of SRC the wrapper made (runtime.ts)
      const source = m.idmap && spec.userns ? idmapBindPoint(spec.dir, i) : m.source!;
      mounts.push({ destination: m.destination, type: 'bind', source, options: ['rbind', 'rprivate', m.readOnly ? 'ro' : 'rw', ...(m.options ?? [])] });
    } else {
      const opts = m.options ?? [];
      const base = ['nosuid', 'nodev', ...(opts.some((o) => o === 'exec' || o === 'noexec') ? [] : ['noexec'])];
      mounts.push({ destination: m.destination, type: 'tmpfs', source: 'tmpfs', options: [...base, ...opts, ...(m.readOnly ? ['ro'] : [])] });
    }
  }

  const devices = host.devices ?? [];
  // --privileged: every device (docker's "a *:* rwm"); else the default list and each --device
  const deviceRules = priv
    ? [{ allow: true, access: 'rwm' }]
    : [...DEFAULT_DEVICE_RULES, ...devices.map((d) => ({ allow: true, type: d.type, major: d.major, minor: d.minor, access: d.access }))];
  const resources: Record<string, unknown> = { devices: deviceRules, ...ociResources(spec.resources, host.swapAccounting) };

  const config: OciConfig = {
    ociVersion: '1.0.2',
    process: {
      terminal: spec.process.terminal,
      user: host.user,
      args,
      env: spec.process.env,
      cwd: spec.process.cwd || '/',
      capabilities: { bounding: caps, effective: caps, permitted: caps, inheritable: [] },
      rlimits: buildRlimits(spec.ulimits, host.hardLimits),
      noNewPrivileges: spec.noNewPrivileges,
    },
    root: { path: host.rootfs, readonly: spec.readOnlyRootfs },
    hostname: spec.hostname,
    mounts,
    linux: {
      namespaces,
      cgroupsPath: host.cgroupsPath,
      resources,
      // --privileged: nothing masked or read-only (docker's)
      maskedPaths: priv ? [] : MASKED_PATHS,
      readonlyPaths: priv ? [] : READONLY_PATHS,
    },
  };
  if (spec.userns) {
    config.linux.uidMappings = [{ containerID: 0, hostID: spec.userns.uid, size: spec.userns.size }];
    config.linux.gidMappings = [{ containerID: 0, hostID: spec.userns.gid, size: spec.userns.size }];
  }
  if (devices.length) config.linux.devices = devices.map((d) => ({ path: d.path, type: d.type, major: d.major, minor: d.minor, fileMode: d.fileMode, uid: d.uid, gid: d.gid }));
  if (spec.sysctls && Object.keys(spec.sysctls).length) config.linux.sysctl = { ...spec.sysctls };
  const seccomp = buildSeccomp(spec, host.seccompProfile, caps, host);
  if (seccomp) config.linux.seccomp = seccomp;
  return config;
}

/**
 * The runtime spec's memory, cpu and pids resources for an instance's limits (pure): at create,
 * and as the body of `<runtime> update -r` (docker update).
 */
export function ociResources(r: InstanceSpec['resources'], swapAccounting: boolean): { memory?: Record<string, number>; cpu?: Record<string, number>; pids?: { limit: number } } {
  const out: { memory?: Record<string, number>; cpu?: Record<string, number>; pids?: { limit: number } } = {};
  if (r.memoryBytes !== undefined && r.memoryBytes > 0) {
    const memory: Record<string, number> = { limit: r.memoryBytes };
    if (swapAccounting) {
      // docker: --memory-swap unset means memory+swap = 2 x memory; -1 means unlimited swap.
      const sw = r.memorySwapBytes ?? r.memoryBytes * 2;
      memory.swap = sw < 0 ? -1 : sw;
    }
    out.memory = memory;
  }
  if (r.nanoCpus !== undefined && r.nanoCpus > 0) {
    const period = 100_000;
    out.cpu = { period, quota: Math.round((r.nanoCpus * period) / 1e9) };
  }
  if (r.pidsLimit !== undefined && r.pidsLimit !== 0) out.pids = { limit: r.pidsLimit };
  return out;
}
