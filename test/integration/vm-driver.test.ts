/**
 * The VM wall driven directly (no engine): real QEMU, the guest kernel and agent from set-up,
 * the busybox rootfs as the only layer. Runs under TCG here (KVM where the host has it).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { createVmIsolation } from '../../src/runtime/vm/index.js';
import { vmCgroupDir, cgroupVersion } from '../../src/runtime/vm/cgroup.js';
import type { InstanceSpec, Isolation } from '../../src/runtime/types.js';
import { BUSYBOX_ROOTFS, makeTempRoot, REPO, type TempRoot, vmMissing } from '../helpers/hull.js';

const KERNEL = path.join(REPO, 'build', 'guest', 'vmlinux');
const missing = vmMissing() || (!fs.existsSync(BUSYBOX_ROOTFS) ? 'busybox rootfs missing (scripts/setup.sh)' : '');

let tr: TempRoot;
let layer: string;
let iso: Isolation;
let n = 0;

before(() => {
  if (missing) return;
  tr = makeTempRoot('hull-vmdrv-');
  layer = path.join(tr.root, 'layers', 'busybox');
  fs.mkdirSync(layer, { recursive: true });
  spawnSync('tar', ['-xf', BUSYBOX_ROOTFS, '-C', layer]);
  iso = createVmIsolation(tr.root);
});
after(() => tr?.cleanup());

function mkspec(args: string[], over: Partial<InstanceSpec['process']> = {}, more: Partial<InstanceSpec> = {}): InstanceSpec {
  const id = (Date.now().toString(16) + (n++).toString(16)).padEnd(64, 'c');
  const dir = path.join(tr.root, 'containers', id);
  fs.mkdirSync(dir, { recursive: true });
  return {
    id, name: `v${n}`, dir,
    image: { id: 'sha256:' + 'e'.repeat(64), lowerDirs: [layer], config: { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } } },
    process: { args, env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], cwd: '/', user: '', terminal: false, stdin: false, ...over },
    hostname: 'vmhost', resources: {}, readOnlyRootfs: false, mounts: [], network: 'none', capAdd: [], capDrop: [],
    noNewPrivileges: false, seccomp: 'default', ulimits: [], init: false, runtime: 'qemu', vm: { accel: 'auto' }, ...more,
  };
}

function sink(): Writable & { text(): string } {
  const chunks: Buffer[] = [];
  const w = new Writable({ write(c: Buffer, _e, cb) { chunks.push(c); cb(); } }) as Writable & { text(): string };
  w.text = () => Buffer.concat(chunks).toString('utf8');
  return w;
}

async function run(spec: InstanceSpec, stdin: Readable | null = null) {
  const out = sink();
  const err = sink();
  const exit = await iso.runAttached(spec, { stdin, stdout: out, stderr: err });
  return { exit, out: out.text(), err: err.text() };
}

function qemuFor(spec: InstanceSpec): number[] {
  const r = spawnSync('pgrep', ['-f', spec.dir]);
  return r.stdout.toString().split('\n').filter(Boolean).map(Number);
}

function assertGone(spec: InstanceSpec) {
  assert.deepEqual(qemuFor(spec), [], 'no QEMU left');
  const v = cgroupVersion();
  if (v) assert.equal(fs.existsSync(vmCgroupDir(v, tr.root, spec.id)), false, 'no cgroup left');
  assert.equal(fs.existsSync(path.join(spec.dir, 'vm')), false, 'no VM files left');
}

test('echo, exit code, stdout and stderr apart, the guest kernel', async (t) => {
  if (missing) return t.skip(missing);
  const s = mkspec(['sh', '-c', 'echo hello; echo oops >&2; uname -r; hostname; exit 7']);
  const r = await run(s);
  assert.equal(r.exit.exitCode, 7, r.exit.error);
  const [hello, release, host] = r.out.split('\n');
  assert.equal(hello, 'hello');
  assert.notEqual(release, os.release(), 'uname -r is the guest kernel, not the host');
  assert.match(release!, /^6\.\d+\.\d+/);
  assert.equal(host, 'vmhost');
  assert.equal(r.err, 'oops\n');
  await iso.cleanup(s);
  assertGone(s);
});

test('docker exit codes: 127 not found, 126 not executable, 128+N on a signal', async (t) => {
  if (missing) return t.skip(missing);
  const a = mkspec(['nosuchcmd']);
  await assert.rejects(run(a), (e: unknown) => (e as { exitCode?: number }).exitCode === 127 && /executable file not found/.test(String(e)));
  assertGone(a);
  const b = mkspec(['/etc/passwd']);
  await assert.rejects(run(b), (e: unknown) => (e as { exitCode?: number }).exitCode === 126);
  const c = mkspec(['sh', '-c', 'kill -TERM $$']);
  assert.equal((await run(c)).exit.exitCode, 143);
  for (const s of [a, b, c]) await iso.cleanup(s);
});

test('user, groups, env, working directory from the image, read-only root, tmpfs', async (t) => {
  if (missing) return t.skip(missing);
  const s = mkspec(['sh', '-c', 'id -u; id -g; echo $HOME $FOO; pwd; touch /x 2>/dev/null && echo rw || echo ro; touch /t/y && echo tmpfs-ok'],
    { user: 'nobody', cwd: '/tmp/work', env: ['PATH=/bin:/usr/bin', 'FOO=bar'] },
    { readOnlyRootfs: true, mounts: [{ type: 'tmpfs', destination: '/t', readOnly: false, options: ['mode=1777'] }] });
  const r = await run(s);
  assert.equal(r.exit.exitCode, 0, r.err);
  const pw = fs.readFileSync(path.join(layer, 'etc', 'passwd'), 'utf8').split('\n').find((l) => l.startsWith('nobody:'))!.split(':');
  assert.deepEqual(r.out.trim().split('\n'), [pw[2], pw[3], `${pw[5]} bar`, '/tmp/work', 'ro', 'tmpfs-ok']);
  const u = mkspec(['true'], { user: 'nosuchuser' });
  await assert.rejects(run(u), /unable to find user nosuchuser/);
  await iso.cleanup(s);
  await iso.cleanup(u);
});

test('stdin reaches the process, EOF included', async (t) => {
  if (missing) return t.skip(missing);
  const s = mkspec(['sh', '-c', 'wc -c; echo done'], { stdin: true });
  const input = new PassThrough();
  const p = run(s, input);
  input.end(Buffer.alloc(200_000, 'a'));
  const r = await p;
  assert.equal(r.exit.exitCode, 0);
  assert.deepEqual(r.out.trim().split(/\s+/), ['200000', 'done']);
  await iso.cleanup(s);
});

test('detached: state, exec (pipes and tty), log, stop; nothing left after cleanup', async (t) => {
  if (missing) return t.skip(missing);
  const s = mkspec(['sh', '-c', 'echo started; echo warn >&2; exec sleep 1000']);
  const { pid, facts } = await iso.startDetached(s);
  assert.ok(pid > 0);
  assert.ok(facts && (facts.accel === 'tcg' || facts.accel === 'kvm'));
  const st = await iso.state(s);
  assert.equal(st.running, true);
  const out = sink();
  const err = sink();
  const input = new PassThrough();
  const pending = iso.exec(s, { args: ['sh', '-c', 'cat; echo e >&2; exit 5'], env: ['PATH=/bin'], terminal: false, stdin: true }, { stdin: input, stdout: out, stderr: err });
  input.end('piped\n');
  const code = await pending;
  assert.equal(code, 5);
  assert.equal(out.text(), 'piped\n');
  assert.equal(err.text(), 'e\n');
  assert.equal(await iso.exec(s, { args: ['nosuch'], env: [], terminal: false, stdin: false }, { stdout: sink(), stderr: sink() }), 127);
  const tout = sink();
  assert.equal(await iso.exec(s, { args: ['sh', '-c', 'tty; exit 2'], env: ['PATH=/bin'], terminal: true, stdin: false }, { stdout: tout, stderr: sink() }), 2);
  assert.match(tout.text(), /^\/dev\/pts\/\d+\r?\n/);
  const u = await iso.usage(s);
  assert.ok(u.memoryBytes > 0);
  await iso.stop(s, 5);
  const end = await iso.state(s);
  assert.equal(end.running, false);
  assert.equal(!end.running && end.exit.exitCode, 143);
  const log = fs.readFileSync(path.join(s.dir, 'ctr.log'), 'utf8');
  assert.match(log, /^\d{4}-\d\d-\d\dT[\d:.]+Z stdout F started$/m);
  assert.match(log, /^\S+ stderr F warn$/m);
  await iso.cleanup(s);
  assertGone(s);
  assert.equal(fs.existsSync(s.dir), false);
});

test('a killed QEMU and a panicking guest are reported, and leave nothing', async (t) => {
  if (missing) return t.skip(missing);
  const s = mkspec(['sleep', '1000']);
  const { pid } = await iso.startDetached(s);
  process.kill(pid, 'SIGKILL');
  for (let i = 0; i < 100 && (await iso.state(s)).running; i++) await new Promise((r) => setTimeout(r, 50));
  const st = await iso.state(s);
  assert.equal(st.running, false);
  assert.equal(!st.running && st.exit.exitCode, 255);
  assert.match(!st.running ? st.exit.error ?? '' : '', /without an exit code/);
  await iso.cleanup(s);
  assertGone(s);
  // an initramfs without an init: the guest kernel panics, panic=-1 resets, QEMU exits
  const bad = path.join(tr.root, 'empty.cpio');
  fs.writeFileSync(bad, Buffer.alloc(512));
  process.env.HULL_VM_INITRAMFS = bad;
  try {
    const p = mkspec(['true']);
    const r = await run(p);
    assert.equal(r.exit.exitCode, 255);
    assert.match(r.exit.error ?? '', /failed to boot/);
    assertGone(p);
    await iso.cleanup(p);
  } finally {
    delete process.env.HULL_VM_INITRAMFS;
  }
});

test('bad input is refused before anything starts', async (t) => {
  if (missing) return t.skip(missing);
  const s = mkspec(['true'], {}, { network: 'host' });
  await assert.rejects(iso.runAttached(s, { stdout: sink(), stderr: sink() }), /--network host/);
  const m = mkspec(['true'], {}, { resources: { memoryBytes: 16 * 1024 * 1024 } });
  await assert.rejects(iso.runAttached(m, { stdout: sink(), stderr: sink() }), /too small/);
  await assert.rejects(iso.kill(m, 'SIGTERM'), /not running/);
  for (const x of [s, m]) {
    assertGone(x);
    await iso.cleanup(x);
  }
});
