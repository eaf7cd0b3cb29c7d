/**
 * dockerode (the npm Docker Engine API client) driving `hull serve` from TypeScript: the same
 * operations as the docker CLI tests, through a library instead of a binary.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, Readable } from 'node:stream';
import Docker from 'dockerode';
import { importBusybox, makeTempRoot, type TempRoot } from '../helpers/hull.js';
import { haveRegistry, startRegistry } from '../helpers/registry.js';
import { monitorsOf, startServe, type Serve, collect } from './api-harness.js';

let tmp: TempRoot;
let s: Serve;
let d: Docker;

before(async () => {
  tmp = makeTempRoot('hull-api-dockerode-');
  importBusybox(tmp.root);
  s = await startServe(tmp.root);
  d = new Docker({ socketPath: s.socket });
});

after(async () => {
  for (const c of await d.listContainers({ all: true })) await d.getContainer(c.Id).remove({ force: true });
  await s.stop();
  assert.deepEqual(monitorsOf(tmp.root), [], 'no container monitor left running');
  tmp.cleanup();
});

/** Split a multiplexed stream into stdout and stderr text with dockerode's demuxer. */
async function demux(stream: NodeJS.ReadableStream): Promise<{ out: string; err: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  const o = collect(out);
  const e = collect(err);
  d.modem.demuxStream(stream, out, err);
  await new Promise<void>((resolve) => {
    stream.on('end', () => resolve());
    stream.on('close', () => resolve());
  });
  out.end();
  err.end();
  return { out: (await o).toString(), err: (await e).toString() };
}

test('ping, version, info', async () => {
  assert.equal(String(await d.ping()), 'OK');
  const v = await d.version();
  assert.equal(v.ApiVersion, '1.45');
  const info = await d.info();
  assert.equal(info.Images, 1);
});

test('create, attach before start, wait, remove: output and exit code', async () => {
  const c = await d.createContainer({ Image: 'busybox', Cmd: ['sh', '-c', 'echo to-out; echo to-err >&2; exit 9'], AttachStdout: true, AttachStderr: true });
  const stream = await c.attach({ stream: true, stdout: true, stderr: true, hijack: true });
  const waited = c.wait({ condition: 'next-exit' });
  const text = demux(stream);
  await c.start();
  const r = await waited;
  assert.equal(r.StatusCode, 9);
  const { out, err } = await text;
  assert.equal(out, 'to-out\n');
  assert.equal(err, 'to-err\n');
  const info = await c.inspect();
  assert.equal(info.State.Status, 'exited');
  assert.equal(info.State.ExitCode, 9);
  await c.remove();
  await assert.rejects(c.inspect(), (e: { statusCode?: number }) => e.statusCode === 404);
});

test('AutoRemove containers are gone when wait(removed) answers', async () => {
  const c = await d.createContainer({ Image: 'busybox', Cmd: ['echo', 'bye'], HostConfig: { AutoRemove: true } });
  const stream = await c.attach({ stream: true, stdout: true, stderr: true, hijack: true });
  const waited = c.wait({ condition: 'removed' });
  const text = demux(stream);
  await c.start();
  assert.equal((await waited).StatusCode, 0);
  assert.equal((await text).out, 'bye\n');
  assert.deepEqual(await d.listContainers({ all: true }), []);
});

