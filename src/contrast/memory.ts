/**
 * Host memory of one running instance, measured, never estimated:
 *  - PSS (smaps_rollup) of every host process that belongs to it: for a container its monitor
 *    (conmon) and the container's process tree, for a VM the QEMU process;
 *  - for a VM the PSS of QEMU's guest-RAM mapping (smaps), so guest memory and QEMU's own
 *    overhead are told apart;
 *  - what the instance's own memory cgroup charges (page cache not mapped by any process is
 *    added, since PSS cannot see it).
 */
import fs from 'node:fs';
import path from 'node:path';
import { guestRamMapping, instanceProcesses, listProcesses, readPss, readSmaps, type ProcInfo } from './proc.js';
import { locateMemcg, readCharge, type MemcgCharge } from './memcg.js';

export type ProcRole = 'workload' | 'monitor' | 'vmm';

export interface ProcMemory {
  pid: number;
  comm: string;
  role: ProcRole;
  /** Bytes. */
  pss: number;
  rss: number;
}

export interface InstanceMemory {
  /** Memory the instance was given (-m), bytes. */
  givenBytes: number;
  processes: ProcMemory[];
  /** Container: PSS of the container's processes. VM: PSS of QEMU's guest-RAM mapping. Bytes. */
  workloadBytes: number;
  /** Container: PSS of the monitor (conmon). VM: QEMU's PSS minus its guest RAM. Bytes. */
  overheadBytes: number;
  /** Page cache charged to the instance's own memory cgroup and mapped by no process (bytes); null when it has none. */
  pageCacheBytes: number | null;
  /** workload + overhead + page cache, bytes. */
  totalBytes: number;
  cgroup: { dir: string; charge: MemcgCharge } | null;
  /** How each figure was obtained, one sentence. */
  how: string;
}

export function roleOf(p: ProcInfo, mainTree: ReadonlySet<number>): ProcRole {
  if (/^qemu/.test(p.comm)) return 'vmm';
  if (p.comm === 'conmon' || !mainTree.has(p.pid)) return 'monitor';
  return 'workload';
}

/**
 * Pure part: combine per-process PSS, the guest RAM PSS (VMs) and the cgroup charge into the
 * figures above.
 */
export function combineMemory(input: {
  givenBytes: number;
  processes: ProcMemory[];
  guestRamPss: number | null;
  cgroup: { dir: string; charge: MemcgCharge } | null;
}): InstanceMemory {
  const sum = (r: ProcRole) => input.processes.filter((p) => p.role === r).reduce((a, p) => a + p.pss, 0);
  const vmm = sum('vmm');
  const isVm = input.processes.some((p) => p.role === 'vmm');
  const guest = isVm ? Math.min(vmm, input.guestRamPss ?? 0) : 0;
  const workloadBytes = isVm ? guest + sum('workload') : sum('workload');
  const overheadBytes = isVm ? vmm - guest + sum('monitor') : sum('monitor');
  const pageCacheBytes = input.cgroup ? Math.max(0, input.cgroup.charge.cacheBytes - input.cgroup.charge.mappedFileBytes) : null;
  const how = [
    'PSS from /proc/PID/smaps_rollup of every host process of the instance',
    isVm
      ? input.guestRamPss === null
        ? 'guest RAM mapping not found in QEMU smaps: all of QEMU counted as overhead'
        : "guest memory = Pss of QEMU's guest-RAM mapping in /proc/PID/smaps, overhead = the rest of QEMU's PSS"
      : 'workload = the container process tree, overhead = conmon',
    input.cgroup ? `page cache = unmapped page cache of its memory cgroup ${input.cgroup.dir} (${input.cgroup.charge.how})` : 'page cache not measured: the instance has no memory cgroup of its own',
  ].join('; ');
  return {
    givenBytes: input.givenBytes,
    processes: input.processes,
    workloadBytes,
    overheadBytes,
    pageCacheBytes,
    totalBytes: workloadBytes + overheadBytes + (pageCacheBytes ?? 0),
    cgroup: input.cgroup,
    how,
  };
}

/**
 * Measure one running instance on this host.
 * @param id full instance id (64 hex); processes naming it in their argv belong to it.
 * @param mainPid the instance's main process as `hull inspect` reports it (State.Pid).
 * @param givenBytes the memory limit it was started with, bytes.
 * @param procs a process table snapshot (default: read now); pass one to measure many at once.
 */
export function measureInstance(id: string, mainPid: number, givenBytes: number, procs: ProcInfo[] = listProcesses()): InstanceMemory {
  const members = instanceProcesses(procs, id, mainPid);
  const mainTree = new Set(members.filter((p) => isBelow(procs, p.pid, mainPid)).map((p) => p.pid));
  const processes: ProcMemory[] = [];
  let guestRamPss: number | null = null;
  for (const p of members) {
    const f = readPss(p.pid);
    if (!f) continue; // exited meanwhile
    const role = roleOf(p, mainTree);
    processes.push({ pid: p.pid, comm: p.comm, role, pss: f.pss, rss: f.rss });
    if (role === 'vmm') {
      const maps = readSmaps(p.pid);
      const g = maps && guestRamMapping(maps, givenBytes);
      if (g) guestRamPss = (guestRamPss ?? 0) + g.pss;
    }
  }
  // The instance's own memory cgroup: the one of its main process (container init, QEMU), when
  // every process in it belongs to the instance (else it is shared, e.g. the caller's own).
  let cgroup: InstanceMemory['cgroup'] = null;
  const anchor = processes.find((p) => p.role === 'workload' || p.role === 'vmm');
  const loc = anchor && locateMemcg(anchor.pid);
  if (loc && loc.cgPath !== '/' && ownedBy(loc.dir, new Set(members.map((p) => p.pid)))) {
    const charge = readCharge(loc);
    if (charge) cgroup = { dir: loc.dir, charge };
  }
  return combineMemory({ givenBytes, processes, guestRamPss, cgroup });
}

/** Whether every process of the cgroup at `dir` (cgroup.procs, this level only) is in `pids`. */
export function ownedBy(dir: string, pids: ReadonlySet<number>): boolean {
  let text: string;
  try {
    text = fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8');
  } catch {
    return false;
  }
  const list = text.split('\n').filter(Boolean).map(Number);
  return list.length > 0 && list.every((p) => pids.has(p));
}

function isBelow(procs: readonly ProcInfo[], pid: number, ancestor: number): boolean {
  const parent = new Map(procs.map((p) => [p.pid, p.ppid]));
  for (let cur: number | undefined = pid, hops = 0; cur && hops < 4096; cur = parent.get(cur), hops++) {
    if (cur === ancestor) return true;
  }
  return false;
}
