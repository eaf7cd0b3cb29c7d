/**
 * Docker's value syntaxes for `hull run` flags, parsed into numbers with explicit units.
 * Pure functions: every bad value is an INVALID_ARGUMENT error naming the flag and the value.
 */
import { invalid } from '../errors.js';
import type { MountSpec, Ulimit } from '../runtime/types.js';
import { parseVolumeSpec } from '../volumes/syntax.js';

const BYTE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };

/**
 * Docker's RAMInBytes: '128m', '1g', '1.5G', '512k', '1024', '64mb' -> bytes (binary units).
 * @param flag named in the error message, e.g. '--memory'.
 */
export function parseBytes(value: string, flag: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgtpb]?)b?\s*$/i.exec(value);
  if (!m) throw invalid(`invalid argument "${value}" for "${flag}" flag: invalid size: '${value}' (use bytes or a unit: 128m, 1g)`);
  const n = Number(m[1]) * BYTE_UNITS[m[2]!.toLowerCase()]!;
  if (!Number.isFinite(n) || n > Number.MAX_SAFE_INTEGER) throw invalid(`invalid argument "${value}" for "${flag}" flag: size too large`);
  return Math.floor(n);
}

/** --cpus 1.5 -> 1.5e9 nano-CPUs; must be > 0 and at most `max` CPUs when given. */
export function parseCpus(value: string, maxCpus?: number): number {
  if (!/^\d+(\.\d+)?$|^\.\d+$/.test(value.trim())) throw invalid(`invalid argument "${value}" for "--cpus" flag: not a number of CPUs`);
  const n = Number(value);
  if (!(n > 0)) throw invalid(`invalid argument "${value}" for "--cpus" flag: must be greater than 0`);
  if (maxCpus !== undefined && n > maxCpus) {
    throw invalid(`range of CPUs is from 0.01 to ${maxCpus}.00, as there are only ${maxCpus} CPUs available`);
  }
  return Math.round(n * 1e9);
}

/** An integer flag value (e.g. --pids-limit, stop -t). */
export function parseIntFlag(value: string, flag: string, min = Number.MIN_SAFE_INTEGER): number {
  if (!/^-?\d+$/.test(value.trim())) throw invalid(`invalid argument "${value}" for "${flag}" flag: not an integer`);
  const n = Number(value);
  if (n < min) throw invalid(`invalid argument "${value}" for "${flag}" flag: must be at least ${min}`);
  return n;
}

/** Resource names docker accepts for --ulimit. */
export const ULIMIT_NAMES = [
  'core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc', 'rss', 'rtprio',
  'rttime', 'sigpending', 'stack', 'as',
];

/** --ulimit nofile=1024:2048 or nofile=1024 (soft = hard); -1 means unlimited. */
export function parseUlimit(value: string): Ulimit {
  const m = /^([a-z]+)=(-?\d+)(?::(-?\d+))?$/.exec(value);
  if (!m) throw invalid(`invalid argument "${value}" for "--ulimit" flag: expected NAME=SOFT[:HARD]`);
  const name = m[1]!;
  if (!ULIMIT_NAMES.includes(name)) throw invalid(`invalid argument "${value}" for "--ulimit" flag: unknown ulimit name ${name}`);
  const soft = Number(m[2]);
  const hard = m[3] === undefined ? soft : Number(m[3]);
  if (soft !== -1 && hard !== -1 && soft > hard) {
    throw invalid(`invalid argument "${value}" for "--ulimit" flag: ulimit soft limit must be less than or equal to hard limit: ${soft} > ${hard}`);
  }
  return { name, soft, hard };
}

/** -v [SRC:]DST[:OPTS]: a bind mount of an absolute host path, or a (named or anonymous) volume. */
export function parseVolume(value: string): MountSpec {
  return parseVolumeSpec(value, '-v');
}

/** --tmpfs /run[:size=64m,mode=1777] */
export function parseTmpfs(value: string): MountSpec {
  const i = value.indexOf(':');
  const dst = i < 0 ? value : value.slice(0, i);
  const opts = i < 0 ? [] : value.slice(i + 1).split(',').filter(Boolean);
  if (!dst.startsWith('/') || dst === '/') throw invalid(`invalid argument "${value}" for "--tmpfs" flag: the container path must be absolute and not /`);
  for (const o of opts) {
    if (!/^(size=\d+[kmgKMG%]?|mode=[0-7]{3,4}|uid=\d+|gid=\d+|nr_inodes=\d+[kmg]?|ro|rw|noexec|exec|nosuid|suid|nodev|dev)$/.test(o)) {
      throw invalid(`invalid argument "${value}" for "--tmpfs" flag: bad option ${o}`);
    }
  }
  const readOnly = opts.includes('ro');
  return { type: 'tmpfs', destination: dst, readOnly, options: opts.filter((o) => o !== 'ro' && o !== 'rw') };
}

/**
 * Lines of an --env-file: KEY=VALUE, or KEY alone (taken from `lookup`, dropped when unset);
 * blank lines and # comments skipped.
 */
export function parseEnvFile(text: string, file: string, lookup: (k: string) => string | undefined): string[] {
  const out: string[] = [];
  text.split(/\r?\n/).forEach((raw, n) => {
    const line = raw.replace(/^\s+/, '');
    if (line === '' || line.startsWith('#')) return;
    const eq = line.indexOf('=');
    const key = eq < 0 ? line.trimEnd() : line.slice(0, eq);
    if (key === '' || /\s/.test(key)) throw invalid(`invalid env file ${file} line ${n + 1}: variable '${key}' contains whitespaces`);
    if (eq >= 0) out.push(line);
    else {
      const v = lookup(key);
      if (v !== undefined) out.push(`${key}=${v}`);
    }
  });
  return out;
}

/** -e KEY=VALUE, or -e KEY (copied from `lookup`, dropped when unset). */
export function parseEnvFlag(value: string, lookup: (k: string) => string | undefined): string | undefined {
  const eq = value.indexOf('=');
  if (eq === 0) throw invalid(`invalid argument "${value}" for "-e" flag: empty variable name`);
  if (eq > 0) return value;
  const v = lookup(value);
  return v === undefined ? undefined : `${value}=${v}`;
}

/** Merge KEY=VALUE lists; later entries replace earlier keys, order of first appearance kept. */
export function mergeEnv(...lists: string[][]): string[] {
  const m = new Map<string, string>();
  for (const l of lists) {
    for (const kv of l) {
      const eq = kv.indexOf('=');
      m.set(eq < 0 ? kv : kv.slice(0, eq), kv);
    }
  }
  return [...m.values()];
}

/** Signals by name or number: 'TERM', 'SIGTERM', '15' -> 'SIGTERM'. */
export function normalizeSignal(value: string, table: Record<string, number>): string {
  const v = value.trim().toUpperCase();
  if (/^\d+$/.test(v)) {
    const n = Number(v);
    const name = Object.keys(table).find((k) => table[k] === n);
    if (!name) throw invalid(`invalid signal: ${value}`);
    return name;
  }
  const name = v.startsWith('SIG') ? v : `SIG${v}`;
  if (!(name in table)) throw invalid(`invalid signal: ${value}`);
  return name;
}
