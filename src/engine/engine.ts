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
import { conflict, HullError, invalid, isHullError, notFound, precondition } from '../errors.js';
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
import { parseDevice, resolveDevice } from '../runtime/container/devices.js';
import { UsernsRanges } from '../state/userns.js';
import type { NetworkStack, PreparedNetwork } from '../network/stack.js';
import type { NetworkService } from './networks.js';
import { EngineVolumes } from './volumes.js';
import { VolumeStore } from '../volumes/store.js';
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

/** docker update's limits (each as in RunOptions; absent: unchanged). */
export interface UpdateOptions {
  /** Bytes (at least 6 MiB). */
  memoryBytes?: number;
  /** Bytes of memory + swap; -1 unlimited. */
  memorySwapBytes?: number;
  /** 1e-9 CPUs. */
  nanoCpus?: number;
  /** Processes; -1 unlimited. */
  pidsLimit?: number;
}

/** docker's per-interface network stats (swagger: ContainerNetworkStats). */
export interface NetCounters {
  rx_bytes: number;
  rx_packets: number;
  rx_errors: number;
  rx_dropped: number;
  tx_bytes: number;
  tx_packets: number;
  tx_errors: number;
  tx_dropped: number;
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
    const { stack } = await this.net();
    const prep = await stack.prepare({ id: row.id, name: row.name, wall: row.isolation, hostname: spec.hostname }, netRequest(opts, spec.image.config));
    this.netEvents(stack, row.id, 'connect');
    return { spec: { ...spec, network: prep.network, netns: prep.netns, etc: prep.etc, heldFds: prep.heldFds }, prep };
  }

  /** docker's network connect/disconnect events as a container's run joins or leaves its networks. */
  private netEvents(stack: NetworkStack, id: string, action: 'connect' | 'disconnect'): void {
    for (const { net } of stack.endpoints(id)) {
      if (net && net.driver === 'bridge') addEvent(this.db, 'network', action, net.id, { container: id, name: net.name, type: net.driver });
    }
  }

  /** What `hull system check` asks of the network stack. */
  private async netCheck(): Promise<{ dir: string; orphans(live: Set<string>): Promise<import('../runtime/types.js').Orphan[]> }> {
    const { stack } = await this.net();
    return { dir: stack.netnsDir, orphans: async (live) => stack.orphans(live) };
  }

  /** Takes the container's network down again (idempotent; nothing to do for none and host). */
  private async netTeardown(id: string): Promise<void> {
    const { stack } = await this.net();
    const wasUp = stack.sandboxPath(id) !== undefined;
    await stack.teardown(id);
    if (wasUp) this.netEvents(stack, id, 'disconnect');
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
    // a --device must name a device node on this host now, before anything is recorded
    for (const d of asked.devices ?? []) resolveDevice(parseDevice(d));
    // stored with its network mode: containers stored before networks existed had none
    const opts: RunOptions = { ...asked, network: asked.network ?? 'bridge' };
    const img = await this.image(opts.image, opts.platform, progress);
    const lowerDirs = await this.images.lowerDirs(img);
    const id = newContainerId();
    const dir = path.join(layout(this.root).containers, id);
    // volumes: image VOLUMEs become anonymous volumes; each volume mount a bind of its directory
    const plan = this.vols.plan(opts.mounts ?? [], Object.keys(img.config.config?.Volumes ?? {}));
    for (let attempt = 0; ; attempt++) {
      const name = opts.name ?? randomName();
      const spec = buildInstanceSpec({ ...opts, mounts: plan.mounts }, { id: img.id, config: img.config, lowerDirs }, { id, name, dir, hostHostname: os.hostname() });
      const stored: StoredSpec = { opts, spec: { ...spec, image: { ...spec.image, lowerDirs: [] } } };
      let made: string[];
      try {
        // the row, its volumes' uses and its --userns=auto range in one transaction: a volume in
        // use is never removed, and no other create sees the range free
        made = this.db
          .transaction(() => {
            this.rows.insert({
              id, name, image_id: img.id, image_ref: opts.image, isolation: opts.isolation ?? 'container', runtime: spec.runtime,
              status: 'created', spec_json: JSON.stringify(stored), created_at: nowIso(),
            });
            if (spec.usernsMode === 'auto') {
              spec.userns = new UsernsRanges(this.db).allocate(id);
              stored.spec.userns = spec.userns;
              this.rows.setSpecJson(id, JSON.stringify(stored));
            }
            return this.vols.attach(id, plan.uses);
          })
          .immediate();
      } catch (e) {
        if (opts.name === undefined && isHullError(e, 'CONFLICT') && attempt < 5) continue;
        throw e;
      }
      try {
        await (await this.net()).stack.configure({ id, name, wall: opts.isolation ?? 'container', hostname: spec.hostname }, netRequest(opts, img.config));
        await this.vols.populate(plan.uses, lowerDirs);
        // --userns=auto: a volume this create made belongs to the container's root (its range)
        if (spec.userns) for (const u of plan.uses.filter((x) => made.includes(x.name))) this.vols.shiftOwners(u.name, spec.userns);
      } catch (e) {
        // nothing half-made: no row without its network, no volume this create made
        await (await this.net()).stack.teardown(id).catch(() => undefined);
        this.rows.delete(id);
        this.vols.removeUnused(made);
        throw e;
      }
      addEvent(this.db, 'container', 'create', id, this.attrs({ name, image_ref: opts.image, spec_json: JSON.stringify(stored) }));
      return { id, name, spec };
    }
  }

  // ---------------------------------------------------------------- volumes (src/volumes)

  private volsCache?: EngineVolumes;
  private get vols(): EngineVolumes {
    this.volsCache ??= new EngineVolumes(new VolumeStore(this.db, this.root), this.root);
    return this.volsCache;
  }

  /** `volume create/ls/inspect/rm/prune`: the root's volume store. */
  get volumes(): VolumeStore {
    return this.vols.store;
  }

  /**
   * docker's event attributes of a container: its labels (image's and its own), image and name,
   * then `extra` (exitCode, signal, ...).
   */
  private attrs(row: Pick<ContainerRow, 'name' | 'image_ref' | 'spec_json'>, extra: Record<string, string> = {}): Record<string, string> {
    const { opts, spec } = JSON.parse(row.spec_json) as StoredSpec;
    return { ...(spec.image.config.config?.Labels ?? {}), ...(opts.labels ?? {}), image: row.image_ref, name: row.name, ...extra };
  }

  /** The spec of a stored container's current run with its image's layer directories filled in. */
  private async liveSpec(row: ContainerRow): Promise<InstanceSpec> {
    const spec = this.runSpec(row);
    const img = this.images.record(row.image_id);
    if (!img) throw precondition(`the image ${row.image_id} of container ${row.name} is gone`);
    for (const m of spec.mounts) if (m.volume) this.vols.store.ensureDir(m.volume);
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
      addEvent(this.db, 'container', 'start', row.id, this.attrs(row, { run: String(run) }));
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
        addEvent(this.db, 'container', 'die', id, this.attrs(cur, { exitCode: String(exit.exitCode), oomKilled: String(exit.oomKilled), run: String(run) }));
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
    // the captured layer must carry the image's own ids: never a --userns=auto range (HULL_USERNS_DEFAULT)
    const { id, name } = await this.create({ ...opts, rm: false, userns: 'host' }, io.stderr);
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
      // with its anonymous volumes (an image's VOLUMEs): what a step writes there is not in its layer, as in docker
      await this.rm(id, { force: true, volumes: true }).catch((e: unknown) => {
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
      addEvent(this.db, 'container', 'die', row.id, this.attrs(row, { exitCode: String(exit.exitCode), oomKilled: String(exit.oomKilled), run: String(row.run) }));
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
      addEvent(this.db, 'container', 'stop', row.id, this.attrs(row));
      await this.settle(this.rows.get(id) ?? row);
    });
  }

  /** Stop the row's run and wait until its end is recorded by the monitor (lease held). */
  private async stopLocked(row: ContainerRow, timeoutSec: number): Promise<void> {
    const facts = this.facts(row);
    if (facts.bootId !== undefined && facts.bootId !== bootId()) return; // nothing of it runs
    const iso = await this.wall(row.isolation);
    // a frozen process cannot take its stop signal (nor die of SIGKILL): thaw it first
    if (row.status === 'paused') await this.thaw(row);
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
      // a paused VM's agent cannot take a signal; a frozen container dies of SIGKILL only once thawed
      if (row.status === 'paused' && row.isolation === 'vm') await this.thaw(row);
      await iso.kill(this.runSpec(row), signal);
      if (row.status === 'paused' && /^(SIG)?KILL$|^9$/i.test(signal)) await this.thaw(row);
      addEvent(this.db, 'container', 'kill', row.id, this.attrs(row, { signal }));
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
    let first: ContainerRow;
    try {
      first = this.rows.resolve(ref);
    } catch (e) {
      // an --rm container that ended and went before the wait began (`run -d --rm` of a short
      // command, then `wait ID`): its 'die' event answers, by its full id (a name or prefix may
      // belong to another container by now)
      const die = /^[0-9a-f]{64}$/.test(ref) ? this.removedExit(ref) : undefined;
      if (die) return die;
      throw e;
    }
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

  /**
   * docker rm: a running container needs `force` (then it is killed first); `volumes` (-v) also
   * removes its anonymous volumes (an --rm container's always go with it).
   */
  async rm(ref: string, opts: { force?: boolean; volumes?: boolean } = {}): Promise<string> {
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
      await this.removeLocked(this.rows.get(id) ?? row, { volumes: opts.volumes });
    });
    return id;
  }

  /**
   * Remove a container that no longer runs (lease held): 'removing' first, so a monitor's late
   * exit hook leaves it alone; the wall then takes away everything (monitor, runtime state,
   * mounts, cgroup, files); the row goes last. A wall that fails leaves the row 'dead'.
   */
  private async removeLocked(row: ContainerRow, o: { volumes?: boolean } = {}): Promise<void> {
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
    const anonymous = (o.volumes || this.stored(row).opts.rm) ? this.vols.anonymousOf(row.id) : [];
    if (this.rows.delete(row.id)) addEvent(this.db, 'container', 'destroy', row.id, this.attrs(row));
    this.vols.removeUnused(anonymous); // its uses went with the row (ON DELETE CASCADE)
  }

  /** docker restart: stop (with timeout) then start, as one transition. */
  async restart(ref: string, timeoutSec = 10): Promise<void> {
    const id = this.rows.resolve(ref).id;
    await this.locked(id, async (row) => {
      row = await this.settle(row, { autoRemove: false });
      admit('restart', row);
      if (isLive(row.status)) {
        await this.stopLocked(row, timeoutSec);
        addEvent(this.db, 'container', 'stop', row.id, this.attrs(row));
        row = await this.settle(this.rows.get(id) ?? row, { autoRemove: false });
      }
      this.rows.incrementRestarts(row.id);
      await this.startLocked(this.rows.get(id)!);
      addEvent(this.db, 'container', 'restart', row.id, this.attrs(row));
    });
  }

  /** docker pause: the cgroup freezer (containers) or QMP stop (VMs). */
  async pause(ref: string): Promise<void> {
    const id = this.rows.resolve(ref).id;
    await this.locked(id, async (row) => {
      row = await this.settle(row);
      admit('pause', row);
      const iso = await this.wall(row.isolation);
      if (!iso.pause) throw precondition(`the ${row.isolation} wall cannot pause`);
      await iso.pause(this.runSpec(row));
      this.rows.setStatus(id, 'paused', row.error);
      addEvent(this.db, 'container', 'pause', id, this.attrs(row));
    });
  }

  /** docker unpause. */
  async unpause(ref: string): Promise<void> {
    const id = this.rows.resolve(ref).id;
    await this.locked(id, async (row) => {
      row = await this.settle(row);
      admit('unpause', row);
      await this.thaw(row);
      addEvent(this.db, 'container', 'unpause', id, this.attrs(row));
    });
  }

  /** A paused row's instance runs again and the row says running (lease held). */
  private async thaw(row: ContainerRow): Promise<void> {
    const iso = await this.wall(row.isolation);
    await iso.unpause?.(this.runSpec(row));
    if (this.rows.get(row.id)?.status === 'paused') this.rows.setStatus(row.id, 'running', row.error);
  }

  /**
   * docker update: new memory, memory+swap, CPU and pids limits, stored for every later start
   * and applied at once to a running container (its runtime writes the cgroup). A running VM's
   * guest RAM and vCPUs are fixed at boot: refused while it runs, taken at its next boot.
   */
  async update(ref: string, u: UpdateOptions): Promise<void> {
    const id = this.rows.resolve(ref).id;
    await this.locked(id, async (row) => {
      row = await this.settle(row);
      if (row.status === 'removing' || row.status === 'dead') throw conflict(`Container ${id} is marked for removal and cannot be updated`);
      const stored = this.stored(row);
      const opts: RunOptions = { ...stored.opts };
      if (u.memoryBytes !== undefined) opts.memoryBytes = u.memoryBytes;
      if (u.memorySwapBytes !== undefined) opts.memorySwapBytes = u.memorySwapBytes;
      else if (u.memoryBytes !== undefined && opts.memorySwapBytes !== undefined && opts.memorySwapBytes !== -1 && opts.memorySwapBytes < u.memoryBytes) {
        throw invalid('Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time');
      }
      if (u.nanoCpus !== undefined) opts.nanoCpus = u.nanoCpus;
      if (u.pidsLimit !== undefined) opts.pidsLimit = u.pidsLimit;
      validateRunOptions(opts);
      const resources = {
        ...stored.spec.resources,
        memoryBytes: opts.memoryBytes || undefined,
        memorySwapBytes: opts.memorySwapBytes,
        nanoCpus: opts.nanoCpus || undefined,
        pidsLimit: opts.pidsLimit && opts.pidsLimit > 0 ? opts.pidsLimit : opts.pidsLimit === -1 || opts.pidsLimit === 0 ? -1 : undefined,
      };
      const iso = await this.wall(row.isolation);
      if (isLive(row.status)) {
        if (!iso.update) {
          if (u.memoryBytes !== undefined || u.memorySwapBytes !== undefined || u.nanoCpus !== undefined || u.pidsLimit !== undefined) {
            throw precondition(`Container ${row.name} runs in a microVM: its memory and vCPUs are fixed at boot (no hotplug). Stop it, update it and start it again`);
          }
        } else await iso.update({ ...this.runSpec(row), resources });
      }
      this.rows.setSpec(id, JSON.stringify({ opts, spec: { ...stored.spec, resources } } satisfies StoredSpec));
      addEvent(this.db, 'container', 'update', id, this.attrs(row));
    });
  }

  /** docker rename: the new name answers on the container's networks at once. */
  async rename(ref: string, name: string): Promise<void> {
    validateRunOptions({ image: 'x', name });
    const id = this.rows.resolve(ref).id;
    await this.locked(id, async (row) => {
      if (row.name === name) throw conflict(`Renaming a container with the same name as its current name`);
      if (row.status === 'removing' || row.status === 'dead') throw conflict(`Container ${id} is marked for removal and cannot be renamed`);
      this.rows.rename(id, name);
      await (await this.net()).stack.rename(id, row.name, name);
      addEvent(this.db, 'container', 'rename', id, this.attrs({ ...row, name }, { oldName: `/${row.name}` }));
    });
  }

  /**
   * docker top: a container's processes from the host's `ps` (its cgroup's pids), a VM's from
   * `ps` inside the guest. `psArgs` as docker's ps_args (default -ef; a guest's ps gets only
   * what was asked for).
   */
  async top(ref: string, psArgs?: string): Promise<import('./top.js').TopResult> {
    const { psArgv, parsePs, guestNoise } = await import('./top.js');
    const argv = psArgv(psArgs);
    const row = await this.fresh(this.rows.resolve(ref));
    if (!isLive(row.status)) throw conflict(`Container ${row.id} is not running`);
    const iso = await this.wall(row.isolation);
    if (iso.processes) {
      const pids = new Set(await iso.processes(this.runSpec(row)));
      const { execFile } = await import('node:child_process');
      const out = await new Promise<string>((resolve, reject) =>
        execFile('ps', argv, { maxBuffer: 16 << 20 }, (e, stdout, stderr) => (e ? reject(invalid(`ps ${argv.join(' ')}: ${stderr.trim() || e.message}`)) : resolve(stdout))),
      );
      return parsePs(out, (pid) => pids.has(pid));
    }
    if (row.status === 'paused') throw conflict(`Container ${row.id} is paused: a VM's processes are listed by its guest, unpause it first`);
    const guestArgv = psArgs === undefined ? [] : argv;
    const { PassThrough } = await import('node:stream');
    const out = new PassThrough();
    const err = new PassThrough();
    let text = '';
    let errText = '';
    out.setEncoding('utf8').on('data', (d: string) => (text += d));
    err.setEncoding('utf8').on('data', (d: string) => (errText += d));
    const code = await this.exec(row.id, { cmd: ['ps', ...guestArgv] }, { stdout: out, stderr: err });
    if (code !== 0) throw invalid(`ps ${guestArgv.join(' ')} in the VM exited ${code}: ${errText.trim()}`);
    return parsePs(text, (_pid, fields, titles) => !guestNoise(fields, titles, guestArgv));
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
   * (engine/changes.ts). A container's upper dir is read where it is; a running VM's layer is
   * sent by its guest on request (`pause`: its processes stopped while it writes, docker
   * commit's default; a paused VM is thawed for that and paused again) as a copy that
   * `release()` removes; a stopped VM's is the one its guest sent at exit. Call `release()`
   * once done, whatever the wall.
   */
  async layerOf(ref: string, o: { pause?: boolean } = {}): Promise<ContainerLayer> {
    const row = await this.fresh(this.rows.resolve(ref));
    const iso = await this.wall(row.isolation);
    const spec = this.runSpec(row);
    if (!iso.writableLayer) throw precondition(`container ${row.name}: the ${row.isolation} wall keeps no writable layer on the host`);
    const image = this.images.record(row.image_id);
    if (!image) throw precondition(`the image ${row.image_id} of container ${row.name} is gone`);
    let layer: WritableLayer;
    const vmLive = row.isolation === 'vm' && isLive(row.status);
    try {
      if (vmLive && row.status === 'paused') {
        // QMP stopped its vCPUs: the agent cannot answer until they run again
        await this.unpause(row.id);
        try {
          layer = await iso.writableLayer(spec, { running: { freeze: true } });
        } finally {
          await this.pause(row.id).catch(() => undefined);
        }
      } else if (vmLive) {
        layer = await iso.writableLayer(spec, { running: { freeze: o.pause === true } });
      } else if (row.isolation === 'vm') {
        // a stopped VM's tar is unpacked once, under the lease: a start (which drops the last
        // run's layer) never races the unpacking
        layer = await this.locked(row.id, async () => iso.writableLayer!(spec));
      } else {
        layer = await iso.writableLayer(spec);
      }
    } catch (e) {
      if (row.isolation === 'vm' && isHullError(e, 'FAILED_PRECONDITION')) throw precondition(`container ${row.name} runs in a microVM: ${(e as Error).message}`);
      throw e;
    }
    const release = layer.kind === 'upper' && layer.release ? layer.release : () => undefined;
    try {
      const c = (await this.inspect(row.id)).Config as Record<string, unknown>;
      const pick = <K extends keyof ImageRunConfig>(k: K, v: unknown) => (v === undefined || v === null || v === '' ? {} : ({ [k]: v } as Partial<ImageRunConfig>));
      const config: ImageRunConfig = {
        ...pick('User', c.User), ...pick('Env', c.Env), ...pick('Cmd', c.Cmd), ...pick('Entrypoint', c.Entrypoint), ...pick('WorkingDir', c.WorkingDir), ...pick('ExposedPorts', c.ExposedPorts),
      };
      return { id: row.id, name: row.name, layer, lowers: await this.images.lowerDirs(image), image, config, args: spec.process.args, snapshot: vmLive, release };
    } catch (e) {
      release();
      throw e;
    }
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

  /**
   * A running container's network counters per interface (eth0, ...), as the container sees
   * them: read from the host side of each veth (its rx is the container's tx). Both walls: a
   * VM's NIC is mirrored onto the veth in its namespace.
   */
  async networkCounters(ref: string): Promise<Record<string, NetCounters>> {
    const row = this.rows.resolve(ref);
    const out: Record<string, NetCounters> = {};
    for (const { ep } of (await this.net()).stack.endpoints(row.id)) {
      if (!ep.veth) continue;
      const read = (k: string) => {
        try {
          return Number(fs.readFileSync(`/sys/class/net/${ep.veth}/statistics/${k}`, 'utf8').trim()) || 0;
        } catch {
          return 0;
        }
      };
      out[`eth${ep.idx}`] = {
        rx_bytes: read('tx_bytes'), rx_packets: read('tx_packets'), rx_errors: read('tx_errors'), rx_dropped: read('tx_dropped'),
        tx_bytes: read('rx_bytes'), tx_packets: read('rx_packets'), tx_errors: read('rx_errors'), tx_dropped: read('rx_dropped'),
      };
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
   * docker cp's door into an instance's files (archive.ts): `fn` gets an Archive whose tools
   * run inside the instance. A stopped container is worked on under its lease (its overlay is
   * mounted for the tool; a start must not mount it at the same time); a running one without.
   */
  async archive<T>(ref: string, fn: (a: import('./archive.js').Archive, info: { readOnly: boolean; mounts: import('../runtime/types.js').MountSpec[] }) => Promise<T>): Promise<T> {
    const { Archive } = await import('./archive.js');
    const go = async (row: ContainerRow): Promise<T> => {
      const iso = await this.wall(row.isolation);
      if (!iso.inRootfs) throw precondition(`the ${row.isolation} wall cannot copy files`);
      if (row.status === 'paused' && row.isolation === 'vm') throw conflict(`Container ${row.id} is paused: a VM's files are reached through its guest, unpause it first`);
      const spec = await this.liveSpec(row);
      return fn(new Archive((tool, io) => iso.inRootfs!(spec, tool, io), row.name), { readOnly: spec.readOnlyRootfs, mounts: spec.mounts });
    };
    const first = await this.fresh(this.rows.resolve(ref));
    if (isLive(first.status)) return go(first);
    return this.locked(first.id, async (row) => go(await this.settle(row)));
  }

  /** docker system df: images, containers (writable layers), volumes; `only`: some of image/container/volume. */
  async diskUsage(only?: Set<string>): Promise<import('./df.js').DiskUsage> {
    const { diskUsage } = await import('./df.js');
    return diskUsage(
      {
        images: this.images,
        volumes: this.volumes,
        containers: await this.ps({ all: true }),
        writableLayer: async (id) => {
          const row = this.rows.get(id);
          if (!row) return undefined;
          const iso = await this.wall(row.isolation);
          return iso.writableLayer ? iso.writableLayer(this.runSpec(row)) : undefined;
        },
      },
      only,
    );
  }

  /** docker events: past events from `sinceNs`, then new ones until `untilNs` or an abort (events.ts). */
  async events(o: import('./events.js').StreamOptions, emit: (e: import('./events.js').DockerEvent) => void | Promise<void>): Promise<void> {
    const { streamEvents } = await import('./events.js');
    return streamEvents(this.db, this.root, o, emit);
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
        volumes: () => this.volumes.list().map((v) => v.name),
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
