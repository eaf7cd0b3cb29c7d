/** Docker's container-create body -> RunOptions (src/api/create.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseBind, parseCreate, pickWall } from '../../src/api/create.js';
import type { HttpError } from '../../src/api/errors.js';

/** What docker 28's CLI sends for `docker run --rm busybox echo hello` (abridged to the fields it sets). */
const cliBody = {
  Hostname: '', Domainname: '', User: '', AttachStdin: false, AttachStdout: true, AttachStderr: true, Tty: false, OpenStdin: false, StdinOnce: false,
  Env: [], Cmd: ['echo', 'hello'], Image: 'busybox', Volumes: null, WorkingDir: '', Entrypoint: null, OnBuild: null, Labels: {},
  HostConfig: {
    Binds: null, ContainerIDFile: '', LogConfig: { Type: '', Config: {} }, NetworkMode: 'default', PortBindings: {}, RestartPolicy: { Name: 'no', MaximumRetryCount: 0 },
    AutoRemove: true, VolumeDriver: '', VolumesFrom: null, ConsoleSize: [40, 120], CapAdd: null, CapDrop: null, CgroupnsMode: '', Dns: [], DnsOptions: [], DnsSearch: [],
    ExtraHosts: null, GroupAdd: null, IpcMode: '', Cgroup: '', Links: null, OomScoreAdj: 0, PidMode: '', Privileged: false, PublishAllPorts: false, ReadonlyRootfs: false,
    SecurityOpt: null, UTSMode: '', UsernsMode: '', ShmSize: 0, Isolation: '', CpuShares: 0, Memory: 0, NanoCpus: 0, CgroupParent: '', BlkioWeight: 0, CpuPeriod: 0,
    CpuQuota: 0, CpuRealtimePeriod: 0, CpuRealtimeRuntime: 0, CpusetCpus: '', CpusetMems: '', Devices: [], DeviceCgroupRules: null, DeviceRequests: null,
    MemoryReservation: 0, MemorySwap: 0, MemorySwappiness: null, OomKillDisable: null, PidsLimit: null, Ulimits: [], CpuCount: 0, CpuPercent: 0,
    IOMaximumIOps: 0, IOMaximumBandwidth: 0, MaskedPaths: null, ReadonlyPaths: null,
  },
  NetworkingConfig: { EndpointsConfig: {} },
};

test("the docker CLI's zero-valued create body maps to plain run options", () => {
  const r = parseCreate(cliBody, { name: 'web' });
  assert.equal(r.autoRemove, true);
  assert.deepEqual(r.consoleSize, [40, 120]);
  assert.deepEqual(r.opts, { image: 'busybox', cmd: ['echo', 'hello'], name: 'web', env: [], network: 'none', ulimits: [], isolation: 'container' });
});

test('resources, mounts, security and terminal fields', () => {
  const r = parseCreate(
    {
      Image: 'busybox', Cmd: ['sh'], Tty: true, OpenStdin: true, StdinOnce: true, AttachStdin: true, User: '1000:1000', WorkingDir: '/tmp', Hostname: 'h1', Env: ['A=1'],
      HostConfig: {
        Memory: 134217728, MemorySwap: -1, CpuQuota: 50000, CpuPeriod: 100000, PidsLimit: 64, ReadonlyRootfs: true, NetworkMode: 'host',
        Binds: ['/srv:/data:ro'], Mounts: [{ Type: 'tmpfs', Target: '/scratch', TmpfsOptions: { SizeBytes: 1048576, Mode: 0o1777 } }], Tmpfs: { '/run': 'size=1m,ro' },
        CapAdd: ['NET_ADMIN'], CapDrop: ['ALL'], SecurityOpt: ['no-new-privileges'], Ulimits: [{ Name: 'nofile', Soft: 10, Hard: 20 }], Init: true, Runtime: 'runc',
      },
    },
    { platform: 'linux/amd64' },
  );
  assert.equal(r.attachStdin, true);
  assert.equal(r.stdinOnce, true);
  assert.deepEqual(r.opts, {
    image: 'busybox', cmd: ['sh'], env: ['A=1'], workdir: '/tmp', user: '1000:1000', memoryBytes: 134217728, memorySwapBytes: -1, nanoCpus: 500000000, pidsLimit: 64,
    readOnly: true,
    mounts: [
      { type: 'bind', source: '/srv', destination: '/data', readOnly: true },
      { type: 'tmpfs', destination: '/scratch', readOnly: false, options: ['size=1048576', 'mode=1777'] },
      { type: 'tmpfs', destination: '/run', readOnly: true, options: ['size=1m'] },
    ],
    network: 'host', hostname: 'h1', capAdd: ['NET_ADMIN'], capDrop: ['ALL'], securityOpt: ['no-new-privileges'], ulimits: [{ name: 'nofile', soft: 10, hard: 20 }],
    init: true, interactive: true, tty: true, runtime: 'runc', isolation: 'container', platform: 'linux/amd64',
  });
});

