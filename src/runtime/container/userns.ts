/**
 * --userns=auto on the container wall: the hull-idmap helper that shows the image's layers
 * owned by the container's own root (idmapped bind mounts, Linux 5.12+, on filesystems that
 * support them), and the check that this host can do it. The id range comes from the engine
 * (state/userns.ts); the OCI side (user namespace, uid/gid maps) is in config.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { HullError } from '../../errors.js';
import { packageRoot } from '../../paths.js';

/** Path of the hull-idmap helper (built by set-up into build/bin); HULL_IDMAP overrides. */
export function idmapHelper(env: NodeJS.ProcessEnv = process.env): string {
  const p = env.HULL_IDMAP ?? path.join(packageRoot(), 'build', 'bin', 'hull-idmap');
  if (!fs.existsSync(p)) throw new HullError('UNAVAILABLE', `--userns=auto needs the helper ${p}, which is missing`, { hint: 'run scripts/setup.sh (it builds build/bin/hull-idmap)' });
  return p;
}

/** Where an idmapped bind (`-v SRC:DST:idmap`, the i-th bind of the spec) is mounted on the host side. Pure. */
export function idmapBindPoint(dir: string, i: number): string {
  return path.join(dir, 'idmap', `b${i}`);
}
