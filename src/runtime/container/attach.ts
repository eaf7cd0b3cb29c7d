/**
 * Stdin of a detached container: conmon holds the container's stdin (a pipe, or the terminal's
 * master) and takes input from its attach socket, a SOCK_SEQPACKET unix socket `attach` in the
 * bundle directory. Node cannot speak SOCK_SEQPACKET, so hull-attach (native/hull-attach.c)
 * does: it copies its stdin there packet by packet and ends when its stdin ends. Backpressure
 * runs through the pipe to the helper: `input` is read only as fast as the container takes it.
 *
 * Called once the container runs: conmon listens on the socket before it creates the container.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { HullError } from '../../errors.js';
import { packageRoot } from '../../paths.js';

/** Path of the hull-attach helper (built by set-up into build/bin); HULL_ATTACH overrides. */
export function attachHelper(env: NodeJS.ProcessEnv = process.env): string {
  const p = env.HULL_ATTACH ?? path.join(packageRoot(), 'build', 'bin', 'hull-attach');
  if (!fs.existsSync(p)) throw new HullError('UNAVAILABLE', `the helper ${p} is missing`, { hint: 'run scripts/setup.sh (it builds build/bin/hull-attach)' });
  return p;
}

/** conmon's attach socket of the container whose bundle directory is `dir`. */
export function attachSocketPath(dir: string): string {
  return path.join(dir, 'attach');
}

/**
 * Copy `input` into the container's stdin; resolves once `input` ended and all of it went in
 * (the helper then shut its side down, and conmon closes the container's stdin unless it runs
 * with --leave-stdin-open), once the container's side closed, or when `signal` aborts. The
 * helper keeps reading the connection until conmon closes it or `signal` aborts (then it is
 * killed; stdin stays open). Rejects when the socket cannot be reached for another reason than
 * the container being gone.
 */
export function forwardToConmon(dir: string, input: Readable, signal: AbortSignal): Promise<void> {
  const sock = attachSocketPath(dir);
  if (!fs.existsSync(sock) || signal.aborted) return Promise.resolve(); // the run is over
  return new Promise((resolve, reject) => {
    const child = spawn(attachHelper(), [sock], { stdio: ['pipe', 'pipe', 'pipe'] });
    let err = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-2000)));
    child.stdout!.once('data', () => resolve()); // "E": the input's end went in
    const stop = () => child.kill('SIGKILL');
    signal.addEventListener('abort', stop);
    child.stdin!.on('error', () => undefined); // EPIPE once the helper ended
    input.pipe(child.stdin!);
    child.on('error', (e) => {
      signal.removeEventListener('abort', stop);
      input.unpipe(child.stdin!);
      reject(new HullError('UNAVAILABLE', `cannot run ${attachHelper()}: ${e.message}`, { cause: e }));
    });
    child.on('close', (code) => {
      signal.removeEventListener('abort', stop);
      input.unpipe(child.stdin!);
      // 3: nothing listens (the monitor has gone since): the run is over, nothing to deliver to
      if (code === 0 || code === 3 || signal.aborted || !fs.existsSync(sock)) resolve();
      else reject(new HullError('INTERNAL', `stdin of the container: ${err.trim() || `hull-attach exited with ${code}`}`));
    });
  });
}
