/**
 * The shim's command line, as containerd 1.6 passes it (runtime/v2/shim/util.go and
 * binary.go): Go `flag` syntax (-name value, -name=value, --name; -debug alone), then an action:
 *   start    launch (or find) the pod's shim, print its ttrpc address on stdout
 *   delete   clean up after a dead shim, print a protobuf DeleteResponse on stdout
 *   serve    (hull's own) the long-lived shim process that `start` launches
 * and where a pod's shim lives: <state>/<32 hex of sha256(containerd address, namespace,
 * group)>/, holding ttrpc.sock, the VM's files and the share. Pure.
 */
import crypto from 'node:crypto';
import path from 'node:path';
import { HullError } from '../errors.js';

export interface ShimFlags {
  namespace: string;
  id: string;
  address: string;
  publishBinary: string;
  bundle: string;
  socket: string;
  debug: boolean;
  version: boolean;
  action: string;
}

const STRINGS: Record<string, keyof ShimFlags> = {
  namespace: 'namespace', id: 'id', address: 'address', 'publish-binary': 'publishBinary', bundle: 'bundle', socket: 'socket',
};
const BOOLS: Record<string, keyof ShimFlags> = { debug: 'debug', v: 'version' };

export function parseShimArgs(argv: string[]): ShimFlags {
  const f: ShimFlags = { namespace: '', id: '', address: '', publishBinary: 'containerd', bundle: '', socket: '', debug: false, version: false, action: '' };
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') { i++; break; }
    if (!a.startsWith('-') || a === '-') break;
    const body = a.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq >= 0 ? body.slice(0, eq) : body;
    if (BOOLS[name]) {
      const v = eq >= 0 ? body.slice(eq + 1) : 'true';
      if (!/^(true|false|1|0)$/.test(v)) throw new HullError('INVALID_ARGUMENT', `invalid boolean value "${v}" for flag -${name}`);
      (f as unknown as Record<string, boolean>)[BOOLS[name]] = v === 'true' || v === '1';
    } else if (STRINGS[name]) {
      const v = eq >= 0 ? body.slice(eq + 1) : argv[++i];
      if (v === undefined) throw new HullError('INVALID_ARGUMENT', `flag needs an argument: -${name}`);
      (f as unknown as Record<string, string>)[STRINGS[name]] = v;
    } else {
      throw new HullError('INVALID_ARGUMENT', `flag provided but not defined: -${name}`);
    }
  }
  f.action = argv[i] ?? '';
  return f;
}

/** Default directory of pod shims (HULL_SHIM_STATE overrides). */
export const SHIM_STATE = '/run/hull/shim';

export interface PodPaths {
  /** sha256 hex prefix naming the pod (also its cgroup). */
  key: string;
  dir: string;
  socket: string;
}

/** Pure: where the shim of (containerd address, namespace, group) lives. */
export function podPaths(address: string, namespace: string, group: string, state = process.env.HULL_SHIM_STATE || SHIM_STATE): PodPaths {
  const key = crypto.createHash('sha256').update(`${address}\0${namespace}\0${group}`).digest('hex').slice(0, 32);
  const dir = path.join(state, key);
  const socket = path.join(dir, 'ttrpc.sock');
  if (Buffer.byteLength(socket) > 107) throw new HullError('INVALID_ARGUMENT', `shim socket path ${socket} is longer than a unix socket address allows (HULL_SHIM_STATE too long)`);
  return { key, dir, socket };
}
