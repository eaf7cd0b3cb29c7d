/**
 * MicroVM templates (issue 13): a guest booted once per shape, paused where its agent waits for a
 * run, saved; every later run of that shape restores it instead of booting a kernel.
 *
 * Mechanism (QEMU 7.2 as Debian ships it, under `-sandbox on`):
 * - Template boot: guest RAM is a memory-backend-file (share=on) on a file of the template; the
 *   root disk is a sparse placeholder of PLACEHOLDER_BYTES, never read before the snapshot (the
 *   guest kernel has no partition parsers and the agent does not mount it); the agent, told by
 *   R_TEMPLATE, opens every port, waits until the clock source left tsc-early, reports
 *   T_TEMPLATE and waits on hull.run (guest/snapshot.c). hull then runs QMP `stop`, sets the
 *   `x-ignore-shared` capability and `migrate`s to a unix socket it listens on (QEMU's `exec:`
 *   needs spawn, which the sandbox denies): the device state only (~140 KB), RAM stays in the file.
 * - Restore: the same argv but the RAM file mapped private (share=off: copy-on-write, never
 *   written back), `-incoming defer`, the capability and `migrate-incoming fd:N` on the inherited
 *   state file, written to a monitor of the restore's own (a socketpair QEMU inherits, so they
 *   go out before QEMU has started: nothing waits for a socket); the state holds no run state
 *   (`migration.store-global-state=off`), so QEMU starts the vCPUs once it is loaded and says
 *   RESUME; then the run's spec as one T_RESUME frame on hull.run: command, env,
 *   hostname, mounts, the host's wall clock and fresh random bytes. The image's erofs disk is
 *   simply the drive's file of the restored QEMU (a drive's backing file may differ across a
 *   migration); the guest keeps the placeholder's capacity, so any image up to that size reads
 *   to its last block.
 * - A template is write-once: built in a temporary directory, renamed into place, its files
 *   read-only (the RAM file belongs to the user QEMU runs as, which QEMU 7.2 needs to open it for
 *   writing even for a private mapping: 8.2's rom= lifts that), keyed by everything that must
 *   match (the template's QEMU argv, the QEMU binary, kernel and base initramfs) and checked
 *   before each use (state and initrd hashes, sizes, the RAM file's size, inode and times).
 *   One that fails its check, or whose restore does not reach the agent within AGENT_WAIT_MS,
 *   is removed and the run boots cold with a one-line note; the next run builds it again.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { HullError } from '../../errors.js';
import { ctlAddress } from './control.js';
import { newcArchive } from './cpio.js';
import { decodeStatus, encodeResumeFrame, encodeSpecFile, type GuestRunSpec } from './protocol.js';
import { buildQemuArgs, type Chardev } from './qemu-args.js';
import { QmpSession } from './qmp.js';
import { identityAlive, processIdentity } from '../../util/proc.js';

/** How `hull run --vm` starts a guest: 'auto' restores a template (building it first if there is none), 'cold' boots. */
export type VmBoot = 'auto' | 'cold';

/** The default of --vm-boot: the one place it is decided. */
export const DEFAULT_VM_BOOT: VmBoot = 'auto';

/** Template layout version (part of the key). 2: the root disk as named block nodes (a pool swaps it); 3: no global run state in the saved state. */
const FORMAT = 3;
/** The template's root disk: sparse, at least as large as any image the clones will see. */
export const PLACEHOLDER_BYTES = 256 * 1024 ** 3;
/** A restored guest must answer (READY) within this, else the restore failed. */
export const AGENT_WAIT_MS = 30_000;
const BUILD_WAIT_MS = 120_000;
/** After a failed build, runs of that shape boot cold without trying again for this long. */
const BUILD_RETRY_MS = 10 * 60_000;
const NOBODY = 65534;

/** What a template is made for: everything that goes into its QEMU argv and guest. */
export interface TemplateShape {
  memMiB: number;
  cpus: number;
  accel: 'kvm' | 'tcg';
  tscKhz: number;
  kernel: string;
  /** The base initramfs (the guest agent). */
  initramfs: string;
  qemu: string;
  /** Guest NICs (one per network): the devices exist in the template, their configuration comes with the run. */
  nics: number;
}

/** Descriptor numbers a template QEMU (build or restore) inherits. */
export const TFD = { kernel: 3, initrd: 4, disk: 5, ram: 6 } as const;

