/**
 * `docker load` / POST /images/load and `hull load` of the older `docker save` layout (per-layer
 * directories with VERSION, json and layer.tar, a repositories file, no manifest.json), built
 * here from the busybox layer plus a layer of our own; and GET /distribution/{name}/json against
 * a local registry.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { hull, type TempRoot } from '../helpers/hull.js';
import { haveRegistry, startRegistry } from '../helpers/registry.js';
import { docker, request, serveForFile, type Serve } from './api-harness.js';

const f = serveForFile('hull-api-legacy-', {
  ready: (srv, root) => {
    ({ s, tmp } = { s: srv, tmp: root });
    d = new Docker({ socketPath: s.socket });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-legacy-'));
    legacy = legacyArchive('good');
  },
});
const skip = f.have ? false : 'the docker CLI is not installed';
let tmp: TempRoot;
let s: Serve;
let d: Docker;
let dir: string;
let legacy: string;

const id = () => crypto.randomBytes(32).toString('hex');
const sh = (cmd: string) => {
  const r = spawnSync('sh', ['-c', cmd], { encoding: 'utf8' });
  assert.equal(r.status, 0, `${cmd}: ${r.stderr}`);
  return r.stdout;
};

/** A legacy archive: the busybox layer, then a layer adding /hello, tagged `tags`; `parentOf2` overrides the top's parent. */
function legacyArchive(name: string, o: { tags?: Record<string, Record<string, string>>; parentOf2?: string } = {}): string {
  const work = fs.mkdtempSync(path.join(dir, 'legacy-'));
  const saved = path.join(work, 'saved.tar');
  assert.equal(docker(s, ['save', '-o', saved, 'busybox']).code, 0);
  const x = path.join(work, 'x');
  fs.mkdirSync(x);
  sh(`tar -xf '${saved}' -C '${x}'`);
  const manifest = JSON.parse(fs.readFileSync(path.join(x, 'manifest.json'), 'utf8'))[0];
  const root = path.join(work, 'archive');
  const [id1, id2] = [id(), id()];
  for (const i of [id1, id2]) fs.mkdirSync(path.join(root, i), { recursive: true });
  fs.copyFileSync(path.join(x, manifest.Layers[0]), path.join(root, id1, 'layer.tar'));
  const add = path.join(work, 'add');
  fs.mkdirSync(add);
  fs.writeFileSync(path.join(add, 'hello'), 'hello from a legacy layer\n');
  sh(`tar -C '${add}' -cf '${path.join(root, id2, 'layer.tar')}' hello`);
  const created = '2016-01-02T03:04:05Z';
  fs.writeFileSync(path.join(root, id1, 'json'), JSON.stringify({ id: id1, created, container_config: { Cmd: ['/bin/sh', '-c', '#(nop) ADD file:busybox in /'] }, config: { Cmd: ['sh'] }, architecture: 'amd64', os: 'linux' }));
  fs.writeFileSync(path.join(root, id2, 'json'), JSON.stringify({ id: id2, parent: o.parentOf2 ?? id1, created, author: 'Old Timer', container_config: { Cmd: ['/bin/sh', '-c', '#(nop) ADD file:hello in /'] }, config: { Cmd: ['cat', '/hello'], Env: ['PATH=/bin', 'LEGACY=1'] }, architecture: 'amd64', os: 'linux' }));
  for (const i of [id1, id2]) fs.writeFileSync(path.join(root, i, 'VERSION'), '1.0');
  fs.writeFileSync(path.join(root, 'repositories'), JSON.stringify(o.tags ?? { 'legacy/app': { v1: id2 } }));
  const out = path.join(dir, `${name}.tar`);
  sh(`tar -C '${root}' -cf '${out}' .`);
  fs.rmSync(work, { recursive: true, force: true });
  return out;
}

