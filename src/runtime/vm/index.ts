/**
 * The VM wall: hull's Isolation over QEMU microvm. createVmIsolation(root) is what
 * src/runtime/index.ts loads for `--isolation vm`. Detached VMs need no hull process: QEMU is
 * the monitor (or, when the engine gives an exit command, a one-line sh that waits for QEMU and
 * then runs it), the guest writes the log and the exit code through QEMU file chardevs, and any
 * later call reads them from <instance dir>/vm/.
 */
import fs from 'node:fs';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import path from 'node:path';
import os from 'node:os';
import { HullError } from '../../errors.js';
import type { ExecProcess, ExitInfo, InstanceSpec, InstanceState, Isolation, IsolationOptions, Orphan, Stdio, Usage, WritableLayer } from '../types.js';
import { runVmAttached, exitFromStatus, VmStartError } from './attached.js';
import { cgroupVersion, readVmCgroup, removeVmCgroup, vmRootCgroupDir } from './cgroup.js';
import { ctlAddress, execInVm, mainStdinChannel, sendControl } from './control.js';
import { StdinChannels } from '../stdin-channel.js';
import { layerMode, prepare, vmFiles, type Monitor } from './launch.js';
import { killGroupAndWait, pidAlive, processGroup, procStartTime } from '../../util/proc.js';
import { Watch } from '../../util/watch.js';
import { decodeStatus, T } from './protocol.js';
import { qmpCommand } from './qmp.js';
import { abandonedBuilds, dropTemplate, RestoreFailed } from './snapshot.js';
import { PoolClaimFailed, resumeOrFail } from './attached.js';
import { orphans as poolOrphans, poolGuestDirs, stopGuest } from './pool.js';
import { keptLayer, layerIdleMs, liveLayer } from './layer.js';

/** A failed restore: the template goes, a one-line note, and the same run again as a cold boot. */
function coldAfter(e: RestoreFailed, spec: InstanceSpec): InstanceSpec {
  if (e.templateDir) dropTemplate(e.templateDir);
  process.stderr.write(`hull: restoring the VM template failed (${e.message.slice(0, 200)}): removed; this run boots cold\n`);
  return { ...spec, vm: { ...(spec.vm ?? { accel: 'auto' }), boot: 'cold' } };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function readMonitor(spec: InstanceSpec): Monitor | undefined {
  try {
    return JSON.parse(fs.readFileSync(vmFiles(spec).monitor, 'utf8')) as Monitor;
  } catch {
    return undefined;
  }
}

function writeMonitor(spec: InstanceSpec, m: Monitor): void {
  const f = vmFiles(spec).monitor;
  fs.writeFileSync(`${f}.tmp`, JSON.stringify(m));
  fs.renameSync(`${f}.tmp`, f);
}

function alive(m: Monitor | undefined): boolean {
  return !!m && m.pid > 0 && procStartTime(m.pid) === m.startTime;
}

function readStatus(spec: InstanceSpec): Buffer {
  try {
    return fs.readFileSync(vmFiles(spec).status);
  } catch {
    return Buffer.alloc(0);
  }
}

function signalNumber(signal: string): number {
  const s = signal.trim().toUpperCase();
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    if (n >= 1 && n <= 64) return n;
  } else {
    const n = (os.constants.signals as Record<string, number>)[s.startsWith('SIG') ? s : `SIG${s}`];
    if (n) return n;
  }
  throw new HullError('INVALID_ARGUMENT', `invalid signal: ${signal}`);
}

/**
 * Wait until the VM's QEMU is gone, woken by its monitor shell writing qemu.rc (inotify on the
 * vm directory); a short backstop look covers a QEMU that has no monitor shell.
 */
async function waitGone(spec: InstanceSpec, m: Monitor, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  const watch = new Watch([{ path: vmFiles(spec).dir }]);
  try {
    for (;;) {
      const seen = watch.seq;
      if (!alive(m)) return true;
      if (Date.now() > end) return false;
      await watch.after(seen, Math.min(100, Math.max(1, end - Date.now())));
    }
  } finally {
    watch.close();
  }
}

