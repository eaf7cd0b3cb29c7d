/**
 * Host CPU time from the kernel's own accounting: utime + stime of a process (/proc/PID/stat,
 * in clock ticks; for a process these include all its threads) and the CPU time charged to a
 * cgroup (v1 cpuacct.usage in ns, v2 cpu.stat usage_usec). Parsers are pure; readers are thin.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseControllerMounts, parseProcCgroupFor } from './memcg.js';

/** utime + stime of /proc/PID/stat text, clock ticks; undefined when malformed. */
export function parseStatCpuTicks(text: string): number | undefined {
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  // fields after "(comm) ": state is field 3, so field n is rest[n - 3]: utime 14, stime 15
  const rest = text.slice(close + 2).split(' ');
  const u = Number(rest[11]);
  const s = Number(rest[12]);
  return Number.isInteger(u) && Number.isInteger(s) ? u + s : undefined;
}

let tck: number | undefined;
/** Clock ticks per second (getconf CLK_TCK; 100 when getconf is missing). */
export function clockTicks(): number {
  if (tck === undefined) {
    const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    const n = Number(r.stdout?.trim());
    tck = r.status === 0 && n > 0 ? n : 100;
  }
  return tck;
}

/** CPU time of process `pid` so far, milliseconds (tick resolution); undefined when it is gone. */
export function processCpuMs(pid: number): number | undefined {
  try {
    const t = parseStatCpuTicks(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
    return t === undefined ? undefined : (t * 1000) / clockTicks();
  } catch {
    return undefined;
  }
}

export interface CpuCgroup {
  version: 1 | 2;
  dir: string;
  cgPath: string;
}

/** From /proc/PID/cgroup text: the v1 cpuacct cgroup path and the unified one. */
export const parseCpuCgroup = (text: string) => parseProcCgroupFor(text, 'cpuacct');

/** From mountinfo text: where the v1 cpuacct controller and cgroup2 are mounted. */
export const parseCpuMounts = (mountinfo: string) => parseControllerMounts(mountinfo, 'cpuacct');

/** v1 cpuacct.usage (ns) or v2 cpu.stat (usage_usec) text -> milliseconds. */
export function parseCgroupCpuMs(version: 1 | 2, text: string): number | undefined {
  if (version === 1) {
    const n = Number(text.trim());
    return Number.isFinite(n) && n >= 0 ? n / 1e6 : undefined;
  }
  const m = /^usage_usec (\d+)$/m.exec(text);
  return m ? Number(m[1]) / 1000 : undefined;
}

/** The cgroup charged with `pid`'s CPU time, or undefined. */
export function locateCpuCgroup(pid: number): CpuCgroup | undefined {
  try {
    const pc = parseCpuCgroup(fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8'));
    const mp = parseCpuMounts(fs.readFileSync('/proc/self/mountinfo', 'utf8'));
    if (mp.v1 && pc.v1 !== undefined) return { version: 1, dir: path.join(mp.v1, pc.v1), cgPath: pc.v1 };
    if (mp.v2 && pc.unified !== undefined && fs.existsSync(path.join(mp.v2, pc.unified, 'cpu.stat'))) return { version: 2, dir: path.join(mp.v2, pc.unified), cgPath: pc.unified };
  } catch {
    /* gone */
  }
  return undefined;
}

/** CPU time charged to the cgroup so far, milliseconds; undefined when unreadable. */
export function cgroupCpuMs(cg: CpuCgroup): number | undefined {
  try {
    return parseCgroupCpuMs(cg.version, fs.readFileSync(path.join(cg.dir, cg.version === 1 ? 'cpuacct.usage' : 'cpu.stat'), 'utf8'));
  } catch {
    return undefined;
  }
}

/** Pids in the cgroup at `dir` (this level), empty when unreadable. */
export function cgroupPids(dir: string): number[] {
  try {
    return fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}