test('Entrypoint arrays: the first word is the entrypoint, the rest leads the command; [] clears it', () => {
  assert.deepEqual(parseCreate({ Image: 'x', Entrypoint: ['sh', '-c'], Cmd: ['echo hi'] }, {}).opts, { image: 'x', entrypoint: 'sh', cmd: ['-c', 'echo hi'], network: 'none', isolation: 'container' });
  assert.deepEqual(parseCreate({ Image: 'x', Entrypoint: [], Cmd: ['ls'] }, {}).opts, { image: 'x', entrypoint: '', cmd: ['ls'], network: 'none', isolation: 'container' });
  assert.deepEqual(parseCreate({ Image: 'x', Entrypoint: 'top' }, {}).opts, { image: 'x', entrypoint: 'top', network: 'none', isolation: 'container' });
});

test('the VM wall: HostConfig.Runtime hull-vm or Isolation vm', () => {
  assert.deepEqual(pickWall('hull-vm', ''), { isolation: 'vm' });
  assert.deepEqual(pickWall(undefined, 'vm'), { isolation: 'vm' });
  assert.deepEqual(pickWall('', 'default'), { isolation: 'container' });
  assert.deepEqual(pickWall('crun', undefined), { isolation: 'container', runtime: 'crun' });
  assert.throws(() => pickWall('kata', undefined), /unknown runtime "kata"/);
  assert.throws(() => pickWall(undefined, 'hyperspace'), /Isolation/);
  assert.equal(parseCreate({ Image: 'x', HostConfig: { Runtime: 'hull-vm' } }, {}).opts.isolation, 'vm');
});

test('what hull cannot honour is a 400 naming the field; wrong types too', () => {
  const bad = (body: object, re: RegExp) => assert.throws(() => parseCreate(body as Record<string, unknown>, {}), (e: HttpError) => e.status === 400 && re.test(e.message));
  bad({}, /Image/);
  bad({ Image: 'x', HostConfig: { Privileged: true } }, /HostConfig.Privileged/);
  bad({ Image: 'x', HostConfig: { PortBindings: { '80/tcp': [{ HostPort: '8080' }] } } }, /PortBindings/);
  bad({ Image: 'x', HostConfig: { RestartPolicy: { Name: 'always' } } }, /RestartPolicy/);
  bad({ Image: 'x', HostConfig: { NetworkMode: 'mynet' } }, /NetworkMode/);
  bad({ Image: 'x', Labels: { a: 'b' } }, /Labels/);
  bad({ Image: 'x', Volumes: { '/data': {} } }, /Volumes/);
  bad({ Image: 'x', Cmd: 7 }, /Cmd/);
  bad({ Image: 'x', HostConfig: { Memory: '1g' } }, /HostConfig.Memory/);
  bad({ Image: 'x', HostConfig: { Binds: ['vol:/data'] } }, /named volume/);
  bad({ Image: 'x', HostConfig: { Mounts: [{ Type: 'volume', Target: '/d' }] } }, /Mounts\[0\].Type/);
  bad({ Image: 'x', HostConfig: 'nope' }, /HostConfig/);
});

test('parseBind', () => {
  assert.deepEqual(parseBind('/a:/b'), { type: 'bind', source: '/a', destination: '/b', readOnly: false });
  assert.deepEqual(parseBind('/a:/b:ro,Z'), { type: 'bind', source: '/a', destination: '/b', readOnly: true });
  assert.throws(() => parseBind('/a'), /SOURCE:DEST/);
  assert.throws(() => parseBind('/a:b'), /absolute/);
  assert.throws(() => parseBind('/a:/b:bogus'), /unknown option bogus/);
});
