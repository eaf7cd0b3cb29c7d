/**
 * What a microVM container changed (`--runtime hull-vm`, the VM wall), through `hull serve`
 * (docker 28 CLI and dockerode) and the hull CLI twins: diff, commit (--change, paused by
 * default, --pause=false, of a paused VM) and export, of a stopped VM (the layer its guest sent
 * at exit) and of a running one (sent on request); a committed VM image runs on both walls and
 * in podman (hull save);
 * bounds and a VM killed before it could send its layer give clear errors and leave nothing.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import Docker from 'dockerode';
import { HULL_BIN, hull, type TempRoot } from '../helpers/hull.js';
import { docker, serveForFile, type Serve } from './api-harness.js';
import { havePodman, podmanRunFlags, withPodman } from '../helpers/podman.js';

const haveQemu = spawnSync('qemu-system-x86_64', ['--version']).status === 0;
let tmp: TempRoot;
let s: Serve;
let d: Docker;
let dir: string;
const VM = { timeoutMs: 240_000 };
const CHANGE = 'mkdir /tmp/d; echo hi > /tmp/d/f; rm /bin/ls; echo extra >> /etc/passwd';
const EXPECTED = ['C /bin', 'D /bin/ls', 'C /etc', 'C /etc/passwd', 'C /tmp', 'A /tmp/d', 'A /tmp/d/f'];

const f = serveForFile('hull-api-changes-vm-', {
  ready: (srv, root) => {
    ({ s, tmp } = { s: srv, tmp: root });
    d = new Docker({ socketPath: s.socket });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-changes-vm-'));
    if (!haveQemu) return;
    const r = docker(s, ['run', '--runtime', 'hull-vm', '--name', 'vmch', 'busybox', 'sh', '-c', CHANGE], VM);
    assert.equal(r.code, 0, r.stderr);
  },
});
const skip = !f.have ? 'the docker CLI is not installed' : !haveQemu ? 'qemu-system-x86_64 is not installed' : false;

after(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const idOf = (name: string) => docker(s, ['inspect', '-f', '{{.Id}}', name]).stdout.trim();
const images = () => docker(s, ['images', '-q', '--no-trunc']).stdout.split('\n').filter(Boolean).sort();
/** What diff, commit and export made and left in the instance dir and the root's tmp (nothing half-made). */
function leftovers(name: string): string[] {
  const inst = path.join(tmp.root, 'containers', idOf(name));
  const mine = fs.existsSync(inst) ? fs.readdirSync(inst).filter((n) => n.startsWith('.layer-')) : [];
  return [...mine, ...fs.readdirSync(path.join(tmp.root, 'tmp')).filter((n) => n.startsWith('export-') || n.startsWith('guest-layer-'))];
}
function tarList(file: string): string[] {
  const r = spawnSync('tar', ['-tf', file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter(Boolean);
}

test('a stopped VM: docker diff, hull diff and dockerode changes from the layer its guest sent at exit', { skip }, async () => {
  const r = docker(s, ['diff', 'vmch']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split('\n'), EXPECTED);
  const h = hull(tmp.root, ['diff', 'vmch']);
  assert.equal(h.code, 0, h.stderr);
  assert.equal(h.stdout, r.stdout);
  const json = await d.getContainer('vmch').changes();
  assert.deepEqual(json.slice(0, 2), [{ Path: '/bin', Kind: 0 }, { Path: '/bin/ls', Kind: 2 }]);
  // unpacked once into the instance dir, the guest's tar gone
  const inst = path.join(tmp.root, 'containers', idOf('vmch'));
  assert.ok(fs.statSync(path.join(inst, 'layer')).isDirectory());
  assert.ok(!fs.existsSync(path.join(inst, 'layer.tar')));
  assert.deepEqual(leftovers('vmch'), []);
});

test('a stopped VM: docker commit with --change and hull commit; the image runs on both walls', { skip }, () => {
  const r = docker(s, ['commit', '-c', 'CMD ["cat","/tmp/d/f"]', '-c', 'ENV COMMITTED=vm', '-m', 'from a VM', 'vmch', 'vm/committed:1']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout.trim(), /^sha256:[0-9a-f]{64}$/);
  const img = JSON.parse(docker(s, ['image', 'inspect', 'vm/committed:1']).stdout)[0];
  const base = JSON.parse(docker(s, ['image', 'inspect', 'busybox']).stdout)[0];
  assert.deepEqual(img.RootFS.Layers.slice(0, -1), base.RootFS.Layers);
  assert.equal(img.Comment, 'from a VM');
  assert.ok(img.Config.Env.includes('COMMITTED=vm'));
  const onContainer = docker(s, ['run', '--rm', 'vm/committed:1']);
  assert.equal(onContainer.code, 0, onContainer.stderr);
  assert.equal(onContainer.stdout, 'hi\n');
  const onVm = docker(s, ['run', '--rm', '--runtime', 'hull-vm', 'vm/committed:1', 'sh', '-c', 'cat /tmp/d/f; tail -n1 /etc/passwd; ls /bin/ls 2>/dev/null || echo no-ls'], VM);
  assert.equal(onVm.code, 0, onVm.stderr);
  assert.equal(onVm.stdout, 'hi\nextra\nno-ls\n');
  // the hull twin, --change included; a bad change leaves no image
  const h = hull(tmp.root, ['commit', '-c', 'LABEL via=hull', 'vmch', 'vm/cli:1']);
  assert.equal(h.code, 0, h.stderr);
  assert.equal(JSON.parse(hull(tmp.root, ['image', 'inspect', 'vm/cli:1']).stdout)[0].Config.Labels.via, 'hull');
  const before = images();
  const bad = hull(tmp.root, ['commit', '-c', 'BOGUS x', 'vmch', 'vm/bad:1']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /BOGUS/);
  assert.deepEqual(images(), before);
  assert.deepEqual(leftovers('vmch'), []);
});

test('an image committed from a VM: hull save | podman load, and podman runs it', { skip }, (tt) => {
  if (!havePodman()) return tt.skip('podman is not installed (scripts/setup.sh installs it)');
  withPodman((g) => {
    const load = spawnSync('sh', ['-c', `"${HULL_BIN}" --root "${tmp.root}" save vm/committed:1 | podman ${g.map((a) => `'${a}'`).join(' ')} load`], { encoding: 'utf8', timeout: 300_000 });
    assert.equal(load.status, 0, load.stderr);
    const run = spawnSync('podman', [...g, 'run', '--rm', ...podmanRunFlags(), 'vm/committed:1'], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout, 'hi\n');
  });
});

test('a stopped VM: docker export and hull export, the image merged with the guest layer', { skip }, () => {
  const out = path.join(dir, 'vmch.tar');
  const r = docker(s, ['export', '-o', out, 'vmch']);
  assert.equal(r.code, 0, r.stderr);
  const list = tarList(out);
  assert.ok(list.includes('tmp/d/f'));
  assert.ok(list.includes('bin/sh'));
  assert.ok(!list.includes('bin/ls'));
  assert.ok(spawnSync('tar', ['-xOf', out, 'etc/passwd'], { encoding: 'utf8' }).stdout.endsWith('extra\n'));
  const viaCli = spawnSync('sh', ['-c', `"${HULL_BIN}" --root "${tmp.root}" export vmch | tar -t`], { encoding: 'utf8' });
  assert.equal(viaCli.status, 0, viaCli.stderr);
  assert.deepEqual(viaCli.stdout.split('\n').filter(Boolean).sort(), [...list].sort());
  assert.deepEqual(leftovers('vmch'), []);
});

test('a kept VM whose workload leaves a child behind: it ends with its own code, as a container does, and keeps its layer', { skip }, () => {
  // the child holds the workload's output pipes: the agent ends it with its main process
  const run = docker(s, ['run', '-d', '--runtime', 'hull-vm', '--name', 'vmbg', 'busybox', 'sh', '-c', 'echo kept > /kept; echo out; sleep 600 & exit 3'], VM);
  assert.equal(run.code, 0, run.stderr);
  const w = docker(s, ['wait', 'vmbg'], VM);
  assert.equal(w.stdout.trim(), '3', w.stderr);
  assert.equal(docker(s, ['logs', 'vmbg']).stdout, 'out\n');
  assert.match(docker(s, ['diff', 'vmbg']).stdout, /^A \/kept$/m);
  assert.equal(docker(s, ['rm', 'vmbg']).code, 0);
});

test('a running VM: diff, commit (paused by default, --pause=false, and of a paused VM) and export, sent by its guest on request', { skip }, async () => {
  const run = docker(s, ['run', '-d', '--runtime', 'hull-vm', '--name', 'vmlive', 'busybox', 'sh', '-c', 'sleep 600 & kill -STOP $!; echo $! > /stopped.pid; echo linked > /h1; ln /h1 /h2; echo made > /made; i=0; while true; do i=$((i+1)); echo $i > /tmp/c.new; mv /tmp/c.new /tmp/count; sleep 0.1; done'], VM);
  assert.equal(run.code, 0, run.stderr);
  let diff = '';
  for (let i = 0; i < 200 && !/^A \/tmp\/count$/m.test(diff); i++) diff = docker(s, ['diff', 'vmlive']).stdout;
  assert.match(diff, /^A \/made$/m);
  assert.match(diff, /^C \/tmp$/m);
  assert.equal(hull(tmp.root, ['diff', 'vmlive']).stdout.includes('A /made\n'), true);
  // a process its user stopped stays stopped: the commit's thaw continues only what it stopped
  // (the workload's own child: an exec's would be in an orphaned group, which the kernel continues)
  const stoppedPid = docker(s, ['exec', 'vmlive', 'cat', '/stopped.pid']).stdout.trim();
  assert.match(stoppedPid, /^\d+$/);
  const stateOf = (pid: string) => /^State:\s+(\S)/m.exec(docker(s, ['exec', 'vmlive', 'cat', `/proc/${pid}/status`]).stdout)?.[1];
  assert.equal(stateOf(stoppedPid), 'T');
  // docker's default: paused while the layer is read, running again afterwards
  const c = docker(s, ['commit', 'vmlive', 'vm/running:1']);
  assert.equal(c.code, 0, c.stderr);
  assert.equal(stateOf(stoppedPid), 'T', 'still stopped after the commit');
  let st = JSON.parse(docker(s, ['inspect', 'vmlive']).stdout)[0].State;
  assert.deepEqual([st.Running, st.Paused], [true, false]);
  // the counter is replaced by a rename, so any point in time (a commit's) holds a whole number
  const count = (ref: string) => Number(docker(s, ['run', '--rm', ref, 'cat', '/tmp/count']).stdout.trim());
  assert.equal(docker(s, ['run', '--rm', 'vm/running:1', 'cat', '/made']).stdout, 'made\n');
  // a hard link, in a copy made after others (each archive links only to its own paths)
  assert.equal(docker(s, ['run', '--rm', 'vm/running:1', 'sh', '-c', 'cat /h2; stat -c %h /h1']).stdout, 'linked\n2\n');
  const first = count('vm/running:1');
  assert.ok(first > 0);
  // its processes were continued: the counter goes on in the guest
  const later = () => Number(docker(s, ['exec', 'vmlive', 'cat', '/tmp/count']).stdout.trim());
  const a = later();
  let b = a;
  for (let i = 0; i < 100 && b === a; i++) b = later();
  assert.ok(b > a, `the guest's processes run again after the commit (${a} -> ${b})`);
  // --pause=false through dockerode's POST /commit, with a change
  const r = (await d.getContainer('vmlive').commit({ repo: 'vm/running', tag: '2', pause: false, changes: 'LABEL paused=no' })) as { Id: string };
  assert.match(r.Id, /^sha256:/);
  assert.equal((await d.getImage('vm/running:2').inspect()).Config.Labels?.paused, 'no');
  assert.ok(count('vm/running:2') >= first);
  const cliNoPause = docker(s, ['commit', '--pause=false', '-c', 'ENV FROM=cli', 'vmlive', 'vm/running:4']);
  assert.equal(cliNoPause.code, 0, cliNoPause.stderr);
  assert.ok(JSON.parse(docker(s, ['image', 'inspect', 'vm/running:4']).stdout)[0].Config.Env.includes('FROM=cli'));
  assert.ok(count('vm/running:4') >= first);
  // a paused VM: committed (its guest thawed for the copy), paused again
  assert.equal(docker(s, ['pause', 'vmlive']).code, 0);
  const p = docker(s, ['commit', 'vmlive', 'vm/running:3']);
  assert.equal(p.code, 0, p.stderr);
  st = JSON.parse(docker(s, ['inspect', 'vmlive']).stdout)[0].State;
  assert.deepEqual([st.Running, st.Paused], [true, true]);
  assert.equal(docker(s, ['unpause', 'vmlive']).code, 0);
  // export through dockerode and the hull twin; committed on the VM wall too
  const out = path.join(dir, 'vmlive.tar');
  await pipeline((await d.getContainer('vmlive').export()) as NodeJS.ReadableStream, fs.createWriteStream(out));
  const list = tarList(out);
  assert.ok(list.includes('made') && list.includes('tmp/count') && list.includes('bin/ls'));
  const cliOut = path.join(dir, 'vmlive-cli.tar');
  const ex = docker(s, ['export', '-o', cliOut, 'vmlive']);
  assert.equal(ex.code, 0, ex.stderr);
  assert.ok(tarList(cliOut).includes('made'));
  const viaCli = spawnSync('sh', ['-c', `"${HULL_BIN}" --root "${tmp.root}" export vmlive | tar -t`], { encoding: 'utf8' });
  assert.equal(viaCli.status, 0, viaCli.stderr);
  assert.ok(viaCli.stdout.split('\n').includes('made'));
  const h = hull(tmp.root, ['commit', '--pause=false', '-c', 'CMD ["cat","/made"]', 'vmlive', 'vm/running:cli']);
  assert.equal(h.code, 0, h.stderr);
  const onVm = docker(s, ['run', '--rm', '--runtime', 'hull-vm', 'vm/running:cli'], VM);
  assert.equal(onVm.stdout, 'made\n', onVm.stderr);
  assert.deepEqual(leftovers('vmlive'), []);
  // stopped at once (-t 0: the agent SIGKILLs the workload, not hull QEMU): the layer its guest
  // sent at exit, the same changes
  assert.equal(docker(s, ['stop', '-t', '0', 'vmlive']).code, 0);
  const stopped = docker(s, ['diff', 'vmlive']);
  assert.equal(stopped.code, 0, stopped.stderr);
  assert.match(stopped.stdout, /^A \/made$/m);
  const inst = path.join(tmp.root, 'containers', idOf('vmlive'));
  assert.equal(docker(s, ['rm', 'vmlive']).code, 0);
  assert.ok(!fs.existsSync(inst), 'rm removes the kept layer with the instance');
});

test('bounds and failures: an oversized layer, a VM killed before it sent its layer; clear errors, nothing left', { skip }, () => {
  const run = docker(s, ['run', '-d', '--runtime', 'hull-vm', '--name', 'vmbig', 'busybox', 'sh', '-c', 'dd if=/dev/zero of=/big bs=1k count=64 2>/dev/null; touch /ready; sleep 600'], VM);
  assert.equal(run.code, 0, run.stderr);
  for (let i = 0; i < 200 && !docker(s, ['diff', 'vmbig']).stdout.includes('A /ready'); i++);
  const before = images();
  const big = hull(tmp.root, ['commit', 'vmbig', 'vm/big:1'], { env: { HULL_VM_LAYER_MAX_BYTES: '16384' } });
  assert.notEqual(big.code, 0);
  assert.match(big.stderr, /exceeds the bound of 16384 bytes \(HULL_VM_LAYER_MAX_BYTES\)/);
  assert.deepEqual(images(), before);
  assert.deepEqual(leftovers('vmbig'), []);
  assert.equal(JSON.parse(docker(s, ['inspect', 'vmbig']).stdout)[0].State.Running, true, 'the VM runs on, thawed');
  assert.equal(docker(s, ['exec', 'vmbig', 'echo', 'alive']).stdout, 'alive\n');
  // QEMU killed: no exit, so no layer; diff says why
  const pid = Number(docker(s, ['inspect', '-f', '{{.State.Pid}}', 'vmbig']).stdout.trim());
  assert.ok(pid > 0);
  process.kill(pid, 'SIGKILL');
  let st = '';
  for (let i = 0; i < 200 && st !== 'exited'; i++) st = docker(s, ['inspect', '-f', '{{.State.Status}}', 'vmbig']).stdout.trim();
  assert.equal(st, 'exited');
  const r = docker(s, ['diff', 'vmbig']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /runs in a microVM: VM [0-9a-f]{12}: no writable layer: the guest could not send it: the VM ended without an exit/);
  const inst = path.join(tmp.root, 'containers', idOf('vmbig'));
  assert.deepEqual(fs.readdirSync(inst).filter((n) => n.startsWith('layer') && n !== 'layer.tar.err' || n.startsWith('.layer-')), [], 'no partial layer');
  assert.equal(docker(s, ['rm', 'vmbig']).code, 0);
  assert.ok(!fs.existsSync(inst));
});
