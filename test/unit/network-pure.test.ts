import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { bridgeConf, cniEnv } from '../../src/network/cni-bridge.js';
import { dnsAnswered, dnsQuery, renderDnsFile } from '../../src/network/dns.js';
import { hostsFile, parseExtraHost, resolvConf } from '../../src/network/etc.js';
import { activityFile, idleCleanupCommand, idleNeeded, idleScript } from '../../src/network/idle.js';
import { canonicalSubnet, firstFree, hostIn, intToIp, ipToInt, macForIp, overlaps, parseCidr, parseMac } from '../../src/network/ipam.js';
import { bridgeName, nftTable, rootTag } from '../../src/network/names.js';
import { teardownScript } from '../../src/network/netns.js';
import { elementsScript, repairScript, tableScript } from '../../src/network/nft.js';
import { clash, expandSpecs, exposedKeys, parsePublish, portBindingsView, portsText, portsView, publishAllSpecs } from '../../src/network/ports.js';
import { parseMode, validateNetRequest, type NetRequest } from '../../src/network/request.js';
import { hostRoutes } from '../../src/network/subnets.js';

test('ipam: CIDRs, host ranges, the lowest free address, overlaps, docker MACs', () => {
  assert.equal(intToIp(ipToInt('10.214.3.7')!), '10.214.3.7');
  assert.equal(ipToInt('10.256.0.1'), undefined);
  assert.equal(canonicalSubnet('10.214.3.0/24'), '10.214.3.0/24');
  assert.throws(() => canonicalSubnet('10.214.3.1/24'), /host bits set/);
  assert.throws(() => canonicalSubnet('fd00::/64'), /IPv4 CIDR/);
  assert.throws(() => canonicalSubnet('10.0.0.0/31'), /between/);
  const c = parseCidr('10.214.3.0/24');
  assert.equal(hostIn(c, '10.214.3.9', '--ip'), ipToInt('10.214.3.9'));
  assert.throws(() => hostIn(c, '10.214.4.9', '--ip'), /not a host address/);
  assert.throws(() => hostIn(c, '10.214.3.255', '--ip'), /not a host address/);
  const gw = ipToInt('10.214.3.1')!;
  assert.equal(intToIp(firstFree(c, gw, new Set())!), '10.214.3.2');
  assert.equal(intToIp(firstFree(c, gw, new Set([ipToInt('10.214.3.2')!]))!), '10.214.3.3');
  assert.equal(intToIp(firstFree(c, gw, new Set(), parseCidr('10.214.3.128/25'))!), '10.214.3.128');
  const tiny = parseCidr('10.214.3.0/30');
  assert.equal(firstFree(tiny, ipToInt('10.214.3.1')!, new Set([ipToInt('10.214.3.2')!])), undefined);
  assert.ok(overlaps(parseCidr('10.214.0.0/15'), parseCidr('10.215.7.0/24')));
  assert.ok(!overlaps(parseCidr('10.214.0.0/16'), parseCidr('10.215.7.0/24')));
  assert.equal(macForIp('10.214.3.2'), '02:42:0a:d6:03:02');
  assert.equal(parseMac('02:42:0A:D6:03:02'), '02:42:0a:d6:03:02');
  assert.throws(() => parseMac('01:00:5e:00:00:01'), /multicast/);
  assert.throws(() => parseMac('02:42'), /six hex bytes/);
});

