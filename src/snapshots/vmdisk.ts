/**
 * VM root disks: an image's layers flattened into one read-only erofs image, built once per
 * image id and cached as <root>/vmdisks/<image-id-hex>.erofs.
 *
 * Flattening honours the layers' overlay-style whiteouts (char device 0/0, opaque xattr) by
 * mounting the layer directories as a read-only overlay inside a private mount namespace
 * (`unshare -m`: the mount vanishes with the process, nothing can leak) and running mkfs.erofs
 * over that view. A single-layer image is packed directly. The image is written under
 * <root>/tmp and renamed into place, so a crash leaves no partial disk, and two builders racing
 * for the same image both end with the same complete file.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { HullError } from '../errors.js';
import { layout } from '../paths.js';

/** Absolute path of the cached disk for an image id ("sha256:<hex>" or "<hex>"). */
export function vmDiskPath(root: string, imageId: string): string {
  const hex = imageId.replace(/^sha256:/, '');
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new HullError('INVALID_ARGUMENT', `bad image id "${imageId}": want sha256:<64 hex>`);
  return path.join(layout(root).vmdisks, `${hex}.erofs`);
}

/**
 * Shell lines that make $src an image's merged root: the one layer itself, or a read-only
 * overlay of the layers ("$@", top first) at $mnt. Run in a private mount namespace (`unshare
 * -m`), so the mount vanishes with the shell. `label` names the mount (/proc/mounts' source).
 */
export function layersViewLines(label: string): string[] {
  return [
    'if [ $# -eq 1 ]; then src=$1; else',
    '  lower=$(printf "%s:" "$@"); lower=${lower%:}',
    '  mount --make-rprivate / 2>/dev/null || true',
    `  mount -t overlay -o "ro,lowerdir=$lower" ${label} "$mnt"; src=$mnt`,
    'fi',
  ];
}

/** The shell program run in the private mount namespace; arguments: out, mountpoint, lowers (top first). */
export const FLATTEN_SCRIPT = ['set -e', 'out=$1; mnt=$2; shift 2', ...layersViewLines('hull-vmdisk'), 'exec mkfs.erofs --quiet -T0 "$out" "$src"'].join('\n');

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.setEncoding('utf8').on('data', (d: string) => (err += d.slice(0, 4000)));
    c.on('error', (e) =>
      reject(new HullError('UNAVAILABLE', `cannot run ${cmd}: ${e.message}`, { cause: e, hint: 'apt-get install erofs-utils util-linux' })),
    );
    c.on('close', (code) => (code === 0 ? resolve() : reject(new HullError('INTERNAL', `building the VM disk failed (${cmd} exit ${code}): ${err.trim()}`))));
  });
}

const building = new Map<string, Promise<string>>();

/**
 * Returns the erofs disk of an image, building it when missing.
 * @param lowerDirs the image's unpacked layer directories, bottom layer first
 */
export function ensureVmDisk(root: string, imageId: string, lowerDirs: string[]): Promise<string> {
  const dest = vmDiskPath(root, imageId);
  if (fs.existsSync(dest)) return Promise.resolve(dest);
  if (lowerDirs.length === 0) return Promise.reject(new HullError('INVALID_ARGUMENT', `image ${imageId} has no layers`));
  for (const d of lowerDirs) {
    if (!path.isAbsolute(d) || !fs.statSync(d, { throwIfNoEntry: false })?.isDirectory()) {
      return Promise.reject(new HullError('NOT_FOUND', `layer directory ${d} of image ${imageId} is missing`));
    }
  }
  const pending = building.get(dest);
  if (pending) return pending;
  const p = build(root, dest, lowerDirs).finally(() => building.delete(dest));
  building.set(dest, p);
  return p;
}

async function build(root: string, dest: string, lowerDirs: string[]): Promise<string> {
  const l = layout(root);
  fs.mkdirSync(l.vmdisks, { recursive: true });
  fs.mkdirSync(l.tmp, { recursive: true });
  const work = fs.mkdtempSync(path.join(l.tmp, 'vmdisk-'));
  try {
    const out = path.join(work, 'disk.erofs');
    const mnt = path.join(work, 'mnt');
    fs.mkdirSync(mnt);
    const lowers = [...lowerDirs].reverse(); // overlay wants the top layer first
    await run('unshare', ['-m', 'sh', '-c', FLATTEN_SCRIPT, 'hull-vmdisk', out, mnt, ...lowers]);
    fs.renameSync(out, dest);
    return dest;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** Removes the cached disk of an image (rmi). Idempotent. */
export function removeVmDisk(root: string, imageId: string): void {
  fs.rmSync(vmDiskPath(root, imageId), { force: true });
}
