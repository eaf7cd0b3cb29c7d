/**
 * The contrast runner: drives every wall (and the peers as reference rows) through the same
 * scenarios, interleaved so that machine noise hits all alike, and collects a ContrastReport.
 * Every instance it starts is tracked by its driver; `finally` removes them all, also after an
 * interrupt (AbortSignal) or a failure half-way.
 */
import { HullError } from '../errors.js';
import { checkAbort } from './abort.js';
import type { Driver } from './driver.js';
import type { Dimension } from './dimensions.js';
import { describeMachine, vmWallAccel, type MachineInfo } from './machine.js';
import { cpuScenario, type CpuOptions } from './scenario-cpu.js';
import { diskScenario, type DiskOptions } from './scenario-disk.js';
import { networkScenario, type NetworkOptions } from './scenario-network.js';
import { bootScenario } from './scenario-boot.js';
import { netIsolation } from './scenario-netiso.js';
import { hostView } from './hostfacts.js';
import { densityBudget, densityCount, idleMemory } from './scenarios-memory.js';
import { interpretProbes, parseProbeOutput, probesComplete, probeUptimeMs, PROBE_SCRIPT } from './probes.js';
import { ratio, summarize } from './stats.js';
import { summarySentences } from './summary.js';
import { isVmWall, type VmAccelRequest } from './walls.js';
import {
  CONTRAST_FORMAT,
  type ContrastReport,
  type IsolationResult,
  type PhaseFigure,
  type RatioRow,
  type Accel,
  type StartupResult,
  type WallResult,
} from './types.js';

export interface ContrastOptions {
  image: string;
  /** Measured start-ups per wall (after one warm-up run). Default 10. */
  runs: number;
  /** Idle instances to start in parallel for the density figure; null: no count run. */
  density: number | null;
  /** Start instances until their host memory reaches this many bytes; null: no budget run. */
  densityBudgetBytes: number | null;
  /** Memory given to each idle instance, bytes. Default 128 MiB. */
  memoryBytes: number;
  /** Upper bound on instances in budget mode. Default 256. */
  maxInstances: number;
  /** Wait after starting idle instances before measuring them, milliseconds. Default 1000. */
  settleMs: number;
  /** The dimensions to measure (--only). Default all. */
  only: Dimension[];
  cpu: CpuOptions;
  disk: DiskOptions;
  network: NetworkOptions;
  /** The VM wall's accelerators as asked for (--vm-accel), recorded in the report; undefined: auto. */
  vmAccel?: VmAccelRequest[];
}

export interface RunnerInput {
  options: ContrastOptions;
  /** hull walls first (container, vm), then reference peers. */
  drivers: Driver[];
  /** Requested but unavailable walls/peers, with the reason. */
  skipped: Array<{ name: string; reason: string }>;
  progress: (line: string) => void;
  signal?: AbortSignal;
  machine?: MachineInfo;
  /** The image's root extracted on the host (for the bare-host references), when there is one. */
  hostRootfs?: string;
  /** The hull root: scratch files (disk tests) go into its tmp/. */
  root: string;
}



