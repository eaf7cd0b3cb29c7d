/**
 * An image's layers merged into one plain directory (COPY --from an image or a stage of several
 * layers): the layers are mounted as a read-only overlay in a private mount namespace (the
 * kernel applies whiteouts and opaque directories; the mount dies with the process) and copied
 * out with `cp -a` (owners, modes, times, links, xattrs kept).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { HullError } from '../errors.js';

export const FLATTEN_COPY_SCRIPT = [
  'set -e',
  'out=$1; mnt=$2; shift 2',
  'lower=$(printf "%s:" "$@"); lower=${lower%:}',
  'mount --make-rprivate / 2>/dev/null || true',
  'mount -t overlay -o "ro,lowerdir=$lower" hull-flatten "$mnt"',
  'cp -a "$mnt/." "$out/"',
].join('\n');

/** Merge `lowers` (bottom first) into the existing empty directory `out`. */
export async function flattenLayers(lowers: string[], out: string): Promise<void> {
  const mnt = `${out}.mnt`;
  fs.mkdirSync(mnt);
  try {
    await new Promise<void>((resolve, reject) => {
      const c = spawn('unshare', ['-m', 'sh', '-c', FLATTEN_COPY_SCRIPT, 'hull-flatten', out, mnt, ...[...lowers].reverse()], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      c.stderr.setEncoding('utf8').on('data', (d: string) => (err += d.slice(0, 4000)));
      c.on('error', (e) => reject(new HullError('UNAVAILABLE', `cannot run unshare: ${e.message}`, { hint: 'apt-get install util-linux' })));
      c.on('close', (code) => (code === 0 ? resolve() : reject(new HullError('INTERNAL', `merging the layers for COPY --from failed (exit ${code}): ${err.trim()}`))));
    });
  } finally {
    fs.rmSync(mnt, { recursive: true, force: true });
  }
}
