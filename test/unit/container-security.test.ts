/** The container wall's security options as data: --device, --sysctl, --group-add, seccomp=FILE, --privileged (issue 14). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fs from 'node:fs';
import { parseDevice, splitDev, hostDevices, resolveDevice } from '../../src/runtime/container/devices.js';
import { checkSysctls, parseSysctl } from '../../src/runtime/container/sysctl.js';
import { parseDockerProfile } from '../../src/runtime/container/seccomp.js';
import { addGroups } from '../../src/runtime/container/rootfs.js';
import { buildInstanceSpec, parseSecurityOpts, validateRunOptions } from '../../src/engine/options.js';
import { buildOciConfig, type ConfigHost } from '../../src/runtime/container/config.js';
import { ALL_CAPS } from '../../src/runtime/container/caps.js';
import type { InstanceSpec } from '../../src/runtime/types.js';

const img = { id: 'sha256:' + 'b'.repeat(64), lowerDirs: ['/l/1'], config: { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers' as const, diff_ids: [] }, config: { Cmd: ['sh'] } } };
const ids = { id: 'a'.repeat(64), name: 'c1', dir: '/x/c1' };
const spec = (o: Record<string, unknown> = {}): InstanceSpec => buildInstanceSpec({ image: 'busybox', ...o }, img, ids);
const host = (over: Partial<ConfigHost> = {}): ConfigHost => ({
  rootfs: '/r', user: { uid: 0, gid: 0 }, cgroupsPath: '/hull/x', arch: 'amd64', kernel: '6.1.0', hardLimits: {}, swapAccounting: false,
  seccompProfile: { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read', 'clone'], action: 'SCMP_ACT_ALLOW' }] },
  ...over,
});

test('--device: docker forms HOST, HOST:CTR, HOST:PERMS, HOST:CTR:PERMS; bad ones named', () => {
  assert.deepEqual(parseDevice('/dev/null'), { hostPath: '/dev/null', containerPath: '/dev/null', permissions: 'rwm' });
  assert.deepEqual(parseDevice('/dev/null:/dev/n2'), { hostPath: '/dev/null', containerPath: '/dev/n2', permissions: 'rwm' });
  assert.deepEqual(parseDevice('/dev/null:r'), { hostPath: '/dev/null', containerPath: '/dev/null', permissions: 'r' });
  assert.deepEqual(parseDevice('/dev/null:/dev/n2:rw'), { hostPath: '/dev/null', containerPath: '/dev/n2', permissions: 'rw' });
  assert.throws(() => parseDevice('dev/null'), /--device "dev\/null".*not absolute/);
  assert.throws(() => parseDevice('/dev/null:/dev/n:rx'), /permissions "rx"/);
  assert.throws(() => parseDevice('/a:/b:r:w'), /HOST\[:CONTAINER\[:PERMS\]\]/);
  // /dev/null is c 1:3 on every Linux
  const n = resolveDevice(parseDevice('/dev/null:/dev/n2:rw'));
  assert.deepEqual([n.type, n.major, n.minor, n.path, n.access], ['c', 1, 3, '/dev/n2', 'rw']);
  assert.throws(() => resolveDevice(parseDevice('/etc/passwd')), /not a device node/);
  assert.throws(() => resolveDevice(parseDevice('/dev/no-such-device-here')), /\/dev\/no-such-device-here/);
  assert.deepEqual(splitDev(0x10300), { major: 259, minor: 0 }); // minor bits above 8 sit at 12..
  assert.deepEqual(splitDev((8 << 8) | 17), { major: 8, minor: 17 });
});

test("--privileged's host devices: device nodes of /dev, no pts/shm, no console", () => {
  const all = hostDevices();
  assert.ok(all.some((d) => d.path === '/dev/null' && d.major === 1 && d.minor === 3));
  assert.ok(!all.some((d) => d.path.startsWith('/dev/pts/') || d.path === '/dev/console'));
  assert.ok(all.every((d) => fs.lstatSync(d.path).isCharacterDevice() || fs.lstatSync(d.path).isBlockDevice()));
});

test('--sysctl: namespaced ones pass, global ones and net.* with --network host are refused by name', () => {
  assert.deepEqual(parseSysctl('net/ipv4/ip_forward=1'), ['net.ipv4.ip_forward', '1']);
  assert.throws(() => parseSysctl('kernel.shmmax'), /KEY=VALUE/);
  checkSysctls({ 'kernel.shmmax': '1', 'fs.mqueue.msg_max': '20', 'net.ipv4.ping_group_range': '0 0', 'kernel.sem': '1 2 3 4' }, 'bridge');
  assert.throws(() => checkSysctls({ 'vm.swappiness': '1' }, 'bridge'), /"vm.swappiness" is not namespaced/);
  assert.throws(() => checkSysctls({ 'kernel.pid_max': '1' }, 'none'), /"kernel.pid_max" is not namespaced/);
  assert.throws(() => checkSysctls({ 'net.ipv4.ip_forward': '1' }, 'host'), /--network host/);
  assert.throws(() => validateRunOptions({ image: 'x', sysctls: { 'kernel.panic': '1' } }), /kernel.panic/);
  assert.deepEqual(buildOciConfig(spec({ sysctls: { 'net.ipv4.ip_forward': '1' } }), host()).linux.sysctl, { 'net.ipv4.ip_forward': '1' });
  assert.equal(buildOciConfig(spec(), host()).linux.sysctl, undefined);
});

test('--group-add: names from the image, gids as given, no duplicates; unknown names refused', () => {
  const group = 'root:x:0:\naudio:x:29:\nstaff:x:50:alice\n';
  const u = addGroups({ uid: 1000, gid: 100, additionalGids: [50], home: '/' }, group, ['audio', '1234', 'staff', '100']);
  assert.deepEqual(u.additionalGids, [50, 29, 1234]);
  assert.throws(() => addGroups(u, group, ['wheel']), /unable to find group wheel/);
  assert.throws(() => validateRunOptions({ image: 'x', groupAdd: ['a:b'] }), /--group-add "a:b"/);
});

test('seccomp=<profile JSON>: checked, stored as custom, used as written (no user-namespace rule added)', () => {
  assert.throws(() => parseDockerProfile('{'), /not JSON/);
  assert.throws(() => parseDockerProfile('[]'), /not a JSON object/);
  assert.throws(() => parseDockerProfile('{"defaultAction":"ALLOW"}'), /defaultAction "ALLOW"/);
  assert.throws(() => parseDockerProfile('{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_NOPE"}]}'), /syscalls\[0\]: action/);
  assert.throws(() => parseDockerProfile('{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":[],"action":"SCMP_ACT_ERRNO"}]}'), /syscalls\[0\]: names/);
  assert.throws(() => parseDockerProfile('{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["x"],"action":"SCMP_ACT_ERRNO","args":[{"index":9,"value":1,"op":"SCMP_CMP_EQ"}]}]}'), /index/);
  const text = JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64'], syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }] });
  const sec = parseSecurityOpts([`seccomp=${text}`]);
  assert.equal(sec.seccomp, 'custom');
  assert.throws(() => parseSecurityOpts(['seccomp=/some/file.json']), /seccomp=\/some\/file.json/);
  assert.throws(() => parseSecurityOpts(['seccomp={"defaultAction":1}']), /seccomp profile: defaultAction/);
  assert.equal(parseSecurityOpts(['seccomp=builtin']).seccomp, 'default');
  const s = spec({ securityOpt: [`seccomp=${text}`] });
  assert.equal(s.seccomp, 'custom');
  const oci = buildOciConfig(s, host()).linux.seccomp!;
  assert.equal(oci.defaultAction, 'SCMP_ACT_ALLOW');
  assert.deepEqual(oci.syscalls, [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }]);
  // the stored spec carries the profile itself: a later start does not need the file
  assert.deepEqual(JSON.parse(JSON.stringify(s)).seccompProfile, JSON.parse(text));
});

test('--privileged: every cap, no seccomp, nothing masked, /sys and cgroups rw, every device allowed and made', () => {
  const s = spec({ privileged: true, capDrop: ['ALL'] });
  const devs = [{ path: '/dev/null', type: 'c' as const, major: 1, minor: 3, fileMode: 0o666, uid: 0, gid: 0, access: 'rwm' }];
  const c = buildOciConfig(s, host({ devices: devs }));
  assert.equal(c.process.capabilities.bounding.length, ALL_CAPS.length);
  assert.equal(c.linux.seccomp, undefined);
  assert.deepEqual([c.linux.maskedPaths, c.linux.readonlyPaths], [[], []]);
  assert.ok(!c.mounts.find((m) => m.destination === '/sys')!.options.includes('ro'));
  assert.ok(c.mounts.find((m) => m.destination === '/sys/fs/cgroup')!.options.includes('rw'));
  assert.deepEqual((c.linux.resources as { devices: unknown[] }).devices, [{ allow: true, access: 'rwm' }]);
  assert.deepEqual(c.linux.devices, [{ path: '/dev/null', type: 'c', major: 1, minor: 3, fileMode: 0o666, uid: 0, gid: 0 }]);
  // without it: the default device list plus each --device's rule
  const d = buildOciConfig(spec({ devices: ['/dev/null:/dev/n2:rw'] }), host({ devices: [{ ...devs[0]!, path: '/dev/n2', access: 'rw' }] }));
  const rules = (d.linux.resources as { devices: { allow: boolean; type?: string; major?: number; minor?: number; access: string }[] }).devices;
  assert.deepEqual(rules[0], { allow: false, access: 'rwm' });
  assert.deepEqual(rules.at(-1), { allow: true, type: 'c', major: 1, minor: 3, access: 'rw' });
  assert.ok(d.mounts.find((m) => m.destination === '/sys')!.options.includes('ro'));
  assert.ok(d.linux.seccomp);
});

test('the VM wall refuses the container-only options by name', () => {
  assert.throws(() => validateRunOptions({ image: 'x', isolation: 'vm', privileged: true, devices: ['/dev/null'] }), /--privileged, --device: the container wall's options/);
  assert.throws(() => validateRunOptions({ image: 'x', isolation: 'vm', sysctls: { 'net.ipv4.ip_forward': '1' } }), /--sysctl/);
});
