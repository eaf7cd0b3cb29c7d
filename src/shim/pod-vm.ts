/**
 * One pod's VM: virtiofsd serving the pod's share and QEMU (microvm, the VM wall's kernel and
 * guest agent in pod mode), both children of the shim that die with it (pdeathsig) and both in
 * the VM's memory cgroup (guest RAM + QEMU's overhead); QEMU runs as nobody and, for a CRI pod,
 * in the pod's network namespace. The shim holds the guest's hull.ctl port for the VM's whole
 * life; frames are routed to per-channel handlers synchronously, in the order the guest sent
 * them (so a container's STARTED is handled before its EXIT even when both arrive in one read).
 *
 * Files, in <pod dir>/vm/: initrd.cpio (base initramfs + the pod spec), ctl.sock (QEMU listens),
 * status (hull.status), qemu.err, virtiofsd.err, vfs.sock, console.log (HULL_VM_CONSOLE_LOG).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { HullError } from '../errors.js';
import { chooseAccel, type AccelChoice } from '../runtime/vm/accel.js';
import { guestAssets, hostTscKhz, qemuBinary } from '../runtime/vm/assets.js';
import { createVmCgroup, joinCommand, QEMU_OVERHEAD_BYTES, readVmCgroup, removeVmCgroup, type VmCgroup } from '../runtime/vm/cgroup.js';
import { newcArchive } from '../runtime/vm/cpio.js';
import { NOBODY, shq } from '../runtime/vm/launch.js';
import { decodeExit, encodeData, encodeFrame, FrameDecoder, T, type ExitFrame } from '../runtime/vm/protocol.js';
import { attachVmTaps, detachVmTaps, tapFdArgv, tapFdHelper } from '../network/vm-tap.js';
import { buildPodQemuArgs, buildVirtiofsdArgs } from './pod-args.js';
import { readPodNetwork, type PodNetwork } from './pod-net.js';
import { decodePidList, decodeStarted, encodePodSpecFile, TP } from './pod-protocol.js';

/** virtiofsd binary: HULL_VIRTIOFSD, or the one Debian's QEMU ships. */
export function virtiofsdBinary(env: NodeJS.ProcessEnv = process.env): string {
  return env.HULL_VIRTIOFSD ?? '/usr/lib/qemu/virtiofsd';
}

export interface PodVmOptions {
  /** The pod's directory: vm/ and share/ live here. */
  dir: string;
  /** Names the VM's cgroup (unique per pod and containerd). */
  id: string;
  memoryMiB: number;
  cpus: number;
  hostname: string;
  /** The pod's network namespace (prepared by CNI): the VM's NICs mirror its veths. */
  netns?: string;
  log: (msg: string) => void;
}

/** What a channel (a container or an exec session) hears from the guest. */
export interface ChannelHandlers {
  started?(guestPid: number): void;
  output?(stream: 'stdout' | 'stderr', data: Buffer): void;
  exit?(x: ExitFrame): void;
  oom?(): void;
  error?(message: string): void;
  pids?(pids: number[]): void;
  removed?(): void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function readText(f: string): string {
  try {
    return fs.readFileSync(f, 'utf8').trim();
  } catch {
    return '';
  }
}

export class PodVm {
  private readonly channels = new Map<number, ChannelHandlers>();
  private gone: string | undefined;
  private goneWaiters: ((reason: string) => void)[] = [];
  /** Called once when the VM ends by itself (QEMU exited or the control port closed). */
  onGone: (reason: string, oomKilled: boolean) => void = () => undefined;
  private stopping = false;

  private constructor(
    private readonly o: PodVmOptions,
    readonly accel: AccelChoice,
    readonly kernelRelease: string,
    private readonly qemu: ChildProcess,
    private readonly virtiofsd: ChildProcess,
    private readonly ctl: net.Socket,
    readonly cgroup: VmCgroup | undefined,
    /** The pod's NICs and routes as the guest got them (none without a netns). */
    readonly network: PodNetwork,
  ) {}

  get qemuPid(): number {
    return this.qemu.pid ?? 0;
  }

  get virtiofsdPid(): number {
    return this.virtiofsd.pid ?? 0;
  }

  get ended(): boolean {
    return this.gone !== undefined;
  }

  static vmDir(podDir: string): string {
    return path.join(podDir, 'vm');
  }

  static shareDir(podDir: string): string {
    return path.join(podDir, 'share');
  }

