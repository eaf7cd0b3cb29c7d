/**
 * The memory cgroup a process is charged to, and what that cgroup charges: cgroup v1
 * (memory.usage_in_bytes, memory.stat total_*) and v2 (memory.current, memory.stat). Hybrid
 * hosts (v1 controllers plus a cgroup2 mount) use the v1 memory controller. Parsers are pure.
 */
import fs from 'node:fs';
import path from 'node:path';

export interface MemcgLocation {
  version: 1 | 2;
  /** Directory of the cgroup on the host. */
  dir: string;
  /** Path inside the hierarchy, e.g. /hull/<id>. */
  cgPath: string;
}

/** From /proc/PID/cgroup text: the cgroup path of v1 `controller` ('v1') and the unified one. */
export function parseProcCgroupFor(text: string, controller: string): { v1?: string; unified?: string } {
  const out: { v1?: string; unified?: string } = {};
  for (const line of text.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line.trim());
    if (!m) continue;
    if (m[1] === '0' && m[2] === '') out.unified = m[3];
    else if (m[2]!.split(',').includes(controller)) out.v1 = m[3];
  }
  return out;
}

/** From mountinfo text: mount point of the v1 hierarchy holding `controller`, and of cgroup2. */
export function parseControllerMounts(mountinfo: string, controller: string): { v1?: string; v2?: string } {
  const out: { v1?: string; v2?: string } = {};
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' ');
    const right = line.slice(sep + 3).split(' ');
    const mp = (left[4] ?? '').replace(/\\040/g, ' ');
    if (right[0] === 'cgroup' && (right[2] ?? '').split(',').includes(controller) && !out.v1) out.v1 = mp;
    if (right[0] === 'cgroup2' && (!out.v2 || mp === '/sys/fs/cgroup')) out.v2 = mp;
  }
  return out;
}

/** From /proc/PID/cgroup text: the memory controller's cgroup path ('v1') or the unified one ('v2'). */
export function parseProcCgroup(text: string): { v1Memory?: string; unified?: string } {
  const p = parseProcCgroupFor(text, 'memory');
  return { ...(p.v1 !== undefined ? { v1Memory: p.v1 } : {}), ...(p.unified !== undefined ? { unified: p.unified } : {}) };
}

/** From /proc/self/mountinfo text: mount point of the v1 memory controller and of cgroup2. */
export function parseCgroupMounts(mountinfo: string): { v1Memory?: string; v2?: string } {
  const p = parseControllerMounts(mountinfo, 'memory');
  return { ...(p.v1 !== undefined ? { v1Memory: p.v1 } : {}), ...(p.v2 !== undefined ? { v2: p.v2 } : {}) };
}

/** Where `pid` is charged, or undefined when neither a v1 memory controller nor cgroup2 is mounted. */
export function locateMemcg(pid: number): MemcgLocation | undefined {
  let procText: string;
  let mounts: string;
  try {
    procText = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8');
    mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return undefined;
  }
  const pc = parseProcCgroup(procText);
  const mp = parseCgroupMounts(mounts);
  if (mp.v1Memory && pc.v1Memory !== undefined) return { version: 1, dir: path.join(mp.v1Memory, pc.v1Memory), cgPath: pc.v1Memory };
  if (mp.v2 && pc.unified !== undefined && fs.existsSync(path.join(mp.v2, pc.unified, 'memory.current'))) {
    return { version: 2, dir: path.join(mp.v2, pc.unified), cgPath: pc.unified };
  }
  return undefined;
}

export interface MemcgCharge {
  /** Everything the cgroup is charged for, bytes (v1 memory.usage_in_bytes, v2 memory.current). */
  chargeBytes: number;
  /** Anonymous memory, bytes (v1 total_rss, v2 anon). */
  anonBytes: number;
  /** Page cache, bytes (v1 total_cache, v2 file). */
  cacheBytes: number;
  /** Page cache that is mapped by a process (and so already counted in PSS), bytes. */
  mappedFileBytes: number;
  /** Kernel memory charged, bytes (v2 kernel / v1 kmem usage), 0 when not reported. */
  kernelBytes: number;
  /** Which files the figures came from. */
  how: string;
}

function kv(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && /^\d+$/.test(v)) m.set(k, Number(v));
  }
  return m;
}

/** Pure: the charge of a v1 cgroup from its files' text. */
export function chargeV1(usage: string, stat: string, kmemUsage?: string): MemcgCharge {
  const s = kv(stat);
  const pick = (k: string) => s.get(`total_${k}`) ?? s.get(k) ?? 0;
  return {
    chargeBytes: Number(usage.trim()) || 0,
    anonBytes: pick('rss'),
    cacheBytes: pick('cache'),
    mappedFileBytes: pick('mapped_file'),
    kernelBytes: kmemUsage && /^\d+$/.test(kmemUsage.trim()) ? Number(kmemUsage.trim()) : 0,
    how: 'cgroup v1: memory.usage_in_bytes; memory.stat total_rss, total_cache, total_mapped_file; memory.kmem.usage_in_bytes',
  };
}

/** Pure: the charge of a v2 cgroup from its files' text. */
export function chargeV2(current: string, stat: string): MemcgCharge {
  const s = kv(stat);
  return {
    chargeBytes: Number(current.trim()) || 0,
    anonBytes: s.get('anon') ?? 0,
    cacheBytes: s.get('file') ?? 0,
    mappedFileBytes: s.get('file_mapped') ?? 0,
    kernelBytes: s.get('kernel') ?? (s.get('kernel_stack') ?? 0) + (s.get('slab') ?? 0) + (s.get('sock') ?? 0),
    how: 'cgroup v2: memory.current; memory.stat anon, file, file_mapped, kernel',
  };
}

export function readCharge(loc: MemcgLocation): MemcgCharge | undefined {
  const rd = (f: string) => {
    try {
      return fs.readFileSync(path.join(loc.dir, f), 'utf8');
    } catch {
      return undefined;
    }
  };
  if (loc.version === 1) {
    const u = rd('memory.usage_in_bytes');
    const s = rd('memory.stat');
    return u === undefined || s === undefined ? undefined : chargeV1(u, s, rd('memory.kmem.usage_in_bytes'));
  }
  const c = rd('memory.current');
  const s = rd('memory.stat');
  return c === undefined || s === undefined ? undefined : chargeV2(c, s);
}
