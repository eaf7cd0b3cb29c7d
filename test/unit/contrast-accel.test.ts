/** --vm-accel in a contrast: the VM wall once per accelerator, how the report says what its VMs ran on. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { advise } from '../../src/contrast/advise.js';
import { wallFlags, wallLetter } from '../../src/contrast/driver-hull.js';
import { renderTable } from '../../src/contrast/report-table.js';
import { accelNote, ratiosOf } from '../../src/contrast/runner.js';
import { summarySentences } from '../../src/contrast/summary.js';
import { isVmWall, parseVmAccel, primaryVmWall, vmWallName } from '../../src/contrast/walls.js';
import { fixtureReport } from './contrast-fixture.js';

test('parseVmAccel: auto, kvm, tcg or a list of kvm and tcg; bad values name the flag', () => {
  assert.deepEqual(parseVmAccel('auto'), ['auto']);
  assert.deepEqual(parseVmAccel('tcg,kvm'), ['tcg', 'kvm']);
  assert.deepEqual(parseVmAccel(' kvm , kvm '), ['kvm']);
  assert.throws(() => parseVmAccel('hvf'), /invalid argument "hvf" for "--vm-accel"/);
  assert.throws(() => parseVmAccel('auto,kvm'), /auto stands alone/);
  assert.throws(() => parseVmAccel(','), /needs one of/);
});

test('wall names and flags: vm alone, vm-tcg and vm-kvm side by side, each with its own instance letter', () => {
  assert.equal(vmWallName('auto', false), 'vm');
  assert.equal(vmWallName('kvm', false), 'vm');
  assert.equal(vmWallName('tcg', true), 'vm-tcg');
  assert.deepEqual(wallFlags('vm', 'auto'), ['--isolation', 'vm']);
  assert.deepEqual(wallFlags('vm', 'kvm'), ['--isolation', 'vm', '--vm-accel', 'kvm']);
  assert.deepEqual(wallFlags('container-userns'), ['--isolation', 'container', '--userns', 'auto']);
  assert.deepEqual(['container', 'container-userns', 'vm', 'vm-tcg', 'vm-kvm'].map(wallLetter), ['c', 'u', 'v', 't', 'k']);
  assert.ok(isVmWall('vm-kvm') && isVmWall('vm') && !isVmWall('vmx') && !isVmWall('container'));
  assert.equal(primaryVmWall(['container', 'vm-tcg', 'vm-kvm']), 'vm-kvm');
  assert.equal(primaryVmWall(['container', 'vm-tcg']), 'vm-tcg');
  assert.equal(primaryVmWall(['container']), undefined);
});

const machine = fixtureReport().machine;

test('accelNote: said once; TCG with the reason KVM was left out, or both side by side', () => {
  const tcgOnly = accelNote([{ name: 'container' }, { name: 'vm-tcg', accel: 'tcg' }], [{ name: 'vm-kvm', reason: 'KVM asked for (--vm-accel kvm) but unusable here: TCG: /dev/kvm (kvm_pvm) failed a probe boot; no KVM figures, the VM figures are TCG' }], machine)!;
  assert.match(tcgOnly, /^every VM figure is TCG, QEMU's software emulation, marked \[TCG\] \(KVM asked for \(--vm-accel kvm\) but unusable here: TCG: \/dev\/kvm \(kvm_pvm\) failed a probe boot\)/);
  assert.match(accelNote([{ name: 'vm', accel: 'tcg' }], [], machine)!, /\(\/dev\/kvm is backed by kvm_pvm\)/);
  const both = accelNote([{ name: 'vm-tcg', accel: 'tcg' }, { name: 'vm-kvm', accel: 'kvm' }], [], { ...machine, kvm: { ...machine.kvm, usable: true } })!;
  assert.match(both, /^vm-tcg ran under TCG .* and vm-kvm under KVM, the same VM side by side: the ratios vm-tcg \/ vm-kvm/);
  assert.equal(accelNote([{ name: 'container' }, { name: 'vm', accel: 'kvm' }], [], machine), undefined);
  // kvm alone asked for and unusable: nothing ran as a VM, the note still says why
  assert.match(accelNote([{ name: 'container' }], [{ name: 'vm', reason: 'KVM asked for (--vm-accel kvm) but unusable here: no /dev/kvm' }], machine)!, /^vm: KVM asked for/);
});

test('vm-tcg and vm-kvm side by side: ratios, summary, table rows, and advise speaks for the KVM one', () => {
  const rep = fixtureReport();
  const vm = rep.walls.find((w) => w.name === 'vm')!;
  const kvm = { ...structuredClone(vm), name: 'vm-kvm', accel: 'kvm' as const };
  kvm.startup!.summary = { ...kvm.startup!.summary!, median: 300 };
  vm.name = 'vm-tcg';
  rep.walls.push(kvm);
  rep.ratios = ratiosOf(rep.walls);
  const r = (of: string) => rep.ratios.find((x) => x.metric === 'start-up median' && x.of === of)?.value;
  assert.equal(r('vm-tcg / vm-kvm'), 920 / 300);
  assert.ok(r('vm-kvm / container')! > 1 && r('vm-tcg / container')! > r('vm-kvm / container')!);
  rep.cpu!.task.rows = rep.cpu!.task.rows.map((x) => (x.wall === 'vm' ? { ...x, wall: 'vm-tcg' } : x));
  rep.cpu!.task.rows.push({ wall: 'vm-kvm', accel: 'kvm', samplesMs: [400, 420], summary: { n: 2, min: 400, max: 420, median: 410, p95: 420, mean: 410 }, mibPerSec: 78, vsHost: 410 / 355 });
  rep.cpu!.idle = rep.cpu!.idle.map((x) => (x.wall === 'vm' ? { ...x, wall: 'vm-tcg' } : x));
  rep.network = undefined;
  rep.disk = undefined;
  rep.vmNote = accelNote(rep.walls, [], { ...rep.machine, kvm: { ...rep.machine.kvm, usable: true } });
  rep.summary = summarySentences(rep);
  const t = renderTable(rep);
  assert.match(t, /^vm-tcg \[TCG\]\s+920ms/m);
  assert.match(t, /^vm-kvm \[KVM\]\s+300ms/m);
  assert.match(t, /vm-tcg \/ vm-kvm\s+3\.07x/);
  assert.match(rep.summary.find((s) => s.dimension === 'cpu')!.sentence, /emulation costs 3\.0x on the CPU-bound task \(vm-tcg 1250 vs vm-kvm 410 ms\)/);
  const a = advise({ untrusted: true, tenants: 1, needsKernel: '', startupBudgetMs: 2000, memoryBudgetBytes: null, instances: 1, cpuBound: true }, rep, false);
  assert.equal(a.choice, 'vm');
  assert.ok(a.figures.some((f) => /^vm-kvm: start-up median 300ms.*KVM\)$/.test(f)), a.figures.join('\n'));
  assert.ok(a.reasons.some((r) => /CPU-bound: vm-kvm runs the CPU task at 1\.15x/.test(r)), a.reasons.join('\n'));
});
