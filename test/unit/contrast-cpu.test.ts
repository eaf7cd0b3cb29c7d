import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { test } from 'node:test';
import { parseCgroupCpuMs, parseCpuCgroup, parseCpuMounts, parseStatCpuTicks, processCpuMs } from '../../src/contrast/cputime.js';
import { parseOnly, DIMENSIONS } from '../../src/contrast/dimensions.js';
import { cpuTaskScript, idleFigure, parseCpuTask, zeroSha256 } from '../../src/contrast/scenario-cpu.js';

test('parseStatCpuTicks: utime + stime (fields 14 and 15), comm with spaces and parentheses', () => {
  const line = '4242 (qemu (x) y) S 1 4242 4242 0 -1 4194560 900 0 0 0 1234 567 0 0 20 0 5 0 100 1000 200 18446744073709551615';
  assert.equal(parseStatCpuTicks(line), 1234 + 567);
  assert.equal(parseStatCpuTicks('garbage'), undefined);
  assert.equal(parseStatCpuTicks('1 (x) S 1 2'), undefined);
  // this process has used some CPU
  assert.ok(processCpuMs(process.pid)! >= 0);
  assert.equal(processCpuMs(0x7ffffff0), undefined);
});

test('cgroup CPU accounting: v1 cpuacct and v2 cpu.stat', () => {
  assert.deepEqual(parseCpuCgroup('12:cpu,cpuacct:/hull/abc\n11:memory:/hull/abc\n0::/init.scope\n'), { v1: '/hull/abc', unified: '/init.scope' });
  assert.deepEqual(parseCpuCgroup('0::/a/b\n'), { unified: '/a/b' });
  const mi = [
    '30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct',
    '31 25 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw',
  ].join('\n');
  assert.deepEqual(parseCpuMounts(mi), { v1: '/sys/fs/cgroup/cpu,cpuacct', v2: '/sys/fs/cgroup/unified' });
  assert.equal(parseCgroupCpuMs(1, '2500000\n'), 2.5);
  assert.equal(parseCgroupCpuMs(2, 'usage_usec 7000\nuser_usec 5000\nsystem_usec 2000\n'), 7);
  assert.equal(parseCgroupCpuMs(2, 'nothing'), undefined);
  assert.equal(parseCgroupCpuMs(1, 'x'), undefined);
});

test('idleFigure: the cgroup stands for its processes, the others add their own; scaled to a minute', () => {
  const f = idleFigure({
    windowMs: 10_000,
    procs: [
      { pid: 1, comm: 'conmon', before: 100, after: 110, inCgroup: false },
      { pid: 2, comm: 'sleep', before: 0, after: 10, inCgroup: true },
      { pid: 3, comm: 'gone', before: 5, after: undefined, inCgroup: false },
    ],
    cgroup: { dir: '/cg', before: 1, after: 1.5 },
  });
  assert.equal(f.processes.length, 2);
  assert.deepEqual(f.cgroup, { dir: '/cg', cpuMs: 0.5 });
  assert.equal(f.msPerMinute, ((10 + 0.5) * 60_000) / 10_000);
  const q = idleFigure({ windowMs: 30_000, procs: [{ pid: 9, comm: 'qemu-system-x86', before: 0, after: 300, inCgroup: false }], cgroup: null });
  assert.equal(q.msPerMinute, 600);
});

test('the CPU task: the same script on the host busybox gives checked timings', (t) => {
  const script = cpuTaskScript(2, 3);
  assert.match(script, /count=2/);
  assert.match(script, /-lt 3/);
  const expect = zeroSha256(2);
  assert.equal(expect, zeroSha256(2));
  assert.notEqual(expect, zeroSha256(1));
  assert.deepEqual(parseCpuTask(`noise\nT|10.00|10.25|${expect}\nT|10.30|10.50|${expect}\n`, expect, 2), [250, 200].map((v) => v));
  assert.throws(() => parseCpuTask(`T|1|2|${'0'.repeat(64)}\n`, expect, 1), /expected/);
  assert.throws(() => parseCpuTask(`T|1|2|${expect}\n`, expect, 2), /1 of 2/);
  if (!fs.existsSync('/bin/busybox')) return t.skip('busybox-static is not installed');
  const r = spawnSync('/bin/busybox', ['sh', '-c', script], { encoding: 'utf8', env: { BB: '/bin/busybox', PATH: '/bin' } });
  assert.equal(r.status, 0, r.stderr);
  const ms = parseCpuTask(r.stdout, expect, 3);
  assert.equal(ms.length, 3);
  assert.ok(ms.every((v) => v >= 0 && v < 60_000));
});

test('--only: validated, all by default', () => {
  assert.deepEqual(parseOnly(undefined), [...DIMENSIONS]);
  assert.deepEqual(parseOnly('all'), [...DIMENSIONS]);
  assert.deepEqual(parseOnly('disk, cpu'), ['cpu', 'disk']);
  assert.throws(() => parseOnly('cpu,gpu'), /"gpu" for "--only"/);
  assert.throws(() => parseOnly(','), /at least one/);
});
