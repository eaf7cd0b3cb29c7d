/**
 * The cpu dimension of a contrast:
 *  - idle: one idle instance per wall, all at once, and the host CPU time each burns over the
 *    same window, from the kernel's accounting (the instance's cgroup, ns resolution; its host
 *    processes' utime + stime, e.g. conmon or QEMU with all its threads, tick resolution);
 *  - task: a fixed CPU-bound job (the image's busybox: sha256sum of N MiB of zeros piped from dd)
 *    inside each wall and, as the reference, the same busybox binary run on the bare host.
 *    Rounds are interleaved host, wall, wall; each repetition is timed inside with /proc/uptime.
 * Every instance started is removed in `finally`.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { checkAbort, pause } from './abort.js';
import { cgroupCpuMs, cgroupPids, locateCpuCgroup, processCpuMs } from './cputime.js';
import type { Driver, IdleInstance } from './driver.js';
import { ownedBy } from './memory.js';
import { instanceProcesses, listProcesses } from './proc.js';
import { timedRun } from './spawn.js';
import { summarize } from './stats.js';
import type { Accel, CpuResult, CpuTaskRow, IdleCpuRow } from './types.js';

export interface CpuOptions {
  /** Window over which idle CPU is measured, milliseconds. Default 15000. */
  idleWindowMs: number;
  /** Wait after the idle instances started before the window opens, milliseconds. Default 1000. */
  settleMs: number;
  /** Memory of each idle instance, bytes. */
  memoryBytes: number;
  /** Size of the buffer the task hashes, MiB. Default 32. */
  taskMiB: number;
  /** Interleaved rounds of the task (one instance per wall per round). Default 2. */
  taskRounds: number;
  /** Repetitions of the task inside each instance (and per host round). Default 2. */
  taskReps: number;
}

/** Pure: the task script, run by busybox sh inside (BB unset) or on the host (BB=the image's busybox). */
export function cpuTaskScript(mib: number, reps: number): string {
  return [
    'BB=${BB:-busybox}',
    'i=0',
    `while [ $i -lt ${reps} ]; do`,
    '  read a x </proc/uptime',
    `  h=$($BB dd if=/dev/zero bs=1048576 count=${mib} 2>/dev/null | $BB sha256sum)`,
    '  read b x </proc/uptime',
    '  echo "T|$a|$b|${h%% *}"',
    '  i=$((i+1))',
    'done',
  ].join('\n');
}

/** Pure: sha256 of `mib` MiB of zero bytes, what every run of the task must print. */
export function zeroSha256(mib: number): string {
  const h = crypto.createHash('sha256');
  const chunk = Buffer.alloc(1048576);
  for (let i = 0; i < mib; i++) h.update(chunk);
  return h.digest('hex');
}

/** Pure: the task's output -> milliseconds per repetition; throws when a hash is wrong or a line is missing. */
export function parseCpuTask(stdout: string, expect: string, reps: number): number[] {
  const out: number[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^T\|([\d.]+)\|([\d.]+)\|([0-9a-f]*)$/.exec(line.trim());
    if (!m) continue;
    if (m[3] !== expect) throw new Error(`the task printed sha256 '${m[3]}', not the expected ${expect.slice(0, 16)}...`);
    out.push(Math.max(0, Math.round((Number(m[2]) - Number(m[1])) * 1000)));
  }
  if (out.length !== reps) throw new Error(`the task reported ${out.length} of ${reps} repetitions`);
  return out;
}

/** Pure: host CPU time of an idle instance from two readings, ms per minute of wall time. */
export function idleFigure(input: {
  windowMs: number;
  procs: Array<{ pid: number; comm: string; before: number; after: number | undefined; inCgroup: boolean }>;
  cgroup: { dir: string; before: number; after: number } | null;
}): { msPerMinute: number; processes: IdleCpuRow['processes']; cgroup: IdleCpuRow['cgroup'] } {
  const processes = input.procs.filter((p) => p.after !== undefined).map((p) => ({ pid: p.pid, comm: p.comm, cpuMs: Math.max(0, p.after! - p.before), inCgroup: p.inCgroup }));
  const cg = input.cgroup ? { dir: input.cgroup.dir, cpuMs: Math.max(0, input.cgroup.after - input.cgroup.before) } : null;
  // The cgroup's figure (finer) stands for the processes in it; the others are added by their own.
  const outside = processes.filter((p) => !cg || !p.inCgroup).reduce((a, p) => a + p.cpuMs, 0);
  const inside = cg ? cg.cpuMs : 0;
  return { msPerMinute: ((outside + inside) * 60_000) / input.windowMs, processes, cgroup: cg };
}

