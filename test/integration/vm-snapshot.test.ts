/**
 * MicroVMs restored from a template (issue 13), real QEMU (TCG here): the first `--vm-boot auto`
 * run of a shape builds its template, later ones restore it. Output, exit codes, per-clone
 * identity (uuid, urandom), the wall clock, an image far larger than the one the template ever
 * saw, a corrupted template, and nothing left behind.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { buildBigImage, hull, hullAsync, importBusybox, makeTempRoot, mountsUnder, processesOfRoot, REPO, type TempRoot, vmMissing } from '../helpers/hull.js';

const missing = vmMissing();

const RUN = ['run', '--rm', '--vm', '--network', 'none', '--vm-boot', 'auto'];
let tr: TempRoot;

function templates(): string[] {
  try {
    return fs.readdirSync(path.join(tr.root, 'vmtemplates'));
  } catch {
    return [];
  }
}

before(() => {
  if (missing) return;
  tr = makeTempRoot('hull-vmsnap-');
  importBusybox(tr.root);
});
after(() => {
  if (!tr) return;
  tr.cleanup();
});

test('the first run builds the template, later runs restore it: same output and exit codes', (t) => {
  if (missing) return t.skip(missing);
  const first = hull(tr.root, [...RUN, 'busybox', 'echo', 'hello']);
  assert.equal(first.code, 0, first.stderr);
  assert.equal(first.stdout, 'hello\n');
  assert.equal(first.stderr, '');
  assert.equal(templates().length, 1, 'one template for this shape');
  const r = hull(tr.root, [...RUN, 'busybox', 'sh', '-c', 'echo out; echo err >&2; exit 7']);
  assert.equal(r.code, 7);
  assert.equal(r.stdout, 'out\n');
  assert.equal(r.stderr, 'err\n');
  const n = hull(tr.root, [...RUN, 'busybox', 'nosuchcmd']);
  assert.equal(n.code, 127);
  assert.match(n.stderr, /executable file not found/);
  const i = hull(tr.root, [...RUN, '-i', '-e', 'X=from-run', '--hostname', 'clone1', 'busybox', 'sh', '-c', 'cat; echo $X; hostname'], { input: 'stdin line\n' });
  assert.equal(i.code, 0, i.stderr);
  assert.equal(i.stdout, 'stdin line\nfrom-run\nclone1\n');
  // a detached run restores too, and inspect says so
  const id = hull(tr.root, ['run', '-d', '--vm', '--network', 'none', '--vm-boot', 'auto', 'busybox', 'sleep', '300']).stdout.trim();
  assert.match(id, /^[0-9a-f]{64}$/);
  const facts = JSON.parse(hull(tr.root, ['inspect', '-f', '{{json .Hull.Facts}}', id]).stdout) as Record<string, unknown>;
  assert.equal(facts.vmBoot, 'restored');
  assert.equal(facts.vmTemplate, templates()[0]);
  const e = hull(tr.root, ['exec', id, 'sh', '-c', 'echo exec-ok; exit 3']);
  assert.equal(e.code, 3);
  assert.equal(e.stdout, 'exec-ok\n');
  assert.equal(hull(tr.root, ['rm', '-f', id]).code, 0);
  const cold = hull(tr.root, ['run', '-d', '--vm', '--network', 'none', '--vm-boot', 'cold', 'busybox', 'sleep', '300']).stdout.trim();
  assert.equal((JSON.parse(hull(tr.root, ['inspect', '-f', '{{json .Hull.Facts}}', cold]).stdout) as Record<string, unknown>).vmBoot, 'cold');
  assert.equal(hull(tr.root, ['rm', '-f', cold]).code, 0);
  // hull info lists it with its size
  const info = hull(tr.root, ['info']).stdout;
  assert.match(info, new RegExp(`${templates()[0]}: 128 MiB, 1 vCPU, 0 NIC, tcg, [0-9.]+ MiB on disk`));
});

test('two clones differ in uuid and urandom; the wall clock is within 1 s of the host', (t) => {
  if (missing) return t.skip(missing);
  const probe = () => {
    const before = Date.now();
    const r = hull(tr.root, [...RUN, 'busybox', 'sh', '-c', 'cat /proc/sys/kernel/random/uuid; head -c 32 /dev/urandom | od -An -tx1 | tr -d " \\n"; echo; adjtimex | grep -E "tv_(sec|usec)"']);
    const afterMs = Date.now();
    assert.equal(r.code, 0, r.stderr);
    const [uuid, bytes] = r.stdout.split('\n');
    const sec = Number(/tv_sec:\s+(\d+)/.exec(r.stdout)![1]);
    const usec = Number(/tv_usec:\s+(\d+)/.exec(r.stdout)![1]);
    return { uuid, bytes, guestMs: sec * 1000 + usec / 1000, before, after: afterMs };
  };
  const a = probe();
  const b = probe();
  assert.match(a.uuid!, /^[0-9a-f-]{36}$/);
  assert.notEqual(a.uuid, b.uuid);
  assert.match(a.bytes!, /^[0-9a-f]{64}$/);
  assert.notEqual(a.bytes, b.bytes);
  for (const p of [a, b]) {
    assert.ok(p.guestMs >= p.before - 1000 && p.guestMs <= p.after + 1000, `guest clock ${p.guestMs} vs host ${p.before}..${p.after}`);
  }
});

test('an image much larger than any the template saw reads to its last block', (t) => {
  if (missing) return t.skip(missing);
  // 48 MiB of random bytes: the template's disk was never read, busybox's is ~1 MiB
  const img = buildBigImage(tr.root, 'bigimg');
  try {
    const r = hull(tr.root, [...RUN, 'bigimg', 'sh', '-c', 'tail -c 4096 /big | md5sum; md5sum /big']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '', 'restored, not a cold fallback');
    assert.equal(r.stdout, img.expect);
  } finally {
    img.remove();
  }
});

test('a template corrupted on purpose: a cold boot with a one-line note, then a fresh template', (t) => {
  if (missing) return t.skip(missing);
  assert.equal(hull(tr.root, [...RUN, 'busybox', 'true']).code, 0);
  const [key] = templates();
  const state = path.join(tr.root, 'vmtemplates', key!, 'state');
  fs.chmodSync(state, 0o644);
  const fd = fs.openSync(state, 'r+');
  fs.writeSync(fd, Buffer.from('corrupted on purpose'), 0, 20, 4096);
  fs.closeSync(fd);
  const r = hull(tr.root, [...RUN, 'busybox', 'sh', '-c', 'echo still; exit 5']);
  assert.equal(r.code, 5);
  assert.equal(r.stdout, 'still\n');
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, /template .* failed its check \(the device state does not match its hash\).*boots cold/);
  assert.deepEqual(templates(), [], 'the bad template is gone');
  const again = hull(tr.root, [...RUN, 'busybox', 'echo', 'rebuilt']);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.stdout, 'rebuilt\n');
  assert.equal(again.stderr, '');
  assert.deepEqual(templates(), [key], 'rebuilt under the same key');
});

test('a template whose state passes its check but does not load: a cold boot, the template dropped', (t) => {
  if (missing) return t.skip(missing);
  const [key] = templates();
  const dir = path.join(tr.root, 'vmtemplates', key!);
  // a truncated state with a meta.json made to match it: only QEMU can tell
  const state = path.join(dir, 'state');
  fs.chmodSync(state, 0o644);
  fs.truncateSync(state, 40_000);
  const meta = path.join(dir, 'meta.json');
  fs.chmodSync(meta, 0o644);
  const m = JSON.parse(fs.readFileSync(meta, 'utf8')) as { files: { state: { size: number; sha256: string } } };
  m.files.state = { size: 40_000, sha256: crypto.createHash('sha256').update(fs.readFileSync(state)).digest('hex') };
  fs.writeFileSync(meta, JSON.stringify(m));
  const r = hull(tr.root, [...RUN, 'busybox', 'echo', 'fallback']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'fallback\n');
  assert.match(r.stderr, /^hull: restoring the VM template failed \(.*\): removed; this run boots cold\n$/);
  assert.deepEqual(templates(), []);
});

test('another agent (a changed base initramfs) is another key: a new template, the stale one dropped', (t) => {
  if (missing) return t.skip(missing);
  assert.equal(hull(tr.root, [...RUN, 'busybox', 'true']).code, 0);
  const [old] = templates();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-vmsnap-agent-'));
  try {
    // the same agent, 512 zero bytes after the archive (the kernel skips them): another hash
    const initramfs = path.join(dir, 'initramfs.cpio');
    fs.writeFileSync(initramfs, Buffer.concat([fs.readFileSync(path.join(REPO, 'build', 'guest', 'initramfs.cpio')), Buffer.alloc(512)]));
    const r = hull(tr.root, [...RUN, 'busybox', 'echo', 'other agent'], { env: { HULL_VM_INITRAMFS: initramfs } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'other agent\n');
    const now = templates();
    assert.equal(now.length, 1, `one template: ${now.join(' ')}`);
    assert.notEqual(now[0], old);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(hull(tr.root, [...RUN, 'busybox', 'true']).code, 0);
  assert.deepEqual(templates(), [old]);
});

test('three first runs of a new shape at once: one builds the template, the others boot cold meanwhile', async (t) => {
  if (missing) return t.skip(missing);
  const before = templates();
  const runs = await Promise.all([1, 2, 3].map((i) => hullAsync(tr.root, [...RUN, '-m', '96m', 'busybox', 'echo', `run ${i}`])));
  runs.forEach((r, i) => {
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `run ${i + 1}\n`);
    assert.equal(r.stderr, '');
  });
  const added = templates().filter((k) => !before.includes(k));
  assert.equal(added.length, 1, `one new template: ${added.join(' ')}`);
  assert.deepEqual(fs.readdirSync(path.join(tr.root, 'vmtemplates')).filter((n) => n.startsWith('.')), []);
});

test('nothing is left: no QEMU, no build directories, no mounts, no containers', (t) => {
  if (missing) return t.skip(missing);
  assert.equal(hull(tr.root, [...RUN, 'busybox', 'true']).code, 0);
  assert.deepEqual(processesOfRoot(tr.root), []);
  assert.deepEqual(fs.readdirSync(path.join(tr.root, 'vmtemplates')).filter((n) => n.startsWith('.')), []);
  assert.deepEqual(mountsUnder(tr.root), []);
  assert.equal(hull(tr.root, ['ps', '-aq']).stdout, '');
  assert.deepEqual(fs.readdirSync(path.join(tr.root, 'containers')), []);
  const chk = hull(tr.root, ['system', 'check']);
  assert.equal(chk.code, 0, chk.stdout + chk.stderr);
});

test('a template build whose builder died is an orphan: hull system check lists it, --fix removes it', (t) => {
  if (missing) return t.skip(missing);
  const dir = path.join(tr.root, 'vmtemplates', '.build-abandoned');
  fs.mkdirSync(path.join(dir, 'run'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'builder'), '999999999:1'); // no such process
  const chk = hull(tr.root, ['system', 'check']);
  assert.notEqual(chk.code, 0);
  assert.match(chk.stdout, /vm-template-build\s+.*\.build-abandoned/);
  assert.equal(hull(tr.root, ['system', 'check', '--fix']).code, 0);
  assert.equal(fs.existsSync(dir), false);
  assert.equal(hull(tr.root, ['system', 'check']).code, 0);
});
