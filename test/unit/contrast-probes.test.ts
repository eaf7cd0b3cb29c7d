import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeCaps, interpretProbes, parseProbeOutput, probesComplete, probeUptimeMs, PROBE_SCRIPT } from '../../src/contrast/probes.js';
import { wallFlags } from '../../src/contrast/driver-hull.js';
import { CONTAINER_PROBE, VM_PROBE } from './contrast-fixture.js';

const HOST = { kernel: '6.18.44', pids: 90, devices: ['null', 'kvm', 'kmsg', 'vda'], capsCount: 41 };

test('the probe script uses only harmless busybox commands', () => {
  // the one open of /proc for writing is the null command's append (the sysctl probe): nothing is written
  const script = PROBE_SCRIPT.replace('": >>/proc/sys/vm/overcommit_ratio"', '');
  assert.notEqual(script, PROBE_SCRIPT);
  for (const bad of ['insmod', 'modprobe', 'reboot', 'poweroff', 'swapoff', 'sysctl -w', 'kill ', 'rm -rf', '> /proc', '>/proc', '> /sys', 'echo c']) {
    assert.ok(!script.includes(bad), `probe script contains ${bad}`);
  }
  assert.match(PROBE_SCRIPT, /umount \/tmp\/\.hull-probe/);
  assert.match(PROBE_SCRIPT, /rm -f \/tmp\/\.hull-probe-null/);
});

test('parse probe lines, ignore noise', () => {
  const raw = parseProbeOutput(`noise\r\nP|kernel|info|6.1\r\nP|mount|denied|x|y\nP|BAD|info|z\n`);
  assert.deepEqual(raw, [
    { name: 'kernel', status: 'info', detail: '6.1' },
    { name: 'mount', status: 'denied', detail: 'x|y' },
  ]);
  assert.equal(probesComplete(raw), false);
  assert.equal(probesComplete(parseProbeOutput(CONTAINER_PROBE)), true);
});

test('capabilities decode from CapEff', () => {
  assert.deepEqual(decodeCaps('0000000000000000'), []);
  assert.deepEqual(decodeCaps('0000000000200000'), ['SYS_ADMIN']);
  assert.equal(decodeCaps('00000000a80425fb').length, 14); // docker's default set
  assert.deepEqual(decodeCaps('zz'), []);
});

test('container: shared kernel exposed, hidden pids, filtered, escapes mostly denied', () => {
  const rows = interpretProbes(parseProbeOutput(CONTAINER_PROBE), HOST);
  const by = (p: string) => rows.find((r) => r.probe === p)!;
  assert.equal(by('kernel').verdict, 'exposed');
  assert.equal(by('pids').verdict, 'contained');
  assert.equal(by('devices').verdict, 'contained');
  assert.equal(by('caps').verdict, 'contained');
  assert.match(by('caps').inside, /^14: /);
  assert.equal(by('seccomp').verdict, 'contained');
  assert.equal(by('userns').verdict, 'contained');
  assert.equal(by('mknod').verdict, 'exposed');
  assert.match(by('kmsg').inside, /^absent/);
  assert.equal(probeUptimeMs(parseProbeOutput(CONTAINER_PROBE)), 5000100);
});

test('vm: own kernel, everything allowed reaches only the guest', () => {
  const rows = interpretProbes(parseProbeOutput(VM_PROBE), HOST);
  const by = (p: string) => rows.find((r) => r.probe === p)!;
  assert.equal(by('kernel').verdict, 'own');
  assert.equal(by('mount').verdict, 'own');
  assert.equal(by('caps').verdict, 'own');
  assert.equal(by('seccomp').verdict, 'own');
  assert.match(by('seccomp').inside, /no seccomp in the guest kernel/);
  // a minimal guest kernel without user namespaces: unsupported, not refused by a wall
  assert.match(by('userns').inside, /^unsupported by the kernel/);
  assert.equal(by('userns').verdict, 'own');
  // ping opened its socket and only found no route: the action itself was allowed
  assert.match(by('rawsocket').inside, /^allowed \(then: ping: sendto: Network is unreachable\)/);
  assert.equal(by('rawsocket').verdict, 'own');
  assert.equal(by('devices').verdict, 'own');
  assert.equal(probeUptimeMs(parseProbeOutput(VM_PROBE)), 430);
});

test('host uid of root inside, from /proc/self/uid_map: 0 exposed, a range contained, a VM its own', () => {
  const row = (map: string, kernel = HOST.kernel) => interpretProbes(parseProbeOutput(`P|kernel|info|${kernel}\nP|uidmap|info|${map}\nP|done|info|ok\n`), HOST).find((r) => r.probe === 'rootuid')!;
  assert.deepEqual([row('         0          0 4294967295').inside, row('         0          0 4294967295').verdict], ['0 (root on the host)', 'exposed']);
  assert.deepEqual([row('0 1000000000 65536').inside, row('0 1000000000 65536').verdict], ['1000000000 (unprivileged on the host)', 'contained']);
  assert.equal(row('0 0 4294967295', '6.1.192').verdict, 'own');
  assert.equal(row('cat: can not open').verdict, 'unknown');
});

test('a refusal stays a refusal even when the message also names the errno', () => {
  const rows = interpretProbes(parseProbeOutput('P|kernel|info|6.18.44\nP|rawsocket|denied|ping: permission denied (are you root?)\nP|userns|denied|unshare: Operation not permitted\nP|done|info|ok\n'), HOST);
  assert.equal(rows.find((r) => r.probe === 'rawsocket')!.verdict, 'contained');
  assert.equal(rows.find((r) => r.probe === 'userns')!.verdict, 'contained');
  assert.equal(rows.find((r) => r.probe === 'seccomp')!.verdict, 'unknown');
});

test('a probe that did not run is unknown, not contained', () => {
  const rows = interpretProbes(parseProbeOutput('P|kernel|info|6.18.44\n'), HOST);
  assert.equal(rows.find((r) => r.probe === 'mount')!.verdict, 'unknown');
  assert.equal(rows.find((r) => r.probe === 'caps')!.verdict, 'unknown');
});

test('every scenario starts a wall with the same flags: container-userns is the container wall with --userns=auto', () => {
  assert.deepEqual(wallFlags('container'), ['--isolation', 'container']);
  assert.deepEqual(wallFlags('vm'), ['--isolation', 'vm']);
  assert.deepEqual(wallFlags('container-userns'), ['--isolation', 'container', '--userns', 'auto']);
});
