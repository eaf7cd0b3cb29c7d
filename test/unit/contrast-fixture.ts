/** A contrast report built from plain numbers, for the rendering and advice tests. */
import { combineMemory } from '../../src/contrast/memory.js';
import { interpretProbes, parseProbeOutput } from '../../src/contrast/probes.js';
import { ratiosOf } from '../../src/contrast/runner.js';
import { summarize } from '../../src/contrast/stats.js';
import { CONTRAST_FORMAT, type ContrastReport, type WallResult } from '../../src/contrast/types.js';

const MiB = 1048576;
const HOST = { kernel: '6.18.44', pids: 90, devices: ['null', 'kvm', 'kmsg', 'vda'], capsCount: 41 };

export const CONTAINER_PROBE = `P|uptime|info|5000.1\nP|kernel|info|6.18.44\nP|pids|info|1\nP|pid1|info|sh\nP|devices|info|null zero full random urandom tty pts shm\nP|capeff|info|00000000a80425fb\nP|seccomp|info|2\nP|userns|denied|unshare: unshare(0x10000000): Operation not permitted\nP|mount|denied|mount: permission denied\nP|mknod|allowed|\nP|syslog|denied|dmesg: klogctl: Operation not permitted\nP|kmsg|absent|/dev/kmsg not present\nP|kcore|denied|head: /proc/kcore: Permission denied\nP|rawsocket|allowed|PING\nP|chroot|allowed|\nP|modules_disabled|info|0\nP|done|info|ok\n`;
export const VM_PROBE = `P|uptime|info|0.43\nP|kernel|info|6.1.0-hull\nP|pids|info|3\nP|pid1|info|init\nP|devices|info|null zero hvc0 vda\nP|capeff|info|000001ffffffffff\nP|seccomp|info|\nP|userns|denied|unshare: unshare(0x10000000): Invalid argument\nP|mount|allowed|\nP|mknod|allowed|\nP|syslog|allowed|x\nP|kmsg|allowed|x\nP|kcore|absent|/proc/kcore not present\nP|rawsocket|denied|ping: sendto: Network is unreachable\nP|chroot|allowed|\nP|done|info|ok\n`;

function wall(name: string, kind: 'hull' | 'reference', samples: number[], mem: { workload: number; overhead: number; cache: number | null; vm?: boolean }, probe?: string, density?: number): WallResult {
  const memory = combineMemory({
    givenBytes: 128 * MiB,
    processes: mem.vm
      ? [{ pid: 10, comm: 'qemu-system-x86', role: 'vmm', pss: (mem.workload + mem.overhead) * MiB, rss: 0 }]
      : [
          { pid: 10, comm: 'conmon', role: 'monitor', pss: mem.overhead * MiB, rss: 0 },
          { pid: 11, comm: 'sleep', role: 'workload', pss: mem.workload * MiB, rss: 0 },
        ],
    guestRamPss: mem.vm ? mem.workload * MiB : null,
    cgroup: mem.cache === null ? null : { dir: '/sys/fs/cgroup/memory/hull/x', charge: { chargeBytes: 0, anonBytes: 0, cacheBytes: mem.cache * MiB, mappedFileBytes: 0, kernelBytes: 0, how: 'cgroup v1' } },
  });
  const raw = probe ? parseProbeOutput(probe) : [];
  return {
    name,
    kind,
    command: `${name} run --rm busybox true`,
    startup: { samplesMs: samples, summary: summarize(samples), failures: 0, split: kind === 'hull' ? [{ phase: 'create', ms: 120, how: 'hull create' }, { phase: 'rm', ms: 95.5, how: 'hull rm' }] : [{ phase: 'split', ms: null, how: 'not measured' }], how: 'wall clock' },
    memory,
    density: density
      ? { mode: 'count', requested: density, started: density, givenBytes: 128 * MiB, startMs: density * 100, totalBytes: density * memory.totalBytes, memAvailableDropBytes: 0, curve: Array.from({ length: density }, (_, i) => ({ n: i + 1, bytes: (i + 1) * memory.totalBytes })), failures: 0, how: 'parallel' }
      : null,
    isolation: probe ? { rows: interpretProbes(raw, HOST), guestUptimeMs: mem.vm ? 430 : undefined, how: 'busybox' } : null,
    notes: [],
  };
}

