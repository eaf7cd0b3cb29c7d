/**
 * One sentence per dimension: which wall wins on this machine and by how much (pure: report in,
 * sentences out). Only measured figures are quoted; a dimension without them gets no sentence.
 */
import type { ContrastReport } from './types.js';
import { isVmWall, primaryVmWall } from './walls.js';
import { DISK_TOOL } from './scenario-disk.js';

const x = (n: number) => `${n >= 10 ? n.toFixed(0) : n.toFixed(1)}x`;
const label = (w: string, accel?: string) => (w === 'vm' && accel && accel !== 'native' ? `vm (${accel.toUpperCase()})` : w);
/** The VM wall the sentences compare the container with (vm, else vm-kvm, else vm-tcg). */
const vmOf = (rep: ContrastReport) => primaryVmWall([...rep.walls.map((w) => w.name), ...(rep.network?.rows ?? []).map((r) => r.wall), ...(rep.disk?.rows ?? []).map((r) => r.wall)].filter(isVmWall)) ?? 'vm';

function cpuSentence(rep: ContrastReport): string | undefined {
  const c = rep.cpu;
  if (!c) return undefined;
  const parts: string[] = [];
  const t = c.task.rows.filter((r) => r.wall !== 'host' && r.summary);
  if (t.length >= 2) {
    const [fast, slow] = [...t].sort((a, b) => a.summary!.median - b.summary!.median);
    parts.push(`${label(fast!.wall, fast!.accel)} runs the CPU-bound task ${x(slow!.summary!.median / fast!.summary!.median)} faster than ${label(slow!.wall, slow!.accel)}${t.every((r) => r.vsHost != null) ? ` (${t.map((r) => `${label(r.wall, r.accel)} ${r.vsHost!.toFixed(2)}x the bare host's time`).join(', ')})` : ''}`);
  } else if (t.length === 1 && t[0]!.vsHost != null) {
    parts.push(`${label(t[0]!.wall, t[0]!.accel)} takes ${t[0]!.vsHost.toFixed(2)}x the bare host's time for the CPU-bound task`);
  }
  const tcg = t.find((r) => r.wall === 'vm-tcg');
  const kvm = t.find((r) => r.wall === 'vm-kvm');
  if (tcg && kvm) parts.push(`emulation costs ${x(tcg.summary!.median / kvm.summary!.median)} on the CPU-bound task (vm-tcg ${tcg.summary!.median.toFixed(0)} vs vm-kvm ${kvm.summary!.median.toFixed(0)} ms)`);
  if (c.idle.length >= 2) {
    const [lo, hi] = [...c.idle].sort((a, b) => a.msPerMinute - b.msPerMinute);
    const lw = label(lo!.wall, lo!.accel);
    const hw = label(hi!.wall, hi!.accel);
    if (lo!.msPerMinute >= 0.5) parts.push(`idle, ${lw} burns ${x(hi!.msPerMinute / lo!.msPerMinute)} less host CPU than ${hw} (${lo!.msPerMinute.toFixed(0)} vs ${hi!.msPerMinute.toFixed(0)} ms per minute)`);
    else parts.push(`idle, ${lw} burns next to no host CPU (${lo!.msPerMinute.toFixed(1)} ms per minute) against ${hi!.msPerMinute.toFixed(0)} ms for ${hw}`);
  } else if (c.idle.length === 1) {
    parts.push(`idle, ${label(c.idle[0]!.wall, c.idle[0]!.accel)} burns ${c.idle[0]!.msPerMinute.toFixed(0)} ms host CPU per minute`);
  }
  return parts.length ? `${parts.join('; ')}.` : undefined;
}

function diskSentence(rep: ContrastReport): string | undefined {
  const d = rep.disk;
  if (!d) return undefined;
  const vm = vmOf(rep);
  const seq = (wall: string, target: string, test: string) => d.rows.find((r) => r.wall === wall && r.target === target && r.tool === DISK_TOOL)?.figures.find((f) => f.test === test)?.mibPerSec ?? null;
  const parts: string[] = [];
  for (const test of ['seq-write', 'seq-read'] as const) {
    const c = seq('container', 'volume', test);
    const v = seq(vm, 'volume', test);
    if (c && v) parts.push(`${test} on a volume: ${c >= v ? 'container' : vm} is ${x(Math.max(c, v) / Math.min(c, v))} faster (${c.toFixed(0)} vs ${v.toFixed(0)} MiB/s)`);
  }
  const h = seq('host', 'volume', 'seq-write');
  const vr = d.rows.find((r) => r.wall === vm && r.target === 'root');
  if (h && vr?.fs.includes('buffered')) parts.push("the VM's root writes go to guest RAM (buffered), not to a disk");
  else if (h) parts.push(`the bare host writes ${h.toFixed(0)} MiB/s with the same ${DISK_TOOL}`);
  return parts.length ? `${parts.join('; ')}.` : undefined;
}

