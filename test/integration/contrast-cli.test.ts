/**
 * `hull contrast` end to end on real containers (and VMs once `hull run --isolation vm` works
 * here): table, JSON, HTML, nothing left behind, and Ctrl-C in the middle.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { HULL_BIN, hull, importBusybox, makeTempRoot, type TempRoot } from '../helpers/hull.js';
import { COLUMNS } from '../../src/contrast/report-table.js';
import { CONTRAST_FORMAT, type ContrastReport } from '../../src/contrast/types.js';
import { interruptedContrast, leftovers, vmUnavailable } from './contrast-helpers.js';

describe('hull contrast', { timeout: 900_000 }, () => {
  let tr: TempRoot;
  let out: string;
  let vmError = '';
  before(() => {
    tr = makeTempRoot('hullct-cli-root-');
    importBusybox(tr.root);
    out = fs.mkdtempSync(path.join(os.tmpdir(), 'hullct-out-'));
    vmError = vmUnavailable(tr.root);
  });
  after(() => {
    tr.cleanup();
    fs.rmSync(out, { recursive: true, force: true });
  });

  function checkReport(rep: ContrastReport, walls: string[]): void {
    assert.equal(rep.format, CONTRAST_FORMAT);
    assert.equal(rep.image, 'busybox');
    assert.ok(rep.machine.cores >= 1 && rep.machine.memTotalBytes > 0 && rep.machine.kernel === os.release());
    assert.equal(typeof rep.machine.kvm.usable, 'boolean');
    assert.ok(rep.machine.versions.hull);
    for (const name of walls) {
      const w = rep.walls.find((x) => x.name === name);
      assert.ok(w, `wall ${name} in the report (skipped: ${JSON.stringify(rep.skipped)})`);
      assert.equal(w.kind, 'hull');
      assert.equal(w.startup!.samplesMs.length, 2, `${name}: ${w.startup!.firstError}`);
      assert.ok(w.startup!.samplesMs.every((s) => s > 0));
      const s = w.startup!.summary!;
      assert.ok(s.min > 0 && s.min <= s.median && s.median <= s.p95 && s.p95 <= s.max);
      assert.ok(w.startup!.how.includes('hrtime'));
      // the split: create / start / wait / rm timed as separate CLI calls
      for (const ph of ['cli', 'create', 'start', 'wait', 'rm']) {
        const f = w.startup!.split.find((x) => x.phase === ph);
        assert.ok(f && f.ms !== null && f.ms > 0, `${name} split ${ph}: ${JSON.stringify(w.startup!.split)}`);
      }
      if (name === 'vm') assert.ok(w.startup!.split.some((x) => x.phase === 'guest-uptime' && x.ms! > 0));
      const m = w.memory!;
      assert.ok(m, `${name} memory: ${w.memoryError}`);
      assert.equal(m.givenBytes, 128 * 1048576);
      assert.ok(m.processes.length >= 1 && m.processes.every((p) => p.pss > 0), JSON.stringify(m.processes));
      assert.ok(m.totalBytes > 0 && m.totalBytes >= m.workloadBytes);
      assert.ok(m.how.includes('smaps_rollup'));
      if (name === 'container') {
        assert.ok(m.processes.some((p) => p.role === 'monitor'), 'conmon measured');
        assert.ok(m.processes.some((p) => p.role === 'workload'), 'container process measured');
        assert.ok(m.cgroup && m.cgroup.charge.chargeBytes > 0, 'memory cgroup charge read');
      } else {
        assert.ok(m.processes.some((p) => p.role === 'vmm'), 'QEMU measured');
      }
      const d = w.density!;
      assert.equal(d.started, 2, d.firstError);
      assert.equal(d.curve.length, 2);
      assert.ok(d.startMs > 0 && d.totalBytes > 0 && d.curve[1]!.bytes >= d.curve[0]!.bytes);
      const iso = w.isolation!;
      assert.ok(!iso.error, iso.error);
      const kernel = iso.rows.find((r) => r.probe === 'kernel')!;
      assert.equal(kernel.verdict, name === 'vm' ? 'own' : 'exposed');
      assert.ok(iso.rows.find((r) => r.probe === 'caps')!.inside.length > 0);
      // network and host settings, tried for real: hull's defaults give no NET_RAW, a read-only /proc/sys
      const sysctlw = iso.rows.find((r) => r.probe === 'sysctlw')!;
      assert.equal(sysctlw.verdict, name === 'vm' ? 'own' : 'contained', sysctlw.inside);
      const spoof = iso.rows.find((r) => r.probe === 'arpspoof')!;
      assert.ok(spoof, 'an ARP-spoof row');
      if (fs.existsSync('/usr/sbin/arp-scan')) {
        assert.ok(!spoof.inside.startsWith('not run'), spoof.inside);
        if (name !== 'vm') assert.deepEqual([spoof.verdict, spoof.inside], ['contained', 'denied (socket: Operation not permitted)']);
        else assert.notEqual(spoof.verdict, 'exposed', spoof.inside);
      }
    }
  }

  test('container wall (with the peers installed as reference rows): table, JSON, HTML, nothing left', () => {
    const json = path.join(out, 'c.json');
    const html = path.join(out, 'c.html');
    // every dimension (the default), the new ones with small settings
    const r = hull(tr.root, ['contrast', 'busybox', '--runs', '2', '--density', '2', '--idle-window', '2s', '--isolation', 'container', '--json', json, '--html', html], { timeoutMs: 600_000 });
    assert.equal(r.code, 0, r.stderr);
    const header = r.stdout.split('\n').find((l) => l.startsWith('WALL'))!;
    for (const [c] of COLUMNS) assert.ok(header.includes(c), `column ${c}`);
    assert.match(r.stdout, /^container\s+\d/m);
    assert.match(r.stderr, /\[contrast\] start-up 2\/2 container/);
    const rep = JSON.parse(fs.readFileSync(json, 'utf8')) as ContrastReport;
    checkReport(rep, ['container']);
    // every peer installed here gives a reference row
    for (const peer of ['podman', 'crun', 'runc']) {
      const installed = ['/usr/bin', '/usr/sbin', '/usr/local/bin'].some((d) => fs.existsSync(path.join(d, peer)));
      if (installed) assert.ok(rep.walls.some((w) => w.name === peer), `${peer} row missing: ${JSON.stringify(rep.skipped)}`);
    }
    for (const ref of rep.walls.filter((w) => w.kind === 'reference')) {
      assert.ok(ref.startup!.samplesMs.length > 0, `${ref.name}: ${ref.startup!.firstError}`);
    }
    // hull's container wall allows no more of the risky actions than podman's (issue 14)
    const RISKY = ['userns', 'mount', 'mknod', 'syslog', 'kmsg', 'kcore', 'rawsocket', 'chroot'];
    const allowed = (name: string) => (rep.walls.find((w) => w.name === name)?.isolation?.rows ?? []).filter((x) => RISKY.includes(x.probe) && x.inside.startsWith('allowed')).map((x) => x.probe);
    const mine = allowed('container');
    for (const refused of ['userns', 'mknod', 'rawsocket', 'mount']) assert.ok(!mine.includes(refused), `${refused} allowed in hull's container: ${mine.join(', ')}`);
    const podman = rep.walls.find((w) => w.name === 'podman');
    if (podman?.isolation && !podman.isolation.error) {
      const theirs = allowed('podman');
      assert.ok(mine.every((p) => theirs.includes(p)), `hull allows ${mine.join(', ')}; podman ${theirs.join(', ')}`);
    }
    // the second edition's dimensions are there by default, with a sentence each
    assert.deepEqual(rep.only, ['startup', 'memory', 'density', 'isolation', 'cpu', 'disk', 'network', 'boot']);
    assert.ok(rep.cpu && rep.disk && rep.network, 'cpu, disk and network measured by default');
    assert.equal(rep.boot, undefined, 'no vm wall: no boot modes');
    for (const dim of ['cpu', 'disk', 'network']) assert.ok(rep.summary!.some((x) => x.dimension === dim), `summary sentence for ${dim}`);
    assert.match(r.stdout, /^summary:$/m);
    const html0 = fs.readFileSync(html, 'utf8');
    assert.match(html0, /id="chart-startup"/);
    assert.deepEqual(leftovers(tr.root, rep), []);
    // advise quotes the stored figures
    const a = hull(tr.root, ['advise', '--untrusted', '--startup-budget', '5s']);
    assert.equal(a.code, 0, a.stderr);
    assert.match(a.stdout, /container: start-up median \d/);
  });

  test('container and vm walls interleaved', (t) => {
    if (vmError) return t.skip(`hull run --isolation vm does not work on this machine yet: ${vmError}`);
    const json = path.join(out, 'cv.json');
    const html = path.join(out, 'cv.html');
    const r = hull(tr.root, ['contrast', 'busybox', '--runs', '2', '--density', '2', '--only', 'startup,memory,density,isolation,boot', '--peers', 'none', '--json', json, '--html', html], { timeoutMs: 600_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^vm \[(TCG|KVM)\]\s+\d/m);
    // interleaved: container, vm, container, vm
    const order = [...r.stderr.matchAll(/start-up (\d)\/2 (\w+)/g)].map((m) => `${m[1]}${m[2]}`);
    assert.deepEqual(order, ['1container', '1vm', '2container', '2vm']);
    const rep = JSON.parse(fs.readFileSync(json, 'utf8')) as ContrastReport;
    checkReport(rep, ['container', 'vm']);
    assert.ok(rep.ratios.some((x) => x.of === 'vm / container' && x.value !== null && x.value > 0));
    // boot modes: this hull restores templates (--vm-boot) and has a warm pool ('vm pool'), so
    // cold boot, restore and pool claim are each measured; the pool is drained afterwards
    const row = (m: string) => rep.boot!.rows.find((x) => x.mode === m)!;
    assert.ok(row('cold').ms! > 0, row('cold').how);
    assert.match(row('cold').how, /--vm-boot cold/);
    assert.ok(row('restore').ms! > 0, row('restore').how);
    assert.match(row('restore').how, /--vm-boot auto/);
    assert.equal(hull(tr.root, ['vm', 'pool', '--help']).code, 0, 'this hull offers the pool');
    assert.ok(row('pool').ms! > 0, row('pool').how);
    assert.match(row('pool').how, /claiming a paused guest of a warm pool of 2/);
    assert.match(r.stderr, /boot vm pool 5\/5: \d+ ms/);
    const pool = JSON.parse(hull(tr.root, ['vm', 'pool', '--format', 'json']).stdout) as { ready: number; keeper: string | null };
    assert.deepEqual([pool.ready, pool.keeper], [0, null], 'the pool is drained');
    assert.deepEqual(leftovers(tr.root, rep), []);
  });

  const interrupted = (args: string[], when: RegExp, delayMs: number) => interruptedContrast(tr.root, [...args, '--peers', 'none'], when, delayMs);

  test('Ctrl-C during the density run stops it and leaves nothing behind', async () => {
    const { code, signal, stderr, sent } = await interrupted(['--runs', '1', '--density', '6', '--isolation', 'container'], /density container: starting/, 300);
    assert.ok(sent, `never reached the density run: ${stderr}`);
    assert.equal(code ?? (signal === 'SIGINT' ? 130 : 1), 130, stderr);
    assert.match(stderr, /SIGINT: stopping/);
    assert.match(stderr, /interrupted; every instance it started was removed/);
    assert.deepEqual(leftovers(tr.root), []);
  });

  test('Ctrl-C while VMs start for the density run: no QEMU left', async (t) => {
    if (vmError) return t.skip(`hull run --isolation vm does not work on this machine yet: ${vmError}`);
    const { code, stderr, sent } = await interrupted(['--runs', '1', '--density', '3', '--isolation', 'vm'], /density vm: starting/, 500);
    assert.ok(sent, `never reached the density run: ${stderr}`);
    assert.equal(code ?? 1, 130, stderr);
    assert.deepEqual(leftovers(tr.root), []);
  });

  test('Ctrl-C during the pool claims of the boot dimension: the pool is drained, no QEMU or keeper left', async (t) => {
    if (vmError) return t.skip(`hull run --isolation vm does not work on this machine yet: ${vmError}`);
    const { code, stderr, sent } = await interrupted(['--runs', '1', '--only', 'boot', '--isolation', 'vm'], /boot vm pool 1\/5/, 0);
    assert.ok(sent, `never reached the pool claims: ${stderr}`);
    assert.equal(code ?? 1, 130, stderr);
    const pool = JSON.parse(hull(tr.root, ['vm', 'pool', '--format', 'json']).stdout) as { ready: number; keeper: string | null };
    assert.deepEqual([pool.ready, pool.keeper], [0, null], 'the pool is drained');
    assert.deepEqual(leftovers(tr.root), []);
  });

  test('Ctrl-C during the start-up runs', async () => {
    const { code, stderr, sent } = await interrupted(['--runs', '50', '--isolation', 'container'], /start-up 2\/50/, 0);
    assert.ok(sent, `never reached the start-up runs: ${stderr}`);
    assert.equal(code ?? 1, 130, stderr);
    assert.deepEqual(leftovers(tr.root), []);
  });

  test('container-userns beside container: root inside is unprivileged on the host there, root here; its start-up ratio', () => {
    const json = path.join(out, 'u.json');
    const r = hull(tr.root, ['contrast', 'busybox', '--runs', '2', '--density', '2', '--isolation', 'container,container-userns', '--peers', 'none', '--json', json], { timeoutMs: 600_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^container-userns\s+\d/m);
    const rep = JSON.parse(fs.readFileSync(json, 'utf8')) as ContrastReport;
    const row = (wall: string, probe: string) => rep.walls.find((w) => w.name === wall)!.isolation!.rows.find((x) => x.probe === probe)!;
    assert.deepEqual([row('container', 'rootuid').inside, row('container', 'rootuid').verdict], ['0 (root on the host)', 'exposed']);
    assert.match(row('container-userns', 'rootuid').inside, /^\d+ \(unprivileged on the host\)$/);
    assert.equal(row('container-userns', 'rootuid').verdict, 'contained');
    assert.match(row('container-userns', 'userns').inside, /^denied/);
    assert.equal(rep.walls.find((w) => w.name === 'container-userns')!.density!.started, 2);
    const ratio = rep.ratios.find((x) => x.metric === 'start-up median' && x.of === 'container-userns / container');
    assert.ok(ratio && ratio.value !== null && ratio.value > 0, JSON.stringify(rep.ratios));
    assert.deepEqual(leftovers(tr.root, rep), []);
  });

  test('--density-budget: instances are started until their host memory reaches the budget', () => {
    const json = path.join(out, 'b.json');
    const budget = 6 * 1048576;
    const r = hull(tr.root, ['contrast', 'busybox', '--runs', '1', '--density-budget', '6m', '--only', 'density', '--isolation', 'container', '--peers', 'none', '--json', json], { timeoutMs: 600_000 });
    assert.equal(r.code, 0, r.stderr);
    const rep = JSON.parse(fs.readFileSync(json, 'utf8')) as ContrastReport;
    const d = rep.walls.find((w) => w.name === 'container')!.density!;
    assert.equal(d.mode, 'budget');
    assert.equal(d.budgetBytes, budget);
    assert.ok(d.started >= 1, JSON.stringify(d));
    assert.ok(d.totalBytes > 0 && d.totalBytes <= budget);
    for (let i = 1; i < d.curve.length; i++) assert.ok(d.curve[i]!.n > d.curve[i - 1]!.n);
    assert.match(r.stdout, /fit 6\.0MiB/);
    assert.deepEqual(leftovers(tr.root, rep), []);
  });

  test('advise on a terminal asks its questions', (t) => {
    const script = spawnSync('script', ['--version'], { encoding: 'utf8' });
    if (script.status !== 0) return t.skip('script(1) from util-linux is not installed: no way to give advise a terminal');
    const answers = 'y\n3\nn\n300ms\n\n4\n';
    const r = spawnSync('script', ['-qec', `${HULL_BIN} --root ${tr.root} advise`, '/dev/null'], { input: answers, encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /code you do not trust/);
    assert.match(r.stdout, /How many tenants/);
    assert.match(r.stdout, /advice: /);
    assert.match(r.stdout, /the code is untrusted/);
  });

  test('bad flags are refused before anything starts', () => {
    for (const [args, msg] of [
      [['--runs', '0'], /--runs/],
      [['--isolation', 'lxc'], /lxc/],
      [['--density-budget', 'lots'], /--density-budget/],
      [['--peers', 'docker'], /docker/],
      [['--only', 'cpu,gpu'], /gpu/],
      [['--idle-window', 'soon'], /--idle-window/],
      [['--vm-accel', 'hvf'], /invalid argument "hvf" for "--vm-accel"/],
      [['--vm-accel', 'auto,kvm'], /auto stands alone/],
      [['--vm-accel', 'kvm', '--isolation', 'container'], /--vm-accel applies to the VM wall/],
    ] as Array<[string[], RegExp]>) {
      const r = hull(tr.root, ['contrast', 'busybox', ...args]);
      assert.equal(r.code, 125, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, msg);
    }
    const missing = hull(tr.root, ['contrast', 'no-such-image', '--runs', '1', '--peers', 'none', '--isolation', 'container']);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /no-such-image/);
    assert.deepEqual(leftovers(tr.root), []);
  });
});