/** inspect's facts of how a VM started. */
function bootFacts(b: import('./snapshot.js').BootPlan): Record<string, unknown> {
  return b.boot === 'restore' ? { vmBoot: 'restored', vmTemplate: b.template.meta.key, vmTemplateBuilt: b.built } : { vmBoot: 'cold', vmBootReason: b.reason };
}

/** The stdin channels of this process's attaches to VMs, by instance directory, run and QEMU. */
const channels = new StdinChannels();

class VmIsolation implements Isolation {
  readonly wall = 'vm' as const;

  constructor(private readonly root: string, private readonly opts: IsolationOptions) {}

  async runAttached(spec: InstanceSpec, stdio: Stdio, onStarted?: (pid: number) => void): Promise<ExitInfo> {
    try {
      return await runVmAttached(this.root, spec, stdio, onStarted, (m) => writeMonitor(spec, m));
    } catch (e) {
      if (e instanceof PoolClaimFailed) {
        process.stderr.write(`hull: ${e.message.slice(0, 200)}; this run restores its own guest\n`);
        return this.runAttached({ ...spec, vm: { ...(spec.vm ?? { accel: 'auto' }), pool: false } }, stdio, onStarted);
      }
      if (!(e instanceof RestoreFailed)) throw e;
      return runVmAttached(this.root, coldAfter(e, spec), stdio, onStarted, (m) => writeMonitor(spec, m));
    }
  }

  async startDetached(spec: InstanceSpec): Promise<{ pid: number; facts?: Record<string, unknown> }> {
    try {
      return await this.startDetachedOnce(spec);
    } catch (e) {
      if (!(e instanceof RestoreFailed)) throw e;
      return this.startDetachedOnce(coldAfter(e, spec));
    }
  }

