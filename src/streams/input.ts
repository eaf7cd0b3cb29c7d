/**
 * The input side of an attach or exec stream: what the client sends, on its way to the
 * process's stdin. With a TTY docker watches it for the detach keys (ctrl-p,ctrl-q by default):
 * the bytes before them go on, the keys and anything after them do not, and the stream ends
 * there (`detached` tells which end it was). Without a TTY every byte goes through.
 *
 * Backpressure is the stream's own: the filter is a Transform, so a slow process stdin stops
 * the reading of the client's socket.
 */
import { Transform, type Readable } from 'node:stream';
import { EscapeScanner } from './escape.js';

export interface StdinSource {
  /** The bytes for the process, in order; ends when the client's input ended or it detached. */
  stream: Readable;
  /** Resolves once `stream` ended: true when it was the detach keys, false when the input ended. */
  ended: Promise<boolean>;
}

/** The stdin a process gets from `input`: filtered for `detachKeys` when given (a TTY). */
export function stdinSource(input: Readable, detachKeys?: Buffer): StdinSource {
  let detached = false;
  const scanner = detachKeys && detachKeys.length ? new EscapeScanner(detachKeys) : undefined;
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      if (detached) return cb();
      if (!scanner) return cb(null, chunk);
      const r = scanner.push(chunk);
      if (r.pass.length) this.push(r.pass);
      if (r.detached) {
        detached = true;
        input.unpipe(t);
        input.resume(); // the rest of the client's bytes are read and dropped
        this.push(null);
      }
      cb();
    },
    flush(cb) {
      const held = scanner?.flush();
      cb(null, held && held.length ? held : undefined);
    },
  });
  const ended = new Promise<boolean>((resolve) => {
    t.once('end', () => resolve(detached));
    t.once('close', () => resolve(detached));
    input.once('error', () => resolve(false));
  });
  input.pipe(t);
  return { stream: t, ended };
}
