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
  /** VM walls: the accelerator every figure of the wall was measured with ('tcg' / 'kvm'). */
  accel?: Accel;
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
  options: { runs: number; density: number | null; densityBudgetBytes: number | null; memoryBytes: number; isolation: string[]; vmAccel?: string[] };
  machine: MachineInfo;
  /** Said once for the whole report: how its VMs ran (TCG where KVM is unusable; TCG and KVM side by side). */
  vmNote?: string;
  walls: WallResult[];
  ratios: RatioRow[];
  /** Why a requested wall or peer was left out. */
  skipped: Array<{ name: string; reason: string }>;
  /** The dimensions measured (--only); absent in reports of the first edition (all four of then). */
  only?: string[];
  /** The second edition's dimensions, each present when it was measured. */
  cpu?: CpuResult;
  disk?: DiskResult;
  network?: NetworkResult;
  boot?: BootResult;
  /** One sentence per dimension: which wall wins here and by how much. */
  summary?: Array<{ dimension: string; sentence: string }>;
}

/** How a VM's CPU was provided when a figure was measured; containers run natively. */
export type Accel = 'native' | 'kvm' | 'tcg';

export interface IdleCpuRow {
  wall: string;
  accel: Accel;
  /** Length of the measuring window, milliseconds. */
  windowMs: number;
  /** Host CPU time of the idle instance, milliseconds per minute of wall time. */
  msPerMinute: number;
  /** Per host process: CPU time during the window, milliseconds (clock-tick resolution). */
  processes: Array<{ pid: number; comm: string; cpuMs: number; inCgroup: boolean }>;
  /** The instance's own cgroup and the CPU time it charged during the window (ns resolution). */
  cgroup: { dir: string; cpuMs: number } | null;
  how: string;
}

export interface CpuTaskRow {
  /** 'host' (the bare host, reference) or a wall. */
  wall: string;
  accel: Accel;
  /** Time of each repetition of the task, milliseconds. */
  samplesMs: number[];
  summary: Summary | null;
  /** MiB hashed per second at the median. */
  mibPerSec: number | null;
  /** Median time / the bare host's median time (1 = as fast as the host, 10 = ten times slower). */
  vsHost: number | null;
  error?: string;
}

export interface CpuResult {
  idle: IdleCpuRow[];
  idleErrors: Array<{ wall: string; error: string }>;
  task: {
    /** What was run, e.g. 'busybox sha256sum of 32 MiB of zeros'. */
    description: string;
    bytes: number;
    /** sha256 of the busybox binary run everywhere (the host reference runs the image's own). */
    binarySha256: string | null;
    rows: CpuTaskRow[];
    how: string;
  };
  notes: string[];
}

export interface DiskFigure {
  /** seq-write | seq-read | rand-write | rand-read | small-write | small-read */
  test: string;
  /** Block size, bytes. */
  blockBytes: number;
  /** Per repetition: MiB/s. */
  samples: number[];
  /** Median MiB/s. */
  mibPerSec: number | null;
  /** Median I/O operations per second (blockBytes each). */
  iops: number | null;
  error?: string;
}

export interface DiskRow {
  /** 'host' (fio, reference) or a wall. */
  wall: string;
  /** VM walls: 'tcg' or 'kvm'; 'native' for containers and the host. */
  accel?: Accel;
  /** 'root' (the instance's root file system) or 'volume' (a bind-mounted host directory). */
  target: 'root' | 'volume';
  /** What the target is on this wall, e.g. 'overlayfs upper on ext4', 'virtio-fs'. */
  fs: string;
  tool: string;
  figures: DiskFigure[];
  error?: string;
}

export interface DiskResult {
  /** Bytes written and read per sequential test. */
  fileBytes: number;
  rows: DiskRow[];
  /** How the page cache enters the figures. */
  pageCache: string;
  how: string;
  notes: string[];
}

export interface NetFigure {
  /** e.g. 'host -> instance (bridge)', 'instance -> instance (bridge)', 'host -> published port'. */
  path: string;
  /** TCP round trips, microseconds. */
  rttMedianUs: number | null;
  rttP99Us: number | null;
  /** Throughput, megabits per second (median of the runs). */
  mbitPerSec: number | null;
  samplesMbit: number[];
  error?: string;
  how: string;
}

export interface NetworkResult {
  rows: Array<{ wall: string; accel: Accel; figures: NetFigure[] }>;
  notes: string[];
  how: string;
}

export interface BootModeRow {
  wall: string;
  /** cold | restore | pool */
  mode: string;
  /** Median start-up of that mode, milliseconds; null when not available. */
  ms: number | null;
  /** Where the figure comes from, or why there is none. */
  how: string;
}

export interface BootResult {
  rows: BootModeRow[];
}
