/**
 * The host's cgroup layout, and reading a container's cgroup (OOM kills, usage) by path.
 *
 * Three layouts exist in the wild:
 *   v2      one cgroup2 mount at /sys/fs/cgroup (modern distributions)
 *   v1      one cgroup (v1) mount per controller, no cgroup2 with controllers
 *   hybrid  v1 controllers plus a cgroup2 mount (usually /sys/fs/cgroup/unified) that has
 *           controllers attached (cgroup.controllers not empty)
 * crun 1.8 refuses "hybrid" outright ("cgroups in hybrid mode not supported, drop all controllers
 * from cgroupv2"); runc works. The runtime driver therefore runs crun in a private mount
 * namespace with the cgroup2 mount unmounted, where crun sees plain v1 (see runtime.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { rootKey } from '../../paths.js';

export type CgroupLayout =
  | { kind: 'v2'; mount: string }
  | { kind: 'v1'; controllers: Record<string, string> }
  | { kind: 'hybrid'; controllers: Record<string, string>; unified: string; unifiedControllers: string[] };

interface MountLine {
  mountPoint: string;
  fstype: string;
  superOptions: string[];
}

function parseMountinfo(text: string): MountLine[] {
  const out: MountLine[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' ');
    const right = line.slice(sep + 3).split(' ');
    out.push({
      mountPoint: (left[4] ?? '').replace(/\\040/g, ' '),
      fstype: right[0] ?? '',
      superOptions: (right[2] ?? '').split(','),
    });
  }
  return out;
}

const V1_CONTROLLERS = ['cpu', 'cpuacct', 'cpuset', 'memory', 'pids', 'blkio', 'devices', 'freezer', 'net_cls', 'net_prio', 'perf_event', 'hugetlb', 'rdma', 'misc'];

/**
 * Work out the layout from /proc/self/mountinfo text; `controllersOf(mountPoint)` returns the
 * content of a cgroup2 mount's cgroup.controllers (undefined when unreadable).
 */
export function parseCgroupLayout(mountinfo: string, controllersOf: (dir: string) => string | undefined): CgroupLayout {
  const mounts = parseMountinfo(mountinfo);
  const controllers: Record<string, string> = {};
  for (const m of mounts) {
    if (m.fstype !== 'cgroup') continue;
    for (const o of m.superOptions) {
      if (V1_CONTROLLERS.includes(o) && !controllers[o]) controllers[o] = m.mountPoint;
      if (o === 'name=systemd' && !controllers['name=systemd']) controllers['name=systemd'] = m.mountPoint;
    }
  }
  const v2 = mounts.filter((m) => m.fstype === 'cgroup2');
  const hasV1 = Object.keys(controllers).some((k) => k !== 'name=systemd');
  if (!hasV1) {
    const m = v2.find((x) => x.mountPoint === '/sys/fs/cgroup') ?? v2[0];
    if (m) return { kind: 'v2', mount: m.mountPoint };
    return { kind: 'v1', controllers };
  }
  for (const m of v2) {
    const ctl = (controllersOf(m.mountPoint) ?? '').trim();
    if (ctl) return { kind: 'hybrid', controllers, unified: m.mountPoint, unifiedControllers: ctl.split(/\s+/) };
  }
  return { kind: 'v1', controllers };
}

let cachedLayout: CgroupLayout | undefined;

/** The layout of this host (read once per process). */
export function detectCgroupLayout(): CgroupLayout {
  if (cachedLayout) return cachedLayout;
  const text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  cachedLayout = parseCgroupLayout(text, (dir) => {
    try {
      return fs.readFileSync(path.join(dir, 'cgroup.controllers'), 'utf8');
    } catch {
      return undefined;
    }
  });
  return cachedLayout;
}

/**
 * The cgroupsPath hull gives the runtime for a container: absolute, one per container, under
 * one parent per hull root (/hull/<root key>/<id>), so a root's orphans can be told apart.
 */
export function containerCgroupPath(root: string, id: string): string {
  return `/hull/${rootKey(root)}/${id}`;
}

/** The parent cgroup path of all containers of a root. */
export function rootCgroupPath(root: string): string {
  return `/hull/${rootKey(root)}`;
}

/** Every directory the container's cgroup may occupy on this host (one per v1 controller). */
export function cgroupDirs(layout: CgroupLayout, cgPath: string): string[] {
  if (layout.kind === 'v2') return [path.join(layout.mount, cgPath)];
  const mounts = new Set(Object.values(layout.controllers));
  return [...mounts].map((m) => path.join(m, cgPath));
}

/** The directory holding one v1 controller's files (or the v2 directory). */
export function controllerDir(layout: CgroupLayout, controller: string, cgPath: string): string | undefined {
  if (layout.kind === 'v2') return path.join(layout.mount, cgPath);
  const m = layout.controllers[controller];
  return m ? path.join(m, cgPath) : undefined;
}

function readFile(file: string | undefined): string | undefined {
  if (!file) return undefined;
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** `key value` lines -> map. */
export function parseKeyValues(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && /^\d+$/.test(v)) m.set(k, Number(v));
  }
  return m;
}

/**
 * Whether the kernel OOM-killed a process of this cgroup: v1 memory.oom_control `oom_kill`,
 * v2 memory.events `oom_kill`. Read it before the runtime deletes the cgroup.
 */
