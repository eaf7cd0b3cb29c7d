/**
 * Preparing and spawning one VM. Everything a VM needs on the host lives in <instance dir>/vm/:
 *   initrd.cpio  base initramfs + this run's spec      status   the hull.status port (file)
 *   ctl.sock     the hull.ctl port (QEMU listens)       qemu.err QEMU's own stderr (detached)
 *   exec.sock    hull-vmmux's socket: every caller's exec, signal and shutdown (ctl.sock's one client)
 *   monitor.json pid, start time, accelerator, cgroup   killed   written when hull killed QEMU
 * and the detached log is <instance dir>/ctr.log (k8s-file lines written by the guest agent).
 *
 * Confinement (like Firecracker's jailer): QEMU joins its own memory cgroup before it starts
 * (a one-line sh wrapper writes its pid into cgroup.procs, then execs), runs as nobody when no
 * host directory is shared (setpriv; its files are passed as inherited descriptors, so it
 * needs no access to the hull root), with -sandbox on, no network and -nodefaults.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { shq } from '../../util/shell.js';
import { HullError } from '../../errors.js';
import type { InstanceSpec } from '../types.js';
import { chooseAccel, type AccelChoice } from './accel.js';
import { guestAssets, hostTscKhz, qemuBinary, vmmuxBinary } from './assets.js';
import { createVmCgroup, QEMU_OVERHEAD_BYTES, removeVmCgroup, vmCgroupDir, type VmCgroup } from './cgroup.js';
import { claim, type Claimed } from './pool.js';
import { newcArchive } from './cpio.js';
import { encodeSpecFile, type GuestRunSpec } from './protocol.js';
import { buildQemuArgs, qemuLaunchScript, type Chardev } from './qemu-args.js';
import { ensureVmDisk } from '../../snapshots/vmdisk.js';
import { chooseBoot, DEFAULT_VM_BOOT, encodeRunFrame, templateQemuArgs, type BootPlan } from './snapshot.js';
import { dropKeptLayer, layerFiles } from './layer.js';
import { attachVmTaps, tapFdArgv, tapFdHelper, tapName, type VmNic } from '../../network/vm-tap.js';

/** QEMU inherits the VM's taps from this descriptor number up (clear of the fds 3-9 above). */
const TAP_FD_BASE = 100;

export const NOBODY = 65534;
export const DEFAULT_VM_MEMORY = 128 * 1024 * 1024;

export interface VmFiles {
  dir: string;
  initrd: string;
  status: string;
  ctl: string;
  /** hull-vmmux's socket in front of ctl (absent when the multiplexer is not built). */
  mux: string;
  qemuErr: string;
  /** Written by a detached VM's wrapper shell: QEMU's pid, then its exit status. */
  qemuPid: string;
  qemuRc: string;
  monitor: string;
  killed: string;
  log: string;
  /** The guest's writable layer as a tar, sent at exit (runtime/vm/layer.ts); outside vm/, which a run removes. */
  layer: string;
  /** QEMU's QMP socket (detached VMs): pause and unpause. */
  qmp: string;
  /** Written once a restored VM took its run: only then does its monitor shell run the exit command. */
  resumed: string;
}

export function vmFiles(spec: InstanceSpec): VmFiles {
  const dir = path.join(spec.dir, 'vm');
  return {
    dir,
    initrd: path.join(dir, 'initrd.cpio'),
    status: path.join(dir, 'status'),
    ctl: path.join(dir, 'ctl.sock'),
    mux: path.join(dir, 'exec.sock'),
    qemuErr: path.join(dir, 'qemu.err'),
    qemuPid: path.join(dir, 'qemu.pid'),
    qemuRc: path.join(dir, 'qemu.rc'),
    monitor: path.join(dir, 'monitor.json'),
    killed: path.join(dir, 'killed'),
    log: path.join(spec.dir, 'ctr.log'),
    layer: layerFiles(spec).tar,
    qmp: path.join(dir, 'qmp.sock'),
    resumed: path.join(dir, 'resumed'),
  };
}

