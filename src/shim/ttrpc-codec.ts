/**
 * ttrpc's wire format (containerd/ttrpc v1.1.1, the version containerd 1.6.20 uses), pure:
 * every message is a 10-byte header (u32 payload length, u32 stream id, u8 type, u8 flags; all
 * big-endian) and a payload of at most 4 MiB. Type 1 is a Request, type 2 a Response (both
 * protobuf, src/shim/proto/ttrpc.proto). Clients use odd stream ids; the server answers on the
 * id of the request.
 */
import { decode, encode } from './protos.js';

export const HEADER_LENGTH = 10;
/** Largest payload either side accepts, bytes (ttrpc's messageLengthMax). */
export const MESSAGE_LENGTH_MAX = 4 << 20;
export const TYPE_REQUEST = 1;
export const TYPE_RESPONSE = 2;

export interface Message {
  streamId: number;
  type: number;
  flags: number;
  payload: Buffer;
}

/** A message whose payload was too long: its bytes were skipped. */
export interface Oversized {
  streamId: number;
  type: number;
  oversized: number;
}

export function encodeMessage(streamId: number, type: number, payload: Buffer): Buffer {
  if (payload.length > MESSAGE_LENGTH_MAX) throw new Error(`ttrpc: message of ${payload.length} bytes exceeds ${MESSAGE_LENGTH_MAX}`);
  const h = Buffer.alloc(HEADER_LENGTH);
  h.writeUInt32BE(payload.length, 0);
  h.writeUInt32BE(streamId >>> 0, 4);
  h[8] = type;
  h[9] = 0;
  return Buffer.concat([h, payload]);
}

/**
 * Incremental decoder: push bytes as they arrive, get whole messages. An oversized message is
 * skipped (its bytes discarded as they come) and reported once, as ttrpc's server does, so the
 * caller can answer it with ResourceExhausted and the stream stays in step.
 */
export class MessageDecoder {
  private buf: Buffer = Buffer.alloc(0);
  private skip = 0;

  push(chunk: Buffer): (Message | Oversized)[] {
    const out: (Message | Oversized)[] = [];
    if (this.skip > 0) {
      const n = Math.min(this.skip, chunk.length);
      this.skip -= n;
      chunk = chunk.subarray(n);
    }
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    while (this.buf.length >= HEADER_LENGTH) {
      const length = this.buf.readUInt32BE(0);
      const streamId = this.buf.readUInt32BE(4);
      const type = this.buf[8]!;
      const flags = this.buf[9]!;
      if (length > MESSAGE_LENGTH_MAX) {
        out.push({ streamId, type, oversized: length });
        const have = this.buf.length - HEADER_LENGTH;
        if (have >= length) {
          this.buf = this.buf.subarray(HEADER_LENGTH + length);
          continue;
        }
        this.skip = length - have;
        this.buf = Buffer.alloc(0);
        break;
      }
      if (this.buf.length < HEADER_LENGTH + length) break;
      out.push({ streamId, type, flags, payload: Buffer.from(this.buf.subarray(HEADER_LENGTH, HEADER_LENGTH + length)) });
      this.buf = this.buf.subarray(HEADER_LENGTH + length);
    }
    return out;
  }
}

export function isOversized(m: Message | Oversized): m is Oversized {
  return (m as Oversized).oversized !== undefined;
}

export interface Request {
  service: string;
  method: string;
  payload: Buffer;
  timeoutNano: number;
  metadata: { key: string; value: string }[];
}

export interface Status {
  code: number;
  message: string;
}

export interface Response {
  status?: Status;
  payload: Buffer;
}

export function encodeRequest(r: Omit<Request, 'timeoutNano' | 'metadata'> & Partial<Request>): Buffer {
  return encode('ttrpc.Request', { service: r.service, method: r.method, payload: r.payload, timeoutNano: r.timeoutNano ?? 0, metadata: r.metadata ?? [] });
}

export function decodeRequest(b: Buffer): Request {
  return decode<Request>('ttrpc.Request', b);
}

export function encodeResponse(r: Response): Buffer {
  const v: Record<string, unknown> = { payload: r.payload };
  if (r.status && r.status.code !== 0) v.status = { code: r.status.code, message: r.status.message, details: [] };
  return encode('ttrpc.Response', v);
}

export function decodeResponse(b: Buffer): Response {
  const r = decode<{ status?: { code: number; message: string } | null; payload: Buffer }>('ttrpc.Response', b);
  return { status: r.status ? { code: r.status.code, message: r.status.message } : undefined, payload: r.payload };
}

/** The containerd namespace of a request (ttrpc metadata key containerd-namespace-ttrpc). */
export function namespaceOf(r: Request): string | undefined {
  return r.metadata.find((kv) => kv.key.toLowerCase() === 'containerd-namespace-ttrpc')?.value;
}
