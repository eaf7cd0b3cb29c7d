/**
 * `ctr run --runtime io.containerd.hull.v2`: hull's shim under a real containerd (its own
 * config, root, state and sockets), each task in a microVM with its own kernel. The same
 * assertions run against containerd's runc shim, so every difference shows. Output, exit codes,
 * exec (stdout, stderr, stdin, exit code, a missing command, an exec id in use), ps, kill,
 * a terminal, delete; and nothing left: no shim, QEMU or virtiofsd, no mount, no pod directory,
 * no VM cgroup.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { after, before, describe, test } from 'node:test';
import { BUSYBOX_IMAGE, containerdMissing, importImages, mountsBelow, startContainerd, type Containerd } from '../helpers/containerd.js';
import { processesMentioning, vmMissing } from '../helpers/hull.js';
import { vmRootCgroupDir } from '../../src/runtime/vm/cgroup.js';

const missing = containerdMissing() || vmMissing();

let c: Containerd;

before(async () => {
  if (missing) return;
  c = await startContainerd('hull-shimctr-');
  importImages(c, 'test');
});

after(async () => {
  if (c) await c.stop();
});

/** Our own processes (shims, QEMU, virtiofsd) still running, besides containerd itself. */
function leftovers(): string[] {
  return processesMentioning(c.dir).filter((p) => !/^\d+: containerd --config/.test(p));
}

/** VM cgroups of this containerd's pods (and their parent) still there. */
function vmCgroups(): string[] {
  return ([1, 2] as const).map((v) => vmRootCgroupDir(v, c.shimState)).filter((d) => fs.existsSync(d));
}

