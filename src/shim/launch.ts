/**
 * The shim's two short-lived commands, as containerd runs them with the bundle as cwd:
 *
 * `start`: finds the pod's shim (a CRI container joins its sandbox's shim, found by the
 * io.kubernetes.cri.sandbox-id annotation) or launches it: a detached `serve` process whose
 * stdio is /dev/null (containerd reads start's stdout and stderr to EOF), which reports on an
 * extra pipe once it listens. Then the address is written to the bundle's `address` file and
 * printed.
 *
 * `delete`: containerd's clean-up when it cannot reach a shim (it died, or was SIGKILLed with
 * its tasks): unmounts the task's root and its binds in the share; when no shim serves the pod
 * any more, removes the pod's VM cgroup (killing what is left in it) and directory. Prints a
 * DeleteResponse (exit 137, like runc's shim).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { HullError } from '../errors.js';
import { cgroupVersion, vmCgroupDir } from '../runtime/vm/cgroup.js';
import { podPaths, type ShimFlags } from './args.js';
import { unmountAll } from './mounts.js';
import { checkSpec, groupOf, taskRole, type OciSpec } from './oci-guest.js';
import { removeTree } from './pod.js';
import { PodVm, removePodCgroup } from './pod-vm.js';
import { encode, timestamp } from './protos.js';

function readSpec(bundle: string): OciSpec {
  const f = path.join(bundle, 'config.json');
  try {
    return checkSpec(JSON.parse(fs.readFileSync(f, 'utf8')));
  } catch (e) {
    if (e instanceof HullError) throw e;
    throw new HullError('INVALID_ARGUMENT', `reading ${f}: ${(e as Error).message}`, { cause: e });
  }
}

export function canConnect(socket: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(socket);
    const t = setTimeout(() => { s.destroy(); resolve(false); }, timeoutMs);
    s.once('connect', () => { clearTimeout(t); s.destroy(); resolve(true); });
    s.once('error', () => { clearTimeout(t); resolve(false); });
  });
}

/** Writes <bundle>/address atomically, as containerd's shim.WriteAddress does. */
function writeAddress(bundle: string, address: string): void {
  const tmp = path.join(bundle, '.address');
  fs.writeFileSync(tmp, address, { mode: 0o666, flag: 'w' });
  fs.renameSync(tmp, path.join(bundle, 'address'));
}

export async function startCommand(f: ShimFlags): Promise<string> {
  if (!f.namespace) throw new HullError('INVALID_ARGUMENT', 'shim namespace cannot be empty');
  if (!f.id) throw new HullError('INVALID_ARGUMENT', 'shim id cannot be empty');
  const bundle = process.cwd();
  const spec = readSpec(bundle);
  const group = groupOf(f.id, spec);
  const p = podPaths(f.address, f.namespace, group);
  const address = `unix://${p.socket}`;
  if (await canConnect(p.socket)) {
    writeAddress(bundle, address);
    return address;
  }
  const role = taskRole(spec);
  if (role.kind === 'container') throw new HullError('FAILED_PRECONDITION', `no hull shim runs sandbox ${role.sandboxId} (its VM is gone, or the sandbox uses another runtime)`);
  fs.mkdirSync(p.dir, { recursive: true, mode: 0o700 });
  fs.rmSync(p.socket, { force: true });
  const script = process.argv[1]!;
  const serveArgv = ['-namespace', f.namespace, '-address', f.address, '-publish-binary', f.publishBinary, '-id', f.id, ...(f.debug ? ['-debug'] : []), 'serve'];
  const child = spawn(process.execPath, [...process.execArgv, script, ...serveArgv], {
    cwd: bundle, detached: true, stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
    // each stdin fifo waits for its writer on a pool thread (src/shim/fifo-io.ts): room for many
    env: { ...process.env, UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? '32' },
  });
  const ready = await new Promise<string>((resolve) => {
    let text = '';
    const pipe = child.stdio[3] as NodeJS.ReadableStream;
    pipe.setEncoding('utf8');
    pipe.on('data', (d: string) => (text += d));
    pipe.on('end', () => resolve(text));
    child.on('error', (e) => resolve(`spawning the shim failed: ${e.message}`));
  });
  child.unref();
  if (ready.trim() !== 'ok') {
    if (!ready.includes('EADDRINUSE') || !(await canConnect(p.socket))) {
      throw new HullError('UNAVAILABLE', `the hull shim did not start: ${ready.trim() || `exit status ${child.exitCode ?? 'unknown'}`}`);
    }
    // another start of the same pod won the race: join it
  } else if (child.pid) {
    // containerd's shims sit one above containerd in OOM order (runtime/v2/shim AdjustOOMScore)
    try {
      const parent = Number(fs.readFileSync(`/proc/${process.ppid}/oom_score_adj`, 'utf8').trim());
      fs.writeFileSync(`/proc/${child.pid}/oom_score_adj`, String(Math.min(1000, parent + 1)));
    } catch {
      // best effort: a shim with containerd's own score still works
    }
  }
  writeAddress(bundle, address);
  return address;
}

export async function deleteCommand(f: ShimFlags): Promise<Buffer> {
  if (!f.namespace) throw new HullError('INVALID_ARGUMENT', 'shim namespace cannot be empty');
  const bundle = f.bundle || process.cwd();
  let group = f.id;
  try {
    group = groupOf(f.id, readSpec(bundle));
  } catch {
    // no readable config.json: the task was alone in its pod
  }
  const p = podPaths(f.address, f.namespace, group);
  const alive = await canConnect(p.socket);
  await unmountAll(path.join(PodVm.shareDir(p.dir), f.id));
  removeTree(path.join(PodVm.shareDir(p.dir), f.id));
  await unmountAll(path.join(bundle, 'rootfs'));
  if (!alive && fs.existsSync(p.dir)) {
    const v = cgroupVersion();
    if (v) await removePodCgroup({ version: v, dir: vmCgroupDir(v, path.dirname(p.dir), `pod-${p.key}`) });
    await unmountAll(p.dir);
    removeTree(p.dir);
  }
  return encode('containerd.task.v2.DeleteResponse', { pid: 0, exitStatus: 137, exitedAt: timestamp(new Date()) });
}
