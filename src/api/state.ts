/**
 * The server's own bookkeeping over the engine: one exit watcher per running container (shared
 * by every wait, attach and auto-remove), start/exit/removed notifications, attach streams in
 * flight, exec instances, and docker's AutoRemove (done here, after attached clients have read
 * the last output, so that a fast `echo hello` is never lost to an early removal).
 *
 * AutoRemove is recorded on disk (<root>/api/autoremove/<id>) so that a restarted server
 * removes containers that exited while it was down.
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import type { Engine } from '../engine/engine.js';
import { isHullError } from '../errors.js';

export interface ExitResult {
  StatusCode: number;
  OOMKilled: boolean;
  Error?: string;
}


export class ApiState {
  readonly events = new EventEmitter();
  private exits = new Map<string, Promise<ExitResult>>();
  private attached = new Map<string, number>();
  private readonly arDir: string;
  private closed = false;
  /** HostConfig.ConsoleSize [rows, cols] of created TTY containers, applied at their start. */
  readonly consoleSizes = new Map<string, [number, number]>();
  /** Aborted by close(): ends every wait loop, so the server process can exit. */
  private readonly life = new AbortController();

  constructor(readonly engine: Engine, root: string) {
    this.events.setMaxListeners(0);
    this.arDir = path.join(root, 'api', 'autoremove');
  }

  // ------------------------------------------------------------- auto-remove flags

  setAutoRemove(id: string): void {
    fs.mkdirSync(this.arDir, { recursive: true, mode: 0o700 });
    fs.writeFileSync(path.join(this.arDir, id), '');
  }

  autoRemove(id: string): boolean {
    return fs.existsSync(path.join(this.arDir, id));
  }

  private clearAutoRemove(id: string): void {
    fs.rmSync(path.join(this.arDir, id), { force: true });
  }

  /**
   * After a (re)start of the server: remove AutoRemove containers that exited meanwhile, and
   * watch the ones still running. Flags of containers that no longer exist are dropped.
   */
  async recover(): Promise<void> {
    let ids: string[] = [];
    try {
      ids = fs.readdirSync(this.arDir);
    } catch {
      return;
    }
    for (const id of ids) {
      try {
        const c = await this.engine.inspect(id);
        if (c.State.Running) this.watchExit(id);
        else if (c.State.Status !== 'created') await this.removeNow(id);
      } catch (e) {
        if (isHullError(e, 'NOT_FOUND')) this.clearAutoRemove(id);
      }
    }
  }

  // ------------------------------------------------------------- attach bookkeeping

  /** An attach stream of `id` began; returns the function to call when it ended. */
  attachBegin(id: string): () => void {
    this.attached.set(id, (this.attached.get(id) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const n = (this.attached.get(id) ?? 1) - 1;
      if (n <= 0) this.attached.delete(id);
      else this.attached.set(id, n);
      this.events.emit(`detached:${id}`);
    };
  }

  private async attachDrained(id: string, maxMs = 10_000): Promise<void> {
    const t0 = Date.now();
    while ((this.attached.get(id) ?? 0) > 0 && Date.now() - t0 < maxMs) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 500);
        this.events.once(`detached:${id}`, () => (clearTimeout(t), resolve()));
      });
    }
  }

  // ------------------------------------------------------------- start / exit / removal

  /** The server started `id`: tell next-exit waiters and watch for its exit. */
  started(id: string): void {
    this.events.emit(`start:${id}`);
    this.watchExit(id);
  }

  /**
   * The exit of the current run of `id` (shared by all callers). Resolves once the engine
   * recorded the exit; then removes AutoRemove containers once attached clients are done.
   */
  watchExit(id: string): Promise<ExitResult> {
    let p = this.exits.get(id);
    if (p) return p;
    p = (async (): Promise<ExitResult> => {
      try {
        // delivered by the engine: the monitor's exit file (inotify), not a poll
        const r = await this.engine.wait(id, this.life.signal);
        return { StatusCode: r.StatusCode, OOMKilled: r.OOMKilled };
      } catch (e) {
        if (isHullError(e, 'NOT_FOUND')) return { StatusCode: 0, OOMKilled: false, Error: (e as Error).message };
        return { StatusCode: 255, OOMKilled: false, Error: (e as Error).message };
      }
    })();
    this.exits.set(id, p);
    void p.then(async (r) => {
      this.exits.delete(id);
      if (this.closed) return;
      this.events.emit(`exit:${id}`, r);
      if (this.autoRemove(id) && !this.closed) {
        await this.attachDrained(id);
        await this.removeNow(id);
      }
    }).catch((e: unknown) => {
      process.stderr.write(`hull serve: after the exit of ${id.slice(0, 12)}: ${(e as Error).message}\n`);
    });
    return p;
  }

  private async removeNow(id: string): Promise<void> {
    try {
      await this.engine.rm(id, { force: true, volumes: true });
    } catch (e) {
      if (!isHullError(e, 'NOT_FOUND')) {
        process.stderr.write(`hull serve: auto-remove of ${id.slice(0, 12)} failed: ${(e as Error).message}\n`);
      }
    }
    this.clearAutoRemove(id);
    this.events.emit(`removed:${id}`);
  }

  /** Removal by a client (DELETE /containers/{id}). */
  removed(id: string): void {
    this.consoleSizes.delete(id);
    this.clearAutoRemove(id);
    this.events.emit(`removed:${id}`);
  }

  /**
   * Resolves when the container's next run has ended: now if it runs, else after its next
   * start (by this server, or by another hull process: seen in the state database).
   */
  async nextExit(id: string, signal: AbortSignal): Promise<ExitResult> {
    const first = await this.engine.inspect(id);
    if (first.State.Running) return this.watchExit(id);
    const run = (await this.engine.waitRow(first.Id, () => true))?.run ?? 0;
    const ac = new AbortController();
    const both = AbortSignal.any([signal, this.life.signal, ac.signal]);
    const onStart = () => ac.abort();
    this.events.once(`start:${first.Id}`, onStart);
    try {
      await this.engine.waitRow(first.Id, (r) => !r || r.run !== run || r.status === 'running', both);
    } catch {
      if (!ac.signal.aborted) throw new Error('aborted'); // a start by this server ends the wait too
    } finally {
      this.events.off(`start:${first.Id}`, onStart);
      ac.abort();
    }
    return this.watchExit(first.Id);
  }

  /** Resolves once the container no longer exists. */
  async gone(id: string, signal: AbortSignal): Promise<void> {
    try {
      await this.engine.waitRow(id, (r) => r === undefined, AbortSignal.any([signal, this.life.signal]));
    } catch {
      throw new Error('aborted');
    }
  }

  /** How many watchers and attach streams are in flight (for /_hull/state and leak checks). */
  counts(): { exitWatchers: number; attachedContainers: number; listeners: number } {
    return { exitWatchers: this.exits.size, attachedContainers: this.attached.size, listeners: this.events.eventNames().length };
  }

  /** Stop auto-removing (the server is shutting down; running containers keep running). */
  close(): void {
    this.closed = true;
    this.life.abort();
  }
}

