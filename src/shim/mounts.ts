/**
 * Host mounts of a pod: containerd's rootfs (an overlay of the snapshotter's directories) at
 * the bundle's rootfs/, and binds of it and of each bind-mount source into the pod's share,
 * where virtiofsd serves them to the guest. Done with util-linux mount(8)/umount(8) (argv built
 * by pure functions).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { HullError } from '../errors.js';

/** A containerd mount (containerd.types.Mount). */
export interface CtrdMount {
  type: string;
  source: string;
  target?: string;
  options: string[];
}

/** Pure: mount(8) argv for a containerd mount at `target`. */
export function mountArgs(m: CtrdMount, target: string): string[] {
  if (!/^[a-z0-9_.]+$/.test(m.type)) throw new HullError('INVALID_ARGUMENT', `rootfs mount type ${JSON.stringify(m.type)} is not a filesystem type`);
  const bind = m.type === 'bind' || m.options.includes('bind') || m.options.includes('rbind');
  const opts = bind && !m.options.includes('bind') && !m.options.includes('rbind') ? ['rbind', ...m.options] : m.options;
  for (const o of opts) if (o.includes(',') && !o.startsWith('lowerdir=')) throw new HullError('INVALID_ARGUMENT', `mount option ${JSON.stringify(o)} contains a comma`);
  return ['-t', bind ? 'none' : m.type, ...(opts.length ? ['-o', opts.join(',')] : []), m.source, target];
}

function run(cmd: string, args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    c.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    c.on('error', (e) => resolve({ code: 127, stderr: e.message }));
    c.on('close', (code) => resolve({ code: code ?? 1, stderr: stderr.trim() }));
  });
}

/** Whether `p` is a mount point now (listed in /proc/self/mountinfo). */
export function isMountPoint(p: string): boolean {
  const abs = path.resolve(p);
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => unescapeMountPath(l.split(' ')[4] ?? '') === abs);
}

/** Mount points at or under `dir`, deepest first (the order to unmount them in). */
export function mountsUnder(dir: string): string[] {
  const abs = path.resolve(dir);
  const all = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => unescapeMountPath(l.split(' ')[4] ?? ''));
  return [...new Set(all.filter((m) => m === abs || m.startsWith(`${abs}/`)))].sort((a, b) => b.length - a.length);
}

function unescapeMountPath(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Mounts every containerd mount at `target` in order (the first over `target`, later ones over it). */
export async function mountAll(mounts: CtrdMount[], target: string): Promise<void> {
  for (const m of mounts) {
    const r = await run('mount', mountArgs(m, target));
    if (r.code !== 0) throw new HullError('INTERNAL', `mounting the ${m.type} rootfs at ${target} failed: ${r.stderr || `mount exit ${r.code}`}`);
  }
}

/** Binds `source` (a directory or a file) at `target`, creating the target as the same kind. */
export async function bindMount(source: string, target: string, readOnly = false): Promise<void> {
  const st = fs.statSync(source);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  if (st.isDirectory()) fs.mkdirSync(target, { recursive: true });
  else fs.closeSync(fs.openSync(target, 'a'));
  const r = await run('mount', ['--rbind', ...(readOnly ? ['-o', 'ro'] : []), source, target]);
  if (r.code !== 0) throw new HullError('INTERNAL', `binding ${source} at ${target} failed: ${r.stderr || `mount exit ${r.code}`}`);
}

/**
 * Unmounts everything at or under `dir`, deepest first. A mount still busy after `busyMs` (the
 * guest's virtiofsd may hold files of it a moment longer) is detached lazily: it leaves the
 * namespace now and the kernel frees it once the last file is closed.
 */
export async function unmountAll(dir: string, busyMs = 1000): Promise<void> {
  for (const m of mountsUnder(dir)) {
    const end = Date.now() + busyMs;
    for (;;) {
      const r = await run('umount', [m]);
      if (r.code === 0 || !isMountPoint(m)) break;
      if (Date.now() > end) {
        const l = await run('umount', ['-l', m]);
        if (l.code !== 0 && isMountPoint(m)) throw new HullError('INTERNAL', `cannot unmount ${m}: ${l.stderr || r.stderr}`);
        break;
      }
      await new Promise((res) => setTimeout(res, 50));
    }
  }
}
