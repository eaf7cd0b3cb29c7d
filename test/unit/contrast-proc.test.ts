import assert from 'node:assert/strict';
import { test } from 'node:test';
import { guestRamMapping, instanceProcesses, parseSmaps, parseSmapsRollup, parseStat, subtree, type ProcInfo } from '../../src/contrast/proc.js';
import { chargeV1, chargeV2, parseCgroupMounts, parseProcCgroup } from '../../src/contrast/memcg.js';
import { combineMemory, roleOf } from '../../src/contrast/memory.js';
import { cgroupMode, kvmVerdict } from '../../src/contrast/machine.js';
import { hardLimit, hybridSafe } from '../../src/contrast/hostfacts.js';
import { parseInspect, parseTrace } from '../../src/contrast/driver.js';

const ID = 'f'.repeat(64);

test('parseStat handles comm with spaces and parentheses', () => {
  assert.deepEqual(parseStat('123 (my (odd) name) S 45 123 123 0 -1'), { pid: 123, comm: 'my (odd) name', ppid: 45 });
  assert.equal(parseStat('garbage'), undefined);
});

const procs: ProcInfo[] = [
  { pid: 1, ppid: 0, comm: 'init', cmdline: '/sbin/init' },
  { pid: 50, ppid: 1, comm: 'node', cmdline: `node /x/bin/hull --root /r run -d --name n1 busybox` },
  { pid: 51, ppid: 1, comm: 'node', cmdline: `/usr/bin/node /x/bin/hull-boot.cjs --root /r run -d --name n2 ${ID}` },
  // conmon names node and bin/hull-boot.cjs as its exit command: it is still the monitor
  { pid: 100, ppid: 1, comm: 'conmon', cmdline: `/usr/bin/conmon --api-version 1 -c ${ID} -u ${ID} --exit-command /usr/bin/env --exit-command-arg /usr/bin/node --exit-command-arg /x/bin/hull-boot.cjs --exit-command-arg --exit-hook` },
  { pid: 101, ppid: 100, comm: 'sleep', cmdline: 'sleep 1000' },
  { pid: 102, ppid: 101, comm: 'sh', cmdline: 'sh' },
  { pid: 200, ppid: 1, comm: 'conmon', cmdline: `/usr/bin/conmon -c ${'e'.repeat(64)}` },
  { pid: 201, ppid: 200, comm: 'sleep', cmdline: 'sleep 1000' },
];

test('subtree and instanceProcesses find the monitor and the process tree, not the CLI or others', () => {
  assert.deepEqual(subtree(procs, 100).map((p) => p.pid).sort(), [100, 101, 102]);
  assert.deepEqual(instanceProcesses(procs, ID, 101, 9999).map((p) => p.pid), [100, 101, 102]);
  // Without a monitor naming it (a VM's QEMU is the main pid itself)
  assert.deepEqual(instanceProcesses(procs, 'a'.repeat(64), 201, 9999).map((p) => p.pid), [201]);
  const tree = new Set([101, 102]);
  assert.equal(roleOf(procs[3]!, tree), 'monitor');
  assert.equal(roleOf(procs[4]!, tree), 'workload');
  assert.equal(roleOf({ pid: 7, ppid: 1, comm: 'qemu-system-x86', cmdline: '' }, tree), 'vmm');
});

test('smaps_rollup and smaps parse into bytes; the guest RAM mapping is found by size', () => {
  const roll = 'Rss:                1000 kB\nPss:                 600 kB\nPss_Anon:            400 kB\nPss_File:            150 kB\nPss_Shmem:            50 kB\n';
  assert.deepEqual(parseSmapsRollup(roll), { rss: 1024000, pss: 614400, pssAnon: 409600, pssFile: 153600, pssShmem: 51200 });
  const smaps = [
    '55d0c0000000-55d0c0100000 r-xp 00000000 08:01 123 /usr/bin/qemu-system-x86_64',
    'Size:               1024 kB',
    'Rss:                 900 kB',
    'Pss:                 300 kB',
    '7f0000000000-7f0008000000 rw-p 00000000 00:00 0 ',
    'Size:             131072 kB',
    'Rss:               40000 kB',
    'Pss:               40000 kB',
  ].join('\n');
  const maps = parseSmaps(smaps);
  assert.equal(maps.length, 2);
  assert.equal(maps[0]!.name, '/usr/bin/qemu-system-x86_64');
  assert.equal(maps[1]!.size, 128 * 1048576);
  assert.equal(guestRamMapping(maps, 128 * 1048576)?.pss, 40000 * 1024);
  assert.equal(guestRamMapping(maps, 256 * 1048576), undefined);
});

test('/proc/PID/cgroup and mountinfo give the memory cgroup, v1 and v2', () => {
  const v1 = parseProcCgroup('9:name=systemd:/\n4:memory:/hull/abc\n1:cpu,cpuacct:/hull/abc\n0::/\n');
  assert.deepEqual(v1, { v1Memory: '/hull/abc', unified: '/' });
  assert.deepEqual(parseProcCgroup('0::/hull/abc\n'), { unified: '/hull/abc' });
  const mi = [
    '30 25 0:26 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw',
    '31 25 0:27 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory',
    '32 25 0:28 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct',
  ].join('\n');
  assert.deepEqual(parseCgroupMounts(mi), { v1Memory: '/sys/fs/cgroup/memory', v2: '/sys/fs/cgroup/unified' });
  assert.equal(cgroupMode(mi, true), 'hybrid');
  assert.equal(cgroupMode(mi, false), 'v1');
  assert.equal(cgroupMode('30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw', true), 'v2');
});

