/**
 * Docker's detach keys (pure): the key sequence that, typed into the stdin of a TTY attach or
 * exec, detaches the client instead of reaching the process (`docker attach`: ctrl-p,ctrl-q).
 * Docker looks for it only with a TTY; without one every byte goes through.
 */
import { invalid } from '../errors.js';

/** docker's default: ctrl-p, ctrl-q. */
export const DEFAULT_DETACH_KEYS = Buffer.from([0x10, 0x11]);

const CTRL = ['@', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', 'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', '[', '\\', ']', '^', '_'];

/**
 * "ctrl-p,ctrl-q" -> bytes, as moby/term's ToBytes: each comma-separated key is one character,
 * `ctrl-<c>` (c one of a-z @ [ \ ] ^ _) or DEL. Undefined or '' -> the default.
 */
export function parseDetachKeys(spec: string | undefined): Buffer {
  if (spec === undefined || spec === '') return DEFAULT_DETACH_KEYS;
  const out: number[] = [];
  for (const key of spec.split(',')) {
    if (key.length === 1) {
      out.push(key.charCodeAt(0) & 0xff);
      continue;
    }
    const m = /^ctrl-(.)$/.exec(key);
    const i = m ? CTRL.indexOf(m[1]!) : -1;
    if (i >= 0) out.push(i);
    else if (key === 'DEL') out.push(127);
    else throw invalid(`Invalid detach keys (${spec}) provided: unknown key '${key}'`);
  }
  return Buffer.from(out);
}

/**
 * Finds the detach sequence in a byte stream that arrives in chunks: bytes that may start the
 * sequence are held back until the next chunk tells (and given back when they do not).
 */
export class EscapeScanner {
  private held = 0;
  private done = false;

  constructor(private readonly keys: Buffer) {}

  /** The bytes to pass on from `chunk`, and whether the sequence was completed in it. */
  push(chunk: Buffer): { pass: Buffer; detached: boolean } {
    if (this.done) return { pass: Buffer.alloc(0), detached: true };
    const out: number[] = [];
    // bytes still to look at: a held prefix that broke off is looked at again from its second byte
    const todo: number[] = [];
    let i = 0;
    const next = (): number | undefined => (todo.length ? todo.shift() : i < chunk.length ? chunk[i++] : undefined);
    for (let b = next(); b !== undefined; b = next()) {
      if (b === this.keys[this.held]) {
        if (++this.held === this.keys.length) {
          this.done = true;
          return { pass: Buffer.from(out), detached: true };
        }
      } else if (this.held === 0) {
        out.push(b);
      } else {
        out.push(this.keys[0]!);
        todo.unshift(...this.keys.subarray(1, this.held), b);
        this.held = 0;
      }
    }
    return { pass: Buffer.from(out), detached: false };
  }

  /** Bytes held back at the end of the input (a partial sequence that never completed). */
  flush(): Buffer {
    const b = Buffer.from(this.keys.subarray(0, this.held));
    this.held = 0;
    return b;
  }
}
