/**
 * The stream layer (src/streams): docker's framing decoded across every chunk boundary, demux
 * honouring a slow writer, the detach keys found across chunks, and the stdin filter.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { PassThrough, Writable } from 'node:stream';
import { demux, frame, FrameDecoder, MAX_FRAME } from '../../src/streams/mux.js';
import { EscapeScanner, parseDetachKeys } from '../../src/streams/escape.js';
import { stdinSource } from '../../src/streams/input.js';

const collectAll = async (r: NodeJS.ReadableStream): Promise<Buffer> => {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
};

test('frame: 8-byte headers, payloads above MAX_FRAME split, nothing for no data', () => {
  const f = frame(2, Buffer.from('abc'));
  assert.deepEqual([...f.subarray(0, 8)], [2, 0, 0, 0, 0, 0, 0, 3]);
  assert.equal(frame(1, Buffer.alloc(0)).length, 0);
  const big = frame(1, Buffer.alloc(MAX_FRAME * 2 + 5, 7));
  assert.equal(big.length, 3 * 8 + MAX_FRAME * 2 + 5);
  assert.equal(big.readUInt32BE(4), MAX_FRAME);
});

test('FrameDecoder: the same frames whatever the chunk boundaries (every split of a stream, then random ones)', () => {
  const frames = [frame(1, Buffer.from('hello')), frame(2, Buffer.from('E')), frame(1, Buffer.alloc(0)), frame(1, Buffer.from(' world'))];
  const all = Buffer.concat(frames);
  const want = [
    { stream: 1, data: 'hello' },
    { stream: 2, data: 'E' },
    { stream: 1, data: ' world' },
  ];
  for (let a = 0; a <= all.length; a++) {
    for (let b = a; b <= all.length; b++) {
      const dec = new FrameDecoder();
      const got = [...dec.push(all.subarray(0, a)), ...dec.push(all.subarray(a, b)), ...dec.push(all.subarray(b))];
      assert.deepEqual(got.map((f) => ({ stream: f.stream, data: f.data.toString() })), want, `split at ${a}, ${b}`);
      assert.equal(dec.pending, 0);
    }
  }
  const payload = crypto.randomBytes(200_000);
  const stream = frame(1, payload);
  const dec = new FrameDecoder();
  const out: Buffer[] = [];
  for (let o = 0; o < stream.length; ) {
    const n = 1 + crypto.randomInt(5000);
    for (const f of dec.push(stream.subarray(o, o + n))) out.push(f.data);
    o += n;
  }
  assert.ok(Buffer.concat(out).equals(payload));
});

test('FrameDecoder: a bad header or a giant frame is refused, a torn frame is held', () => {
  assert.throws(() => new FrameDecoder().push(Buffer.from([3, 0, 0, 0, 0, 0, 0, 1, 0])), /bad frame header/);
  assert.throws(() => new FrameDecoder().push(Buffer.from([1, 0, 0, 0, 0x7f, 0, 0, 0])), /a frame of/);
  const dec = new FrameDecoder();
  assert.deepEqual(dec.push(frame(1, Buffer.from('abcdef')).subarray(0, 10)), []);
  assert.equal(dec.pending, 10);
});

test('demux: stdout and stderr apart, in order, with a writer that drains slowly; a stream ending inside a frame rejects', async () => {
  const src = new PassThrough();
  const got: string[] = [];
  const slow = new Writable({
    highWaterMark: 4,
    write(c: Buffer, _e, cb) {
      got.push(c.toString());
      setImmediate(cb);
    },
  });
  const errs: string[] = [];
  const err = new Writable({ write: (c: Buffer, _e, cb) => (errs.push(c.toString()), cb()) });
  const done = demux(src, slow, err);
  for (let i = 0; i < 50; i++) src.write(Buffer.concat([frame(1, Buffer.from(`o${i};`)), frame(2, Buffer.from(`e${i};`))]));
  src.end();
  await done;
  assert.equal(got.join(''), Array.from({ length: 50 }, (_, i) => `o${i};`).join(''));
  assert.equal(errs.join(''), Array.from({ length: 50 }, (_, i) => `e${i};`).join(''));
  const torn = new PassThrough();
  const p = demux(torn, new PassThrough(), new PassThrough());
  torn.end(frame(1, Buffer.from('abc')).subarray(0, 9));
  await assert.rejects(p, /ended inside a frame/);
});

test('detach keys: parsed as docker does; found across chunks; a broken prefix is given back', () => {
  assert.deepEqual([...parseDetachKeys(undefined)], [0x10, 0x11]);
  assert.deepEqual([...parseDetachKeys('ctrl-x,y')], [0x18, 0x79]);
  assert.throws(() => parseDetachKeys('ctrl-1'), /Invalid detach keys/);
  const keys = Buffer.from([0x10, 0x11]);
  const input = Buffer.from('ab\x10c\x10\x10\x11rest');
  for (let a = 0; a <= input.length; a++) {
    const sc = new EscapeScanner(keys);
    const r1 = sc.push(input.subarray(0, a));
    const r2 = r1.detached ? { pass: Buffer.alloc(0), detached: true } : sc.push(input.subarray(a));
    assert.equal(Buffer.concat([r1.pass, r2.pass]).toString('latin1'), 'ab\x10c\x10', `split at ${a}`);
    assert.ok(r1.detached || r2.detached);
  }
  const sc = new EscapeScanner(keys);
  assert.equal(sc.push(Buffer.from('x\x10')).pass.toString(), 'x');
  assert.deepEqual([...sc.flush()], [0x10]);
});

test('stdinSource: without keys every byte goes through and its end is the input end', async () => {
  const input = new PassThrough();
  const src = stdinSource(input);
  const data = crypto.randomBytes(300_000);
  const got = collectAll(src.stream);
  for (let o = 0; o < data.length; o += 7777) input.write(data.subarray(o, o + 7777));
  input.end();
  assert.ok((await got).equals(data));
  assert.equal(await src.ended, false);
});

test('stdinSource: with keys the bytes before them go on, the rest is dropped, and it ends as detached', async () => {
  const input = new PassThrough();
  const src = stdinSource(input, Buffer.from([0x10, 0x11]));
  const got = collectAll(src.stream);
  input.write('echo hi\n\x10');
  input.write('\x11 never');
  input.write('more never');
  assert.equal((await got).toString(), 'echo hi\n');
  assert.equal(await src.ended, true);
  input.end();
});

test('stdinSource: a held first key at the end of the input is given back', async () => {
  const input = new PassThrough();
  const src = stdinSource(input, Buffer.from([0x10, 0x11]));
  const got = collectAll(src.stream);
  input.end('ab\x10');
  assert.equal((await got).toString('latin1'), 'ab\x10');
  assert.equal(await src.ended, false);
});

test('StdinChannels: attaches one after another write one stream in order; closeAtEnd ends it; a gone channel ends a feed', async () => {
  const { StdinChannels } = await import('../../src/runtime/stdin-channel.js');
  const got: Buffer[] = [];
  let opened = 0;
  let ended = false;
  let markGone!: () => void;
  const gone = new Promise<void>((r) => (markGone = r));
  const make = () => {
    opened++;
    const sink = new Writable({
      highWaterMark: 1024,
      write(c: Buffer, _e, cb) {
        got.push(c);
        setImmediate(cb); // a slow process: backpressure
      },
      final(cb) {
        ended = true;
        cb();
      },
    });
    return { sink, gone };
  };
  const ch = new StdinChannels();
  const ac = new AbortController();
  const parts = [crypto.randomBytes(100_000), crypto.randomBytes(50_000)];
  for (const p of parts) {
    const input = new PassThrough();
    const fed = ch.feed('c1', input, false, ac.signal, make);
    for (let o = 0; o < p.length; o += 4096) input.write(p.subarray(o, o + 4096));
    input.end();
    await fed;
  }
  assert.equal(opened, 1, 'one channel for both attaches');
  assert.ok(Buffer.concat(got).equals(Buffer.concat(parts)));
  assert.equal(ended, false, 'without StdinOnce the stream stays open');
  const last = new PassThrough();
  const fed = ch.feed('c1', last, true, ac.signal, make);
  last.end('bye');
  await fed;
  assert.equal(ended, true);
  assert.equal(Buffer.concat(got).subarray(-3).toString(), 'bye');
  // a channel whose instance went away ends the feeds into it
  const never = new PassThrough();
  const stuck = ch.feed('c2', never, false, ac.signal, make);
  markGone();
  await stuck;
});
