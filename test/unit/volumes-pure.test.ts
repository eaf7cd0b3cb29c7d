/** Volumes and filters as data: mount syntaxes, the mount plan, list filters. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMountFlag } from '../../src/volumes/syntax.js';
import { planMounts } from '../../src/engine/volumes.js';
import { filterContainers, filterVolumes, labelsMatch, parseFilterFlags, pruneLabelMatch } from '../../src/engine/filters.js';
import type { ContainerSummary } from '../../src/engine/inspect.js';
import { parseBytes } from '../../src/engine/units.js';

test('--mount: volume, bind, tmpfs; bad fields named', () => {
  assert.deepEqual(parseMountFlag('type=volume,source=v1,target=/data,readonly,volume-nocopy', parseBytes), { type: 'volume', source: 'v1', destination: '/data', readOnly: true, noCopy: true });
  assert.deepEqual(parseMountFlag('target=/anon', parseBytes), { type: 'volume', destination: '/anon', readOnly: false });
  assert.deepEqual(parseMountFlag('type=bind,src=/srv,dst=/srv,ro=true', parseBytes), { type: 'bind', source: '/srv', destination: '/srv', readOnly: true });
  assert.deepEqual(parseMountFlag('type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1777', parseBytes), { type: 'tmpfs', destination: '/t', readOnly: false, options: ['size=1048576', 'mode=1777'] });
  assert.throws(() => parseMountFlag('type=volume,source=v1', parseBytes), /target is required/);
  assert.throws(() => parseMountFlag('type=bind,source=rel,target=/x', parseBytes), /absolute source/);
  assert.throws(() => parseMountFlag('type=npipe,target=/x', parseBytes), /volume, bind and tmpfs/);
  assert.throws(() => parseMountFlag('type=volume,target=/x,bogus=1', parseBytes), /unexpected key 'bogus'/);
});

test('planMounts: image VOLUMEs become anonymous volumes unless covered; volumes become binds; duplicates refused', () => {
  let n = 0;
  const plan = planMounts(
    [{ type: 'volume', source: 'web', destination: '/www/', readOnly: false }, { type: 'bind', source: '/srv', destination: '/srv', readOnly: true }, { type: 'volume', destination: '/a', readOnly: false, noCopy: true }],
    ['/www', '/var/lib/db'],
    (name) => `/root/volumes/${name}/_data`,
    () => `anon${++n}`,
  );
  assert.deepEqual(plan.mounts, [
    { type: 'bind', source: '/root/volumes/web/_data', destination: '/www', readOnly: false, volume: 'web' },
    { type: 'bind', source: '/srv', destination: '/srv', readOnly: true },
    { type: 'bind', source: '/root/volumes/anon1/_data', destination: '/a', readOnly: false, volume: 'anon1' },
    { type: 'bind', source: '/root/volumes/anon2/_data', destination: '/var/lib/db', readOnly: false, volume: 'anon2' },
  ]);
  assert.deepEqual(plan.uses.map((u) => [u.name, u.anonymous, u.noCopy]), [['web', false, false], ['anon1', true, true], ['anon2', true, false]]);
  assert.throws(() => planMounts([{ type: 'volume', source: 'a', destination: '/d', readOnly: false }, { type: 'bind', source: '/x', destination: '/d/', readOnly: false }], [], (x) => x), /Duplicate mount point: \/d/);
});

const summary = (o: Partial<ContainerSummary> & { Id: string; name: string }): ContainerSummary => ({
  Names: [`/${o.name}`], Image: 'busybox', ImageID: 'sha256:aaa', Command: 'sh', Created: 0, State: 'running', Status: 'Up 1 second', Isolation: 'container',
  Ports: [], PortsText: '', NetworkMode: 'bridge', NetworkSettings: { Networks: { bridge: { NetworkID: 'n1' } } }, Labels: {}, Mounts: [], ...o,
});

test('container filters: label, status, name, ancestor, network, volume, exited, before/since', () => {
  const rows = [
    summary({ Id: 'c3', name: 'web-1', Labels: { 'com.docker.compose.project': 'p', tier: 'front' }, Mounts: [{ Name: 'www', Destination: '/www' }] }),
    summary({ Id: 'c2', name: 'db', State: 'exited', Status: 'Exited (3) 1 second ago', Image: 'other:1', ImageID: 'sha256:bbb', NetworkSettings: { Networks: { back: { NetworkID: 'n2' } } } }),
    summary({ Id: 'c1', name: 'client', State: 'paused', Labels: { 'com.docker.compose.project': 'q' } }),
  ];
  const ids = (f: string[]) => filterContainers(rows, parseFilterFlags(f), (ref) => (ref === 'other' ? ['sha256:bbb'] : [])).map((r) => r.Id);
  assert.deepEqual(ids(['label=com.docker.compose.project']), ['c3', 'c1']);
  assert.deepEqual(ids(['label=com.docker.compose.project=p']), ['c3']);
  assert.deepEqual(ids(['label=com.docker.compose.project=p', 'label=tier=back']), []);
  assert.deepEqual(ids(['status=exited', 'status=paused']), ['c2', 'c1']);
  assert.deepEqual(ids(['name=^web']), ['c3']);
  assert.deepEqual(ids(['ancestor=other']), ['c2']);
  assert.deepEqual(ids(['ancestor=busybox']), ['c3', 'c1']);
  assert.deepEqual(ids(['network=back']), ['c2']);
  assert.deepEqual(ids(['network=n1']), ['c3', 'c1']);
  assert.deepEqual(ids(['volume=www']), ['c3']);
  assert.deepEqual(ids(['exited=3']), ['c2']);
  assert.deepEqual(ids(['before=c2']), ['c1']);
  assert.deepEqual(ids(['since=c2']), ['c3']);
  assert.throws(() => ids(['status=sleeping']), /status=sleeping/);
  assert.throws(() => ids(['colour=red']), /invalid filter 'colour'/);
  assert.throws(() => parseFilterFlags(['nokey']), /bad format of filter/);
});

test('volume filters and prune label filters', () => {
  const rows = [
    { name: 'web', driver: 'local', labels_json: '{"a":"1"}' },
    { name: 'db', driver: 'local', labels_json: '{}' },
  ];
  const names = (f: string[]) => filterVolumes(rows, parseFilterFlags(f), (n) => (n === 'web' ? 1 : 0)).map((r) => r.name);
  assert.deepEqual(names(['dangling=true']), ['db']);
  assert.deepEqual(names(['dangling=0']), ['web']);
  assert.deepEqual(names(['label=a=1']), ['web']);
  assert.deepEqual(names(['name=d']), ['db']);
  assert.throws(() => names(['dangling=maybe']), /expected true or false/);
  const m = pruneLabelMatch(parseFilterFlags(['label!=keep']));
  assert.equal(m({ keep: '' }), false);
  assert.equal(m({}), true);
  assert.equal(labelsMatch({ a: 'b=c' }, ['a=b=c']), true);
});
