/**
 * `hull push` / `hull pull` / `hull login` / `hull logout` as a user runs them, against
 * Debian's real docker-registry: the offline busybox round trip, a multi-platform index,
 * Basic auth, a corrupted blob, two pulls of the same image at once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ContentStore } from '../../src/content/store.js';
import { sha256 } from '../../src/oci/digest.js';
import { hull, hullAsync, importBusybox, makeTempRoot } from '../helpers/hull.js';
import { buildTestImage, haveRegistry, startRegistry } from '../helpers/registry.js';

const have = haveRegistry();
const noAuthEnv = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-auth-'));
  return { env: { HULL_AUTH_FILE: path.join(dir, 'auth.json'), DOCKER_CONFIG: path.join(dir, 'docker') }, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
};

/**
 * What most tests here start from: a registry, a source root `a`, a fresh root `b`, an empty
 * auth store, and (with `push`) busybox pushed from `a` as REG/<push>. `close()` removes it all.
 */
async function fixture(push?: string) {
  const reg = await startRegistry();
  const a = makeTempRoot();
  const b = makeTempRoot();
  const auth = noAuthEnv();
  const close = async () => {
    await reg.stop();
    a.cleanup();
    b.cleanup();
    auth.cleanup();
  };
  const name = `${reg.host}/${push ?? 'unused'}`;
  if (push) {
    try {
      importBusybox(a.root);
      assert.equal(hull(a.root, ['tag', 'busybox', name]).code, 0);
      const p = hull(a.root, ['push', '-q', name], { env: auth.env });
      assert.equal(p.code, 0, p.stderr);
    } catch (e) {
      await close();
      throw e;
    }
  }
  return { reg, a, b, auth, name, close };
}

function inspect(root: string, ref: string): { Id: string; RepoDigests: string[]; Architecture: string } {
  const r = hull(root, ['image', 'inspect', ref]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout)[0];
}

test('push the offline busybox, pull it into a fresh root: same image id and digest', async (t) => {
  if (!have) return t.skip('docker-registry is not installed (apt-get install docker-registry)');
  const reg = await startRegistry();
  const a = makeTempRoot();
  const b = makeTempRoot();
  const auth = noAuthEnv();
  try {
    importBusybox(a.root);
    const name = `${reg.host}/hull/busybox:1`;
    assert.equal(hull(a.root, ['tag', 'busybox', name]).code, 0);
    const p = hull(a.root, ['push', name], { env: auth.env });
    assert.equal(p.code, 0, p.stderr);
    assert.match(p.stdout, new RegExp(`The push refers to repository \\[${reg.host}/hull/busybox\\]`));
    const pushedDigest = /1: digest: (sha256:[0-9a-f]{64}) size: \d+/.exec(p.stdout)?.[1];
    assert.ok(pushedDigest, p.stdout);
    assert.ok(inspect(a.root, name).RepoDigests.includes(`${reg.host}/hull/busybox@${pushedDigest}`));

    const q = hull(b.root, ['pull', name], { env: auth.env });
    assert.equal(q.code, 0, q.stderr);
    assert.match(q.stdout, /1: Pulling from hull\/busybox/);
    assert.match(q.stdout, new RegExp(`Digest: ${pushedDigest}`));
    assert.match(q.stdout, new RegExp(`Status: Downloaded newer image for ${reg.host}/hull/busybox:1`));
    assert.equal(q.stdout.trim().split('\n').pop(), name);
    const ia = inspect(a.root, 'busybox');
    const ib = inspect(b.root, name);
    assert.equal(ib.Id, ia.Id, 'same image id (config digest)');
    assert.ok(ib.RepoDigests.includes(`${reg.host}/hull/busybox@${pushedDigest}`));
    // The pulled image runs? Not here (the container wall has its own tests); its files are there:
    assert.equal(hull(b.root, ['image', 'inspect', `${reg.host}/hull/busybox@${pushedDigest}`]).code, 0, 'resolvable by repo digest');

    const again = hull(b.root, ['pull', name], { env: auth.env });
    assert.equal(again.code, 0);
    assert.match(again.stdout, /Status: Image is up to date for/);
    const quiet = hull(b.root, ['pull', '-q', name], { env: auth.env });
    assert.equal(quiet.stdout, `${name}\n`);

    // Pull by digest into a third root.
    const c = makeTempRoot();
    const byDigest = hull(c.root, ['pull', `${reg.host}/hull/busybox@${pushedDigest}`], { env: auth.env });
    assert.equal(byDigest.code, 0, byDigest.stderr);
    assert.equal(inspect(c.root, `${reg.host}/hull/busybox@${pushedDigest}`).Id, ia.Id);
    c.cleanup();

    const missing = hull(b.root, ['pull', `${reg.host}/hull/nothing:here`], { env: auth.env });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /manifest for .*nothing:here not found/);
    const notLocal = hull(b.root, ['push', `${reg.host}/never/tagged`], { env: auth.env });
    assert.notEqual(notLocal.code, 0);
    assert.match(notLocal.stderr, /An image does not exist locally with the tag/);
  } finally {
    await reg.stop();
    a.cleanup();
    b.cleanup();
    auth.cleanup();
  }
});

