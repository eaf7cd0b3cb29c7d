/**
 * conmon (Debian's, the monitor Podman uses) watches a detached container: it calls the runtime's
 * `create`, holds the container's stdio and writes it to a log file (k8s-file format, one line
 * per chunk with a timestamp and stream), records the exit code in --exit-dir and then runs
 * hull's exit hook. About 1 MiB of memory per container; it outlives the hull CLI.
 */
import { spawn } from 'node:child_process';
import { HullError, unavailable } from '../../errors.js';
import { which } from './runtime.js';

export interface ConmonPlan {
  conmon: string;
  id: string;
  name: string;
  /** Script that forwards to the OCI runtime (runtime.ts conmonRuntimeScript). */
  runtime: string;
  bundle: string;
  /** File conmon writes the container's pid to. */
  pidFile: string;
  /** File conmon writes its own pid to. */
  conmonPidFile: string;
  /** k8s-file log of the container's output. */
  logPath: string;
  /** Directory conmon writes `<id>` (the exit code) into. */
  exitDir: string;
  /** Directory for conmon's attach socket. */
  socketDir: string;
  terminal: boolean;
  stdin: boolean;
  /**
   * Close the container's stdin when an attach connection's input ends (docker's StdinOnce,
   * without a TTY); otherwise conmon runs with --leave-stdin-open and stdin outlives attaches.
   */
  stdinOnce?: boolean;
  /** Program and args conmon runs after the container exited. */
  exitCommand: string[];
  /** Descriptors conmon inherits and holds until it ends (published host ports). */
  heldFds?: number[];
}

/** conmon's argv (without the program). */
export function conmonArgs(p: ConmonPlan): string[] {
  const a = [
    '--api-version', '1',
    '-c', p.id, '-u', p.id, '-n', p.name,
    '-r', p.runtime,
    '-b', p.bundle,
    '-p', p.pidFile,
    '-P', p.conmonPidFile,
    '-l', `k8s-file:${p.logPath}`,
    '--exit-dir', p.exitDir,
    '--socket-dir-path', p.socketDir,
    '--log-level', 'error',
  ];
  if (p.terminal) a.push('-t');
  if (p.stdin) a.push('-i');
  if (p.stdin && !(p.stdinOnce && !p.terminal)) a.push('--leave-stdin-open');
  if (p.exitCommand.length) {
    a.push('--exit-command', p.exitCommand[0]!);
    for (const x of p.exitCommand.slice(1)) a.push('--exit-command-arg', x);
  }
  return a;
}

export function findConmon(): string {
  const p = which('conmon') ?? ['/usr/libexec/podman/conmon', '/usr/bin/conmon'].find((x) => which(x));
  if (!p) throw unavailable('conmon not found: detached containers need it as their monitor', { hint: 'apt-get install conmon' });
  return p;
}

/**
 * Start conmon and wait until the container is created (not yet started). conmon reports the
 * container's pid, or the runtime's error, as JSON on the sync pipe (fd 3, `_OCI_SYNCPIPE`).
 * @param cwd conmon's working directory (it may drop files there, e.g. `oom`).
 * @returns the container's pid.
 */
export function startConmon(p: ConmonPlan, cwd: string, timeoutMs = 60_000): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(p.conmon, conmonArgs(p), {
      cwd,
      detached: true,
      stdio: ['ignore', 'ignore', 'ignore', 'pipe', ...(p.heldFds ?? [])],
      env: { ...process.env, _OCI_SYNCPIPE: '3' },
    });
    const sync = child.stdio[3] as NodeJS.ReadableStream & { destroy(): void };
    let buf = '';
    let done = false;
    const finish = (err: Error | null, pid?: number) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sync.destroy();
      child.unref();
      if (err) reject(err);
      else resolve(pid!);
    };
    const timer = setTimeout(() => finish(new HullError('UNAVAILABLE', `conmon did not report within ${timeoutMs / 1000}s`)), timeoutMs);
    sync.setEncoding('utf8');
    sync.on('data', (d: string) => {
      buf += d;
      // conmon writes one JSON object per message: {"data": pid} or {"data": -1, "message": "..."}
      const m = /\{[^{}]*\}/.exec(buf);
      if (!m) return;
      let msg: { data?: number; pid?: number; message?: string };
      try {
        msg = JSON.parse(m[0]) as typeof msg;
      } catch {
        return;
      }
      const pid = msg.data ?? msg.pid ?? -1;
      if (pid > 0) finish(null, pid);
      else finish(new HullError('INTERNAL', `the container could not be created: ${(msg.message ?? 'no message').trim()}`));
    });
    sync.on('end', () => finish(new HullError('INTERNAL', 'conmon exited without reporting the container (see the runtime log)')));
    child.on('error', (e) => finish(new HullError('UNAVAILABLE', `cannot run conmon: ${e.message}`, { cause: e })));
  });
}