test('detached container: list, logs, exec with stdin, stats, stop, kill, remove', async () => {
  const c = await d.createContainer({ Image: 'busybox', Cmd: ['sh', '-c', 'echo hi-log; sleep 60'], name: 'dd', HostConfig: { Memory: 64 * 1024 * 1024 } });
  await c.start();
  const list = await d.listContainers();
  assert.deepEqual(list.map((x) => x.Names[0]), ['/dd']);
  assert.equal(list[0]!.State, 'running');
  let logs = '';
  for (let i = 0; i < 50 && !logs.includes('hi-log'); i++) {
    const buf = (await c.logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer;
    logs = buf.toString();
    if (!logs.includes('hi-log')) await new Promise((r) => setTimeout(r, 50));
  }
  assert.match(logs, /hi-log\n$/);
  const ex = await c.exec({ Cmd: ['sh', '-c', 'read a; echo got:$a; exit 3'], AttachStdin: true, AttachStdout: true, AttachStderr: true });
  const es = await ex.start({ hijack: true, stdin: true });
  es.write('value\n');
  const text = demux(es);
  const { out } = await text;
  assert.equal(out, 'got:value\n');
  let ei = await ex.inspect();
  for (let i = 0; i < 20 && ei.Running; i++) ei = await ex.inspect();
  assert.equal(ei.ExitCode, 3);
  const st = (await c.stats({ stream: false })) as unknown as { memory_stats: { limit: number; usage: number }; pids_stats: { current: number } };
  assert.equal(st.memory_stats.limit, 64 * 1024 * 1024);
  assert.ok(st.pids_stats.current >= 1);
  // The stats stream: one object per second, each with the previous sample as precpu.
  const live = (await c.stats({ stream: true })) as unknown as Readable;
  const objs: Array<{ cpu_stats: { cpu_usage: { total_usage: number } }; precpu_stats: { cpu_usage: { total_usage: number } } }> = [];
  let buf = '';
  await new Promise<void>((resolve, reject) => {
    live.on('data', (chunk: Buffer) => {
      buf += chunk.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        objs.push(JSON.parse(buf.slice(0, nl)));
        buf = buf.slice(nl + 1);
      }
      if (objs.length >= 2) {
        live.destroy();
        resolve();
      }
    });
    live.on('error', reject);
  });
  assert.equal(objs[1]!.precpu_stats.cpu_usage.total_usage, objs[0]!.cpu_stats.cpu_usage.total_usage);
  await c.stop({ t: 1 });
  assert.equal((await c.inspect()).State.Running, false);
  await c.start();
  await c.kill({ signal: 'SIGKILL' });
  assert.equal((await c.wait()).StatusCode, 137);
  await c.remove({ force: true, v: true });
});

/** Everything a stream has sent so far; `until` resolves once that matches, `ended` at its end. */
function collector(stream: Readable): { text: () => string; until: (re: RegExp) => Promise<void>; ended: Promise<string> } {
  let text = '';
  const waiting: Array<{ re: RegExp; resolve: () => void }> = [];
  const wake = () => {
    for (const w of [...waiting]) if (w.re.test(text)) waiting.splice(waiting.indexOf(w), 1), w.resolve();
  };
  const ended = new Promise<string>((resolve, reject) => {
    stream.on('data', (c: Buffer) => ((text += c.toString('latin1')), wake()));
    stream.on('end', () => resolve(text));
    stream.on('error', reject);
  });
  const until = (re: RegExp) =>
    new Promise<void>((resolve, reject) => {
      waiting.push({ re, resolve });
      ended.then(() => reject(new Error(`the stream ended before ${re}: ${JSON.stringify(text.slice(-200))}`)), reject);
      wake();
    });
  return { text: () => text, until, ended };
}

for (const runtime of ['crun', 'hull-vm']) {
  test(`exec with a TTY (${runtime}): the size from ConsoleSize, then from resize; the output whole to the last line`, async () => {
    const c = await d.createContainer({ Image: 'busybox', Cmd: ['sleep', '120'], HostConfig: { Runtime: runtime } });
    await c.start();
    const ex = await c.exec({ Cmd: ['sh'], AttachStdin: true, AttachStdout: true, AttachStderr: true, Tty: true });
    const es = (await ex.start({ hijack: true, stdin: true, Tty: true, ConsoleSize: [20, 77] } as never)) as unknown as Readable & { write(s: string): void };
    const out = collector(es);
    es.write('stty size\n');
    await out.until(/^20 77\r?$/m);
    await ex.resize({ h: 31, w: 93 });
    // a large output written just before the exit: every line arrives, the last one too
    es.write('stty size; seq 1 5000; exit 6\n');
    const end = await out.ended;
    assert.match(end, /^31 93\r?$/m);
    const lines = end.split(/\r?\n/);
    assert.equal(lines.filter((l) => /^\d+$/.test(l)).length, 5000, 'every line of seq');
    assert.ok(end.endsWith('5000\r\n'), JSON.stringify(end.slice(-40)));
    let ei = await ex.inspect();
    for (let i = 0; i < 50 && ei.Running; i++) ei = await ex.inspect();
    assert.equal(ei.ExitCode, 6);
    await c.remove({ force: true });
  });
}