/** Write an OCI image layout (index.json + blobs) holding `index` and the blobs of `cs`. */
function writeLayout(dir: string, cs: ContentStore, index: object): void {
  fs.mkdirSync(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  for (const d of cs.list()) fs.copyFileSync(cs.path(d), path.join(dir, 'blobs', 'sha256', d.slice(7)));
  fs.writeFileSync(path.join(dir, 'index.json'), JSON.stringify(index));
}

test('a multi-platform index (with an attestation entry) resolves to linux/amd64, or the --platform asked for', async (t) => {
  if (!have) return t.skip('docker-registry is not installed');
  if (spawnSync('skopeo', ['--version']).status !== 0) return t.skip('skopeo is not installed (it pushes the test index)');
  const reg = await startRegistry();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-multi-'));
  const r1 = makeTempRoot();
  const r2 = makeTempRoot();
  const auth = noAuthEnv();
  try {
    const cs = new ContentStore(path.join(work, 'cs', 'blobs'), path.join(work, 'cs', 'tmp'));
    const amd = await buildTestImage(cs, { layers: [{ files: { 'arch.txt': 'amd64\n' } }], architecture: 'amd64' });
    const arm = await buildTestImage(cs, { layers: [{ files: { 'arch.txt': 'arm64\n' } }], architecture: 'arm64', variant: 'v8' });
    const att = await buildTestImage(cs, { layers: [{ files: { 'sbom.json': '{}' } }], architecture: 'unknown', os: 'unknown' });
    const m = 'application/vnd.oci.image.manifest.v1+json';
    const index = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        { mediaType: m, digest: arm.manifestDigest, size: arm.manifestSize, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
        { mediaType: m, digest: att.manifestDigest, size: att.manifestSize, platform: { os: 'unknown', architecture: 'unknown' }, annotations: { 'vnd.docker.reference.type': 'attestation-manifest', 'vnd.docker.reference.digest': amd.manifestDigest } },
        { mediaType: m, digest: amd.manifestDigest, size: amd.manifestSize, platform: { os: 'linux', architecture: 'amd64' } },
      ],
    };
    const indexBuf = Buffer.from(JSON.stringify(index));
    const layout = path.join(work, 'layout');
    // skopeo reads the index from index.json's single entry pointing at our index blob.
    const idx = cs.putBuffer(indexBuf);
    writeLayout(layout, cs, { schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.index.v1+json', digest: idx.digest, size: idx.size, annotations: { 'org.opencontainers.image.ref.name': 'multi' } }] });
    const sk = spawnSync('skopeo', ['copy', '--all', '--preserve-digests', '--dest-tls-verify=false', `oci:${layout}:multi`, `docker://${reg.host}/multi/app:latest`], { encoding: 'utf8' });
    assert.equal(sk.status, 0, sk.stderr);

    const p = hull(r1.root, ['pull', `${reg.host}/multi/app`], { env: auth.env });
    assert.equal(p.code, 0, p.stderr);
    assert.match(p.stdout, /Using default tag: latest/);
    assert.match(p.stdout, new RegExp(`Digest: ${idx.digest}`), 'docker prints the index digest');
    const img = inspect(r1.root, `${reg.host}/multi/app`);
    assert.equal(img.Id, amd.configDigest);
    assert.equal(img.Architecture, 'amd64');
    assert.ok(img.RepoDigests.includes(`${reg.host}/multi/app@${idx.digest}`));

    const q = hull(r2.root, ['pull', '--platform', 'linux/arm64', `${reg.host}/multi/app`], { env: auth.env });
    assert.equal(q.code, 0, q.stderr);
    assert.equal(inspect(r2.root, `${reg.host}/multi/app`).Id, arm.configDigest);
    const none = hull(r2.root, ['pull', '--platform', 'linux/s390x', `${reg.host}/multi/app`], { env: auth.env });
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no matching manifest for linux\/s390x in the manifest list entries/);
    const bad = hull(r2.root, ['pull', '--platform', 'linux//x', `${reg.host}/multi/app`], { env: auth.env });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /invalid platform/);
    assert.ok(!fs.existsSync(path.join(r1.root, 'blobs', 'sha256', att.layerDigests[0]!.slice(7))), 'the attestation was not fetched');
  } finally {
    await reg.stop();
    fs.rmSync(work, { recursive: true, force: true });
    r1.cleanup();
    r2.cleanup();
    auth.cleanup();
  }
});

