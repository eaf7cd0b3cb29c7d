import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import Database from 'better-sqlite3';
import { BUSYBOX_ROOTFS, hull, hullAsync, importBusybox, makeTempRoot } from '../helpers/hull.js';
import { makeLayer, makeOciArchive, makeTar, type OciImageSpec, type TarEntry } from '../helpers/images-tar.js';

function files(dir: string): string[] {
  return fs.existsSync(dir) ? fs.readdirSync(dir) : [];
}

function tmpFile(name: string, data: Buffer): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-load-'));
  const f = path.join(d, name);
  fs.writeFileSync(f, data);
  return f;
}

test('save and load round-trip through a file and through stdin', (t) => {
  if (!fs.existsSync(BUSYBOX_ROOTFS)) return t.skip('build/images/busybox-rootfs.tar missing: run scripts/setup.sh');
  const a = makeTempRoot();
  const b = makeTempRoot();
  try {
    importBusybox(a.root);
    const id = hull(a.root, ['images', '-q', '--no-trunc']).stdout.trim();
    const out = path.join(a.root, 'bb.tar');
    assert.equal(hull(a.root, ['save', '-o', out, 'busybox']).code, 0);
    const l1 = hull(b.root, ['load', '-i', out]);
    assert.equal(l1.code, 0, l1.stderr);
    assert.equal(l1.stdout, 'Loaded image: busybox:latest\n');
    assert.equal(hull(b.root, ['images', '-q', '--no-trunc']).stdout.trim(), id);
    // stdin, gzip-compressed as a whole; loading again is idempotent.
    const l2 = hull(b.root, ['load'], { input: zlib.gzipSync(fs.readFileSync(out)) });
    assert.equal(l2.code, 0, l2.stderr);
    const rows = hull(b.root, ['images', '--format', 'json']).stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(rows.length, 1);
    assert.equal(rows[0].Repository, 'busybox');
    assert.equal(rows[0].Tag, 'latest');
    assert.equal(rows[0].ID, id.slice(7, 19));
    // Saving by id records no name.
    const byId = path.join(a.root, 'byid.tar');
    assert.equal(hull(a.root, ['save', '-o', byId, id.slice(7, 19)]).code, 0);
    const c = makeTempRoot();
    try {
      assert.equal(hull(c.root, ['load', '-i', byId]).stdout, `Loaded image ID: ${id}\n`);
      assert.match(hull(c.root, ['images']).stdout, /<none>\s+<none>/);
    } finally {
      c.cleanup();
    }
  } finally {
    a.cleanup();
    b.cleanup();
  }
});

test('loads a legacy docker save archive with gzip layers and a layer symlink', async () => {
  const r = makeTempRoot();
  try {
    const l1 = await makeLayer([{ name: 'bin/', type: 'directory' }, { name: 'bin/hello', data: 'hi', mode: 0o755 }]);
    const l2 = await makeLayer([{ name: 'bin/.wh.hello' }, { name: 'etc/motd', data: 'motd' }]);
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/hello'] }, rootfs: { type: 'layers', diff_ids: [l1.diffId, l2.diffId] } }));
    const archive = await makeTar([
      { name: 'aaa/', type: 'directory' },
      { name: 'aaa/layer.tar', data: zlib.gzipSync(l1.tar) },
      { name: 'bbb/', type: 'directory' },
      { name: 'bbb/layer.tar', data: l2.tar },
      { name: 'ccc/', type: 'directory' },
      { name: 'ccc/layer.tar', type: 'symlink', linkname: '../aaa/layer.tar' },
      { name: 'cfg.json', data: config },
      { name: 'manifest.json', data: JSON.stringify([{ Config: 'cfg.json', RepoTags: ['example.com/team/app:1.0'], Layers: ['ccc/layer.tar', 'bbb/layer.tar'] }]) },
    ]);
    const res = hull(r.root, ['load'], { input: archive });
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, 'Loaded image: example.com/team/app:1.0\n');
    const i = JSON.parse(hull(r.root, ['image', 'inspect', 'example.com/team/app:1.0']).stdout)[0];
    assert.deepEqual(i.RootFS.Layers, [l1.diffId, l2.diffId]);
    const [upper, lower] = (i.GraphDriver.Data.LowerDir as string).split(':');
    assert.equal(fs.readFileSync(path.join(lower!, 'bin/hello'), 'utf8'), 'hi');
    assert.ok(fs.lstatSync(path.join(upper!, 'bin/hello')).isCharacterDevice());
    assert.equal(fs.readFileSync(path.join(upper!, 'etc/motd'), 'utf8'), 'motd');
  } finally {
    r.cleanup();
  }
});

