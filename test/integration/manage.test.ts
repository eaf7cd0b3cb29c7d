/**
 * The day-to-day commands on both walls, through the hull CLI, the docker 28 CLI and dockerode
 * against `hull serve`: top, pause/unpause (the cgroup freezer; QMP stop/cont for a VM), rename
 * (the new name resolves on the network at once), stats (a VM's figures from QEMU's cgroup and
 * /proc), system df, and cp both ways (running and stopped containers, a running VM, volumes).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Docker from 'dockerode';
import { hull, importBusybox, makeTempRoot, type TempRoot } from '../helpers/hull.js';
import { endServe, docker, haveDocker, request, startServe, type Serve } from './api-harness.js';
import { detectCgroupLayout } from '../../src/runtime/container/cgroups.js';
import { isFrozen } from '../../src/runtime/container/freezer.js';
import { containerCgroupPath } from '../../src/runtime/container/cgroups.js';
import { qmpCommand } from '../../src/runtime/vm/qmp.js';

const haveDockerCli = haveDocker();
let tmp: TempRoot;
let s: Serve;
let d: Docker;
let work: string;

before(async () => {
  tmp = makeTempRoot('hull-manage-');
  importBusybox(tmp.root);
  s = await startServe(tmp.root);
  d = new Docker({ socketPath: s.socket });
  work = fs.mkdtempSync(path.join(tmp.root, 'work-'));
  fs.writeFileSync(path.join(work, 'in.txt'), 'to the container\n');
});

after(async () => {
  await endServe(s, tmp, { removeVolumes: true, checkMounts: true });
});

const ok = (r: { code: number; stdout: string; stderr: string }, what: string) => {
  assert.equal(r.code, 0, `${what}: ${r.stderr}`);
  return r.stdout;
};
const h = (...args: string[]) => hull(tmp.root, args);
const lines = (t: string) => t.split('\n').filter(Boolean);

test('top: a container from the host ps of its cgroup, a VM from ps in its guest; ps arguments; refusals', () => {
  ok(h('run', '-d', '--name', 'tc', '--network', 'none', 'busybox', 'sh', '-c', 'sleep 301 & exec sleep 302'), 'run tc');
  ok(h('run', '-d', '--name', 'tv', '--vm', '--network', 'none', 'busybox', 'sh', '-c', 'sleep 303 & exec sleep 304'), 'run tv');
  const c = lines(ok(h('top', 'tc'), 'top tc'));
  assert.match(c[0]!, /^UID\s+PID\s+PPID\s+C\s+STIME\s+TTY\s+TIME\s+CMD$/);
  assert.deepEqual(c.slice(1).map((l) => l.replace(/.*\s(sleep \d+)$/, '$1')).sort(), ['sleep 301', 'sleep 302'], 'only the container\'s processes');
  const aux = lines(ok(h('top', 'tc', 'aux'), 'top aux'));
  assert.match(aux[0]!, /^USER\s+PID\s+%CPU/);
  const v = lines(ok(h('top', 'tv'), 'top tv'));
  assert.match(v[0]!, /PID/);
  assert.ok(v.some((l) => /sleep 303$/.test(l)) && v.some((l) => /sleep 304$/.test(l)), `the guest's processes: ${v.join(' | ')}`);
  assert.ok(!v.some((l) => /\[kthreadd\]|\bps\b/.test(l)), 'without kernel threads or the ps that listed them');
  const bad = h('top', 'tc', 'x=PID');
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /specifying "x=PID" is not allowed/);
  ok(h('create', '--name', 'tcreated', 'busybox', 'true'), 'create');
  const notRunning = h('top', 'tcreated');
  assert.notEqual(notRunning.code, 0);
  assert.match(notRunning.stderr, /is not running/);
});

test('pause/unpause: the freezer holds a container, QMP stops a VM; ps shows (Paused); exec refused; stop works while paused', async () => {
  const id = ok(h('inspect', '-f', '{{.Id}}', 'tc'), 'inspect').trim();
  ok(h('pause', 'tc', 'tv'), 'pause');
  assert.equal(isFrozen(detectCgroupLayout(), containerCgroupPath(tmp.root, id)), true, 'the kernel reports the cgroup frozen');
  const vmId = ok(h('inspect', '-f', '{{.Id}}', 'tv'), 'inspect').trim();
  const vmDir = path.join(tmp.root, 'containers', vmId, 'vm');
  const qemuPid = (JSON.parse(fs.readFileSync(path.join(vmDir, 'monitor.json'), 'utf8')) as { pid: number }).pid;
  const qmp = `/proc/${qemuPid}/cwd/qmp.sock`; // the instance path is longer than sun_path
  const q = (await qmpCommand(qmp, 'query-status')) as { status: string; running: boolean };
  assert.deepEqual([q.status, q.running], ['paused', false], "QEMU says the VM's vCPUs are stopped");
  const ps = ok(h('ps', '--format', '{{.Names}} {{.Status}} {{.State}}'), 'ps');
  assert.match(ps, /^tc Up .* \(Paused\) paused$/m);
  assert.match(ps, /^tv Up .* \(Paused\) paused$/m);
  assert.equal(ok(h('inspect', '-f', '{{.State.Status}} {{.State.Running}} {{.State.Paused}}', 'tc'), 'inspect').trim(), 'paused true true');
  const ex = h('exec', 'tc', 'true');
  assert.notEqual(ex.code, 0);
  assert.match(ex.stderr, /is paused, unpause the container before exec/);
  assert.match(h('pause', 'tc').stderr, /is already paused/);
  ok(h('unpause', 'tc', 'tv'), 'unpause');
  assert.equal(isFrozen(detectCgroupLayout(), containerCgroupPath(tmp.root, id)), false);
  assert.equal((await qmpCommand(qmp, 'query-status') as { status: string }).status, 'running');
  assert.equal(ok(h('exec', 'tv', 'echo', 'vm back'), 'exec vm'), 'vm back\n');
  assert.match(h('unpause', 'tc').stderr, /is not paused/);
  ok(h('pause', 'tc'), 'pause again');
  ok(h('stop', '-t', '1', 'tc'), 'stop a paused container');
  assert.equal(ok(h('inspect', '-f', '{{.State.Status}}', 'tc'), 'inspect').trim(), 'exited');
  const np = h('pause', 'tc');
  assert.match(np.stderr, /is not running/);
});

test('rename: the new name everywhere, and it resolves on a user network at once', () => {
  ok(h('network', 'create', 'rnet'), 'network create');
  ok(h('run', '-d', '--name', 'rold', '--network', 'rnet', 'busybox', 'sleep', '300'), 'run');
  ok(h('rename', 'rold', 'rnew'), 'rename');
  assert.equal(ok(h('inspect', '-f', '{{.Name}}', 'rnew'), 'inspect').trim(), '/rnew');
  assert.notEqual(h('inspect', 'rold').code, 0);
  const look = ok(h('run', '--rm', '--network', 'rnet', 'busybox', 'nslookup', 'rnew'), 'nslookup');
  assert.match(look, /Name:\s+rnew/);
  const taken = h('rename', 'rnew', 'tcreated');
  assert.notEqual(taken.code, 0);
  assert.match(taken.stderr, /already in use/);
  assert.match(h('rename', 'rnew', 'bad name').stderr, /Invalid container name/);
  ok(h('rm', '-f', 'rnew'), 'rm');
  ok(h('network', 'rm', 'rnet'), 'network rm');
});

test('stats: containers from their cgroup, the VM from QEMU\'s cgroup and /proc; network counters', () => {
  ok(h('run', '-d', '--name', 'sc', 'busybox', 'sleep', '300'), 'run');
  const rows = lines(ok(h('stats', '--no-stream', '--format', 'json', 'sc', 'tv'), 'stats')).map((l) => JSON.parse(l) as Record<string, string>);
  const byName = Object.fromEntries(rows.map((r) => [r.Name, r]));
  assert.match(byName.sc!.MemUsage!, /^[\d.]+(B|KiB|MiB) \/ /);
  const [vmUse, vmLimit] = byName.tv!.MemUsage!.split(' / ');
  assert.match(vmUse!, /MiB$/, 'a VM charges megabytes of guest RAM and QEMU');
  assert.match(vmLimit!, /MiB$/, "its limit is its memory cgroup's (guest RAM plus QEMU's allowance)");
  assert.match(byName.sc!.NetIO!, /^\S+ \/ \S+$/);
});

test('docker CLI: top, pause/unpause, rename, stats, system df, cp both ways (container, stopped, VM)', (t) => {
  if (!haveDockerCli) return t.skip('the docker CLI is not installed');
  assert.match(ok(docker(s, ['top', 'sc']), 'top'), /sleep 300/);
  assert.match(ok(docker(s, ['top', 'tv']), 'top vm'), /sleep 304/);
  ok(docker(s, ['pause', 'sc']), 'pause');
  assert.match(ok(docker(s, ['ps', '--filter', 'status=paused', '--format', '{{.Names}}']), 'ps'), /^sc$/m);
  ok(docker(s, ['unpause', 'sc']), 'unpause');
  ok(docker(s, ['rename', 'sc', 'sc2']), 'rename');
  const st = lines(ok(docker(s, ['stats', '--no-stream', '--format', '{{.Name}}|{{.MemUsage}}|{{.PIDs}}', 'sc2', 'tv']), 'stats'));
  assert.equal(st.length, 2);
  assert.match(st.find((l) => l.startsWith('tv|'))!, /^tv\|[\d.]+MiB \/ [\d.]+MiB\|\d+$/);
  ok(docker(s, ['exec', 'sc2', 'sh', '-c', 'dd if=/dev/zero of=/big bs=1024 count=200 2>/dev/null']), 'write 200 KiB');
  const df = ok(docker(s, ['system', 'df', '--format', '{{.Type}} {{.TotalCount}} {{.Size}}']), 'df');
  assert.match(df, /^Images 1 /m);
  assert.match(df, /^Containers \d+ 20[4-9](\.\d+)?kB$/m, `the writable layer counts: ${df}`);
  const dfv = ok(docker(s, ['system', 'df', '-v']), 'df -v');
  assert.match(dfv, /sc2/);
  // cp: host -> running container -> host
  ok(docker(s, ['cp', path.join(work, 'in.txt'), 'sc2:/tmp/']), 'cp in');
  assert.equal(ok(docker(s, ['exec', 'sc2', 'cat', '/tmp/in.txt']), 'cat'), 'to the container\n');
  ok(docker(s, ['cp', path.join(work, 'in.txt'), 'sc2:/tmp/renamed.txt']), 'cp in renamed');
  assert.equal(ok(docker(s, ['exec', 'sc2', 'cat', '/tmp/renamed.txt']), 'cat'), 'to the container\n');
  ok(docker(s, ['cp', 'sc2:/etc', path.join(work, 'etc-out')]), 'cp dir out');
  assert.ok(fs.existsSync(path.join(work, 'etc-out', 'passwd')));
  ok(docker(s, ['cp', 'sc2:/etc/passwd', path.join(work, 'passwd-out')]), 'cp file out');
  assert.match(fs.readFileSync(path.join(work, 'passwd-out'), 'utf8'), /^root:/);
  const nf = docker(s, ['cp', 'sc2:/no/such', work]);
  assert.notEqual(nf.code, 0);
  assert.match(nf.stderr, /Could not find the file \/no\/such in container sc2/);
  // a stopped container: its writable layer and its volume
  ok(docker(s, ['create', '--name', 'cstop', '-v', 'cpvol:/vol', 'busybox', 'cat', '/vol/in.txt', '/in.txt']), 'create');
  ok(docker(s, ['cp', path.join(work, 'in.txt'), 'cstop:/vol/']), 'cp into a stopped container\'s volume');
  ok(docker(s, ['cp', path.join(work, 'in.txt'), 'cstop:/']), 'cp into a stopped container');
  assert.equal(ok(docker(s, ['start', '-a', 'cstop']), 'start'), 'to the container\nto the container\n');
  ok(docker(s, ['cp', 'cstop:/in.txt', path.join(work, 'back.txt')]), 'cp out of a stopped container');
  assert.equal(fs.readFileSync(path.join(work, 'back.txt'), 'utf8'), 'to the container\n');
  // a running VM
  ok(docker(s, ['cp', path.join(work, 'in.txt'), 'tv:/tmp/']), 'cp into the VM');
  assert.equal(ok(docker(s, ['exec', 'tv', 'cat', '/tmp/in.txt']), 'cat in VM'), 'to the container\n');
  ok(docker(s, ['cp', 'tv:/etc/hostname', path.join(work, 'vm-hostname')]), 'cp out of the VM');
  assert.match(fs.readFileSync(path.join(work, 'vm-hostname'), 'utf8'), /^[0-9a-f]{12}\n$/);
  ok(docker(s, ['rm', '-f', 'cstop']), 'rm');
});

test('archive routes: HEAD stat header, PUT refusals (not a directory 400, read-only 403, missing 404), symlinks resolve inside', async () => {
  ok(h('run', '-d', '--name', 'ro', '--read-only', '-v', 'rovol:/data', 'busybox', 'sh', '-c', 'ln -s /etc /data/link; ln -s /../../../../etc/hostname /data/up; exec sleep 300'), 'run ro');
  const head = await request(s.socket, 'HEAD', '/v1.45/containers/ro/archive?path=/etc/passwd');
  assert.equal(head.status, 200);
  const stat = JSON.parse(Buffer.from(String(head.headers['x-docker-container-path-stat']), 'base64').toString()) as { name: string; size: number; mode: number; linkTarget: string };
  assert.equal(stat.name, 'passwd');
  assert.ok(stat.size > 0);
  assert.equal(stat.mode & 0o777, 0o644);
  assert.equal(stat.mode >>> 31, 0, 'not a directory');
  const dir = await request(s.socket, 'HEAD', '/v1.45/containers/ro/archive?path=/etc');
  assert.equal(JSON.parse(Buffer.from(String(dir.headers['x-docker-container-path-stat']), 'base64').toString()).mode >>> 31, 1, 'ModeDir');
  const end = Date.now() + 30_000;
  while (h('exec', 'ro', 'test', '-L', '/data/up').code !== 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
  const link = await request(s.socket, 'HEAD', '/v1.45/containers/ro/archive?path=/data/up');
  const ls = JSON.parse(Buffer.from(String(link.headers['x-docker-container-path-stat']), 'base64').toString()) as { mode: number; linkTarget: string };
  assert.equal((ls.mode >>> 27) & 1, 1, 'ModeSymlink: the last element is not followed');
  assert.equal(ls.linkTarget, '/etc/hostname', "the link's target, resolved inside the container (not the host's /etc)");
  const notDir = await request(s.socket, 'PUT', '/v1.45/containers/ro/archive?path=/etc/passwd', Buffer.alloc(1024), { 'Content-Type': 'application/x-tar' });
  assert.equal(notDir.status, 403, 'a read-only root refuses first');
  const roRoot = await request(s.socket, 'PUT', '/v1.45/containers/ro/archive?path=/tmp', Buffer.alloc(1024), { 'Content-Type': 'application/x-tar' });
  assert.equal(roRoot.status, 403);
  assert.match(JSON.parse(roRoot.body).message, /read-only/);
  const missing = await request(s.socket, 'HEAD', '/v1.45/containers/ro/archive?path=/nope');
  assert.equal(missing.status, 404);
  const noPath = await request(s.socket, 'GET', '/v1.45/containers/ro/archive');
  assert.equal(noPath.status, 400);
  // writes through a symlink stay inside the container: /data/link -> /etc is the container's /etc
  const tar = spawnSync('tar', ['-c', '-f', '-', '-C', work, 'in.txt']).stdout;
  const put = await request(s.socket, 'PUT', '/v1.45/containers/ro/archive?path=/data/link', tar, { 'Content-Type': 'application/x-tar' });
  assert.equal(put.status, 403, "/data/link resolves to the container's read-only /etc");
  const putVol = await request(s.socket, 'PUT', '/v1.45/containers/ro/archive?path=/data', tar, { 'Content-Type': 'application/x-tar' });
  assert.equal(putVol.status, 200, 'the volume is writable');
  assert.equal(fs.readFileSync(path.join(tmp.root, 'volumes', 'rovol', '_data', 'in.txt'), 'utf8'), 'to the container\n');
  ok(h('run', '-d', '--name', 'rw', 'busybox', 'sleep', '300'), 'run rw');
  const intoFile = await request(s.socket, 'PUT', '/v1.45/containers/rw/archive?path=/etc/passwd', tar, { 'Content-Type': 'application/x-tar' });
  assert.equal(intoFile.status, 400);
  assert.match(JSON.parse(intoFile.body).message, /not a directory/);
  const empty = await request(s.socket, 'PUT', '/v1.45/containers/rw/archive?path=/tmp', Buffer.alloc(0), { 'Content-Type': 'application/x-tar' });
  assert.equal(empty.status, 400);
  assert.match(JSON.parse(empty.body).message, /empty/);
  const garbage = await request(s.socket, 'PUT', '/v1.45/containers/rw/archive?path=/tmp', Buffer.from('not a tar at all'), { 'Content-Type': 'application/x-tar' });
  assert.equal(garbage.status, 400);
  ok(h('rm', '-f', 'ro', 'rw'), 'rm');
  ok(h('volume', 'rm', 'rovol'), 'volume rm');
});

test('dockerode: top, pause, unpause, rename, stats stream, df, getArchive/putArchive/infoArchive', async () => {
  const c = await d.createContainer({ Image: 'busybox', name: 'dm1', Cmd: ['sleep', '300'] });
  await c.start();
  const top = await c.top();
  assert.ok(top.Titles.includes('PID'));
  assert.ok(top.Processes.some((p: string[]) => p.join(' ').includes('sleep 300')));
  await c.pause();
  assert.equal((await c.inspect()).State.Paused, true);
  await c.unpause();
  await c.rename({ name: 'dm2' });
  assert.equal((await d.getContainer('dm2').inspect()).Name, '/dm2');
  const stream = (await d.getContainer('dm2').stats({ stream: true })) as unknown as NodeJS.ReadableStream & { destroy(): void };
  const samples: { memory_stats: { usage?: number }; precpu_stats: { system_cpu_usage: number } }[] = [];
  let buf = '';
  await new Promise<void>((resolve) => {
    stream.on('data', (chunk: Buffer) => {
      buf += chunk.toString();
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        samples.push(JSON.parse(buf.slice(0, i)));
        buf = buf.slice(i + 1);
      }
      if (samples.length >= 2) {
        stream.destroy();
        resolve();
      }
    });
  });
  assert.ok((samples[1]!.memory_stats.usage ?? 0) > 0);
  assert.ok(samples[1]!.precpu_stats.system_cpu_usage > 0, 'the second sample carries the first as precpu');
  const df = (await d.df()) as { LayersSize: number; Images: unknown[]; Containers: { Names: string[]; SizeRw: number }[]; Volumes: unknown[] };
  assert.ok(df.LayersSize > 0);
  assert.ok(df.Containers.some((x) => x.Names[0] === '/dm2'));
  await d.getContainer('dm2').infoArchive({ path: '/etc/hostname' });
  await assert.rejects(d.getContainer('dm2').infoArchive({ path: '/no/such' }), (e: { statusCode?: number }) => e.statusCode === 404);
  const tar = spawnSync('tar', ['-c', '-f', '-', '-C', work, 'in.txt']).stdout;
  await d.getContainer('dm2').putArchive(tar, { path: '/root' });
  const out = (await d.getContainer('dm2').getArchive({ path: '/root/in.txt' })) as unknown as NodeJS.ReadableStream;
  const chunks: Buffer[] = [];
  for await (const ch of out) chunks.push(ch as Buffer);
  const listed = spawnSync('tar', ['-t', '-f', '-'], { input: Buffer.concat(chunks), encoding: 'utf8' }).stdout;
  assert.equal(listed, 'in.txt\n');
  await d.getContainer('dm2').remove({ force: true });
});

test('update: a running container\'s cgroup takes the new limits at once; a VM\'s at its next boot (refused while it runs)', async () => {
  const cg = (controller: string, file: string, id: string) => {
    const layout = detectCgroupLayout();
    const base = layout.kind === 'v2' ? layout.mount : layout.controllers[controller]!;
    return fs.readFileSync(path.join(base, containerCgroupPath(tmp.root, id), file), 'utf8').trim();
  };
  const v2 = detectCgroupLayout().kind === 'v2';
  const id = ok(h('run', '-d', '--name', 'up1', '--network', 'none', 'busybox', 'sleep', '300'), 'run').trim();
  ok(h('update', '--memory', '64m', '--cpus', '0.5', '--pids-limit', '20', 'up1'), 'update');
  assert.equal(cg('memory', v2 ? 'memory.max' : 'memory.limit_in_bytes', id), String(64 * 1024 * 1024));
  assert.equal(cg('pids', 'pids.max', id), '20');
  assert.equal(v2 ? cg('cpu', 'cpu.max', id) : cg('cpu', 'cpu.cfs_quota_us', id), v2 ? '50000 100000' : '50000');
  assert.equal(ok(h('inspect', '-f', '{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}}', 'up1'), 'inspect').trim(), `${64 * 1024 * 1024} 500000000 20`);
  assert.match(h('update', '--memory', '1k', 'up1').stderr, /Minimum memory limit allowed is 6MB/);
  assert.match(h('update', 'up1').stderr, /one or more flags/);
  if (haveDockerCli) {
    ok(docker(s, ['update', '--memory', '96m', '--memory-swap', '-1', 'up1']), 'docker update');
    assert.equal(cg('memory', v2 ? 'memory.max' : 'memory.limit_in_bytes', id), String(96 * 1024 * 1024));
  }
  await d.getContainer('up1').update({ PidsLimit: 30 });
  assert.equal(cg('pids', 'pids.max', id), '30');
  await assert.rejects(d.getContainer('up1').update({ CpuShares: 512 }), (e: { statusCode?: number }) => e.statusCode === 400);
  ok(h('restart', '-t', '0', 'up1'), 'restart');
  assert.equal(cg('pids', 'pids.max', id), '30', 'a later start keeps the updated limits');
  ok(h('rm', '-f', 'up1'), 'rm');
  ok(h('run', '-d', '--name', 'upv', '--vm', '--network', 'none', 'busybox', 'sleep', '300'), 'run vm');
  const refused = h('update', '-m', '200m', 'upv');
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /fixed at boot/);
  ok(h('stop', '-t', '0', 'upv'), 'stop vm');
  ok(h('update', '-m', '200m', 'upv'), 'update stopped vm');
  ok(h('start', 'upv'), 'start vm');
  const kb = Number(/MemTotal:\s+(\d+)/.exec(ok(h('exec', 'upv', 'cat', '/proc/meminfo'), 'meminfo'))![1]);
  assert.ok(kb > 150 * 1024 && kb <= 200 * 1024, `the guest boots with the new RAM (${kb} kB)`);
  ok(h('rm', '-f', 'upv'), 'rm vm');
});
