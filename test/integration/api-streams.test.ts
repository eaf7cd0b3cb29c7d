/**
 * Lossless streams through `hull serve`, on the wall HULL_STREAMS_RUNTIME names (crun here;
 * api-streams-vm.test.ts runs the same cases on hull-vm): 1 MiB of random bytes through stdin,
 * compared by sha256, for `docker run -i`, `docker exec -i`, `docker start -ai`, `docker
 * attach` and dockerode's hijacked attach, with and without a TTY; 8-byte frames without a TTY
 * and a raw stream with one; StdinOnce; EOF and Ctrl-D reaching the process; the long
 * line into a shell; the same through `attach/ws` with a WebSocket client (the ws package).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import net from 'node:net';
import { PassThrough } from 'node:stream';
import http from 'node:http';
import Docker from 'dockerode';
import WebSocket from 'ws';
import { FrameDecoder } from '../../src/streams/mux.js';
import { collect, docker, haveDocker, serveForFile, type Serve } from './api-harness.js';

export const RUNTIME = process.env.HULL_STREAMS_RUNTIME ?? 'crun';
const VM = RUNTIME === 'hull-vm';
const skipWhy = !haveDocker() ? 'the docker CLI is not installed' : VM && spawnSync('qemu-system-x86_64', ['--version']).status !== 0 ? 'qemu-system-x86_64 is not installed' : '';

let s: Serve;
let d: Docker;
serveForFile('hull-api-streams-', {
  ready: (srv) => {
    s = srv;
    d = new Docker({ socketPath: s.socket });
  },
});

const MiB = 1 << 20;
const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');
const payload = crypto.randomBytes(MiB);
/** Through a TTY: random bytes without ctrl-p (0x10), the first detach key, which docker would act on. */
const ttyPayload = Buffer.from(crypto.randomBytes(MiB).map((b) => (b === 0x10 ? 0x11 : b)));
const rt = ['--runtime', RUNTIME];

/** `docker ARGS` with binary stdin; resolves with the binary stdout. */
function dockerBinary(args: string[], input: Buffer): Promise<{ code: number; out: Buffer; err: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn('docker', args, { env: s.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    c.stdout.on('data', (b: Buffer) => out.push(b));
    c.stderr.setEncoding('utf8').on('data', (t: string) => (err += t));
    c.on('error', reject);
    c.on('close', (code) => resolve({ code: code ?? 128, out: Buffer.concat(out), err }));
    c.stdin.on('error', () => undefined);
    c.stdin.end(input);
  });
}

type Hijacked = NodeJS.ReadWriteStream & { end(b?: Buffer | string): void };

/** Resolves with all a hijacked stream delivered, once it ended or closed. */
function whole(stream: Hijacked): Promise<Buffer> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    stream.on('data', (c: Buffer) => parts.push(c));
    const done = () => resolve(Buffer.concat(parts));
    stream.on('end', done);
    stream.on('close', done);
  });
}

/** Resolves once the text of `stream` so far matches `re`. */
function until(stream: Hijacked, re: RegExp): Promise<void> {
  return new Promise((resolve, reject) => {
    let text = '';
    const on = (c: Buffer) => {
      text += c.toString('latin1');
      if (re.test(text)) {
        stream.off('data', on);
        resolve();
      }
    };
    stream.on('data', on);
    stream.on('end', () => reject(new Error(`the stream ended before ${re}: ${JSON.stringify(text.slice(-200))}`)));
  });
}

const opt = { skip: skipWhy || false };

test(`docker run -i (${RUNTIME}): 1 MiB of random bytes through stdin and back out of cat, byte for byte`, opt, async () => {
  const r = await dockerBinary(['run', '-i', '--rm', ...rt, 'busybox', 'cat'], payload);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out.length, MiB);
  assert.equal(sha(r.out), sha(payload));
});

test(`docker run -i (${RUNTIME}): the checksum inside the container matches; EOF reaches the process`, opt, async () => {
  const r = await dockerBinary(['run', '-i', '--rm', ...rt, 'busybox', 'sha256sum'], payload);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out.toString().split(' ')[0], sha(payload));
});

test(`docker exec -i (${RUNTIME}): 1 MiB through stdin and back`, opt, async () => {
  assert.equal(docker(s, ['run', '-d', ...rt, '--name', 'ex', 'busybox', 'sleep', '300']).code, 0);
  const r = await dockerBinary(['exec', '-i', 'ex', 'cat'], payload);
  assert.equal(r.code, 0, r.err);
  assert.equal(sha(r.out), sha(payload));
  const sum = await dockerBinary(['exec', '-i', 'ex', 'sha256sum'], payload);
  assert.equal(sum.out.toString().split(' ')[0], sha(payload));
  docker(s, ['rm', '-f', 'ex']);
});

