/**
 * The container wall's defaults on real crun containers: podman's 11 capabilities, and the
 * default seccomp profile refusing new user namespaces. Each dropped action is tried inside a
 * container and refused; --cap-add (or seccomp=unconfined) gives each back.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
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

describe('container wall options: seccomp=FILE, --privileged, --device, --group-add, --sysctl', { timeout: 600_000 }, () => {
  let tr: TempRoot;
  let dir: string;
  const run = (...args: string[]) => hull(tr.root, ['run', '--rm', '--network', 'none', ...args]);
  const sh = (flags: string[], script: string) => {
    const r = run(...flags, 'busybox', 'sh', '-c', `${script} 2>&1`);
    return { code: r.code, out: r.stdout + r.stderr, stderr: r.stderr };
  };
  const containers = () => hull(tr.root, ['ps', '-aq']).stdout.split('\n').filter(Boolean).length;
  /** A refusal before anything exists: exit 125, the message matches, no container left. */
  const refusedUpFront = (args: string[], re: RegExp) => {
    const before = containers();
    const r = hull(tr.root, ['run', '--network', 'none', ...args]);
    assert.equal(r.code, 125, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, re);
    assert.equal(containers(), before, 'a container was left');
  };

  before(() => {
    tr = makeTempRoot('hull-wallopt-');
    importBusybox(tr.root);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-wallopt-files-'));
  });
  after(() => {
    tr.cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('--security-opt seccomp=FILE: the profile applies as written; a bad file is refused naming it, nothing created', () => {
    // allow everything but mkdir/mkdirat (EPERM), and no user-namespace rule: a profile that allows one
    const file = path.join(dir, 'no-mkdir.json');
    fs.writeFileSync(file, JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }] }));
    const mk = sh(['--security-opt', `seccomp=${file}`], 'mkdir /tmp/d');
    assert.notEqual(mk.code, 0, mk.out);
    assert.match(mk.out, /not permitted/i);
    const u = sh(['--security-opt', `seccomp=${file}`, '--cap-add', 'SYS_ADMIN'], 'grep Seccomp: /proc/self/status && unshare -U true && echo userns-ok');
    assert.equal(u.code, 0, u.out);
    assert.match(u.out, /Seccomp:\s+2[\s\S]*userns-ok/);
    const plain = sh(['--security-opt', `seccomp=${file}`], 'unshare -U true && echo userns-ok');
    assert.equal(plain.code, 0, `a profile that allows user namespaces is taken as written: ${plain.out}`);
    // the default profile still refuses it (the custom one was not cached in its place)
    assert.notEqual(sh([], 'unshare -U true').code, 0);
    // kept in the container: a later start needs no file
    const c = hull(tr.root, ['create', '--name', 'sc-kept', '--network', 'none', '--security-opt', `seccomp=${file}`, 'busybox', 'mkdir', '/tmp/d']);
    assert.equal(c.code, 0, c.stderr);
    fs.rmSync(file);
    assert.equal(hull(tr.root, ['start', 'sc-kept']).code, 0);
    assert.equal(hull(tr.root, ['wait', 'sc-kept']).stdout.trim(), '1');
    assert.match(hull(tr.root, ['logs', 'sc-kept']).stderr, /can't create directory '\/tmp\/d': Operation not permitted/);
    hull(tr.root, ['rm', '-f', 'sc-kept']);
    refusedUpFront(['--security-opt', `seccomp=${path.join(dir, 'missing.json')}`, 'busybox', 'true'], /missing\.json.*no such file/);
    const bad = path.join(dir, 'bad.json');
    fs.writeFileSync(bad, '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_PERHAPS"}]}');
    refusedUpFront(['--security-opt', `seccomp=${bad}`, 'busybox', 'true'], /bad\.json.*SCMP_ACT_PERHAPS/);
    fs.writeFileSync(bad, 'not json');
    refusedUpFront(['--security-opt', `seccomp=${bad}`, 'busybox', 'true'], /bad\.json.*not JSON/);
  });

  test('--privileged: a warning; every capability, no seccomp, /sys writable, the host devices; the refused actions allowed', () => {
    const r = run('--privileged', 'busybox', 'sh', '-c', 'grep -E "^(CapEff|Seccomp):" /proc/self/status; grep " /sys sysfs" /proc/mounts; ls /dev; mknod /tmp/n c 1 3 && unshare -U true && echo all-allowed');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /WARNING: --privileged/);
    const bnd = /^CapBnd:\s*([0-9a-f]+)/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]!;
    assert.match(r.stdout, new RegExp(`CapEff:\\s+${bnd}`), 'every capability the caller holds');
    assert.match(r.stdout, /Seccomp:\s+0/);
    assert.match(r.stdout, / \/sys sysfs rw,/);
    // a host device the default /dev has not (loop-control where the host has it)
    const extra = ['loop-control', 'kmsg', 'fuse', 'net'].find((n) => fs.existsSync(`/dev/${n}`));
    if (extra) assert.match(r.stdout, new RegExp(`^${extra}$`, 'm'));
    assert.match(r.stdout, /all-allowed/);
    // without it none of that
    const d = run('busybox', 'sh', '-c', 'grep " /sys sysfs" /proc/mounts; ls /dev');
    assert.match(d.stdout, / \/sys sysfs ro,/);
    if (extra) assert.doesNotMatch(d.stdout, new RegExp(`^${extra}$`, 'm'));
  });

  test('--device HOST:CONTAINER:PERMS makes the node and its device cgroup rule; a non-device is refused, nothing created', (t) => {
    if (!fs.existsSync('/dev/loop-control')) return t.skip('no /dev/loop-control on this host (a device outside the default list is needed)');
    // loop-control (c 10:237) is outside the default allow list: only the --device rule lets it open
    const ro = sh(['--device', '/dev/loop-control:/dev/lc:r'], 'ls -l /dev/lc; (exec 3</dev/lc) && echo read-ok; (exec 3>/dev/lc) && echo write-ok; true');
    assert.equal(ro.code, 0, ro.out);
    assert.match(ro.out, /^c.* 10,\s+237 .*\/dev\/lc$/m);
    assert.match(ro.out, /read-ok/);
    assert.doesNotMatch(ro.out, /write-ok/);
    assert.match(ro.out, /can't create \/dev\/lc: Operation not permitted/);
    const rw = sh(['--device', '/dev/loop-control'], '(exec 3>/dev/loop-control) && echo write-ok');
    assert.equal(rw.code, 0, rw.out);
    // without the rule, a node made by hand is refused by the device cgroup
    const none = sh(['--cap-add', 'MKNOD'], 'mknod /tmp/lc c 10 237 && (exec 3</tmp/lc) && echo read-ok');
    assert.notEqual(none.code, 0, none.out);
    assert.match(none.out, /Operation not permitted/);
    refusedUpFront(['--device', '/etc/hostname', 'busybox', 'true'], /--device \/etc\/hostname: not a device node/);
    refusedUpFront(['--device', '/dev/no-such-dev', 'busybox', 'true'], /\/dev\/no-such-dev/);
    refusedUpFront(['--device', '/dev/null:/dev/n:rx', 'busybox', 'true'], /permissions "rx"/);
  });

  test('--group-add: names from the image and gids join the process; an unknown name fails', () => {
    const r = sh(['--group-add', 'tty', '--group-add', '4321', '-u', 'nobody'], 'id -G');
    assert.equal(r.code, 0, r.out);
    const gids = r.out.trim().split(/\s+/);
    assert.ok(gids.includes('5') && gids.includes('4321'), r.out);
    // an exec joins them too
    const c = hull(tr.root, ['run', '-d', '--name', 'ga', '--network', 'none', '--group-add', '4321', 'busybox', 'sleep', '60']);
    assert.equal(c.code, 0, c.stderr);
    try {
      const e = hull(tr.root, ['exec', 'ga', 'id', '-G']);
      assert.equal(e.code, 0, e.stderr);
      assert.ok(e.stdout.trim().split(/\s+/).includes('4321'), e.stdout);
    } finally {
      hull(tr.root, ['rm', '-f', 'ga']);
    }
    const bad = run('--group-add', 'no-such-group', 'busybox', 'true');
    assert.equal(bad.code, 125, bad.stderr);
    assert.match(bad.stderr, /unable to find group no-such-group/);
  });

  test('--sysctl: namespaced ones are set inside (host unchanged); global ones refused by name, nothing created', () => {
    const hostPort = fs.readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8').trim();
    const hostShm = fs.readFileSync('/proc/sys/kernel/shmmni', 'utf8').trim();
    const r = sh(['--sysctl', 'net.ipv4.ip_unprivileged_port_start=123', '--sysctl', 'kernel.shmmni=1234'], 'cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shmmni');
    assert.equal(r.code, 0, r.out);
    assert.deepEqual(r.out.trim().split('\n'), ['123', '1234']);
    assert.equal(fs.readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8').trim(), hostPort);
    assert.equal(fs.readFileSync('/proc/sys/kernel/shmmni', 'utf8').trim(), hostShm);
    refusedUpFront(['--sysctl', 'vm.swappiness=10', 'busybox', 'true'], /"vm.swappiness" is not namespaced/);
    refusedUpFront(['--sysctl', 'kernel.pid_max=100000', 'busybox', 'true'], /"kernel.pid_max" is not namespaced/);
    const hostNet = hull(tr.root, ['run', '--rm', '--network', 'host', '--sysctl', 'net.ipv4.ip_forward=1', 'busybox', 'true']);
    assert.equal(hostNet.code, 125);
    assert.match(hostNet.stderr, /--network host/);
  });
});
