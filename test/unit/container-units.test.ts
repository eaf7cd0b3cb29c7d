import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mergeEnv, normalizeSignal, parseBytes, parseCpus, parseEnvFile, parseTmpfs, parseUlimit, parseVolume } from '../../src/engine/units.js';
import { buildInstanceSpec, parseSecurityOpts, resolveArgs, validateRunOptions } from '../../src/engine/options.js';
import { parseArgs } from '../../src/cli/args.js';
import { RUN_FLAGS, formatTemplate, runOptionsFromFlags } from '../../src/cli/containers.js';
import { isHullError } from '../../src/errors.js';
import type { ImageConfig } from '../../src/oci/types.js';

test('sizes: bytes and binary units', () => {
  assert.equal(parseBytes('128m', '--memory'), 128 * 1024 * 1024);
  assert.equal(parseBytes('1g', '--memory'), 1024 ** 3);
  assert.equal(parseBytes('1.5G', '--memory'), 1.5 * 1024 ** 3);
  assert.equal(parseBytes('64mb', '--memory'), 64 * 1024 * 1024);
  assert.equal(parseBytes('1048576', '--memory'), 1048576);
  assert.equal(parseBytes('512k', '--memory'), 524288);
  assert.throws(() => parseBytes('12x', '--memory'), (e) => isHullError(e, 'INVALID_ARGUMENT') && /--memory/.test((e as Error).message));
  assert.throws(() => parseBytes('-1', '--memory'), /invalid size/);
});

test('cpus, ulimits, volumes, tmpfs, env files, signals', () => {
  assert.equal(parseCpus('1.5'), 1.5e9);
  assert.equal(parseCpus('.5'), 5e8);
  assert.throws(() => parseCpus('0'), /greater than 0/);
  assert.throws(() => parseCpus('3', 2), /only 2 CPUs/);
  assert.deepEqual(parseUlimit('nofile=1024:2048'), { name: 'nofile', soft: 1024, hard: 2048 });
  assert.deepEqual(parseUlimit('nproc=10'), { name: 'nproc', soft: 10, hard: 10 });
  assert.throws(() => parseUlimit('nofile=10:5'), /soft limit/);
  assert.throws(() => parseUlimit('bogus=1'), /unknown ulimit/);
  assert.deepEqual(parseVolume('/srv:/data:ro'), { type: 'bind', source: '/srv', destination: '/data', readOnly: true });
  assert.deepEqual(parseVolume('vol:/data'), { type: 'volume', source: 'vol', destination: '/data', readOnly: false });
  assert.deepEqual(parseVolume('/data'), { type: 'volume', destination: '/data', readOnly: false });
  assert.deepEqual(parseVolume('vol:/data:ro,nocopy'), { type: 'volume', source: 'vol', destination: '/data', readOnly: true, noCopy: true });
  assert.throws(() => parseVolume('/a:rel'), /invalid mode: rel/);
  assert.throws(() => parseVolume('vol:rel'), /must be absolute/);
  assert.throws(() => parseVolume('v@l:/data'), /invalid characters/);
  assert.throws(() => parseVolume('vol:/'), /cannot mount over \//);
  assert.deepEqual(parseTmpfs('/run:size=64m,mode=1777'), { type: 'tmpfs', destination: '/run', readOnly: false, options: ['size=64m', 'mode=1777'] });
  assert.throws(() => parseTmpfs('/run:evil=1'), /bad option/);
  assert.deepEqual(parseEnvFile('# c\nA=1\n\nB\nC\n', 'f', (k) => (k === 'B' ? 'b' : undefined)), ['A=1', 'B=b']);
  assert.throws(() => parseEnvFile('A B=1\n', 'f', () => undefined), /whitespaces/);
  assert.deepEqual(mergeEnv(['A=1', 'B=2'], ['A=3']), ['A=3', 'B=2']);
  const sigs = { SIGTERM: 15, SIGKILL: 9 };
  assert.equal(normalizeSignal('term', sigs), 'SIGTERM');
  assert.equal(normalizeSignal('9', sigs), 'SIGKILL');
  assert.throws(() => normalizeSignal('FOO', sigs), /invalid signal/);
});

test('docker flags parse into RunOptions with units', () => {
  const argv = ['--rm', '-it', '--name', 'web', '-e', 'A=1', '-e', 'HOME', '-m', '128m', '--memory-swap', '-1', '--cpus', '1.5',
    '--pids-limit', '20', '--read-only', '-v', '/srv:/data:ro', '--tmpfs', '/run', '--network', 'host', '--cap-add', 'NET_ADMIN',
    '--security-opt', 'no-new-privileges', '--ulimit', 'nofile=100:200', '--init', '--runtime', 'runc', '-w', '/tmp', '-u', '1000:1000',
    'busybox', 'sh', '-c', 'echo hi'];
  const p = parseArgs(argv, RUN_FLAGS, { stopAtPositional: true });
  const o = runOptionsFromFlags(p, { HOME: '/root' });
  assert.equal(o.image, 'busybox');
  assert.deepEqual(o.cmd, ['sh', '-c', 'echo hi']);
  assert.equal(o.rm, true);
  assert.equal(o.tty, true);
  assert.equal(o.interactive, true);
  assert.deepEqual(o.env, ['A=1', 'HOME=/root']);
  assert.equal(o.memoryBytes, 134217728);
  assert.equal(o.memorySwapBytes, -1);
  assert.equal(o.nanoCpus, 1.5e9);
  assert.equal(o.pidsLimit, 20);
  assert.equal(o.readOnly, true);
  assert.equal(o.mounts!.length, 2);
  assert.equal(o.network, 'host');
  assert.deepEqual(o.ulimits, [{ name: 'nofile', soft: 100, hard: 200 }]);
  assert.equal(o.runtime, 'runc');
  assert.equal(o.user, '1000:1000');
  assert.equal(o.workdir, '/tmp');
  validateRunOptions(o);
  const net = runOptionsFromFlags(parseArgs(['--network', 'appnet', '-p', '8080:80', '-p', '127.0.0.1::53/udp', '-P', '--network-alias', 'w', '--ip', '10.214.7.9', '--mac-address', '02:42:0a:d6:07:09', '--dns', '1.1.1.1', '--dns-search', 'x.test', '--dns-option', 'ndots:2', '--add-host', 'db:host-gateway', '--expose', '9000', 'busybox'], RUN_FLAGS, { stopAtPositional: true }));
  assert.equal(net.network, 'appnet');
  assert.deepEqual(net.publish, ['8080:80', '127.0.0.1::53/udp']);
  assert.equal(net.publishAll, true);
  assert.deepEqual([net.networkAliases, net.ip, net.macAddress], [['w'], '10.214.7.9', '02:42:0a:d6:07:09']);
  assert.deepEqual([net.dns, net.dnsSearch, net.dnsOptions, net.extraHosts, net.expose], [['1.1.1.1'], ['x.test'], ['ndots:2'], ['db:host-gateway'], ['9000']]);
  assert.throws(() => parseArgs(['--bogus', 'busybox'], RUN_FLAGS, { stopAtPositional: true }), /unknown flag: --bogus/);
});

test('validation names the bad option', () => {
  assert.throws(() => validateRunOptions({ image: 'x', name: '-bad' }), /Invalid container name/);
  assert.throws(() => validateRunOptions({ image: 'x', workdir: 'rel' }), /absolute path/);
  assert.throws(() => validateRunOptions({ image: 'x', memoryBytes: 1024 }), /Minimum memory/);
  assert.throws(() => validateRunOptions({ image: 'x', memorySwapBytes: 1 << 30 }), /Memory limit/);
  assert.throws(() => validateRunOptions({ image: 'x', runtime: 'kata' }), /unknown runtime/);
  assert.throws(() => parseSecurityOpts(['apparmor=x']), /security-opt/);
  assert.deepEqual(parseSecurityOpts(['no-new-privileges:true', 'seccomp=unconfined']), { noNewPrivileges: true, seccomp: 'unconfined' });
});

const cfg: ImageConfig = {
  architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] },
  config: { Entrypoint: ['/ep'], Cmd: ['a', 'b'], Env: ['PATH=/x', 'K=img'], WorkingDir: '/w', User: 'daemon' },
};

