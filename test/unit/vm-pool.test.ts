import assert from 'node:assert/strict';
import { test } from 'node:test';
import { templateQemuArgs } from '../../src/runtime/vm/snapshot.js';
import { guestBound, maxPoolSize, MAX_POOL_SIZE, REHEARSAL, validatePoolConfig } from '../../src/runtime/vm/pool.js';
import { newcArchive, newcFile } from '../../src/runtime/vm/cpio.js';
import { decodeStatus, encodeFrame, encodeRehearseFrame, FrameDecoder, T } from '../../src/runtime/vm/protocol.js';

const shape = { memMiB: 128, cpus: 1, accel: 'tcg' as const, tscKhz: 2445406 };
const GiB = 1024 ** 3;

function after(a: string[], flag: string): string[] {
  return a.flatMap((x, i) => (x === flag ? [a[i + 1]!] : []));
}

test('template argv names the root disk as block nodes (file disk0 under raw root), which a pool claim swaps', () => {
  const a = templateQemuArgs(shape, { build: true, tbSizeMiB: 32, qmp: 'qmp.sock', ports: { status: { kind: 'file', path: 's' }, run: { kind: 'fd', fd: 8 } } });
  assert.deepEqual(after(a, '-blockdev'), ['driver=file,node-name=disk0,filename=/proc/self/fd/5,read-only=on', 'driver=raw,node-name=root,file=disk0,read-only=on']);
  assert.ok(after(a, '-device').includes('virtio-blk-device,drive=root'));
  assert.ok(!a.includes('-drive'));
  assert.ok(!a.includes('-S'));
});

test('a pool restore: -S (paused after the state loads), its ports unix sockets QEMU listens on', () => {
  const r = templateQemuArgs(shape, {
    build: false, tbSizeMiB: 32, qmp: 'qmp.sock', ramFd: 6, tapFds: [], paused: true,
    ports: { status: { kind: 'file', path: 'status' }, stdout: { kind: 'listen', path: 'out.sock' }, stderr: { kind: 'listen', path: 'err.sock' }, main: { kind: 'listen', path: 'main.sock' }, run: { kind: 'listen', path: 'run.sock' }, ctl: { kind: 'listen', path: 'ctl.sock' } },
  });
  assert.ok(r.includes('-S'));
  assert.deepEqual(after(r, '-incoming'), ['defer']);
  const ch = after(r, '-chardev');
  // the labels the claim waits on: p1 stdout, p2 stderr, p4 main, p6 run
  assert.deepEqual([1, 2, 4, 6].map((i) => ch[i]), ['socket,id=p1,path=out.sock,server=on,wait=off', 'socket,id=p2,path=err.sock,server=on,wait=off', 'socket,id=p4,path=main.sock,server=on,wait=off', 'socket,id=p6,path=run.sock,server=on,wait=off']);
});

test('the pool is bounded: half of host memory at each guest\'s cgroup limit, at most MAX_POOL_SIZE', () => {
  assert.equal(guestBound(128), (128 + 160) * 1024 * 1024);
  assert.equal(maxPoolSize(128, 24 * GiB), MAX_POOL_SIZE);
  assert.equal(maxPoolSize(1024, 24 * GiB), 10); // 12 GiB / 1184 MiB
  assert.equal(maxPoolSize(128, 1 * GiB), 1);
  assert.doesNotThrow(() => validatePoolConfig({ size: 0, memMiB: 128, cpus: 1 }, 24 * GiB));
  assert.doesNotThrow(() => validatePoolConfig({ size: 10, memMiB: 1024, cpus: 2 }, 24 * GiB));
  assert.throws(() => validatePoolConfig({ size: 11, memMiB: 1024, cpus: 1 }, 24 * GiB), /--size 11: a pool of 1024m guests is bounded to 10 here/);
  assert.throws(() => validatePoolConfig({ size: -1, memMiB: 128, cpus: 1 }, 24 * GiB), /--size -1/);
  assert.throws(() => validatePoolConfig({ size: 1, memMiB: 32, cpus: 1 }, 24 * GiB), /at least 64m/);
  assert.throws(() => validatePoolConfig({ size: 1, memMiB: 128, cpus: 9 }, 24 * GiB), /--cpus 9/);
});

test('newcFile finds a regular file of a newc archive (the agent /init the rehearsal disk copies)', () => {
  const a = newcArchive([{ name: 'hull' }, { name: 'init', data: Buffer.from('agent-bytes'), mode: 0o755 }, { name: 'hull/spec', data: Buffer.alloc(13, 7) }]);
  assert.equal(newcFile(a, 'init')?.toString(), 'agent-bytes');
  assert.deepEqual(newcFile(a, 'hull/spec'), Buffer.alloc(13, 7));
  assert.equal(newcFile(a, 'hull'), undefined, 'a directory is no file');
  assert.equal(newcFile(a, 'missing'), undefined);
  assert.equal(newcFile(Buffer.from('not an archive at all, long enough to hold a header of 110 bytes........................................'), 'init'), undefined);
});

test('the rehearsal frame carries a run spec; REHEARSED reads back as done or as why it failed', () => {
  const f = encodeRehearseFrame(REHEARSAL);
  assert.equal(f[1], T.REHEARSE);
  const frames = new FrameDecoder().push(f);
  assert.equal(frames.length, 1);
  assert.ok(frames[0]!.payload.includes(Buffer.from('/rehearsal')), 'the rehearsal command');
  assert.equal(decodeStatus(encodeFrame(T.REHEARSED, 0)).rehearsed, '');
  assert.equal(decodeStatus(Buffer.concat([encodeFrame(T.REHEARSED, 0, Buffer.from('rehearsal: the run failed (exit 121)')), encodeFrame(T.READY, 0, Buffer.from([1, 0, 0, 0]))])).rehearsed, 'rehearsal: the run failed (exit 121)');
});
