/**
 * Reference rows: the same workload run by peer tools installed on the machine, measured the
 * same way (wall time from the caller's side, PSS from /proc). The image comes out of hull with
 * `hull save` (docker-archive): podman loads it into a private temporary store (--root,
 * --runroot, --network none); crun and runc run it directly from an OCI bundle whose root is
 * the archive's layers extracted in order (whiteout files are not applied: fine for `true`).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { layout } from '../paths.js';
import { findExecutable, hardLimit, hybridSafe } from './hostfacts.js';
import { lastLine, runHull, timedRun } from './spawn.js';
import { parseInspect, type Driver, type IdleInstance } from './driver.js';

/** A temp dir holding the saved image, the extracted root and the bundle, shared by the peers. */
export interface PeerImage {
  dir: string;
  archive: string;
  rootfs: string;
}

/** `hull save` the image and extract its layers into a root directory. */
export async function exportImage(root: string, image: string): Promise<PeerImage> {
  fs.mkdirSync(layout(root).tmp, { recursive: true });
  const dir = fs.mkdtempSync(path.join(layout(root).tmp, 'contrast-peer-'));
  try {
    const archive = path.join(dir, 'image.tar');
    const s = await runHull(root, ['save', '-o', archive, image], { timeoutMs: 300_000 });
    if (s.code !== 0) throw new Error(`hull save ${image} failed: ${lastLine(s.stderr)}`);
    const x = path.join(dir, 'archive');
    fs.mkdirSync(x);
    const t = await timedRun('tar', ['-xf', archive, '-C', x]);
    if (t.code !== 0) throw new Error(`cannot extract the saved image: ${lastLine(t.stderr)}`);
    const manifest = JSON.parse(fs.readFileSync(path.join(x, 'manifest.json'), 'utf8')) as Array<{ Layers?: string[] }>;
    const layers = manifest[0]?.Layers ?? [];
    if (!layers.length) throw new Error('the saved image lists no layers');
    const rootfs = path.join(dir, 'rootfs');
    fs.mkdirSync(rootfs);
    for (const l of layers) {
      const r = await timedRun('tar', ['-xf', path.join(x, l), '-C', rootfs]);
      if (r.code !== 0) throw new Error(`cannot extract layer ${l}: ${lastLine(r.stderr)}`);
    }
    fs.rmSync(x, { recursive: true, force: true });
    return { dir, archive, rootfs };
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

/** crun or runc straight on an OCI bundle (the floor hull's container wall stands on). */
export function ociDriver(runtime: 'crun' | 'runc', img: PeerImage, tag: string, hybrid: boolean): Driver | undefined {
  const bin = findExecutable(runtime);
  if (!bin) return undefined;
  const base = path.join(img.dir, runtime);
  const bundle = path.join(base, 'bundle');
  const state = path.join(base, 'state');
  let seq = 0;
  const ids = new Set<string>();
  const argv = (sub: string[]) => hybridSafe([bin, '--root', state, ...sub], hybrid && runtime === 'crun');
  return {
    name: runtime,
    kind: 'reference',
    command: `${runtime} run -b BUNDLE ID   (config from '${runtime} spec': args true, read-only root)`,
    async prepare() {
      fs.mkdirSync(bundle, { recursive: true });
      fs.mkdirSync(state, { recursive: true });
      const r = await timedRun(bin, ['spec', '-b', bundle]);
      if (r.code !== 0) throw new Error(`${runtime} spec failed: ${lastLine(r.stderr)}`);
      const file = path.join(bundle, 'config.json');
      const spec = JSON.parse(fs.readFileSync(file, 'utf8')) as { process: { terminal: boolean; args: string[] }; root: { path: string; readonly: boolean } };
      spec.process.terminal = false;
      spec.process.args = ['true'];
      spec.root = { path: img.rootfs, readonly: true };
      fs.writeFileSync(file, JSON.stringify(spec, null, 2));
    },
    async startupOnce() {
      const id = `${tag}-${runtime}-${++seq}`;
      ids.add(id);
      const r = await timedRun(argv(['run', '-b', bundle, id])[0]!, argv(['run', '-b', bundle, id]).slice(1), { timeoutMs: 60_000 });
      if (r.code === 0) ids.delete(id);
      return { ms: r.ms, ok: r.code === 0, error: r.code === 0 ? undefined : lastLine(r.stderr) || `exit ${r.code}` };
    },
    async remove() {
      /* no idle instances */
    },
    async dispose() {
      const left: string[] = [];
      for (const id of ids) {
        const a = argv(['delete', '-f', id]);
        await timedRun(a[0]!, a.slice(1));
      }
      const l = argv(['list', '-q']);
      const r = await timedRun(l[0]!, l.slice(1));
      for (const id of r.stdout.split('\n').map((s) => s.trim()).filter((s) => s.startsWith(`${tag}-`))) left.push(`${runtime} container ${id}`);
      fs.rmSync(base, { recursive: true, force: true });
      return left;
    },
  };
}

/**
 * podman with a private temporary store and --network none. On a cgroup v1 hybrid host podman
 * uses runc (its default crun refuses hybrid mode); rlimits are clamped to the host's hard limits.
 */
export function podmanDriver(img: PeerImage, tag: string, hybrid: boolean): Driver | undefined {
  const bin = findExecutable('podman');
  if (!bin) return undefined;
  const base = path.join(img.dir, 'podman');
  // podman refuses a runroot longer than 50 characters: that one lives in a short temp dir.
  const runroot = fs.mkdtempSync(path.join(os.tmpdir(), 'hcp-'));
  const g = ['--root', path.join(base, 'root'), '--runroot', runroot, '--cgroup-manager', 'cgroupfs', '--events-backend', 'none', '--log-level', 'error'];
  if (hybrid) g.push('--runtime', 'runc');
  const nofile = hardLimit('Max open files') ?? 1048576;
  const nproc = Math.min(hardLimit('Max processes') ?? 32768, 32768);
  const runFlags = ['--network', 'none', '--ulimit', `nofile=${nofile}:${nofile}`, '--ulimit', `nproc=${nproc}:${nproc}`];
  let imageRef = '';
  let seq = 0;
  const names = new Set<string>();
  const podman = (args: string[], timeoutMs = 120_000) => timedRun(bin, [...g, ...args], { timeoutMs });
  return {
    name: 'podman',
    kind: 'reference',
    command: `podman run --rm --network none IMAGE true${hybrid ? '   (runtime runc: crun refuses cgroup v1 hybrid)' : ''}`,
    async prepare() {
      fs.mkdirSync(base, { recursive: true });
      const r = await podman(['load', '-q', '-i', img.archive], 300_000);
      if (r.code !== 0) throw new Error(`podman load failed: ${lastLine(r.stderr)}`);
      const m = /Loaded image(?:\(s\))?:\s*(\S+)/.exec(r.stdout);
      if (!m) throw new Error(`podman load did not name the image: ${lastLine(r.stdout)}`);
      imageRef = m[1]!.split(',')[0]!;
    },
    async startupOnce() {
      const name = `${tag}-podman-${++seq}`;
      names.add(name);
      const r = await podman(['run', '--rm', '--name', name, ...runFlags, imageRef, 'true']);
      if (r.code === 0) names.delete(name);
      return { ms: r.ms, ok: r.code === 0, error: r.code === 0 ? undefined : lastLine(r.stderr) || `exit ${r.code}` };
    },
    async startIdle(count, memoryBytes) {
      const want = Array.from({ length: count }, () => `${tag}-podman-${++seq}`);
      for (const n of want) names.add(n);
      const t0 = process.hrtime.bigint();
      const rs = await Promise.all(want.map((n) => podman(['run', '-d', '--name', n, '--memory', `${memoryBytes}b`, ...runFlags, imageRef, 'sleep', '1000'])));
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      const ok = want.filter((_, i) => rs[i]!.code === 0);
      const failures = rs.filter((r) => r.code !== 0).map((r) => lastLine(r.stderr));
      const instances: IdleInstance[] = [];
      if (ok.length) {
        const ins = await podman(['inspect', ...ok]);
        for (const e of parseInspect(ins.stdout)) instances.push({ name: e.name, id: e.id, pid: e.pid });
      }
      return { instances, ms, failures };
    },
    async remove(instances) {
      const list = instances ? instances.map((i) => i.name) : [...names];
      if (!list.length) return;
      await podman(['rm', '-f', '-t', '0', ...list]);
      for (const n of list) names.delete(n);
    },
    async probe(script) {
      const name = `${tag}-podman-${++seq}`;
      names.add(name);
      const r = await podman(['run', '--rm', '--name', name, ...runFlags, imageRef, 'sh', '-c', script]);
      if (r.code === 0) names.delete(name);
      return { ok: r.code === 0, stdout: r.stdout, error: r.code === 0 ? undefined : lastLine(r.stderr) };
    },
    async dispose() {
      const left: string[] = [];
      if (fs.existsSync(base)) {
        await podman(['rm', '-a', '-f', '-t', '0']);
        await podman(['rmi', '-a', '-f']);
        const ps = await podman(['ps', '-a', '-q']);
        if (ps.code === 0 && ps.stdout.trim()) left.push(`podman containers left in ${base}: ${ps.stdout.trim().split('\n').join(' ')}`);
        // Unmount whatever the store left mounted under its root, deepest first.
        const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(`${base}/`)).sort((a, b) => b.length - a.length);
        for (const m of mounts) await timedRun('umount', ['-l', m]);
      }
      const runMounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(`${runroot}/`));
      for (const m of runMounts.sort((a, b) => b.length - a.length)) await timedRun('umount', ['-l', m]);
      fs.rmSync(runroot, { recursive: true, force: true });
      return left;
    },
  };
}

/** Remove the shared temp dir (after every peer driver is disposed). */
export function removePeerImage(img: PeerImage): void {
  fs.rmSync(img.dir, { recursive: true, force: true });
}