/**
 * Pure: the QEMU argv of a template's guest. `build`: the boot that is saved (RAM shared, status
 * on an inherited file); else a restore (RAM private, -incoming defer). Ports absent from a run are
 * null chardevs: the device set is the same in both.
 */
export function templateQemuArgs(shape: Pick<TemplateShape, 'memMiB' | 'cpus' | 'accel' | 'tscKhz'> & { nics?: number }, o: {
  build: boolean; tbSizeMiB: number; qmp: string;
  /** A restore's own monitor: an inherited socketpair end (resumeRestored). */
  qmpFd?: number;
  /** Descriptor of the RAM file (default TFD.ram); the path is no part of the migrated state. */
  ramFd?: number;
  ports: { status: Chardev; run: Chardev; stdout?: Chardev; stderr?: Chardev; ctl?: Chardev; main?: Chardev; layer?: Chardev };
  /** A restore's taps (inherited descriptors), one per NIC of the shape. */
  tapFds?: number[];
  /** A warm pool's restore: the vCPUs stay stopped after the state is loaded, until the run that claims it. */
  paused?: boolean;
}): string[] {
  const n = shape.nics ?? 0;
  if (!o.build && (o.tapFds?.length ?? 0) !== n) throw new HullError('INTERNAL', `a restore of a template with ${n} NICs needs ${n} taps`);
  const a = buildQemuArgs({
    kernel: `/proc/self/fd/${TFD.kernel}`, initrd: `/proc/self/fd/${TFD.initrd}`, disk: `/proc/self/fd/${TFD.disk}`,
    memoryMiB: shape.memMiB, cpus: shape.cpus, accel: shape.accel, tscKhz: shape.tscKhz, tbSizeMiB: o.tbSizeMiB,
    ramFile: { path: `/proc/self/fd/${o.ramFd ?? TFD.ram}`, share: o.build },
    allPorts: true,
    diskNodes: true,
    ports: { stdout: { kind: 'null' }, stderr: { kind: 'null' }, ctl: { kind: 'null' }, ...o.ports },
    incoming: !o.build,
    paused: o.paused,
    qmp: o.qmp,
    qmpFd: o.build ? undefined : o.qmpFd,
    // the saved state carries no run state of its own, so a restore starts its vCPUs by itself
    // once the state is loaded (QEMU's autostart; -S keeps a pool's guest paused)
    globals: ['migration.store-global-state=off'],
  });
  // NICs after the serial bus, as in a cold boot (virtio-mmio transports go in creation order).
  // The template's peer is an empty hub port (no host resource, packets go nowhere; no vnet
  // header, so the guest negotiates no offloads); a restore's is the run's tap. The MAC stays the
  // template's in QEMU's argv: the guest agent sets the veth's (guest/net.c), which QEMU follows.
  const nic: string[] = [];
  for (let i = 0; i < n; i++) {
    nic.push('-netdev', o.build ? `hubport,id=net${i},hubid=${i}` : `tap,id=net${i},fd=${o.tapFds![i]},vhost=off`, '-device', `virtio-net-device,netdev=net${i},mac=${templateMac(i)}`);
  }
  const at = a.indexOf(o.build ? '-qmp' : '-incoming');
  a.splice(at < 0 ? a.length : at, 0, ...nic);
  return a;
}

/** The MAC of a template's NIC i (locally administered; replaced by the veth's in the guest). */
export function templateMac(i: number): string {
  return `02:68:75:6c:6c:${i.toString(16).padStart(2, '0')}`;
}

function fileStamp(p: string): { path: string; size: number; mtimeMs: number } {
  const st = fs.statSync(p);
  return { path: p, size: st.size, mtimeMs: Math.round(st.mtimeMs) };
}

function sha256File(p: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex');
}

/** The QEMU binary's path (PATH lookup of a bare name). */
export function resolveBinary(name: string, env: NodeJS.ProcessEnv = process.env): string {
  if (name.includes('/')) return fs.realpathSync(name);
  for (const d of (env.PATH ?? '/usr/bin:/bin').split(':')) {
    const p = path.join(d || '.', name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return fs.realpathSync(p);
    } catch {
      continue;
    }
  }
  throw new HullError('UNAVAILABLE', `${name} not found on PATH`, { hint: 'apt-get install qemu-system-x86' });
}

