/**
 * `hull advise`: which wall fits a workload, with reasons, quoting the figures of the last
 * contrast run on this machine when there is one. Pure rules: answers in, advice out.
 */
import { fmtBytes, fmtMs } from './report-table.js';
import type { ContrastReport } from './types.js';

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
}

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
}

function figuresOf(rep: ContrastReport | undefined, name: string): WallFigures {
  const w = rep?.walls.find((x) => x.name === name);
  if (!w) return {};
  const perInstance = w.density && w.density.started > 0 ? w.density.totalBytes / w.density.started : w.memory?.totalBytes;
  return { startupMs: w.startup?.summary?.median, perInstanceBytes: perInstance };
}

/** Whether the wall fits the budgets: undefined when there is no figure to judge by. */
function fits(f: WallFigures, a: AdviseInput): { ok: boolean | undefined; why: string[] } {
  const why: string[] = [];
  let ok: boolean | undefined;
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
  const v = figuresOf(last, 'vm');
  const g = figuresOf(last, 'runsc');
  const figures: string[] = [];
  const warnings: string[] = [];
  if (last) {
    const when = `hull contrast ${last.image}, ${last.finishedAt}`;
    if (c.startupMs !== undefined) figures.push(`container: start-up median ${fmtMs(c.startupMs)}${c.perInstanceBytes !== undefined ? `, ${fmtBytes(c.perInstanceBytes)} host memory per idle instance` : ''} (${when})`);
    if (v.startupMs !== undefined) figures.push(`vm: start-up median ${fmtMs(v.startupMs)}${v.perInstanceBytes !== undefined ? `, ${fmtBytes(v.perInstanceBytes)} host memory per idle instance` : ''} (${when}, ${last.machine.kvm.usable ? 'KVM' : 'TCG'})`);
    if (g.startupMs !== undefined) figures.push(`gVisor (runsc): start-up median ${fmtMs(g.startupMs)} (${when})`);
  } else {
    warnings.push("no `hull contrast` has run on this machine yet: budgets cannot be checked against measured figures (run 'hull contrast')");
  }
  const cFit = fits(c, a);
  const vFit = fits(v, a);
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
    if (last && !last.machine.kvm.usable) warnings.push('this machine runs VMs under TCG (no usable KVM): slower start-up and CPU than with KVM');
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
