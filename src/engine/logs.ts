/**
 * Container logs as conmon writes them (the CRI "k8s-file" format): one record per line,
 *   <RFC 3339 nano timestamp> <stdout|stderr> <F|P> <content>
 * where P marks a partial line continued by the next record. Parsing is pure and works on bytes:
 * output need not be UTF-8.
 */
import fs from 'node:fs';

export interface LogRecord {
  time: string;
  stream: 'stdout' | 'stderr';
  /**
   * The content as the process wrote it, byte for byte (output need not be UTF-8), with '\n'
   * when the record ends a line (F). A record's content never holds '\n' otherwise: the log
   * format splits lines there.
   */
  data: Buffer;
}

const SP = 0x20;
const NL = 0x0a;

/**
 * Parse complete lines of a k8s-file log (bytes: never decoded). Malformed lines are skipped.
 * Each record's data is a view of `buf` (a full line's with the '\n' that ends it there).
 */
export function parseLogLines(buf: Buffer): LogRecord[] {
  const out: LogRecord[] = [];
  for (let at = 0; at < buf.length; ) {
    const nl = buf.indexOf(NL, at);
    const end = nl < 0 ? buf.length : nl;
    const line = buf.subarray(at, end);
    const lineStart = at;
    at = end + 1;
    const a = line.indexOf(SP);
    const b = a < 0 ? -1 : line.indexOf(SP, a + 1);
    if (b < 0) continue;
    const stream = line.toString('latin1', a + 1, b);
    if (stream !== 'stdout' && stream !== 'stderr') continue;
    const c = line.indexOf(SP, b + 1);
    const from = lineStart + (c < 0 ? line.length : c + 1);
    let data: Buffer;
    if (line[b + 1] === 0x50 /* 'P': the line goes on in the next record */) data = buf.subarray(from, end);
    else if (nl >= 0) data = buf.subarray(from, nl + 1);
    else data = Buffer.concat([buf.subarray(from, end), Buffer.from([NL])]);
    out.push({ time: line.toString('latin1', 0, a), stream, data });
  }
  return out;
}

/** Whether a record ends a line. */
export function endsLine(r: LogRecord): boolean {
  return r.data.length > 0 && r.data[r.data.length - 1] === NL;
}

/** docker logs --tail N: the records of the last N output lines (N < 0: all). */
export function tailRecords(recs: LogRecord[], n: number): LogRecord[] {
  if (n < 0) return recs;
  if (n === 0) return [];
  let lines = 0;
  for (let i = recs.length - 1; i >= 0; i--) {
    if (endsLine(recs[i]!)) {
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
    const out = r.stream === 'stdout' ? sink.stdout : sink.stderr;
    if (timestamps && atLineStart[r.stream]) out.write(`${dockerTime(r.time)} `);
    out.write(r.data);
    atLineStart = { ...atLineStart, [r.stream]: endsLine(r) };
  }
}

/** Read the complete lines of `file` from byte `offset`; returns them and the new offset. */
export function readFrom(file: string, offset: number): { data: Buffer; offset: number } {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return { data: Buffer.alloc(0), offset };
  }
  try {
    const size = fs.fstatSync(fd).size;
    if (size <= offset) return { data: Buffer.alloc(0), offset };
    const buf = Buffer.alloc(size - offset);
    const n = fs.readSync(fd, buf, 0, buf.length, offset);
    const s = buf.subarray(0, n);
    const last = s.lastIndexOf(0x0a);
    if (last < 0) return { data: Buffer.alloc(0), offset };
    return { data: s.subarray(0, last + 1), offset: offset + last + 1 };
  } finally {
    fs.closeSync(fd);
  }
}
