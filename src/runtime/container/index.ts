/**
 * The container wall: an Isolation over an OCI runtime (crun by default), an overlay root,
 * conmon for detached containers. Files of one container live in spec.dir:
 *   config.json        the OCI bundle config (the bundle is spec.dir)
 *   rootfs/            mount point of the overlay (mounted only inside private namespaces)
 *   upper/ work/       the overlay's writable layer
 *   etc/               hostname, hosts, resolv.conf bind-mounted into the container
 *   oci-runtime.sh     what conmon calls as its runtime (runtime.ts)
 *   ctr.log            the k8s-file log conmon writes
 *   exit/<id>          the exit code conmon writes
 *   pid, conmon.pid    pids of the container's process and of its monitor
 *   signalled          the last signal hull sent (the exit of a run whose monitor was killed)
 *
 * One run at a time: a start first takes away whatever the previous run left (its monitor and
 * exit hook, crun's state of the stopped id, the cgroup, the exit file), so a late writer of
 * run N never meets run N+1.
 */
import type { Readable, Writable } from 'node:stream';
import { inRootHelper, runningArgv, runTool, stoppedArgv } from './inroot.js';
import { cgroupPids, setFrozen } from './freezer.js';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HullError, precondition } from '../../errors.js';
import type { ExecProcess, ExitInfo, InstanceSpec, InstanceState, Isolation, IsolationOptions, Orphan, Stdio, Usage, WritableLayer } from '../types.js';
import { cgroupDirs, containerCgroupPath, rootCgroupPath, detectCgroupLayout, kernelLogOomKill, readOomKilled, readUsage, removeCgroup, swapAccounting, type CgroupLayout } from './cgroups.js';
import { buildOciConfig, containerCaps, ociResources } from './config.js';
import { hostDevices, resolveDevice, type HostDevice } from './devices.js';
import { idmapBindPoint, idmapHelper } from './userns.js';
import { conmonChannel } from './attach.js';
import { StdinChannels } from '../stdin-channel.js';
import { findConmon, startConmon } from './conmon.js';
import { consoleArgv, consoleHelper, resizeConsole } from './console.js';
import { hostFacts } from './host.js';
import { checkExecutable, ExecError, LayeredRoot, resolveUserInRoot } from './rootfs.js';
import { conmonRuntimeScript, makeDriver, RUNTIMES, overlayVolatileSupported, runtimeArgv, runtimeError, sub, which, type OverlayPlan, type RuntimeDriver } from './runtime.js';
import { goArch, loadDefaultSeccomp } from './seccomp.js';
import { killGroup, killGroupAndWait, pidAlive, processesMentioning, processGroup } from '../../util/proc.js';
import { fileTarget, Watch } from '../../util/watch.js';


/** Where --init's binary is looked for (Debian's tini-static, then tini). */
const INIT_CANDIDATES = ['/usr/bin/tini-static', '/usr/bin/docker-init', '/usr/libexec/podman/catatonit', '/usr/bin/catatonit'];
/** How long state() waits for conmon to record the exit of a process that has ended, ms. */
const EXIT_RECORD_WAIT_MS = 2000;

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  stdout: string;
}

/** Run a short command to completion, collecting its output. */
function run(argv: string[], opts: { timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const c = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], timeout: opts.timeoutMs ?? 60_000 });
    let stdout = '';
    let stderr = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    c.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    c.on('error', reject);
    c.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

