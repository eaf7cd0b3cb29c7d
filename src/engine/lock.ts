/**
 * One container, one changer at a time: a lease in the container's row (`lock_owner`), taken
 * in an IMMEDIATE transaction, held while an operation moves the container (start, stop, kill,
 * restart, rm, recording an exit) and given back at its end. Any hull process may hold it: the
 * CLI, `hull serve`, an exit hook. A lease whose owner is gone (killed mid-operation; its
 * 'pid:starttime' no longer runs) is taken over, so a SIGKILL never wedges a container; the
 * taker then finds the half-done transition and the engine reconciles it.
 *
 * Inside one process (the API server runs many requests at once) a queue per container comes
 * first, so the process never races itself for its own lease.
 */
import crypto from 'node:crypto';
import { HullError } from '../errors.js';
import type { DB } from '../state/db.js';
import { identityAlive, processIdentity } from '../util/proc.js';
import { dbTarget, Watch } from '../util/watch.js';

/** How long a waiter sleeps between looks when no commit wakes it (a holder that died), ms. */
const STALE_LOOK_MS = 250;

let self: string | undefined;
const held = new Set<string>();
const queues = new Map<string, Promise<void>>();

function selfIdentity(): string {
  self ??= processIdentity(process.pid);
  return self;
}

/** Whether the lease `owner` ('pid:starttime:token') belongs to a holder that still runs. */
function ownerAlive(owner: string): boolean {
  if (owner === '') return false;
  if (owner.startsWith(`${selfIdentity()}:`)) return held.has(owner);
  return identityAlive(owner);
}

export interface Lease {
  readonly owner: string;
  release(): void;
}

type Try = { got: Lease } | { busy: true } | { gone: true };

export class ContainerLocks {
  constructor(private readonly db: DB, private readonly root: string) {}

  private tryTake(id: string, owner: string): Try {
    return this.db
      .transaction((): Try => {
        const row = this.db.prepare('SELECT lock_owner FROM containers WHERE id = ?').get(id) as { lock_owner: string } | undefined;
        if (!row) return { gone: true };
        if (ownerAlive(row.lock_owner)) return { busy: true };
        this.db.prepare('UPDATE containers SET lock_owner = ? WHERE id = ?').run(owner, id);
        held.add(owner);
        return {
          got: {
            owner,
            release: () => {
              held.delete(owner);
              this.db.prepare("UPDATE containers SET lock_owner = '' WHERE id = ? AND lock_owner = ?").run(id, owner);
            },
          },
        };
      })
      .immediate();
  }

  /** The holder of `id`'s lease, if it is alive ('' otherwise). */
  holder(id: string): string {
    const row = this.db.prepare('SELECT lock_owner FROM containers WHERE id = ?').get(id) as { lock_owner: string } | undefined;
    return row && ownerAlive(row.lock_owner) ? row.lock_owner : '';
  }

  /** Take the lease without waiting; undefined when someone else holds it or the row is gone. */
  tryAcquire(id: string): Lease | undefined {
    if (queues.has(id)) return undefined;
    const r = this.tryTake(id, `${selfIdentity()}:${crypto.randomBytes(4).toString('hex')}`);
    return 'got' in r ? r.got : undefined;
  }

  /**
   * Run `fn` holding `id`'s lease; waits for the current holder (woken by the database's
   * commits). `fn` receives false instead of running when the row is gone. Rejects with
   * UNAVAILABLE after `timeoutMs` (default 10 min: a VM start under TCG on a loaded host).
   */
  async with<T>(id: string, fn: (present: boolean) => Promise<T>, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<T> {
    // in-process queue first
    const prev = queues.get(id) ?? Promise.resolve();
    let done!: () => void;
    const mine = new Promise<void>((r) => (done = r));
    const tail = prev.then(() => mine);
    queues.set(id, tail);
    await prev;
    let lease: Lease | undefined;
    try {
      const owner = `${selfIdentity()}:${crypto.randomBytes(4).toString('hex')}`;
      const deadline = Date.now() + (opts.timeoutMs ?? 600_000);
      let watch: Watch | undefined;
      try {
        for (;;) {
          const seen = watch?.seq ?? 0;
          const r = this.tryTake(id, owner);
          if ('gone' in r) return await fn(false);
          if ('got' in r) {
            lease = r.got;
            break;
          }
          if (opts.signal?.aborted) throw new HullError('UNAVAILABLE', 'aborted while waiting for the container');
          if (Date.now() > deadline) throw new HullError('UNAVAILABLE', `container ${id.slice(0, 12)} is busy (another hull process is changing it)`);
          if (!watch) {
            watch = new Watch([dbTarget(this.root)]);
            continue; // look again now that commits are watched
          }
          await watch.after(seen, STALE_LOOK_MS, opts.signal);
        }
      } finally {
        watch?.close();
      }
      return await fn(true);
    } finally {
      lease?.release();
      done();
      if (queues.get(id) === tail) queues.delete(id);
    }
  }
}
