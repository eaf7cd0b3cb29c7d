/**
 * From what containerd hands a shim (the bundle's OCI config.json, an exec's OCI process) to
 * what hull's guest runs: the process, the root and the mounts of one container, and the size
 * of the pod's VM. Pure: objects in, objects out, every field checked before use.
 *
 * Mounts: the pseudo filesystems (/proc, /sys, /dev, /dev/pts, /dev/shm, /dev/mqueue, cgroups)
 * are the guest's own (a pod's containers share one /dev/shm, as they share IPC); tmpfs mounts
 * become guest tmpfs; bind mounts (CRI's /etc/hosts, /etc/resolv.conf, /etc/hostname,
 * /dev/termination-log, volumes) reach the guest through the pod's virtio-fs share.
 */
import { HullError } from '../errors.js';
import type { GuestProcessSpec } from '../runtime/vm/protocol.js';

/** The parts of an OCI runtime-spec process the shim reads. */
export interface OciProcess {
  terminal?: boolean;
  user?: { uid?: number; gid?: number; additionalGids?: number[] };
  args?: string[];
  env?: string[];
  cwd?: string;
  consoleSize?: { height?: number; width?: number };
}

export interface OciMount {
  destination: string;
  type?: string;
  source?: string;
  options?: string[];
}

/** The parts of an OCI runtime-spec config.json the shim reads. */
export interface OciSpec {
  process?: OciProcess;
  root?: { path?: string; readonly?: boolean };
  hostname?: string;
  mounts?: OciMount[];
  annotations?: Record<string, string>;
  linux?: {
    resources?: { memory?: { limit?: number }; cpu?: { quota?: number; period?: number } };
    namespaces?: { type: string; path?: string }[];
    cgroupsPath?: string;
  };
}

/** CRI annotations (containerd 1.6 pkg/cri/annotations). */
export const CRI = {
  CONTAINER_TYPE: 'io.kubernetes.cri.container-type',
  SANDBOX_ID: 'io.kubernetes.cri.sandbox-id',
  SANDBOX_MEMORY: 'io.kubernetes.cri.sandbox-memory',
  SANDBOX_CPU_QUOTA: 'io.kubernetes.cri.sandbox-cpu-quota',
  SANDBOX_CPU_PERIOD: 'io.kubernetes.cri.sandbox-cpu-period',
} as const;

/** Guest RAM of a pod without memory limits, MiB (memfd: only what the guest touches is resident). */
export const DEFAULT_POD_MEMORY_MIB = 512;
/** Guest RAM added to the pod's limits for the guest kernel, agent and page cache, MiB. */
export const POD_BASE_MEMORY_MIB = 128;
/** vCPUs a hull VM has at most. */
export const MAX_VCPUS = 8;

const str = (v: unknown): v is string => typeof v === 'string';

/** Pure: checks the shape of a parsed config.json; throws INVALID_ARGUMENT naming the bad field. */
export function checkSpec(v: unknown): OciSpec {
  const bad = (what: string) => new HullError('INVALID_ARGUMENT', `config.json: ${what}`);
  if (!v || typeof v !== 'object') throw bad('not a JSON object');
  const s = v as OciSpec;
  if (s.process !== undefined) checkProcess(s.process);
  if (s.mounts !== undefined && (!Array.isArray(s.mounts) || s.mounts.some((m) => !m || !str(m.destination)))) throw bad('mounts must be a list of {destination, ...}');
  if (s.annotations !== undefined && (typeof s.annotations !== 'object' || Object.values(s.annotations).some((a) => !str(a)))) throw bad('annotations must map strings to strings');
  return s;
}

/** Pure: checks an OCI process (config.json's, or an exec's). */
export function checkProcess(v: unknown): OciProcess {
  const bad = (what: string) => new HullError('INVALID_ARGUMENT', `OCI process: ${what}`);
  if (!v || typeof v !== 'object') throw bad('not a JSON object');
  const p = v as OciProcess;
  if (p.args !== undefined && (!Array.isArray(p.args) || !p.args.every(str))) throw bad('args must be strings');
  if (p.env !== undefined && (!Array.isArray(p.env) || !p.env.every(str))) throw bad('env must be strings');
  if (p.cwd !== undefined && (!str(p.cwd) || !p.cwd.startsWith('/'))) throw bad('cwd must be an absolute path');
  if (p.user?.uid !== undefined && !Number.isInteger(p.user.uid)) throw bad('user.uid must be an integer');
  if (p.user?.gid !== undefined && !Number.isInteger(p.user.gid)) throw bad('user.gid must be an integer');
  return p;
}

/** Pure: the guest's view of an OCI process. `stdin`: the caller gave a stdin to feed. */
export function guestProcess(p: OciProcess, io: { terminal: boolean; stdin: boolean }): GuestProcessSpec {
  if (!p.args?.length) throw new HullError('INVALID_ARGUMENT', 'the OCI process has no args');
  const uid = p.user?.uid ?? 0;
  const gid = p.user?.gid ?? 0;
  return {
    args: p.args,
    env: p.env ?? [],
    cwd: p.cwd || '/',
    user: `${uid}:${gid}`,
    tty: io.terminal,
    stdin: io.stdin,
    rows: p.consoleSize?.height || undefined,
    cols: p.consoleSize?.width || undefined,
  };
}

