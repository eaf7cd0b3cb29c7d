/**
 * Terminal resize of a container under conmon: conmon reads control messages from the `ctl`
 * FIFO in the container's directory; "1 <rows> <cols>\n" sets the TTY's window size. Opened
 * non-blocking, so a container without a monitor (exited, or a VM) is a no-op, never a hang.
 */
import fs from 'node:fs';
import path from 'node:path';

/** The control line conmon takes for a window size. Pure. */
export function resizeLine(rows: number, cols: number): string {
  return `1 ${rows} ${cols}\n`;
}

/** Apply a window size; returns false when no monitor listens (nothing to resize). */
export function resizeTty(logPath: string, rows: number, cols: number): boolean {
  const ctl = path.join(path.dirname(logPath), 'ctl');
  let fd: number;
  try {
    fd = fs.openSync(ctl, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  } catch {
    return false;
  }
  try {
    if (!fs.fstatSync(fd).isFIFO()) return false;
    fs.writeSync(fd, resizeLine(rows, cols));
    return true;
  } catch {
    return false;
  } finally {
    fs.closeSync(fd);
  }
}
