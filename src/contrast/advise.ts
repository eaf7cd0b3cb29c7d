/**
 * `hull advise`: which wall fits a workload, with reasons, quoting the figures of the last
 * contrast run on this machine when there is one. Pure rules: answers in, advice out.
 */
import { fmtBytes, fmtMs } from './report-table.js';
import type { ContrastReport } from './types.js';
import { primaryVmWall } from './walls.js';

export interface AdviseInput {
  /** The workload runs code its operator does not trust. */
  untrusted: boolean;
  /** Tenants sharing the host (1 = only the operator's own workloads). */
  tenants: number;
  /** A kernel need a shared kernel cannot meet ('' when none): a version, a module, sysctls, ... */
  needsKernel: string;
  /** Longest acceptable start-up, milliseconds; null: no budget. */
  startupBudgetMs: number | null;
  /** Host memory all instances may take together, bytes; null: no budget. */
  memoryBudgetBytes: number | null;
  /** Instances that run at once. */
  instances: number;
  /** The workload is CPU-bound (compute speed inside the wall matters). Default false. */
  cpuBound?: boolean;
  /** The workload is I/O-bound (disk speed on a volume matters). Default false. */
  ioBound?: boolean;
  /** Longest acceptable TCP round trip to an instance (p99), milliseconds; null: no budget. */
  latencyBudgetMs?: number | null;
  /** Fraction of the time instances sit idle, 0..1; null: not given. */
  idleRatio?: number | null;
}

/** Idle instances together may keep at most this fraction of the host's cores busy. */
export const IDLE_CPU_SHARE = 0.1;

export type Choice = 'container' | 'gvisor' | 'vm';

export interface Advice {
  choice: Choice;
  /** The command line to run it with hull (or a peer for gVisor). */
  how: string;
  reasons: string[];
  /** Figures quoted from the last contrast run. */
  figures: string[];
  warnings: string[];
}

interface WallFigures {
  startupMs?: number;
  perInstanceBytes?: number;
  /** CPU-bound task time / the bare host's. */
  taskVsHost?: number;
  idleMsPerMinute?: number;
  /** Host -> instance over the bridge, microseconds. */
  rttMedianUs?: number;
  rttP99Us?: number;
  /** fio sequential write on a volume, MiB/s. */
  volumeWriteMiB?: number;
  accel?: string;
}

function figuresOf(rep: ContrastReport | undefined, name: string): WallFigures {
  const w = rep?.walls.find((x) => x.name === name);
  if (!w) return {};
  const perInstance = w.density && w.density.started > 0 ? w.density.totalBytes / w.density.started : w.memory?.totalBytes;
  const task = rep?.cpu?.task.rows.find((r) => r.wall === name);
  const net = rep?.network?.rows.find((r) => r.wall === name)?.figures.find((f) => f.path.startsWith('host -> instance'));
  const vol = rep?.disk?.rows.find((r) => r.wall === name && r.target === 'volume')?.figures.find((f) => f.test === 'seq-write');
  return {
    startupMs: w.startup?.summary?.median,
    perInstanceBytes: perInstance,
    taskVsHost: task?.vsHost ?? undefined,
    idleMsPerMinute: rep?.cpu?.idle.find((r) => r.wall === name)?.msPerMinute,
    rttMedianUs: net?.rttMedianUs ?? undefined,
    rttP99Us: net?.rttP99Us ?? undefined,
    volumeWriteMiB: vol?.mibPerSec ?? undefined,
    accel: w.accel ?? task?.accel,
  };
}

const fmtUs = (us: number) => (us >= 1000 ? `${(us / 1000).toFixed(2)}ms` : `${us.toFixed(0)}us`);

/** What the workload's profile says about one wall, from the measured figures: facts to quote. */
function profileNotes(name: string, f: WallFigures, a: AdviseInput): string[] {
  const out: string[] = [];
  const tcg = f.accel === 'tcg' ? ' under TCG' : '';
  if (a.cpuBound && f.taskVsHost !== undefined) out.push(`CPU-bound: ${name} runs the CPU task at ${f.taskVsHost.toFixed(2)}x the bare host's time${tcg}`);
  if (a.ioBound && f.volumeWriteMiB !== undefined) out.push(`I/O-bound: ${name} writes a volume at ${f.volumeWriteMiB.toFixed(0)} MiB/s (sequential, O_DIRECT where possible)`);
  return out;
}