test('hull login / logout with Basic auth: refused without or with wrong credentials, stored 0600', async (t) => {
  if (!have) return t.skip('docker-registry is not installed');
  const reg = await startRegistry({ basic: { user: 'carol', password: 'open sesame' } });
  const a = makeTempRoot();
  const b = makeTempRoot();
  const auth = noAuthEnv();
  try {
    importBusybox(a.root);
    const name = `${reg.host}/private/bb:latest`;
    hull(a.root, ['tag', 'busybox', name]);
    const anon = hull(a.root, ['push', name], { env: auth.env });
    assert.equal(anon.code, 1);
    assert.match(anon.stderr, /authentication required/);
    assert.match(anon.stderr, new RegExp(`hint: run 'hull login ${reg.host.replace(/\./g, '\\.')}'`));
    const wrong = hull(a.root, ['login', '-u', 'carol', '--password-stdin', reg.host], { env: auth.env, input: 'wrong\n' });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /incorrect username or password/);
    assert.ok(!fs.existsSync(auth.env.HULL_AUTH_FILE), 'nothing stored after a failed login');
    const nontty = hull(a.root, ['login', reg.host], { env: auth.env, input: '' });
    assert.notEqual(nontty.code, 0);
    assert.match(nontty.stderr, /Cannot perform an interactive login from a non TTY device/);
    const ok = hull(a.root, ['login', '-u', 'carol', '--password-stdin', reg.host], { env: auth.env, input: 'open sesame\n' });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /Login Succeeded/);
    assert.equal(fs.statSync(auth.env.HULL_AUTH_FILE).mode & 0o777, 0o600);
    assert.equal(hull(a.root, ['push', name], { env: auth.env }).code, 0);
    const pulled = hull(b.root, ['pull', name], { env: auth.env });
    assert.equal(pulled.code, 0, pulled.stderr);
    const out = hull(a.root, ['logout', reg.host], { env: auth.env });
    assert.match(out.stdout, new RegExp(`Removing login credentials for ${reg.host.replace(/\./g, '\\.')}`));
    const fresh = makeTempRoot();
    const after = hull(fresh.root, ['pull', name], { env: auth.env });
    fresh.cleanup();
    assert.equal(after.code, 1);
    assert.match(after.stderr, /authentication required/);
    // A docker user's existing ~/.docker/config.json is honoured.
    fs.mkdirSync(auth.env.DOCKER_CONFIG, { recursive: true });
    fs.writeFileSync(path.join(auth.env.DOCKER_CONFIG, 'config.json'), JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from('carol:open sesame').toString('base64') } } }), { mode: 0o600 });
    const c = makeTempRoot();
    const viaDocker = hull(c.root, ['pull', name], { env: auth.env });
    assert.equal(viaDocker.code, 0, viaDocker.stderr);
    c.cleanup();
    // ... and so is a docker credential helper named in credHelpers (docker's helper protocol:
    // `docker-credential-NAME get` reads the server on stdin, prints {Username, Secret}).
    const bin = path.join(path.dirname(auth.env.HULL_AUTH_FILE), 'bin');
    fs.mkdirSync(bin);
    const asked = path.join(bin, 'asked');
    fs.writeFileSync(
      path.join(bin, 'docker-credential-hulltest'),
      `#!/bin/sh\n[ "$1" = get ] || exit 1\ncat > ${asked}\nprintf '{"ServerURL":"%s","Username":"carol","Secret":"open sesame"}' "$(cat ${asked})"\n`,
      { mode: 0o755 },
    );
    fs.writeFileSync(path.join(auth.env.DOCKER_CONFIG, 'config.json'), JSON.stringify({ credHelpers: { [reg.host]: 'hulltest' } }), { mode: 0o600 });
    const d = makeTempRoot();
    const viaHelper = hull(d.root, ['pull', name], { env: { ...auth.env, PATH: `${bin}:${process.env.PATH}` } });
    assert.equal(viaHelper.code, 0, viaHelper.stderr);
    assert.equal(fs.readFileSync(asked, 'utf8'), reg.host, 'the helper was asked for this registry');
    d.cleanup();
  } finally {
    await reg.stop();
    a.cleanup();
    b.cleanup();
    auth.cleanup();
  }
});

