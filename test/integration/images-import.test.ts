import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { BUSYBOX_ROOTFS, hull, importBusybox, makeTempRoot } from '../helpers/hull.js';

function inspect(root: string, ref: string): any {
  const r = hull(root, ['image', 'inspect', ref]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout)[0];
}

test('busybox imports with a reproducible id, its label, CMD and created time', (t) => {
  if (!fs.existsSync(BUSYBOX_ROOTFS)) return t.skip('build/images/busybox-rootfs.tar missing: run scripts/setup.sh');
  const a = makeTempRoot();
  const b = makeTempRoot();
  try {
    importBusybox(a.root);
    importBusybox(b.root);
    const ia = inspect(a.root, 'busybox');
    const ib = inspect(b.root, 'busybox:latest');
    assert.equal(ia.Id, ib.Id);
    assert.deepEqual(ia.RepoTags, ['busybox:latest']);
    assert.deepEqual(ia.Config.Cmd, ['sh']);
    assert.match(ia.Config.Labels['org.opencontainers.image.source'], /^debian:busybox-static /);
    const env = fs.readFileSync(path.join(path.dirname(BUSYBOX_ROOTFS), 'busybox.env'), 'utf8');
    const epoch = Number(/BUSYBOX_EPOCH=(\d+)/.exec(env)![1]);
    assert.equal(Date.parse(ia.Created), epoch * 1000);
    // The short id and the full id both resolve.
    assert.equal(inspect(a.root, ia.Id.slice(7, 19)).Id, ia.Id);
    assert.equal(inspect(a.root, ia.Id).Id, ia.Id);
    // The unpacked layer has the applets as links and /tmp 1777.
    const lower = ia.GraphDriver.Data.LowerDir as string;
    assert.equal(fs.readlinkSync(path.join(lower, 'bin/sh')), '/bin/busybox');
    assert.equal(fs.statSync(path.join(lower, 'tmp')).mode & 0o7777, 0o1777);
    assert.equal(fs.statSync(path.join(lower, 'etc/passwd')).uid, 0);
  } finally {
    a.cleanup();
    b.cleanup();
  }
});

test('import reads gzip from stdin and applies --change and --message', (t) => {
  if (!fs.existsSync(BUSYBOX_ROOTFS)) return t.skip('build/images/busybox-rootfs.tar missing: run scripts/setup.sh');
  const r = makeTempRoot();
  try {
    const gz = zlib.gzipSync(fs.readFileSync(BUSYBOX_ROOTFS));
    const res = hull(
      r.root,
      [
        'import',
        '-c', 'ENTRYPOINT ["/bin/sh", "-c"]',
        '-c', 'CMD echo hi',
        '-c', 'ENV A=1 B="two words"',
        '-c', 'WORKDIR /srv',
        '-c', 'USER nobody',
        '-c', 'EXPOSE 80 53/udp',
        '-m', 'my message',
        '-',
        'localhost:5000/my/app:v1',
      ],
      { input: gz, env: { SOURCE_DATE_EPOCH: '1700000000' } },
    );
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /^sha256:[0-9a-f]{64}\n$/);
    const i = inspect(r.root, 'localhost:5000/my/app:v1');
    assert.equal(i.Id, res.stdout.trim());
    assert.deepEqual(i.Config.Entrypoint, ['/bin/sh', '-c']);
    assert.deepEqual(i.Config.Cmd, ['/bin/sh', '-c', 'echo hi']);
    assert.deepEqual(i.Config.Env, ['A=1', 'B=two words']);
    assert.equal(i.Config.WorkingDir, '/srv');
    assert.equal(i.Config.User, 'nobody');
    assert.deepEqual(Object.keys(i.Config.ExposedPorts).sort(), ['53/udp', '80/tcp']);
    assert.equal(i.Comment, 'my message');
    assert.equal(i.Created, '2023-11-14T22:13:20Z');
  } finally {
    r.cleanup();
  }
});

test('import refuses a bad change, a truncated gzip and a non-tar, leaving nothing behind', (t) => {
  if (!fs.existsSync(BUSYBOX_ROOTFS)) return t.skip('build/images/busybox-rootfs.tar missing: run scripts/setup.sh');
  const r = makeTempRoot();
  try {
    const bad = hull(r.root, ['import', '-c', 'RUN rm -rf /', BUSYBOX_ROOTFS, 'x']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /RUN is not supported/);
    const gz = zlib.gzipSync(fs.readFileSync(BUSYBOX_ROOTFS));
    const trunc = hull(r.root, ['import', '-', 'x'], { input: gz.subarray(0, gz.length >> 1) });
    assert.notEqual(trunc.code, 0);
    assert.match(trunc.stderr, /truncated gzip/);
    const junk = hull(r.root, ['import', '-', 'x'], { input: Buffer.alloc(4096, 7) });
    assert.notEqual(junk.code, 0);
    assert.match(junk.stderr, /tar/);
    const ls = hull(r.root, ['images', '-q']);
    assert.equal(ls.stdout, '');
    const blobs = path.join(r.root, 'blobs', 'sha256');
    assert.deepEqual(fs.existsSync(blobs) ? fs.readdirSync(blobs) : [], []);
    assert.deepEqual(fs.readdirSync(path.join(r.root, 'tmp')), []);
    assert.deepEqual(fs.existsSync(path.join(r.root, 'layers')) ? fs.readdirSync(path.join(r.root, 'layers')) : [], []);
  } finally {
    r.cleanup();
  }
});
