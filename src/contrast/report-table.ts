/** The terminal table of a contrast (pure: report in, text out). */
import { renderDimensions } from './report-dims.js';
import { accelTag } from './walls.js';
import type { ContrastReport, WallResult } from './types.js';

export const MiB = 1048576;

export function fmtMs(ms: number | null | undefined): string {
  if (ms == null) return '-';
  if (ms >= 10_000) return `${(ms / 1000).toFixed(1)}s`;
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)}s`;
  return `${ms < 10 ? ms.toFixed(1) : ms.toFixed(0)}ms`;
}

export function fmtBytes(b: number | null | undefined): string {
  if (b == null) return '-';
  if (b >= 1024 * MiB) return `${(b / 1024 / MiB).toFixed(2)}GiB`;
  return `${(b / MiB).toFixed(1)}MiB`;
}

/** Column headers and what each means (for `--help`, the README and the HTML page). */
export const COLUMNS: Array<[string, string]> = [
  ['WALL', 'hull wall (container, vm) or a peer measured as a reference row'],
  ['START p50', "median wall time of `run --rm IMAGE true` from the caller's side"],
  ['p95', '95th percentile (nearest rank) of the same runs'],
  ['MIN', 'fastest run'],
  ['MAX', 'slowest run'],
  ['MEM/IDLE', 'host memory of one idle `sleep` instance: PSS of all its host processes + unmapped page cache of its cgroup'],
  ['OVERHEAD', 'part of MEM/IDLE that is not the workload: conmon for containers, QEMU minus guest RAM for VMs'],
  ['DENSITY', 'N idle instances started in parallel: time to start them all, host memory they took together'],
  ['KERNEL', "kernel seen inside: 'host' (shared) or the guest's own version"],
  ['PIDS', 'processes visible inside / on the host'],
  ['CAPS', 'effective capabilities inside'],
  ['SECCOMP', 'whether a seccomp filter is applied inside'],
  ['ESCAPE-SYSCALLS', 'of the risky actions tried (user ns, mount, mknod, syslog, /dev/kmsg, /proc/kcore, raw socket, chroot): how many the host kernel allowed'],
];

function isoCell(w: WallResult, probe: string): string {
  const r = w.isolation?.rows.find((x) => x.probe === probe);
  return r ? r.inside : '-';
}

const TRIED = ['userns', 'mount', 'mknod', 'syslog', 'kmsg', 'kcore', 'rawsocket', 'chroot'];

export function row(w: WallResult): string[] {
  const s = w.startup?.summary;
  const kernelRow = w.isolation?.rows.find((x) => x.probe === 'kernel');
  const own = kernelRow?.verdict === 'own';
  const kernel = !kernelRow || kernelRow.verdict === 'unknown' ? '-' : own ? `own ${kernelRow.inside}` : 'host';
  const pids = w.isolation?.rows.find((x) => x.probe === 'pids');
  const tried = (w.isolation?.rows ?? []).filter((x) => TRIED.includes(x.probe));
  const allowed = tried.filter((x) => x.inside.startsWith('allowed')).length;
  const ran = tried.filter((x) => x.verdict !== 'unknown');
  const escape = !ran.length ? '-' : own ? `${allowed}/${ran.length} (guest kernel)` : `${allowed}/${ran.length}`;
  const d = w.density;
  const density = !d ? '-' : d.started === 0 ? 'failed' : `${d.started}${d.mode === 'budget' ? ` fit ${fmtBytes(d.budgetBytes)}` : d.started < d.requested ? `/${d.requested}` : ''} in ${fmtMs(d.startMs)}, ${fmtBytes(d.totalBytes)}`;
  return [
    w.kind === 'hull' ? `${w.name}${accelTag(w.accel)}` : `${w.name} (ref)`,
    fmtMs(s?.median),
    fmtMs(s?.p95),
    fmtMs(s?.min),
    fmtMs(s?.max),
    w.memory ? `${fmtBytes(w.memory.totalBytes)}/${fmtBytes(w.memory.givenBytes)}` : '-',
    w.memory ? fmtBytes(w.memory.overheadBytes) : '-',
    density,
    kernel,
    pids && pids.verdict !== 'unknown' ? `${pids.inside.split(' ')[0]}/${pids.host}` : '-',
    w.isolation && isoCell(w, 'caps') !== 'unknown' ? isoCell(w, 'caps').split(':')[0]! : '-',
    !w.isolation ? '-' : isoCell(w, 'seccomp').startsWith('filtered') ? 'yes' : isoCell(w, 'seccomp').startsWith('none') ? 'no' : '-',
    escape,
  ];
}

function grid(rows: string[][]): string {
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd()).join('\n');
}

export function renderTable(rep: ContrastReport): string {
  const out: string[] = [];
  const m = rep.machine;
  out.push(`hull contrast ${rep.image}: ${m.cpuModel}, ${m.cores} cores, ${fmtBytes(m.memTotalBytes)}, kernel ${m.kernel}, cgroup ${m.cgroup}, ${m.kvm.usable ? 'KVM' : 'no KVM (TCG)'}`);
  if (rep.vmNote) out.push(`VMs: ${rep.vmNote}`);
  out.push(`${rep.options.runs} runs per wall, idle instances given ${fmtBytes(rep.options.memoryBytes)}; load average ${m.loadAvg1} at the start${m.loadAvg1 > m.cores ? ' (busy host: figures are noisy)' : ''}`);
  if (rep.walls.some((w) => w.startup || w.memory || w.density || w.isolation)) {
    out.push('');
    out.push(grid([COLUMNS.map((c) => c[0]), ...rep.walls.map(row)]));
  }
  const splits = rep.walls.filter((w) => w.startup?.split.some((p) => p.ms !== null) || w.isolation?.guestUptimeMs !== undefined);
  if (splits.length) {
    out.push('');
    out.push('start-up split (medians; create/start/wait/rm are separate CLI calls, each includes one CLI start):');
    for (const w of splits) {
      const parts = (w.startup?.split ?? []).filter((p) => p.ms !== null).map((p) => `${p.phase} ${fmtMs(p.ms)}`);
      if (w.isolation?.guestUptimeMs !== undefined) parts.push(`guest uptime at the probe ${fmtMs(w.isolation.guestUptimeMs)}`);
      out.push(`  ${w.name}: ${parts.join(', ')}`);
    }
  }
  // network and host-setting isolation, tried for real: one line per wall
  const netIso = rep.walls.filter((w) => w.isolation?.rows.some((r) => r.probe === 'arpspoof' || r.probe === 'sysctlw'));
  if (netIso.length) {
    out.push('');
    out.push('network and host settings (tried inside; NET_RAW is the raw-socket action above):');
    for (const w of netIso) {
      const cell = (p: string) => w.isolation!.rows.find((r) => r.probe === p)?.inside ?? (p === 'arpspoof' ? 'not tried (hull\'s walls only)' : '-');
      out.push(`  ${w.kind === 'hull' ? `${w.name}${accelTag(w.accel)}` : w.name}: ARP spoof ${cell('arpspoof')}; raw socket ${cell('rawsocket')}; host sysctl write ${cell('sysctlw')}`);
    }
  }
  const ratios = rep.ratios.filter((r) => r.value !== null);
  if (ratios.length) {
    out.push('');
    out.push('ratios (same run):');
    for (const r of ratios) out.push(`  ${r.metric.padEnd(26)} ${r.of.padEnd(20)} ${r.value!.toFixed(2)}x`);
  }
  out.push(...renderDimensions(rep));
  const problems: string[] = [];
  for (const w of rep.walls) {
    if (w.startup?.failures) problems.push(`${w.name}: ${w.startup.failures} start-up runs failed (${w.startup.firstError})`);
    if (w.memoryError) problems.push(`${w.name}: memory not measured: ${w.memoryError}`);
    if (w.density?.failures) problems.push(`${w.name}: ${w.density.failures} density instances failed (${w.density.firstError})`);
    if (w.isolation?.error) problems.push(`${w.name}: isolation probes: ${w.isolation.error}`);
  }
  for (const s of rep.skipped) problems.push(`${s.name}: not measured: ${s.reason}`);
  if (problems.length) {
    out.push('');
    out.push(...problems.map((p) => `note: ${p}`));
  }
  return `${out.join('\n')}\n`;
}
