/**
 * The lifecycle suite every wall passes: the same commands, the same expectations.
 * Adding a wall is one line in WALLS.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { hull, importBusybox, makeTempRoot, mountsUnder, type TempRoot, processesMentioning } from '../helpers/hull.js';
import { containerCgroupPath, detectCgroupLayout, existingCgroupDirs } from '../../src/runtime/container/cgroups.js';
import type { Wall } from '../../src/runtime/types.js';

const WALLS: Wall[] = ['container', 'vm'];

/** Processes whose command line mentions `needle` (conmon, runtime, QEMU of this root). */
/** Wait until nothing of this root runs any more (exit hooks may take a moment). */
async function noProcesses(root: string, timeoutMs = 15_000): Promise<string[]> {
  const end = Date.now() + timeoutMs;
  let left = processesMentioning(root);
  while (left.length && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 100));
    left = processesMentioning(root);
  }
  return left;
}

function assertNothingLeft(root: string, ids: string[]): void {
  assert.deepEqual(mountsUnder(root), [], 'mounts left');
  const layout = detectCgroupLayout();
  for (const id of ids) assert.deepEqual(existingCgroupDirs(layout, containerCgroupPath(root, id)), [], `cgroup of ${id} left`);
  const cdir = path.join(root, 'containers');
  assert.deepEqual(fs.existsSync(cdir) ? fs.readdirSync(cdir) : [], [], 'container directories left');
}

