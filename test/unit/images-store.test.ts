import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { ImageStore } from '../../src/images/store.js';
import { importRootfs } from '../../src/images/import.js';
import { isHullError } from '../../src/errors.js';
import { sha256 } from '../../src/oci/digest.js';
import { MT } from '../../src/oci/media.js';
import { makeTar } from '../helpers/images-tar.js';

function root(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'hull-store-'));
}

async function importTar(store: ImageStore, files: Record<string, string>, ref?: string, epoch = '1700000000') {
  const tar = await makeTar(Object.entries(files).map(([name, data]) => ({ name, data })));
  return importRootfs(store, { input: Readable.from([tar]), sourceName: 'x.tar', reference: ref, env: { SOURCE_DATE_EPOCH: epoch } });
}

test('resolve: names, tags, full and short ids, name@digest; NOT_FOUND otherwise', async () => {
  const r = root();
  const s = ImageStore.open(r);
  const img = await importTar(s, { a: '1' }, 'busybox');
  assert.deepEqual(img.tags, ['busybox:latest']);
  const hexId = img.id.slice(7);
  for (const ref of ['busybox', 'busybox:latest', 'docker.io/library/busybox:latest', img.id, hexId, hexId.slice(0, 12), `sha256:${hexId.slice(0, 5)}`, hexId.slice(0, 3)]) {
    assert.equal(s.resolve(ref).id, img.id, ref);
  }
  assert.throws(() => s.resolve('busybox:other'), (e: unknown) => isHullError(e, 'NOT_FOUND') && /No such image: busybox:other/.test((e as Error).message));
  assert.equal(s.tryResolve('nothing'), undefined);
  assert.equal(s.tryResolve('0'.repeat(64)), undefined);
  // A repo digest recorded by a pull resolves by name@digest.
  await s.commitImage({ manifestDigest: img.manifestDigest, repoDigest: `localhost:5000/app@${img.manifestDigest}` });
  assert.equal(s.resolve(`localhost:5000/app@${img.manifestDigest}`).id, img.id);
  assert.deepEqual(s.resolve(img.id).repoDigests, [`localhost:5000/app@${img.manifestDigest}`]);
  fs.rmSync(r, { recursive: true });
});

test('lowerDirs are bottom first and re-unpack a layer whose directory vanished', async () => {
  const r = root();
  const s = ImageStore.open(r);
  const img = await importTar(s, { 'etc/hostname': 'h' }, 'one');
  const dirs = await s.lowerDirs(img);
  assert.deepEqual(dirs, [path.join(r, 'layers', img.layers[0]!.diffId.slice(7))]);
  fs.rmSync(dirs[0]!, { recursive: true });
  const again = await s.lowerDirs(img);
  assert.equal(fs.readFileSync(path.join(again[0]!, 'etc/hostname'), 'utf8'), 'h');
  fs.rmSync(r, { recursive: true });
});

test('commitImage refuses a manifest whose config does not match its layers', async () => {
  const r = root();
  const s = ImageStore.open(r);
  const tar = await makeTar([{ name: 'f', data: 'x' }]);
  const layer = s.content.putBuffer(tar);
  const config = s.content.putBuffer(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } })));
  const manifest = s.content.putBuffer(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MT.ociManifest,
        config: { mediaType: MT.ociConfig, digest: config.digest, size: config.size },
        layers: [{ mediaType: MT.ociLayer, digest: layer.digest, size: layer.size }],
      }),
    ),
  );
  await assert.rejects(s.commitImage({ manifestDigest: manifest.digest, tags: ['bad'] }), /has 1 layers but config sha256:[0-9a-f]+ rootfs\.diff_ids lists 0/);
  const wrongSize = s.content.putBuffer(
    Buffer.from(JSON.stringify({ schemaVersion: 2, config: { mediaType: MT.ociConfig, digest: config.digest, size: config.size + 1 }, layers: [] })),
  );
  await assert.rejects(s.commitImage({ manifestDigest: wrongSize.digest }), /config sha256:[0-9a-f]+: size mismatch/);
  const missing = s.content.putBuffer(
    Buffer.from(JSON.stringify({ schemaVersion: 2, config: { mediaType: MT.ociConfig, digest: sha256('nope'), size: 4 }, layers: [] })),
  );
  await assert.rejects(s.commitImage({ manifestDigest: missing.digest }), /not found in the content store/);
  assert.deepEqual(s.list(), []);
  fs.rmSync(r, { recursive: true });
});

