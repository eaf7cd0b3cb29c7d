/** `hull run` flag groups with real containers (crun by default, runc where named). */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { HULL_BIN, hull, importBusybox, makeTempRoot, type TempRoot } from '../helpers/hull.js';
import { overlayVolatileSupported } from '../../src/runtime/container/runtime.js';

describe('hull run flags', { timeout: 600_000 }, () => {
  let tr: TempRoot;
  let host: string;
  const run = (...args: string[]) => hull(tr.root, ['run', '--rm', ...args]);
  const out = (...args: string[]) => {
    const r = run(...args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };

  before(() => {
    tr = makeTempRoot('hull-flags-');
    importBusybox(tr.root);
    host = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-flags-host-'));
  });
  after(() => {
    tr.cleanup();
    fs.rmSync(host, { recursive: true, force: true });
  });

  test('--rm roots are volatile overlays (no syncs of a layer that is thrown away); kept ones are not', (t) => {
    const rootMount = (text: string) => text.split('\n').find((l) => l.split(' ')[1] === '/') ?? '';
    const rm = rootMount(out('busybox', 'cat', '/proc/mounts'));
    assert.match(rm, /^overlay \/ overlay /, rm);
    const kept = hull(tr.root, ['run', '--name', 'kept-root', 'busybox', 'cat', '/proc/mounts']);
    assert.equal(kept.code, 0, kept.stderr);
    hull(tr.root, ['rm', 'kept-root']);
    assert.match(rootMount(kept.stdout), /^overlay \/ overlay /);
    assert.doesNotMatch(rootMount(kept.stdout), /volatile/);
    if (!overlayVolatileSupported(os.release())) return t.skip(`kernel ${os.release()} has no overlayfs volatile (5.10+)`);
    // (6.x kernels show it as fsync=volatile)
    assert.match(rm, /[,\s](fsync=)?volatile[,\s]/, rm);
  });

  test('-e, --env-file, -w, -u, --entrypoint, --hostname', () => {
    const envFile = path.join(host, 'env');
    fs.writeFileSync(envFile, '# comment\nFROM_FILE=1\nA=file\n');
    assert.equal(out('--env-file', envFile, '-e', 'A=flag', '-e', 'B=2', 'busybox', 'sh', '-c', 'echo $FROM_FILE $A $B'), '1 flag 2\n');
    assert.equal(out('-w', '/tmp', 'busybox', 'pwd'), '/tmp\n');
    assert.match(out('-u', 'nobody', 'busybox', 'id'), /^uid=65534\(nobody\) gid=65534\(nogroup\)/);
    assert.equal(out('-u', '1000:33', 'busybox', 'sh', '-c', 'echo $(id -u):$(id -g)'), '1000:33\n');
    assert.match(run('-u', 'ghost', 'busybox', 'id').stderr, /unable to find user ghost/);
    assert.equal(out('--entrypoint', 'echo', 'busybox', 'from', 'entrypoint'), 'from entrypoint\n');
    assert.equal(out('--hostname', 'box1', 'busybox', 'hostname'), 'box1\n');
    assert.equal(run('-w', 'relative', 'busybox', 'pwd').code, 125);
  });

  test('--read-only, -v (rw and ro), --tmpfs', () => {
    assert.notEqual(run('--read-only', 'busybox', 'touch', '/x').code, 0);
    assert.equal(out('--read-only', '--tmpfs', '/scratch', 'busybox', 'sh', '-c', 'echo ok > /scratch/f && cat /scratch/f'), 'ok\n');
    fs.writeFileSync(path.join(host, 'in'), 'from host\n');
    assert.equal(out('-v', `${host}:/data`, 'busybox', 'sh', '-c', 'cat /data/in; echo back > /data/out'), 'from host\n');
    assert.equal(fs.readFileSync(path.join(host, 'out'), 'utf8'), 'back\n');
    assert.notEqual(run('-v', `${host}:/data:ro`, 'busybox', 'touch', '/data/x').code, 0);
    const bad = run('-v', '/no/such/dir:/data', 'busybox', 'true');
    assert.equal(bad.code, 125);
    assert.match(bad.stderr, /does not exist/);
    assert.match(out('--tmpfs', '/run:size=1m', 'busybox', 'df', '/run'), /1024/);
  });

  test('--network none, host, and the default bridge (test/integration/network-*.test.ts for more)', () => {
    const none = out('--network', 'none', 'busybox', 'cat', '/proc/net/dev');
    assert.ok(!/eth0|ens|enp/.test(none.replace(/lo:.*/g, '')), none);
    // the host's own network namespace (its interfaces come and go with other tests: compare the
    // namespace, not a count of them)
    const hostNs = fs.readlinkSync('/proc/self/ns/net');
    assert.equal(out('--network', 'host', 'busybox', 'readlink', '/proc/self/ns/net').trim(), hostNs);
    assert.notEqual(out('--network', 'none', 'busybox', 'readlink', '/proc/self/ns/net').trim(), hostNs);
    assert.match(out('busybox', 'cat', '/proc/net/dev'), /eth0:/);
    assert.match(run('--network', 'nosuchnet', 'busybox', 'true').stderr, /network nosuchnet not found/);
  });

  test('--cap-add / --cap-drop, --security-opt no-new-privileges and seccomp=unconfined', () => {
    const capEff = (s: string) => BigInt(`0x${/CapEff:\s*([0-9a-f]+)/.exec(s)![1]}`);
    const def = capEff(out('busybox', 'grep', 'CapEff', '/proc/self/status'));
    const NET_ADMIN = 1n << 12n;
    const CHOWN = 1n << 0n;
    assert.equal(def & NET_ADMIN, 0n);
    assert.equal(def & CHOWN, CHOWN);
    assert.equal(capEff(out('--cap-add', 'NET_ADMIN', 'busybox', 'grep', 'CapEff', '/proc/self/status')) & NET_ADMIN, NET_ADMIN);
    assert.equal(capEff(out('--cap-drop', 'CHOWN', 'busybox', 'grep', 'CapEff', '/proc/self/status')) & CHOWN, 0n);
    assert.equal(capEff(out('--cap-drop', 'ALL', 'busybox', 'grep', 'CapEff', '/proc/self/status')), 0n);
    assert.match(out('busybox', 'grep', 'NoNewPrivs', '/proc/self/status'), /NoNewPrivs:\s+0/);
    assert.match(out('--security-opt', 'no-new-privileges', 'busybox', 'grep', 'NoNewPrivs', '/proc/self/status'), /NoNewPrivs:\s+1/);
    assert.match(out('busybox', 'grep', 'Seccomp:', '/proc/self/status'), /Seccomp:\s+2/);
    assert.match(out('--security-opt', 'seccomp=unconfined', 'busybox', 'grep', 'Seccomp:', '/proc/self/status'), /Seccomp:\s+0/);
    // the default profile refuses what it does not list (keyctl is not allowed)
    assert.match(out('busybox', 'sh', '-c', 'cat /proc/self/status | grep -c Seccomp_filters'), /1/);
    assert.equal(run('--security-opt', 'apparmor=x', 'busybox', 'true').code, 125);
  });

  test('masked and read-only /proc paths', () => {
    // masked files read as empty (a /dev/null bind), whichever of them this kernel has
    const masked = ['/proc/kcore', '/proc/keys', '/proc/timer_list'].find((p) => fs.existsSync(p))!;
    assert.equal(out('busybox', 'sh', '-c', `wc -c < ${masked}`), '0\n');
    assert.notEqual(run('busybox', 'sh', '-c', 'echo 1 > /proc/sys/kernel/domainname').code, 0);
  });

  test('--ulimit (clamped to the hard limit), --pids-limit, --cpus, -m in the cgroup', () => {
    assert.equal(out('--ulimit', 'nofile=100:200', 'busybox', 'sh', '-c', 'ulimit -n; ulimit -Hn'), '100\n200\n');
    const hard = Number(spawnSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).stdout.trim());
    assert.equal(out('--ulimit', `nofile=${hard + 1000}:${hard + 1000}`, 'busybox', 'sh', '-c', 'ulimit -Hn'), `${hard}\n`);
    assert.equal(out('busybox', 'sh', '-c', 'ulimit -Hn'), `${hard}\n`, 'default nofile is the caller\'s hard limit');
    const pids = run('--pids-limit', '5', 'busybox', 'sh', '-c', 'for i in 1 2 3 4 5 6 7 8; do sleep 2 & done; wait');
    assert.match(pids.stderr, /can't fork|Resource temporarily unavailable/);
    const insp = hull(tr.root, ['run', '-d', '--cpus', '0.5', '-m', '64m', '--pids-limit', '30', 'busybox', 'sleep', '100']);
    const id = insp.stdout.trim();
    const j = JSON.parse(hull(tr.root, ['inspect', id]).stdout)[0];
    assert.equal(j.HostConfig.NanoCpus, 5e8);
    assert.equal(j.HostConfig.Memory, 64 * 1024 * 1024);
    assert.equal(j.HostConfig.PidsLimit, 30);
    const st = hull(tr.root, ['stats', '--no-stream', '--format', '{{.MemUsage}}', id]).stdout;
    assert.match(st, /\/ 64MiB/);
    hull(tr.root, ['rm', '-f', id]);
  });

  test('--init runs tini as pid 1', () => {
    assert.equal(out('busybox', 'sh', '-c', 'cat /proc/1/comm; true'), 'sh\n');
    // tini is mounted at /dev/init (as docker does), so pid 1's name is "init"
    assert.equal(out('--init', 'busybox', 'sh', '-c', 'cat /proc/1/comm; true'), 'init\n');
    assert.match(out('--init', 'busybox', 'sh', '-c', 'cat /proc/1/cmdline | tr "\\0" " "; true'), /^\/dev\/init -- sh -c/);
  });

  test('--runtime runc; runsc reports when missing', () => {
    assert.equal(out('--runtime', 'runc', 'busybox', 'echo', 'via runc'), 'via runc\n');
    assert.equal(run('--runtime', 'runc', 'busybox', 'sh', '-c', 'exit 9').code, 9);
    const id = hull(tr.root, ['run', '-d', '--runtime', 'runc', 'busybox', 'sleep', '100']).stdout.trim();
    assert.equal(hull(tr.root, ['exec', id, 'echo', 'exec runc']).stdout, 'exec runc\n');
    assert.equal(JSON.parse(hull(tr.root, ['inspect', id]).stdout)[0].HostConfig.Runtime, 'runc');
    assert.equal(hull(tr.root, ['rm', '-f', id]).code, 0);
    if (spawnSync('sh', ['-c', 'command -v runsc']).status !== 0) {
      const r = run('--runtime', 'runsc', 'busybox', 'true');
      assert.equal(r.code, 125);
      assert.match(r.stderr, /runsc not found/);
    }
    assert.equal(run('--runtime', 'kata', 'busybox', 'true').code, 125);
  });

  test('-it gives a real terminal (driven through script(1))', (t) => {
    if (spawnSync('sh', ['-c', 'command -v script']).status !== 0) return t.skip('script(1) from util-linux is not installed');
    const cmd = `${HULL_BIN} --root ${tr.root} run -it --rm busybox sh`;
    const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { input: 'tty; echo $((6*7)); exit 3\n', encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 3, r.stdout + r.stderr);
    assert.match(r.stdout, /\/dev\/pts\/\d+/);
    assert.match(r.stdout, /\b42\b/);
    const id = hull(tr.root, ['run', '-d', 'busybox', 'sleep', '300']).stdout.trim();
    const ex = spawnSync('script', ['-qec', `${HULL_BIN} --root ${tr.root} exec -it ${id} sh`, '/dev/null'], { input: 'tty; exit 4\n', encoding: 'utf8', timeout: 60_000 });
    assert.equal(ex.status, 4, ex.stdout + ex.stderr);
    assert.match(ex.stdout, /\/dev\/pts\/\d+/);
    hull(tr.root, ['rm', '-f', id]);
    // a session that writes much just before it exits: every byte arrives and the exit code is
    // the process's (crun's own terminal loop sent what was left unread to its log instead)
    const seqTo = (n: number) => Array.from({ length: n }, (_, i) => `${i + 1}\r\n`).join('');
    const keep = hull(tr.root, ['run', '-d', 'busybox', 'sleep', '300']).stdout.trim();
    for (let i = 0; i < 10; i++) {
      const r = hull(tr.root, ['exec', '-t', keep, 'sh', '-c', 'seq 1 3000; exit 7']);
      assert.equal(r.code, 7, r.stderr);
      assert.equal(r.stdout, seqTo(3000));
    }
    hull(tr.root, ['rm', '-f', keep]);
    const big = hull(tr.root, ['run', '-t', '--rm', 'busybox', 'sh', '-c', 'seq 1 3000; exit 7']);
    assert.equal(big.code, 7, big.stderr);
    assert.equal(big.stdout, seqTo(3000));
    const noTty = hull(tr.root, ['run', '-it', '--rm', 'busybox', 'true']);
    assert.equal(noTty.code, 125);
    assert.match(noTty.stderr, /not a TTY/);
  });
});
