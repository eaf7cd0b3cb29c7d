import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildQemuArgs, kernelCmdline, type QemuOptions } from '../../src/runtime/vm/qemu-args.js';

const base: QemuOptions = {
  kernel: '/k/vmlinux', initrd: '/r/initrd.cpio', disk: '/d/img.erofs', accel: 'tcg', tscKhz: 2445406,
  ports: { status: { kind: 'file', path: 'status' }, stdout: { kind: 'fd', fd: 8 }, stderr: { kind: 'fd', fd: 9 }, ctl: { kind: 'listen', path: 'ctl.sock' }, main: { kind: 'fd', fd: 7 } },
};

function after(a: string[], flag: string): string[] {
  return a.flatMap((x, i) => (x === flag ? [a[i + 1]!] : []));
}

test('microvm without ACPI, firmware or defaults; no reboot; sandboxed', () => {
  const a = buildQemuArgs(base);
  assert.equal(after(a, '-M')[0], 'microvm,acpi=off,pit=on,pic=on,rtc=on,isa-serial=off');
  for (const f of ['-nodefaults', '-no-user-config', '-no-reboot']) assert.ok(a.includes(f), f);
  assert.match(after(a, '-sandbox')[0]!, /^on,.*spawn=deny/);
  assert.ok(!a.includes('-netdev') && !a.includes('-nic') && !a.includes('-bios'));
  assert.deepEqual(after(a, '-m'), ['128']);
  assert.deepEqual(after(a, '-smp'), ['1']);
});

test('accelerator: TCG with a bounded code cache, or KVM with the host CPU', () => {
  assert.deepEqual(after(buildQemuArgs(base), '-accel'), ['tcg,tb-size=32']);
  assert.deepEqual(after(buildQemuArgs(base), '-cpu'), ['max,erms=off,fsrm=off']);
  const k = buildQemuArgs({ ...base, accel: 'kvm' });
  assert.deepEqual(after(k, '-accel'), ['kvm']);
  assert.deepEqual(after(k, '-cpu'), ['host']);
});

test('guest RAM: anonymous by default, or a memfd backend of the same size (4 KiB pages)', () => {
  const a = buildQemuArgs(base);
  assert.ok(!a.includes('-object'));
  assert.doesNotMatch(after(a, '-M')[0]!, /memory-backend/);
  const m = buildQemuArgs({ ...base, ramBackend: 'memfd', memoryMiB: 256 });
  assert.deepEqual(after(m, '-object'), ['memory-backend-memfd,id=ram,size=256M']);
  assert.match(after(m, '-M')[0]!, /^microvm,.*,memory-backend=ram$/);
  assert.deepEqual(after(m, '-m'), ['256']);
});

test('kernel command line: tuned, and never a "--" (microvm appends virtio_mmio.device=)', () => {
  const c = kernelCmdline({ accel: 'tcg', tscKhz: 2445406 });
  assert.match(c, /panic=-1/);
  assert.match(c, /tsc_early_khz=2445406/);
  assert.match(c, /noapictimer/);
  assert.match(c, /quiet/);
  assert.doesNotMatch(c, /(^| )--( |$)/);
  assert.doesNotMatch(c, /acpi=off/);
  assert.equal(after(buildQemuArgs(base), '-append')[0], kernelCmdline(base));
  assert.doesNotMatch(kernelCmdline({ accel: 'tcg' }), /tsc_early_khz/);
  assert.match(kernelCmdline({ accel: 'tcg', consoleLog: '/x' }), /console=ttyS0/);
  assert.match(c, /(^| )noreplace-smp( |$)/);
  assert.doesNotMatch(kernelCmdline({ accel: 'kvm', tscKhz: 2445406 }), /noreplace-smp/);
});

test('the image disk is read-only virtio-blk on MMIO; paths with commas are escaped', () => {
  const a = buildQemuArgs({ ...base, disk: '/d/a,b.erofs' });
  assert.deepEqual(after(a, '-drive'), ['if=none,id=root,file=/d/a,,b.erofs,format=raw,readonly=on']);
  assert.ok(after(a, '-device').includes('virtio-blk-device,drive=root'));
});

test('ports: one virtio-serial bus, each chardev kind, hull.main only when given', () => {
  const a = buildQemuArgs(base);
  const ch = after(a, '-chardev');
  assert.deepEqual(ch, ['file,id=p0,path=status', 'socket,id=p1,fd=8', 'socket,id=p2,fd=9', 'socket,id=p3,path=ctl.sock,server=on,wait=off', 'socket,id=p4,fd=7']);
  const dev = after(a, '-device');
  assert.ok(dev.includes('virtio-serial-device,max_ports=8'));
  for (const n of ['hull.status', 'hull.stdout', 'hull.stderr', 'hull.ctl', 'hull.main']) assert.ok(dev.some((d) => d.endsWith(`name=${n}`)), n);
  const d = buildQemuArgs({ ...base, ports: { ...base.ports, main: undefined, stdout: { kind: 'file', path: '/proc/self/fd/6', append: true }, stderr: { kind: 'null' } } });
  assert.ok(!after(d, '-device').some((x) => x.endsWith('name=hull.main')));
  assert.ok(after(d, '-chardev').includes('file,id=p1,path=/proc/self/fd/6,append=on'));
  assert.ok(after(d, '-chardev').includes('null,id=p2'));
});

test('volumes become 9p devices; bad tags, memory and cpus are refused', () => {
  const a = buildQemuArgs({ ...base, shares: [{ tag: 'v0', hostPath: '/srv/data', readOnly: true }] });
  assert.deepEqual(after(a, '-fsdev'), ['local,id=fs0,path=/srv/data,security_model=none,readonly=on']);
  assert.ok(after(a, '-device').includes('virtio-9p-device,fsdev=fs0,mount_tag=v0'));
  assert.throws(() => buildQemuArgs({ ...base, shares: [{ tag: 'a b', hostPath: '/x', readOnly: false }] }), /bad 9p tag/);
  assert.throws(() => buildQemuArgs({ ...base, memoryMiB: 16 }), /memoryMiB/);
  assert.throws(() => buildQemuArgs({ ...base, cpus: 0 }), /cpus/);
  assert.deepEqual(after(buildQemuArgs({ ...base, memoryMiB: 512, cpus: 2 }), '-m'), ['512']);
});
