/** Image routes: list, inspect, pull (images/create), push, tag, delete, save (get), load, prune. */
import { labelsMatch } from '../engine/filters.js';
import type { ServerResponse } from 'node:http';
import { HullError } from '../errors.js';
import { imageRows, inspectImage } from '../images/inspect.js';
import type { ImageRecord } from '../images/store.js';
import type { Credentials } from '../registry/credentials.js';
import { type Ctx, type Handler, commonHeaders, resOf, sendJson, startJsonStream } from './context.js';
import { HttpError } from './errors.js';
import { dockerJsonMessages } from '../registry/progress.js';
import { type JsonMessage, errorMessageLine, parseRegistryAuth } from './progress.js';
import type { Router } from './router.js';

/** docker's ImageSummary. */
export function summary(img: ImageRecord, addedAt: string | undefined, containers: number): Record<string, unknown> {
  const created = Date.parse(img.created ?? addedAt ?? '');
  return {
    Id: img.id,
    ParentId: '',
    RepoTags: img.tags,
    RepoDigests: img.repoDigests,
    Created: Number.isNaN(created) ? 0 : Math.floor(created / 1000),
    Size: img.size,
    SharedSize: -1,
    VirtualSize: img.size,
    Labels: img.config.config?.Labels ?? {},
    Containers: containers,
  };
}

function globRe(pattern: string): RegExp {
  const esc = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '.');
  return new RegExp(`^${esc}$`);
}

async function list(c: Ctx): Promise<void> {
  const filters = c.query.filters();
  let dangling: boolean | undefined;
  const refs: RegExp[] = [];
  const labels: string[] = [];
  for (const [k, vals] of filters) {
    if (k === 'dangling') {
      if (vals.some((v) => !['true', 'false', '1', '0'].includes(v))) throw new HttpError(400, `invalid filter 'dangling=${vals.join(',')}'`);
      dangling = vals.includes('true') || vals.includes('1');
    } else if (k === 'reference') {
      for (const v of vals) refs.push(globRe(v.includes(':') && v.lastIndexOf(':') > v.lastIndexOf('/') ? v : `${v}:*`), globRe(v));
    } else if (k === 'label') labels.push(...vals);
    else throw new HttpError(400, `invalid filter '${k}'`);
  }
  const used = new Map<string, number>();
  for (const ctr of await c.engine.ps({ all: true })) used.set(ctr.ImageID, (used.get(ctr.ImageID) ?? 0) + 1);
  const out = c.images
    .list({ all: c.query.bool('all') })
    .filter((img) => dangling === undefined || (img.tags.length === 0) === dangling)
    .filter((img) => labelsMatch(img.config.config?.Labels ?? {}, labels))
    .filter((img) => refs.length === 0 || imageRows(img).some((r) => refs.some((re) => re.test(`${r.Repository}:${r.Tag}`) || re.test(r.Repository))))
    .map((img) => summary(img, c.images.addedAt(img.id), used.get(img.id) ?? 0));
  sendJson(c, 200, out);
}

function resolveImage(c: Ctx): ImageRecord {
  return c.images.resolve(c.params.name!);
}

async function inspect(c: Ctx): Promise<void> {
  const img = resolveImage(c);
  const dirs = img.layers.filter((l) => c.images.t.layer(l.diffId)).map((l) => c.images.layerDir(l.diffId));
  const body: Record<string, unknown> = { ...inspectImage(img, { layerDirs: dirs, addedAt: c.images.addedAt(img.id) }) };
  // Container and ContainerConfig left API 1.45, but docker-compose 1.29 (which takes the server's
  // version, 1.45 here) reads ContainerConfig.Volumes when it recreates a container and fails
  // without it (as it does against docker 25+). Kept for every version: the image's
  // container_config, or its Config; clients that do not know the fields ignore them.
  const legacy = (img.config as { container_config?: Record<string, unknown> }).container_config;
  body.Container = '';
  body.ContainerConfig = legacy ?? body.Config;
  sendJson(c, 200, body);
}

/** The credentials an X-Registry-Auth header carries; undefined: hull's stored ones. */
function credentials(c: Ctx): Credentials | undefined {
  const h = c.req.headers['x-registry-auth'];
  let a;
  try {
    a = parseRegistryAuth(Array.isArray(h) ? h[0] : h);
  } catch (e) {
    throw new HttpError(400, (e as Error).message);
  }
  if (!a) return undefined;
  return { username: a.username, password: a.password, identityToken: a.identityToken, source: 'X-Registry-Auth' };
}

/**
 * Run a registry operation, streaming its progress as JSON lines. Failures after the headers
 * went out end the stream with docker's errorDetail line. A client that goes away stops
 * receiving; the operation itself finishes (as docker's does), so the store stays consistent.
 */
async function progressStream(c: Ctx, op: (emit: (m: JsonMessage) => void) => Promise<void>): Promise<void> {
  const res = startJsonStream(c);
  let open = true;
  res.on('close', () => (open = false));
  const emit = (m: JsonMessage) => {
    if (open) res.write(`${JSON.stringify(m)}\r\n`);
  };
  try {
    await op(emit);
  } catch (e) {
    emit(errorMessageLine((e as Error).message));
  }
  if (open) res.end();
}