export interface Monitor {
  pid: number;
  /** /proc/<pid>/stat start time (clock ticks after boot): tells a reused pid apart. */
  startTime: number;
  accel: AccelChoice;
  cgroup?: VmCgroup;
  kernelRelease?: string;
  /** The detached VM's monitor shell (waits for QEMU, then execs the exit hook): its process group. */
  shellPid?: number;
  /** Callers reach the agent through hull-vmmux's exec.sock (else QEMU's ctl.sock, one at a time). */
  mux?: boolean;
  /** How the guest started: restored from a template, claimed from the warm pool (restored earlier) or booted (runtime/vm/snapshot.ts, pool.ts). */
  boot?: 'restored' | 'pool' | 'cold';
}

/** Pure: what of an InstanceSpec a VM cannot honour, as messages (empty = fine). */
export function unsupported(spec: InstanceSpec): string[] {
  const out: string[] = [];
  if (spec.network === 'host') out.push('--network host: a VM has its own kernel and no access to the host network (use --network none or a bridge network)');
  if (spec.network === 'netns' && spec.netns?.shared) out.push("--network container:...: a VM has its own kernel and cannot share another container's network namespace");
  for (const m of spec.mounts) {
    if (m.type === 'bind' && m.source && fs.existsSync(m.source) && !fs.statSync(m.source).isDirectory()) {
      out.push(`-v ${m.source}:${m.destination}: a VM can share directories only, not single files`);
    }
  }
  return out;
}

/**
 * Pure: when the guest sends its writable layer on hull.layer (into <instance>/layer.tar): after
 * a zero exit for a build step (captureLayer), after any exit for a container that is kept (not
 * --rm: docker diff, commit and export of a stopped VM), never for --rm.
 */
export function layerMode(spec: InstanceSpec): GuestRunSpec['layer'] {
  if (spec.captureLayer) return 'success';
  return spec.autoRemove ? undefined : 'exit';
}

/** Pure: the guest's view of an InstanceSpec. */
export function guestRunSpec(spec: InstanceSpec, mode: { attached: boolean; rows?: number; cols?: number }): GuestRunSpec {
  const binds = spec.mounts.filter((m) => m.type === 'bind');
  return {
    args: spec.process.args,
    env: spec.process.env,
    cwd: spec.process.cwd || '/',
    user: spec.process.user,
    tty: spec.process.terminal,
    stdin: spec.process.stdin,
    rows: mode.rows,
    cols: mode.cols,
    hostname: spec.hostname,
    readOnly: spec.readOnlyRootfs,
    tmpfs: spec.mounts.filter((m) => m.type === 'tmpfs').map((m) => ({ destination: m.destination, options: (m.options ?? []).join(',') })),
    shares: binds.map((m, i) => ({ tag: `v${i}`, destination: m.destination, readOnly: m.readOnly })),
    mainPort: mode.attached,
    logFormat: !mode.attached,
    layer: layerMode(spec),
    clockNs: BigInt(Date.now()) * 1_000_000n,
    interfaces: spec.network === 'netns' ? spec.netns?.interfaces : undefined,
    gateway: spec.network === 'netns' ? spec.netns?.gateway : undefined,
    hosts: spec.etc?.hosts,
    resolvConf: spec.etc?.resolvConf,
  };
}

export interface Prepared {
  files: VmFiles;
  accel: AccelChoice;
  cgroup?: VmCgroup;
  kernelRelease?: string;
  /** Whether hull-vmmux serves exec.sock in front of the control port. */
  mux: boolean;
  /** How this run starts (runtime/vm/snapshot.ts): a restored template or a cold boot, and why. */
  boot: BootPlan;
  /** The image's erofs disk. */
  disk: string;
  /** A guest claimed from the warm pool (runtime/vm/pool.ts): already running QEMU; spawn() is not used. */
  pooled?: Claimed;
  /** A restore: the state descriptor and the hull.run stdio index of the spawned QEMU, and the run's T_RESUME frame. */
  /** A restore's descriptors: its state file, and the stdio indexes of hull.run and of its own monitor. */
  restore?: { stateFd: number; runIndex: number; monitorIndex: number; frame(): Buffer };
  /** Spawns QEMU; `ports` name this run's chardevs, `extraStdio` fills fds from 9 up. */
  spawn(ports: { stdout: Chardev; stderr: Chardev; main?: Chardev; log?: boolean }, stdio: { base: StdioOptions; detached: boolean; pdeathsig: boolean; exitCommand?: string[] }): ChildProcess;
  /** Removes the cgroup and the per-run files (not the log). */
  release(): Promise<void>;
}

