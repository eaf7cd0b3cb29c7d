/**
 * The shim's pure parts as data: its command line, where a pod lives, OCI spec -> guest
 * container (process, mounts, role, VM size), the pod-mode records and frames, the QEMU and
 * virtiofsd command lines, mount(8) argv, stdio targets, and the events it forwards.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseShimArgs, podPaths } from '../../src/shim/args.js';
import { stdioTarget } from '../../src/shim/fifo-io.js';
import { mountArgs } from '../../src/shim/mounts.js';
import { containerMounts, CRI, groupOf, guestProcess, netnsPath, podVmSize, taskRole, checkSpec, DEFAULT_POD_MEMORY_MIB, POD_BASE_MEMORY_MIB } from '../../src/shim/oci-guest.js';
import { buildPodQemuArgs, buildVirtiofsdArgs } from '../../src/shim/pod-args.js';
import { decodePidList, encodePodExec, encodePodSpecFile, encodeRun, encodeSignal, R_POD } from '../../src/shim/pod-protocol.js';
import { decode, decodeRaw } from '../../src/shim/protos.js';
import { encodeForward, TOPIC } from '../../src/shim/publisher.js';
import { podNetworkFromIp } from '../../src/shim/pod-net.js';

test('command line: containerd start and delete, Go flag syntax, errors', () => {
  const f = parseShimArgs(['-namespace', 'k8s.io', '-address', '/run/c.sock', '-publish-binary', '/usr/bin/containerd', '-id', 'abc', '-debug', 'start']);
  assert.deepEqual({ ns: f.namespace, a: f.address, p: f.publishBinary, id: f.id, d: f.debug, act: f.action }, { ns: 'k8s.io', a: '/run/c.sock', p: '/usr/bin/containerd', id: 'abc', d: true, act: 'start' });
  const d = parseShimArgs(['--namespace=n', '-id=x', '-bundle', '/b', 'delete']);
  assert.deepEqual([d.namespace, d.id, d.bundle, d.action, d.debug], ['n', 'x', '/b', 'delete', false]);
  assert.throws(() => parseShimArgs(['-nope', 'start']), /flag provided but not defined: -nope/);
  assert.throws(() => parseShimArgs(['-id']), /needs an argument/);
  assert.equal(parseShimArgs(['-v']).version, true);
});

test('pod paths: one per (containerd, namespace, group), stable, short enough for a socket', () => {
  const a = podPaths('/run/containerd/containerd.sock', 'k8s.io', 'sb1', '/run/hull/shim');
  assert.equal(a.key.length, 32);
  assert.deepEqual(podPaths('/run/containerd/containerd.sock', 'k8s.io', 'sb1', '/run/hull/shim'), a);
  assert.notEqual(podPaths('/other.sock', 'k8s.io', 'sb1', '/run/hull/shim').key, a.key);
  assert.notEqual(podPaths('/run/containerd/containerd.sock', 'default', 'sb1', '/run/hull/shim').key, a.key);
  assert.equal(a.socket, `/run/hull/shim/${a.key}/ttrpc.sock`);
  assert.throws(() => podPaths('a', 'b', 'c', `/${'x'.repeat(100)}`), /longer than a unix socket address/);
});

const sandbox = { annotations: { [CRI.CONTAINER_TYPE]: 'sandbox', [CRI.SANDBOX_ID]: 'sb1', [CRI.SANDBOX_MEMORY]: String(64 << 20), [CRI.SANDBOX_CPU_QUOTA]: '150000', [CRI.SANDBOX_CPU_PERIOD]: '100000' } };

test('roles and groups: a CRI container joins its sandbox\'s shim; a task alone has its own', () => {
  assert.deepEqual(taskRole(sandbox), { kind: 'sandbox' });
  const ctr = { annotations: { [CRI.CONTAINER_TYPE]: 'container', [CRI.SANDBOX_ID]: 'sb1' } };
  assert.deepEqual(taskRole(ctr), { kind: 'container', sandboxId: 'sb1' });
  assert.equal(groupOf('c1', ctr), 'sb1');
  assert.equal(groupOf('sb1', sandbox), 'sb1');
  assert.equal(groupOf('t1', {}), 't1');
  assert.throws(() => taskRole({ annotations: { [CRI.CONTAINER_TYPE]: 'container' } }), /sandbox-id/);
});

test('VM size: the pod annotations (sandbox), a task\'s own limits, or the default', () => {
  assert.deepEqual(podVmSize(sandbox), { memoryMiB: POD_BASE_MEMORY_MIB + 64, cpus: 3 });
  assert.deepEqual(podVmSize({ annotations: { [CRI.CONTAINER_TYPE]: 'sandbox' } }), { memoryMiB: DEFAULT_POD_MEMORY_MIB, cpus: 1 });
  assert.deepEqual(podVmSize({ linux: { resources: { memory: { limit: 256 << 20 }, cpu: { quota: 50000, period: 100000 } } } }), { memoryMiB: POD_BASE_MEMORY_MIB + 256, cpus: 2 });
  assert.equal(podVmSize({ linux: { resources: { cpu: { quota: 4_000_000, period: 100000 } } } }, 2).cpus, 2);
});

test('process: uid:gid, env, cwd, console size; bad specs are refused by name', () => {
  const p = guestProcess({ args: ['sh'], env: ['A=1'], cwd: '/w', user: { uid: 33, gid: 44 }, consoleSize: { height: 30, width: 100 } }, { terminal: true, stdin: true });
  assert.deepEqual(p, { args: ['sh'], env: ['A=1'], cwd: '/w', user: '33:44', tty: true, stdin: true, rows: 30, cols: 100 });
  assert.throws(() => guestProcess({ args: [] }, { terminal: false, stdin: false }), /no args/);
  assert.throws(() => checkSpec({ process: { cwd: 'rel' } }), /cwd must be an absolute path/);
  assert.throws(() => checkSpec({ mounts: [{}] }), /mounts/);
  assert.throws(() => checkSpec('x'), /not a JSON object/);
});

test('mounts: pseudo filesystems are the guest\'s, tmpfs stays tmpfs, binds go through the share', () => {
  const m = containerMounts([
    { destination: '/proc', type: 'proc', source: 'proc' },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/shm', type: 'bind', source: '/run/sandbox/shm', options: ['rbind', 'ro'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup' },
    { destination: '/etc/hosts', type: 'bind', source: '/var/lib/sb/hosts', options: ['rbind', 'rprivate', 'rw'] },
    { destination: '/data/', type: 'none', source: '/srv/data', options: ['bind', 'ro'] },
    { destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'mode=755', 'size=10m'] },
  ]);
  assert.deepEqual(m.tmpfs, [{ destination: '/run', options: 'mode=755,size=10m' }]);
  assert.deepEqual(m.binds, [
    { source: '/var/lib/sb/hosts', destination: '/etc/hosts', readOnly: false },
    { source: '/srv/data', destination: '/data', readOnly: true },
  ]);
  assert.throws(() => containerMounts([{ destination: '/x', type: 'nfs', source: 'h:/e' }]), /type "nfs" is not supported/);
  assert.throws(() => containerMounts([{ destination: 'rel', type: 'tmpfs' }]), /absolute/);
  assert.throws(() => containerMounts([{ destination: '/x', type: 'bind', source: 'rel' }]), /not an absolute host path/);
});

test('netns: the sandbox spec\'s network namespace path', () => {
  assert.equal(netnsPath({ linux: { namespaces: [{ type: 'pid' }, { type: 'network', path: '/var/run/netns/cni-1' }] } }), '/var/run/netns/cni-1');
  assert.equal(netnsPath({ linux: { namespaces: [{ type: 'network' }] } }), undefined);
});

/** Splits spec records: [tag, bytes][]. */
function records(b: Buffer): [number, Buffer][] {
  const out: [number, Buffer][] = [];
  for (let o = 0; o < b.length;) {
    const tag = b.readUInt16LE(o);
    const n = b.readUInt32LE(o + 2);
    out.push([tag, b.subarray(o + 6, o + 6 + n)]);
    o += 6 + n;
  }
  return out;
}

