/**
 * The container wall's defaults on real crun containers: podman's 11 capabilities, and the
 * default seccomp profile refusing new user namespaces. Each dropped action is tried inside a
 * container and refused; --cap-add (or seccomp=unconfined) gives each back.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { hull, importBusybox, makeTempRoot, staticFixtureDir, type TempRoot } from '../helpers/hull.js';

/** CapEff bits (linux/capability.h). */
const BIT = { NET_RAW: 13, SYS_ADMIN: 21, MKNOD: 27, AUDIT_WRITE: 29 } as const;
const PODMAN_11 = ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'NET_BIND_SERVICE', 'SETFCAP', 'SETGID', 'SETPCAP', 'SETUID', 'SYS_CHROOT'];
const NUM: Record<string, number> = { CHOWN: 0, DAC_OVERRIDE: 1, FOWNER: 3, FSETID: 4, KILL: 5, SETGID: 6, SETUID: 7, SETPCAP: 8, NET_BIND_SERVICE: 10, SYS_CHROOT: 18, SETFCAP: 31 };

describe('container wall defaults', { timeout: 600_000 }, () => {
  let tr: TempRoot;
  let probeDir: string;
  const run = (...args: string[]) => hull(tr.root, ['run', '--rm', '--network', 'none', ...args]);
  const capEff = (...flags: string[]) => {
    const r = run(...flags, 'busybox', 'grep', 'CapEff', '/proc/self/status');
    assert.equal(r.code, 0, r.stderr);
    return BigInt(`0x${r.stdout.trim().split(/\s+/)[1]}`);
  };
  /** Run `sh -c script` inside; exit code and output together. */
  const tryIn = (flags: string[], script: string) => {
    const r = run('-v', `${probeDir}:/t:ro`, ...flags, 'busybox', 'sh', '-c', `${script} 2>&1`);
    return { code: r.code, out: r.stdout + r.stderr };
  };

  before(() => {
    tr = makeTempRoot('hull-wall-');
    importBusybox(tr.root);
    probeDir = staticFixtureDir('wall-probe');
  });
  after(() => tr.cleanup());

  test("the default capability set is podman's 11: no NET_RAW, MKNOD, AUDIT_WRITE", () => {
    const want = PODMAN_11.reduce((m, c) => m | (1n << BigInt(NUM[c]!)), 0n);
    assert.equal(capEff().toString(16), want.toString(16));
    // the same set in an exec (it follows the container's, not a default of its own)
    const c = hull(tr.root, ['run', '-d', '--name', 'wall-exec', '--cap-add', 'NET_RAW', '--network', 'none', 'busybox', 'sleep', '60']);
    assert.equal(c.code, 0, c.stderr);
    try {
      const e = hull(tr.root, ['exec', 'wall-exec', 'grep', 'CapEff', '/proc/self/status']);
      assert.equal(e.code, 0, e.stderr);
      assert.equal(BigInt(`0x${e.stdout.trim().split(/\s+/)[1]}`).toString(16), (want | (1n << BigInt(BIT.NET_RAW))).toString(16));
    } finally {
      hull(tr.root, ['rm', '-f', 'wall-exec']);
    }
  });

  test('raw socket (ping 127.0.0.1 in the container\'s own netns): refused; --cap-add NET_RAW allows it', () => {
    const no = tryIn([], 'ping -c 1 -W 2 127.0.0.1');
    assert.notEqual(no.code, 0, no.out);
    assert.match(no.out, /permission denied|not permitted/i);
    const yes = tryIn(['--cap-add', 'NET_RAW'], 'ping -c 1 -W 2 127.0.0.1');
    assert.equal(yes.code, 0, yes.out);
    assert.match(yes.out, /1 packets received/);
  });

  test('mknod: refused; --cap-add MKNOD allows it', () => {
    const script = 'mknod /tmp/null2 c 1 3 && ls -l /tmp/null2';
    const no = tryIn([], script);
    assert.notEqual(no.code, 0, no.out);
    assert.match(no.out, /not permitted/i);
    const yes = tryIn(['--cap-add', 'MKNOD'], script);
    assert.equal(yes.code, 0, yes.out);
    assert.match(yes.out, /^c/m);
  });

  test('audit log write (NETLINK_AUDIT AUDIT_USER): refused; --cap-add AUDIT_WRITE allows it', () => {
    const no = tryIn([], '/t/wall-probe audit');
    assert.equal(no.code, 1, no.out);
    assert.match(no.out, /^refused: /m);
    const yes = tryIn(['--cap-add', 'AUDIT_WRITE'], '/t/wall-probe audit');
    assert.equal(yes.code, 0, yes.out);
    assert.match(yes.out, /^allowed$/m);
  });

  test('a user namespace (unshare -U, clone and clone3 with CLONE_NEWUSER): refused; SYS_ADMIN or seccomp=unconfined allow it', () => {
    const tries = ['unshare -U true', '/t/wall-probe clone-userns', '/t/wall-probe clone3-userns'];
    for (const t of tries) {
      const no = tryIn([], t);
      assert.notEqual(no.code, 0, `${t}: ${no.out}`);
      // unshare and clone: EPERM; clone3: ENOSYS (its flags are out of seccomp's reach)
      assert.match(no.out, t.includes('clone3') ? /Function not implemented/ : /not permitted/i, t);
    }
    // threads and ordinary children still work (clone without CLONE_NEWUSER)
    const fork = tryIn([], 'sh -c "echo child" && (echo subshell)');
    assert.equal(fork.code, 0, fork.out);
    for (const flags of [['--cap-add', 'SYS_ADMIN'], ['--security-opt', 'seccomp=unconfined']]) {
      for (const t of tries) {
        const yes = tryIn(flags, t);
        assert.equal(yes.code, 0, `${flags.join(' ')} ${t}: ${yes.out}`);
      }
    }
    // other namespaces are not the filter's business: CAP_SYS_ADMIN decides them, as before
    const uts = tryIn([], 'unshare -u true');
    assert.notEqual(uts.code, 0, uts.out);
    assert.match(uts.out, /not permitted/i);
  });

  test('hull info states the defaults', () => {
    const r = hull(tr.root, ['info', '--format', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const sec = (JSON.parse(r.stdout) as { Security: { DefaultCapabilities: string[]; Seccomp: string } }).Security;
    assert.deepEqual([...sec.DefaultCapabilities].sort(), [...PODMAN_11].sort());
    assert.match(sec.Seccomp, /no new user namespace/);
  });

  test('--cap-drop ALL --cap-add of one keeps only that one', () => {
    assert.equal(capEff('--cap-drop', 'ALL', '--cap-add', 'MKNOD'), 1n << BigInt(BIT.MKNOD));
    assert.equal(capEff('--cap-add', 'AUDIT_WRITE') & (1n << BigInt(BIT.AUDIT_WRITE)), 1n << BigInt(BIT.AUDIT_WRITE));
    assert.equal(capEff() & (1n << BigInt(BIT.SYS_ADMIN)), 0n);
  });
});
