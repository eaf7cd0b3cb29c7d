import assert from 'node:assert/strict';
import { test } from 'node:test';
import { newcArchive } from '../../src/runtime/vm/cpio.js';
import {
  decodeExit, decodeStatus, encodeData, encodeFrame, encodeProcessRecords, encodeSpecFile, FRAME_MAX_PAYLOAD, FrameDecoder, T,
} from '../../src/runtime/vm/protocol.js';

/** Decodes records the way guest/spec.c does, for checking the encoder. */
function records(b: Buffer): [number, Buffer][] {
  const out: [number, Buffer][] = [];
  let o = 0;
  while (o < b.length) {
    const tag = b.readUInt16LE(o);
    const n = b.readUInt32LE(o + 2);
    out.push([tag, b.subarray(o + 6, o + 6 + n)]);
    o += 6 + n;
  }
  assert.equal(o, b.length);
  return out;
}

test('spec file: header, then argv in order, env, cwd, user, flags', () => {
  const f = encodeSpecFile({ args: ['sh', '-c', 'exit 7'], env: ['A=1'], cwd: '/w', user: 'nobody', hostname: 'h1', tty: true, readOnly: true, mainPort: true, clockNs: 5n, tmpfs: [{ destination: '/t', options: 'size=1m' }], shares: [{ tag: 'v0', destination: '/data', readOnly: true }] });
  assert.equal(f.subarray(0, 8).toString(), 'HULLSPEC');
  assert.equal(f.readUInt32LE(8), 1);
  const r = records(f.subarray(12));
  const str = (t: number) => r.filter(([x]) => x === t).map(([, v]) => v.toString());
  assert.deepEqual(str(1), ['sh', '-c', 'exit 7']);
  assert.deepEqual(str(2), ['A=1']);
  assert.deepEqual(str(3), ['/w']);
  assert.deepEqual(str(4), ['nobody']);
  assert.deepEqual(str(5), ['h1']);
  assert.deepEqual(str(9), ['/t\0size=1m']);
  assert.deepEqual(str(10), ['v0\0/data\0ro']);
  assert.equal(r.find(([t]) => t === 13)![1].readBigUInt64LE(0), 5n);
  for (const t of [6, 8, 12]) assert.deepEqual(r.find(([x]) => x === t)?.[1], Buffer.from([1]));
  assert.equal(r.find(([t]) => t === 7), undefined, 'no stdin record when stdin is closed');
});

test('spec encoding refuses what the guest could not decode', () => {
  assert.throws(() => encodeProcessRecords({ args: [], env: [] }), /no command/);
  assert.throws(() => encodeProcessRecords({ args: ['a\0b'], env: [] }), /NUL/);
  assert.throws(() => encodeSpecFile({ args: ['x'], env: ['A=' + 'x'.repeat(1 << 20)], hostname: 'h' }), /1 MiB/);
});

test('frames: header layout, split data, incremental decoding', () => {
  const f = encodeFrame(T.SIGNAL, 3, Buffer.from([15, 0, 0, 0]));
  assert.deepEqual([...f.subarray(0, 8)], [1, 0x13, 3, 0, 4, 0, 0, 0]);
  const big = Buffer.alloc(FRAME_MAX_PAYLOAD * 2 + 10, 7);
  const parts = encodeData(T.STDIN, 1, big);
  assert.equal(parts.length, 3);
  const all = Buffer.concat([...parts, f]);
  const dec = new FrameDecoder();
  const got = [];
  for (let i = 0; i < all.length; i += 1000) got.push(...dec.push(all.subarray(i, i + 1000)));
  assert.equal(got.length, 4);
  assert.equal(Buffer.concat(got.slice(0, 3).map((x) => x.payload)).equals(big), true);
  assert.deepEqual(got[3], { type: T.SIGNAL, channel: 3, payload: Buffer.from([15, 0, 0, 0]) });
  assert.equal(dec.pending, 0);
  assert.throws(() => encodeFrame(T.STDIN, 0, Buffer.alloc(FRAME_MAX_PAYLOAD + 1)), /exceeds/);
});

