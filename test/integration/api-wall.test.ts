/**
 * The container wall's options through `hull serve`, driven by the real docker CLI: the new
 * defaults, --cap-add, --privileged (and its warning), --device, --group-add, --sysctl and
 * --security-opt seccomp=FILE (which docker's CLI reads and sends as the profile's text).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { docker, request, serveForFile } from './api-harness.js';

const f = serveForFile('hull-api-wall-');
const have = f.have;
let dir: string;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-api-wall-files-'));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const skip = (t: { skip(m: string): void }) => t.skip('the docker CLI is not installed');
const run = (...args: string[]) => docker(f.s, ['run', '--rm', '--network', 'none', ...args]);

test('docker run: the defaults refuse ping, mknod and unshare -U; --cap-add gives them back', (t) => {
  if (!have) return skip(t);
  const no = run('busybox', 'sh', '-c', 'ping -c1 -W2 127.0.0.1; mknod /tmp/n c 1 3; unshare -U true; echo done');
  assert.equal(no.code, 0, no.stderr);
  assert.match(no.stderr, /ping: .*(permission denied|not permitted)/i);
  assert.match(no.stderr, /mknod: \/tmp\/n: Operation not permitted/);
  assert.match(no.stderr, /unshare: .*Operation not permitted/);
  const yes = run('--cap-add', 'NET_RAW', '--cap-add', 'MKNOD', '--cap-add', 'SYS_ADMIN', 'busybox', 'sh', '-c', 'ping -c1 -W2 127.0.0.1 >/dev/null && mknod /tmp/n c 1 3 && unshare -U true && echo all-ok');
  assert.equal(yes.code, 0, yes.stderr);
  assert.equal(yes.stdout.trim(), 'all-ok');
});

test('docker run --privileged, --device, --group-add, --sysctl, --security-opt seccomp=FILE', async (t) => {
  if (!have) return skip(t);
  const p = run('--privileged', 'busybox', 'sh', '-c', 'grep Seccomp: /proc/self/status; grep " /sys sysfs" /proc/mounts');
  assert.equal(p.code, 0, p.stderr);
  assert.match(p.stdout, /Seccomp:\s+0/);
  assert.match(p.stdout, / \/sys sysfs rw,/);
  const c = docker(f.s, ['create', '--privileged', 'busybox', 'true']);
  assert.equal(c.code, 0, c.stderr);
  assert.match(c.stderr, /WARNING: --privileged/);
  const id = c.stdout.trim();
  assert.equal(docker(f.s, ['inspect', '-f', '{{.HostConfig.Privileged}}', id]).stdout.trim(), 'true');
  docker(f.s, ['rm', id]);

  const d = run('--device', '/dev/null:/dev/hull-null:rw', '--group-add', '4321', '--sysctl', 'net.ipv4.ip_unprivileged_port_start=99', 'busybox', 'sh', '-c', 'ls -l /dev/hull-null; id -G; cat /proc/sys/net/ipv4/ip_unprivileged_port_start');
  assert.equal(d.code, 0, d.stderr);
  assert.match(d.stdout, /^c.* 1,\s+3 .*\/dev\/hull-null$/m);
  assert.ok(d.stdout.split(/\s+/).includes('4321'), d.stdout);
  assert.match(d.stdout, /^99$/m);
  // docker's CLI refuses vm.* itself; the server refuses what gets past it (and API callers)
  const g = await request(f.s.socket, 'POST', '/containers/create', JSON.stringify({ Image: 'busybox', Cmd: ['true'], HostConfig: { Sysctls: { 'kernel.pid_max': '99999' }, NetworkMode: 'none' } }));
  assert.equal(g.status, 400, g.body);
  assert.match((JSON.parse(g.body) as { message: string }).message, /"kernel.pid_max" is not namespaced/);
  const nd = await request(f.s.socket, 'POST', '/containers/create', JSON.stringify({ Image: 'busybox', Cmd: ['true'], HostConfig: { Devices: [{ PathOnHost: '/etc/hostname', PathInContainer: '/dev/x', CgroupPermissions: 'rwm' }], NetworkMode: 'none' } }));
  assert.equal(nd.status, 400, nd.body);
  assert.match((JSON.parse(nd.body) as { message: string }).message, /\/etc\/hostname: not a device node/);

  const file = path.join(dir, 'no-mkdir.json');
  fs.writeFileSync(file, JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }] }, null, 2));
  const sc = run('--security-opt', `seccomp=${file}`, 'busybox', 'mkdir', '/tmp/d');
  assert.notEqual(sc.code, 0);
  assert.match(sc.stderr, /Operation not permitted/);
  fs.writeFileSync(file, JSON.stringify({ defaultAction: 'SCMP_ACT_MAYBE' }));
  const bad = run('--security-opt', `seccomp=${file}`, 'busybox', 'true');
  assert.equal(bad.code, 125);
  assert.match(bad.stderr, /seccomp profile: defaultAction "SCMP_ACT_MAYBE"/);
  assert.equal(docker(f.s, ['ps', '-aq']).stdout, '', 'nothing created');
});

test('HostConfig.UsernsMode "auto" through the API (docker\'s CLI sends only host): its own range; others refused', async (t) => {
  if (!have) return skip(t);
  const c = await request(f.s.socket, 'POST', '/containers/create', JSON.stringify({ Image: 'busybox', Cmd: ['cat', '/proc/self/uid_map'], HostConfig: { UsernsMode: 'auto', NetworkMode: 'none' } }));
  assert.equal(c.status, 201, c.body);
  const id = (JSON.parse(c.body) as { Id: string }).Id;
  const r = docker(f.s, ['start', '-a', id]);
  assert.equal(r.code, 0, r.stderr);
  const range = JSON.parse(docker(f.s, ['inspect', '-f', '{{json .HostConfig.HullIdRange}}', id]).stdout) as { Uid: number };
  assert.match(r.stdout, new RegExp(`^\\s*0\\s+${range.Uid}\\s+65536$`, 'm'));
  assert.equal(docker(f.s, ['inspect', '-f', '{{.HostConfig.UsernsMode}}', id]).stdout.trim(), 'auto');
  docker(f.s, ['rm', id]);
  const bad = await request(f.s.socket, 'POST', '/containers/create', JSON.stringify({ Image: 'busybox', HostConfig: { UsernsMode: 'keep-id' } }));
  assert.equal(bad.status, 400, bad.body);
  assert.match(bad.body, /invalid --userns/);
});
