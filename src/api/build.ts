/**
 * POST /build (docker's classic builder API, what the docker CLI uses with DOCKER_BUILDKIT=0
 * and dockerode's buildImage) and POST /build/prune. The request body is the context as a tar
 * (plain or gzip); progress goes back as docker's JSON messages (`stream`, `aux` with the image
 * id, `errorDetail` with a failed RUN's exit code as `code`, which the docker CLI exits with).
 */
import { layout } from '../paths.js';
import type { Ctx, Handler } from './context.js';
import { sendJson, startJsonStream } from './context.js';
import { HttpError } from './errors.js';
import type { Router } from './router.js';

/** A JSON object of strings from a query parameter (buildargs, labels); null values dropped. */
function jsonMap(c: Ctx, name: string): Map<string, string> {
  const raw = c.query.str(name);
  if (!raw) return new Map();
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    throw new HttpError(400, `${name}: not valid JSON`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new HttpError(400, `${name}: want a JSON object`);
  const m = new Map<string, string>();
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (x === null || x === undefined) continue;
    if (typeof x !== 'string') throw new HttpError(400, `${name}: value of ${k} is not a string`);
    m.set(k, x);
  }
  return m;
}

async function build(c: Ctx): Promise<void> {
  if (c.query.str('remote')) throw new HttpError(400, 'remote build contexts need the network, which hull build does not use: send the context as the request body');
  const iso = c.query.str('isolation');
  const isolation = iso === 'vm' ? 'vm' : iso === undefined || iso === '' || iso === 'default' || iso === 'container' || iso === 'process' ? 'container' : undefined;
  if (!isolation) throw new HttpError(400, `isolation=${iso}: container or vm`);
  const buildArgs = jsonMap(c, 'buildargs');
  const labels = Object.fromEntries(jsonMap(c, 'labels'));
  const tags = c.query.all('t').filter(Boolean);
  const memory = c.query.int('memory');
  const { contextFromTar } = await import('../build/context.js');
  const { build: runBuild } = await import('../build/builder.js');
  const { apiMessages } = await import('../build/events.js');
  const { RunFailed } = await import('../build/steps.js');
  const res = startJsonStream(c);
  let open = true;
  // a client that goes away cancels the build, as docker's does (its RUN is killed and removed)
  const ac = new AbortController();
  res.on('close', () => {
    open = false;
    ac.abort();
  });
  const emit = (m: Record<string, unknown>) => {
    if (open) res.write(`${JSON.stringify(m)}\r\n`);
  };
  const quiet = c.query.bool('q');
  let opened;
  try {
    opened = await contextFromTar(c.req, layout(c.root).tmp, { path: c.query.str('dockerfile') || 'Dockerfile' });
    const r = await runBuild(
      c.engine,
      {
        context: opened.tree, dockerfile: opened.dockerfile, tags, buildArgs, labels,
        target: c.query.str('target') || undefined, noCache: c.query.bool('nocache'), pull: c.query.bool('pull'),
        platform: c.query.str('platform') || undefined, isolation, memoryBytes: memory && memory > 0 ? memory : undefined,
        network: networkMode(c.query.str('networkmode')),
        signal: ac.signal,
      },
      // the client prints "Sending build context" itself
      (e) => {
        if (e.type === 'context' || (quiet && e.type !== 'built')) return;
        for (const m of apiMessages(e)) if (!quiet || 'aux' in m) emit(m);
      },
    );
    if (quiet) emit({ stream: `${r.id}\n` });
  } catch (e) {
    const message = (e as Error).message;
    const code = e instanceof RunFailed ? e.exitCode : undefined;
    emit({ errorDetail: { ...(code !== undefined ? { code } : {}), message }, error: message });
  } finally {
    opened?.close();
  }
  if (open) res.end();
}

async function prune(c: Ctx): Promise<void> {
  const r = c.images.pruneBuildCache();
  sendJson(c, 200, { CachesDeleted: r.deleted.flatMap((d) => ('Deleted' in d ? [d.Deleted] : [])), SpaceReclaimed: r.reclaimed });
}

/** docker's networkmode query: 'default' (or absent) is the default bridge. */
function networkMode(m: string | undefined): string | undefined {
  return m === undefined || m === '' || m === 'default' ? undefined : m;
}

export function register(r: Router<Handler>): void {
  r.add('POST', '/build', build);
  r.add('POST', '/build/prune', prune);
}

