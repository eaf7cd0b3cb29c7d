/** `hull info`: runtimes found, the cgroup layout as detected, the hull root. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { hull, makeTempRoot } from '../helpers/hull.js';
import { detectCgroupLayout } from '../../src/runtime/container/cgroups.js';

test('hull info reports runtimes, cgroup layout and root', () => {
  const tr = makeTempRoot('hull-info-');
  try {
    const r = hull(tr.root, ['info', '--format', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const info = JSON.parse(r.stdout);
    assert.equal(info.HullRoot, tr.root);
    const crun = spawnSync('sh', ['-c', 'command -v crun'], { encoding: 'utf8' }).stdout.trim();
    assert.equal(info.Runtimes.crun, crun || null);
    const layout = detectCgroupLayout();
    assert.equal(info.Cgroup.layout, layout.kind === 'v2' ? 'unified' : layout.kind === 'hybrid' ? 'hybrid' : 'legacy');
    assert.equal(info.Containers, 0);
    assert.ok('VM' in info);
    const text = hull(tr.root, ['info']);
    assert.match(text.stdout, /Cgroup:/);
    assert.match(text.stdout, /crun: /);
  } finally {
    tr.cleanup();
  }
});
