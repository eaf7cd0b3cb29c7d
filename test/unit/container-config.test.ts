import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildOciConfig, buildRlimits, containerCaps, MASKED_PATHS, READONLY_PATHS, type ConfigHost } from '../../src/runtime/container/config.js';
import { ALL_CAPS, DEFAULT_CAPS, DOCKER_DEFAULT_CAPS, effectiveCaps, capsFromMask, normalizeCap } from '../../src/runtime/container/caps.js';
import { CLONE_NEWUSER, refuseUserNamespaces } from '../../src/runtime/container/seccomp.js';
import type { InstanceSpec } from '../../src/runtime/types.js';

function spec(over: Partial<InstanceSpec> = {}): InstanceSpec {
  return {
    id: 'a'.repeat(64),
    name: 'c1',
    dir: '/var/lib/hull/containers/' + 'a'.repeat(64),
    image: { id: 'sha256:' + 'b'.repeat(64), lowerDirs: ['/l/1'], config: { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } } },
    process: { args: ['echo', 'hello'], env: ['PATH=/bin'], cwd: '/', user: '', terminal: false, stdin: false },
    hostname: 'aaaaaaaaaaaa',
    resources: {},
    readOnlyRootfs: false,
    mounts: [],
    network: 'none',
    capAdd: [],
    capDrop: [],
    noNewPrivileges: false,
    seccomp: 'default',
    ulimits: [],
    init: false,
    runtime: 'crun',
    ...over,
  };
}