test('entrypoint and cmd resolution, env precedence', () => {
  assert.deepEqual(resolveArgs({ image: 'i' }, cfg), ['/ep', 'a', 'b']);
  assert.deepEqual(resolveArgs({ image: 'i', cmd: ['c'] }, cfg), ['/ep', 'c']);
  assert.deepEqual(resolveArgs({ image: 'i', entrypoint: 'sh', cmd: ['-c', 'x'] }, cfg), ['sh', '-c', 'x']);
  assert.deepEqual(resolveArgs({ image: 'i', entrypoint: '' }, cfg), []);
  const s = buildInstanceSpec({ image: 'i', env: ['K=cli'], tty: true }, { id: 'sha256:1', config: cfg, lowerDirs: ['/l'] }, { id: 'f'.repeat(64), name: 'n', dir: '/d' });
  assert.ok(s.process.env.includes('PATH=/x') && s.process.env.includes('K=cli') && s.process.env.includes('TERM=xterm'));
  assert.ok(s.process.env.includes(`HOSTNAME=${'f'.repeat(12)}`));
  assert.equal(s.process.cwd, '/w');
  assert.equal(s.process.user, 'daemon');
  assert.equal(s.hostname, 'f'.repeat(12));
  assert.throws(() => buildInstanceSpec({ image: 'i', entrypoint: '' }, { id: 'sha256:1', config: cfg, lowerDirs: [] }, { id: 'f'.repeat(64), name: 'n', dir: '/d' }), /No command/);
});

test('--format templates', () => {
  const d = { State: { Status: 'running', ExitCode: 0 }, HostConfig: { Memory: 5 } };
  assert.equal(formatTemplate('{{.State.Status}} {{.State.ExitCode}}', d), 'running 0');
  assert.equal(formatTemplate('{{json .HostConfig}}', d), '{"Memory":5}');
  assert.equal(formatTemplate('{{.Nope}}', d), '<no value>');
});

test('--vm-accel reaches the VM spec and is refused where it cannot apply', () => {
  const flags = (argv: string[]) => runOptionsFromFlags(parseArgs(argv, RUN_FLAGS, { stopAtPositional: true }), { HOME: '/root' });
  const o = flags(['--vm', '--vm-accel', 'tcg', 'busybox']);
  assert.equal(o.vmAccel, 'tcg');
  const img = { id: 'sha256:' + '0'.repeat(64), config: cfg, lowerDirs: [] };
  const ids = { id: 'f'.repeat(64), name: 'n1', dir: '/tmp/x' };
  assert.deepEqual(buildInstanceSpec(o, img, ids).vm, { accel: 'tcg' });
  assert.deepEqual(buildInstanceSpec(flags(['--vm', 'busybox']), img, ids).vm, { accel: 'auto' });
  assert.equal(buildInstanceSpec(flags(['busybox']), img, ids).vm, undefined);
  assert.throws(() => validateRunOptions({ image: 'x', isolation: 'vm', vmAccel: 'xen' as never }), /invalid --vm-accel "xen"/);
  assert.throws(() => validateRunOptions({ image: 'x', vmAccel: 'kvm' }), /VM wall only/);
});