test('a blob corrupted in the registry storage: the pull fails naming it, and nothing is kept', async (t) => {
  if (!have) return t.skip('docker-registry is not installed');
  const { reg, b, auth, name, close } = await fixture('corrupt/bb:latest');
  try {
    // Find the layer blob: the biggest blob file in the registry's storage.
    const blobsDir = path.join(reg.storage, 'docker', 'registry', 'v2', 'blobs', 'sha256');
    const files = fs.readdirSync(blobsDir).flatMap((p) => fs.readdirSync(path.join(blobsDir, p)).map((h) => path.join(blobsDir, p, h, 'data')));
    const victim = files.sort((x, y) => fs.statSync(y).size - fs.statSync(x).size)[0]!;
    const digest = `sha256:${path.basename(path.dirname(victim))}`;
    const buf = fs.readFileSync(victim);
    buf[buf.length >> 1] = buf[buf.length >> 1]! ^ 0x5a;
    fs.writeFileSync(victim, buf);
    assert.notEqual(sha256(buf), digest);
    const r = hull(b.root, ['pull', name], { env: auth.env });
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`digest mismatch: content hashes to sha256:[0-9a-f]{64}, expected ${digest}`));
    assert.ok(!fs.existsSync(path.join(b.root, 'blobs', 'sha256', digest.slice(7))), 'corrupt blob not kept');
    assert.deepEqual(fs.readdirSync(path.join(b.root, 'tmp')), [], 'no temp files');
    assert.equal(hull(b.root, ['image', 'inspect', name]).code, 1, 'no image recorded');
  } finally {
    await close();
  }
});