export function readOomKilled(layout: CgroupLayout, cgPath: string): boolean {
  const dir = controllerDir(layout, 'memory', cgPath);
  if (!dir) return false;
  const text = readFile(path.join(dir, layout.kind === 'v2' ? 'memory.events' : 'memory.oom_control'));
  if (!text) return false;
  return (parseKeyValues(text).get('oom_kill') ?? 0) > 0;
}

/** Whether the host's memory cgroup accounts swap (so a memory+swap limit can be set). */
export function swapAccounting(layout: CgroupLayout): boolean {
  if (layout.kind === 'v2') return fs.existsSync(path.join(layout.mount, 'init.scope', 'memory.swap.max')) || fs.existsSync(path.join(layout.mount, 'user.slice', 'memory.swap.max'));
  const m = layout.controllers.memory;
  return m ? fs.existsSync(path.join(m, 'memory.memsw.limit_in_bytes')) : false;
}

export interface CgroupUsage {
  memoryBytes: number;
  memoryLimitBytes: number;
  cpuNs: number;
  pids: number;
}

const UNLIMITED_V1 = 0x7ffffffffffff000;

/** Memory, CPU and pids of a container's cgroup (zeros for files that are absent). */
export function readUsage(layout: CgroupLayout, cgPath: string): CgroupUsage {
  const num = (t: string | undefined) => (t && /^\d+/.test(t.trim()) ? Number(t.trim()) : 0);
  if (layout.kind === 'v2') {
    const dir = path.join(layout.mount, cgPath);
    const max = readFile(path.join(dir, 'memory.max'))?.trim();
    const stat = parseKeyValues(readFile(path.join(dir, 'memory.stat')) ?? '');
    const cpu = parseKeyValues(readFile(path.join(dir, 'cpu.stat')) ?? '');
    return {
      memoryBytes: Math.max(0, num(readFile(path.join(dir, 'memory.current'))) - (stat.get('inactive_file') ?? 0)),
      memoryLimitBytes: !max || max === 'max' ? 0 : Number(max),
      cpuNs: (cpu.get('usage_usec') ?? 0) * 1000,
      pids: num(readFile(path.join(dir, 'pids.current'))),
    };
  }
  const mem = controllerDir(layout, 'memory', cgPath);
  const stat = parseKeyValues(readFile(mem && path.join(mem, 'memory.stat')) ?? '');
  const limit = num(readFile(mem && path.join(mem, 'memory.limit_in_bytes')));
  const acct = controllerDir(layout, 'cpuacct', cgPath);
  const pids = controllerDir(layout, 'pids', cgPath);
  return {
    memoryBytes: Math.max(0, num(readFile(mem && path.join(mem, 'memory.usage_in_bytes'))) - (stat.get('total_inactive_file') ?? 0)),
    memoryLimitBytes: limit >= UNLIMITED_V1 ? 0 : limit,
    cpuNs: num(readFile(acct && path.join(acct, 'cpuacct.usage'))),
    pids: num(readFile(pids && path.join(pids, 'pids.current'))),
  };
}

/** Directories of this container's cgroup that still exist (for cleanup checks and tests). */
export function existingCgroupDirs(layout: CgroupLayout, cgPath: string): string[] {
  return cgroupDirs(layout, cgPath).filter((d) => fs.existsSync(d));
}

/**
 * Remove what is left of a container's cgroup (after the runtime's own delete): empty
 * directories only; a cgroup that still has processes is left and reported by the caller.
 */
export function removeCgroup(layout: CgroupLayout, cgPath: string): string[] {
  const left: string[] = [];
  for (const d of existingCgroupDirs(layout, cgPath)) {
    try {
      fs.rmdirSync(d);
    } catch {
      left.push(d);
    }
  }
  return left;
}

/**
 * Whether one /dev/kmsg record is the kernel's report of an OOM kill inside the memory cgroup
 * `cgPath` (the line the OOM killer prints since Linux 4.19, e.g. "oom-kill:constraint=
 * CONSTRAINT_MEMCG,...,oom_memcg=/hull/ID,task_memcg=/hull/ID,task=sh,pid=42,uid=0"). Pure.
 */
export function isOomKillRecordFor(record: string, cgPath: string): boolean {
  const at = record.indexOf('oom-kill:');
  if (at < 0) return false;
  const fields = record.slice(at + 'oom-kill:'.length).trim().split(',');
  return fields.some((f) => f === `oom_memcg=${cgPath}` || f === `task_memcg=${cgPath}`);
}

/**
 * Whether the kernel log holds an OOM kill in `cgPath`, read the way cAdvisor's oomparser reads
 * it (/dev/kmsg, one record per read, without blocking). For a foreground `crun run`, whose
 * cgroup (with its oom_kill counter) is gone by the time hull learns the exit; read only after
 * a SIGKILL exit of a memory-limited container. False when the log cannot be read.
 */
export function kernelLogOomKill(cgPath: string, file = '/dev/kmsg'): boolean {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch {
    return false;
  }
  const buf = Buffer.alloc(16 * 1024);
  try {
    for (let i = 0; i < 1_000_000; i++) {
      let n: number;
      try {
        n = fs.readSync(fd, buf, 0, buf.length, null);
      } catch (e) {
        // EPIPE: records were overwritten while reading; the next read goes on from the oldest
        if ((e as NodeJS.ErrnoException).code === 'EPIPE') continue;
        return false; // EAGAIN: no more records
      }
      if (n <= 0) return false;
      if (isOomKillRecordFor(buf.toString('latin1', 0, n), cgPath)) return true;
    }
    return false;
  } finally {
    fs.closeSync(fd);
  }
}
