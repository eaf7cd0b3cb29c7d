/**
 * The real docker CLI (docker 28 on this machine) driving `hull serve`: every command the
 * issue lists, as a user types them, against one server and hull root per file.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HULL_BIN, importBusybox, makeTempRoot, type TempRoot } from '../helpers/hull.js';
import { haveRegistry, startRegistry } from '../helpers/registry.js';
import { docker, haveDocker, monitorsOf, removeAll, startServe, type Serve } from './api-harness.js';

const have = haveDocker();
let tmp: TempRoot;
let s: Serve;

before(async () => {
  if (!have) return;
  tmp = makeTempRoot('hull-api-cli-');
  importBusybox(tmp.root);
  s = await startServe(tmp.root);
});

after(async () => {
  if (!have) return;
  removeAll(s);
  await s.stop();
  assert.deepEqual(monitorsOf(tmp.root), [], 'no container monitor left running');
  tmp.cleanup();
});

const skip = (t: { skip(m: string): void }) => t.skip('the docker CLI is not installed');

test('docker version and info talk to hull', (t) => {
  if (!have) return skip(t);
  const v = docker(s, ['version', '--format', '{{.Server.APIVersion}} {{.Server.MinAPIVersion}}']);
  assert.equal(v.code, 0, v.stderr);
  assert.equal(v.stdout.trim(), '1.45 1.24');
  const i = docker(s, ['info', '--format', '{{.DockerRootDir}} {{.Images}}']);
  assert.equal(i.code, 0, i.stderr);
  assert.equal(i.stdout.trim(), `${tmp.root} 1`);
});

test('docker run --rm busybox echo hello: the output, exit 0, nothing left', (t) => {
  if (!have) return skip(t);
  const r = docker(s, ['run', '--rm', 'busybox', 'echo', 'hello']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'hello\n');
  assert.equal(docker(s, ['ps', '-aq']).stdout, '', 'the --rm container is gone');
});

test('exit codes and separate stdout/stderr come through', (t) => {
  if (!have) return skip(t);
  const r = docker(s, ['run', '--rm', 'busybox', 'sh', '-c', 'exit 3']);
  assert.equal(r.code, 3);
  const o = docker(s, ['run', '--rm', 'busybox', 'sh', '-c', 'echo out; echo err >&2; exit 1']);
  assert.equal(o.code, 1);
  assert.equal(o.stdout, 'out\n');
  assert.equal(o.stderr, 'err\n');
  const missing = docker(s, ['run', '--rm', 'busybox', 'no-such-command']);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /no-such-command/);
});

test('large outputs arrive whole and in order; partial lines keep their bytes', (t) => {
  if (!have) return skip(t);
  const expected = Array.from({ length: 200000 }, (_, i) => `${i + 1}\n`).join('');
  const big = docker(s, ['run', '--rm', 'busybox', 'seq', '1', '200000']);
  assert.equal(big.code, 0, big.stderr);
  assert.ok(big.stdout === expected, `stdout differs (length ${big.stdout.length} vs ${expected.length})`);
  const partial = docker(s, ['run', '--rm', '-i', 'busybox', 'sh', '-c', 'cat; printf "|no-newline"'], { input: 'abc' });
  assert.equal(partial.stdout, 'abc|no-newline');
});

test('output that is not UTF-8 comes back byte for byte: run -i, docker logs, hull logs into a pipe', (t) => {
  if (!have) return skip(t);
  const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');
  // 1 MiB of random bytes: every byte value, lines of any length, far more than a pipe holds.
  const data = crypto.randomBytes(1 << 20);
  const bytes = (cmd: string, args: string[], input?: Buffer) => {
    const r = spawnSync(cmd, args, { env: s.env, input, timeout: 120_000, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024 });
    if (r.error) throw r.error;
    return { code: r.status, stdout: r.stdout, stderr: r.stderr.toString() };
  };
  const run = bytes('docker', ['run', '-i', '--name', 'bytes', 'busybox', 'cat'], data);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout.length, data.length);
  assert.equal(sha(run.stdout), sha(data), 'docker run -i: the output is the input');
  const logs = bytes('docker', ['logs', 'bytes']);
  assert.equal(logs.code, 0, logs.stderr);
  assert.equal(sha(logs.stdout), sha(data), 'docker logs: the same bytes');
  // The hull CLI writing into a pipe: it must not exit before the pipe has taken everything.
  const cli = bytes(HULL_BIN, ['--root', s.root, 'logs', 'bytes']);
  assert.equal(cli.code, 0, cli.stderr);
  assert.equal(cli.stdout.length, data.length, 'hull logs into a pipe: every byte');
  assert.equal(sha(cli.stdout), sha(data));
  assert.equal(docker(s, ['rm', 'bytes']).code, 0);
});

test('run -d --memory=128m, ps, inspect, stats, exec [-i], logs, stop, wait, rm', (t) => {
  if (!have) return skip(t);
  const r = docker(s, ['run', '-d', '--memory=128m', '--name', 'sleeper', 'busybox', 'sh', '-c', 'echo started; sleep 60']);
  assert.equal(r.code, 0, r.stderr);
  const id = r.stdout.trim();
  assert.match(id, /^[0-9a-f]{64}$/);
  const ps = docker(s, ['ps', '--format', '{{.ID}} {{.Names}} {{.Status}}']);
  assert.match(ps.stdout, new RegExp(`^${id.slice(0, 12)} sleeper Up`, 'm'));
  const ins = JSON.parse(docker(s, ['inspect', 'sleeper']).stdout)[0];
  assert.equal(ins.Id, id);
  assert.equal(ins.State.Running, true);
  assert.equal(ins.HostConfig.Memory, 128 * 1024 * 1024);
  const st = docker(s, ['stats', '--no-stream', '--format', '{{.Name}} {{.MemUsage}}', 'sleeper']);
  assert.equal(st.code, 0, st.stderr);
  assert.match(st.stdout, /^sleeper .* \/ 128MiB$/m);
  const e = docker(s, ['exec', 'sleeper', 'sh', '-c', 'echo in-exec; echo e-err >&2; exit 5']);
  assert.equal(e.code, 5);
  assert.equal(e.stdout, 'in-exec\n');
  assert.equal(e.stderr, 'e-err\n');
  const ei = docker(s, ['exec', '-i', 'sleeper', 'sh', '-c', 'tr a-z A-Z'], { input: 'piped through\n' });
  assert.equal(ei.code, 0, ei.stderr);
  assert.equal(ei.stdout, 'PIPED THROUGH\n');
  // a terminal over the API: raw (no stream headers), the process's exit code
  const et = docker(s, ['exec', '-t', 'sleeper', 'sh', '-c', 'tty; exit 3']);
  assert.equal(et.code, 3, et.stderr);
  assert.match(et.stdout, /^\/dev\/pts\/\d+\r\n$/);
  // The log may need a moment to receive the first line.
  let logs = '';
  for (let i = 0; i < 50 && logs === ''; i++) logs = docker(s, ['logs', 'sleeper']).stdout;
  assert.equal(logs, 'started\n');
  const stop = docker(s, ['stop', '-t', '1', 'sleeper']);
  assert.equal(stop.code, 0, stop.stderr);
  assert.match(docker(s, ['ps', '-a', '--format', '{{.Names}} {{.Status}}']).stdout, /^sleeper Exited \(137\)/m);
  const w = docker(s, ['wait', 'sleeper']);
  assert.equal(w.stdout.trim(), '137');
  assert.equal(docker(s, ['rm', 'sleeper']).code, 0);
  assert.equal(docker(s, ['inspect', 'sleeper']).code, 1);
});

test('run without --rm (wait next-exit), start -a, create, container prune', (t) => {
  if (!have) return skip(t);
  const r = docker(s, ['run', '--name', 'kept', 'busybox', 'sh', '-c', 'echo kept-out; exit 3']);
  assert.equal(r.code, 3);
  assert.equal(r.stdout, 'kept-out\n');
  assert.equal(docker(s, ['ps', '-a', '--filter', 'status=exited', '--filter', 'name=kept', '--format', '{{.Names}}']).stdout, 'kept\n');
  assert.equal(docker(s, ['ps', '--filter', 'name=kept', '-q']).stdout, '', 'not among the running');
  const again = docker(s, ['start', '-a', 'kept']);
  assert.equal(again.code, 3);
  assert.equal(again.stdout, 'kept-out\n', 'start -a streams only the new run');
  const cr = docker(s, ['create', '--name', 'fresh', 'busybox', 'echo', 'created-then-started']);
  assert.equal(cr.code, 0, cr.stderr);
  assert.match(docker(s, ['ps', '-a', '--format', '{{.Names}} {{.Status}}']).stdout, /^fresh Created$/m);
  const st = docker(s, ['start', '-a', 'fresh']);
  assert.equal(st.stdout, 'created-then-started\n');
  const pr = docker(s, ['container', 'prune', '-f']);
  assert.equal(pr.code, 0, pr.stderr);
  assert.equal(docker(s, ['ps', '-aq']).stdout, '');
});

test('logs -f follows to the end; wait returns the exit code', (t) => {
  if (!have) return skip(t);
  const r = docker(s, ['run', '-d', '--name', 'counter', 'busybox', 'sh', '-c', 'for i in 1 2 3 4 5; do echo line $i; sleep 0.2; done; exit 7']);
  assert.equal(r.code, 0, r.stderr);
  const f = docker(s, ['logs', '-f', 'counter']);
  assert.equal(f.code, 0, f.stderr);
  assert.equal(f.stdout, 'line 1\nline 2\nline 3\nline 4\nline 5\n');
  assert.equal(docker(s, ['wait', 'counter']).stdout.trim(), '7');
  const tail = docker(s, ['logs', '--tail', '2', '-t', 'counter']);
  assert.match(tail.stdout, /^\d{4}-\d\d-\d\dT[\d:.]+Z line 4\n\S+ line 5\n$/);
  assert.equal(docker(s, ['rm', 'counter']).code, 0);
});

test('kill, rm -f of a running container, restart', (t) => {
  if (!have) return skip(t);
  assert.equal(docker(s, ['run', '-d', '--name', 'victim', 'busybox', 'sleep', '60']).code, 0);
  const k = docker(s, ['kill', 'victim']);
  assert.equal(k.code, 0, k.stderr);
  assert.equal(docker(s, ['wait', 'victim']).stdout.trim(), '137');
  const again = docker(s, ['kill', 'victim']);
  assert.notEqual(again.code, 0, 'killing a stopped container fails');
  assert.match(again.stderr, /is not running/);
  assert.equal(docker(s, ['restart', 'victim']).code, 0);
  assert.equal(JSON.parse(docker(s, ['inspect', 'victim']).stdout)[0].State.Running, true);
  const plain = docker(s, ['rm', 'victim']);
  assert.notEqual(plain.code, 0);
  assert.match(plain.stderr, /running/);
  assert.equal(docker(s, ['rm', '-f', 'victim']).code, 0);
  assert.equal(docker(s, ['ps', '-aq']).stdout, '');
});

test('run -i passes stdin; run -it from a pty gets a terminal', (t) => {
  if (!have) return skip(t);
  const i = docker(s, ['run', '--rm', '-i', 'busybox', 'sh', '-c', 'cat; echo done'], { input: 'one\ntwo\n' });
  assert.equal(i.code, 0, i.stderr);
  assert.equal(i.stdout, 'one\ntwo\ndone\n');
  // docker in a pty (python's pty module); the input goes once the shell shows it has its terminal.
  const driver = [
    'import os, pty, sys, select',
    'pid, fd = pty.fork()',
    'if pid == 0:',
    '    import fcntl, termios, struct',
    '    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 31, 97, 0, 0))',
    '    os.execvp("docker", ["docker", "run", "--rm", "-it", "busybox", "sh", "-c", "tty; read x; echo got-$x; stty size; exit 4"])',
    'out = b""; sent = False',
    'while True:',
    '    r, _, _ = select.select([fd], [], [], 30)',
    '    if not r: break',
    '    try: d = os.read(fd, 4096)',
    '    except OSError: break',
    '    if not d: break',
    '    out += d',
    '    if not sent and b"/dev/pts/" in out:',
    '        os.write(fd, b"abc\\r"); sent = True',
    'sys.stdout.write(out.decode(errors="replace"))',
    '_, st = os.waitpid(pid, 0)',
    'sys.exit(os.waitstatus_to_exitcode(st))',
  ].join('\n');
  const pty = spawnSync('python3', ['-c', driver], { env: s.env, encoding: 'utf8', timeout: 60_000, killSignal: 'SIGKILL' });
  assert.equal(pty.status, 4, pty.stdout + pty.stderr);
  assert.match(pty.stdout, /\/dev\/pts\/\d+/);
  assert.match(pty.stdout, /got-abc/);
  assert.match(pty.stdout, /^31 97\r?$/m, 'the terminal has the size of the client\'s');
});

test('images, tag, rmi, save and load', (t) => {
  if (!have) return skip(t);
  assert.equal(docker(s, ['tag', 'busybox', 'mine/box:v1']).code, 0);
  const imgs = docker(s, ['images', '--format', '{{.Repository}}:{{.Tag}}']);
  assert.deepEqual(imgs.stdout.trim().split('\n').sort(), ['busybox:latest', 'mine/box:v1']);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-api-save-'));
  try {
    const file = path.join(dir, 'box.tar');
    const sv = docker(s, ['save', '-o', file, 'mine/box:v1']);
    assert.equal(sv.code, 0, sv.stderr);
    assert.ok(fs.statSync(file).size > 100_000);
    const rm = docker(s, ['rmi', 'mine/box:v1']);
    assert.equal(rm.code, 0, rm.stderr);
    assert.match(rm.stdout, /Untagged: mine\/box:v1/);
    assert.equal(docker(s, ['image', 'inspect', 'mine/box:v1']).code, 1);
    const ld = docker(s, ['load', '-i', file]);
    assert.equal(ld.code, 0, ld.stderr);
    assert.match(ld.stdout, /Loaded image: mine\/box:v1/);
    const run = docker(s, ['run', '--rm', 'mine/box:v1', 'echo', 'loaded']);
    assert.equal(run.stdout, 'loaded\n');
    assert.equal(docker(s, ['rmi', 'mine/box:v1']).code, 0);
    const bad = docker(s, ['rmi', 'no/such:image']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /No such image/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('push to and pull from a local registry, then run the pulled image', async (t) => {
  if (!have) return skip(t);
  if (!haveRegistry()) return t.skip('docker-registry is not installed (apt-get install docker-registry)');
  const reg = await startRegistry();
  try {
    const name = `${reg.host}/api/busybox:1`;
    assert.equal(docker(s, ['tag', 'busybox', name]).code, 0);
    const p = docker(s, ['push', name]);
    assert.equal(p.code, 0, p.stderr);
    assert.match(p.stdout, /The push refers to repository/);
    assert.match(p.stdout, /1: digest: sha256:[0-9a-f]{64} size: \d+/);
    assert.equal(docker(s, ['rmi', name]).code, 0);
    // docker run of an image that is not here: the CLI pulls it through the API, then runs it.
    const auto = docker(s, ['run', '--rm', name, 'echo', 'auto-pulled']);
    assert.equal(auto.code, 0, auto.stderr);
    assert.match(auto.stderr, /Unable to find image/);
    assert.equal(auto.stdout, 'auto-pulled\n');
    assert.equal(docker(s, ['rmi', name]).code, 0);
    const q = docker(s, ['pull', name]);
    assert.equal(q.code, 0, q.stderr);
    assert.match(q.stdout, /Digest: sha256:[0-9a-f]{64}/);
    assert.match(q.stdout, /Status: (Downloaded newer image|Image is up to date) for/);
    const run = docker(s, ['run', '--rm', name, 'echo', 'pulled']);
    assert.equal(run.stdout, 'pulled\n', run.stderr);
    const missing = docker(s, ['pull', `${reg.host}/api/nothing:here`]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /nothing/);
    assert.equal(docker(s, ['rmi', name]).code, 0);
  } finally {
    await reg.stop();
  }
});

test('login checks credentials through /auth; push and pull carry them in X-Registry-Auth', async (t) => {
  if (!have) return skip(t);
  if (!haveRegistry()) return t.skip('docker-registry is not installed (apt-get install docker-registry)');
  const reg = await startRegistry({ basic: { user: 'ann', password: 's3cret' } });
  try {
    const wrong = docker(s, ['login', '-u', 'ann', '--password-stdin', reg.host], { input: 'nope\n' });
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stderr, /401|unauthorized|denied|incorrect/i);
    const ok = docker(s, ['login', '-u', 'ann', '--password-stdin', reg.host], { input: 's3cret\n' });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /Login Succeeded/);
    const name = `${reg.host}/private/busybox:1`;
    assert.equal(docker(s, ['tag', 'busybox', name]).code, 0);
    const p = docker(s, ['push', name]);
    assert.equal(p.code, 0, p.stderr);
    assert.equal(docker(s, ['rmi', name]).code, 0);
    assert.equal(docker(s, ['pull', name]).code, 0);
    assert.equal(docker(s, ['logout', reg.host]).code, 0);
    assert.equal(docker(s, ['rmi', name]).code, 0);
    const anon = docker(s, ['pull', name]);
    assert.equal(anon.code, 1, 'without credentials the registry refuses');
  } finally {
    await reg.stop();
  }
});

test('detached containers outlive the server; a restarted server finds them', async (t) => {
  if (!have) return skip(t);
  assert.equal(docker(s, ['run', '-d', '--name', 'survivor', 'busybox', 'sleep', '60']).code, 0);
  const pid = JSON.parse(docker(s, ['inspect', 'survivor']).stdout)[0].State.Pid as number;
  await s.restart();
  assert.doesNotThrow(() => process.kill(pid, 0), 'the container process lives on');
  const ps = docker(s, ['ps', '--format', '{{.Names}}']);
  assert.match(ps.stdout, /^survivor$/m);
  assert.equal(docker(s, ['rm', '-f', 'survivor']).code, 0);
  // An --rm container that exits while no server runs is removed by the next one.
  assert.equal(docker(s, ['run', '-d', '--rm', '--name', 'ephemeral', 'busybox', 'sleep', '1']).code, 0);
  await s.stop();
  await new Promise((r) => setTimeout(r, 2000));
  const s2 = await startServe(tmp.root);
  try {
    let left = 'ephemeral';
    for (let i = 0; i < 100 && left !== ''; i++) {
      left = docker(s2, ['ps', '-aq', '--filter', 'name=ephemeral']).stdout.trim();
      if (left) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(left, '', 'the restarted server removed the exited --rm container');
  } finally {
    await s2.stop();
  }
  s = await startServe(tmp.root);
});

test('docker run --runtime hull-vm runs the image in a microVM', (t) => {
  if (!have) return skip(t);
  if (spawnSync('qemu-system-x86_64', ['--version']).status !== 0) return t.skip('qemu-system-x86_64 is not installed');
  const r = docker(s, ['run', '--rm', '--runtime', 'hull-vm', 'busybox', 'sh', '-c', 'echo in-vm; uname -r; exit 2'], { timeoutMs: 180_000 });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stdout, /^in-vm\n/);
  assert.notEqual(r.stdout.split('\n')[1], os.release(), 'the guest has its own kernel');
  const iso = docker(s, ['run', '--name', 'vm-iso', '--isolation', 'vm', 'busybox', 'echo', 'isolated'], { timeoutMs: 180_000 });
  assert.equal(iso.code, 0, iso.stderr);
  assert.equal(iso.stdout, 'isolated\n');
  const ins = JSON.parse(docker(s, ['inspect', 'vm-iso']).stdout)[0];
  assert.equal(ins.HostConfig.Isolation, 'vm');
  assert.equal(docker(s, ['rm', 'vm-iso']).code, 0);
  // stdin of a detached VM's main process, over the API (api-streams-vm: 1 MiB of it)
  const withStdin = docker(s, ['run', '--rm', '-i', '--runtime', 'hull-vm', 'busybox', 'cat'], { input: 'x\n', timeoutMs: 180_000 });
  assert.equal(withStdin.code, 0, withStdin.stderr);
  assert.equal(withStdin.stdout, 'x\n');
});
