/**
 * Running programs for a contrast, timed from the caller's side: wall clock with
 * process.hrtime from spawn to the exit of the process, output collected (bounded).
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { packageRoot } from '../paths.js';

export interface Timed {
  code: number;
  stdout: string;
  stderr: string;
  /** Wall time from spawn to exit, milliseconds. */
  ms: number;
}

/** Output kept per stream, bytes; the rest is dropped (a probe prints a few KiB). */
const MAX_OUTPUT = 1 << 20;

/** Children that are running now, so an interrupt can wait for them. */
const live = new Set<Promise<unknown>>();

/**
 * Spawn `cmd args` and resolve when it has exited. Never rejects for a non-zero exit; a
 * program that cannot be started resolves with code 127 and the error in stderr.
 * @param timeoutMs kill (SIGKILL) after this long, milliseconds; default 120000.
 * @param signal stop the program (SIGTERM) when it aborts, e.g. a server run for a while.
 */
export function timedRun(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string; signal?: AbortSignal } = {}): Promise<Timed> {
  const p = new Promise<Timed>((resolve) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, {
      env: opts.env ?? process.env,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      // Own process group: a Ctrl-C at the terminal reaches the contrast only, which then
      // lets each child finish and removes what it made.
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      if (stdout.length < MAX_OUTPUT) stdout += d;
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < MAX_OUTPUT) stderr += d;
    });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    const stop = () => child.kill('SIGTERM');
    if (opts.signal?.aborted) stop();
    else opts.signal?.addEventListener('abort', stop, { once: true });
    const timer = setTimeout(() => {
      stderr += `\n(killed after ${opts.timeoutMs ?? 120_000} ms)`;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 120_000);
    let done = false;
    const finish = (code: number) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', stop);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      resolve({ code, stdout, stderr, ms });
    };
    child.on('error', (e) => {
      stderr += e.message;
      finish(127);
    });
    child.on('close', (code, sig) => finish(code ?? (sig ? 128 + 9 : 1)));
  });
  live.add(p);
  void p.finally(() => live.delete(p));
  return p;
}

/** Wait until every child started by timedRun has exited. */
export async function settleChildren(): Promise<void> {
  while (live.size) await Promise.allSettled([...live]);
}

/** bin/hull of this installation. */
export function hullBin(): string {
  return path.join(packageRoot(), 'bin', 'hull');
}

/** Run the hull CLI of this installation (bin/hull, a shell launcher) against `root`. */
export function runHull(root: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Timed> {
  return timedRun(hullBin(), ['--root', root, ...args], opts);
}

/** The last non-empty line of a program's stderr (hull's own `hint:` lines aside), for error messages. */
export function lastLine(text: string): string {
  return text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('hint:')).pop() ?? '';
}
