/**
 * The server side of RFC 6455 (WebSocket), pure: the handshake's accept key, frames out, and an
 * incremental decoder of the client's frames that takes bytes in chunks of any size. Used by
 * docker's `GET /containers/{id}/attach/ws`, where every message is raw stream bytes (stdout
 * and stderr unframed, as docker sends them; stdin from the client's messages of either type).
 *
 * The decoder hands a data frame's payload on as it arrives (unmasked), not once its message is
 * whole, so a long message needs no buffer of its size and the reader's backpressure reaches the
 * socket. Control frames (close, ping, pong) are held until whole; they are at most 125 bytes.
 */
import { createHash } from 'node:crypto';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export const OP_CONTINUATION = 0x0;
export const OP_TEXT = 0x1;
export const OP_BINARY = 0x2;
export const OP_CLOSE = 0x8;
export const OP_PING = 0x9;
export const OP_PONG = 0xa;

/** Close codes (RFC 6455 section 7.4.1) hull sends. */
export const CLOSE_NORMAL = 1000;
export const CLOSE_PROTOCOL_ERROR = 1002;

/** The Sec-WebSocket-Accept value for a client's Sec-WebSocket-Key. */
export function acceptKey(key: string): string {
  return createHash('sha1').update(key + GUID).digest('base64');
}

/** A Sec-WebSocket-Key is the base64 of 16 bytes (RFC 6455 section 4.1). */
export function validKey(key: string | undefined): key is string {
  return key !== undefined && /^[A-Za-z0-9+/]{22}==$/.test(key.trim());
}

/** One server frame (never masked, always FIN): `opcode` with `payload`. */
export function encodeFrame(opcode: number, payload: Buffer): Buffer {
  const n = payload.length;
  const head = n < 126 ? Buffer.alloc(2) : n < 0x10000 ? Buffer.alloc(4) : Buffer.alloc(10);
  head[0] = 0x80 | opcode;
  if (n < 126) head[1] = n;
  else if (n < 0x10000) {
    head[1] = 126;
    head.writeUInt16BE(n, 2);
  } else {
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(n), 2);
  }
  return Buffer.concat([head, payload]);
}

/** A close frame with `code` and a reason (cut to fit the 125-byte limit). */
export function closeFrame(code: number, reason = ''): Buffer {
  const r = Buffer.from(reason).subarray(0, 123);
  const p = Buffer.alloc(2 + r.length);
  p.writeUInt16BE(code, 0);
  r.copy(p, 2);
  return encodeFrame(OP_CLOSE, p);
}

export type WsEvent =
  | { type: 'data'; data: Buffer }
  | { type: 'ping'; data: Buffer }
  | { type: 'pong'; data: Buffer }
  | { type: 'close'; code?: number; reason: string };

/** The client broke the protocol; `code` is the close code to answer with. */
export class WsProtocolError extends Error {
  constructor(
    message: string,
    readonly code = CLOSE_PROTOCOL_ERROR,
  ) {
    super(message);
  }
}

interface Header {
  opcode: number;
  fin: boolean;
  mask: Buffer;
  length: number;
}

/** Incremental decoder of client frames. After a close or an error it takes nothing more. */
export class WsDecoder {
  private held: Buffer = Buffer.alloc(0);
  private frame: Header | undefined;
  /** Payload bytes of the current frame already handed on (the mask's phase). */
  private done = 0;
  private control: Buffer[] = [];
  /** Inside a fragmented data message (a continuation frame is expected). */
  private inMessage = false;
  private over = false;

  /** Add bytes; returns what they complete. Throws WsProtocolError on a broken frame. */
  push(chunk: Buffer): WsEvent[] {
    if (this.over) return [];
    let buf = this.held.length ? Buffer.concat([this.held, chunk]) : chunk;
    this.held = Buffer.alloc(0);
    const out: WsEvent[] = [];
    try {
      while (!this.over) {
        if (!this.frame) {
          const h = this.header(buf);
          if (!h) break;
          this.frame = h.header;
          this.done = 0;
          buf = buf.subarray(h.size);
        }
        const f = this.frame;
        const take = Math.min(f.length - this.done, buf.length);
        const part = unmask(buf.subarray(0, take), f.mask, this.done);
        buf = buf.subarray(take);
        this.done += take;
        if (f.opcode >= OP_CLOSE) this.control.push(part);
        else if (part.length) out.push({ type: 'data', data: part });
        if (this.done < f.length) break;
        this.frame = undefined;
        if (f.opcode >= OP_CLOSE) {
          const ev = controlEvent(f.opcode, Buffer.concat(this.control));
          this.control = [];
          out.push(ev);
          if (ev.type === 'close') this.over = true;
        } else {
          this.inMessage = !f.fin;
        }
      }
    } catch (e) {
      this.over = true;
      throw e;
    }
    if (!this.over && buf.length) this.held = Buffer.from(buf);
    return out;
  }

  /** Parse a frame header at the start of `b`, or undefined when it is not all there yet. */
  private header(b: Buffer): { header: Header; size: number } | undefined {
    if (b.length < 2) return undefined;
    const b0 = b[0]!;
    const b1 = b[1]!;
    if (b0 & 0x70) throw new WsProtocolError('reserved bits set (no extension was agreed)');
    const opcode = b0 & 0x0f;
    const fin = (b0 & 0x80) !== 0;
    if (!(b1 & 0x80)) throw new WsProtocolError('an unmasked frame from the client');
    if (![OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG].includes(opcode)) throw new WsProtocolError(`unknown opcode ${opcode}`);
    let length = b1 & 0x7f;
    let at = 2;
    if (opcode >= OP_CLOSE) {
      if (!fin) throw new WsProtocolError('a fragmented control frame');
      if (length > 125) throw new WsProtocolError(`a control frame of ${length} bytes (at most 125)`);
    } else if (opcode === OP_CONTINUATION) {
      if (!this.inMessage) throw new WsProtocolError('a continuation frame outside a message');
    } else if (this.inMessage) {
      throw new WsProtocolError('a new message inside a fragmented one');
    }
    if (length === 126) {
      if (b.length < 4) return undefined;
      length = b.readUInt16BE(2);
      at = 4;
    } else if (length === 127) {
      if (b.length < 10) return undefined;
      const big = b.readBigUInt64BE(2);
      if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw new WsProtocolError(`a frame of ${big} bytes`);
      length = Number(big);
      at = 10;
    }
    if (b.length < at + 4) return undefined;
    return { header: { opcode, fin, length, mask: Buffer.from(b.subarray(at, at + 4)) }, size: at + 4 };
  }
}

function unmask(data: Buffer, mask: Buffer, phase: number): Buffer {
  const out = Buffer.allocUnsafe(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i]! ^ mask[(phase + i) & 3]!;
  return out;
}

function controlEvent(opcode: number, p: Buffer): WsEvent {
  if (opcode === OP_PING) return { type: 'ping', data: p };
  if (opcode === OP_PONG) return { type: 'pong', data: p };
  if (p.length === 1) throw new WsProtocolError('a close frame with a 1-byte body');
  if (p.length === 0) return { type: 'close', reason: '' };
  return { type: 'close', code: p.readUInt16BE(0), reason: p.subarray(2).toString('utf8') };
}
