/**
 * `hull contrast --only` on the second edition's dimensions (cpu, disk, network, boot), with
 * small settings, on real containers and VMs: JSON keys and values sane, how each figure was
 * measured, nothing left behind, also after Ctrl-C in the middle of a dimension.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { hull, importBusybox, makeTempRoot, type TempRoot } from '../helpers/hull.js';
import type { ContrastReport } from '../../src/contrast/types.js';
import { interruptedContrast, leftovers, vmUnavailable } from './contrast-helpers.js';
import { assertNoNetwork } from '../helpers/net.js';

/** sockperf / iperf3 servers started for this root's contrast (their cwd or argv never names it, so: ours are children of nothing left). */
function hostServersOf(_root: string): string[] {
  const out: string[] = [];
  for (const n of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(n)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${n}/cmdline`, 'utf8').split('\0').join(' ');
      // the host reference servers listen on 127.0.0.1 only; a contrast's are gone when it exits
      if (/^(sockperf server --tcp -i 127\.0\.0\.1|iperf3 -s -B 127\.0\.0\.1)/.test(cmd) && ppidOf(n) === 1) out.push(`${n}: ${cmd}`);
    } catch {
      /* gone */
    }
  }
  return out;
}

function ppidOf(pid: string): number {
  const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
}

describe('hull contrast: cpu, disk, network, boot', { timeout: 900_000 }, () => {
  let tr: TempRoot;
  let out: string;
  let walls = 'container';
  let vmError = '';
  before(() => {
    tr = makeTempRoot('hullct-dims-root-');
    importBusybox(tr.root);
    out = fs.mkdtempSync(path.join(os.tmpdir(), 'hullct-dims-'));
    vmError = vmUnavailable(tr.root);
    if (!vmError) walls = 'container,vm';
  });
  after(() => {
    tr.cleanup();
    fs.rmSync(out, { recursive: true, force: true });
  });

  function contrast(only: string, extra: string[] = [], wallList = walls): { rep: ContrastReport; stdout: string; stderr: string } {
    const json = path.join(out, `${only.replace(/,/g, '-')}.json`);
    const r = hull(tr.root, ['contrast', 'busybox', '--only', only, '--quick', '--isolation', wallList, '--peers', 'none', '--json', json, ...extra], { timeoutMs: 600_000 });
    assert.equal(r.code, 0, r.stderr);
    const rep = JSON.parse(fs.readFileSync(json, 'utf8')) as ContrastReport;
    assert.deepEqual(rep.only, only.split(','));
    assert.deepEqual(leftovers(tr.root, rep), []);
    return { rep, stdout: r.stdout, stderr: r.stderr };
  }

  test('cpu: idle host CPU per minute from cgroup and /proc accounting, the task inside vs the same busybox on the host', (t) => {
    if (vmError) t.diagnostic(`vm wall left out: ${vmError}`);
    const { rep, stdout } = contrast('cpu', ['--idle-window', '2s']);
    const c = rep.cpu!;
    assert.ok(c, 'cpu in the report');
    // first-edition dimensions were not measured
    assert.ok(rep.walls.every((w) => w.startup === null && w.memory === null && w.density === null && w.isolation === null));
    for (const name of walls.split(',')) {
      const idle = c.idle.find((r) => r.wall === name);
      assert.ok(idle, `${name} idle row: ${JSON.stringify(c.idleErrors)}`);
      assert.ok(idle.windowMs >= 2000 && idle.windowMs < 60_000, `window ${idle.windowMs}`);
      assert.ok(idle.msPerMinute >= 0 && idle.msPerMinute < 60_000 * os.cpus().length);
      assert.ok(idle.processes.length >= 1);
      if (name === 'container') {
        assert.ok(idle.processes.some((p) => p.comm === 'conmon' && !p.inCgroup), JSON.stringify(idle.processes));
        assert.ok(idle.cgroup && idle.cgroup.cpuMs >= 0, 'the container cgroup was read');
        assert.equal(idle.accel, 'native');
      } else {
        assert.ok(idle.processes.some((p) => /^qemu/.test(p.comm)), JSON.stringify(idle.processes));
        assert.equal(idle.accel, rep.machine.kvm.usable ? 'kvm' : 'tcg');
      }
      assert.match(idle.how, /cgroup/);
    }
    const host = c.task.rows.find((r) => r.wall === 'host')!;
    assert.ok(host.summary && host.summary.median > 0, JSON.stringify(host));
    assert.equal(host.vsHost, 1);
    assert.match(c.task.binarySha256 ?? '', /^[0-9a-f]{64}$/);
    for (const name of walls.split(',')) {
      const row = c.task.rows.find((r) => r.wall === name)!;
      assert.ok(row.summary, `${name}: ${row.error}`);
      assert.equal(row.samplesMs.length, 2);
      assert.ok(row.vsHost! > 0 && row.mibPerSec! > 0);
    }
    if (walls.includes('vm') && !rep.machine.kvm.usable) {
      // said once for the report, every VM row marked
      assert.match(rep.vmNote ?? '', /every VM figure is TCG/);
      assert.equal(stdout.match(/every VM figure is TCG/g)?.length, 1);
      assert.match(stdout, /vm \[TCG\]/);
    }
    assert.match(stdout, /IDLE CPU\/min/);
    assert.ok(rep.summary!.some((s) => s.dimension === 'cpu' && s.sentence.length > 20));
    // advise weighs the stored figures and quotes them
    const a = hull(tr.root, ['advise', '--untrusted', '--cpu-bound', '--idle-ratio', '0.5', '--json']);
    assert.equal(a.code, 0, a.stderr);
    const adv = JSON.parse(a.stdout) as { figures: string[]; reasons: string[] };
    assert.ok(adv.figures.some((f) => /^container: CPU task \d+\.\d\dx the bare host's time, \d+ ms host CPU per idle minute$/.test(f)), adv.figures.join('\n'));
    if (walls.includes('vm')) assert.ok(adv.reasons.some((r) => /idle 50% of the time, 1 x \d+ ms host CPU per idle minute/.test(r)), adv.reasons.join('\n'));
  });

  test('--vm-accel tcg,kvm: the VM wall once per accelerator; KVM that does not work here is left out with the reason, said once', (t) => {
    if (vmError) return t.skip(`vm wall left out: ${vmError}`);
    const json = path.join(out, 'accel.json');
    const r = hull(tr.root, ['contrast', 'busybox', '--only', 'cpu', '--quick', '--idle-window', '2s', '--isolation', 'container,vm', '--vm-accel', 'tcg,kvm', '--peers', 'none', '--json', json], { timeoutMs: 600_000 });
    assert.equal(r.code, 0, r.stderr);
    const rep = JSON.parse(fs.readFileSync(json, 'utf8')) as ContrastReport;
    assert.deepEqual(rep.options.vmAccel, ['tcg', 'kvm']);
    const tcg = rep.walls.find((w) => w.name === 'vm-tcg')!;
    assert.equal(tcg.accel, 'tcg');
    assert.equal(tcg.command, 'hull run --rm --isolation vm --vm-accel tcg busybox true');
    assert.ok(rep.cpu!.task.rows.find((x) => x.wall === 'vm-tcg')?.summary, JSON.stringify(rep.cpu!.task.rows));
    assert.equal(rep.cpu!.idle.find((x) => x.wall === 'vm-tcg')?.accel, 'tcg');
    if (rep.machine.kvm.usable) {
      // both side by side: the ratio is what emulation costs
      assert.equal(rep.walls.find((w) => w.name === 'vm-kvm')?.accel, 'kvm');
      assert.match(rep.vmNote!, /side by side/);
    } else {
      assert.equal(rep.walls.find((w) => w.name === 'vm-kvm'), undefined);
      const s = rep.skipped.find((x) => x.name === 'vm-kvm')!;
      assert.match(s.reason, /^KVM asked for \(--vm-accel kvm\) but unusable here: /);
      assert.match(rep.vmNote!, /^every VM figure is TCG/);
      assert.equal(r.stdout.match(/every VM figure is TCG/g)?.length, 1, r.stdout);
      assert.match(r.stdout, /^  vm-tcg \[TCG\]\s+\d/m);
      assert.match(r.stdout, /^note: vm-kvm: not measured: KVM asked for/m);
      // kvm alone where it does not work: a clear refusal naming why, nothing started
      const k = hull(tr.root, ['contrast', 'busybox', '--only', 'cpu', '--quick', '--isolation', 'vm', '--vm-accel', 'kvm', '--peers', 'none']);
      assert.notEqual(k.code, 0);
      assert.match(k.stderr, /no wall of hull could run busybox: vm: KVM asked for \(--vm-accel kvm\) but unusable here/);
    }
    assert.deepEqual(leftovers(tr.root, rep), []);
  });

  test('disk: the same fio on the host and on each wall\'s root and volume (container-userns too), page cache stated', () => {
    // container-userns: its root is an unprivileged host id; the volume is one hull makes for it
    const { rep, stdout } = contrast('disk', [], `${walls},container-userns`);
    const d = rep.disk!;
    assert.ok(d, 'disk in the report');
    assert.deepEqual(d.notes, []);
    assert.match(d.pageCache, /O_DIRECT/);
    assert.match(d.how, /the same fio binary on the host and inside: \/hull-contrast-fio\/ld-linux/);
    const keys = d.rows.map((r) => `${r.wall}/${r.target}/${r.tool}`);
    const want = ['host/volume/fio', ...[...walls.split(','), 'container-userns'].flatMap((w) => [`${w}/root/fio`, `${w}/volume/fio`])];
    assert.deepEqual(keys.sort(), want.sort());
    for (const r of d.rows) {
      assert.ok(!r.error, `${r.wall} ${r.target}: ${r.error}`);
      assert.ok(r.fs !== 'unknown' && /O_DIRECT|buffered/.test(r.fs), `${r.wall} ${r.target} fs: ${r.fs}`);
      assert.deepEqual(r.figures.map((f) => f.test), ['seq-write', 'seq-read', 'rand-write', 'rand-read']);
      for (const f of r.figures) assert.ok(f.mibPerSec! > 0 && f.iops! > 0 && f.samples.length === 1 && !f.error, `${r.wall} ${r.target} ${f.test}: ${JSON.stringify(f)}`);
      assert.equal(r.accel, r.wall === 'vm' ? (rep.machine.kvm.usable ? 'kvm' : 'tcg') : 'native');
    }
    // a container's root is overlayfs on the host; a VM's volume is 9p, its root buffered in guest RAM
    assert.match(d.rows.find((r) => r.wall === 'container' && r.target === 'root')!.fs, /^overlay/);
    if (walls.includes('vm')) {
      assert.match(d.rows.find((r) => r.wall === 'vm' && r.target === 'volume')!.fs, /^9p/);
      assert.match(d.rows.find((r) => r.wall === 'vm' && r.target === 'root')!.fs, /buffered/);
    }
    assert.match(stdout, /WALL TARGET\s+TOOL\s+SEQ-WRITE\s+SEQ-READ\s+RAND-WRITE\s+RAND-READ/);
    assert.match(stdout, /page cache:/);
  });

  test('network: sockperf round trips and iperf3 throughput over the bridge, a published port and instance to instance', async (t) => {
    for (const tool of ['iperf3', 'sockperf']) if (!fs.existsSync(`/usr/bin/${tool}`)) return t.skip(`${tool} is not installed (scripts/setup.sh installs it)`);
    const { rep, stdout } = contrast('network');
    const n = rep.network!;
    assert.ok(n, 'network in the report');
    assert.deepEqual(n.notes.filter((x) => /not measured/.test(x)), []);
    const host = n.rows.find((r) => r.wall === 'host')!;
    assert.equal(host.figures[0]!.path, 'host loopback (127.0.0.1)');
    for (const name of walls.split(',')) {
      const row = n.rows.find((r) => r.wall === name)!;
      assert.ok(row, `${name} row`);
      assert.deepEqual(row.figures.map((f) => f.path), ['host -> instance (bridge)', 'host -> published port', 'instance -> instance (bridge)', 'instance -> host (bridge)']);
      for (const f of [...row.figures, host.figures[0]!]) {
        assert.ok(!f.error, `${name} ${f.path}: ${f.error}`);
        assert.ok(f.mbitPerSec! > 0 && f.samplesMbit.length === 1, `${name} ${f.path} throughput ${f.mbitPerSec}`);
        if (f.path === 'instance -> host (bridge)') {
          // throughput the other way (iperf3 -R); the round trip is the one above
          assert.equal(f.rttMedianUs, null);
          assert.match(f.how, /iperf3.*-R/);
          continue;
        }
        assert.ok(f.rttMedianUs! > 0 && f.rttP99Us! >= f.rttMedianUs! && f.rttMedianUs! < 1e6, `${name} ${f.path} rtt ${f.rttMedianUs}/${f.rttP99Us}`);
        assert.match(f.how, /sockperf.*iperf3/);
      }
    }
    assert.match(stdout, /RTT p50\s+RTT p99\s+THROUGHPUT/);
    // no namespace, veth, published-port rule or address of the server and client instances is left
    await assertNoNetwork(tr.root);
    assert.ok(rep.summary!.some((s) => s.dimension === 'network'));
  });

  const interrupted = (args: string[], when: RegExp, delayMs: number) => interruptedContrast(tr.root, ['--peers', 'none', '--isolation', walls, ...args], when, delayMs);

  test('Ctrl-C in the disk dimension: stops, removes instances and scratch files', async () => {
    const { code, stderr, sent } = await interrupted(['--only', 'disk'], /disk host|disk container/, 0);
    assert.ok(sent, `never reached the disk tests: ${stderr}`);
    assert.equal(code, 130, stderr);
    assert.deepEqual(leftovers(tr.root), []);
  });

  test('Ctrl-C in the network dimension: the server instances and host servers are gone', async (t) => {
    if (!fs.existsSync('/usr/bin/sockperf')) return t.skip('sockperf is not installed (scripts/setup.sh installs it)');
    const { code, stderr, sent } = await interrupted(['--only', 'network'], /network \w+: server instance at/, 200);
    assert.ok(sent, `never reached the network tests: ${stderr}`);
    assert.equal(code, 130, stderr);
    assert.deepEqual(leftovers(tr.root), []);
    assert.deepEqual(hostServersOf(tr.root), []);
    await assertNoNetwork(tr.root);
  });

  test('Ctrl-C in the network isolation step: the victim and attacker instances are gone', async () => {
    const { code, stderr, sent } = await interrupted(['--only', 'isolation'], /isolation probes: container/, 500);
    assert.ok(sent, `never reached the isolation probes: ${stderr}`);
    assert.equal(code, 130, stderr);
    assert.deepEqual(leftovers(tr.root), []);
    await assertNoNetwork(tr.root);
  });

  test('Ctrl-C in the idle CPU window: stops, removes the idle instances', async () => {
    const { code, stderr, sent } = await interrupted(['--only', 'cpu', '--idle-window', '60s'], /cpu: .* idle, measuring/, 300);
    assert.ok(sent, `never reached the idle window: ${stderr}`);
    assert.equal(code, 130, stderr);
    assert.match(stderr, /interrupted; every instance it started was removed/);
    assert.deepEqual(leftovers(tr.root), []);
  });
});
