/**
 * docker top (pure parts): `ps` arguments checked as docker checks them, and ps output turned
 * into docker's {Titles, Processes} (swagger: ContainerTopResponse). A container's rows are the
 * host's `ps` filtered to its cgroup's pids; a VM's come from `ps` inside its guest, without the
 * guest kernel's threads and the ps that listed them.
 */
import { invalid } from '../errors.js';

export interface TopResult {
  Titles: string[];
  Processes: string[][];
}

/** docker's default ps arguments. */
export const DEFAULT_PS_ARGS = '-ef';

/** docker's validatePSArgs: `KEY=PID...` only as pid=...; arguments split on spaces. */
export function psArgv(psArgs: string | undefined): string[] {
  const a = psArgs ?? DEFAULT_PS_ARGS;
  for (const m of ` ${a}`.matchAll(/\s+(\S*)=\s*(PID\S*)/g)) {
    if (m[1] !== 'pid') throw invalid(`specifying "${m[1]}=${m[2]}" is not allowed`);
  }
  if (/[\0\n]/.test(a)) throw invalid('ps arguments must be on one line');
  return a.split(' ').filter(Boolean);
}

/**
 * docker's parsePSOutput: the header's fields are the titles, rows whose PID is in `keep` (all
 * rows when undefined) are kept, the last column takes the rest of the line. Threads (PID "-")
 * follow the process before them.
 */
export function parsePs(output: string, keep?: (pid: number, fields: string[], titles: string[]) => boolean): TopResult {
  const lines = output.split('\n');
  const titles = (lines[0] ?? '').trim().split(/\s+/).filter(Boolean);
  const pidIndex = titles.indexOf('PID');
  if (pidIndex < 0) throw invalid("Couldn't find PID field in ps output");
  const out: string[][] = [];
  let lastKept = false;
  for (const line of lines.slice(1)) {
    if (!line.trim()) continue;
    const fields = line.trim().split(/\s+/);
    const merge = () => [...fields.slice(0, titles.length - 1), fields.slice(titles.length - 1).join(' ')];
    if (fields[pidIndex] === '-') {
      if (lastKept) out.push(merge());
      continue;
    }
    const pid = Number(fields[pidIndex]);
    if (!Number.isInteger(pid)) throw invalid(`unexpected pid '${fields[pidIndex]}' in ps output`);
    lastKept = !keep || keep(pid, fields, titles);
    if (lastKept) out.push(merge());
  }
  return { Titles: titles, Processes: out };
}

/** A guest row to leave out: a kernel thread (its command in brackets), or the `ps` that made the list. */
export function guestNoise(fields: string[], titles: string[], argv: string[]): boolean {
  const cmdAt = titles.findIndex((t) => ['CMD', 'COMMAND', 'ARGS'].includes(t));
  if (cmdAt < 0) return false;
  const cmd = fields.slice(cmdAt).join(' ');
  return /^\[.*\]$/.test(cmd) || cmd === ['ps', ...argv].join(' ');
}
