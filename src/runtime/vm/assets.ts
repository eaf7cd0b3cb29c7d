/**
 * The guest's boot assets, built by set-up (scripts/build-guest-kernel.sh, build-guest-init.sh):
 *   build/guest/vmlinux          the guest kernel (uncompressed, PVH)
 *   build/guest/initramfs.cpio   the base initramfs holding hull's guest agent as /init
 * HULL_VM_KERNEL and HULL_VM_INITRAMFS override the paths.
 */
import fs from 'node:fs';
import path from 'node:path';
import { HullError } from '../../errors.js';
import { packageRoot } from '../../paths.js';

const PKG = packageRoot();

export interface GuestAssets {
  kernel: string;
  initramfs: string;
  /** The kernel's release (uname -r in the guest), when set-up recorded it. */
  release?: string;
}

export function guestAssets(env: NodeJS.ProcessEnv = process.env): GuestAssets {
  const kernel = env.HULL_VM_KERNEL ?? path.join(PKG, 'build', 'guest', 'vmlinux');
  const initramfs = env.HULL_VM_INITRAMFS ?? path.join(PKG, 'build', 'guest', 'initramfs.cpio');
  for (const [what, p] of [['guest kernel', kernel], ['guest initramfs', initramfs]] as const) {
    if (!fs.existsSync(p)) {
      throw new HullError('UNAVAILABLE', `the ${what} ${p} is missing`, { hint: 'run scripts/setup.sh (it builds the guest kernel and agent)' });
    }
  }
  let release: string | undefined;
  try {
    release = fs.readFileSync(path.join(path.dirname(fs.realpathSync(kernel)), 'release'), 'utf8').trim();
  } catch {
    release = undefined;
  }
  return { kernel: fs.realpathSync(kernel), initramfs, release };
}

/**
 * The control-port multiplexer (native/hull-vmmux.c, built by set-up into build/bin), which lets
 * several hull processes exec into one VM at once. Undefined when it is not built: each VM's
 * control port then serves one caller at a time.
 */
export function vmmuxBinary(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const p = env.HULL_VMMUX ?? path.join(PKG, 'build', 'bin', 'hull-vmmux');
  return fs.existsSync(p) ? p : undefined;
}

/** Host TSC frequency in kHz from /proc/cpuinfo (0 when unknown). */
export function hostTscKhz(cpuinfo?: string): number {
  let text = cpuinfo;
  if (text === undefined) {
    try {
      text = fs.readFileSync('/proc/cpuinfo', 'utf8');
    } catch {
      return 0;
    }
  }
  const m = /^cpu MHz\s*:\s*([0-9.]+)/m.exec(text);
  return m ? Math.round(Number(m[1]) * 1000) : 0;
}

/** QEMU binary: HULL_QEMU or qemu-system-x86_64 on PATH. */
export function qemuBinary(env: NodeJS.ProcessEnv = process.env): string {
  return env.HULL_QEMU ?? 'qemu-system-x86_64';
}
