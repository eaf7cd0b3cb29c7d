import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { parseCgroupLayout, parseKeyValues } from '../../src/runtime/container/cgroups.js';
import { parseHardLimits } from '../../src/runtime/container/host.js';
import { checkExecutable, ExecError, LayeredRoot, resolveUser } from '../../src/runtime/container/rootfs.js';
import { overlayOptions, overlayVolatileSupported, runtimeArgv, conmonRuntimeScript, type RuntimeDriver } from '../../src/runtime/container/runtime.js';
import { conmonArgs } from '../../src/runtime/container/conmon.js';
import { dockerTime, parseLogLines, tailRecords } from '../../src/engine/logs.js';

const mi = (lines: string[]) => lines.map((l, i) => `${20 + i} 1 0:${i} / ${l}`).join('\n');

test('cgroup layout: pure v2, pure v1, hybrid with controllers on cgroup2', () => {
  const v2 = parseCgroupLayout(mi(['/sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate']), () => 'cpu memory pids');
  assert.deepEqual(v2, { kind: 'v2', mount: '/sys/fs/cgroup' });
  const v1lines = ['/sys/fs/cgroup/memory rw - cgroup cgroup rw,memory', '/sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu', '/sys/fs/cgroup/pids rw - cgroup cgroup rw,pids'];
  const v1 = parseCgroupLayout(mi([...v1lines, '/sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw']), () => '');
  assert.equal(v1.kind, 'v1');
  if (v1.kind === 'v1') assert.equal(v1.controllers.memory, '/sys/fs/cgroup/memory');
  const hy = parseCgroupLayout(mi([...v1lines, '/sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw']), () => 'hugetlb\n');
  assert.equal(hy.kind, 'hybrid');
  if (hy.kind === 'hybrid') {
    assert.equal(hy.unified, '/sys/fs/cgroup/unified');
    assert.deepEqual(hy.unifiedControllers, ['hugetlb']);
  }
  assert.equal(parseKeyValues('oom_kill_disable 0\nunder_oom 0\noom_kill 1\n').get('oom_kill'), 1);
});

test('hard limits from /proc/self/limits', () => {
  const text = `Limit                     Soft Limit           Hard Limit           Units
Max open files            1024                 20000                files
Max processes             96364                96364                processes
Max core file size        0                    unlimited            bytes
`;
  assert.deepEqual(parseHardLimits(text), { nofile: 20000, nproc: 96364, core: -1 });
});

