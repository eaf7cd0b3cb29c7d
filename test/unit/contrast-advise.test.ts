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
