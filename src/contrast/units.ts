/** Flag values of contrast and advise: sizes, durations, counts (pure; errors name the flag). */
import { invalid } from '../errors.js';

const BYTES: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** '128m', '2g', '1.5G', '4096' -> bytes (binary units, as docker). */
export function parseSize(value: string, flag: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgtb]?)(?:i?b)?\s*$/i.exec(value);
  const n = m ? Math.floor(Number(m[1]) * BYTES[m[2]!.toLowerCase()]!) : NaN;
  if (!(n > 0) || !Number.isSafeInteger(n)) throw invalid(`invalid argument "${value}" for "${flag}" flag: expected a size such as 128m or 2g`);
  return n;
}

const DUR: Record<string, number> = { ms: 1, s: 1000, m: 60_000 };

/** '200ms', '1.5s', '2m' -> milliseconds; a plain number is milliseconds. */
export function parseDuration(value: string, flag: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$/i.exec(value);
  const n = m ? Number(m[1]) * DUR[(m[2] ?? 'ms').toLowerCase()]! : NaN;
  if (!(n > 0) || !Number.isFinite(n)) throw invalid(`invalid argument "${value}" for "${flag}" flag: expected a duration such as 200ms or 1.5s`);
  return n;
}

/** '0.9' or '90%' -> a fraction in [0, 1]. */
export function parseFraction(value: string, flag: string): number {
  const m = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*(%?)\s*$/.exec(value);
  const n = m ? Number(m[1]) / (m[2] ? 100 : 1) : NaN;
  if (!(n >= 0 && n <= 1)) throw invalid(`invalid argument "${value}" for "${flag}" flag: expected a fraction between 0 and 1 (e.g. 0.9 or 90%)`);
  return n;
}

/** A whole number in [min, max]. */
export function parseCount(value: string, flag: string, min: number, max: number): number {
  if (!/^\s*\d+\s*$/.test(value)) throw invalid(`invalid argument "${value}" for "${flag}" flag: expected a whole number`);
  const n = Number(value);
  if (n < min || n > max) throw invalid(`invalid argument "${value}" for "${flag}" flag: must be between ${min} and ${max}`);
  return n;
}

/** hull's walls; container-userns is the container wall with --userns=auto. */
export const WALLS = ['container', 'vm', 'container-userns'] as const;
export const PEERS = ['podman', 'crun', 'runc'] as const;

/** '--isolation container,vm' -> the walls, validated. */
export function parseWalls(value: string): Array<(typeof WALLS)[number]> {
  const list = value.split(',').map((s) => s.trim()).filter(Boolean);
  if (!list.length) throw invalid('"--isolation" needs at least one of: container, vm, container-userns');
  for (const w of list) if (!(WALLS as readonly string[]).includes(w)) throw invalid(`invalid argument "${w}" for "--isolation" flag: expected container, vm or container-userns`);
  return [...new Set(list)] as Array<(typeof WALLS)[number]>;
}

/** '--peers podman,crun' | 'none' | 'auto' -> peers, validated; undefined for auto. */
export function parsePeers(value: string): Array<(typeof PEERS)[number]> | undefined {
  if (value === 'auto') return undefined;
  if (value === 'none') return [];
  const list = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const p of list) if (!(PEERS as readonly string[]).includes(p)) throw invalid(`invalid argument "${p}" for "--peers" flag: expected auto, none, or a list of ${PEERS.join(', ')}`);
  return [...new Set(list)] as Array<(typeof PEERS)[number]>;
}
