/**
 * A task's stdio as containerd gives it: paths of fifos containerd (or ctr) created and reads or
 * writes, or `file://` URIs for plain log files. Outputs are opened O_RDWR|O_NONBLOCK, which
 * never blocks in open(2) whether or not the reader has opened yet; the reader sees EOF when the
 * shim closes its end. Stdin is opened O_RDONLY, so the shim sees EOF when the writer closes
 * (ctr closes its end when its own stdin ends, and sends no CloseIO then): that open blocks until
 * the writer opens, so it runs on Node's thread pool (the launcher raises its size) and can be
 * cancelled, by opening the fifo for writing once, when the task goes away first. Opened fds
 * are wrapped in libuv pipes, so reads and writes never hold a pool thread.
 */
import fs from 'node:fs';
import net from 'node:net';
import { HullError } from '../errors.js';

export type Writable = net.Socket | fs.WriteStream;

/** Pure: what a stdio string names: nothing, a fifo (or any path), or a file to append to. */
export function stdioTarget(s: string): { kind: 'none' } | { kind: 'fifo'; path: string } | { kind: 'file'; path: string } {
  if (!s) return { kind: 'none' };
  if (s.startsWith('file://')) return { kind: 'file', path: decodeURIComponent(s.slice('file://'.length)) };
  if (/^[a-z][a-z0-9+.-]*:\/\//.test(s)) throw new HullError('INVALID_ARGUMENT', `stdio ${s}: the hull shim takes fifo paths and file:// URIs (not binary:// logging)`);
  if (!s.startsWith('/')) throw new HullError('INVALID_ARGUMENT', `stdio ${s} is not an absolute path`);
  return { kind: 'fifo', path: s };
}

function openOutputPipe(p: string): net.Socket {
  let fd: number;
  try {
    fd = fs.openSync(p, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
  } catch (e) {
    throw new HullError('NOT_FOUND', `cannot open the stdio fifo ${p}: ${(e as Error).message}`, { cause: e });
  }
  if (!fs.fstatSync(fd).isFIFO()) {
    fs.closeSync(fd);
    throw new HullError('INVALID_ARGUMENT', `stdio ${p} is not a fifo`);
  }
  const s = new net.Socket({ fd, readable: false, writable: true });
  s.on('error', () => undefined); // a reader that went away: output is dropped, as runc's shim does
  return s;
}

/** Opens an output (stdout or stderr) for writing; undefined when none was given. */
export function openOutput(s: string): Writable | undefined {
  const t = stdioTarget(s);
  if (t.kind === 'none') return undefined;
  if (t.kind === 'file') {
    const w = fs.createWriteStream(t.path, { flags: 'a' });
    w.on('error', () => undefined);
    return w;
  }
  return openOutputPipe(t.path);
}

export interface PendingInput {
  /** Resolves with the stdin pipe once its writer has opened (undefined when cancelled). */
  ready: Promise<net.Socket | undefined>;
  /** Gives up waiting for the writer. */
  cancel(): void;
}

/** Starts opening stdin for reading; undefined when none was given. */
export function openInput(s: string): PendingInput | undefined {
  const t = stdioTarget(s);
  if (t.kind === 'none') return undefined;
  if (t.kind === 'file') throw new HullError('INVALID_ARGUMENT', `stdin cannot be a file:// URI (${s})`);
  const st = fs.statSync(t.path, { throwIfNoEntry: false });
  if (!st) throw new HullError('NOT_FOUND', `the stdin fifo ${t.path} does not exist`);
  if (!st.isFIFO()) throw new HullError('INVALID_ARGUMENT', `stdin ${t.path} is not a fifo`);
  let cancelled = false;
  const ready = new Promise<net.Socket | undefined>((resolve) => {
    fs.open(t.path, fs.constants.O_RDONLY, (err, fd) => {
      if (err) return resolve(undefined);
      if (cancelled) {
        fs.close(fd, () => undefined);
        return resolve(undefined);
      }
      const sock = new net.Socket({ fd, readable: true, writable: false });
      sock.on('error', () => undefined);
      resolve(sock);
    });
  });
  return {
    ready,
    cancel() {
      if (cancelled) return;
      cancelled = true;
      try {
        fs.closeSync(fs.openSync(t.path, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK)); // wakes the pending open
      } catch {
        // ENXIO: the open has completed already (or no reader waits): nothing to wake
      }
    },
  };
}

/** Ends a writable and resolves when its data is flushed (or it failed). */
export function endWritable(w: Writable | undefined): Promise<void> {
  if (!w || w.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    w.once('error', () => resolve());
    w.end(() => resolve());
  });
}
