/**
 * One stdin stream per running instance, shared by its attaches. Each attach used to open its own
 * connection to the monitor (conmon's attach socket, the VM agent's control port), and the
 * monitor reads its connections side by side: the tail of one attach's input could reach the
 * process after the head of the next one's (`head -c 2MiB` then hashed bytes out of order).
 * Here the first attach opens the channel and every later one writes into the same byte stream,
 * so input keeps the order in which it arrived. The channel closes when the instance's side
 * goes (its run ended) or when an attach ends it (docker's StdinOnce).
 */
import type { Readable, Writable } from 'node:stream';

export interface Channel {
  /** Bytes written here reach the process's stdin in order (with backpressure). */
  sink: Writable;
  /** Settles when the instance's side closed (its run ended) or the channel failed. */
  gone: Promise<void>;
}

export class StdinChannels {
  private readonly open = new Map<string, Channel>();

  /**
   * Write `input` into the channel of `key` (one run of one instance; the first call opens it
   * with `make`) until `input` ends, the
   * channel goes or `signal` aborts; with `closeAtEnd` the end of `input` ends the channel
   * (the process's stdin is closed). Resolves once the input's bytes went into the channel.
   */
  feed(key: string, input: Readable, closeAtEnd: boolean, signal: AbortSignal, make: () => Channel): Promise<void> {
    let ch = this.open.get(key);
    if (!ch) {
      const made = make();
      ch = made;
      this.open.set(key, made);
      void made.gone.finally(() => {
        if (this.open.get(key) === made) this.open.delete(key);
      });
    }
    const { sink, gone } = ch;
    return new Promise<void>((resolve) => {
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        input.off('data', onData);
        input.off('end', onEnd);
        signal.removeEventListener('abort', finish);
        resolve();
      };
      const onData = (d: Buffer | string) => {
        if (!sink.writable) return;
        if (!sink.write(d)) {
          input.pause();
          sink.once('drain', () => input.resume());
        }
      };
      const onEnd = () => {
        if (!sink.writable) return finish();
        if (closeAtEnd) {
          this.open.delete(key);
          sink.end(() => finish());
        } else {
          sink.write(Buffer.alloc(0), () => finish());
        }
      };
      void gone.then(finish, finish);
      signal.addEventListener('abort', finish);
      input.on('data', onData);
      input.on('end', onEnd);
      input.resume();
    });
  }

  /** End every open channel's writer (the server is going away; the processes' stdin stays as it is). */
  closeAll(): void {
    for (const ch of this.open.values()) ch.sink.destroy();
    this.open.clear();
  }
}