test('decoder rejects another version and oversized frames', () => {
  const bad = encodeFrame(T.EXIT, 0, Buffer.alloc(4));
  bad[0] = 2;
  assert.throws(() => new FrameDecoder().push(bad), /version 2/);
  const huge = Buffer.alloc(8);
  huge[0] = 1;
  huge.writeUInt32LE(FRAME_MAX_PAYLOAD + 1, 4);
  assert.throws(() => new FrameDecoder().push(huge), /exceeds/);
});

test('status stream: READY, EXIT with and without reason, torn tail ignored', () => {
  const ready = Buffer.alloc(4);
  ready.writeUInt32LE(11, 0);
  const exit = Buffer.alloc(5);
  exit.writeInt32LE(7, 0);
  const s = Buffer.concat([encodeFrame(T.READY, 0, Buffer.concat([ready, Buffer.from('6.1.192')])), encodeFrame(T.EXIT, 0, exit)]);
  assert.deepEqual(decodeStatus(s), { ready: { pid: 11, release: '6.1.192' }, exit: { code: 7, oomKilled: false, reason: undefined } });
  assert.deepEqual(decodeStatus(s.subarray(0, s.length - 2)), { ready: { pid: 11, release: '6.1.192' } });
  assert.deepEqual(decodeStatus(Buffer.alloc(0)), {});
  const r = Buffer.concat([exit, Buffer.from('exec: "nosuch": executable file not found in $PATH')]);
  r.writeInt32LE(127, 0);
  assert.deepEqual(decodeExit(r), { code: 127, oomKilled: false, reason: 'exec: "nosuch": executable file not found in $PATH' });
  assert.deepEqual(decodeExit(Buffer.from([137, 0, 0, 0, 1])), { code: 137, oomKilled: true, reason: undefined });
  assert.throws(() => decodeExit(Buffer.alloc(4)), /shorter/);
  // the writable layer (R_LAYER): LAYER_SENT after the EXIT says it went out whole; an ERROR why not
  const sent = Buffer.concat([s, encodeFrame(T.LAYER_SENT, 0)]);
  assert.equal(decodeStatus(sent).exit?.layerSent, true);
  assert.equal(decodeStatus(s).exit?.layerSent, undefined);
  assert.equal(decodeStatus(Buffer.concat([encodeFrame(T.LAYER_SENT, 0), s])).exit?.layerSent, undefined, 'only after the EXIT');
  const failed = decodeStatus(Buffer.concat([s, encodeFrame(T.ERROR, 0, Buffer.from('write to hull.layer: No space left on device'))]));
  assert.deepEqual([failed.exit?.layerSent, failed.errors], [undefined, ['write to hull.layer: No space left on device']]);
  // the answer to a LAYER request: flag 2 of its EXIT
  assert.deepEqual(decodeExit(Buffer.from([0, 0, 0, 0, 2])), { code: 0, oomKilled: false, layerSent: true, reason: undefined });
});

test('cpio newc: header fields, 4-byte alignment, trailer', () => {
  const a = newcArchive([{ name: 'hull' }, { name: 'hull/spec', data: Buffer.from('abc') }]);
  assert.equal(a.length % 4, 0);
  assert.equal(a.subarray(0, 6).toString(), '070701');
  const text = a.toString('latin1');
  assert.ok(text.includes('hull/spec\0'));
  assert.ok(text.includes('TRAILER!!!\0'));
  // second header: mode 0100644, size 3
  const i = text.indexOf('070701', 10);
  assert.equal(text.slice(i + 14, i + 22), (0o100644).toString(16).padStart(8, '0'));
  assert.equal(text.slice(i + 54, i + 62), '00000003');
  assert.throws(() => newcArchive([{ name: '/abs' }]), /bad entry/);
  assert.throws(() => newcArchive([{ name: 'a/../b' }]), /bad entry/);
});
