/**
 * --userns=auto on real crun containers: root inside is an unprivileged uid on the host, two
 * containers get disjoint ranges (kept in the state DB), files keep the right owners on both
 * sides, the image's layers are idmapped (the same inodes), not copied; nothing is left.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { hull, importBusybox, makeTempRoot, mountsUnder, type TempRoot } from '../helpers/hull.js';

describe('--userns=auto', { timeout: 600_000 }, () => {
  let tr: TempRoot;
  let vol: string;
  const ok = (args: string[]) => {
    const r = hull(tr.root, args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const hostIds = (pid: number) => {
    const st = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    return { uid: Number(/^Uid:\s+(\d+)/m.exec(st)![1]), gid: Number(/^Gid:\s+(\d+)/m.exec(st)![1]) };
  };
  const range = (name: string) => JSON.parse(ok(['inspect', '-f', '{{json .HostConfig.HullIdRange}}', name])) as { Uid: number; Gid: number; Size: number };

  before(() => {
    tr = makeTempRoot('hull-userns-');
    importBusybox(tr.root);
    vol = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-userns-vol-'));
    fs.chmodSync(vol, 0o1777);
  });
  after(() => {
    tr.cleanup();
    fs.rmSync(vol, { recursive: true, force: true });
  });

  test('root inside is an unprivileged uid on the host; two containers get disjoint ranges, recorded in the DB', () => {
    ok(['run', '-d', '--name', 'ua', '--userns', 'auto', '--network', 'none', 'busybox', 'sleep', '120']);
    ok(['run', '-d', '--name', 'ub', '--userns=auto', 'busybox', 'sleep', '120']); // on the default bridge
    try {
      const a = range('ua');
      const b = range('ub');
      assert.equal(a.Size, 65536);
      assert.ok(a.Uid >= 65536 && b.Uid >= 65536, 'above every host id');
      assert.ok(a.Uid + a.Size <= b.Uid || b.Uid + b.Size <= a.Uid, `ranges overlap: ${JSON.stringify([a, b])}`);
      for (const [name, r] of [['ua', a], ['ub', b]] as const) {
        const pid = Number(ok(['inspect', '-f', '{{.State.Pid}}', name]).trim());
        assert.deepEqual(hostIds(pid), { uid: r.Uid, gid: r.Gid }, `${name}: the host uid of root inside`);
        // inside it is root, mapped
        const inside = ok(['exec', name, 'sh', '-c', 'id -u; cat /proc/self/uid_map']);
        assert.match(inside, new RegExp(`^0\\n\\s*0\\s+${r.Uid}\\s+65536$`, 'm'));
      }
      // the state DB holds one slot per container, UNIQUE
      const db = new Database(path.join(tr.root, 'hull.db'), { readonly: true });
      const rows = db.prepare('SELECT slot FROM userns_ranges').all() as { slot: number }[];
      db.close();
      assert.equal(new Set(rows.map((r) => r.slot)).size, 2);
      // a default container is still the host's
      const plain = ok(['run', '--rm', '--network', 'none', 'busybox', 'cat', '/proc/self/uid_map']);
      assert.match(plain, /^\s*0\s+0\s+4294967295$/m);
    } finally {
      hull(tr.root, ['rm', '-f', 'ua', 'ub']);
    }
    // the ranges are free again: the next one takes the lowest slot
    ok(['create', '--name', 'uc', '--userns', 'auto', '--network', 'none', 'busybox', 'true']);
    const c = range('uc');
    hull(tr.root, ['rm', 'uc']);
    assert.equal(c.Uid, 1_000_000_000);
  });

  test('the layers are idmapped, not copied: the same inodes, host files still owned by 0; writes go to the range', () => {
    const r = hull(tr.root, ['run', '--name', 'ul', '--userns', 'auto', '--network', 'none', '-v', `${vol}:/vol`, 'busybox', 'sh', '-c',
      'stat -c "%i %u %g" /bin/busybox; grep "^overlay / " /proc/mounts; echo data > /vol/f; mkdir /vol/d; echo x > /new; ls -ln /vol']);
    assert.equal(r.code, 0, r.stderr);
    try {
      const ids = range('ul');
      const [ino, uid, gid] = r.stdout.split('\n')[0]!.split(' ').map(Number);
      assert.deepEqual([uid, gid], [0, 0], 'image files are root-owned inside');
      // the layer's own copy on the host: the same inode, still owned by host root
      const layerFiles = findFiles(tr.root, 'busybox', (p) => p.endsWith('/bin/busybox') && !p.includes('/containers/'));
      assert.ok(layerFiles.length >= 1, 'the layer file');
      const st = layerFiles.map((p) => fs.statSync(p)).find((s) => s.ino === ino);
      assert.ok(st, `no layer file has inode ${ino}: the layer was copied`);
      assert.deepEqual([st.uid, st.gid], [0, 0]);
      // the overlay's lower layers are the idmapped mount points under the container's directory
      assert.match(r.stdout, /lowerdir=[^,]*\/idmap\/0/);
      // a bind-mounted directory: the container's root writes as its range uid; inside it reads as 0
      assert.deepEqual([fs.statSync(path.join(vol, 'f')).uid, fs.statSync(path.join(vol, 'd')).gid], [ids.Uid, ids.Gid]);
      assert.match(r.stdout, /^-rw-r--r--\s+1 0\s+0\s+5 .* f$/m);
      // the writable layer too
      const id = ok(['inspect', '-f', '{{.Id}}', 'ul']).trim();
      assert.equal(fs.statSync(path.join(tr.root, 'containers', id, 'upper', 'new')).uid, ids.Uid);
    } finally {
      hull(tr.root, ['rm', '-f', 'ul']);
    }
    assert.deepEqual(mountsUnder(tr.root), [], 'no idmapped or overlay mount left');
  });

  test('a named volume made for a --userns=auto container belongs to its root: the image\'s files copied in, writes, owners both sides', () => {
    const r = hull(tr.root, ['run', '--name', 'uv', '--userns', 'auto', '--network', 'none', '-v', 'uvol:/etc', 'busybox', 'sh', '-c',
      'echo data > /etc/new && ls -ln /etc/new /etc/passwd']);
    assert.equal(r.code, 0, r.stderr);
    try {
      const ids = range('uv');
      // inside: root owns the copied image files and what it wrote
      assert.match(r.stdout, /^-rw-r--r--\s+1 0\s+0 .*\/etc\/new$/m);
      assert.match(r.stdout, /^-rw-r--r--\s+1 0\s+0 .*\/etc\/passwd$/m);
      const mp = ok(['volume', 'inspect', '-f', '{{.Mountpoint}}', 'uvol']).trim();
      for (const f of ['new', 'passwd']) assert.equal(fs.statSync(path.join(mp, f)).uid, ids.Uid, `${f} on the host`);
      assert.equal(fs.statSync(mp).uid, ids.Uid);
    } finally {
      hull(tr.root, ['rm', '-f', 'uv']);
      hull(tr.root, ['volume', 'rm', 'uvol']);
    }
  });

  test('-v SRC:DST:idmap: host owners seen as they are, the container\'s root writes as host root; plain binds stay refused', () => {
    const src = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-userns-idmap-'));
    try {
      fs.chmodSync(src, 0o755);
      fs.writeFileSync(path.join(src, 'owned-by-root'), 'x');
      fs.writeFileSync(path.join(src, 'owned-by-1234'), 'y');
      fs.chownSync(path.join(src, 'owned-by-1234'), 1234, 1234);
      const r = hull(tr.root, ['run', '--rm', '--userns', 'auto', '--network', 'none', '-v', `${src}:/d:idmap`, 'busybox', 'sh', '-c', 'ls -ln /d; echo new > /d/written && echo wrote']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^-\S+\s+1 0\s+0 .* owned-by-root$/m);
      assert.match(r.stdout, /^-\S+\s+1 1234\s+1234 .* owned-by-1234$/m);
      assert.match(r.stdout, /wrote/);
      const st = fs.statSync(path.join(src, 'written'));
      assert.deepEqual([st.uid, st.gid], [0, 0], 'written as host root through the idmapped bind');
      // the same directory without :idmap: host root's files are nobody's, and not writable
      const plain = hull(tr.root, ['run', '--rm', '--userns', 'auto', '--network', 'none', '-v', `${src}:/d`, 'busybox', 'sh', '-c', 'ls -ln /d/owned-by-root; echo x > /d/w2']);
      assert.notEqual(plain.code, 0);
      assert.match(plain.stdout, /65534\s+65534/);
      assert.match(plain.stderr, /Permission denied/);
      const noUserns = hull(tr.root, ['run', '--rm', '--network', 'none', '-v', `${src}:/d:idmap`, 'busybox', 'true']);
      assert.equal(noUserns.code, 125);
      assert.match(noUserns.stderr, /:idmap needs --userns=auto/);
    } finally {
      fs.rmSync(src, { recursive: true, force: true });
    }
    assert.deepEqual(mountsUnder(tr.root), []);
  });

  test('what the range cannot do: host files, raw sockets still refused; no-new-privileges on by default', () => {
    const r = hull(tr.root, ['run', '--rm', '--userns', 'auto', '--network', 'none', '-v', '/etc/hostname:/host-hostname', 'busybox', 'sh', '-c',
      'grep NoNewPrivs /proc/self/status; ls -ln /host-hostname; echo x >> /host-hostname && echo wrote; ping -c1 -W1 127.0.0.1 >/dev/null 2>&1 || echo no-ping']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /NoNewPrivs:\s+1/);
    assert.match(r.stdout, /65534\s+65534 .*\/host-hostname/, 'a host root file is nobody inside');
    assert.doesNotMatch(r.stdout, /wrote/);
    assert.match(r.stderr, /Permission denied/);
    assert.match(r.stdout, /no-ping/);
    const off = hull(tr.root, ['run', '--rm', '--userns', 'auto', '--network', 'none', '--security-opt', 'no-new-privileges=false', 'busybox', 'grep', 'NoNewPrivs', '/proc/self/status']);
    assert.match(off.stdout, /NoNewPrivs:\s+0/);
  });

  test('HULL_USERNS_DEFAULT=auto leaves hull build alone: a RUN step\'s layer keeps the image\'s own ids', () => {
    const ctx = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-userns-build-'));
    try {
      fs.writeFileSync(path.join(ctx, 'Dockerfile'), 'FROM busybox\nRUN touch /made && chown 1234:1234 /made\n');
      const env = { HULL_USERNS_DEFAULT: 'auto' };
      const b = hull(tr.root, ['build', '-q', '-t', 'userns-build', ctx], { env, timeoutMs: 300_000 });
      assert.equal(b.code, 0, b.stderr);
      const r = hull(tr.root, ['run', '--rm', '--network', 'none', '--userns', 'host', 'userns-build', 'stat', '-c', '%u %g', '/made'], { env });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), '1234 1234');
      hull(tr.root, ['rmi', 'userns-build']);
    } finally {
      fs.rmSync(ctx, { recursive: true, force: true });
    }
  });

  test('refusals: bad modes, --privileged, --network host, a VM; HULL_USERNS_DEFAULT=auto makes it the default', () => {
    for (const [args, re] of [
      [['--userns', 'keep'], /invalid --userns "keep"/],
      [['--userns', 'auto', '--privileged'], /--privileged cannot be used with --userns=auto/],
      [['--userns', 'auto', '--network', 'host'], /--network host/],
      [['--userns', 'auto', '--vm'], /container wall/],
    ] as [string[], RegExp][]) {
      const r = hull(tr.root, ['run', '--rm', ...args, 'busybox', 'true']);
      assert.equal(r.code, 125, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
    }
    assert.equal(hull(tr.root, ['ps', '-aq']).stdout, '');
    const d = hull(tr.root, ['run', '--rm', '--network', 'none', 'busybox', 'cat', '/proc/self/uid_map'], { env: { HULL_USERNS_DEFAULT: 'auto' } });
    assert.equal(d.code, 0, d.stderr);
    assert.match(d.stdout, /^\s*0\s+1000000000\s+65536$/m);
    const h = hull(tr.root, ['run', '--rm', '--network', 'none', '--userns', 'host', 'busybox', 'cat', '/proc/self/uid_map'], { env: { HULL_USERNS_DEFAULT: 'auto' } });
    assert.match(h.stdout, /^\s*0\s+0\s+4294967295$/m);
  });
});

/** Files under `dir` whose name is `name` and that `keep` accepts (no symlinks followed). */
function findFiles(dir: string, name: string, keep: (p: string) => boolean): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name === name && e.isFile() && keep(p)) out.push(p);
    }
  };
  walk(dir);
  return out;
}
