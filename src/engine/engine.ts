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
import { conflict, HullError, isHullError, notFound, precondition } from '../errors.js';
import { ImageStore, type ImageRecord } from '../images/store.js';
import { layout, packageRoot } from '../paths.js';
import { createIsolation } from '../runtime/index.js';
import type { InstanceSpec, Isolation, Usage, Wall, WritableLayer } from '../runtime/types.js';
import { ContainerTables, type ContainerRow } from '../state/containers.js';
import { addEvent, lastEvent, nowIso, type DB } from '../state/db.js';
import { toInspect, toSummary, statusText, type ContainerInspect, type ContainerSummary, type StoredSpec } from './inspect.js';
import { newContainerId, randomName } from './names.js';
import { buildInstanceSpec, validateRunOptions, type RunOptions } from './options.js';

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

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
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

export class Engine {
  readonly root: string;
  private storeCache?: ImageStore;
  private walls = new Map<Wall, Promise<Isolation>>();

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
  async create(opts: RunOptions, progress?: Writable): Promise<{ id: string; name: string; spec: InstanceSpec }> {
    validateRunOptions(opts);
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
      addEvent(this.db, 'container', 'create', id, { name, image: opts.image });
      return { id, name, spec };
    }
  }

  /** The spec of a stored container with its image's layer directories filled in. */
  private async liveSpec(row: ContainerRow): Promise<InstanceSpec> {
    const { spec } = this.stored(row);
    const img = this.images.record(row.image_id);
    if (!img) throw precondition(`the image ${row.image_id} of container ${row.name} is gone`);
    return { ...spec, image: { ...spec.image, lowerDirs: await this.images.lowerDirs(img) } };
  }

  /** docker start: run the container detached under its monitor. No-op when it runs. */
  async start(ref: string): Promise<void> {
    const row = this.rows.resolve(ref);
    if (row.status === 'running') return;
    if (row.status === 'removing') throw precondition(`container ${row.name} is being removed`);
    const spec = await this.liveSpec(row);
    await this.startDetached(row, spec);
  }

  private async startDetached(row: ContainerRow, spec: InstanceSpec): Promise<void> {
    const iso = await this.wall(row.isolation);
    // Running first: an instant exit (exit hook) must find a row it may mark exited.
    this.rows.markRunning(row.id, 0, nowIso(), row.runtime_json);
    try {
      const { pid, facts } = await iso.startDetached(spec);
      this.db.prepare("UPDATE containers SET pid = ?, runtime_json = ? WHERE id = ? AND status = 'running'").run(pid, JSON.stringify(facts ?? {}), row.id);
      addEvent(this.db, 'container', 'start', row.id, { name: row.name });
    } catch (e) {
      await this.failStart(row, spec, iso, e);
      throw e;
    }
  }

  /** A start that failed: record why, release what the wall set up, honour --rm. */
  private async failStart(row: ContainerRow, spec: InstanceSpec, iso: Isolation, e: unknown): Promise<void> {
    const code = e instanceof HullError && 'exitCode' in e ? Number((e as { exitCode: number }).exitCode) : 125;
    this.rows.markExited(row.id, code, false, nowIso(), e instanceof Error ? e.message : String(e));
    if (this.stored(row).opts.rm) {
      await iso.cleanup(spec).catch(() => undefined);
      this.rows.delete(row.id);
    } else if (iso.release) await iso.release(spec).catch(() => undefined);
  }

  /**
   * docker run. Detached: returns once the container runs. Attached with --rm, -i or -t: the
   * runtime runs in the foreground with no monitor (fast path). Attached otherwise: started
   * under the monitor (so the log, exit code and OOM kill are recorded) and followed.
   */
  async run(opts: RunOptions, io: AttachStdio & { detach?: boolean; onStarted?: (id: string) => void }): Promise<RunResult> {
    const { id, name, spec } = await this.create(opts, io.stderr);
    const row = this.rows.get(id)!;
    if (io.detach) {
      await this.startDetached(row, spec);
      return { id, name };
    }
    if (opts.rm || opts.interactive || opts.tty) return this.runForeground(row, spec, opts, io);
    await this.startDetached(row, spec);
    io.onStarted?.(id);
    const ac = new AbortController();
    const following = this.logs(id, { follow: true }, io, ac.signal);
    const exit = await this.wait(id);
    await following;
    return { id, name, exitCode: exit.StatusCode, oomKilled: exit.OOMKilled };
  }

  private async runForeground(row: ContainerRow, spec: InstanceSpec, opts: RunOptions, io: AttachStdio & { onStarted?: (id: string) => void }): Promise<RunResult> {
    const iso = await this.wall(row.isolation);
    let exit;
    try {
      exit = await iso.runAttached(spec, { stdin: io.stdin, stdout: io.stdout, stderr: io.stderr }, (pid) => {
        // This process records the exit itself (no monitor): others must not guess it.
        this.rows.markRunning(row.id, pid, nowIso(), JSON.stringify({ attached: true, ownerPid: process.pid }));
        io.onStarted?.(row.id);
      });
    } catch (e) {
      await this.failStart(row, spec, iso, e);
      throw e;
    }
    if (opts.rm) {
      await iso.cleanup(spec);
      this.rows.delete(row.id);
    } else {
      this.rows.markExited(row.id, exit.exitCode, exit.oomKilled, nowIso(), exit.error ?? '');
    }
    return { id: row.id, name: row.name, exitCode: exit.exitCode, oomKilled: exit.oomKilled, error: exit.error || undefined };
  }

  /**
   * A build step (or any run whose changes are wanted): `opts` runs in the foreground like
   * `run --rm` (no monitor, output to `io`), with the wall told to keep the writable layer; once
   * the process has exited, `use` gets the exit and, after a zero exit, that layer. The container
   * is removed afterwards whatever happened (a failed step leaves no container behind). A start
   * failure (command not found, ...) is thrown as `run` throws it.
   */
  async runStep<T>(opts: RunOptions, io: AttachStdio & { onCreated?: (id: string) => void }, use: (exit: RunResult, layer: WritableLayer | undefined) => Promise<T>): Promise<T> {
    const created = await this.create({ ...opts, rm: false }, io.stderr);
    const spec: InstanceSpec = { ...created.spec, captureLayer: true };
    try {
      io.onCreated?.(created.id);
      const row = this.rows.get(created.id)!;
      const iso = await this.wall(row.isolation);
      const exit = await iso.runAttached(spec, { stdin: null, stdout: io.stdout, stderr: io.stderr }, (pid) => {
        this.rows.markRunning(row.id, pid, nowIso(), JSON.stringify({ attached: true, ownerPid: process.pid }));
      });
      this.rows.markExited(row.id, exit.exitCode, exit.oomKilled, nowIso(), exit.error ?? '');
      const layer = exit.exitCode === 0 && !exit.error && iso.writableLayer ? await iso.writableLayer(spec) : undefined;
      return await use({ id: row.id, name: row.name, exitCode: exit.exitCode, oomKilled: exit.oomKilled, error: exit.error || undefined }, layer);
    } finally {
      await this.remove(created.id);
    }
  }

  // ---------------------------------------------------------------- exit bookkeeping

  /**
   * Record the exit of a container whose process ended (called by the monitor's exit hook, and
   * by any later call that notices first). Reads the exit code and OOM state before the wall
   * releases the cgroup; removes --rm containers. Idempotent.
   */
  async finalizeExit(id: string): Promise<ContainerRow | undefined> {
    const row = this.rows.get(id);
    if (!row || row.status !== 'running') return row;
    const facts = JSON.parse(row.runtime_json || '{}') as { attached?: boolean; ownerPid?: number };
    if (facts.attached && facts.ownerPid && facts.ownerPid !== process.pid && processAlive(facts.ownerPid)) return row;
    const iso = await this.wall(row.isolation);
    const { spec } = this.stored(row);
    const st = await iso.state(spec);
    if (st.running) return row;
    if (this.rows.markExited(id, st.exit.exitCode, st.exit.oomKilled, nowIso(), st.exit.error ?? '')) {
      addEvent(this.db, 'container', 'die', id, { exitCode: String(st.exit.exitCode), oomKilled: String(st.exit.oomKilled) });
    }
    if (iso.release) await iso.release(spec);
    if (this.stored(row).opts.rm) await this.remove(id);
    return this.rows.get(id);
  }

  /** Rows, with running ones whose process ended brought up to date. */
  private async fresh(row: ContainerRow): Promise<ContainerRow> {
    if (row.status !== 'running' || row.pid === 0) return row;
    return (await this.finalizeExit(row.id)) ?? { ...row, status: 'exited' };
  }

  // ---------------------------------------------------------------- stop / kill / wait / rm

  /** docker stop: stop signal, then SIGKILL after `timeoutSec` (default 10). No-op when stopped. */
  async stop(ref: string, timeoutSec = 10): Promise<void> {
    const row = await this.fresh(this.rows.resolve(ref));
    if (row.status !== 'running') return;
    const iso = await this.wall(row.isolation);
    await iso.stop(this.stored(row).spec, timeoutSec);
    addEvent(this.db, 'container', 'stop', row.id, { name: row.name });
    await this.finalizeExit(row.id);
  }

  /** docker kill: FAILED_PRECONDITION when the container is not running. */
  async kill(ref: string, signal = 'SIGKILL'): Promise<void> {
    const row = await this.fresh(this.rows.resolve(ref));
    if (row.status !== 'running') throw precondition(`Container ${row.id} is not running`);
    const iso = await this.wall(row.isolation);
    await iso.kill(this.stored(row).spec, signal);
    addEvent(this.db, 'container', 'kill', row.id, { name: row.name, signal });
  }

  /** The exit of a container that is gone (an --rm one), from its last 'die' event. */
  private removedExit(id: string): { StatusCode: number; OOMKilled: boolean } | undefined {
    const die = lastEvent(this.db, 'container', 'die', id);
    return die?.exitCode !== undefined ? { StatusCode: Number(die.exitCode), OOMKilled: die.oomKilled === 'true' } : undefined;
  }

  /** docker wait: resolves with the exit code once the container is not running. */
  async wait(ref: string, signal?: AbortSignal): Promise<{ StatusCode: number; OOMKilled: boolean }> {
    let row = this.rows.resolve(ref);
    const iso = await this.wall(row.isolation);
    const { spec } = this.stored(row);
    for (;;) {
      if (signal?.aborted) throw new HullError('UNAVAILABLE', 'wait aborted');
      // docker waits for a created container to run and stop, too
      if (row.status === 'exited' || row.status === 'dead') return { StatusCode: row.exit_code ?? 0, OOMKilled: row.oom_killed === 1 };
      if (row.pid !== 0) {
        const st = await iso.state(spec);
        if (!st.running) {
          const after = await this.finalizeExit(row.id);
          if (after && after.status !== 'running') return { StatusCode: after.exit_code ?? st.exit.exitCode, OOMKilled: after.oom_killed === 1 };
          const die = after ? undefined : this.removedExit(row.id);
          return die ?? { StatusCode: st.exit.exitCode, OOMKilled: st.exit.oomKilled };
        }
      }
      await sleep(100);
      const next = this.rows.get(row.id);
      if (!next) {
        // Removed (an --rm container's exit hook ran between two looks): its 'die' event keeps
        // the exit, as docker's wait reports it for an auto-removed container.
        const die = this.removedExit(row.id);
        if (die) return die;
        const st = await iso.state(spec);
        return st.running ? { StatusCode: 255, OOMKilled: false } : { StatusCode: st.exit.exitCode, OOMKilled: st.exit.oomKilled };
      }
      row = next;
    }
  }

  /** docker rm: a running container needs `force` (then it is killed first). */
  async rm(ref: string, opts: { force?: boolean } = {}): Promise<string> {
    let row = this.rows.resolve(ref);
    row = await this.fresh(row);
    if (row.status === 'running') {
      if (!opts.force) {
        throw conflict(`You cannot remove a running container ${row.id}. Stop the container before attempting removal or force remove`);
      }
      const iso = await this.wall(row.isolation);
      await iso.stop(this.stored(row).spec, 0).catch(() => undefined);
      await this.finalizeExit(row.id);
    }
    if (this.rows.get(row.id)) await this.remove(row.id);
    return row.id;
  }

  private async remove(id: string): Promise<void> {
    const row = this.rows.get(id);
    if (!row) return;
    this.rows.setStatus(id, 'removing', row.error);
    const iso = await this.wall(row.isolation);
    await iso.cleanup(this.stored(row).spec);
    if (this.rows.delete(id)) addEvent(this.db, 'container', 'destroy', id, { name: row.name });
  }

  /** docker restart: stop (with timeout) then start. */
  async restart(ref: string, timeoutSec = 10): Promise<void> {
    const row = this.rows.resolve(ref);
    await this.stop(row.id, timeoutSec);
    this.rows.incrementRestarts(row.id);
    await this.start(row.id);
  }

  /** docker container prune: remove every container that is not running. */
  async prune(): Promise<{ deleted: string[] }> {
    const deleted: string[] = [];
    for (const r of this.rows.list(true)) {
      const row = await this.fresh(r);
      if (row.status === 'running') continue;
      await this.remove(row.id);
      deleted.push(row.id);
    }
    return { deleted };
  }

  // ---------------------------------------------------------------- exec / logs / views

  /** docker exec: run another process in a running container; resolves with its exit code. */
  async exec(ref: string, o: ExecOptions, io: AttachStdio): Promise<number> {
    const row = await this.fresh(this.rows.resolve(ref));
    if (row.status !== 'running') throw conflict(`Container ${row.id} is not running`);
    if (o.workdir !== undefined && o.workdir !== '' && !o.workdir.startsWith('/')) throw new HullError('INVALID_ARGUMENT', `the working directory '${o.workdir}' is invalid, it needs to be an absolute path`);
    const iso = await this.wall(row.isolation);
    return iso.exec(await this.liveSpec(row), { args: o.cmd, env: o.env ?? [], cwd: o.workdir, user: o.user, terminal: o.tty ?? false, stdin: o.interactive ?? false }, io);
  }

  /** docker logs, from the k8s-file log the monitor writes. `follow` ends when the container stops. */
  async logs(ref: string, o: LogsOptions, io: { stdout: Writable; stderr: Writable }, signal?: AbortSignal): Promise<void> {
    const { readFrom, parseLogLines, tailRecords, writeRecords } = await import('./logs.js');
    const row = this.rows.resolve(ref);
    const file = path.join(this.stored(row).spec.dir, 'ctr.log');
    let { text, offset } = readFrom(file, 0);
    writeRecords(tailRecords(parseLogLines(text), o.tail ?? -1), io, o.timestamps ?? false);
    if (!o.follow) return;
    const stop = o.signal ?? signal;
    for (;;) {
      if (stop?.aborted) return;
      const cur = this.rows.get(row.id);
      let running = cur?.status === 'running';
      if (running && cur && cur.pid !== 0) running = (await (await this.wall(cur.isolation)).state(this.stored(cur).spec)).running;
      ({ text, offset } = readFrom(file, offset));
      if (text) writeRecords(parseLogLines(text), io, o.timestamps ?? false);
      if (!running && cur?.status !== 'created') {
        // The monitor may still be flushing the last lines.
        await sleep(50);
        ({ text, offset } = readFrom(file, offset));
        if (text) writeRecords(parseLogLines(text), io, o.timestamps ?? false);
        return;
      }
      await sleep(100);
    }
  }

  async inspect(ref: string): Promise<ContainerInspect> {
    const row = await this.fresh(this.rows.resolve(ref));
    const stored = this.stored(row);
    return toInspect(row, stored, path.join(stored.spec.dir, 'ctr.log'));
  }

  /** docker ps: running containers, or all with `all`. */
  async ps(o: { all?: boolean } = {}): Promise<ContainerSummary[]> {
    const out: ContainerSummary[] = [];
    for (const r of this.rows.list(true)) {
      const row = await this.fresh(r);
      if (!o.all && row.status !== 'running') continue;
      if (!this.rows.get(row.id)) continue;
      out.push(toSummary(row, this.stored(row), statusText(row)));
    }
    return out;
  }

  /** Resource usage of running containers, CPU % over `sampleMs` (default 500). */
  async stats(refs: string[] = [], sampleMs = 500): Promise<StatsEntry[]> {
    const rows = refs.length ? refs.map((r) => this.rows.resolve(r)) : this.rows.list(false);
    const live = [];
    for (const r of rows) {
      const row = await this.fresh(r);
      if (row.status !== 'running') continue;
      const iso = await this.wall(row.isolation);
      live.push({ row, iso, spec: this.stored(row).spec, first: await iso.usage(this.stored(row).spec) });
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

  /** Close the database (long-running callers that are done with this root). */
  close(): void {
    this.storeCache?.db.close();
    this.storeCache = undefined;
  }
}