test('-p forms: ranges, host ranges, random ports, udp; clashes; docker views', async () => {
  assert.deepEqual(parsePublish('8080:80'), { hostIp: '', hostStart: 8080, hostEnd: 8080, containerStart: 80, containerEnd: 80, proto: 'tcp' });
  assert.deepEqual(parsePublish('127.0.0.1:8080:80'), { hostIp: '127.0.0.1', hostStart: 8080, hostEnd: 8080, containerStart: 80, containerEnd: 80, proto: 'tcp' });
  assert.deepEqual(parsePublish('127.0.0.1::80'), { hostIp: '127.0.0.1', hostStart: 0, hostEnd: 0, containerStart: 80, containerEnd: 80, proto: 'tcp' });
  assert.deepEqual(parsePublish('80'), { hostIp: '', hostStart: 0, hostEnd: 0, containerStart: 80, containerEnd: 80, proto: 'tcp' });
  assert.equal(parsePublish('8080:80/udp').proto, 'udp');
  assert.deepEqual(parsePublish('8000-8002:80-82'), { hostIp: '', hostStart: 8000, hostEnd: 8002, containerStart: 80, containerEnd: 82, proto: 'tcp' });
  assert.equal(parsePublish('0.0.0.0:8080:80').hostIp, '');
  for (const bad of ['8080:80/sctp', '8000-8001:80-82', '99999:80', 'x:80', '[::1]:80:80', '1.2.3:80:80', '8080:']) assert.throws(() => parsePublish(bad), /-p|IP|protocol|IPv6/, bad);
  let next = 40000;
  const pick = async () => next++;
  const b = await expandSpecs([parsePublish('8000-8002:80-82'), parsePublish('127.0.0.1::53/udp'), parsePublish('9000-9009:90')], async (_p, _ip, lo) => (lo ? lo + 3 : pick()));
  assert.deepEqual(b.map((x) => `${x.hostIp}:${x.hostPort}->${x.containerPort}/${x.proto}`), [':8000->80/tcp', ':8001->81/tcp', ':8002->82/tcp', '127.0.0.1:40000->53/udp', ':9003->90/tcp']);
  await assert.rejects(expandSpecs([parsePublish('8080:80'), parsePublish('127.0.0.1:8080:81')], pick), /published twice/);
  assert.ok(clash({ proto: 'tcp', hostIp: '', hostPort: 1 }, { proto: 'tcp', hostIp: '127.0.0.1', hostPort: 1 }));
  assert.ok(!clash({ proto: 'tcp', hostIp: '', hostPort: 1 }, { proto: 'udp', hostIp: '', hostPort: 1 }));
  assert.deepEqual(exposedKeys(['80', '53/udp', '8000-8001']), ['80/tcp', '53/udp', '8000/tcp', '8001/tcp']);
  assert.deepEqual(publishAllSpecs(['80/tcp']).map((x) => x.hostStart), [0]);
  assert.deepEqual(portBindingsView([parsePublish('127.0.0.1::80'), parsePublish('8000-8001:80-81')]), {
    '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }, { HostIp: '', HostPort: '8000' }],
    '81/tcp': [{ HostIp: '', HostPort: '8001' }],
  });
  const bound = [{ proto: 'tcp' as const, hostIp: '', hostPort: 8080, containerPort: 80 }];
  assert.deepEqual(portsView(['80/tcp', '443/tcp'], bound), { '80/tcp': [{ HostIp: '0.0.0.0', HostPort: '8080' }], '443/tcp': null });
  assert.equal(portsText(['80/tcp', '443/tcp'], bound), '0.0.0.0:8080->80/tcp, 443/tcp');
});

test('network modes and the checks before the store', () => {
  assert.deepEqual(parseMode(undefined), { kind: 'network', name: 'bridge' });
  assert.deepEqual(parseMode('default'), { kind: 'network', name: 'bridge' });
  assert.deepEqual(parseMode('container:db'), { kind: 'container', ref: 'db' });
  assert.deepEqual(parseMode('appnet'), { kind: 'network', name: 'appnet' });
  const r = (o: Partial<NetRequest>): NetRequest => ({ mode: 'bridge', primary: {}, more: {}, publish: [], publishAll: false, exposed: [], dns: [], dnsSearch: [], dnsOptions: [], extraHosts: [], ...o });
  assert.throws(() => validateNetRequest(r({ mode: 'container:x' }), 'vm'), /cannot share/);
  assert.throws(() => validateNetRequest(r({ mode: 'container:x', publish: ['80'] }), 'container'), /conflicting options/);
  assert.throws(() => validateNetRequest(r({ mode: 'none', primary: { aliases: ['a'] } }), 'container'), /user-defined network/);
  assert.throws(() => validateNetRequest(r({ primary: { ip: '1.2.3' } }), 'container'), /invalid IPv4/);
  assert.throws(() => validateNetRequest(r({ extraHosts: ['db'] }), 'container'), /--add-host/);
  assert.throws(() => validateNetRequest(r({ dns: ['x'] }), 'container'), /--dns/);
  assert.equal(validateNetRequest(r({ publish: ['80', '127.0.0.1:1:1/udp'] }), 'vm').length, 2);
});

