/**
 * Exec instances: create (recorded here, in memory, like docker's), start (hijacked stream; the
 * process runs through the engine with the client's socket as stdin), inspect, resize.
 * Finished instances are forgotten after EXEC_KEEP_MS.
 */
import crypto from 'node:crypto';
import { Writable } from 'node:stream';
import { HullError } from '../errors.js';
import { type Ctx, type Handler, sendJson, sendStatus } from './context.js';
import { HttpError } from './errors.js';
import { hijackBody, openStreamReply } from './hijack.js';
import { jsonBody, parseJsonBody } from './params.js';
import type { Router } from './router.js';

/** How long a finished exec instance stays inspectable, ms. Default 10 minutes. */
export const EXEC_KEEP_MS = 10 * 60 * 1000;

export interface ExecInstance {
  id: string;
  containerId: string;
  cmd: string[];
  env: string[];
  workdir?: string;
  user?: string;
  tty: boolean;
  attachStdin: boolean;
  attachStdout: boolean;
  attachStderr: boolean;
  running: boolean;
  started: boolean;
  exitCode: number | null;
  /** The window size last asked for (ConsoleSize at start, then resize). */
  size?: { rows: number; cols: number };
  /** Resizes the running exec's terminal, once it has one. */
  resize?: (rows: number, cols: number) => boolean;
}

const execs = new Map<string, ExecInstance>();

/** Exec instances held: running ones, and finished ones kept for inspection. */
export function execCounts(): { running: number; kept: number } {
  let running = 0;
  for (const e of execs.values()) if (e.running) running++;
  return { running, kept: execs.size - running };
}

function strList(v: unknown, field: string): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new HttpError(400, `invalid ${field}: expected a list of strings`);
  return v as string[];
}

async function create(c: Ctx): Promise<void> {
  const b = await jsonBody<Record<string, unknown>>(c.req, {});
  const cmd = strList(b.Cmd, 'Cmd');
  if (!cmd || cmd.length === 0) throw new HttpError(400, 'No exec command specified');
  if (b.Privileged === true) throw new HttpError(400, 'Privileged is not supported by hull');
  const i = await c.engine.inspect(c.params.id!);
  if (!i.State.Running) throw new HullError('CONFLICT', `Container ${i.Id} is not running`);
  const wd = typeof b.WorkingDir === 'string' && b.WorkingDir ? b.WorkingDir : undefined;
  if (wd && !wd.startsWith('/')) throw new HttpError(400, `the working directory '${wd}' is invalid, it needs to be an absolute path`);
  const e: ExecInstance = {
    id: crypto.randomBytes(32).toString('hex'),
    containerId: i.Id,
    cmd,
    env: strList(b.Env, 'Env') ?? [],
    workdir: wd,
    user: typeof b.User === 'string' && b.User ? b.User : undefined,
    tty: b.Tty === true,
    attachStdin: b.AttachStdin === true,
    attachStdout: b.AttachStdout !== false,
    attachStderr: b.AttachStderr !== false,
    running: false,
    started: false,
    exitCode: null,
  };
  execs.set(e.id, e);
  sendJson(c, 201, { Id: e.id });
}

function get(id: string): ExecInstance {
  const e = execs.get(id);
  if (!e) throw new HullError('NOT_FOUND', `No such exec instance: ${id}`);
  return e;
}

function forget(e: ExecInstance): void {
  setTimeout(() => execs.delete(e.id), EXEC_KEEP_MS).unref();
}

/** A Writable that hands each chunk to `fn` and completes the write when `fn` resolves. */
function sink(fn: (b: Buffer) => Promise<void>): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      fn(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk)).then(() => cb(), cb);
    },
  });
}