  /** Boots the pod's VM; resolves once the guest agent is ready. Undoes itself on failure. */
  static async boot(o: PodVmOptions): Promise<PodVm> {
    const assets = guestAssets();
    const qemuBin = qemuBinary();
    const accel = await chooseAccel('auto', qemuBin, assets.kernel, assets.initramfs);
    const vm = PodVm.vmDir(o.dir);
    const share = PodVm.shareDir(o.dir);
    fs.rmSync(vm, { recursive: true, force: true });
    fs.mkdirSync(vm, { recursive: true, mode: 0o700 });
    fs.mkdirSync(share, { recursive: true, mode: 0o700 });
    const files = {
      initrd: path.join(vm, 'initrd.cpio'), ctl: path.join(vm, 'ctl.sock'), status: path.join(vm, 'status'),
      qemuErr: path.join(vm, 'qemu.err'), vfsErr: path.join(vm, 'virtiofsd.err'), vfsSock: path.join(vm, 'vfs.sock'),
    };
    const network: PodNetwork = o.netns ? await readPodNetwork(o.netns) : { nics: [], routes: [] };
    const spec = encodePodSpecFile({ hostname: o.hostname, clockNs: BigInt(Date.now()) * 1_000_000n, network });
    fs.writeFileSync(files.initrd, Buffer.concat([fs.readFileSync(assets.initramfs), newcArchive([{ name: 'hull' }, { name: 'hull/spec', data: spec }])]), { mode: 0o644 });
    const asNobody = process.getuid?.() === 0;
    if (asNobody) fs.chownSync(vm, NOBODY, NOBODY);
    // under hull-vm/<key of the shims' directory>/pod-<pod key>, as hull's VMs are under their root's key
    const cgroup = createVmCgroup(path.dirname(o.dir), `pod-${o.id}`, o.memoryMiB * 1024 * 1024 + QEMU_OVERHEAD_BYTES);
    const jc = cgroup ? joinCommand(cgroup) : undefined;
    const join = jc ? `echo ${jc.word} > ${shq(jc.file)} || exit 125; ` : '';
    const children: ChildProcess[] = [];
    let ctl: net.Socket | undefined;
    let tapped = false;
    try {
      if (o.netns && network.nics.length) {
        await attachVmTaps(o.netns, network.nics);
        tapped = true;
      }
      // virtiofsd first: QEMU connects to its socket at start-up
      const vfsErr = fs.openSync(files.vfsErr, 'w');
      const virtiofsd = spawn('sh', ['-c', `${join}exec "$@"`, 'hull-virtiofsd', 'setpriv', '--pdeathsig', 'KILL', virtiofsdBinary(), ...buildVirtiofsdArgs({ source: share, socket: files.vfsSock })], { stdio: ['ignore', vfsErr, vfsErr] });
      fs.closeSync(vfsErr);
      children.push(virtiofsd);
      virtiofsd.on('error', () => undefined);
      await waitFor(() => fs.existsSync(files.vfsSock), () => exited(virtiofsd), 10_000, () => `virtiofsd did not start: ${readText(files.vfsErr) || 'no socket after 10 s'}`);
      if (asNobody) fs.chownSync(files.vfsSock, NOBODY, NOBODY);

      const errFd = fs.openSync(files.qemuErr, 'w');
      const fdKernel = fs.openSync(assets.kernel, 'r');
      const fdInitrd = fs.openSync(files.initrd, 'r');
      const consolePath = process.env.HULL_VM_CONSOLE_LOG ? (path.isAbsolute(process.env.HULL_VM_CONSOLE_LOG) ? process.env.HULL_VM_CONSOLE_LOG : path.join(vm, 'console.log')) : undefined;
      const fdConsole = consolePath ? fs.openSync(consolePath, 'w', 0o640) : undefined;
      if (fdConsole !== undefined && asNobody) fs.fchownSync(fdConsole, NOBODY, NOBODY);
      // the taps are opened inside the pod namespace by hull-tapfd and inherited from fd 10 up
      const taps = o.netns && network.nics.length ? tapFdArgv(tapFdHelper(), o.netns, network.nics, 10) : { argv: [], qemuNics: [] };
      const args = buildPodQemuArgs({
        kernel: '/proc/self/fd/3', initrd: '/proc/self/fd/4', memoryMiB: o.memoryMiB, cpus: o.cpus, accel: accel.accel,
        tscKhz: hostTscKhz(), tbSizeMiB: 8, nics: taps.qemuNics,
        // relative to QEMU's cwd (vm/): QEMU runs as nobody, which cannot search the pod's directory
        virtiofsSocket: 'vfs.sock',
        ports: { status: { kind: 'file', path: 'status' }, stdout: { kind: 'null' }, stderr: { kind: 'null' }, ctl: { kind: 'listen', path: 'ctl.sock' } },
        consoleLog: fdConsole !== undefined ? '/proc/self/fd/5' : undefined,
      });
      const priv = asNobody ? ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--pdeathsig', 'KILL'] : ['setpriv', '--pdeathsig', 'KILL'];
      let qemu: ChildProcess;
      try {
        qemu = spawn('sh', ['-c', `${join}exec "$@"`, 'hull-vm', ...taps.argv, ...priv, qemuBin, ...args], {
          cwd: vm, stdio: ['ignore', errFd, errFd, fdKernel, fdInitrd, ...(fdConsole !== undefined ? [fdConsole] : [])],
        });
      } finally {
        for (const fd of [errFd, fdKernel, fdInitrd, fdConsole]) if (fd !== undefined) fs.closeSync(fd);
      }
      children.push(qemu);
      qemu.on('error', () => undefined);
      const why = () => `the pod VM did not start: ${readText(files.qemuErr) || readText(files.vfsErr) || `QEMU exit status ${qemu.exitCode ?? qemu.signalCode}`}`;
      await waitFor(() => fs.existsSync(files.ctl), () => exited(qemu), 30_000, why);
      ctl = await connectRetry(files.ctl, () => exited(qemu), 30_000, why);
      const c = ctl;
      const release = await new Promise<string>((resolve, reject) => {
        const dec = new FrameDecoder();
        const t = setTimeout(() => reject(new HullError('UNAVAILABLE', 'the pod VM did not boot within 120 s')), 120_000);
        const onData = (chunk: Buffer) => {
          try {
            for (const f of dec.push(chunk)) {
              if (f.type === T.READY) {
                clearTimeout(t);
                c.off('data', onData);
                c.pause();
                resolve(f.payload.subarray(4).toString('utf8'));
              } else if (f.type === T.ERROR) {
                clearTimeout(t);
                reject(new HullError('FAILED_PRECONDITION', `the pod VM's agent: ${f.payload.toString('utf8')}`));
              }
            }
          } catch (e) {
            clearTimeout(t);
            reject(e);
          }
        };
        c.on('data', onData);
        c.once('close', () => { clearTimeout(t); reject(new HullError('FAILED_PRECONDITION', why())); });
        c.on('error', () => undefined);
      });
      const pod = new PodVm(o, accel, release, qemu, virtiofsd, c, cgroup, network);
      pod.wire();
      return pod;
    } catch (e) {
      ctl?.destroy();
      for (const ch of children) if (!exited(ch)) ch.kill('SIGKILL');
      for (const ch of children) await waitExit(ch, 5000);
      if (cgroup) await removePodCgroup(cgroup).catch(() => undefined);
      if (tapped && o.netns) await detachVmTaps(o.netns, network.nics).catch(() => undefined);
      throw e;
    }
  }

