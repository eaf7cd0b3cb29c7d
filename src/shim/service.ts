/**
 * containerd's task API for one pod (src/shim/task-api.ts decodes the ttrpc calls into these
 * methods). The first task created boots the pod's VM; later tasks (the CRI containers of the
 * same sandbox) join it. Each task and each exec is a process on its own channel of the guest
 * agent. States and their transitions, per process: created -> running -> stopped, or
 * created -> stopped (killed or failed before it ran); each operation states its precondition
 * and refuses with the code containerd branches on (NotFound, AlreadyExists,
 * FailedPrecondition).
 *
 * Events follow runtime/v2/README.md: TaskCreate when Create succeeds, TaskStart from the
 * guest's STARTED (handled before any later frame of the channel), TaskOOM before TaskExit,
 * TaskExit after the process's output has been flushed to its fifos, TaskDelete when deleted;
 * for execs TaskExecAdded, TaskExecStarted, TaskExit.
 */
import fs from 'node:fs';
import path from 'node:path';
import type net from 'node:net';
import { HullError } from '../errors.js';
import { T, type ExitFrame } from '../runtime/vm/protocol.js';
import { endWritable, openInput, openOutput, type PendingInput, type Writable } from './fifo-io.js';
import type { CtrdMount } from './mounts.js';
import { checkProcess, checkSpec, guestProcess, netnsPath, podVmSize, sharesPodPids, taskRole, type OciSpec, type TaskRole } from './oci-guest.js';
import { prepareTaskRoot, releaseTaskRoot, removeTree } from './pod.js';
import { encodePodExec, encodeRun, encodeSignal, TP, type GuestContainer } from './pod-protocol.js';
import { PodVm, type ChannelHandlers, type PodVmOptions } from './pod-vm.js';
import { timestamp as ts } from './protos.js';
import { TOPIC, type Publisher } from './publisher.js';

export type ProcStatus = 'created' | 'running' | 'stopped';

/** containerd.v1.types.Status numbers. */
export const STATUS_NUMBER: Record<ProcStatus, number> = { created: 1, running: 2, stopped: 3 };

interface Proc {
  execId: string;
  channel: number;
  terminal: boolean;
  stdin: string;
  stdout: string;
  stderr: string;
  status: ProcStatus;
  exitStatus: number;
  exitedAt?: Date;
  /** The task's process ran (or the exec's): an exit may be published. */
  started: boolean;
  oomPublished: boolean;
  waiters: (() => void)[];
  /** stdin: being opened (until its writer opens), then the pipe. */
  pendingIn?: PendingInput;
  in?: net.Socket;
  out?: Writable;
  err?: Writable;
  stdinClosed: boolean;
  stdinEofSent?: boolean;
  /** What its guest channel is routed to (PodVm keeps this object). */
  handlers?: ChannelHandlers;
  /** Callers of Pids waiting for the guest's PIDLIST. */
  pidWaiters?: ((pids: number[]) => void)[];
}

interface Task extends Proc {
  id: string;
  bundle: string;
  role: TaskRole;
  rootfs: CtrdMount[];
  guest: GuestContainer;
  execs: Map<string, Proc & { process: ReturnType<typeof guestProcess> }>;
  /** RUN was sent: the guest holds (or held) this container's root. */
  ran: boolean;
}

export interface ServiceOptions {
  namespace: string;
  /** The pod's directory (vm/, share/). */
  podDir: string;
  /** Unique per pod and containerd: names the VM's cgroup. */
  podKey: string;
  publisher: Publisher;
  log: (msg: string) => void;
  /** Called after Shutdown found nothing left: the shim process may exit. */
  onShutdown: () => void;
  /** Overrides for tests. */
  vmBoot?: (o: PodVmOptions) => Promise<PodVm>;
}

const notFound = (what: string) => new HullError('NOT_FOUND', what);
const precondition = (what: string) => new HullError('FAILED_PRECONDITION', what);

export class ShimService {
  private readonly tasks = new Map<string, Task>();
  private vm: PodVm | undefined;
  private vmGone: string | undefined;
  private booting: Promise<PodVm> | undefined;
  private nextChannel = 1;
  private shuttingDown = false;

  constructor(private readonly o: ServiceOptions) {}

  get taskCount(): number {
    return this.tasks.size;
  }

  get qemuPid(): number {
    return this.vm?.qemuPid ?? 0;
  }

