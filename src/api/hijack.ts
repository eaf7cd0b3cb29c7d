/**
 * A stream reply for attach, exec start and logs: over a hijacked connection (`101 UPGRADED`,
 * then raw bytes both ways) or a plain 200 response. Writes wait for the client to drain, so
 * a slow reader slows the follower instead of filling memory; a client that went away turns
 * every write into a no-op and aborts `signal`.
 */
import type { ServerResponse } from 'node:http';
import { PassThrough, type Duplex, type Readable } from 'node:stream';
import type { Ctx } from './context.js';
import { commonHeaders } from './context.js';
import { HttpError } from './errors.js';
import { API_VERSION } from './version.js';
import { frame, hijackHead, MULTIPLEXED_STREAM, RAW_STREAM, type StreamId } from './stream.js';

export interface StreamReply {
  /** Write a chunk of `stream` (framed unless the reply is raw). Resolves once the client took it. */
  write(stream: StreamId, data: Buffer): Promise<void>;
  /** End the reply (closes a hijacked connection). */
  end(): void;
  /** Aborted when the client disconnects. */
  signal: AbortSignal;
  /** What the client sends after the request (hijacked connections only). */
  input: Readable | null;
}

/** Read `n` body bytes that precede the stream on a hijacked socket; the rest is input. */
function splitBody(head: Buffer, contentLength: number): { body: Buffer; rest: Buffer; missing: number } {
  const take = Math.min(head.length, contentLength);
  return { body: head.subarray(0, take), rest: head.subarray(take), missing: contentLength - take };
}

/**
 * Read the JSON body of a hijack request (exec start sends {"Detach":false,"Tty":false}),
 * leaving the socket positioned at the first input byte. Returns the body and the leftover.
 */
export async function hijackBody(c: Ctx, limit = 64 * 1024): Promise<{ body: Buffer; rest: Buffer }> {
  const h = c.hijack!;
  const len = Number(c.req.headers['content-length'] ?? '0');
  if (!Number.isInteger(len) || len < 0 || len > limit) throw new HttpError(413, `request body too large or invalid (content-length ${String(c.req.headers['content-length'])})`);
  let { body, rest, missing } = splitBody(h.head, len);
  if (missing > 0) {
    const parts: Buffer[] = [body];
    await new Promise<void>((resolve, reject) => {
      const on = (d: Buffer) => {
        const need = missing;
        parts.push(d.subarray(0, need));
        missing -= Math.min(need, d.length);
        if (missing <= 0) {
          h.socket.off('data', on);
          h.socket.pause();
          rest = d.subarray(need);
          resolve();
        }
      };
      h.socket.on('data', on);
      h.socket.once('close', () => reject(new Error('client went away')));
    });
    body = Buffer.concat(parts);
  }
  return { body, rest };
}

/** Resolves once `out` drained (after a write that returned false) or `signal` aborted. */
export function drained(out: NodeJS.EventEmitter, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      out.off('drain', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    out.on('drain', done);
    signal.addEventListener('abort', done);
  });
}

export function openStreamReply(c: Ctx, opts: { multiplexed: boolean; rest?: Buffer; wantInput: boolean }): StreamReply {
  const ac = new AbortController();
  let out: Duplex | ServerResponse;
  let input: Readable | null = null;
  if (c.hijack) {
    const s = c.hijack.socket;
    (s as Duplex & { hijacked?: boolean }).hijacked = true;
    s.write(hijackHead(c.req.headers.upgrade !== undefined, opts.multiplexed, API_VERSION));
    if (opts.wantInput) {
      const pt = new PassThrough();
      const rest = opts.rest ?? c.hijack.head;
      if (rest.length) pt.write(rest);
      s.pipe(pt);
      input = pt;
    } else {
      s.resume(); // discard what the client sends
    }
    // The client may half-close (no stdin) and still read: only a full close aborts.
    s.on('close', () => ac.abort());
    out = s;
  } else {
    const res = c.res!;
    res.writeHead(200, { ...commonHeaders(), 'Content-Type': opts.multiplexed ? MULTIPLEXED_STREAM : RAW_STREAM });
    res.flushHeaders();
    res.on('close', () => ac.abort());
    out = res;
    if (opts.wantInput) input = c.req;
  }
  const write = async (stream: StreamId, data: Buffer): Promise<void> => {
    if (ac.signal.aborted || data.length === 0) return;
    const buf = opts.multiplexed ? frame(stream, data) : data;
    if (!out.write(buf)) await drained(out, ac.signal);
  };
  return {
    write,
    end() {
      if (c.hijack) {
        const s = c.hijack.socket;
        s.end();
        // A client that never reads to the end must not hold the socket forever.
        setTimeout(() => s.destroy(), 10_000).unref();
      } else {
        (out as ServerResponse).end();
      }
    },
    signal: ac.signal,
    input,
  };
}
