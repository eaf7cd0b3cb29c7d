/**
 * A ttrpc server on a unix socket: requests are dispatched to handlers by service and method,
 * concurrently (Wait blocks for as long as a task runs while other calls go on), and each
 * answer goes back on its request's stream id. A handler's thrown error becomes the
 * Response's status (src/shim/grpc-status.ts); an unknown service or method is Unimplemented,
 * an even stream id InvalidArgument and an oversized message ResourceExhausted, as
 * containerd/ttrpc's own server answers them.
 */
import fs from 'node:fs';
import net from 'node:net';
import { Code, statusOf } from './grpc-status.js';
import {
  decodeRequest, encodeMessage, encodeResponse, isOversized, MESSAGE_LENGTH_MAX, MessageDecoder, namespaceOf,
  TYPE_REQUEST, TYPE_RESPONSE, type Request, type Status,
} from './ttrpc-codec.js';

export interface CallContext {
  /** containerd namespace from the request metadata, when sent. */
  namespace?: string;
  request: Request;
}

/** Takes the request payload, returns the response payload. */
export type Handler = (payload: Buffer, ctx: CallContext) => Promise<Buffer>;

export type Services = Record<string, Record<string, Handler>>;

export class TtrpcServer {
  private readonly server: net.Server;
  private readonly conns = new Set<net.Socket>();

  constructor(private readonly services: Services, private readonly onError: (e: unknown) => void = () => undefined) {
    this.server = net.createServer((c) => this.serve(c));
  }

  /** Listens on a unix socket path (a stale socket file must have been removed by the caller). */
  listen(path: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const fail = (e: Error) => reject(e);
      this.server.once('error', fail);
      this.server.listen(path, () => {
        this.server.off('error', fail);
        try {
          fs.chmodSync(path, 0o600);
        } catch (e) {
          this.server.close();
          return reject(e);
        }
        resolve();
      });
    });
  }

  /** Stops accepting and closes every connection (pending calls are abandoned). */
  close(): Promise<void> {
    for (const c of this.conns) c.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** Number of client connections open now. */
  get connections(): number {
    return this.conns.size;
  }

  private serve(c: net.Socket): void {
    this.conns.add(c);
    const dec = new MessageDecoder();
    const send = (streamId: number, status: Status | undefined, payload: Buffer) => {
      if (c.destroyed) return;
      let body = encodeResponse({ status, payload });
      if (body.length > MESSAGE_LENGTH_MAX) body = encodeResponse({ status: { code: Code.RESOURCE_EXHAUSTED, message: `response of ${body.length} bytes exceeds ${MESSAGE_LENGTH_MAX}` }, payload: Buffer.alloc(0) });
      c.write(encodeMessage(streamId, TYPE_RESPONSE, body));
    };
    c.on('data', (chunk: Buffer) => {
      let msgs;
      try {
        msgs = dec.push(chunk);
      } catch (e) {
        this.onError(e);
        c.destroy();
        return;
      }
      for (const m of msgs) {
        if (isOversized(m)) {
          send(m.streamId, { code: Code.RESOURCE_EXHAUSTED, message: `message length ${m.oversized} exceed maximum message size of ${MESSAGE_LENGTH_MAX}` }, Buffer.alloc(0));
          continue;
        }
        if (m.type !== TYPE_REQUEST) continue; // ttrpc ignores other types from a client
        if (m.streamId % 2 !== 1) {
          send(m.streamId, { code: Code.INVALID_ARGUMENT, message: 'StreamID must be odd for client initiated streams' }, Buffer.alloc(0));
          continue;
        }
        let req: Request;
        try {
          req = decodeRequest(m.payload);
        } catch (e) {
          send(m.streamId, { code: Code.INVALID_ARGUMENT, message: `unmarshal request error: ${(e as Error).message}` }, Buffer.alloc(0));
          continue;
        }
        const h = this.services[req.service]?.[req.method];
        if (!h) {
          const what = this.services[req.service] ? `method ${req.method}` : `service ${req.service}`;
          send(m.streamId, { code: Code.UNIMPLEMENTED, message: what }, Buffer.alloc(0));
          continue;
        }
        h(req.payload, { namespace: namespaceOf(req), request: req }).then(
          (out) => send(m.streamId, undefined, out),
          (e) => send(m.streamId, statusOf(e), Buffer.alloc(0)),
        );
      }
    });
    c.on('error', (e) => this.onError(e));
    c.on('close', () => this.conns.delete(c));
  }
}