  private channel(): number {
    const used = new Set<number>();
    for (const t of this.tasks.values()) {
      used.add(t.channel);
      for (const e of t.execs.values()) used.add(e.channel);
    }
    for (let i = 0; i < 65535; i++) {
      const c = this.nextChannel;
      this.nextChannel = c >= 65535 ? 1 : c + 1;
      if (!used.has(c)) return c;
    }
    throw new HullError('UNAVAILABLE', 'no free guest channel');
  }

  private task(id: string): Task {
    const t = this.tasks.get(id);
    if (!t) throw notFound(`task ${id} not found`);
    return t;
  }

  private proc(id: string, execId: string): Proc {
    const t = this.task(id);
    if (!execId) return t;
    const e = t.execs.get(execId);
    if (!e) throw notFound(`exec ${execId} of task ${id} not found`);
    return e;
  }

  private async ensureVm(spec: OciSpec, id: string): Promise<PodVm> {
    if (this.vm) return this.vm;
    if (this.vmGone) throw precondition(`the pod VM is gone: ${this.vmGone}`);
    if (!this.booting) {
      const size = podVmSize(spec);
      const boot = this.o.vmBoot ?? PodVm.boot;
      this.booting = boot({
        dir: this.o.podDir, id: this.o.podKey, memoryMiB: size.memoryMiB, cpus: size.cpus,
        hostname: spec.hostname || id.slice(0, 12), netns: netnsPath(spec), log: this.o.log,
      });
    }
    try {
      const vm = await this.booting;
      this.vm = vm;
      vm.onGone = (reason, oom) => this.vmEnded(reason, oom);
      this.o.log(`pod VM up: QEMU pid ${vm.qemuPid}, ${vm.accel.reason}, guest kernel ${vm.kernelRelease}`);
      return vm;
    } finally {
      this.booting = undefined;
    }
  }

  async create(r: { id: string; bundle: string; rootfs: CtrdMount[]; terminal: boolean; stdin: string; stdout: string; stderr: string; checkpoint: string }): Promise<{ pid: number }> {
    if (this.shuttingDown) throw precondition('the shim is shutting down');
    if (this.tasks.has(r.id)) throw new HullError('CONFLICT', `task ${r.id} already exists`);
    if (r.checkpoint) throw new HullError('INVALID_ARGUMENT', 'restoring a checkpoint is not supported by the hull shim');
    let spec: OciSpec;
    try {
      spec = checkSpec(JSON.parse(fs.readFileSync(path.join(r.bundle, 'config.json'), 'utf8')));
    } catch (e) {
      if (e instanceof HullError) throw e;
      throw new HullError('INVALID_ARGUMENT', `reading ${path.join(r.bundle, 'config.json')}: ${(e as Error).message}`, { cause: e });
    }
    const role = taskRole(spec);
    if (role.kind === 'container' && !this.vm && !this.booting) throw precondition(`sandbox ${role.sandboxId} has no VM in this shim (create the sandbox first)`);
    const first = this.tasks.size === 0 && !this.vm;
    const vm = await this.ensureVm(spec, r.id);
    let guest: GuestContainer;
    try {
      guest = await prepareTaskRoot(this.o.podDir, r.id, r.bundle, r.rootfs, spec, { terminal: r.terminal, stdin: !!r.stdin });
    } catch (e) {
      if (first && this.tasks.size === 0) await this.stopVm();
      throw e;
    }
    if (sharesPodPids(spec)) guest.pidnsOf = [...this.tasks.values()].find((x) => x.role.kind === 'sandbox')?.channel;
    const t: Task = {
      id: r.id, bundle: r.bundle, role, rootfs: r.rootfs, guest, execs: new Map(), ran: false,
      execId: '', channel: this.channel(), terminal: r.terminal, stdin: r.stdin, stdout: r.stdout, stderr: r.stderr,
      status: 'created', exitStatus: 0, started: false, oomPublished: false, waiters: [], stdinClosed: false,
    };
    try {
      this.openIo(t);
    } catch (e) {
      await releaseTaskRoot(this.o.podDir, r.id, r.bundle, r.rootfs.length > 0).catch(() => undefined);
      if (first && this.tasks.size === 0) await this.stopVm();
      throw e;
    }
    this.tasks.set(r.id, t);
    void this.o.publisher.publish(TOPIC.CREATE, {
      containerId: r.id, bundle: r.bundle, rootfs: r.rootfs.map((m) => ({ type: m.type, source: m.source, target: m.target ?? '', options: m.options })),
      io: { stdin: r.stdin, stdout: r.stdout, stderr: r.stderr, terminal: r.terminal }, checkpoint: '', pid: vm.qemuPid,
    });
    return { pid: vm.qemuPid };
  }

