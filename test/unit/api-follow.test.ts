/** Following a k8s-file container log (src/api/follow.ts), on files in a temp dir. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileSize, follow, readAll } from '../../src/api/follow.js';
import type { LogRecord } from '../../src/engine/logs.js';

const line = (stream: string, text: string, partial = false) => `2026-01-01T00:00:00.000000000+00:00 ${stream} ${partial ? 'P' : 'F'} ${text}\n`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function tmpFile(): { file: string; done(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-follow-'));
  return { file: path.join(dir, 'ctr.log'), done: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

test('readAll: records with tail, the offset after the last whole line; missing file is empty', () => {
  const t = tmpFile();
  try {
    assert.deepEqual(readAll(t.file), { records: [], offset: 0 });
    assert.equal(fileSize(t.file), 0);
    fs.writeFileSync(t.file, line('stdout', 'a') + line('stderr', 'b') + line('stdout', 'c') + '2026-01-01T00:00:00Z stdout F half');
    const all = readAll(t.file);
    assert.deepEqual(all.records.map((r) => `${r.stream}:${r.data.toString()}`), ['stdout:a\n', 'stderr:b\n', 'stdout:c\n']);
    assert.equal(all.offset, fs.readFileSync(t.file, 'utf8').lastIndexOf('\n') + 1);
    assert.deepEqual(readAll(t.file, 1).records.map((r) => r.data.toString()), ['c\n']);
  } finally {
    t.done();
  }
});

test('follow: waits for the file, delivers appended records in order, reads once more after the end', async () => {
  const t = tmpFile();
  try {
    const got: LogRecord[] = [];
    let end!: () => void;
    const until = new Promise<void>((r) => (end = r));
    const ac = new AbortController();
    const f = follow(t.file, { offset: 0, until, signal: ac.signal, onRecords: (r) => void got.push(...r) });
    await sleep(20);
    fs.writeFileSync(t.file, line('stdout', 'one'));
    await sleep(30);
    fs.appendFileSync(t.file, line('stdout', 'tw', true));
    fs.appendFileSync(t.file, '2026-01-01T00:00:00Z stdout F o'); // an unfinished line waits for its newline
    await sleep(30);
    fs.appendFileSync(t.file, '\n');
    end();
    fs.appendFileSync(t.file, line('stderr', 'last')); // written just after the exit was seen
    await f;
    assert.deepEqual(got.map((r) => `${r.stream}:${r.data.toString()}`), ['stdout:one\n', 'stdout:tw', 'stdout:o\n', 'stderr:last\n']);
  } finally {
    t.done();
  }
});

test('follow: an abort stops it; a truncated log is read from the start', async () => {
  const t = tmpFile();
  try {
    fs.writeFileSync(t.file, line('stdout', 'old') + line('stdout', 'older'));
    const got: string[] = [];
    const ac = new AbortController();
    const f = follow(t.file, { offset: fs.statSync(t.file).size, until: new Promise(() => undefined), signal: ac.signal, onRecords: (r) => void got.push(...r.map((x) => x.data.toString())) });
    await sleep(20);
    fs.writeFileSync(t.file, line('stdout', 'new'));
    await sleep(40);
    ac.abort();
    await f;
    assert.deepEqual(got, ['new\n']);
  } finally {
    t.done();
  }
});