test('/etc/hosts and resolv.conf as docker writes them; loopback resolvers are not copied', () => {
  assert.deepEqual(parseExtraHost('db:10.0.0.5'), { name: 'db', ip: '10.0.0.5' });
  assert.deepEqual(parseExtraHost('gw=host-gateway'), { name: 'gw', ip: 'host-gateway' });
  assert.throws(() => parseExtraHost('db:notanip'), /--add-host/);
  const hosts = hostsFile({ hostname: 'abc', ips: ['10.214.3.2'], extraHosts: [{ name: 'db', ip: '10.0.0.5' }] });
  assert.match(hosts, /^127\.0\.0\.1\tlocalhost$/m);
  assert.match(hosts, /^10\.0\.0\.5\tdb\n10\.214\.3\.2\tabc\n$/m);
  assert.match(hostsFile({ hostname: 'h', ips: [], extraHosts: [{ name: 'x', ip: '1.1.1.1' }], hostNetwork: '127.0.0.1 localhost' }), /^127\.0\.0\.1 localhost\n1\.1\.1\.1\tx\n$/);
  const stub = 'nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n';
  assert.equal(resolvConf({ dns: [], search: [], options: [], host: stub }), 'search lan\nnameserver 8.8.8.8\nnameserver 8.8.4.4\noptions edns0 trust-ad\n');
  assert.equal(resolvConf({ dns: [], search: [], options: [], host: 'nameserver 10.0.0.53\nnameserver 127.0.0.1\n' }), 'nameserver 10.0.0.53\n');
  assert.equal(resolvConf({ embedded: '10.214.9.1', dns: ['1.1.1.1'], search: [], options: [], host: stub }), 'search lan\nnameserver 10.214.9.1\noptions ndots:0\n');
  assert.equal(resolvConf({ dns: ['1.1.1.1'], search: ['.'], options: ['ndots:2'], host: stub }), 'nameserver 1.1.1.1\noptions ndots:2\n');
  assert.equal(resolvConf({ dns: [], search: [], options: [], host: stub, hostNetwork: true }), 'search lan\nnameserver 127.0.0.53\noptions edns0 trust-ad\n');
});

