/**
 * Named and anonymous volumes on both walls, through the hull CLI, the docker 28 CLI and
 * dockerode against `hull serve`: create/ls/inspect/rm/prune, -v NAME:/path and --mount, the
 * image's files copied into a new volume, a container writing and a microVM reading, a volume
 * in use refused, anonymous volumes going with `rm -v` and `--rm`, and nothing left at the end.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import Docker from 'dockerode';
import { hull, hullAsync, importBusybox, makeTempRoot, type TempRoot } from '../helpers/hull.js';
import { endServe, docker, haveDocker, removeAll, startServe, type Serve } from './api-harness.js';

const haveDockerCli = haveDocker();
let tmp: TempRoot;
let s: Serve;
let d: Docker;

before(async () => {
  tmp = makeTempRoot('hull-volumes-');
  importBusybox(tmp.root);
  s = await startServe(tmp.root);
  d = new Docker({ socketPath: s.socket });
});

after(async () => {
  for (const c of await d.listContainers({ all: true })) await d.getContainer(c.Id).remove({ force: true, v: true });
  await endServe(s, tmp, { checkMounts: true });
});

const ok = (r: { code: number; stdout: string; stderr: string }, what: string) => {
  assert.equal(r.code, 0, `${what}: ${r.stderr}`);
  return r.stdout;
};
const h = (...args: string[]) => hull(tmp.root, args);
const volDir = (name: string) => path.join(tmp.root, 'volumes', name, '_data');

test('hull volume create/ls/inspect/rm; -v NAME:/path keeps data across containers; in use is refused', () => {
  assert.equal(ok(h('volume', 'create', '--label', 'team=a', 'data1'), 'create').trim(), 'data1');
  assert.equal(ok(h('volume', 'create', 'data1'), 'create again').trim(), 'data1', 'creating an existing volume answers with it');
  const [v] = JSON.parse(ok(h('volume', 'inspect', 'data1'), 'inspect')) as { Name: string; Driver: string; Mountpoint: string; Labels: Record<string, string>; Scope: string }[];
  assert.equal(v!.Driver, 'local');
  assert.equal(v!.Mountpoint, volDir('data1'));
  assert.deepEqual(v!.Labels, { team: 'a' });
  assert.match(ok(h('volume', 'ls', '--filter', 'label=team=a', '-q'), 'ls'), /^data1\n$/);
  ok(h('run', '--rm', '-v', 'data1:/data', 'busybox', 'sh', '-c', 'echo one > /data/f'), 'write');
  assert.equal(ok(h('run', '--rm', '-v', 'data1:/data:ro', 'busybox', 'cat', '/data/f'), 'read'), 'one\n');
  const ro = h('run', '--rm', '-v', 'data1:/data:ro', 'busybox', 'sh', '-c', 'echo x > /data/g');
  assert.notEqual(ro.code, 0, 'a read-only volume refuses writes');
  // in use by a created (not running) container: refused, named
  const id = ok(h('create', '--name', 'user1', '-v', 'data1:/data', 'busybox', 'true'), 'create ctr').trim();
  const rm = h('volume', 'rm', 'data1');
  assert.equal(rm.code, 1);
  assert.match(rm.stderr, new RegExp(`volume is in use - \\[${id}\\]`));
  assert.match(ok(h('volume', 'ls', '--filter', 'dangling=false', '-q'), 'ls dangling'), /data1/);
  ok(h('rm', 'user1'), 'rm ctr');
  assert.ok(fs.existsSync(path.join(volDir('data1'), 'f')), 'a named volume outlives its containers');
  ok(h('volume', 'rm', 'data1'), 'rm volume');
  assert.equal(fs.existsSync(path.join(tmp.root, 'volumes', 'data1')), false, 'its directory is gone');
  const missing = h('volume', 'inspect', 'data1');
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /no such volume/);
  const badName = h('volume', 'create', 'bad/name');
  assert.notEqual(badName.code, 0);
  assert.match(badName.stderr, /invalid characters/);
  const badRun = h('run', '--rm', '-v', 'x:relative', 'busybox', 'true');
  assert.equal(badRun.code, 125);
  assert.match(badRun.stderr, /must be absolute/);
});

test("a new volume gets the image's files at its path (not with nocopy, not when it has files)", () => {
  assert.match(ok(h('run', '--rm', '-v', 'etcvol:/etc', 'busybox', 'ls', '/etc'), 'run'), /passwd/);
  assert.ok(fs.existsSync(path.join(volDir('etcvol'), 'passwd')), 'copied into the volume');
  fs.writeFileSync(path.join(volDir('etcvol'), 'marker'), 'm');
  fs.rmSync(path.join(volDir('etcvol'), 'group'));
  ok(h('run', '--rm', '-v', 'etcvol:/etc', 'busybox', 'true'), 'run again');
  assert.equal(fs.existsSync(path.join(volDir('etcvol'), 'group')), false, 'a volume with files is not filled again');
  assert.equal(ok(h('run', '--rm', '--mount', 'type=volume,source=etcnocopy,target=/etc,volume-nocopy', 'busybox', 'ls', '-A', '/etc'), 'nocopy'), '');
  ok(h('volume', 'rm', 'etcvol', 'etcnocopy'), 'rm');
});

test('anonymous volumes: -v /path and --mount without source; rm -v and --rm take them, rm alone keeps them', () => {
  const before = new Set(JSON.parse(`[${ok(h('volume', 'ls', '--format', 'json'), 'ls').trim().split('\n').filter(Boolean).join(',')}]`).map((v: { Name: string }) => v.Name));
  ok(h('run', '--rm', '-v', '/anon', 'busybox', 'sh', '-c', 'echo a > /anon/f'), '--rm');
  const keep = ok(h('create', '-v', '/anon', '--mount', 'target=/anon2', 'busybox', 'true'), 'create').trim();
  const mounts = JSON.parse(ok(h('inspect', '-f', '{{json .Mounts}}', keep), 'inspect')) as { Type: string; Name: string; Destination: string }[];
  assert.deepEqual(mounts.map((m) => [m.Type, m.Destination]), [['volume', '/anon'], ['volume', '/anon2']]);
  for (const m of mounts) assert.match(m.Name, /^[0-9a-f]{64}$/);
  ok(h('rm', keep), 'rm without -v');
  const dangling = ok(h('volume', 'ls', '-q', '--filter', 'dangling=true'), 'ls').split('\n').filter(Boolean);
  for (const m of mounts) assert.ok(dangling.includes(m.Name), 'rm without -v keeps anonymous volumes');
  const other = ok(h('create', '-v', '/x', 'busybox', 'true'), 'create').trim();
  const [{ Name: otherVol }] = JSON.parse(ok(h('inspect', '-f', '{{json .Mounts}}', other), 'inspect')) as { Name: string }[];
  ok(h('rm', '-v', other), 'rm -v');
  assert.equal(fs.existsSync(path.join(tmp.root, 'volumes', otherVol!)), false, 'rm -v removed its anonymous volume');
  const pruned = ok(h('volume', 'prune', '-f'), 'prune');
  for (const m of mounts) assert.ok(pruned.includes(m.Name));
  const after = ok(h('volume', 'ls', '-q'), 'ls').split('\n').filter(Boolean);
  assert.deepEqual(after.filter((n) => !before.has(n)), [], 'the --rm run left no volume, prune took the rest');
});

test('a container writes, a microVM reads and writes back (the VM mounts the volume over 9p)', () => {
  ok(h('run', '--rm', '-v', 'shared:/data', 'busybox', 'sh', '-c', 'echo from-container > /data/f'), 'container');
  assert.equal(ok(h('run', '--rm', '--vm', '-v', 'shared:/data', 'busybox', 'sh', '-c', 'cat /data/f; echo from-vm >> /data/f'), 'vm'), 'from-container\n');
  assert.equal(ok(h('run', '--rm', '-v', 'shared:/data', 'busybox', 'cat', '/data/f'), 'container again'), 'from-container\nfrom-vm\n');
  ok(h('volume', 'rm', 'shared'), 'rm');
});

test('concurrent volume rm and use: a volume a container mounts is never removed', async () => {
  const jobs: Promise<unknown>[] = [];
  for (let i = 0; i < 6; i++) {
    jobs.push(hullAsync(tmp.root, ['create', '--name', `race${i}`, '-v', 'race:/d', 'busybox', 'true']));
    jobs.push(hullAsync(tmp.root, ['volume', 'rm', 'race']));
  }
  await Promise.all(jobs);
  const users = Array.from({ length: 6 }, (_, i) => `race${i}`).filter((n) => h('inspect', n).code === 0);
  assert.ok(users.length > 0);
  for (const n of users) {
    const [m] = JSON.parse(ok(h('inspect', '-f', '{{json .Mounts}}', n), 'inspect')) as { Name: string; Source: string }[];
    assert.equal(m!.Name, 'race');
    assert.ok(fs.statSync(m!.Source).isDirectory(), `${n}'s volume directory exists`);
  }
  assert.equal(h('volume', 'inspect', 'race').code, 0, 'the volume is there while containers use it');
  ok(h('rm', ...users), 'rm');
  ok(h('volume', 'rm', 'race'), 'volume rm');
});

test('docker CLI: volume create/ls/inspect/rm/prune, run -v NAME (container and --runtime hull-vm)', (t) => {
  if (!haveDockerCli) return t.skip('the docker CLI is not installed');
  assert.equal(ok(docker(s, ['volume', 'create', '--label', 'k=v', 'dvol']), 'create').trim(), 'dvol');
  assert.equal(ok(docker(s, ['volume', 'inspect', '-f', '{{.Driver}} {{.Scope}} {{.Labels.k}} {{.Mountpoint}}', 'dvol']), 'inspect').trim(), `local local v ${volDir('dvol')}`);
  assert.match(ok(docker(s, ['volume', 'ls']), 'ls'), /local\s+dvol/);
  assert.equal(ok(docker(s, ['volume', 'ls', '-q', '--filter', 'label=k=v']), 'ls filter').trim(), 'dvol');
  ok(docker(s, ['run', '--rm', '-v', 'dvol:/data', 'busybox', 'sh', '-c', 'echo docker > /data/f']), 'run');
  assert.equal(ok(docker(s, ['run', '--rm', '--runtime', 'hull-vm', '-v', 'dvol:/data', 'busybox', 'cat', '/data/f']), 'run vm'), 'docker\n');
  assert.equal(ok(docker(s, ['run', '--rm', '--mount', 'type=volume,src=dvol,dst=/m,readonly', 'busybox', 'cat', '/m/f']), 'run --mount'), 'docker\n');
  const id = ok(docker(s, ['create', '-v', 'dvol:/data', '-v', '/anon', 'busybox', 'true']), 'create').trim();
  const inUse = docker(s, ['volume', 'rm', 'dvol']);
  assert.equal(inUse.code, 1);
  assert.match(inUse.stderr, /volume is in use/);
  assert.equal(ok(docker(s, ['ps', '-aq', '--filter', 'volume=dvol']), 'ps filter').trim(), id.slice(0, 12));
  const anon = JSON.parse(ok(docker(s, ['inspect', '-f', '{{json .Mounts}}', id]), 'inspect')) as { Name: string; Destination: string }[];
  const anonName = anon.find((m) => m.Destination === '/anon')!.Name;
  ok(docker(s, ['rm', '-v', id]), 'rm -v');
  assert.equal(docker(s, ['volume', 'inspect', anonName]).code, 1, 'rm -v removed the anonymous volume');
  ok(docker(s, ['volume', 'create', 'unused1']), 'create');
  const pruneAnon = ok(docker(s, ['volume', 'prune', '-f']), 'prune');
  assert.doesNotMatch(pruneAnon, /unused1/, 'prune without --all keeps named volumes');
  const pruneAll = ok(docker(s, ['volume', 'prune', '-af']), 'prune -a');
  assert.match(pruneAll, /dvol/);
  assert.match(pruneAll, /unused1/);
  assert.match(pruneAll, /Total reclaimed space: 7B/);
  const gone = docker(s, ['volume', 'inspect', 'dvol']);
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, /no such volume/);
  const bad = docker(s, ['volume', 'create', '-d', 'nfs', 'x1']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /driver "nfs" is not supported/);
  removeAll(s);
});

test('dockerode: createVolume, listVolumes, inspect, remove, pruneVolumes; Binds with a volume name', async () => {
  await d.createVolume({ Name: 'dode', Labels: { from: 'dockerode' } });
  const v = await d.getVolume('dode').inspect();
  assert.equal(v.Name, 'dode');
  assert.equal(v.Mountpoint, volDir('dode'));
  const list = await d.listVolumes({ filters: JSON.stringify({ label: ['from=dockerode'] }) });
  assert.deepEqual(list.Volumes.map((x) => x.Name), ['dode']);
  assert.deepEqual(list.Warnings, []);
  const c = await d.createContainer({ Image: 'busybox', Cmd: ['sh', '-c', 'echo hi > /v/f'], HostConfig: { Binds: ['dode:/v'] } });
  await c.start();
  assert.equal((await c.wait()).StatusCode, 0);
  await assert.rejects(d.getVolume('dode').remove(), (e: { statusCode?: number }) => e.statusCode === 409);
  await c.remove();
  assert.equal(fs.readFileSync(path.join(volDir('dode'), 'f'), 'utf8'), 'hi\n');
  assert.equal((await d.getVolume('dode').inspect()).Labels.from, 'dockerode');
  await d.getVolume('dode').remove();
  await assert.rejects(d.getVolume('dode').inspect(), (e: { statusCode?: number }) => e.statusCode === 404);
  await d.createVolume({ Name: 'dode2' });
  const pruned = await d.pruneVolumes({ filters: JSON.stringify({ all: ['true'] }) });
  assert.deepEqual(pruned.VolumesDeleted, ['dode2']);
  await assert.rejects(d.createVolume({ Name: 'xo', DriverOpts: { type: 'tmpfs' } }), (e: { statusCode?: number; message: string }) => e.statusCode === 400 && /takes no options/.test(e.message));
});

test('hull system check: a volume directory without its row, and a killed rm\'s moved-aside data, are found and fixed', () => {
  fs.mkdirSync(path.join(tmp.root, 'volumes', 'stray', '_data'), { recursive: true });
  fs.mkdirSync(path.join(tmp.root, 'tmp', 'volume-rm-0123456789ab'), { recursive: true });
  const check = h('system', 'check');
  assert.equal(check.code, 1);
  assert.match(check.stdout + check.stderr, /volume-directory.*volumes\/stray/);
  assert.match(check.stdout + check.stderr, /volume-trash.*volume-rm-0123456789ab/);
  ok(h('system', 'check', '--fix'), 'fix');
  assert.equal(fs.existsSync(path.join(tmp.root, 'volumes', 'stray')), false);
  ok(h('system', 'check'), 'clean');
});

test("an image's VOLUME becomes an anonymous volume holding the image's files there; -v NAME over it wins", () => {
  const ctx = fs.mkdtempSync(path.join(tmp.root, 'ctx-'));
  fs.writeFileSync(path.join(ctx, 'Dockerfile'), 'FROM busybox\nRUN mkdir -p /data && echo seed > /data/seed\nVOLUME /data\n');
  const b = hull(tmp.root, ['build', '--network', 'none', '-t', 'withvol', ctx], { timeoutMs: 300_000 });
  assert.equal(b.code, 0, b.stderr);
  const id = ok(h('create', 'withvol', 'cat', '/data/seed'), 'create').trim();
  const [m] = JSON.parse(ok(h('inspect', '-f', '{{json .Mounts}}', id), 'inspect')) as { Type: string; Name: string; Destination: string }[];
  assert.deepEqual([m!.Type, m!.Destination], ['volume', '/data']);
  assert.equal(fs.readFileSync(path.join(volDir(m!.Name), 'seed'), 'utf8'), 'seed\n', "the image's files were copied in");
  assert.deepEqual(JSON.parse(ok(h('inspect', '-f', '{{json .Config.Volumes}}', id), 'inspect')), { '/data': {} });
  ok(h('start', id), 'start');
  assert.equal(ok(h('wait', id), 'wait').trim(), '0');
  assert.equal(ok(h('logs', id), 'logs'), 'seed\n');
  ok(h('rm', '-v', id), 'rm -v');
  assert.equal(fs.existsSync(path.join(tmp.root, 'volumes', m!.Name)), false);
  assert.equal(ok(h('run', '--rm', '-v', 'over:/data', 'withvol', 'cat', '/data/seed'), 'named over VOLUME'), 'seed\n', 'a new named volume gets the files too');
  const [n] = JSON.parse(ok(h('volume', 'inspect', 'over'), 'inspect')) as { Name: string }[];
  assert.equal(n!.Name, 'over');
  ok(h('volume', 'rm', 'over'), 'rm');
  ok(h('rmi', 'withvol'), 'rmi');
});

test('a build step on an image with a VOLUME leaves no volume behind, and its writes there are not in the layer (docker\'s rule)', () => {
  const ctx = fs.mkdtempSync(path.join(tmp.root, 'ctx-'));
  fs.writeFileSync(path.join(ctx, 'Dockerfile'), 'FROM busybox\nVOLUME /v\nRUN echo lost > /v/f && echo kept > /k\n');
  const before = h('volume', 'ls', '-q').stdout;
  const b = hull(tmp.root, ['build', '--network', 'none', '-t', 'stepvol', ctx], { timeoutMs: 300_000 });
  assert.equal(b.code, 0, b.stderr);
  assert.equal(h('volume', 'ls', '-q').stdout, before, 'no anonymous volume left by the RUN step');
  assert.equal(ok(h('run', '--rm', 'stepvol', 'sh', '-c', 'cat /k; ls /v'), 'run'), 'kept\n');
  ok(h('rmi', 'stepvol'), 'rmi');
});
