/**
 * Stdin of a container the monitor runs (`docker run -i`, `docker attach`): conmon keeps the
 * container's stdin (or TTY master) and takes input from its attach socket, a SOCK_SEQPACKET
 * unix socket `attach` in the container's directory. Node's net module cannot speak
 * SOCK_SEQPACKET, so node-unix-socket (a small native addon) does. Closing our side makes
 * conmon close the container's stdin, which is docker's StdinOnce behaviour.
 *
 * The client may attach and send input before the container started: input waits (buffered
 * by the stream, with backpressure) until the socket appears.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';

/** conmon reads at most this much per packet. */
const PACKET = 8192;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Seqpacket {
  connect(p: string, cb?: () => void): void;
  write(b: Buffer, off?: number, len?: number, cb?: () => void): void;
  end(cb?: () => void): void;
  destroy(): void;
  on(ev: string, fn: (...a: unknown[]) => void): void;
}

/** The attach socket of the container whose log is `logPath` (both live in its directory). */
export function attachSocketPath(logPath: string): string {
  return path.join(path.dirname(logPath), 'attach');
}

/**
 * Forward `input` to the container's stdin until `input` ends (then close stdin), the run
 * ends (`ended`), or `signal` aborts.
 */
export async function forwardStdin(logPath: string, input: Readable, ended: Promise<unknown>, signal: AbortSignal): Promise<void> {
  let over = false;
  void ended.then(
    () => (over = true),
    () => (over = true),
  );
  const sockPath = attachSocketPath(logPath);
  input.pause();
  while (!fs.existsSync(sockPath)) {
    if (over || signal.aborted) return;
    await sleep(20);
  }
  let mod: { SeqpacketSocket: new () => Seqpacket };
  try {
    mod = (await import('node-unix-socket')) as unknown as typeof mod;
  } catch (e) {
    process.stderr.write(`hull serve: cannot forward stdin (node-unix-socket is missing: ${(e as Error).message})\n`);
    return;
  }
  const sock = new mod.SeqpacketSocket();
  await new Promise<void>((resolve) => {
    sock.on('error', () => resolve());
    sock.on('data', () => undefined); // output is read from the log
    sock.connect(sockPath, () => resolve());
  });
  const closeAll = () => {
    input.destroy();
    try {
      sock.destroy();
    } catch {
      /* already closed */
    }
  };
  signal.addEventListener('abort', closeAll);
  void ended.then(closeAll, closeAll);
  try {
    for await (const chunk of input) {
      const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
      for (let off = 0; off < buf.length; off += PACKET) {
        const part = buf.subarray(off, Math.min(buf.length, off + PACKET));
        await new Promise<void>((resolve) => {
          try {
            sock.write(part, 0, part.length, () => resolve());
          } catch {
            resolve();
          }
        });
      }
    }
    // End of input: close the container's stdin.
    await new Promise<void>((resolve) => {
      try {
        sock.end(() => resolve());
      } catch {
        resolve();
      }
    });
  } catch {
    /* the client or the socket went away */
  } finally {
    signal.removeEventListener('abort', closeAll);
  }
}
