/** Small host facts the drivers need: rlimits, the cgroup2 mount crun must not see, executables. */
import fs from 'node:fs';
import path from 'node:path';

/** Hard limit of `name` ('Max open files', 'Max processes') from /proc/self/limits; undefined if unlimited. */
export function hardLimit(name: string, limitsText?: string): number | undefined {
  const text = limitsText ?? fs.readFileSync('/proc/self/limits', 'utf8');
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const cols = line.slice(name.length).trim().split(/\s+/);
    const v = cols[1];
    return v && /^\d+$/.test(v) ? Number(v) : undefined;
  }
  return undefined;
}

/**
 * On a cgroup v1 "hybrid" host crun refuses to run while a cgroup2 mount with controllers is
 * visible; the argv returned runs `argv` in a private mount namespace with it unmounted.
 */
export function hybridSafe(argv: string[], hybrid: boolean, unified = '/sys/fs/cgroup/unified'): string[] {
  if (!hybrid) return argv;
  return ['unshare', '-m', '--propagation', 'private', 'sh', '-c', `umount ${unified} 2>/dev/null; exec "$@"`, 'sh', ...argv];
}

const SEARCH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

export function findExecutable(name: string): string | undefined {
  for (const d of [...(process.env.PATH ?? '').split(':').filter(Boolean), ...SEARCH]) {
    const p = path.join(d, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** Host view for the isolation comparison: pids, /dev entries, own capability count. */
export function hostView(kernel: string): { kernel: string; pids: number; devices: string[]; capsCount: number } {
  const pids = fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n)).length;
  const devices = fs.readdirSync('/dev').sort();
  const capHex = /^CapEff:\s*([0-9a-f]+)/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '0';
  let n = 0;
  for (let v = BigInt(`0x${capHex}`); v > 0n; v >>= 1n) if (v & 1n) n++;
  return { kernel, pids, devices, capsCount: n };
}
