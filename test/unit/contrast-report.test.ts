import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderHtml } from '../../src/contrast/report-html.js';
import { COLUMNS, renderTable } from '../../src/contrast/report-table.js';
import { reportJson } from '../../src/contrast/setup.js';
import { summarySentences } from '../../src/contrast/summary.js';
import { bootModesOffered, bootRows, claimedOne, parsePoolState } from '../../src/contrast/scenario-boot.js';
import { linTicks, logTicks, stripPlot } from '../../src/contrast/svg.js';
import { CONTRAST_FORMAT, type ContrastReport } from '../../src/contrast/types.js';
import { fixtureReport } from './contrast-fixture.js';

test('table: every column, one row per wall, ratios and notes', () => {
  const rep = fixtureReport();
  const t = renderTable(rep);
  const lines = t.split('\n');
  const header = lines.find((l) => l.startsWith('WALL'))!;
  for (const [c] of COLUMNS) assert.ok(header.includes(c), `column ${c} in ${header}`);
  const row = (name: string) => lines.find((l) => l.startsWith(name))!;
  assert.match(row('container'), /^container\s+61ms\s+75ms\s+58ms\s+75ms\s+1\.6MiB\/128\.0MiB\s+1\.1MiB/);
  assert.match(row('container'), /\bhost\b/);
  assert.match(row('container'), /1\/90/);
  assert.match(row('vm'), /^vm \[TCG\]\s+920ms/);
  // how the VMs ran is said once, in the header
  assert.equal(t.match(/TCG, QEMU's software emulation/g)?.length, 1);
  assert.match(lines[1]!, /^VMs: every VM figure is TCG/);
  assert.match(row('vm'), /55\.0MiB\/128\.0MiB/);
  assert.match(row('vm'), /own 6\.1\.0-hull/);
  assert.match(row('vm'), /\(guest kernel\)/);
  assert.match(row('crun (ref)'), /7\.5ms|8\.0ms/);
  assert.match(t, /vm \/ container\s+15\.08x/);
  assert.match(t, /guest uptime at the probe 430ms/);
  assert.match(t, /^  container: create 120ms, rm 96ms$/m);
  assert.match(t, /note: runsc: not measured: gVisor/);
});

test('table: the cpu section, TCG labelled, and one summary sentence for it', () => {
  const rep = fixtureReport();
  rep.summary = summarySentences(rep);
  const t = renderTable(rep);
  assert.match(t, /^  host \(ref\)\s+n\/a\s+355ms \(350-360\)\s+1\.00x/m);
  assert.match(t, /^  container\s+2\.00ms\s+365ms \(360-370\)\s+1\.03x/m);
  assert.match(t, /^  vm \[TCG\]\s+480ms\s+1250ms \(1200-1300\)\s+3\.52x/m);
  assert.match(t, /^  cpu: container runs the CPU-bound task 3\.4x faster than vm \(TCG\).*idle, container burns 240x less host CPU than vm \(TCG\) \(2 vs 480 ms per minute\)\.$/m);
});

test('table: the disk section with tools, file systems and the page-cache statement; its summary sentence', () => {
  const rep = fixtureReport();
  rep.summary = summarySentences(rep);
  const t = renderTable(rep);
  assert.match(t, /WALL TARGET\s+TOOL\s+SEQ-WRITE\s+SEQ-READ\s+RAND-WRITE\s+RAND-READ\s+FILE SYSTEM/);
  assert.match(t, /^  host \(ref\) volume\s+fio\s+1800 MiB\/s\s+900 MiB\/s\s+23040 IOPS\s+20480 IOPS\s+ext4; O_DIRECT$/m);
  assert.match(t, /^  vm \[TCG\] volume\s+fio\s+300 MiB\/s\s+500 MiB\/s\s+3072 IOPS\s+3840 IOPS\s+9p \(sync,trans=virtio\); O_DIRECT$/m);
  assert.match(t, /page cache: O_DIRECT/);
  assert.match(t, /^  disk: seq-write on a volume: container is 5\.0x faster \(1500 vs 300 MiB\/s\); seq-read on a volume: container is 2\.0x faster .*guest RAM/m);
});

test('table: the network section, errors shown, and its summary sentence', () => {
  const rep = fixtureReport();
  rep.summary = summarySentences(rep);
  const t = renderTable(rep);
  assert.match(t, /^  host \(ref\)\s+host loopback \(127\.0\.0\.1\)\s+17us\s+48us\s+23000 Mbit\/s$/m);
  assert.match(t, /^  vm \[TCG\]\s+host -> published port\s+212us\s+2\.00ms\s+1600 Mbit\/s$/m);
  assert.match(t, /^  vm \[TCG\]\s+instance -> instance \(bridge\)\s+-\s+-\s+-\s+error: sockperf printed no percentiles$/m);
  assert.match(t, /^  network: over the bridge, container answers a TCP round trip 11x faster \(median 20 vs 216 us\); container moves 10x the throughput \(12000 vs 1200 Mbit\/s\); the host's loopback: 17 us\.$/m);
});

test('table: a wall whose runs failed shows dashes and failed, not zeros', () => {
  const rep = fixtureReport();
  const c = rep.walls[0]!;
  c.startup = { samplesMs: [], summary: null, failures: 3, firstError: 'boom', split: [], how: 'x' };
  c.memory = null;
  c.memoryError = 'could not start';
  c.density = { ...c.density!, started: 0, totalBytes: 0, curve: [], failures: 4, firstError: 'boom' };
  c.isolation = { rows: [], error: 'boom', how: 'x' };
  const t = renderTable(rep);
  const line = t.split('\n').find((l) => l.startsWith('container'))!;
  assert.match(line, /^container\s+-\s+-\s+-\s+-\s+-\s+-\s+failed\s+-\s+-\s+-\s+-\s+-$/);
  assert.match(t, /note: container: 3 start-up runs failed \(boom\)/);
  assert.match(t, /note: container: memory not measured: could not start/);
});

test('JSON: format, machine, walls with raw samples and how each figure was measured', () => {
  const rep = JSON.parse(reportJson(fixtureReport())) as ContrastReport;
  assert.equal(rep.format, CONTRAST_FORMAT);
  assert.equal(rep.machine.cores, 2);
  assert.equal(typeof rep.machine.kvm.usable, 'boolean');
  assert.ok(rep.machine.versions.hull);
  assert.deepEqual(rep.walls.map((w) => w.name), ['container', 'vm', 'crun']);
  for (const w of rep.walls) {
    assert.ok(w.startup!.samplesMs.length > 0);
    assert.ok(w.startup!.how.length > 0);
    assert.ok(w.startup!.summary!.median > 0);
  }
  const c = rep.walls[0]!;
  assert.ok(c.memory!.how.includes('PSS'));
  assert.ok(c.density!.curve.length === 4);
  assert.ok(c.isolation!.rows.every((r) => ['contained', 'exposed', 'own', 'unknown'].includes(r.verdict)));
  assert.ok(rep.ratios.some((r) => r.of === 'vm / container' && r.metric === 'start-up median'));
});

test('HTML: self-contained, the four charts and the isolation table, no external URL', () => {
  const rep = fixtureReport();
  rep.image = 'evil<script>alert(1)</script>';
  const html = renderHtml(rep);
  assert.match(html, /^<!doctype html>/);
  for (const id of ['chart-startup', 'chart-memory', 'chart-density']) assert.match(html, new RegExp(`<svg class="chart" id="${id}"`));
  assert.match(html, /<table id="isolation"><tr><th>probe<\/th><th>container<\/th><th>vm \[TCG\]<\/th>/);
  // how the VMs ran, said once in the page's header (the plain-text table in <pre> says it once too)
  assert.equal(html.replace(/<pre>[\s\S]*?<\/pre>/g, '').match(/every VM figure is TCG/g)?.length, 1);
  assert.match(html, /<table id="density">.*<td>vm<\/td><td>4 of 4<\/td>/s);
  assert.ok(!/(https?:)?\/\/[a-z0-9.-]+\.[a-z]{2,}/i.test(html.replace(/<\/?[^>]+>/g, (t) => t)), 'no URL');
  assert.ok(!/\b(src|href)=/i.test(html), 'no src/href attributes');
  assert.ok(!/@import|url\(/i.test(html), 'no CSS imports');
  assert.ok(!html.includes('<script>alert'), 'image name is escaped');
  assert.match(html, /evil&lt;script&gt;/);
  // stacked bar segments: 3 segment kinds in the legend, bars for container and vm
  assert.match(html, /QEMU or monitor overhead/);
  assert.match(html, /vm \[TCG\] guest \/ workload: 30\.00 MiB/);
  assert.match(html, /class="exposed"/);
  assert.match(html, /class="own"/);
});

test('SVG helpers: ticks and an empty chart', () => {
  assert.deepEqual(logTicks(5, 300), [5, 10, 20, 50, 100, 200]);
  assert.deepEqual(linTicks(9), [0, 2, 4, 6, 8, 10]);
  assert.match(stripPlot([], { title: 't', unit: 'ms', id: 'x' }), /no data/);
});

test('HTML: one chart per new dimension, the summary sentences, and boot modes that are not available have no bar', () => {
  const rep = fixtureReport();
  rep.boot = { rows: bootRows({ ms: 920, how: 'the start-up median' }, bootModesOffered('Usage: hull run [OPTIONS]\n  --rm', false)) };
  rep.summary = summarySentences(rep);
  const html = renderHtml(rep);
  for (const id of ['chart-cpu', 'chart-disk', 'chart-network', 'chart-boot']) assert.match(html, new RegExp(`<svg class="chart" id="${id}"`));
  for (const id of ['cpu', 'disk', 'network', 'boot', 'summary']) assert.match(html, new RegExp(`id="${id}"`));
  assert.match(html, /<b>boot<\/b>: a VM boots cold in 920 ms, 15x a container&#39;s start-up; restore and pool: not available here\./);
  assert.match(html, /not available: this hull has no VM snapshot restore/);
  const bootSvg = /<svg class="chart" id="chart-boot".*?<\/svg>/s.exec(html)![0];
  assert.equal((bootSvg.match(/<rect [^>]*><title>/g) ?? []).length, 1, 'one bar: cold');
  assert.ok(!/\b(src|href)=/i.test(html));
});

test('boot modes: what the CLI offers decides between "not measured" and "not available"', () => {
  const off = bootRows({ ms: 500, how: 'x' }, bootModesOffered('--rm  --vm-boot string', true));
  assert.match(off[1]!.how, /^not measured: this hull offers 'run --vm-boot'/);
  assert.match(off[2]!.how, /^not measured: this hull offers 'hull vm pool'/);
  assert.ok(off.slice(1).every((r) => r.ms === null));
});

test('boot modes: a measured pool claim is the pool row, with its figure and how it was timed', () => {
  const rows = bootRows({ ms: 500, how: 'cold' }, bootModesOffered('--vm-boot', true), { ms: 300, how: 'restore' }, 'vm', { ms: 250, how: 'median of 5 claims' });
  assert.deepEqual(rows.map((r) => [r.mode, r.ms, r.how]), [['cold', 500, 'cold'], ['restore', 300, 'restore'], ['pool', 250, 'median of 5 claims']]);
  // a pool offered but not measured keeps no figure
  const failed = bootRows({ ms: 500, how: 'cold' }, bootModesOffered('--vm-boot', true), { ms: 300, how: 'restore' }, 'vm', { ms: null, how: 'not measured: a run did not claim a pool guest' });
  assert.equal(failed[2]!.ms, null);
});

test('boot modes: the pool state of `hull vm pool --format json`, and whether a run claimed one of its guests', () => {
  const st = parsePoolState(JSON.stringify({ size: 2, memory: '128m', cpus: 1, ready: 2, starting: 0, keeper: '123:456', guests: [{ id: 'a1' }, { id: 'b2' }] }));
  assert.deepEqual(st, { size: 2, keeper: true, ids: ['a1', 'b2'] });
  assert.deepEqual(parsePoolState(JSON.stringify({ size: 0, ready: 0, keeper: null, guests: [] })), { size: 0, keeper: false, ids: [] });
  assert.equal(parsePoolState('pool: 0 ready'), undefined);
  assert.equal(parsePoolState('{"size":2}'), undefined);
  assert.equal(claimedOne(['a1', 'b2'], ['b2']), true);
  assert.equal(claimedOne(['a1', 'b2'], ['b2', 'c3']), true, 'refilled meanwhile: a1 is still gone');
  assert.equal(claimedOne(['a1', 'b2'], ['a1', 'b2']), false);
  assert.equal(claimedOne([], []), false);
});

test('summary: with one wall, network and cpu compare with the bare host', () => {
  const rep = fixtureReport();
  rep.network!.rows = rep.network!.rows.filter((r) => r.wall !== 'vm');
  rep.cpu!.task.rows = rep.cpu!.task.rows.filter((r) => r.wall !== 'vm');
  rep.cpu!.idle = rep.cpu!.idle.filter((r) => r.wall !== 'vm');
  const s = summarySentences(rep);
  assert.match(s.find((x) => x.dimension === 'network')!.sentence, /^over the bridge, a container round trip takes 1\.2x the host's loopback \(median 20 vs 17 us\), at 52% of its throughput\.$/);
  assert.match(s.find((x) => x.dimension === 'cpu')!.sentence, /container takes 1\.03x the bare host's time/);
});