/** Load `archive` into a root that already holds one image; it must fail with `re` and change nothing. */
async function refused(archive: Buffer, re: RegExp): Promise<void> {
  const r = makeTempRoot();
  try {
    const base = await makeOciArchive({ layers: [await layerOf([{ name: 'base', data: 'b' }])], name: 'base:1' });
    assert.equal(hull(r.root, ['load'], { input: base }).code, 0);
    const listing = () => hull(r.root, ['images', '--no-trunc', '--format', '{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}']).stdout;
    const before = listing();
    const blobsBefore = files(path.join(r.root, 'blobs', 'sha256')).sort();
    const layersBefore = files(path.join(r.root, 'layers')).sort();
    const file = tmpFile('bad.tar', archive);
    const res = hull(r.root, ['load', '-i', file]);
    fs.rmSync(path.dirname(file), { recursive: true });
    assert.notEqual(res.code, 0, 'load must fail');
    assert.match(res.stderr, re);
    assert.equal(listing(), before);
    assert.deepEqual(files(path.join(r.root, 'blobs', 'sha256')).sort(), blobsBefore);
    assert.deepEqual(files(path.join(r.root, 'layers')).sort(), layersBefore);
    assert.deepEqual(files(path.join(r.root, 'tmp')), []);
    assert.deepEqual(files(path.dirname(r.root)).filter((f) => f === 'escape'), []);
  } finally {
    r.cleanup();
  }
}

async function layerOf(entries: TarEntry[], gzip = false): Promise<OciImageSpec['layers'][number]> {
  const l = await makeLayer(entries);
  return { blob: gzip ? zlib.gzipSync(l.tar) : l.tar, diffId: l.diffId };
}

test('refuses a layer with a ../ entry', async () => {
  await refused(await makeOciArchive({ layers: [await layerOf([{ name: '../../escape', data: 'x' }])], name: 'bad:1' }), /entry "\.\.\/\.\.\/escape": path with '\.\.' refused/);
});

test('refuses a layer with an absolute path', async () => {
  await refused(await makeOciArchive({ layers: [await layerOf([{ name: '/escape', data: 'x' }])], name: 'bad:1' }), /entry "\/escape": absolute path refused/);
});

test('refuses a write through a symlink pointing outside', async () => {
  const l = await layerOf([{ name: 'up', type: 'symlink', linkname: '../../../../../../tmp' }, { name: 'up/escape', data: 'x' }], true);
  await refused(await makeOciArchive({ layers: [l], name: 'bad:1' }), /entry "up\/escape": write through symlink "up"/);
});

test('refuses a hardlink to outside', async () => {
  await refused(await makeOciArchive({ layers: [await layerOf([{ name: 'h', type: 'link', linkname: '/etc/shadow' }])], name: 'bad:1' }), /entry "h": hardlink to "\/etc\/shadow" outside the layer refused/);
});

test('refuses a device node', async () => {
  await refused(
    await makeOciArchive({ layers: [await layerOf([{ name: 'dev/kmem', type: 'character-device', devmajor: 1, devminor: 2 }])], name: 'bad:1' }),
    /entry "dev\/kmem": device node \(character-device 1:2\) refused/,
  );
});

test('refuses a blob whose content does not match its digest', async () => {
  const good = await layerOf([{ name: 'f', data: 'x' }]);
  await refused(await makeOciArchive({ layers: [good], name: 'bad:1', corruptBlob: { which: 0, bytes: Buffer.from('not the layer') } }), /digest mismatch/);
});

test('refuses a manifest whose layer size is wrong', async () => {
  const good = await layerOf([{ name: 'f', data: 'x' }]);
  await refused(
    await makeOciArchive({ layers: [good], name: 'bad:1', editManifest: (m) => (m.layers[0].size += 1) }),
    /layers\[0\]: size mismatch: blob sha256:[0-9a-f]+ is \d+ bytes, the descriptor says \d+/,
  );
});

