import assert from 'node:assert/strict';
import { test } from 'node:test';
import { accelFromFacts } from '../../src/runtime/vm/accel.js';
import { exitFromStatus, VmStartError } from '../../src/runtime/vm/attached.js';
import { joinCommand, vmCgroupDir } from '../../src/runtime/vm/cgroup.js';
import { rootKey } from '../../src/paths.js';
import { ctlAddress } from '../../src/runtime/vm/control.js';
import { guestRunSpec, shq, unsupported } from '../../src/runtime/vm/launch.js';
import { encodeFrame, T } from '../../src/runtime/vm/protocol.js';
import { qemuLaunchScript } from '../../src/runtime/vm/qemu-args.js';
import { vmDiskPath } from '../../src/snapshots/vmdisk.js';
import type { InstanceSpec } from '../../src/runtime/types.js';

function spec(over: Partial<InstanceSpec> = {}): InstanceSpec {
  return {
    id: 'a'.repeat(64), name: 'v1', dir: '/r/containers/' + 'a'.repeat(64),
    image: { id: 'sha256:' + 'b'.repeat(64), lowerDirs: ['/l/1'], config: { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } } },
    process: { args: ['echo', 'hi'], env: ['PATH=/bin'], cwd: '/', user: '', terminal: false, stdin: false },
    hostname: 'abc', resources: {}, readOnlyRootfs: false, mounts: [], network: 'none', capAdd: [], capDrop: [],
    noNewPrivileges: false, seccomp: 'default', ulimits: [], init: false, runtime: 'crun', ...over,
  };
}

test('accelerator from host facts: KVM only with kvm_intel/kvm_amd, a probe for other /dev/kvm providers', () => {
  assert.deepEqual(accelFromFacts({ devKvm: false, modules: [] }), { accel: 'tcg', reason: 'no /dev/kvm: QEMU TCG (software emulation)' });
  assert.equal((accelFromFacts({ devKvm: true, modules: ['kvm', 'kvm_intel'] }) as { accel: string }).accel, 'kvm');
  assert.equal((accelFromFacts({ devKvm: true, modules: ['kvm', 'kvm_amd'] }) as { accel: string }).accel, 'kvm');
  assert.equal(accelFromFacts({ devKvm: true, modules: ['kvm', 'kvm_pvm'] }), 'probe');
});

const exitFrame = (code: number, reason = '', oom = false) => {
  const b = Buffer.alloc(5);
  b[4] = oom ? 1 : 0;
  b.writeInt32LE(code, 0);
  return encodeFrame(T.EXIT, 0, Buffer.concat([b, Buffer.from(reason)]));
};
const ready = encodeFrame(T.READY, 0, Buffer.from([5, 0, 0, 0]));
const none = { killedByHull: false, oomKilled: false, qemuErr: '' };

test('exit from the status file: code, start failures, kills, panics, boot failures', () => {
  assert.deepEqual(exitFromStatus(Buffer.concat([ready, exitFrame(7)]), none), { exitCode: 7, oomKilled: false });
  assert.throws(() => exitFromStatus(exitFrame(127, 'exec: "x": executable file not found in $PATH'), none), (e: unknown) => e instanceof VmStartError && e.exitCode === 127);
  assert.deepEqual(exitFromStatus(ready, { ...none, killedByHull: true }), { exitCode: 137, oomKilled: false });
  const panic = exitFromStatus(ready, none);
  assert.equal(panic.exitCode, 255);
  assert.match(panic.error!, /without an exit code/);
  const boot = exitFromStatus(Buffer.alloc(0), { ...none, qemuErr: 'qemu: could not load kernel' });
  assert.match(boot.error!, /failed to boot: qemu: could not load kernel/);
  assert.equal(exitFromStatus(ready, { ...none, oomKilled: true }).oomKilled, true);
  assert.deepEqual(exitFromStatus(Buffer.concat([ready, exitFrame(137, '', true)]), none), { exitCode: 137, oomKilled: true });
});

test('what a VM refuses: host network, single-file volumes', () => {
  assert.deepEqual(unsupported(spec()), []);
  assert.match(unsupported(spec({ network: 'host' }))[0]!, /--network host/);
  assert.match(unsupported(spec({ mounts: [{ type: 'bind', source: '/etc/hostname', destination: '/h', readOnly: true }] }))[0]!, /directories only/);
  assert.deepEqual(unsupported(spec({ runtime: 'qemu' })), [], 'the OCI runtime is ignored by the VM wall');
});

