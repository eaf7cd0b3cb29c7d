/**
 * The registry is SIGKILLed while hull downloads a big layer. Without retries the pull fails,
 * keeps the layers it finished (verified) and nothing else; the next pull fetches only what is
 * missing. With retries, the same pull waits for the registry to come back and continues the
 * interrupted layer with a Range request.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ContentStore } from '../../src/content/store.js';
import { RegistryClient } from '../../src/registry/client.js';
import { pushImage } from '../../src/registry/push-image.js';
import { sha256, type Digest } from '../../src/oci/digest.js';
import { spawn } from 'node:child_process';
import { HULL_BIN, hull, hullAsync, makeTempRoot } from '../helpers/hull.js';
import { buildTestImage, haveRegistry, startRegistry, startThrottle, type TestRegistry } from '../helpers/registry.js';

const BIG = 64 * 1024 * 1024;

async function setup() {
  const reg = await startRegistry();
  const src = makeTempRoot();
  const cs = new ContentStore(path.join(src.root, 'blobs'), path.join(src.root, 'tmp'));
  const img = await buildTestImage(cs, { layers: [{ randomBytes: 1024 * 1024 }, { randomBytes: BIG }, { randomBytes: 512 * 1024 }] });
  await pushImage(new RegistryClient({ domain: reg.host, credentials: null }), 'resume/img', 'latest', cs, img.manifestDigest as Digest);
  src.cleanup();
  // ~16 MB/s per connection: the big layer takes about 4 s to come through.
  const proxy = await startThrottle(reg.port, 16 * 1024 * 1024);
  return { reg, img, proxy, name: `${proxy.host}/resume/img:latest` };
}

/** Wait until the small layers are in `root` and a partial download of the big one is on disk. */
async function waitMidDownload(root: string, small: string[]): Promise<void> {
  const deadline = Date.now() + 60_000;
  const blobs = path.join(root, 'blobs', 'sha256');
  const tmp = path.join(root, 'tmp');
  while (Date.now() < deadline) {
    const haveSmall = small.every((d) => fs.existsSync(path.join(blobs, d.slice(7))));
    let partial = 0;
    try {
      for (const n of fs.readdirSync(tmp)) if (n.startsWith('pull-')) partial = Math.max(partial, fs.statSync(path.join(tmp, n)).size);
    } catch {
      /* not made yet */
    }
    if (haveSmall && partial >= 8 * 1024 * 1024) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('the download never got under way');
}

const blobGets = (reg: TestRegistry, digest: string) => reg.requests().filter((r) => r.method === 'GET' && r.path.endsWith(`/blobs/${digest}`));

test('registry killed mid-pull: the pull fails cleanly, the next pull fetches only the unfinished layer', async (t) => {
  if (!haveRegistry()) return t.skip('docker-registry is not installed (apt-get install docker-registry)');
  const { reg, img, proxy, name } = await setup();
  const dst = makeTempRoot();
  try {
    const [small1, big, small2] = img.layerDigests as [string, string, string];
    const running = hullAsync(dst.root, ['pull', name], { env: { HULL_REGISTRY_RETRIES: '0' } });
    await waitMidDownload(dst.root, [small1, small2]);
    await reg.kill();
    const first = await running;
    assert.equal(first.code, 1, first.stdout);
    assert.match(first.stderr, /layer 2 of .*resume\/img:latest|ECONNRESET|aborted|socket hang up/);
    assert.equal(hull(dst.root, ['image', 'inspect', name]).code, 1, 'no image recorded');
    const blobs = path.join(dst.root, 'blobs', 'sha256');
    assert.ok(fs.existsSync(path.join(blobs, small1.slice(7))) && fs.existsSync(path.join(blobs, small2.slice(7))), 'finished layers kept');
    assert.ok(!fs.existsSync(path.join(blobs, big.slice(7))), 'the interrupted layer is not kept');
    assert.deepEqual(fs.readdirSync(path.join(dst.root, 'tmp')).filter((n) => n.startsWith('pull-')), [], 'no partial files left');

    await reg.restart();
    const before = { s1: blobGets(reg, small1).length, s2: blobGets(reg, small2).length };
    assert.equal(before.s1, 1);
    assert.equal(before.s2, 1);
    // Async: the throttling proxy lives in this process and must keep running.
    const second = await hullAsync(dst.root, ['pull', name]);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, new RegExp(`${small1.slice(7, 19)}: Already exists`));
    assert.match(second.stdout, new RegExp(`${small2.slice(7, 19)}: Already exists`));
    assert.match(second.stdout, new RegExp(`${big.slice(7, 19)}: Pull complete`));
    assert.equal(blobGets(reg, small1).length, 1, 'finished layer 1 not fetched again');
    assert.equal(blobGets(reg, small2).length, 1, 'finished layer 3 not fetched again');
    assert.ok(blobGets(reg, big).some((r) => r.status === 200), 'the big layer fetched by the second pull');
    assert.equal(hull(dst.root, ['image', 'inspect', name]).code, 0);
  } finally {
    await proxy.close();
    await reg.stop();
    dst.cleanup();
  }
});

test('registry killed and restarted during a pull: the same pull continues the layer with a Range request', async (t) => {
  if (!haveRegistry()) return t.skip('docker-registry is not installed');
  const { reg, img, proxy, name } = await setup();
  const dst = makeTempRoot();
  try {
    const [small1, big, small2] = img.layerDigests as [string, string, string];
    const running = hullAsync(dst.root, ['pull', name], { env: { HULL_REGISTRY_RETRIES: '8' } });
    await waitMidDownload(dst.root, [small1, small2]);
    await reg.kill();
    await new Promise((r) => setTimeout(r, 300));
    await reg.restart();
    const r = await running;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Retrying in \d+ second/);
    const gets = blobGets(reg, big);
    assert.ok(gets.some((g) => g.status === 206), `a 206 Partial Content answer for the big layer (saw ${JSON.stringify(gets)})`);
    const file = path.join(dst.root, 'blobs', 'sha256', big.slice(7));
    assert.equal(sha256(fs.readFileSync(file)), big, 'the resumed blob is whole and verified');
    assert.equal(hull(dst.root, ['image', 'inspect', name]).code, 0);
  } finally {
    await proxy.close();
    await reg.stop();
    dst.cleanup();
  }
});

test('Ctrl-C (SIGINT) during a pull: exit 130, no temp files, no image, finished layers kept', async (t) => {
  if (!haveRegistry()) return t.skip('docker-registry is not installed');
  const { reg, img, proxy, name } = await setup();
  const dst = makeTempRoot();
  try {
    const [small1, big, small2] = img.layerDigests as [string, string, string];
    const child = spawn(HULL_BIN, ['--root', dst.root, 'pull', name], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdout.resume();
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    await waitMidDownload(dst.root, [small1, small2]);
    child.kill('SIGINT');
    const code = await exited;
    assert.equal(code, 130, stderr);
    assert.match(stderr, /interrupted: cancelled/);
    assert.deepEqual(fs.readdirSync(path.join(dst.root, 'tmp')), [], 'no temp files or directories left');
    assert.ok(!fs.existsSync(path.join(dst.root, 'blobs', 'sha256', big.slice(7))));
    assert.ok(fs.existsSync(path.join(dst.root, 'blobs', 'sha256', small1.slice(7))), 'a finished layer stays for the next pull');
    assert.equal(hull(dst.root, ['image', 'inspect', name]).code, 1, 'no image recorded');
  } finally {
    await proxy.close();
    await reg.stop();
    dst.cleanup();
  }
});
