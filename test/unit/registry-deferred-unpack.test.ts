/**
 * A pull that defers unpacking: the image is recorded with its layers packed (commitImage with
 * unpack: false) and ImageStore.lowerDirs unpacks and checks them at first use. Also the
 * HULL_PULL_UNPACK switch and the download pool that frees a slot while a blob syncs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { ImageStore } from '../../src/images/store.js';
import { isHullError } from '../../src/errors.js';
import { type Digest, sha256 } from '../../src/oci/digest.js';
import { MT } from '../../src/oci/media.js';
import { pullUnpackDefault } from '../../src/registry/pull.js';
import { pool } from '../../src/registry/fetch-image.js';
import { makeTar } from '../helpers/images-tar.js';

function root(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'hull-deferred-'));
}

/** Put a gzip'd multi-layer image into the store's content (as a pull's download does); returns its manifest digest. */
async function storeImage(s: ImageStore, layers: Array<Record<string, string>>, badDiffId?: number): Promise<{ manifest: Digest; blobs: Digest[]; diffIds: Digest[] }> {
  const descs: Array<{ mediaType: string; digest: Digest; size: number }> = [];
  const diffIds: Digest[] = [];
  for (const [i, files] of layers.entries()) {
    const tar = await makeTar(Object.entries(files).map(([name, data]) => ({ name, data })));
    const blob = s.content.putBuffer(zlib.gzipSync(tar));
    descs.push({ mediaType: MT.ociLayerGzip, digest: blob.digest, size: blob.size });
    diffIds.push(i === badDiffId ? sha256(`not layer ${i}`) : sha256(tar));
  }
  const config = s.content.putBuffer(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['sh'] }, rootfs: { type: 'layers', diff_ids: diffIds } })));
  const manifest = s.content.putBuffer(
    Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config: { mediaType: MT.ociConfig, digest: config.digest, size: config.size }, layers: descs })),
  );
  return { manifest: manifest.digest, blobs: [manifest.digest, config.digest, ...descs.map((d) => d.digest)], diffIds };
}

test('HULL_PULL_UNPACK: unset or 0/false/no defers, 1/true/yes unpacks, anything else is an error naming it', () => {
  assert.equal(pullUnpackDefault({}), false);
  for (const v of ['', '0', 'false', 'No']) assert.equal(pullUnpackDefault({ HULL_PULL_UNPACK: v }), false, v);
  for (const v of ['1', 'true', 'YES']) assert.equal(pullUnpackDefault({ HULL_PULL_UNPACK: v }), true, v);
  assert.throws(() => pullUnpackDefault({ HULL_PULL_UNPACK: 'maybe' }), (e: unknown) => isHullError(e, 'INVALID_ARGUMENT') && /HULL_PULL_UNPACK="maybe"/.test((e as Error).message));
});

test('download pool: a released slot starts the next item; after a failure nothing new starts and running ones settle', async () => {
  const started: number[] = [];
  const gates = new Map<number, () => void>();
  const order: string[] = [];
  const run = pool([0, 1, 2, 3], 2, async (n, _i, release) => {
    started.push(n);
    if (n === 0) {
      release(); // bytes in, still syncing: item 2 may start
      await new Promise<void>((r) => gates.set(0, r));
      order.push('0 synced');
      return;
    }
    await new Promise<void>((r) => gates.set(n, r));
    order.push(`${n} done`);
  });
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(started, [0, 1, 2], 'three running with a limit of 2: item 0 released its slot');
  gates.get(1)!();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(started, [0, 1, 2, 3]);
  gates.get(2)!();
  gates.get(3)!();
  let finished = false;
  void run.then(() => (finished = true));
  await new Promise((r) => setImmediate(r));
  assert.equal(finished, false, 'waits for the released item to settle too');
  gates.get(0)!();
  await run;
  assert.deepEqual(order.sort(), ['0 synced', '1 done', '2 done', '3 done']);

  const seen: number[] = [];
  let slowDone = false;
  await assert.rejects(
    pool([0, 1, 2, 3], 2, async (n) => {
      seen.push(n);
      if (n === 0) throw new Error('boom');
      await new Promise((r) => setTimeout(r, 20));
      slowDone = true;
    }),
    /boom/,
  );
  assert.deepEqual(seen, [0, 1], 'nothing starts after the failure');
  assert.equal(slowDone, true, 'the running item settled before the failure was thrown');
});

