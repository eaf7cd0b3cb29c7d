/**
 * Interoperability with independent readers and writers: podman (in a throw-away storage
 * root, vfs driver, so the user's store is untouched) and skopeo.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BUSYBOX_ROOTFS, HULL_BIN, hull, importBusybox, makeTempRoot } from '../helpers/hull.js';

function have(bin: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;
}

function podmanStore() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-podman-'));
  const args = ['--root', path.join(dir, 'root'), '--runroot', path.join(dir, 'run'), '--storage-driver', 'vfs'];
  return {
    dir,
    podman(cmd: string[], input?: Buffer) {
      const r = spawnSync('podman', [...args, ...cmd], { input, maxBuffer: 256 << 20, timeout: 120_000 });
      return { code: r.status ?? 1, stdout: r.stdout?.toString() ?? '', stderr: r.stderr?.toString() ?? '', raw: r.stdout };
    },
    cleanup() {
      // vfs keeps plain directories (no mounts), so removing the throw-away root is enough.
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

function skipUnlessReady(t: { skip(msg: string): void }, ...bins: string[]): boolean {
  if (!fs.existsSync(BUSYBOX_ROOTFS)) {
    t.skip('build/images/busybox-rootfs.tar missing: run scripts/setup.sh');
    return true;
  }
  for (const b of bins) {
    if (!have(b)) {
      t.skip(`${b} is not installed (scripts/setup.sh installs it)`);
      return true;
    }
  }
  return false;
}

test('hull save busybox | podman load keeps the image id', (t) => {
  if (skipUnlessReady(t, 'podman')) return;
  const r = makeTempRoot();
  const p = podmanStore();
  try {
    importBusybox(r.root);
    const id = hull(r.root, ['images', '-q', '--no-trunc']).stdout.trim();
    const sh = spawnSync('sh', ['-c', `"${HULL_BIN}" --root "${r.root}" save busybox | podman --root "${p.dir}/root" --runroot "${p.dir}/run" --storage-driver vfs load`], { encoding: 'utf8' });
    assert.equal(sh.status, 0, sh.stderr);
    assert.match(sh.stdout, /Loaded image.*busybox:latest/);
    const pid = p.podman(['image', 'inspect', '--format', '{{.Id}}', 'docker.io/library/busybox:latest']);
    assert.equal(pid.code, 0, pid.stderr);
    assert.equal(`sha256:${pid.stdout.trim()}`, id);
  } finally {
    p.cleanup();
    r.cleanup();
  }
});

test('podman save --format oci-archive | hull load, and podman docker-archive, keep the image id', (t) => {
  if (skipUnlessReady(t, 'podman')) return;
  const src = makeTempRoot();
  const p = podmanStore();
  const dst = makeTempRoot();
  try {
    importBusybox(src.root);
    const id = hull(src.root, ['images', '-q', '--no-trunc']).stdout.trim();
    const saved = path.join(src.root, 'bb.tar');
    assert.equal(hull(src.root, ['save', '-o', saved, 'busybox']).code, 0);
    assert.equal(p.podman(['load', '-i', saved]).code, 0);
    // podman re-compresses the layer (gzip) in oci-archive: a different manifest, the same id.
    for (const format of ['oci-archive', 'docker-archive']) {
      const out = p.podman(['save', '--format', format, 'docker.io/library/busybox:latest']);
      assert.equal(out.code, 0, out.stderr);
      const res = hull(dst.root, ['load'], { input: out.raw });
      assert.equal(res.code, 0, `${format}: ${res.stderr}`);
      assert.equal(res.stdout, 'Loaded image: busybox:latest\n', format);
      assert.equal(hull(dst.root, ['images', '-q', '--no-trunc']).stdout.trim(), id, format);
    }
    const i = JSON.parse(hull(dst.root, ['image', 'inspect', 'busybox']).stdout)[0];
    const lower = i.GraphDriver.Data.LowerDir as string;
    assert.equal(fs.readlinkSync(path.join(lower, 'bin/sh')), '/bin/busybox');
    assert.equal(fs.statSync(path.join(lower, 'tmp')).mode & 0o7777, 0o1777);
  } finally {
    p.cleanup();
    src.cleanup();
    dst.cleanup();
  }
});

test('skopeo reads hull save output and writes an archive hull loads', (t) => {
  if (skipUnlessReady(t, 'skopeo')) return;
  const r = makeTempRoot();
  const dst = makeTempRoot();
  try {
    importBusybox(r.root);
    const id = hull(r.root, ['images', '-q', '--no-trunc']).stdout.trim();
    const saved = path.join(r.root, 'bb.tar');
    assert.equal(hull(r.root, ['save', '-o', saved, 'busybox']).code, 0);
    const dir = path.join(r.root, 'skopeo-dir');
    const cp = spawnSync('skopeo', ['copy', `oci-archive:${saved}`, `dir:${dir}`], { encoding: 'utf8' });
    assert.equal(cp.status, 0, cp.stderr);
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
    assert.equal(manifest.config.digest, id);
    const back = path.join(r.root, 'back.tar');
    const cp2 = spawnSync('skopeo', ['copy', `dir:${dir}`, `oci-archive:${back}:localhost/roundtrip:v2`], { encoding: 'utf8' });
    assert.equal(cp2.status, 0, cp2.stderr);
    const res = hull(dst.root, ['load', '-i', back]);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, 'Loaded image: localhost/roundtrip:v2\n');
    assert.equal(hull(dst.root, ['image', 'inspect', '-f', '{{.Id}}', 'localhost/roundtrip:v2']).stdout.trim(), id);
    const insp = spawnSync('skopeo', ['inspect', '--config', `oci-archive:${saved}`], { encoding: 'utf8' });
    assert.equal(insp.status, 0, insp.stderr);
    assert.deepEqual(JSON.parse(insp.stdout).config.Cmd, ['sh']);
  } finally {
    r.cleanup();
    dst.cleanup();
  }
});
