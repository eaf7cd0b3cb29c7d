/**
 * The `--html` page: one self-contained file (inline CSS and SVG, no script, no network) with
 * the start-up distributions, memory per instance as stacked bars, density curves, the
 * isolation table, the machine and how every figure was measured. Pure: report in, HTML out.
 */
import { COLUMNS, fmtBytes, MiB, renderTable } from './report-table.js';
import { renderHtmlDimensions } from './report-html-dims.js';
import { esc, lineChart, stackedBars, stripPlot } from './svg.js';
import type { ContrastReport } from './types.js';
import { accelTag } from './walls.js';

const CSS = `body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222;max-width:1000px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px}table{border-collapse:collapse;margin:8px 0}
td,th{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}th{background:#f3f3f3}
.contained{background:#e3f4e6}.exposed{background:#fbe3e1}.own{background:#e6eefb}.unknown{background:#f6f6f6}
svg .title{font-weight:600;font-size:13px}svg .tick{font-size:11px;fill:#555}svg .label{font-size:12px}
svg .grid{stroke:#e2e2e2}pre{background:#f7f7f7;padding:8px;overflow:auto;font-size:12px}.how{color:#555;font-size:12px}`;

export function renderHtml(rep: ContrastReport): string {
  const m = rep.machine;
  const walls = rep.walls;
  const startup = stripPlot(
    walls.filter((w) => w.startup?.samplesMs.length).map((w) => ({ label: w.kind === 'hull' ? `${w.name}${accelTag(w.accel)}` : `${w.name} (ref)`, values: w.startup!.samplesMs, median: w.startup!.summary?.median, p95: w.startup!.summary?.p95 })),
    { title: `start-up of 'run --rm ${rep.image} true' (log scale; thick mark: median, dashed: p95)`, unit: 'ms', id: 'chart-startup' },
  );
  const memWalls = walls.filter((w) => w.memory);
  const memory = stackedBars(
    memWalls.map((w) => ({
      label: w.kind === 'hull' ? `${w.name}${accelTag(w.accel)}` : `${w.name} (ref)`,
      values: [w.memory!.workloadBytes / MiB, w.memory!.overheadBytes / MiB, (w.memory!.pageCacheBytes ?? 0) / MiB],
      mark: w.memory!.givenBytes / MiB,
    })),
    ['guest / workload', 'QEMU or monitor overhead', 'page cache'],
    { title: 'host memory per idle instance (dashed: memory given)', unit: ' MiB', id: 'chart-memory', markLabel: 'given' },
  );
  const densWalls = walls.filter((w) => w.density?.curve.length);
  const density = lineChart(
    densWalls.map((w) => ({ label: `${w.name}${accelTag(w.accel)}`, points: w.density!.curve.map((p) => [p.n, p.bytes / MiB] as [number, number]) })),
    { title: 'density: host memory of N idle instances', xLabel: 'instances running', unit: ' MiB', id: 'chart-density' },
  );
  const probes = [...new Set(walls.flatMap((w) => (w.isolation?.rows ?? []).map((r) => r.probe)))];
  const isoWalls = walls.filter((w) => w.isolation);
  const isoRows = probes.map((p) => {
    const first = isoWalls.map((w) => w.isolation!.rows.find((r) => r.probe === p)).find(Boolean);
    const cells = isoWalls.map((w) => {
      const r = w.isolation!.rows.find((x) => x.probe === p);
      return r ? `<td class="${r.verdict}">${esc(r.inside)}</td>` : '<td class="unknown">-</td>';
    });
    return `<tr><th>${esc(first?.label ?? p)}</th>${cells.join('')}<td>${esc(first?.host ?? '')}</td></tr>`;
  });
  const how: string[] = [];
  for (const w of walls) {
    if (w.startup) how.push(`<li><b>${esc(w.name)}</b> start-up: ${esc(w.startup.how)}; split: ${esc(w.startup.split.map((s) => `${s.phase}${s.ms === null ? '' : ` ${s.ms.toFixed(1)} ms`}: ${s.how}`).join('; '))}</li>`);
    if (w.memory) how.push(`<li><b>${esc(w.name)}</b> memory: ${esc(w.memory.how)}</li>`);
    if (w.density) how.push(`<li><b>${esc(w.name)}</b> density: ${esc(w.density.how)}</li>`);
    if (w.isolation) how.push(`<li><b>${esc(w.name)}</b> isolation: ${esc(w.isolation.how)}</li>`);
    for (const n of w.notes) how.push(`<li><b>${esc(w.name)}</b>: ${esc(n)}</li>`);
  }
  for (const s of rep.skipped) how.push(`<li><b>${esc(s.name)}</b> not measured: ${esc(s.reason)}</li>`);
  const ratios = rep.ratios.filter((r) => r.value !== null).map((r) => `<tr><td>${esc(r.metric)}</td><td>${esc(r.of)}</td><td>${r.value!.toFixed(2)}x</td></tr>`);
  const versions = Object.entries(m.versions).map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>hull contrast: ${esc(rep.image)}</title>
<style>${CSS}</style></head><body>
<h1>hull contrast: ${esc(rep.image)}</h1>
<p>${esc(m.cpuModel)}, ${m.cores} cores, ${esc(fmtBytes(m.memTotalBytes))}, ${esc(m.os)}, kernel ${esc(m.kernel)}, cgroup ${esc(m.cgroup)}; ${esc(m.kvm.reason)}.${rep.vmNote ? ` VMs: ${esc(rep.vmNote)}.` : ''}
${rep.options.runs} measured runs per wall, interleaved; ${esc(rep.startedAt)} to ${esc(rep.finishedAt)}.</p>
<h2>Summary</h2>
<pre>${esc(renderTable(rep))}</pre>
<table><tr><th>column</th><th>meaning</th></tr>${COLUMNS.map(([c, d]) => `<tr><td>${esc(c)}</td><td>${esc(d)}</td></tr>`).join('')}</table>
${walls.some((w) => w.startup?.samplesMs.length) ? `<h2>Start-up</h2>\n${startup}` : ''}
${memWalls.length ? `<h2>Memory per idle instance</h2>\n${memory}` : ''}
${densWalls.length ? `<h2>Density</h2>\n${density}` : ''}
${densWalls.length ? `<table id="density"><tr><th>wall</th><th>started</th><th>time to start</th><th>host memory measured (PSS + page cache)</th><th>per instance</th><th>MemAvailable drop (host-wide, includes kernel memory and other work)</th></tr>${densWalls
    .map((w) => {
      const d = w.density!;
      return `<tr><td>${esc(w.name)}</td><td>${d.started} of ${d.mode === 'budget' ? `a ${esc(fmtBytes(d.budgetBytes))} budget` : d.requested}</td><td>${(d.startMs / 1000).toFixed(2)} s</td><td>${esc(fmtBytes(d.totalBytes))}</td><td>${esc(fmtBytes(d.started ? d.totalBytes / d.started : null))}</td><td>${esc(fmtBytes(d.memAvailableDropBytes))}</td></tr>`;
    })
    .join('')}</table>` : ''}
${renderHtmlDimensions(rep)}
${isoWalls.length ? '' : '<!-- no isolation probes -->'}<h2>Isolation</h2>
<table id="isolation"><tr><th>probe</th>${isoWalls.map((w) => `<th>${esc(`${w.name}${accelTag(w.accel)}`)}</th>`).join('')}<th>host</th></tr>${isoRows.join('')}</table>
<p class="how">green: stopped or hidden by the wall; red: reaches the host kernel; blue: reaches only the VM's own kernel.</p>
<h2>Ratios between walls (same run)</h2>
<table>${ratios.join('') || '<tr><td>no pair of walls measured</td></tr>'}</table>
<h2>How each figure was measured</h2>
<ul class="how">${how.join('')}</ul>
<h2>Versions</h2>
<table>${versions.join('')}</table>
</body></html>
`;
}
