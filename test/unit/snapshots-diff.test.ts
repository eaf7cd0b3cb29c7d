import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buffer } from 'node:stream/consumers';
import { Readable } from 'node:stream';
import { capabilityV2, diffUpperDir, paxRecords, parseGetfattrDump, scanUpper, unescapeAttrPath } from '../../src/snapshots/diff.js';
import { unpackTar } from '../../src/snapshots/unpack.js';

function tmpdir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'hull-diff-'));
}
function sh(script: string, cwd: string): void {
  const r = spawnSync('sh', ['-ec', script], { cwd, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}
function getfattr(p: string, name: string): Buffer | undefined {
  const r = spawnSync('getfattr', ['-h', '-e', 'hex', '-n', name, p], { encoding: 'utf8' });
  const m = /=0x([0-9a-f]*)/.exec(r.stdout);
  return r.status === 0 && m ? Buffer.from(m[1]!, 'hex') : undefined;
}

/** An overlay-format upper dir with one of everything a RUN can leave. */
function sampleUpper(): string {
  const d = tmpdir();
  sh(
    [
      'mkdir -p etc opq/keep bin "sp ace"',
      'echo hello > etc/motd && chmod 640 etc/motd && chown 7:8 etc/motd',
      'echo x > opq/keep/f',
      'setfattr -n trusted.overlay.opaque -v y opq',
      'setfattr -n trusted.overlay.origin -v 0x0102 etc/motd',
      'mknod etc/gone c 0 0',
      'echo tool > bin/tool && chmod 4755 bin/tool && ln bin/tool bin/tool2',
      'setfattr -n user.blob -v 0x00ff10 bin/tool',
      'ln -s ../etc/motd bin/link',
      'mkfifo bin/pipe',
      'echo s > "sp ace/$(printf "n\\nl")"',
      'touch -h -d @1600000000 etc/motd bin/tool bin/link bin/pipe opq/keep/f opq/keep opq etc bin "sp ace"',
      // a whiteout's own time travels too (the round trip below must keep it, not take "now")
      'touch -h -d @1500000000 etc/gone',
    ].join('\n'),
    d,
  );
  return d;
}

test('scanUpper: whiteouts, opaque dirs, hardlinks, symlinks, fifos, xattrs as docker writes them', () => {
  const up = sampleUpper();
  try {
    const es = scanUpper(up);
    const byName = new Map(es.map((e) => [e.name, e]));
    // lexical order, parents first, whiteout renamed, opaque marker right after its directory
    assert.deepEqual(es.map((e) => e.name), ['bin', 'bin/link', 'bin/pipe', 'bin/tool', 'bin/tool2', 'etc', 'etc/.wh.gone', 'etc/motd', 'opq', 'opq/.wh..wh..opq', 'opq/keep', 'opq/keep/f', 'sp ace', 'sp ace/n\nl']);
    assert.equal(byName.get('etc/.wh.gone')!.type, 'file');
    assert.equal(byName.get('etc/.wh.gone')!.mode, 0o600);
    assert.equal(byName.get('opq/.wh..wh..opq')!.mtime, 0);
    assert.equal(byName.get('bin/tool')!.type, 'file');
    assert.equal(byName.get('bin/tool')!.mode, 0o4755);
    assert.equal(byName.get('bin/tool2')!.type, 'link');
    assert.equal(byName.get('bin/tool2')!.linkname, 'bin/tool');
    assert.equal(byName.get('bin/link')!.linkname, '../etc/motd');
    assert.equal(byName.get('bin/pipe')!.type, 'fifo');
    const motd = byName.get('etc/motd')!;
    assert.deepEqual([motd.uid, motd.gid, motd.mode, motd.mtime, motd.size], [7, 8, 0o640, 1600000000, 6]);
    assert.equal(motd.xattrs, undefined, 'overlay xattrs are not part of a layer');
    assert.deepEqual(byName.get('bin/tool')!.xattrs?.get('user.blob'), Buffer.from([0, 0xff, 0x10]));
    assert.equal(byName.get('opq')!.xattrs, undefined);
  } finally {
    fs.rmSync(up, { recursive: true, force: true });
  }
});

test('diffUpperDir round-trips through the unpacker (overlay format in, overlay format out) and is deterministic', async () => {
  const up = sampleUpper();
  const out = tmpdir();
  try {
    const a = await buffer(diffUpperDir(up));
    const b = await buffer(diffUpperDir(up));
    assert.equal(crypto.createHash('sha256').update(a).digest('hex'), crypto.createHash('sha256').update(b).digest('hex'));
    await unpackTar(Readable.from([a]), out, { what: 'roundtrip' });
    const st = fs.lstatSync(path.join(out, 'etc/gone'));
    assert.ok(st.isCharacterDevice() && st.rdev === 0, 'whiteout back as char 0/0');
    assert.equal(getfattr(path.join(out, 'opq'), 'trusted.overlay.opaque')?.toString(), 'y');
    assert.deepEqual(getfattr(path.join(out, 'bin/tool'), 'user.blob'), Buffer.from([0, 0xff, 0x10]));
    assert.equal(fs.statSync(path.join(out, 'bin/tool')).ino, fs.statSync(path.join(out, 'bin/tool2')).ino);
    assert.equal(fs.readlinkSync(path.join(out, 'bin/link')), '../etc/motd');
    assert.equal(fs.readFileSync(path.join(out, 'sp ace/n\nl'), 'utf8'), 's\n');
    const m = fs.statSync(path.join(out, 'etc/motd'));
    assert.deepEqual([m.uid, m.gid, m.mode & 0o7777, Math.floor(m.mtimeMs / 1000)], [7, 8, 0o640, 1600000000]);
    // and the re-made upper diffs to the same bytes
    const c = await buffer(diffUpperDir(out));
    assert.equal(Buffer.compare(a, c), 0);
  } finally {
    fs.rmSync(up, { recursive: true, force: true });
    fs.rmSync(out, { recursive: true, force: true });
  }
});

test('runtime paths: mountpoints the runtime made are left out, real changes beside them kept', () => {
  const lower = tmpdir();
  const up = tmpdir();
  try {
    sh('mkdir -p etc proc && chmod 755 etc', lower);
    // what crun or the guest agent leaves: mountpoint files, a copied-up /etc, /proc, /dev
    sh('mkdir -p etc proc dev/pts sys && chmod 755 etc && touch etc/hosts etc/hostname etc/resolv.conf', up);
    assert.deepEqual(scanUpper(up, { runtimePaths: true, lowers: [lower] }), []);
    // without the rule every path is kept (a COPY layer)
    assert.ok(scanUpper(up).some((e) => e.name === 'etc/hosts'));
    // a real change in /etc keeps /etc
    fs.writeFileSync(path.join(up, 'etc', 'app.conf'), 'x');
    assert.deepEqual(scanUpper(up, { runtimePaths: true, lowers: [lower] }).map((e) => e.name), ['etc', 'etc/app.conf']);
    fs.rmSync(path.join(up, 'etc', 'app.conf'));
    // so does a changed mode of /etc itself
    fs.chmodSync(path.join(up, 'etc'), 0o700);
    assert.deepEqual(scanUpper(up, { runtimePaths: true, lowers: [lower] }).map((e) => e.name), ['etc']);
  } finally {
    fs.rmSync(lower, { recursive: true, force: true });
    fs.rmSync(up, { recursive: true, force: true });
  }
});

test('device nodes are refused by name; sockets are left out', () => {
  const up = tmpdir();
  try {
    sh('mknod null c 1 3', up);
    assert.throws(() => scanUpper(up, { what: 'RUN at line 2' }), /RUN at line 2: \/null is a device node/);
  } finally {
    fs.rmSync(up, { recursive: true, force: true });
  }
});

test('pax records, getfattr dumps and capabilities (pure)', () => {
  const p = paxRecords([['path', Buffer.from('a'.repeat(95))], ['SCHILY.xattr.user.b', Buffer.from([0, 0xff])]]);
  let rest = p;
  while (rest.length) {
    const sp = rest.indexOf(0x20);
    const len = Number(rest.subarray(0, sp).toString());
    assert.equal(rest[len - 1], 0x0a, 'each record ends at its stated length');
    rest = rest.subarray(len);
  }
  assert.equal(unescapeAttrPath('n\\012l\\134x'), 'n\nl\\x');
  const dump = parseGetfattrDump('# file: a\\040b\nuser.x=0x0001\ntrusted.overlay.opaque=0x79\n\n# file: c\nuser.s="hi"\n');
  assert.deepEqual(dump.get('a b')?.get('user.x'), Buffer.from([0, 1]));
  assert.equal(dump.get('c')?.get('user.s')?.toString(), 'hi');
  const v3 = Buffer.alloc(24);
  v3[3] = 3;
  const v2 = capabilityV2(v3);
  assert.equal(v2.length, 20);
  assert.equal(v2[3], 2);
});
