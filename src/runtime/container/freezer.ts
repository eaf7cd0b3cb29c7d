/**
 * A container's processes and its freezer, by cgroup path (docker pause/unpause, docker top).
 * v1 and hybrid hosts: the v1 freezer controller's `freezer.state` (FROZEN / THAWED; the kernel
 * passes through FREEZING until every task stopped). v2: `cgroup.freeze` and the `frozen` key of
 * `cgroup.events`. The layout is detected (cgroups.ts), never assumed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { HullError, precondition } from '../../errors.js';
import { type CgroupLayout, controllerDir } from './cgroups.js';

/** Where the freezer of `cgPath` lives on this host, or why there is none. */
export function freezerOf(layout: CgroupLayout, cgPath: string): { v2: boolean; dir: string } {
  if (layout.kind === 'v2') return { v2: true, dir: path.join(layout.mount, cgPath) };
  const dir = controllerDir(layout, 'freezer', cgPath);
  if (!dir) throw new HullError('UNAVAILABLE', 'this host has no cgroup freezer (the v1 freezer controller is not mounted): containers cannot be paused');
  return { v2: false, dir };
}

/** Whether the cgroup is frozen now (false when it is thawed or does not exist). */
export function isFrozen(layout: CgroupLayout, cgPath: string): boolean {
  const f = freezerOf(layout, cgPath);
  try {
    if (f.v2) return /^frozen 1$/m.test(fs.readFileSync(path.join(f.dir, 'cgroup.events'), 'utf8'));
    return fs.readFileSync(path.join(f.dir, 'freezer.state'), 'utf8').trim() === 'FROZEN';
  } catch {
    return false;
  }
}

/**
 * Freeze or thaw every process of the cgroup, resolving once the kernel reports the state
 * reached (a freeze waits for tasks in uninterruptible sleep; bounded by `timeoutMs`, default
 * 10 s, after which the cgroup is thawed again and the pause refused).
 */
export async function setFrozen(layout: CgroupLayout, cgPath: string, frozen: boolean, timeoutMs = 10_000): Promise<void> {
  const f = freezerOf(layout, cgPath);
  const file = path.join(f.dir, f.v2 ? 'cgroup.freeze' : 'freezer.state');
  if (!fs.existsSync(file)) throw precondition(`the cgroup ${cgPath} of the container is gone (is it running?)`);
  const want = f.v2 ? (frozen ? '1' : '0') : frozen ? 'FROZEN' : 'THAWED';
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; ; i++) {
    // v1: writing FROZEN again moves a FREEZING cgroup on (the kernel retries the tasks left)
    if (i === 0 || !f.v2) fs.writeFileSync(file, want);
    if (isFrozen(layout, cgPath) === frozen) return;
    if (Date.now() > deadline) {
      if (frozen) fs.writeFileSync(file, f.v2 ? '0' : 'THAWED');
      throw new HullError('UNAVAILABLE', `the container's processes did not ${frozen ? 'freeze' : 'thaw'} within ${timeoutMs} ms`);
    }
    await new Promise((r) => setTimeout(r, Math.min(50, 1 + i)));
  }
}

/** Host pids of every process in the cgroup (and cgroups below it), ascending. */
export function cgroupPids(layout: CgroupLayout, cgPath: string): number[] {
  const dir = layout.kind === 'v2' ? path.join(layout.mount, cgPath) : (controllerDir(layout, 'pids', cgPath) ?? controllerDir(layout, 'memory', cgPath) ?? controllerDir(layout, 'freezer', cgPath));
  if (!dir) return [];
  const out = new Set<number>();
  const walk = (d: string) => {
    let text = '';
    try {
      text = fs.readFileSync(path.join(d, 'cgroup.procs'), 'utf8');
    } catch {
      return;
    }
    for (const l of text.split('\n')) if (/^\d+$/.test(l)) out.add(Number(l));
    for (const e of fs.readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(path.join(d, e.name));
  };
  walk(dir);
  return [...out].sort((a, b) => a - b);
}
