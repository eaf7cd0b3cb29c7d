import assert from 'node:assert/strict';
import { test } from 'node:test';
import { advise, renderAdvice, type AdviseInput } from '../../src/contrast/advise.js';
import { fixtureReport } from './contrast-fixture.js';

const base: AdviseInput = { untrusted: false, tenants: 1, needsKernel: '', startupBudgetMs: null, memoryBudgetBytes: null, instances: 1 };
const GiB = 1024 ** 3;

test('trusted single tenant: container, quoting the measured figures', () => {
  const a = advise(base, fixtureReport(), false);
  assert.equal(a.choice, 'container');
  assert.ok(a.figures.some((f) => /container: start-up median 61ms/.test(f)));
  assert.ok(a.figures.some((f) => /vm: start-up median 920ms.*TCG/.test(f)));
  assert.match(renderAdvice(a), /^advice: container/);
});

test('kernel needs: VM, even when untrusted or over budget (with a warning)', () => {
  const a = advise({ ...base, needsKernel: 'kernel module wireguard', startupBudgetMs: 100 }, fixtureReport(), true);
  assert.equal(a.choice, 'vm');
  assert.match(a.reasons[0]!, /wireguard/);
  assert.ok(a.warnings.some((w) => /does not fit/.test(w)));
});

test('untrusted within budgets: VM', () => {
  const a = advise({ ...base, untrusted: true, startupBudgetMs: 2000, memoryBudgetBytes: 2 * GiB, instances: 10 }, fixtureReport(), false);
  assert.equal(a.choice, 'vm');
  assert.ok(a.reasons.some((r) => /within the 2\.00s budget/.test(r)));
  assert.ok(a.warnings.some((w) => /TCG/.test(w)));
});

test('many tenants but the VM is too slow: gVisor when installed, else a hardened container', () => {
  const inp = { ...base, tenants: 5, startupBudgetMs: 200 };
  const g = advise(inp, fixtureReport(), true);
  assert.equal(g.choice, 'gvisor');
  assert.ok(g.reasons.some((r) => /VM does not fit: start-up 920ms over the 200ms budget/.test(r)));
  const c = advise(inp, fixtureReport(), false);
  assert.equal(c.choice, 'container');
  assert.ok(c.warnings.some((w) => /not installed/.test(w)));
  // the strongest container hull has, as a command line
  assert.match(c.how, /^hull run --userns=auto --cap-drop ALL --security-opt no-new-privileges --read-only/);
});

test('memory budget decides: 100 VMs of ~55 MiB do not fit 2 GiB', () => {
  const a = advise({ ...base, untrusted: true, memoryBudgetBytes: 2 * GiB, instances: 100 }, fixtureReport(), false);
  assert.equal(a.choice, 'container');
  assert.ok(a.reasons.some((r) => /100 x 55\.0MiB = 5\.37GiB over/.test(r)));
});

test('without a contrast run: rules still answer, and say budgets were not checked', () => {
  const a = advise({ ...base, untrusted: true, startupBudgetMs: 10 }, undefined, false);
  assert.equal(a.choice, 'vm');
  assert.equal(a.figures.length, 0);
  assert.ok(a.warnings.some((w) => /no `hull contrast` has run/.test(w)));
});

test('a CPU-bound untrusted workload and an idle dense one get different answers, each quoting the figures', () => {
  const cpu = advise({ ...base, untrusted: true, cpuBound: true }, fixtureReport(), false);
  assert.equal(cpu.choice, 'vm');
  assert.ok(cpu.reasons.some((r) => /CPU-bound: vm runs the CPU task at 3\.52x the bare host's time under TCG/.test(r)), cpu.reasons.join('\n'));
  assert.ok(cpu.figures.some((f) => /vm: CPU task 3\.52x the bare host's time \(TCG\), 480 ms host CPU per idle minute/.test(f)));
  assert.ok(cpu.warnings.some((w) => /3\.5x slower than the bare host in a VM here \(TCG/.test(w)));
  // 50 instances idle 90% of the time: 50 x 0.9 x 480 ms/min = 0.36 of 2 cores, over 10%
  const idle = advise({ ...base, untrusted: true, instances: 50, idleRatio: 0.9 }, fixtureReport(), true);
  assert.equal(idle.choice, 'gvisor');
  assert.ok(idle.reasons.some((r) => /VM does not fit: idle 90% of the time, 50 x 480 ms host CPU per idle minute keep 0\.36 of 2 cores busy doing nothing \(over 10%\)/.test(r)), idle.reasons.join('\n'));
  assert.ok(idle.figures.some((f) => /container: CPU task 1\.03x.*2 ms host CPU per idle minute/.test(f)));
  const noG = advise({ ...base, untrusted: true, instances: 50, idleRatio: 0.9 }, fixtureReport(), false);
  assert.equal(noG.choice, 'container');
});

test('latency budget: the VM\'s p99 round trip over 1ms does not fit; io-bound quotes volume writes', () => {
  const a = advise({ ...base, tenants: 3, latencyBudgetMs: 1 }, fixtureReport(), false);
  assert.equal(a.choice, 'container');
  assert.ok(a.reasons.some((r) => /TCP round trip p99 2\.60ms \(median 216us\) over the 1\.0ms latency budget/.test(r)), a.reasons.join('\n'));
  assert.ok(a.figures.some((f) => /vm: TCP round trip over the bridge median 216us, p99 2\.60ms/.test(f)));
  const io = advise({ ...base, ioBound: true }, fixtureReport(), false);
  assert.equal(io.choice, 'container');
  assert.ok(io.reasons.some((r) => /I\/O-bound: container writes a volume at 1500 MiB\/s/.test(r)));
  assert.ok(io.figures.some((f) => /vm: volume sequential write 300 MiB\/s/.test(f)));
});
