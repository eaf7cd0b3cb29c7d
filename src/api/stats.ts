/**
 * docker's stats JSON (swagger: ContainerStatsResponse) from two usage samples. Pure apart
 * from systemCpuNs(), which reads the host's /proc/stat.
 */
import fs from 'node:fs';
import os from 'node:os';
import type { Usage } from '../runtime/types.js';
import type { NetCounters } from '../engine/engine.js';

export interface Sample {
  at: Date;
  usage: Usage;
  /** Per interface, as the container sees it (absent: no network of its own). */
  networks?: Record<string, NetCounters>;
  /** Host CPU time of all CPUs, ns (docker's system_cpu_usage). */
  systemNs: number;
}

/** Total host CPU time from /proc/stat's `cpu` line, in ns. */
export function systemCpuNs(stat?: string): number {
  let text = stat;
  if (text === undefined) {
    try {
      text = fs.readFileSync('/proc/stat', 'utf8');
    } catch {
      return 0;
    }
  }
  const line = text.split('\n').find((l) => l.startsWith('cpu '));
  if (!line) return 0;
  const ticks = line.trim().split(/\s+/).slice(1, 8).map(Number).reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);
  return ticks * (1e9 / 100); // USER_HZ is 100 on Linux
}

const ZERO_TIME = '0001-01-01T00:00:00Z';

function cpuStats(s: Sample | undefined, cpus: number) {
  return {
    cpu_usage: { total_usage: s?.usage.cpuNs ?? 0, usage_in_kernelmode: 0, usage_in_usermode: 0 },
    system_cpu_usage: s?.systemNs ?? 0,
    online_cpus: cpus,
    throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 },
  };
}

/** One stats object; `pre` may be undefined (first sample of a stream). */
export function statsBody(id: string, name: string, cur: Sample | undefined, pre: Sample | undefined, cpus = os.cpus().length): Record<string, unknown> {
  const u = cur?.usage;
  return {
    id,
    name: `/${name}`,
    read: cur ? cur.at.toISOString() : ZERO_TIME,
    preread: pre ? pre.at.toISOString() : ZERO_TIME,
    pids_stats: { current: u?.pids ?? 0 },
    blkio_stats: { io_service_bytes_recursive: null, io_serviced_recursive: null, io_queue_recursive: null, io_service_time_recursive: null, io_wait_time_recursive: null, io_merged_recursive: null, io_time_recursive: null, sectors_recursive: null },
    num_procs: 0,
    storage_stats: {},
    cpu_stats: cpuStats(cur, cpus),
    precpu_stats: cpuStats(pre, cpus),
    memory_stats: u ? { usage: u.memoryBytes, limit: u.memoryLimitBytes > 0 ? u.memoryLimitBytes : os.totalmem(), stats: {} } : {},
    networks: cur?.networks && Object.keys(cur.networks).length ? cur.networks : {},
  };
}