test(`docker create -i, start -ai (${RUNTIME}): 1 MiB in, its checksum comes back (StdinOnce closes stdin at the input's end)`, opt, async () => {
  const c = docker(s, ['create', '-i', ...rt, '--name', 'att', 'busybox', 'sha256sum']);
  assert.equal(c.code, 0, c.stderr);
  assert.equal(JSON.parse(docker(s, ['inspect', 'att']).stdout)[0].Config.StdinOnce, true);
  const r = await dockerBinary(['start', '-a', '-i', 'att'], payload);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out.toString().split(' ')[0], sha(payload));
  docker(s, ['rm', '-f', 'att']);
});

test(`attach without StdinOnce (${RUNTIME}): the input's end ends the attach, stdin stays open, a second attach goes on`, opt, async () => {
  assert.equal(docker(s, ['run', '-d', '-i', ...rt, '--name', 'att2', 'busybox', 'sh', '-c', `head -c ${2 * MiB} | sha256sum`]).code, 0);
  const c = d.getContainer('att2');
  assert.equal((await c.inspect()).Config.StdinOnce, false);
  const more = crypto.randomBytes(MiB);
  for (const part of [payload, more]) {
    const a = (await c.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true })) as unknown as Hijacked;
    const ended = whole(a);
    a.end(part);
    await ended; // the server ended the attach once the input ended
    if (part === payload) assert.equal((await c.inspect()).State.Running, true, 'stdin stays open after the first attach');
  }
  assert.equal((await c.wait()).StatusCode, 0);
  assert.equal(docker(s, ['logs', 'att2']).stdout.split(' ')[0], sha(Buffer.concat([payload, more])));
  docker(s, ['rm', '-f', 'att2']);
});

test(`dockerode (${RUNTIME}): hijacked attach before start, 1 MiB in, 1 MiB out of cat in 8-byte frames, half-close ends stdin`, opt, async () => {
  const c = await d.createContainer({ Image: 'busybox', Cmd: ['cat'], OpenStdin: true, StdinOnce: true, AttachStdin: true, AttachStdout: true, AttachStderr: true, HostConfig: { Runtime: RUNTIME } });
  const stream = (await c.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true })) as unknown as Hijacked;
  const got = whole(stream);
  await c.start();
  stream.end(payload);
  const raw = await got;
  // docker's framing, decoded by hull's decoder: stdout frames only, nothing left over
  const dec = new FrameDecoder();
  const frames = dec.push(raw);
  assert.equal(dec.pending, 0);
  assert.ok(frames.every((f) => f.stream === 1));
  const b = Buffer.concat(frames.map((f) => f.data));
  assert.equal(b.length, MiB);
  assert.equal(sha(b), sha(payload));
  // and by dockerode's
  const out = new PassThrough();
  const back = collect(out);
  const replay = new PassThrough();
  d.modem.demuxStream(replay, out, new PassThrough());
  replay.on('end', () => out.end());
  // in socket-sized chunks, as from a socket (demuxStream recurses once per frame of a chunk)
  for (let o = 0; o < raw.length; o += 65536) replay.write(raw.subarray(o, o + 65536));
  replay.end();
  assert.equal(sha(await back), sha(payload));
  assert.equal((await c.wait()).StatusCode, 0);
  await c.remove();
});

test(`dockerode (${RUNTIME}): the issue's 5000 characters in one line reach a shell whole`, opt, async () => {
  const line = crypto.randomBytes(2500).toString('hex');
  const c = await d.createContainer({ Image: 'busybox', Cmd: ['sh'], OpenStdin: true, StdinOnce: true, Tty: false, HostConfig: { Runtime: RUNTIME } });
  const stream = (await c.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true })) as unknown as Hijacked;
  const out = new PassThrough();
  const got = collect(out);
  d.modem.demuxStream(stream, out, new PassThrough());
  const ended = new Promise<void>((resolve) => stream.on('end', () => resolve()));
  await c.start();
  stream.write(`printf "${line}" | wc -c; exit;\n`);
  await ended;
  out.end();
  assert.equal((await got).toString().trim(), '5000');
  await c.remove({ force: true });
});