test('pod protocol: spec file, RUN and EXEC payloads, signals, pid lists', () => {
  const f = encodePodSpecFile({ hostname: 'p1', clockNs: 5n });
  assert.equal(f.subarray(0, 8).toString(), 'HULLSPEC');
  assert.equal(f.readUInt32LE(8), 1);
  const fr = records(f.subarray(12));
  assert.deepEqual(fr.map(([t]) => t), [R_POD.POD, R_POD.HOSTNAME, R_POD.CLOCK]);
  const run = records(encodeRun({
    process: { args: ['sh', '-c', 'x'], env: ['A=1'], cwd: '/', user: '0:0' }, root: 'c1/rootfs', readOnly: true,
    tmpfs: [{ destination: '/run', options: 'size=1m' }], binds: [{ source: 'c1/m0', destination: '/etc/hosts', readOnly: true }],
  }));
  const get = (tag: number) => run.filter(([t]) => t === tag).map(([, v]) => v.toString());
  assert.deepEqual(get(1), ['sh', '-c', 'x']);
  assert.deepEqual(get(R_POD.ROOT), ['c1/rootfs']);
  assert.deepEqual(get(R_POD.BIND), ['c1/m0\0/etc/hosts\0ro']);
  assert.deepEqual(get(R_POD.TMPFS), ['/run\0size=1m']);
  assert.equal(get(R_POD.READONLY).length, 1);
  for (const bad of ['/abs', '../up', 'a/../../b', '']) {
    assert.throws(() => encodeRun({ process: { args: ['x'], env: [] }, root: bad, tmpfs: [], binds: [] }), /not a path inside the pod share/);
  }
  const ex = records(encodePodExec({ args: ['ls'], env: [] }, 7));
  assert.deepEqual(ex.find(([t]) => t === R_POD.CONTAINER)?.[1], Buffer.from([7, 0]));
  assert.deepEqual([...encodeSignal(15, true)], [15, 0, 0, 0, 1]);
  assert.deepEqual(decodePidList(Buffer.from([1, 0, 0, 0, 22, 1, 0, 0])), [1, 278]);
  assert.throws(() => decodePidList(Buffer.alloc(3)), /PIDLIST/);
});

