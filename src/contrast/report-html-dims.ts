/**
 * The HTML sections of the second edition's dimensions: one chart per dimension (cpu, disk,
 * network, boot modes), the figures as a table, and how each was measured. Pure.
 */
import { esc, stackedBars } from './svg.js';
import type { ContrastReport } from './types.js';

const tag = (wall: string, accel?: string) => `${wall === 'host' ? 'host (ref)' : wall}${accel === 'tcg' ? ' [TCG]' : accel === 'kvm' ? ' [KVM]' : ''}`;
const num = (v: number | null | undefined, d = 0) => (v == null ? '-' : v.toFixed(d));
const table = (id: string, head: string[], rows: string[][]) =>
  `<table id="${id}"><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr>${rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('')}</table>`;

function cpu(rep: ContrastReport): string {
  const c = rep.cpu;
  if (!c) return '';
  const rows = c.task.rows.filter((r) => r.summary);
  const chart = stackedBars(rows.map((r) => ({ label: tag(r.wall, r.accel), values: [r.summary!.median] })), ['median time of the task'], { title: `cpu: ${c.task.description} (shorter is faster)`, unit: ' ms', id: 'chart-cpu' });
  const t = table(
    'cpu',
    ['wall', 'idle host CPU per minute', 'task median (min-max)', 'vs bare host', 'MiB/s'],
    [...new Set([...c.task.rows.map((r) => r.wall), ...c.idle.map((r) => r.wall)])].map((w) => {
      const i = c.idle.find((r) => r.wall === w);
      const r = c.task.rows.find((x) => x.wall === w);
      return [tag(w, r?.accel ?? i?.accel), w === 'host' ? 'n/a' : i ? `${i.msPerMinute.toFixed(1)} ms` : 'not measured', r?.summary ? `${num(r.summary.median)} ms (${num(r.summary.min)}-${num(r.summary.max)})` : r?.error ?? '-', r?.vsHost != null ? `${r.vsHost.toFixed(2)}x` : '-', num(r?.mibPerSec, 1)];
    }),
  );
  const how = [c.idle[0]?.how, c.task.how, ...c.notes, ...c.idleErrors.map((e) => `${e.wall}: ${e.error}`)].filter(Boolean) as string[];
  return `<h2>CPU</h2>\n${chart}\n${t}\n<ul class="how">${how.map((h) => `<li>${esc(h)}</li>`).join('')}</ul>`;
}

function disk(rep: ContrastReport): string {
  const d = rep.disk;
  if (!d) return '';
  const bars = d.rows.flatMap((r) =>
    r.figures.filter((f) => f.test.startsWith('seq') && f.mibPerSec !== null).map((f) => ({ label: `${tag(r.wall, r.accel)} ${r.target} ${f.test === 'seq-write' ? 'W' : 'R'}`, values: [f.mibPerSec!] })),
  );
  const chart = stackedBars(bars, ['sequential MiB/s (W: write, R: read)'], { title: `disk: sequential ${(d.fileBytes / 1048576).toFixed(0)} MiB in 1 MiB blocks`, unit: ' MiB/s', id: 'chart-disk' });
  const tests = [...new Set(d.rows.flatMap((r) => r.figures.map((f) => f.test)))];
  const t = table(
    'disk',
    ['wall', 'target', 'tool', ...tests, 'file system'],
    d.rows.map((r) => [tag(r.wall, r.accel), r.target, r.tool, ...tests.map((x) => {
      const f = r.figures.find((g) => g.test === x);
      return !f || f.mibPerSec === null ? (f?.error ?? '-') : f.blockBytes < 1048576 ? `${num(f.iops)} IOPS` : `${num(f.mibPerSec)} MiB/s`;
    }), r.error ? `failed: ${r.error}` : r.fs]),
  );
  return `<h2>Disk</h2>\n${chart}\n${t}\n<ul class="how"><li>page cache: ${esc(d.pageCache)}</li><li>${esc(d.how)}</li>${d.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>`;
}

function network(rep: ContrastReport): string {
  const n = rep.network;
  if (!n) return '';
  const short = (p: string) => (p.startsWith('host loopback') ? 'loopback' : p.startsWith('host -> instance') ? 'bridge' : p.startsWith('host -> published') ? 'published' : 'peer');
  const bars = n.rows.flatMap((r) => r.figures.filter((f) => f.rttMedianUs !== null).map((f) => ({ label: `${r.wall} ${short(f.path)}`, values: [f.rttMedianUs!] })));
  const chart = stackedBars(bars, ['TCP round trip, median'], { title: 'network: TCP round trip (sockperf ping-pong; shorter is faster)', unit: ' us', id: 'chart-network' });
  const t = table('network', ['wall', 'path', 'RTT median', 'RTT p99', 'throughput', ''], n.rows.flatMap((r) => r.figures.map((f) => [tag(r.wall, r.accel), f.path, f.rttMedianUs === null ? '-' : `${num(f.rttMedianUs)} us`, f.rttP99Us === null ? '-' : `${num(f.rttP99Us)} us`, f.mbitPerSec === null ? '-' : `${num(f.mbitPerSec)} Mbit/s`, f.error ?? ''])));
  const how = [n.how, ...new Set(n.rows.flatMap((r) => r.figures.map((f) => f.how))), ...n.notes];
  return `<h2>Network</h2>\n${chart}\n${t}\n<ul class="how">${how.map((h) => `<li>${esc(h)}</li>`).join('')}</ul>`;
}

function boot(rep: ContrastReport): string {
  const b = rep.boot;
  if (!b?.rows.length) return '';
  const accelOf = (wall: string) => rep.walls.find((w) => w.name === wall)?.accel;
  const chart = stackedBars(b.rows.filter((r) => r.ms !== null).map((r) => ({ label: `${tag(r.wall, accelOf(r.wall))} ${r.mode}`, values: [r.ms!] })), ['start-up, median'], { title: 'vm boot modes (modes this hull lacks have no bar)', unit: ' ms', id: 'chart-boot' });
  const t = table('boot', ['wall', 'mode', 'median', 'how'], b.rows.map((r) => [tag(r.wall, accelOf(r.wall)), r.mode, r.ms === null ? '-' : `${num(r.ms)} ms`, r.how]));
  return `<h2>VM boot modes</h2>\n${chart}\n${t}`;
}

export function renderHtmlDimensions(rep: ContrastReport): string {
  const summary = rep.summary?.length ? `<h2>In one sentence per dimension</h2>\n<ul id="summary">${rep.summary.map((s) => `<li><b>${esc(s.dimension)}</b>: ${esc(s.sentence)}</li>`).join('')}</ul>` : '';
  return [summary, cpu(rep), disk(rep), network(rep), boot(rep)].filter(Boolean).join('\n');
}
