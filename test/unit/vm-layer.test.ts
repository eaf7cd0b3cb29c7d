/**
 * A stopped VM's kept layer on the host (src/runtime/vm/layer.ts): the tar its guest sent is
 * unpacked once by the hardened unpacker into <instance>/layer, or refused with a reason, and
 * nothing half-made is left either way. The guest side (and a running VM's layer) is covered by
 * test/integration/api-changes-vm.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { dropKeptLayer, keptLayer, layerFiles, layerMaxBytes } from '../../src/runtime/vm/layer.js';
import { encodeFrame, T } from '../../src/runtime/vm/protocol.js';
import type { InstanceSpec } from '../../src/runtime/types.js';
import { makeTar } from '../helpers/images-tar.js';

function instance(o: Partial<InstanceSpec> = {}): InstanceSpec {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-vm-layer-'));
  fs.mkdirSync(path.join(dir, 'vm'));
  return { id: 'ab'.repeat(32), dir, resources: {}, ...o } as InstanceSpec;
}

const exit0 = Buffer.from([0, 0, 0, 0, 0]);
const ready = Buffer.concat([Buffer.from([5, 0, 0, 0]), Buffer.from('6.1.192')]);
const status = (...frames: Buffer[]) => Buffer.concat([encodeFrame(T.READY, 0, ready), ...frames]);
const whole = status(encodeFrame(T.EXIT, 0, exit0), encodeFrame(T.LAYER_SENT, 0));
/** What a layer attempt left in the instance dir, besides its vm dir. */
const left = (spec: InstanceSpec) => fs.readdirSync(spec.dir).filter((n) => n !== 'vm').sort();

test('a whole tar is unpacked once into <instance>/layer (whiteouts as overlay whiteouts) and removed', async () => {
  const spec = instance();
  fs.writeFileSync(layerFiles(spec).tar, await makeTar([{ name: 'tmp/', type: 'directory' }, { name: 'tmp/f', data: 'hi\n' }, { name: 'bin/', type: 'directory' }, { name: 'bin/.wh.ls', data: '' }]));
  const l = await keptLayer(spec, whole);
  assert.deepEqual(l, { kind: 'upper', dir: path.join(spec.dir, 'layer') });
  assert.equal(fs.readFileSync(path.join(spec.dir, 'layer/tmp/f'), 'utf8'), 'hi\n');
  const wh = fs.lstatSync(path.join(spec.dir, 'layer/bin/ls'));
  assert.ok(wh.isCharacterDevice() && wh.rdev === 0, 'an OCI whiteout becomes an overlay whiteout');
  assert.deepEqual(left(spec), ['layer']);
  assert.deepEqual(await keptLayer(spec, Buffer.alloc(0)), l, 'the second reader takes the directory');
  dropKeptLayer(spec);
  assert.deepEqual(left(spec), []);
  fs.rmSync(spec.dir, { recursive: true, force: true });
});

test('a tar the guest did not finish, or no exit at all: removed, the reason kept and given', async () => {
  const spec = instance();
  const f = layerFiles(spec);
  fs.writeFileSync(f.tar, (await makeTar([{ name: 'f', data: 'x' }])).subarray(0, 700));
  await assert.rejects(keptLayer(spec, status(encodeFrame(T.EXIT, 0, exit0))), /VM abababababab: no writable layer: the guest could not send it: the VM was stopped while its guest was sending it/);
  assert.deepEqual(left(spec), ['layer.tar.err']);
  fs.writeFileSync(f.tar, '');
  fs.rmSync(f.err);
  await assert.rejects(keptLayer(spec, status()), /the VM ended without an exit \(QEMU was killed, or the guest crashed\)/);
  fs.writeFileSync(f.tar, 'partial');
  fs.rmSync(f.err);
  await assert.rejects(keptLayer(spec, status(encodeFrame(T.EXIT, 0, exit0), encodeFrame(T.ERROR, 0, Buffer.from('write to hull.layer: No space left on device')))), /could not send it: write to hull.layer: No space left on device/);
  assert.deepEqual(left(spec), ['layer.tar.err']);
  fs.rmSync(spec.dir, { recursive: true, force: true });
});

test('the hardened unpacker refuses what a hostile guest sends; nothing is left but the reason', async () => {
  for (const [entries, why] of [
    [[{ name: '../escape', data: 'x' }], /path with '\.\.' refused/],
    [[{ name: 'dev/kmem', type: 'character-device', devmajor: 1, devminor: 2 }], /device/],
    [[{ name: 'up', type: 'symlink', linkname: '/' }, { name: 'up/etc/owned', data: 'x' }], /refused|outside/],
  ] as const) {
    const spec = instance();
    fs.writeFileSync(layerFiles(spec).tar, await makeTar(entries as never));
    await assert.rejects(keptLayer(spec, whole), (e: Error) => /no writable layer: the host refused it: the tar its guest sent/.test(e.message) && why.test(e.message));
    assert.deepEqual(left(spec), ['layer.tar.err'], 'no layer, temp dir or hostile tar left');
    await assert.rejects(keptLayer(spec, whole), why, 'the reason stays');
    fs.rmSync(spec.dir, { recursive: true, force: true });
  }
});

test('bounded: a tar over HULL_VM_LAYER_MAX_BYTES is refused and removed; the default follows guest RAM', async () => {
  assert.equal(layerMaxBytes({ resources: {} }, {}), 256 * 1024 * 1024);
  assert.equal(layerMaxBytes({ resources: { memoryBytes: 1024 * 1024 * 1024 } }, {}), 2 * 1024 * 1024 * 1024);
  assert.equal(layerMaxBytes({ resources: {} }, { HULL_VM_LAYER_MAX_BYTES: '4096' }), 4096);
  assert.throws(() => layerMaxBytes({ resources: {} }, { HULL_VM_LAYER_MAX_BYTES: '4k' }), /HULL_VM_LAYER_MAX_BYTES=4k: want a positive integer/);
  const spec = instance();
  fs.writeFileSync(layerFiles(spec).tar, await makeTar([{ name: 'big', data: Buffer.alloc(8192) }]));
  process.env.HULL_VM_LAYER_MAX_BYTES = '4096';
  try {
    await assert.rejects(keptLayer(spec, whole), /it is \d+ bytes, over the bound of 4096 \(HULL_VM_LAYER_MAX_BYTES\)/);
  } finally {
    delete process.env.HULL_VM_LAYER_MAX_BYTES;
  }
  assert.deepEqual(left(spec), ['layer.tar.err']);
  fs.rmSync(spec.dir, { recursive: true, force: true });
});

test('never started: an empty layer; --rm: none, saying why', async () => {
  const spec = instance();
  fs.rmSync(path.join(spec.dir, 'vm'), { recursive: true });
  const l = await keptLayer(spec, Buffer.alloc(0));
  assert.equal(l.kind === 'upper' && fs.readdirSync(l.dir).length, 0);
  fs.rmSync(spec.dir, { recursive: true, force: true });
  const rm = instance({ autoRemove: true });
  await assert.rejects(keptLayer(rm, status(encodeFrame(T.EXIT, 0, exit0))), /it ran with --rm, whose writes are never kept/);
  fs.rmSync(rm.dir, { recursive: true, force: true });
});
