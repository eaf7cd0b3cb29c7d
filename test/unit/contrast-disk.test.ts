import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { describeMount, diskScript, fioJobArgs, hostMountOf, mergeFigures, parseDiskRun, parseFio } from '../../src/contrast/scenario-disk.js';
import { shipTools, shippedCommand } from '../../src/contrast/tools.js';

const O = { seqMiB: 2, smallBlocks: 32, rounds: 1 };

const job = (jobname: string, mib: number, iops: number) => ({ jobname, read: { bw_bytes: jobname.endsWith('read') ? mib * 1048576 : 0, iops: jobname.endsWith('read') ? iops : 0 }, write: { bw_bytes: jobname.endsWith('write') ? mib * 1048576 : 0, iops: jobname.endsWith('write') ? iops : 0 } });

test('parseDiskRun: fio\'s JSON per target, the mode, the file system, and a failed fio with its message', () => {
  const json = JSON.stringify({ jobs: [job('seq-write', 100, 100), job('seq-read', 200, 200), job('rand-write', 8, 2048), job('rand-read', 16, 4096)] });
  const out = [
    'M|root|overlay / overlay rw,relatime,lowerdir=/l,upperdir=/u,fsync=volatile 0 0',
    '==fio|root|direct',
    'fio: a warning before the JSON',
    json,
    '==end|root|0',
    'M|volume|v0 /vol 9p rw,sync,dirsync,trans=virtio 0 0',
    '==fio|volume|buffered',
    'fio: pid=0, err=13/file:filesetup.c:1, func=open(/vol/.hull-contrast-fio), error=Permission denied',
    '==end|volume|1',
  ].join('\n');
  const [root, vol] = parseDiskRun(out);
  assert.deepEqual([root!.target, root!.mode, root!.fs, root!.error], ['root', 'direct', 'overlay (fsync=volatile)', undefined]);
  assert.deepEqual(root!.figures!.map((f) => [f.test, f.mibPerSec, f.iops, f.blockBytes]), [['seq-write', 100, 100, 1048576], ['seq-read', 200, 200, 1048576], ['rand-write', 8, 2048, 4096], ['rand-read', 16, 4096, 4096]]);
  assert.deepEqual([vol!.target, vol!.mode, vol!.fs], ['volume', 'buffered', '9p (sync,trans=virtio)']);
  assert.match(vol!.error!, /^fio exited with 1: fio: .*Permission denied/);
  assert.equal(vol!.figures, undefined);
  // a target whose script was cut short gives no run (the caller reports the instance's error)
  assert.deepEqual(parseDiskRun('==fio|root|direct\n{'), []);
  assert.equal(describeMount('garbage'), 'unknown');
  assert.match(hostMountOf(os.tmpdir()), /^\w+/);
});

test('mergeFigures: medians over the rounds, every sample kept', () => {
  const a = parseFio(JSON.stringify({ jobs: [job('seq-write', 100, 100), job('rand-read', 8, 2048)] }));
  const b = parseFio(JSON.stringify({ jobs: [job('seq-write', 300, 300), job('rand-read', 16, 4096)] }));
  const m = mergeFigures(mergeFigures([], a), b);
  assert.deepEqual(m.map((f) => [f.test, f.samples, f.mibPerSec, f.iops]), [['seq-write', [100, 300], 200, 200], ['rand-read', [8, 16], 12, 3072]]);
});

test('fio: job arguments as data; the script runs the shipped fio (loader + ldd libraries) on a directory and cleans up', async (t) => {
  const a = fioJobArgs(O);
  assert.ok(a.includes('--thread') && a.includes('--size=2m') && a.includes('--output-format=json'));
  assert.deepEqual(a.filter((x) => x.startsWith('--name=')), ['--name=seq-write', '--name=seq-read', '--name=rand-write', '--name=rand-read']);
  if (!['/usr/bin/fio', '/usr/local/bin/fio'].some((f) => fs.existsSync(f))) return t.skip('fio is not installed (apt-get install fio)');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hullct-fio-'));
  try {
    const tools = path.join(dir, 'tools');
    const data = path.join(dir, 'data');
    fs.mkdirSync(tools);
    fs.mkdirSync(data);
    const { loader, bytes } = await shipTools(tools, ['fio']);
    assert.ok(fs.existsSync(path.join(tools, 'fio')) && fs.existsSync(path.join(tools, path.basename(loader))) && bytes > 0);
    assert.equal(fs.statSync(tools).mode & 0o777, 0o755);
    const r = spawnSync('/bin/sh', ['-c', diskScript(shippedCommand(tools, loader, 'fio'), O, [{ name: 'volume', dir: data, mount: '-' }])], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const [run] = parseDiskRun(r.stdout);
    assert.ok(run && !run.error, `${run?.error}\n${r.stdout.slice(0, 2000)}`);
    assert.deepEqual(run.figures!.map((x) => x.test), ['seq-write', 'seq-read', 'rand-write', 'rand-read']);
    assert.ok(run.figures!.every((x) => x.mibPerSec! > 0 && x.iops! > 0), JSON.stringify(run.figures));
    assert.deepEqual(fs.readdirSync(data), [], 'test file removed');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