test('two hull processes pull the same image at once: both succeed, one image, intact blobs', async (t) => {
  if (!have) return t.skip('docker-registry is not installed');
  const { reg, a, b, auth, close } = await fixture();
  try {
    const cs = new ContentStore(path.join(a.root, 'blobs'), path.join(a.root, 'tmp'));
    const img = await buildTestImage(cs, { layers: [{ randomBytes: 24 * 1024 * 1024 }, { randomBytes: 8 * 1024 * 1024 }, { files: { 'etc/x': 'x' } }] });
    const { RegistryClient } = await import('../../src/registry/client.js');
    const { pushImage } = await import('../../src/registry/push-image.js');
    await pushImage(new RegistryClient({ domain: reg.host, credentials: null }), 'twice/img', 'latest', cs, img.manifestDigest as `sha256:${string}`);
    const name = `${reg.host}/twice/img:latest`;
    const [r1, r2] = await Promise.all([hullAsync(b.root, ['pull', name], { env: auth.env }), hullAsync(b.root, ['pull', name], { env: auth.env })]);
    assert.equal(r1.code, 0, r1.stderr);
    assert.equal(r2.code, 0, r2.stderr);
    const ls = hull(b.root, ['images', '--format', '{{.ID}}']);
    assert.equal(ls.stdout.trim().split('\n').filter(Boolean).length, 1, ls.stdout);
    assert.equal(inspect(b.root, name).Id, img.configDigest);
    for (const d of [img.manifestDigest, img.configDigest, ...img.layerDigests]) {
      const f = path.join(b.root, 'blobs', 'sha256', d.slice(7));
      assert.equal(sha256(fs.readFileSync(f)), d, `blob ${d} intact`);
    }
    assert.deepEqual(fs.readdirSync(path.join(b.root, 'tmp')).filter((n) => n.startsWith('pull-')), [], 'no temp files');
  } finally {
    await close();
  }
});

