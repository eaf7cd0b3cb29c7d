/**
 * A ttrpc client over a unix socket: the shim's way of publishing events to containerd
 * (TTRPC_ADDRESS), and the tests' way of calling a shim. Stream ids are odd and increase; calls
 * run concurrently and are matched to responses by stream id. A non-zero status is thrown as
 * an RpcError with its code.
 */
import net from 'node:net';
import { RpcError } from './grpc-status.js';
import { decodeResponse, encodeMessage, encodeRequest, isOversized, MessageDecoder, TYPE_REQUEST, TYPE_RESPONSE } from './ttrpc-codec.js';

export class TtrpcClient {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (b: Buffer) => void; reject: (e: Error) => void }>();
  private closedError: Error | undefined;

  private constructor(private readonly sock: net.Socket) {
    const dec = new MessageDecoder();
    sock.on('data', (chunk: Buffer) => {
      for (const m of dec.push(chunk)) {
        const p = this.pending.get(m.streamId);
        if (!p || m.type !== TYPE_RESPONSE) continue;
        this.pending.delete(m.streamId);
        if (isOversized(m)) {
          p.reject(new RpcError(8, `ttrpc: response of ${m.oversized} bytes is too long`));
          continue;
        }
        try {
          const r = decodeResponse(m.payload);
          if (r.status && r.status.code !== 0) p.reject(new RpcError(r.status.code, r.status.message));
          else p.resolve(r.payload);
        } catch (e) {
          p.reject(e as Error);
        }
      }
    });
    const fail = (e: Error) => {
      this.closedError ??= e;
      for (const p of this.pending.values()) p.reject(this.closedError);
      this.pending.clear();
    };
    sock.on('error', fail);
    sock.on('close', () => fail(new Error('ttrpc: closed')));
  }

  /** Connects to a unix socket path (a `unix://` prefix is accepted, as containerd writes addresses). */
  static connect(address: string, timeoutMs = 5000): Promise<TtrpcClient> {
    const p = address.startsWith('unix://') ? address.slice('unix://'.length) : address;
    return new Promise((resolve, reject) => {
      const s = net.connect(p);
      const t = setTimeout(() => {
        s.destroy();
        reject(new Error(`ttrpc: connecting to ${p} timed out`));
      }, timeoutMs);
      s.once('connect', () => {
        clearTimeout(t);
        resolve(new TtrpcClient(s));
      });
      s.once('error', (e) => {
        clearTimeout(t);
        reject(e);
      });
    });
  }

  get closed(): boolean {
    return this.closedError !== undefined;
  }

  /** Calls service/method with an encoded request; resolves with the encoded response. */
  call(service: string, method: string, payload: Buffer, opts: { namespace?: string; timeoutMs?: number } = {}): Promise<Buffer> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId;
    this.nextId += 2;
    const metadata = opts.namespace ? [{ key: 'containerd-namespace-ttrpc', value: opts.namespace }] : [];
    const body = encodeRequest({ service, method, payload, metadata, timeoutNano: opts.timeoutMs ? opts.timeoutMs * 1e6 : 0 });
    return new Promise<Buffer>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = { resolve: (b: Buffer) => { if (timer) clearTimeout(timer); resolve(b); }, reject: (e: Error) => { if (timer) clearTimeout(timer); reject(e); } };
      this.pending.set(id, done);
      if (opts.timeoutMs) {
        timer = setTimeout(() => {
          if (this.pending.delete(id)) reject(new RpcError(4, `ttrpc: ${service}/${method} timed out after ${opts.timeoutMs} ms`));
        }, opts.timeoutMs);
      }
      this.sock.write(encodeMessage(id, TYPE_REQUEST, body));
    });
  }

  close(): void {
    this.sock.destroy();
  }
}