test(`dockerode (${RUNTIME}): a TTY container over the API: 1000 characters, a newline and Ctrl-D make wc print 1001, raw stream`, opt, async () => {
  const c = await d.createContainer({ Image: 'busybox', Cmd: ['wc', '-c'], Tty: true, OpenStdin: true, AttachStdin: true, AttachStdout: true, StdinOnce: true, HostConfig: { Runtime: RUNTIME } });
  const stream = (await c.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true })) as unknown as Hijacked;
  const got = whole(stream);
  await c.start();
  stream.write(`${'y'.repeat(1000)}\n\x04`);
  assert.equal((await c.wait()).StatusCode, 0);
  const text = (await got).toString('latin1');
  assert.ok(!text.startsWith('\x01\x00\x00\x00'), 'no frame headers with a TTY');
  assert.match(text, /(^|\n)1001\r\n$/);
  await c.remove({ force: true });
});

test(`dockerode (${RUNTIME}): 1 MiB through a TTY in raw mode, its checksum comes back raw`, opt, async () => {
  const c = await d.createContainer({
    Image: 'busybox', Tty: true, OpenStdin: true, StdinOnce: true, HostConfig: { Runtime: RUNTIME },
    Cmd: ['sh', '-c', `stty raw -echo && echo READY && head -c ${MiB} | sha256sum`],
  });
  const stream = (await c.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true })) as unknown as Hijacked;
  const got = whole(stream);
  const ready = until(stream, /READY/);
  await c.start();
  await ready; // bytes sent before `stty raw` would be cooked by the line discipline
  stream.write(ttyPayload);
  assert.equal((await c.wait()).StatusCode, 0);
  assert.match((await got).toString('latin1'), new RegExp(`${sha(ttyPayload)}  -`));
  await c.remove({ force: true });
});

test(`attach with a TTY (${RUNTIME}): the detach keys end the attach, the container and its stdin go on`, opt, async () => {
  const c = await d.createContainer({ Image: 'busybox', Cmd: ['sh'], Tty: true, OpenStdin: true, HostConfig: { Runtime: RUNTIME } });
  await c.start();
  const attachOnce = async () => (await c.attach({ stream: true, stdin: true, stdout: true, hijack: true, detachKeys: 'ctrl-x,y' } as never)) as unknown as Hijacked;
  const a = await attachOnce();
  const ended = whole(a);
  a.write('echo one-$((40+2))\n');
  await until(a, /one-42/);
  a.write('\x18y');
  await ended; // the server ended the stream
  assert.equal((await c.inspect()).State.Running, true);
  const b = await attachOnce();
  const seen = until(b, /two-43/);
  b.write('echo two-$((40+3))\n');
  await seen;
  b.write('exit 3\n');
  assert.equal((await c.wait()).StatusCode, 3);
  await c.remove({ force: true });
});

test(`attach over a raw socket (${RUNTIME}): input sent with the request is not lost, the body is not input`, opt, async () => {
  const c = await d.createContainer({ Image: 'busybox', Cmd: ['wc', '-c'], OpenStdin: true, StdinOnce: true, HostConfig: { Runtime: RUNTIME } });
  await c.start();
  const body = '{"ignored":true}';
  const input = 'z'.repeat(3000);
  const sock = net.connect(s.socket);
  const got = collect(sock);
  // the whole request, its body and the input in one write, then the half-close
  sock.end(
    `POST /containers/${c.id}/attach?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}${input}`,
  );
  const raw = await got;
  const head = raw.indexOf('\r\n\r\n');
  assert.match(raw.subarray(0, head).toString(), /^HTTP\/1.1 101 UPGRADED/);
  const frames = new FrameDecoder().push(raw.subarray(head + 4));
  assert.equal(Buffer.concat(frames.map((f) => f.data)).toString().trim(), '3000');
  await c.remove({ force: true });
});

interface WsAttach {
  ws: WebSocket;
  /** Every message until the server's close: the bytes, whether all were binary, the close code. */
  whole: Promise<{ data: Buffer; binary: boolean; code: number }>;
}

/**
 * A WebSocket to `GET {path}` on the server's socket (ws's client, an independent
 * implementation). Messages are collected from the first one: they may come in the same read
 * as the handshake's answer.
 */
function wsOpen(path: string): Promise<WsAttach> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws+unix://${s.socket}:${path}`);
    const parts: Buffer[] = [];
    let binary = true;
    ws.on('message', (m: Buffer, isBinary: boolean) => {
      parts.push(Buffer.from(m));
      binary &&= isBinary;
    });
    const whole = new Promise<{ data: Buffer; binary: boolean; code: number }>((done) => ws.once('close', (code: number) => done({ data: Buffer.concat(parts), binary, code })));
    ws.once('open', () => resolve({ ws, whole }));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (t: string) => (body += t));
      res.on('end', () => reject(Object.assign(new Error(`HTTP ${res.statusCode}: ${body.trim()}`), { status: res.statusCode })));
    });
    ws.once('error', reject);
  });
}