function networkSentence(rep: ContrastReport): string | undefined {
  const n = rep.network;
  if (!n) return undefined;
  const fig = (wall: string, p: string) => n.rows.find((r) => r.wall === wall)?.figures.find((f) => f.path.startsWith(p));
  const c = fig('container', 'host -> instance');
  const vm = vmOf(rep);
  const v = fig(vm, 'host -> instance');
  const accel = n.rows.find((r) => r.wall === vm)?.accel;
  const parts: string[] = [];
  if (c?.rttMedianUs && v?.rttMedianUs) {
    const [lo, hi] = c.rttMedianUs <= v.rttMedianUs ? [['container', c], [label(vm, accel), v]] as const : [[label(vm, accel), v], ['container', c]] as const;
    parts.push(`over the bridge, ${lo[0]} answers a TCP round trip ${x(hi[1].rttMedianUs! / lo[1].rttMedianUs!)} faster (median ${lo[1].rttMedianUs!.toFixed(0)} vs ${hi[1].rttMedianUs!.toFixed(0)} us)`);
  }
  if (c?.mbitPerSec && v?.mbitPerSec) {
    const cw = c.mbitPerSec >= v.mbitPerSec;
    parts.push(`${cw ? 'container' : label(vm, accel)} moves ${x(Math.max(c.mbitPerSec, v.mbitPerSec) / Math.min(c.mbitPerSec, v.mbitPerSec))} the throughput (${c.mbitPerSec.toFixed(0)} vs ${v.mbitPerSec.toFixed(0)} Mbit/s)`);
  }
  const h = fig('host', 'host loopback');
  if (h?.rttMedianUs && parts.length) parts.push(`the host's loopback: ${h.rttMedianUs.toFixed(0)} us`);
  // one wall only: against the host's loopback
  const one = c && !v ? (['container', c] as const) : v && !c ? ([label(vm, accel), v] as const) : undefined;
  if (one && h?.rttMedianUs && one[1].rttMedianUs) {
    parts.push(`over the bridge, a ${one[0]} round trip takes ${x(one[1].rttMedianUs / h.rttMedianUs)} the host's loopback (median ${one[1].rttMedianUs.toFixed(0)} vs ${h.rttMedianUs.toFixed(0)} us)${one[1].mbitPerSec && h.mbitPerSec ? `, at ${Math.round((100 * one[1].mbitPerSec) / h.mbitPerSec)}% of its throughput` : ''}`);
  }
  return parts.length ? `${parts.join('; ')}.` : undefined;
}

function bootSentence(rep: ContrastReport): string | undefined {
  const rows = rep.boot?.rows ?? [];
  const cold = rows.find((r) => r.mode === 'cold');
  if (!cold || cold.ms === null) return undefined;
  const measured = rows.filter((r) => r.mode !== 'cold' && r.ms !== null);
  const c = rep.walls.find((w) => w.name === 'container')?.startup?.summary?.median;
  const vsC = c ? `, ${x(cold.ms / c)} a container's start-up` : '';
  if (!measured.length) return `a VM boots cold in ${cold.ms.toFixed(0)} ms${vsC}; ${rows.filter((r) => r.ms === null).map((r) => r.mode).join(' and ')}: not available here.`;
  const best = measured.sort((a, b) => a.ms! - b.ms!)[0]!;
  return `a VM boots cold in ${cold.ms.toFixed(0)} ms${vsC}; ${best.mode} takes ${best.ms!.toFixed(0)} ms (${x(cold.ms / best.ms!)} faster).`;
}

export function summarySentences(rep: ContrastReport): Array<{ dimension: string; sentence: string }> {
  const out: Array<{ dimension: string; sentence: string }> = [];
  const add = (dimension: string, s: string | undefined) => {
    if (s) out.push({ dimension, sentence: s });
  };
  add('cpu', cpuSentence(rep));
  add('disk', diskSentence(rep));
  add('network', networkSentence(rep));
  add('boot', bootSentence(rep));
  return out;
}
