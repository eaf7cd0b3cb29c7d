/**
 * The terminal view of the second edition's dimensions (cpu, disk, network, boot modes) and the
 * one-sentence summary per dimension. Pure: report in, text out.
 */
import type { ContrastReport } from './types.js';
import { accelTag } from './walls.js';

const f1 = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));

function grid(rows: string[][]): string[] {
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd());
}

/** Column headers of the dimension tables and what each means (for the README and the HTML page). */
export const DIM_COLUMNS: Array<[string, string]> = [
  ['IDLE CPU/min', 'host CPU time one idle instance burns per minute (its cgroup + its host processes: conmon, QEMU)'],
  ['TASK p50', 'the CPU-bound task (busybox sha256sum of a buffer) inside, median time per repetition'],
  ['vs HOST', 'TASK p50 / the same busybox binary on the bare host (1.00 = native speed)'],
];

export function renderCpu(rep: ContrastReport): string[] {
  const c = rep.cpu;
  if (!c) return [];
  const walls = [...new Set([...c.task.rows.map((r) => r.wall), ...c.idle.map((r) => r.wall)])];
  const rows = walls.map((w) => {
    const idle = c.idle.find((r) => r.wall === w);
    const t = c.task.rows.find((r) => r.wall === w);
    const accel = t?.accel ?? idle?.accel ?? 'native';
    return [
      `${w === 'host' ? 'host (ref)' : w}${accelTag(accel)}`,
      w === 'host' ? 'n/a' : idle ? `${f1(idle.msPerMinute)}ms` : 'failed',
      t?.summary ? `${t.summary.median.toFixed(0)}ms (${t.summary.min.toFixed(0)}-${t.summary.max.toFixed(0)})` : t ? `- (${t.error})` : '-',
      t?.vsHost != null ? `${t.vsHost.toFixed(2)}x` : '-',
      t?.mibPerSec != null ? `${f1(t.mibPerSec)} MiB/s` : '-',
    ];
  });
  const out = ['', `cpu: idle host CPU per minute, and ${c.task.description} (range in brackets):`];
  out.push(...grid([['WALL', 'IDLE CPU/min', 'TASK p50', 'vs HOST', 'RATE'], ...rows]).map((l) => `  ${l}`));
  for (const e of c.idleErrors) out.push(`  note: ${e.wall}: idle CPU not measured: ${e.error}`);
  for (const n of c.notes) out.push(`  note: ${n}`);
  return out;
}

const rate = (f: { mibPerSec: number | null; iops: number | null; blockBytes: number } | undefined) =>
  !f || f.mibPerSec === null ? '-' : f.blockBytes < 1048576 ? `${f1(f.iops!)} IOPS` : `${f1(f.mibPerSec)} MiB/s`;

export function renderDisk(rep: ContrastReport): string[] {
  const d = rep.disk;
  if (!d) return [];
  const tests = ['seq-write', 'seq-read', 'small-write', 'small-read', 'rand-write', 'rand-read'].filter((t) => d.rows.some((r) => r.figures.some((f) => f.test === t)));
  const rows = d.rows.map((r) => [
    `${r.wall === 'host' ? 'host (ref)' : r.wall}${accelTag(r.accel)} ${r.target}`,
    r.tool,
    ...tests.map((t) => rate(r.figures.find((f) => f.test === t))),
    r.error ? `failed: ${r.error}` : r.fs,
  ]);
  const out = ['', `disk: fio, ${(d.fileBytes / 1048576).toFixed(0)} MiB sequential in 1 MiB blocks, random in 4 KiB blocks (medians; the same fio binary on the host and inside):`];
  out.push(...grid([['WALL TARGET', 'TOOL', ...tests.map((t) => t.toUpperCase()), 'FILE SYSTEM'], ...rows]).map((l) => `  ${l}`));
  out.push(`  page cache: ${d.pageCache}`);
  for (const n of d.notes) out.push(`  note: ${n}`);
  return out;
}

const us = (v: number | null) => (v === null ? '-' : v >= 1000 ? `${(v / 1000).toFixed(2)}ms` : `${v.toFixed(0)}us`);

export function renderNetwork(rep: ContrastReport): string[] {
  const n = rep.network;
  if (!n) return [];
  const rows = n.rows.flatMap((r) =>
    r.figures.map((f) => [`${r.wall === 'host' ? 'host (ref)' : r.wall}${accelTag(r.accel)}`, f.path, us(f.rttMedianUs), us(f.rttP99Us), f.mbitPerSec === null ? '-' : `${f1(f.mbitPerSec)} Mbit/s`, f.error ? `error: ${f.error}` : '']),
  );
  const out = ['', 'network: TCP round trip (sockperf ping-pong) and one-stream throughput (iperf3):'];
  out.push(...grid([['WALL', 'PATH', 'RTT p50', 'RTT p99', 'THROUGHPUT', ''], ...rows]).map((l) => `  ${l}`));
  for (const x of n.notes) out.push(`  note: ${x}`);
  return out;
}

export function renderBoot(rep: ContrastReport): string[] {
  const b = rep.boot;
  if (!b?.rows.length) return [];
  const out = ['', 'vm boot modes:'];
  const accelOf = (wall: string) => rep.walls.find((w) => w.name === wall)?.accel;
  out.push(...grid(b.rows.map((r) => [`  ${r.wall}${accelTag(accelOf(r.wall))} ${r.mode}`, r.ms === null ? '-' : r.ms >= 1000 ? `${(r.ms / 1000).toFixed(2)}s` : `${r.ms.toFixed(0)}ms`, r.how])));
  return out;
}

/** All dimension sections, in order. */
export function renderDimensions(rep: ContrastReport): string[] {
  const out = [...renderCpu(rep), ...renderDisk(rep), ...renderNetwork(rep), ...renderBoot(rep)];
  if (rep.summary?.length) {
    out.push('', 'summary:');
    for (const s of rep.summary) out.push(`  ${s.dimension}: ${s.sentence}`);
  }
  return out;
}
