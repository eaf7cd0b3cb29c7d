/** Small SVG chart builders (pure, no dependencies): strip plot, stacked bars, line chart. */

export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

export const PALETTE = ['#2f6fb3', '#d9822b', '#3f9a53', '#a64ca6', '#c23b3b', '#7a7a7a'];

const n2 = (v: number) => (Math.round(v * 10) / 10).toString();

/** "Nice" tick values covering [lo, hi] on a log-10 axis (1, 2, 5 per decade). */
export function logTicks(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= lo / 1.0001 && v <= hi * 1.0001) out.push(v);
    }
  }
  return out;
}

/** Linear ticks: about `count` round values from 0 to hi. */
export function linTicks(hi: number, count = 5): number[] {
  if (!(hi > 0)) return [0];
  const raw = hi / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = 0; v <= hi * 1.0001 + step; v += step) out.push(v);
  return out;
}

export interface StripSeries {
  label: string;
  values: number[];
  median?: number;
  p95?: number;
}

/** Horizontal strip plot of distributions on a log axis (ms): one row per series, dots + median/p95 marks. */
export function stripPlot(series: StripSeries[], opts: { title: string; unit: string; id: string }): string {
  const all = series.flatMap((s) => s.values).filter((v) => v > 0);
  const W = 720;
  const left = 130;
  const right = 36;
  const rowH = 36;
  const top = 30;
  const H = top + rowH * Math.max(1, series.length) + 40;
  if (!all.length) return `<svg class="chart" id="${opts.id}" width="${W}" height="60" viewBox="0 0 ${W} 60"><text x="10" y="30">${esc(opts.title)}: no data</text></svg>`;
  const lo = Math.min(...all) / 1.3;
  const hi = Math.max(...all) * 1.3;
  const x = (v: number) => left + ((Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * (W - left - right);
  const parts: string[] = [];
  parts.push(`<text x="${left}" y="18" class="title">${esc(opts.title)}</text>`);
  for (const t of logTicks(lo, hi)) {
    parts.push(`<line x1="${n2(x(t))}" y1="${top - 4}" x2="${n2(x(t))}" y2="${H - 34}" class="grid"/>`);
    parts.push(`<text x="${n2(x(t))}" y="${H - 20}" text-anchor="middle" class="tick">${esc(opts.unit === 'ms' && t >= 1000 ? `${t / 1000}s` : `${t}${opts.unit}`)}</text>`);
  }
  series.forEach((s, i) => {
    const cy = top + rowH * i + rowH / 2;
    const color = PALETTE[i % PALETTE.length];
    parts.push(`<text x="${left - 8}" y="${cy + 4}" text-anchor="end" class="label">${esc(s.label)}</text>`);
    s.values.forEach((v, j) => {
      const jitter = ((j % 5) - 2) * 3;
      if (v > 0) parts.push(`<circle cx="${n2(x(v))}" cy="${n2(cy + jitter)}" r="3" fill="${color}" fill-opacity="0.6"><title>${esc(`${s.label}: ${v.toFixed(1)} ${opts.unit}`)}</title></circle>`);
    });
    if (s.median && s.median > 0) parts.push(`<line x1="${n2(x(s.median))}" y1="${cy - 12}" x2="${n2(x(s.median))}" y2="${cy + 12}" stroke="${color}" stroke-width="3"><title>median ${s.median.toFixed(1)} ${esc(opts.unit)}</title></line>`);
    if (s.p95 && s.p95 > 0) parts.push(`<line x1="${n2(x(s.p95))}" y1="${cy - 8}" x2="${n2(x(s.p95))}" y2="${cy + 8}" stroke="${color}" stroke-width="1.5" stroke-dasharray="3 2"><title>p95 ${s.p95.toFixed(1)} ${esc(opts.unit)}</title></line>`);
  });
  return `<svg class="chart" id="${opts.id}" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(opts.title)}">${parts.join('')}</svg>`;
}

export interface StackedBar {
  label: string;
  /** Segment values in the order of `segments`. */
  values: number[];
  /** A reference mark (e.g. memory given), same unit. */
  mark?: number;
}

/** Horizontal stacked bars. Values in `unit` already (e.g. MiB). */
export function stackedBars(bars: StackedBar[], segments: string[], opts: { title: string; unit: string; id: string; markLabel?: string }): string {
  const W = 720;
  const left = 130;
  const right = 40;
  const rowH = 34;
  const top = 48;
  const H = top + rowH * Math.max(1, bars.length) + 34;
  const hi = Math.max(1e-9, ...bars.map((b) => Math.max(b.values.reduce((a, v) => a + v, 0), b.mark ?? 0)));
  const ticks = linTicks(hi);
  const max = ticks[ticks.length - 1]!;
  const x = (v: number) => left + (v / max) * (W - left - right);
  const parts: string[] = [`<text x="${left}" y="18" class="title">${esc(opts.title)}</text>`];
  segments.forEach((s, i) => {
    parts.push(`<rect x="${left + i * 190}" y="26" width="12" height="12" fill="${PALETTE[i % PALETTE.length]}"/><text x="${left + i * 190 + 16}" y="36" class="tick">${esc(s)}</text>`);
  });
  for (const t of ticks) {
    parts.push(`<line x1="${n2(x(t))}" y1="${top - 4}" x2="${n2(x(t))}" y2="${H - 30}" class="grid"/>`);
    parts.push(`<text x="${n2(x(t))}" y="${H - 16}" text-anchor="middle" class="tick">${n2(t)}${esc(opts.unit)}</text>`);
  }
  bars.forEach((b, i) => {
    const y = top + rowH * i + 6;
    parts.push(`<text x="${left - 8}" y="${y + 15}" text-anchor="end" class="label">${esc(b.label)}</text>`);
    let acc = 0;
    b.values.forEach((v, j) => {
      if (!(v > 0)) return;
      parts.push(`<rect x="${n2(x(acc))}" y="${y}" width="${n2(Math.max(1, x(acc + v) - x(acc)))}" height="20" fill="${PALETTE[j % PALETTE.length]}"><title>${esc(`${b.label} ${segments[j]}: ${v.toFixed(2)}${opts.unit}`)}</title></rect>`);
      acc += v;
    });
    if (b.mark) parts.push(`<line x1="${n2(x(b.mark))}" y1="${y - 3}" x2="${n2(x(b.mark))}" y2="${y + 23}" stroke="#000" stroke-dasharray="2 2"><title>${esc(`${opts.markLabel ?? 'mark'}: ${b.mark}${opts.unit}`)}</title></line>`);
  });
  return `<svg class="chart" id="${opts.id}" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(opts.title)}">${parts.join('')}</svg>`;
}

export interface LineSeries {
  label: string;
  points: Array<[number, number]>;
}

/** Line chart with linear axes (x: count, y: value in `unit`). */
export function lineChart(series: LineSeries[], opts: { title: string; xLabel: string; unit: string; id: string }): string {
  const W = 720;
  const H = 300;
  const left = 70;
  const right = 130;
  const top = 30;
  const bottom = 44;
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]));
  const xt = linTicks(Math.max(1, ...xs));
  const yt = linTicks(Math.max(1e-9, ...ys));
  const xmax = xt[xt.length - 1]!;
  const ymax = yt[yt.length - 1]!;
  const x = (v: number) => left + (v / xmax) * (W - left - right);
  const y = (v: number) => H - bottom - (v / ymax) * (H - top - bottom);
  const parts: string[] = [`<text x="${left}" y="18" class="title">${esc(opts.title)}</text>`];
  for (const t of xt) parts.push(`<line x1="${n2(x(t))}" y1="${top}" x2="${n2(x(t))}" y2="${H - bottom}" class="grid"/><text x="${n2(x(t))}" y="${H - bottom + 16}" text-anchor="middle" class="tick">${n2(t)}</text>`);
  for (const t of yt) parts.push(`<line x1="${left}" y1="${n2(y(t))}" x2="${W - right}" y2="${n2(y(t))}" class="grid"/><text x="${left - 6}" y="${n2(y(t)) + 4}" text-anchor="end" class="tick">${n2(t)}${esc(opts.unit)}</text>`);
  parts.push(`<text x="${(left + W - right) / 2}" y="${H - 6}" text-anchor="middle" class="tick">${esc(opts.xLabel)}</text>`);
  series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length];
    const pts = [[0, 0] as [number, number], ...s.points];
    parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.map((p) => `${n2(x(p[0]))},${n2(y(p[1]))}`).join(' ')}"/>`);
    for (const p of s.points) parts.push(`<circle cx="${n2(x(p[0]))}" cy="${n2(y(p[1]))}" r="2.5" fill="${color}"><title>${esc(`${s.label}: ${p[0]} -> ${p[1].toFixed(1)} ${opts.unit}`)}</title></circle>`);
    parts.push(`<rect x="${W - right + 10}" y="${top + i * 18}" width="12" height="12" fill="${color}"/><text x="${W - right + 26}" y="${top + i * 18 + 10}" class="tick">${esc(s.label)}</text>`);
  });
  return `<svg class="chart" id="${opts.id}" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(opts.title)}">${parts.join('')}</svg>`;
}