async function create(c: Ctx): Promise<void> {
  const from = c.query.str('fromImage');
  const fromSrc = c.query.str('fromSrc');
  if (fromSrc !== undefined) return importImage(c, fromSrc);
  if (!from) throw new HttpError(400, 'fromImage or fromSrc is required');
  const tag = c.query.str('tag');
  let ref = from;
  if (tag) ref = /^[a-z0-9]+:[0-9a-f]{32,}$/.test(tag) ? `${from}@${tag}` : `${from}:${tag}`;
  const platform = c.query.str('platform') || undefined;
  const creds = credentials(c);
  // Validate the reference before answering 200, so a bad name is a plain 400.
  const { parseReference } = await import('../images/reference.js');
  try {
    parseReference(ref);
  } catch (e) {
    throw new HttpError(400, (e as Error).message);
  }
  const { pullImage } = await import('../registry/pull.js');
  await progressStream(c, async (emit) => {
    await pullImage(c.root, ref, { platform, credentials: creds, onEvent: (e) => dockerJsonMessages(e, 'pull').forEach(emit) });
  });
}

/** docker import: POST /images/create?fromSrc=-&repo=NAME&tag=T with the tar as the body. */
async function importImage(c: Ctx, fromSrc: string): Promise<void> {
  if (fromSrc !== '-') throw new HttpError(400, `fromSrc=${fromSrc}: only '-' (the request body) is supported`);
  const repo = c.query.str('repo');
  const tag = c.query.str('tag');
  const { importRootfs } = await import('../images/import.js');
  await progressStream(c, async (emit) => {
    const img = await importRootfs(c.images, {
      input: c.req,
      sourceName: '-',
      reference: repo ? (tag ? `${repo}:${tag}` : repo) : undefined,
      changes: c.query.all('changes'),
      message: c.query.str('message'),
    });
    emit({ status: img.id });
  });
}

async function push(c: Ctx): Promise<void> {
  const name = c.params.name!;
  const tag = c.query.str('tag');
  const ref = tag ? `${name}:${tag}` : name;
  const creds = credentials(c);
  const { push: pushImage } = await import('../registry/push.js');
  // A missing local image is a plain 404, before any progress.
  if (!c.images.tryResolve(ref)) throw new HullError('NOT_FOUND', `An image does not exist locally with the tag: ${ref}`);
  await progressStream(c, async (emit) => {
    await pushImage(c.root, ref, { credentials: creds, onEvent: (e) => dockerJsonMessages(e, 'push').forEach(emit) });
  });
}

async function tag(c: Ctx): Promise<void> {
  const repo = c.query.str('repo');
  if (!repo) throw new HttpError(400, 'repo is required');
  const t = c.query.str('tag');
  try {
    c.images.tag(c.params.name!, t ? `${repo}:${t}` : repo);
  } catch (e) {
    if (e instanceof HullError && e.code === 'INVALID_ARGUMENT') throw new HttpError(400, e.message);
    throw e;
  }
  resOf(c).writeHead(201, commonHeaders()).end();
}

async function remove(c: Ctx): Promise<void> {
  const items = c.images.remove(c.params.name!, { force: c.query.bool('force') });
  sendJson(c, 200, items);
}

async function prune(c: Ctx): Promise<void> {
  const filters = c.query.filters();
  let all = false;
  for (const [k, v] of filters) {
    if (k === 'dangling') all = v.includes('false') || v.includes('0');
    else throw new HttpError(400, `invalid filter '${k}' (dangling is supported)`);
  }
  const { deleted, reclaimed } = c.images.prune({ all });
  sendJson(c, 200, { ImagesDeleted: deleted.length ? deleted : null, SpaceReclaimed: reclaimed });
}

async function save(c: Ctx, names: string[]): Promise<void> {
  if (names.length === 0) throw new HttpError(400, 'no image names given');
  const { selectImages, saveArchive } = await import('../images/save.js');
  selectImages(c.images, names); // 404 before the 200 goes out
  const res: ServerResponse = resOf(c);
  res.writeHead(200, { ...commonHeaders(), 'Content-Type': 'application/x-tar' });
  try {
    await saveArchive(c.images, names, res);
  } catch (e) {
    res.destroy(e as Error);
    return;
  }
  if (!res.writableEnded) res.end();
}

async function load(c: Ctx): Promise<void> {
  c.query.bool('quiet'); // validated; docker's quiet only drops progress bars
  const { loadArchive } = await import('../images/load.js');
  let loaded;
  try {
    loaded = await loadArchive(c.images, c.req, { what: 'uploaded archive' });
  } catch (e) {
    c.req.resume();
    if (e instanceof HullError && e.code === 'INVALID_ARGUMENT') throw new HttpError(400, e.message);
    throw e;
  }
  const res = startJsonStream(c);
  for (const l of loaded) {
    if (l.tags.length === 0) res.write(`${JSON.stringify({ stream: `Loaded image ID: ${l.image.id}\n` })}\n`);
    for (const t of l.tags) res.write(`${JSON.stringify({ stream: `Loaded image: ${t}\n` })}\n`);
  }
  res.end();
}

/** GET /distribution/{name}/json: the manifest's descriptor and platforms, from its registry. */
async function distribution(c: Ctx): Promise<void> {
  const { distributionInspect } = await import('../registry/distribution.js');
  sendJson(c, 200, await distributionInspect(c.params.name!, { credentials: credentials(c) }));
}

export function register(r: Router<Handler>): void {
  r.add('GET', '/distribution/{name*}/json', distribution);
  r.add('GET', '/images/json', list);
  r.add('POST', '/images/create', create);
  r.add('POST', '/images/load', load);
  r.add('POST', '/images/prune', prune);
  r.add('GET', '/images/get', (c) => save(c, c.query.all('names')));
  r.add('GET', '/images/{name*}/json', inspect);
  r.add('GET', '/images/{name*}/get', (c) => save(c, [c.params.name!]));
  r.add('POST', '/images/{name*}/push', push);
  r.add('POST', '/images/{name*}/tag', tag);
  r.add('DELETE', '/images/{name*}', remove);
}

