import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { blobLine, dockerJsonMessages, eventLines, humanBytes, progressBar, renderProgress } from '../../src/registry/progress.js';
import type { ProgressEvent } from '../../src/registry/events.js';

function sink() {
  let text = '';
  const out = new Writable({
    write(chunk, _e, cb) {
      text += String(chunk);
      cb();
    },
  });
  return { out, text: () => text };
}

const D = `sha256:${'ab'.repeat(32)}`;
const pullEvents: ProgressEvent[] = [
  { type: 'start', op: 'pull', reference: 'busybox:latest', repository: 'library/busybox', tagOrDigest: 'latest', defaultTag: true },
  { type: 'resolved', digest: D, mediaType: 'application/vnd.oci.image.index.v1+json', platform: 'linux/amd64' },
  { type: 'blob', id: 'abababababab', digest: D, size: 2_000_000, status: 'waiting' },
  { type: 'blob', id: 'abababababab', digest: D, size: 2_000_000, status: 'downloading', current: 500_000 },
  { type: 'blob', id: 'abababababab', digest: D, size: 2_000_000, status: 'downloading', current: 2_000_000 },
  { type: 'blob', id: 'abababababab', digest: D, size: 2_000_000, status: 'verifying' },
  { type: 'blob', id: 'abababababab', digest: D, size: 2_000_000, status: 'downloaded' },
  { type: 'blob', id: 'abababababab', digest: D, size: 2_000_000, status: 'complete' },
  { type: 'done', op: 'pull', reference: 'busybox:latest', digest: D, upToDate: false },
];

test('plain output (not a TTY): docker\'s lines, one per state, no byte counts', () => {
  const s = sink();
  const r = renderProgress(s.out, { tty: false });
  for (const e of pullEvents) r.listener(e);
  r.finish();
  assert.equal(
    s.text(),
    [
      'Using default tag: latest',
      'latest: Pulling from library/busybox',
      'abababababab: Pulling fs layer',
      'abababababab: Downloading',
      'abababababab: Verifying Checksum',
      'abababababab: Download complete',
      'abababababab: Pull complete',
      `Digest: ${D}`,
      'Status: Downloaded newer image for busybox:latest',
      '',
    ].join('\n'),
  );
});

test('TTY output redraws the layer line in place with a bar', () => {
  const s = sink();
  const r = renderProgress(s.out, { tty: true });
  for (const e of pullEvents) r.listener(e);
  const t = s.text();
  assert.ok(t.startsWith('Using default tag: latest\nlatest: Pulling from library/busybox\nabababababab: Pulling fs layer\n'));
  // Cursor up 1 line, clear it, write the new state, back down.
  assert.ok(t.includes('\x1b[1A\r\x1b[2Kabababababab: Downloading ['), t);
  assert.ok(t.includes('500kB/2MB'));
  assert.ok(t.includes('\x1b[1A\r\x1b[2Kabababababab: Pull complete\r\x1b[1B'));
  assert.ok(t.endsWith('Status: Downloaded newer image for busybox:latest\n'));
});

test('push lines and pure helpers', () => {
  assert.deepEqual(eventLines({ type: 'start', op: 'push', reference: 'r/x:1', repository: 'localhost:5000/x', tagOrDigest: '1', defaultTag: false }), ['The push refers to repository [localhost:5000/x]']);
  assert.deepEqual(eventLines({ type: 'done', op: 'push', reference: 'x', digest: D, upToDate: false, tag: '1', size: 527 }), [`1: digest: ${D} size: 527`]);
  assert.deepEqual(eventLines({ type: 'done', op: 'pull', reference: 'x:1', digest: D, upToDate: true }), [`Digest: ${D}`, 'Status: Image is up to date for x:1']);
  assert.equal(blobLine({ type: 'blob', id: 'i', digest: D, size: 1, status: 'waiting' }, false, 'push'), 'i: Waiting');
  assert.equal(blobLine({ type: 'blob', id: 'i', digest: D, size: 1, status: 'mounted', from: 'library/a' }, false, 'push'), 'i: Mounted from library/a');
  assert.equal(blobLine({ type: 'blob', id: 'i', digest: D, size: 1, status: 'remote-exists' }, false, 'push'), 'i: Layer already exists');
  assert.equal(humanBytes(999), '999B');
  assert.equal(humanBytes(4_260_000), '4.26MB');
  assert.equal(progressBar(0, 100, 10), `[${' '.repeat(10)}]      0B/100B`);
  assert.equal(progressBar(50, 100, 10), '[====>     ]     50B/100B');
  assert.equal(progressBar(100, 100, 10), '[==========]    100B/100B');
});

test('Docker Engine API JSON messages for pull and push events', () => {
  const msgs = pullEvents.flatMap((e) => dockerJsonMessages(e));
  assert.deepEqual(msgs[0], { status: 'Pulling from library/busybox', id: 'latest' });
  assert.deepEqual(msgs[1], { status: 'Pulling fs layer', progressDetail: {}, id: 'abababababab' });
  assert.deepEqual(msgs[2]!.progressDetail, { current: 500_000, total: 2_000_000 });
  assert.equal(msgs[2]!.status, 'Downloading');
  assert.match(msgs[2]!.progress!, /^\[=+>\s+\]\s+500kB\/2MB$/);
  assert.deepEqual(msgs.slice(-2), [{ status: `Digest: ${D}` }, { status: 'Status: Downloaded newer image for busybox:latest' }]);
  const push = dockerJsonMessages({ type: 'done', op: 'push', reference: 'x', digest: D, upToDate: false, tag: 'v1', size: 527 }, 'push');
  assert.deepEqual(push[1], { progressDetail: {}, aux: { Tag: 'v1', Digest: D, Size: 527 } });
  assert.deepEqual(dockerJsonMessages({ type: 'blob', id: 'i', digest: D, size: 1, status: 'waiting' }, 'push'), [{ status: 'Waiting', progressDetail: {}, id: 'i' }]);
  assert.deepEqual(dockerJsonMessages({ type: 'blob', id: 'i', digest: D, size: 1, status: 'mounted', from: 'a/b' }, 'push'), [{ status: 'Mounted from a/b', progressDetail: {}, id: 'i' }]);
});