  private wire(): void {
    const dec = new FrameDecoder();
    this.ctl.on('data', (chunk: Buffer) => {
      let frames;
      try {
        frames = dec.push(chunk);
      } catch (e) {
        this.o.log(`guest protocol error: ${(e as Error).message}; stopping the pod VM`);
        this.ctl.destroy();
        return;
      }
      for (const f of frames) this.dispatch(f.type, f.channel, f.payload);
    });
    this.ctl.resume();
    this.ctl.on('error', () => undefined);
    this.ctl.on('close', () => this.end('the VM closed its control port'));
    this.qemu.on('exit', (code, sig) => this.end(`QEMU exited (${sig ?? `status ${code}`}): ${readText(path.join(PodVm.vmDir(this.o.dir), 'qemu.err')).slice(0, 500)}`));
  }

  private end(reason: string): void {
    if (this.gone !== undefined) return;
    this.gone = reason;
    this.ctl.destroy();
    if (!exited(this.qemu)) this.qemu.kill('SIGKILL');
    const oom = this.cgroup ? readVmCgroup(this.cgroup).oomKilled : false;
    for (const w of this.goneWaiters) w(reason);
    this.goneWaiters = [];
    if (!this.stopping) this.onGone(reason, oom);
  }

  private dispatch(type: number, ch: number, payload: Buffer): void {
    const h = this.channels.get(ch);
    if (!h) return;
    try {
      switch (type) {
        case TP.STARTED: h.started?.(decodeStarted(payload)); break;
        case T.STDOUT: h.output?.('stdout', payload); break;
        case T.STDERR: h.output?.('stderr', payload); break;
        case T.EXIT: h.exit?.(decodeExit(payload)); break;
        case TP.OOM: h.oom?.(); break;
        case T.ERROR: h.error?.(payload.toString('utf8')); break;
        case TP.PIDLIST: h.pids?.(decodePidList(payload)); break;
        case TP.REMOVED: h.removed?.(); break;
        default: this.o.log(`guest sent an unknown frame type 0x${type.toString(16)} on channel ${ch}`);
      }
    } catch (e) {
      this.o.log(`handling a guest frame of channel ${ch}: ${(e as Error).message}`);
    }
  }

