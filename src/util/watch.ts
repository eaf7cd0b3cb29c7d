/**
 * Change notification over inotify (node's fs.watch), for waiting on things other processes
 * do: a monitor writing an exit file, a log growing, another hull process committing to the
 * state database. A Watch counts every event on its paths; `after(seen)` resolves once the
 * count has moved past `seen` (or a timeout, or an abort), so a caller reads `seq`, looks at the
 * state, and then waits without a window in which an event could be missed.
 */
import fs from 'node:fs';
import path from 'node:path';

export class Watch {
  private watchers: fs.FSWatcher[] = [];
  private wakers = new Set<() => void>();
  /** Number of events seen so far. */
  seq = 0;

  /**
   * @param targets directories or files to watch; ones that do not exist (yet) are skipped.
   *   `filter` limits a directory's events to names for which it returns true.
   */
  constructor(targets: { path: string; filter?: (name: string) => boolean }[]) {
    for (const t of targets) this.add(t.path, t.filter);
  }

  /** Watch one more path (false when it does not exist). */
  add(p: string, filter?: (name: string) => boolean): boolean {
    try {
      const w = fs.watch(p, { persistent: false }, (_ev, name) => {
        if (filter && !(name !== null && filter(String(name)))) return;
        this.bump();
      });
      w.on('error', () => undefined);
      this.watchers.push(w);
      return true;
    } catch {
      return false;
    }
  }

  /** Count an event by hand (e.g. an in-process notification). */
  bump(): void {
    this.seq++;
    for (const w of [...this.wakers]) w();
  }

  /** Resolves once an event after `seen` arrived, or after `timeoutMs`, or on abort. */
  after(seen: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.seq !== seen || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.wakers.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, timeoutMs);
      this.wakers.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  close(): void {
    for (const w of this.watchers) w.close();
    this.watchers = [];
    for (const w of [...this.wakers]) w();
  }
}

/** A Watch target for every commit to the state database of `root` (its WAL file changes). */
export function dbTarget(root: string): { path: string; filter: (name: string) => boolean } {
  return { path: root, filter: (n) => n.startsWith('hull.db') };
}

/** A target for a file: its directory, filtered to its name (the file may not exist yet). */
export function fileTarget(file: string): { path: string; filter: (name: string) => boolean } {
  const base = path.basename(file);
  return { path: path.dirname(file), filter: (n) => n === base };
}
