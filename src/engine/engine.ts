/**
 * The lifecycle engine: create, start, run, stop, kill, rm, wait, exec, logs, inspect, ps, stats,
 * prune. It owns the container rows (SQLite) and drives a wall through the Isolation interface.
 * No process.exit, no CLI globals: streams come in as arguments, errors leave as HullError, so
 * the CLI, the API server and library users share it. Every operation states its precondition.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { HullError, isHullError, notFound, precondition } from '../errors.js';
import { ImageStore, type ImageRecord } from '../images/store.js';
import { layout, packageRoot } from '../paths.js';
import { createIsolation } from '../runtime/index.js';
import type { ExecProcess, ExitInfo, InstanceSpec, Isolation, Usage, Wall, WritableLayer } from '../runtime/types.js';
import { ContainerTables, type ContainerRow } from '../state/containers.js';
import { addEvent, lastEvent, nowIso, type DB } from '../state/db.js';
import { bootId, identityAlive, processIdentity } from '../util/proc.js';
import { dbTarget, fileTarget, Watch } from '../util/watch.js';
import { admit, isLive } from './lifecycle.js';
import { ContainerLocks } from './lock.js';
import { toInspect, toSummary, statusText, type ContainerInspect, type ContainerSummary, type StoredSpec } from './inspect.js';
import { newContainerId, randomName } from './names.js';
import { buildInstanceSpec, netRequest, validateRunOptions, type RunOptions } from './options.js';
import type { NetworkStack, PreparedNetwork } from '../network/stack.js';
import type { NetworkService } from './networks.js';
import type { ContainerLayer } from './changes.js';
import type { ImageRunConfig } from '../oci/types.js';

export interface AttachStdio {
  /** Read when the container keeps stdin open (-i). */
  stdin?: Readable | null;
  stdout: Writable;
  stderr: Writable;
}

export interface RunResult {
  id: string;
  name: string;
  /** The container process's exit code; absent for detached runs. */
  exitCode?: number;
  oomKilled?: boolean;
  /** Why the instance ended without an exit code of its own (a VM that did not boot, ...). */
  error?: string;
}

export interface ExecOptions {
  cmd: string[];
  /** KEY=VALUE, added to the container's environment. */
  env?: string[];
  /** Absolute working directory. Default: the container's. */
  workdir?: string;
  user?: string;
  tty?: boolean;
  interactive?: boolean;
  /** With tty: the first window size, and a callback handed what resizes the terminal. */
  consoleSize?: ExecProcess['consoleSize'];
  onResizable?: ExecProcess['onResizable'];
}

export interface LogsOptions {
  follow?: boolean;
  /** Last N lines; negative = all (default). */
  tail?: number;
  timestamps?: boolean;
  /** Stops a follow. */
  signal?: AbortSignal;
}

