import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { ContentStore } from '../../src/content/store.js';
import { sha256 } from '../../src/oci/digest.js';

function store() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-cs-'));
  return { dir, cs: new ContentStore(path.join(dir, 'blobs'), path.join(dir, 'tmp')) };
}

test('a verified stream is stored under its digest', async () => {
  const { dir, cs } = store();
  const data = Buffer.from('hello world\n'.repeat(1000));
  const d = sha256(data);
  const r = await cs.putStream(Readable.from([data.subarray(0, 100), data.subarray(100)]), { digest: d, size: data.length });
  assert.equal(r.digest, d);
  assert.ok(cs.has(d));
  assert.deepEqual(cs.readBuffer(d), data);
  assert.deepEqual(fs.readdirSync(path.join(dir, 'tmp')), []);
  fs.rmSync(dir, { recursive: true });
});

test('a digest or size mismatch keeps nothing', async () => {
  const { dir, cs } = store();
  const data = Buffer.from('payload');
  const wrong = sha256('other');
  await assert.rejects(cs.putStream(Readable.from([data]), { digest: wrong, what: 'layer 1' }), /layer 1: digest mismatch/);
  await assert.rejects(cs.putStream(Readable.from([data]), { size: 3 }), /size mismatch/);
  await assert.rejects(cs.putStream(Readable.from([data]), { size: 100 }), /size mismatch: got 7 bytes, expected 100/);
  assert.throws(() => cs.putBuffer(data, { digest: wrong }), /digest mismatch/);
  assert.deepEqual(cs.list(), []);
  assert.deepEqual(fs.readdirSync(path.join(dir, 'tmp')), []);
  fs.rmSync(dir, { recursive: true });
});

test('a failing source stream leaves no blob and no temp file', async () => {
  const { dir, cs } = store();
  async function* broken() {
    yield Buffer.from('part');
    throw new Error('connection reset');
  }
  await assert.rejects(cs.putStream(Readable.from(broken())), /connection reset/);
  assert.deepEqual(cs.list(), []);
  assert.deepEqual(fs.readdirSync(path.join(dir, 'tmp')), []);
  fs.rmSync(dir, { recursive: true });
});