after(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const images = () => docker(s, ['images', '-aq', '--no-trunc']).stdout.split('\n').filter(Boolean).sort();

test('docker load of the legacy layout: the image and its tag, its config and history as docker made them; it runs', { skip }, () => {
  const r = docker(s, ['load', '-i', legacy]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Loaded image: legacy\/app:v1/);
  const run = docker(s, ['run', '--rm', 'legacy/app:v1']);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, 'hello from a legacy layer\n');
  const img = JSON.parse(docker(s, ['image', 'inspect', 'legacy/app:v1']).stdout)[0];
  const base = JSON.parse(docker(s, ['image', 'inspect', 'busybox']).stdout)[0];
  assert.equal(img.RootFS.Layers.length, 2);
  assert.equal(img.RootFS.Layers[0], base.RootFS.Layers[0], 'the same busybox layer (diff id)');
  assert.ok(img.Config.Env.includes('LEGACY=1'));
  assert.equal(img.Author, 'Old Timer');
  assert.equal(img.Created, '2016-01-02T03:04:05Z');
  const h = docker(s, ['history', '--no-trunc', 'legacy/app:v1']).stdout.trim().split('\n');
  assert.equal(h.length, 3);
  assert.match(h[1]!, /ADD file:hello in \//);
  assert.match(h[2]!, /ADD file:busybox in \//);
});

test('hull load of the legacy layout; through dockerode too; loading again changes nothing', { skip }, async () => {
  const r = hull(tmp.root, ['load', '-i', legacy]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Loaded image: legacy\/app:v1/);
  const before = images();
  const again = legacyArchive('other-tag', { tags: { 'legacy/other': { t: '' } } });
  // a tag naming no layer id is refused, nothing added
  const bad = hull(tmp.root, ['load', '-i', again]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /is not a layer id/);
  const viaApi = await d.loadImage(fs.createReadStream(legacy));
  const text = await new Promise<string>((resolve) => {
    let t = '';
    viaApi.on('data', (c: Buffer) => (t += c.toString()));
    viaApi.on('end', () => resolve(t));
  });
  assert.match(text, /Loaded image: legacy\/app:v1/);
  assert.deepEqual(images(), before);
});

test('a legacy archive whose parent layer is missing is refused naming it, and leaves nothing', { skip }, () => {
  const before = images();
  const missing = '0'.repeat(64);
  const r = docker(s, ['load', '-i', legacyArchive('broken', { tags: { 'legacy/broken': { v1: '' } }, parentOf2: missing })]);
  assert.notEqual(r.code, 0);
  const broken = legacyArchive('broken2', { parentOf2: missing, tags: {} });
  const r2 = docker(s, ['load', '-i', broken]);
  assert.notEqual(r2.code, 0);
  assert.match(r2.stderr, new RegExp(`layer ${missing} \\(the parent of [0-9a-f]{64}\\) is not in the archive`));
  assert.deepEqual(images(), before);
  assert.equal(docker(s, ['image', 'inspect', 'legacy/broken:v1']).code, 1);
});

test('GET /distribution/{name}/json: the pushed manifest and its platform, from the registry', { skip }, async (t) => {
  if (!haveRegistry()) return t.skip('docker-registry is not installed (apt-get install docker-registry)');
  const reg = await startRegistry();
  try {
    const name = `${reg.host}/dist/busybox:1`;
    assert.equal(docker(s, ['tag', 'busybox', name]).code, 0);
    const push = docker(s, ['push', name]);
    assert.equal(push.code, 0, push.stderr);
    const digest = /digest: (sha256:[0-9a-f]{64})/.exec(push.stdout)?.[1];
    assert.ok(digest, push.stdout);
    const info = (await d.getImage(name).distribution()) as { Descriptor: { digest: string; mediaType: string; size: number }; Platforms: { architecture: string; os: string }[] };
    assert.equal(info.Descriptor.digest, digest);
    assert.match(info.Descriptor.mediaType, /manifest/);
    assert.ok(info.Descriptor.size > 0);
    assert.deepEqual(info.Platforms.map((p) => p.os), ['linux']);
    const missing = await request(s.socket, 'GET', `/v1.45/distribution/${reg.host}/dist/busybox:nosuch/json`);
    assert.equal(missing.status, 404, JSON.stringify(missing.body));
    const bad = await request(s.socket, 'GET', `/v1.45/distribution/${encodeURIComponent('UPPER/Case')}/json`);
    assert.equal(bad.status, 400, JSON.stringify(bad.body));
  } finally {
    await reg.stop();
  }
});