/** What the key is made of (kept in the template's meta.json, shown by hull info). */
export function templateInputs(shape: TemplateShape): Record<string, unknown> {
  const argv = templateQemuArgs({ ...shape, nics: shape.nics }, { build: true, tbSizeMiB: 32, qmp: 'qmp.sock', ports: { status: { kind: 'file', path: '/proc/self/fd/7' }, run: { kind: 'fd', fd: 8 } } });
  return {
    format: FORMAT,
    argv,
    qemu: fileStamp(resolveBinary(shape.qemu)),
    kernel: fileStamp(shape.kernel),
    agent: sha256File(shape.initramfs),
  };
}

export function templateKey(inputs: Record<string, unknown>): string {
  return crypto.createHash('sha256').update(JSON.stringify(inputs)).digest('hex').slice(0, 32);
}

export function templatesDir(root: string): string {
  return path.join(root, 'vmtemplates');
}

export interface TemplateMeta {
  key: string;
  inputs: Record<string, unknown>;
  memMiB: number;
  cpus: number;
  accel: string;
  nics?: number;
  created: string;
  buildMs: number;
  files: {
    state: { size: number; sha256: string };
    initrd: { size: number; sha256: string };
    disk: { size: number };
    ram: { size: number; ino: number; mtimeMs: number; ctimeMs: number };
  };
}

export interface Template {
  dir: string;
  meta: TemplateMeta;
  state: string;
  ram: string;
  initrd: string;
  disk: string;
}

function templateFiles(dir: string): Omit<Template, 'meta'> {
  return { dir, state: path.join(dir, 'state'), ram: path.join(dir, 'ram'), initrd: path.join(dir, 'initrd.cpio'), disk: path.join(dir, 'disk') };
}

/** Checks a template against its meta.json: sizes, hashes, the RAM file untouched. */
export function checkTemplate(dir: string, key?: string): { ok: true; template: Template } | { ok: false; why: string } {
  const f = templateFiles(dir);
  let meta: TemplateMeta;
  try {
    meta = JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8')) as TemplateMeta;
  } catch (e) {
    return { ok: false, why: `meta.json unreadable (${(e as Error).message})` };
  }
  try {
    if (key !== undefined && meta.key !== key) return { ok: false, why: 'its key does not match its directory' };
    const st = fs.statSync(f.state);
    if (st.size !== meta.files.state.size || sha256File(f.state) !== meta.files.state.sha256) return { ok: false, why: 'the device state does not match its hash' };
    const ini = fs.statSync(f.initrd);
    if (ini.size !== meta.files.initrd.size || sha256File(f.initrd) !== meta.files.initrd.sha256) return { ok: false, why: 'the initrd does not match its hash' };
    if (fs.statSync(f.disk).size !== meta.files.disk.size) return { ok: false, why: 'the placeholder disk changed size' };
    const r = fs.statSync(f.ram);
    const m = meta.files.ram;
    if (r.size !== m.size || r.ino !== m.ino || Math.round(r.mtimeMs) !== m.mtimeMs || Math.round(r.ctimeMs) !== m.ctimeMs) return { ok: false, why: 'the RAM file was changed after the template was saved' };
  } catch (e) {
    return { ok: false, why: `a file is missing (${(e as Error).message})` };
  }
  return { ok: true, template: { ...f, meta } };
}

/** Removes a template (another process may be restoring it: its QEMU keeps its descriptors). */
export function dropTemplate(dir: string): void {
  const gone = path.join(path.dirname(dir), `.drop-${crypto.randomBytes(6).toString('hex')}`);
  try {
    fs.renameSync(dir, gone);
  } catch {
    return;
  }
  fs.rmSync(gone, { recursive: true, force: true });
}

/**
 * Templates of the same shape (memory, vCPUs, accelerator, NICs) as a fresh one but another key
 * were made for another QEMU build, kernel or agent: no run will use them again.
 */
function dropStale(root: string, fresh: TemplateMeta): void {
  for (const t of listTemplates(root)) {
    if (t.key !== fresh.key && t.memMiB === fresh.memMiB && t.cpus === fresh.cpus && t.accel === fresh.accel && t.nics === (fresh.nics ?? 0)) dropTemplate(path.join(templatesDir(root), t.key));
  }
}

/** Template build directories whose builder is gone (killed mid-build): hull system check removes them. */
export function abandonedBuilds(root: string): string[] {
  const base = templatesDir(root);
  let names: string[] = [];
  try {
    names = fs.readdirSync(base).filter((n) => n.startsWith('.build-') || n.startsWith('.drop-'));
  } catch {
    return [];
  }
  return names.map((n) => path.join(base, n)).filter((d) => {
    try {
      return !identityAlive(fs.readFileSync(path.join(d, 'builder'), 'utf8').trim());
    } catch {
      // no builder file: a build before it wrote one (moments), or a drop: old enough means dead
      try {
        return Date.now() - fs.statSync(d).mtimeMs > 60_000;
      } catch {
        return false;
      }
    }
  });
}

