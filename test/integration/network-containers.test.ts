/**
 * Networking of the container wall through the CLI: the default bridge, every -p form and -P,
 * hull port and inspect's ports, a taken port refused at create with nothing left, hairpin,
 * user networks (names, aliases, --ip, --internal), isolation between networks, container:X,
 * --add-host / --dns* / --mac-address, network create/ls/inspect/rm/prune/connect/disconnect,
 * and a SIGKILLed run cleaned by rm -f. Traffic goes only to 127.0.0.1 and to addresses on the
 * bridges this root makes.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { hull, HULL_BIN, importBusybox, makeTempRoot, type TempRoot } from '../helpers/hull.js';
import { assertNoNetwork, hullOk, removeAllNetworked, freePort, freeRange, httpdScript, httpGet, netState, udpEcho, udpEchoBinaryDir, WAIT_SERVING, withFreeSubnet } from '../helpers/net.js';

let tr: TempRoot;
const h = (...a: string[]) => hull(tr.root, a);
const ok = (...a: string[]) => hullOk(tr.root, a);
const inspect = (ref: string, fmt: string) => ok('inspect', '-f', fmt, ref);

before(async () => {
  tr = makeTempRoot('hull-netc-');
  importBusybox(tr.root);
  await assertNoNetwork(tr.root, { idle: true });
});

after(async () => {
  if (!tr) return;
  await removeAllNetworked(tr.root);
  tr.cleanup();
});

test('the default bridge: an address of its subnet, a route out, /etc/hosts with it, no loopback resolver', () => {
  const out = ok('run', '--rm', 'busybox', 'sh', '-c', 'ip -o -4 addr show eth0; ip route; cat /etc/hosts /etc/resolv.conf; hostname');
  const m = /inet (10\.21[45]\.\d+\.\d+)\/24/.exec(out);
  assert.ok(m, out);
  const gw = JSON.parse(ok('network', 'inspect', '-f', '{{json .IPAM.Config}}', 'bridge'))[0].Gateway as string;
  assert.match(out, new RegExp(`default via ${gw.replace(/\./g, '\\.')} dev eth0`));
  assert.match(out, new RegExp(`${m[1]!.replace(/\./g, '\\.')}\\t[0-9a-f]{12}`));
  assert.doesNotMatch(out, /nameserver 127\./);
  assert.equal(ok('network', 'inspect', '-f', '{{.Driver}}', 'bridge'), 'bridge');
});

test('every -p form and -P: where each went (hull port, inspect), and each answers on 127.0.0.1', async () => {
  const [p1, p2, range, pu] = [await freePort(), await freePort(), await freeRange(3), await freePort('udp')];
  const udpDir = udpEchoBinaryDir();
  const id = ok(
    'run', '-d', '-v', `${udpDir}:/t:ro`,
    '-p', `${p1}:80`, '-p', `127.0.0.1:${p2}:80`, '-p', '127.0.0.1::80', '-p', '81',
    '-p', `${range}-${range + 2}:80-82`, '-p', `${pu}:5353/udp`, '--expose', '83', '-P',
    'busybox', 'sh', '-c', 'mkdir -p /www && echo ok-p > /www/index.html && httpd -p 81 -h /www && httpd -p 82 -h /www && httpd -p 83 -h /www && (/t/udp-echo 5353 &) && exec httpd -f -p 80 -h /www',
  );
  const ports = ok('port', id).split('\n').sort();
  const find = (re: RegExp) => {
    const l = ports.find((x) => re.test(x));
    assert.ok(l, `${re} in ${ports.join(' | ')}`);
    return Number(l.split(':').pop());
  };
  assert.equal(find(new RegExp(`^80/tcp -> 0\\.0\\.0\\.0:${p1}$`)), p1);
  assert.equal(find(new RegExp(`^80/tcp -> 127\\.0\\.0\\.1:${p2}$`)), p2);
  const anyLocal = ports.filter((x) => /^80\/tcp -> 127\.0\.0\.1:/.test(x)).map((x) => Number(x.split(':').pop())).find((x) => x !== p2);
  assert.ok(anyLocal, '127.0.0.1::80 got a port');
  const random81 = ports.filter((x) => /^81\/tcp -> 0\.0\.0\.0:/.test(x)).map((x) => Number(x.split(':').pop())).find((x) => x !== range + 1);
  assert.ok(random81, '-p 81 got a port');
  assert.equal(find(/^82\/tcp -> 0\.0\.0\.0:/), range + 2);
  assert.equal(find(/^5353\/udp -> 0\.0\.0\.0:/), pu);
  const p83 = find(/^83\/tcp -> 0\.0\.0\.0:/);
  for (const port of [p1, p2, anyLocal, random81, range, range + 1, range + 2, p83]) assert.equal((await httpGet('127.0.0.1', port)).trim(), 'ok-p', `port ${port}`);
  assert.equal(await udpEcho(pu, 'over udp'), 'over udp');
  assert.equal(ok('port', id, '5353/udp'), `0.0.0.0:${pu}`);
  const view = JSON.parse(inspect(id, '{{json .NetworkSettings.Ports}}')) as Record<string, { HostIp: string; HostPort: string }[]>;
  assert.deepEqual(view['5353/udp'], [{ HostIp: '0.0.0.0', HostPort: String(pu) }]);
  assert.ok(view['80/tcp']!.some((b) => b.HostIp === '127.0.0.1' && b.HostPort === String(p2)));
  const hc = JSON.parse(inspect(id, '{{json .HostConfig}}')) as { PortBindings: Record<string, { HostIp: string; HostPort: string }[]>; PublishAllPorts: boolean; NetworkMode: string };
  assert.deepEqual(hc.PortBindings['5353/udp'], [{ HostIp: '', HostPort: String(pu) }]);
  assert.ok(hc.PortBindings['80/tcp']!.some((b) => b.HostIp === '127.0.0.1' && b.HostPort === ''));
  assert.equal(hc.PublishAllPorts, true);
  assert.equal(hc.NetworkMode, 'bridge');
  assert.match(ok('ps', '--format', '{{.Ports}}'), new RegExp(`127\\.0\\.0\\.1:${p2}->80/tcp`));
  assert.equal(netState(tr.root).portRules.length, ports.length);

  // hairpin: the container reaches its own published port through the host's address on its bridge
  const gw = inspect(id, '{{.NetworkSettings.Gateway}}');
  assert.equal(ok('exec', id, 'timeout', '10', 'wget', '-q', '-O-', `http://${gw}:${p1}/`), 'ok-p');

  // a taken port: refused at create, with nothing made
  const before = h('ps', '-aq').stdout;
  const again = h('run', '-d', '-p', `${p1}:80`, 'busybox', 'true');
  assert.equal(again.code, 125);
  assert.match(again.stderr, new RegExp(`Bind for 0\\.0\\.0\\.0:${p1} failed: port is already allocated`));
  assert.equal(h('ps', '-aq').stdout, before);
  ok('rm', '-f', id);
  await assertNoNetwork(tr.root);
});

test('a host port another program holds is refused at create; the run leaves nothing', async () => {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as net.AddressInfo).port;
  try {
    for (const cmd of [['run', '--rm'], ['create']]) {
      const r = h(...cmd, '-p', `127.0.0.1:${port}:80`, 'busybox', 'true');
      assert.equal(r.code, 125, r.stderr);
      assert.match(r.stderr, new RegExp(`Bind for 127\\.0\\.0\\.1:${port} failed: port is already allocated`));
    }
    assert.equal(h('ps', '-aq').stdout, '');
    await assertNoNetwork(tr.root);
  } finally {
    srv.close();
  }
});

test('user networks: names, aliases and short ids resolve; --ip, --subnet, --gateway, --ip-range; isolation from other networks', async () => {
  const { octet, result } = withFreeSubnet((o) => h('network', 'create', '--subnet', `10.216.${o}.0/24`, '--gateway', `10.216.${o}.254`, '--ip-range', `10.216.${o}.128/25`, 'neta'));
  assert.equal(result.code, 0, result.stderr);
  const net24 = `10.216.${octet}`;
  ok('network', 'create', 'netb');
  assert.match(h('network', 'create', 'neta').stderr, /already exists/);
  assert.match(h('network', 'create', '--subnet', `${net24}.0/25`, 'overlap').stderr, /overlaps/);
  const web = ok('run', '-d', '--name', 'web', '--network', 'neta', '--network-alias', 'www', '--ip', `${net24}.10`, 'busybox', 'sh', '-c', httpdScript('on-neta'));
  ok('exec', web, ...WAIT_SERVING);
  assert.equal(inspect(web, '{{.NetworkSettings.Networks.neta.IPAddress}}'), `${net24}.10`);
  const c = 'for n in web www ' + web.slice(0, 12) + '; do timeout 10 wget -q -O- http://$n/ || echo fail $n; done; ip -o -4 addr show eth0; cat /etc/resolv.conf';
  const out = ok('run', '--rm', '--network', 'neta', 'busybox', 'sh', '-c', c);
  assert.equal(out.split('\n').filter((l) => l === 'on-neta').length, 3, out);
  assert.match(out, new RegExp(`inet ${net24.replace(/\./g, '\\.')}\\.(1[2-9][0-9]|2[0-5][0-9])/24`), 'a leased address comes from the --ip-range');
  assert.match(out, new RegExp(`nameserver ${net24.replace(/\./g, '\\.')}\\.254`));
  // from another network: neither the address nor the name
  const other = ok('run', '--rm', '--network', 'netb', 'busybox', 'sh', '-c', `timeout 3 wget -q -O- http://${net24}.10/ && echo reached; nslookup -timeout=1 -retry=1 web ${net24}.254 >/dev/null 2>&1 && echo resolved; nslookup -timeout=1 -retry=1 web >/dev/null 2>&1 && echo resolved-own; true`);
  assert.equal(other, '', 'netb reaches nothing of neta');
  const fromBridge = ok('run', '--rm', 'busybox', 'sh', '-c', `timeout 3 wget -q -O- http://${net24}.10/ && echo reached; true`);
  assert.equal(fromBridge, '');
  // connect: a running container joins netb too; then netb reaches it by name, and it reaches both
  const client = ok('run', '-d', '--name', 'client', '--network', 'netb', 'busybox', 'sleep', '300');
  ok('network', 'connect', 'neta', 'client');
  assert.equal(ok('exec', client, 'timeout', '10', 'wget', '-q', '-O-', `http://${net24}.10/`), 'on-neta');
  assert.match(ok('network', 'inspect', '-f', '{{json .Containers}}', 'neta'), /"Name":"client"/);
  assert.match(h('network', 'rm', 'neta').stderr, /has active endpoints/);
  assert.match(h('network', 'connect', 'neta', 'client').stderr, /already attached/);
  ok('network', 'disconnect', 'neta', 'client');
  assert.equal(ok('exec', client, 'sh', '-c', `timeout 3 wget -q -O- http://${net24}.10/ && echo reached; true`), '');
  assert.match(h('network', 'disconnect', 'neta', 'client').stderr, /not connected/);
  ok('rm', '-f', web, client);
  ok('network', 'rm', 'neta');
  assert.match(h('network', 'rm', 'bridge').stderr, /pre-defined/);
  assert.match(h('network', 'inspect', 'neta').stderr, /not found/);
  assert.equal(ok('network', 'prune', '-f'), 'Deleted Networks:\nnetb');
  assert.deepEqual(ok('network', 'ls', '--format', '{{.Name}}').split('\n').sort(), ['bridge', 'host', 'none']);
  await assertNoNetwork(tr.root);
});

test('--internal: no route out and no published ports; --network none and host as before', () => {
  ok('network', 'create', '--internal', 'inside');
  assert.doesNotMatch(ok('run', '--rm', '--network', 'inside', 'busybox', 'ip', 'route'), /default/);
  assert.match(h('run', '--rm', '--network', 'inside', '-p', '80', 'busybox', 'true').stderr, /internal network/);
  ok('network', 'rm', 'inside');
  assert.equal(ok('run', '--rm', '--network', 'none', 'busybox', 'sh', '-c', 'ls /sys/class/net'), 'lo');
  const host = ok('run', '--rm', '--network', 'host', 'busybox', 'ls', '/sys/class/net');
  assert.ok(host.split('\n').includes('eth0') && host.split('\n').includes('lo'), host);
  assert.match(h('run', '--rm', '--network', 'nosuch', 'busybox', 'true').stderr, /network nosuch not found/);
  assert.match(h('run', '--rm', '--network', 'none', '-p', '80', 'busybox', 'true').stderr, /conflicting options/);
});

test('--network container:X shares X\'s namespace; --add-host (host-gateway), --dns*, --mac-address', async () => {
  const x = ok('run', '-d', '--name', 'netx', '--mac-address', '02:42:0a:aa:bb:cc', '--add-host', 'db:10.1.2.3', '--add-host', 'gw:host-gateway',
    '--dns', '10.9.9.9', '--dns-search', 'corp.test', '--dns-option', 'ndots:3', 'busybox', 'sh', '-c', httpdScript('inside-x'));
  ok('exec', x, ...WAIT_SERVING);
  const out = ok('exec', x, 'sh', '-c', 'cat /sys/class/net/eth0/address /etc/hosts /etc/resolv.conf');
  assert.match(out, /^02:42:0a:aa:bb:cc$/m);
  assert.match(out, /^10\.1\.2\.3\tdb$/m);
  assert.match(out, new RegExp(`^${inspect(x, '{{.NetworkSettings.Gateway}}').replace(/\./g, '\\.')}\\tgw$`, 'm'));
  assert.match(out, /^search corp\.test$/m);
  assert.match(out, /^nameserver 10\.9\.9\.9$/m);
  assert.match(out, /^options ndots:3$/m);
  const joined = ok('run', '--rm', '--network', 'container:netx', 'busybox', 'sh', '-c', 'timeout 10 wget -q -O- http://127.0.0.1/; cat /sys/class/net/eth0/address');
  assert.equal(joined, 'inside-x\n02:42:0a:aa:bb:cc');
  assert.match(h('run', '--rm', '--network', 'container:nosuch', 'busybox', 'true').stderr, /No such container/);
  ok('rm', '-f', x);
  await assertNoNetwork(tr.root);
});

test('SIGKILL of an attached run with a published port, then rm -f: nothing of its network is left', async () => {
  const port = await freePort();
  const name = 'killed';
  const c = spawn(HULL_BIN, ['--root', tr.root, 'run', '--rm', '--name', name, '-p', `127.0.0.1:${port}:80`, 'busybox', 'sh', '-c', httpdScript('before-kill')], { stdio: 'ignore' });
  assert.equal((await httpGet('127.0.0.1', port)).trim(), 'before-kill');
  c.kill('SIGKILL');
  await new Promise((r) => c.on('exit', r));
  assert.ok(netState(tr.root).sandboxes > 0, 'the killed run had its network');
  ok('rm', '-f', name);
  await assertNoNetwork(tr.root);
  // the port is free again
  const again = ok('run', '-d', '-p', `127.0.0.1:${port}:80`, 'busybox', 'sh', '-c', httpdScript('after-kill'));
  assert.equal((await httpGet('127.0.0.1', port)).trim(), 'after-kill');
  ok('rm', '-f', again);
  await assertNoNetwork(tr.root);
});

test('SIGKILL of hull in the middle of a network setup: reconcile and system check leave nothing', async () => {
  const port = await freePort();
  const dir = `${tr.root}/run/netns`;
  const c = spawn(HULL_BIN, ['--root', tr.root, 'run', '-d', '--name', 'midsetup', '-p', `127.0.0.1:${port}:80`, 'busybox', 'sleep', '300'], { stdio: 'ignore' });
  // the namespace file is made first: kill hull as soon as it is there
  for (let i = 0; i < 2000 && !(fs.existsSync(dir) && fs.readdirSync(dir).length); i++) await new Promise((r) => setTimeout(r, 2));
  c.kill('SIGKILL');
  await new Promise((r) => c.on('exit', r));
  const check = h('system', 'check', '--fix');
  assert.equal(check.code === 0 || check.code === 1, true, check.stderr);
  const left = h('ps', '-aq').stdout.split('\n').filter(Boolean);
  if (left.length) ok('rm', '-f', ...left);
  await assertNoNetwork(tr.root);
  assert.equal(h('system', 'check').stdout.includes('network'), false);
  const srv = net.createServer();
  await new Promise<void>((r, j) => { srv.once('error', j); srv.listen(port, '127.0.0.1', () => r()); });
  srv.close();
});
