/**
 * A pod's host-side state: its directory, its VM (booted by the first task), and each task's
 * mounts in the share. A task's root is containerd's overlay mounted at <bundle>/rootfs and bound
 * into the share as <id>/rootfs; each bind mount of its spec is bound in as <id>/m<N>. What the
 * guest sees is only the share, never another pod's files.
 */
import fs from 'node:fs';
import path from 'node:path';
import { HullError } from '../errors.js';
import { bindMount, mountAll, mountsUnder, unmountAll, type CtrdMount } from './mounts.js';
import type { GuestContainer } from './pod-protocol.js';
import { containerMounts, guestProcess, type OciSpec } from './oci-guest.js';
import { PodVm } from './pod-vm.js';

/** Removes a directory tree that must hold no mount (refuses rather than delete through a mount). */
export function removeTree(dir: string): void {
  const left = mountsUnder(dir);
  if (left.length) throw new HullError('INTERNAL', `refusing to remove ${dir}: still mounted: ${left.join(', ')}`);
  fs.rmSync(dir, { recursive: true, force: true });
}

/** Mounts a task's root and binds it and its bind-mount sources into the share. Undoes itself on failure. */
export async function prepareTaskRoot(podDir: string, id: string, bundle: string, rootfs: CtrdMount[], spec: OciSpec, io: { terminal: boolean; stdin: boolean }): Promise<GuestContainer> {
  if (!spec.process) throw new HullError('INVALID_ARGUMENT', 'config.json has no process');
  const proc = guestProcess(spec.process, io);
  const mounts = containerMounts(spec.mounts ?? []);
  const share = path.join(PodVm.shareDir(podDir), id);
  const bundleRoot = path.join(bundle, 'rootfs');
  try {
    if (rootfs.length) await mountAll(rootfs, bundleRoot);
    fs.mkdirSync(share, { recursive: true, mode: 0o700 });
    await bindMount(bundleRoot, path.join(share, 'rootfs'));
    const binds: GuestContainer['binds'] = [];
    for (const [i, b] of mounts.binds.entries()) {
      if (!fs.existsSync(b.source)) throw new HullError('NOT_FOUND', `bind mount source ${b.source} (for ${b.destination}) does not exist`);
      await bindMount(b.source, path.join(share, `m${i}`), b.readOnly);
      binds.push({ source: `${id}/m${i}`, destination: b.destination, readOnly: b.readOnly });
    }
    return { process: proc, root: `${id}/rootfs`, readOnly: spec.root?.readonly, tmpfs: mounts.tmpfs, binds };
  } catch (e) {
    await releaseTaskRoot(podDir, id, bundle, rootfs.length > 0).catch(() => undefined);
    throw e;
  }
}

/** Unmounts what prepareTaskRoot mounted (idempotent); `rootfs`: the overlay at <bundle>/rootfs is the shim's too. */
export async function releaseTaskRoot(podDir: string, id: string, bundle: string, rootfs: boolean): Promise<void> {
  const share = path.join(PodVm.shareDir(podDir), id);
  await unmountAll(share);
  removeTree(share);
  if (rootfs) await unmountAll(path.join(bundle, 'rootfs'));
}
