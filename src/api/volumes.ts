/**
 * Volume routes of the Engine API: list, create, inspect, remove, prune (swagger: Volume).
 * Thin: each calls the engine's volume store and shapes docker's reply.
 */
import { checkKeys, filterBool, filterVolumes, pruneLabelMatch } from '../engine/filters.js';
import { volumeView } from '../volumes/store.js';
import { type Ctx, type Handler, sendJson, sendStatus } from './context.js';
import { HttpError } from './errors.js';
import { jsonBody } from './params.js';
import type { Router } from './router.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function strMap(v: unknown, field: string): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObj(v) || Object.values(v).some((x) => typeof x !== 'string')) throw new HttpError(400, `invalid ${field}: expected an object of strings`);
  return v as Record<string, string>;
}

async function list(c: Ctx): Promise<void> {
  const store = c.engine.volumes;
  const counts = store.refCounts();
  const rows = filterVolumes(store.list(), c.query.filters(), (n) => counts.get(n) ?? 0);
  sendJson(c, 200, { Volumes: rows.map((r) => volumeView(store, r)), Warnings: [] });
}

async function create(c: Ctx): Promise<void> {
  const b = await jsonBody<Obj>(c.req, {});
  if (b.Name !== undefined && b.Name !== null && typeof b.Name !== 'string') throw new HttpError(400, 'invalid Name: expected a string');
  if (b.Driver !== undefined && b.Driver !== null && typeof b.Driver !== 'string') throw new HttpError(400, 'invalid Driver: expected a string');
  if (isObj(b.ClusterVolumeSpec) && Object.keys(b.ClusterVolumeSpec).length) throw new HttpError(400, 'ClusterVolumeSpec is not supported by hull (no swarm)');
  const store = c.engine.volumes;
  const { row } = store.create({
    name: (b.Name as string | undefined) || undefined,
    driver: (b.Driver as string | undefined) || undefined,
    labels: strMap(b.Labels, 'Labels'),
    options: strMap(b.DriverOpts, 'DriverOpts'),
  });
  sendJson(c, 201, volumeView(store, row));
}

async function inspect(c: Ctx): Promise<void> {
  const store = c.engine.volumes;
  sendJson(c, 200, volumeView(store, store.resolve(c.params.name!)));
}

async function remove(c: Ctx): Promise<void> {
  c.engine.volumes.remove(c.params.name!, { force: c.query.bool('force') });
  sendStatus(c, 204);
}

async function prune(c: Ctx): Promise<void> {
  const f = c.query.filters();
  checkKeys(f, ['label', 'label!', 'all']);
  const all = (f.get('all') ?? []).some((v) => filterBool('all', v));
  const match = pruneLabelMatch(f);
  const { deleted, reclaimed } = c.engine.volumes.prune({ all, match: (r) => match(JSON.parse(r.labels_json) as Record<string, string>) });
  sendJson(c, 200, { VolumesDeleted: deleted.length ? deleted : null, SpaceReclaimed: reclaimed });
}

export function register(r: Router<Handler>): void {
  r.add('GET', '/volumes', list);
  r.add('POST', '/volumes/create', create);
  r.add('POST', '/volumes/prune', prune);
  r.add('GET', '/volumes/{name}', inspect);
  r.add('DELETE', '/volumes/{name}', remove);
}