interface Reading {
  wall: string;
  accel: Accel;
  procs: Array<{ pid: number; comm: string; before: number; inCgroup: boolean }>;
  cgroup: { dir: string; version: 1 | 2; cgPath: string; before: number } | null;
}

function firstReading(wall: string, accel: Accel, inst: IdleInstance): Reading {
  const members = instanceProcesses(listProcesses(), inst.id, inst.pid);
  const loc = locateCpuCgroup(inst.pid);
  const own = loc && loc.cgPath !== '/' && ownedBy(loc.dir, new Set(members.map((p) => p.pid))) ? loc : undefined;
  const inCg = new Set(own ? cgroupPids(own.dir) : []);
  const before = own ? cgroupCpuMs(own) : undefined;
  return {
    wall,
    accel,
    procs: members.flatMap((p) => {
      const ms = processCpuMs(p.pid);
      return ms === undefined ? [] : [{ pid: p.pid, comm: p.comm, before: ms, inCgroup: inCg.has(p.pid) }];
    }),
    cgroup: own && before !== undefined ? { ...own, before } : null,
  };
}

const IDLE_HOW =
  "one idle 'sleep' instance per wall, all idle at once over the same window; CPU = what the instance's own cgroup charged (cpuacct.usage or cpu.stat, ns) + utime+stime (/proc/PID/stat, clock ticks) of its host processes outside that cgroup (conmon; QEMU with all its threads and helpers); scaled to one minute";

/** Idle CPU of one instance per wall, measured together. */
export async function idleCpu(drivers: Driver[], o: CpuOptions, accelOf: (wall: string) => Accel, progress: (l: string) => void, signal?: AbortSignal): Promise<{ rows: IdleCpuRow[]; errors: CpuResult['idleErrors'] }> {
  const started: Array<{ d: Driver; inst: IdleInstance[] }> = [];
  const errors: CpuResult['idleErrors'] = [];
  try {
    for (const d of drivers) {
      if (!d.startIdle) continue;
      checkAbort(signal);
      const s = await d.startIdle(1, o.memoryBytes);
      started.push({ d, inst: s.instances });
      if (!s.instances.length) errors.push({ wall: d.name, error: `could not start an idle instance: ${s.failures[0] ?? 'no reason given'}` });
    }
    await pause(o.settleMs, signal);
    const t0 = process.hrtime.bigint();
    const readings = started.filter((s) => s.inst.length).map((s) => firstReading(s.d.name, accelOf(s.d.name), s.inst[0]!));
    progress(`cpu: ${readings.map((r) => r.wall).join(', ')} idle, measuring over ${(o.idleWindowMs / 1000).toFixed(0)} s`);
    await pause(o.idleWindowMs, signal);
    const rows: IdleCpuRow[] = [];
    for (const r of readings) {
      const windowMs = Number(process.hrtime.bigint() - t0) / 1e6;
      const after = r.cgroup ? cgroupCpuMs(r.cgroup) : undefined;
      const f = idleFigure({
        windowMs,
        procs: r.procs.map((p) => ({ ...p, after: processCpuMs(p.pid) })),
        cgroup: r.cgroup && after !== undefined ? { dir: r.cgroup.dir, before: r.cgroup.before, after } : null,
      });
      if (!f.processes.length && !f.cgroup) {
        errors.push({ wall: r.wall, error: 'no host process or cgroup of the instance could be read' });
        continue;
      }
      rows.push({ wall: r.wall, accel: r.accel, windowMs, ...f, how: IDLE_HOW });
    }
    return { rows, errors };
  } finally {
    for (const s of started) await s.d.remove(s.inst);
  }
}

