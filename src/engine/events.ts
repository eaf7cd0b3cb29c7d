/**
 * `hull events` and GET /events: the events table (every hull process appends to it, see
 * addEvent in state/db.ts) read as docker's event stream. Past events from `since`, then new
 * ones as other processes commit them (inotify on the database, util/watch.ts), until `until`
 * or an abort. Shapes and filters as docker's (swagger: EventMessage, SystemEvents).
 */
import { invalid } from '../errors.js';
import type { DB } from '../state/db.js';
import { dbTarget, Watch } from '../util/watch.js';
import { checkKeys, labelsMatch, type Filters } from './filters.js';

export interface DockerEvent {
  Type: string;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: 'local';
  /** Seconds since the epoch. */
  time: number;
  /** Nanoseconds since the epoch. */
  timeNano: number;
  /** docker's old fields (containers and images). */
  status?: string;
  id?: string;
  from?: string;
}

interface Row {
  seq: bigint;
  time_ns: bigint;
  type: string;
  action: string;
  actor_id: string;
  attrs: string;
}

export function toDockerEvent(r: { time_ns: bigint; type: string; action: string; actor_id: string; attrs: string }): DockerEvent {
  const attrs = JSON.parse(r.attrs) as Record<string, string>;
  const ns = BigInt(r.time_ns);
  const e: DockerEvent = { Type: r.type, Action: r.action, Actor: { ID: r.actor_id, Attributes: attrs }, scope: 'local', time: Number(ns / 1_000_000_000n), timeNano: Number(ns) };
  if (r.type === 'container' || r.type === 'image') {
    e.status = r.action;
    e.id = r.actor_id;
    if (r.type === 'container' && attrs.image) e.from = attrs.image;
  }
  return e;
}

export const EVENT_FILTERS = ['container', 'event', 'image', 'label', 'type', 'volume', 'network', 'daemon', 'scope'];
const TYPES = ['container', 'image', 'volume', 'network', 'daemon', 'plugin', 'service', 'node', 'secret', 'config', 'builder'];

/** Refuses unknown filter keys and event types, docker's way. */
export function checkEventFilters(f: Filters): void {
  checkKeys(f, EVENT_FILTERS);
  for (const t of f.get('type') ?? []) if (!TYPES.includes(t)) throw invalid(`invalid filter 'type=${t}'`);
}

/** docker's event filters: values of one key ORed, keys ANDed. */
export function eventMatches(e: DockerEvent, f: Filters): boolean {
  const any = (k: string, pred: (v: string) => boolean) => !f.has(k) || f.get(k)!.some(pred);
  const a = e.Actor.Attributes;
  const actor = (type: string) => (v: string) => e.Type === type && (e.Actor.ID === v || e.Actor.ID.startsWith(v) || a.name === v);
  return (
    any('type', (v) => e.Type === v) &&
    // exec_start: sh -c ... matches event=exec_start
    any('event', (v) => e.Action === v || e.Action.startsWith(`${v}:`)) &&
    any('container', actor('container')) &&
    any('network', actor('network')) &&
    any('volume', actor('volume')) &&
    any('image', (v) => (e.Type === 'image' && (e.Actor.ID === v || a.name === v || a.name === `${v}:latest`)) || (e.Type === 'container' && (a.image === v || a.image === `${v}:latest`))) &&
    any('scope', (v) => v === 'local') &&
    !f.has('daemon') &&
    (!f.has('label') || labelsMatch(a, f.get('label')!))
  );
}

/**
 * docker's --since/--until values: unix seconds with an optional fraction (what the docker CLI
 * sends), an RFC 3339 time, or a duration before `now` (10m, 1h30m, 45s). Returns ns.
 */
export function parseEventTime(v: string, what: string, now = Date.now()): bigint {
  const s = v.trim();
  let m = /^(\d+)(?:\.(\d{1,9}))?$/.exec(s);
  if (m) return BigInt(m[1]!) * 1_000_000_000n + BigInt((m[2] ?? '').padEnd(9, '0'));
  m = /^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$/.exec(s);
  if (m) {
    const units: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
    let ms = 0;
    for (const [, n, u] of s.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) ms += Number(n) * units[u!]!;
    return BigInt(Math.round(now - ms)) * 1_000_000n;
  }
  const t = Date.parse(s);
  if (!Number.isNaN(t) && /^\d{4}-\d{2}-\d{2}/.test(s)) return BigInt(t) * 1_000_000n;
  throw invalid(`invalid value for ${what}: ${JSON.stringify(v)} (unix seconds, an RFC 3339 time or a duration such as 10m)`);
}

export interface StreamOptions {
  /** Replay events from this time (ns); absent: only events from now on. */
  sinceNs?: bigint;
  /** Stop at this time (ns); absent: stream until aborted. */
  untilNs?: bigint;
  filters?: Filters;
  signal?: AbortSignal;
}

/**
 * Calls `emit` for each event in order, past ones first (from `sinceNs`), then new ones as they
 * are committed, until `untilNs` passes or `signal` aborts. `emit` may return a promise
 * (backpressure): the next event waits for it.
 */
export async function streamEvents(db: DB, root: string, o: StreamOptions, emit: (e: DockerEvent) => void | Promise<void>): Promise<void> {
  const f = o.filters ?? new Map();
  checkEventFilters(f);
  const nowNs = () => BigInt(Date.now()) * 1_000_000n;
  const select = db.prepare('SELECT * FROM events WHERE seq > ? ORDER BY seq LIMIT 500').safeIntegers(true);
  const watch = new Watch([dbTarget(root)]);
  const ac = new AbortController();
  const onAbort = () => ac.abort();
  o.signal?.addEventListener('abort', onAbort, { once: true });
  let timer: NodeJS.Timeout | undefined;
  try {
    let cursor: bigint;
    if (o.sinceNs !== undefined) {
      const first = db.prepare('SELECT MIN(seq) AS s FROM events WHERE time_ns >= ?').safeIntegers(true).get(o.sinceNs) as { s: bigint | null };
      cursor = first.s === null ? ((db.prepare('SELECT MAX(seq) AS s FROM events').safeIntegers(true).get() as { s: bigint | null }).s ?? 0n) : first.s - 1n;
    } else {
      cursor = (db.prepare('SELECT MAX(seq) AS s FROM events').safeIntegers(true).get() as { s: bigint | null }).s ?? 0n;
    }
    if (o.untilNs !== undefined) {
      const wait = Number((o.untilNs - nowNs()) / 1_000_000n);
      timer = setTimeout(() => ac.abort(), Math.max(0, Math.min(wait, 2 ** 31 - 1)));
    }
    for (;;) {
      const seen = watch.seq;
      const rows = select.all(cursor) as Row[];
      for (const r of rows) {
        cursor = r.seq;
        if (o.untilNs !== undefined && r.time_ns > o.untilNs) return;
        const e = toDockerEvent(r);
        if (eventMatches(e, f)) await emit(e);
        if (o.signal?.aborted) return;
      }
      if (rows.length === 500) continue;
      if (ac.signal.aborted || (o.untilNs !== undefined && nowNs() > o.untilNs)) return;
      await watch.after(seen, 1000, ac.signal);
    }
  } finally {
    if (timer) clearTimeout(timer);
    o.signal?.removeEventListener('abort', onAbort);
    watch.close();
  }
}
