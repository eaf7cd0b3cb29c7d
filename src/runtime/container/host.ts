/**
 * Facts about the calling process that bound what a container may get: hard rlimits
 * (/proc/self/limits) and the capability bounding set (/proc/self/status CapBnd).
 */
import fs from 'node:fs';
import { capsFromMask } from './caps.js';

const LIMIT_NAMES: Record<string, string> = {
  'Max cpu time': 'cpu', 'Max file size': 'fsize', 'Max data size': 'data', 'Max stack size': 'stack',
  'Max core file size': 'core', 'Max resident set': 'rss', 'Max processes': 'nproc', 'Max open files': 'nofile',
  'Max locked memory': 'memlock', 'Max address space': 'as', 'Max file locks': 'locks',
  'Max pending signals': 'sigpending', 'Max msgqueue size': 'msgqueue', 'Max nice priority': 'nice',
  'Max realtime priority': 'rtprio', 'Max realtime timeout': 'rttime',
};

/** /proc/self/limits text -> hard limit by docker ulimit name (-1 = unlimited). */
export function parseHardLimits(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n').slice(1)) {
    const name = Object.keys(LIMIT_NAMES).find((k) => line.startsWith(k));
    if (!name) continue;
    const cols = line.slice(name.length).trim().split(/\s+/);
    const hard = cols[1];
    if (hard === undefined) continue;
    out[LIMIT_NAMES[name]!] = hard === 'unlimited' ? -1 : Number(hard);
  }
  return out;
}

let cached: { hardLimits: Record<string, number>; bounding: string[] } | undefined;

export function hostFacts(): { hardLimits: Record<string, number>; bounding: string[] } {
  if (cached) return cached;
  const limits = parseHardLimits(fs.readFileSync('/proc/self/limits', 'utf8'));
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  const bnd = /^CapBnd:\s*([0-9a-f]+)/m.exec(status)?.[1];
  cached = { hardLimits: limits, bounding: bnd ? capsFromMask(bnd) : [] };
  return cached;
}