/** Whether the wall fits the budgets: undefined when there is no figure to judge by. */
function fits(f: WallFigures, a: AdviseInput, cores = 1): { ok: boolean | undefined; why: string[] } {
  const why: string[] = [];
  let ok: boolean | undefined;
  if (a.latencyBudgetMs != null && f.rttP99Us !== undefined) {
    const good = f.rttP99Us / 1000 <= a.latencyBudgetMs;
    why.push(`TCP round trip p99 ${fmtUs(f.rttP99Us)} (median ${fmtUs(f.rttMedianUs ?? f.rttP99Us)}) ${good ? 'within' : 'over'} the ${fmtMs(a.latencyBudgetMs)} latency budget`);
    ok = (ok ?? true) && good;
  }
  if (a.idleRatio != null && f.idleMsPerMinute !== undefined) {
    const coresBusy = (a.instances * a.idleRatio * f.idleMsPerMinute) / 60_000;
    const good = coresBusy <= IDLE_CPU_SHARE * cores;
    why.push(`idle ${Math.round(a.idleRatio * 100)}% of the time, ${a.instances} x ${f.idleMsPerMinute.toFixed(0)} ms host CPU per idle minute keep ${coresBusy.toFixed(2)} of ${cores} cores busy doing nothing (${good ? 'within' : 'over'} ${Math.round(IDLE_CPU_SHARE * 100)}%)`);
    ok = (ok ?? true) && good;
  }
  if (a.startupBudgetMs !== null && f.startupMs !== undefined) {
    const good = f.startupMs <= a.startupBudgetMs;
    why.push(`start-up ${fmtMs(f.startupMs)} ${good ? 'within' : 'over'} the ${fmtMs(a.startupBudgetMs)} budget`);
    ok = (ok ?? true) && good;
  }
  if (a.memoryBudgetBytes !== null && f.perInstanceBytes !== undefined) {
    const need = f.perInstanceBytes * a.instances;
    const good = need <= a.memoryBudgetBytes;
    why.push(`${a.instances} x ${fmtBytes(f.perInstanceBytes)} = ${fmtBytes(need)} ${good ? 'within' : 'over'} the ${fmtBytes(a.memoryBudgetBytes)} budget`);
    ok = (ok ?? true) && good;
  }
  return { ok, why };
}