test('an image recorded without unpacking is unpacked at first use; concurrent first uses share the work', async () => {
  const r = root();
  const s = ImageStore.open(r);
  const { manifest, diffIds } = await storeImage(s, [{ 'bin/a': 'aaaa' }, { 'etc/b': 'bb' }, { 'etc/c': 'c' }]);
  const img = await s.commitImage({ manifestDigest: manifest, tags: ['deferred:1'], action: 'pull', unpack: false });
  assert.equal(img.unpacked, false);
  assert.equal(img.size, img.layers.reduce((a, l) => a + l.blobSize, 0), 'until unpacked, the size is that of the blobs');
  assert.equal(fs.existsSync(path.join(r, 'layers')) ? fs.readdirSync(path.join(r, 'layers')).length : 0, 0, 'nothing unpacked');
  const [d1, d2] = await Promise.all([s.lowerDirs(img), s.lowerDirs(img)]);
  assert.deepEqual(d1, d2);
  assert.deepEqual(d1, diffIds.map((d) => path.join(r, 'layers', d.slice(7))));
  assert.equal(fs.readFileSync(path.join(d1[0]!, 'bin/a'), 'utf8'), 'aaaa');
  assert.deepEqual(fs.readdirSync(path.join(r, 'layers')).sort(), diffIds.map((d) => d.slice(7)).sort());
  assert.deepEqual(fs.readdirSync(path.join(r, 'tmp')), [], 'no temp dirs left');
  const after = s.resolve('deferred:1');
  assert.equal(after.unpacked, true);
  assert.equal(after.size, 7, 'the real size (file data) once unpacked');
  fs.rmSync(r, { recursive: true });
});

test('first use of a deferred image whose layer does not match its diff id: fails clearly and keeps none of the image', async () => {
  const r = root();
  const s = ImageStore.open(r);
  const { manifest, blobs } = await storeImage(s, [{ good: 'g' }, { bad: 'b' }], 1);
  const img = await s.commitImage({ manifestDigest: manifest, tags: ['broken:1'], repoDigest: `localhost:5000/broken@${manifest}`, action: 'pull', unpack: false });
  assert.equal(img.unpacked, false);
  await assert.rejects(
    s.lowerDirs(img),
    (e: unknown) =>
      isHullError(e, 'INVALID_ARGUMENT') &&
      /layer 2\/2 .*: diff id mismatch: uncompressed layer hashes to sha256:[0-9a-f]{64}, the config says sha256:[0-9a-f]{64}; image broken:1 cannot run and was removed/.test((e as Error).message) &&
      /broken as published/.test((e as { hint?: string }).hint ?? ''),
  );
  assert.equal(s.tryResolve('broken:1'), undefined, 'no image under its tag');
  assert.equal(s.tryResolve(`localhost:5000/broken@${manifest}`), undefined, 'nor its repo digest');
  assert.equal(s.tryResolve(img.id), undefined, 'nor its id');
  for (const b of blobs) assert.equal(s.content.has(b), false, `blob ${b} removed`);
  assert.deepEqual(fs.existsSync(path.join(r, 'layers')) ? fs.readdirSync(path.join(r, 'layers')) : [], [], 'not even the good layer stays');
  assert.deepEqual(fs.readdirSync(path.join(r, 'tmp')), [], 'no temp dirs left');
  fs.rmSync(r, { recursive: true });
});

test('first use of a deferred image whose stored blob was damaged: says it is damaged here, removes the image', async () => {
  const r = root();
  const s = ImageStore.open(r);
  const { manifest, blobs } = await storeImage(s, [{ 'etc/x': 'x'.repeat(1000) }]);
  const img = await s.commitImage({ manifestDigest: manifest, tags: ['damaged:1'], action: 'pull', unpack: false });
  const blob = s.content.path(blobs[2]!);
  const buf = fs.readFileSync(blob);
  buf[buf.length - 12] ^= 0xff; // inside the deflate data: the stream fails its CRC or decodes to other bytes
  fs.writeFileSync(blob, buf);
  await assert.rejects(
    s.lowerDirs(img),
    (e: unknown) =>
      isHullError(e, 'INVALID_ARGUMENT') &&
      /digest mismatch: the stored blob sha256:[0-9a-f]{64} hashes to sha256:[0-9a-f]{64} \(damaged on this host\); image damaged:1 cannot run and was removed/.test((e as Error).message) &&
      /pull or load the image again/.test((e as { hint?: string }).hint ?? ''),
  );
  assert.equal(s.tryResolve('damaged:1'), undefined);
  assert.equal(s.content.has(blobs[2]!), false, 'the damaged blob is gone, so a new pull fetches it');
  assert.deepEqual(fs.readdirSync(path.join(r, 'tmp')), []);
  fs.rmSync(r, { recursive: true });
});
