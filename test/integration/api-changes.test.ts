/**
 * What a container changed, through `hull serve` (docker 28 CLI and dockerode) and the hull CLI
 * twins: diff/changes (A/C/D), commit (--change, author, message; POST /commit), history with
 * sizes, export; a committed image through `hull save` into podman. The VM wall's twins are in
 * api-changes-vm.test.ts.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { HULL_BIN, hull, type TempRoot } from '../helpers/hull.js';
import { docker, serveForFile, type Serve } from './api-harness.js';
import { havePodman, podmanRunFlags, withPodman } from '../helpers/podman.js';

let tmp: TempRoot;
let s: Serve;
let d: Docker;
let dir: string;
const f = serveForFile('hull-api-changes-', {
  ready: (srv, root) => {
    ({ s, tmp } = { s: srv, tmp: root });
    d = new Docker({ socketPath: s.socket });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-changes-'));
    assert.equal(docker(s, ['run', '--name', 'ch', 'busybox', 'sh', '-c', CHANGE]).code, 0);
  },
});
const skip = f.have ? false : 'the docker CLI is not installed';

const CHANGE = 'mkdir /tmp/d; echo hi > /tmp/d/f; rm /bin/ls; echo extra >> /etc/passwd';
const EXPECTED = ['C /bin', 'D /bin/ls', 'C /etc', 'C /etc/passwd', 'C /tmp', 'A /tmp/d', 'A /tmp/d/f'];

after(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const images = () => docker(s, ['images', '-q', '--no-trunc']).stdout.split('\n').filter(Boolean).sort();

test('docker diff and hull diff: A, C and D entries from the writable layer, sorted, without the runtime mountpoints', { skip }, async () => {
  const r = docker(s, ['diff', 'ch']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split('\n'), EXPECTED);
  const h = hull(tmp.root, ['diff', 'ch']);
  assert.equal(h.code, 0, h.stderr);
  assert.equal(h.stdout, r.stdout);
  const json = await d.getContainer('ch').changes();
  assert.deepEqual(json.slice(0, 2), [{ Path: '/bin', Kind: 0 }, { Path: '/bin/ls', Kind: 2 }]);
  assert.ok(json.some((c: { Path: string; Kind: number }) => c.Path === '/tmp/d/f' && c.Kind === 1));
  // a running container: its changes so far
  assert.equal(docker(s, ['run', '-d', '--name', 'live', 'busybox', 'sh', '-c', 'touch /made; sleep 300']).code, 0);
  let live = '';
  for (let i = 0; i < 100 && !live.includes('A /made'); i++) live = docker(s, ['diff', 'live']).stdout;
  assert.match(live, /^A \/made$/m);
  docker(s, ['rm', '-f', 'live']);
  const none = docker(s, ['diff', 'nosuch']);
  assert.notEqual(none.code, 0);
  assert.match(none.stderr, /No such container: nosuch/);
});

test('docker commit with --change, author and message: the new image runs, keeps the config docker records', { skip }, () => {
  const before = images();
  const r = docker(s, ['commit', '-c', 'CMD ["cat","/tmp/d/f"]', '-c', 'ENV COMMITTED=yes', '-m', 'a message', '-a', 'Jane <jane@example.com>', 'ch', 'committed:v1']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout.trim(), /^sha256:[0-9a-f]{64}$/);
  const run = docker(s, ['run', '--rm', 'committed:v1']);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, 'hi\n');
  const gone = docker(s, ['run', '--rm', 'committed:v1', 'ls']);
  assert.notEqual(gone.code, 0, 'the deletion is part of the image');
  const img = JSON.parse(docker(s, ['image', 'inspect', 'committed:v1']).stdout)[0];
  const base = JSON.parse(docker(s, ['image', 'inspect', 'busybox']).stdout)[0];
  assert.equal(img.Author, 'Jane <jane@example.com>');
  assert.equal(img.Comment, 'a message');
  assert.deepEqual(img.Config.Cmd, ['cat', '/tmp/d/f']);
  assert.ok(img.Config.Env.includes('COMMITTED=yes'));
  assert.deepEqual(img.RootFS.Layers.slice(0, -1), base.RootFS.Layers);
  assert.equal(img.RootFS.Layers.length, base.RootFS.Layers.length + 1);
  // bad input leaves no image behind
  const bad = docker(s, ['commit', '-c', 'BOGUS x', 'ch', 'bad:v1']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /BOGUS/);
  const none = docker(s, ['commit', 'nosuch', 'bad:v2']);
  assert.notEqual(none.code, 0);
  assert.deepEqual(images(), [...before, img.Id].sort());
});

test('POST /commit through dockerode, and hull commit', { skip }, async () => {
  const r = (await d.getContainer('ch').commit({ repo: 'dockerode/commit', tag: 't', comment: 'from dockerode', changes: 'LABEL via=api' })) as { Id: string };
  assert.match(r.Id, /^sha256:/);
  const img = await d.getImage('dockerode/commit:t').inspect();
  assert.equal(img.Id, r.Id);
  assert.equal(img.Comment, 'from dockerode');
  assert.equal(img.Config.Labels?.via, 'api'); // added to the image's own labels
  // a running container is paused while its layer is read (docker's default), then runs on
  assert.equal(docker(s, ['run', '-d', '--name', 'running', 'busybox', 'sh', '-c', 'echo made > /made; sleep 300']).code, 0);
  for (let i = 0; i < 100 && !docker(s, ['diff', 'running']).stdout.includes('A /made'); i++);
  const rc = docker(s, ['commit', 'running', 'from/running:1']);
  assert.equal(rc.code, 0, rc.stderr);
  const st = JSON.parse(docker(s, ['inspect', 'running']).stdout)[0].State;
  assert.deepEqual([st.Running, st.Paused], [true, false]);
  assert.equal(docker(s, ['run', '--rm', 'from/running:1', 'cat', '/made']).stdout, 'made\n');
  docker(s, ['rm', '-f', 'running']);
  const h = hull(tmp.root, ['commit', '-m', 'from the cli', 'ch', 'cli/commit:t']);
  assert.equal(h.code, 0, h.stderr);
  assert.equal(JSON.parse(hull(tmp.root, ['image', 'inspect', 'cli/commit:t']).stdout)[0].Comment, 'from the cli');
});

test('docker history and hull history: newest first, the commit with its size and comment', { skip }, async () => {
  const r = docker(s, ['history', 'committed:v1']);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.match(lines[0]!, /^IMAGE\s+CREATED\s+CREATED BY\s+SIZE\s+COMMENT$/);
  const id = JSON.parse(docker(s, ['image', 'inspect', 'committed:v1']).stdout)[0].Id.slice(7, 19);
  assert.match(lines[1]!, new RegExp(`^${id}\\s+.*sh -c mkdir.*\\s+\\d+(\\.\\d+)?[kM]?B\\s+a message$`));
  assert.match(lines.at(-1)!, /^<missing>/);
  const h = hull(tmp.root, ['history', '-q', 'committed:v1']);
  assert.equal(h.stdout.split('\n')[0], id);
  const rows = (await d.getImage('committed:v1').history()) as { Id: string; Size: number; Comment: string; Tags: string[] | null }[];
  assert.equal(rows[0]!.Comment, 'a message');
  assert.deepEqual(rows[0]!.Tags, ['committed:v1']);
  assert.ok(rows[0]!.Size > 0);
  assert.ok(rows.at(-1)!.Size > 1_000_000, 'the busybox layer');
  const none = docker(s, ['history', 'nosuch:image']);
  assert.notEqual(none.code, 0);
});

test('docker export and hull export: the merged filesystem as a tar, the deleted file absent', { skip }, () => {
  const out = path.join(dir, 'ch.tar');
  const r = docker(s, ['export', '-o', out, 'ch']);
  assert.equal(r.code, 0, r.stderr);
  const list = spawnSync('tar', ['-tf', out], { encoding: 'utf8' }).stdout.split('\n');
  assert.ok(list.includes('tmp/d/f'));
  assert.ok(list.includes('bin/sh'));
  assert.ok(!list.includes('bin/ls'));
  const passwd = spawnSync('tar', ['-xOf', out, 'etc/passwd'], { encoding: 'utf8' }).stdout;
  assert.ok(passwd.endsWith('extra\n'));
  const viaCli = spawnSync('sh', ['-c', `"${HULL_BIN}" --root "${tmp.root}" export ch | tar -t`], { encoding: 'utf8' });
  assert.equal(viaCli.status, 0, viaCli.stderr);
  assert.deepEqual(viaCli.stdout.split('\n').sort(), [...list].sort());
  assert.deepEqual(fs.readdirSync(path.join(tmp.root, 'tmp')).filter((n) => n.startsWith('export-')), [], 'no temp copy left');
  const none = docker(s, ['export', '-o', path.join(dir, 'none.tar'), 'nosuch']);
  assert.notEqual(none.code, 0);
  assert.ok(!fs.existsSync(path.join(dir, 'none.tar')));
});

test('a committed image: hull save | podman load, and podman runs it', { skip }, (tt) => {
  if (!havePodman()) return tt.skip('podman is not installed (scripts/setup.sh installs it)');
  withPodman((g) => {
    const load = spawnSync('sh', ['-c', `"${HULL_BIN}" --root "${tmp.root}" save committed:v1 | podman ${g.map((a) => `'${a}'`).join(' ')} load`], { encoding: 'utf8', timeout: 300_000 });
    assert.equal(load.status, 0, load.stderr);
    const run = spawnSync('podman', [...g, 'run', '--rm', ...podmanRunFlags(), 'committed:v1'], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout, 'hi\n');
  });
});
