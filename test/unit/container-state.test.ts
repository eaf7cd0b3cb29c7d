import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { openDb } from '../../src/state/db.js';
import { ContainerTables } from '../../src/state/containers.js';
import { isHullError } from '../../src/errors.js';
import { statusText, toInspect, toSummary } from '../../src/engine/inspect.js';
import { humanDuration } from '../../src/human.js';

test('container rows: unique names, lookups by name and id prefix, exit recorded once', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-unit-state-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const db = openDb(path.join(dir, 'hull.db'));
  t.after(() => db.close());
  const rows = new ContainerTables(db);
  const base = { image_id: 'sha256:' + '1'.repeat(64), image_ref: 'busybox', isolation: 'container' as const, runtime: 'crun', status: 'created' as const, spec_json: '{}', created_at: '2026-01-01T00:00:00.000Z' };
  rows.insert({ ...base, id: 'ab' + '0'.repeat(62), name: 'one' });
  rows.insert({ ...base, id: 'ac' + '0'.repeat(62), name: 'two' });
  assert.throws(() => rows.insert({ ...base, id: 'ad' + '0'.repeat(62), name: 'one' }), (e) => isHullError(e, 'CONFLICT') && /"\/one" is already in use by container "ab0+"/.test((e as Error).message));
  assert.equal(rows.resolve('one').id, 'ab' + '0'.repeat(62));
  assert.equal(rows.resolve('/two').name, 'two');
  assert.equal(rows.resolve('ab').name, 'one');
  assert.throws(() => rows.resolve('a'), (e) => isHullError(e, 'CONFLICT'));
  assert.throws(() => rows.resolve('zz'), (e) => isHullError(e, 'NOT_FOUND') && /No such container: zz/.test((e as Error).message));
  const id = 'ab' + '0'.repeat(62);
  assert.equal(rows.beginRun(id, '2026-01-01T00:00:01.000Z', '{}'), 1, 'the first start is run 1');
  rows.setStarted(id, 1, 42, '{}');
  assert.equal(rows.get(id)!.pid, 42);
  assert.deepEqual(rows.list(false).map((r) => r.name), ['one']);
  assert.equal(rows.markExited(id, 0, 9, false, '2026-01-01T00:00:02.000Z'), false, 'an exit of another run changes nothing');
  assert.equal(rows.markExited(id, 1, 3, true, '2026-01-01T00:00:02.000Z'), true);
  assert.equal(rows.markExited(id, 1, 0, false, '2026-01-01T00:00:03.000Z'), false, 'the first exit wins');
  const r = rows.get(id)!;
  assert.equal(r.exit_code, 3);
  assert.equal(r.run, 1);
  assert.equal(rows.beginRun(id, '2026-01-01T00:00:04.000Z', '{}'), 2, 'each start has its own run number');
  rows.setStarted(id, 1, 77, '{}');
  assert.equal(rows.get(id)!.pid, 0, 'a late report of run 1 does not touch run 2');
  assert.equal(rows.markExited(id, 1, 137, false, '2026-01-01T00:00:05.000Z'), false, 'the late exit of run 1 cannot end run 2');
  assert.equal(rows.get(id)!.status, 'running');
  assert.equal(rows.markExited(id, 2, 3, true, '2026-01-01T00:00:02.000Z'), true);
  assert.equal(r.oom_killed, 1);
  assert.equal(statusText(r, Date.parse('2026-01-01T00:01:02.000Z')), 'Exited (3) About a minute ago');
  assert.equal(humanDuration(3000), '3 seconds');
  assert.equal(rows.delete('ab' + '0'.repeat(62)), true);
  assert.equal(rows.find('one'), undefined);
});

test('inspect and ps shapes', () => {
  const spec = {
    id: 'f'.repeat(64), name: 'web', dir: '/d',
    image: { id: 'sha256:1', lowerDirs: [], config: { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers' as const, diff_ids: [] }, config: { Cmd: ['sh'] } } },
    process: { args: ['sh', '-c', 'echo hi'], env: ['A=1'], cwd: '/', user: '', terminal: false, stdin: false },
    hostname: 'ffffffffffff', resources: { memoryBytes: 1 << 27, nanoCpus: 5e8 }, readOnlyRootfs: false,
    mounts: [{ type: 'bind' as const, source: '/srv', destination: '/data', readOnly: true }], network: 'none' as const,
    capAdd: [], capDrop: [], noNewPrivileges: false, seccomp: 'default' as const, ulimits: [], init: false, runtime: 'crun',
  };
  const row = {
    id: 'f'.repeat(64), name: 'web', image_id: 'sha256:1', image_ref: 'busybox', isolation: 'container' as const, runtime: 'crun',
    status: 'running' as const, spec_json: '', runtime_json: '{"conmonPid":7}', pid: 99, exit_code: null, oom_killed: 0, error: '',
    created_at: '2026-01-01T00:00:00.000Z', started_at: '2026-01-01T00:00:01.000Z', finished_at: null, restart_count: 0, run: 1, lock_owner: '',
  };
  const i = toInspect(row, { opts: { image: 'busybox', rm: true }, spec }, '/d/ctr.log');
  assert.equal(i.State.Status, 'running');
  assert.equal(i.State.Pid, 99);
  assert.equal(i.State.FinishedAt, '0001-01-01T00:00:00Z');
  assert.equal(i.Path, 'sh');
  assert.deepEqual(i.Args, ['-c', 'echo hi']);
  assert.equal(i.HostConfig.Memory, 1 << 27);
  assert.equal(i.HostConfig.MemorySwap, 1 << 28);
  assert.equal(i.HostConfig.NanoCpus, 5e8);
  assert.equal(i.HostConfig.AutoRemove, true);
  assert.equal(i.HostConfig.Isolation, 'container');
  assert.deepEqual(i.HostConfig.Binds, ['/srv:/data:ro']);
  assert.equal(i.Hull.Facts.conmonPid, 7);
  const s = toSummary(row, { opts: { image: 'busybox' }, spec }, 'Up 1 second');
  assert.equal(s.Command, 'sh -c "echo hi"');
  assert.deepEqual(s.Names, ['/web']);
});