test('guest spec from an InstanceSpec: attached vs detached, mounts, read-only', () => {
  const s = spec({ readOnlyRootfs: true, mounts: [{ type: 'tmpfs', destination: '/t', readOnly: false, options: ['size=1m', 'mode=1777'] }, { type: 'bind', source: '/srv', destination: '/data', readOnly: true }] });
  const a = guestRunSpec(s, { attached: true, rows: 30, cols: 100 });
  assert.equal(a.mainPort, true);
  assert.equal(a.logFormat, false);
  assert.equal(a.readOnly, true);
  assert.deepEqual(a.tmpfs, [{ destination: '/t', options: 'size=1m,mode=1777' }]);
  assert.deepEqual(a.shares, [{ tag: 'v0', destination: '/data', readOnly: true }]);
  assert.equal(a.rows, 30);
  const d = guestRunSpec(s, { attached: false });
  assert.equal(d.mainPort, false);
  assert.equal(d.logFormat, true);
  assert.ok(typeof d.clockNs === 'bigint' && d.clockNs > 0n);
  // the writable layer: at any exit for a kept container, after a zero exit for a build step, never with --rm
  assert.equal(d.layer, 'exit');
  assert.equal(guestRunSpec({ ...s, autoRemove: true }, { attached: false }).layer, undefined);
  assert.equal(guestRunSpec({ ...s, autoRemove: true, captureLayer: true }, { attached: true }).layer, 'success');
});

test('paths: cgroup per version, disk per image id, control socket fallback for long paths', () => {
  const key = rootKey('/r');
  assert.match(key, /^[0-9a-f]{12}$/);
  assert.notEqual(rootKey('/r2'), key, 'each root its own parent');
  assert.equal(vmCgroupDir(1, '/r', 'x'), `/sys/fs/cgroup/memory/hull-vm/${key}/x`);
  assert.equal(vmCgroupDir(2, '/r', 'x'), `/sys/fs/cgroup/hull-vm/${key}/x`);
  // v1: the shell moves its one thread ("0" = itself) through tasks; v2: its pid into cgroup.procs
  assert.deepEqual(joinCommand({ version: 1, dir: '/c/x' }), { file: '/c/x/tasks', word: '0' });
  assert.deepEqual(joinCommand({ version: 2, dir: '/c/x' }), { file: '/c/x/cgroup.procs', word: '$$' });
  assert.equal(vmDiskPath('/r', 'sha256:' + 'c'.repeat(64)), `/r/vmdisks/${'c'.repeat(64)}.erofs`);
  assert.throws(() => vmDiskPath('/r', 'sha256:../../etc'), /bad image id/);
  assert.equal(ctlAddress('/short/ctl.sock', 42), '/short/ctl.sock');
  assert.equal(ctlAddress('/' + 'x'.repeat(120) + '/ctl.sock', 42), '/proc/42/cwd/ctl.sock');
  assert.equal(shq("it's"), `'it'\\''s'`);
});

test('the QEMU launch script: only QEMU joins the cgroup; a monitor shell records its pid and status, then runs what follows', async () => {
  const { spawnSync } = await import('node:child_process');
  const fs = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const plain = qemuLaunchScript({ cgroup: { version: 1, dir: "/c/it's" }, mux: ['setpriv', '/b/hull-vmmux'] });
  assert.equal(plain, `echo 0 > '/c/it'\\''s/tasks' || exit 125; 'setpriv' '/b/hull-vmmux' ctl.sock exec.sock </dev/null >/dev/null & exec "$@"`);
  // run for real, QEMU played by a shell that exits 3: the monitor writes the pid and "3", then goes on
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-launch-'));
  try {
    const script = qemuLaunchScript({ monitor: { pidFile: path.join(d, 'pid'), rcFile: path.join(d, 'rc'), then: 'echo then' } });
    const r = spawnSync('sh', ['-c', script, 'hull-vm', 'sh', '-c', 'echo qemu $$; exit 3'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const [qemuLine, then] = r.stdout.trim().split('\n');
    assert.equal(then, 'then');
    assert.equal(`qemu ${fs.readFileSync(path.join(d, 'pid'), 'utf8').trim()}`, qemuLine, 'the pid file names the process that ran');
    assert.equal(fs.readFileSync(path.join(d, 'rc'), 'utf8'), '3\n');
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
});
