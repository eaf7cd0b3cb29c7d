/**
 * Networking of the VM wall: a virtio-net NIC mirrored to the veth of a prepared namespace
 * (Kata's model), configured by the guest agent; -p reaches a server inside the VM as it reaches
 * one in a container; on a user network a container and a VM fetch from each other by name;
 * --network none has no NIC at all; what a VM cannot do is refused; a VM that does not boot
 * leaves no network behind. Traffic only to 127.0.0.1 and the root's own bridges.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { hull, importBusybox, makeTempRoot, type TempRoot, vmMissing } from '../helpers/hull.js';
import { assertNoNetwork, hullOk, removeAllNetworked, freePort, httpdScript, httpGet, netState, WAIT_SERVING } from '../helpers/net.js';

const missing = vmMissing();

let tr: TempRoot;
const h = (...a: string[]) => hull(tr.root, a);
const ok = (...a: string[]) => hullOk(tr.root, a);

before(() => {
  if (missing) return;
  tr = makeTempRoot('hull-netvm-');
  importBusybox(tr.root);
});

after(async () => {
  if (!tr) return;
  await removeAllNetworked(tr.root);
  tr.cleanup();
});

test('the guest gets the veth\'s address, MAC, MTU, routes and /etc files; --network none has no NIC', (t) => {
  if (missing) return t.skip(missing);
  const out = ok('run', '--rm', '--vm', '--add-host', 'db:10.1.2.3', 'busybox', 'sh', '-c', 'ls /sys/class/net; cat /sys/class/net/eth0/address /sys/class/net/eth0/mtu; ip -o -4 addr show eth0; ip route; cat /etc/hosts /etc/resolv.conf');
  assert.match(out, /^eth0$/m);
  assert.match(out, /^02:42:0a:d[67]:[0-9a-f]{2}:[0-9a-f]{2}$/m, 'the MAC hull gave the veth');
  assert.match(out, /^1500$/m);
  assert.match(out, /inet 10\.21[45]\.\d+\.\d+\/24/);
  assert.match(out, /^default via 10\.21[45]\.\d+\.1 dev eth0/m);
  assert.match(out, /^10\.1\.2\.3\tdb$/m);
  assert.doesNotMatch(out, /nameserver 127\./);
  assert.equal(ok('run', '--rm', '--vm', '--network', 'none', 'busybox', 'ls', '/sys/class/net'), 'lo');
});

test('-p reaches a server inside the VM; hull port and inspect say where', async (t) => {
  if (missing) return t.skip(missing);
  const port = await freePort();
  const id = ok('run', '-d', '--vm', '-p', `127.0.0.1:${port}:80`, '-p', '8080', 'busybox', 'sh', '-c', httpdScript('from-the-vm'));
  assert.equal((await httpGet('127.0.0.1', port, 60_000)).trim(), 'from-the-vm');
  const other = Number(ok('port', id, '8080').split(':').pop());
  assert.ok(other > 0);
  assert.equal(ok('inspect', '-f', '{{json .NetworkSettings.Ports}}', id), JSON.stringify({ '80/tcp': [{ HostIp: '127.0.0.1', HostPort: String(port) }], '8080/tcp': [{ HostIp: '0.0.0.0', HostPort: String(other) }] }));
  // a container on the same bridge reaches the VM by its address too
  const ip = ok('inspect', '-f', '{{.NetworkSettings.IPAddress}}', id);
  assert.equal(ok('run', '--rm', 'busybox', 'timeout', '20', 'wget', '-q', '-O-', `http://${ip}/`), 'from-the-vm');
  ok('rm', '-f', id);
  await assertNoNetwork(tr.root);
});

test('a container and a VM on a user network fetch from each other by name', async (t) => {
  if (missing) return t.skip(missing);
  ok('network', 'create', 'mixed');
  const vm = ok('run', '-d', '--vm', '--name', 'web', '--network', 'mixed', 'busybox', 'sh', '-c', httpdScript('web-is-a-vm'));
  ok('run', '-d', '--name', 'api', '--network', 'mixed', '--network-alias', 'backend', 'busybox', 'sh', '-c', httpdScript('api-is-a-container'));
  ok('exec', 'api', ...WAIT_SERVING);
  // the VM's server is up once its own address answers (boot under TCG takes a while)
  await httpGetViaContainer('mixed', 'web', 'web-is-a-vm');
  const fromVm = ok('run', '--rm', '--vm', '--network', 'mixed', 'busybox', 'sh', '-c', 'timeout 20 wget -q -O- http://api/; timeout 20 wget -q -O- http://backend/; cat /etc/resolv.conf');
  assert.match(fromVm, /^api-is-a-container\napi-is-a-container\n/);
  assert.match(fromVm, /^nameserver 10\.21[45]\.\d+\.1$/m);
  assert.equal(ok('exec', vm, 'timeout', '20', 'wget', '-q', '-O-', 'http://api/'), 'api-is-a-container', 'the VM by exec');
  // a running VM gains no NIC; before it starts, it may
  assert.match(h('network', 'connect', 'bridge', 'web').stderr, /no hotplug/);
  assert.match(h('network', 'disconnect', 'mixed', 'web').stderr, /Stop it first/);
  ok('rm', '-f', 'web', 'api');
  const later = ok('create', '--vm', '--name', 'later', '--network', 'mixed', 'busybox', 'sh', '-c', 'ls /sys/class/net');
  ok('network', 'connect', 'bridge', later);
  ok('start', later);
  assert.equal(ok('wait', later), '0');
  assert.deepEqual(ok('logs', later).split('\n').sort(), ['eth0', 'eth1', 'lo']);
  ok('rm', later);
  ok('network', 'rm', 'mixed');
  await assertNoNetwork(tr.root);
});

async function httpGetViaContainer(network: string, host: string, want: string): Promise<void> {
  const end = Date.now() + 90_000;
  let last = '';
  while (Date.now() < end) {
    const r = h('run', '--rm', '--network', network, 'busybox', 'sh', '-c', `timeout 5 wget -q -O- http://${host}/`);
    if (r.code === 0 && r.stdout.trim() === want) return;
    last = r.stdout + r.stderr;
    await new Promise((res) => setTimeout(res, 500));
  }
  throw new Error(`http://${host}/ on ${network} did not answer: ${last}`);
}

test('what a VM cannot share is refused; a VM that does not boot leaves no network', async (t) => {
  if (missing) return t.skip(missing);
  const ctr = ok('run', '-d', 'busybox', 'sleep', '300');
  assert.match(h('run', '--rm', '--vm', '--network', `container:${ctr}`, 'busybox', 'true').stderr, /cannot share another container's network namespace/);
  assert.match(h('run', '--rm', '--vm', '--network', 'host', 'busybox', 'true').stderr, /--network host/);
  ok('rm', '-f', ctr);
  const port = await freePort();
  const bad = hull(tr.root, ['run', '--rm', '--vm', '-p', `127.0.0.1:${port}:80`, 'busybox', 'true'], { env: { HULL_VM_KERNEL: '/bin/true' } });
  assert.notEqual(bad.code, 0);
  assert.equal(h('ps', '-aq').stdout, '');
  await assertNoNetwork(tr.root);
  const det = hull(tr.root, ['run', '-d', '--vm', '-p', `127.0.0.1:${port}:80`, 'busybox', 'true'], { env: { HULL_VM_KERNEL: '/bin/true' } });
  assert.notEqual(det.code, 0);
  assert.deepEqual(netState(tr.root).portRules, []);
  const left = h('ps', '-aq').stdout.split('\n').filter(Boolean);
  if (left.length) ok('rm', '-f', ...left);
  await assertNoNetwork(tr.root);
});
