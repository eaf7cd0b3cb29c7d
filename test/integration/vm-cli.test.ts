/**
 * `hull run --vm` through the CLI and the engine: the user-visible promises.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { hull, importBusybox, makeTempRoot, processesMentioning, REPO, type TempRoot, vmMissing } from '../helpers/hull.js';

const missing = vmMissing();

let tr: TempRoot;
before(() => {
  if (missing) return;
  tr = makeTempRoot('hull-vmcli-');
  importBusybox(tr.root);
});
after(async () => {
  if (!tr) return;
  const ids = hull(tr.root, ['ps', '-aq']).stdout.split('\n').filter(Boolean);
  if (ids.length) hull(tr.root, ['rm', '-f', ...ids]);
  // the exit hook of a removed VM (run when its QEMU is gone) may still be writing to the root
  for (let i = 0; i < 100 && processesMentioning(tr.root).length; i++) await new Promise((r) => setTimeout(r, 100));
  tr.cleanup();
});

test('hull run --rm --vm: hello, exit 7, the guest kernel, 127', (t) => {
  if (missing) return t.skip(missing);
  const r = hull(tr.root, ['run', '--rm', '--vm', 'busybox', 'echo', 'hello']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'hello\n');
  assert.equal(hull(tr.root, ['run', '--rm', '--vm', 'busybox', 'sh', '-c', 'exit 7']).code, 7);
  const u = hull(tr.root, ['run', '--rm', '--isolation', 'vm', 'busybox', 'uname', '-r']);
  assert.equal(u.code, 0, u.stderr);
  assert.notEqual(u.stdout.trim(), os.release());
  assert.match(u.stdout, /^6\.\d+\.\d+/);
  const n = hull(tr.root, ['run', '--rm', '--vm', 'busybox', 'nosuchcmd']);
  assert.equal(n.code, 127);
  assert.match(n.stderr, /executable file not found/);
  assert.equal(hull(tr.root, ['ps', '-aq']).stdout, '');
});

test('--vm refuses what a VM cannot honour, with a clear message', (t) => {
  if (missing) return t.skip(missing);
  const r = hull(tr.root, ['run', '--rm', '--vm', '--network', 'host', 'busybox', 'true']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /--network host/);
  const m = hull(tr.root, ['run', '--rm', '--vm', '-m', '16m', 'busybox', 'true']);
  assert.notEqual(m.code, 0);
  assert.match(m.stderr, /too small/);
});

test('volumes (-v) reach the guest over 9p, read-write and read-only', (t) => {
  if (missing) return t.skip(missing);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-vmvol-'));
  try {
    fs.writeFileSync(path.join(dir, 'in.txt'), 'from host\n');
    const r = hull(tr.root, ['run', '--rm', '--vm', '-v', `${dir}:/data`, 'busybox', 'sh', '-c', 'cat /data/in.txt; echo from guest > /data/out.txt']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'from host\n');
    assert.equal(fs.readFileSync(path.join(dir, 'out.txt'), 'utf8'), 'from guest\n');
    const ro = hull(tr.root, ['run', '--rm', '--vm', '-v', `${dir}:/data:ro`, 'busybox', 'sh', '-c', 'echo x > /data/y']);
    assert.notEqual(ro.code, 0);
    assert.equal(fs.existsSync(path.join(dir, 'y')), false);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('rmi removes the image cached VM disk with the image', (t) => {
  if (missing) return t.skip(missing);
  // An image of its own (import without SOURCE_DATE_EPOCH gets a fresh id), so busybox stays.
  const imp = hull(tr.root, ['import', '--change', 'CMD ["sh"]', path.join(REPO, 'build', 'images', 'busybox-rootfs.tar'), 'vmdisk-own:1']);
  assert.equal(imp.code, 0, imp.stderr);
  const id = imp.stdout.trim().replace(/^sha256:/, '');
  const r = hull(tr.root, ['run', '--rm', '--vm', 'vmdisk-own:1', 'true']);
  assert.equal(r.code, 0, r.stderr);
  const disks = () => fs.readdirSync(path.join(tr.root, 'vmdisks')).filter((f) => f.includes(id.slice(0, 12)));
  assert.equal(disks().length, 1, 'the VM run made a disk for the image');
  assert.equal(hull(tr.root, ['rmi', 'vmdisk-own:1']).code, 0);
  assert.deepEqual(disks(), [], 'rmi removed the disk');
});

test('hull info says which accelerator the VM wall uses, once it is known', (t) => {
  if (missing) return t.skip(missing);
  const cache = path.join(tr.root, 'accel-cache.json');
  const env = { HULL_ACCEL_CACHE: cache };
  const before = hull(tr.root, ['info'], { env });
  assert.equal(before.code, 0, before.stderr);
  const line = (s: string) => /Accelerator: (.*)/.exec(s)?.[1] ?? '';
  if (fs.existsSync('/sys/module/kvm_intel') || fs.existsSync('/sys/module/kvm_amd') || !fs.existsSync('/dev/kvm')) {
    assert.match(line(before.stdout), /^(kvm|tcg): /, 'decided from the host facts alone');
  } else {
    assert.match(line(before.stdout), /decided by a probe boot/, 'only a probe can tell on this host');
  }
  const r = hull(tr.root, ['run', '--rm', '--vm', 'busybox', 'true'], { env });
  assert.equal(r.code, 0, r.stderr);
  const after = line(hull(tr.root, ['info'], { env }).stdout);
  assert.match(after, /^(kvm|tcg): /);
  const inspectAccel = hull(tr.root, ['run', '-d', '--name', 'accel-probe', '--vm', 'busybox', 'sleep', '30'], { env });
  assert.equal(inspectAccel.code, 0, inspectAccel.stderr);
  const facts = (JSON.parse(hull(tr.root, ['inspect', 'accel-probe']).stdout) as { Hull: { Facts: { accel?: string } } }[])[0]!.Hull.Facts;
  assert.equal(facts.accel, after.split(':')[0], 'inspect and info agree');
  assert.equal(hull(tr.root, ['rm', '-f', 'accel-probe']).code, 0);
});
