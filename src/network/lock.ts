/**
 * An exclusive lock across processes on a file, held while an async function runs: util-linux
 * `flock FILE cat` holds the kernel lock for as long as its stdin stays open. The lock is ours
 * once cat echoes a byte back; closing stdin releases it. When this process dies, the pipe
 * closes and the kernel releases the lock: a killed hull never leaves a lock behind.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { HullError } from '../errors.js';

/**
 * Runs `fn` while holding the lock on `file` (created if missing).
 * @param timeoutMs how long to wait for the lock (default 60 s); UNAVAILABLE after that.
 */
export async function withFileLock<T>(file: string, fn: () => Promise<T>, timeoutMs = 60_000): Promise<T> {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o711 });
  const holder = spawn('flock', ['--timeout', String(Math.ceil(timeoutMs / 1000)), file, 'cat'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  holder.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const closed = new Promise<number | null>((r) => holder.on('close', (code) => r(code)));
  await new Promise<void>((resolve, reject) => {
    holder.on('error', (e) => reject(new HullError('UNAVAILABLE', `cannot run flock: ${e.message}`, { cause: e, hint: 'apt-get install util-linux' })));
    holder.stdout.once('data', () => resolve());
    void closed.then((code) => reject(new HullError('UNAVAILABLE', `could not lock ${file}${code === 1 ? ` within ${timeoutMs / 1000} s` : ''}: ${err.trim() || `flock exit ${code}`}`)));
    holder.stdin.write('L');
  });
  try {
    return await fn();
  } finally {
    holder.stdin.end();
    await closed;
  }
}
