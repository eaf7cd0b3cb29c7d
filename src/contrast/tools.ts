/**
 * Debian's own tools run inside the walls: a host binary (fio, iperf3, sockperf) copied with
 * every shared library `ldd` lists and the dynamic loader into one directory, which is mounted
 * into the instances (read-only) and run through that loader with --library-path. So the same
 * binary and the same libraries run on the bare host and inside each wall, whatever libc the
 * image has (busybox's is static).
 */
import fs from 'node:fs';
import path from 'node:path';
import { findExecutable } from './hostfacts.js';
import { lastLine, timedRun } from './spawn.js';

/** Pure: the libraries (and the loader) `ldd` lists for a binary. */
export function parseLdd(text: string): { libs: string[]; loader?: string } {
  const libs: string[] = [];
  let loader: string | undefined;
  for (const l of text.split('\n')) {
    if (/not found/.test(l)) throw new Error(`ldd: ${l.trim()}`);
    const arrow = /=>\s+(\/\S+)/.exec(l);
    if (arrow) libs.push(arrow[1]!);
    else if (/^\s*\/\S+\s+\(0x/.test(l)) loader = l.trim().split(/\s+/)[0];
  }
  return { libs, loader };
}

/** Pure: the command line that runs `tool` from the tools directory mounted at `mount`. */
export function shippedCommand(mount: string, loader: string, tool: string): string {
  return `${mount}/${path.basename(loader)} --library-path ${mount} ${mount}/${tool}`;
}

/**
 * Copy `tools` (found on the host's PATH) and every library they load into `dir` (mode 0755,
 * files 0755: readable by a container's unprivileged root under --userns=auto). Returns the
 * loader's path on the host; throws naming the missing tool and its Debian package.
 */
export async function shipTools(dir: string, tools: string[]): Promise<{ loader: string; bytes: number }> {
  let loader: string | undefined;
  let bytes = 0;
  for (const tool of tools) {
    const bin = findExecutable(tool);
    if (!bin) throw new Error(`${tool} is not installed (apt-get install ${tool})`);
    const l = await timedRun('ldd', [bin]);
    if (l.code !== 0) throw new Error(`ldd ${bin}: ${lastLine(l.stderr)}`);
    const p = parseLdd(l.stdout);
    if (!p.loader) throw new Error(`ldd ${bin} names no dynamic loader`);
    loader = p.loader;
    for (const [from, name] of [[bin, tool], ...[...p.libs, p.loader].map((x) => [x, path.basename(x)])] as Array<[string, string]>) {
      const to = path.join(dir, name);
      if (fs.existsSync(to)) continue;
      fs.copyFileSync(fs.realpathSync(from), to);
      bytes += fs.statSync(to).size;
    }
  }
  for (const f of fs.readdirSync(dir)) fs.chmodSync(path.join(dir, f), 0o755);
  fs.chmodSync(dir, 0o755);
  return { loader: loader!, bytes };
}
