/**
 * The warm pool (issue 13): N guests restored from a template and paused, so that a foreground
 * `hull run --rm --vm` claims one instead of starting QEMU and loading the state itself.
 *
 * Layout under <root>/vmpool/:
 *   pool.json        what `hull vm pool --size N --memory M --cpus C` asked for
 *   keeper           processIdentity of the keeper (the process that fills and drains the pool);
 *                    which process is the keeper is decided by the kernel, not by this file: the
 *                    keeper holds an abstract unix socket named after the root (keeperLockName),
 *                    which one process at a time can bind and which ends with it
 *   keeper.log       its messages
 *   .starting-<id>/  a guest being restored (renamed to <id>/ once it is ready)
 *   <id>/            a ready guest: QEMU paused after the state loaded (-S), its ports unix
 *                    sockets it listens on (out, err, main, run, ctl), its status a file, its
 *                    root disk the template's placeholder, entry.json says what it is
 *   .drain-<id>/     a guest being stopped
 *
 * A claim is one rename(2) of <id>/ to the run's <instance>/vm/: atomic, so two runs never get
 * the same guest, and QEMU's working directory (every relative path it uses) moves with it. The
 * run then hard-links its image's erofs disk into the directory, has QEMU open it (QMP
 * blockdev-add) and swap it under the guest's virtio-blk (blockdev-reopen of the `root` node),
 * connects the ports, continues the vCPUs and sends the run's T_RESUME frame, as a restore does.
 * The guest has never read the placeholder, so it reads only the image.
 *
 * Each guest has its own memory cgroup (guest RAM + QEMU's overhead, as any VM) which the claim
 * takes over; the pool as a whole is bounded (maxPoolSize). Guests are restored at nice 10 so a
 * refill yields to foreground work; a claim puts every QEMU thread back to nice 0.
 */