test('layered root: symlinks inside the root, whiteouts, 126/127 checks, users', (t) => {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-unit-rootfs-'));
  t.after(() => fs.rmSync(base, { recursive: true, force: true }));
  const l1 = path.join(base, 'l1');
  const l2 = path.join(base, 'l2');
  fs.mkdirSync(path.join(l1, 'bin'), { recursive: true });
  fs.mkdirSync(path.join(l1, 'etc'), { recursive: true });
  fs.mkdirSync(path.join(l2, 'bin'), { recursive: true });
  fs.writeFileSync(path.join(l1, 'bin', 'busybox'), '#!', { mode: 0o755 });
  fs.symlinkSync('/bin/busybox', path.join(l1, 'bin', 'sh'));
  fs.symlinkSync('/bin/busybox', path.join(l1, 'bin', 'gone'));
  fs.writeFileSync(path.join(l1, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/nonexistent:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\n');
  fs.writeFileSync(path.join(l1, 'etc', 'group'), 'root:x:0:\nwheel:x:10:app\napp:x:1000:\n');
  fs.writeFileSync(path.join(l1, 'etc', 'motd'), 'hi', { mode: 0o644 });
  // overlay whiteout for bin/gone in the upper layer: a character device 0:0 (needs root)
  let whiteout = true;
  try {
    mknodWhiteout(path.join(l2, 'bin', 'gone'));
  } catch {
    whiteout = false;
  }
  const root = new LayeredRoot([l1, l2]);
  const env = ['PATH=/usr/bin:/bin'];
  checkExecutable(root, 'sh', env, '/', () => false);
  checkExecutable(root, '/bin/sh', env, '/', () => false);
  assert.throws(() => checkExecutable(root, 'nope', env, '/', () => false), (e) => e instanceof ExecError && e.exitCode === 127 && /executable file not found in \$PATH/.test(e.message));
  assert.throws(() => checkExecutable(root, '/etc/motd', env, '/', () => false), (e) => e instanceof ExecError && e.exitCode === 126);
  assert.throws(() => checkExecutable(root, '/etc', env, '/', () => false), (e) => e instanceof ExecError && e.exitCode === 126);
  assert.throws(() => checkExecutable(root, '/no/such', env, '/', () => false), (e) => e instanceof ExecError && e.exitCode === 127 && /no such file/.test(e.message));
  checkExecutable(root, '/data/tool', env, '/', (p) => p.startsWith('/data/'));
  if (whiteout) assert.throws(() => checkExecutable(root, 'gone', env, '/', () => false), /not found/);
  const pw = root.readText('/etc/passwd');
  const gr = root.readText('/etc/group');
  assert.deepEqual(resolveUser(pw, gr, ''), { uid: 0, gid: 0, additionalGids: [], home: '/root' });
  assert.deepEqual(resolveUser(pw, gr, 'app'), { uid: 1000, gid: 1000, additionalGids: [10], home: '/home/app' });
  assert.deepEqual(resolveUser(pw, gr, '4242'), { uid: 4242, gid: 0, additionalGids: [], home: '/' });
  assert.equal(resolveUser(pw, gr, 'nobody:wheel').gid, 10);
  assert.equal(resolveUser(pw, gr, '1000:7').gid, 7);
  assert.throws(() => resolveUser(pw, gr, 'ghost'), /unable to find user ghost/);
  assert.throws(() => resolveUser(pw, gr, 'app:ghosts'), /unable to find group ghosts/);
});

/** An overlay whiteout (character device 0:0); node has no mknod, so coreutils' (needs root). */
function mknodWhiteout(p: string): void {
  if (spawnSync('mknod', [p, 'c', '0', '0']).status !== 0) throw new Error('mknod failed');
}

const driver: RuntimeDriver = { name: 'crun', bin: '/usr/bin/crun', stateDir: '/h/run/crun', globalArgs: ['--root', '/h/run/crun'], unmountUnified: '/sys/fs/cgroup/unified', unshare: '/usr/bin/unshare', shell: ['/bin/sh'] };

test('runtime argv: private mount namespace wrapper, overlay options top layer first', () => {
  const ov = { lower: ['/l/1', '/l/2'], upper: '/c/upper', work: '/c/work', target: '/c/rootfs' };
  assert.equal(overlayOptions(ov), 'lowerdir=/l/2:/l/1,upperdir=/c/upper,workdir=/c/work');
  assert.equal(overlayOptions({ ...ov, volatile: true }), 'lowerdir=/l/2:/l/1,upperdir=/c/upper,workdir=/c/work,volatile');
  assert.equal(overlayVolatileSupported('6.18.44-fc-v782'), true);
  assert.equal(overlayVolatileSupported('5.10.0-28-amd64'), true);
  assert.equal(overlayVolatileSupported('5.4.0-150-generic'), false);
  assert.equal(overlayVolatileSupported('4.19.0'), false);
  assert.equal(overlayVolatileSupported('weird'), false);
  assert.throws(() => overlayOptions({ ...ov, upper: '/a,b' }), /cannot be used/);
  const a = runtimeArgv(driver, ['run', '--bundle', '/c', 'id'], ov);
  assert.deepEqual(a.slice(0, 4), ['/usr/bin/unshare', '-m', '--propagation', 'private']);
  assert.deepEqual(a.slice(-9), ['/sys/fs/cgroup/unified', 'lowerdir=/l/2:/l/1,upperdir=/c/upper,workdir=/c/work', '/c/rootfs', '/usr/bin/crun', '--root', '/h/run/crun', 'run', '--bundle', '/c'].concat(['id']).slice(-9));
  const plain = runtimeArgv({ ...driver, unmountUnified: undefined }, ['kill', 'id', 'TERM']);
  assert.deepEqual(plain, ['/usr/bin/crun', '--root', '/h/run/crun', 'kill', 'id', 'TERM']);
  const script = conmonRuntimeScript(driver, ov);
  assert.match(script, /^#!\/bin\/sh/);
  assert.match(script, /create/);
});

test('conmon argv: log file, exit dir, exit command', () => {
  const a = conmonArgs({
    conmon: '/usr/bin/conmon', id: 'abc', name: 'n', runtime: '/c/oci-runtime.sh', bundle: '/c', pidFile: '/c/pid', conmonPidFile: '/c/conmon.pid',
    logPath: '/c/ctr.log', exitDir: '/c/exit', socketDir: '/h/run/conmon', terminal: false, stdin: false, exitCommand: ['/usr/bin/node', '/x/exit-hook.js', '/h', 'abc'],
  });
  assert.deepEqual(a.slice(a.indexOf('-l'), a.indexOf('-l') + 2), ['-l', 'k8s-file:/c/ctr.log']);
  assert.equal(a[a.indexOf('--exit-dir') + 1], '/c/exit');
  assert.equal(a[a.indexOf('--exit-command') + 1], '/usr/bin/node');
  assert.deepEqual(a.filter((_, i) => a[i - 1] === '--exit-command-arg'), ['/x/exit-hook.js', '/h', 'abc']);
  assert.ok(!a.includes('-t'));
  const base = { conmon: '/usr/bin/conmon', id: 'abc', name: 'n', runtime: '/r', bundle: '/c', pidFile: '/c/pid', conmonPidFile: '/c/cp', logPath: '/c/l', exitDir: '/c/e', socketDir: '/s', exitCommand: [] };
  // docker's StdinOnce without a TTY: the end of an attach's input closes stdin; else it stays open
  assert.ok(!conmonArgs({ ...base, terminal: false, stdin: true, stdinOnce: true }).includes('--leave-stdin-open'));
  assert.ok(conmonArgs({ ...base, terminal: false, stdin: true }).includes('--leave-stdin-open'));
  assert.ok(conmonArgs({ ...base, terminal: true, stdin: true, stdinOnce: true }).includes('--leave-stdin-open'));
  assert.ok(!conmonArgs({ ...base, terminal: false, stdin: false }).includes('--leave-stdin-open'));
});

test('k8s-file logs: partial lines, streams, tail, timestamps', () => {
  const text = '2026-01-01T00:00:00.123456789+00:00 stdout P hel\n2026-01-01T00:00:00.2+00:00 stdout F lo\n2026-01-01T00:00:01+01:00 stderr F oops\nbad line\n';
  const r = parseLogLines(Buffer.from(text));
  assert.deepEqual(r.map((x) => x.data.toString()), ['hel', 'lo\n', 'oops\n']);
  assert.equal(r[2]!.stream, 'stderr');
  assert.deepEqual(tailRecords(r, 1).map((x) => x.data.toString()), ['oops\n']);
  assert.deepEqual(tailRecords(r, 2).map((x) => x.data.toString()), ['hel', 'lo\n', 'oops\n']);
  assert.equal(tailRecords(r, 0).length, 0);
  assert.equal(dockerTime('2026-01-01T00:00:01.5+01:00'), '2025-12-31T23:00:01.500000000Z');
});

test('k8s-file logs: content is bytes, never decoded (output that is not UTF-8 comes back whole)', () => {
  // Every byte value but the line break, split by conmon into a partial and a full record.
  const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i).filter((b) => b !== 0x0a));
  const head = Buffer.from('2026-01-01T00:00:00Z stdout P ');
  const tail = Buffer.from('2026-01-01T00:00:00Z stdout F ');
  const log = Buffer.concat([head, bytes.subarray(0, 100), Buffer.from('\n'), tail, bytes.subarray(100), Buffer.from('\n')]);
  const r = parseLogLines(log);
  assert.equal(r.length, 2);
  assert.deepEqual(Buffer.concat(r.map((x) => x.data)), Buffer.concat([bytes, Buffer.from('\n')]));
  assert.deepEqual(tailRecords(r, 1).length, 2);
  // a last line without its '\n' still ends a line
  assert.deepEqual(parseLogLines(Buffer.from('2026-01-01T00:00:00Z stdout F x')).map((x) => x.data.toString()), ['x\n']);
  assert.deepEqual(parseLogLines(Buffer.from('2026-01-01T00:00:00Z stderr F')).map((x) => x.data.toString()), ['\n']);
});
