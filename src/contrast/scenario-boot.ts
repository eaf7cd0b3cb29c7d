/**
 * The boot-mode split of the VM wall: cold boot, snapshot restore, pool claim. Cold boot is
 * measured (the start-up runs of the startup dimension, or a few runs of its own when that
 * dimension is left out). Restore and pool claim are measured only where this hull has them;
 * otherwise their rows say "not available" and why, with no figure. Where it has --vm-boot,
 * cold boot and restore are each measured with their own flag.
 */
import { checkAbort } from './abort.js';
import type { Driver } from './driver.js';
import { runHull } from './spawn.js';
import { summarize } from './stats.js';
import type { BootModeRow, BootResult, StartupResult } from './types.js';

/** Pure: which boot modes a hull's CLI offers, from `hull run --help` and `hull vm pool --help`. */
export function bootModesOffered(runHelp: string, poolHelpOk: boolean): { restore: boolean; pool: boolean } {
  return { restore: /--vm-boot\b/.test(runHelp), pool: poolHelpOk };
}

/** Pure: the rows, from the cold figures and what the CLI offers. */
export function bootRows(cold: { ms: number | null; how: string }, offered: { restore: boolean; pool: boolean }, restore?: { ms: number | null; how: string }, wall = 'vm'): BootModeRow[] {
  return [
    { wall, mode: 'cold', ms: cold.ms, how: cold.how },
    restore ? { wall, mode: 'restore', ms: restore.ms, how: restore.how } : {
      wall,
      mode: 'restore',
      ms: null,
      how: offered.restore ? "not measured: this hull offers 'run --vm-boot' (snapshot restore), which this edition of contrast does not drive yet" : "not available: this hull has no VM snapshot restore ('hull run' has no --vm-boot flag)",
    },
    {
      wall,
      mode: 'pool',
      ms: null,
      how: offered.pool ? "not measured: this hull offers 'hull vm pool' (a warm pool), which this edition of contrast does not drive yet" : "not available: this hull has no warm pool of VMs (no 'hull vm pool' command)",
    },
  ];
}

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
    const cold = await measure('cold', 0);
    const restore = await measure('auto', 1);
    return { rows: bootRows(cold, offered, restore, vm.name) };
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