async function start(c: Ctx): Promise<void> {
  const e = get(c.params.id!);
  let body: Buffer;
  let rest: Buffer | undefined;
  if (c.hijack) ({ body, rest } = await hijackBody(c));
  else body = await new Promise<Buffer>((resolve, reject) => {
    const parts: Buffer[] = [];
    let n = 0;
    c.req.on('data', (d: Buffer) => {
      n += d.length;
      if (n > 64 * 1024) reject(new HttpError(413, 'request body too large'));
      else parts.push(d);
    });
    c.req.on('end', () => resolve(Buffer.concat(parts)));
    c.req.on('error', reject);
  });
  const b = parseJsonBody<Record<string, unknown>>(body, {});
  if (e.started) throw new HullError('CONFLICT', `Exec instance ${e.id} has already been started`);
  e.started = true;
  e.running = true;
  const cs = b.ConsoleSize;
  if (cs !== undefined && cs !== null && !(Array.isArray(cs) && cs.length === 2 && cs.every((n) => Number.isInteger(n) && n >= 0 && n < 65536))) {
    throw new HttpError(400, 'ConsoleSize must be [height, width], two non-negative integers');
  }
  if (Array.isArray(cs) && cs[0] > 0 && cs[1] > 0 && !e.size) e.size = { rows: cs[0], cols: cs[1] };
  const opts = {
    cmd: e.cmd, env: e.env, workdir: e.workdir, user: e.user, tty: e.tty, interactive: e.attachStdin,
    consoleSize: e.size,
    // a resize that came before the terminal existed is applied when it does
    onResizable: (fn: (rows: number, cols: number) => boolean) => {
      e.resize = fn;
      if (e.size) fn(e.size.rows, e.size.cols);
    },
  };
  if (b.Detach === true) {
    const discard = () => new Writable({ write: (_c, _e, cb) => cb() });
    void c.engine
      .exec(e.containerId, { ...opts, interactive: false }, { stdin: null, stdout: discard(), stderr: discard() })
      .then(
        (code) => (e.exitCode = code),
        () => (e.exitCode = 126),
      )
      .finally(() => ((e.running = false), forget(e)));
    if (c.hijack) {
      const s = c.hijack.socket;
      s.end('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
    } else sendStatus(c, 200);
    return;
  }
  const out = openStreamReply(c, { multiplexed: !e.tty, wantInput: e.attachStdin, rest });
  try {
    const code = await c.engine.exec(e.containerId, opts, {
      stdin: e.attachStdin ? out.input : null,
      stdout: sink((d) => (e.attachStdout ? out.write(1, d) : Promise.resolve())),
      stderr: sink((d) => (e.attachStderr ? out.write(2, d) : Promise.resolve())),
    });
    e.exitCode = code;
  } catch (err) {
    e.exitCode = 126;
    await out.write(2, Buffer.from(`${(err as Error).message}\n`));
  } finally {
    e.running = false;
    forget(e);
    out.end();
  }
}

async function inspect(c: Ctx): Promise<void> {
  const e = get(c.params.id!);
  sendJson(c, 200, {
    ID: e.id,
    Running: e.running,
    ExitCode: e.exitCode,
    ProcessConfig: { tty: e.tty, entrypoint: e.cmd[0], arguments: e.cmd.slice(1), privileged: false, user: e.user ?? '' },
    OpenStdin: e.attachStdin,
    OpenStderr: e.attachStderr,
    OpenStdout: e.attachStdout,
    CanRemove: !e.running && e.started,
    ContainerID: e.containerId,
    DetachKeys: '',
    Pid: 0,
  });
}

async function resize(c: Ctx): Promise<void> {
  const h = c.query.int('h');
  const w = c.query.int('w');
  if (h === undefined || w === undefined || h < 0 || w < 0) throw new HttpError(400, 'h and w (non-negative integers) are required');
  const e = get(c.params.id!);
  if (h > 0 && w > 0 && h < 65536 && w < 65536) {
    e.size = { rows: h, cols: w };
    e.resize?.(h, w);
  }
  sendStatus(c, 200);
}

export function register(r: Router<Handler>): void {
  r.add('POST', '/containers/{id}/exec', create);
  r.add('POST', '/exec/{id}/start', start);
  r.add('GET', '/exec/{id}/json', inspect);
  r.add('POST', '/exec/{id}/resize', resize);
}
