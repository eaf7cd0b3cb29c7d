/**
 * hull build --vm (every RUN in a microVM with its own kernel) and the built images elsewhere:
 * the same kind of layers as a container build (diff ids equal for the same changes), run by
 * the other wall, and `hull save` | `podman load` | `podman run`.
 */
import { havePodman, podmanRunFlags, withPodman } from '../helpers/podman.js';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { hull, HULL_BIN, importBusybox, makeTempRoot, mountsUnder, processesMentioning, type TempRoot, vmMissing } from '../helpers/hull.js';

const missingVm = vmMissing();

let t: TempRoot;
let ctx: string;

/** Two RUNs: one that records the kernel it ran on, one whose changes are the same on any wall. */
const DOCKERFILE = [
  'FROM busybox',
  'COPY hello.txt /hello.txt',
  'RUN uname -r > /kernel-release && cat /kernel-release',
  'RUN mkdir -p /data && echo same > /data/same && ln /data/same /data/link && rm -rf /home && touch -d @1000000000 /data/same /data',
  'CMD ["cat", "/kernel-release"]',
  '',
].join('\n');

before(() => {
  t = makeTempRoot('hull-buildvm-');
  importBusybox(t.root);
  ctx = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-buildvm-ctx-'));
  fs.writeFileSync(path.join(ctx, 'Dockerfile'), DOCKERFILE);
  fs.writeFileSync(path.join(ctx, 'hello.txt'), 'hello\n');
});

after(() => {
  assert.equal(hull(t.root, ['ps', '-aq']).stdout.trim(), '');
  assert.deepEqual(mountsUnder(t.root), []);
  assert.deepEqual(processesMentioning(t.root), [], 'no QEMU or runtime left');
  t.cleanup();
  fs.rmSync(ctx, { recursive: true, force: true });
});

function layers(ref: string): string[] {
  const r = hull(t.root, ['image', 'inspect', ref]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout)[0].RootFS.Layers;
}

test('build --vm: RUN runs in a microVM with its own kernel; the image is the same kind as a container build', (tt) => {
  if (missingVm) return tt.skip(missingVm);
  const vm = hull(t.root, ['build', '--vm', '-t', 'built-vm', ctx], { timeoutMs: 600_000 });
  assert.equal(vm.code, 0, `${vm.stdout}\n${vm.stderr}`);
  const guestKernel = hull(t.root, ['run', '--rm', 'built-vm']).stdout.trim();
  assert.notEqual(guestKernel, os.release(), 'the RUN did not see the host kernel');
  const runVm = hull(t.root, ['run', '--rm', '--vm', 'busybox', 'uname', '-r']);
  assert.equal(guestKernel, runVm.stdout.trim(), "the RUN saw hull's guest kernel");
  assert.match(vm.stdout, new RegExp(`\\n${guestKernel.replace(/[.]/g, '\\.')}\\n`), 'the RUN output streamed back');
  const ct = hull(t.root, ['build', '--isolation', 'container', '-t', 'built-ct', ctx], { timeoutMs: 300_000 });
  assert.equal(ct.code, 0, ct.stderr);
  assert.doesNotMatch(ct.stdout.split('Step 3/5')[1]!.split('Step 4/5')[0]!, /Using cache/, 'a VM step is not reused for a container build');
  assert.equal(hull(t.root, ['run', '--rm', 'built-ct']).stdout.trim(), os.release());
  const [v, c] = [layers('built-vm'), layers('built-ct')];
  assert.equal(v.length, 4);
  assert.equal(v[1], c[1], 'COPY layers are equal');
  assert.equal(v[3], c[3], 'the deterministic RUN made byte-identical layers on both walls (whiteouts, hardlinks, mtimes)');
  assert.notEqual(v[2], c[2], 'the kernel-recording RUN differs, as it should');
  // the VM-built image runs in a container and shows what the RUN left (hardlink, opaque dir)
  const look = hull(t.root, ['run', '--rm', 'built-vm', 'sh', '-c', 'stat -c "%h %Y" /data/same; ls -A /home | wc -l']);
  assert.equal(look.stdout, '2 1000000000\n0\n');
  // a second --vm build is all cache hits (no VM boots)
  const again = hull(t.root, ['build', '--vm', '-t', 'built-vm', ctx], { timeoutMs: 300_000 });
  assert.equal((again.stdout.match(/Using cache/g) ?? []).length, 4, again.stdout);
});

test('build --vm: a failing RUN reports its exit code and leaves no VM, container or image', (tt) => {
  if (missingVm) return tt.skip(missingVm);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-buildvm-fail-'));
  try {
    fs.writeFileSync(path.join(dir, 'Dockerfile'), 'FROM busybox\nRUN echo inside-the-vm; exit 4\n');
    const r = hull(t.root, ['build', '--vm', '-t', 'vm-fail', dir], { timeoutMs: 300_000 });
    assert.equal(r.code, 4, "the RUN's exit code, as docker's classic builder exits");
    assert.match(r.stderr, /Dockerfile line 2: The command '\/bin\/sh -c echo inside-the-vm; exit 4' returned a non-zero code: 4/);
    assert.match(r.stderr, /inside-the-vm/);
    assert.equal(hull(t.root, ['image', 'inspect', 'vm-fail']).code, 1);
    assert.deepEqual(fs.readdirSync(path.join(t.root, 'containers')), []);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a built image: hull save | podman load, and podman runs it', (tt) => {
  if (!havePodman()) return tt.skip('podman is not installed (scripts/setup.sh installs it)');
  const ref = hull(t.root, ['image', 'inspect', 'built-ct']).code === 0 ? 'built-ct' : undefined;
  if (!ref) {
    const b = hull(t.root, ['build', '-t', 'built-ct', ctx], { timeoutMs: 300_000 });
    assert.equal(b.code, 0, b.stderr);
  }
  withPodman((g) => {
    const load = spawnSync('sh', ['-c', `"${HULL_BIN}" --root "${t.root}" save built-ct | podman ${g.map((a) => `'${a}'`).join(' ')} load`], { encoding: 'utf8', timeout: 300_000 });
    assert.equal(load.status, 0, load.stderr);
    const id = JSON.parse(hull(t.root, ['image', 'inspect', 'built-ct']).stdout)[0].Id as string;
    const pid = spawnSync('podman', [...g, 'image', 'inspect', '--format', '{{.Id}}', 'built-ct'], { encoding: 'utf8' });
    assert.equal(`sha256:${pid.stdout.trim()}`, id, 'podman sees the same image id');
    const run = spawnSync('podman', [...g, 'run', '--rm', ...podmanRunFlags(), 'built-ct', 'sh', '-c', 'cat /hello.txt /data/same'], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout, 'hello\nsame\n');
  });
});
