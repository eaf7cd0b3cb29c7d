/**
 * The id range allocator for `--userns=auto`: hull owns a pool of host uids/gids (start, size
 * per container, count of slots) and gives each such container the lowest free slot, recorded in
 * the state DB (table userns_ranges, UNIQUE slot) in the same transaction as the container's
 * row, so two containers of a root never share a range; the slot is free again when the row goes.
 */
import { invalid, unavailable } from '../errors.js';
import type { DB } from './db.js';

/** A container's ids on the host: container ids 0..size-1 are host uid.. and gid... */
export interface IdRange {
  uid: number;
  gid: number;
  size: number;
}

export interface UsernsPool {
  /** First host id of the pool (uids and gids alike). Default 1_000_000_000 (HULL_USERNS_START). */
  start: number;
  /** Ids per container. Default 65536 (every id an image may use, nobody = 65534 included). */
  size: number;
  /** Slots in the pool. Default 4096 (HULL_USERNS_COUNT); start + size*count stays below 2^32-1. */
  count: number;
}

/** The pool from the environment (HULL_USERNS_START, HULL_USERNS_COUNT), checked. Pure. */
export function usernsPool(env: NodeJS.ProcessEnv = process.env): UsernsPool {
  const num = (k: string, d: number) => {
    const v = env[k];
    if (v === undefined || v === '') return d;
    if (!/^\d+$/.test(v)) throw invalid(`${k}=${v}: a whole number is needed`);
    return Number(v);
  };
  const pool = { start: num('HULL_USERNS_START', 1_000_000_000), size: 65536, count: num('HULL_USERNS_COUNT', 4096) };
  if (pool.start < 65536) throw invalid(`HULL_USERNS_START=${pool.start}: the pool must lie above the host's own ids (65536 and up)`);
  if (pool.count < 1 || pool.start + pool.size * pool.count > 2 ** 32 - 2) throw invalid(`HULL_USERNS_START/COUNT: the pool ${pool.start}+${pool.size}x${pool.count} does not fit below 2^32-1`);
  return pool;
}

/** Slot -> host ids. Pure. */
export function rangeOf(pool: UsernsPool, slot: number): IdRange {
  const first = pool.start + slot * pool.size;
  return { uid: first, gid: first, size: pool.size };
}

export class UsernsRanges {
  constructor(readonly db: DB, readonly pool: UsernsPool = usernsPool()) {}

  /**
   * Take the lowest free slot for `containerId` (its row must exist: call inside the
   * transaction that inserts it). UNAVAILABLE when the pool is full.
   */
  allocate(containerId: string): IdRange {
    const free = this.db
      .prepare(
        `SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM userns_ranges WHERE slot = 0) THEN 0
                ELSE (SELECT MIN(a.slot) + 1 FROM userns_ranges a WHERE NOT EXISTS (SELECT 1 FROM userns_ranges b WHERE b.slot = a.slot + 1)) END AS slot`,
      )
      .get() as { slot: number };
    if (free.slot >= this.pool.count) {
      throw unavailable(`no free --userns=auto id range: all ${this.pool.count} ranges of ${this.pool.size} ids from ${this.pool.start} are taken`, { hint: 'remove containers, or give hull a larger pool (HULL_USERNS_COUNT)' });
    }
    this.db.prepare('INSERT INTO userns_ranges (container_id, slot) VALUES (?, ?)').run(containerId, free.slot);
    return rangeOf(this.pool, free.slot);
  }

  /** The container's range, if it has one. */
  get(containerId: string): IdRange | undefined {
    const r = this.db.prepare('SELECT slot FROM userns_ranges WHERE container_id = ?').get(containerId) as { slot: number } | undefined;
    return r ? rangeOf(this.pool, r.slot) : undefined;
  }
}
