/**
 * Container routes for the day-to-day management docker users expect: pause, unpause, rename,
 * top. Thin: each calls the engine and shapes docker's reply (swagger: ContainerPause,
 * ContainerUnpause, ContainerRename, ContainerTop).
 */
import { type Ctx, type Handler, sendJson, sendStatus } from './context.js';
import { HttpError } from './errors.js';
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

async function top(c: Ctx): Promise<void> {
  const args = c.query.str('ps_args');
  sendJson(c, 200, await c.engine.top(c.params.id!, args === '' ? undefined : args));
}

export function register(r: Router<Handler>): void {
  r.add('POST', '/containers/{id}/pause', pause);
  r.add('POST', '/containers/{id}/unpause', unpause);
  r.add('POST', '/containers/{id}/rename', rename);
  r.add('GET', '/containers/{id}/top', top);
}
