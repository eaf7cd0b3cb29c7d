/**
 * The warm pool of microVMs (issue 13), real QEMU (TCG here): `hull vm pool --size N` keeps N
 * guests restored and paused; a foreground --rm run of the pool's shape claims one (same output,
 * exit codes, stdin, identity of its own), the keeper refills, and `--size 0`, SIGTERM to the
 * keeper or a keeper killed outright leave nothing: no QEMU, no keeper, no guest directory, no
 * cgroup.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { keeperLockName } from '../../src/runtime/vm/pool.js';
import { decodeStatus } from '../../src/runtime/vm/protocol.js';
import { buildBigImage, hull, hullAsync, importBusybox, makeTempRoot, processesOfRoot, REPO, type TempRoot, vmMissing } from '../helpers/hull.js';

const missing = vmMissing();

const RUN = ['run', '--rm', '--vm', '--network', 'none'];
let tr: TempRoot;

interface PoolState { size: number; ready: number; starting: number; keeper: string | null; guests: { id: string; pid: number }[] }

function state(): PoolState {
  const r = hull(tr.root, ['vm', 'pool', '--format', 'json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as PoolState;
}

/** Waits (bounded) until the pool has `n` ready guests. */
async function readyCount(n: number, ms = 60_000): Promise<PoolState> {
  for (const end = Date.now() + ms; ;) {
    const s = state();
    if (s.ready === n) return s;
    if (Date.now() > end) assert.fail(`the pool did not reach ${n} ready guests: ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Guest directories, starting or ready or draining, and pool cgroups left under the root. */
function leftovers(): string[] {
  const out: string[] = [];
  const base = path.join(tr.root, 'vmpool');
  if (fs.existsSync(base)) for (const d of fs.readdirSync(base, { withFileTypes: true })) if (d.isDirectory()) out.push(`dir ${d.name}`);
  const cgs = spawnSync('sh', ['-c', 'find /sys/fs/cgroup -maxdepth 4 -type d -name "pool-*" 2>/dev/null'], { encoding: 'utf8' }).stdout.trim();
  const key = spawnSync('node', ['-e', `import('${REPO}/dist/src/paths.js').then((p) => console.log(p.rootKey(process.argv[1])))`, tr.root], { encoding: 'utf8' }).stdout.trim();
  for (const c of cgs.split('\n').filter(Boolean)) if (c.includes(key)) out.push(`cgroup ${c}`);
  for (const p of processesOfRoot(tr.root)) out.push(`process ${p}`);
  return out;
}

before(() => {
  if (missing) return;
  tr = makeTempRoot('hull-vmpool-');
  importBusybox(tr.root);
});
after(() => {
  if (!tr) return;
  hull(tr.root, ['vm', 'pool', '--size', '0']);
  tr.cleanup();
});

test('bad pool requests: a clear error, non-zero, and nothing started', (t) => {
  if (missing) return t.skip(missing);
  for (const [args, re] of [
    [['--size', '-1'], /--size/],
    [['--size', 'two'], /invalid argument "two" for "--size"/],
    [['--size', '1000'], /bounded to \d+ here/],
    [['--size', '1', '--memory', '10m'], /at least 64m/],
    [['--size', '1', '--cpus', '1.5'], /whole number of vCPUs/],
    [['--memory', '256m'], /need --size/],
  ] as [string[], RegExp][]) {
    const r = hull(tr.root, ['vm', 'pool', ...args]);
    assert.notEqual(r.code, 0, `vm pool ${args.join(' ')} should fail`);
    assert.match(r.stderr, re);
  }
  assert.equal(state().keeper, null);
  assert.deepEqual(leftovers(), []);
});

test('a run of the pool shape claims a guest: same output, exit codes and stdin; the keeper refills', async (t) => {
  if (missing) return t.skip(missing);
  const up = hull(tr.root, ['vm', 'pool', '--size', '2'], { timeoutMs: 300_000 });
  assert.equal(up.code, 0, up.stderr);
  assert.match(up.stdout, /^pool: 2 ready, 0 starting, size 2 \(128m, 1 vCPU\)\n$/);
  assert.match(hull(tr.root, ['info']).stdout, /VmPool: 2 of 2 ready \(128 MiB, 1 vCPU\)/);
  const s0 = state();
  assert.equal(s0.guests.length, 2);
  assert.ok(s0.keeper);
  // each ready guest has rehearsed a run (TCG has translated its code before the claim)
  for (const g of s0.guests) assert.equal(decodeStatus(fs.readFileSync(path.join(tr.root, 'vmpool', g.id, 'status'))).rehearsed, '', `guest ${g.id} rehearsed`);
  const r = hull(tr.root, [...RUN, 'busybox', 'sh', '-c', 'echo out; echo err >&2; exit 7']);
  assert.equal(r.code, 7);
  assert.equal(r.stdout, 'out\n');
  assert.equal(r.stderr, 'err\n', 'a claim prints no note');
  const s1 = await readyCount(2);
  const ids0 = s0.guests.map((g) => g.id);
  const ids1 = s1.guests.map((g) => g.id);
  assert.equal(ids1.filter((id) => ids0.includes(id)).length, 1, `one guest was claimed and replaced: ${ids0} -> ${ids1}`);
  // the claimed guest's QEMU is gone with its run
  const claimed = s0.guests.find((g) => !ids1.includes(g.id))!;
  assert.equal(fs.existsSync(`/proc/${claimed.pid}`) && !/\) Z /.test(fs.readFileSync(`/proc/${claimed.pid}/stat`, 'utf8')), false);
  const i = hull(tr.root, [...RUN, '-i', '-e', 'X=from-run', '--hostname', 'pooled1', 'busybox', 'sh', '-c', 'cat; echo $X; hostname'], { input: 'stdin line\n' });
  assert.equal(i.code, 0, i.stderr);
  assert.equal(i.stdout, 'stdin line\nfrom-run\npooled1\n');
  await readyCount(2);
  const n = hull(tr.root, [...RUN, 'busybox', 'nosuchcmd']);
  assert.equal(n.code, 127);
  assert.match(n.stderr, /executable file not found/);
  await readyCount(2);
});

test('two claimed guests differ in uuid and urandom; the wall clock is within 1 s of the host', async (t) => {
  if (missing) return t.skip(missing);
  await readyCount(2);
  const probe = () => {
    const before = Date.now();
    const r = hull(tr.root, [...RUN, 'busybox', 'sh', '-c', 'cat /proc/sys/kernel/random/uuid; head -c 32 /dev/urandom | od -An -tx1 | tr -d " \\n"; echo; adjtimex | grep -E "tv_(sec|usec)"']);
    const afterMs = Date.now();
    assert.equal(r.code, 0, r.stderr);
    const [uuid, bytes] = r.stdout.split('\n');
    const guestMs = Number(/tv_sec:\s+(\d+)/.exec(r.stdout)![1]) * 1000 + Number(/tv_usec:\s+(\d+)/.exec(r.stdout)![1]) / 1000;
    return { uuid, bytes, guestMs, before, after: afterMs };
  };
  const ids0 = state().guests.map((g) => g.id);
  const a = probe();
  const b = probe();
  assert.deepEqual(state().guests.map((g) => g.id).filter((id) => ids0.includes(id)), [], 'both runs claimed a pool guest');
  assert.match(a.uuid!, /^[0-9a-f-]{36}$/);
  assert.notEqual(a.uuid, b.uuid);
  assert.match(a.bytes!, /^[0-9a-f]{64}$/);
  assert.notEqual(a.bytes, b.bytes);
  for (const p of [a, b]) assert.ok(p.guestMs >= p.before - 1000 && p.guestMs <= p.after + 1000, `guest clock ${p.guestMs} vs host ${p.before}..${p.after}`);
  await readyCount(2);
});

test('a claimed guest reads an image far larger than the placeholder it was restored with, to its last block', async (t) => {
  if (missing) return t.skip(missing);
  const img = buildBigImage(tr.root, 'bigimg');
  try {
    const ids0 = (await readyCount(2)).guests.map((g) => g.id);
    const r = hull(tr.root, [...RUN, 'bigimg', 'sh', '-c', 'tail -c 4096 /big | md5sum; md5sum /big']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.equal(r.stdout, img.expect);
    assert.equal(state().guests.filter((g) => ids0.includes(g.id)).length, 1, 'the run claimed a pool guest');
  } finally {
    img.remove();
  }
});

test('four runs at once against a pool of two: each guest is claimed once, every run prints its own output', async (t) => {
  if (missing) return t.skip(missing);
  const ids0 = (await readyCount(2)).guests.map((g) => g.id);
  const rs = await Promise.all([1, 2, 3, 4].map((k) => hullAsync(tr.root, [...RUN, 'busybox', 'sh', '-c', `echo run${k}; exit ${k}`])));
  rs.forEach((r, i) => {
    assert.equal(r.code, i + 1, r.stderr);
    assert.equal(r.stdout, `run${i + 1}\n`);
    assert.equal(r.stderr, '');
  });
  const s = await readyCount(2);
  assert.deepEqual(s.guests.filter((g) => ids0.includes(g.id)), [], 'both ready guests were claimed');
  assert.deepEqual(fs.readdirSync(path.join(tr.root, 'containers')), [], 'every --rm run removed its container');
});

test('runs of another shape, detached runs and kept runs do not claim', async (t) => {
  if (missing) return t.skip(missing);
  const ids0 = (await readyCount(2)).guests.map((g) => g.id);
  const m = hull(tr.root, [...RUN, '-m', '256m', 'busybox', 'echo', 'big']);
  assert.equal(m.code, 0, m.stderr);
  assert.equal(m.stdout, 'big\n');
  const kept = hull(tr.root, ['run', '--vm', '--network', 'none', '--name', 'kept', 'busybox', 'echo', 'kept']);
  assert.equal(kept.code, 0, kept.stderr);
  assert.equal(hull(tr.root, ['rm', 'kept']).code, 0);
  assert.deepEqual(state().guests.map((g) => g.id), ids0);
});

test('a pool guest that cannot take its run is stopped, and the run restores its own with a note', async (t) => {
  if (missing) return t.skip(missing);
  const s = await readyCount(2);
  // without its monitor socket the claim cannot swap the disk in
  for (const g of s.guests) fs.rmSync(path.join(tr.root, 'vmpool', g.id, 'qmp.sock'));
  const r = hull(tr.root, [...RUN, 'busybox', 'sh', '-c', 'echo fine; exit 4']);
  assert.equal(r.code, 4);
  assert.equal(r.stdout, 'fine\n');
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, /the pool guest did not take the run: .*this run restores its own guest/);
  const claimed = s.guests.filter((g) => !fs.existsSync(path.join(tr.root, 'vmpool', g.id)));
  assert.equal(claimed.length, 1);
  assert.equal(fs.existsSync(`/proc/${claimed[0]!.pid}`) && !/\) Z /.test(fs.readFileSync(`/proc/${claimed[0]!.pid}/stat`, 'utf8')), false, 'the failed guest is stopped');
});

test('--size 0 drains the pool: no QEMU, no keeper, no guest directory, no cgroup', async (t) => {
  if (missing) return t.skip(missing);
  const d = hull(tr.root, ['vm', 'pool', '--size', '0']);
  assert.equal(d.code, 0, d.stderr);
  assert.match(d.stdout, /^pool: 0 ready, 0 starting, size 0 .*no keeper running\n$/);
  assert.match(hull(tr.root, ['info']).stdout, /VmPool: off/);
  assert.deepEqual(leftovers(), []);
  // and a run without a pool restores as before
  const r = hull(tr.root, [...RUN, 'busybox', 'echo', 'alone']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'alone\n');
});

test('SIGTERM to the keeper drains; a keeper killed outright leaves guests that --size 0 stops', async (t) => {
  if (missing) return t.skip(missing);
  assert.equal(hull(tr.root, ['vm', 'pool', '--size', '1']).code, 0);
  const k = Number(state().keeper!.split(':')[0]);
  process.kill(k, 'SIGTERM');
  for (const end = Date.now() + 30_000; fs.existsSync(`/proc/${k}`) && !/\) Z /.test(fs.readFileSync(`/proc/${k}/stat`, 'utf8'));) {
    if (Date.now() > end) assert.fail('the keeper did not end on SIGTERM');
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.deepEqual(leftovers(), []);
  assert.equal(hull(tr.root, ['vm', 'pool', '--size', '1']).code, 0);
  const k2 = Number(state().keeper!.split(':')[0]);
  process.kill(k2, 'SIGKILL');
  for (const end = Date.now() + 10_000; state().keeper !== null;) {
    if (Date.now() > end) assert.fail('the keeper did not die');
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(state().ready, 1, 'its guest is left running');
  const sc = hull(tr.root, ['system', 'check']);
  assert.match(sc.stdout, /vm-pool-guest/);
  const d = hull(tr.root, ['vm', 'pool', '--size', '0']);
  assert.equal(d.code, 0, d.stderr);
  assert.deepEqual(leftovers(), []);
});

test('one keeper per root, decided by the kernel: a live lock refuses a second keeper, a dead keeper\'s file is taken over', async (t) => {
  if (missing) return t.skip(missing);
  const base = path.join(tr.root, 'vmpool');
  fs.mkdirSync(base, { recursive: true });
  fs.writeFileSync(path.join(base, 'keeper'), '999999999:1'); // a keeper that is gone
  // another process holds the root's keeper lock (as a keeper that has not written its file yet)
  const lock = net.createServer();
  await new Promise<void>((resolve) => lock.listen({ path: keeperLockName(tr.root), exclusive: true }, resolve));
  try {
    const k = hull(tr.root, ['vm', 'pool', '--keep']);
    assert.notEqual(k.code, 0);
    assert.match(k.stderr, /a pool keeper already runs for/);
    assert.equal(fs.readFileSync(path.join(base, 'keeper'), 'utf8'), '999999999:1', 'the loser touches nothing');
  } finally {
    await new Promise((r) => lock.close(r));
  }
  // the lock free, the dead keeper's file is no obstacle
  const u = hull(tr.root, ['vm', 'pool', '--size', '1']);
  assert.equal(u.code, 0, u.stderr);
  assert.notEqual(state().keeper, '999999999:1');
  assert.equal(hull(tr.root, ['vm', 'pool', '--size', '0']).code, 0);
  assert.deepEqual(leftovers(), []);
});
