/** State safety with many hull processes at once, and nothing left behind after any ending. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { hull, hullAsync, importBusybox, makeTempRoot, mountsUnder, type TempRoot, processesMentioning } from '../helpers/hull.js';
import { containerCgroupPath, detectCgroupLayout, existingCgroupDirs } from '../../src/runtime/container/cgroups.js';

async function eventually(f: () => string[], timeoutMs = 15_000): Promise<string[]> {
  const end = Date.now() + timeoutMs;
  let v = f();
  while (v.length && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 100));
    v = f();
  }
  return v;
}

/** Every cgroup directory named after a hull container id, anywhere under the hull parent. */
function hullCgroups(root: string, ids: string[]): string[] {
  const layout = detectCgroupLayout();
  return ids.flatMap((id) => existingCgroupDirs(layout, containerCgroupPath(root, id)));
}

describe('container state and cleanup', { timeout: 600_000 }, () => {
  let tr: TempRoot;
  const h = (...a: string[]) => hull(tr.root, a);
  before(() => {
    tr = makeTempRoot('hull-state-');
    importBusybox(tr.root);
  });
  after(() => tr.cleanup());

  test('20 concurrent run -d: all listed, none lost; a duplicate --name is refused', async () => {
    const runs = await Promise.all(Array.from({ length: 20 }, (_, i) => hullAsync(tr.root, ['run', '-d', '--name', `par-${i}`, '-m', '128m', 'busybox', 'sleep', '300'])));
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    const ids = runs.map((r) => r.stdout.trim());
    assert.equal(new Set(ids).size, 20);
    const listed = h('ps', '-q', '--no-trunc').stdout.split('\n').filter(Boolean);
    assert.deepEqual([...listed].sort(), [...ids].sort());
    const dup = await Promise.all([0, 1, 2].map(() => hullAsync(tr.root, ['run', '-d', '--name', 'par-0', 'busybox', 'sleep', '300'])));
    for (const d of dup) {
      assert.equal(d.code, 125);
      assert.match(d.stderr, /The container name "\/par-0" is already in use/);
    }
    const twins = await Promise.all([0, 1].map(() => hullAsync(tr.root, ['run', '-d', '--name', 'twin', 'busybox', 'sleep', '300'])));
    assert.deepEqual(twins.map((t) => t.code).sort(), [0, 125], 'exactly one of two racing runs gets the name');
    ids.push(twins.find((t) => t.code === 0)!.stdout.trim());
    const rm = await Promise.all(ids.map((id) => hullAsync(tr.root, ['rm', '-f', id])));
    for (const r of rm) assert.equal(r.code, 0, r.stderr);
    assert.equal(h('ps', '-aq').stdout, '');
    assert.deepEqual(await eventually(() => processesMentioning(tr.root)), []);
    assert.deepEqual(await eventually(() => hullCgroups(tr.root, ids)), []);
    assert.deepEqual(mountsUnder(tr.root), []);
    assert.deepEqual(fs.readdirSync(path.join(tr.root, 'containers')), []);
  });

  test('a root that only runs foreground containers gets the compiled seccomp filter once, leaving nothing', async () => {
    const fresh = makeTempRoot('hull-bpf-');
    try {
      importBusybox(fresh.root);
      const cache = path.join(fresh.root, 'cache', 'seccomp');
      assert.equal(fs.existsSync(cache), false);
      const first = hull(fresh.root, ['run', '--rm', 'busybox', 'echo', 'one']);
      assert.equal(first.code, 0, first.stderr);
      assert.equal(first.stdout, 'one\n');
      const filters = fs.readdirSync(cache);
      assert.equal(filters.length, 1);
      assert.ok(fs.statSync(path.join(cache, filters[0]!)).size % 8 === 0);
      // the next start uses it: the process runs under a seccomp filter (mode 2)
      const second = hull(fresh.root, ['run', '--rm', 'busybox', 'grep', '^Seccomp:', '/proc/self/status']);
      assert.match(second.stdout, /^Seccomp:\s+2$/m, second.stderr);
      assert.deepEqual(fs.readdirSync(cache), filters);
      // the scratch container left nothing: no runtime state, no mount, no process
      const crunState = path.join(fresh.root, 'run', 'crun');
      assert.deepEqual(fs.existsSync(crunState) ? fs.readdirSync(crunState) : [], []);
      assert.deepEqual(mountsUnder(fresh.root), []);
      assert.deepEqual(await eventually(() => processesMentioning(fresh.root)), []);
      assert.deepEqual(fs.readdirSync(path.join(fresh.root, 'containers')), []);
    } finally {
      fresh.cleanup();
    }
  });

  test('nothing leaks after --rm, rm -f, a bad command, a bad flag, a missing image', async () => {
    const before = new Set(fs.readdirSync(path.join(tr.root, 'containers')));
    const seen: string[] = [];
    // --rm, attached and detached
    assert.equal(h('run', '--rm', 'busybox', 'true').code, 0);
    const d = h('run', '-d', '--rm', 'busybox', 'sh', '-c', 'exit 3').stdout.trim();
    seen.push(d);
    assert.equal(h('wait', d).stdout, '3\n');
    // a wait that begins once the --rm container is gone answers from its 'die' event (by id)
    const gone = h('run', '-d', '--rm', 'busybox', 'sh', '-c', 'exit 4').stdout.trim();
    seen.push(gone);
    assert.deepEqual(await eventually(() => (h('inspect', gone).code === 0 ? [gone] : [])), []);
    const late = h('wait', gone);
    assert.equal(late.stdout, '4\n', late.stderr);
    assert.notEqual(h('wait', gone.slice(0, 12)).code, 0, 'a prefix of a removed container is not found');
    // rm -f of a running container
    const r = h('run', '-d', 'busybox', 'sleep', '300').stdout.trim();
    seen.push(r);
    assert.equal(h('rm', '-f', r).code, 0);
    // failed starts
    assert.equal(h('run', '--rm', 'busybox', 'no-such-command').code, 127);
    assert.equal(h('run', '-d', '--rm', 'busybox', 'no-such-command').code, 127);
    assert.equal(h('run', '--rm', '--no-such-flag', 'busybox').code, 125);
    assert.equal(h('run', '--rm', '-m', '12q', 'busybox', 'true').code, 125);
    const missing = h('run', '--rm', 'localhost:1/no/such:image', 'true');
    assert.equal(missing.code, 125);
    assert.match(missing.stderr, /Unable to find image 'localhost:1\/no\/such:image' locally/);
    // a failed start without --rm keeps the container record (docker's "Created"), rm removes all
    const bad = h('run', '--name', 'badcmd', 'busybox', 'no-such-command');
    assert.equal(bad.code, 127);
    const insp = JSON.parse(h('inspect', 'badcmd').stdout)[0];
    assert.equal(insp.State.ExitCode, 127);
    assert.match(insp.State.Error, /executable file not found/);
    seen.push(insp.Id);
    assert.equal(h('rm', 'badcmd').code, 0);
    for (let i = 0; i < 100 && h('ps', '-aq').stdout !== ''; i++) await new Promise((res) => setTimeout(res, 100));
    assert.equal(h('ps', '-aq').stdout, '');
    assert.deepEqual(await eventually(() => processesMentioning(tr.root)), []);
    assert.deepEqual(await eventually(() => hullCgroups(tr.root, seen)), []);
    assert.deepEqual(mountsUnder(tr.root), []);
    assert.deepEqual(await eventually(() => fs.readdirSync(path.join(tr.root, 'containers')).filter((x) => !before.has(x))), []);
    const conmonLinks = path.join(tr.root, 'run', 'conmon');
    assert.deepEqual(fs.existsSync(conmonLinks) ? fs.readdirSync(conmonLinks) : [], [], 'conmon socket links left');
    const crunState = path.join(tr.root, 'run', 'crun');
    assert.deepEqual(fs.existsSync(crunState) ? fs.readdirSync(crunState) : [], [], 'runtime state left');
  });
});
