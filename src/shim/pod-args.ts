/**
 * Command lines of a pod VM, as data (pure; unit-tested): QEMU (the VM wall's buildQemuArgs
 * without a disk, with the pod's NICs, plus the virtio-fs device) and virtiofsd.
 *
 * virtio-fs needs guest RAM QEMU can share with virtiofsd: a memfd backend (QEMU shares a
 * memory-backend-memfd by default), which the VM wall already uses for detached VMs. virtiofsd
 * runs with sandbox=chroot: it stays in the host's mount namespace, so the containers' roots and
 * bind mounts the shim mounts into the share later (a pod's containers arrive after its VM has
 * booted) are visible to it at once; in its default namespace sandbox it would see only what was
 * mounted before it started (this host's mounts do not propagate).
 */
import { buildQemuArgs, type QemuOptions } from '../runtime/vm/qemu-args.js';
import { POD_SHARE_TAG } from './pod-protocol.js';

export interface PodQemuOptions extends Omit<QemuOptions, 'disk' | 'shares' | 'ramBackend'> {
  /** virtiofsd's vhost-user socket. */
  virtiofsSocket: string;
}

export function buildPodQemuArgs(o: PodQemuOptions): string[] {
  const esc = (p: string) => p.replace(/,/g, ',,');
  const a = buildQemuArgs({ ...o, ramBackend: 'memfd' });
  a.push('-chardev', `socket,id=vfs,path=${esc(o.virtiofsSocket)}`, '-device', `vhost-user-fs-device,chardev=vfs,tag=${POD_SHARE_TAG}`);
  return a;
}

export interface VirtiofsdOptions {
  /** The directory the guest sees (the pod's share). */
  source: string;
  /** Where virtiofsd listens for QEMU (vhost-user). */
  socket: string;
  /**
   * Guest page cache policy (default 'auto': cached, revalidated on open and after a timeout).
   * 'none' makes every read go to the host (kata's choice for shared volumes).
   */
  cache?: 'auto' | 'always' | 'none';
  /** Worker threads (default 1: a pod's file traffic is light, each thread costs memory). */
  threadPoolSize?: number;
}

export function buildVirtiofsdArgs(o: VirtiofsdOptions): string[] {
  return [
    `--socket-path=${o.socket}`,
    '-o', `source=${o.source}`,
    '-o', 'sandbox=chroot',
    '-o', `cache=${o.cache ?? 'auto'}`,
    // this host caps nofile below virtiofsd's default target of 1,000,000: keep the limit as is
    '--rlimit-nofile=0',
    `--thread-pool-size=${o.threadPoolSize ?? 1}`,
  ];
}