test('tag, rmi by name and by id, in-use refusal, -f, prune', async () => {
  const r = root();
  const s = ImageStore.open(r);
  const a = await importTar(s, { a: '1' }, 'app:v1');
  s.tag('app:v1', 'app:v2');
  assert.deepEqual(s.resolve('app:v2').tags, ['app:v1', 'app:v2']);
  assert.throws(() => s.tag('app:v1', 'app@' + sha256('x')), /refusing to create a tag with a digest reference/);
  // Several names: by id needs force; by name removes only the name.
  assert.throws(() => s.remove(a.id), /must be forced\) - image is referenced in multiple repositories/);
  assert.deepEqual(s.remove('app:v2'), [{ Untagged: 'app:v2' }]);
  // A container uses it: refused; forced keeps the image (dangling) for the container.
  s.db
    .prepare(`INSERT INTO containers (id, name, image_id, image_ref, isolation, runtime, status, spec_json, created_at) VALUES (?, 'c1', ?, 'app:v1', 'container', 'crun', 'exited', '{}', ?)`)
    .run('c'.repeat(64), a.id, new Date().toISOString());
  assert.throws(() => s.remove('app:v1'), /unable to remove repository reference "app:v1" \(must force\) - container cccccccccccc is using its referenced image/);
  assert.deepEqual(s.remove('app:v1', { force: true }), [{ Untagged: 'app:v1' }]);
  assert.equal(s.resolve(a.id).tags.length, 0);
  const layerDir = s.layerDir(a.layers[0]!.diffId);
  assert.ok(fs.existsSync(layerDir));
  // prune skips images in use.
  assert.deepEqual(s.prune().deleted, []);
  s.db.prepare('DELETE FROM containers').run();
  const b = await importTar(s, { b: '2' }, 'other', '1700000001');
  const p = s.prune();
  assert.deepEqual(p.deleted, [{ Deleted: a.id }]);
  assert.ok(p.reclaimed > 0);
  assert.equal(fs.existsSync(layerDir), false);
  assert.equal(s.content.has(a.id), false);
  assert.equal(s.content.has(a.manifestDigest), false);
  assert.equal(s.tryResolve('other')?.id, b.id);
  // -a removes tagged images too.
  assert.deepEqual(s.prune({ all: true }).deleted, [{ Untagged: 'other:latest' }, { Deleted: b.id }]);
  assert.deepEqual(s.list(), []);
  assert.deepEqual(s.content.list(), []);
  assert.deepEqual(fs.readdirSync(path.join(r, 'layers')), []);
  assert.deepEqual(fs.readdirSync(path.join(r, 'tmp')), []);
  fs.rmSync(r, { recursive: true });
});

test('two images sharing a layer: removing one keeps the layer', async () => {
  const r = root();
  const s = ImageStore.open(r);
  const a = await importTar(s, { same: 'x' }, 'a', '1');
  const b = await importTar(s, { same: 'x' }, 'b', '2');
  assert.notEqual(a.id, b.id);
  assert.equal(a.layers[0]!.diffId, b.layers[0]!.diffId);
  assert.deepEqual(s.remove('a'), [{ Untagged: 'a:latest' }, { Deleted: a.id }]);
  assert.ok(fs.existsSync(s.layerDir(b.layers[0]!.diffId)));
  assert.ok(s.content.has(b.layers[0]!.blobDigest));
  s.remove('b');
  assert.equal(fs.existsSync(s.layerDir(b.layers[0]!.diffId)), false);
  fs.rmSync(r, { recursive: true });
});