/**
 * TCG translation cache, MiB: HULL_VM_TB_MIB, else 32 for attached runs (short: speed first;
 * measured ~6% less CPU per boot than 8) and 8 for detached VMs (long-lived: density first; the
 * touched cache is most of QEMU's own memory, 8 instead of 32 saves ~19 MiB per idle VM).
 */
function tbSizeMiB(attached: boolean): number {
  const v = process.env.HULL_VM_TB_MIB;
  if (v === undefined || v === '') return attached ? 32 : 8;
  if (!/^\d+$/.test(v) || Number(v) < 4) throw new HullError('INVALID_ARGUMENT', `HULL_VM_TB_MIB=${v}: want an integer >= 4 (MiB)`);
  return Number(v);
}

/**
 * HULL_VM_CONSOLE_LOG (debugging): an absolute path receives the guest's kernel log (console on
 * a UART, printk timestamps; slower boot); any other non-empty value means <vm dir>/console.log,
 * which lives as long as the instance's vm directory.
 */
function consoleLogPath(files: VmFiles, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const v = env.HULL_VM_CONSOLE_LOG;
  if (!v) return undefined;
  return path.isAbsolute(v) ? v : path.join(files.dir, 'console.log');
}

/**
 * Guest RAM backend: 'memfd' (4 KiB pages, only what the guest touched is resident) for detached
 * VMs, which live long and count for density (~6 MiB less per idle VM than 2 MiB huge pages);
 * 'anon' for attached runs, where huge pages mean ~5000 fewer host page faults per boot (~25 ms).
 */
function ramBackend(attached: boolean): 'anon' | 'memfd' {
  return attached ? 'anon' : 'memfd';
}

function guestMemoryMiB(spec: InstanceSpec): number {
  const b = spec.resources.memoryBytes ?? DEFAULT_VM_MEMORY;
  const mib = Math.ceil(b / (1024 * 1024));
  if (mib < 64) throw new HullError('INVALID_ARGUMENT', `-m ${mib}m is too small for a VM: the guest needs at least 64m`);
  return mib;
}

function guestCpus(spec: InstanceSpec): number {
  const n = spec.resources.nanoCpus ? Math.ceil(spec.resources.nanoCpus / 1e9) : 1;
  if (n > 8) throw new HullError('INVALID_ARGUMENT', `--cpus ${n}: a hull VM has at most 8 vCPUs`);
  return n;
}