  private openIo(p: Proc): void {
    p.out = openOutput(p.stdout);
    try {
      p.err = p.terminal ? undefined : openOutput(p.stderr);
      p.pendingIn = openInput(p.stdin);
    } catch (e) {
      p.out?.destroy();
      p.err?.destroy();
      throw e;
    }
  }

  /** Output and exit of a process's channel; `onStarted` runs synchronously on STARTED. */
  private listen(t: Task, p: Proc, onStarted: (guestPid: number) => void, onFailed: (e: HullError) => void): void {
    const vm = this.vm!;
    p.handlers = {
      pids: (list) => {
        for (const w of (p.pidWaiters ?? []).splice(0)) w(list);
      },
      started: (pid) => {
        p.status = 'running';
        p.started = true;
        onStarted(pid);
        this.feedStdin(p);
      },
      output: (stream, data) => {
        const w = stream === 'stdout' || p.terminal ? p.out : p.err;
        w?.write(data);
      },
      oom: () => this.publishOom(t),
      error: (m) => {
        if (!p.started && p.status === 'created') onFailed(precondition(`the guest refused to start ${p.execId ? `exec ${p.execId}` : `task ${t.id}`}: ${m}`));
        else this.o.log(`guest error on ${t.id}${p.execId ? `/${p.execId}` : ''}: ${m}`);
      },
      exit: (x) => {
        if (!p.started) {
          // failed before it ran: no exit event (never started), the error goes to the caller
          this.finish(t, p, x, false);
          onFailed(precondition(x.reason ?? `${p.execId ? `exec ${p.execId}` : `task ${t.id}`} failed to start (exit ${x.code})`));
          return;
        }
        this.finish(t, p, x, true);
      },
    };
    vm.listen(p.channel, p.handlers);
  }

  /** Copies the stdin fifo into the guest once the process runs; EOF (the writer closed, or CloseIO) is passed on. */
  private feedStdin(p: Proc): void {
    const vm = this.vm!;
    const ch = p.channel;
    const eof = () => {
      if (p.stdinEofSent) return;
      p.stdinEofSent = true;
      vm.send(T.STDIN_EOF, ch);
    };
    if (!p.pendingIn || p.stdinClosed) return eof();
    void p.pendingIn.ready.then((sock) => {
      if (!sock || p.status === 'stopped') {
        sock?.destroy();
        return eof();
      }
      p.in = sock;
      sock.on('data', (d: Buffer) => vm.stdin(ch, d));
      sock.on('end', eof);
      sock.on('close', eof);
      if (p.stdinClosed) this.closeIo('', '', true, p);
    });
  }

  private publishOom(t: Task): void {
    if (t.oomPublished) return;
    t.oomPublished = true;
    void this.o.publisher.publish(TOPIC.OOM, { containerId: t.id });
  }

  /** A process ended: flush its output, then publish its exit and wake its waiters. */
  private finish(t: Task, p: Proc, x: ExitFrame, publish: boolean): void {
    if (p.status === 'stopped') return;
    p.status = 'stopped';
    p.exitStatus = x.code < 0 ? 255 : x.code;
    p.exitedAt = new Date();
    if (x.oomKilled && !p.execId) this.publishOom(t);
    p.pendingIn?.cancel();
    p.in?.destroy();
    p.in = undefined;
    void Promise.all([endWritable(p.out), endWritable(p.err)]).then(() => {
      p.out = p.err = undefined;
      if (publish) {
        void this.o.publisher.publish(TOPIC.EXIT, { containerId: t.id, id: p.execId || t.id, pid: this.qemuPid, exitStatus: p.exitStatus, exitedAt: ts(p.exitedAt) });
      }
      for (const w of p.waiters.splice(0)) w();
    });
    // a CRI pod ends with its sandbox: what still runs in it is killed, as when Kata's sandbox goes
    if (!p.execId && t.role.kind === 'sandbox') {
      for (const o of this.tasks.values()) if (o !== t && o.status === 'running') this.vm?.send(T.SIGNAL, o.channel, encodeSignal(9, true));
    }
  }

