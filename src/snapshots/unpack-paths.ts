/**
 * Pure path rules for unpacking a layer tar: entry names are normalised to clean relative
 * paths, and anything that could reach outside the layer directory is refused by name.
 * No I/O here.
 */
import path from 'node:path';
import { invalid } from '../errors.js';

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_WHITEOUT = '.wh..wh..opq';

/**
 * Normalise a tar entry name to a relative path without '.' parts ('' is the layer root).
 * Refuses absolute paths, '..' components and NUL bytes, naming the entry.
 */
export function cleanEntryName(name: string, what = 'entry'): string {
  if (name.includes('\0')) throw invalid(`${what} ${JSON.stringify(name)}: NUL byte in path`);
  if (name.startsWith('/')) throw invalid(`${what} ${JSON.stringify(name)}: absolute path refused`);
  const parts: string[] = [];
  for (const p of name.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') throw invalid(`${what} ${JSON.stringify(name)}: path with '..' refused`);
    parts.push(p);
  }
  return parts.join('/');
}

export type WhiteoutKind = { kind: 'opaque'; dir: string } | { kind: 'whiteout'; dir: string; target: string } | undefined;

/** Classify a cleaned entry path as an OCI whiteout (`.wh.NAME`, `.wh..wh..opq`) or not. */
export function whiteoutOf(rel: string, what = 'entry'): WhiteoutKind {
  const base = path.posix.basename(rel);
  if (!base.startsWith(WHITEOUT_PREFIX)) return undefined;
  const dir = path.posix.dirname(rel) === '.' ? '' : path.posix.dirname(rel);
  if (base === OPAQUE_WHITEOUT) return { kind: 'opaque', dir };
  const target = base.slice(WHITEOUT_PREFIX.length);
  if (target === '' || target === '.' || target === '..' || target.startsWith(WHITEOUT_PREFIX)) {
    throw invalid(`${what} ${JSON.stringify(rel)}: invalid whiteout name`);
  }
  return { kind: 'whiteout', dir, target };
}

/**
 * Where a symlink at `linkRel` (a cleaned path inside the layer) points, as a cleaned path inside
 * the layer, or undefined when the target is absolute or climbs above the layer root.
 */
export function symlinkTargetInside(linkRel: string, target: string): string | undefined {
  if (target.startsWith('/') || target === '') return undefined;
  const dir = path.posix.dirname(linkRel);
  const parts = dir === '.' ? [] : dir.split('/');
  for (const p of target.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') {
      if (parts.length === 0) return undefined;
      parts.pop();
    } else parts.push(p);
  }
  return parts.join('/');
}

/** Encode an xattr-restore file path the way getfattr dumps it (octal escapes). */
export function escapeAttrPath(p: string): string {
  let out = '';
  for (const b of Buffer.from(p, 'utf8')) {
    if (b <= 0x20 || b >= 0x7f || b === 0x5c /* \ */ || b === 0x3d /* = */ || b === 0x22 /* " */) {
      out += `\\${b.toString(8).padStart(3, '0')}`;
    } else out += String.fromCharCode(b);
  }
  return out;
}

/** Tar modes carry the file type in the high bits; keep permission, setuid/setgid and sticky bits. */
export function permBits(mode: number | undefined, fallback: number): number {
  return mode === undefined ? fallback : mode & 0o7777;
}
