/**
 * Container logs as conmon writes them (the CRI "k8s-file" format): one record per line,
 *   <RFC 3339 nano timestamp> <stdout|stderr> <F|P> <content>
 * where P marks a partial line continued by the next record. Parsing is pure; follow() polls.
 */
import fs from 'node:fs';

export interface LogRecord {
  time: string;
  stream: 'stdout' | 'stderr';
  /** The content, with '\n' when the record ends a line (F). */
  text: string;
}

/** Parse complete lines of a k8s-file log. Malformed lines are skipped. */
export function parseLogLines(text: string): LogRecord[] {
  const out: LogRecord[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const a = line.indexOf(' ');
    const b = line.indexOf(' ', a + 1);
    const c = line.indexOf(' ', b + 1);
    if (a < 0 || b < 0) continue;
    const stream = line.slice(a + 1, b);
    if (stream !== 'stdout' && stream !== 'stderr') continue;
    const tag = c < 0 ? line.slice(b + 1) : line.slice(b + 1, c);
    const content = c < 0 ? '' : line.slice(c + 1);
    out.push({ time: line.slice(0, a), stream, text: tag.startsWith('P') ? content : `${content}\n` });
  }
  return out;
}

/** docker logs --tail N: the records of the last N output lines (N < 0: all). */
export function tailRecords(recs: LogRecord[], n: number): LogRecord[] {
  if (n < 0) return recs;
  if (n === 0) return [];
  let lines = 0;
  for (let i = recs.length - 1; i >= 0; i--) {
    if (recs[i]!.text.endsWith('\n')) {
      lines++;
      if (lines > n) return recs.slice(i + 1);
    }
  }
  return recs;
}

/** RFC 3339 with nanoseconds in UTC, as docker prints with -t (conmon writes a local offset). */
export function dockerTime(t: string): string {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$/.exec(t);
  if (!m) return t;
  const ms = Date.parse(`${m[1]}${m[3]}`);
  if (Number.isNaN(ms)) return t;
  const frac = (m[2] ?? '.0').slice(1).padEnd(9, '0').slice(0, 9);
  return `${new Date(ms).toISOString().slice(0, 19)}.${frac}Z`;
}

export interface LogSink {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

export function writeRecords(recs: LogRecord[], sink: LogSink, timestamps: boolean): void {
  let atLineStart = { stdout: true, stderr: true };
  for (const r of recs) {
    const prefix = timestamps && atLineStart[r.stream] ? `${dockerTime(r.time)} ` : '';
    (r.stream === 'stdout' ? sink.stdout : sink.stderr).write(prefix + r.text);
    atLineStart = { ...atLineStart, [r.stream]: r.text.endsWith('\n') };
  }
}

/** Read the complete lines of `file` from byte `offset`; returns them and the new offset. */
export function readFrom(file: string, offset: number): { text: string; offset: number } {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return { text: '', offset };
  }
  try {
    const size = fs.fstatSync(fd).size;
    if (size <= offset) return { text: '', offset };
    const buf = Buffer.alloc(size - offset);
    const n = fs.readSync(fd, buf, 0, buf.length, offset);
    const s = buf.subarray(0, n);
    const last = s.lastIndexOf(0x0a);
    if (last < 0) return { text: '', offset };
    return { text: s.subarray(0, last + 1).toString('utf8'), offset: offset + last + 1 };
  } finally {
    fs.closeSync(fd);
  }
}