/** Send `b` in 64 KiB messages, each once the socket took the one before (ws's own backpressure). */
async function wsSend(ws: WebSocket, b: Buffer): Promise<void> {
  for (let o = 0; o < b.length; o += 65536) {
    await new Promise<void>((resolve, reject) => ws.send(b.subarray(o, o + 65536), { binary: true }, (e) => (e ? reject(e) : resolve())));
  }
}

test(`attach/ws (${RUNTIME}): 1 MiB of random bytes in binary messages before the start, cat's output back raw, byte for byte; the client's close is stdin's end`, opt, async () => {
  const c = await d.createContainer({ Image: 'busybox', Cmd: ['cat'], OpenStdin: true, StdinOnce: true, HostConfig: { Runtime: RUNTIME } });
  const { ws, whole: got } = await wsOpen(`/v1.45/containers/${c.id}/attach/ws?stream=1&stdin=1&stdout=1&stderr=1`);
  const sent = wsSend(ws, payload); // sent before the start: held with backpressure, not dropped
  await c.start();
  await sent;
  ws.close(1000);
  const r = await got;
  assert.equal(r.binary, true, 'binary messages from API 1.28 on');
  assert.equal(r.code, 1000);
  assert.equal(r.data.length, MiB, 'raw bytes, no 8-byte frames');
  assert.equal(sha(r.data), sha(payload));
  assert.equal((await c.wait()).StatusCode, 0);
  await c.remove();
});

test(`attach/ws (${RUNTIME}): a TTY in raw mode, 1 MiB in, its checksum back; the run's end closes the socket normally`, opt, async () => {
  const c = await d.createContainer({
    Image: 'busybox', Tty: true, OpenStdin: true, StdinOnce: true, HostConfig: { Runtime: RUNTIME },
    Cmd: ['sh', '-c', `stty raw -echo && echo READY && head -c ${MiB} | sha256sum`],
  });
  const { ws, whole: got } = await wsOpen(`/containers/${c.id}/attach/ws?stream=1&stdin=1&stdout=1`);
  const ready = new Promise<void>((resolve) => {
    let text = '';
    const on = (m: Buffer) => {
      text += m.toString('latin1');
      if (text.includes('READY')) (ws.off('message', on), resolve());
    };
    ws.on('message', on);
  });
  await c.start();
  await ready;
  await wsSend(ws, ttyPayload);
  const r = await got;
  assert.equal(r.code, 1000);
  assert.match(r.data.toString('latin1'), new RegExp(`${sha(ttyPayload)}  -`));
  assert.equal((await c.wait()).StatusCode, 0);
  await c.remove({ force: true });
});

test(`attach/ws (${RUNTIME}): text messages before API 1.28, all streams before 1.42 whatever the query, logs=1 replays; bad handshakes are HTTP errors`, opt, async () => {
  const c = await d.createContainer({ Image: 'busybox', Cmd: ['sh', '-c', 'echo out; echo err >&2'], HostConfig: { Runtime: RUNTIME } });
  await c.start();
  await c.wait();
  // stdout/stderr not asked for: before 1.42 docker attaches all three anyway
  const r = await (await wsOpen(`/v1.27/containers/${c.id}/attach/ws?logs=1`)).whole;
  assert.equal(r.binary, false, 'text messages before 1.28');
  assert.deepEqual(r.data.toString().split('\n').filter(Boolean).sort(), ['err', 'out']);
  const n = await (await wsOpen(`/v1.45/containers/${c.id}/attach/ws?logs=1&stdout=1`)).whole;
  assert.equal(n.binary, true);
  assert.equal(n.data.toString(), 'out\n', 'from 1.42 the query chooses the streams');
  await assert.rejects(wsOpen('/containers/no-such-container/attach/ws?stream=1'), (e: Error & { status?: number }) => e.status === 404 && /no-such-container/.test(e.message));
  const plain = await fetchOverSocket(`/containers/${c.id}/attach/ws?stream=1`);
  assert.equal(plain.status, 400);
  assert.match(plain.body, /Upgrade: websocket/);
  await c.remove({ force: true });
});

/** A plain GET on the server's socket (no upgrade). */
function fetchOverSocket(path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath: s.socket, path }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (t: string) => (body += t));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
  });
}
