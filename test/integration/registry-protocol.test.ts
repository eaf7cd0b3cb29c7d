/**
 * The registry client against Debian's real docker-registry, at the content-store level:
 * push (monolithic and chunked), pull, cross-repo mounts, Basic auth, the Bearer token flow
 * and a blob corrupted in the registry's storage.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ContentStore } from '../../src/content/store.js';
import { RegistryClient, clearTokenCache } from '../../src/registry/client.js';
import { fetchImage } from '../../src/registry/fetch-image.js';
import { pushImage } from '../../src/registry/push-image.js';
import type { ProgressEvent } from '../../src/registry/events.js';
import { parseReference } from '../../src/images/reference.js';
import type { Digest } from '../../src/oci/digest.js';
import { buildTestImage, haveRegistry, startRegistry, startTokenServer } from '../helpers/registry.js';

const amd64 = { os: 'linux', architecture: 'amd64' };

function tempStore() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-regtest-'));
  return { dir, cs: new ContentStore(path.join(dir, 'blobs'), path.join(dir, 'tmp')), cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

test('push (monolithic and chunked) then pull gives the same digests; a second pull fetches nothing', async (t) => {
  if (!haveRegistry()) return t.skip('docker-registry is not installed (apt-get install docker-registry)');
  const reg = await startRegistry();
  const src = tempStore();
  const dst = tempStore();
  try {
    const img = await buildTestImage(src.cs, { layers: [{ files: { 'etc/hello': 'hello\n' } }, { randomBytes: 3 * 1024 * 1024 + 17 }, { files: { 'bin/x': 'x' } }] });
    const client = new RegistryClient({ domain: reg.host, credentials: null });
    const events: ProgressEvent[] = [];
    // 1 MiB chunks: the 3 MiB layer goes up in 4 PATCH requests.
    const pushed = await pushImage(client, 'test/app', 'v1', src.cs, img.manifestDigest as Digest, { monolithicMax: 1024 * 1024, chunkSize: 1024 * 1024, onEvent: (e) => events.push(e) });
    assert.equal(pushed.digest, img.manifestDigest);
    assert.equal(reg.countRequests('PATCH', '/v2/test/app/blobs/uploads/'), 4);
    assert.equal(events.filter((e) => e.type === 'blob' && e.status === 'pushed').length, 3);

    const ref = parseReference(`${reg.host}/test/app:v1`);
    const got = await fetchImage(new RegistryClient({ domain: reg.host, credentials: null }), ref, dst.cs, { platform: amd64 });
    assert.equal(got.repoDigest, img.manifestDigest);
    assert.equal(got.manifestDigest, img.manifestDigest);
    for (const d of [img.manifestDigest, img.configDigest, ...img.layerDigests]) {
      assert.deepEqual(dst.cs.readBuffer(d as Digest, 1 << 30), src.cs.readBuffer(d as Digest, 1 << 30), `blob ${d} equal`);
    }
    const layerGets = reg.countRequests('GET', '/blobs/sha256:');
    const again = await fetchImage(new RegistryClient({ domain: reg.host, credentials: null }), ref, dst.cs, { platform: amd64 });
    assert.equal(again.bytesFetched, 0);
    assert.equal(reg.countRequests('GET', '/blobs/sha256:'), layerGets, 'no blob fetched again');

    // Pushing again: every layer already exists.
    const ev2: ProgressEvent[] = [];
    await pushImage(client, 'test/app', 'v1', src.cs, img.manifestDigest as Digest, { onEvent: (e) => ev2.push(e) });
    assert.equal(ev2.filter((e) => e.type === 'blob' && e.status === 'remote-exists').length, 3);
    // Pushing to another repository mounts from the first.
    const ev3: ProgressEvent[] = [];
    await pushImage(client, 'other/app', 'v1', src.cs, img.manifestDigest as Digest, { mountFrom: ['test/app'], onEvent: (e) => ev3.push(e) });
    assert.equal(ev3.filter((e) => e.type === 'blob' && e.status === 'mounted').length, 3);
    const third = tempStore();
    const viaMount = await fetchImage(new RegistryClient({ domain: reg.host, credentials: null }), parseReference(`${reg.host}/other/app:v1`), third.cs, { platform: amd64 });
    third.cleanup();
    assert.equal(viaMount.manifestDigest, img.manifestDigest);
  } finally {
    await reg.stop();
    src.cleanup();
    dst.cleanup();
  }
});

test('a blob corrupted in the registry storage is refused and nothing is kept', async (t) => {
  if (!haveRegistry()) return t.skip('docker-registry is not installed');
  const reg = await startRegistry();
  const src = tempStore();
  const dst = tempStore();
  try {
    const img = await buildTestImage(src.cs, { layers: [{ files: { a: 'a' } }, { randomBytes: 256 * 1024 }] });
    await pushImage(new RegistryClient({ domain: reg.host, credentials: null }), 'bad/img', 'latest', src.cs, img.manifestDigest as Digest);
    const victim = img.layerDigests[1]!;
    const file = reg.blobFile(victim);
    const buf = fs.readFileSync(file);
    buf[1000] = buf[1000]! ^ 0xff; // same size, one byte flipped
    fs.writeFileSync(file, buf);
    await assert.rejects(
      fetchImage(new RegistryClient({ domain: reg.host, credentials: null }), parseReference(`${reg.host}/bad/img`), dst.cs, { platform: amd64 }),
      (e: Error & { code?: string }) => e.code === 'INVALID_ARGUMENT' && /digest mismatch/.test(e.message) && e.message.includes(victim),
    );
    assert.equal(dst.cs.has(victim as Digest), false, 'corrupt blob not kept');
    assert.equal(dst.cs.has(img.manifestDigest as Digest), false, 'manifest not kept');
    assert.deepEqual(fs.readdirSync(path.join(dst.dir, 'tmp')), [], 'no temp files left');
  } finally {
    await reg.stop();
    src.cleanup();
    dst.cleanup();
  }
});

test('Basic auth: anonymous access is refused, a wrong password is refused, the right one works', async (t) => {
  if (!haveRegistry()) return t.skip('docker-registry is not installed');
  const reg = await startRegistry({ basic: { user: 'alice', password: 's3cret' } });
  const src = tempStore();
  try {
    const img = await buildTestImage(src.cs, { layers: [{ files: { a: 'a' } }] });
    await assert.rejects(
      pushImage(new RegistryClient({ domain: reg.host, credentials: null }), 'sec/img', 'latest', src.cs, img.manifestDigest as Digest),
      (e: Error & { code?: string }) => e.code === 'PERMISSION_DENIED' && /authentication required/.test(e.message),
    );
    const wrong = new RegistryClient({ domain: reg.host, credentials: { username: 'alice', password: 'nope', source: 'test' } });
    await assert.rejects(wrong.ping(true), (e: Error & { code?: string }) => e.code === 'PERMISSION_DENIED' && /incorrect username or password/.test(e.message));
    await assert.rejects(
      pushImage(wrong, 'sec/img', 'latest', src.cs, img.manifestDigest as Digest),
      (e: Error & { code?: string }) => e.code === 'PERMISSION_DENIED',
    );
    const right = new RegistryClient({ domain: reg.host, credentials: { username: 'alice', password: 's3cret', source: 'test' } });
    await right.ping(true);
    await pushImage(right, 'sec/img', 'latest', src.cs, img.manifestDigest as Digest);
    const dst = tempStore();
    const got = await fetchImage(right, parseReference(`${reg.host}/sec/img`), dst.cs, { platform: amd64 });
    assert.equal(got.manifestDigest, img.manifestDigest);
    dst.cleanup();
    const anonDst = tempStore();
    await assert.rejects(
      fetchImage(new RegistryClient({ domain: reg.host, credentials: null }), parseReference(`${reg.host}/sec/img`), anonDst.cs, { platform: amd64 }),
      (e: Error & { code?: string }) => e.code === 'PERMISSION_DENIED',
    );
    anonDst.cleanup();
  } finally {
    await reg.stop();
    src.cleanup();
  }
});

test('Bearer token flow: tokens from the realm, scoped, reused until they expire', async (t) => {
  if (!haveRegistry()) return t.skip('docker-registry is not installed');
  const ts = await startTokenServer({ user: 'bob', password: 'pw', anonymousPull: true });
  const reg = await startRegistry({ token: ts.config });
  const src = tempStore();
  const dst = tempStore();
  try {
    clearTokenCache();
    const img = await buildTestImage(src.cs, { layers: [{ files: { a: 'a' } }, { files: { b: 'b' } }] });
    // Anonymous: pull-only tokens, so a push is denied by the registry.
    await assert.rejects(
      pushImage(new RegistryClient({ domain: reg.host, credentials: null }), 'tok/img', 'latest', src.cs, img.manifestDigest as Digest),
      (e: Error & { code?: string }) => e.code === 'PERMISSION_DENIED',
    );
    const bad = new RegistryClient({ domain: reg.host, credentials: { username: 'bob', password: 'wrong', source: 'test' } });
    await assert.rejects(bad.ping(true, ['repository:tok/img:pull']), /incorrect username or password/);
    const before = ts.requests.length;
    const bob = new RegistryClient({ domain: reg.host, credentials: { username: 'bob', password: 'pw', source: 'test' } });
    await pushImage(bob, 'tok/img', 'latest', src.cs, img.manifestDigest as Digest);
    const pushTokens = ts.requests.slice(before).filter((r) => r.status === 200);
    assert.ok(pushTokens.length >= 1 && pushTokens.length <= 2, `tokens reused during the push (asked ${pushTokens.length} times)`);
    assert.ok(pushTokens.every((r) => r.user === 'bob'));
    assert.ok(pushTokens.some((r) => r.scopes.includes('repository:tok/img:pull,push')));
    // Anonymous pull works with an anonymous pull token.
    const got = await fetchImage(new RegistryClient({ domain: reg.host, credentials: null }), parseReference(`${reg.host}/tok/img`), dst.cs, { platform: amd64 });
    assert.equal(got.manifestDigest, img.manifestDigest);
    assert.ok(ts.requests.some((r) => r.user === '' && r.scopes.includes('repository:tok/img:pull') && r.status === 200));
  } finally {
    await reg.stop();
    await ts.close();
    src.cleanup();
    dst.cleanup();
  }
});

test('Bearer tokens are fetched again once they expire', async (t) => {
  if (!haveRegistry()) return t.skip('docker-registry is not installed');
  // Tokens live 2 s here; hull renews at 90% of the lifetime.
  const ts = await startTokenServer({ user: 'bob', password: 'pw', anonymousPull: true, expiresIn: 2 });
  const reg = await startRegistry({ token: ts.config });
  const src = tempStore();
  try {
    clearTokenCache();
    const img = await buildTestImage(src.cs, { layers: [{ files: { a: 'a' } }] });
    const bob = new RegistryClient({ domain: reg.host, credentials: { username: 'bob', password: 'pw', source: 'test' } });
    await pushImage(bob, 'exp/img', 'latest', src.cs, img.manifestDigest as Digest);
    const pullTokens = () => ts.requests.filter((r) => r.status === 200 && r.scopes.includes('repository:exp/img:pull')).length;
    const anon = new RegistryClient({ domain: reg.host, credentials: null });
    const pullOnce = async () => {
      const d = tempStore();
      await fetchImage(anon, parseReference(`${reg.host}/exp/img`), d.cs, { platform: amd64 });
      d.cleanup();
    };
    await pullOnce();
    const n1 = pullTokens();
    assert.equal(n1, 1, 'one token for the whole pull');
    await pullOnce();
    assert.equal(pullTokens(), 1, 'reused while valid');
    await new Promise((r) => setTimeout(r, 2100));
    await pullOnce();
    assert.equal(pullTokens(), 2, 'a fresh token after expiry');
  } finally {
    await reg.stop();
    await ts.close();
    src.cleanup();
  }
});