test('names are unique per root; the bridge plugin config carries hull\'s address; teardown and idle scripts', () => {
  assert.equal(rootTag('/a'), rootTag('/a/'));
  assert.notEqual(rootTag('/a'), rootTag('/b'));
  const br = bridgeName('/var/lib/hull', 'abcdef0123');
  assert.equal(br.length, 15);
  assert.match(br, /^hull[0-9a-f]{6}abcde$/);
  assert.match(nftTable('/var/lib/hull'), /^hull_[0-9a-f]{6}$/);
  const conf = bridgeConf({ netns: '/n', ifname: 'eth0', containerId: 'c', bridge: br, mtu: 1500, ip: '10.214.3.2', prefix: 24, gateway: '10.214.3.1', mac: '02:42:0a:d6:03:02', defaultRoute: true });
  assert.equal(conf.type, 'bridge');
  assert.equal(conf.ipMasq, false);
  assert.equal(conf.hairpinMode, true);
  assert.deepEqual(conf.runtimeConfig, { mac: '02:42:0a:d6:03:02' });
  assert.deepEqual(conf.ipam, { type: 'static', addresses: [{ address: '10.214.3.2/24', gateway: '10.214.3.1' }], routes: [{ dst: '0.0.0.0/0', gw: '10.214.3.1' }] });
  assert.deepEqual(cniEnv('ADD', { containerId: 'c', netns: '/n', ifname: 'eth0' }, '/usr/lib/cni'), { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c', CNI_NETNS: '/n', CNI_IFNAME: 'eth0', CNI_PATH: '/usr/lib/cni' });
  assert.equal(teardownScript(['veth1', 'bad;name'], "/r/it's"), "ip link del dev veth1 2>/dev/null || true\numount '/r/it'\\''s' 2>/dev/null || true\nrm -f '/r/it'\\''s'");
  const idle = idleScript(['hullabcdef12345'], 'hullabcdef', 'hull_abcdef', '/run/hull/locks/network-abcdef');
  assert.match(idle, /stat -c %\.9Y '\/run\/hull\/locks\/network-abcdef\.hullabcdef12345'/);
  assert.match(idle, /n - l >= 1/);
  assert.match(idle, /ls \/sys\/class\/net\/hullabcdef12345\/brif/);
  assert.match(idle, /nft delete table ip hull_abcdef/);
  // Started in /: it must not hold the directory of the exit hook that started it (the
  // container's, which rm removes), nor count as a process of any root.
  const cmd = idleCleanupCommand('/run/hull/locks/network-abcdef', ['hullabcdef12345'], 'hullabcdef', 'hull_abcdef');
  assert.deepEqual(cmd.options, { cwd: '/', detached: true, stdio: 'ignore' });
  assert.match(cmd.args[1]!, /^sleep 1; sh -c '.*' \|\| exit 0; exec flock '\/run\/hull\/locks\/network-abcdef' sh -c /s);
});

test('idle cleanup: the lock is taken only when a bridge is idle and portless, or the table outlived every bridge', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-idle-unit-'));
  try {
    const lock = path.join(dir, 'network-abcdef');
    const needed = (bridges: string[], prefix: string) => spawnSync('sh', ['-c', idleNeeded(bridges, prefix, 'hull_nosuchtable', lock, 1)]).status;
    // a bridge that does not exist, and a prefix with no bridge and no table: nothing to do
    assert.equal(needed(['hullzz0000x0001'], 'hullzz0000x'), 1);
    // lo stands in for a bridge that exists: no brif directory, so "no port"; used just now -> wait
    fs.writeFileSync(activityFile(lock, 'lo'), '');
    assert.equal(needed(['lo'], 'lo'), 1);
    // used two seconds ago -> something to do
    const t = Date.now() / 1000 - 2;
    fs.utimesSync(activityFile(lock, 'lo'), t, t);
    assert.equal(needed(['lo'], 'lo'), 0);
    // never used (no activity file): idle, beside a bridge that is gone
    fs.rmSync(activityFile(lock, 'lo'));
    assert.equal(needed(['hullzz0000x0001', 'lo'], 'hullzz0000x'), 0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('nftables: fixed rules over sets and maps; changes are element statements', () => {
  const t = tableScript('hull_abcdef');
  assert.match(t, /^create table ip hull_abcdef/);
  assert.match(t, /fib daddr type local dnat ip to meta l4proto \. th dport map @ports/);
  assert.match(t, /oifname @bridges ip saddr @subnets ct status dnat masquerade/);
  assert.match(t, /iifname @bridges oifname "hull\*" iifname \. oifname != @self drop/);
  assert.match(t, /th dport 53 ip daddr @dnsips ip daddr \. iifname != @dnspairs drop/);
  const state = {
    networks: [{ bridge: 'hullabcdef00001', subnet: '10.214.3.0/24', internal: false, dns: '10.214.3.1' }, { bridge: 'hullabcdef00002', subnet: '10.214.4.0/24', internal: true }],
    ports: [{ proto: 'tcp' as const, hostIp: '', hostPort: 8080, ip: '10.214.3.2', port: 80 }, { proto: 'udp' as const, hostIp: '127.0.0.1', hostPort: 5353, ip: '10.214.3.2', port: 53 }],
  };
  const add = elementsScript('hull_abcdef', 'add', state).split('\n');
  assert.ok(add.includes('add element ip hull_abcdef ports { tcp . 8080 : 10.214.3.2 . 80 }'));
  assert.ok(add.includes('add element ip hull_abcdef ipports { 127.0.0.1 . udp . 5353 : 10.214.3.2 . 53 }'));
  assert.ok(add.includes('add element ip hull_abcdef subnets { 10.214.3.0/24 }'));
  assert.ok(add.includes('add element ip hull_abcdef internal { "hullabcdef00002" }'));
  assert.ok(add.includes('add element ip hull_abcdef dnspairs { 10.214.3.1 . "hullabcdef00001" }'));
  assert.ok(!add.some((l) => l.includes('10.214.4.0/24')), 'an internal network is not NATed out');
  assert.match(elementsScript('hull_abcdef', 'delete', { networks: [], ports: state.ports }), /^delete element ip hull_abcdef ports/);
  assert.match(repairScript('hull_abcdef', state), /^add table ip hull_abcdef\ndelete table ip hull_abcdef\ncreate table/);
});

test('aardvark-dns files, the probe, a DNS query; /proc/net/route', () => {
  const f = renderDnsFile({ id: 'n1', gateway: '10.214.9.1', entries: [{ id: 'c1', ip: '10.214.9.2', names: ['Web', 'www', 'web', 'bad name'], servers: ['1.1.1.1'] }] }, 'hull-probe-x');
  assert.equal(f, '10.214.9.1\nhull-probe-n1 10.214.9.1  hull-probe-x\nc1 10.214.9.2  web,www 1.1.1.1\n');
  const q = dnsQuery(0x1234, 'web.local');
  assert.equal(q.readUInt16BE(0), 0x1234);
  assert.deepEqual([...q.subarray(12, 23)], [3, 119, 101, 98, 5, 108, 111, 99, 97, 108, 0]);
  const answer = Buffer.alloc(12);
  answer.writeUInt16BE(0x1234, 0);
  answer.writeUInt16BE(0x8180, 2);
  answer.writeUInt16BE(1, 6);
  assert.ok(dnsAnswered(answer, 0x1234));
  answer.writeUInt16BE(0x8183, 2); // NXDOMAIN
  assert.ok(!dnsAnswered(answer, 0x1234));
  const routes = hostRoutes('Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\nhullx\t0003D60A\t00000000\t0001\t0\t0\t0\t00FFFFFF\neth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\n');
  assert.deepEqual(routes, [{ addr: ipToInt('10.214.3.0'), prefix: 24, dev: 'hullx' }]);
});
