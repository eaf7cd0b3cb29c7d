import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseChallenges, repositoryScope } from '../../src/registry/challenge.js';
import { allowsPlainHttp, authKeys, endpointFor, insecureList, normaliseRegistryArg } from '../../src/registry/hosts.js';
import { choosePlatform, hostPlatform, isAttestation, parsePlatform } from '../../src/registry/platform.js';
import { checkRunnableImage, decodeManifest } from '../../src/registry/manifest.js';
import { chunkRanges } from '../../src/registry/upload.js';
import { registryMessage } from '../../src/registry/client.js';
import { MT } from '../../src/oci/media.js';
import type { Descriptor } from '../../src/oci/types.js';

const D = (n: number) => `sha256:${String(n).repeat(64).slice(0, 64)}`;

test('WWW-Authenticate: Bearer with quoted params, Basic, several challenges', () => {
  const [b] = parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"');
  assert.equal(b!.scheme, 'bearer');
  assert.deepEqual(b!.params, { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/alpine:pull' });
  const two = parseChallenges('Basic realm="Registry Realm", Bearer realm="https://x/t",error="insufficient_scope"');
  assert.deepEqual(two.map((c) => c.scheme), ['basic', 'bearer']);
  assert.equal(two[1]!.params.error, 'insufficient_scope');
  const esc = parseChallenges('Bearer realm="a\\"b", service=plain');
  assert.equal(esc[0]!.params.realm, 'a"b');
  assert.equal(esc[0]!.params.service, 'plain');
  assert.deepEqual(parseChallenges(undefined), []);
  assert.equal(repositoryScope('library/alpine', ['pull', 'push']), 'repository:library/alpine:pull,push');
});

test('hosts: Docker Hub maps to registry-1.docker.io; plain http only for loopback and listed registries', () => {
  assert.deepEqual(endpointFor('docker.io', []), { domain: 'docker.io', host: 'registry-1.docker.io', scheme: 'https', base: 'https://registry-1.docker.io' });
  assert.equal(endpointFor('localhost:5000', []).base, 'http://localhost:5000');
  assert.equal(endpointFor('127.0.0.1:5000', []).scheme, 'http');
  assert.equal(endpointFor('reg.example.com:5000', []).scheme, 'https');
  assert.equal(endpointFor('reg.example.com:5000', ['reg.example.com:5000']).scheme, 'http');
  assert.equal(allowsPlainHttp('reg.example.com:5000', ['reg.example.com']), true, 'an entry without a port covers every port');
  assert.equal(allowsPlainHttp('reg.example.com:5000', ['reg.example.com:6000']), false);
  assert.equal(allowsPlainHttp('evil127.0.0.1.example.com', []), false);
  assert.deepEqual(insecureList({ HULL_INSECURE_REGISTRIES: 'a:5000, http://b ' }, ['C']), ['a:5000', 'b', 'c']);
  assert.equal(normaliseRegistryArg(undefined), 'docker.io');
  assert.equal(normaliseRegistryArg('https://index.docker.io/v1/'), 'docker.io');
  assert.equal(normaliseRegistryArg('http://localhost:5000/'), 'localhost:5000');
  assert.throws(() => normaliseRegistryArg('a/b/c'), /invalid registry address/);
  assert.ok(authKeys('docker.io').includes('https://index.docker.io/v1/'));
  assert.throws(() => endpointFor('a b'), /invalid registry/);
});

test('platforms: parse, host default, choice from an index skipping attestations', () => {
  assert.deepEqual(parsePlatform('linux/amd64'), { os: 'linux', architecture: 'amd64' });
  assert.deepEqual(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'arm64' });
  assert.deepEqual(parsePlatform('linux/arm/v7'), { os: 'linux', architecture: 'arm', variant: 'v7' });
  assert.deepEqual(parsePlatform('x86_64'), { os: 'linux', architecture: 'amd64' });
  assert.throws(() => parsePlatform('linux//amd64'), /invalid platform/);
  assert.throws(() => parsePlatform('a/b/c/d'), /invalid platform/);
  assert.deepEqual(hostPlatform('x64'), { os: 'linux', architecture: 'amd64' });
  const idx: Descriptor[] = [
    { mediaType: MT.ociManifest, digest: D(1), size: 1, platform: { os: 'unknown', architecture: 'unknown' } },
    { mediaType: MT.ociManifest, digest: D(2), size: 1, platform: { os: 'linux', architecture: 'arm', variant: 'v6' } },
    { mediaType: MT.ociManifest, digest: D(3), size: 1, platform: { os: 'linux', architecture: 'arm', variant: 'v7' } },
    { mediaType: MT.ociManifest, digest: D(4), size: 1, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
    { mediaType: MT.ociManifest, digest: D(5), size: 1, platform: { os: 'linux', architecture: 'amd64' }, annotations: { 'vnd.docker.reference.type': 'attestation-manifest' } },
    { mediaType: MT.ociManifest, digest: D(6), size: 1, platform: { os: 'linux', architecture: 'amd64' } },
  ];
  assert.equal(isAttestation(idx[0]!), true);
  assert.equal(isAttestation(idx[4]!), true);
  assert.equal(choosePlatform(idx, parsePlatform('linux/amd64')).digest, D(6));
  assert.equal(choosePlatform(idx, parsePlatform('linux/arm/v7')).digest, D(3));
  assert.equal(choosePlatform(idx, parsePlatform('linux/arm64')).digest, D(4));
  assert.throws(() => choosePlatform(idx, parsePlatform('linux/s390x')), (e: Error & { code?: string }) => e.code === 'NOT_FOUND' && /no matching manifest for linux\/s390x/.test(e.message) && /linux\/amd64/.test(e.message));
  assert.throws(() => choosePlatform([idx[0]!, idx[4]!], parsePlatform('linux/amd64')), /no matching manifest/);
});

test('manifests: media type from Content-Type or body, schema 1 refused, descriptors validated', () => {
  const m = { schemaVersion: 2, mediaType: MT.dockerManifest, config: { mediaType: MT.dockerConfig, digest: D(1), size: 10 }, layers: [{ mediaType: MT.dockerLayerGzip, digest: D(2), size: 20 }] };
  const f = decodeManifest(Buffer.from(JSON.stringify(m)), `${MT.dockerManifest}; charset=utf-8`, 'x');
  assert.equal(f.kind, 'manifest');
  assert.equal(f.mediaType, MT.dockerManifest);
  const noType = { ...m, mediaType: undefined };
  assert.equal(decodeManifest(Buffer.from(JSON.stringify(noType)), 'application/json', 'x').mediaType, MT.ociManifest);
  const idx = { schemaVersion: 2, manifests: [{ mediaType: MT.ociManifest, digest: D(3), size: 5, platform: { os: 'linux', architecture: 'amd64' } }] };
  assert.equal(decodeManifest(Buffer.from(JSON.stringify(idx)), MT.ociIndex, 'x').kind, 'index');
  assert.throws(() => decodeManifest(Buffer.from(JSON.stringify(m)), MT.ociIndex, 'x'), /disagrees/);
  assert.throws(() => decodeManifest(Buffer.from('{"schemaVersion":1}'), 'application/vnd.docker.distribution.manifest.v1+prettyjws', 'x'), /schema 1/);
  assert.throws(() => decodeManifest(Buffer.from('nope'), undefined, 'x'), /not valid JSON/);
  const badDigest = { ...m, layers: [{ mediaType: MT.dockerLayerGzip, digest: 'md5:abc', size: 1 }] };
  assert.throws(() => decodeManifest(Buffer.from(JSON.stringify(badDigest)), undefined, 'x'), /layer 1 digest/);
  const badSize = { ...m, config: { ...m.config, size: -1 } };
  assert.throws(() => decodeManifest(Buffer.from(JSON.stringify(badSize)), undefined, 'x'), /config: size -1 is not a byte count/);
  assert.throws(() => decodeManifest(Buffer.alloc(5 * 1024 * 1024, 32), undefined, 'x'), /over the/);
});

test('chunk ranges cover a blob exactly; registry error bodies become messages', () => {
  assert.deepEqual(chunkRanges(10, 4), [[0, 3], [4, 7], [8, 9]]);
  assert.deepEqual(chunkRanges(8, 4), [[0, 3], [4, 7]]);
  assert.deepEqual(chunkRanges(0, 4), []);
  assert.equal(registryMessage(Buffer.from('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}')), 'manifest_unknown: manifest unknown');
  assert.equal(registryMessage(Buffer.from('{"details":"incorrect username or password"}')), 'incorrect username or password');
  assert.equal(registryMessage(Buffer.from('<html> bad   gateway </html>')), '<html> bad gateway </html>');
  assert.equal(registryMessage(Buffer.alloc(0)), '');
});

test('only runnable images are pulled: artifacts and unknown layer types are refused up front', () => {
  const ok = { schemaVersion: 2 as const, config: { mediaType: MT.ociConfig, digest: D(1), size: 1 }, layers: [{ mediaType: MT.ociLayerGzip, digest: D(2), size: 1 }, { mediaType: MT.dockerLayer, digest: D(3), size: 1 }] };
  checkRunnableImage(ok, 'x');
  assert.throws(() => checkRunnableImage({ ...ok, config: { ...ok.config, mediaType: 'application/vnd.cncf.helm.config.v1+json' } }, 'chart'), /chart is not a container image: its config has media type application\/vnd.cncf.helm.config.v1\+json/);
  assert.throws(() => checkRunnableImage({ ...ok, layers: [{ mediaType: 'application/octet-stream', digest: D(2), size: 1 }] }, 'x'), /layer 1 has unsupported media type application\/octet-stream/);
});
