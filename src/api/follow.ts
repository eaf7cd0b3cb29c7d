/**
 * Reading a container's k8s-file log for attach and logs: whole records from a byte offset,
 * followed as it grows (inotify) until a promise settles (the container's run ended), with a
 * last read after it so that the final lines of a fast process are never lost (the monitor
 * writes them before it records the exit). The file is opened once and held, so
 * a removal of the container directory during the last read cannot take the output away.
 */
import fs from 'node:fs';
import { parseLogLines, readFrom, tailRecords, type LogRecord } from '../engine/logs.js';
import { fileTarget, Watch } from '../util/watch.js';

export interface FollowOptions {
  /** Byte offset to start at (0: from the beginning). */
  offset: number;
  /** Settles when no more output can come (the run ended). Undefined: read once and return. */
  until?: Promise<unknown>;
  signal: AbortSignal;
  /** Receives records in order; may return a promise (backpressure). */
  onRecords(recs: LogRecord[]): void | Promise<void>;
}

/** A look at the file when inotify has said nothing for this long (a backstop only), ms. */
const BACKSTOP_MS = 1000;

/** Size of a file, 0 when it does not exist. */
export function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

/** All records of a log file (for `logs` without follow and `attach?logs=1`), and the offset after them. */
export function readAll(file: string, tail = -1): { records: LogRecord[]; offset: number } {
  const { data, offset } = readFrom(file, 0);
  return { records: tailRecords(parseLogLines(data), tail), offset };
}

export async function follow(file: string, o: FollowOptions): Promise<void> {
  let fd: number | undefined;
  let offset = o.offset;
  let carry = Buffer.alloc(0);
  let ended = o.until === undefined;
  const watch = new Watch([fileTarget(file)]);
  void o.until?.then(
    () => ((ended = true), watch.bump()),
    () => ((ended = true), watch.bump()),
  );
  const readMore = async (): Promise<void> => {
    if (fd === undefined) {
      try {
        fd = fs.openSync(file, 'r');
      } catch {
        return;
      }
    }
    const size = fs.fstatSync(fd).size;
    if (size < offset) {
      // The log was truncated (a new run): read it from the start.
      offset = 0;
      carry = Buffer.alloc(0);
    }
    while (offset < size) {
      const buf = Buffer.alloc(Math.min(size - offset, 256 * 1024));
      const n = fs.readSync(fd, buf, 0, buf.length, offset);
      if (n <= 0) break;
      offset += n;
      const data = carry.length ? Buffer.concat([carry, buf.subarray(0, n)]) : buf.subarray(0, n);
      const last = data.lastIndexOf(0x0a);
      if (last < 0) {
        carry = Buffer.from(data);
        continue;
      }
      carry = Buffer.from(data.subarray(last + 1));
      const recs = parseLogLines(data.subarray(0, last + 1));
      if (recs.length) await o.onRecords(recs);
      if (o.signal.aborted) return;
    }
  };
  try {
    for (;;) {
      if (o.signal.aborted) return;
      const seen = watch.seq;
      const wasEnded = ended;
      await readMore();
      if (wasEnded) return;
      await watch.after(seen, BACKSTOP_MS, o.signal);
    }
  } finally {
    watch.close();
    if (fd !== undefined) fs.closeSync(fd);
  }
}
