/**
 * Labels and list filters, and the event stream, through the hull CLI, the docker 28 CLI and
 * dockerode against `hull serve`: --label/--label-file, ps --filter (label, name, status,
 * ancestor, network, volume), images/network/volume ls --filter, `events` streamed and replayed
 * with --since/--until and filters, in docker's shapes.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Docker from 'dockerode';
import { hull, importBusybox, makeTempRoot, type TempRoot } from '../helpers/hull.js';
import { endServe, docker, haveDocker, startServe, type Serve } from './api-harness.js';

const haveDockerCli = haveDocker();
let tmp: TempRoot;
let s: Serve;
let d: Docker;

before(async () => {
  tmp = makeTempRoot('hull-events-');
  importBusybox(tmp.root);
  s = await startServe(tmp.root);
  d = new Docker({ socketPath: s.socket });
});

after(async () => {
  await endServe(s, tmp, { removeVolumes: true });
});

const ok = (r: { code: number; stdout: string; stderr: string }, what: string) => {
  assert.equal(r.code, 0, `${what}: ${r.stderr}`);
  return r.stdout;
};
const h = (...args: string[]) => hull(tmp.root, args);
const nowSec = () => (Date.now() / 1000).toFixed(3);
const lines = (t: string) => t.split('\n').filter(Boolean);

test('hull: --label, --label-file, ps --filter label/status/name/ancestor/volume/network, inspect shows the labels', () => {
  const file = path.join(tmp.root, 'labels.txt');
  fs.writeFileSync(file, '# comment\ntier=back\n\nowner=ops\n');
  const a = ok(h('run', '-d', '--name', 'la', '--label', 'app=shop', '--label', 'tier=front', '-v', 'lv:/data', 'busybox', 'sleep', '60'), 'run a').trim();
  const b = ok(h('create', '--name', 'lb', '--label', 'app=shop', '--label-file', file, 'busybox', 'true'), 'create b').trim();
  ok(h('run', '--name', 'lc', '--network', 'none', 'busybox', 'true'), 'run c');
  const ids = (...f: string[]) => lines(ok(h('ps', '-aq', '--no-trunc', ...f.flatMap((x) => ['--filter', x])), 'ps')).sort();
  assert.deepEqual(ids('label=app=shop'), [a, b].sort());
  assert.deepEqual(ids('label=app=shop', 'label=tier=back'), [b]);
  assert.deepEqual(ids('label=owner'), [b]);
  assert.deepEqual(ids('status=created'), [b]);
  assert.deepEqual(ids('status=running', 'label=app'), [a]);
  assert.equal(ids('status=exited').length, 1);
  assert.deepEqual(ids('name=^l[ab]$'), [a, b].sort());
  assert.deepEqual(ids('volume=lv'), [a]);
  assert.equal(ids('network=none').length, 1);
  assert.equal(ids('ancestor=busybox').length, 3);
  assert.deepEqual(ids('ancestor=no-such-image'), []);
  const bad = h('ps', '--filter', 'colour=red');
  assert.equal(bad.code, 125);
  assert.match(bad.stderr, /invalid filter 'colour'/);
  const labels = JSON.parse(ok(h('inspect', '-f', '{{json .Config.Labels}}', 'lb'), 'inspect')) as Record<string, string>;
  assert.equal(labels.app, 'shop');
  assert.equal(labels.tier, 'back');
  assert.equal(labels.owner, 'ops');
  assert.ok('org.opencontainers.image.source' in labels, "the image's labels are there too");
  ok(h('rm', '-f', 'la', 'lb', 'lc'), 'rm');
  ok(h('volume', 'rm', 'lv'), 'volume rm');
});

test('hull events: replay with --since/--until and filters, docker line format', () => {
  const t0 = nowSec();
  assert.equal(h('run', '--name', 'ev1', '--label', 'k=v', '--network', 'none', 'busybox', 'sh', '-c', 'exit 3').code, 3);
  ok(h('rm', 'ev1'), 'rm');
  const t1 = nowSec();
  const all = lines(ok(h('events', '--since', t0, '--until', t1, '--filter', 'container=ev1'), 'events'));
  assert.deepEqual(all.map((l) => l.split(' ')[2]), ['create', 'start', 'die', 'destroy']);
  assert.match(all[2]!, /^\d{4}-\d\d-\d\dT[\d:.]+Z container die [0-9a-f]{64} \(.*exitCode=3.*image=busybox.*k=v.*name=ev1.*\)$/);
  const die = lines(ok(h('events', '--since', t0, '--until', t1, '--filter', 'event=die', '--filter', 'label=k=v', '--format', 'json'), 'events json'));
  assert.equal(die.length, 1);
  const e = JSON.parse(die[0]!) as { Type: string; Action: string; status: string; from: string; Actor: { Attributes: Record<string, string> } };
  assert.deepEqual([e.Type, e.Action, e.status, e.from, e.Actor.Attributes.exitCode], ['container', 'die', 'die', 'busybox', '3']);
  assert.deepEqual(lines(ok(h('events', '--since', t0, '--until', t1, '--filter', 'type=image'), 'events image')), []);
  const bad = h('events', '--since', 'yesterday-ish', '--until', t1);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /invalid value for --since/);
});

test('docker CLI: labels and filters on ps, images, network ls, volume ls', (t) => {
  if (!haveDockerCli) return t.skip('the docker CLI is not installed');
  const a = ok(docker(s, ['run', '-d', '--label', 'com.example.role=web', '--name', 'dl1', 'busybox', 'sleep', '60']), 'run').trim();
  ok(docker(s, ['create', '--label', 'com.example.role=db', '--name', 'dl2', 'busybox', 'true']), 'create');
  assert.equal(ok(docker(s, ['ps', '-q', '--no-trunc', '--filter', 'label=com.example.role=web']), 'ps').trim(), a);
  assert.equal(ok(docker(s, ['ps', '-a', '--filter', 'label=com.example.role', '--format', '{{.Names}} {{.Label "com.example.role"}}']), 'ps format').split('\n').filter(Boolean).sort().join(';'), 'dl1 web;dl2 db');
  assert.equal(ok(docker(s, ['ps', '-a', '--filter', 'status=created', '--format', '{{.Names}}']), 'ps status').trim(), 'dl2');
  assert.equal(ok(docker(s, ['ps', '--filter', 'name=dl', '--filter', 'ancestor=busybox', '--format', '{{.Names}}']), 'ps name').trim(), 'dl1');
  assert.equal(ok(docker(s, ['inspect', '-f', '{{index .Config.Labels "com.example.role"}}', 'dl2']), 'inspect').trim(), 'db');
  assert.match(ok(docker(s, ['images', '--filter', 'label=org.opencontainers.image.source', '--format', '{{.Repository}}']), 'images'), /^busybox$/m);
  assert.equal(ok(docker(s, ['images', '-q', '--filter', 'label=no.such.label']), 'images none'), '');
  ok(docker(s, ['network', 'create', '--label', 'env=test', 'dlnet']), 'network create');
  assert.equal(ok(docker(s, ['network', 'ls', '--filter', 'label=env=test', '--format', '{{.Name}}']), 'network ls').trim(), 'dlnet');
  assert.equal(ok(docker(s, ['network', 'ls', '--filter', 'type=custom', '--format', '{{.Name}}']), 'network ls type').trim(), 'dlnet');
  ok(docker(s, ['volume', 'create', '--label', 'env=test', 'dlvol']), 'volume create');
  assert.equal(ok(docker(s, ['volume', 'ls', '--filter', 'label=env', '--format', '{{.Name}}']), 'volume ls').trim(), 'dlvol');
  const bad = docker(s, ['ps', '--filter', 'colour=red']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /invalid filter 'colour'/);
  ok(docker(s, ['rm', '-f', 'dl1', 'dl2']), 'rm');
  ok(docker(s, ['network', 'rm', 'dlnet']), 'network rm');
  ok(docker(s, ['volume', 'rm', 'dlvol']), 'volume rm');
});

test('docker CLI: events streamed while things happen, and replayed with --since/--until and filters', async (t) => {
  if (!haveDockerCli) return t.skip('the docker CLI is not installed');
  const t0 = nowSec();
  const ev = spawn('docker', ['events', '--since', t0, '--format', '{{.Type}} {{.Action}} {{if eq .Type "volume"}}{{.Actor.ID}}{{else}}{{.Actor.Attributes.name}}{{end}}'], { env: s.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const seen = new Promise<void>((resolve) => {
    ev.stdout.setEncoding('utf8').on('data', (x: string) => {
      out += x;
      if (/container destroy dev1/.test(out)) resolve();
    });
  });
  ok(docker(s, ['volume', 'create', 'devvol']), 'volume create');
  ok(docker(s, ['tag', 'busybox', 'evtag:1']), 'tag');
  ok(docker(s, ['rmi', 'evtag:1']), 'rmi');
  ok(docker(s, ['network', 'create', 'devnet']), 'network create');
  ok(docker(s, ['run', '--name', 'dev1', '--network', 'devnet', '-v', 'devvol:/d', 'busybox', 'true']), 'run');
  ok(docker(s, ['rm', 'dev1']), 'rm');
  await seen;
  ev.kill('SIGTERM');
  await new Promise((r) => ev.once('close', r));
  const got = lines(out);
  for (const want of ['image tag evtag:1', 'image untag evtag:1', 'volume create devvol', 'network create devnet', 'container create dev1', 'network connect devnet', 'container start dev1', 'container die dev1', 'container destroy dev1']) {
    assert.ok(got.some((l) => l.startsWith(want)), `streamed "${want}" (got ${JSON.stringify(got)})`);
  }
  const t1 = nowSec();
  const replay = lines(ok(docker(s, ['events', '--since', t0, '--until', t1, '--filter', 'type=container', '--filter', 'event=die', '--format', '{{.Actor.Attributes.name}} {{.Actor.Attributes.exitCode}}']), 'replay'));
  assert.deepEqual(replay, ['dev1 0']);
  const nets = lines(ok(docker(s, ['events', '--since', t0, '--until', t1, '--filter', 'network=devnet', '--format', '{{.Action}}']), 'network events'));
  assert.deepEqual(nets, ['create', 'connect', 'disconnect']);
  ok(docker(s, ['network', 'rm', 'devnet']), 'network rm');
  ok(docker(s, ['volume', 'rm', 'devvol']), 'volume rm');
});

test('dockerode: listContainers with label filters, getEvents with since/until and filters', async () => {
  const t0 = Math.floor(Date.now() / 1000) - 1;
  const c = await d.createContainer({ Image: 'busybox', name: 'labelled1', Cmd: ['true'], Labels: { 'com.example.x': '1' }, HostConfig: { NetworkMode: 'none' } });
  await c.start();
  await c.wait();
  const list = await d.listContainers({ all: true, filters: JSON.stringify({ label: ['com.example.x=1'] }) });
  assert.deepEqual(list.map((x) => x.Names[0]), ['/labelled1']);
  assert.equal(list[0]!.Labels['com.example.x'], '1');
  await c.remove();
  const t1 = Math.floor(Date.now() / 1000) + 1;
  const stream = (await d.getEvents({ since: t0, until: t1, filters: JSON.stringify({ container: ['labelled1'] }) })) as unknown as NodeJS.ReadableStream;
  let text = '';
  for await (const chunk of stream) text += String(chunk);
  const actions = lines(text).map((l) => (JSON.parse(l) as { Action: string }).Action);
  assert.deepEqual(actions, ['create', 'start', 'die', 'destroy']);
  await assert.rejects(d.listContainers({ filters: JSON.stringify({ bogus: ['x'] }) }), (e: { statusCode?: number }) => e.statusCode === 400);
  await assert.rejects(d.getEvents({ filters: JSON.stringify({ type: ['nonsense'] }) }), (e: { statusCode?: number }) => e.statusCode === 400);
});
