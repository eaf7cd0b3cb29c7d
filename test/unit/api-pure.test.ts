/** The API server's pure parts: stream framing, routing, versions, query/body parsing, progress messages, stats. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { FrameDecoder, frame, hijackHead, MAX_FRAME } from '../../src/api/stream.js';
import { Router } from '../../src/api/router.js';
import { API_VERSION, compareVersions, splitVersion } from '../../src/api/version.js';
import { HttpError, statusOf, errorBody } from '../../src/api/errors.js';
import { HullError } from '../../src/errors.js';
import { Query, parseJsonBody, readBody } from '../../src/api/params.js';
import { errorMessageLine, parseRegistryAuth } from '../../src/api/progress.js';
import { statsBody, systemCpuNs } from '../../src/api/stats.js';
import { resizeLine, resizeTty } from '../../src/api/resize.js';

test('frame: 8-byte header with stream id and big-endian size', () => {
  const f = frame(1, Buffer.from('hello'));
  assert.deepEqual([...f.subarray(0, 8)], [1, 0, 0, 0, 0, 0, 0, 5]);
  assert.equal(f.subarray(8).toString(), 'hello');
  assert.equal(frame(2, Buffer.alloc(0)).length, 0, 'no empty frames');
  const big = frame(2, Buffer.alloc(MAX_FRAME * 2 + 3, 0x61));
  const frames = new FrameDecoder().push(big);
  assert.deepEqual(frames.map((x) => [x.stream, x.data.length]), [[2, MAX_FRAME], [2, MAX_FRAME], [2, 3]]);
});

test('FrameDecoder: frames split across chunks, several in one chunk, bad headers', () => {
  const all = Buffer.concat([frame(1, Buffer.from('ab')), frame(2, Buffer.from('cde')), frame(1, Buffer.from('f'))]);
  const dec = new FrameDecoder();
  const got: string[] = [];
  for (let i = 0; i < all.length; i += 3) for (const f of dec.push(all.subarray(i, i + 3))) got.push(`${f.stream}:${f.data.toString()}`);
  assert.deepEqual(got, ['1:ab', '2:cde', '1:f']);
  assert.equal(dec.pending, 0);
  assert.throws(() => new FrameDecoder().push(Buffer.from([7, 0, 0, 0, 0, 0, 0, 1, 0x41])), /bad frame header/);
});

test('hijackHead: 101 UPGRADED with the stream type, or 200 without upgrade', () => {
  const up = hijackHead(true, true, '1.45');
  assert.match(up, /^HTTP\/1.1 101 UPGRADED\r\n/);
  assert.match(up, /Content-Type: application\/vnd.docker.multiplexed-stream\r\n/);
  assert.match(up, /Connection: Upgrade\r\nUpgrade: tcp\r\n/);
  assert.ok(up.endsWith('\r\n\r\n'));
  const raw = hijackHead(false, false, '1.45');
  assert.match(raw, /^HTTP\/1.1 200 OK\r\nContent-Type: application\/vnd.docker.raw-stream\r\n/);
  assert.doesNotMatch(raw, /Upgrade/);
});

test('Router: parameters, greedy image names, 405 hints, HEAD falls back to GET', () => {
  const r = new Router<string>();
  r.add('GET', '/containers/{id}/json', 'inspect').add('GET', '/images/{name*}/json', 'img').add('DELETE', '/images/{name*}', 'rmi').add('GET', '/_ping', 'ping');
  assert.deepEqual(r.match('GET', '/containers/abc/json'), { handler: 'inspect', params: { id: 'abc' } });
  assert.deepEqual(r.match('GET', '/images/localhost:5000/a/b:1/json'), { handler: 'img', params: { name: 'localhost:5000/a/b:1' } });
  assert.deepEqual(r.match('DELETE', '/images/busybox%3Alatest'), { handler: 'rmi', params: { name: 'busybox:latest' } });
  assert.deepEqual(r.match('POST', '/containers/abc/json'), { allowed: ['GET'] });
  assert.equal(r.match('GET', '/nothing'), undefined);
  assert.deepEqual(r.match('HEAD', '/_ping'), { handler: 'ping', params: {} });
});

test('versions: prefixes within 1.24..API_VERSION, unversioned paths, clear errors', () => {
  assert.ok(compareVersions(API_VERSION, '1.44') >= 0, 'announces at least 1.44');
  assert.deepEqual(splitVersion('/v1.45/containers/json'), { version: '1.45', path: '/containers/json' });
  assert.deepEqual(splitVersion('/v1.24/_ping'), { version: '1.24', path: '/_ping' });
  assert.deepEqual(splitVersion('/containers/json'), { version: API_VERSION, path: '/containers/json' });
  assert.throws(() => splitVersion('/v1.99/info'), (e: HttpError) => e.status === 400 && /too new/.test(e.message));
  assert.throws(() => splitVersion('/v1.23/info'), (e: HttpError) => e.status === 400 && /too old/.test(e.message));
  assert.ok(compareVersions('1.9', '1.10') < 0);
});

test('error mapping: HullError codes to statuses, HttpError keeps its own, anything else 500', () => {
  assert.equal(statusOf(new HullError('NOT_FOUND', 'x')), 404);
  assert.equal(statusOf(new HullError('CONFLICT', 'x')), 409);
  assert.equal(statusOf(new HullError('INVALID_ARGUMENT', 'x')), 400);
  assert.equal(statusOf(new HullError('FAILED_PRECONDITION', 'x')), 409);
  assert.equal(statusOf(new HullError('UNAVAILABLE', 'x')), 503);
  assert.equal(statusOf(new HullError('PERMISSION_DENIED', 'x')), 403);
  assert.equal(statusOf(new HttpError(413, 'big')), 413);
  assert.equal(statusOf(new Error('boom')), 500);
  assert.deepEqual(errorBody(new HullError('NOT_FOUND', 'No such container: x')), { message: 'No such container: x' });
});

test('Query: docker booleans, integers and filters, with 400s naming the parameter', () => {
  const q = new Query(new URLSearchParams('a=1&b=false&c=True&d=&n=12&bad=x&filters={"status":["running"],"dangling":{"true":true}}'));
  assert.equal(q.bool('a'), true);
  assert.equal(q.bool('b'), false);
  assert.equal(q.bool('c'), true);
  assert.equal(q.bool('d'), false);
  assert.equal(q.bool('missing', true), true);
  assert.throws(() => q.bool('bad'), /query parameter bad/);
  assert.equal(q.int('n'), 12);
  assert.throws(() => q.int('bad'), (e: HttpError) => e.status === 400 && /bad/.test(e.message));
  assert.deepEqual([...q.filters()], [['status', ['running']], ['dangling', ['true']]]);
  assert.throws(() => new Query(new URLSearchParams('filters=nope')).filters(), /not JSON/);
});

test('JSON bodies: empty, malformed, non-object, oversized', async () => {
  assert.deepEqual(parseJsonBody(Buffer.from(''), { empty: true }), { empty: true });
  assert.deepEqual(parseJsonBody(Buffer.from('{"a":1}'), {}), { a: 1 });
  assert.throws(() => parseJsonBody(Buffer.from('{"a":'), {}), (e: HttpError) => e.status === 400 && /invalid JSON/.test(e.message));
  assert.throws(() => parseJsonBody(Buffer.from('[]'), {}), (e: HttpError) => e.status === 400);
  const req = (chunks: Buffer[], len?: number) => Object.assign(Readable.from(chunks), { headers: len === undefined ? {} : { 'content-length': String(len) } }) as unknown as IncomingMessage;
  assert.equal((await readBody(req([Buffer.from('abc')]), 10)).toString(), 'abc');
  await assert.rejects(readBody(req([Buffer.alloc(20)], 20), 10), (e: HttpError) => e.status === 413);
  await assert.rejects(readBody(req([Buffer.alloc(8), Buffer.alloc(8)]), 10), (e: HttpError) => e.status === 413, 'chunked bodies are counted too');
});

test('the error line of a progress stream', () => {
  assert.deepEqual(errorMessageLine('nope'), { errorDetail: { message: 'nope' }, error: 'nope' });
});

test('X-Registry-Auth: standard and URL-safe base64, anonymous, garbage', () => {
  const enc = (o: object, url = false) => {
    const b = Buffer.from(JSON.stringify(o)).toString('base64');
    return url ? b.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '') : b;
  };
  assert.deepEqual(parseRegistryAuth(enc({ username: 'u', password: 'p?>>', serveraddress: 'r' })), { username: 'u', password: 'p?>>', identityToken: undefined });
  assert.deepEqual(parseRegistryAuth(enc({ username: 'u', password: 'p?>>' }, true)), { username: 'u', password: 'p?>>', identityToken: undefined });
  assert.equal(parseRegistryAuth(enc({})), undefined);
  assert.equal(parseRegistryAuth(undefined), undefined);
  assert.throws(() => parseRegistryAuth('!!!notbase64json'), /X-Registry-Auth/);
});

test('stats body: docker fields from two samples; /proc/stat totals in ns', () => {
  assert.equal(systemCpuNs('cpu  100 0 50 1000 0 0 0 0 0 0\ncpu0 1 2 3\n'), 1150 * 1e7);
  const u = (cpuNs: number) => ({ memoryBytes: 1024, memoryLimitBytes: 128 * 1024 * 1024, cpuNs, pids: 2 });
  const pre = { at: new Date(1000), usage: u(1e9), systemNs: 10e9 };
  const cur = { at: new Date(2000), usage: u(1.5e9), systemNs: 12e9 };
  const b = statsBody('id1', 'web', cur, pre, 2) as Record<string, any>;
  assert.equal(b.name, '/web');
  assert.equal(b.cpu_stats.cpu_usage.total_usage, 1.5e9);
  assert.equal(b.precpu_stats.cpu_usage.total_usage, 1e9);
  assert.equal(b.cpu_stats.system_cpu_usage, 12e9);
  assert.equal(b.cpu_stats.online_cpus, 2);
  assert.equal(b.memory_stats.limit, 128 * 1024 * 1024);
  assert.equal(b.pids_stats.current, 2);
  const none = statsBody('id1', 'web', undefined, undefined, 2) as Record<string, any>;
  assert.equal(none.read, '0001-01-01T00:00:00Z');
});

test("resize: conmon's control line; no monitor means no resize, not a hang", () => {
  assert.equal(resizeLine(24, 80), '1 24 80\n');
  assert.equal(resizeTty('/nonexistent/dir/ctr.log', 24, 80), false);
});
