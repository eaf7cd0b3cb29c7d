/**
 * The memory scenarios of a contrast: one idle instance measured alone, and density (N idle
 * instances started in parallel, or as many as fit a host memory budget). Instances started
 * here are removed again in `finally`, whatever happens.
 */
import { checkAbort } from './abort.js';
import type { Driver, IdleInstance } from './driver.js';
import { memAvailableBytes } from './machine.js';
import { measureInstance, type InstanceMemory } from './memory.js';
import { listProcesses } from './proc.js';
import type { ContrastOptions } from './runner.js';
import type { DensityResult } from './types.js';


const fmtMiB = (b: number) => `${(b / 1048576).toFixed(1)} MiB`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function idleMemory(d: Driver, o: ContrastOptions): Promise<InstanceMemory> {
  const s = await d.startIdle!(1, o.memoryBytes);
  try {
    if (!s.instances.length) throw new Error(`could not start an idle instance: ${s.failures[0] ?? 'no reason given'}`);
    await sleep(o.settleMs);
    const i = s.instances[0]!;
    const m = measureInstance(i.id, i.pid, o.memoryBytes);
    if (!m.processes.length) throw new Error(`no host process found for instance ${i.id} (pid ${i.pid})`);
    return m;
  } finally {
    await d.remove(s.instances);
  }
}

function measureMany(instances: IdleInstance[], memoryBytes: number): InstanceMemory[] {
  const procs = listProcesses();
  return instances.map((i) => measureInstance(i.id, i.pid, memoryBytes, procs));
}

export async function densityCount(d: Driver, o: ContrastOptions, signal?: AbortSignal): Promise<DensityResult> {
  const before = memAvailableBytes();
  const s = await d.startIdle!(o.density!, o.memoryBytes);
  try {
    checkAbort(signal);
    await sleep(o.settleMs);
    const mems = measureMany(s.instances, o.memoryBytes);
    const after = memAvailableBytes();
    let acc = 0;
    const curve = mems.map((m, i) => ({ n: i + 1, bytes: (acc += m.totalBytes) }));
    return {
      mode: 'count',
      requested: o.density!,
      started: s.instances.length,
      givenBytes: o.memoryBytes,
      startMs: s.ms,
      totalBytes: acc,
      memAvailableDropBytes: before - after,
      curve,
      failures: s.failures.length,
      firstError: s.failures[0],
      how: 'all started at once (parallel `run -d ... sleep 1000`), wall time until the last returned; memory = sum of each instance\'s measured total (PSS + unmapped page cache of its cgroup), the curve adds instances one by one; MemAvailable drop from /proc/meminfo for comparison',
    };
  } finally {
    await d.remove(s.instances);
  }
}

export async function densityBudget(d: Driver, o: ContrastOptions, progress: (l: string) => void, signal?: AbortSignal): Promise<DensityResult> {
  const before = memAvailableBytes();
  const all: IdleInstance[] = [];
  const curve: Array<{ n: number; bytes: number }> = [];
  let startMs = 0;
  let failures = 0;
  let firstError: string | undefined;
  let total = 0;
  const batch = 2;
  try {
    while (all.length < o.maxInstances) {
      checkAbort(signal);
      const per = all.length ? total / all.length : 0;
      if (total + per * batch > o.densityBudgetBytes!) break;
      if (memAvailableBytes() < 256 * 1048576 + per * batch) {
        progress(`density ${d.name}: stopping, host MemAvailable below 256 MiB reserve`);
        break;
      }
      const s = await d.startIdle!(batch, o.memoryBytes);
      all.push(...s.instances);
      startMs += s.ms;
      failures += s.failures.length;
      firstError ??= s.failures[0];
      if (!s.instances.length) break;
      await sleep(o.settleMs);
      total = measureMany(all, o.memoryBytes).reduce((a, m) => a + m.totalBytes, 0);
      curve.push({ n: all.length, bytes: total });
      progress(`density ${d.name}: ${all.length} running, ${fmtMiB(total)}`);
    }
    // The last batch may have crossed the budget: report how many fit under it.
    const fit = curve.filter((p) => p.bytes <= o.densityBudgetBytes!).pop();
    return {
      mode: 'budget',
      requested: o.maxInstances,
      started: fit?.n ?? 0,
      givenBytes: o.memoryBytes,
      startMs,
      totalBytes: fit?.bytes ?? 0,
      memAvailableDropBytes: before - memAvailableBytes(),
      budgetBytes: o.densityBudgetBytes!,
      curve,
      failures,
      firstError,
      how: `started in batches of ${batch} until the sum of measured totals (PSS + unmapped page cache) would pass the budget; time is the sum of the batches' wall times`,
    };
  } finally {
    await d.remove(all);
  }
}