const fmtMs = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`);
const fmtMiB = (b: number) => `${(b / 1048576).toFixed(1)} MiB`;

export async function runContrast(input: RunnerInput): Promise<ContrastReport> {
  const { options: o, drivers, progress, signal } = input;
  const startedAt = new Date().toISOString();
  const machine = input.machine ?? describeMachine();
  const skipped = [...input.skipped];
  const results = new Map<string, WallResult>();
  const active: Driver[] = [];
  const want = (d: Dimension) => o.only.includes(d);
  const hostBusybox = input.hostRootfs && `${input.hostRootfs}/bin/busybox`;
  // a VM wall's accelerator: the one it was started with, else what the VM wall's own verdict says
  const accelOf = (wall: string): Accel => {
    if (!isVmWall(wall)) return 'native';
    const d = drivers.find((x) => x.name === wall);
    if (d?.accel && d.accel !== 'native') return d.accel;
    return (vmWallAccel()?.usable ?? machine.kvm.usable) ? 'kvm' : 'tcg';
  };
  const extra: Pick<ContrastReport, 'cpu' | 'disk' | 'network' | 'boot'> = {};
  try {
    for (const d of drivers) {
      checkAbort(signal);
      try {
        await d.prepare();
        active.push(d);
        results.set(d.name, { name: d.name, kind: d.kind, command: d.command, ...(isVmWall(d.name) && d.kind === 'hull' ? { accel: accelOf(d.name) } : {}), startup: null, memory: null, density: null, isolation: null, notes: [] });
      } catch (e) {
        skipped.push({ name: d.name, reason: (e as Error).message });
        progress(`${d.name}: left out: ${(e as Error).message}`);
      }
    }
    if (!active.some((d) => d.kind === 'hull')) throw new HullError('FAILED_PRECONDITION', `no wall of hull could run ${o.image}: ${skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')}`);

    // ---- start-up, interleaved: one warm-up each (also without the startup dimension: it shows
    // whether the wall runs the workload at all), then round after round over all drivers.
    const samples = new Map<string, { ms: number[]; fails: number; firstError?: string; phases: Record<string, number[]> }>();
    for (const d of active) samples.set(d.name, { ms: [], fails: 0, phases: {} });
    for (let round = 0; round <= (want('startup') ? o.runs : 0); round++) {
      for (const d of [...active]) {
        checkAbort(signal);
        const s = await d.startupOnce();
        const rec = samples.get(d.name)!;
        if (round === 0) {
          progress(`start-up warm-up ${d.name}: ${s.ok ? fmtMs(s.ms) : `failed: ${s.error}`}`);
          // A wall that cannot run the workload at all is left out of the whole contrast.
          if (!s.ok) {
            active.splice(active.indexOf(d), 1);
            results.delete(d.name);
            skipped.push({ name: d.name, reason: `could not run the workload: ${s.error}` });
          }
          continue;
        }
        if (s.ok) {
          rec.ms.push(s.ms);
          for (const [k, v] of Object.entries(s.phases ?? {})) (rec.phases[k] ??= []).push(v);
        } else {
          rec.fails++;
          rec.firstError ??= s.error;
        }
        progress(`start-up ${round}/${o.runs} ${d.name}: ${s.ok ? fmtMs(s.ms) : `failed: ${s.error}`}`);
      }
    }
    if (!active.some((d) => d.kind === 'hull')) throw new HullError('FAILED_PRECONDITION', `no wall of hull could run ${o.image}: ${skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')}`);
    // ---- the split: the same workload as separately timed CLI calls, a few runs, interleaved.
    const splitRuns = want('startup') ? Math.min(SPLIT_RUNS, o.runs) : 0;
    const splits = new Map<string, { phases: Record<string, number[]>; error?: string }>();
    for (let i = 1; i <= splitRuns; i++) {
      for (const d of active) {
        if (!d.splitOnce) continue;
        checkAbort(signal);
        const rec = splits.get(d.name) ?? { phases: {} };
        splits.set(d.name, rec);
        const s = await d.splitOnce();
        if (s.ok) for (const [k, v] of Object.entries(s.phases)) (rec.phases[k] ??= []).push(v);
        else rec.error ??= s.error;
        progress(`start-up split ${i}/${splitRuns} ${d.name}: ${s.ok ? Object.entries(s.phases).map(([k, v]) => `${k} ${fmtMs(v)}`).join(', ') : `failed: ${s.error}`}`);
      }
    }
    for (const d of active) {
      if (!want('startup')) continue;
      const rec = samples.get(d.name)!;
      results.get(d.name)!.startup = startupResult(d, rec, splits.get(d.name));
    }

    // ---- isolation probes
    for (const d of active) {
      if (!d.probe || !want('isolation')) continue;
      checkAbort(signal);
      progress(`isolation probes: ${d.name}`);
      results.get(d.name)!.isolation = await isolation(d, machine.kernel);
    }
    // ---- network isolation on the bridge (ARP spoofing), hull's walls
    if (want('isolation')) {
      const spoof = await netIsolation(active.filter((d) => results.get(d.name)?.isolation), input.root, progress, signal);
      for (const [name, row] of spoof) results.get(name)!.isolation!.rows.push(row);
    }

    // ---- memory per idle instance
    for (const d of active) {
      if (!want('memory')) continue;
      if (!d.startIdle) {
        results.get(d.name)!.notes.push('memory per idle instance: not measured for this reference');
        continue;
      }
      checkAbort(signal);
      const r = results.get(d.name)!;
      try {
        r.memory = await idleMemory(d, o);
        progress(`memory ${d.name}: ${fmtMiB(r.memory.totalBytes)} per idle instance given ${fmtMiB(o.memoryBytes)}`);
      } catch (e) {
        if (signal?.aborted) throw e;
        r.memoryError = (e as Error).message;
        progress(`memory ${d.name}: failed: ${r.memoryError}`);
      }
    }

    // ---- density (hull's walls)
    for (const d of active) {
      if (d.kind !== 'hull' || !d.startIdle || !want('density')) continue;
      for (const mode of ['count', 'budget'] as const) {
        if (mode === 'count' && !o.density) continue;
        if (mode === 'budget' && !o.densityBudgetBytes) continue;
        checkAbort(signal);
        progress(mode === 'count' ? `density ${d.name}: starting ${o.density} idle instances in parallel` : `density ${d.name}: starting instances until ${fmtMiB(o.densityBudgetBytes!)}`);
        const res = mode === 'count' ? await densityCount(d, o, signal) : await densityBudget(d, o, progress, signal);
        const r = results.get(d.name)!;
        if (!r.density || mode === 'count') r.density = res;
        if (mode === 'budget' && r.density !== res) r.notes.push(`budget run: ${res.started} instances fit ${fmtMiB(res.budgetBytes!)} (${fmtMiB(res.totalBytes)} used)`);
        progress(`density ${d.name}: ${res.started}/${res.requested} started in ${fmtMs(res.startMs)}, ${fmtMiB(res.totalBytes)} host memory`);
      }
    }

    // ---- the second edition's dimensions, each one scenario module
    if (want('cpu')) {
      checkAbort(signal);
      progress('cpu: idle instances, then the CPU-bound task inside each wall and on the host');
      extra.cpu = await cpuScenario(active, hostBusybox, o.cpu, accelOf, progress, signal);
    }
    if (want('disk')) {
      checkAbort(signal);
      progress('disk: fio on the host, then the same fio on each wall\'s root and a volume');
      extra.disk = await diskScenario(active, input.root, o.disk, accelOf, progress, signal);
    }
    if (want('network')) {
      checkAbort(signal);
      progress('network: sockperf round trips and iperf3 throughput, host and instance to instance, bridge and published port');
      extra.network = await networkScenario(active, input.root, o.network, accelOf, progress, signal);
    }
    const vms = active.filter((d) => d.kind === 'hull' && isVmWall(d.name));
    if (want('boot') && vms.length) {
      const rows: NonNullable<ContrastReport['boot']>['rows'] = [];
      for (const vm of vms) {
        checkAbort(signal);
        rows.push(...(await bootScenario(vm, input.root, results.get(vm.name)?.startup ?? null, progress, signal)).rows);
      }
      extra.boot = { rows };
    }
  } finally {
    const left: string[] = [];
    for (const d of drivers) {
      try {
        left.push(...(await d.dispose()));
      } catch (e) {
        left.push(`${d.name}: ${(e as Error).message}`);
      }
    }
    if (left.length) progress(`could not remove: ${left.join('; ')}`);
  }

  const walls = [...results.values()];
  for (const w of walls) if (w.accel) w.accel = accelOf(w.name);
  const vmNote = accelNote(walls, skipped, machine);
  const rep: ContrastReport = {
    format: CONTRAST_FORMAT,
    image: o.image,
    startedAt,
    finishedAt: new Date().toISOString(),
    options: { runs: o.runs, density: o.density, densityBudgetBytes: o.densityBudgetBytes, memoryBytes: o.memoryBytes, isolation: drivers.filter((d) => d.kind === 'hull').map((d) => d.name), ...(o.vmAccel ? { vmAccel: o.vmAccel } : {}) },
    machine,
    ...(vmNote ? { vmNote } : {}),
    walls,
    ratios: ratiosOf(walls),
    skipped,
    only: [...o.only],
    ...extra,
  };
  rep.summary = summarySentences(rep);
  return rep;
}

