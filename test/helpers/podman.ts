/**
 * A throw-away podman for interop tests: its own root and short runroot under /tmp, vfs
 * storage, cgroupfs, no events; runc on a cgroup v1 hybrid host (crun refuses it). Everything
 * podman made is removed afterwards.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export function havePodman(): boolean {
  return spawnSync('sh', ['-c', 'command -v podman']).status === 0;
}

/** `podman run` flags for this host: no network, the ulimits the nofile hard limit allows. */
export function podmanRunFlags(): string[] {
  const nofile = spawnSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).stdout.trim();
  return ['--network', 'none', '--ulimit', `nofile=${nofile}:${nofile}`, '--ulimit', 'nproc=32768:32768'];
}

/** Run `fn` with the global flags of a fresh podman; its images and directories go afterwards. */
export function withPodman<T>(fn: (global: string[]) => T): T {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-podman-'));
  const runroot = fs.mkdtempSync('/tmp/hpm-'); // podman wants a short runroot
  const hybrid = fs.existsSync('/sys/fs/cgroup/unified') && !fs.existsSync('/sys/fs/cgroup/cgroup.controllers');
  const g = ['--root', path.join(dir, 'root'), '--runroot', runroot, '--storage-driver', 'vfs', '--cgroup-manager', 'cgroupfs', '--events-backend', 'none', '--log-level', 'error', ...(hybrid ? ['--runtime', 'runc'] : [])];
  try {
    return fn(g);
  } finally {
    spawnSync('podman', [...g, 'rmi', '-a', '-f'], { encoding: 'utf8' });
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(runroot, { recursive: true, force: true });
  }
}
