import assert from 'node:assert/strict';
import { test } from 'node:test';
import { qemuNicArgs, tapFdArgv, tapName, tapScript, untapScript, type VmNic } from '../../src/network/vm-tap.js';
import { buildQemuArgs } from '../../src/runtime/vm/qemu-args.js';

const nic: VmNic = { ifname: 'eth0', tap: tapName(0), mtu: 1500, mac: '0a:58:0a:d6:00:02' };

test('tapScript: a tap with the veth MTU and a u32 match-all mirred redirect each way', () => {
  const s = tapScript([nic]).split('\n');
  assert.equal(s[0], 'set -e');
  assert.ok(s.includes('ip tuntap add dev tap0 mode tap vnet_hdr'));
  assert.ok(s.includes('ip link set dev tap0 mtu 1500 up'));
  assert.ok(s.includes('tc qdisc add dev eth0 handle ffff: ingress'));
  assert.ok(s.includes('tc filter add dev eth0 parent ffff: protocol all u32 match u8 0 0 action mirred egress redirect dev tap0'));
  assert.ok(s.includes('tc qdisc add dev tap0 handle ffff: ingress'));
  assert.ok(s.includes('tc filter add dev tap0 parent ffff: protocol all u32 match u8 0 0 action mirred egress redirect dev eth0'));
  assert.match(untapScript([nic]), /ip link del dev tap0/);
});

test('names, MACs and MTUs are checked before they reach a shell', () => {
  assert.throws(() => tapScript([{ ...nic, ifname: 'eth0; reboot' }]), /bad interface name/);
  assert.throws(() => tapScript([{ ...nic, tap: 'x'.repeat(16) }]), /bad tap name/);
  assert.throws(() => tapScript([{ ...nic, mac: 'zz:00:00:00:00:00' }]), /bad MAC/);
  assert.throws(() => tapScript([{ ...nic, mtu: 10 }]), /bad MTU/);
});

test('tapFdArgv numbers descriptors from firstFd; QEMU gets tap,fd=N,vhost=off and a virtio-net-device', () => {
  const two = [nic, { ...nic, ifname: 'eth1', tap: 'tap1', mac: '0a:58:0a:d6:01:02' }];
  const { argv, qemuNics } = tapFdArgv('/h/hull-tapfd', '/r/netns/x', two, 100);
  assert.deepEqual(argv, ['/h/hull-tapfd', '/r/netns/x', '100:tap0', '101:tap1', '--']);
  assert.deepEqual(qemuNics, [{ fd: 100, mac: nic.mac }, { fd: 101, mac: '0a:58:0a:d6:01:02' }]);
  assert.deepEqual(qemuNicArgs(qemuNics), [
    '-netdev', 'tap,id=net0,fd=100,vhost=off', '-device', 'virtio-net-device,netdev=net0,mac=0a:58:0a:d6:00:02',
    '-netdev', 'tap,id=net1,fd=101,vhost=off', '-device', 'virtio-net-device,netdev=net1,mac=0a:58:0a:d6:01:02',
  ]);
  assert.throws(() => tapFdArgv('/h', '/n', [nic], 2), /firstFd/);
});

test('buildQemuArgs: NICs only when given', () => {
  const base = {
    kernel: '/k', initrd: '/i', disk: '/d', accel: 'tcg' as const,
    ports: { status: { kind: 'null' as const }, stdout: { kind: 'null' as const }, stderr: { kind: 'null' as const }, ctl: { kind: 'null' as const } },
  };
  assert.ok(!buildQemuArgs(base).includes('-netdev'));
  const a = buildQemuArgs({ ...base, nics: [{ fd: 100, mac: nic.mac }] });
  assert.equal(a[a.indexOf('-netdev') + 1], 'tap,id=net0,fd=100,vhost=off');
  assert.equal(a[a.indexOf('-netdev') + 3], 'virtio-net-device,netdev=net0,mac=0a:58:0a:d6:00:02');
});