for (const rt of [{ name: 'hull', runtime: 'io.containerd.hull.v2' }, { name: 'runc', runtime: 'io.containerd.runc.v2' }]) {
  describe(`ctr with ${rt.runtime}`, () => {
    test('run: output, exit code, the kernel it ran on', (t) => {
      if (missing) return t.skip(missing);
      const r = c.ctr(['run', '--rm', '--runtime', rt.runtime, BUSYBOX_IMAGE, `${rt.name}-run1`, 'sh', '-c', 'echo hello; echo to-stderr >&2; uname -r; exit 7']);
      assert.equal(r.code, 7, r.stderr);
      const [hello, release] = r.stdout.split('\n');
      assert.equal(hello, 'hello');
      assert.match(r.stderr, /to-stderr/);
      if (rt.name === 'hull') assert.notEqual(release, os.release(), 'the task ran on the host kernel');
      else assert.equal(release, os.release());
      assert.equal(c.ctr(['task', 'ls', '-q']).stdout.trim(), '');
    });

    test('detached task: ps, exec (output, stdin, exit codes, errors), kill, delete', (t) => {
      if (missing) return t.skip(missing);
      const id = `${rt.name}-det`;
      // pid 1 of its container: SIGTERM reaches it only through its handler
      const r = c.ctr(['run', '-d', '--runtime', rt.runtime, BUSYBOX_IMAGE, id, 'sh', '-c', 'trap "exit 42" TERM; while :; do sleep 1; done']);
      assert.equal(r.code, 0, r.stderr);
      const ls = c.ctr(['task', 'ls']);
      assert.match(ls.stdout, new RegExp(`${id}\\s+\\d+\\s+RUNNING`));
      const ps = c.ctr(['task', 'ps', id]);
      assert.equal(ps.code, 0, ps.stderr);
      assert.match(ps.stdout.split('\n')[1] ?? '', /^\d+\s/, `no process listed: ${ps.stdout}`);

      const e = c.ctr(['task', 'exec', '--exec-id', 'e1', id, 'sh', '-c', 'echo out; echo err >&2; exit 5']);
      assert.equal(e.code, 5, e.stderr);
      assert.equal(e.stdout, 'out\n');
      assert.match(e.stderr, /^err$/m);
      const cat = c.ctr(['task', 'exec', '--exec-id', 'e2', id, 'sh', '-c', 'cat; echo done'], { input: 'piped in\n' });
      assert.equal(cat.code, 0, cat.stderr);
      assert.equal(cat.stdout, 'piped in\ndone\n');
      const none = c.ctr(['task', 'exec', '--exec-id', 'e3', id, 'nosuchcmd']);
      assert.notEqual(none.code, 0);
      assert.match(none.stderr, /executable file not found/);
      // an exec id in use: AlreadyExists
      assert.equal(c.ctr(['task', 'exec', '-d', '--exec-id', 'long', id, 'sleep', '100']).code, 0);
      const dup = c.ctr(['task', 'exec', '--exec-id', 'long', id, 'true']);
      assert.notEqual(dup.code, 0);
      assert.match(dup.stderr, /already exists/);

      // SIGTERM runs the task's handler (exit 42); a second kill finds nothing to kill (NotFound)
      assert.equal(c.ctr(['task', 'kill', id]).code, 0);
      let st = '';
      for (let i = 0; i < 100 && !/STOPPED/.test(st); i++) {
        spawnSync('sleep', ['0.1']);
        st = c.ctr(['task', 'ls']).stdout;
      }
      assert.match(st, new RegExp(`${id}\\s+\\d+\\s+STOPPED`));
      const again = c.ctr(['task', 'kill', id]);
      assert.notEqual(again.code, 0);
      assert.match(again.stderr, /not found/);
      const del = c.ctr(['task', 'delete', id]);
      assert.equal(del.code, 0, del.stderr);
      assert.match(del.stderr, /exit code 42/);
      assert.equal(c.ctr(['containers', 'rm', id]).code, 0);
    });

    test('pid 1 of its container: a signal without a handler is not delivered, SIGKILL is', (t) => {
      if (missing) return t.skip(missing);
      const id = `${rt.name}-pid1`;
      assert.equal(c.ctr(['run', '-d', '--runtime', rt.runtime, BUSYBOX_IMAGE, id, 'sleep', '1000']).code, 0);
      const pid = c.ctr(['task', 'exec', '--exec-id', 'p', id, 'cat', '/proc/1/cmdline']);
      assert.equal(pid.code, 0, pid.stderr);
      assert.match(pid.stdout, /^sleep\0?1000/);
      assert.equal(c.ctr(['task', 'kill', id]).code, 0);
      spawnSync('sleep', ['1']);
      assert.match(c.ctr(['task', 'ls']).stdout, new RegExp(`${id}\\s+\\d+\\s+RUNNING`));
      assert.equal(c.ctr(['task', 'kill', '-s', 'SIGKILL', id]).code, 0);
      let st = '';
      for (let i = 0; i < 100 && !/STOPPED/.test(st); i++) {
        spawnSync('sleep', ['0.1']);
        st = c.ctr(['task', 'ls']).stdout;
      }
      const del = c.ctr(['task', 'delete', id]);
      assert.match(del.stderr, /exit code 137/);
      assert.equal(c.ctr(['containers', 'rm', id]).code, 0);
    });

    test('a terminal (-t): the process sees a tty; the exit code comes back', (t) => {
      if (missing) return t.skip(missing);
      const cmd = ['ctr', '--address', c.address, '-n', 'test', 'run', '-t', '--rm', '--runtime', rt.runtime, BUSYBOX_IMAGE, `${rt.name}-tty`, 'sh', '-c', 'tty; exit 4']
        .map((a) => `'${a}'`).join(' ');
      const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe'] });
      assert.equal(r.status, 4, r.stdout + r.stderr);
      if (rt.name === 'runc') {
        // The reference: containerd's runc shim can lose the output of a process that exits at
        // once on a terminal (a known race of runc terminals with short-lived processes, cri-o#8483):
        // seen once in a fresh-clone run here. Its exit code is what is compared.
        if (!/\/dev\/pts\/\d+/.test(r.stdout)) t.diagnostic(`runc shim lost the tty output: ${JSON.stringify(r.stdout)}`);
        return;
      }
      assert.match(r.stdout, /\/dev\/pts\/\d+/);
    });

    test('a shim killed with its task: containerd cleans up through `delete`', (t) => {
      if (missing) return t.skip(missing);
      const id = `${rt.name}-dead`;
      assert.equal(c.ctr(['run', '-d', '--runtime', rt.runtime, BUSYBOX_IMAGE, id, 'sleep', '1000']).code, 0);
      const shim = processesMentioning(c.dir).find((p) => /shim/.test(p) && p.includes(`-id ${id} `));
      assert.ok(shim, 'no shim process found');
      process.kill(Number(shim.split(':')[0]), 'SIGKILL');
      let ls = '';
      for (let i = 0; i < 100; i++) {
        ls = c.ctr(['task', 'ls', '-q']).stdout;
        if (!ls.includes(id)) break;
        spawnSync('sleep', ['0.1']);
      }
      assert.ok(!ls.includes(id), `task ${id} still listed after its shim died`);
      assert.equal(c.ctr(['containers', 'rm', id]).code, 0);
    });

    test('nothing is left: no shim, QEMU, virtiofsd, mount, pod directory or VM cgroup', (t) => {
      if (missing) return t.skip(missing);
      assert.equal(c.ctr(['task', 'ls', '-q']).stdout.trim(), '');
      let left: string[] = [];
      for (let i = 0; i < 50; i++) {
        left = leftovers();
        if (!left.length) break;
        spawnSync('sleep', ['0.1']);
      }
      assert.deepEqual(left, []);
      assert.deepEqual(mountsBelow(c.dir), []);
      assert.deepEqual(fs.readdirSync(c.shimState), []);
      assert.deepEqual(vmCgroups(), []);
    });
  });
}