  /** Routes a channel's frames to `h` (replacing what was there). */
  listen(ch: number, h: ChannelHandlers): void {
    this.channels.set(ch, h);
  }

  forget(ch: number): void {
    this.channels.delete(ch);
  }

  /** Sends one frame; false when the VM is gone. */
  send(type: number, ch: number, payload?: Buffer): boolean {
    if (this.gone !== undefined) return false;
    this.ctl.write(encodeFrame(type, ch, payload));
    return true;
  }

  /** Sends data as STDIN frames of at most 64 KiB. */
  stdin(ch: number, data: Buffer): void {
    if (this.gone !== undefined) return;
    for (const f of encodeData(T.STDIN, ch, data)) this.ctl.write(f);
  }

  /** The memory charged to the VM's cgroup (guest RAM touched + QEMU + virtiofsd), its limit, and CPU time of both processes. */
  usage(): { memoryBytes: number; limitBytes: number; cpuNs: number; pids: number } {
    const cpu = (pid: number) => {
      try {
        const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
        const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
        return ((Number(f[11]) + Number(f[12])) / 100) * 1e9;
      } catch {
        return 0;
      }
    };
    const c = this.cgroup ? readVmCgroup(this.cgroup) : { usage: 0, limit: 0, pids: 0 };
    return { memoryBytes: c.usage, limitBytes: c.limit, cpuNs: Math.round(cpu(this.qemuPid) + cpu(this.virtiofsdPid)), pids: c.pids };
  }

  /** Powers the VM off (SHUTDOWN, then SIGKILL after `graceMs`), waits for QEMU and virtiofsd, removes the cgroup. */
  async stop(graceMs = 3000): Promise<void> {
    this.stopping = true;
    if (this.gone === undefined) {
      this.send(T.SHUTDOWN, 0);
      await Promise.race([new Promise((r) => this.goneWaiters.push(r)), sleep(graceMs)]);
    }
    this.end('stopped by the shim');
    await waitExit(this.qemu, 10_000);
    if (!exited(this.virtiofsd)) this.virtiofsd.kill('SIGTERM');
    if (!(await waitExit(this.virtiofsd, 3000))) {
      this.virtiofsd.kill('SIGKILL');
      await waitExit(this.virtiofsd, 5000);
    }
    if (this.cgroup) await removePodCgroup(this.cgroup);
    // the pod's namespace outlives its VM (the CRI plugin removes it later): take the taps out
    if (this.o.netns) await detachVmTaps(this.o.netns, this.network.nics).catch((e) => this.o.log(`removing the taps: ${(e as Error).message}`));
  }
}

/** Removes a pod VM's cgroup, and the shims' parent cgroup once no pod is left in it. */
export async function removePodCgroup(cg: VmCgroup): Promise<void> {
  await removeVmCgroup(cg);
  try {
    fs.rmdirSync(path.dirname(cg.dir));
  } catch {
    // another pod's cgroup is still there (ENOTEMPTY/EBUSY), or it is gone already
  }
}

function exited(c: ChildProcess): boolean {
  return c.exitCode !== null || c.signalCode !== null;
}

function waitExit(c: ChildProcess, ms: number): Promise<boolean> {
  if (exited(c) || c.pid === undefined) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    c.once('exit', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

async function waitFor(ok: () => boolean, dead: () => boolean, ms: number, why: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (dead()) {
      await sleep(20); // let its stderr reach the file
      throw new HullError('FAILED_PRECONDITION', why());
    }
    if (Date.now() > end) throw new HullError('UNAVAILABLE', why());
    await sleep(5);
  }
}

async function connectRetry(p: string, dead: () => boolean, ms: number, why: () => string): Promise<net.Socket> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      return await new Promise<net.Socket>((resolve, reject) => {
        const s = net.connect(p);
        s.once('connect', () => resolve(s));
        s.once('error', reject);
      });
    } catch {
      if (dead()) throw new HullError('FAILED_PRECONDITION', why());
      if (Date.now() > end) throw new HullError('UNAVAILABLE', why());
      await sleep(5);
    }
  }
}