  private async startDetachedOnce(spec: InstanceSpec): Promise<{ pid: number; facts?: Record<string, unknown> }> {
    // One run at a time: the previous run's monitor shell (running its exit hook) goes first.
    await this.killMonitorShell(spec);
    const prep = await prepare(this.root, spec, { attached: false });
    const f = prep.files;
    let m: Monitor | undefined;
    try {
      const errFd = fs.openSync(f.qemuErr, 'w');
      let child;
      try {
        child = prep.spawn(
          { log: true, stdout: { kind: 'null' }, stderr: { kind: 'null' } },
          { base: ['ignore', errFd, errFd], detached: true, pdeathsig: false, exitCommand: this.opts.exitCommand ? [...this.opts.exitCommand, spec.id, String(spec.run ?? 0)] : undefined },
        );
      } finally {
        fs.closeSync(errFd);
      }
      child.on('error', () => undefined);
      child.unref();
      const wrapped = !!this.opts.exitCommand;
      const deadline = Date.now() + 120_000;
      let resumed = !prep.restore;
      let pid = wrapped ? 0 : child.pid ?? 0;
      while (Date.now() < deadline) {
        if (!pid) {
          const t = fs.existsSync(f.qemuPid) ? fs.readFileSync(f.qemuPid, 'utf8').trim() : '';
          if (/^\d+$/.test(t)) pid = Number(t);
        }
        if (pid && !m) {
          const st = procStartTime(pid);
          if (st !== undefined) {
            m = { pid, startTime: st, accel: prep.accel, cgroup: prep.cgroup, kernelRelease: prep.kernelRelease, mux: prep.mux, boot: prep.boot.boot === 'restore' ? 'restored' : 'cold', ...(wrapped && child.pid ? { shellPid: child.pid } : {}) };
            writeMonitor(spec, m);
          }
        }
        // a restore goes on once the monitor is on disk: a hull killed from here leaves a VM
        // that rm -f finds (a QEMU left in -incoming defer would never end by itself)
        if (!resumed && m) {
          resumed = true;
          const closed = new Promise<void>((resolve) => child.once('exit', () => resolve()));
          try {
            await resumeOrFail(prep, child, child.stdio as unknown[], closed, () => (fs.existsSync(f.qemuErr) ? fs.readFileSync(f.qemuErr, 'utf8') : ''));
          } catch (e) {
            // QEMU, hull-vmmux and the monitor shell, whose exit command is gated on `resumed` (never written)
            if (child.pid) await killGroupAndWait(child.pid, 10_000);
            throw e;
          }
          fs.writeFileSync(f.resumed, '');
          (child.stdio[prep.restore!.runIndex] as unknown as { destroy(): void } | null)?.destroy();
        }
        const status = readStatus(spec);
        const s = decodeStatus(status);
        if (s.ready && m) return { pid, facts: { accel: prep.accel.accel, accelReason: prep.accel.reason, kernelRelease: s.ready.release, logPath: f.log, cgroup: prep.cgroup?.dir, ...bootFacts(prep.boot) } };
        const gone = child.exitCode !== null || child.signalCode !== null || (m !== undefined && !alive(m));
        if (s.exit || gone) {
          await sleep(50);
          let err = fs.existsSync(f.qemuErr) ? fs.readFileSync(f.qemuErr, 'utf8') : '';
          if (!err.trim()) {
            const rc = fs.existsSync(f.qemuRc) ? fs.readFileSync(f.qemuRc, 'utf8').trim() : child.exitCode ?? child.signalCode;
            err = `QEMU exit status ${rc ?? 'unknown'}${process.env.HULL_VM_KEEP_FAILED ? ` (kept ${f.dir})` : ''}`;
          }
          const x = exitFromStatus(readStatus(spec), { killedByHull: false, oomKilled: false, qemuErr: err });
          throw new HullError('FAILED_PRECONDITION', x.error ?? `the VM exited with ${x.exitCode} before its process started`);
        }
        await sleep(10);
      }
      throw new HullError('UNAVAILABLE', 'the VM did not start within 120 s');
    } catch (e) {
      if (m && alive(m)) {
        process.kill(m.pid, 'SIGKILL');
        await waitGone(spec, m, 5000);
      }
      if (!process.env.HULL_VM_KEEP_FAILED) await prep.release().catch(() => undefined);
      throw e;
    }
  }

  /**
   * The run's state from its files, without waiting: running while its QEMU runs; then the
   * guest's status record (exit code, OOM), or how QEMU ended (qemu.rc: 137 when it was killed).
   */
  async state(spec: InstanceSpec): Promise<InstanceState> {
    const m = readMonitor(spec);
    if (alive(m)) return { running: true, pid: m!.pid };
    const f = vmFiles(spec);
    const status = readStatus(spec);
    const oom = m?.cgroup ? readVmCgroup(m.cgroup).oomKilled : false;
    const err = fs.existsSync(f.qemuErr) ? fs.readFileSync(f.qemuErr, 'utf8') : '';
    const rc = fs.existsSync(f.qemuRc) ? Number(fs.readFileSync(f.qemuRc, 'utf8').trim()) : NaN;
    try {
      return { running: false, exit: exitFromStatus(status, { killedByHull: fs.existsSync(f.killed), oomKilled: oom, qemuErr: err, qemuSignal: rc > 128 ? rc - 128 : undefined }) };
    } catch (e) {
      if (e instanceof VmStartError) return { running: false, exit: { exitCode: e.exitCode, oomKilled: false, error: e.message } };
      throw e;
    }
  }

  exitTargets(spec: InstanceSpec): { path: string; filter?: (name: string) => boolean }[] {
    return [{ path: vmFiles(spec).dir }];
  }

  /**
   * SIGKILL the monitor shell of the last run (it waits for QEMU, then runs the exit hook as
   * itself) with its process group, unless that hook is this very process.
   */
  private async killMonitorShell(spec: InstanceSpec): Promise<void> {
    const m = readMonitor(spec);
    const shell = m?.shellPid;
    if (!shell || !pidAlive(shell) || processGroup(shell) !== shell || processGroup(process.pid) === shell) return;
    // the whole group (QEMU, hull-vmmux), not only the shell: rm -f returns when nothing runs
    await killGroupAndWait(shell, 10_000);
  }

