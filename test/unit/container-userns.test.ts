/** --userns=auto as data: the id range allocator, the OCI user namespace, the idmapped overlay plan (issue 14). */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { openDb } from '../../src/state/db.js';
import { rangeOf, usernsPool, UsernsRanges } from '../../src/state/userns.js';
import { buildInstanceSpec, usernsModeOf, validateRunOptions } from '../../src/engine/options.js';
import { buildOciConfig } from '../../src/runtime/container/config.js';
import { overlayOptions, runtimeArgv, type RuntimeDriver } from '../../src/runtime/container/runtime.js';
import { parseVolume } from '../../src/engine/units.js';

test('the pool: defaults, environment, refused when it overlaps host ids or passes 2^32', () => {
  assert.deepEqual(usernsPool({}), { start: 1_000_000_000, size: 65536, count: 4096 });
  assert.deepEqual(usernsPool({ HULL_USERNS_START: '200000', HULL_USERNS_COUNT: '2' }), { start: 200000, size: 65536, count: 2 });
  assert.throws(() => usernsPool({ HULL_USERNS_START: '1000' }), /above the host's own ids/);
  assert.throws(() => usernsPool({ HULL_USERNS_START: '4294000000' }), /does not fit/);
  assert.throws(() => usernsPool({ HULL_USERNS_COUNT: 'lots' }), /whole number/);
  assert.deepEqual(rangeOf(usernsPool({}), 3), { uid: 1_000_196_608, gid: 1_000_196_608, size: 65536 });
});

test('the allocator: lowest free slot, never one taken, freed with the container row, full pool refused', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-userns-unit-'));
  try {
    const db = openDb(path.join(dir, 'hull.db'));
    const add = (id: string) =>
      db.prepare(`INSERT INTO containers (id, name, image_id, image_ref, isolation, runtime, status, spec_json, runtime_json, created_at) VALUES (?, ?, 'i', 'r', 'container', 'crun', 'created', '{}', '{}', 'now')`).run(id, `n-${id}`);
    const ranges = new UsernsRanges(db, { start: 100000, size: 65536, count: 3 });
    const take = (id: string) => db.transaction(() => (add(id), ranges.allocate(id))).immediate();
    assert.equal(take('a').uid, 100000);
    assert.equal(take('b').uid, 165536);
    assert.equal(take('c').uid, 231072);
    assert.throws(() => take('d'), /no free --userns=auto id range: all 3/);
    assert.equal((db.prepare("SELECT COUNT(*) AS n FROM containers WHERE id = 'd'").get() as { n: number }).n, 0, 'the failed create left no row');
    db.prepare("DELETE FROM containers WHERE id = 'b'").run();
    assert.equal(ranges.get('b'), undefined, 'the slot went with its row');
    assert.equal(take('e').uid, 165536, 'the freed slot is reused');
    assert.deepEqual(ranges.get('a'), { uid: 100000, gid: 100000, size: 65536 });
    assert.throws(() => db.prepare("INSERT INTO userns_ranges (container_id, slot) VALUES ('c', 0)").run(), /UNIQUE|PRIMARY/);
    db.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

const img = { id: 'sha256:' + 'b'.repeat(64), lowerDirs: ['/l/1', '/l/2'], config: { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers' as const, diff_ids: [] }, config: { Cmd: ['sh'] } } };

test('the mode: --userns, HULL_USERNS_DEFAULT, host for a VM; no-new-privileges on with auto unless asked off', () => {
  assert.equal(usernsModeOf({}, {}), 'host');
  assert.equal(usernsModeOf({}, { HULL_USERNS_DEFAULT: 'auto' }), 'auto');
  assert.equal(usernsModeOf({ userns: 'host' }, { HULL_USERNS_DEFAULT: 'auto' }), 'host');
  assert.equal(usernsModeOf({ isolation: 'vm' }, { HULL_USERNS_DEFAULT: 'auto' }), 'host');
  assert.throws(() => usernsModeOf({ userns: 'keep-id' }, {}), /invalid --userns "keep-id"/);
  assert.throws(() => usernsModeOf({}, { HULL_USERNS_DEFAULT: 'yes' }), /HULL_USERNS_DEFAULT=yes/);
  assert.throws(() => validateRunOptions({ image: 'x', userns: 'auto', privileged: true }), /--privileged cannot be used with --userns=auto/);
  assert.throws(() => validateRunOptions({ image: 'x', userns: 'auto', network: 'container:db' }), /--network container:db/);
  const ids = { id: 'a'.repeat(64), name: 'c', dir: '/x' };
  const s = buildInstanceSpec({ image: 'busybox', userns: 'auto' }, img, ids);
  assert.equal(s.usernsMode, 'auto');
  assert.equal(s.noNewPrivileges, true);
  assert.equal(buildInstanceSpec({ image: 'busybox', userns: 'auto', securityOpt: ['no-new-privileges=false'] }, img, ids).noNewPrivileges, false);
  assert.equal(buildInstanceSpec({ image: 'busybox' }, img, ids).usernsMode, undefined);
});

test('the OCI config: a user namespace with the range as uid and gid maps; none without', () => {
  const ids = { id: 'a'.repeat(64), name: 'c', dir: '/x' };
  const host = { rootfs: '/r', user: { uid: 0, gid: 0 }, cgroupsPath: '/h', arch: 'amd64', kernel: '6.1', hardLimits: {}, swapAccounting: false };
  const s = { ...buildInstanceSpec({ image: 'busybox', userns: 'auto' }, img, ids), userns: { uid: 1_000_065_536, gid: 1_000_065_536, size: 65536 } };
  const c = buildOciConfig(s, host);
  assert.ok(c.linux.namespaces.some((n) => n.type === 'user' && !n.path));
  assert.deepEqual(c.linux.uidMappings, [{ containerID: 0, hostID: 1_000_065_536, size: 65536 }]);
  assert.deepEqual(c.linux.gidMappings, [{ containerID: 0, hostID: 1_000_065_536, size: 65536 }]);
  const plain = buildOciConfig(buildInstanceSpec({ image: 'busybox' }, img, ids), host);
  assert.ok(!plain.linux.namespaces.some((n) => n.type === 'user'));
  assert.equal(plain.linux.uidMappings, undefined);
});

test('the overlay plan: hull-idmap mounts each layer idmapped first, the overlay is made of those', () => {
  const driver: RuntimeDriver = { name: 'crun', bin: '/usr/bin/crun', stateDir: '/s', globalArgs: ['--root', '/s'], unshare: '/usr/bin/unshare', shell: ['/bin/sh'] };
  const ov = {
    lower: ['/l/1', '/l/2'], upper: '/c/upper', work: '/c/work', target: '/c/rootfs',
    idmap: { helper: '/b/hull-idmap', uid: 1_000_000_000, gid: 1_000_000_000, size: 65536, targets: ['/c/idmap/0', '/c/idmap/1'] },
  };
  assert.equal(overlayOptions(ov), 'lowerdir=/c/idmap/1:/c/idmap/0,upperdir=/c/upper,workdir=/c/work');
  const a = runtimeArgv(driver, ['run', 'id'], ov);
  assert.deepEqual(a.slice(0, 14), ['/usr/bin/unshare', '-m', '--propagation', 'private', '/b/hull-idmap', '1000000000', '1000000000', '65536', '/l/1', '/c/idmap/0', '/l/2', '/c/idmap/1', '--', '/bin/sh']);
  assert.ok(!runtimeArgv(driver, ['run', 'id'], { ...ov, idmap: undefined }).includes('/b/hull-idmap'));
});

test('-v SRC:DST:idmap: parsed, refused without --userns=auto, its bind source is the idmapped point, the helper mounts it', () => {
  const m = parseVolume('/data:/d:idmap,ro');
  assert.deepEqual(m, { type: 'bind', source: '/data', destination: '/d', readOnly: true, idmap: true });
  assert.throws(() => validateRunOptions({ image: 'x', mounts: [m] }), /:idmap needs --userns=auto/);
  validateRunOptions({ image: 'x', mounts: [m], userns: 'auto' });
  const ids = { id: 'a'.repeat(64), name: 'c', dir: '/x/c' };
  const host = { rootfs: '/r', user: { uid: 0, gid: 0 }, cgroupsPath: '/h', arch: 'amd64', kernel: '6.1', hardLimits: {}, swapAccounting: false };
  const s = { ...buildInstanceSpec({ image: 'busybox', userns: 'auto', mounts: [parseVolume('/plain:/p'), m] }, img, ids), userns: { uid: 1e9, gid: 1e9, size: 65536 } };
  const c = buildOciConfig(s, host);
  assert.equal(c.mounts.find((x) => x.destination === '/d')!.source, '/x/c/idmap/b1');
  assert.equal(c.mounts.find((x) => x.destination === '/p')!.source, '/plain');
  const driver: RuntimeDriver = { name: 'crun', bin: '/usr/bin/crun', stateDir: '/s', globalArgs: [], unshare: '/usr/bin/unshare', shell: ['/bin/sh'] };
  const a = runtimeArgv(driver, ['run', 'id'], { lower: ['/l/1'], upper: '/u', work: '/w', target: '/t', idmap: { helper: '/h', uid: 1, gid: 1, size: 65536, targets: ['/x/c/idmap/0'], binds: [['/data', '/x/c/idmap/b1']] } });
  assert.deepEqual(a.slice(4, 13), ['/h', '1', '1', '65536', '/l/1', '/x/c/idmap/0', '/data', '/x/c/idmap/b1', '--']);
});
