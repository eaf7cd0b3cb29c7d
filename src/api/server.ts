/**
 * `hull serve`: the Docker Engine API on a unix socket, as an adapter over the engine.
 *
 *   const s = await startApiServer({ root, socket: '/run/hull/docker.sock' });
 *   ...
 *   await s.close();   // running containers keep running
 *
 * Every request: strip /vX.Y (1.24 .. API_VERSION), route, run the handler; a thrown error
 * becomes docker's {"message": ...} with the status errors.ts gives it. Upgrade requests
 * (attach, exec start) get the raw socket through `Ctx.hijack`.
 */
import fs from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { Engine } from '../engine/engine.js';
import { HullError } from '../errors.js';
import { type Ctx, type Handler, commonHeaders } from './context.js';
import { HttpError, errorBody, statusOf } from './errors.js';
import { Query } from './params.js';
import { Router } from './router.js';
import { ApiState } from './state.js';
import { splitVersion } from './version.js';
import { register as registerSystem } from './system.js';
import { register as registerImages } from './images.js';
import { register as registerContainers } from './containers.js';
import { register as registerExec } from './exec.js';
import { register as registerNetworks } from './networks.js';
import { register as registerBuild } from './build.js';
import { register as registerVolumes } from './volumes.js';
import { register as registerEvents } from './events.js';
import { register as registerManage } from './manage.js';
import { register as registerDf } from './df.js';
import { register as registerArchive } from './archive.js';
import { register as registerChanges } from './changes.js';
import { register as registerUnsupported } from './unsupported.js';

export const DEFAULT_SOCKET = '/run/hull/docker.sock';

export interface ServeOptions {
  /** hull state root. */
  root: string;
  /** Unix socket path. Default /run/hull/docker.sock. */
  socket?: string;
  /** Socket mode. Default 0o660. */
  mode?: number;
  /** Group owning the socket; default 'hull' when that group exists, else unchanged. */
  group?: string;
  /** Called for each request (method, path, status), e.g. for a debug log. */
  onRequest?: (method: string, path: string, status: number) => void;
}

export interface ApiServer {
  socket: string;
  server: http.Server;
  state: ApiState;
  /** Stop accepting, end open connections; containers keep running. */
  close(): Promise<void>;
}

export function buildRouter(): Router<Handler> {
  const r = new Router<Handler>();
  registerSystem(r);
  registerImages(r);
  registerContainers(r);
  registerExec(r);
  registerNetworks(r);
  registerBuild(r);
  registerVolumes(r);
  registerEvents(r);
  registerManage(r);
  registerDf(r);
  registerArchive(r);
  registerChanges(r);
  registerUnsupported(r);
  return r;
}

/** The gid of `name` from /etc/group, or undefined. */
function groupId(name: string): number | undefined {
  try {
    for (const line of fs.readFileSync('/etc/group', 'utf8').split('\n')) {
      const [n, , gid] = line.split(':');
      if (n === name && gid !== undefined) return Number(gid);
    }
  } catch {
    /* no /etc/group */
  }
  return undefined;
}

/** Refuse to take over a socket another live server answers on; remove a stale one. */
async function clearStaleSocket(file: string): Promise<void> {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(file);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new HullError('FAILED_PRECONDITION', `${file} exists and is not a socket`);
  const live = await new Promise<boolean>((resolve) => {
    const req = http.request({ socketPath: file, path: '/_ping', method: 'GET', timeout: 1000 }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => (req.destroy(), resolve(false)));
    req.end();
  });
  if (live) throw new HullError('CONFLICT', `another server already listens on ${file}`);
  fs.rmSync(file, { force: true });
}

export async function startApiServer(o: ServeOptions): Promise<ApiServer> {
  const socket = path.resolve(o.socket ?? DEFAULT_SOCKET);
  const engine = Engine.open(o.root);
  const state = new ApiState(engine, o.root);
  const router = buildRouter();
  const sockets = new Set<Duplex>();

  const dispatch = async (req: IncomingMessage, res: ServerResponse | undefined, hijack: Ctx['hijack']): Promise<void> => {
    const method = req.method ?? 'GET';
    let c: Ctx | undefined;
    try {
      const url = new URL(req.url ?? '/', 'http://hull');
      const { version, path: p } = splitVersion(url.pathname);
      const m = router.match(method, p);
      if (!m) throw new HttpError(404, `page not found`);
      if ('allowed' in m) throw new HttpError(405, `method ${method} not allowed on ${p} (allowed: ${m.allowed.join(', ')})`);
      c = { req, res, hijack, method, path: p, version, params: m.params, query: new Query(url.searchParams), root: o.root, engine, images: engine.images, state };
      await m.handler(c);
      o.onRequest?.(method, p, res?.statusCode ?? 101);
    } catch (e) {
      const status = statusOf(e);
      o.onRequest?.(method, req.url ?? '', status);
      if (status >= 500 && !(e instanceof HullError) && !(e instanceof HttpError)) {
        process.stderr.write(`hull serve: ${method} ${req.url}: ${(e as Error)?.stack ?? String(e)}\n`);
      }
      replyError(res, hijack, status, e, method);
    }
  };

  const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    void dispatch(req, res, undefined);
  });
  server.on('upgrade', (req: IncomingMessage, sock: Duplex, head: Buffer) => {
    sock.on('error', () => undefined);
    void dispatch(req, undefined, { socket: sock, head });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('clientError', (err, s) => {
    if (s.writable) s.end(`HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${JSON.stringify({ message: `bad request: ${err.message}` })}\n`);
    else s.destroy();
  });
  // Headers of a few KiB at most; bodies are limited per route.
  server.maxHeadersCount = 200;

  const gid = groupId(o.group ?? 'hull');
  if (gid === undefined && o.group !== undefined) throw new HullError('INVALID_ARGUMENT', `group ${o.group} does not exist`);
  fs.mkdirSync(path.dirname(socket), { recursive: true, mode: 0o755 });
  await clearStaleSocket(socket);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socket, () => {
      server.off('error', reject);
      resolve();
    });
  });
  fs.chmodSync(socket, o.mode ?? 0o660);
  if (gid !== undefined) fs.chownSync(socket, process.getuid?.() ?? 0, gid);
  void state.recover();

  return {
    socket,
    server,
    state,
    async close() {
      state.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
      fs.rmSync(socket, { force: true });
      engine.close();
    },
  };
}

function replyError(res: ServerResponse | undefined, hijack: Ctx['hijack'], status: number, e: unknown, method: string): void {
  const body = `${JSON.stringify(errorBody(e))}\n`;
  if (res) {
    if (res.headersSent) {
      // A streamed reply failed half-way: end it (JSON-lines routes write their own errorDetail).
      res.destroy();
      return;
    }
    res.writeHead(status, { ...commonHeaders(), 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(method === 'HEAD' ? undefined : body);
    return;
  }
  const s = hijack?.socket;
  if (!s || !s.writable || (s as Duplex & { hijacked?: boolean }).hijacked) {
    s?.destroy();
    return;
  }
  const head = [`HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'Error'}`, 'Content-Type: application/json', `Content-Length: ${Buffer.byteLength(body)}`, 'Connection: close'];
  for (const [k, v] of Object.entries(commonHeaders())) head.push(`${k}: ${v}`);
  s.end(`${head.join('\r\n')}\r\n\r\n${body}`);
}

