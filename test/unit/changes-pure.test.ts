/** Pure parts of diff/commit (engine/changes.ts) and of the legacy load (images/load-legacy.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { changesOf, commitConfig } from '../../src/engine/changes.js';
import { legacyConfig } from '../../src/images/load-legacy.js';
import type { DiffEntry } from '../../src/snapshots/diff.js';

const e = (name: string, type: DiffEntry['type'] = 'file'): DiffEntry => ({ name, type, mode: 0o644, uid: 0, gid: 0, mtime: 0, size: 0 });

test('changesOf: a whiteout deletes its name, an opaque marker is no entry, the image decides A or C; sorted', () => {
  const have = new Set(['etc', 'etc/passwd', 'bin']);
  const got = changesOf([e('etc', 'directory'), e('etc/passwd'), e('bin', 'directory'), e('bin/.wh.ls'), e('tmp', 'directory'), e('tmp/.wh..wh..opq'), e('tmp/new')], (p) => have.has(p));
  assert.deepEqual(got, [
    { Path: '/bin', Kind: 0 },
    { Path: '/bin/ls', Kind: 2 },
    { Path: '/etc', Kind: 0 },
    { Path: '/etc/passwd', Kind: 0 },
    { Path: '/tmp', Kind: 1 },
    { Path: '/tmp/new', Kind: 1 },
  ]);
  assert.deepEqual(changesOf([e('.wh.top')], () => true), [{ Path: '/top', Kind: 2 }]);
});

test('commitConfig: the container config, the client fields, then the changes; a history entry with author and comment', () => {
  const base = { architecture: 'amd64', os: 'linux', config: { Cmd: ['sh'], Env: ['PATH=/bin'] }, rootfs: { type: 'layers' as const, diff_ids: [] }, history: [{ created_by: 'base' }] };
  const c = commitConfig(base, { config: { Env: ['PATH=/bin', 'A=1'], Cmd: ['run'] }, args: ['sh', '-c', 'x'] }, { changes: ['CMD ["cat"]', 'ENV B=2'], author: 'me', comment: 'msg', config: { User: 'nobody' } }, '2026-01-01T00:00:00Z');
  assert.deepEqual(c.config?.Cmd, ['cat']);
  assert.deepEqual(c.config?.Env, ['PATH=/bin', 'A=1', 'B=2']);
  assert.equal(c.config?.User, 'nobody');
  assert.equal(c.author, 'me');
  assert.deepEqual(c.history?.at(-1), { created: '2026-01-01T00:00:00Z', created_by: 'sh -c x', author: 'me', comment: 'msg' });
  assert.equal(c.history?.length, 2);
  assert.ok(!('rootfs' in c));
  assert.throws(() => commitConfig(base, { config: {}, args: [] }, { changes: ['RUN x'] }, ''), /RUN/);
});

test('legacyConfig: the top record gives config, platform and time; one history entry per layer', () => {
  const cfg = legacyConfig(
    [
      { id: 'a', created: '2016-01-01T00:00:00Z', container_config: { Cmd: ['/bin/sh', '-c', '#(nop) ADD x'] } },
      { id: 'b', parent: 'a', created: '2016-01-02T00:00:00Z', author: 'au', config: { Cmd: ['cat'] }, architecture: 'arm64', os: 'linux' },
    ],
    ['sha256:1', 'sha256:2'],
  );
  assert.equal(cfg.architecture, 'arm64');
  assert.equal(cfg.created, '2016-01-02T00:00:00Z');
  assert.equal(cfg.author, 'au');
  assert.deepEqual(cfg.config, { Cmd: ['cat'] });
  assert.deepEqual(cfg.rootfs.diff_ids, ['sha256:1', 'sha256:2']);
  assert.deepEqual(cfg.history, [{ created: '2016-01-01T00:00:00Z', created_by: '/bin/sh -c #(nop) ADD x' }, { created: '2016-01-02T00:00:00Z', author: 'au' }]);
});