/** The CPU-bound task in every wall and on the bare host, rounds interleaved. */
export async function cpuTask(drivers: Driver[], hostBusybox: string | undefined, o: CpuOptions, accelOf: (wall: string) => Accel, progress: (l: string) => void, signal?: AbortSignal): Promise<CpuResult['task']> {
  const script = cpuTaskScript(o.taskMiB, o.taskReps);
  const expect = zeroSha256(o.taskMiB);
  const rows = new Map<string, { samples: number[]; error?: string; accel: Accel }>();
  const hostOk = hostBusybox !== undefined && fs.existsSync(hostBusybox);
  rows.set('host', { samples: [], accel: 'native', error: hostOk ? undefined : 'not available: the image has no /bin/busybox to run on the host' });
  const probing = drivers.filter((d) => d.probe);
  for (const d of probing) rows.set(d.name, { samples: [], accel: accelOf(d.name) });
  for (let round = 1; round <= o.taskRounds; round++) {
    if (hostOk) {
      checkAbort(signal);
      const r = await timedRun(hostBusybox, ['sh', '-c', script], { env: { PATH: path.dirname(hostBusybox), BB: hostBusybox }, timeoutMs: 600_000 });
      record('host', r.code === 0 ? r.stdout : undefined, r.stderr || `exit ${r.code}`);
    }
    for (const d of probing) {
      checkAbort(signal);
      const r = await d.probe!(script);
      record(d.name, r.ok ? r.stdout : undefined, r.error ?? 'failed');
      // the accelerator is known once a VM has booted
      rows.get(d.name)!.accel = accelOf(d.name);
    }
  }
  function record(wall: string, stdout: string | undefined, error: string) {
    const rec = rows.get(wall)!;
    try {
      if (stdout === undefined) throw new Error(error.trim().split('\n').pop() || 'failed');
      const ms = parseCpuTask(stdout, expect, o.taskReps);
      rec.samples.push(...ms);
      progress(`cpu task ${wall}: ${ms.map((x) => `${x.toFixed(0)} ms`).join(', ')}`);
    } catch (e) {
      rec.error ??= (e as Error).message;
      progress(`cpu task ${wall}: failed: ${(e as Error).message}`);
    }
  }
  const hostMedian = rows.get('host')!.samples.length ? summarize(rows.get('host')!.samples).median : null;
  const out: CpuTaskRow[] = [...rows.entries()].map(([wall, r]) => {
    const summary = r.samples.length ? summarize(r.samples) : null;
    return {
      wall,
      accel: r.accel,
      samplesMs: r.samples,
      summary,
      mibPerSec: summary && summary.median > 0 ? o.taskMiB / (summary.median / 1000) : null,
      vsHost: summary && hostMedian ? summary.median / hostMedian : null,
      error: r.samples.length ? undefined : r.error ?? 'not measured',
    };
  });
  return {
    description: `busybox sha256sum of ${o.taskMiB} MiB of zeros piped from busybox dd`,
    bytes: o.taskMiB * 1048576,
    binarySha256: hostOk ? crypto.createHash('sha256').update(fs.readFileSync(hostBusybox)).digest('hex') : null,
    rows: out,
    how: `${o.taskRounds} rounds interleaved (host, then each wall in its own 'run --rm' instance), ${o.taskReps} repetitions each; each repetition timed inside by /proc/uptime before and after (10 ms resolution; the guest's clock for VMs); the output hash is checked against the expected one; the host reference runs the image's own /bin/busybox (static) directly`,
  };
}

/** The whole cpu dimension. */
export async function cpuScenario(drivers: Driver[], hostBusybox: string | undefined, o: CpuOptions, accelOf: (wall: string) => Accel, progress: (l: string) => void, signal?: AbortSignal): Promise<CpuResult> {
  const hull = drivers.filter((d) => d.kind === 'hull');
  const idle = await idleCpu(hull, o, accelOf, progress, signal);
  const task = await cpuTask(hull, hostBusybox, o, accelOf, progress, signal);
  // how the VMs ran is said once for the whole report (ContrastReport.vmNote); rows carry their accel
  const notes: string[] = [];
  return { idle: idle.rows, idleErrors: idle.errors, task, notes };
}
