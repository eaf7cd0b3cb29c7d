/**
 * Summary statistics of measured samples (pure). Percentiles use the nearest-rank method on
 * the sorted samples, so every figure reported is a value that was really measured.
 */
import { invalid } from '../errors.js';

export interface Summary {
  /** Number of samples. */
  n: number;
  median: number;
  p95: number;
  min: number;
  max: number;
  mean: number;
}

function checked(samples: readonly number[]): number[] {
  if (samples.length === 0) throw invalid('no samples to summarize');
  for (const s of samples) if (!Number.isFinite(s)) throw invalid(`sample ${s} is not a finite number`);
  return [...samples].sort((a, b) => a - b);
}

/**
 * Nearest-rank percentile: the smallest sample such that at least `p` percent of the samples
 * are less than or equal to it. `p` in (0, 100].
 */
export function percentile(samples: readonly number[], p: number): number {
  if (!(p > 0 && p <= 100)) throw invalid(`percentile ${p} is outside (0, 100]`);
  const s = checked(samples);
  const rank = Math.ceil((p / 100) * s.length);
  return s[Math.max(0, rank - 1)]!;
}

/** Median: the middle sample, or the mean of the two middle samples for an even count. */
export function median(samples: readonly number[]): number {
  const s = checked(samples);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function summarize(samples: readonly number[]): Summary {
  const s = checked(samples);
  return {
    n: s.length,
    median: median(s),
    p95: percentile(s, 95),
    min: s[0]!,
    max: s[s.length - 1]!,
    mean: s.reduce((a, b) => a + b, 0) / s.length,
  };
}

/** a / b, or null when either is missing or b is zero. */
export function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  if (a == null || b == null || b === 0 || !Number.isFinite(a) || !Number.isFinite(b)) return null;
  return a / b;
}
