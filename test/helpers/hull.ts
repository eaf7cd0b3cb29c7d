/**
 * Test helpers: a throw-away hull root per test file, the CLI run as a real process, and the
 * offline busybox image imported into that root. Integration tests never touch /var/lib/hull.
 */
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cgroupDirs, detectCgroupLayout, rootCgroupPath } from '../../src/runtime/container/cgroups.js';
import { vmRootCgroupDir } from '../../src/runtime/vm/cgroup.js';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** Why the VM wall cannot run here ('' when it can): the guest kernel and QEMU, each a skip reason. */
export function vmMissing(): string {
  if (!fs.existsSync(path.join(REPO, 'build', 'guest', 'vmlinux'))) return 'guest kernel not built (scripts/setup.sh)';
  return spawnSync('qemu-system-x86_64', ['--version']).status !== 0 ? 'qemu-system-x86_64 missing' : '';
}
export const HULL_BIN = path.join(REPO, 'bin', 'hull');
export const BUSYBOX_ROOTFS = path.join(REPO, 'build', 'images', 'busybox-rootfs.tar');

export interface TempRoot {
  root: string;
  /**
   * Remove the root (after the test has checked nothing is left running in it). Containers a
   * failed test left behind are removed through hull first, so their processes, mounts and
   * network namespaces go with them and the failure is the test's own, not a later EBUSY.
   */
  cleanup(): void;
}

export function makeTempRoot(prefix = 'hull-test-'): TempRoot {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return {
    root,
    cleanup() {
      if (fs.existsSync(path.join(root, 'hull.db'))) {
        const ids = hull(root, ['ps', '-aq', '--no-trunc']).stdout.split('\n').filter(Boolean);
        if (ids.length) hull(root, ['rm', '-f', ...ids]);
      }
      fs.rmSync(root, { recursive: true, force: true });
      // the root's cgroup parents (kept while a root lives, as docker keeps /docker): only when
      // empty, so a leaked container cgroup still shows
      const dirs = [...cgroupDirs(detectCgroupLayout(), rootCgroupPath(root)), vmRootCgroupDir(1, root), vmRootCgroupDir(2, root)];
      for (const d of dirs) {
        try {
          fs.rmdirSync(d);
        } catch {
          // absent, or not empty
        }
      }
    },
  };
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run `hull --root ROOT ...args` to completion. */
export function hull(root: string, args: string[], opts: { input?: string | Buffer; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): RunResult {
  const r: SpawnSyncReturns<string> = spawnSync(HULL_BIN, ['--root', root, ...args], {
    input: opts.input,
    encoding: 'utf8',
    env: { ...process.env, ...opts.env },
    timeout: opts.timeoutMs ?? 120_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) throw r.error;
  return { code: r.status ?? (r.signal ? 128 + os.constants.signals[r.signal] : 1), stdout: r.stdout, stderr: r.stderr };
}

/** Async variant, for running many at once. */
export function hullAsync(root: string, args: string[], opts: { env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const c = spawn(HULL_BIN, ['--root', root, ...args], { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    c.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    c.on('error', reject);
    c.on('close', (code, sig) => resolve({ code: code ?? (sig ? 128 + os.constants.signals[sig] : 1), stdout, stderr }));
  });
}

/**
 * build/test/, holding test/fixtures/NAME.c built static (once, again when the source is newer):
 * bind-mount it into a busybox container to run the program there.
 */
export function staticFixtureDir(name: string): string {
  const dir = path.join(REPO, 'build', 'test');
  const bin = path.join(dir, name);
  const src = path.join(REPO, 'test', 'fixtures', `${name}.c`);
  if (!fs.existsSync(bin) || fs.statSync(bin).mtimeMs < fs.statSync(src).mtimeMs) {
    fs.mkdirSync(dir, { recursive: true });
    const tmp = `${bin}.${process.pid}.tmp`;
    const r = spawnSync('gcc', ['-static', '-O2', '-o', tmp, src], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`building the fixture ${name}.c failed: ${r.stderr}`);
    fs.renameSync(tmp, bin);
  }
  return dir;
}

/** Import the offline busybox image (made by set-up) into `root` as busybox:latest. */
export function importBusybox(root: string): void {
  const r = spawnSync('bash', [path.join(REPO, 'scripts', 'import-busybox.sh'), root], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`importing busybox failed: ${r.stderr}`);
}

/** Mount points under `dir` still listed in /proc/self/mountinfo. */
export function mountsUnder(dir: string): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m.startsWith(dir));
}

/** Processes (other than this one) whose command line contains `needle`, as 'pid: cmdline'. */
export function processesMentioning(needle: string): string[] {
  const out: string[] = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmd.includes(needle)) out.push(`${p}: ${cmd.slice(0, 200)}`);
    } catch {
      /* gone */
    }
  }
  return out;
}

/**
 * Processes (other than this one) that belong to a hull root: their command line names it
 * (conmon, runtimes, exit hooks, monitor shells) or they work in it (QEMU's cwd is its
 * instance directory; its files arrive as inherited descriptors, so its argv names none).
 */
export function processesOfRoot(root: string): string[] {
  const out: string[] = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      if (/\) Z /.test(stat)) continue; // a zombie runs nothing
      const cmd = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ');
      let cwd = '';
      try {
        cwd = fs.readlinkSync(`/proc/${p}/cwd`);
      } catch {
        /* not ours to read */
      }
      if (cmd.includes(root) || cwd.startsWith(root)) out.push(`${p}: ${cmd.slice(0, 200)}`);
    } catch {
      /* gone */
    }
  }
  return out;
}

/** A small seeded PRNG (mulberry32): the same seed gives the same sequence. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Remove every volume of the root (the end of a test file that made some). */
export function removeAllVolumes(root: string): void {
  const names = hull(root, ['volume', 'ls', '-q']).stdout.split('\n').filter(Boolean);
  if (names.length) hull(root, ['volume', 'rm', ...names]);
}

/**
 * Builds `tag` (busybox plus /big, `mib` MiB of random bytes) in `root`: an image far larger than
 * any a VM template saw. Returns what `sh -c 'tail -c 4096 /big | md5sum; md5sum /big'` must print
 * in it, and a function that removes the image and the build context.
 */
export function buildBigImage(root: string, tag: string, mib = 48): { expect: string; remove(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-bigimg-'));
  const remove = () => {
    fs.rmSync(dir, { recursive: true, force: true });
    hull(root, ['rmi', '-f', tag]);
  };
  try {
    const big = crypto.randomBytes(mib * 1024 * 1024);
    fs.writeFileSync(path.join(dir, 'big'), big);
    fs.writeFileSync(path.join(dir, 'Dockerfile'), 'FROM busybox\nCOPY big /big\n');
    const b = hull(root, ['build', '-q', '-t', tag, dir], { timeoutMs: 300_000 });
    if (b.code !== 0) throw new Error(`building ${tag} failed: ${b.stderr}`);
    const tail = crypto.createHash('md5').update(big.subarray(big.length - 4096)).digest('hex');
    const whole = crypto.createHash('md5').update(big).digest('hex');
    return { expect: `${tail}  -\n${whole}  /big\n`, remove };
  } catch (e) {
    remove();
    throw e;
  }
}