function readInt(file: string): number | undefined {
  try {
    const t = fs.readFileSync(file, 'utf8').trim();
    return /^-?\d+$/.test(t) ? Number(t) : undefined;
  } catch {
    return undefined;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An output stream can be handed to the child directly when it wraps a real fd. */
function fdOf(s: unknown): number | undefined {
  const fd = (s as { fd?: unknown } | null | undefined)?.fd;
  return typeof fd === 'number' ? fd : undefined;
}

type PreparedDriver = RuntimeDriver & { bpfCacheFile?: string };

/** The stdin channels of this process's attaches, by container directory and run. */
const channels = new StdinChannels();

class ContainerIsolation implements Isolation {
  readonly wall = 'container' as const;
  private readonly layout: CgroupLayout;

  constructor(private readonly root: string, private readonly opts: IsolationOptions) {
    this.layout = detectCgroupLayout();
  }

  private driver(spec: InstanceSpec): RuntimeDriver {
    return makeDriver(spec.runtime || 'crun', path.join(this.root, 'run', spec.runtime || 'crun'), this.layout, { network: spec.network });
  }

  private files(spec: InstanceSpec) {
    const d = spec.dir;
    return {
      config: path.join(d, 'config.json'),
      rootfs: path.join(d, 'rootfs'),
      upper: path.join(d, 'upper'),
      work: path.join(d, 'work'),
      etc: path.join(d, 'etc'),
      script: path.join(d, 'oci-runtime.sh'),
      log: path.join(d, 'ctr.log'),
      exitDir: path.join(d, 'exit'),
      exitFile: path.join(d, 'exit', spec.id),
      pid: path.join(d, 'pid'),
      conmonPid: path.join(d, 'conmon.pid'),
      signalled: path.join(d, 'signalled'),
    };
  }

  private overlay(spec: InstanceSpec): OverlayPlan {
    const f = this.files(spec);
    const idmap = spec.userns
      ? {
          helper: idmapHelper(),
          ...spec.userns,
          targets: spec.image.lowerDirs.map((_, i) => path.join(spec.dir, 'idmap', String(i))),
          binds: spec.mounts.flatMap((m, i): [string, string][] => (m.type === 'bind' && m.idmap ? [[m.source!, idmapBindPoint(spec.dir, i)]] : [])),
        }
      : undefined;
    return { lower: spec.image.lowerDirs, upper: f.upper, work: f.work, target: f.rootfs, volatile: spec.autoRemove === true && overlayVolatileSupported(os.release()), ...(idmap ? { idmap } : {}) };
  }

  /** The overlay's "/" takes the upper dir's owner and mode: give it the image's. */
  private upperLikeImage(spec: InstanceSpec): void {
    const f = this.files(spec);
    const top = spec.image.lowerDirs.length ? fs.statSync(spec.image.lowerDirs[spec.image.lowerDirs.length - 1]!) : undefined;
    fs.chmodSync(f.upper, top ? top.mode & 0o7777 : 0o755);
    // --userns=auto: shifted into the range (the upper dir is not idmapped, the container's root owns it)
    const shift = spec.userns ?? { uid: 0, gid: 0 };
    if (top) fs.chownSync(f.upper, top.uid + shift.uid, top.gid + shift.gid);
    else if (spec.userns) fs.chownSync(f.upper, shift.uid, shift.gid);
  }

  /**
   * docker cp: a busybox applet (tar, stat, test, readlink) chrooted into the container's root
   * filesystem (inroot.ts): the live one of a running container, else its overlay and mounts in
   * a private mount namespace (writes land in its upper dir and volumes, as a start would see).
   */
  async inRootfs(spec: InstanceSpec, tool: string[], io: { stdin?: Readable; stdout: Writable }): Promise<{ code: number; stderr: string }> {
    const helper = inRootHelper();
    const st = await this.state(spec);
    if (st.running && !st.pending && st.pid > 0) return runTool(runningArgv(helper, st.pid, tool), io);
    if (st.running) throw precondition(`container ${spec.id.slice(0, 12)} is starting`);
    const f = this.files(spec);
    for (const d of [spec.dir, f.upper, f.work]) fs.mkdirSync(d, { recursive: true, mode: 0o700 });
    this.upperLikeImage(spec);
    fs.mkdirSync(path.join(this.root, 'tmp'), { recursive: true });
    const mnt = fs.mkdtempSync(path.join(this.root, 'tmp', 'cp-'));
    try {
      return await runTool(stoppedArgv(helper, this.overlay(spec), mnt, spec.mounts.filter((m) => m.type === 'bind'), tool), io);
    } finally {
      fs.rmSync(mnt, { recursive: true, force: true });
    }
  }

  /** Check the command, resolve the user, write the bundle. Pure data until the last writes. */
  private prepare(spec: InstanceSpec): PreparedDriver {
    const driver = this.driver(spec);
    const f = this.files(spec);
    const layers = new LayeredRoot(spec.image.lowerDirs);
    const mounted = (p: string) => spec.mounts.some((m) => p === m.destination || p.startsWith(`${m.destination}/`));
    if (spec.process.args.length === 0) throw new HullError('INVALID_ARGUMENT', 'no command specified');
    checkExecutable(layers, spec.process.args[0]!, spec.process.env, spec.process.cwd, mounted);
    const user = resolveUserInRoot(layers, spec.process.user, spec.groupAdd);
    const { hardLimits, bounding } = hostFacts();
    const devices = containerDevices(spec);
    let initPath: string | undefined;
    if (spec.init) {
      initPath = INIT_CANDIDATES.find((p) => fs.existsSync(p));
      if (!initPath) throw new HullError('UNAVAILABLE', '--init needs a static init binary', { hint: 'apt-get install tini' });
    }
    for (const m of spec.mounts) {
      if (m.type === 'bind' && !fs.existsSync(m.source!)) {
        throw new HullError('INVALID_ARGUMENT', `invalid mount config: bind source path does not exist: ${m.source}`);
      }
    }
    for (const d of [spec.dir, f.rootfs, f.upper, f.work, f.etc, f.exitDir]) fs.mkdirSync(d, { recursive: true, mode: 0o700 });
    // A volatile overlay leaves work/work/incompat/volatile, and the kernel refuses to mount the
    // upper dir again while it is there (its contents may not have survived a crash). An --rm
    // container started again (restart) after a clean exit may: its upper dir goes at exit anyway.
    const marker = path.join(f.work, 'work', 'incompat');
    if (spec.autoRemove && fs.existsSync(marker)) fs.rmSync(marker, { recursive: true, force: true });
    fs.chmodSync(spec.dir, 0o711);
    this.upperLikeImage(spec);
    if (spec.userns) {
      // the mount points of the idmapped layers; /etc files the container's root reads through binds
      for (let i = 0; i < spec.image.lowerDirs.length; i++) fs.mkdirSync(path.join(spec.dir, 'idmap', String(i)), { recursive: true, mode: 0o700 });
      // and of each -v SRC:DST:idmap: a directory or an empty file, as its source is
      spec.mounts.forEach((m, i) => {
        if (m.type !== 'bind' || !m.idmap) return;
        const p = idmapBindPoint(spec.dir, i);
        if (fs.statSync(m.source!).isDirectory()) fs.mkdirSync(p, { recursive: true, mode: 0o700 });
        else if (!fs.existsSync(p)) fs.writeFileSync(p, '', { mode: 0o600 });
      });
      fs.chmodSync(f.etc, 0o711);
      // the container's root (an unprivileged uid on the host) must pass through hull's
      // directories to its root filesystem: search, not read, for others (docker's 0711 for userns-remap)
      traversable(path.dirname(spec.dir), this.root);
    }
    const hostsText =
      spec.etc?.hosts ??
      (spec.network === 'host'
        ? safeRead('/etc/hosts')
        : `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.0.1\t${spec.hostname}\n`);
    fs.writeFileSync(path.join(f.etc, 'hostname'), `${spec.hostname}\n`);
    fs.writeFileSync(path.join(f.etc, 'hosts'), hostsText);
    fs.writeFileSync(path.join(f.etc, 'resolv.conf'), spec.etc?.resolvConf ?? safeRead('/etc/resolv.conf'));
    const config = buildOciConfig(spec, {
      rootfs: f.rootfs,
      user: { uid: user.uid, gid: user.gid, additionalGids: user.additionalGids },
      cgroupsPath: containerCgroupPath(this.root, spec.id),
      seccompProfile: spec.seccomp === 'default' && !spec.privileged ? loadDefaultSeccomp() : undefined,
      devices,
      arch: goArch(process.arch),
      kernel: os.release(),
      hardLimits,
      bounding,
      etc: { hostname: path.join(f.etc, 'hostname'), hosts: path.join(f.etc, 'hosts'), resolv: path.join(f.etc, 'resolv.conf') },
      initPath,
      swapAccounting: swapAccounting(this.layout),
    });
    if (!config.process.env.some((e) => e.startsWith('HOME='))) config.process.env.push(`HOME=${user.home}`);
    const bpf = driver.name === 'crun' && config.linux.seccomp ? this.bpfCache(config.linux.seccomp) : undefined;
    if (bpf?.data) (config as { annotations?: Record<string, string> }).annotations = { 'run.oci.seccomp_bpf_data': bpf.data };
    fs.writeFileSync(f.config, JSON.stringify(config));
    return { ...driver, bpfCacheFile: bpf && !bpf.data ? bpf.file : undefined };
  }

  /**
   * crun compiles the seccomp profile with libseccomp on every start (about 15 ms here). It
   * accepts the compiled filter instead through the `run.oci.seccomp_bpf_data` annotation, and
   * leaves the filter it compiled in its state directory (seccomp.bpf). hull keeps that filter
   * per profile (key: sha256 of linux.seccomp) and hands it back on later starts: the same
   * profile, compiled by the same libseccomp, without the cost.
   */
  private bpfCache(seccomp: unknown): { file: string; data?: string } {
    const key = crypto.createHash('sha256').update(JSON.stringify(seccomp)).digest('hex');
    const file = path.join(this.root, 'cache', 'seccomp', `${key}.bpf`);
    try {
      const data = fs.readFileSync(file);
      if (completeBpf(data)) return { file, data: data.toString('base64') };
      fs.rmSync(file, { force: true }); // not a whole filter: compile afresh
    } catch {
      // not cached yet
    }
    return { file };
  }

  /**
   * Fill the seccomp cache before a foreground start, which cannot take the filter from its own
   * `crun run` (see runAttached): `crun create` this bundle under a scratch id, which compiles
   * the filter into crun's state directory and returns once the container waits for `start`;
   * keep the filter, delete the scratch container (its process, cgroup and private mount
   * namespace with the overlay go with it). Paid once per profile and root (about 25 ms here);
   * without it a root that only ever runs foreground containers would compile the profile on
   * every start. Any failure just leaves the cache empty.
   */
  private async fillBpfCache(spec: InstanceSpec, driver: PreparedDriver): Promise<boolean> {
    const scratch = `${spec.id.slice(0, 32)}-seccomp-${process.pid}`;
    // stdio ignored and 'exit' awaited: the created process keeps crun's stdio until deleted
    const call = (argv: string[]) =>
      new Promise<number | null>((resolve) => {
        const c = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore', timeout: 30_000 });
        c.on('error', () => resolve(null));
        c.on('exit', (code) => resolve(code));
      });
    try {
      // not volatile: a volatile mount leaves a marker that refuses the next mount of this upper dir
      const code = await call(runtimeArgv(driver, ['create', '--bundle', spec.dir, scratch], { ...this.overlay(spec), volatile: false }));
      return code === 0 && this.saveBpf(scratch, driver);
    } finally {
      if (fs.existsSync(path.join(driver.stateDir, scratch))) await call(runtimeArgv(driver, sub.delete(driver, scratch, true)));
      removeCgroup(this.layout, containerCgroupPath(this.root, spec.id));
    }
  }

  /** Save the filter crun compiled for container `runtimeId` into the cache (atomically). */
  private saveBpf(runtimeId: string, driver: PreparedDriver): boolean {
    if (!driver.bpfCacheFile) return true;
    try {
      const data = fs.readFileSync(path.join(driver.stateDir, runtimeId, 'seccomp.bpf'));
      if (!completeBpf(data)) return false;
      fs.mkdirSync(path.dirname(driver.bpfCacheFile), { recursive: true, mode: 0o700 });
      const tmp = `${driver.bpfCacheFile}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, data);
      fs.renameSync(tmp, driver.bpfCacheFile);
      return true;
    } catch {
      return false;
    }
  }

  async runAttached(spec: InstanceSpec, stdio: Stdio, onStarted?: (pid: number) => void): Promise<ExitInfo> {
    let driver = this.prepare(spec);
    // (a terminal would need a console socket for `create`: such a start just compiles)
    if (driver.bpfCacheFile && !spec.process.terminal && (await this.fillBpfCache(spec, driver))) driver = this.prepare(spec);
    const tty = spec.process.terminal && driver.name === 'crun' ? path.join(spec.dir, 'console.sock') : undefined;
    let argv = runtimeArgv(driver, sub.run(driver, spec.dir, spec.id, tty), this.overlay(spec));
    if (tty) argv = consoleArgv(consoleHelper(), tty, argv, { stdin: spec.process.stdin });
    const outFd = fdOf(stdio.stdout);
    const errFd = fdOf(stdio.stderr);
    const inFd = spec.process.stdin ? fdOf(stdio.stdin) : undefined;
    const child = spawn(argv[0]!, argv.slice(1), {
      stdio: [
        spec.process.stdin ? (inFd ?? 'pipe') : 'ignore',
        outFd ?? 'pipe',
        errFd ?? 'pipe',
      ],
    });
    if (child.stdout) child.stdout.pipe(stdio.stdout, { end: false });
    if (child.stderr) child.stderr.pipe(stdio.stderr, { end: false });
    if (child.stdin && stdio.stdin) stdio.stdin.pipe(child.stdin);
    const result = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      child.on('error', (e) => reject(new HullError('UNAVAILABLE', `cannot run ${argv[0]}: ${e.message}`, { cause: e })));
      child.on('spawn', () => {
        // The runtime's pid stands for the container while it runs (state() from other calls).
        fs.writeFileSync(this.files(spec).pid, String(child.pid));
        fs.rmSync(this.files(spec).exitFile, { force: true });
        onStarted?.(child.pid!);
        // No filter is taken from a foreground `crun run`: its state directory can only be read
        // while crun may still be writing seccomp.bpf, and a truncated filter must never be
        // cached. Detached starts fill the cache once `crun create` has returned.
      });
      child.on('close', (code, signal) => resolve({ code, signal }));
    });
    if (child.stdin && stdio.stdin) stdio.stdin.unpipe(child.stdin);
    // `run` deleted the runtime state and the cgroup; remove what a crash could have left.
    this.removeRuntimeLeftovers(spec, driver);
    const exitCode = result.code ?? 128 + (os.constants.signals[result.signal ?? 'SIGKILL'] ?? 9);
    // crun removed the cgroup with its oom_kill counter: ask the kernel log (SIGKILL exits only)
    const oomKilled = exitCode === 137 && spec.resources.memoryBytes !== undefined && kernelLogOomKill(containerCgroupPath(this.root, spec.id));
    return { exitCode, oomKilled };
  }

  async startDetached(spec: InstanceSpec): Promise<{ pid: number; facts?: Record<string, unknown> }> {
    await this.clearRun(spec);
    const driver = this.prepare(spec);
    const f = this.files(spec);
    fs.writeFileSync(f.script, conmonRuntimeScript(driver, this.overlay(spec)), { mode: 0o755 });
    const conmon = findConmon();
    const socketDir = path.join(this.root, 'run', 'conmon');
    fs.mkdirSync(socketDir, { recursive: true, mode: 0o700 });
    let pid: number;
    try {
      pid = await startConmon(
        {
          conmon, id: spec.id, name: spec.name, runtime: f.script, bundle: spec.dir, pidFile: f.pid,
          conmonPidFile: f.conmonPid, logPath: f.log, exitDir: f.exitDir, socketDir,
          terminal: spec.process.terminal, stdin: spec.process.stdin, stdinOnce: spec.process.stdinOnce,
          exitCommand: this.opts.exitCommand ? [...this.opts.exitCommand, spec.id, String(spec.run ?? 0)] : [],
          heldFds: spec.heldFds,
        },
        spec.dir,
      );
    } catch (e) {
      await this.teardownRuntime(spec, driver);
      throw e;
    }
    this.saveBpf(spec.id, driver);
    const r = await run(runtimeArgv(driver, sub.start(driver, spec.id)));
    if (r.code !== 0) {
      await this.teardownRuntime(spec, driver);
      throw runtimeError(driver, 'start', r.stderr, r.code);
    }
    return { pid, facts: { conmonPid: readInt(f.conmonPid) ?? 0, runtime: driver.name, cgroupsPath: containerCgroupPath(this.root, spec.id), logPath: f.log } };
  }

  /**
   * The run's state from its files: its exit file (written by conmon) ends it; until then it
   * runs while its process does, or is pending while its monitor waits to start it. A process
   * that has ended while its monitor lives is about to have its exit written: that is waited
   * for (at most EXIT_RECORD_WAIT_MS). With neither left and no exit file, the exit code is lost
   * (monitor killed): the signal hull last sent decides it, else 255.
   */
  async state(spec: InstanceSpec): Promise<InstanceState> {
    const f = this.files(spec);
    const exited = (code: number, error?: string): InstanceState => ({
      running: false,
      exit: { exitCode: code, oomKilled: readOomKilled(this.layout, containerCgroupPath(this.root, spec.id)), ...(error ? { error } : {}) },
    });
    const code = readInt(f.exitFile);
    if (code !== undefined) return exited(code);
    const pid = readInt(f.pid) ?? 0;
    // crun and runc keep exec.fifo in their state directory until `start`
    const created = () => fs.existsSync(path.join(this.root, 'run', spec.runtime || 'crun', spec.id, 'exec.fifo'));
    if (pidAlive(pid)) return created() ? { running: true, pid, pending: true } : { running: true, pid };
    // the monitor lives: either before the process (no pid yet, or created and not started),
    // or just after it, about to write its exit file
    if (this.monitorPid(spec)) {
      if (pid === 0 || created()) return { running: true, pid, pending: true };
      // The process is gone and conmon is about to record its exit: wait for that (bounded)
      // rather than answer "running" for a process that no longer runs (under load conmon
      // may take a while to be scheduled after the kernel reaped its child).
      const code = await this.exitRecorded(spec, EXIT_RECORD_WAIT_MS);
      if (code !== undefined) return exited(code);
      if (this.monitorPid(spec)) return { running: true, pid };
    }
    const again = readInt(f.exitFile);
    if (again !== undefined) return exited(again);
    const sig = readInt(f.signalled);
    if (sig !== undefined && pid > 0) return exited(128 + sig, 'the container monitor was gone: the exit code is that of the signal hull sent');
    return exited(255, pid > 0 ? 'the container monitor is gone without recording an exit code' : 'the container never started');
  }

  /**
   * The exit code conmon writes for a process that has ended, once it is there, or undefined
   * when the monitor is gone without writing one or `ms` passed.
   */
  private async exitRecorded(spec: InstanceSpec, ms: number): Promise<number | undefined> {
    const file = this.files(spec).exitFile;
    const deadline = Date.now() + ms;
    const watch = new Watch(this.exitTargets(spec));
    try {
      for (;;) {
        const seen = watch.seq;
        const code = readInt(file);
        if (code !== undefined) return code;
        if (!this.monitorPid(spec) || Date.now() >= deadline) return readInt(file);
        // the backstop covers a monitor killed before it wrote anything
        await watch.after(seen, Math.min(50, Math.max(1, deadline - Date.now())));
      }
    } finally {
      watch.close();
    }
  }

  /** The live conmon of this container, if any (checked by its command line: pids are reused). */
  private monitorPid(spec: InstanceSpec): number | undefined {
    const pid = readInt(this.files(spec).conmonPid) ?? 0;
    if (!pidAlive(pid)) return undefined;
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      return cmd.includes(spec.id) ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  /** Wait (inotify on the exit directory) until state() says the run ended; false on timeout. */
  private async ended(spec: InstanceSpec, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    const watch = new Watch(this.exitTargets(spec));
    try {
      for (;;) {
        const seen = watch.seq;
        if (!(await this.state(spec)).running) return true;
        if (Date.now() >= deadline) return false;
        // backstop: a process whose monitor was killed ends without any file changing
        await watch.after(seen, Math.min(200, Math.max(1, deadline - Date.now())));
      }
    } finally {
      watch.close();
    }
  }

  exitTargets(spec: InstanceSpec): { path: string; filter?: (name: string) => boolean }[] {
    return [{ path: this.files(spec).exitDir }];
  }

  /**
   * Take away what a previous run left before a new one starts: its monitor (conmon, with the
   * exit hook it may still run: killed as a process group, since conmon is a session leader),
   * crun's state of the stopped id, the cgroup, the exit and pid files.
   */
  private async clearRun(spec: InstanceSpec): Promise<void> {
    const f = this.files(spec);
    await this.killMonitor(spec);
    await this.teardownRuntime(spec, this.driverOrUndefined(spec));
    for (const x of [f.exitFile, f.pid, f.conmonPid, f.signalled]) fs.rmSync(x, { force: true });
  }

  /** SIGKILL the monitor's process group and wait until it is gone. */
  private async killMonitor(spec: InstanceSpec): Promise<void> {
    const monitor = this.monitorPid(spec);
    // The exit hook conmon runs is in its group: when that hook is this process (removing an
    // --rm container), conmon ends by itself once it returns.
    if (!monitor || processGroup(process.pid) === monitor) return;
    // the whole group (conmon and the exit hook it may have started), not only conmon
    if (!(await killGroupAndWait(monitor, 2500))) throw new HullError('UNAVAILABLE', `the monitor of container ${spec.id.slice(0, 12)} (pid ${monitor}) did not exit after SIGKILL`);
  }

  async release(spec: InstanceSpec): Promise<ExitInfo | undefined> {
    const st = await this.state(spec);
    if (st.running) return undefined;
    // OOM is read by state() above, before the runtime removes the cgroup.
    await this.teardownRuntime(spec, this.driverOrUndefined(spec));
    return st.exit;
  }

  async kill(spec: InstanceSpec, signal: string): Promise<void> {
    const driver = this.driver(spec);
    const st = await this.state(spec);
    if (!st.running) throw precondition(`container ${spec.id.slice(0, 12)} is not running`);
    const n = signalNumber(signal);
    if (n !== undefined) fs.writeFileSync(this.files(spec).signalled, String(n));
    const r = await run(runtimeArgv(driver, sub.kill(driver, spec.id, signal, signal === 'SIGKILL' || signal === 'KILL' || signal === '9')));
    if (r.code !== 0) {
      const again = await this.state(spec);
      if (!again.running) return;
      throw runtimeError(driver, 'kill', r.stderr, r.code);
    }
  }

  async stop(spec: InstanceSpec, timeoutSec: number): Promise<void> {
    if (!(await this.state(spec)).running) return;
    const stopSignal = spec.image.config.config?.StopSignal || 'SIGTERM';
    if (timeoutSec !== 0) {
      try {
        await this.kill(spec, stopSignal);
      } catch (e) {
        if (!(await this.state(spec)).running) return;
        throw e;
      }
      if (await this.ended(spec, timeoutSec < 0 ? 2 ** 31 - 1 : timeoutSec * 1000)) return;
    }
    try {
      await this.kill(spec, 'SIGKILL');
    } catch (e) {
      if (!(await this.state(spec)).running) return;
      throw e;
    }
    if (await this.ended(spec, 10_000)) return;
    throw new HullError('UNAVAILABLE', `container ${spec.id.slice(0, 12)} did not exit after SIGKILL`);
  }

  async exec(spec: InstanceSpec, proc: ExecProcess, stdio: Stdio, onStarted?: () => void): Promise<number> {
    const driver = this.driver(spec);
    if (!(await this.state(spec)).running) throw precondition(`container ${spec.id.slice(0, 12)} is not running`);
    const layers = new LayeredRoot(spec.image.lowerDirs);
    const cwd = proc.cwd || spec.process.cwd || '/';
    if (proc.args.length === 0) throw new HullError('INVALID_ARGUMENT', 'no command specified');
    checkExecutable(layers, proc.args[0]!, [...spec.process.env, ...proc.env], cwd, (p) => spec.mounts.some((m) => p.startsWith(m.destination)));
    const user = resolveUserInRoot(layers, proc.user ?? spec.process.user, spec.groupAdd);
    const caps = containerCaps(spec, hostFacts().bounding);
    const env = new Map<string, string>();
    for (const kv of [...spec.process.env, ...proc.env]) env.set(kv.split('=')[0]!, kv);
    const processJson = {
      terminal: proc.terminal,
      user: { uid: user.uid, gid: user.gid, additionalGids: user.additionalGids },
      args: proc.args,
      env: [...env.values()],
      cwd,
      capabilities: { bounding: caps, effective: caps, permitted: caps, inheritable: [] },
      noNewPrivileges: spec.noNewPrivileges,
      ...(proc.terminal && proc.consoleSize ? { consoleSize: { height: proc.consoleSize.rows, width: proc.consoleSize.cols } } : {}),
    };
    const file = path.join(spec.dir, `exec-${crypto.randomBytes(6).toString('hex')}.json`);
    fs.writeFileSync(file, JSON.stringify(processJson));
    // crun writes its own errors to --log instead of stderr: a failure of the runtime (the
    // container stopped under it) is then told apart from the exec'd process's exit code
    const log = driver.name === 'crun' ? `${file}.log` : undefined;
    // the runtime writes the process's pid once it runs: that ends the start (onStarted)
    const pidFile = `${file}.pid`;
    // crun's terminal is held by hull-console (console.ts); runc copies its own until the end
    const tty = proc.terminal && driver.name === 'crun' ? { socket: `${file}.tty`, fifo: `${file}.resize` } : undefined;
    const started = new Watch([fileTarget(pidFile)]);
    let told = false;
    const tell = () => {
      if (told) return;
      told = true;
      started.close();
      // the helper made its FIFO before it ran the runtime
      if (tty && proc.onResizable) proc.onResizable((rows, cols) => resizeConsole(tty.fifo, rows, cols));
      onStarted?.();
    };
    void (async () => {
      for (let seen = started.seq; !told; seen = started.seq) {
        if (fs.existsSync(pidFile)) return tell();
        await started.after(seen, 1000);
      }
    })();
    try {
      let argv = runtimeArgv(log ? { ...driver, globalArgs: [...driver.globalArgs, `--log=${log}`] } : driver, sub.exec(driver, spec.id, file, proc.terminal, pidFile, tty?.socket));
      if (tty) {
        argv = consoleArgv(consoleHelper(), tty.socket, argv, { stdin: proc.stdin, resizeFifo: proc.onResizable ? tty.fifo : undefined });
      }
      const outFd = fdOf(stdio.stdout);
      const errFd = fdOf(stdio.stderr);
      const inFd = proc.stdin ? fdOf(stdio.stdin) : undefined;
      const child = spawn(argv[0]!, argv.slice(1), { stdio: [proc.stdin ? (inFd ?? 'pipe') : 'ignore', outFd ?? 'pipe', errFd ?? 'pipe'] });
      if (child.stdout) child.stdout.pipe(stdio.stdout, { end: false });
      if (child.stderr) child.stderr.pipe(stdio.stderr, { end: false });
      if (child.stdin && stdio.stdin) stdio.stdin.pipe(child.stdin);
      const r = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
        child.on('error', reject);
        child.on('close', (code, signal) => resolve({ code, signal }));
      });
      if (child.stdin && stdio.stdin) stdio.stdin.unpipe(child.stdin);
      // the runtime writes the pid file once the process runs: from then on its exit code is
      // the process's, whatever the runtime logged
      if (r.code !== 0 && log && !fs.existsSync(pidFile)) {
        if (!(await this.state(spec)).running) throw precondition(`Container ${spec.id} is not running`);
        const failed = safeRead(log).trim().split('\n').slice(-3).join('; ');
        throw new ExecError(`OCI runtime exec failed: ${failed || `${driver.name} exited ${r.code}`}`, 126);
      }
      return r.code ?? 128 + (os.constants.signals[r.signal ?? 'SIGKILL'] ?? 9);
    } finally {
      tell();
      for (const x of [file, pidFile, log, tty?.socket, tty?.fifo]) if (x) fs.rmSync(x, { force: true });
    }
  }

  attachStdin(spec: InstanceSpec, input: Readable, signal: AbortSignal): Promise<void> {
    if (!spec.process.stdin) throw precondition(`container ${spec.id.slice(0, 12)} was created without an open stdin (-i)`);
    return channels.feed(`${spec.dir}\0${spec.run ?? 0}`, input, spec.process.stdinOnce === true && !spec.process.terminal, signal, () => conmonChannel(spec.dir));
  }

  async usage(spec: InstanceSpec): Promise<Usage> {
    return readUsage(this.layout, containerCgroupPath(this.root, spec.id));
  }

  /**
   * docker update of a running container: its new limits (spec.resources) written to its cgroup
   * by the runtime (`update -r`, the same mapping as at create).
   */
  async update(spec: InstanceSpec): Promise<void> {
    const st = await this.state(spec);
    if (!st.running) return; // the next start takes the stored limits
    const driver = this.driver(spec);
    const file = path.join(spec.dir, 'update.json');
    fs.writeFileSync(file, JSON.stringify(ociResources(spec.resources, swapAccounting(this.layout))));
    try {
      const r = await run(runtimeArgv(driver, ['update', '-r', file, spec.id]));
      if (r.code !== 0) throw runtimeError(driver, 'update', r.stderr, r.code);
    } finally {
      fs.rmSync(file, { force: true });
    }
  }

  /** docker pause: the cgroup freezer (v1 freezer.state here on a hybrid host, v2 cgroup.freeze). */
  async pause(spec: InstanceSpec): Promise<void> {
    if (!(await this.state(spec)).running) throw precondition(`container ${spec.id.slice(0, 12)} is not running`);
    await setFrozen(this.layout, containerCgroupPath(this.root, spec.id), true);
  }

  async unpause(spec: InstanceSpec): Promise<void> {
    await setFrozen(this.layout, containerCgroupPath(this.root, spec.id), false);
  }

  async processes(spec: InstanceSpec): Promise<number[]> {
    return cgroupPids(this.layout, containerCgroupPath(this.root, spec.id));
  }

  async writableLayer(spec: InstanceSpec): Promise<WritableLayer> {
    const dir = this.files(spec).upper;
    if (!fs.statSync(dir, { throwIfNoEntry: false })?.isDirectory()) throw precondition(`container ${spec.id.slice(0, 12)} has no writable layer (${dir} is missing)`);
    return { kind: 'upper', dir };
  }

  async cleanup(spec: InstanceSpec): Promise<void> {
    const f = this.files(spec);
    const driver = this.driverOrUndefined(spec);
    // Kill whatever still runs: the container (through the runtime), then its monitor.
    if (driver && fs.existsSync(path.join(driver.stateDir, spec.id))) {
      await run(runtimeArgv(driver, sub.kill(driver, spec.id, 'SIGKILL', true))).catch(() => undefined);
      for (let i = 0; i < 400 && pidAlive(readInt(f.pid) ?? 0); i++) await sleep(5);
    }
    await this.killMonitor(spec);
    await this.teardownRuntime(spec, driver);
    // conmon's link from its socket directory to the bundle
    fs.rmSync(path.join(this.root, 'run', 'conmon', spec.id), { force: true });
    fs.rmSync(spec.dir, { recursive: true, force: true });
  }

  /**
   * What this root's containers left that no live container owns: a runtime's state of an id
   * (crun/runc/runsc --root under <root>/run), cgroups under /hull/<root key>/, conmon
   * processes of this root's bundles.
   */
  async orphans(live: Set<string>): Promise<Orphan[]> {
    const out: Orphan[] = [];
    for (const rt of RUNTIMES) {
      const stateDir = path.join(this.root, 'run', rt);
      let ids: string[] = [];
      try {
        ids = fs.readdirSync(stateDir);
      } catch {
        continue;
      }
      for (const rid of ids) {
        const owner = rid.slice(0, 64);
        if (live.has(owner) || (rid.includes('-seccomp-') && pidAlive(Number(rid.split('-seccomp-')[1])))) continue;
        out.push({
          kind: 'runtime-state', what: path.join(stateDir, rid), id: owner,
          fix: async () => {
            const driver = makeDriver(rt, stateDir, this.layout);
            await run(runtimeArgv(driver, sub.delete(driver, rid, true)));
            fs.rmSync(path.join(stateDir, rid), { recursive: true, force: true });
          },
        });
      }
    }
    const seen = new Set<string>();
    for (const parent of cgroupDirs(this.layout, rootCgroupPath(this.root))) {
      let ids: string[] = [];
      try {
        ids = fs.readdirSync(parent, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
      } catch {
        continue;
      }
      for (const id of ids) {
        if (live.has(id) || seen.has(id)) continue;
        seen.add(id);
        out.push({
          kind: 'cgroup', what: containerCgroupPath(this.root, id), id,
          fix: async () => {
            const cg = containerCgroupPath(this.root, id);
            // whatever still runs in it goes first (a workload whose runtime state is gone)
            for (let i = 0; i < 300; i++) {
              const pids = cgroupDirs(this.layout, cg).flatMap((d) => readProcs(path.join(d, 'cgroup.procs')));
              if (pids.length === 0) break;
              for (const p of pids) killQuietly(p);
              await sleep(10);
            }
            const left = removeCgroup(this.layout, cg);
            if (left.length) throw new HullError('FAILED_PRECONDITION', `cgroup still has processes: ${left.join(', ')}`);
          },
        });
      }
    }
    const bundles = `${path.join(this.root, 'containers')}/`;
    for (const p of processesMentioning(bundles)) {
      if (!/(^|\/)conmon /.test(p.cmdline)) continue;
      const at = p.cmdline.indexOf(bundles);
      const id = p.cmdline.slice(at + bundles.length, at + bundles.length + 64);
      if (!/^[0-9a-f]{64}$/.test(id) || live.has(id)) continue;
      out.push({ kind: 'monitor', what: `pid ${p.pid}: ${p.cmdline.slice(0, 120)}`, id, fix: async () => void killGroup(p.pid, 'SIGKILL') });
    }
    return out;
  }

  private driverOrUndefined(spec: InstanceSpec): RuntimeDriver | undefined {
    try {
      return this.driver(spec);
    } catch {
      return undefined;
    }
  }

  /** Delete the runtime's record of the container and its cgroup (idempotent). */
  private async teardownRuntime(spec: InstanceSpec, driver: RuntimeDriver | undefined): Promise<void> {
    if (driver && fs.existsSync(path.join(driver.stateDir, spec.id))) {
      const r = await run(runtimeArgv(driver, sub.delete(driver, spec.id, true)));
      if (r.code !== 0 && fs.existsSync(path.join(driver.stateDir, spec.id))) throw runtimeError(driver, 'delete', r.stderr, r.code);
    }
    if (driver) this.removeRuntimeLeftovers(spec, driver);
    else removeCgroup(this.layout, containerCgroupPath(this.root, spec.id));
  }

  private removeRuntimeLeftovers(spec: InstanceSpec, driver: RuntimeDriver): void {
    removeCgroup(this.layout, containerCgroupPath(this.root, spec.id));
    void driver;
  }
}

/** A signal's number ('SIGTERM', 'TERM', '15'), undefined when unknown. */
function signalNumber(signal: string): number | undefined {
  const t = signal.trim().toUpperCase();
  if (/^\d+$/.test(t)) return Number(t);
  return (os.constants.signals as Record<string, number>)[t.startsWith('SIG') ? t : `SIG${t}`];
}

function readProcs(file: string): number[] {
  return safeRead(file).split('\n').filter(Boolean).map(Number);
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone already
  }
}

function safeRead(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** The container wall for the hull root `root`. */
export function createContainerIsolation(root: string, opts: IsolationOptions = {}): Isolation {
  return new ContainerIsolation(root, opts);
}

/** Host facts `hull info` shows: runtimes found, cgroup layout, conmon. */
export function containerHostInfo(): { runtimes: Record<string, string | null>; conmon: string | null; cgroup: CgroupLayout; init: string | null } {
  const runtimes: Record<string, string | null> = {};
  for (const r of ['crun', 'runc', 'runsc']) runtimes[r] = which(r) ?? null;
  return { runtimes, conmon: which('conmon') ?? null, cgroup: detectCgroupLayout(), init: INIT_CANDIDATES.find((p) => fs.existsSync(p)) ?? null };
}

/**
 * Whether `data` can be a whole classic-BPF seccomp program: whole 8-byte instructions, at most
 * BPF_MAXINSNS of them, every jump landing inside the program, and a return (BPF_RET) last.
 */
export function completeBpf(data: Buffer): boolean {
  if (data.length === 0 || data.length % 8 !== 0 || data.length / 8 > 4096) return false;
  const n = data.length / 8;
  // Plain byte indexing: Buffer's readUInt* checks every offset, 3 ms for a 1000-instruction
  // filter in a cold start. struct sock_filter { u16 code; u8 jt; u8 jf; u32 k; }, little-endian.
  for (let i = 0, o = 0; i < n; i++, o += 8) {
    const code = data[o]! | (data[o + 1]! << 8);
    if ((code & 0x07) !== 0x05) continue; // not BPF_JMP
    const k = (data[o + 4]! | (data[o + 5]! << 8) | (data[o + 6]! << 16)) + data[o + 7]! * 0x1000000;
    const far = (code & 0xf0) === 0x00 ? k : Math.max(data[o + 2]!, data[o + 3]!); // BPF_JA jumps by k
    if (i + 1 + far >= n) return false;
  }
  return (data[(n - 1) * 8]! & 0x07) === 0x06;
}

/** The device nodes a container gets: each --device; with --privileged every host device too. */
function containerDevices(spec: InstanceSpec): HostDevice[] {
  const asked = (spec.devices ?? []).map(resolveDevice);
  if (!spec.privileged) return asked;
  const all = hostDevices();
  return [...all, ...asked.filter((d) => !all.some((h) => h.path === d.path))];
}

/**
 * Give `dir` and its parents up to and including hull's root `top` the search bit for everyone
 * (0o111); above the root, hull changes nothing: a directory others cannot search is an error
 * naming it.
 */
function traversable(dir: string, top: string): void {
  let d = dir;
  for (; ; d = path.dirname(d)) {
    const mode = fs.statSync(d).mode & 0o7777;
    if ((mode & 0o111) !== 0o111) fs.chmodSync(d, mode | 0o111);
    if (d === top || d === path.dirname(d) || !d.startsWith(top)) break;
  }
  for (d = path.dirname(d); ; d = path.dirname(d)) {
    const mode = fs.statSync(d).mode & 0o7777;
    if ((mode & 0o001) === 0) {
      throw new HullError('INVALID_ARGUMENT', `--userns=auto: ${d} (mode ${mode.toString(8).padStart(4, '0')}) above the hull root cannot be searched by the container's root, an unprivileged uid on the host`, { hint: `chmod o+x ${d}` });
    }
    if (d === path.dirname(d)) break;
  }
}