export function fixtureReport(): ContrastReport {
  const walls = [
    wall('container', 'hull', [60, 62, 58, 75, 61], { workload: 0.3, overhead: 1.1, cache: 0.2 }, CONTAINER_PROBE, 4),
    wall('vm', 'hull', [900, 950, 1010, 880, 920], { workload: 30, overhead: 25, cache: null, vm: true }, VM_PROBE, 4),
    wall('crun', 'reference', [8, 7, 9, 7, 8], { workload: 0.2, overhead: 0, cache: null }),
  ];
  walls[2]!.memory = null;
  walls[1]!.accel = 'tcg';
  return {
    format: CONTRAST_FORMAT,
    image: 'busybox',
    startedAt: '2026-11-27T07:00:00.000Z',
    finishedAt: '2026-11-27T07:02:00.000Z',
    options: { runs: 5, density: 4, densityBudgetBytes: null, memoryBytes: 128 * MiB, isolation: ['container', 'vm'] },
    vmNote: 'every VM figure is TCG, QEMU\'s software emulation, marked [TCG] (/dev/kvm is backed by kvm_pvm)',
    machine: {
      cpuModel: 'AMD EPYC <test>',
      cores: 2,
      memTotalBytes: 4096 * MiB,
      kernel: '6.18.44',
      os: 'Debian GNU/Linux 12 (bookworm)',
      cgroup: 'hybrid',
      kvm: { present: true, modules: ['kvm', 'kvm_pvm'], usable: false, reason: '/dev/kvm is backed by kvm_pvm' },
      loadAvg1: 0.4,
      versions: { hull: '0.1.0', crun: 'crun version 1.8.1' },
    },
    walls,
    ratios: ratiosOf(walls),
    skipped: [{ name: 'runsc', reason: 'gVisor (runsc) is not installed' }],
    only: ['startup', 'memory', 'density', 'isolation', 'cpu'],
    cpu: fixtureCpu(),
    disk: fixtureDisk(),
    network: fixtureNetwork(),
  };
}

const idleRow = (wall: string, accel: 'native' | 'tcg', msPerMinute: number) => ({ wall, accel, windowMs: 15_000, msPerMinute, processes: [{ pid: 10, comm: wall === 'vm' ? 'qemu-system-x86' : 'conmon', cpuMs: msPerMinute / 4, inCgroup: false }], cgroup: null, how: 'cgroup + /proc/PID/stat' });
const taskRow = (wall: string, accel: 'native' | 'tcg', samples: number[], hostMedian: number) => {
  const summary = summarize(samples);
  return { wall, accel, samplesMs: samples, summary, mibPerSec: 32 / (summary.median / 1000), vsHost: summary.median / hostMedian };
};

export function fixtureCpu(): NonNullable<ContrastReport['cpu']> {
  return {
    idle: [idleRow('container', 'native', 2), idleRow('vm', 'tcg', 480)],
    idleErrors: [],
    task: {
      description: 'busybox sha256sum of 32 MiB of zeros piped from busybox dd',
      bytes: 32 * MiB,
      binarySha256: 'ab'.repeat(32),
      rows: [taskRow('host', 'native', [350, 360], 355), taskRow('container', 'native', [360, 370], 355), taskRow('vm', 'tcg', [1200, 1300], 355)],
      how: 'interleaved',
    },
    notes: [],
  };
}

const fig = (test: string, mibPerSec: number) => ({ test, blockBytes: test.startsWith('seq') ? MiB : 4096, samples: [mibPerSec], mibPerSec, iops: (mibPerSec * MiB) / (test.startsWith('seq') ? MiB : 4096) });
const fioRow = (wall: string, target: 'root' | 'volume', fs: string, v: number[]) => ({ wall, accel: (wall === 'vm' ? 'tcg' : 'native') as 'tcg' | 'native', target, fs, tool: 'fio', figures: ['seq-write', 'seq-read', 'rand-write', 'rand-read'].map((t, i) => fig(t, v[i]!)) });

export function fixtureDisk(): NonNullable<ContrastReport['disk']> {
  return {
    fileBytes: 32 * MiB,
    rows: [
      fioRow('host', 'volume', 'ext4; O_DIRECT', [1800, 900, 90, 80]),
      fioRow('container', 'root', 'overlay (fsync=volatile); O_DIRECT', [1600, 1000, 60, 70]),
      fioRow('container', 'volume', 'ext4; O_DIRECT', [1500, 1000, 70, 80]),
      fioRow('vm', 'root', 'overlay; no O_DIRECT: buffered', [300, 800, 100, 200]),
      fioRow('vm', 'volume', '9p (sync,trans=virtio); O_DIRECT', [300, 500, 12, 15]),
    ],
    pageCache: 'O_DIRECT where the file system takes it',
    how: 'interleaved',
    notes: [],
  };
}

const nf = (path: string, rtt: number, p99: number, mbit: number) => ({ path, rttMedianUs: rtt, rttP99Us: p99, mbitPerSec: mbit, samplesMbit: [mbit], how: 'sockperf; iperf3' });

export function fixtureNetwork(): NonNullable<ContrastReport['network']> {
  return {
    rows: [
      { wall: 'host', accel: 'native', figures: [nf('host loopback (127.0.0.1)', 17, 48, 23000)] },
      { wall: 'container', accel: 'native', figures: [nf('host -> instance (bridge)', 20, 41, 12000), nf('host -> published port', 48, 300, 14000), nf('instance -> instance (bridge)', 22, 50, 9800)] },
      { wall: 'vm', accel: 'tcg', figures: [nf('host -> instance (bridge)', 216, 2600, 1200), nf('host -> published port', 212, 2000, 1600), { ...nf('instance -> instance (bridge)', 0, 0, 0), rttMedianUs: null, rttP99Us: null, mbitPerSec: null, samplesMbit: [], error: 'sockperf printed no percentiles' }] },
    ],
    notes: [],
    how: 'interleaved',
  };
}
