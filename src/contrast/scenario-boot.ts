/**
 * The boot-mode split of the VM wall: cold boot, snapshot restore, pool claim. Cold boot is
 * measured (the start-up runs of the startup dimension, or a few runs of its own when that
 * dimension is left out). Restore and pool claim are measured only where this hull has them;
 * otherwise their rows say "not available" and why, with no figure. Where it has --vm-boot,
 * cold boot and restore are each measured with their own flag; where it has `hull vm pool` too,
 * the pool claim is measured last: a pool of POOL_SIZE started on the contrast's root, filled
 * again before each run (not timed), each run checked to have claimed one of its guests, and the
 * pool drained afterwards, also when the run is interrupted. A pool that already runs on the
 * root is the user's: contrast leaves it alone and measures neither restore nor pool (a restore
 * run of the pool's shape would claim its guests).
 */
import { HullError } from '../errors.js';
import { checkAbort } from './abort.js';
import type { Driver } from './driver.js';
import { lastLine, runHull } from './spawn.js';
import { summarize } from './stats.js';
import type { BootModeRow, BootResult, StartupResult } from './types.js';

/** Pure: which boot modes a hull's CLI offers, from `hull run --help` and `hull vm pool --help`. */
export function bootModesOffered(runHelp: string, poolHelpOk: boolean): { restore: boolean; pool: boolean } {
  return { restore: /--vm-boot\b/.test(runHelp), pool: poolHelpOk };
}

/** Pure: the rows, from the cold figures and what the CLI offers. */
export function bootRows(cold: { ms: number | null; how: string }, offered: { restore: boolean; pool: boolean }, restore?: { ms: number | null; how: string }, wall = 'vm', pool?: { ms: number | null; how: string }): BootModeRow[] {
  return [
    { wall, mode: 'cold', ms: cold.ms, how: cold.how },
    restore ? { wall, mode: 'restore', ms: restore.ms, how: restore.how } : {
      wall,
      mode: 'restore',
      ms: null,
      how: offered.restore ? "not measured: this hull offers 'run --vm-boot' (snapshot restore), which this edition of contrast does not drive yet" : "not available: this hull has no VM snapshot restore ('hull run' has no --vm-boot flag)",
    },
    pool ? { wall, mode: 'pool', ms: pool.ms, how: pool.how } : {
      wall,
      mode: 'pool',
      ms: null,
      how: offered.pool ? "not measured: this hull offers 'hull vm pool' (a warm pool), which this edition of contrast does not drive yet" : "not available: this hull has no warm pool of VMs (no 'hull vm pool' command)",
    },
  ];
}

/** Pure: the ids of the ready guests in `hull vm pool --format json`, and whether a keeper runs. */
export function parsePoolState(json: string): { size: number; keeper: boolean; ids: string[] } | undefined {
  try {
    const v = JSON.parse(json) as { size?: unknown; keeper?: unknown; guests?: Array<{ id?: unknown }> };
    if (typeof v.size !== 'number' || !Array.isArray(v.guests)) return undefined;
    return { size: v.size, keeper: typeof v.keeper === 'string' && v.keeper !== '', ids: v.guests.map((g) => String(g.id)) };
  } catch {
    return undefined;
  }
}

/** Pure: whether a run claimed a pool guest: one that was ready before it is gone after it. */
export function claimedOne(before: string[], after: string[]): boolean {
  return before.some((id) => !after.includes(id));
}

/** Guests of the pool the pool claims are measured from (each run claims one of a full pool). */
export const POOL_SIZE = 2;

/** Cold-boot runs of its own when the startup dimension was left out. */
const OWN_RUNS = 3;
/** Runs of each of cold boot and restore where this hull restores templates. */
const BOOT_RUNS = 5;