test('refuses a layer whose diff id does not match the config', async () => {
  const good = await layerOf([{ name: 'f', data: 'x' }]);
  await refused(await makeOciArchive({ layers: [{ ...good, diffId: 'sha256:' + 'ab'.repeat(32) }], name: 'bad:1' }), /diff id mismatch/);
});

test('refuses an unparsable manifest', async () => {
  await refused(await makeOciArchive({ layers: [], manifestBytes: Buffer.from('{"schemaVersion": 2, '), name: 'bad:1' }), /does not parse as JSON/);
});

test('refuses an unparsable config', async () => {
  await refused(await makeOciArchive({ layers: [], configBytes: Buffer.from('not json'), name: 'bad:1' }), /config sha256:[0-9a-f]+ does not parse as JSON/);
});

test('refuses a truncated gzip layer', async () => {
  const l = await makeLayer([{ name: 'big', data: Buffer.alloc(200_000, 1) }]);
  const gz = zlib.gzipSync(l.tar);
  await refused(await makeOciArchive({ layers: [{ blob: gz.subarray(0, gz.length - 20), diffId: l.diffId }], name: 'bad:1' }), /truncated gzip stream/);
});

test('refuses an archive entry with ../ and a non-archive', async () => {
  const good = await layerOf([{ name: 'f', data: 'x' }]);
  await refused(await makeOciArchive({ layers: [good], name: 'bad:1', extra: [{ name: '../escape', data: 'x' }] }), /entry "\.\.\/escape": path with '\.\.' refused/);
  await refused(Buffer.alloc(2048, 0x41), /not a valid tar stream|neither a docker save archive/);
});

test('two loads of the same archive at once both succeed and share one layer', async () => {
  const r = makeTempRoot();
  try {
    const layers = [];
    for (let i = 0; i < 3; i++) {
      layers.push(await layerOf([{ name: `d${i}/`, type: 'directory' }, ...Array.from({ length: 200 }, (_, j) => ({ name: `d${i}/f${j}`, data: `${i}:${j}`.repeat(100) }))], i % 2 === 0));
    }
    const file = tmpFile('img.tar', await makeOciArchive({ layers, name: 'race:1' }));
    const results = await Promise.all([hullAsync(r.root, ['load', '-i', file]), hullAsync(r.root, ['load', '-i', file]), hullAsync(r.root, ['load', '-i', file])]);
    fs.rmSync(path.dirname(file), { recursive: true });
    for (const res of results) assert.equal(res.code, 0, res.stderr);
    assert.equal(hull(r.root, ['images', '-q']).stdout.trim().split('\n').length, 1);
    assert.equal(files(path.join(r.root, 'layers')).length, 3);
    assert.deepEqual(files(path.join(r.root, 'tmp')), []);
    const i = JSON.parse(hull(r.root, ['image', 'inspect', 'race:1']).stdout)[0];
    const dirs = (i.GraphDriver.Data.LowerDir as string).split(':').reverse();
    for (let k = 0; k < 3; k++) {
      assert.equal(files(path.join(dirs[k]!, `d${k}`)).length, 200);
      assert.equal(fs.readFileSync(path.join(dirs[k]!, `d${k}/f7`), 'utf8'), `${k}:7`.repeat(100));
    }
  } finally {
    r.cleanup();
  }
});