test('hull run pulls a missing image first, like docker', async (t) => {
  if (!have) return t.skip('docker-registry is not installed');
  if (spawnSync('sh', ['-c', 'command -v crun || command -v runc']).status !== 0) return t.skip('no OCI runtime (crun or runc) installed');
  const { a, b, auth, name, close } = await fixture('run/bb:1');
  try {
    const r = hull(b.root, ['run', '--rm', name, 'echo', 'hello from the registry'], { env: auth.env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hello from the registry\n');
    assert.match(r.stderr, new RegExp(`Unable to find image '${name.replace(/\./g, '\\.')}' locally`));
    assert.match(r.stderr, /Status: Downloaded newer image for/);
    assert.equal(inspect(b.root, name).Id, inspect(a.root, 'busybox').Id);
  } finally {
    await close();
  }
});

/** Assert that nothing of the broken test image is left in `root` and nothing runs from it. */
function assertNoneKept(root: string, name: string, img: { manifestDigest: string; layerDigests: string[] }): void {
  const blobs = path.join(root, 'blobs', 'sha256');
  assert.ok(!fs.existsSync(path.join(blobs, img.manifestDigest.slice(7))), 'manifest not kept');
  assert.ok(!fs.existsSync(path.join(blobs, img.layerDigests[1]!.slice(7))), 'the bad layer not kept');
  assert.deepEqual(fs.readdirSync(path.join(root, 'tmp')), [], 'no temp files');
  const layers = path.join(root, 'layers');
  assert.deepEqual(fs.existsSync(layers) ? fs.readdirSync(layers) : [], [], 'no layer directory (not even of the good layer)');
  assert.equal(hull(root, ['image', 'inspect', name]).code, 1, 'no image recorded');
  assert.equal(hull(root, ['images', '-q']).stdout.trim(), '', 'no image listed');
}

test('a layer that does not unpack to the diff id its config names: no run, and none of the image is kept', async (t) => {
  if (!have) return t.skip('docker-registry is not installed');
  const reg = await startRegistry();
  const a = makeTempRoot();
  const b = makeTempRoot();
  const c = makeTempRoot();
  try {
    const cs = new ContentStore(path.join(a.root, 'blobs'), path.join(a.root, 'tmp'));
    const img = await buildTestImage(cs, { layers: [{ files: { good: 'g' } }, { files: { bad: 'b' } }], badDiffId: 1 });
    const { RegistryClient } = await import('../../src/registry/client.js');
    const { pushImage } = await import('../../src/registry/push-image.js');
    await pushImage(new RegistryClient({ domain: reg.host, credentials: null }), 'broken/img', 'latest', cs, img.manifestDigest as `sha256:${string}`);
    const name = `${reg.host}/broken/img:latest`;

    // Unpacking at pull (--unpack, or HULL_PULL_UNPACK=1): the pull itself fails.
    const r = hull(b.root, ['pull', '--unpack', name]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /diff id mismatch/);
    assertNoneKept(b.root, name, img);
    const e = hull(b.root, ['pull', name], { env: { HULL_PULL_UNPACK: '1' } });
    assert.equal(e.code, 1);
    assert.match(e.stderr, /diff id mismatch/);
    assertNoneKept(b.root, name, img);

    // Deferred (the default): the blobs verify, so the pull records the image, not unpacked yet;
    // its first use checks the diff ids, fails, and removes the image.
    const p = hull(c.root, ['pull', name]);
    assert.equal(p.code, 0, p.stderr);
    const rec = JSON.parse(hull(c.root, ['image', 'inspect', name]).stdout)[0] as { GraphDriver: { Data: { LowerDir?: string } } };
    assert.equal(rec.GraphDriver.Data.LowerDir, undefined, 'no layer unpacked by the pull');
    const run = hull(c.root, ['run', '--rm', name, 'true']);
    assert.notEqual(run.code, 0);
    assert.match(run.stderr, /layer 2\/2 .*diff id mismatch: uncompressed layer hashes to sha256:[0-9a-f]{64}, the config says sha256:0{64}; image .*broken\/img:latest cannot run and was removed/);
    assertNoneKept(c.root, name, img);
    const again = hull(c.root, ['run', '--rm', name, 'true']);
    assert.notEqual(again.code, 0, 'a second run pulls it again and fails again');
    assert.match(again.stderr, /diff id mismatch/);
    assertNoneKept(c.root, name, img);
  } finally {
    await reg.stop();
    a.cleanup();
    b.cleanup();
    c.cleanup();
  }
});

test('two hull run of a freshly pulled (not yet unpacked) image at once: both run, each layer unpacked once', async (t) => {
  if (!have) return t.skip('docker-registry is not installed');
  if (spawnSync('sh', ['-c', 'command -v crun || command -v runc']).status !== 0) return t.skip('no OCI runtime (crun or runc) installed');
  const { b, auth, name, close } = await fixture('race/bb:1');
  try {
    assert.equal(hull(b.root, ['pull', '-q', name], { env: auth.env }).code, 0);
    const layersDir = path.join(b.root, 'layers');
    assert.deepEqual(fs.existsSync(layersDir) ? fs.readdirSync(layersDir) : [], [], 'the pull unpacked nothing');
    const [r1, r2] = await Promise.all([
      hullAsync(b.root, ['run', '--rm', name, 'sh', '-c', 'echo one; test -x /bin/busybox']),
      hullAsync(b.root, ['run', '--rm', name, 'sh', '-c', 'echo two; test -x /bin/busybox']),
    ]);
    assert.equal(r1.code, 0, r1.stderr);
    assert.equal(r2.code, 0, r2.stderr);
    assert.equal(r1.stdout, 'one\n');
    assert.equal(r2.stdout, 'two\n');
    const want = (JSON.parse(hull(b.root, ['image', 'inspect', name]).stdout)[0] as { RootFS: { Layers: string[] } }).RootFS.Layers.map((d) => d.slice(7));
    assert.deepEqual(fs.readdirSync(layersDir).sort(), [...new Set(want)].sort(), 'one directory per diff id');
    assert.deepEqual(fs.readdirSync(path.join(b.root, 'tmp')).filter((n) => n.startsWith('layer-')), [], 'the losing copies are removed');
    const lower = (JSON.parse(hull(b.root, ['image', 'inspect', name]).stdout)[0] as { GraphDriver: { Data: { LowerDir?: string } } }).GraphDriver.Data.LowerDir;
    assert.equal(lower?.split(':').length, want.length, 'every layer recorded as unpacked');
    const third = hull(b.root, ['run', '--rm', name, 'true']);
    assert.equal(third.code, 0, third.stderr);
  } finally {
    await close();
  }
});
