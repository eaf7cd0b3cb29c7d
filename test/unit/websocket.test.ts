/**
 * The WebSocket codec (src/streams/websocket.ts) against an independent implementation, the
 * `ws` package: its masked client frames decoded at every chunk boundary, fragmented messages
 * with control frames between the fragments, the protocol errors a server must refuse, and
 * hull's server frames read back by ws's own receiver.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { createRequire } from 'node:module';
import {
  acceptKey,
  closeFrame,
  encodeFrame,
  OP_BINARY,
  OP_CLOSE,
  OP_CONTINUATION,
  OP_PING,
  OP_TEXT,
  validKey,
  WsDecoder,
  WsProtocolError,
  type WsEvent,
} from '../../src/streams/websocket.js';

// ws's frame writer and reader are public (ws.Sender, ws.Receiver) but left out of @types/ws.
interface WsLib {
  Sender: { frame(data: Buffer, o: { fin: boolean; opcode: number; mask: boolean; readOnly: boolean }): Buffer[] };
  Receiver: new (o: { isServer: boolean; skipUTF8Validation: boolean }) => NodeJS.WritableStream & { on(ev: string, f: (...a: never[]) => void): void };
}
const { Sender, Receiver } = createRequire(import.meta.url)('ws') as WsLib;

/** A client frame as ws writes it (masked with a random key). */
const client = (data: Buffer, opcode: number, fin = true): Buffer => Buffer.concat(Sender.frame(Buffer.from(data), { fin, opcode, mask: true, readOnly: false }));

const flatten = (evs: WsEvent[]) => {
  const out: { type: string; text?: string; code?: number }[] = [];
  for (const e of evs) {
    const last = out[out.length - 1];
    if (e.type === 'data' && last?.type === 'data') last.text += e.data.toString('latin1');
    else if (e.type === 'data' || e.type === 'ping' || e.type === 'pong') out.push({ type: e.type, text: e.data.toString('latin1') });
    else out.push({ type: 'close', code: e.code });
  }
  return out;
};

test('acceptKey: the RFC 6455 example; validKey wants the base64 of 16 bytes', () => {
  assert.equal(acceptKey('dGhlIHNhbXBsZSBub25jZQ=='), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
  assert.ok(validKey(crypto.randomBytes(16).toString('base64')));
  assert.ok(!validKey('abc'));
  assert.ok(!validKey(undefined));
  assert.ok(!validKey(crypto.randomBytes(17).toString('base64')));
});

test('WsDecoder: the same bytes and events at every chunk boundary (fragments, a ping between them, a close)', () => {
  const stream = Buffer.concat([
    client(Buffer.from('hello '), OP_TEXT, false),
    client(Buffer.from('pi'), OP_PING),
    client(Buffer.from('world'), OP_CONTINUATION, true),
    client(Buffer.alloc(0), OP_BINARY),
    client(Buffer.from('!'), OP_BINARY),
    Buffer.concat(Sender.frame(Buffer.from([0x03, 0xe8]), { fin: true, opcode: OP_CLOSE, mask: true, readOnly: false })),
  ]);
  const want = [
    { type: 'data', text: 'hello ' },
    { type: 'ping', text: 'pi' },
    { type: 'data', text: 'world!' },
    { type: 'close', code: 1000 },
  ];
  for (let a = 0; a <= stream.length; a++) {
    for (let b = a; b <= stream.length; b += 3) {
      const d = new WsDecoder();
      const got = [...d.push(stream.subarray(0, a)), ...d.push(stream.subarray(a, b)), ...d.push(stream.subarray(b))];
      assert.deepEqual(flatten(got), want, `split at ${a}, ${b}`);
    }
  }
});

test('WsDecoder: 16-bit and 64-bit lengths, 1 MiB fed in random chunks, payload handed on as it arrives', () => {
  const big = crypto.randomBytes(1 << 20);
  const small = crypto.randomBytes(300);
  const stream = Buffer.concat([client(small, OP_BINARY), client(big, OP_BINARY)]);
  const d = new WsDecoder();
  const parts: Buffer[] = [];
  let events = 0;
  for (let off = 0; off < stream.length; ) {
    const n = 1 + crypto.randomInt(70_000);
    const evs = d.push(stream.subarray(off, off + n));
    events += evs.length;
    for (const e of evs) if (e.type === 'data') parts.push(e.data);
    off += n;
  }
  assert.ok(events > 2, 'the payload comes out in pieces, before its frame is whole');
  assert.ok(Buffer.concat(parts).equals(Buffer.concat([small, big])));
});

test('WsDecoder: refuses what a server must refuse, and takes nothing after', () => {
  const bad: [string, Buffer][] = [
    ['unmasked', encodeFrame(OP_BINARY, Buffer.from('x'))],
    ['reserved bits', (() => { const f = client(Buffer.from('x'), OP_BINARY); f[0]! |= 0x40; return f; })()],
    ['opcode', client(Buffer.from('x'), 0x3)],
    ['fragmented control', client(Buffer.from('x'), OP_PING, false)],
    ['continuation outside', client(Buffer.from('x'), OP_CONTINUATION)],
    ['new message inside', Buffer.concat([client(Buffer.from('a'), OP_TEXT, false), client(Buffer.from('b'), OP_TEXT)])],
    ['1-byte close', client(Buffer.from([3]), OP_CLOSE)],
  ];
  for (const [why, bytes] of bad) {
    const d = new WsDecoder();
    assert.throws(() => d.push(bytes), WsProtocolError, why);
    assert.deepEqual(d.push(client(Buffer.from('y'), OP_BINARY)), [], `${why}: nothing after the error`);
  }
  const long = Buffer.alloc(2 + 4 + 126);
  long[0] = 0x89; // FIN ping
  long[1] = 0x80 | 126;
  assert.throws(() => new WsDecoder().push(long), /control frame of 126/);
});

test('server frames (3 length forms, close) read back by ws\'s receiver', async () => {
  const r = new Receiver({ isServer: false, skipUTF8Validation: true });
  const got: Buffer[] = [];
  let closed: number | undefined;
  r.on('message', (m: Buffer) => got.push(Buffer.from(m)));
  r.on('conclude', (code: number) => (closed = code));
  const msgs = [Buffer.from('a'), crypto.randomBytes(200), crypto.randomBytes(70_000), Buffer.from('z')];
  const wire = Buffer.concat([...msgs.map((m, i) => encodeFrame(i % 2 ? OP_BINARY : OP_TEXT, m)), closeFrame(1000, 'bye')]);
  for (let off = 0; off < wire.length; off += 777) r.write(wire.subarray(off, off + 777));
  await new Promise((res) => setImmediate(res));
  assert.equal(got.length, msgs.length);
  msgs.forEach((m, i) => assert.ok(got[i]!.equals(m), `message ${i}`));
  assert.equal(closed, 1000);
});
