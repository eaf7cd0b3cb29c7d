/**
 * Network namespaces of a root: a namespace file under <root>/run/netns/<container id> (an nsfs
 * bind mount, like `ip netns` makes under /run/netns, but in hull's own directory so no name is
 * shared with anyone), made with util-linux unshare, which also brings its loopback up.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { shq } from '../util/shell.js';
import { HullError } from '../errors.js';

/** Runs a short command to completion; its stdout, or INTERNAL naming `what` with its message. */
export function run(argv: string[], what: string, input?: string, env?: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawn(argv[0]!, argv.slice(1), { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], env });
    let out = '';
    let err = '';
    c.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    c.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    c.on('error', (e) => reject(new HullError('UNAVAILABLE', `cannot run ${argv[0]}: ${e.message}`, { cause: e })));
    c.on('close', (code) => (code === 0 ? resolve(out) : reject(new HullError('INTERNAL', `${what} failed: ${(err || out).trim() || `exit ${code}`}`))));
    if (input !== undefined) c.stdin!.end(input);
  });
}

/** Whether `file` is a mounted namespace file (listed in this process's mountinfo). */
export function netnsMounted(file: string): boolean {
  const mi = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  return mi.split('\n').some((l) => l.split(' ')[4] === file);
}

/** Makes the namespace file `file` with loopback up. Undoes itself on failure. */
export async function createNetns(file: string): Promise<void> {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o711 });
  fs.writeFileSync(file, '', { mode: 0o444 });
  try {
    await run(['unshare', `--net=${file}`, 'ip', 'link', 'set', 'lo', 'up'], `making network namespace ${file}`);
  } catch (e) {
    await removeNetns(file).catch(() => undefined);
    throw e;
  }
}

/**
 * Shell lines that delete host-side links and then the namespace file (pure). Deleting a veth
 * deletes its peer at once; the namespace itself (and what is left in it: taps, loopback) goes
 * when the last reference, this mount, is dropped.
 */
export function teardownScript(links: string[], netns: string | undefined): string {
  const lines = links.filter((l) => /^[A-Za-z0-9_.-]{1,15}$/.test(l)).map((l) => `ip link del dev ${l} 2>/dev/null || true`);
  if (netns) lines.push(`umount ${shq(netns)} 2>/dev/null || true`, `rm -f ${shq(netns)}`);
  return lines.join('\n');
}

export async function removeNetns(file: string): Promise<void> {
  await run(['sh', '-c', teardownScript([], file)], `removing network namespace ${file}`);
}


export { shq };