export function advise(a: AdviseInput, last: ContrastReport | undefined, gvisorInstalled: boolean): Advice {
  const c = figuresOf(last, 'container');
  // the VM wall measured (vm; with --vm-accel tcg,kvm the KVM one, else the TCG one)
  const vmName = primaryVmWall(last?.walls.map((w) => w.name) ?? []) ?? 'vm';
  const v = figuresOf(last, vmName);
  const g = figuresOf(last, 'runsc');
  const figures: string[] = [];
  const warnings: string[] = [];
  if (last) {
    const when = `hull contrast ${last.image}, ${last.finishedAt}`;
    if (c.startupMs !== undefined) figures.push(`container: start-up median ${fmtMs(c.startupMs)}${c.perInstanceBytes !== undefined ? `, ${fmtBytes(c.perInstanceBytes)} host memory per idle instance` : ''} (${when})`);
    if (v.startupMs !== undefined) figures.push(`${vmName}: start-up median ${fmtMs(v.startupMs)}${v.perInstanceBytes !== undefined ? `, ${fmtBytes(v.perInstanceBytes)} host memory per idle instance` : ''} (${when}, ${(v.accel ?? (last.machine.kvm.usable ? 'kvm' : 'tcg')).toUpperCase()})`);
    if (g.startupMs !== undefined) figures.push(`gVisor (runsc): start-up median ${fmtMs(g.startupMs)} (${when})`);
  } else {
    warnings.push("no `hull contrast` has run on this machine yet: budgets cannot be checked against measured figures (run 'hull contrast')");
  }
  if (last) {
    for (const [name, f] of [['container', c], [vmName, v]] as const) {
      if (f.taskVsHost !== undefined && (a.cpuBound || a.idleRatio != null)) figures.push(`${name}: CPU task ${f.taskVsHost.toFixed(2)}x the bare host's time${f.accel === 'tcg' ? ' (TCG)' : ''}${f.idleMsPerMinute !== undefined ? `, ${f.idleMsPerMinute.toFixed(0)} ms host CPU per idle minute` : ''}`);
      if (f.rttMedianUs !== undefined && a.latencyBudgetMs != null) figures.push(`${name}: TCP round trip over the bridge median ${fmtUs(f.rttMedianUs)}, p99 ${fmtUs(f.rttP99Us ?? f.rttMedianUs)}`);
      if (f.volumeWriteMiB !== undefined && a.ioBound) figures.push(`${name}: volume sequential write ${f.volumeWriteMiB.toFixed(0)} MiB/s`);
    }
    if ((a.cpuBound || a.ioBound || a.latencyBudgetMs != null || a.idleRatio != null) && !last.cpu && !last.disk && !last.network) warnings.push("the last contrast measured no cpu, disk or network figures: run 'hull contrast' with them (the default) to weigh the profile");
  }
  const cores = last?.machine.cores ?? 1;
  const cFit = fits(c, a, cores);
  const vFit = fits(v, a, cores);
  cFit.why.push(...profileNotes('container', c, a));
  vFit.why.push(...profileNotes(vmName, v, a));
  if (a.cpuBound && v.taskVsHost !== undefined && v.taskVsHost > 2) warnings.push(`CPU-bound work runs ${v.taskVsHost.toFixed(1)}x slower than the bare host in a VM here${v.accel === 'tcg' ? ' (TCG: no usable KVM); with KVM a VM runs it at near host speed' : ''}`);
  const strong = a.untrusted || a.tenants > 1;

  if (a.needsKernel) {
    const reasons = [`the workload needs '${a.needsKernel}' from its kernel: only a VM boots a kernel of its own; a container (and gVisor's user-space kernel) runs on what the host kernel offers`];
    reasons.push(...vFit.why);
    if (vFit.ok === false) warnings.push('the VM does not fit the budgets given; nothing else can provide an own kernel: raise the budgets or change the workload');
    return { choice: 'vm', how: 'hull run --isolation vm IMAGE ...', reasons, figures, warnings };
  }
  if (!strong) {
    const reasons = ['trusted code of a single tenant: the shared kernel is an acceptable wall, and a container starts fastest and costs least memory'];
    reasons.push(...cFit.why);
    if (cFit.ok === false) warnings.push('even containers do not fit the budgets given on this machine');
    return { choice: 'container', how: 'hull run IMAGE ...', reasons, figures, warnings };
  }
  const whyStrong = a.untrusted ? 'the code is untrusted' : `${a.tenants} tenants share the host`;
  const reasons = [`${whyStrong}: a kernel bug reachable through a shared kernel's syscalls would cross tenants; a VM puts a guest kernel and a hypervisor between them`];
  if (vFit.ok !== false) {
    reasons.push(...vFit.why);
    if (last && (v.accel ? v.accel === 'tcg' : !last.machine.kvm.usable)) warnings.push('this machine runs VMs under TCG (no usable KVM): slower start-up and CPU than with KVM');
    return { choice: 'vm', how: 'hull run --isolation vm IMAGE ...', reasons, figures, warnings };
  }
  reasons.push(`but the VM does not fit: ${vFit.why.join('; ')}`);
  if (gvisorInstalled) {
    reasons.push("gVisor (runsc) answers the workload's syscalls in a user-space kernel, so far fewer reach the host kernel, at a start-up and memory cost between a container's and a VM's");
    return { choice: 'gvisor', how: 'hull run --runtime runsc IMAGE ...', reasons, figures, warnings };
  }
  reasons.push(...cFit.why);
  reasons.push("the strongest container hull makes: its own user namespace (root inside is an unprivileged uid on the host), no capabilities, no-new-privileges, podman's seccomp profile with user namespaces refused, a read-only root");
  warnings.push('gVisor (runsc) is not installed; a container is the only wall left that fits: keep the default seccomp profile, never add privileges (--privileged, --cap-add, --device)');
  return { choice: 'container', how: STRONGEST_CONTAINER, reasons, figures, warnings };
}

/** The strongest container configuration hull has, as a command line (issue 14). */
export const STRONGEST_CONTAINER = 'hull run --userns=auto --cap-drop ALL --security-opt no-new-privileges --read-only --tmpfs /tmp IMAGE ...';

export function renderAdvice(a: Advice): string {
  const out = [`advice: ${a.choice === 'gvisor' ? 'gVisor (runsc)' : a.choice}`, `run it: ${a.how}`, '', 'why:'];
  out.push(...a.reasons.map((r) => `  - ${r}`));
  if (a.figures.length) out.push('', 'measured on this machine:', ...a.figures.map((f) => `  - ${f}`));
  if (a.warnings.length) out.push('', ...a.warnings.map((w) => `warning: ${w}`));
  return `${out.join('\n')}\n`;
}
