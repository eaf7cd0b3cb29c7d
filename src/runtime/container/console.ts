/**
 * The terminal of a foreground `crun run` / `crun exec` with a TTY, held by hull-console
 * (native/hull-console.c) instead of crun. crun copies the terminal in its own loop and sends
 * whatever is still unread when the process exits to its log or stderr as error messages; that
 * lost or mangled the end of a session's output (`exec -it` then even looked like a failed
 * exec). hull-console takes the terminal's master over crun's --console-socket, copies it, and
 * drains it after the process has exited. Detached runs have conmon for this.
 */
import fs from 'node:fs';
import path from 'node:path';
import { HullError } from '../../errors.js';
import { packageRoot } from '../../paths.js';

/** Path of the hull-console helper (built by set-up into build/bin); HULL_CONSOLE overrides. */
export function consoleHelper(env: NodeJS.ProcessEnv = process.env): string {
  const p = env.HULL_CONSOLE ?? path.join(packageRoot(), 'build', 'bin', 'hull-console');
  if (!fs.existsSync(p)) throw new HullError('UNAVAILABLE', `the helper ${p} is missing`, { hint: 'run scripts/setup.sh (it builds build/bin/hull-console)' });
  return p;
}

export interface ConsoleOptions {
  /** Copy stdin to the terminal (docker's -i). */
  stdin: boolean;
  /** A FIFO the helper makes: each "ROWS COLS" line written to it resizes the terminal. */
  resizeFifo?: string;
}

/**
 * The argv that runs `runtime` (which must carry `--console-socket socket`) under the helper
 * (pure): `hull-console SOCKET [--resize FIFO] [--stdin] -- RUNTIME...`. The first window size
 * is hull's own terminal's, or the process's consoleSize (the runtime applies it).
 */
export function consoleArgv(helper: string, socket: string, runtime: string[], o: ConsoleOptions): string[] {
  return [helper, socket, ...(o.resizeFifo ? ['--resize', o.resizeFifo] : []), ...(o.stdin ? ['--stdin'] : []), '--', ...runtime];
}

/** The line that resizes a terminal through the helper's FIFO (pure). */
export function resizeRequest(rows: number, cols: number): string {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows <= 0 || cols <= 0 || rows > 65535 || cols > 65535) {
    throw new HullError('INVALID_ARGUMENT', `a terminal size must be positive integers below 65536 (got ${rows}x${cols})`);
  }
  return `${rows} ${cols}\n`;
}

/** Resize through the FIFO; false when the helper no longer reads it (the session ended). */
export function resizeConsole(fifo: string, rows: number, cols: number): boolean {
  const line = resizeRequest(rows, cols);
  let fd: number;
  try {
    fd = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  } catch {
    return false;
  }
  try {
    fs.writeSync(fd, line);
    return true;
  } catch {
    return false;
  } finally {
    fs.closeSync(fd);
  }
}