/**
 * Pure: the one statement of the report about how its VMs ran: TCG where KVM is missing or
 * unusable (then every VM figure is marked [TCG]), or TCG and KVM side by side.
 */
export function accelNote(walls: Array<Pick<WallResult, 'name' | 'accel'>>, skipped: Array<{ name: string; reason: string }>, machine: MachineInfo): string | undefined {
  const vms = walls.filter((w) => w.accel);
  const tcg = vms.filter((w) => w.accel === 'tcg').map((w) => w.name);
  const kvm = vms.filter((w) => w.accel === 'kvm').map((w) => w.name);
  const kvmSkipped = skipped.find((s) => s.name === 'vm-kvm' || (isVmWall(s.name) && /KVM asked for/.test(s.reason)));
  if (tcg.length && kvm.length) return `${tcg.join(', ')} ran under TCG (QEMU's software emulation) and ${kvm.join(', ')} under KVM, the same VM side by side: the ratios ${tcg[0]} / ${kvm[0]} are what emulation costs on this machine`;
  if (tcg.length) {
    const why = kvmSkipped ? kvmSkipped.reason.replace(/; no KVM figures.*$/, '') : machine.kvm.usable ? 'TCG asked for with --vm-accel tcg' : machine.kvm.reason;
    return `every VM figure is TCG, QEMU's software emulation, marked [TCG] (${why}): under KVM a VM runs CPU-bound work at near host speed, idles with far less host CPU and answers network round trips sooner`;
  }
  if (kvmSkipped) return `${kvmSkipped.name}: ${kvmSkipped.reason}`;
  return undefined;
}

