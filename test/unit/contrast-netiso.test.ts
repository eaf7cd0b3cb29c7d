/** The network isolation rows: the ARP-spoof verdict from what the host's neighbour table shows, the sysctl probe. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { interpretProbes, parseProbeOutput, PROBE_SCRIPT } from '../../src/contrast/probes.js';
import { ipJsonField, spoofRow, spoofScript } from '../../src/contrast/scenario-netiso.js';

const HOST = { kernel: '6.18.44', pids: 90, devices: ['null'], capsCount: 41 };

test('ipJsonField: ip -j route get / neigh show', () => {
  const route = '[{"dst":"10.215.89.2","dev":"hull2b3337a0dea","prefsrc":"10.215.89.1","flags":[],"uid":0,"cache":[]}]';
  assert.equal(ipJsonField(route, 'dev'), 'hull2b3337a0dea');
  assert.equal(ipJsonField(route, 'prefsrc'), '10.215.89.1');
  assert.equal(ipJsonField('[{"dst":"10.215.89.2","lladdr":"02:42:0a:d7:59:02","state":["REACHABLE"]}]', 'lladdr'), '02:42:0a:d7:59:02');
  assert.equal(ipJsonField('[]', 'lladdr'), undefined);
  assert.equal(ipJsonField('not json', 'dev'), undefined);
});

test('spoofRow: the host\'s entry naming the attacker is a working spoof; refusals and a kernel without packet sockets are not', () => {
  assert.match(spoofScript('/t/ld /t/arp-scan', '10.0.0.2', '10.0.0.1'), /arp-scan --interface=eth0 --arpspa=10\.0\.0\.2 .* 10\.0\.0\.1 2>&1/);
  const won = spoofRow({ attackerMac: '02:42:0a:d7:59:03', rc: 0, output: 'A|02:42:0a:d7:59:03\n10.0.0.1\tf6:6a:3a:88:4e:2c\nR|0', before: '02:42:0a:d7:59:02', after: '02:42:0a:d7:59:03' });
  assert.equal(won.verdict, 'exposed');
  assert.match(won.inside, /^allowed: the host's entry for the victim's address now names the attacker's MAC 02:42:0a:d7:59:03$/);
  assert.equal(won.host, "victim's MAC 02:42:0a:d7:59:02");
  const refused = spoofRow({ attackerMac: '02:42:0a:d7:59:03', rc: 1, output: 'A|02:42:0a:d7:59:03\n(socket: Operation not permitted)\nR|1', before: 'a', after: 'a' });
  assert.deepEqual([refused.verdict, refused.inside], ['contained', 'denied (socket: Operation not permitted)']);
  const guest = spoofRow({ attackerMac: '52:54:00:00:00:01', rc: 1, output: 'pcap_activate: socket: Address family not supported by protocol\nR|1', before: 'a', after: 'a' });
  assert.deepEqual([guest.verdict, guest.inside], ['own', 'unsupported by the kernel (pcap_activate: socket: Address family not supported by protocol)']);
  // sent, but the host kept the victim's MAC: contained
  assert.equal(spoofRow({ attackerMac: 'b', rc: 0, output: 'R|0', before: 'a', after: 'a' }).verdict, 'contained');
  assert.deepEqual(spoofRow({ output: '', error: 'arp-scan is not installed (apt-get install arp-scan)' }).verdict, 'unknown');
});

test('host sysctl write: opened for append only, a read-only /proc/sys is contained, a guest\'s is its own', () => {
  assert.ok(PROBE_SCRIPT.includes(': >>/proc/sys/vm/overcommit_ratio'));
  const c = interpretProbes(parseProbeOutput("P|kernel|info|6.18.44\nP|sysctlw|denied|sh: can't create /proc/sys/vm/overcommit_ratio: Read-only file system\nP|done|info|ok\n"), HOST).find((r) => r.probe === 'sysctlw')!;
  assert.deepEqual([c.verdict, c.inside], ['contained', "denied (sh: can't create /proc/sys/vm/overcommit_ratio: Read-only file system)"]);
  const v = interpretProbes(parseProbeOutput('P|kernel|info|6.1.192\nP|sysctlw|allowed|\nP|done|info|ok\n'), HOST).find((r) => r.probe === 'sysctlw')!;
  assert.equal(v.verdict, 'own');
});
