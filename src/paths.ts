import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Default state root, like /var/lib/docker. Moved with `--root` or HULL_ROOT. */
export const DEFAULT_ROOT = '/var/lib/hull';

/** Where every piece of hull's on-disk state lives under one root. */
export interface RootLayout {
  root: string;
  /** SQLite metadata database. */
  db: string;
  /** Content-addressed blobs: blobs/sha256/<hex>. */
  blobs: string;
  /** Unpacked layers, one read-only directory per diff id: layers/<hex>. */
  layers: string;
  /** Per-container state: containers/<id>/ (bundle, upper dir, logs). */
  containers: string;
  /** Per-image VM root disks: vmdisks/<image-id-hex>.erofs. */
  vmdisks: string;
  /** Scratch space on the same filesystem, so renames into place are atomic. */
  tmp: string;
}

/**
 * A short, stable name for a hull root (12 hex of the sha256 of its absolute path), for the
 * kernel-global names a root's instances use (cgroups, ...): two roots on one host never share
 * one, and a root can tell its own leftovers from another root's (`hull system check`).
 */
export function rootKey(root: string): string {
  return crypto.createHash('sha256').update(path.resolve(root)).digest('hex').slice(0, 12);
}

export function resolveRoot(explicit?: string): string {
  const r = explicit ?? process.env.HULL_ROOT ?? DEFAULT_ROOT;
  return path.resolve(r);
}

export function layout(root: string): RootLayout {
  return {
    root,
    db: path.join(root, 'hull.db'),
    blobs: path.join(root, 'blobs'),
    layers: path.join(root, 'layers'),
    containers: path.join(root, 'containers'),
    vmdisks: path.join(root, 'vmdisks'),
    tmp: path.join(root, 'tmp'),
  };
}

let pkgRoot: string | undefined;
/**
 * The root of this hull installation (the directory holding package.json, bin/, dist/, build/).
 * Found by walking up from this module's own file, so it is right both for the compiled modules
 * (dist/src/paths.js) and for the CLI bundle (dist/cli.cjs), which sit at different depths.
 */
export function packageRoot(): string {
  if (pkgRoot !== undefined) return pkgRoot;
  const start = path.dirname(fileURLToPath(import.meta.url));
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return (pkgRoot = dir);
    if (path.dirname(dir) === dir) return (pkgRoot = path.resolve(start, '..', '..'));
  }
}

/** A file of the compiled output under dist/src (workers and hooks run as their own scripts). */
export function distFile(...rel: string[]): string {
  return path.join(packageRoot(), 'dist', 'src', ...rel);
}
