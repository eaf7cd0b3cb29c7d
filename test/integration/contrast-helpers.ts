/** Shared checks of the contrast integration tests: what may be left after a contrast. */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { HULL_BIN, hull, mountsUnder } from '../helpers/hull.js';
import type { ContrastReport } from '../../src/contrast/types.js';

/** Host processes whose command line names `root` (conmon, QEMU, runtimes of that root). */
export function processesUnder(root: string): string[] {
  const out: string[] = [];
  for (const n of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(n) || Number(n) === process.pid) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${n}/cmdline`, 'utf8').split('\0').join(' ');
      let cwd = '';
      try {
        cwd = fs.readlinkSync(`/proc/${n}/cwd`);
      } catch {
        /* kernel thread or gone */
      }
      // QEMU names its files relative to its working directory, the instance's directory
      if ((cmd.includes(root) || cwd.startsWith(`${root}/`)) && !cmd.includes('contrast')) out.push(`${n} (cwd ${cwd}): ${cmd.slice(0, 200)}`);
    } catch {
      /* gone */
    }
  }
  return out;
}

/** Everything a contrast may have left: listed instances, mounts, processes, cgroups it measured. */
export function leftovers(root: string, rep?: ContrastReport): string[] {
  const left: string[] = [];
  const ps = hull(root, ['ps', '-a', '-q']);
  if (ps.stdout.trim()) left.push(`instances: ${ps.stdout.trim().split('\n').join(' ')}`);
  // the disk dimension's anonymous volumes go with their instances
  const vols = hull(root, ['volume', 'ls', '-q']);
  if (vols.stdout.trim()) left.push(`volumes: ${vols.stdout.trim().split('\n').join(' ')}`);
  left.push(...mountsUnder(root).map((m) => `mount: ${m}`));
  left.push(...processesUnder(root).map((p) => `process ${p}`));
  const tmp = path.join(root, 'tmp');
  if (fs.existsSync(tmp)) left.push(...fs.readdirSync(tmp).filter((d) => d.startsWith('contrast-')).map((d) => `temp dir ${tmp}/${d}`));
  for (const w of rep?.walls ?? []) {
    const dir = w.memory?.cgroup?.dir;
    if (dir && w.kind === 'hull' && fs.existsSync(dir)) left.push(`cgroup ${dir}`);
  }
  return left;
}

/** Run `hull --root ROOT contrast busybox ARGS`, send SIGINT `delayMs` after its stderr matches `when`. */
export async function interruptedContrast(root: string, args: string[], when: RegExp, delayMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; sent: boolean }> {
  const child = spawn(HULL_BIN, ['--root', root, 'contrast', 'busybox', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let sent = false;
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
    if (!sent && when.test(stderr)) {
      sent = true;
      setTimeout(() => child.kill('SIGINT'), delayMs);
    }
  });
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('close', (c, sig) => resolve([c, sig])));
  return { code, signal, stderr, sent };
}

/** Why `hull run --isolation vm` does not work with this root ('' when it does). */
export function vmUnavailable(root: string): string {
  const v = hull(root, ['run', '--rm', '--isolation', 'vm', 'busybox', 'true'], { timeoutMs: 120_000 });
  return v.code === 0 ? '' : (v.stderr.trim().split('\n').pop() ?? `exit ${v.code}`);
}