export async function bootScenario(vm: Driver | undefined, root: string, startup: StartupResult | null, progress: (l: string) => void, signal?: AbortSignal): Promise<BootResult> {
  if (!vm) return { rows: [] };
  const help = await runHull(root, ['run', '--help']);
  const pool = await runHull(root, ['vm', 'pool', '--help']);
  const offered = bootModesOffered(help.stdout + help.stderr, pool.code === 0);
  if (offered.restore && vm.bootOnce) {
    // both measured here, each with its own flag: the start-up dimension runs the default, which
    // may be either (runtime/vm/snapshot.ts DEFAULT_VM_BOOT)
    const measure = async (mode: 'cold' | 'auto', warm: number) => {
      const ms: number[] = [];
      let err: string | undefined;
      for (let i = 0; i < warm + BOOT_RUNS; i++) {
        checkAbort(signal);
        const s = await vm.bootOnce!(mode);
        if (s.ok && i >= warm) ms.push(s.ms);
        if (!s.ok) err ??= s.error;
        progress(`boot ${vm.name} ${mode === 'cold' ? 'cold' : 'restore'} ${i + 1}/${warm + BOOT_RUNS}${i < warm ? ' (builds the template, not counted)' : ''}: ${s.ok ? `${s.ms.toFixed(0)} ms` : `failed: ${s.error}`}`);
      }
      return ms.length ? { ms: summarize(ms).median, how: `median of ${ms.length} runs of 'hull run --rm --vm --vm-boot ${mode} IMAGE true'${mode === 'auto' ? ' after one that built the template' : ''}` } : { ms: null, how: `not measured: ${err ?? 'every run failed'}` };
    };
    // a pool of the user's on this root: its guests would be claimed by the restore runs
    const existing = offered.pool ? parsePoolState((await runHull(root, ['vm', 'pool', '--format', 'json'])).stdout) : undefined;
    if (existing && (existing.keeper || existing.size > 0)) {
      const why = `not measured: a warm pool runs on this root (size ${existing.size}); contrast leaves it alone, and a restore run of its shape would claim its guests`;
      const cold = await measure('cold', 0);
      return { rows: bootRows(cold, offered, { ms: null, how: why }, vm.name, { ms: null, how: why }) };
    }
    const cold = await measure('cold', 0);
    const restore = await measure('auto', 1);
    const pool = offered.pool ? await measurePool(vm, root, progress, signal) : undefined;
    return { rows: bootRows(cold, offered, restore, vm.name, pool) };
  }
  let cold: { ms: number | null; how: string };
  if (startup?.summary) {
    cold = { ms: startup.summary.median, how: `the start-up median of the ${vm.name} wall (${startup.summary.n} runs of '${vm.command}'): every VM boots its kernel from scratch here` };
  } else {
    const ms: number[] = [];
    let err: string | undefined;
    for (let i = 0; i < OWN_RUNS; i++) {
      checkAbort(signal);
      const s = await vm.startupOnce();
      if (s.ok) ms.push(s.ms);
      else err ??= s.error;
      progress(`boot ${vm.name} cold ${i + 1}/${OWN_RUNS}: ${s.ok ? `${s.ms.toFixed(0)} ms` : `failed: ${s.error}`}`);
    }
    cold = ms.length ? { ms: summarize(ms).median, how: `median of ${ms.length} runs of '${vm.command}' (wall clock from the caller's side)` } : { ms: null, how: `not measured: ${err ?? 'every run failed'}` };
  }
  return { rows: bootRows(cold, offered, undefined, vm.name) };
}

/**
 * The pool claim: BOOT_RUNS runs of `run --rm --vm-boot auto IMAGE true`, each from a full pool of
 * POOL_SIZE (`vm pool --size N` waits until it is full; not timed) and checked to have claimed one
 * of its guests (its id gone from the pool after the run). The pool is drained in any case.
 */
async function measurePool(vm: Driver, root: string, progress: (l: string) => void, signal?: AbortSignal): Promise<{ ms: number | null; how: string }> {
  const ms: number[] = [];
  let err: string | undefined;
  try {
    for (let i = 0; i < BOOT_RUNS && !err; i++) {
      checkAbort(signal);
      const fill = await runHull(root, ['vm', 'pool', '--size', String(POOL_SIZE), '--format', 'json'], { timeoutMs: 330_000 });
      const before = parsePoolState(fill.stdout);
      if (fill.code !== 0 || !before) {
        err = `'hull vm pool --size ${POOL_SIZE}' failed: ${lastLine(fill.stderr) || `exit ${fill.code}`}`;
        break;
      }
      checkAbort(signal);
      const s = await vm.bootOnce!('auto');
      const after = parsePoolState((await runHull(root, ['vm', 'pool', '--format', 'json'])).stdout);
      if (!s.ok) err = s.error ?? 'the run failed';
      else if (!after || !claimedOne(before.ids, after.ids)) err = `a run did not claim a pool guest (ready before: ${before.ids.join(' ') || 'none'}; after: ${after?.ids.join(' ') || 'none'}); its time is not a claim`;
      else ms.push(s.ms);
      progress(`boot ${vm.name} pool ${i + 1}/${BOOT_RUNS}: ${err ? `failed: ${err}` : `${s.ms.toFixed(0)} ms`}`);
    }
  } finally {
    const drain = await runHull(root, ['vm', 'pool', '--size', '0'], { timeoutMs: 120_000 });
    if (drain.code !== 0) throw new HullError('INTERNAL', `could not drain the warm pool contrast started on ${root} (${lastLine(drain.stderr) || `exit ${drain.code}`}); 'hull --root ${root} vm pool --size 0' drains it`);
  }
  if (err) return { ms: null, how: `not measured: ${err}` };
  return { ms: summarize(ms).median, how: `median of ${ms.length} runs of 'hull run --rm --vm --vm-boot auto IMAGE true', each claiming a paused guest of a warm pool of ${POOL_SIZE} ('hull vm pool --size ${POOL_SIZE}' on this root, filled again before each run, not timed; drained after)` };
}
