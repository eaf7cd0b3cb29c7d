/**
 * The OCI runtime driver: which binary (crun, runc, runsc), its global flags, and the small
 * shell wrapper every call goes through when it must.
 *
 * The wrapper (`unshare -m` + a shell) runs the runtime in a private mount namespace:
 *  - for `create`/`run` it mounts the container's overlay root there, so the mount exists only
 *    in namespaces that die with the container: no rootfs mount is ever visible on the host,
 *    and none can leak when hull or the monitor is killed;
 *  - on a cgroup v1 "hybrid" host it unmounts the cgroup2 mount (/sys/fs/cgroup/unified) first,
 *    because crun 1.8 refuses hybrid mode ("cgroups in hybrid mode not supported, drop all
 *    controllers from cgroupv2") but works on plain v1. runc does not need this.
 * Calls that need neither (runc kill, crun state on a v2 host, ...) run the runtime directly.
 */
import fs from 'node:fs';
import path from 'node:path';
import { HullError, invalid, unavailable } from '../../errors.js';
import type { CgroupLayout } from './cgroups.js';

export const RUNTIMES = ['crun', 'runc', 'runsc'] as const;
export type RuntimeName = (typeof RUNTIMES)[number];

const SEARCH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** Absolute path of an executable on PATH (plus the usual sbin dirs), or undefined. */
const whichCache = new Map<string, string | undefined>();

export function which(name: string): string | undefined {
  if (whichCache.has(name)) return whichCache.get(name);
  const found = search(name);
  whichCache.set(name, found);
  return found;
}

function search(name: string): string | undefined {
  if (name.startsWith('/')) return fs.existsSync(name) ? name : undefined;
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), ...SEARCH];
  for (const d of dirs) {
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

export interface OverlayPlan {
  /** Layer directories, bottom first. */
  lower: string[];
  upper: string;
  work: string;
  target: string;
  /**
   * overlayfs `volatile` (Linux 5.10+): no syncs of the upper dir, not even at unmount. For
   * --rm containers, whose upper dir is deleted at exit anyway: the unmount's sync of the upper
   * filesystem took 2-11 ms of every `run --rm` here (crun's exit waits for the namespace that
   * holds the mount). Not for kept containers: after a host crash the kernel refuses to mount a
   * volatile upper dir again.
   */
  volatile?: boolean;
  /**
   * --userns=auto: each lower layer is first bind-mounted idmapped at `targets[i]` (host uid 0
   * seen as `uid`, the container's root) by the hull-idmap helper in the same private mount
   * namespace, and the overlay is made of those: one shared copy of each layer for every range.
   */
  idmap?: { helper: string; uid: number; gid: number; size: number; targets: string[]; binds?: [string, string][] };
}

/** Whether this kernel's overlayfs knows the `volatile` mount option (Linux 5.10). */
export function overlayVolatileSupported(release: string): boolean {
  const m = /^(\d+)\.(\d+)/.exec(release);
  if (!m) return false;
  const major = Number(m[1]);
  return major > 5 || (major === 5 && Number(m[2]) >= 10);
}

/** overlayfs mount options (lowerdir lists the top layer first). */
export function overlayOptions(o: OverlayPlan): string {
  for (const p of [...o.lower, o.upper, o.work]) {
    if (/[,:\s]/.test(p)) throw invalid(`path ${p} cannot be used in an overlay mount (contains ',', ':' or white space)`);
  }
  if (o.lower.length === 0) throw invalid('an image needs at least one layer to run');
  const lower = o.idmap ? o.idmap.targets : o.lower;
  for (const p of lower) if (/[,:\s]/.test(p)) throw invalid(`path ${p} cannot be used in an overlay mount (contains ',', ':' or white space)`);
  return `lowerdir=${[...lower].reverse().join(':')},upperdir=${o.upper},workdir=${o.work}${o.volatile ? ',volatile' : ''}`;
}

/**
 * The wrapper script. Positional parameters: $1 cgroup2 mount to unmount or '-', $2 overlay
 * options or '-', $3 mount target, then the runtime argv. Exit 125 when it could not prepare
 * (the message says why).
 */
export function wrapperScript(): string {
  return [
    'u=$1 o=$2 t=$3; shift 3',
    'if [ "$u" != - ]; then umount "$u" || { echo "hull: cannot unmount $u in the private mount namespace" >&2; exit 125; }; fi',
    'if [ "$o" != - ]; then mount -i -t overlay overlay -o "$o" "$t" || { echo "hull: cannot mount the overlay root at $t" >&2; exit 125; }; fi',
    'exec "$@"',
  ].join('\n');
}

/**
 * The wrapper's shell: the static busybox when present (its shell runs `umount` in-process and
 * `mount` without dynamic loading: a few ms less per start than dash + util-linux), else /bin/sh
 * with util-linux's mount/umount. `mount -i`: no mount.<type> helper search.
 */
function wrapperShell(): string[] {
  return fs.existsSync('/bin/busybox') ? ['/bin/busybox', 'sh'] : ['/bin/sh'];
}

export interface RuntimeDriver {
  name: RuntimeName;
  /** Absolute path of the runtime binary. */
  bin: string;
  /** The runtime's own state directory (--root), private to this hull root. */
  stateDir: string;
  /** Global flags that go before the subcommand. */
  globalArgs: string[];
  /** Whether crun must run with the cgroup2 mount unmounted (hybrid host). */
  unmountUnified?: string;
  /** util-linux unshare (absolute path). */
  unshare: string;
  /** The shell that runs the wrapper script. */
  shell: string[];
}

/**
 * @param name crun | runc | runsc
 * @param stateDir the runtime's --root (hull root/run/<name>)
 */
export function makeDriver(name: string, stateDir: string, layout: CgroupLayout, extra: { network?: 'none' | 'host' | 'netns' } = {}): RuntimeDriver {
  if (!(RUNTIMES as readonly string[]).includes(name)) {
    throw invalid(`unknown runtime "${name}": choose crun, runc or runsc`);
  }
  const bin = which(name);
  if (!bin) {
    const pkg = name === 'runsc' ? 'gVisor (runsc, from gvisor.dev)' : name;
    throw unavailable(`OCI runtime ${name} not found in PATH`, { hint: `install ${pkg}` });
  }
  const globalArgs = ['--root', stateDir];
  // runsc: its own netstack over the namespace's interfaces (netns), the host's, or none
  if (name === 'runsc') globalArgs.push(`--network=${extra.network === 'host' ? 'host' : extra.network === 'netns' ? 'sandbox' : 'none'}`);
  return {
    name: name as RuntimeName,
    bin,
    stateDir,
    globalArgs,
    unmountUnified: name === 'crun' && layout.kind === 'hybrid' ? layout.unified : undefined,
    unshare: which('unshare') ?? 'unshare',
    shell: wrapperShell(),
  };
}

/**
 * Full argv (program first) for one runtime call. `overlay` is mounted first, in the same
 * private mount namespace (create/run only).
 */
export function runtimeArgv(d: RuntimeDriver, sub: string[], overlay?: OverlayPlan): string[] {
  const rt = [d.bin, ...d.globalArgs, ...sub];
  if (!d.unmountUnified && !overlay) return rt;
  const im = overlay?.idmap;
  const pairs = im ? [...overlay!.lower.map((l, i) => [l, im.targets[i]!]), ...(im.binds ?? [])] : [];
  const idmap = im ? [im.helper, String(im.uid), String(im.gid), String(im.size), ...pairs.flat(), '--'] : [];
  return [
    d.unshare, '-m', '--propagation', 'private', ...idmap, ...d.shell, '-c', wrapperScript(), 'hull-oci',
    d.unmountUnified ?? '-', overlay ? overlayOptions(overlay) : '-', overlay?.target ?? '-', ...rt,
  ];
}

/**
 * A script conmon can call as its "runtime": it forwards every call to the runtime, and for
 * `create` first prepares the private mount namespace (overlay root, hybrid cgroup fix).
 */
export function conmonRuntimeScript(d: RuntimeDriver, overlay: OverlayPlan): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const create = runtimeArgv(d, [], overlay).map(q).join(' ');
  const plain = runtimeArgv(d, []).map(q).join(' ');
  return `#!/bin/sh
# Written by hull for conmon: the OCI runtime ${d.name}, run as runtime.ts describes.
for a in "$@"; do
  if [ "$a" = create ]; then exec ${create} "$@"; fi
done
exec ${plain} "$@"
`;
}

