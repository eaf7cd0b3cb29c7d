/**
 * The VM's cgroup, like Firecracker's jailer: QEMU runs in its own memory cgroup limited to the
 * guest RAM plus QEMU's overhead, so a runaway VMM cannot take the host's memory. No systemd:
 * plain cgroupfs. cgroup v2 (unified) at /sys/fs/cgroup/hull-vm/<id>, or the v1 memory
 * controller at /sys/fs/cgroup/memory/hull-vm/<id> (hybrid hosts like this one).
 */
import fs from 'node:fs';
import path from 'node:path';
import { rootKey } from '../../paths.js';
import { HullError } from '../../errors.js';

const CG = '/sys/fs/cgroup';

export interface VmCgroup {
  version: 1 | 2;
  dir: string;
}

/** QEMU's memory beyond guest RAM: its own heap, the TCG code cache (32 MiB), device buffers. */
export const QEMU_OVERHEAD_BYTES = 160 * 1024 * 1024;

/** Pure: the cgroup directory of a root's VMs for a cgroup version (hull-vm/<root key>). */
export function vmRootCgroupDir(version: 1 | 2, root: string): string {
  return version === 2 ? path.join(CG, 'hull-vm', rootKey(root)) : path.join(CG, 'memory', 'hull-vm', rootKey(root));
}

/** Pure: the cgroup directory of a VM for a cgroup version. */
export function vmCgroupDir(version: 1 | 2, root: string, id: string): string {
  return path.join(vmRootCgroupDir(version, root), id);
}

export function cgroupVersion(): 1 | 2 | undefined {
  if (fs.existsSync(path.join(CG, 'cgroup.controllers'))) return 2;
  if (fs.existsSync(path.join(CG, 'memory', 'memory.limit_in_bytes'))) return 1;
  return undefined;
}

/** Creates the cgroup with its memory limit; undefined when the host has no memory controller. */
export function createVmCgroup(root: string, id: string, limitBytes: number): VmCgroup | undefined {
  const version = cgroupVersion();
  if (!version) return undefined;
  const dir = vmCgroupDir(version, root, id);
  if (version === 2) {
    fs.mkdirSync(path.dirname(dir), { recursive: true });
    try {
      // the memory controller delegated down to the VM: CG -> hull-vm -> hull-vm/<root key>
      const rootDir = path.dirname(dir);
      for (const d of [CG, path.dirname(rootDir), rootDir]) fs.writeFileSync(path.join(d, 'cgroup.subtree_control'), '+memory');
    } catch {
      // controller already delegated, or not available: the limit write below tells
    }
  }
  fs.mkdirSync(dir, { recursive: true });
  try {
    fs.writeFileSync(path.join(dir, version === 2 ? 'memory.max' : 'memory.limit_in_bytes'), String(limitBytes));
    if (version === 2) fs.writeFileSync(path.join(dir, 'memory.swap.max'), '0');
  } catch (e) {
    if (version === 1 || !String(e).includes('memory.swap.max')) {
      try {
        fs.rmdirSync(dir);
      } catch {
        // nothing in it yet; a failure here leaves an empty directory at worst
      }
      throw e;
    }
  }
  return { version, dir };
}

export function procsFile(cg: VmCgroup): string {
  return path.join(cg.dir, 'cgroup.procs');
}

/** The pids in the cgroup (none when it is gone or unreadable). */
export function cgroupPids(cg: VmCgroup): number[] {
  try {
    return fs.readFileSync(procsFile(cg), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * Pure: how a single-threaded shell moves itself into the cgroup before it execs QEMU, as the
 * file to write and the word to write there. On v1 that is "0" (the writer itself) into `tasks`:
 * moving one thread skips the cgroup-wide threadgroup lock whose RCU grace period made writing
 * the pid into cgroup.procs take 3-15 ms on every VM start. v2 has no per-thread move for domain
 * cgroups: the shell's pid into cgroup.procs.
 */
export function joinCommand(cg: VmCgroup): { file: string; word: string } {
  return cg.version === 1 ? { file: path.join(cg.dir, 'tasks'), word: '0' } : { file: procsFile(cg), word: '$$' };
}

/** Memory charged to the VM (bytes), its limit, and whether the kernel OOM-killed in it. */
export function readVmCgroup(cg: VmCgroup): { usage: number; limit: number; oomKilled: boolean; pids: number } {
  const rd = (f: string) => {
    try {
      return fs.readFileSync(path.join(cg.dir, f), 'utf8');
    } catch {
      return '';
    }
  };
  const num = (s: string) => (/^\d+/.test(s.trim()) ? Number(s.trim()) : 0);
  const pids = cgroupPids(cg).length;
  if (cg.version === 2) {
    const ev = /^oom_kill (\d+)/m.exec(rd('memory.events'));
    return { usage: num(rd('memory.current')), limit: num(rd('memory.max')), oomKilled: !!ev && Number(ev[1]) > 0, pids };
  }
  const oc = /^oom_kill (\d+)/m.exec(rd('memory.oom_control'));
  return { usage: num(rd('memory.usage_in_bytes')), limit: num(rd('memory.limit_in_bytes')), oomKilled: !!oc && Number(oc[1]) > 0, pids };
}

/**
 * Removes the cgroup. Idempotent. Whatever still runs in it (a QEMU hull gave up on) is killed
 * first; an exited QEMU that its parent has not reaped yet still holds the cgroup on v1, so this
 * waits (asynchronously, letting this process reap its own children) up to `timeoutMs`, then
 * fails with a HullError naming the cgroup.
 */
export async function removeVmCgroup(cg: VmCgroup, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      fs.rmdirSync(cg.dir);
      return;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY' || Date.now() > end) throw new HullError('INTERNAL', `cannot remove the VM cgroup ${cg.dir}: ${(e as Error).message}`);
    }
    for (const p of cgroupPids(cg)) {
      if (p === process.pid) continue;
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // already gone (a zombie waiting for its parent)
      }
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}