/** Everything before the spawn: disk, initramfs, accelerator, cgroup. Undoes itself on failure. */
export async function prepare(root: string, spec: InstanceSpec, mode: { attached: boolean; rows?: number; cols?: number }): Promise<Prepared> {
  const bad = unsupported(spec);
  if (bad.length) throw new HullError('INVALID_ARGUMENT', bad.join('; '));
  const memMiB = guestMemoryMiB(spec);
  const cpus = guestCpus(spec);
  const assets = guestAssets();
  const qemu = qemuBinary();
  const disk = await ensureVmDisk(root, spec.image.id, spec.image.lowerDirs);
  const accel = await chooseAccel(spec.vm?.accel ?? 'auto', qemu, assets.kernel, assets.initramfs);
  const files = vmFiles(spec);
  const boot = await chooseVmBoot(root, spec, { memMiB, cpus, accel: accel.accel, kernel: assets.kernel, initramfs: assets.initramfs, qemu }, files, encodeSpecFile(guestRunSpec(spec, mode)).length);
  fs.rmSync(files.dir, { recursive: true, force: true });
  dropKeptLayer(spec); // the last run's layer: this run's guest starts from the image again
  // a foreground --rm run of a pool's shape claims a paused guest: its directory becomes ours
  let pooled: Claimed | undefined;
  if (mode.attached && boot.boot === 'restore' && poolEligible(spec)) {
    fs.mkdirSync(path.dirname(files.dir), { recursive: true });
    pooled = claim(root, boot.template.meta.key, files.dir);
  }
  if (!pooled) fs.mkdirSync(files.dir, { recursive: true, mode: 0o700 });
  // A detached start is under way from here (state() reads it so): its QEMU error file exists
  // before QEMU does; attached runs keep QEMU's stderr in memory and have none.
  if (!mode.attached) fs.writeFileSync(files.qemuErr, '');
  let cgroup: VmCgroup | undefined;
  const release = async () => {
    if (cgroup) await removeVmCgroup(cgroup);
    fs.rmSync(files.dir, { recursive: true, force: true });
  };
  try {
    const specFile = encodeSpecFile(guestRunSpec(spec, mode));
    if (boot.boot === 'cold') fs.writeFileSync(files.initrd, Buffer.concat([fs.readFileSync(assets.initramfs), newcArchive([{ name: 'hull' }, { name: 'hull/spec', data: specFile }])]), { mode: 0o644 });
    const shares = spec.mounts.filter((m) => m.type === 'bind').map((m, i) => ({ tag: `v${i}`, hostPath: m.source ?? '', readOnly: m.readOnly }));
    for (const s of shares) if (!fs.statSync(s.hostPath, { throwIfNoEntry: false })?.isDirectory()) throw new HullError('NOT_FOUND', `volume source ${s.hostPath} is not a directory`);
    const asNobody = shares.length === 0 && process.getuid?.() === 0;
    if (asNobody) fs.chownSync(files.dir, NOBODY, NOBODY);
    const mux = vmmuxBinary();
    cgroup = pooled ? adoptCgroup(pooled, root, spec.id) : createVmCgroup(root, spec.id, memMiB * 1024 * 1024 + QEMU_OVERHEAD_BYTES);
    // NICs: a tap next to each veth of the prepared namespace, mirrored to it (network/vm-tap.ts)
    const nics: VmNic[] = spec.network === 'netns' && spec.netns ? spec.netns.interfaces.map((i, k) => ({ ifname: i.name, tap: tapName(k), mtu: i.mtu, mac: i.mac })) : [];
    // microvm has 8 virtio-mmio transports: the disk, the serial bus, then volumes and NICs
    if (2 + shares.length + nics.length > 8) throw new HullError('INVALID_ARGUMENT', `a VM has room for 6 volumes and networks together; this one asks for ${shares.length} and ${nics.length}`);
    if (nics.length) await attachVmTaps(spec.netns!.path, nics);
    const taps = nics.length ? tapFdArgv(tapFdHelper(), spec.netns!.path, nics, TAP_FD_BASE) : undefined;
    const tpl = boot.boot === 'restore' ? boot.template : undefined;
    const p: Prepared = {
      files, accel, cgroup, kernelRelease: assets.release, release, mux: mux !== undefined, boot, disk, pooled,
      spawn(ports, io) {
        if (pooled) throw new HullError('INTERNAL', 'a pooled guest runs already: nothing to spawn');
        // fds 3..5: kernel, initrd, disk (QEMU reopens them through /proc/self/fd)
        const fdKernel = fs.openSync(assets.kernel, 'r');
        const fdInitrd = fs.openSync(tpl ? tpl.initrd : files.initrd, 'r');
        const fdDisk = fs.openSync(disk, 'r');
        let fdLog: number | undefined;
        if (ports.log) {
          fdLog = fs.openSync(files.log, 'a', 0o640);
          if (asNobody) fs.fchownSync(fdLog, NOBODY, NOBODY);
        }
        // debugging: the guest's kernel log through a UART, like the other files as an inherited
        // descriptor (QEMU may run as nobody, which cannot reach the instance directory)
        const consolePath = consoleLogPath(files);
        let fdConsole: number | undefined;
        if (consolePath) {
          fdConsole = fs.openSync(consolePath, 'w', 0o640);
          if (asNobody) fs.fchownSync(fdConsole, NOBODY, NOBODY);
        }
        // the guest's writable layer at exit, written by QEMU (maybe as nobody) through a file chardev
        let fdLayer: number | undefined;
        if (layerMode(spec)) {
          fdLayer = fs.openSync(files.layer, 'w', 0o600);
          if (asNobody) fs.fchownSync(fdLayer, NOBODY, NOBODY);
        }
        const fdsToClose: number[] = [];
        try {
          const base = io.base as (string | number | null)[];
          const stdio = [...base.slice(0, 3), fdKernel, fdInitrd, fdDisk, fdLog ?? 'ignore', ...base.slice(3)];
          if (fdLayer !== undefined) stdio.push(fdLayer);
          const layerFd = fdLayer !== undefined ? stdio.length - 1 : undefined;
          if (fdConsole !== undefined) stdio.push(fdConsole);
          const consoleFd = stdio.length - 1;
          // held host ports: the monitor shell (and QEMU) keep them open for the VM's life
          stdio.push(...(spec.heldFds ?? []));
          const args = tpl ? restoreArgs(stdio, fdsToClose, tpl, { memMiB, cpus, accel: accel.accel, tbSizeMiB: tbSizeMiB(mode.attached), log: ports.log === true, stdout: ports.stdout, stderr: ports.stderr, main: ports.main, layer: layerFd !== undefined ? { kind: 'file', path: `/proc/self/fd/${layerFd}` } : undefined, tapFds: (taps?.qemuNics ?? []).map((n) => n.fd) }, p, () => encodeRunFrame(guestRunSpec(spec, mode))) : buildQemuArgs({
            kernel: '/proc/self/fd/3', initrd: '/proc/self/fd/4', disk: '/proc/self/fd/5',
            memoryMiB: memMiB, cpus, accel: accel.accel, tscKhz: hostTscKhz(), tbSizeMiB: tbSizeMiB(mode.attached),
            ramBackend: ramBackend(mode.attached),
            ports: { status: { kind: 'file', path: 'status' }, stdout: ports.log ? { kind: 'file', path: '/proc/self/fd/6', append: true } : ports.stdout, stderr: ports.stderr, ctl: { kind: 'listen', path: 'ctl.sock' }, main: ports.main, ...(layerFd !== undefined ? { layer: { kind: 'file', path: `/proc/self/fd/${layerFd}` } } : {}) },
            shares,
            consoleLog: fdConsole !== undefined ? `/proc/self/fd/${consoleFd}` : undefined,
            nics: taps?.qemuNics,
            qmp: mode.attached ? undefined : 'qmp.sock',
          });
          const priv = asNobody ? ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups'] : ['setpriv'];
          const qemuPriv = io.pdeathsig ? [...priv, '--pdeathsig', 'KILL'] : priv;
          // With an exit command the shell stays as a tiny monitor that runs it (the engine's
          // exit hook) once QEMU ended; a failed restore records no exit (no vm/resumed)
          const script = qemuLaunchScript({
            cgroup, mux: mux ? [...(asNobody ? priv : []), mux] : undefined,
            monitor: io.exitCommand?.length ? { pidFile: files.qemuPid, rcFile: files.qemuRc, then: `${tpl ? `[ -e ${shq(files.resumed)} ] || exit 0; ` : ''}exec ${io.exitCommand.map(shq).join(' ')}` } : undefined,
          });
          // hull-tapfd (as root) opens the taps in the namespace, then execs setpriv and QEMU
          return spawn('sh', ['-c', script, 'hull-vm', ...(taps?.argv ?? []), ...qemuPriv, qemu, ...args], {
            cwd: files.dir, stdio: stdio as StdioOptions, detached: io.detached,
          });
        } finally {
          for (const fd of [fdKernel, fdInitrd, fdDisk, fdLog, fdConsole, fdLayer, ...fdsToClose]) if (fd !== undefined) fs.closeSync(fd);
        }
      },
    };
    return p;
  } catch (e) {
    await release().catch(() => undefined);
    throw e;
  }
}

