import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { ContentStore } from '../../src/content/store.js';
import { sha256 } from '../../src/oci/digest.js';
import { unpackTar } from '../../src/snapshots/unpack.js';
import { placeLayer, unpackLayerBlob } from '../../src/snapshots/unpack-layer.js';
import { makeTar } from '../helpers/images-tar.js';

function tmpdir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'hull-unpack-'));
}

function getfattr(p: string, name: string): string | undefined {
  const r = spawnSync('getfattr', ['-h', '--only-values', '-n', name, p], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout : undefined;
}

/** Unpack `tar` into dir/layer; returns the error (if any) and what now exists outside it. */
async function tryUnpack(tar: Buffer): Promise<{ dir: string; layer: string; outside: string; err?: Error }> {
  const dir = tmpdir();
  const layer = path.join(dir, 'layer');
  const outside = path.join(dir, 'outside');
  fs.mkdirSync(layer);
  fs.mkdirSync(outside);
  try {
    await unpackTar(Readable.from([tar]), layer, { what: 'layer L' });
    return { dir, layer, outside };
  } catch (err) {
    return { dir, layer, outside, err: err as Error };
  }
}

test('owners, modes, mtimes, symlinks, hardlinks, fifos and xattrs survive', async () => {
  const mtime = new Date(1_500_000_000_000);
  const tar = await makeTar([
    { name: './', type: 'directory', mode: 0o755 },
    { name: './usr/', type: 'directory', mode: 0o755, mtime },
    { name: './usr/bin/', type: 'directory', mode: 0o750, uid: 7, gid: 8, mtime },
    { name: './usr/bin/su', data: 'su\n', mode: 0o4755, uid: 0, gid: 0, mtime },
    { name: './usr/bin/tool', data: 'x'.repeat(70_000), mode: 0o700, uid: 1000, gid: 1001, mtime },
    { name: './usr/bin/tool2', type: 'link', linkname: './usr/bin/tool' },
    { name: './bin', type: 'symlink', linkname: 'usr/bin', mtime },
    { name: './tmp/', type: 'directory', mode: 0o1777, mtime },
    { name: './tmp/fifo', type: 'fifo', mode: 0o640 },
    { name: './etc/conf', data: 'c', pax: { 'SCHILY.xattr.user.note': 'hello', 'SCHILY.xattr.trusted.tag': 'v' } },
  ]);
  const { dir, layer, err } = await tryUnpack(tar);
  assert.equal(err, undefined, err?.message);
  const su = fs.statSync(path.join(layer, 'usr/bin/su'));
  assert.equal(su.mode & 0o7777, 0o4755);
  const tool = fs.statSync(path.join(layer, 'usr/bin/tool'));
  assert.equal(tool.uid, 1000);
  assert.equal(tool.gid, 1001);
  assert.equal(tool.mode & 0o7777, 0o700);
  assert.equal(tool.size, 70_000);
  assert.equal(tool.mtimeMs, mtime.getTime());
  assert.equal(fs.statSync(path.join(layer, 'usr/bin/tool2')).ino, tool.ino);
  const bindir = fs.statSync(path.join(layer, 'usr/bin'));
  assert.equal(bindir.uid, 7);
  assert.equal(bindir.mode & 0o7777, 0o750);
  assert.equal(bindir.mtimeMs, mtime.getTime(), 'directory mtime is set after its children');
  assert.equal(fs.readlinkSync(path.join(layer, 'bin')), 'usr/bin');
  assert.equal(fs.lstatSync(path.join(layer, 'bin')).mtimeMs, mtime.getTime());
  assert.equal(fs.statSync(path.join(layer, 'tmp')).mode & 0o7777, 0o1777);
  assert.ok(fs.lstatSync(path.join(layer, 'tmp/fifo')).isFIFO());
  assert.equal(getfattr(path.join(layer, 'etc/conf'), 'user.note'), 'hello');
  assert.equal(getfattr(path.join(layer, 'etc/conf'), 'trusted.tag'), 'v');
  fs.rmSync(dir, { recursive: true });
});

test('binary xattr values (file capabilities) survive byte for byte', async () => {
  // A real security.capability value (cap_net_raw+ep, VFS_CAP_REVISION_2): not valid UTF-8.
  const cap = Buffer.from('0100000200200000000000000000000000000000', 'hex');
  const bin = Buffer.from([0xff, 0xfe, 0x00, 0x80, 0x41]);
  // tar-stream's pack writes pax values as strings: build the pax record by hand, as bytes.
  const rec = (k: string, v: Buffer) => {
    const body = Buffer.concat([Buffer.from(` ${k}=`), v, Buffer.from('\n')]);
    let len = body.length + 1;
    while (String(len).length + body.length !== len) len = String(len).length + body.length;
    return Buffer.concat([Buffer.from(String(len)), body]);
  };
  const pax = Buffer.concat([rec('SCHILY.xattr.security.capability', cap), rec('SCHILY.xattr.user.bin', bin)]);
  const tar = await makeTar([{ name: 'PaxHeader', type: 'file', data: pax }, { name: 'ping', data: 'p', mode: 0o755 }]);
  // Turn the first entry into a pax header ('x') and fix its checksum.
  tar[156] = 'x'.charCodeAt(0);
  tar.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += tar[i]!;
  tar.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  const { dir, layer, err } = await tryUnpack(tar);
  assert.equal(err, undefined, err?.message);
  const r1 = spawnSync('getfattr', ['-e', 'hex', '-n', 'security.capability', path.join(layer, 'ping')], { encoding: 'utf8' });
  assert.match(r1.stdout, new RegExp(`security.capability=0x${cap.toString('hex')}`));
  const r2 = spawnSync('getfattr', ['-e', 'hex', '-n', 'user.bin', path.join(layer, 'ping')], { encoding: 'utf8' });
  assert.match(r2.stdout, new RegExp(`user.bin=0x${bin.toString('hex')}`));
  fs.rmSync(dir, { recursive: true });
});

test('OCI whiteouts become overlay whiteouts', async () => {
  const tar = await makeTar([
    { name: 'etc/', type: 'directory' },
    { name: 'etc/.wh.old.conf' },
    { name: 'var/lib/.wh..wh..opq' },
    { name: 'var/lib/new', data: 'n' },
    { name: 'keep/.wh.same' },
    { name: 'keep/same', data: 'this layer wins' },
  ]);
  const { dir, layer, err } = await tryUnpack(tar);
  assert.equal(err, undefined, err?.message);
  const wo = fs.lstatSync(path.join(layer, 'etc/old.conf'));
  assert.ok(wo.isCharacterDevice());
  assert.equal(wo.rdev, 0);
  assert.equal(fs.existsSync(path.join(layer, 'etc/.wh.old.conf')), false);
  assert.equal(getfattr(path.join(layer, 'var/lib'), 'trusted.overlay.opaque'), 'y');
  assert.equal(fs.existsSync(path.join(layer, 'var/lib/.wh..wh..opq')), false);
  assert.equal(fs.readFileSync(path.join(layer, 'keep/same'), 'utf8'), 'this layer wins');
  fs.rmSync(dir, { recursive: true });
});

const hostile: [string, Parameters<typeof makeTar>[0], RegExp][] = [
  ['a ../ entry', [{ name: '../escape', data: 'x' }], /entry "\.\.\/escape": path with '\.\.' refused/],
  ['a nested ../ entry', [{ name: 'a/../../escape', data: 'x' }], /entry "a\/\.\.\/\.\.\/escape": path with '\.\.' refused/],
  ['an absolute path', [{ name: '/abs', data: 'x' }], /entry "\/abs": absolute path refused/],
  [
    'a write through an absolute symlink',
    [{ name: 'link', type: 'symlink', linkname: '/' }, { name: 'link/escape', data: 'x' }],
    /entry "link\/escape": write through symlink "link" -> "\/" which points outside the layer refused/,
  ],
  [
    'a write through a climbing symlink',
    [{ name: 'a/', type: 'directory' }, { name: 'a/up', type: 'symlink', linkname: '../../outside' }, { name: 'a/up/escape', data: 'x' }],
    /entry "a\/up\/escape": write through symlink "a\/up"/,
  ],
  ['a hardlink to an absolute path', [{ name: 'h', type: 'link', linkname: '/etc/passwd' }], /entry "h": hardlink to "\/etc\/passwd" outside the layer refused/],
  ['a hardlink climbing out', [{ name: 'h', type: 'link', linkname: '../outside/x' }], /entry "h": hardlink to "\.\.\/outside\/x" outside the layer refused/],
  [
    'a hardlink through a symlink out',
    [{ name: 'l', type: 'symlink', linkname: '/etc' }, { name: 'h', type: 'link', linkname: 'l/passwd' }],
    /entry "h": write through symlink "l"/,
  ],
  ['a character device', [{ name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3 }], /entry "dev\/null": device node \(character-device 1:3\) refused/],
  ['a block device', [{ name: 'dev/sda', type: 'block-device', devmajor: 8, devminor: 0 }], /entry "dev\/sda": device node \(block-device 8:0\) refused/],
];

for (const [label, entries, re] of hostile) {
  test(`refuses ${label}, writing nothing outside`, async () => {
    const tar = await makeTar(entries);
    const { dir, outside, err } = await tryUnpack(tar);
    assert.ok(err, 'unpack must fail');
    assert.match(err.message, /^layer L: /);
    assert.match(err.message, re);
    assert.deepEqual(fs.readdirSync(outside), []);
    assert.deepEqual(fs.readdirSync(dir).sort(), ['layer', 'outside']);
    fs.rmSync(dir, { recursive: true });
  });
}

test('a file replacing a symlink does not write through it', async () => {
  const dir0 = tmpdir();
  const victim = path.join(dir0, 'victim');
  fs.writeFileSync(victim, 'original');
  const tar = await makeTar([
    { name: 'a', type: 'symlink', linkname: victim },
    { name: 'a', data: 'replaced' },
  ]);
  const { dir, layer, err } = await tryUnpack(tar);
  assert.equal(err, undefined, err?.message);
  assert.equal(fs.readFileSync(victim, 'utf8'), 'original');
  assert.equal(fs.readFileSync(path.join(layer, 'a'), 'utf8'), 'replaced');
  assert.ok(fs.lstatSync(path.join(layer, 'a')).isFile());
  fs.rmSync(dir, { recursive: true });
  fs.rmSync(dir0, { recursive: true });
});

test('symlinks that stay inside the layer are followed', async () => {
  const tar = await makeTar([
    { name: 'usr/lib/', type: 'directory' },
    { name: 'lib', type: 'symlink', linkname: 'usr/lib' },
    { name: 'lib/x.so', data: 'x' },
  ]);
  const { dir, layer, err } = await tryUnpack(tar);
  assert.equal(err, undefined, err?.message);
  assert.equal(fs.readFileSync(path.join(layer, 'usr/lib/x.so'), 'utf8'), 'x');
  fs.rmSync(dir, { recursive: true });
});

function store(dir: string) {
  return new ContentStore(path.join(dir, 'blobs'), path.join(dir, 'tmp'));
}

test('a layer blob unpacks into layers/<diff id> once checks pass; mismatches leave nothing', async () => {
  const dir = tmpdir();
  const cs = store(dir);
  const layers = path.join(dir, 'layers');
  const tar = await makeTar([{ name: 'hello', data: 'world' }]);
  const gz = zlib.gzipSync(tar);
  const blob = cs.putBuffer(gz);
  const diffId = sha256(tar);
  const dirs = { layers, tmp: cs.tmpDir };
  const u = await unpackLayerBlob(cs, { diffId, blobDigest: blob.digest, blobSize: blob.size }, dirs, 'layer 1');
  assert.equal(u.created, true);
  assert.equal(u.dir, path.join(layers, diffId.slice(7)));
  assert.equal(fs.readFileSync(path.join(u.dir, 'hello'), 'utf8'), 'world');
  // Again: someone else's copy is in place, ours is dropped.
  const again = await unpackLayerBlob(cs, { diffId, blobDigest: blob.digest, blobSize: blob.size }, dirs, 'layer 1');
  assert.equal(again.created, false);

  const wrongDiff = sha256('other');
  await assert.rejects(
    unpackLayerBlob(cs, { diffId: wrongDiff, blobDigest: blob.digest, blobSize: blob.size }, dirs, 'layer 2'),
    /layer 2: diff id mismatch: uncompressed layer hashes to sha256:[0-9a-f]+, the config says sha256:/,
  );
  await assert.rejects(
    unpackLayerBlob(cs, { diffId: wrongDiff, blobDigest: blob.digest, blobSize: blob.size + 1 }, dirs, 'layer 3'),
    /layer 3: size mismatch/,
  );
  const trunc = cs.putBuffer(gz.subarray(0, gz.length - 10));
  await assert.rejects(
    unpackLayerBlob(cs, { diffId: sha256('t'), blobDigest: trunc.digest, blobSize: trunc.size }, dirs, 'layer 4'),
    /layer 4: truncated gzip stream/,
  );
  assert.deepEqual(fs.readdirSync(layers), [diffId.slice(7)]);
  assert.deepEqual(fs.readdirSync(cs.tmpDir), []);
  fs.rmSync(dir, { recursive: true });
});

test('a zstd-compressed layer unpacks through the zstd program', async (t) => {
  if (spawnSync('sh', ['-c', 'command -v zstd']).status !== 0) return t.skip('zstd is not installed');
  const dir = tmpdir();
  const cs = store(dir);
  const tar = await makeTar([{ name: 'z', data: 'zstd!' }]);
  const z = spawnSync('zstd', ['-q', '-c'], { input: tar });
  assert.equal(z.status, 0);
  const blob = cs.putBuffer(z.stdout);
  const u = await unpackLayerBlob(cs, { diffId: sha256(tar), blobDigest: blob.digest, blobSize: blob.size }, { layers: path.join(dir, 'layers'), tmp: cs.tmpDir }, 'layer z');
  assert.equal(fs.readFileSync(path.join(u.dir, 'z'), 'utf8'), 'zstd!');
  const bad = cs.putBuffer(Buffer.concat([z.stdout.subarray(0, 8), Buffer.alloc(64, 9)]));
  await assert.rejects(
    unpackLayerBlob(cs, { diffId: sha256(tar), blobDigest: bad.digest, blobSize: bad.size }, { layers: path.join(dir, 'layers'), tmp: cs.tmpDir }, 'layer y'),
    /layer y: /,
  );
  assert.deepEqual(fs.readdirSync(cs.tmpDir), []);
  fs.rmSync(dir, { recursive: true });
});

test('placeLayer keeps the first of two racing copies', () => {
  const dir = tmpdir();
  const a = path.join(dir, 'a');
  const b = path.join(dir, 'b');
  fs.mkdirSync(path.join(a, 'x'), { recursive: true });
  fs.mkdirSync(path.join(b, 'y'), { recursive: true });
  const dest = path.join(dir, 'dest');
  assert.equal(placeLayer(a, dest), true);
  assert.equal(placeLayer(b, dest), false);
  assert.deepEqual(fs.readdirSync(dest), ['x']);
  assert.equal(fs.existsSync(b), false);
  fs.rmSync(dir, { recursive: true });
});
