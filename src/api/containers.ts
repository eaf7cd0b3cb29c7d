/**
 * Container routes: create, list, inspect, start, stop, kill, restart, remove, wait, attach,
 * logs, stats, resize, prune. Thin: each calls the engine and shapes docker's reply.
 */
import { dockerTime, endsLine, type LogRecord } from '../engine/logs.js';
import { HullError } from '../errors.js';
import { type Ctx, type Handler, sendJson, sendStatus, startJsonStream } from './context.js';
import { parseCreate } from './create.js';
import { HttpError } from './errors.js';
import { fileSize, follow, readAll } from './follow.js';
import { hijackBody, openStreamReply, type StreamReply } from './hijack.js';
import { openWebSocketReply } from './websocket.js';
import { compareVersions } from './version.js';
import { jsonBody } from './params.js';
import type { Router } from './router.js';
import type { ExitResult } from './state.js';
import { resizeTty } from './resize.js';
import { parseDetachKeys } from '../streams/escape.js';
import { stdinSource, type StdinSource } from '../streams/input.js';
import { statsBody, systemCpuNs, type Sample } from './stats.js';
import { filterContainers, wantsAll } from '../engine/filters.js';

/** The image ids an `ancestor` filter value names (none when it names no image here). */
function imageIdsOf(c: Ctx, ref: string): string[] {
  const img = c.images.tryResolve(ref);
  return img ? [img.id] : [];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function inspectOf(c: Ctx, ref: string) {
  const i = await c.engine.inspect(ref);
  i.HostConfig.AutoRemove = c.state.autoRemove(i.Id);
  return i;
}

async function create(c: Ctx): Promise<void> {
  const body = await jsonBody<Record<string, unknown>>(c.req, {});
  const req = parseCreate(body, { name: c.query.str('name'), platform: c.query.str('platform') });
  // docker answers 404 for a missing image, and the client pulls it and tries again.
  if (!c.images.tryResolve(req.opts.image)) throw new HullError('NOT_FOUND', `No such image: ${req.opts.image}`);
  const { id } = await c.engine.create(req.opts);
  if (req.autoRemove) c.state.setAutoRemove(id);
  if (req.consoleSize && req.opts.tty) c.state.consoleSizes.set(id, req.consoleSize);
  sendJson(c, 201, { Id: id, Warnings: req.warnings });
}

async function list(c: Ctx): Promise<void> {
  const filters = c.query.filters();
  const all = c.query.bool('all') || wantsAll(filters);
  let rows = filterContainers(await c.engine.ps({ all }), filters, (ref) => imageIdsOf(c, ref));
  const limit = c.query.int('limit', -1)!;
  if (limit > 0) rows = rows.slice(0, limit);
  sendJson(
    c,
    200,
    rows.map(({ PortsText: _text, NetworkMode, ...r }) => ({ ...r, HostConfig: { NetworkMode } })),
  );
}

async function inspect(c: Ctx): Promise<void> {
  sendJson(c, 200, await inspectOf(c, c.params.id!));
}

async function start(c: Ctx): Promise<void> {
  const before = await c.engine.inspect(c.params.id!);
  if (before.State.Running) return sendStatus(c, 304);
  try {
    await c.engine.start(before.Id);
    // The terminal size the client asked for at create (docker sends it again with resize).
    const size = c.state.consoleSizes.get(before.Id);
    c.state.consoleSizes.delete(before.Id);
    if (size) resizeTty(before.LogPath, size[0], size[1]);
  } finally {
    // Waiters for the next exit learn of the start (or of the failed start's exit).
    c.state.started(before.Id);
  }
  sendStatus(c, 204);
}

function timeoutOf(c: Ctx): number | undefined {
  return c.query.int('t') ?? c.query.int('timeout');
}

async function stop(c: Ctx): Promise<void> {
  const i = await c.engine.inspect(c.params.id!);
  if (!i.State.Running) return sendStatus(c, 304);
  if (c.query.str('signal')) await c.engine.kill(i.Id, c.query.str('signal')!);
  await c.engine.stop(i.Id, timeoutOf(c) ?? 10);
  sendStatus(c, 204);
}

async function kill(c: Ctx): Promise<void> {
  const sig = c.query.str('signal') || 'SIGKILL';
  if (!/^(SIG)?[A-Z0-9+-]+$|^\d+$/.test(sig)) throw new HttpError(400, `invalid signal: ${sig}`);
  const i = await c.engine.inspect(c.params.id!);
  await c.engine.kill(i.Id, sig);
  sendStatus(c, 204);
}

async function restart(c: Ctx): Promise<void> {
  const i = await c.engine.inspect(c.params.id!);
  await c.engine.restart(i.Id, timeoutOf(c) ?? 10);
  c.state.started(i.Id);
  sendStatus(c, 204);
}

async function remove(c: Ctx): Promise<void> {
  const id = await c.engine.rm(c.params.id!, { force: c.query.bool('force'), volumes: c.query.bool('v') });
  c.state.removed(id);
  sendStatus(c, 204);
}

async function wait(c: Ctx): Promise<void> {
  const cond = c.query.str('condition') || 'not-running';
  if (!['not-running', 'next-exit', 'removed'].includes(cond)) throw new HttpError(400, `invalid condition: "${cond}" (not-running, next-exit or removed)`);
  const i = await c.engine.inspect(c.params.id!);
  const id = i.Id;
  const current = (): ExitResult => ({ StatusCode: i.State.ExitCode, OOMKilled: i.State.OOMKilled });
  const res = startJsonStream(c);
  const ac = new AbortController();
  res.on('close', () => ac.abort());
  let r: ExitResult;
  try {
    if (cond === 'not-running') r = i.State.Running ? await c.state.watchExit(id) : current();
    else if (cond === 'next-exit') r = await c.state.nextExit(id, ac.signal);
    else {
      let last: ExitResult = current();
      const exited = i.State.Running || i.State.Status === 'created' ? c.state.nextExit(id, ac.signal).then((x) => (last = x)) : Promise.resolve();
      exited.catch(() => undefined);
      await c.state.gone(id, ac.signal);
      await Promise.race([exited, sleep(200)]);
      r = last;
    }
  } catch (e) {
    if (ac.signal.aborted) return;
    r = { StatusCode: 255, OOMKilled: false, Error: (e as Error).message };
  }
  if (ac.signal.aborted) return;
  res.end(`${JSON.stringify({ StatusCode: r.StatusCode, Error: r.Error ? { Message: r.Error } : null })}\n`);
}

/** Write log records to a stream reply: framed per stream, or raw with a TTY; optional timestamps. */
function recordWriter(out: StreamReply, o: { stdout: boolean; stderr: boolean; timestamps: boolean; since?: number; until?: number }) {
  const atStart = { stdout: true, stderr: true };
  return async (recs: LogRecord[]) => {
    for (const r of recs) {
      if (o.since !== undefined || o.until !== undefined) {
        const t = Date.parse(dockerTime(r.time)) / 1000;
        if (o.since !== undefined && t < o.since) continue;
        if (o.until !== undefined && t > o.until) continue;
      }
      if (!(r.stream === 'stdout' ? o.stdout : o.stderr)) continue;
      const prefix = o.timestamps && atStart[r.stream] ? `${dockerTime(r.time)} ` : '';
      atStart[r.stream] = endsLine(r);
      await out.write(r.stream === 'stdout' ? 1 : 2, prefix ? Buffer.concat([Buffer.from(prefix), r.data]) : r.data);
    }
  };
}

function attach(c: Ctx): Promise<void> {
  return attachWith(c, {
    stdin: c.query.bool('stdin'),
    stdout: c.query.bool('stdout'),
    stderr: c.query.bool('stderr'),
    open: (o) => openStreamReply(c, o),
  });
}

/**
 * `GET /containers/{id}/attach/ws`, as docker: the same attach over a WebSocket, output raw in
 * binary messages (text before API 1.28), stdin from the client's messages; before API 1.42
 * all three streams are attached whatever the query says.
 */
function attachWs(c: Ctx): Promise<void> {
  const all = compareVersions(c.version, '1.42') < 0;
  return attachWith(c, {
    stdin: all || c.query.bool('stdin'),
    stdout: all || c.query.bool('stdout'),
    stderr: all || c.query.bool('stderr'),
    open: (o) => openWebSocketReply(c, { binary: compareVersions(c.version, '1.28') >= 0, wantInput: o.wantInput }),
  });
}

interface AttachHow {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  open(o: { multiplexed: boolean; wantInput: boolean; rest?: Buffer }): StreamReply;
}

async function attachWith(c: Ctx, how: AttachHow): Promise<void> {
  const i = await inspectOf(c, c.params.id!);
  const id = i.Id;
  const tty = i.Config.Tty === true;
  const { stdin, stdout, stderr } = how;
  const logs = c.query.bool('logs');
  const stream = c.query.bool('stream');
  // docker accepts and ignores stdin for containers without -i.
  const withStdin = stdin && i.Config.OpenStdin === true && stream;
  // docker looks for the detach keys with a TTY only
  const keys = withStdin && tty ? parseDetachKeys(c.query.str('detachKeys')) : undefined;
  // a request body (dockerode sends its options as JSON) is not input: the input follows it
  const rest = c.hijack && c.req.headers.upgrade?.toLowerCase() !== 'websocket' ? (await hijackBody(c)).rest : undefined;
  const out = how.open({ multiplexed: !tty, wantInput: withStdin, rest });
  const done = c.state.attachBegin(id);
  // the attach ends with the run, a client that went away, or (see below) its input
  const over = new AbortController();
  const signal = AbortSignal.any([out.signal, over.signal]);
  let forwarding: Promise<void> | undefined;
  try {
    const write = recordWriter(out, { stdout, stderr, timestamps: false });
    let offset = fileSize(i.LogPath);
    if (logs) {
      const all = readAll(i.LogPath);
      await write(all.records);
      offset = all.offset;
    }
    if (stream) {
      const until = c.state.nextExit(id, signal);
      until.catch(() => undefined);
      if (withStdin && out.input) forwarding = forwardStdin(c, id, stdinSource(out.input, keys), { closes: i.Config.StdinOnce === true && !tty }, signal, () => over.abort());
      await follow(i.LogPath, { offset, until, signal, onRecords: write });
    }
  } finally {
    done();
    out.end();
    over.abort();
    await forwarding;
  }
}

/**
 * The client's input into the container's stdin once it runs (a client may attach before the
 * start). As docker: when the input ends and that closes the container's stdin (StdinOnce, no
 * TTY) the attach goes on until the run ends; otherwise (and after the detach keys) the attach
 * ends there (`end`), and stdin stays open for the next one.
 */
async function forwardStdin(c: Ctx, id: string, src: StdinSource, o: { closes: boolean }, signal: AbortSignal, end: () => void): Promise<void> {
  try {
    await c.engine.attachStdin(id, src.stream, signal);
    if (signal.aborted) return;
    const detached = await src.ended;
    if (detached || !o.closes) end();
  } catch (e) {
    if (!signal.aborted) process.stderr.write(`hull serve: stdin of ${id.slice(0, 12)}: ${(e as Error).message}\n`);
  } finally {
    src.stream.destroy();
  }
}

async function logs(c: Ctx): Promise<void> {
  const stdout = c.query.bool('stdout');
  const stderr = c.query.bool('stderr');
  if (!stdout && !stderr) throw new HttpError(400, 'Bad parameters: you must choose at least one stream');
  const i = await inspectOf(c, c.params.id!);
  const tailRaw = c.query.str('tail') ?? 'all';
  if (tailRaw !== 'all' && !/^\d+$/.test(tailRaw)) throw new HttpError(400, `invalid tail value: ${JSON.stringify(tailRaw)} (a number or "all")`);
  const tail = tailRaw === 'all' ? -1 : Number(tailRaw);
  const num = (k: string) => {
    const v = c.query.str(k);
    if (!v) return undefined;
    if (!/^\d+(\.\d+)?$/.test(v)) throw new HttpError(400, `invalid ${k} value: ${JSON.stringify(v)} (a unix timestamp)`);
    return Number(v) || undefined;
  };
  const since = num('since');
  const until = num('until');
  const out = openStreamReply(c, { multiplexed: i.Config.Tty !== true, wantInput: false });
  try {
    const write = recordWriter(out, { stdout, stderr, timestamps: c.query.bool('timestamps'), since, until });
    const all = readAll(i.LogPath, tail);
    await write(all.records);
    if (c.query.bool('follow') && i.State.Running) {
      const ended = c.state.watchExit(i.Id);
      await follow(i.LogPath, { offset: all.offset, until: ended, signal: out.signal, onRecords: write });
    }
  } finally {
    out.end();
  }
}

async function sample(c: Ctx, id: string): Promise<Sample | undefined> {
  const [s] = await c.engine.stats([id], 0);
  return s ? { at: new Date(), usage: s.usage, systemNs: systemCpuNs(), networks: await c.engine.networkCounters(id) } : undefined;
}

async function stats(c: Ctx): Promise<void> {
  const i = await c.engine.inspect(c.params.id!);
  const name = i.Name.replace(/^\//, '');
  const streamMode = c.query.bool('stream', true);
  const oneShot = c.query.bool('one-shot');
  if (!streamMode) {
    const pre = oneShot ? undefined : await sample(c, i.Id);
    if (pre) await sleep(500);
    const cur = await sample(c, i.Id);
    return sendJson(c, 200, statsBody(i.Id, name, cur, pre));
  }
  const res = startJsonStream(c);
  let open = true;
  res.on('close', () => (open = false));
  let pre: Sample | undefined;
  while (open) {
    const cur = await sample(c, i.Id);
    if (!open) break;
    res.write(`${JSON.stringify(statsBody(i.Id, name, cur, pre))}\n`);
    if (!cur) break;
    pre = cur;
    await sleep(1000);
  }
  if (open) res.end();
}

async function resize(c: Ctx): Promise<void> {
  const h = c.query.int('h');
  const w = c.query.int('w');
  if (h === undefined || w === undefined || h < 0 || w < 0) throw new HttpError(400, 'h and w (non-negative integers) are required');
  const i = await c.engine.inspect(c.params.id!);
  // Applied to a running container with a TTY under conmon; otherwise accepted without effect.
  if (i.State.Running && i.Config.Tty === true && h > 0 && w > 0) resizeTty(i.LogPath, h, w);
  sendStatus(c, 200);
}

async function prune(c: Ctx): Promise<void> {
  const filters = c.query.filters();
  for (const k of filters.keys()) throw new HttpError(400, `invalid filter '${k}'`);
  const { deleted } = await c.engine.prune();
  for (const id of deleted) c.state.removed(id);
  sendJson(c, 200, { ContainersDeleted: deleted.length ? deleted : null, SpaceReclaimed: 0 });
}

export function register(r: Router<Handler>): void {
  r.add('POST', '/containers/create', create);
  r.add('GET', '/containers/json', list);
  r.add('POST', '/containers/prune', prune);
  r.add('GET', '/containers/{id}/json', inspect);
  r.add('POST', '/containers/{id}/start', start);
  r.add('POST', '/containers/{id}/stop', stop);
  r.add('POST', '/containers/{id}/kill', kill);
  r.add('POST', '/containers/{id}/restart', restart);
  r.add('DELETE', '/containers/{id}', remove);
  r.add('POST', '/containers/{id}/wait', wait);
  r.add('POST', '/containers/{id}/attach', attach);
  r.add('GET', '/containers/{id}/attach/ws', attachWs);
  r.add('GET', '/containers/{id}/logs', logs);
  r.add('GET', '/containers/{id}/stats', stats);
  r.add('POST', '/containers/{id}/resize', resize);
}

