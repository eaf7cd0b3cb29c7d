/**
 * docker build through `hull serve`: the docker 28 CLI's classic builder path (DOCKER_BUILDKIT=0,
 * POST /build with the context as a tar) and dockerode's buildImage, with docker's streamed
 * JSON progress and errors.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import Docker from 'dockerode';
import { hull, importBusybox, makeTempRoot, mountsUnder, type TempRoot } from '../helpers/hull.js';
import { docker, haveDocker, monitorsOf, startServe, type Serve } from './api-harness.js';

let tmp: TempRoot;
let s: Serve;
let d: Docker;
let ctx: string;

before(async () => {
  tmp = makeTempRoot('hull-api-build-');
  importBusybox(tmp.root);
  s = await startServe(tmp.root);
  d = new Docker({ socketPath: s.socket });
  ctx = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-api-build-ctx-'));
  fs.writeFileSync(path.join(ctx, 'msg.txt'), 'through the API\n');
  fs.writeFileSync(path.join(ctx, 'ignored.txt'), 'not sent\n');
  fs.writeFileSync(path.join(ctx, '.dockerignore'), 'ignored.txt\n');
  fs.writeFileSync(
    path.join(ctx, 'Dockerfile'),
    ['FROM busybox', 'ARG WHO=nobody', 'COPY msg.txt /msg.txt', 'RUN echo "built for $WHO" > /who && ls / > /listing', 'LABEL stage=api', 'CMD ["cat", "/msg.txt", "/who"]', ''].join('\n'),
  );
});

after(async () => {
  for (const c of await d.listContainers({ all: true })) await d.getContainer(c.Id).remove({ force: true });
  await s.stop();
  assert.deepEqual(monitorsOf(tmp.root), []);
  assert.deepEqual(mountsUnder(tmp.root), []);
  tmp.cleanup();
  fs.rmSync(ctx, { recursive: true, force: true });
});

const legacy = (args: string[], opts: { input?: string | Buffer } = {}) => docker({ ...s, env: { ...s.env, DOCKER_BUILDKIT: '0' } }, args, { ...opts, timeoutMs: 300_000 });

test('docker build (DOCKER_BUILDKIT=0) through hull serve: steps, cache, tags, build args, labels, the image runs', (t) => {
  if (!haveDocker()) return t.skip('the docker CLI is not installed');
  const r = legacy(['build', '-t', 'api-built:v1', '--build-arg', 'WHO=docker', '--label', 'by=cli', ctx]);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /Sending build context to Docker daemon/);
  assert.match(r.stdout, /Step 4\/7 : RUN echo "built for \$WHO" > \/who && ls \/ > \/listing\n ---> Running in [0-9a-f]{12}\n/);
  assert.match(r.stdout, /Successfully built [0-9a-f]{12}\nSuccessfully tagged api-built:v1\n/);
  const run = docker(s, ['run', '--rm', 'api-built:v1']);
  assert.equal(run.stdout, 'through the API\nbuilt for docker\n');
  const labels = JSON.parse(docker(s, ['image', 'inspect', '--format', '{{json .Config.Labels}}', 'api-built:v1']).stdout);
  assert.equal(labels.stage, 'api');
  assert.equal(labels.by, 'cli');
  const again = legacy(['build', '-t', 'api-built:v1', '--build-arg', 'WHO=docker', '--label', 'by=cli', ctx]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal((again.stdout.match(/Using cache/g) ?? []).length, 6, again.stdout);
  // the docker CLI applied .dockerignore before sending; the daemon side applies it too
  assert.doesNotMatch(docker(s, ['run', '--rm', 'api-built:v1', 'ls', '/']).stdout, /ignored/);
  const q = legacy(['build', '-q', '--build-arg', 'WHO=docker', '--label', 'by=cli', ctx]);
  assert.match(q.stdout.trim(), /^sha256:[0-9a-f]{64}$/);
});

test('docker build through hull serve: a failing RUN exits with its code, names the line, leaves no container; a bad Dockerfile is reported', (t) => {
  if (!haveDocker()) return t.skip('the docker CLI is not installed');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-api-build-fail-'));
  try {
    fs.writeFileSync(path.join(dir, 'Dockerfile'), 'FROM busybox\nRUN echo about-to-fail; exit 5\n');
    const r = legacy(['build', dir]);
    assert.equal(r.code, 5, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stderr, /Dockerfile line 2: The command '\/bin\/sh -c echo about-to-fail; exit 5' returned a non-zero code: 5/);
    assert.equal(docker(s, ['ps', '-aq']).stdout.trim(), '');
    fs.writeFileSync(path.join(dir, 'Dockerfile'), 'FROM busybox\nNOPE x\n');
    const bad = legacy(['build', dir]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /Dockerfile line 2: unknown instruction: NOPE/);
    // a tar context on stdin
    const tar = spawnSync('tar', ['cf', '-', '-C', ctx, '.'], { maxBuffer: 16 << 20 }).stdout;
    const piped = legacy(['build', '-t', 'from-stdin', '-'], { input: tar });
    assert.equal(piped.code, 0, piped.stderr);
    assert.equal(docker(s, ['run', '--rm', 'from-stdin', 'cat', '/msg.txt']).stdout, 'through the API\n');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('dockerode buildImage: streamed JSON progress with the image id, errors as errorDetail, builder prune', async () => {
  const stream = await d.buildImage({ context: ctx, src: ['Dockerfile', 'msg.txt'] }, { t: 'dockerode-built', buildargs: { WHO: 'dockerode' } });
  const events = await new Promise<Record<string, any>[]>((resolve, reject) => d.modem.followProgress(stream, (err: Error | null, res: Record<string, any>[]) => (err ? reject(err) : resolve(res))));
  const text = events.map((e) => e.stream ?? '').join('');
  assert.match(text, /Step 1\/6 : FROM busybox/);
  const aux = events.find((e) => e.aux?.ID);
  assert.match(aux?.aux.ID, /^sha256:[0-9a-f]{64}$/);
  const img = await d.getImage('dockerode-built').inspect();
  assert.equal(img.Id, aux!.aux.ID);
  const c = await d.createContainer({ Image: 'dockerode-built', Cmd: ['cat', '/who'] });
  await c.start();
  await c.wait();
  const logs = (await c.logs({ stdout: true })) as unknown as Buffer;
  assert.match(logs.toString(), /built for dockerode/);
  await c.remove();
  // a failing build: the stream carries docker's errorDetail, with the RUN's code
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-api-build-dockerode-'));
  try {
    fs.writeFileSync(path.join(dir, 'Dockerfile'), 'FROM busybox\nRUN exit 9\n');
    const bad = await d.buildImage({ context: dir, src: ['Dockerfile'] }, {});
    const out: Record<string, any>[] = await new Promise((resolve) => {
      const got: Record<string, any>[] = [];
      d.modem.followProgress(bad, (_err: Error | null, res: Record<string, any>[]) => resolve(res ?? got), (e: Record<string, any>) => got.push(e));
    });
    const err = out.find((e) => e.errorDetail);
    assert.equal(err?.errorDetail.code, 9);
    assert.match(err?.error, /Dockerfile line 2: The command '\/bin\/sh -c exit 9' returned a non-zero code: 9/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const pruned = await d.pruneBuilder();
  assert.equal(typeof pruned.SpaceReclaimed, 'number');
  assert.equal(hull(tmp.root, ['images', '-a', '-q']).code, 0);
});
