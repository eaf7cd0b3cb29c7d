import { test } from 'node:test';
import assert from 'node:assert/strict';
import { familiarString, formatReference, parseReference } from '../../src/images/reference.js';

const D = 'sha256:' + 'a'.repeat(64);

test('short names normalise like docker', () => {
  assert.equal(formatReference(parseReference('busybox')), 'docker.io/library/busybox:latest');
  assert.equal(formatReference(parseReference('user/app:1.0')), 'docker.io/user/app:1.0');
  assert.equal(formatReference(parseReference('index.docker.io/library/alpine:3.20')), 'docker.io/library/alpine:3.20');
  assert.equal(familiarString(parseReference('docker.io/library/busybox')), 'busybox:latest');
});

test('registries with ports, localhost and digests', () => {
  const r = parseReference(`localhost:5000/ns/app@${D}`);
  assert.deepEqual(r, { domain: 'localhost:5000', path: 'ns/app', tag: undefined, digest: D });
  assert.equal(parseReference('127.0.0.1:5000/app:v1').domain, '127.0.0.1:5000');
  assert.equal(parseReference('localhost/app').domain, 'localhost');
  const both = parseReference(`busybox:1@${D}`);
  assert.equal(both.tag, '1');
  assert.equal(both.digest, D);
});

test('bad references are refused with the reason', () => {
  assert.throws(() => parseReference(''), /empty/);
  assert.throws(() => parseReference('Busybox'), /lowercase/);
  assert.throws(() => parseReference('a'.repeat(64)), /64-byte hexadecimal/);
  assert.throws(() => parseReference('busybox:bad tag'), /invalid tag/);
  assert.throws(() => parseReference('busybox@sha256:abc'), /not a valid sha256 digest/);
  assert.throws(() => parseReference('busybox@sha512:' + 'a'.repeat(128)), /only sha256/);
  assert.throws(() => parseReference('a//b'), /bad path component/);
});