  private address(spec: InstanceSpec, m: Monitor): string {
    const f = vmFiles(spec);
    return ctlAddress(m.mux ? f.mux : f.ctl, m.pid);
  }

  private async hardKill(spec: InstanceSpec, m: Monitor): Promise<void> {
    if (!alive(m)) return;
    fs.writeFileSync(vmFiles(spec).killed, 'SIGKILL\n');
    process.kill(m.pid, 'SIGKILL');
    if (!(await waitGone(spec, m, 10_000))) throw new HullError('UNAVAILABLE', `QEMU (pid ${m.pid}) did not exit after SIGKILL`);
  }

  async kill(spec: InstanceSpec, signal: string): Promise<void> {
    const n = signalNumber(signal);
    const m = readMonitor(spec);
    if (!alive(m)) throw new HullError('FAILED_PRECONDITION', `VM ${spec.id.slice(0, 12)} is not running`);
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n, 0);
    try {
      await sendControl(this.address(spec, m!), T.SIGNAL, 0, b, { direct: !m!.mux });
    } catch (e) {
      if (n !== 9) throw e;
      await this.hardKill(spec, m!);
    }
  }

  async stop(spec: InstanceSpec, timeoutSec: number): Promise<void> {
    const m = readMonitor(spec);
    if (!alive(m)) return;
    try {
      await sendControl(this.address(spec, m!), T.SHUTDOWN, 0, undefined, { direct: !m!.mux });
      if (await waitGone(spec, m!, Math.max(0, timeoutSec) * 1000)) return;
      if (await this.stopKeepingLayer(spec, m!)) return;
    } catch {
      // agent unreachable: stop the hard way
    }
    await this.hardKill(spec, m!);
  }

  /**
   * A kept VM (its guest sends its layer at exit) whose stop timeout ran out: its workload is
   * SIGKILLed by the agent, not QEMU, so the guest still sends the layer (as docker keeps a
   * killed container's). True once QEMU is gone; false (kill QEMU) when the guest wrote no
   * EXIT within 5 s, or was still sending after layerIdleMs() more.
   */
  private async stopKeepingLayer(spec: InstanceSpec, m: Monitor): Promise<boolean> {
    if (!layerMode(spec)) return false;
    const exited = () => {
      try {
        return decodeStatus(readStatus(spec)).exit !== undefined;
      } catch {
        return false;
      }
    };
    if (!exited()) {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(9, 0);
      await sendControl(this.address(spec, m), T.SIGNAL, 0, b, { direct: !m.mux });
      const until = Date.now() + 5000;
      while (!exited() && alive(m) && Date.now() < until) await sleep(20);
      if (!exited()) return !alive(m);
    }
    return waitGone(spec, m, layerIdleMs());
  }

  async exec(spec: InstanceSpec, proc: ExecProcess, stdio: Stdio, onStarted?: () => void): Promise<number> {
    const m = readMonitor(spec);
    if (!alive(m)) throw new HullError('FAILED_PRECONDITION', `VM ${spec.id.slice(0, 12)} is not running`);
    const out = stdio.stdout as Stdio['stdout'] & { rows?: number; columns?: number; isTTY?: boolean };
    const size = proc.consoleSize ?? { rows: out.rows, cols: out.columns };
    // the window follows hull's own terminal (the CLI), or the API's resize calls
    let resize: ((rows: number, cols: number) => boolean) | undefined;
    const onResize = () => resize?.(out.rows ?? 24, out.columns ?? 80);
    const follow = proc.terminal && out.isTTY === true;
    if (follow) out.on('resize', onResize);
    try {
      return await execInVm(
        this.address(spec, m!),
        { args: proc.args, env: proc.env, cwd: proc.cwd ?? spec.process.cwd, user: proc.user ?? spec.process.user, tty: proc.terminal, stdin: proc.stdin, rows: size.rows, cols: size.cols },
        stdio,
        onStarted,
        (fn) => {
          resize = fn;
          proc.onResizable?.(fn);
        },
      );
    } finally {
      if (follow) out.off('resize', onResize);
    }
  }

  async attachStdin(spec: InstanceSpec, input: Readable, signal: AbortSignal): Promise<void> {
    if (!spec.process.stdin) throw new HullError('FAILED_PRECONDITION', `VM ${spec.id.slice(0, 12)} was created without an open stdin (-i)`);
    const m = readMonitor(spec);
    if (!alive(m)) return; // the run is over: nothing to deliver to
    const address = this.address(spec, m!);
    await channels.feed(`${spec.dir}\0${spec.run ?? 0}\0${m!.pid}`, input, spec.process.stdinOnce === true && !spec.process.terminal, signal, () => mainStdinChannel(address));
  }

  /**
   * docker cp into or out of a running VM: the tool runs in the guest (the image's own tar,
   * stat, ...) as root through the agent. A stopped VM's writes are kept only as its writable
   * layer (diff, commit, export), which this does not read: refused.
   */
  async inRootfs(spec: InstanceSpec, tool: string[], io: { stdin?: Readable; stdout: Writable }): Promise<{ code: number; stderr: string }> {
    const m = readMonitor(spec);
    if (!alive(m)) throw new HullError('FAILED_PRECONDITION', `VM ${spec.id.slice(0, 12)} is not running: a microVM's own files live in its memory while it runs (its volumes are on the host, under the hull root)`);
    const err = new PassThrough();
    let stderr = '';
    err.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < 65536) stderr += d;
    });
    const code = await execInVm(this.address(spec, m!), { args: tool, env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], cwd: '/', user: '', tty: false, stdin: io.stdin !== undefined }, { stdin: io.stdin ?? null, stdout: io.stdout, stderr: err });
    return { code, stderr };
  }

  /** docker pause of a VM: QMP `stop` halts its vCPUs (the guest keeps its memory and devices). */
  async pause(spec: InstanceSpec): Promise<void> {
    if (!alive(readMonitor(spec))) throw new HullError('FAILED_PRECONDITION', `VM ${spec.id.slice(0, 12)} is not running`);
    const sock = vmFiles(spec).qmp; // reached through QEMU's cwd when the path is too long for sun_path
    if (!fs.existsSync(sock)) throw new HullError('FAILED_PRECONDITION', `VM ${spec.id.slice(0, 12)} has no QMP monitor (started by an older hull, or attached): it cannot be paused`);
    await qmpCommand(ctlAddress(sock, readMonitor(spec)!.pid), 'stop');
  }

  async unpause(spec: InstanceSpec): Promise<void> {
    const m = readMonitor(spec);
    if (!alive(m)) return;
    await qmpCommand(ctlAddress(vmFiles(spec).qmp, m!.pid), 'cont');
  }

  async usage(spec: InstanceSpec): Promise<Usage> {
    const m = readMonitor(spec);
    if (!alive(m)) return { memoryBytes: 0, memoryLimitBytes: 0, cpuNs: 0, pids: 0 };
    const stat = fs.readFileSync(`/proc/${m!.pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(f[11]) + Number(f[12]);
    const cpuNs = Math.round((ticks / 100) * 1e9);
    if (m!.cgroup) {
      const c = readVmCgroup(m!.cgroup);
      return { memoryBytes: c.usage, memoryLimitBytes: c.limit, cpuNs, pids: c.pids };
    }
    const rss = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${m!.pid}/status`, 'utf8'));
    return { memoryBytes: rss ? Number(rss[1]) * 1024 : 0, memoryLimitBytes: 0, cpuNs, pids: 1 };
  }

  /**
   * The guest's writable layer (runtime/vm/layer.ts): a running VM's on request, over its
   * control port (`o.running`; without it a running VM has none to give); a stopped one's as
   * its agent sent it at exit.
   */
  async writableLayer(spec: InstanceSpec, o: { running?: { freeze: boolean } } = {}): Promise<WritableLayer> {
    const m = readMonitor(spec);
    if (alive(m)) {
      if (!o.running) throw new HullError('FAILED_PRECONDITION', `VM ${spec.id.slice(0, 12)} is running: its writable layer is in guest memory`);
      return liveLayer(spec, this.address(spec, m!), o.running);
    }
    return keptLayer(spec, readStatus(spec));
  }

  async release(spec: InstanceSpec): Promise<ExitInfo | undefined> {
    const st = await this.state(spec);
    if (st.running) return undefined;
    const m = readMonitor(spec);
    if (m?.cgroup) await removeVmCgroup(m.cgroup);
    const f = vmFiles(spec);
    for (const x of [f.initrd, f.ctl, f.mux]) fs.rmSync(x, { force: true });
    return st.exit;
  }

  /**
   * What this root's VMs left that no live VM owns: memory cgroups under hull-vm/<root key>,
   * QEMU processes and monitor shells working in this root's instance directories (<id>/vm).
   */
  async orphans(live: Set<string>): Promise<Orphan[]> {
    const out: Orphan[] = [];
    const version = cgroupVersion();
    if (version) {
      const parent = vmRootCgroupDir(version, this.root);
      let ids: string[] = [];
      try {
        ids = fs.readdirSync(parent, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
      } catch {
        ids = [];
      }
      const guests = ids.some((id) => id.startsWith('pool-')) ? poolGuestDirs(this.root) : [];
      for (const id of ids) {
        if (live.has(id)) continue;
        // a pool guest's cgroup: the guest's own entry below says whether anything owns it
        if (id.startsWith('pool-') && guests.some((d) => d.endsWith(id.slice(5)))) continue;
        out.push({ kind: 'vm-cgroup', what: path.join(parent, id), id, fix: () => removeVmCgroup({ version, dir: path.join(parent, id) }) });
      }
    }
    for (const o of poolOrphans(this.root)) out.push({ kind: 'vm-pool-guest', what: o.dir, fix: () => stopGuest(o.dir, o.entry) });
    for (const d of abandonedBuilds(this.root)) out.push({ kind: 'vm-template-build', what: d, fix: async () => fs.rmSync(d, { recursive: true, force: true }) });
    const base = `${path.join(this.root, 'containers')}/`;
    for (const e of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
      let cwd: string;
      try {
        cwd = fs.readlinkSync(`/proc/${e}/cwd`);
      } catch {
        continue;
      }
      if (!cwd.startsWith(base)) continue;
      const id = cwd.slice(base.length, base.length + 64);
      if (cwd !== `${base}${id}/vm` || !/^[0-9a-f]{64}$/.test(id) || live.has(id) || !pidAlive(Number(e))) continue;
      let cmd = '';
      try {
        cmd = fs.readFileSync(`/proc/${e}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      } catch {
        continue;
      }
      out.push({ kind: 'vm-process', what: `pid ${e}: ${cmd.slice(0, 120)}`, id, fix: async () => void process.kill(Number(e), 'SIGKILL') });
    }
    return out;
  }

  async cleanup(spec: InstanceSpec): Promise<void> {
    const m = readMonitor(spec);
    if (m) {
      await this.hardKill(spec, m);
      await this.killMonitorShell(spec);
      if (m.cgroup) await removeVmCgroup(m.cgroup);
    }
    fs.rmSync(spec.dir, { recursive: true, force: true });
  }
}

/** The VM wall for a hull root. */
export function createVmIsolation(root: string, opts: IsolationOptions = {}): Isolation {
  return new VmIsolation(root, opts);
}

export { buildQemuArgs, kernelCmdline } from './qemu-args.js';
export { chooseAccel, accelFromFacts } from './accel.js';
