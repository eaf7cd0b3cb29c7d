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
  assert.deepEqual(r.opts, { image: 'busybox', cmd: ['echo', 'hello'], name: 'web', env: [], network: 'bridge', ulimits: [], isolation: 'container' });
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
    init: true, interactive: true, stdinOnce: true, tty: true, runtime: 'runc', isolation: 'container', platform: 'linux/amd64',
  });
});

test('Entrypoint arrays: the first word is the entrypoint, the rest leads the command; [] clears it', () => {
  assert.deepEqual(parseCreate({ Image: 'x', Entrypoint: ['sh', '-c'], Cmd: ['echo hi'] }, {}).opts, { image: 'x', entrypoint: 'sh', cmd: ['-c', 'echo hi'], network: 'bridge', isolation: 'container' });
  assert.deepEqual(parseCreate({ Image: 'x', Entrypoint: [], Cmd: ['ls'] }, {}).opts, { image: 'x', entrypoint: '', cmd: ['ls'], network: 'bridge', isolation: 'container' });
  assert.deepEqual(parseCreate({ Image: 'x', Entrypoint: 'top' }, {}).opts, { image: 'x', entrypoint: 'top', network: 'bridge', isolation: 'container' });
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
  bad({ Image: 'x', HostConfig: { Privileged: 'yes' } }, /HostConfig.Privileged/);
  bad({ Image: 'x', HostConfig: { Devices: [{ PathInContainer: '/dev/x' }] } }, /Devices\[0\].PathOnHost/);
  bad({ Image: 'x', HostConfig: { Sysctls: { 'net.ipv4.ip_forward': 1 } } }, /HostConfig.Sysctls/);
  bad({ Image: 'x', HostConfig: { DeviceCgroupRules: ['c 1:3 rwm'] } }, /DeviceCgroupRules/);
  bad({ Image: 'x', HostConfig: { PortBindings: { '80/sctp': [{ HostPort: '8080' }] } } }, /PortBindings.*sctp/);
  bad({ Image: 'x', HostConfig: { PortBindings: { '80/tcp': [{ HostIp: '::1', HostPort: '8080' }] } } }, /IPv6/);
  bad({ Image: 'x', NetworkingConfig: { EndpointsConfig: { n: { IPAMConfig: { IPv6Address: '::2' } } } } }, /IPv6Address/);
  bad({ Image: 'x', HostConfig: { RestartPolicy: { Name: 'always' } } }, /RestartPolicy/);
  bad({ Image: 'x', HostConfig: { NetworkMode: 7 } }, /NetworkMode/);
  bad({ Image: 'x', Labels: { a: 1 } }, /Labels/);
  bad({ Image: 'x', Volumes: ['/data'] }, /Volumes/);
  bad({ Image: 'x', Cmd: 7 }, /Cmd/);
  bad({ Image: 'x', HostConfig: { Memory: '1g' } }, /HostConfig.Memory/);
  bad({ Image: 'x', HostConfig: { Binds: ['v/l:/data'] } }, /invalid characters/);
  bad({ Image: 'x', HostConfig: { Mounts: [{ Type: 'npipe', Target: '/d' }] } }, /Mounts\[0\].Type/);
  bad({ Image: 'x', HostConfig: { Mounts: [{ Type: 'volume', Target: '/d', VolumeOptions: { DriverConfig: { Name: 'nfs' } } }] } }, /DriverConfig.Name/);
  bad({ Image: 'x', HostConfig: 'nope' }, /HostConfig/);
});

test('parseBind', () => {
  assert.deepEqual(parseBind('/a:/b'), { type: 'bind', source: '/a', destination: '/b', readOnly: false });
  assert.deepEqual(parseBind('/a:/b:ro,Z'), { type: 'bind', source: '/a', destination: '/b', readOnly: true });
  assert.throws(() => parseBind('/a'), /SOURCE:DESTINATION/);
  assert.throws(() => parseBind('/a:b'), /invalid mode: b/);
  assert.throws(() => parseBind('/a:/b:bogus'), /invalid mode: bogus/);
  assert.deepEqual(parseBind('vol1:/b:ro'), { type: 'volume', source: 'vol1', destination: '/b', readOnly: true });
  assert.deepEqual(parseBind('/data:ro'), { type: 'volume', destination: '/data', readOnly: true });
});

