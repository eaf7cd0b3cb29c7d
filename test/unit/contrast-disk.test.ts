import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ddFigures, describeMount, diskScript, fioArgs, hostMountOf, parseDisk, parseFio } from '../../src/contrast/scenario-disk.js';

const O = { seqMiB: 4, smallBlocks: 64, rounds: 1 };

test('parseDisk: samples, failures with dd\'s message, the file system of each target', () => {
  const out = [
    'M|root|overlay / overlay rw,relatime,lowerdir=/l,upperdir=/u,fsync=volatile 0 0',
    'D|root|seq-write|direct|1.00|1.25|0',
    'D|root|seq-read|direct|2.00|2.10|0',
    'D|root|small-write|direct|3.00|3.00|0',
    'D|root|small-read|direct|4.00|4.50|1',
    'E|root|small-read|dd: /tmp/x: Input/output error',
    'M|volume|v0 /vol 9p rw,sync,dirsync,trans=virtio 0 0',
    'D|volume|seq-write|buffered|5|6|0',
  ].join('\n');
  const p = parseDisk(out);
  assert.equal(p.samples.length, 5);
  assert.deepEqual(p.fs, { root: 'overlay (fsync=volatile)', volume: '9p (sync,trans=virtio)' });
  const f = ddFigures(p.samples.filter((s) => s.target === 'root'), O);
  const by = (t: string) => f.find((x) => x.test === t)!;
  assert.equal(by('seq-write').mibPerSec, 4 / 0.25);
  assert.equal(by('seq-read').mibPerSec, 40);
  assert.equal(by('seq-read').iops, 40);
  assert.equal(by('small-write').mibPerSec, null);
  assert.match(by('small-write').error!, /resolution/);
  assert.match(by('small-read').error!, /1 of 1 runs failed: dd: \/tmp\/x: Input\/output error/);
  assert.equal(describeMount('garbage'), 'unknown');
  assert.match(hostMountOf(os.tmpdir()), /^\w+/);
});

test('the dd script on the host busybox measures a directory and cleans up after itself', (t) => {
  if (!fs.existsSync('/bin/busybox')) return t.skip('busybox-static is not installed');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hullct-dd-'));
  try {
    const r = spawnSync('/bin/busybox', ['sh', '-c', diskScript(O, [{ name: 'volume', dir, mount: '-' }])], { encoding: 'utf8', env: { BB: '/bin/busybox', PATH: '/bin' } });
    assert.equal(r.status, 0, r.stderr);
    const p = parseDisk(r.stdout);
    assert.deepEqual([...new Set(p.samples.map((s) => s.test))], ['seq-write', 'seq-read', 'small-write', 'small-read']);
    assert.ok(p.samples.every((s) => s.ok), r.stdout);
    assert.deepEqual(fs.readdirSync(dir), [], 'test files removed');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('fio: arguments as data, and its JSON output read from a real small run', (t) => {
  const a = fioArgs('/x/f', O);
  assert.ok(a.includes('--direct=1') && a.includes('--filename=/x/f') && a.includes('--size=4m'));
  assert.deepEqual(a.filter((x) => x.startsWith('--name=')), ['--name=seq-write', '--name=seq-read', '--name=rand-write', '--name=rand-read']);
  assert.deepEqual(parseFio(JSON.stringify({ jobs: [{ jobname: 'rand-read', read: { bw_bytes: 1048576 * 8, iops: 2048 }, write: { bw_bytes: 0, iops: 0 } }] })), [{ test: 'rand-read', blockBytes: 4096, samples: [8], mibPerSec: 8, iops: 2048 }]);
  const fio = ['/usr/bin/fio', '/usr/local/bin/fio'].find((f) => fs.existsSync(f));
  if (!fio) return t.skip('fio is not installed (apt-get install fio)');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hullct-fio-'));
  try {
    const r = spawnSync(fio, fioArgs(path.join(dir, 'f'), { seqMiB: 2, smallBlocks: 32, rounds: 1 }), { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const f = parseFio(r.stdout);
    assert.deepEqual(f.map((x) => x.test), ['seq-write', 'seq-read', 'rand-write', 'rand-read']);
    assert.ok(f.every((x) => x.mibPerSec! > 0 && x.iops! > 0), JSON.stringify(f));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