const GUEST_OWN = new Set(['/proc', '/sys', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/sys/fs/cgroup']);
const PSEUDO_TYPES = new Set(['proc', 'sysfs', 'devpts', 'mqueue', 'cgroup', 'cgroup2']);
/** tmpfs data options the guest kernel takes (the flags, nosuid and friends, are set by the guest). */
const TMPFS_DATA = /^(size|mode|uid|gid|nr_inodes|nr_blocks)=/;

export interface ContainerMounts {
  tmpfs: { destination: string; options: string }[];
  /** Host paths to bind into the share (source), seen by the guest at destination. */
  binds: { source: string; destination: string; readOnly: boolean }[];
}

/** Pure: splits a spec's mounts into guest tmpfs and shared binds (the rest is the guest's own). */
export function containerMounts(mounts: OciMount[]): ContainerMounts {
  const out: ContainerMounts = { tmpfs: [], binds: [] };
  for (const m of mounts) {
    const dest = m.destination.replace(/\/+$/, '') || '/';
    if (!dest.startsWith('/') || dest === '/') throw new HullError('INVALID_ARGUMENT', `mount destination ${JSON.stringify(m.destination)} must be an absolute path other than /`);
    if (GUEST_OWN.has(dest) || PSEUDO_TYPES.has(m.type ?? '')) continue;
    const opts = m.options ?? [];
    const isBind = m.type === 'bind' || opts.includes('bind') || opts.includes('rbind');
    if (isBind) {
      if (!m.source?.startsWith('/')) throw new HullError('INVALID_ARGUMENT', `bind mount of ${dest}: source ${JSON.stringify(m.source)} is not an absolute host path`);
      out.binds.push({ source: m.source, destination: dest, readOnly: opts.includes('ro') });
    } else if (m.type === 'tmpfs') {
      out.tmpfs.push({ destination: dest, options: opts.filter((o) => TMPFS_DATA.test(o)).join(',') });
    } else {
      throw new HullError('INVALID_ARGUMENT', `mount of ${dest}: type ${JSON.stringify(m.type)} is not supported in a hull VM (bind and tmpfs are)`);
    }
  }
  return out;
}

/** What a task is to its pod: the sandbox (pause) container, a container joining a sandbox, or a task alone (ctr run). */
export type TaskRole = { kind: 'sandbox' | 'single' } | { kind: 'container'; sandboxId: string };

/** Pure: the role of a task from its annotations. */
export function taskRole(spec: OciSpec): TaskRole {
  const a = spec.annotations ?? {};
  const type = a[CRI.CONTAINER_TYPE];
  if (type === 'sandbox') return { kind: 'sandbox' };
  if (type === 'container') {
    const id = a[CRI.SANDBOX_ID];
    if (!id) throw new HullError('INVALID_ARGUMENT', `a CRI container without the ${CRI.SANDBOX_ID} annotation`);
    return { kind: 'container', sandboxId: id };
  }
  return { kind: 'single' };
}

/** Pure: the id of the shim (and VM) a task belongs to: its sandbox's id, or its own. */
export function groupOf(id: string, spec: OciSpec): string {
  const r = taskRole(spec);
  return r.kind === 'container' ? r.sandboxId : id;
}

function num(s: string | undefined): number {
  if (s === undefined || !/^-?\d+$/.test(s.trim())) return 0;
  return Number(s.trim());
}

/**
 * Pure: the VM of the pod whose first task has this spec. A CRI sandbox is sized from the pod's
 * annotations (the sum of its containers' limits, which the kubelet passes); a task alone from its
 * own limits. Memory: the limits plus POD_BASE_MEMORY_MIB, or DEFAULT_POD_MEMORY_MIB without
 * limits. vCPUs: 1 plus the CPU limit rounded up (Kata's rule), at most `maxCpus`.
 */
export function podVmSize(spec: OciSpec, maxCpus = MAX_VCPUS): { memoryMiB: number; cpus: number } {
  const a = spec.annotations ?? {};
  const sandbox = taskRole(spec).kind === 'sandbox';
  const memBytes = sandbox ? num(a[CRI.SANDBOX_MEMORY]) : spec.linux?.resources?.memory?.limit ?? 0;
  const quota = sandbox ? num(a[CRI.SANDBOX_CPU_QUOTA]) : spec.linux?.resources?.cpu?.quota ?? 0;
  const period = sandbox ? num(a[CRI.SANDBOX_CPU_PERIOD]) : spec.linux?.resources?.cpu?.period ?? 0;
  const memoryMiB = memBytes > 0 ? POD_BASE_MEMORY_MIB + Math.ceil(memBytes / (1024 * 1024)) : DEFAULT_POD_MEMORY_MIB;
  const extra = quota > 0 && period > 0 ? Math.ceil(quota / period) : 0;
  return { memoryMiB, cpus: Math.max(1, Math.min(maxCpus, MAX_VCPUS, 1 + extra)) };
}

/**
 * Pure: whether a CRI container shares its pod's pid namespace (shareProcessNamespace: the CRI
 * plugin then gives it the sandbox's pid namespace path); its own namespace otherwise.
 */
export function sharesPodPids(spec: OciSpec): boolean {
  return taskRole(spec).kind === 'container' && !!spec.linux?.namespaces?.find((n) => n.type === 'pid')?.path;
}

/** Pure: the network namespace path the pod's VM joins (from the sandbox's spec), if any. */
export function netnsPath(spec: OciSpec): string | undefined {
  return spec.linux?.namespaces?.find((n) => n.type === 'network')?.path || undefined;
}