const profile = {
  defaultAction: 'SCMP_ACT_ERRNO',
  defaultErrnoRet: 38,
  archMap: [{ architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'] }],
  syscalls: [
    { names: ['read', 'write', 'clone', 'clone3', 'unshare', 'setns'], action: 'SCMP_ACT_ALLOW' },
    { names: ['chroot'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_CHROOT'] } },
    { names: ['bpf'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_ADMIN'] } },
    { names: ['arch_prctl'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['amd64'] } },
    { names: ['s390_pci_mmio_read'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['s390x'] } },
    { names: ['open_by_handle_at'], action: 'SCMP_ACT_ERRNO', errnoRet: 1, excludes: { caps: ['CAP_DAC_READ_SEARCH'] } },
    { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 8, op: 'SCMP_CMP_EQ' }] },
  ],
};

const host = (over: Partial<ConfigHost> = {}): ConfigHost => ({
  rootfs: '/r/rootfs',
  user: { uid: 0, gid: 0 },
  cgroupsPath: '/hull/' + 'a'.repeat(64),
  seccompProfile: profile,
  arch: 'amd64',
  kernel: '6.1.0',
  hardLimits: { nofile: 20000, nproc: 96364 },
  swapAccounting: true,
  ...over,
});

test('namespaces: pid, mount, ipc, uts, cgroup and network (none); no netns with host network', () => {
  const c = buildOciConfig(spec(), host());
  assert.deepEqual(c.linux.namespaces.map((n) => n.type).sort(), ['cgroup', 'ipc', 'mount', 'network', 'pid', 'uts']);
  const h = buildOciConfig(spec({ network: 'host' }), host());
  assert.ok(!h.linux.namespaces.some((n) => n.type === 'network'));
});

test("podman's 11 default capabilities (docker's 14 less NET_RAW, MKNOD, AUDIT_WRITE), cap-add / cap-drop / ALL, bounded by the host", () => {
  const c = buildOciConfig(spec(), host());
  assert.deepEqual([...c.process.capabilities.bounding].sort(), [...DEFAULT_CAPS].sort());
  assert.deepEqual([...DEFAULT_CAPS].sort(), ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_NET_BIND_SERVICE', 'CAP_SETFCAP', 'CAP_SETGID', 'CAP_SETPCAP', 'CAP_SETUID', 'CAP_SYS_CHROOT']);
  assert.deepEqual(DOCKER_DEFAULT_CAPS.filter((x) => !DEFAULT_CAPS.includes(x)).sort(), ['CAP_AUDIT_WRITE', 'CAP_MKNOD', 'CAP_NET_RAW']);
  for (const back of ['NET_RAW', 'MKNOD', 'AUDIT_WRITE']) assert.ok(effectiveCaps([back], []).includes(`CAP_${back}`), back);
  assert.deepEqual(c.process.capabilities.inheritable, []);
  const caps = effectiveCaps(['NET_ADMIN'], ['chown', 'CAP_KILL']);
  assert.ok(caps.includes('CAP_NET_ADMIN') && !caps.includes('CAP_CHOWN') && !caps.includes('CAP_KILL'));
  assert.deepEqual(effectiveCaps(['CHOWN'], ['ALL']), ['CAP_CHOWN']);
  const all = effectiveCaps(['ALL'], [], capsFromMask('1fffeffffff'));
  assert.ok(all.includes('CAP_SYS_ADMIN') && !all.includes('CAP_SYS_RESOURCE'), 'bit 24 missing from the mask');
  assert.throws(() => normalizeCap('FLY', '--cap-add'), /unknown capability/);
});

test('masked and read-only /proc paths, default mounts, readonly root', () => {
  const c = buildOciConfig(spec({ readOnlyRootfs: true }), host());
  assert.deepEqual(c.linux.maskedPaths, MASKED_PATHS);
  assert.ok(c.linux.maskedPaths.includes('/proc/kcore'));
  assert.deepEqual(c.linux.readonlyPaths, READONLY_PATHS);
  assert.ok(c.linux.readonlyPaths.includes('/proc/sys'));
  assert.equal(c.root.readonly, true);
  assert.equal(c.root.path, '/r/rootfs');
  for (const d of ['/proc', '/dev', '/dev/pts', '/dev/shm', '/sys', '/sys/fs/cgroup']) assert.ok(c.mounts.some((m) => m.destination === d), d);
});

test('seccomp is converted for the capability set and architecture; unconfined drops it', () => {
  const c = buildOciConfig(spec(), host());
  const s = c.linux.seccomp!;
  assert.equal(s.defaultAction, 'SCMP_ACT_ERRNO');
  assert.equal(s.defaultErrnoRet, 38);
  assert.deepEqual(s.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
  const names = s.syscalls.flatMap((r) => r.names);
  assert.ok(names.includes('chroot'), 'CAP_SYS_CHROOT is a default cap');
  assert.ok(!names.includes('bpf'), 'CAP_SYS_ADMIN is not');
  assert.ok(names.includes('arch_prctl') && !names.includes('s390_pci_mmio_read'));
  assert.ok(names.includes('open_by_handle_at'), 'excluded only with CAP_DAC_READ_SEARCH');
  const pers = s.syscalls.find((r) => r.names.includes('personality'))!;
  assert.deepEqual(pers.args, [{ index: 0, value: 8, valueTwo: 0, op: 'SCMP_CMP_EQ' }]);
  const admin = buildOciConfig(spec({ capAdd: ['SYS_ADMIN', 'DAC_READ_SEARCH'] }), host()).linux.seccomp!.syscalls.flatMap((r) => r.names);
  assert.ok(admin.includes('bpf') && !admin.includes('open_by_handle_at'));
  assert.equal(buildOciConfig(spec({ seccomp: 'unconfined' }), host()).linux.seccomp, undefined);
});

test('the default profile refuses CLONE_NEWUSER on clone and unshare (EPERM) and clone3 (ENOSYS); CAP_SYS_ADMIN, unconfined lift it', () => {
  const s = buildOciConfig(spec(), host()).linux.seccomp!;
  const rules = (n: string) => s.syscalls.filter((r) => r.names.includes(n));
  // no unconditional allow is left for the three
  for (const n of ['clone', 'clone3', 'unshare']) assert.ok(!rules(n).some((r) => r.action === 'SCMP_ACT_ALLOW' && !r.args), n);
  for (const n of ['clone', 'unshare']) {
    assert.deepEqual(rules(n).map((r) => [r.action, r.errnoRet, r.args]), [
      ['SCMP_ACT_ALLOW', undefined, [{ index: 0, value: CLONE_NEWUSER, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }]],
      ['SCMP_ACT_ERRNO', 1, [{ index: 0, value: CLONE_NEWUSER, valueTwo: CLONE_NEWUSER, op: 'SCMP_CMP_MASKED_EQ' }]],
    ]);
  }
  assert.deepEqual(rules('clone3').map((r) => [r.action, r.errnoRet]), [['SCMP_ACT_ERRNO', 38]]);
  // other syscalls of the big allow rule are still there
  assert.ok(s.syscalls.some((r) => r.action === 'SCMP_ACT_ALLOW' && !r.args && r.names.includes('setns') && r.names.includes('read')));
  assert.equal(CLONE_NEWUSER, 0x10000000);
  // s390x passes clone's flags second
  assert.equal(refuseUserNamespaces({ defaultAction: 'SCMP_ACT_ERRNO', architectures: [], syscalls: [] }, 's390x').syscalls[0]!.args![0]!.index, 1);
  const admin = buildOciConfig(spec({ capAdd: ['SYS_ADMIN'] }), host()).linux.seccomp!;
  assert.ok(admin.syscalls.some((r) => r.action === 'SCMP_ACT_ALLOW' && !r.args && r.names.includes('unshare') && r.names.includes('clone3')));
  assert.ok(!admin.syscalls.some((r) => r.action === 'SCMP_ACT_ERRNO' && r.names.includes('unshare')));
});

test('exec and the first process share one capability rule (containerCaps), --privileged = every cap held', () => {
  assert.deepEqual(containerCaps(spec()), buildOciConfig(spec(), host()).process.capabilities.bounding);
  assert.deepEqual(containerCaps(spec({ capAdd: ['NET_RAW'], capDrop: ['CHOWN'] })), buildOciConfig(spec({ capAdd: ['NET_RAW'], capDrop: ['CHOWN'] }), host()).process.capabilities.bounding);
  assert.equal(containerCaps(spec({ privileged: true, capDrop: ['ALL'] })).length, ALL_CAPS.length);
  assert.deepEqual(containerCaps(spec({ privileged: true }), ['CAP_CHOWN', 'CAP_SYS_ADMIN']), ['CAP_CHOWN', 'CAP_SYS_ADMIN']);
});

test('rlimits: default nofile, --ulimit, all clamped to the hard limits', () => {
  const r = buildRlimits([{ name: 'nproc', soft: 100, hard: 200000 }, { name: 'core', soft: -1, hard: -1 }], { nofile: 20000, nproc: 96364 });
  assert.deepEqual(r.find((x) => x.type === 'RLIMIT_NOFILE'), { type: 'RLIMIT_NOFILE', soft: 20000, hard: 20000 });
  assert.deepEqual(r.find((x) => x.type === 'RLIMIT_NPROC'), { type: 'RLIMIT_NPROC', soft: 100, hard: 96364 });
  assert.equal(r.find((x) => x.type === 'RLIMIT_CORE')!.hard, Number.MAX_SAFE_INTEGER);
});

test('resources: memory (+swap x2), cpus as quota, pids', () => {
  const c = buildOciConfig(spec({ resources: { memoryBytes: 128 * 1024 * 1024, nanoCpus: 1.5e9, pidsLimit: 50 } }), host());
  assert.deepEqual(c.linux.resources.memory, { limit: 134217728, swap: 268435456 });
  assert.deepEqual(c.linux.resources.cpu, { period: 100000, quota: 150000 });
  assert.deepEqual(c.linux.resources.pids, { limit: 50 });
  const noswap = buildOciConfig(spec({ resources: { memoryBytes: 1 << 27, memorySwapBytes: -1 } }), host());
  assert.deepEqual(noswap.linux.resources.memory, { limit: 1 << 27, swap: -1 });
  assert.deepEqual(buildOciConfig(spec({ resources: { memoryBytes: 1 << 27 } }), host({ swapAccounting: false })).linux.resources.memory, { limit: 1 << 27 });
  assert.equal(c.linux.cgroupsPath, '/hull/' + 'a'.repeat(64));
});

test('mounts: binds, tmpfs, etc files and --init', () => {
  const c = buildOciConfig(
    spec({
      init: true,
      mounts: [
        { type: 'bind', source: '/srv', destination: '/data', readOnly: true },
        { type: 'tmpfs', destination: '/run', readOnly: false, options: ['size=64m', 'exec'] },
      ],
    }),
    host({ initPath: '/usr/bin/tini-static', etc: { hosts: '/c/etc/hosts' } }),
  );
  assert.deepEqual(c.mounts.find((m) => m.destination === '/data'), { destination: '/data', type: 'bind', source: '/srv', options: ['rbind', 'rprivate', 'ro'] });
  const t = c.mounts.find((m) => m.destination === '/run')!;
  assert.equal(t.type, 'tmpfs');
  assert.ok(t.options.includes('size=64m') && t.options.includes('exec') && !t.options.includes('noexec'));
  assert.ok(c.mounts.some((m) => m.destination === '/etc/hosts' && m.source === '/c/etc/hosts'));
  assert.equal(c.mounts.find((m) => m.destination === '/dev/init')!.source, '/usr/bin/tini-static');
  assert.deepEqual(c.process.args, ['/dev/init', '--', 'echo', 'hello']);
});

test('process: user, env, cwd, terminal, no-new-privileges', () => {
  const c = buildOciConfig(spec({ noNewPrivileges: true, process: { args: ['sh'], env: ['A=1'], cwd: '/tmp', user: 'nobody', terminal: true, stdin: true } }), host({ user: { uid: 65534, gid: 65534, additionalGids: [5] } }));
  assert.deepEqual(c.process.user, { uid: 65534, gid: 65534, additionalGids: [5] });
  assert.equal(c.process.cwd, '/tmp');
  assert.equal(c.process.terminal, true);
  assert.equal(c.process.noNewPrivileges, true);
  assert.deepEqual(c.process.env, ['A=1']);
});