export interface StatsEntry {
  id: string;
  name: string;
  /** CPU use over the sample, percent of one CPU (docker's CPU %). */
  cpuPercent: number;
  usage: Usage;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The exit command a monitor (conmon, the VM's monitor shell) runs when an instance ends: the
 * exit hook (exit-hook.ts) through bin/hull-boot.cjs, which runs its bundle with a code cache
 * (~35 ms sooner than loading the hook's ES modules). Without NODE_EXTRA_CA_CERTS: the hook opens
 * no TLS connection, and node would parse those certificates before running it (~45 ms here).
 */
export function hookCommand(root: string, env: NodeJS.ProcessEnv = process.env): string[] {
  const node = [process.execPath, path.join(packageRoot(), 'bin', 'hull-boot.cjs'), '--exit-hook', root];
  return env.NODE_EXTRA_CA_CERTS !== undefined && fs.existsSync('/usr/bin/env') ? ['/usr/bin/env', '-u', 'NODE_EXTRA_CA_CERTS', ...node] : node;
}


/** Facts the engine keeps with each run in runtime_json, besides the wall's own. */
interface RunFacts {
  /** The boot the run started in: pids of an earlier boot mean nothing now. */
  bootId?: string;
  /** Foreground run: the hull process that waits for it and records its exit ('pid:starttime'). */
  owner?: string;
  [k: string]: unknown;
}

/**
 * How long a waiter sleeps when no event wakes it, ms: only a monitor that dies without
 * writing its exit (SIGKILL) is noticed this way; every ordinary exit arrives by inotify.
 */
const BACKSTOP_MS = 1000;

export class Engine {
  readonly root: string;
  private storeCache?: ImageStore;
  private walls = new Map<Wall, Promise<Isolation>>();
  private locksCache?: ContainerLocks;

  private constructor(root: string) {
    this.root = path.resolve(root);
  }

  /** @param root the hull state root (e.g. /var/lib/hull). */
  static open(root: string): Engine {
    return new Engine(root);
  }

  /** The image store (opens the database on first use). */
  get images(): ImageStore {
    this.storeCache ??= ImageStore.open(this.root);
    return this.storeCache;
  }
  private get db(): DB {
    return this.images.db;
  }
  private get rows(): ContainerTables {
    return new ContainerTables(this.db);
  }
  private get locks(): ContainerLocks {
    this.locksCache ??= new ContainerLocks(this.db, this.root);
    return this.locksCache;
  }

  private wall(w: Wall): Promise<Isolation> {
    let p = this.walls.get(w);
    if (!p) {
      p = createIsolation(w, this.root, { exitCommand: hookCommand(this.root) });
      this.walls.set(w, p);
    }
    return p;
  }

  private stored(row: ContainerRow): StoredSpec {
    return JSON.parse(row.spec_json) as StoredSpec;
  }

  /** The stored spec of the row's current run (layer directories not filled in). */
  private runSpec(row: ContainerRow): InstanceSpec {
    return { ...this.stored(row).spec, run: row.run };
  }

  private facts(row: ContainerRow): RunFacts {
    return JSON.parse(row.runtime_json || '{}') as RunFacts;
  }

  /** Run `fn` holding the container's lease, with its row as it is then (NOT_FOUND if gone). */
  private locked<T>(id: string, fn: (row: ContainerRow) => Promise<T>): Promise<T> {
    return this.locks.with(id, async (present) => {
      const row = present ? this.rows.get(id) : undefined;
      if (!row) throw notFound(`No such container: ${id}`);
      return fn(row);
    });
  }

  // ---------------------------------------------------------------- network (src/network)

  private netCache?: { stack: NetworkStack; service: NetworkService };

  /** The root's network stack and the network commands over it (loaded on first use). */
  private async net(): Promise<{ stack: NetworkStack; service: NetworkService }> {
    if (!this.netCache) {
      const [{ NetworkStack }, { NetworkService }] = await Promise.all([import('../network/stack.js'), import('./networks.js')]);
      const stack = new NetworkStack(this.root, this.db);
      const service = new NetworkService({ stack, rows: this.rows, stored: (r) => this.stored(r), fresh: (r) => this.fresh(r) });
      this.netCache = { stack, service };
    }
    return this.netCache;
  }

  /** `network create/ls/inspect/rm/prune/connect/disconnect` and `port`. */
  async networks(): Promise<NetworkService> {
    return (await this.net()).service;
  }

  /** Sets up the container's network for a start: the spec the wall gets. */
  private async netPrepare(row: ContainerRow, spec: InstanceSpec): Promise<{ spec: InstanceSpec; prep: PreparedNetwork }> {
    const { opts } = this.stored(row);
    const prep = await (await this.net()).stack.prepare({ id: row.id, name: row.name, wall: row.isolation, hostname: spec.hostname }, netRequest(opts, spec.image.config));
    return { spec: { ...spec, network: prep.network, netns: prep.netns, etc: prep.etc, heldFds: prep.heldFds }, prep };
  }

  /** What `hull system check` asks of the network stack. */
  private async netCheck(): Promise<{ dir: string; orphans(live: Set<string>): Promise<import('../runtime/types.js').Orphan[]> }> {
    const { stack } = await this.net();
    return { dir: stack.netnsDir, orphans: async (live) => stack.orphans(live) };
  }

  /** Takes the container's network down again (idempotent; nothing to do for none and host). */
  private async netTeardown(id: string): Promise<void> {
    await (await this.net()).stack.teardown(id);
  }

  // ---------------------------------------------------------------- images

  /** Resolve an image, pulling it like docker when it is not here. */
  private async image(ref: string, platform: string | undefined, out?: Writable): Promise<ImageRecord> {
    const found = this.images.tryResolve(ref);
    if (found) return found;
    out?.write(`Unable to find image '${ref}' locally\n`);
    const { pull } = await import('../registry/pull.js');
    return pull(this.root, ref, { platform, out, unpack: true });
  }

  // ---------------------------------------------------------------- create / start / run

  /** docker create: resolve (or pull) the image, record the container. */
  async create(asked: RunOptions, progress?: Writable): Promise<{ id: string; name: string; spec: InstanceSpec }> {
    validateRunOptions(asked);
    // stored with its network mode: containers stored before networks existed had none
    const opts: RunOptions = { ...asked, network: asked.network ?? 'bridge' };
    const img = await this.image(opts.image, opts.platform, progress);
    const lowerDirs = await this.images.lowerDirs(img);
    const id = newContainerId();
    const dir = path.join(layout(this.root).containers, id);
    for (let attempt = 0; ; attempt++) {
      const name = opts.name ?? randomName();
      const spec = buildInstanceSpec(opts, { id: img.id, config: img.config, lowerDirs }, { id, name, dir, hostHostname: os.hostname() });
      const stored: StoredSpec = { opts, spec: { ...spec, image: { ...spec.image, lowerDirs: [] } } };
      try {
        this.rows.insert({
          id, name, image_id: img.id, image_ref: opts.image, isolation: opts.isolation ?? 'container', runtime: spec.runtime,
          status: 'created', spec_json: JSON.stringify(stored), created_at: nowIso(),
        });
      } catch (e) {
        if (opts.name === undefined && isHullError(e, 'CONFLICT') && attempt < 5) continue;
        throw e;
      }
      try {
        await (await this.net()).stack.configure({ id, name, wall: opts.isolation ?? 'container', hostname: spec.hostname }, netRequest(opts, img.config));
      } catch (e) {
        this.rows.delete(id); // nothing half-made: no row without its network
        throw e;
      }
      addEvent(this.db, 'container', 'create', id, { name, image: opts.image });
      return { id, name, spec };
    }
  }

  /** The spec of a stored container's current run with its image's layer directories filled in. */
  private async liveSpec(row: ContainerRow): Promise<InstanceSpec> {
    const spec = this.runSpec(row);
    const img = this.images.record(row.image_id);
    if (!img) throw precondition(`the image ${row.image_id} of container ${row.name} is gone`);
    return { ...spec, image: { ...spec.image, lowerDirs: await this.images.lowerDirs(img) } };
  }

  /** docker start: run the container detached under its monitor. No-op when it runs. */
  async start(ref: string): Promise<void> {
    const id = this.rows.resolve(ref).id;
    await this.locked(id, async (row) => {
      row = await this.settle(row);
      if (admit('start', row) === 'noop') return;
      await this.startLocked(row);
    });
  }

  /**
   * A new run under the monitor (lease held). The row says running, with the new run number,
   * before the wall starts anything: the run's exit hook may fire before startDetached returns,
   * and then waits for this lease, finds its run and records the exit.
   */
  private async startLocked(row: ContainerRow): Promise<void> {
    const iso = await this.wall(row.isolation);
    const run = this.rows.beginRun(row.id, nowIso(), JSON.stringify({ bootId: bootId() } satisfies RunFacts));
    const current = this.rows.get(row.id)!;
    let spec: InstanceSpec | undefined;
    let prep: PreparedNetwork | undefined;
    try {
      spec = await this.liveSpec(current);
      const net = await this.netPrepare(current, spec);
      prep = net.prep;
      const { pid, facts } = await iso.startDetached(net.spec);
      prep.closeHeld(); // the monitor holds the published ports now
      this.rows.setStarted(row.id, run, pid, JSON.stringify({ ...(facts ?? {}), bootId: bootId() } satisfies RunFacts));
      addEvent(this.db, 'container', 'start', row.id, { name: row.name, run: String(run) });
    } catch (e) {
      prep?.closeHeld();
      await this.failStart(current, spec ?? this.runSpec(current), iso, e);
      throw e;
    }
  }

  /** A start that failed (lease held): record why, release what the wall set up, honour --rm. */
  private async failStart(row: ContainerRow, spec: InstanceSpec, iso: Isolation, e: unknown): Promise<void> {
    const code = e instanceof HullError && 'exitCode' in e ? Number((e as { exitCode: number }).exitCode) : 125;
    this.rows.markExited(row.id, row.run, code, false, nowIso(), e instanceof Error ? e.message : String(e));
    await this.netTeardown(row.id).catch(() => undefined);
    if (this.stored(row).opts.rm) await this.removeLocked(this.rows.get(row.id) ?? row).catch(() => undefined);
    else if (iso.release) await iso.release(spec).catch(() => undefined);
  }

  /**
   * docker run. Detached: returns once the container runs. Attached with --rm, -i or -t: the
   * runtime runs in the foreground with no monitor (fast path). Attached otherwise: started
   * under the monitor (so the log, exit code and OOM kill are recorded) and followed.
   */
  async run(opts: RunOptions, io: AttachStdio & { detach?: boolean; onStarted?: (id: string) => void }): Promise<RunResult> {
    const { id, name } = await this.create(opts, io.stderr);
    if (io.detach) {
      await this.locked(id, (row) => this.startLocked(row));
      return { id, name };
    }
    if (opts.rm || opts.interactive || opts.tty) return this.runForeground(id, opts, io);
    const ac = new AbortController();
    await this.locked(id, (row) => this.startLocked(row));
    io.onStarted?.(id);
    const following = this.logs(id, { follow: true }, io, ac.signal);
    const exit = await this.wait(id);
    await following;
    return { id, name, exitCode: exit.StatusCode, oomKilled: exit.OOMKilled };
  }

  private async runForeground(id: string, opts: RunOptions, io: AttachStdio & { onStarted?: (id: string) => void }): Promise<RunResult> {
    // This process records the exit itself (no monitor): others read the run as running while
    // its owner lives, and reconcile it only once the owner is gone.
    const facts: RunFacts = { bootId: bootId(), attached: true, owner: processIdentity(process.pid) };
    const { row, run } = await this.locked(id, async (r) => ({ row: r, run: this.rows.beginRun(r.id, nowIso(), JSON.stringify(facts)) }));
    const spec = await this.liveSpec(this.rows.get(id) ?? { ...row, run });
    const iso = await this.wall(row.isolation);
    let exit;
    let prep: PreparedNetwork | undefined;
    try {
      const net = await this.netPrepare(row, spec);
      prep = net.prep; // this process holds the published ports while the run lasts
      exit = await iso.runAttached(net.spec, { stdin: io.stdin, stdout: io.stdout, stderr: io.stderr }, (pid) => {
        this.rows.setStarted(row.id, run, pid, JSON.stringify(facts));
        io.onStarted?.(row.id);
      });
    } catch (e) {
      prep?.closeHeld();
      await this.locks.with(id, async (present) => {
        const cur = present ? this.rows.get(id) : undefined;
        if (cur && cur.run === run) await this.failStart(cur, spec, iso, e);
      });
      throw e;
    }
    prep.closeHeld();
    await this.netTeardown(id);
    await this.locks.with(id, async (present) => {
      const cur = present ? this.rows.get(id) : undefined;
      if (!cur || cur.run !== run) return; // removed (rm -f) or restarted meanwhile
      if (this.rows.markExited(id, run, exit.exitCode, exit.oomKilled, nowIso(), exit.error ?? '')) {
        addEvent(this.db, 'container', 'die', id, { exitCode: String(exit.exitCode), oomKilled: String(exit.oomKilled), run: String(run) });
      }
      if (opts.rm) await this.removeLocked(this.rows.get(id)!);
    });
    return { id: row.id, name: row.name, exitCode: exit.exitCode, oomKilled: exit.oomKilled, error: exit.error || undefined };
  }

  /**
   * A build step (or any run whose changes are wanted): `opts` runs in the foreground like
   * `run --rm` (no monitor, output to `io`), with the wall told to keep the writable layer; once
   * the process has exited, `use` gets the exit and, after a zero exit, that layer. The container
   * is removed afterwards whatever happened (a failed step leaves no container behind). A start
   * failure (command not found, ...) is thrown as `run` throws it.
   */
  async runStep<T>(
    opts: RunOptions,
    io: AttachStdio & { onCreated?: (id: string) => void; /** Kills the instance (SIGKILL) once it runs; it is then removed as usual. */ signal?: AbortSignal },
    use: (exit: RunResult, layer: WritableLayer | undefined) => Promise<T>,
  ): Promise<T> {
    const { id, name } = await this.create({ ...opts, rm: false }, io.stderr);
    let stopAbort = () => undefined as void;
    try {
      io.onCreated?.(id);
      if (io.signal?.aborted) throw new HullError('UNAVAILABLE', 'interrupted before it started');
      const facts: RunFacts = { bootId: bootId(), attached: true, owner: processIdentity(process.pid) };
      const { row, run } = await this.locked(id, async (r) => ({ row: r, run: this.rows.beginRun(r.id, nowIso(), JSON.stringify(facts)) }));
      const spec: InstanceSpec = { ...(await this.liveSpec(this.rows.get(id) ?? { ...row, run })), captureLayer: true };
      const iso = await this.wall(row.isolation);
      // This process owns the run: an abort goes straight to the wall. Between the runtime's
      // spawn and the moment its container (or the guest agent) exists, a kill is refused, so it
      // is sent again every 100 ms until the run has ended.
      let started = false;
      let ended = false;
      let killing = false;
      const onAbort = () => {
        if (!started || killing) return;
        killing = true;
        void (async () => {
          while (!ended) {
            await iso.kill(spec, 'SIGKILL').catch(() => undefined);
            await new Promise((r) => setTimeout(r, 100));
          }
        })();
      };
      io.signal?.addEventListener('abort', onAbort);
      stopAbort = () => io.signal?.removeEventListener('abort', onAbort);
      const exit = await iso.runAttached(spec, { stdin: null, stdout: io.stdout, stderr: io.stderr }, (pid) => {
        this.rows.setStarted(row.id, run, pid, JSON.stringify(facts));
        started = true;
        if (io.signal?.aborted) onAbort();
      }).finally(() => (ended = true));
      await this.locks.with(id, async (present) => {
        const cur = present ? this.rows.get(id) : undefined;
        if (cur && cur.run === run) this.rows.markExited(id, run, exit.exitCode, exit.oomKilled, nowIso(), exit.error ?? '');
      });
      const layer = exit.exitCode === 0 && !exit.error && iso.writableLayer ? await iso.writableLayer(spec) : undefined;
      return await use({ id, name, exitCode: exit.exitCode, oomKilled: exit.oomKilled, error: exit.error || undefined }, layer);
    } finally {
      stopAbort();
      await this.rm(id, { force: true }).catch((e: unknown) => {
        if (!isHullError(e, 'NOT_FOUND')) throw e;
      });
    }
  }

  // ---------------------------------------------------------------- exits and reconciling

  /**
   * What the current run really is, from outside (no lease needed): the row itself unless it
   * says live; then the wall's files decide. Undefined exit = it still runs.
   */
  private async observe(row: ContainerRow, o: { leased?: boolean } = {}): Promise<ExitInfo | undefined> {
    if (!isLive(row.status)) return undefined;
    const facts = this.facts(row);
    if (facts.bootId !== undefined && facts.bootId !== bootId()) {
      return { exitCode: 255, oomKilled: false, error: 'the host restarted while the container ran' };
    }
    if (facts.attached && facts.owner && identityAlive(facts.owner)) return undefined; // its owner records the exit
    const st = await (await this.wall(row.isolation)).state(this.runSpec(row));
    if (!st.running) return st.exit;
    // Created but never started, and nobody is starting it: the start was cut short (its hull
    // process killed). Ending the run takes the half-made instance away (release).
    // (`leased`: the caller holds the lease itself, so nobody else is starting it)
    const nobodyElse = o.leased || this.locks.holder(row.id) === '';
    if (st.pending && nobodyElse) return { exitCode: 255, oomKilled: false, error: 'the start was interrupted' };
    // Running, but its start was cut short before it recorded the process: record it now.
    if (row.pid === 0 && st.pid > 0 && !st.pending && nobodyElse) this.rows.setStarted(row.id, row.run, st.pid, row.runtime_json);
    return undefined;
  }

  /**
   * Bring the row up to date (lease held): a live run whose process ended gets its exit
   * recorded (and --rm honoured); a removal that its remover left half done (killed) becomes
   * 'dead', which `rm` finishes. Returns the row as it is now (status 'removing' with no id
   * left behind when an --rm container went away).
   */
  private async settle(row: ContainerRow, o: { autoRemove?: boolean } = {}): Promise<ContainerRow> {
    if (row.status === 'removing') {
      this.rows.setStatus(row.id, 'dead', row.error || 'removal was interrupted');
      return this.rows.get(row.id)!;
    }
    const exit = await this.observe(row, { leased: true });
    if (!exit) return row;
    await this.recordExit(row, exit, o);
    return this.rows.get(row.id) ?? { ...row, status: 'removing' };
  }

  /** Record the end of the row's current run (lease held), free what it held, honour --rm. */
  private async recordExit(row: ContainerRow, exit: ExitInfo, o: { autoRemove?: boolean } = {}): Promise<void> {
    const iso = await this.wall(row.isolation);
    if (this.rows.markExited(row.id, row.run, exit.exitCode, exit.oomKilled, nowIso(), exit.error ?? '')) {
      addEvent(this.db, 'container', 'die', row.id, { exitCode: String(exit.exitCode), oomKilled: String(exit.oomKilled), run: String(row.run) });
    }
    if (iso.release) await iso.release(this.runSpec(row));
    await this.netTeardown(row.id);
    if ((o.autoRemove ?? true) && this.stored(row).opts.rm) await this.removeLocked(this.rows.get(row.id) ?? row);
  }

  /**
   * The exit hook of run `run` (called by the monitor once the instance ended). Records the
   * exit unless someone else already did, or the container moved on (removed, started again):
   * it never waits on a lease whose holder is itself waiting for this monitor (rm -f, start),
   * because it gives up as soon as the row no longer shows its run as live.
   */
  async finalizeExit(id: string, run?: number): Promise<void> {
    const watch = new Watch([dbTarget(this.root)]);
    try {
      const deadline = Date.now() + 120_000;
      for (;;) {
        const seen = watch.seq;
        const row = this.rows.get(id);
        if (!row || !isLive(row.status) || (run !== undefined && row.run !== run)) return;
        const lease = this.locks.tryAcquire(id);
        if (lease) {
          try {
            const cur = this.rows.get(id);
            if (cur && isLive(cur.status) && (run === undefined || cur.run === run)) await this.settle(cur);
          } finally {
            lease.release();
          }
          return;
        }
        if (Date.now() > deadline) return; // whoever holds it reconciles the run
        await watch.after(seen, BACKSTOP_MS);
      }
    } finally {
      watch.close();
    }
  }

  /**
   * The row as a later look should report it: a live run whose process is gone is settled
   * here, unless another process holds the lease (a transition is under way: it reports the
   * row as it is).
   */
  private async fresh(row: ContainerRow): Promise<ContainerRow> {
    if (!isLive(row.status) && row.status !== 'removing') return row;
    if (row.status === 'removing' || (await this.observe(row))) {
      const lease = this.locks.tryAcquire(row.id);
      if (!lease) return row;
      try {
        const cur = this.rows.get(row.id);
        return cur ? await this.settle(cur) : { ...row, status: 'removing' };
      } finally {
        lease.release();
      }
    }
    return row.pid === 0 ? (this.rows.get(row.id) ?? row) : row;
  }

  // ---------------------------------------------------------------- stop / kill / wait / rm

  /** docker stop: stop signal, then SIGKILL after `timeoutSec` (default 10). No-op when stopped. */
  async stop(ref: string, timeoutSec = 10): Promise<void> {
    const id = this.rows.resolve(ref).id;
    await this.locked(id, async (row) => {
      row = await this.settle(row);
      if (!this.rows.get(id) || admit('stop', row) === 'noop') return;
      await this.stopLocked(row, timeoutSec);
      addEvent(this.db, 'container', 'stop', row.id, { name: row.name });
      await this.settle(this.rows.get(id) ?? row);
    });
  }

  /** Stop the row's run and wait until its end is recorded by the monitor (lease held). */
  private async stopLocked(row: ContainerRow, timeoutSec: number): Promise<void> {
    const facts = this.facts(row);
    if (facts.bootId !== undefined && facts.bootId !== bootId()) return; // nothing of it runs
    const iso = await this.wall(row.isolation);
    await iso.stop(this.runSpec(row), timeoutSec);
  }

  /** docker kill: FAILED_PRECONDITION when the container is not running. */
  async kill(ref: string, signal = 'SIGKILL'): Promise<void> {
    const id = this.rows.resolve(ref).id;
    await this.locked(id, async (row) => {
      row = await this.settle(row);
      if (!this.rows.get(id)) throw precondition(`Container ${id} is not running`);
      admit('kill', row);
      const iso = await this.wall(row.isolation);
      await iso.kill(this.runSpec(row), signal);
      addEvent(this.db, 'container', 'kill', row.id, { name: row.name, signal });
    });
  }

  /** The exit of a container that is gone (an --rm one), from its last 'die' event. */
  private removedExit(id: string): { StatusCode: number; OOMKilled: boolean } | undefined {
    const die = lastEvent(this.db, 'container', 'die', id);
    return die?.exitCode !== undefined ? { StatusCode: Number(die.exitCode), OOMKilled: die.oomKilled === 'true' } : undefined;
  }

  /**
   * docker wait: resolves with the exit code once the container is not running (a created one
   * is waited for until it has run and stopped). Woken by the monitor's exit file (inotify) and
   * by every commit to the state database; a removed --rm container answers from its 'die' event.
   */
  async wait(ref: string, signal?: AbortSignal): Promise<{ StatusCode: number; OOMKilled: boolean }> {
    const first = this.rows.resolve(ref);
    const iso = await this.wall(first.isolation);
    const watch = new Watch([dbTarget(this.root), ...iso.exitTargets(this.runSpec(first))]);
    try {
      for (;;) {
        if (signal?.aborted) throw new HullError('UNAVAILABLE', 'wait aborted');
        const seen = watch.seq;
        let row = this.rows.get(first.id);
        if (row) row = await this.fresh(row);
        if (!row || !this.rows.get(first.id)) {
          const die = this.removedExit(first.id);
          if (die) return die;
          throw notFound(`No such container: ${ref}`);
        }
        if (row.status === 'exited' || row.status === 'dead') return { StatusCode: row.exit_code ?? 0, OOMKilled: row.oom_killed === 1 };
        await watch.after(seen, BACKSTOP_MS, signal);
      }
    } finally {
      watch.close();
    }
  }

  /**
   * Resolves once `until` holds for the container's row (undefined: the row is gone), looked at
   * after every commit to the state database (inotify). For waits on what another hull process
   * does: a next start, a removal.
   */
  async waitRow(id: string, until: (row: ContainerRow | undefined) => boolean, signal?: AbortSignal): Promise<ContainerRow | undefined> {
    const watch = new Watch([dbTarget(this.root)]);
    try {
      for (;;) {
        if (signal?.aborted) throw new HullError('UNAVAILABLE', 'wait aborted');
        const seen = watch.seq;
        const row = this.rows.get(id);
        if (until(row)) return row;
        await watch.after(seen, BACKSTOP_MS, signal);
      }
    } finally {
      watch.close();
    }
  }

  /** docker rm: a running container needs `force` (then it is killed first). */
  async rm(ref: string, opts: { force?: boolean } = {}): Promise<string> {
    const id = this.rows.resolve(ref).id;
    await this.locks.with(id, async (present) => {
      let row = present ? this.rows.get(id) : undefined;
      if (!row) return; // removed meanwhile (an --rm container's exit): docker answers the same
      row = await this.settle(row);
      if (!this.rows.get(id)) return;
      admit(opts.force ? 'forceRemove' : 'remove', row);
      if (isLive(row.status)) {
        await this.stopLocked(row, 0);
        await this.settle(row, { autoRemove: false });
      }
      await this.removeLocked(this.rows.get(id) ?? row);
    });
    return id;
  }

  /**
   * Remove a container that no longer runs (lease held): 'removing' first, so a monitor's late
   * exit hook leaves it alone; the wall then takes away everything (monitor, runtime state,
   * mounts, cgroup, files); the row goes last. A wall that fails leaves the row 'dead'.
   */
  private async removeLocked(row: ContainerRow): Promise<void> {
    if (!this.rows.get(row.id)) return;
    this.rows.setStatus(row.id, 'removing', row.error);
    const iso = await this.wall(row.isolation);
    try {
      await iso.cleanup(this.runSpec(row));
      await this.netTeardown(row.id);
    } catch (e) {
      this.rows.setStatus(row.id, 'dead', `removal failed: ${(e as Error).message}`);
      throw e;
    }
    if (this.rows.delete(row.id)) addEvent(this.db, 'container', 'destroy', row.id, { name: row.name });
  }

  /** docker restart: stop (with timeout) then start, as one transition. */
  async restart(ref: string, timeoutSec = 10): Promise<void> {
    const id = this.rows.resolve(ref).id;
    await this.locked(id, async (row) => {
      row = await this.settle(row, { autoRemove: false });
      admit('restart', row);
      if (isLive(row.status)) {
        await this.stopLocked(row, timeoutSec);
        addEvent(this.db, 'container', 'stop', row.id, { name: row.name });
        row = await this.settle(this.rows.get(id) ?? row, { autoRemove: false });
      }
      this.rows.incrementRestarts(row.id);
      await this.startLocked(this.rows.get(id)!);
      addEvent(this.db, 'container', 'restart', row.id, { name: row.name });
    });
  }

  /** docker container prune: remove every container that is not running. */
  async prune(): Promise<{ deleted: string[] }> {
    const deleted: string[] = [];
    for (const r of this.rows.list(true)) {
      if (isLive(r.status)) {
        const now = await this.fresh(r);
        if (isLive(now.status)) continue;
      }
      const gone = await this.locks.with(r.id, async (present) => {
        const row = present ? this.rows.get(r.id) : undefined;
        if (!row) return false;
        const cur = await this.settle(row);
        if (!this.rows.get(r.id) || isLive(cur.status)) return !this.rows.get(r.id);
        await this.removeLocked(cur);
        return true;
      });
      if (gone) deleted.push(r.id);
    }
    return { deleted };
  }

  // ---------------------------------------------------------------- exec / logs / views

  /** docker exec: run another process in a running container; resolves with its exit code. */
  async exec(ref: string, o: ExecOptions, io: AttachStdio): Promise<number> {
    if (o.workdir !== undefined && o.workdir !== '' && !o.workdir.startsWith('/')) throw new HullError('INVALID_ARGUMENT', `the working directory '${o.workdir}' is invalid, it needs to be an absolute path`);
    const id = this.rows.resolve(ref).id;
    // The lease is held while the process starts (not while it runs): a stop or restart then
    // comes before the exec (which is refused) or after it (which kills it), never inside it.
    let running!: Promise<number>;
    await this.locked(id, async (row) => {
      row = await this.settle(row);
      admit('exec', row);
      const iso = await this.wall(row.isolation);
      const spec = await this.liveSpec(row);
      await new Promise<void>((resolve) => {
        running = iso.exec(spec, { args: o.cmd, env: o.env ?? [], cwd: o.workdir, user: o.user, terminal: o.tty ?? false, stdin: o.interactive ?? false, consoleSize: o.consoleSize, onResizable: o.onResizable }, io, resolve);
        running.then(() => resolve(), () => resolve());
      });
    });
    return running;
  }

  /**
   * The stdin of an attach (docker attach, run -i): once the container's run has started (now,
   * or after a start that comes later: a client attaches before it starts the container), feed
   * `input` to its main process, created with -i, until `input` ends (stdin is then closed with
   * StdinOnce and no TTY, as docker does) or `signal` aborts. A removed container takes nothing.
   */
  async attachStdin(ref: string, input: Readable, signal: AbortSignal): Promise<void> {
    const id = this.rows.resolve(ref).id;
    if (!this.runSpec(this.rows.get(id)!).process.stdin) throw precondition(`container ${this.rows.get(id)!.name} was created without an open stdin (OpenStdin, -i)`);
    let row: ContainerRow | undefined;
    try {
      // started: the wall's monitor runs and takes input (the row says running from before the start)
      row = await this.waitRow(id, (r) => !r || (isLive(r.status) && r.pid > 0), signal);
    } catch {
      return; // aborted
    }
    if (!row) return;
    await (await this.wall(row.isolation)).attachStdin(this.runSpec(row), input, signal);
  }

  /**
   * A container's writable layer and what lies under it, for diff, commit and export
   * (engine/changes.ts). A wall that cannot hand its layer over says why (a VM's lives in guest
   * memory).
   */
  async layerOf(ref: string): Promise<ContainerLayer> {
    const row = await this.fresh(this.rows.resolve(ref));
    const iso = await this.wall(row.isolation);
    const spec = this.runSpec(row);
    if (!iso.writableLayer) throw precondition(`container ${row.name}: the ${row.isolation} wall keeps no writable layer on the host`);
    const image = this.images.record(row.image_id);
    if (!image) throw precondition(`the image ${row.image_id} of container ${row.name} is gone`);
    let layer: WritableLayer;
    try {
      layer = await iso.writableLayer(spec);
    } catch (e) {
      if (row.isolation === 'vm' && isHullError(e, 'FAILED_PRECONDITION')) throw precondition(`container ${row.name} runs in a microVM, whose writable layer lives in guest memory: diff, commit and export work on the container wall (${(e as Error).message})`);
      throw e;
    }
    const c = (await this.inspect(row.id)).Config as Record<string, unknown>;
    const pick = <K extends keyof ImageRunConfig>(k: K, v: unknown) => (v === undefined || v === null || v === '' ? {} : ({ [k]: v } as Partial<ImageRunConfig>));
    const config: ImageRunConfig = {
      ...pick('User', c.User), ...pick('Env', c.Env), ...pick('Cmd', c.Cmd), ...pick('Entrypoint', c.Entrypoint), ...pick('WorkingDir', c.WorkingDir), ...pick('ExposedPorts', c.ExposedPorts),
    };
    return { id: row.id, name: row.name, layer, lowers: await this.images.lowerDirs(image), image, config, args: spec.process.args };
  }

  /**
   * docker logs, from the k8s-file log the monitor writes. `follow` reads as the log grows
   * (inotify) and ends once the run has ended, after reading what the monitor wrote before it
   * recorded the exit.
   */
  async logs(ref: string, o: LogsOptions, io: { stdout: Writable; stderr: Writable }, signal?: AbortSignal): Promise<void> {
    const { readFrom, parseLogLines, tailRecords, writeRecords } = await import('./logs.js');
    const row = this.rows.resolve(ref);
    const file = path.join(this.stored(row).spec.dir, 'ctr.log');
    const iso = await this.wall(row.isolation);
    const stop = o.signal ?? signal;
    const watch = o.follow ? new Watch([fileTarget(file), dbTarget(this.root), ...iso.exitTargets(this.runSpec(row))]) : undefined;
    try {
      let { data, offset } = readFrom(file, 0);
      writeRecords(tailRecords(parseLogLines(data), o.tail ?? -1), io, o.timestamps ?? false);
      if (!watch) return;
      for (;;) {
        if (stop?.aborted) return;
        const seen = watch.seq;
        const cur = this.rows.get(row.id);
        const ended = !cur || (cur.status !== 'created' && !isLive((await this.fresh(cur)).status));
        ({ data, offset } = readFrom(file, offset));
        if (data.length) writeRecords(parseLogLines(data), io, o.timestamps ?? false);
        if (ended) return;
        await watch.after(seen, BACKSTOP_MS, stop);
      }
    } finally {
      watch?.close();
    }
  }

  async inspect(ref: string): Promise<ContainerInspect> {
    const row = await this.fresh(this.rows.resolve(ref));
    if (!this.rows.get(row.id)) throw notFound(`No such container: ${ref}`);
    const stored = this.stored(row);
    return toInspect(row, stored, path.join(stored.spec.dir, 'ctr.log'), (await this.net()).service.containerView(row, stored));
  }

  /** docker ps: running containers, or all with `all`. */
  async ps(o: { all?: boolean } = {}): Promise<ContainerSummary[]> {
    const out: ContainerSummary[] = [];
    for (const r of this.rows.list(true)) {
      const row = await this.fresh(r);
      if (!o.all && !isLive(row.status)) continue;
      if (!this.rows.get(row.id)) continue;
      out.push(toSummary(row, this.stored(row), statusText(row), (await this.net()).service.containerView(row, this.stored(row))));
    }
    return out;
  }

  /** Resource usage of running containers, CPU % over `sampleMs` (default 500). */
  async stats(refs: string[] = [], sampleMs = 500): Promise<StatsEntry[]> {
    const rows = refs.length ? refs.map((r) => this.rows.resolve(r)) : this.rows.list(false);
    const live = [];
    for (const r of rows) {
      const row = await this.fresh(r);
      if (!isLive(row.status)) continue;
      const iso = await this.wall(row.isolation);
      const spec = this.runSpec(row);
      live.push({ row, iso, spec, first: await iso.usage(spec) });
    }
    const t0 = Date.now();
    await sleep(sampleMs);
    const out: StatsEntry[] = [];
    for (const l of live) {
      const u = await l.iso.usage(l.spec);
      const dt = (Date.now() - t0) * 1e6;
      out.push({ id: l.row.id, name: l.row.name, cpuPercent: dt > 0 ? ((u.cpuNs - l.first.cpuNs) / dt) * 100 : 0, usage: u });
    }
    return out;
  }

  /**
   * `hull system check`: reconcile every row, then list what nothing owns (check.ts); with
   * `fix`, take it away.
   */
  async systemCheck(o: { fix?: boolean } = {}): Promise<import('./check.js').Finding[]> {
    const { systemCheck } = await import('./check.js');
    return systemCheck(
      {
        root: this.root,
        rows: this.rows,
        locks: this.locks,
        walls: async () => [await this.wall('container'), await this.wall('vm')],
        reconcile: async (r) => void (await this.fresh(r)),
        remove: (id) =>
          this.locks.with(id, async (present) => {
            const row = present ? this.rows.get(id) : undefined;
            if (row) await this.removeLocked(row);
          }),
        network: await this.netCheck(),
      },
      o,
    );
  }

  /** Close the database (long-running callers that are done with this root). */
  close(): void {
    this.storeCache?.db.close();
    this.storeCache = undefined;
    this.locksCache = undefined;
  }
}