/** Subcommands, with each runtime's spelling. */
export const sub = {
  /** With consoleSocket (crun), the terminal's master goes there (runtime/container/console.ts). */
  run(d: RuntimeDriver, bundle: string, id: string, consoleSocket?: string): string[] {
    return ['run', ...(consoleSocket ? ['--console-socket', consoleSocket] : []), '--bundle', bundle, id];
  },
  start(_d: RuntimeDriver, id: string): string[] {
    return ['start', id];
  },
  kill(d: RuntimeDriver, id: string, signal: string, all = false): string[] {
    const sig = signal.replace(/^SIG/, '');
    return all && d.name !== 'runsc' ? ['kill', '--all', id, sig] : ['kill', id, sig];
  },
  delete(d: RuntimeDriver, id: string, force: boolean): string[] {
    return force ? ['delete', d.name === 'runsc' ? '-force' : '--force', id] : ['delete', id];
  },
  exec(d: RuntimeDriver, id: string, processFile: string, tty: boolean, pidFile?: string, consoleSocket?: string): string[] {
    const console = consoleSocket ? ['--console-socket', consoleSocket] : [];
    return ['exec', '--process', processFile, ...(pidFile ? ['--pid-file', pidFile] : []), ...console, ...(tty && d.name !== 'crun' ? ['--tty'] : []), id];
  },
  state(_d: RuntimeDriver, id: string): string[] {
    return ['state', id];
  },
};

/** A runtime failure, carrying the runtime's own message. */
export function runtimeError(d: RuntimeDriver, what: string, stderr: string, code: number | null): HullError {
  const msg = stderr.trim().split('\n').filter(Boolean).slice(-3).join('; ');
  return new HullError('INTERNAL', `${d.name} ${what} failed${code !== null ? ` (exit ${code})` : ''}: ${msg || 'no message'}`);
}
