/**
 * A stream reply over a WebSocket (RFC 6455), for docker's `GET /containers/{id}/attach/ws`:
 * the handshake on the upgraded connection, then every output chunk as one message (binary, or
 * text for clients older than API 1.28, as docker), never multiplexed; the client's messages
 * are the input. Pings are answered; a close frame from the client ends the input, and the
 * end of the reply answers it (or sends a normal close). Writes wait for the client to drain, and
 * the input's reader holds the socket back, so neither side fills memory.
 */
import { PassThrough } from 'node:stream';
import type { Ctx } from './context.js';
import { HttpError } from './errors.js';
import { drained, type StreamReply } from './hijack.js';
import { API_VERSION } from './version.js';
import {
  acceptKey,
  closeFrame,
  CLOSE_NORMAL,
  encodeFrame,
  OP_BINARY,
  OP_PONG,
  OP_TEXT,
  validKey,
  WsDecoder,
  WsProtocolError,
} from '../streams/websocket.js';

/** Checks the handshake (before anything is written, so a bad one is a plain HTTP error). */
function handshakeKey(c: Ctx): string {
  const h = c.req.headers;
  if (!c.hijack || String(h.upgrade ?? '').toLowerCase() !== 'websocket') {
    throw new HttpError(400, `${c.path} is a WebSocket endpoint: the request needs "Upgrade: websocket"`);
  }
  if (!/\bupgrade\b/i.test(String(h.connection ?? ''))) throw new HttpError(400, 'WebSocket handshake: "Connection: Upgrade" is missing');
  if (String(h['sec-websocket-version'] ?? '') !== '13') {
    throw new HttpError(400, `WebSocket handshake: Sec-WebSocket-Version ${JSON.stringify(h['sec-websocket-version'] ?? '')} is not supported (13)`);
  }
  const key = h['sec-websocket-key'];
  if (typeof key !== 'string' || !validKey(key)) throw new HttpError(400, 'WebSocket handshake: Sec-WebSocket-Key is missing or not the base64 of 16 bytes');
  return key.trim();
}

export function openWebSocketReply(c: Ctx, opts: { binary: boolean; wantInput: boolean }): StreamReply {
  const key = handshakeKey(c);
  const s = c.hijack!.socket;
  (s as typeof s & { hijacked?: boolean }).hijacked = true;
  s.write(
    [
      'HTTP/1.1 101 Switching Protocols',
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Accept: ${acceptKey(key)}`,
      `Api-Version: ${API_VERSION}`,
      'Server: hull',
    ].join('\r\n') + '\r\n\r\n',
  );
  const ac = new AbortController();
  let closing = false; // a close frame went out: nothing more is written
  const input = opts.wantInput ? new PassThrough() : null;
  const dec = new WsDecoder();
  const finishInput = () => {
    if (input && !input.writableEnded) input.end();
  };
  const sendClose = (code: number, reason: string) => {
    if (closing || !s.writable) return;
    closing = true;
    s.write(closeFrame(code, reason));
    s.end();
    setTimeout(() => s.destroy(), 10_000).unref();
  };
  const onData = (chunk: Buffer) => {
    let events;
    try {
      events = dec.push(chunk);
    } catch (e) {
      finishInput();
      sendClose((e as WsProtocolError).code ?? 1002, (e as Error).message);
      return;
    }
    for (const ev of events) {
      if (ev.type === 'data') {
        if (input && !input.writableEnded && !input.write(ev.data)) {
          s.pause();
          input.once('drain', () => s.resume());
        }
      } else if (ev.type === 'ping') {
        if (!closing && s.writable) s.write(encodeFrame(OP_PONG, ev.data));
      } else if (ev.type === 'close') {
        // As docker: the client's close is the end of its input (a WebSocket has no
        // half-close); the close is answered when the attach ends, so output written until
        // then (a StdinOnce container's last words) is not lost.
        finishInput();
      }
    }
  };
  s.on('data', onData);
  s.on('end', finishInput);
  s.on('close', () => {
    finishInput();
    ac.abort();
  });
  const head = c.hijack!.head;
  if (head.length) onData(head);

  const opcode = opts.binary ? OP_BINARY : OP_TEXT;
  const write = async (_stream: 0 | 1 | 2, data: Buffer): Promise<void> => {
    if (ac.signal.aborted || closing || data.length === 0) return;
    if (!s.write(encodeFrame(opcode, data))) await drained(s, ac.signal);
  };
  return { write, end: () => sendClose(CLOSE_NORMAL, ''), signal: ac.signal, input };
}
