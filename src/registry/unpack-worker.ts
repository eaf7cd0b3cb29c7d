/**
 * Layer unpacking on a worker thread, so that unpacking (tar parsing and hashing run on the
 * JavaScript thread) does not slow the downloads of the other layers. The worker opens the
 * same hull root (its own SQLite handle) and calls ImageStore.ensureLayer, exactly what
 * commitImage would do later; commitImage then finds the layers in place. The thread's code is
 * unpack-thread.ts, run from the compiled output (the CLI bundle starts it by path).
 */
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { HullError, type ErrorCode } from '../errors.js';
import type { ImageLayer } from '../images/store.js';
import { distFile } from '../paths.js';

export interface Job {
  id: number;
  layer: ImageLayer;
  what: string;
}
export type Reply = { id: number; ok: true } | { id: number; ok: false; code?: ErrorCode; message: string };

/**
 * Unpacks layers on up to `threads` worker threads (default: $HULL_UNPACK_THREADS, else 2, or 1
 * on a single CPU), each
 * taking the next queued layer when idle. Different layers are independent directories, so
 * their order does not matter.
 */
export class LayerUnpacker {
  private readonly workers: Array<{ w: Worker; busy: boolean }> = [];
  private readonly queue: Array<Job & { resolve: () => void; reject: (e: unknown) => void }> = [];
  private readonly running = new Map<number, { slot: { w: Worker; busy: boolean }; resolve: () => void; reject: (e: unknown) => void }>();
  private next = 1;
  private dead: Error | undefined;
  private readonly threads: number;

  constructor(
    private readonly root: string,
    threads = Number(process.env.HULL_UNPACK_THREADS) > 0 ? Math.floor(Number(process.env.HULL_UNPACK_THREADS)) : Math.max(1, Math.min(2, os.availableParallelism())),
  ) {
    this.threads = threads;
  }

  private spawn(): { w: Worker; busy: boolean } {
    const w = new Worker(distFile('registry', 'unpack-thread.js'), { workerData: { root: this.root } });
    const slot = { w, busy: false };
    w.on('message', (r: Reply) => {
      const p = this.running.get(r.id);
      if (!p) return;
      this.running.delete(r.id);
      slot.busy = false;
      if (r.ok) p.resolve();
      else p.reject(r.code ? new HullError(r.code, r.message) : new Error(r.message));
      this.pump();
    });
    const fail = (e: Error) => {
      this.dead ??= e;
      for (const p of this.running.values()) p.reject(e);
      this.running.clear();
      for (const q of this.queue.splice(0)) q.reject(e);
    };
    w.on('error', fail);
    w.on('exit', (code) => {
      if (this.running.size > 0 || this.queue.length > 0) fail(new Error(`layer unpack worker exited with code ${code}`));
    });
    this.workers.push(slot);
    return slot;
  }

  private pump(): void {
    while (this.queue.length > 0) {
      let slot = this.workers.find((s) => !s.busy);
      if (!slot && this.workers.length < this.threads) slot = this.spawn();
      if (!slot) return;
      const job = this.queue.shift()!;
      slot.busy = true;
      this.running.set(job.id, { slot, resolve: job.resolve, reject: job.reject });
      slot.w.postMessage({ id: job.id, layer: job.layer, what: job.what } satisfies Job);
    }
  }

  /** Unpack one layer (no-op when already unpacked); resolves when its directory is in place. */
  unpack(layer: ImageLayer, what: string): Promise<void> {
    if (this.dead) return Promise.reject(this.dead);
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ id: this.next++, layer, what, resolve, reject });
      this.pump();
    });
  }

  /** Stop the workers (after every unpack settled, or to abandon them). */
  async close(): Promise<void> {
    const ws = this.workers.splice(0);
    await Promise.all(ws.map((s) => s.w.terminate()));
  }
}