test('images: list, inspect, tag, save, load, remove; errors carry the status', async () => {
  const imgs = await d.listImages();
  assert.equal(imgs.length, 1);
  assert.deepEqual(imgs[0]!.RepoTags, ['busybox:latest']);
  const img = d.getImage('busybox');
  const ins = await img.inspect();
  assert.equal(ins.Id, imgs[0]!.Id);
  await img.tag({ repo: 'dockerode/box', tag: 't1' });
  const tar = await collect((await d.getImage('dockerode/box:t1').get()) as unknown as Readable);
  assert.ok(tar.length > 100_000);
  const del = await d.getImage('dockerode/box:t1').remove();
  assert.deepEqual(del, [{ Untagged: 'dockerode/box:t1' }]);
  const loadStream = await d.loadImage(Readable.from([tar]) as unknown as string);
  const loaded = (await collect(loadStream as unknown as Readable)).toString();
  assert.match(loaded, /Loaded image: dockerode\/box:t1/);
  await d.getImage('dockerode/box:t1').remove();
  await assert.rejects(d.getImage('nope:none').inspect(), (e: { statusCode?: number; message: string }) => e.statusCode === 404 && /No such image/.test(e.message));
  await assert.rejects(d.createContainer({ Image: 'busybox', HostConfig: { DeviceCgroupRules: ['c 1:3 rwm'] } }), (e: { statusCode?: number }) => e.statusCode === 400);
});

test('pull and push with progress against a local registry', async (t) => {
  if (!haveRegistry()) return t.skip('docker-registry is not installed (apt-get install docker-registry)');
  const reg = await startRegistry({ basic: { user: 'dora', password: 'pw' } });
  try {
    const name = `${reg.host}/dockerode/busybox:2`;
    await d.getImage('busybox').tag({ repo: `${reg.host}/dockerode/busybox`, tag: '2' });
    const auth = { username: 'dora', password: 'pw', serveraddress: reg.host };
    const push = await d.getImage(name).push({ authconfig: auth });
    const pushed = await new Promise<object[]>((resolve, reject) => d.modem.followProgress(push, (err, res) => (err ? reject(err) : resolve(res))));
    assert.ok(pushed.some((m) => (m as { aux?: { Digest?: string } }).aux?.Digest?.startsWith('sha256:')), JSON.stringify(pushed));
    await d.getImage(name).remove();
    const pull = await d.pull(name, { authconfig: auth });
    const pulled = await new Promise<object[]>((resolve, reject) => d.modem.followProgress(pull, (err, res) => (err ? reject(err) : resolve(res))));
    assert.ok(pulled.some((m) => /Downloaded newer image/.test((m as { status?: string }).status ?? '')), JSON.stringify(pulled));
    // Wrong password: the progress stream ends with an error.
    const bad = await d.pull(name, { authconfig: { ...auth, password: 'wrong' } });
    const badRes = await new Promise<object[]>((resolve, reject) => d.modem.followProgress(bad, (err, res) => (err ? reject(err) : resolve(res))));
    const last = badRes[badRes.length - 1] as { errorDetail?: { message: string } };
    assert.match(last.errorDetail?.message ?? '', /unauthorized|authentication/, JSON.stringify(badRes));
    await d.getImage(name).remove();
  } finally {
    await reg.stop();
  }
});
