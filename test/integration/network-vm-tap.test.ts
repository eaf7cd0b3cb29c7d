/**
 * The VM NIC mechanism on real kernel objects, without a VM: a test-made namespace with a veth
 * (its peer in a second test-made namespace), attachVmTaps makes the tap and the tc mirrors, and
 * hull-tapfd hands the tap to a program standing in for QEMU. That program answers the peer's
 * ARP request through the tap and then receives the UDP datagram the peer sends: both directions
 * of the mirror carry frames. Only addresses inside the two test namespaces are used.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { attachVmTaps, detachVmTaps, tapFdArgv, tapFdHelper, type VmNic } from '../../src/network/vm-tap.js';

const sh = (cmd: string) => spawnSync('sh', ['-c', cmd], { encoding: 'utf8' });
const missing = process.getuid?.() !== 0 ? 'needs root' : !fs.existsSync('/dev/net/tun') ? 'no /dev/net/tun' : '';

let dir = '';
let vm = '';
let peer = '';
const tag = crypto.randomBytes(3).toString('hex');
const MAC = '0a:58:0a:fe:fe:02';

before(() => {
  if (missing) return;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-vmtap-'));
  vm = path.join(dir, 'vm');
  peer = path.join(dir, 'peer');
  for (const f of [vm, peer]) {
    fs.writeFileSync(f, '');
    assert.equal(sh(`unshare --net=${f} true`).status, 0);
  }
  // the veth is made in the host namespace under a test-unique name and moved at once
  const r = sh(
    `ip link add hvt${tag}a type veth peer name hvt${tag}b && ip link set hvt${tag}a netns ${vm} && ip link set hvt${tag}b netns ${peer} && ` +
      `nsenter --net=${vm} sh -c 'ip link set hvt${tag}a name eth0 && ip link set eth0 address ${MAC} up' && ` +
      `nsenter --net=${peer} sh -c 'ip link set hvt${tag}b name eth0 && ip addr add 10.254.254.1/24 dev eth0 && ip link set eth0 up'`,
  );
  assert.equal(r.status, 0, r.stderr);
});

after(() => {
  if (!dir) return;
  for (const f of [vm, peer]) sh(`umount ${f}`);
  fs.rmSync(dir, { recursive: true, force: true });
  assert.equal(sh(`ip -br link | grep hvt${tag}`).stdout, '');
});

/** Stands in for QEMU: on fd 100 (the tap, with a 10-byte virtio-net header per frame) it answers
 * ARP for 10.254.254.2 and prints the payload of the first UDP datagram to port 9. */
const FAKE_GUEST = `
const fs = require('fs');
const mac = Buffer.from('${MAC.replace(/:/g, '')}', 'hex');
const ip = Buffer.from([10, 254, 254, 2]);
const buf = Buffer.alloc(65536 + 10);
for (;;) {
  const n = fs.readSync(100, buf, 0, buf.length, null);
  const f = buf.subarray(10, n);
  const type = f.readUInt16BE(12);
  if (type === 0x0806 && f.readUInt16BE(20) === 1 && f.subarray(38, 42).equals(ip)) {
    const arp = Buffer.alloc(28);
    arp.writeUInt16BE(1, 0); arp.writeUInt16BE(0x0800, 2); arp[4] = 6; arp[5] = 4; arp.writeUInt16BE(2, 6);
    mac.copy(arp, 8); ip.copy(arp, 14); f.subarray(22, 28).copy(arp, 18); f.subarray(28, 32).copy(arp, 24);
    const eth = Buffer.concat([f.subarray(6, 12), mac, Buffer.from([0x08, 0x06]), arp]);
    fs.writeSync(100, Buffer.concat([Buffer.alloc(10), eth]));
  } else if (type === 0x0800 && f[23] === 17 && f.readUInt16BE(14 + (f[14] & 15) * 4 + 2) === 9) {
    const udp = 14 + (f[14] & 15) * 4;
    process.stdout.write(f.subarray(udp + 8, udp + f.readUInt16BE(udp + 4)).toString());
    process.exit(0);
  }
}`;

test('a tap mirrored to the veth carries frames both ways, opened by hull-tapfd for an unprivileged program', async (t) => {
  if (missing) return t.skip(missing);
  const nic: VmNic = { ifname: 'eth0', tap: 'tap0', mtu: 1500, mac: MAC };
  await attachVmTaps(vm, [nic]);
  const filters = sh(`nsenter --net=${vm} tc filter show dev eth0 ingress`).stdout;
  assert.match(filters, /mirred \(Egress Redirect to device tap0\)/);
  assert.match(sh(`nsenter --net=${vm} tc filter show dev tap0 ingress`).stdout, /Egress Redirect to device eth0/);

  const { argv } = tapFdArgv(tapFdHelper(), vm, [nic], 100);
  // the program runs as nobody in the host's namespace: it could not open the tap itself
  const guest = spawn(argv[0]!, [...argv.slice(1), 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', FAKE_GUEST], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  guest.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  guest.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const done = new Promise<number | null>((r) => guest.on('close', r));
  // the tap has a carrier once hull-tapfd attached it (before that, mirred drops frames to it)
  for (let i = 0; i < 200 && !/tap0\s+UP/.test(sh(`nsenter --net=${vm} ip -br link show tap0`).stdout); i++) await new Promise((r) => setTimeout(r, 25));
  const send = `require('dgram').createSocket('udp4').send('through the tap', 9, '10.254.254.2', (e, s) => process.exit(e ? 1 : 0))`;
  const sent = spawnSync('nsenter', [`--net=${peer}`, process.execPath, '-e', send], { encoding: 'utf8' });
  assert.equal(sent.status, 0, sent.stderr);
  const timer = setTimeout(() => guest.kill('SIGKILL'), 15_000);
  const code = await done;
  clearTimeout(timer);
  assert.equal(code, 0, err);
  assert.equal(out, 'through the tap');
  assert.match(sh(`nsenter --net=${peer} ip neigh show 10.254.254.2`).stdout, new RegExp(MAC));

  await detachVmTaps(vm, [nic]);
  assert.doesNotMatch(sh(`nsenter --net=${vm} ip -br link`).stdout, /tap0/);
  assert.equal(sh(`nsenter --net=${vm} tc qdisc show dev eth0 ingress`).stdout.trim(), '');
});

test('hull-tapfd refuses a tap that does not exist, with a message, exit 125', (t) => {
  if (missing) return t.skip(missing);
  const r = spawnSync(tapFdHelper(), [vm, '100:nosuchtap', '--', 'true'], { encoding: 'utf8' });
  assert.equal(r.status, 125);
  assert.match(r.stderr, /attach tap nosuchtap/);
});