test('QEMU for a pod: no disk, memfd RAM for virtio-fs, the share device, the pod\'s NICs', () => {
  const ports = { status: { kind: 'file' as const, path: 'status' }, stdout: { kind: 'null' as const }, stderr: { kind: 'null' as const }, ctl: { kind: 'listen' as const, path: 'ctl.sock' } };
  const a = buildPodQemuArgs({ kernel: '/k', initrd: '/i', accel: 'tcg', memoryMiB: 192, ports, virtiofsSocket: 'vfs.sock' });
  assert.ok(!a.includes('-drive'), 'a pod VM has no disk');
  assert.ok(a.includes('memory-backend-memfd,id=ram,size=192M'));
  assert.ok(a.some((x) => x.startsWith('microvm,') && x.includes('memory-backend=ram')));
  assert.ok(a.includes('socket,id=vfs,path=vfs.sock'));
  assert.ok(a.includes('vhost-user-fs-device,chardev=vfs,tag=hullpod'));
  assert.ok(!a.includes('-netdev'));
  const n = buildPodQemuArgs({ kernel: '/k', initrd: '/i', accel: 'tcg', ports, virtiofsSocket: 'v', nics: [{ fd: 10, mac: '02:00:00:00:00:01' }] });
  assert.ok(n.includes('tap,id=net0,fd=10,vhost=off'));
  assert.ok(n.includes('virtio-net-device,netdev=net0,mac=02:00:00:00:00:01'));
});

