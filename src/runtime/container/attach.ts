/**
 * Stdin of a detached container: conmon holds the container's stdin (a pipe, or the terminal's
 * master) and takes input from its attach socket, a SOCK_SEQPACKET unix socket `attach` in the
 * bundle directory. Node cannot speak SOCK_SEQPACKET, so hull-attach (native/hull-attach.c)
 * does: it copies its stdin there packet by packet and ends when its stdin ends. Backpressure
 * runs through the pipe to the helper: input is read only as fast as the container takes it.
 *
 * Called once the container runs: conmon listens on the socket before it creates the container.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { Channel } from '../stdin-channel.js';
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

/** Helpers this process started; killed when it exits (conmon keeps the container's stdin as it is). */
const helpers = new Set<ChildProcess>();
let exitHook = false;

/**
 * The stdin channel of a running container (stdin-channel.ts): one hull-attach connection to
 * conmon, fed by every attach in turn. Ending the sink ends the helper's input: it shuts its
 * side down, and conmon closes the container's stdin unless it was told --leave-stdin-open.
 * The channel is gone once conmon closed the connection (the container's end). A container
 * whose attach socket is gone (its run is over) gets a channel that drops what it is given.
 */
export function conmonChannel(dir: string): Channel {
  const sock = attachSocketPath(dir);
  if (!fs.existsSync(sock)) return { sink: new Writable({ write: (_c, _e, cb) => cb() }), gone: Promise.resolve() };
  const child = spawn(attachHelper(), [sock], { stdio: ['pipe', 'ignore', 'pipe'] });
  helpers.add(child);
  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => {
      for (const c of helpers) c.kill('SIGKILL');
    });
  }
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-2000)));
  child.stdin!.on('error', () => undefined); // EPIPE once the helper ended
  const gone = new Promise<void>((resolve) => {
    child.on('error', (e) => {
      process.stderr.write(`hull: cannot run ${attachHelper()}: ${e.message}\n`);
      resolve();
    });
    child.on('close', (code) => {
      helpers.delete(child);
      // 0: conmon closed the connection; 3: nothing listens any more (the run is over)
      if (code !== 0 && code !== 3 && code !== null && fs.existsSync(sock)) process.stderr.write(`hull: stdin of the container: ${err.trim() || `hull-attach exited with ${code}`}\n`);
      resolve();
    });
  });
  return { sink: child.stdin!, gone };
}
