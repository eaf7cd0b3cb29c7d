/**
 * Tools run inside a container's root filesystem (docker cp, the archive routes): the host's
 * static busybox (tar, stat, test, readlink) under `hull-inroot` (native/hull-inroot.c), which
 * chroots into the root first, so every path and symlink resolves inside the container as
 * docker's chrootarchive does. A running container's root is /proc/PID/root; a stopped one's is
 * its overlay (layers + its upper dir, its binds and volumes over it) mounted in a private mount
 * namespace that ends with the tool. The builders are pure.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { HullError } from '../../errors.js';
import { packageRoot } from '../../paths.js';
import type { MountSpec } from '../types.js';
import { overlayOptions, type OverlayPlan } from './runtime.js';

/** The static busybox of Debian's busybox-static (the PKGS list of scripts/setup.sh). */
export const HOST_BUSYBOX = '/bin/busybox';

export function inRootHelper(env: NodeJS.ProcessEnv = process.env): string {
  const p = env.HULL_INROOT ?? path.join(packageRoot(), 'build', 'bin', 'hull-inroot');
  if (!fs.existsSync(p)) throw new HullError('UNAVAILABLE', `the helper ${p} is missing`, { hint: 'run scripts/setup.sh (it builds build/bin/hull-inroot)' });
  return p;
}

/**
 * The shell that mounts a stopped container's view in its private namespace: $1 overlay options,
 * $2 mount point, $3 number of binds, then SRC DST RO triples, then the tool's argv.
 */
export const VIEW_SCRIPT = [
  'set -e',
  'opts=$1; mnt=$2; n=$3; shift 3',
  'mount --make-rprivate / 2>/dev/null || true',
  'mount -t overlay -o "$opts" hull-cp "$mnt"',
  'while [ "$n" -gt 0 ]; do',
  '  src=$1; dst=$2; ro=$3; shift 3; n=$((n - 1))',
  '  mkdir -p "$mnt$dst" 2>/dev/null || true',
  '  mount --bind "$src" "$mnt$dst"',
  '  if [ "$ro" = ro ]; then mount -o remount,bind,ro "$mnt$dst"; fi',
  'done',
  'exec "$@"',
].join('\n');

/** argv of a tool in a running container (pure). */
export function runningArgv(helper: string, pid: number, tool: string[]): string[] {
  return [helper, `/proc/${pid}/root`, HOST_BUSYBOX, ...tool];
}

/** argv of a tool in a stopped container's view mounted at `mnt` (pure). */
export function stoppedArgv(helper: string, plan: OverlayPlan, mnt: string, binds: MountSpec[], tool: string[]): string[] {
  const triples = binds.flatMap((m) => [m.source!, m.destination, m.readOnly ? 'ro' : 'rw']);
  return ['unshare', '-m', '--propagation', 'private', 'sh', '-c', VIEW_SCRIPT, 'hull-cp', overlayOptions({ ...plan, volatile: false, idmap: undefined }), mnt, String(binds.length), ...triples, helper, mnt, HOST_BUSYBOX, ...tool];
}

/** Run argv with `stdin` piped in and stdout to `stdout`; resolves with the exit code and stderr (first 64 KiB). */
export function runTool(argv: string[], io: { stdin?: Readable; stdout: Writable }): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn(argv[0]!, argv.slice(1), { stdio: [io.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    let stderr = '';
    c.stderr!.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < 65536) stderr += d;
    });
    c.stdout!.pipe(io.stdout, { end: false });
    if (io.stdin && c.stdin) {
      io.stdin.pipe(c.stdin);
      c.stdin.on('error', () => undefined); // the tool may exit before reading everything
      io.stdin.on('error', () => c.kill('SIGKILL'));
    }
    c.on('error', (e) => reject(new HullError('UNAVAILABLE', `cannot run ${argv[0]}: ${e.message}`, { cause: e })));
    c.on('close', (code, sig) => {
      if (io.stdin && c.stdin) io.stdin.unpipe(c.stdin);
      resolve({ code: code ?? (sig ? 128 : 1), stderr });
    });
  });
}
