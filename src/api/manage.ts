/**
 * Container routes for the day-to-day management docker users expect: pause, unpause, rename,
 * top, update. Thin: each calls the engine and shapes docker's reply (swagger: ContainerPause,
 * ContainerUnpause, ContainerRename, ContainerTop, ContainerUpdate).
 */
import { type Ctx, type Handler, sendJson, sendStatus } from './context.js';
import { HttpError } from './errors.js';
import { jsonBody } from './params.js';
import type { Router } from './router.js';

async function pause(c: Ctx): Promise<void> {
  await c.engine.pause(c.params.id!);
  sendStatus(c, 204);
}

async function unpause(c: Ctx): Promise<void> {
  await c.engine.unpause(c.params.id!);
  sendStatus(c, 204);
}

async function rename(c: Ctx): Promise<void> {
  const name = c.query.str('name');
  if (!name) throw new HttpError(400, 'rename: the new name (query parameter name) is required');
  await c.engine.rename(c.params.id!, name.startsWith('/') ? name.slice(1) : name);
  sendStatus(c, 204);
}

type Obj = Record<string, unknown>;
const int = (b: Obj, k: string): number | undefined => {
  const v = b[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new HttpError(400, `invalid ${k}: expected an integer`);
  return v;
};

/** docker update's body (swagger: ContainerUpdate): the limits hull can change; others refused when set. */
export function parseUpdate(b: Obj): import('../engine/engine.js').UpdateOptions {
  for (const k of ['CpuShares', 'BlkioWeight', 'CpuRealtimePeriod', 'CpuRealtimeRuntime', 'MemoryReservation', 'KernelMemory', 'KernelMemoryTCP', 'CpuCount', 'CpuPercent', 'IOMaximumIOps', 'IOMaximumBandwidth']) {
    if ((int(b, k) ?? 0) !== 0) throw new HttpError(400, `${k} is not supported by hull's update`);
  }
  for (const k of ['CpusetCpus', 'CpusetMems']) if (b[k] !== undefined && b[k] !== null && b[k] !== '') throw new HttpError(400, `${k} is not supported by hull's update`);
  const rp = b.RestartPolicy as Obj | undefined;
  if (rp && rp.Name !== undefined && rp.Name !== '' && rp.Name !== 'no') throw new HttpError(400, 'RestartPolicy is not supported by hull');
  const u: import('../engine/engine.js').UpdateOptions = {};
  const mem = int(b, 'Memory');
  if (mem) u.memoryBytes = mem;
  const swap = int(b, 'MemorySwap');
  if (swap) u.memorySwapBytes = swap;
  let nano = int(b, 'NanoCpus') || undefined;
  const quota = int(b, 'CpuQuota');
  if (!nano && quota && quota > 0) nano = Math.round((quota / (int(b, 'CpuPeriod') || 100_000)) * 1e9);
  if (nano) u.nanoCpus = nano;
  const pids = int(b, 'PidsLimit');
  if (pids) u.pidsLimit = pids;
  return u;
}

async function update(c: Ctx): Promise<void> {
  await c.engine.update(c.params.id!, parseUpdate(await jsonBody<Obj>(c.req, {})));
  sendJson(c, 200, { Warnings: [] });
}

async function top(c: Ctx): Promise<void> {
  const args = c.query.str('ps_args');
  sendJson(c, 200, await c.engine.top(c.params.id!, args === '' ? undefined : args));
}

export function register(r: Router<Handler>): void {
  r.add('POST', '/containers/{id}/pause', pause);
  r.add('POST', '/containers/{id}/unpause', unpause);
  r.add('POST', '/containers/{id}/rename', rename);
  r.add('GET', '/containers/{id}/top', top);
  r.add('POST', '/containers/{id}/update', update);
}
