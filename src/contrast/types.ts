/**
 * The shape of one contrast run: what `--json` writes, what the table and the HTML page are
 * rendered from, and what `hull advise` quotes. Versioned: readers check `format`.
 */
import type { MachineInfo } from './machine.js';
import type { InstanceMemory } from './memory.js';
import type { IsolationRow } from './probes.js';
import type { Summary } from './stats.js';

export const CONTRAST_FORMAT = 'hull.contrast/v1';

export interface PhaseFigure {
  /** prepare | runtime | kernel-boot | process | teardown | ... */
  phase: string;
  /** Median over the runs that reported it, milliseconds; null when not measured. */
  ms: number | null;
  how: string;
}

export interface StartupResult {
  /** Every measured run, milliseconds, in run order (warm-up excluded). */
  samplesMs: number[];
  summary: Summary | null;
  /** Runs that failed (exit code not 0), with the reason of the first. */
  failures: number;
  firstError?: string;
  split: PhaseFigure[];
  how: string;
}

export interface DensityPoint {
  /** Instances running. */
  n: number;
  /** Host memory of those instances together, bytes (sum of their measured totals). */
  bytes: number;
}

export interface DensityResult {
  /** 'count': N instances were started; 'budget': instances were started until the budget was reached. */
  mode: 'count' | 'budget';
  requested: number;
  /** Instances that started. */
  started: number;
  /** Memory each was given, bytes. */
  givenBytes: number;
  /** Wall time to start them in parallel (count mode) or in batches (budget mode), milliseconds. */
  startMs: number;
  /** Host memory they took together, bytes (sum of per-instance totals). */
  totalBytes: number;
  /** MemAvailable before minus after, bytes (host-wide, includes noise). */
  memAvailableDropBytes: number;
  budgetBytes?: number;
  curve: DensityPoint[];
  failures: number;
  firstError?: string;
  how: string;
}

export interface IsolationResult {
  rows: IsolationRow[];
  /** Guest /proc/uptime at the probe's start (VMs: kernel boot to workload), milliseconds. */
  guestUptimeMs?: number;
  error?: string;
  how: string;
}

export interface WallResult {
  /** container | vm | podman | crun | runc | runsc */
  name: string;
  /** hull: one of hull's walls; reference: a peer tool measured the same way. */
  kind: 'hull' | 'reference';
  /** What was run, e.g. 'hull run --rm --isolation vm busybox true'. */
  command: string;
  startup: StartupResult | null;
  memory: InstanceMemory | null;
  memoryError?: string;
  density: DensityResult | null;
  isolation: IsolationResult | null;
  /** Why parts were not measured. */
  notes: string[];
}

export interface RatioRow {
  metric: string;
  /** e.g. 'vm / container'. */
  of: string;
  value: number | null;
}

export interface ContrastReport {
  format: typeof CONTRAST_FORMAT;
  image: string;
  startedAt: string;
  finishedAt: string;
  options: { runs: number; density: number | null; densityBudgetBytes: number | null; memoryBytes: number; isolation: string[] };
  machine: MachineInfo;
  walls: WallResult[];
  ratios: RatioRow[];
  /** Why a requested wall or peer was left out. */
  skipped: Array<{ name: string; reason: string }>;
}