import { execFile, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { HullError } from '../../errors.js';
import { rootKey } from '../../paths.js';
import { identityAlive, procStartTime, processIdentity } from '../../util/proc.js';
import { guestAssets, hostTscKhz, qemuBinary, vmmuxBinary } from './assets.js';
import { createVmCgroup, QEMU_OVERHEAD_BYTES, removeVmCgroup, type VmCgroup } from './cgroup.js';
import { connectCtl, ctlAddress } from './control.js';
import { newcFile } from './cpio.js';
import { decodeStatus, encodeRehearseFrame, type GuestRunSpec } from './protocol.js';
import { qemuLaunchScript } from './qemu-args.js';
import { QmpSession } from './qmp.js';
import { chooseBoot, templateQemuArgs, waitStatus, type Template, type TemplateShape } from './snapshot.js';

const NOBODY = 65534;
/** A pool guest must be restored and paused within this. */
const START_WAIT_MS = 60_000;
/** The TCG translation cache of a pool guest: claimed by foreground runs, as attached runs use. */
const POOL_TB_MIB = 32;
/** Refills run at this nice value; a claimed guest goes back to 0. */
export const POOL_NICE = 10;
export const MAX_POOL_SIZE = 32;
/** A refill after a claim waits at most this long for the claimed guest to end. */
const REFILL_DEFER_MS = 2000;

export interface PoolConfig {
  size: number;
  memMiB: number;
  cpus: number;
}

export interface PoolEntry {
  id: string;
  /** The template this guest was restored from (a run of the same shape has the same key). */
  templateKey: string;
  memMiB: number;
  cpus: number;
  accel: string;
  /** QEMU, and the shell that waits for it (writes qemu.rc; its process group holds hull-vmmux too). */
  pid: number;
  startTime: number;
  shellPid: number;
  cgroup?: VmCgroup;
  created: string;
  /** Who restored it (a dead keeper's guests are orphans: drained by the next keeper or system check). */
  keeper: string;
}

export interface Claimed extends PoolEntry {
  /** Where the guest now lives (the run's vm directory). */
  dir: string;
}

export function poolDir(root: string): string {
  return path.join(root, 'vmpool');
}

/** Pure: the host memory one pool guest may take (its cgroup limit). */
export function guestBound(memMiB: number): number {
  return memMiB * 1024 * 1024 + QEMU_OVERHEAD_BYTES;
}

/** Pure: the largest pool a host with `memTotal` bytes allows: half of its memory, at most MAX_POOL_SIZE guests. */
export function maxPoolSize(memMiB: number, memTotal: number): number {
  return Math.max(0, Math.min(MAX_POOL_SIZE, Math.floor(memTotal / 2 / guestBound(memMiB))));
}

/** Pure: checks a requested pool; the error names what is wrong. */
export function validatePoolConfig(c: PoolConfig, memTotal = os.totalmem()): void {
  if (!Number.isInteger(c.size) || c.size < 0) throw new HullError('INVALID_ARGUMENT', `--size ${c.size}: want a whole number >= 0`);
  if (!Number.isInteger(c.memMiB) || c.memMiB < 64) throw new HullError('INVALID_ARGUMENT', `--memory ${c.memMiB}m: a VM needs at least 64m`);
  if (!Number.isInteger(c.cpus) || c.cpus < 1 || c.cpus > 8) throw new HullError('INVALID_ARGUMENT', `--cpus ${c.cpus}: want 1 to 8`);
  const max = maxPoolSize(c.memMiB, memTotal);
  if (c.size > max) {
    throw new HullError('INVALID_ARGUMENT', `--size ${c.size}: a pool of ${c.memMiB}m guests is bounded to ${max} here (each may take ${Math.round(guestBound(c.memMiB) / 1048576)} MiB, the pool at most half of the host's ${Math.round(memTotal / 1073741824)} GiB and at most ${MAX_POOL_SIZE} guests)`);
  }
}

export function readPoolConfig(root: string): PoolConfig {
  try {
    const c = JSON.parse(fs.readFileSync(path.join(poolDir(root), 'pool.json'), 'utf8')) as PoolConfig;
    return { size: c.size ?? 0, memMiB: c.memMiB ?? 128, cpus: c.cpus ?? 1 };
  } catch {
    return { size: 0, memMiB: 128, cpus: 1 };
  }
}

export function writePoolConfig(root: string, c: PoolConfig): void {
  fs.mkdirSync(poolDir(root), { recursive: true, mode: 0o755 });
  const tmp = path.join(poolDir(root), `.pool.json-${process.pid}`);
  fs.writeFileSync(tmp, JSON.stringify(c));
  fs.renameSync(tmp, path.join(poolDir(root), 'pool.json'));
}

/** The keeper's identity when one runs for this root. */
export function keeperAlive(root: string): string | undefined {
  try {
    const id = fs.readFileSync(path.join(poolDir(root), 'keeper'), 'utf8').trim();
    return identityAlive(id) ? id : undefined;
  } catch {
    return undefined;
  }
}

function readEntry(dir: string): PoolEntry | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, 'entry.json'), 'utf8')) as PoolEntry;
  } catch {
    return undefined;
  }
}

function qemuAlive(e: Pick<PoolEntry, 'pid' | 'startTime'>): boolean {
  return procStartTime(e.pid) === e.startTime;
}

/** Ready guests (not starting, not being drained), oldest first. */
export function readyEntries(root: string): PoolEntry[] {
  let names: string[] = [];
  try {
    names = fs.readdirSync(poolDir(root), { withFileTypes: true }).filter((d) => d.isDirectory() && !d.name.startsWith('.')).map((d) => d.name);
  } catch {
    return [];
  }
  return names.map((n) => readEntry(path.join(poolDir(root), n))).filter((e): e is PoolEntry => !!e).sort((a, b) => a.created.localeCompare(b.created));
}

/** Guests being restored now. */
export function startingCount(root: string): number {
  try {
    return fs.readdirSync(poolDir(root)).filter((n) => n.startsWith('.starting-')).length;
  } catch {
    return 0;
  }
}

/**
 * Claims a ready guest restored from template `templateKey` by renaming it to `dest` (which must
 * not exist). undefined when there is none (the run restores or boots as without a pool).
 */
export function claim(root: string, templateKey: string, dest: string): Claimed | undefined {
  for (const e of readyEntries(root)) {
    if (e.templateKey !== templateKey || !qemuAlive(e)) continue;
    try {
      fs.renameSync(path.join(poolDir(root), e.id), dest);
    } catch {
      continue; // another run took it first, or it is being drained
    }
    return { ...e, dir: dest };
  }
  return undefined;
}