test('cgroup charges: v1 total_* and v2 memory.stat', () => {
  const c1 = chargeV1('5000000\n', 'cache 10\nrss 20\ntotal_cache 3000000\ntotal_rss 1500000\ntotal_mapped_file 1000000\n', '400000\n');
  assert.equal(c1.chargeBytes, 5000000);
  assert.equal(c1.cacheBytes, 3000000);
  assert.equal(c1.anonBytes, 1500000);
  assert.equal(c1.mappedFileBytes, 1000000);
  assert.equal(c1.kernelBytes, 400000);
  assert.match(c1.how, /usage_in_bytes/);
  const c2 = chargeV2('800000\n', 'anon 300000\nfile 400000\nfile_mapped 100000\nkernel 90000\n');
  assert.deepEqual([c2.chargeBytes, c2.anonBytes, c2.cacheBytes, c2.mappedFileBytes, c2.kernelBytes], [800000, 300000, 400000, 100000, 90000]);
  assert.match(c2.how, /memory.current/);
});

test('combineMemory: container splits workload and conmon, adds unmapped page cache', () => {
  const charge = chargeV1('5000000', 'total_cache 3000000\ntotal_rss 1500000\ntotal_mapped_file 1000000\n');
  const m = combineMemory({
    givenBytes: 128 * 1048576,
    processes: [
      { pid: 1, comm: 'conmon', role: 'monitor', pss: 900_000, rss: 2_000_000 },
      { pid: 2, comm: 'sleep', role: 'workload', pss: 100_000, rss: 1_000_000 },
    ],
    guestRamPss: null,
    cgroup: { dir: '/sys/fs/cgroup/memory/hull/x', charge },
  });
  assert.equal(m.workloadBytes, 100_000);
  assert.equal(m.overheadBytes, 900_000);
  assert.equal(m.pageCacheBytes, 2_000_000);
  assert.equal(m.totalBytes, 3_000_000);
  assert.match(m.how, /smaps_rollup/);
  assert.match(m.how, /conmon/);
});

test('combineMemory: VM splits QEMU into guest RAM and overhead; no cgroup -> page cache null', () => {
  const m = combineMemory({
    givenBytes: 128 * 1048576,
    processes: [{ pid: 9, comm: 'qemu-system-x86', role: 'vmm', pss: 60_000_000, rss: 61_000_000 }],
    guestRamPss: 40_000_000,
    cgroup: null,
  });
  assert.equal(m.workloadBytes, 40_000_000);
  assert.equal(m.overheadBytes, 20_000_000);
  assert.equal(m.pageCacheBytes, null);
  assert.equal(m.totalBytes, 60_000_000);
  assert.match(m.how, /guest-RAM mapping/);
  assert.match(m.how, /no memory cgroup/);
});

test('KVM verdict: kvm_pvm is not usable, kvm_intel is, a probe overrides', () => {
  assert.equal(kvmVerdict(true, ['kvm', 'kvm_pvm']).usable, false);
  assert.match(kvmVerdict(true, ['kvm', 'kvm_pvm']).reason, /kvm_pvm/);
  assert.equal(kvmVerdict(true, ['kvm', 'kvm_intel']).usable, true);
  assert.equal(kvmVerdict(false, []).usable, false);
  assert.deepEqual(kvmVerdict(true, ['kvm_intel'], { usable: false, reason: 'probe boot failed' }).reason, 'probe boot failed');
});

test('host facts: hard limits, hybrid wrapper', () => {
  const limits = 'Limit                     Soft Limit           Hard Limit           Units\nMax processes             unlimited            unlimited            processes\nMax open files            1024                 20000                files\n';
  assert.equal(hardLimit('Max open files', limits), 20000);
  assert.equal(hardLimit('Max processes', limits), undefined);
  assert.deepEqual(hybridSafe(['crun', 'run'], false), ['crun', 'run']);
  const w = hybridSafe(['crun', 'run'], true);
  assert.equal(w[0], 'unshare');
  assert.deepEqual(w.slice(-2), ['crun', 'run']);
});

test('inspect and trace parsing', () => {
  const ins = JSON.stringify([{ Id: ID, Name: '/n1', State: { Pid: 42 } }, { nope: 1 }]);
  assert.deepEqual(parseInspect(ins), [{ id: ID, name: 'n1', pid: 42 }]);
  assert.deepEqual(parseInspect('not json'), []);
  assert.deepEqual(parseTrace('{"phase":"prepare","ms":3.5}\n{"phase":"runtime","ms":10}\nnoise\n{"phase":"prepare","ms":1}\n{"phase":"x","ms":-1}\n'), { prepare: 4.5, runtime: 10 });
});
