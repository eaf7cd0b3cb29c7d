import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyChange, splitWords } from '../../src/images/change.js';
import { importConfig } from '../../src/images/import.js';
import { parseImageConfig, parseManifest, parseManifestOrIndex } from '../../src/images/manifest.js';
import { parseDockerManifest } from '../../src/images/load.js';
import { imageRows, inspectImage, splitTag } from '../../src/images/inspect.js';
import { buildIndexes } from '../../src/images/save.js';
import { parseReference } from '../../src/images/reference.js';
import { sha256 } from '../../src/oci/digest.js';
import type { ImageRunConfig } from '../../src/oci/types.js';
import type { ImageRecord } from '../../src/images/store.js';

test('--change: exec and shell forms, ENV, LABEL, WORKDIR, EXPOSE, VOLUME, USER, STOPSIGNAL', () => {
  const c: ImageRunConfig = {};
  applyChange(c, 'CMD ["sh"]');
  assert.deepEqual(c.Cmd, ['sh']);
  applyChange(c, 'cmd echo "a b"');
  assert.deepEqual(c.Cmd, ['/bin/sh', '-c', 'echo "a b"']);
  applyChange(c, 'ENTRYPOINT ["/init", "--x"]');
  assert.deepEqual(c.Entrypoint, ['/init', '--x']);
  applyChange(c, 'ENV A=1 B="two words" C=x\\ y');
  applyChange(c, 'ENV A=3');
  applyChange(c, 'ENV LEGACY some value');
  assert.deepEqual(c.Env, ['A=3', 'B=two words', 'C=x y', 'LEGACY=some value']);
  applyChange(c, 'LABEL org.opencontainers.image.source="debian:busybox-static 1:1.35" x=y');
  assert.deepEqual(c.Labels, { 'org.opencontainers.image.source': 'debian:busybox-static 1:1.35', x: 'y' });
  applyChange(c, 'WORKDIR /srv');
  applyChange(c, 'WORKDIR app');
  assert.equal(c.WorkingDir, '/srv/app');
  applyChange(c, 'EXPOSE 80 53/udp 8000-8001');
  assert.deepEqual(Object.keys(c.ExposedPorts!).sort(), ['53/udp', '80/tcp', '8000/tcp', '8001/tcp']);
  applyChange(c, 'VOLUME ["/data", "/logs"]');
  applyChange(c, 'VOLUME /cache');
  assert.deepEqual(Object.keys(c.Volumes!).sort(), ['/cache', '/data', '/logs']);
  applyChange(c, 'USER 1000:1000');
  assert.equal(c.User, '1000:1000');
  applyChange(c, 'STOPSIGNAL SIGTERM');
  assert.equal(c.StopSignal, 'SIGTERM');
});

test('--change refuses what Docker refuses, naming the change', () => {
  assert.throws(() => applyChange({}, 'RUN rm -rf /'), /--change "RUN rm -rf \/": RUN is not supported/);
  assert.throws(() => applyChange({}, 'LABEL novalue'), /"novalue" is not KEY=VALUE/);
  assert.throws(() => applyChange({}, 'EXPOSE 99999'), /invalid port range/);
  assert.throws(() => applyChange({}, 'ENV A="unterminated'), /unterminated " quote/);
  assert.throws(() => applyChange({}, '["x"]'), /expected a Dockerfile instruction/);
  assert.throws(() => applyChange({}, 'USER'), /USER needs a user/);
  assert.deepEqual(splitWords(`a 'b c' "d \\" e"`, 'x'), ['a', 'b c', 'd " e']);
});

test('importConfig is deterministic for the same inputs', () => {
  const d = sha256('layer');
  const a = importConfig(d, { created: new Date(1_700_000_000_000), changes: ['CMD ["sh"]'], comment: 'Imported from x.tar', architecture: 'amd64' });
  const b = importConfig(d, { created: new Date(1_700_000_000_000), changes: ['CMD ["sh"]'], comment: 'Imported from x.tar', architecture: 'amd64' });
  assert.equal(JSON.stringify(a), JSON.stringify(b));
  assert.equal(a.created, '2023-11-14T22:13:20Z');
  assert.deepEqual(a.rootfs, { type: 'layers', diff_ids: [d] });
  assert.deepEqual(a.history, [{ created: '2023-11-14T22:13:20Z', comment: 'Imported from x.tar' }]);
});

test('manifest, index and config parsing name the bad field', () => {
  assert.throws(() => parseManifest('{', 'manifest M'), /manifest M does not parse as JSON/);
  assert.throws(() => parseManifest('{"schemaVersion":1}', 'manifest M'), /schemaVersion 1 is not supported/);
  assert.throws(
    () => parseManifest(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'x', digest: 'sha256:zz', size: 1 }, layers: [] }), 'manifest M'),
    /manifest M\.config\.digest: "sha256:zz" is not a sha256 digest/,
  );
  const good = { mediaType: 'x', digest: sha256('c'), size: 1 };
  assert.throws(
    () => parseManifest(JSON.stringify({ schemaVersion: 2, config: good, layers: [{ ...good, size: -1 }] }), 'manifest M'),
    /manifest M\.layers\[0\]\.size: -1 is not a byte count/,
  );
  const idx = parseManifestOrIndex(JSON.stringify({ schemaVersion: 2, manifests: [good] }), 'index I');
  assert.equal(idx.kind, 'index');
  assert.throws(() => parseImageConfig('{"architecture":"amd64","os":"linux"}', 'config C'), /config C\.rootfs: missing/);
  assert.throws(
    () => parseImageConfig('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["nope"]}}', 'config C'),
    /config C\.rootfs\.diff_ids\[0\]: "nope" is not a sha256 digest/,
  );
  assert.throws(
    () => parseImageConfig(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, config: { Cmd: 'sh' } }), 'config C'),
    /config C\.config\.Cmd: not a list of strings/,
  );
  assert.throws(() => parseDockerManifest(Buffer.from('[{"Config":"c.json","Layers":[1]}]'), 'manifest.json'), /manifest\.json\[0\]\.Layers: missing or not a list of paths/);
  assert.throws(() => parseDockerManifest(Buffer.from('[{"Config":"c.json","Layers":[],"RepoTags":["Bad Tag"]}]'), 'manifest.json'), /RepoTags: "Bad Tag" is not a valid tag/);
});

