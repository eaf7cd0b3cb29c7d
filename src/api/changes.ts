/**
 * What a container changed, as docker answers it: GET /containers/{id}/changes (docker diff),
 * GET /containers/{id}/export, POST /commit, GET /images/{name}/history. Thin: engine/changes.ts
 * does the work.
 */
import { pipeline } from 'node:stream/promises';
import { layout } from '../paths.js';
import { commitContainer, containerChanges, exportContainer, imageHistory, whilePaused } from '../engine/changes.js';
import type { ImageRunConfig } from '../oci/types.js';
import { type Ctx, type Handler, commonHeaders, resOf, sendJson } from './context.js';
import { HttpError } from './errors.js';
import { jsonBody } from './params.js';
import type { Router } from './router.js';

async function changes(c: Ctx): Promise<void> {
  const l = await c.engine.layerOf(c.params.id!);
  try {
    sendJson(c, 200, containerChanges(l));
  } finally {
    l.release();
  }
}

async function exportFs(c: Ctx): Promise<void> {
  const l = await c.engine.layerOf(c.params.id!);
  try {
    const { stream, done } = await exportContainer(l, layout(c.root).tmp);
    const res = resOf(c);
    res.writeHead(200, { ...commonHeaders(), 'Content-Type': 'application/x-tar' });
    try {
      await pipeline(stream, res);
    } catch {
      res.destroy();
    } finally {
      done();
    }
  } finally {
    l.release();
  }
}

const CONFIG_FIELDS = ['User', 'Env', 'Cmd', 'Entrypoint', 'WorkingDir', 'ExposedPorts', 'Labels', 'Volumes', 'StopSignal'] as const;

async function commit(c: Ctx): Promise<void> {
  const ref = c.query.str('container');
  if (!ref) throw new HttpError(400, 'No container name or ID supplied');
  const repo = c.query.str('repo');
  const tag = c.query.str('tag');
  if (tag && !repo) throw new HttpError(400, 'a tag needs a repository (repo)');
  const body = await jsonBody<Record<string, unknown> | null>(c.req, null);
  // the body is a container config; the fields an image config holds are taken, when set
  const config: Partial<ImageRunConfig> = {};
  for (const k of CONFIG_FIELDS) {
    const v = body?.[k];
    if (v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0) && v !== '') (config as Record<string, unknown>)[k] = v;
  }
  const changeLines = c.query.all('changes').flatMap((x) => x.split('\n')).filter((x) => x.trim() !== '');
  const pause = c.query.bool('pause', true);
  const l = await c.engine.layerOf(ref, { pause });
  let img;
  try {
    img = await whilePaused(c.engine, l, pause, () => commitContainer(c.images, l, {
      reference: repo ? `${repo}${tag ? `:${tag}` : ''}` : undefined,
      changes: changeLines,
      author: c.query.str('author') || undefined,
      comment: c.query.str('comment') || undefined,
      config,
    }, layout(c.root).tmp));
  } finally {
    l.release();
  }
  sendJson(c, 201, { Id: img.id });
}

async function history(c: Ctx): Promise<void> {
  sendJson(c, 200, await imageHistory(c.images, c.images.resolve(c.params.name!)));
}

export function register(r: Router<Handler>): void {
  r.add('GET', '/containers/{id}/changes', changes);
  r.add('GET', '/containers/{id}/export', exportFs);
  r.add('POST', '/commit', commit);
  r.add('GET', '/images/{name*}/history', history);
}