/** Split runs per wall (bounded by --runs). */
const SPLIT_RUNS = 5;

/** What each phase of the split is, as measured. */
export const PHASE_HOW: Record<string, string> = {
  cli: "'hull version': one start of the hull CLI (node and hull's modules); every CLI phase below includes one",
  create: "'hull create': image resolved, root file system and instance state prepared",
  start: "'hull start': the runtime (container) or QEMU (vm) started, until the command returns",
  wait: "'hull wait': until the workload (cat /proc/uptime) has exited",
  'guest-uptime': "guest /proc/uptime printed by the workload: guest kernel start to the workload's start, on the guest's clock",
  rm: "'hull rm': teardown (runtime state, mounts, cgroup, directories)",
};

const TRACE_HOW = 'median of the phase times the wall reported through HULL_TRACE during the start-up runs';

function startupResult(
  d: Driver,
  rec: { ms: number[]; fails: number; firstError?: string; phases: Record<string, number[]> },
  split?: { phases: Record<string, number[]>; error?: string },
): StartupResult {
  const out: PhaseFigure[] = [];
  for (const [p, v] of Object.entries(split?.phases ?? {})) {
    out.push({ phase: p, ms: summarize(v).median, how: `median of ${v.length} split runs: ${PHASE_HOW[p] ?? p}` });
  }
  for (const [p, v] of Object.entries(rec.phases)) out.push({ phase: `trace:${p}`, ms: summarize(v).median, how: TRACE_HOW });
  if (split?.error) out.push({ phase: 'split', ms: null, how: `not measured: ${split.error}` });
  if (!Object.keys(rec.phases).length && d.kind === 'hull') {
    out.push({ phase: 'in-run phases', ms: null, how: "not measured: the wall reports no phase times inside one 'run --rm' (HULL_TRACE)" });
  }
  if (!out.length) out.push({ phase: 'split', ms: null, how: 'not measured for this reference' });
  return {
    samplesMs: rec.ms,
    summary: rec.ms.length ? summarize(rec.ms) : null,
    failures: rec.fails,
    firstError: rec.firstError,
    split: out,
    how: `wall clock from the caller's side (process.hrtime), spawn of '${d.command}' to its exit; ${rec.ms.length} runs after 1 warm-up, interleaved with the other walls`,
  };
}

async function isolation(d: Driver, hostKernel: string): Promise<IsolationResult> {
  const how = "busybox sh script run inside through the normal run path; 'allowed'/'denied' are the results of really trying each action (harmless ones only)";
  const r = await d.probe!(PROBE_SCRIPT);
  const raw = parseProbeOutput(r.stdout);
  if (!probesComplete(raw)) return { rows: interpretProbes(raw, hostView(hostKernel)), error: r.error ?? 'the probe script did not finish', how };
  const rows = interpretProbes(raw, hostView(hostKernel));
  const own = rows.find((x) => x.probe === 'kernel')?.verdict === 'own';
  return { rows, guestUptimeMs: own ? probeUptimeMs(raw) : undefined, how };
}

/** Pure: the ratios between walls of the same run. */
export function ratiosOf(walls: WallResult[]): RatioRow[] {
  const by = (n: string) => walls.find((w) => w.name === n);
  const rows: RatioRow[] = [];
  const vms = walls.filter((w) => isVmWall(w.name)).map((w) => w.name);
  const pairs: Array<[string, string]> = [
    ...vms.map((v) => [v, 'container'] as [string, string]),
    ['vm-tcg', 'vm-kvm'],
    ['container-userns', 'container'], ['container', 'crun'], ['container', 'runc'], ['container', 'podman'],
    ...vms.map((v) => [v, 'podman'] as [string, string]),
  ];
  for (const [a, b] of pairs) {
    const A = by(a);
    const B = by(b);
    if (!A || !B) continue;
    rows.push({ metric: 'start-up median', of: `${a} / ${b}`, value: ratio(A.startup?.summary?.median, B.startup?.summary?.median) });
    if (A.memory && B.memory) rows.push({ metric: 'memory per idle instance', of: `${a} / ${b}`, value: ratio(A.memory.totalBytes, B.memory.totalBytes) });
    if (A.density && B.density && A.density.mode === B.density.mode) {
      rows.push({ metric: 'density start time', of: `${a} / ${b}`, value: ratio(A.density.startMs, B.density.startMs) });
      rows.push({ metric: 'density host memory', of: `${a} / ${b}`, value: ratio(A.density.totalBytes / Math.max(1, A.density.started), B.density.totalBytes / Math.max(1, B.density.started)) });
    }
  }
  return rows;
}
