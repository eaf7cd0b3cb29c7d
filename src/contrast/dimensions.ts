/** The dimensions a contrast can measure, and `--only` (pure; errors name the flag). */
import { invalid } from '../errors.js';

export const DIMENSIONS = ['startup', 'memory', 'density', 'isolation', 'cpu', 'disk', 'network', 'boot'] as const;
export type Dimension = (typeof DIMENSIONS)[number];

/** '--only cpu,disk' -> the dimensions, validated; undefined (or 'all') for every one. */
export function parseOnly(value: string | undefined): Dimension[] {
  if (value === undefined || value.trim() === 'all') return [...DIMENSIONS];
  const list = value.split(',').map((s) => s.trim()).filter(Boolean);
  if (!list.length) throw invalid(`"--only" needs at least one of: ${DIMENSIONS.join(', ')}`);
  for (const d of list) if (!(DIMENSIONS as readonly string[]).includes(d)) throw invalid(`invalid argument "${d}" for "--only" flag: expected ${DIMENSIONS.join(', ')} (comma-separated) or all`);
  return DIMENSIONS.filter((d) => list.includes(d));
}