/**
 * Whether a run may claim a pool guest (runtime/vm/pool.ts): a --rm run with no published port.
 * The rest (memory, vCPUs, accelerator, no NIC, no volume) is the template key, which must match.
 */
function poolEligible(spec: InstanceSpec): boolean {
  return spec.vm?.pool !== false && spec.autoRemove === true && !spec.heldFds?.length && !spec.captureLayer;
}

/** The claimed guest's cgroup becomes the run's (renamed to the instance id, as every VM's is). */
function adoptCgroup(c: Claimed, root: string, id: string): VmCgroup | undefined {
  if (!c.cgroup) return undefined;
  const dir = vmCgroupDir(c.cgroup.version, root, id);
  try {
    fs.renameSync(c.cgroup.dir, dir);
    return { version: c.cgroup.version, dir };
  } catch {
    return c.cgroup;
  }
}

/**
 * Whether this run can restore a template, and which (runtime/vm/snapshot.ts): a run that mounts
 * volumes (9p blocks migration once mounted), captures its layer or logs its console boots cold.
 * NICs are part of the shape (the devices must exist when the template is saved).
 */
async function chooseVmBoot(root: string, spec: InstanceSpec, shape: { memMiB: number; cpus: number; accel: 'kvm' | 'tcg'; kernel: string; initramfs: string; qemu: string }, files: VmFiles, specBytes: number): Promise<BootPlan> {
  const binds = spec.mounts.filter((m) => m.type === 'bind').length;
  const nics = spec.network === 'netns' && spec.netns ? spec.netns.interfaces.length : 0;
  const ineligible = binds ? 'volumes (9p) are not in templates' : spec.captureLayer ? 'build steps boot cold' : consoleLogPath(files) ? 'HULL_VM_CONSOLE_LOG boots cold' : specBytes > 60_000 ? 'a run spec over 60 KB boots cold' : undefined;
  const plan = await chooseBoot(root, spec.vm?.boot ?? DEFAULT_VM_BOOT, { ...shape, tscKhz: hostTscKhz(), nics }, ineligible);
  if (plan.boot === 'cold' && plan.note) process.stderr.write(`${plan.note}\n`);
  return plan;
}

