/**
 * What every route handler gets: the parsed request, the engine, and small reply helpers that
 * add docker's headers. Handlers throw HullError/HttpError; the server turns them into
 * {"message": ...} replies with the right status.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Engine } from '../engine/engine.js';
import type { ImageStore } from '../images/store.js';
import { version as hullVersion } from '../version.js';
import type { Query } from './params.js';
import type { ApiState } from './state.js';
import { API_VERSION } from './version.js';
import { HttpError } from './errors.js';

export interface Hijack {
  socket: Duplex;
  /** Bytes the client sent after the request head (body first, then stream input). */
  head: Buffer;
}

export interface Ctx {
  req: IncomingMessage;
  /** Undefined for upgrade (hijack) requests: answer through `hijack.socket`. */
  res?: ServerResponse;
  hijack?: Hijack;
  method: string;
  path: string;
  /** The API version the client asked for. */
  version: string;
  params: Record<string, string>;
  query: Query;
  root: string;
  engine: Engine;
  images: ImageStore;
  state: ApiState;
}

export type Handler = (c: Ctx) => Promise<void>;

/** Headers docker puts on every reply. */
export function commonHeaders(): Record<string, string> {
  return {
    'Api-Version': API_VERSION,
    'Docker-Experimental': 'false',
    Ostype: 'linux',
    Server: `hull/${hullVersion()} (linux)`,
  };
}

/** The plain response of a request, or a 400 for a hijack request on a route that cannot hijack. */
export function resOf(c: Ctx): ServerResponse {
  if (!c.res) throw new HttpError(400, `${c.method} ${c.path} does not support a connection upgrade`);
  return c.res;
}

export function sendJson(c: Ctx, status: number, body: unknown): void {
  const res = resOf(c);
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { ...commonHeaders(), 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(c.method === 'HEAD' ? undefined : text);
}

export function sendStatus(c: Ctx, status: number): void {
  const res = resOf(c);
  res.writeHead(status, commonHeaders());
  res.end();
}

/** Start a streamed JSON reply (JSON lines: pull progress, stats, wait). Headers go out now. */
export function startJsonStream(c: Ctx, status = 200): ServerResponse {
  const res = resOf(c);
  res.writeHead(status, { ...commonHeaders(), 'Content-Type': 'application/json' });
  res.flushHeaders();
  return res;
}
