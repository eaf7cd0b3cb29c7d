/**
 * ttrpc as containerd/ttrpc v1.1.1 speaks it: the 10-byte big-endian header, Request/Response
 * envelopes, odd client stream ids, concurrent calls answered out of order, errors as gRPC codes
 * (the ones containerd's errdefs reads), and the server's answers to a bad stream id, an unknown
 * method and an oversized message.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { HullError } from '../../src/errors.js';
import { Code, RpcError, statusOf, unimplemented } from '../../src/shim/grpc-status.js';
import {
  decodeRequest, decodeResponse, encodeMessage, encodeRequest, encodeResponse, HEADER_LENGTH, isOversized, MESSAGE_LENGTH_MAX, MessageDecoder, namespaceOf,
  TYPE_REQUEST, TYPE_RESPONSE,
} from '../../src/shim/ttrpc-codec.js';
import { TtrpcClient } from '../../src/shim/ttrpc-client.js';
import { TtrpcServer } from '../../src/shim/ttrpc-server.js';

test('header: length, stream id, type, flags, big-endian', () => {
  const m = encodeMessage(3, TYPE_REQUEST, Buffer.from('abc'));
  assert.equal(m.length, HEADER_LENGTH + 3);
  assert.deepEqual([...m.subarray(0, 10)], [0, 0, 0, 3, 0, 0, 0, 3, 1, 0]);
  assert.throws(() => encodeMessage(1, 1, Buffer.alloc(MESSAGE_LENGTH_MAX + 1)), /exceeds/);
});

test('decoder: messages split and joined across reads; an oversized one is skipped and reported', () => {
  const a = encodeMessage(1, TYPE_REQUEST, Buffer.from('hello'));
  const b = encodeMessage(3, TYPE_REQUEST, Buffer.from('world!'));
  const all = Buffer.concat([a, b]);
  const d = new MessageDecoder();
  const got = [];
  for (let i = 0; i < all.length; i += 4) got.push(...d.push(all.subarray(i, i + 4)));
  assert.deepEqual(got.map((m) => (isOversized(m) ? 'x' : `${m.streamId}:${m.payload}`)), ['1:hello', '3:world!']);
  const big = Buffer.alloc(HEADER_LENGTH);
  big.writeUInt32BE(MESSAGE_LENGTH_MAX + 10, 0);
  big.writeUInt32BE(5, 4);
  big[8] = 1;
  const d2 = new MessageDecoder();
  const first = d2.push(Buffer.concat([big, Buffer.alloc(100)]));
  assert.equal(first.length, 1);
  assert.ok(isOversized(first[0]!));
  assert.equal(first[0]!.streamId, 5);
  assert.deepEqual(d2.push(Buffer.alloc(MESSAGE_LENGTH_MAX + 10 - 100)), []);
  const after = d2.push(encodeMessage(7, TYPE_REQUEST, Buffer.from('next')));
  assert.equal(after.length, 1);
  assert.equal(isOversized(after[0]!) ? '' : after[0]!.payload.toString(), 'next');
});

test('request and response envelopes round-trip; namespace from metadata', () => {
  const r = decodeRequest(encodeRequest({ service: 's.v1.S', method: 'M', payload: Buffer.from([1, 2]), metadata: [{ key: 'containerd-namespace-ttrpc', value: 'k8s.io' }], timeoutNano: 5e9 }));
  assert.equal(r.service, 's.v1.S');
  assert.equal(r.method, 'M');
  assert.deepEqual([...r.payload], [1, 2]);
  assert.equal(r.timeoutNano, 5e9);
  assert.equal(namespaceOf(r), 'k8s.io');
  const ok = decodeResponse(encodeResponse({ payload: Buffer.from('x') }));
  assert.equal(ok.status, undefined);
  assert.equal(ok.payload.toString(), 'x');
});

test('errors map to the gRPC codes containerd reads', () => {
  assert.equal(statusOf(new HullError('NOT_FOUND', 'x')).code, Code.NOT_FOUND);
  assert.equal(statusOf(new HullError('CONFLICT', 'x')).code, Code.ALREADY_EXISTS);
  assert.equal(statusOf(new HullError('FAILED_PRECONDITION', 'x')).code, Code.FAILED_PRECONDITION);
  assert.equal(statusOf(new HullError('INVALID_ARGUMENT', 'x')).code, Code.INVALID_ARGUMENT);
  assert.equal(statusOf(new HullError('UNAVAILABLE', 'x')).code, Code.UNAVAILABLE);
  assert.equal(statusOf(unimplemented('Pause')).code, Code.UNIMPLEMENTED);
  assert.equal(statusOf(Object.assign(new Error('gone'), { code: 'ENOENT' })).code, Code.NOT_FOUND);
  assert.equal(statusOf(new Error('boom')).code, Code.UNKNOWN);
  assert.equal(statusOf(new Error('boom')).message, 'boom');
});

let dir: string;
let server: TtrpcServer;
let sock: string;
before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-ttrpc-'));
  sock = path.join(dir, 's.sock');
  server = new TtrpcServer({
    'test.v1.Echo': {
      Echo: async (p) => p,
      Slow: async (p) => {
        await new Promise((r) => setTimeout(r, 200));
        return Buffer.concat([Buffer.from('slow:'), p]);
      },
      Ns: async (_p, ctx) => Buffer.from(ctx.namespace ?? ''),
      Missing: async () => { throw new HullError('NOT_FOUND', 'task t1 not found'); },
      Exists: async () => { throw new HullError('CONFLICT', 'exec e1 already exists'); },
      Busy: async () => { throw new HullError('FAILED_PRECONDITION', 'task is running'); },
      Odd: async () => { throw new RpcError(Code.UNIMPLEMENTED, 'no'); },
    },
  });
  await server.listen(sock);
});
after(async () => {
  await server.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('client and server: calls run concurrently and are matched by stream id', async () => {
  const c = await TtrpcClient.connect(`unix://${sock}`);
  try {
    assert.equal((fs.statSync(sock).mode & 0o777), 0o600);
    const order: string[] = [];
    const slow = c.call('test.v1.Echo', 'Slow', Buffer.from('a')).then((b) => order.push(b.toString()));
    const fast = c.call('test.v1.Echo', 'Echo', Buffer.from('b')).then((b) => order.push(b.toString()));
    await Promise.all([slow, fast]);
    assert.deepEqual(order, ['b', 'slow:a']);
    assert.equal((await c.call('test.v1.Echo', 'Ns', Buffer.alloc(0), { namespace: 'k8s.io' })).toString(), 'k8s.io');
  } finally {
    c.close();
  }
});

test('client and server: errors come back as codes with their messages', async () => {
  const c = await TtrpcClient.connect(sock);
  const code = async (m: string, svc = 'test.v1.Echo') => {
    try {
      await c.call(svc, m, Buffer.alloc(0));
      return { code: 0, message: '' };
    } catch (e) {
      return { code: (e as RpcError).code, message: (e as Error).message };
    }
  };
  try {
    assert.deepEqual(await code('Missing'), { code: Code.NOT_FOUND, message: 'task t1 not found' });
    assert.equal((await code('Exists')).code, Code.ALREADY_EXISTS);
    assert.equal((await code('Busy')).code, Code.FAILED_PRECONDITION);
    assert.equal((await code('Odd')).code, Code.UNIMPLEMENTED);
    assert.deepEqual(await code('Nope'), { code: Code.UNIMPLEMENTED, message: 'method Nope' });
    assert.deepEqual(await code('Echo', 'other.Svc'), { code: Code.UNIMPLEMENTED, message: 'service other.Svc' });
  } finally {
    c.close();
  }
});

test('server: an even stream id is refused, and the connection stays usable', async () => {
  const s = net.connect(sock);
  await new Promise((r) => s.once('connect', r));
  const dec = new MessageDecoder();
  const replies: { id: number; code?: number }[] = [];
  s.on('data', (d: Buffer) => {
    for (const m of dec.push(d)) if (!isOversized(m) && m.type === TYPE_RESPONSE) replies.push({ id: m.streamId, code: decodeResponse(m.payload).status?.code });
  });
  s.write(encodeMessage(2, TYPE_REQUEST, encodeRequest({ service: 'test.v1.Echo', method: 'Echo', payload: Buffer.alloc(0) })));
  s.write(encodeMessage(5, TYPE_REQUEST, encodeRequest({ service: 'test.v1.Echo', method: 'Echo', payload: Buffer.from('z') })));
  for (let i = 0; i < 100 && replies.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
  s.destroy();
  assert.deepEqual(replies, [{ id: 2, code: Code.INVALID_ARGUMENT }, { id: 5, code: undefined }]);
});