/** Every thread of `pid` back to nice 0 (setpriority on a pid moves one thread only). */
export function reniceAll(pid: number, nice = 0): void {
  let tids: string[] = [];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return;
  }
  for (const t of tids) {
    try {
      os.setPriority(Number(t), nice);
    } catch {
      // the thread ended
    }
  }
}

/**
 * Hands a claimed guest its image: QEMU opens `disk` (a hard link in its directory: QEMU may run
 * as nobody, who cannot reach the image store) and the guest's `root` node is moved onto it.
 */
export async function swapDisk(qmp: QmpSession, c: Claimed, imageDisk: string): Promise<void> {
  const link = path.join(c.dir, 'disk');
  fs.rmSync(link, { force: true });
  fs.linkSync(imageDisk, link);
  await qmp.run('blockdev-add', { driver: 'file', 'node-name': 'disk1', filename: 'disk', 'read-only': true });
  await qmp.run('blockdev-reopen', { options: [{ driver: 'raw', 'node-name': 'root', file: 'disk1', 'read-only': true }] });
  await qmp.run('blockdev-del', { 'node-name': 'disk0' });
}

/** Polls `file` until it exists, `alive()` is false, or `ms` pass. */
async function waitFile(file: string, ms: number, alive: () => boolean): Promise<boolean> {
  for (const end = Date.now() + ms; ;) {
    if (fs.existsSync(file)) return true;
    if (!alive() || Date.now() > end) return fs.existsSync(file);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Ends a guest (claimed or not): QEMU and its shell's process group, the cgroup, the directory. */
export async function stopGuest(dir: string, e: Partial<PoolEntry> | undefined): Promise<void> {
  if (e?.pid && e.startTime && qemuAlive(e as PoolEntry)) {
    try {
      process.kill(e.pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  if (e?.shellPid) {
    // the shell writes qemu.rc once QEMU has been reaped; hull-vmmux is in its process group
    await waitFile(path.join(dir, 'qemu.rc'), 5000, () => procStartTime(e.shellPid!) !== undefined);
    try {
      process.kill(-e.shellPid, 'SIGKILL');
    } catch {
      // the group is gone
    }
  }
  if (e?.cgroup) await removeVmCgroup(e.cgroup).catch(() => undefined);
  fs.rmSync(dir, { recursive: true, force: true });
}

/** Drains one ready guest (rename first: a run cannot claim it meanwhile). */
export async function drainEntry(root: string, e: PoolEntry): Promise<boolean> {
  const gone = path.join(poolDir(root), `.drain-${e.id}`);
  try {
    fs.renameSync(path.join(poolDir(root), e.id), gone);
  } catch {
    return false; // claimed meanwhile
  }
  await stopGuest(gone, e);
  return true;
}

/** What a pool guest's template shape is, for the pool's config (no NICs: claims are --network none runs). */
export async function poolShape(c: PoolConfig): Promise<TemplateShape> {
  const { chooseAccel } = await import('./accel.js');
  const assets = guestAssets();
  const qemu = qemuBinary();
  const accel = await chooseAccel('auto', qemu, assets.kernel, assets.initramfs);
  return { memMiB: c.memMiB, cpus: c.cpus, accel: accel.accel, tscKhz: hostTscKhz(), kernel: assets.kernel, initramfs: assets.initramfs, qemu, nics: 0 };
}

/** The template of a shape, built when there is none (the pool is useless without one). */
export async function poolTemplate(root: string, shape: TemplateShape): Promise<Template> {
  const plan = await chooseBoot(root, 'auto', shape);
  if (plan.boot !== 'restore') throw new HullError('UNAVAILABLE', `no VM template for the pool: ${plan.reason}`);
  return plan.template;
}

/**
 * The disk of a pool guest's rehearsal (guest/snapshot.c): an erofs holding a copy of the guest
 * agent as /rehearsal (run with the argument `rehearsal` it exits 0 at once) and an /etc, so the
 * rehearsal runs the mounts, the overlay copy-up of /etc/hosts and a process start and exit of a
 * real run. One per agent, made once (atomically: a temporary name, then a rename).
 */
export async function rehearsalDisk(root: string, initramfs: string): Promise<string> {
  const cpio = fs.readFileSync(initramfs);
  const agent = newcFile(cpio, 'init');
  if (!agent) throw new HullError('UNAVAILABLE', `the guest initramfs ${initramfs} has no /init`);
  const key = crypto.createHash('sha256').update(agent).digest('hex').slice(0, 16);
  const out = path.join(poolDir(root), `rehearsal-${key}.erofs`);
  if (fs.existsSync(out)) return out;
  const dir = fs.mkdtempSync(path.join(poolDir(root), '.rehearsal-'));
  try {
    fs.mkdirSync(path.join(dir, 'tree', 'etc'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'tree', 'rehearsal'), agent, { mode: 0o755 });
    fs.writeFileSync(path.join(dir, 'tree', 'etc', 'hosts'), '127.0.0.1\tlocalhost\n');
    fs.writeFileSync(path.join(dir, 'tree', 'etc', 'hostname'), 'rehearsal\n');
    await new Promise<void>((resolve, reject) => {
      execFile('mkfs.erofs', ['--quiet', '-T0', path.join(dir, 'disk'), path.join(dir, 'tree')], (e, _o, err) => (e ? reject(new HullError('UNAVAILABLE', `mkfs.erofs for the pool's rehearsal disk: ${String(err).trim() || e.message}`, { hint: 'apt-get install erofs-utils' })) : resolve()));
    });
    fs.chmodSync(path.join(dir, 'disk'), 0o644);
    fs.renameSync(path.join(dir, 'disk'), out);
    return out;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** A guest restored but its rehearsal failed (the keeper then offers guests without one). */
export class RehearsalFailed extends HullError {
  constructor(message: string) {
    super('UNAVAILABLE', message);
  }
}

/** The rehearsal run a pool guest gets before it is paused (what a claim's run will do, on its own disk). */
export const REHEARSAL: GuestRunSpec = { args: ['/rehearsal', 'rehearsal'], env: ['PATH=/'], cwd: '/', hostname: 'rehearsal' };

/**
 * Restores one guest of `tpl` into the pool, rehearses a run in it (`rehearsal`: the disk above;
 * TCG then has the code of a run translated when the claim comes) and leaves it paused: ready to
 * be claimed. Nothing is left when it fails.
 */
export async function startGuest(root: string, shape: TemplateShape, tpl: Template, keeper = processIdentity(process.pid), rehearsal?: string): Promise<PoolEntry> {
  const id = crypto.randomBytes(8).toString('hex');
  const base = poolDir(root);
  fs.mkdirSync(base, { recursive: true, mode: 0o755 });
  const tmp = path.join(base, `.starting-${id}`);
  fs.mkdirSync(tmp, { mode: 0o700 });
  const asNobody = process.getuid?.() === 0;
  if (asNobody) fs.chownSync(tmp, NOBODY, NOBODY);
  let cgroup: VmCgroup | undefined;
  let entry: PoolEntry | undefined;
  let qmp: QmpSession | undefined;
  try {
    cgroup = createVmCgroup(root, `pool-${id}`, guestBound(shape.memMiB));
    const qemu = shape.qemu;
    const args = templateQemuArgs(shape, {
      build: false, tbSizeMiB: POOL_TB_MIB, qmp: 'qmp.sock', ramFd: 6, tapFds: [], paused: true,
      ports: {
        status: { kind: 'file', path: 'status' },
        stdout: { kind: 'listen', path: 'out.sock' }, stderr: { kind: 'listen', path: 'err.sock' },
        main: { kind: 'listen', path: 'main.sock' }, run: { kind: 'listen', path: 'run.sock' },
        ctl: { kind: 'listen', path: 'ctl.sock' },
      },
    });
    const errFd = fs.openSync(path.join(tmp, 'qemu.err'), 'w', 0o600);
    const fds = [fs.openSync(shape.kernel, 'r'), fs.openSync(tpl.initrd, 'r'), fs.openSync(rehearsal ?? tpl.disk, 'r'), fs.openSync(tpl.ram, 'r+'), fs.openSync(tpl.state, 'r')];
    const priv = asNobody ? ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups'] : ['setpriv'];
    const mux = vmmuxBinary();
    // the shell stays (outside the cgroup) to record QEMU's exit status once it is reaped
    const script = qemuLaunchScript({ cgroup, mux: mux ? [...(asNobody ? priv : []), mux] : undefined, monitor: { pidFile: 'qemu.pid', rcFile: 'qemu.rc' } });
    let child;
    try {
      child = spawn('sh', ['-c', script, 'hull-vm', ...priv, qemu, ...args], {
        cwd: tmp, stdio: ['ignore', 'ignore', errFd, ...fds], detached: true,
      });
    } finally {
      for (const fd of [errFd, ...fds]) fs.closeSync(fd);
    }
    child.on('error', () => undefined);
    child.unref();
    const shellPid = child.pid ?? 0;
    const shellAlive = () => procStartTime(shellPid) !== undefined;
    // the shell creates qemu.pid, then writes the pid and a newline: wait for the whole line
    const pidLine = () => {
      try {
        return /^(\d+)\n$/.exec(fs.readFileSync(path.join(tmp, 'qemu.pid'), 'utf8'))?.[1];
      } catch {
        return undefined;
      }
    };
    for (const end = Date.now() + 5000; !pidLine();) {
      if (!shellAlive() || Date.now() > end) throw new HullError('UNAVAILABLE', `the pool guest did not start${fs.existsSync(path.join(tmp, 'qemu.err')) ? `: ${fs.readFileSync(path.join(tmp, 'qemu.err'), 'utf8').trim().split('\n').pop() ?? ''}` : ''}`);
      await new Promise((r) => setTimeout(r, 2));
    }
    const pid = Number(pidLine());
    entry = { id, templateKey: tpl.meta.key, memMiB: shape.memMiB, cpus: shape.cpus, accel: shape.accel, pid, startTime: procStartTime(pid) ?? 0, shellPid, cgroup, created: new Date().toISOString(), keeper };
    // written before anything can fail: whoever finds this directory can stop what it names
    fs.writeFileSync(path.join(tmp, 'entry.json'), JSON.stringify(entry));
    const qerr = () => fs.readFileSync(path.join(tmp, 'qemu.err'), 'utf8').trim().split('\n').pop() ?? '';
    if (!(await waitFile(path.join(tmp, 'qmp.sock'), START_WAIT_MS, () => qemuAlive(entry!)))) throw new HullError('UNAVAILABLE', `QEMU of a pool guest ended: ${qerr()}`);
    qmp = await QmpSession.open(ctlAddress(path.join(tmp, 'qmp.sock'), pid));
    await qmp.run('migrate-set-capabilities', { capabilities: [{ capability: 'x-ignore-shared', state: true }] });
    await qmp.run('migrate-incoming', { uri: 'fd:7' });
    for (const end = Date.now() + START_WAIT_MS; ;) {
      const st = (await qmp.run('query-status')) as { status?: string };
      if (st.status === 'paused' || st.status === 'prelaunch') {
        const mig = (await qmp.run('query-migrate')) as { status?: string };
        if (mig.status === 'completed') break;
        if (mig.status === 'failed') throw new HullError('UNAVAILABLE', 'loading the template state into a pool guest failed');
      } else if (st.status !== 'inmigrate') throw new HullError('UNAVAILABLE', `a pool guest is ${st.status} after loading its state`);
      if (Date.now() > end || !qemuAlive(entry)) throw new HullError('UNAVAILABLE', `the template state did not load into a pool guest: ${qerr()}`);
      await new Promise((r) => setTimeout(r, 2));
    }
    if (rehearsal) {
      // the rehearsal: run.sock connected, vCPUs on, the frame, its report, then paused again
      const run = await connectCtl(ctlAddress(path.join(tmp, 'run.sock'), pid));
      try {
        run.on('error', () => undefined);
        await qmp.run('cont');
        run.write(encodeRehearseFrame(REHEARSAL));
        const st = path.join(tmp, 'status');
        const w = await waitStatus(st, () => qemuAlive(entry!), START_WAIT_MS, (x) => x.rehearsed !== undefined);
        await qmp.run('stop');
        if (w !== 'yes') throw new RehearsalFailed(`a pool guest's rehearsal ${w === 'gone' ? `ended its QEMU: ${qerr()}` : 'did not finish in time'}`);
        const why = decodeStatus(fs.readFileSync(st)).rehearsed;
        if (why) throw new RehearsalFailed(`a pool guest's ${why}`);
      } finally {
        run.destroy();
      }
    }
    qmp.close();
    qmp = undefined;
    fs.renameSync(tmp, path.join(base, id));
    return entry;
  } catch (e) {
    qmp?.close();
    await stopGuest(tmp, entry ?? { cgroup });
    throw e;
  }
}

/** Every guest directory of the pool (starting, ready, being drained). */
export function poolGuestDirs(root: string): string[] {
  try {
    return fs.readdirSync(poolDir(root), { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => path.join(poolDir(root), d.name));
  } catch {
    return [];
  }
}

/** Guests and directories of the pool that nothing owns (their keeper is gone): system check. */
export function orphans(root: string): { dir: string; entry?: PoolEntry }[] {
  if (keeperAlive(root)) return [];
  return poolGuestDirs(root).map((dir) => ({ dir, entry: readEntry(dir) }));
}

/** Pure: the abstract unix socket a root's keeper holds (one bind at a time; gone with its process). */
export function keeperLockName(root: string): string {
  return `\0hull-vmpool-${rootKey(root)}`;
}

/** Binds the root's keeper lock, or fails with CONFLICT when another process holds it. */
async function takeKeeperLock(root: string): Promise<net.Server> {
  const lock = net.createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      lock.once('error', reject);
      lock.listen({ path: keeperLockName(root), exclusive: true }, resolve);
    });
  } catch (e) {
    lock.close();
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new HullError('CONFLICT', `a pool keeper already runs for ${root}`);
    throw e;
  }
  lock.unref();
  return lock;
}

/**
 * The keeper: the one process per root that keeps the pool at its configured size. It restores
 * guests one at a time (at nice POOL_NICE), wakes when a run claims one (a rename in the pool
 * directory) or the configuration changes, drains guests of a template that is no longer the
 * shape's, and on SIGTERM/SIGINT/SIGHUP or a size of 0 drains every guest and exits.
 */
export async function runKeeper(root: string, log: (m: string) => void): Promise<void> {
  const base = poolDir(root);
  fs.mkdirSync(base, { recursive: true, mode: 0o755 });
  const me = processIdentity(process.pid);
  const keeperFile = path.join(base, 'keeper');
  // one keeper per root: whoever binds the lock; a keeper file found then is a dead keeper's
  const lock = await takeKeeperLock(root);
  fs.writeFileSync(keeperFile, me);
  let stopping = false;
  let wake: () => void = () => undefined;
  const onSignal = () => {
    stopping = true;
    wake();
  };
  const signals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];
  for (const s of signals) process.on(s, onSignal);
  const watcher = fs.watch(base, () => wake());
  watcher.on('error', () => undefined);
  /** Waits `ms`; a change in the pool directory (a claim, the configuration) or a signal ends it early unless `onlySignals`. */
  const pause = (ms: number, onlySignals = false) => new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    wake = () => {
      if (onlySignals && !stopping) return;
      clearTimeout(t);
      resolve();
    };
  });
  /** What the CLI shows while it waits for the pool to fill: the last failure and how many in a row. */
  const report = (failures: number, lastError?: string) => {
    const f = path.join(base, 'keeper.json');
    fs.writeFileSync(`${f}.tmp`, JSON.stringify({ failures, lastError: lastError ?? null }));
    fs.renameSync(`${f}.tmp`, f);
  };
  /** Rehearsals failed on this host (e.g. its guest kernel cannot run one): guests are offered without. */
  let rehearse = true;
  // the keeper and the guests it restores yield to foreground work (a claim renices its guest to 0)
  try {
    os.setPriority(0, POOL_NICE);
  } catch {
    // not allowed: run at the inherited priority
  }
  let shapeOf: { c: PoolConfig; shape: TemplateShape } | undefined;
  let failures = 0;
  /** Guests this keeper saw ready: one that left (a run claimed it) delays the refill until it ended. */
  let known = new Map<string, PoolEntry>();
  try {
    // guests a dead keeper left: nothing else will stop them
    for (const o of fs.readdirSync(base, { withFileTypes: true })) {
      if (!o.isDirectory()) continue;
      const e = readEntry(path.join(base, o.name));
      if (e && e.keeper !== me && !identityAlive(e.keeper) && !o.name.startsWith('.drain-')) {
        log(`draining guest ${e.id} of a keeper that is gone`);
        await stopGuest(path.join(base, o.name), e);
      } else if (!e && o.name.startsWith('.starting-')) fs.rmSync(path.join(base, o.name), { recursive: true, force: true });
    }
    while (!stopping) {
      const c = readPoolConfig(root);
      if (c.size === 0) break;
      if (!shapeOf || shapeOf.c.memMiB !== c.memMiB || shapeOf.c.cpus !== c.cpus) shapeOf = { c, shape: await poolShape(c) };
      let tpl: Template;
      try {
        tpl = await poolTemplate(root, shapeOf.shape);
      } catch (e) {
        log(`no template: ${(e as Error).message}`);
        report(++failures, (e as Error).message);
        await pause(Math.min(60_000, 1000 * 2 ** failures), true);
        continue;
      }
      const ready = readyEntries(root);
      // a refill would compete with the run that just claimed a guest (2 cores restoring one
      // guest while another runs its first code): it waits until that guest ended, at most 2 s
      const claimed = [...known.values()].filter((e) => !ready.some((r) => r.id === e.id) && qemuAlive(e));
      known = new Map(ready.map((e) => [e.id, e]));
      if (claimed.length && ready.length < c.size) {
        for (const end = Date.now() + REFILL_DEFER_MS; claimed.some(qemuAlive) && Date.now() < end && !stopping;) await pause(20);
      }
      const stale = ready.filter((e) => e.templateKey !== tpl.meta.key || !qemuAlive(e));
      for (const e of stale) {
        log(`draining guest ${e.id}: ${qemuAlive(e) ? 'another template or shape' : 'its QEMU has ended'}`);
        if (!qemuAlive(e)) {
          const gone = path.join(base, `.drain-${e.id}`);
          try {
            fs.renameSync(path.join(base, e.id), gone);
            await stopGuest(gone, e);
          } catch {
            // claimed meanwhile
          }
        } else await drainEntry(root, e);
      }
      const fresh = ready.filter((e) => !stale.includes(e));
      if (fresh.length > c.size) {
        for (const e of fresh.slice(0, fresh.length - c.size)) await drainEntry(root, e);
        continue;
      }
      if (fresh.length < c.size) {
        try {
          const t0 = Date.now();
          const e = await startGuest(root, shapeOf.shape, tpl, me, rehearse ? await rehearsalDisk(root, shapeOf.shape.initramfs) : undefined);
          known.set(e.id, e);
          if (failures) report(0);
          failures = 0;
          log(`guest ${e.id} ready in ${Date.now() - t0} ms (${fresh.length + 1}/${c.size})${rehearse ? '' : ', not rehearsed'}`);
        } catch (e) {
          const why = (e as Error).message;
          log(`a guest failed to start: ${why}`);
          if (e instanceof RehearsalFailed && rehearse) {
            rehearse = false; // once: the guests that follow are offered as restored, unrehearsed
            log('rehearsals are off for this keeper: claims still skip the restore, not the first translation of a run');
            continue;
          }
          report(++failures, why);
          await pause(Math.min(60_000, 1000 * 2 ** failures), true);
        }
        continue;
      }
      await pause(2000);
    }
  } finally {
    watcher.close();
    for (const e of readyEntries(root)) await drainEntry(root, e);
    for (const n of fs.readdirSync(base)) if (n.startsWith('rehearsal-') || n === 'keeper.json') fs.rmSync(path.join(base, n), { force: true });
    fs.rmSync(keeperFile, { force: true });
    lock.close();
    for (const s of signals) process.off(s, onSignal);
    log('pool drained');
  }
}