test('images, tag, rmi (refused while a container uses it), image prune', async (t) => {
  if (!fs.existsSync(BUSYBOX_ROOTFS)) return t.skip('build/images/busybox-rootfs.tar missing: run scripts/setup.sh');
  const r = makeTempRoot();
  try {
    importBusybox(r.root);
    const id = hull(r.root, ['images', '-q', '--no-trunc']).stdout.trim();
    assert.equal(hull(r.root, ['tag', 'busybox', 'localhost:5000/bb:v1']).code, 0);
    const table = hull(r.root, ['images']).stdout.split('\n');
    assert.match(table[0]!, /^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE$/);
    assert.equal(table.filter((l) => l.includes(id.slice(7, 19))).length, 2);
    assert.equal(hull(r.root, ['images', '-q']).stdout, `${id.slice(7, 19)}\n`);
    assert.equal(hull(r.root, ['images', '-a', '-q', 'busybox']).stdout, `${id.slice(7, 19)}\n`);
    assert.equal(hull(r.root, ['images', '-q', 'nothing']).stdout, '');
    const db = new Database(path.join(r.root, 'hull.db'));
    db.prepare(`INSERT INTO containers (id, name, image_id, image_ref, isolation, runtime, status, spec_json, created_at) VALUES (?, 'c1', ?, 'busybox', 'container', 'crun', 'running', '{}', ?)`).run('d'.repeat(64), id, new Date().toISOString());
    const rm1 = hull(r.root, ['rmi', id.slice(7, 19)]);
    assert.equal(rm1.code, 1);
    assert.match(rm1.stderr, /must be forced/);
    assert.equal(hull(r.root, ['rmi', 'localhost:5000/bb:v1']).stdout, 'Untagged: localhost:5000/bb:v1\n');
    const rm2 = hull(r.root, ['rmi', 'busybox']);
    assert.equal(rm2.code, 1);
    assert.match(rm2.stderr, /container dddddddddddd is using its referenced image/);
    db.prepare('DELETE FROM containers').run();
    db.close();
    const rm3 = hull(r.root, ['rmi', 'busybox']);
    assert.equal(rm3.stdout, `Untagged: busybox:latest\nDeleted: ${id}\n`);
    assert.equal(hull(r.root, ['images', '-q']).stdout, '');
    assert.deepEqual(files(path.join(r.root, 'layers')), []);
    assert.deepEqual(files(path.join(r.root, 'blobs', 'sha256')), []);
    const none = hull(r.root, ['rmi', 'busybox']);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /No such image: busybox/);
    // prune: an untagged image goes, a tagged one stays unless -a.
    importBusybox(r.root);
    const other = await makeOciArchive({ layers: [await layerOf([{ name: 'x', data: 'y' }])] });
    assert.equal(hull(r.root, ['load'], { input: other }).code, 0);
    assert.equal(hull(r.root, ['images', '-q']).stdout.trim().split('\n').length, 2);
    const p = hull(r.root, ['image', 'prune', '-f']);
    assert.match(p.stdout, /^Deleted Images:\ndeleted: sha256:[0-9a-f]{64}\n\nTotal reclaimed space: /);
    assert.equal(hull(r.root, ['images', '-q']).stdout, `${id.slice(7, 19)}\n`);
    const pa = hull(r.root, ['image', 'prune', '-a', '-f']);
    assert.match(pa.stdout, /untagged: busybox:latest/);
    assert.equal(hull(r.root, ['images', '-q']).stdout, '');
  } finally {
    r.cleanup();
  }
});

test('kill -9 in the middle of a load leaves no image, no partial blob or layer, and a retry works', async () => {
  const r = makeTempRoot();
  try {
    const layers = [];
    for (let i = 0; i < 2; i++) layers.push(await layerOf([{ name: `big${i}`, data: Buffer.alloc(8 << 20, i + 1) }]));
    const archive = await makeOciArchive({ layers, name: 'killed:1' });
    const { spawn } = await import('node:child_process');
    const { HULL_BIN } = await import('../helpers/hull.js');
    const child = spawn(HULL_BIN, ['--root', r.root, 'load'], { stdio: ['pipe', 'ignore', 'ignore'] });
    child.stdin.on('error', () => undefined); // EPIPE once it is killed
    // Feed most of the first layer, wait until its temp file exists, then kill.
    child.stdin.write(archive.subarray(0, 6 << 20));
    const tmp = path.join(r.root, 'tmp');
    for (let i = 0; i < 200 && files(tmp).length === 0; i++) await new Promise((res) => setTimeout(res, 25));
    assert.ok(files(tmp).length > 0, 'the load had started writing');
    child.kill('SIGKILL');
    await new Promise((res) => child.on('close', res));
    assert.equal(hull(r.root, ['images', '-q']).stdout, '');
    const blobs = path.join(r.root, 'blobs', 'sha256');
    const { createHash } = await import('node:crypto');
    for (const b of files(blobs)) {
      assert.equal(createHash('sha256').update(fs.readFileSync(path.join(blobs, b))).digest('hex'), b, 'every blob that reads as complete is complete');
    }
    assert.deepEqual(files(path.join(r.root, 'layers')), []);
    const again = hull(r.root, ['load'], { input: archive });
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout, 'Loaded image: killed:1\n');
  } finally {
    r.cleanup();
  }
});