  private vmEnded(reason: string, oom: boolean): void {
    this.vmGone = reason;
    this.o.log(`pod VM ended: ${reason}${oom ? ' (its memory cgroup OOM-killed it)' : ''}`);
    for (const t of this.tasks.values()) {
      for (const p of [t, ...t.execs.values()]) {
        if (p.status === 'stopped') continue;
        this.finish(t, p, { code: 137, oomKilled: oom && !p.execId }, p.started || p === t);
      }
    }
  }

  async start(id: string, execId: string): Promise<{ pid: number }> {
    const t = this.task(id);
    const p = this.proc(id, execId);
    if (p.status !== 'created') throw precondition(`${execId ? `exec ${execId}` : `task ${id}`} is ${p.status}, not created`);
    const vm = this.vm;
    if (!vm || vm.ended) throw precondition(`the pod VM is gone${this.vmGone ? `: ${this.vmGone}` : ''}`);
    if (execId && t.status !== 'running') throw precondition(`task ${id} is not running`);
    return new Promise((resolve, reject) => {
      this.listen(t, p, () => {
        void this.o.publisher.publish(execId ? TOPIC.EXEC_STARTED : TOPIC.START, execId ? { containerId: id, execId, pid: vm.qemuPid } : { containerId: id, pid: vm.qemuPid });
        resolve({ pid: vm.qemuPid });
      }, reject);
      if (execId) {
        const e = t.execs.get(execId)!;
        vm.send(T.EXEC, p.channel, encodePodExec(e.process, t.channel));
      } else {
        t.ran = true;
        vm.send(TP.RUN, p.channel, encodeRun(t.guest));
      }
    });
  }

  async exec(r: { id: string; execId: string; terminal: boolean; stdin: string; stdout: string; stderr: string; spec?: { typeUrl: string; value: Buffer } | null }): Promise<void> {
    const t = this.task(r.id);
    if (!r.execId) throw new HullError('INVALID_ARGUMENT', 'exec id is empty');
    if (t.execs.has(r.execId)) throw new HullError('CONFLICT', `exec ${r.execId} of task ${r.id} already exists`);
    if (t.status !== 'running') throw precondition(`task ${r.id} is ${t.status}: exec needs a running task`);
    if (!r.spec?.value?.length) throw new HullError('INVALID_ARGUMENT', 'exec has no process spec');
    let proc;
    try {
      proc = checkProcess(JSON.parse(r.spec.value.toString('utf8')));
    } catch (e) {
      if (e instanceof HullError) throw e;
      throw new HullError('INVALID_ARGUMENT', `exec process spec is not JSON: ${(e as Error).message}`);
    }
    const process = guestProcess(proc, { terminal: r.terminal, stdin: !!r.stdin });
    const e = {
      execId: r.execId, channel: this.channel(), terminal: r.terminal, stdin: r.stdin, stdout: r.stdout, stderr: r.stderr,
      status: 'created' as ProcStatus, exitStatus: 0, started: false, oomPublished: false, waiters: [], stdinClosed: false, process,
    };
    this.openIo(e);
    t.execs.set(r.execId, e);
    void this.o.publisher.publish(TOPIC.EXEC_ADDED, { containerId: r.id, execId: r.execId });
  }

  async kill(id: string, execId: string, signal: number, all: boolean): Promise<void> {
    const t = this.task(id);
    const p = this.proc(id, execId);
    if (!Number.isInteger(signal) || signal < 1 || signal > 64) throw new HullError('INVALID_ARGUMENT', `invalid signal ${signal}`);
    if (p.status === 'stopped') throw notFound(`process already finished`);
    if (p.status === 'created') {
      // never ran: it ends here, with the signal's code, as runc's killed init does
      this.finish(t, p, { code: 128 + signal, oomKilled: false }, true);
      return;
    }
    if (!this.vm?.send(T.SIGNAL, p.channel, encodeSignal(signal, all && !execId))) throw notFound('process already finished (the pod VM is gone)');
  }

  async wait(id: string, execId: string): Promise<{ exitStatus: number; exitedAt: Date | undefined }> {
    const p = this.proc(id, execId);
    if (p.status !== 'stopped' || p.out || p.err) await new Promise<void>((r) => p.waiters.push(r));
    return { exitStatus: p.exitStatus, exitedAt: p.exitedAt };
  }

  state(id: string, execId: string) {
    const t = this.task(id);
    const p = this.proc(id, execId);
    return {
      id, bundle: t.bundle, pid: this.qemuPid, status: STATUS_NUMBER[p.status], stdin: p.stdin, stdout: p.stdout, stderr: p.stderr,
      terminal: p.terminal, exitStatus: p.exitStatus, exitedAt: p.exitedAt, execId,
    };
  }