test('labels, anonymous volumes (Config.Volumes) and volume mounts reach RunOptions', () => {
  const o = parseCreate({
    Image: 'busybox', Labels: { 'com.docker.compose.project': 'p', empty: '' }, Volumes: { '/anon': {}, '/named': {} },
    HostConfig: { Binds: ['web:/named:rw'], Mounts: [{ Type: 'volume', Source: 'mv', Target: '/m', ReadOnly: true, VolumeOptions: { NoCopy: true } }, { Type: 'volume', Target: '/a2' }] },
  }, {}).opts;
  assert.deepEqual(o.labels, { 'com.docker.compose.project': 'p', empty: '' });
  assert.deepEqual(o.mounts, [
    { type: 'volume', source: 'web', destination: '/named', readOnly: false },
    { type: 'volume', source: 'mv', destination: '/m', readOnly: true, noCopy: true },
    { type: 'volume', destination: '/a2', readOnly: false },
    { type: 'volume', destination: '/anon', readOnly: false },
  ]);
});

test('networking: NetworkMode, EndpointsConfig, PortBindings, PublishAllPorts, ExposedPorts, DNS and hosts', () => {
  const o = parseCreate({
    Image: 'x',
    ExposedPorts: { '80/tcp': {}, '53/udp': {} },
    MacAddress: '02:42:0a:00:00:09',
    HostConfig: {
      NetworkMode: 'appnet',
      PortBindings: { '80/tcp': [{ HostIp: '', HostPort: '8080' }, { HostIp: '127.0.0.1', HostPort: '' }], '53/udp': [{ HostIp: '', HostPort: '' }], '81/tcp': null },
      PublishAllPorts: true,
      Dns: ['1.1.1.1'], DnsSearch: ['x.test'], DnsOptions: ['ndots:2'], ExtraHosts: ['db:10.0.0.5', 'gw:host-gateway'],
    },
    NetworkingConfig: { EndpointsConfig: { appnet: { Aliases: ['web'], IPAMConfig: { IPv4Address: '10.214.9.9' } }, other: { Aliases: ['w2'] } } },
  }, {}).opts;
  assert.equal(o.network, 'appnet');
  assert.deepEqual([o.networkAliases, o.ip, o.macAddress], [['web'], '10.214.9.9', '02:42:0a:00:00:09']);
  assert.deepEqual(o.endpoints, { other: { aliases: ['w2'] } });
  assert.deepEqual(o.publish, ['8080:80/tcp', '127.0.0.1::80/tcp', '53/udp']);
  assert.equal(o.publishAll, true);
  assert.deepEqual(o.expose, ['80/tcp', '53/udp']);
  assert.deepEqual([o.dns, o.dnsSearch, o.dnsOptions, o.extraHosts], [['1.1.1.1'], ['x.test'], ['ndots:2'], ['db:10.0.0.5', 'gw:host-gateway']]);
  assert.equal(parseCreate({ Image: 'x', HostConfig: { NetworkMode: 'default' } }, {}).opts.network, 'bridge');
  assert.equal(parseCreate({ Image: 'x', NetworkDisabled: true }, {}).opts.network, 'none');
  assert.equal(parseCreate({ Image: 'x', HostConfig: { NetworkMode: 'container:db' } }, {}).opts.network, 'container:db');
});

test('Privileged (with its warning), Devices, GroupAdd, Sysctls, SecurityOpt with a profile reach RunOptions', () => {
  const r = parseCreate({
    Image: 'x',
    HostConfig: {
      Privileged: true,
      Devices: [{ PathOnHost: '/dev/null', PathInContainer: '/dev/n2', CgroupPermissions: 'rw' }, { PathOnHost: '/dev/zero', PathInContainer: '', CgroupPermissions: '' }],
      GroupAdd: ['audio', '1234'],
      Sysctls: { 'net.ipv4.ip_unprivileged_port_start': '0' },
      SecurityOpt: ['seccomp={"defaultAction":"SCMP_ACT_ALLOW"}'],
    },
  }, {});
  assert.equal(r.opts.privileged, true);
  assert.match(r.warnings.join('\n'), /--privileged/);
  assert.deepEqual(r.opts.devices, ['/dev/null:/dev/n2:rw', '/dev/zero:/dev/zero:rwm']);
  assert.deepEqual(r.opts.groupAdd, ['audio', '1234']);
  assert.deepEqual(r.opts.sysctls, { 'net.ipv4.ip_unprivileged_port_start': '0' });
  assert.deepEqual(r.opts.securityOpt, ['seccomp={"defaultAction":"SCMP_ACT_ALLOW"}']);
  // docker 28's CLI body (Privileged false, Devices []) asks for none of it
  const plain = parseCreate(cliBody as Record<string, unknown>, {});
  assert.equal(plain.opts.privileged, undefined);
  assert.equal(plain.opts.devices, undefined);
  assert.deepEqual(plain.warnings, []);
});
