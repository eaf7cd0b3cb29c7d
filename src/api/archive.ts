/**
 * GET/HEAD/PUT /containers/{id}/archive (docker cp), both walls: the path's stat in the
 * X-Docker-Container-Path-Stat header (base64 JSON), a tar of it, or a tar extracted into a
 * directory. Thin over the engine's archive door (engine/archive.ts).
 */
import { type Ctx, type Handler, commonHeaders, resOf, sendStatus } from './context.js';
import { HttpError } from './errors.js';
import type { Router } from './router.js';

export const STAT_HEADER = 'X-Docker-Container-Path-Stat';

function pathOf(c: Ctx): string {
  const p = c.query.str('path');
  if (!p) throw new HttpError(400, 'path is required (query parameter path)');
  return p;
}

async function get(c: Ctx): Promise<void> {
  const p = pathOf(c);
  const res = resOf(c);
  await c.engine.archive(c.params.id!, async (a) => {
    const st = await a.stat(p);
    res.writeHead(200, { ...commonHeaders(), 'Content-Type': 'application/x-tar', [STAT_HEADER]: Buffer.from(JSON.stringify(st)).toString('base64') });
    if (c.method === 'HEAD') return void res.end();
    await a.get(p, res, st);
    res.end();
  });
}

async function put(c: Ctx): Promise<void> {
  const p = pathOf(c);
  const copyUIDGID = c.query.bool('copyUIDGID');
  c.query.bool('noOverwriteDirNonDir'); // validated; the tar extraction never turns a directory into a file or back
  await c.engine.archive(c.params.id!, async (a, info) => {
    if (info.readOnly) {
      const abs = await a.resolve(p);
      const writable = info.mounts.some((m) => !m.readOnly && (abs === m.destination || abs.startsWith(`${m.destination}/`)));
      if (!writable) throw new HttpError(403, `container rootfs is marked read-only: cannot extract into ${p}`);
    }
    await a.put(p, c.req, { copyUIDGID });
  });
  sendStatus(c, 200);
}

export function register(r: Router<Handler>): void {
  r.add('GET', '/containers/{id}/archive', get);
  r.add('PUT', '/containers/{id}/archive', put);
}