  async pids(id: string): Promise<number[]> {
    const t = this.task(id);
    const vm = this.vm;
    if (t.status !== 'running' || !vm || vm.ended) return [];
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new HullError('UNAVAILABLE', 'the guest did not list the pids within 5 s')), 5000);
      (t.pidWaiters ??= []).push((list) => {
        clearTimeout(timer);
        resolve(list);
      });
      vm.send(TP.PIDS, t.channel);
    });
  }

  resize(id: string, execId: string, width: number, height: number): void {
    const p = this.proc(id, execId);
    if (p.status !== 'running') return;
    const b = Buffer.alloc(4);
    b.writeUInt16LE(Math.min(height, 65535), 0);
    b.writeUInt16LE(Math.min(width, 65535), 2);
    this.vm?.send(T.RESIZE, p.channel, b);
  }

  closeIo(id: string, execId: string, stdin: boolean, known?: Proc): void {
    const p = known ?? this.proc(id, execId);
    if (!stdin) return;
    p.stdinClosed = true;
    const sock = p.in;
    if (!sock) return; // not running yet: feedStdin sends the EOF when it starts
    // what the fifo already holds is delivered first (one turn of the loop), then the EOF
    setImmediate(() => {
      sock.destroy();
    });
  }

  async delete(id: string, execId: string): Promise<{ pid: number; exitStatus: number; exitedAt: Date | undefined }> {
    const t = this.task(id);
    const p = this.proc(id, execId);
    if (p.status === 'running') throw precondition(`${execId ? `exec ${execId}` : `task ${id}`} is running: kill it before deleting`);
    const out = { pid: this.qemuPid, exitStatus: p.exitStatus, exitedAt: p.exitedAt };
    if (p.status === 'created') this.finish(t, p, { code: 0, oomKilled: false }, false);
    if (execId) {
      this.vm?.forget(p.channel);
      t.execs.delete(execId);
      return out;
    }
    for (const e of t.execs.values()) if (e.status === 'running') this.vm?.send(T.SIGNAL, e.channel, encodeSignal(9, false));
    if (t.ran && this.vm && !this.vm.ended) await this.removeInGuest(t);
    this.vm?.forget(t.channel);
    await releaseTaskRoot(this.o.podDir, t.id, t.bundle, t.rootfs.length > 0);
    this.tasks.delete(id);
    void this.o.publisher.publish(TOPIC.DELETE, { containerId: id, pid: out.pid, exitStatus: out.exitStatus, exitedAt: ts(out.exitedAt), id: '' });
    return out;
  }

  private removeInGuest(t: Task): Promise<void> {
    const vm = this.vm!;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.o.log(`the guest did not release ${t.id}'s root within 5 s`);
        resolve();
      }, 5000);
      vm.listen(t.channel, {
        removed: () => { clearTimeout(timer); resolve(); },
        error: (m) => { clearTimeout(timer); this.o.log(`guest: removing ${t.id}: ${m}`); resolve(); },
      });
      if (!vm.send(TP.REMOVE, t.channel)) { clearTimeout(timer); resolve(); }
    });
  }

  /** VM usage, charged to every task of the pod (the guest has no per-container accounting). */
  stats(id: string) {
    this.task(id);
    const u = this.vm?.usage() ?? { memoryBytes: 0, limitBytes: 0, cpuNs: 0, pids: 0 };
    return u;
  }

  /** Whether the shim should exit: nothing left, or `now`. Stops the VM and removes the pod's files. */
  async shutdown(now: boolean): Promise<boolean> {
    if (this.tasks.size > 0 && !now) return false;
    this.shuttingDown = true;
    for (const t of this.tasks.values()) await releaseTaskRoot(this.o.podDir, t.id, t.bundle, t.rootfs.length > 0).catch((e) => this.o.log(`shutdown: ${(e as Error).message}`));
    await this.stopVm();
    await this.o.publisher.drain();
    return true;
  }

  private async stopVm(): Promise<void> {
    const vm = this.vm ?? (this.booting ? await this.booting.catch(() => undefined) : undefined);
    this.vm = undefined;
    if (vm) await vm.stop();
    const vmDir = PodVm.vmDir(this.o.podDir);
    const share = PodVm.shareDir(this.o.podDir);
    if (fs.existsSync(share)) removeTree(share);
    fs.rmSync(vmDir, { recursive: true, force: true });
  }
}