function fakeImage(): ImageRecord {
  const id = sha256('config');
  return {
    id,
    manifestDigest: sha256('manifest'),
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: {
      architecture: 'amd64',
      os: 'linux',
      created: '2024-01-02T03:04:05Z',
      config: { Cmd: ['sh'], Labels: { a: 'b' } },
      rootfs: { type: 'layers', diff_ids: [sha256('l1'), sha256('l2')] },
      history: [{ comment: 'Imported from x' }],
    },
    layers: [
      { diffId: sha256('l1'), blobDigest: sha256('b1'), mediaType: 'application/vnd.oci.image.layer.v1.tar', blobSize: 10 },
      { diffId: sha256('l2'), blobDigest: sha256('b2'), mediaType: 'application/vnd.oci.image.layer.v1.tar', blobSize: 20 },
    ],
    tags: ['busybox:latest', 'localhost:5000/app:v1'],
    repoDigests: ['localhost:5000/app@' + sha256('manifest')],
    size: 1234,
    created: '2024-01-02T03:04:05Z',
  };
}

test('inspect output is docker-shaped', () => {
  const img = fakeImage();
  const i = inspectImage(img, { layerDirs: ['/l/1', '/l/2'] });
  assert.equal(i.Id, img.id);
  assert.deepEqual(i.RepoTags, img.tags);
  assert.equal(i.Created, '2024-01-02T03:04:05Z');
  assert.deepEqual(i.Config.Cmd, ['sh']);
  assert.equal(i.Config.Entrypoint, null);
  assert.deepEqual(i.RootFS, { Type: 'layers', Layers: [sha256('l1'), sha256('l2')] });
  assert.equal(i.GraphDriver.Data.LowerDir, '/l/2:/l/1');
  assert.equal(i.Comment, 'Imported from x');
  assert.equal(i.Size, 1234);
  const rows = imageRows(img);
  assert.deepEqual(rows.map((r) => [r.Repository, r.Tag, r.Digest]), [
    ['busybox', 'latest', '<none>'],
    ['localhost:5000/app', 'v1', sha256('manifest')],
  ]);
  assert.deepEqual(imageRows({ ...img, tags: [], repoDigests: [] }).map((r) => [r.Repository, r.Tag]), [['<none>', '<none>']]);
  assert.deepEqual(splitTag('localhost:5000/app'), { repository: 'localhost:5000/app', tag: 'latest' });
});

test('save builds an OCI index with names and a docker manifest.json', () => {
  const img = fakeImage();
  const { index, dockerManifest } = buildIndexes([{ image: img, names: [parseReference('busybox:latest')] }, { image: { ...img, id: sha256('c2') }, names: [] }]);
  assert.equal(index.manifests.length, 2);
  assert.deepEqual(index.manifests[0]!.annotations, {
    'io.containerd.image.name': 'docker.io/library/busybox:latest',
    'org.opencontainers.image.ref.name': 'latest',
  });
  assert.equal(index.manifests[1]!.annotations, undefined);
  assert.deepEqual(dockerManifest[0], {
    Config: `blobs/sha256/${img.id.slice(7)}`,
    RepoTags: ['busybox:latest'],
    Layers: [`blobs/sha256/${sha256('b1').slice(7)}`, `blobs/sha256/${sha256('b2').slice(7)}`],
  });
  assert.equal((dockerManifest[1] as { RepoTags: unknown }).RepoTags, null);
});