test('pod network: the CNI veth (MAC, MTU, pod IP) and the routes, from ip -j', () => {
  const addr = JSON.stringify([
    { ifname: 'lo', link_type: 'loopback', address: '00:00:00:00:00:00', mtu: 65536, addr_info: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8 }] },
    { ifname: 'eth0', link_type: 'ether', address: '9A:E2:57:DC:53:7F', mtu: 1450, addr_info: [{ family: 'inet', local: '10.132.24.2', prefixlen: 24 }, { family: 'inet6', local: 'fe80::1', prefixlen: 64 }] },
  ]);
  const route = JSON.stringify([{ dst: 'default', gateway: '10.132.24.1' }, { dst: '10.132.24.0/24', dev: 'eth0' }]);
  assert.deepEqual(podNetworkFromIp(addr, route), {
    nics: [{ ifname: 'eth0', tap: 'tap0', mtu: 1450, mac: '9a:e2:57:dc:53:7f', address: '10.132.24.2/24' }],
    routes: [{ destination: '0.0.0.0/0', gateway: '10.132.24.1' }],
  });
  const f = encodePodSpecFile({ hostname: 'p', network: podNetworkFromIp(addr, route) });
  const recs = records(f.subarray(12)).filter(([t]) => t === 32 || t === 33).map(([t, v]) => `${t}:${v.toString().replace(/\0/g, '|')}`);
  assert.deepEqual(recs, ['32:eth0|9a:e2:57:dc:53:7f|10.132.24.2/24|1450', '33:0.0.0.0/0|10.132.24.1']);
  assert.throws(() => podNetworkFromIp('nope', '[]'), /no JSON/);
});

test('virtiofsd: chroot sandbox (sees mounts made later), nofile left alone', () => {
  const a = buildVirtiofsdArgs({ source: '/p/share', socket: '/p/vm/vfs.sock' });
  assert.deepEqual(a, ['--socket-path=/p/vm/vfs.sock', '-o', 'source=/p/share', '-o', 'sandbox=chroot', '-o', 'cache=auto', '--rlimit-nofile=0', '--thread-pool-size=1']);
});

test('mount(8) argv of containerd rootfs mounts', () => {
  assert.deepEqual(mountArgs({ type: 'overlay', source: 'overlay', options: ['index=off', 'workdir=/w', 'upperdir=/u', 'lowerdir=/l1:/l2'] }, '/b/rootfs'),
    ['-t', 'overlay', '-o', 'index=off,workdir=/w,upperdir=/u,lowerdir=/l1:/l2', 'overlay', '/b/rootfs']);
  assert.deepEqual(mountArgs({ type: 'bind', source: '/snap/1', options: ['ro'] }, '/t'), ['-t', 'none', '-o', 'rbind,ro', '/snap/1', '/t']);
  assert.throws(() => mountArgs({ type: 'x;rm', source: 's', options: [] }, '/t'), /not a filesystem type/);
});

test('stdio: fifo paths, file:// logs; other schemes refused', () => {
  assert.deepEqual(stdioTarget(''), { kind: 'none' });
  assert.deepEqual(stdioTarget('/run/x/stdout'), { kind: 'fifo', path: '/run/x/stdout' });
  assert.deepEqual(stdioTarget('file:///var/log/a%20b.log'), { kind: 'file', path: '/var/log/a b.log' });
  assert.throws(() => stdioTarget('binary:///usr/bin/logger'), /binary:\/\//);
  assert.throws(() => stdioTarget('rel'), /absolute/);
});

test('events: a Forward envelope with the namespace, topic and a typeurl-style Any', () => {
  const b = encodeForward('k8s.io', TOPIC.EXIT, { containerId: 'c1', id: 'c1', pid: 9, exitStatus: 137, exitedAt: { seconds: 3, nanos: 0 } }, new Date(5000));
  const r = decodeRaw<{ envelope: { namespace: string; topic: string; timestamp: { seconds: number }; event: { type_url: string; value: Buffer } } }>('containerd.services.events.ttrpc.v1.ForwardRequest', b);
  assert.equal(r.envelope.namespace, 'k8s.io');
  assert.equal(r.envelope.topic, '/tasks/exit');
  assert.equal(Number(r.envelope.timestamp.seconds), 5);
  assert.equal(r.envelope.event.type_url, 'containerd.events.TaskExit');
  const ev = decode<{ containerId: string; exitStatus: number; pid: number }>('containerd.events.TaskExit', r.envelope.event.value);
  assert.deepEqual([ev.containerId, ev.exitStatus, ev.pid], ['c1', 137, 9]);
  assert.throws(() => encodeForward('n', '/tasks/bogus', {}), /no event message/);
});