/** hull info: every template of this root and the disk it takes (allocated bytes). */
export function listTemplates(root: string): { key: string; memMiB: number; cpus: number; accel: string; nics: number; created: string; bytes: number; valid: boolean }[] {
  const base = templatesDir(root);
  let names: string[] = [];
  try {
    names = fs.readdirSync(base).filter((n) => !n.startsWith('.'));
  } catch {
    return [];
  }
  return names.map((key) => {
    const dir = path.join(base, key);
    let bytes = 0;
    for (const n of fs.readdirSync(dir)) {
      try {
        bytes += fs.statSync(path.join(dir, n)).blocks * 512;
      } catch {
        continue;
      }
    }
    let meta: Partial<TemplateMeta> = {};
    try {
      meta = JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8')) as TemplateMeta;
    } catch {
      meta = {};
    }
    return { key, memMiB: meta.memMiB ?? 0, cpus: meta.cpus ?? 0, accel: meta.accel ?? '?', nics: meta.nics ?? 0, created: meta.created ?? '?', bytes, valid: checkTemplate(dir, key).ok };
  });
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

/** Polls a status file until `want` holds or the child (or what `alive` says runs) ends or time runs out. */
export async function waitStatus(file: string | (() => Buffer), child: ChildProcess | (() => boolean), ms: number, want: (st: ReturnType<typeof decodeStatus>) => boolean): Promise<'yes' | 'gone' | 'timeout'> {
  const gone = typeof child === 'function' ? () => !child() : () => child.exitCode !== null || child.signalCode !== null;
  const end = Date.now() + ms;
  for (;;) {
    let st: ReturnType<typeof decodeStatus> = {};
    try {
      st = decodeStatus(typeof file === 'string' ? fs.readFileSync(file) : file());
    } catch {
      st = {};
    }
    if (want(st)) return 'yes';
    if (gone()) return 'gone';
    if (Date.now() > end) return 'timeout';
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * Builds the template of `shape` under `root` (or finds one another process just built).
 * Nothing is left on failure: the build directory and its QEMU are gone.
 */
export async function buildTemplate(root: string, shape: TemplateShape, inputs = templateInputs(shape)): Promise<Template> {
  const key = templateKey(inputs);
  const base = templatesDir(root);
  const final = path.join(base, key);
  fs.mkdirSync(base, { recursive: true, mode: 0o755 });
  // one build per key at a time: runs that find one under way boot cold meanwhile
  const tmp = path.join(base, `.build-${key}`);
  try {
    fs.mkdirSync(tmp, { mode: 0o755 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    if (!abandonedBuilds(root).includes(tmp)) throw new BuildBusy();
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.mkdirSync(tmp, { mode: 0o755 });
  }
  fs.chmodSync(tmp, 0o755);
  fs.writeFileSync(path.join(tmp, 'builder'), processIdentity(process.pid)); // hull system check: a dead builder's directory is an orphan
  const runDir = path.join(tmp, 'run');
  const f = templateFiles(tmp);
  const asNobody = process.getuid?.() === 0;
  const started = Date.now();
  let child: ChildProcess | undefined;
  let server: net.Server | undefined;
  let qmp: QmpSession | undefined;
  try {
    fs.mkdirSync(runDir, { mode: 0o700 });
    if (asNobody) fs.chownSync(runDir, NOBODY, NOBODY);
    const spec = encodeSpecFile({ args: [], env: [], hostname: 'template', template: true });
    fs.writeFileSync(f.initrd, Buffer.concat([fs.readFileSync(shape.initramfs), newcArchive([{ name: 'hull' }, { name: 'hull/spec', data: spec }])]), { mode: 0o444 });
    const fdDisk = fs.openSync(f.disk, 'w+', 0o444);
    fs.ftruncateSync(fdDisk, PLACEHOLDER_BYTES);
    fs.closeSync(fdDisk);
    const fdRamNew = fs.openSync(f.ram, 'w+', 0o600);
    fs.ftruncateSync(fdRamNew, shape.memMiB * 1024 * 1024);
    if (asNobody) fs.fchownSync(fdRamNew, NOBODY, NOBODY);
    fs.closeSync(fdRamNew);
    const statusPath = path.join(tmp, 'status');
    const fds = [fs.openSync(shape.kernel, 'r'), fs.openSync(f.initrd, 'r'), fs.openSync(f.disk, 'r'), fs.openSync(f.ram, 'r+'), fs.openSync(statusPath, 'w', 0o600)];
    if (asNobody) fs.fchownSync(fds[4]!, NOBODY, NOBODY);
    const args = inputs.argv as string[];
    const priv = asNobody ? ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--pdeathsig', 'KILL'] : ['setpriv', '--pdeathsig', 'KILL'];
    let qemuErr = '';
    try {
      child = spawn(priv[0]!, [...priv.slice(1), shape.qemu, ...args], { cwd: runDir, stdio: ['ignore', 'ignore', 'pipe', ...fds, 'pipe'] });
    } finally {
      for (const fd of fds) fs.closeSync(fd);
    }
    child.on('error', () => undefined);
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (qemuErr = (qemuErr + d).slice(-4000)));
    const booted = await waitStatus(statusPath, child, BUILD_WAIT_MS, (st) => st.template === true);
    if (booted !== 'yes') throw new HullError('UNAVAILABLE', `the template guest did not come up (${booted === 'gone' ? `QEMU ended${qemuErr.trim() ? `: ${qemuErr.trim().split('\n').pop()}` : ` with ${child.exitCode ?? child.signalCode}`}` : `no answer within ${BUILD_WAIT_MS / 1000} s`})`);
    // the device state comes over a unix socket hull listens on; RAM stays in the file
    const migSock = path.join(runDir, 'mig.sock');
    const stateOut = fs.createWriteStream(f.state, { mode: 0o444 });
    const saved = new Promise<void>((resolve, reject) => {
      server = net.createServer((c) => {
        c.pipe(stateOut);
        stateOut.on('finish', () => resolve());
        c.on('error', reject);
      });
      server.on('error', reject);
    });
    await new Promise<void>((resolve) => server!.listen(ctlAddress(migSock, child!.pid!), resolve));
    if (asNobody) fs.chownSync(migSock, NOBODY, NOBODY);
    qmp = await QmpSession.open(ctlAddress(path.join(runDir, 'qmp.sock'), child.pid!));
    await qmp.run('stop');
    await qmp.run('migrate-set-capabilities', { capabilities: [{ capability: 'x-ignore-shared', state: true }] });
    await qmp.run('migrate', { uri: 'unix:mig.sock' });
    for (const end = Date.now() + 60_000; ;) {
      const info = (await qmp.run('query-migrate')) as { status?: string; 'error-desc'?: string };
      if (info.status === 'completed') break;
      if (info.status === 'failed' || info.status === 'cancelled') throw new HullError('UNAVAILABLE', `saving the template failed: ${info['error-desc'] ?? info.status}`);
      if (Date.now() > end) throw new HullError('UNAVAILABLE', 'saving the template took over 60 s');
      await new Promise((r) => setTimeout(r, 5));
    }
    await saved;
    qmp.close();
    qmp = undefined;
    child.kill('SIGKILL');
    await waitExit(child, 10_000);
    server!.close();
    fs.rmSync(runDir, { recursive: true, force: true });
    fs.rmSync(statusPath, { force: true });
    const r = fs.statSync(f.ram);
    const meta: TemplateMeta = {
      key, inputs, memMiB: shape.memMiB, cpus: shape.cpus, accel: shape.accel, nics: shape.nics, created: new Date().toISOString(), buildMs: Date.now() - started,
      files: {
        state: { size: fs.statSync(f.state).size, sha256: sha256File(f.state) },
        initrd: { size: fs.statSync(f.initrd).size, sha256: sha256File(f.initrd) },
        disk: { size: PLACEHOLDER_BYTES },
        ram: { size: r.size, ino: r.ino, mtimeMs: Math.round(r.mtimeMs), ctimeMs: Math.round(r.ctimeMs) },
      },
    };
    if (meta.files.state.size === 0) throw new HullError('UNAVAILABLE', 'saving the template wrote no device state');
    fs.writeFileSync(path.join(tmp, 'meta.json'), JSON.stringify(meta, null, 1), { mode: 0o444 });
    fs.rmSync(path.join(tmp, 'builder'));
    try {
      fs.renameSync(tmp, final);
    } catch {
      // another process put the same template in place first: use that one
      fs.rmSync(tmp, { recursive: true, force: true });
      const c = checkTemplate(final, key);
      if (!c.ok) throw new HullError('UNAVAILABLE', `template ${key.slice(0, 12)}: ${c.why}`);
      return c.template;
    }
    return { ...templateFiles(final), meta };
  } catch (e) {
    qmp?.close();
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await waitExit(child, 10_000);
    }
    server?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** Another run is building this template. */
export class BuildBusy extends Error {
  constructor() {
    super('another run is building the template');
  }
}

export type BootPlan =
  | { boot: 'cold'; reason: string; note?: string }
  | { boot: 'restore'; template: Template; built: boolean };

/**
 * How this run starts. `ineligible`: why this run cannot use a template (cold, no note).
 * A template that fails its check is removed, noted, and the run boots cold.
 */
export async function chooseBoot(root: string, requested: VmBoot, shape: TemplateShape, ineligible?: string): Promise<BootPlan> {
  if (requested === 'cold') return { boot: 'cold', reason: '--vm-boot cold' };
  if (ineligible) return { boot: 'cold', reason: ineligible };
  const inputs = templateInputs(shape);
  const key = templateKey(inputs);
  const dir = path.join(templatesDir(root), key);
  if (fs.existsSync(dir)) {
    const c = checkTemplate(dir, key);
    if (c.ok) return { boot: 'restore', template: c.template, built: false };
    dropTemplate(dir);
    return { boot: 'cold', reason: `template failed its check: ${c.why}`, note: `hull: VM template ${key.slice(0, 12)} failed its check (${c.why}): removed; this run boots cold, the next one rebuilds it` };
  }
  // a build that failed lately is not tried on every run (each try costs a boot)
  const failed = path.join(templatesDir(root), `.failed-${key}`);
  try {
    const f = JSON.parse(fs.readFileSync(failed, 'utf8')) as { at: number; why: string };
    if (Date.now() - f.at < BUILD_RETRY_MS) return { boot: 'cold', reason: `the template build failed ${Math.round((Date.now() - f.at) / 1000)} s ago: ${f.why}` };
  } catch {
    // none
  }
  try {
    const template = await buildTemplate(root, shape, inputs);
    fs.rmSync(failed, { force: true });
    dropStale(root, template.meta);
    return { boot: 'restore', template, built: true };
  } catch (e) {
    if (e instanceof BuildBusy) return { boot: 'cold', reason: e.message };
    const why = (e as Error).message;
    try {
      fs.writeFileSync(failed, JSON.stringify({ at: Date.now(), why }));
    } catch {
      // the note below says it anyway
    }
    return { boot: 'cold', reason: `template build failed: ${why}`, note: `hull: could not build the VM template (${why}); this run boots cold (no new try for ${BUILD_RETRY_MS / 60_000} min)` };
  }
}

/**
 * A restored QEMU just spawned: load the device state (x-ignore-shared: RAM is the template's
 * file, mapped private), wait until QEMU has started the vCPUs (RESUME), hand the guest its run.
 * Throws when any step fails.
 */
export async function resumeRestored(monitor: net.Socket, stateFd: number, runPort: NodeJS.WritableStream, runFrame: () => Buffer, timeoutMs = AGENT_WAIT_MS): Promise<void> {
  // The commands go out at once: QEMU runs them as soon as its main loop starts, and starts the
  // vCPUs itself once the state is loaded (templates keep no run state), then says RESUME.
  const { session: qmp, greeting } = QmpSession.attach(monitor, 'restore');
  try {
    const resumed = qmp.event('RESUME', timeoutMs);
    resumed.catch(() => undefined);
    await Promise.all([
      greeting,
      qmp.run('qmp_capabilities', undefined, timeoutMs),
      qmp.run('migrate-set-capabilities', { capabilities: [{ capability: 'x-ignore-shared', state: true }] }, timeoutMs),
      qmp.run('migrate-incoming', { uri: `fd:${stateFd}` }, timeoutMs),
    ]);
    await resumed;
  } finally {
    qmp.close();
  }
  runPort.write(runFrame());
}

/** The T_RESUME frame of a run: its spec with the host's clock and fresh random bytes, taken now. */
export function encodeRunFrame(s: GuestRunSpec): Buffer {
  return encodeResumeFrame({ ...s, clockNs: BigInt(Date.now()) * 1_000_000n, random: crypto.randomBytes(64) });
}

/** A restore that did not reach the guest's agent: the caller drops the template and boots cold. */
export class RestoreFailed extends Error {
  constructor(readonly templateDir: string, message: string) {
    super(message);
  }
}