/**
 * The argv of a restored QEMU: the template's, with this run's chardevs, RAM file and state on
 * descriptors appended to stdio (closed by the caller after the spawn), hull.run and the restore's
 * own monitor on socketpairs.
 */
function restoreArgs(stdio: unknown[], toClose: number[], tpl: import('./snapshot.js').Template, o: { memMiB: number; cpus: number; accel: 'kvm' | 'tcg'; tbSizeMiB: number; log: boolean; stdout: Chardev; stderr: Chardev; main?: Chardev; layer?: Chardev; tapFds: number[] }, p: Prepared, frame: () => Buffer): string[] {
  const ram = fs.openSync(tpl.ram, 'r+');
  toClose.push(ram);
  stdio.push(ram);
  const ramFd = stdio.length - 1;
  const state = fs.openSync(tpl.state, 'r');
  toClose.push(state);
  stdio.push(state);
  const stateFd = stdio.length - 1;
  stdio.push('pipe');
  const runIndex = stdio.length - 1;
  stdio.push('pipe');
  const monitorIndex = stdio.length - 1;
  p.restore = { stateFd, runIndex, monitorIndex, frame };
  return templateQemuArgs({ memMiB: o.memMiB, cpus: o.cpus, accel: o.accel, tscKhz: hostTscKhz(), nics: o.tapFds.length }, {
    build: false, tbSizeMiB: o.tbSizeMiB, qmp: 'qmp.sock', qmpFd: monitorIndex, ramFd, tapFds: o.tapFds,
    ports: { status: { kind: 'file', path: 'status' }, stdout: o.log ? { kind: 'file', path: '/proc/self/fd/6', append: true } : o.stdout, stderr: o.stderr, ctl: { kind: 'listen', path: 'ctl.sock' }, main: o.main, layer: o.layer, run: { kind: 'fd', fd: runIndex } },
  });
}


export { shq };