for (const wall of WALLS) {
  describe(`lifecycle (${wall})`, { timeout: 600_000 }, () => {
    let tr: TempRoot;
    const h = (...args: string[]) => hull(tr.root, args);
    const run = (...args: string[]) => h('run', '--isolation', wall, ...args);

    before(() => {
      tr = makeTempRoot(`hull-life-${wall}-`);
      importBusybox(tr.root);
    });
    after(async () => {
      const ids = h('ps', '-aq', '--no-trunc').stdout.split('\n').filter(Boolean);
      if (ids.length) h('rm', '-f', ...ids);
      const left = await noProcesses(tr.root);
      tr.cleanup();
      assert.deepEqual(left, [], 'processes left at the end');
    });

    test('run --rm echo hello, exit codes 0, 7, 127, 126', () => {
      const r = run('--rm', 'busybox', 'echo', 'hello');
      assert.equal(r.stdout, 'hello\n', r.stderr);
      assert.equal(r.code, 0);
      assert.equal(run('--rm', 'busybox', 'sh', '-c', 'exit 7').code, 7);
      const nf = run('--rm', 'busybox', 'nope');
      assert.equal(nf.code, 127);
      assert.match(nf.stderr, /executable file not found in \$PATH/);
      const ne = run('--rm', 'busybox', '/etc/passwd');
      assert.equal(ne.code, 126);
      assert.match(ne.stderr, /permission denied/);
      assert.equal(run('--rm', '--bogus', 'busybox').code, 125);
      assertNothingLeft(tr.root, []);
    });

    test('stdout and stderr stay apart; stdin with -i', () => {
      const r = run('--rm', 'busybox', 'sh', '-c', 'echo out; echo err >&2');
      assert.equal(r.stdout, 'out\n');
      assert.equal(r.stderr, 'err\n');
      const i = hull(tr.root, ['run', '--isolation', wall, '--rm', '-i', 'busybox', 'sh', '-c', 'tr a-z A-Z'], { input: 'piped\n' });
      assert.equal(i.stdout, 'PIPED\n');
    });

    test('detached: ps, logs, exec, stop, inspect, start, restart, kill, wait, rm', async () => {
      const d = run('-d', '--name', `life-${wall}`, 'busybox', 'sh', '-c', 'echo started; trap "echo bye; exit 0" TERM; while true; do sleep 0.1; done');
      assert.equal(d.code, 0, d.stderr);
      const id = d.stdout.trim();
      assert.match(id, /^[0-9a-f]{64}$/);
      const ps = h('ps', '--format', 'json');
      const listed = ps.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { ID: string; Names: string; State: string });
      assert.ok(listed.some((c) => c.ID === id.slice(0, 12) && c.Names === `life-${wall}` && c.State === 'running'));
      assert.deepEqual(h('ps', '-q').stdout.trim().split('\n'), [id.slice(0, 12)]);
      const tableLines = h('ps').stdout.split('\n');
      assert.match(tableLines[0]!, /\bSTATUS\s+WALL\s+PORTS\s+NAMES$/);
      assert.match(tableLines.find((l) => l.startsWith(id.slice(0, 12)))!, new RegExp(`\\s${wall}\\s+life-${wall}$`), 'ps shows the wall');
      for (let i = 0; i < 50 && !h('logs', id).stdout.includes('started'); i++) await new Promise((r) => setTimeout(r, 100));
      assert.equal(h('logs', id).stdout, 'started\n');
      assert.match(h('logs', '-t', id).stdout, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z started\n$/);
      const ex = h('exec', '-e', 'X=1', '-w', '/tmp', id, 'sh', '-c', 'echo $X $(pwd); exit 3');
      assert.equal(ex.stdout, '1 /tmp\n');
      assert.equal(ex.code, 3);
      assert.equal(h('exec', id, 'nope').code, 127);
      assert.equal(h('exec', '-u', 'nobody', id, 'id', '-u').stdout, '65534\n');
      let insp = JSON.parse(h('inspect', id).stdout)[0];
      assert.equal(insp.State.Status, 'running');
      assert.equal(insp.State.Running, true);
      assert.ok(insp.State.Pid > 0);
      assert.equal(insp.HostConfig.Isolation, wall);
      assert.equal(insp.Name, `/life-${wall}`);
      const stats = h('stats', '--no-stream', id);
      assert.equal(stats.code, 0);
      assert.match(stats.stdout, new RegExp(`${id.slice(0, 12)}\\s+life-${wall}`));
      assert.equal(h('stop', '-t', '5', id).code, 0);
      insp = JSON.parse(h('inspect', id).stdout)[0];
      assert.equal(insp.State.Status, 'exited');
      assert.equal(insp.State.ExitCode, 0, 'the TERM trap ran');
      assert.equal(insp.State.OOMKilled, false);
      assert.notEqual(insp.State.FinishedAt, '0001-01-01T00:00:00Z');
      assert.equal(h('logs', '--tail', '1', id).stdout, 'bye\n');
      assert.equal(h('ps', '-q').stdout, '');
      assert.ok(h('ps', '-a', '-q').stdout.includes(id.slice(0, 12)));
      assert.equal(h('start', id).code, 0);
      assert.equal(JSON.parse(h('inspect', id).stdout)[0].State.Running, true);
      assert.equal(h('restart', '-t', '5', id).code, 0);
      insp = JSON.parse(h('inspect', id).stdout)[0];
      assert.equal(insp.State.Running, true);
      assert.equal(insp.RestartCount, 1);
      assert.equal(h('kill', '-s', 'KILL', id).code, 0);
      assert.equal(h('wait', id).stdout, '137\n');
      assert.equal(h('kill', id).code, 1, 'kill of a stopped container fails');
      assert.equal(h('rm', id).code, 0);
      assert.equal(h('inspect', id).code, 1);
      assert.deepEqual(await noProcesses(tr.root), []);
      assertNothingLeft(tr.root, [id]);
    });

    test('rm refuses a running container without -f; rm -f kills it and leaves nothing', async () => {
      const id = run('-d', 'busybox', 'sleep', '1000').stdout.trim();
      const r = h('rm', id);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /cannot remove a running container/);
      assert.equal(h('rm', '-f', id).code, 0);
      assert.deepEqual(await noProcesses(tr.root), []);
      assertNothingLeft(tr.root, [id]);
    });

    test('exit code and output of a detached container are recorded; wait and logs -f', () => {
      const id = run('-d', 'busybox', 'sh', '-c', 'for i in 1 2 3; do echo line$i; sleep 0.2; done; exit 5').stdout.trim();
      const f = h('logs', '-f', id);
      assert.equal(f.stdout, 'line1\nline2\nline3\n');
      assert.equal(h('wait', id).stdout, '5\n');
      assert.equal(JSON.parse(h('inspect', id).stdout)[0].State.ExitCode, 5);
      h('rm', id);
    });

    test('attached run without --rm is recorded like docker (inspect, logs)', () => {
      const r = run('--name', `fg-${wall}`, 'busybox', 'sh', '-c', 'echo fg; exit 4');
      assert.equal(r.code, 4);
      assert.equal(r.stdout, 'fg\n');
      const insp = JSON.parse(h('inspect', `fg-${wall}`).stdout)[0];
      assert.equal(insp.State.Status, 'exited');
      assert.equal(insp.State.ExitCode, 4);
      assert.equal(h('logs', `fg-${wall}`).stdout, 'fg\n');
      const dup = run('--name', `fg-${wall}`, 'busybox', 'true');
      assert.equal(dup.code, 125);
      assert.match(dup.stderr, /is already in use/);
      assert.equal(h('container', 'prune', '-f').code, 0);
      assert.equal(h('ps', '-aq').stdout, '');
    });

    test('-m 128m is enforced: 200 MiB allocation exits 137 with OOMKilled (attached and detached)', () => {
      const hog = 'x=$(head -c 200000000 /dev/zero | tr "\\0" a); echo len=${#x}';
      const fg = run('--name', `oom-fg-${wall}`, '-m', '128m', 'busybox', 'sh', '-c', hog);
      assert.equal(fg.code, 137, fg.stderr);
      let insp = JSON.parse(h('inspect', `oom-fg-${wall}`).stdout)[0];
      assert.equal(insp.State.OOMKilled, true);
      assert.equal(insp.State.ExitCode, 137);
      assert.equal(insp.HostConfig.Memory, 134217728);
      const id = run('-d', '-m', '128m', 'busybox', 'sh', '-c', hog).stdout.trim();
      assert.equal(h('wait', id).stdout, '137\n');
      insp = JSON.parse(h('inspect', id).stdout)[0];
      assert.equal(insp.State.OOMKilled, true);
      // attached to stdin (-i): hull runs it itself, no monitor; the kill is still recorded
      const fgi = hull(tr.root, ['run', '--isolation', wall, '-i', '--name', `oom-fgi-${wall}`, '-m', '128m', 'busybox', 'sh', '-c', hog], { input: '' });
      assert.equal(fgi.code, 137, fgi.stderr);
      insp = JSON.parse(h('inspect', `oom-fgi-${wall}`).stdout)[0];
      assert.equal(insp.State.OOMKilled, true);
      const ok = run('--rm', '-m', '128m', 'busybox', 'sh', '-c', 'x=$(head -c 20000000 /dev/zero | tr "\\0" a); echo len=${#x}');
      assert.equal(ok.stdout, 'len=20000000\n');
      h('rm', '-f', id, `oom-fg-${wall}`, `oom-fgi-${wall}`);
    });
  });
}
