import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import net from 'node:net';
import { checkTemplate, DEFAULT_VM_BOOT, encodeRunFrame, resumeRestored, templateKey, templateQemuArgs, TFD } from '../../src/runtime/vm/snapshot.js';
import { encodeSpecFile, FrameDecoder, T } from '../../src/runtime/vm/protocol.js';

const shape: { memMiB: number; cpus: number; accel: 'tcg' | 'kvm'; tscKhz: number; nics?: number } = { memMiB: 128, cpus: 1, accel: 'tcg', tscKhz: 2445406 };
const ports = { status: { kind: 'file' as const, path: '/proc/self/fd/7' }, run: { kind: 'fd' as const, fd: 8 } };

function after(a: string[], flag: string): string[] {
  return a.flatMap((x, i) => (x === flag ? [a[i + 1]!] : []));
}

/** The argv with what may differ between a template's boot and its restores taken out. */
function invariant(a: string[]): string[] {
  return a.map((x) => x.replace(/^(file|socket|null),id=(p\d+).*$/, 'chardev $2').replace(/share=(on|off)/, 'share=*').replace(/fd\/\d+,share/, 'fd/N,share').replace(/tb-size=\d+/, 'tb-size=*'))
    .filter((x, i, all) => x !== '-incoming' && all[i - 1] !== '-incoming')
    // a restore's own monitor (an inherited socketpair) is no device: no part of the state
    .filter((x, i, all) => !(x === '-mon' || all[i - 1] === '-mon' || x === 'socket,id=mon1,fd=20' || (x === '-chardev' && all[i + 1] === 'socket,id=mon1,fd=20')));
}

test('template boot: RAM in a shared file behind the machine, every port, QMP, no -incoming', () => {
  const a = templateQemuArgs(shape, { build: true, tbSizeMiB: 32, qmp: 'qmp.sock', ports });
  assert.deepEqual(after(a, '-object'), [`memory-backend-file,id=ram,size=128M,mem-path=/proc/self/fd/${TFD.ram},share=on`]);
  assert.match(after(a, '-M')[0]!, /,memory-backend=ram$/);
  assert.ok(!a.includes('-incoming'));
  const names = after(a, '-device').filter((d) => d.startsWith('virtserialport')).map((d) => /name=([^,]+)/.exec(d)![1]);
  assert.deepEqual(names, ['hull.status', 'hull.stdout', 'hull.stderr', 'hull.ctl', 'hull.main', 'hull.layer', 'hull.run']);
  assert.deepEqual(after(a, '-chardev').slice(1, 6).map((c) => c.split(',')[0]), ['null', 'null', 'null', 'null', 'null']);
  assert.equal(after(a, '-chardev')[6], 'socket,id=p6,fd=8');
  assert.match(after(a, '-sandbox')[0]!, /spawn=deny/);
  assert.match(after(a, '-qmp')[0]!, /^unix:qmp\.sock,server=on,wait=off$/);
});

test('restore: the same machine and devices, RAM private (copy-on-write), -incoming defer; chardevs and tb-size may differ', () => {
  const b = templateQemuArgs(shape, { build: true, tbSizeMiB: 32, qmp: 'qmp.sock', ports });
  const r = templateQemuArgs(shape, {
    build: false, tbSizeMiB: 8, qmp: 'qmp.sock', qmpFd: 20, ramFd: 17,
    ports: { status: { kind: 'file', path: 'status' }, stdout: { kind: 'fd', fd: 8 }, stderr: { kind: 'fd', fd: 9 }, ctl: { kind: 'listen', path: 'ctl.sock' }, main: { kind: 'fd', fd: 7 }, run: { kind: 'fd', fd: 19 } },
  });
  assert.deepEqual(after(r, '-incoming'), ['defer']);
  // its own monitor on the inherited descriptor, next to the unix socket later commands use
  assert.ok(after(r, '-chardev').includes('socket,id=mon1,fd=20'));
  assert.deepEqual(after(r, '-mon'), ['chardev=mon1,mode=control']);
  assert.match(after(r, '-qmp')[0]!, /^unix:qmp\.sock,/);
  assert.ok(!b.includes('-mon'), 'the template boot has no inherited monitor');
  // saved without a run state (so a restore starts its vCPUs itself), and restored alike
  for (const a of [b, r]) assert.ok(after(a, '-global').includes('migration.store-global-state=off'));
  assert.deepEqual(after(r, '-object'), ['memory-backend-file,id=ram,size=128M,mem-path=/proc/self/fd/17,share=off']);
  assert.deepEqual(invariant(r), invariant(b));
});

test('KVM form (not run on this TCG-only host): -accel kvm -cpu host, otherwise the same template', () => {
  const k = templateQemuArgs({ ...shape, accel: 'kvm' }, { build: false, tbSizeMiB: 32, qmp: 'qmp.sock', ports });
  assert.deepEqual(after(k, '-accel'), ['kvm']);
  assert.deepEqual(after(k, '-cpu'), ['host']);
  assert.ok(!after(k, '-append')[0]!.includes('noreplace-smp'));
  assert.deepEqual(after(k, '-incoming'), ['defer']);
});

test('NICs: an empty hub port in the template, the run\'s tap in a restore; same devices and MACs', () => {
  const b = templateQemuArgs({ ...shape, nics: 2 }, { build: true, tbSizeMiB: 32, qmp: 'qmp.sock', ports });
  assert.deepEqual(after(b, '-netdev'), ['hubport,id=net0,hubid=0', 'hubport,id=net1,hubid=1']);
  const r = templateQemuArgs({ ...shape, nics: 2 }, { build: false, tbSizeMiB: 32, qmp: 'qmp.sock', ports, tapFds: [100, 101] });
  assert.deepEqual(after(r, '-netdev'), ['tap,id=net0,fd=100,vhost=off', 'tap,id=net1,fd=101,vhost=off']);
  const nics = (a: string[]) => after(a, '-device').filter((d) => d.startsWith('virtio-net'));
  assert.deepEqual(nics(r), nics(b));
  assert.deepEqual(nics(b), ['virtio-net-device,netdev=net0,mac=02:68:75:6c:6c:00', 'virtio-net-device,netdev=net1,mac=02:68:75:6c:6c:01']);
  assert.throws(() => templateQemuArgs({ ...shape, nics: 2 }, { build: false, tbSizeMiB: 32, qmp: 'qmp.sock', ports, tapFds: [100] }), /needs 2 taps/);
});

test('the key follows every input: memory, cpus, accelerator, agent', () => {
  const inputs = (o: Partial<typeof shape>, agent = 'a') => ({ format: 1, argv: templateQemuArgs({ ...shape, ...o }, { build: true, tbSizeMiB: 32, qmp: 'qmp.sock', ports }), agent });
  const k = templateKey(inputs({}));
  assert.equal(k, templateKey(inputs({})));
  for (const other of [inputs({ memMiB: 256 }), inputs({ cpus: 2 }), inputs({ accel: 'kvm' }), inputs({ nics: 1 }), inputs({}, 'b')]) assert.notEqual(templateKey(other), k);
});

test('the run frame: T_RESUME with the run spec, a fresh clock and 64 random bytes each time', () => {
  const spec = { args: ['echo', 'hi'], env: ['A=1'], hostname: 'h1', mainPort: true };
  const f1 = new FrameDecoder().push(encodeRunFrame(spec));
  const f2 = new FrameDecoder().push(encodeRunFrame(spec));
  assert.equal(f1.length, 1);
  assert.equal(f1[0]!.type, T.RESUME);
  assert.notDeepEqual(f1[0]!.payload, f2[0]!.payload);
  const recs = (p: Buffer) => {
    const out: [number, Buffer][] = [];
    for (let o = 0; o < p.length;) {
      const n = p.readUInt32LE(o + 2);
      out.push([p.readUInt16LE(o), p.subarray(o + 6, o + 6 + n)]);
      o += 6 + n;
    }
    return out;
  };
  const r = recs(f1[0]!.payload);
  assert.deepEqual(r.filter(([t]) => t === 1).map(([, v]) => v.toString()), ['echo', 'hi']);
  assert.equal(r.find(([t]) => t === 17)![1].length, 64);
  const clock = Number(r.find(([t]) => t === 13)![1].readBigUInt64LE(0) / 1_000_000n);
  assert.ok(Math.abs(clock - Date.now()) < 5000);
  assert.ok(!r.some(([t]) => t === 16), 'a run frame is no template');
  assert.throws(() => encodeRunFrame({ ...spec, env: [`X=${'x'.repeat(70_000)}`] }), /exceeds 65536/);
});

test('checkTemplate refuses a missing or altered template, naming what is wrong', () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-tpl-'));
  try {
    assert.match((checkTemplate(d) as { why: string }).why, /meta\.json/);
    for (const n of ['state', 'initrd.cpio', 'disk', 'ram']) fs.writeFileSync(path.join(d, n), n);
    const st = (n: string) => fs.statSync(path.join(d, n));
    const sha = (s: string) => crypto.createHash('sha256').update(s).digest('hex');
    const meta = {
      key: 'k', files: {
        state: { size: 5, sha256: sha('state') }, initrd: { size: 11, sha256: sha('initrd.cpio') }, disk: { size: 4 },
        ram: { size: 3, ino: st('ram').ino, mtimeMs: Math.round(st('ram').mtimeMs), ctimeMs: Math.round(st('ram').ctimeMs) },
      },
    };
    fs.writeFileSync(path.join(d, 'meta.json'), JSON.stringify(meta));
    assert.equal(checkTemplate(d, 'k').ok, true);
    assert.match((checkTemplate(d, 'other') as { why: string }).why, /key/);
    fs.writeFileSync(path.join(d, 'state'), 'stat3');
    assert.match((checkTemplate(d, 'k') as { why: string }).why, /device state/);
    fs.writeFileSync(path.join(d, 'state'), 'state');
    fs.utimesSync(path.join(d, 'ram'), new Date(2000, 1, 1), new Date(2000, 1, 1)); // written: its times moved
    assert.match((checkTemplate(d, 'k') as { why: string }).why, /RAM file/);
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
});

test('the default boot is one constant', () => {
  assert.ok(DEFAULT_VM_BOOT === 'auto' || DEFAULT_VM_BOOT === 'cold');
});

test('contrast: a measured restore fills its own row; the pool row stays as it was', async () => {
  const { bootRows, bootModesOffered } = await import('../../src/contrast/scenario-boot.js');
  const rows = bootRows({ ms: 600, how: 'cold runs' }, bootModesOffered('--vm-boot string', false), { ms: 350, how: 'restore runs' });
  assert.deepEqual(rows.map((r) => [r.mode, r.ms]), [['cold', 600], ['restore', 350], ['pool', null]]);
  assert.equal(rows[1]!.how, 'restore runs');
  assert.match(rows[2]!.how, /^not available/);
});

test('the template boot\'s spec: TEMPLATE and no command; RANDOM is 16..512 bytes', () => {
  const f = encodeSpecFile({ args: [], env: [], hostname: 'template', template: true });
  assert.equal(f.subarray(0, 8).toString(), 'HULLSPEC');
  const tags: number[] = [];
  for (let o = 12; o < f.length;) {
    tags.push(f.readUInt16LE(o));
    o += 6 + f.readUInt32LE(o + 2);
  }
  assert.deepEqual(tags, [5, 16]);
  assert.throws(() => encodeSpecFile({ args: [], env: [], hostname: 'h' }), /no command/);
  for (const n of [15, 513]) assert.throws(() => encodeSpecFile({ args: ['true'], env: [], hostname: 'h', random: Buffer.alloc(n) }), /16\.\.512/);
});

/** A socketpair-like pair of connected unix sockets (what QEMU inherits, and hull's end). */
async function socketPair(): Promise<{ hull: net.Socket; qemu: net.Socket; close(): void }> {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-qmp-'));
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(path.join(d, 's'), r));
  const accepted = new Promise<net.Socket>((r) => srv.once('connection', r));
  const hull = net.connect(path.join(d, 's'));
  const qemu = await accepted;
  return { hull, qemu, close: () => { hull.destroy(); qemu.destroy(); srv.close(); fs.rmSync(d, { recursive: true, force: true }); } };
}

test('restore monitor: every command goes out before QEMU greets; the run frame only after RESUME', async () => {
  const p = await socketPair();
  try {
    const seen: string[] = [];
    let buf = '';
    p.qemu.setEncoding('utf8');
    const allIn = new Promise<void>((resolve) => p.qemu.on('data', (d: string) => {
      buf += d;
      for (let nl; (nl = buf.indexOf('\n')) >= 0; buf = buf.slice(nl + 1)) seen.push((JSON.parse(buf.slice(0, nl)) as { execute: string }).execute);
      if (seen.length === 3) resolve();
    }));
    const run = new (await import('node:stream')).PassThrough();
    let sent = false;
    run.on('data', () => (sent = true));
    const done = resumeRestored(p.hull, 21, run, () => Buffer.from('frame'), 5000);
    await allIn; // written at once, with no greeting yet: QEMU reads them once its main loop runs
    assert.deepEqual(seen, ['qmp_capabilities', 'migrate-set-capabilities', 'migrate-incoming']);
    p.qemu.write('{"QMP": {"version": {}, "capabilities": []}}\n{"return": {}}\n{"return": {}}\n{"return": {}}\n');
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(sent, false, 'no run frame before the vCPUs run');
    p.qemu.write('{"timestamp": {"seconds": 1, "microseconds": 0}, "event": "RESUME"}\n');
    await done;
    assert.equal(sent, true);
  } finally {
    p.close();
  }
});

test('restore monitor: a refused command or a QEMU that ends fails the restore, naming why', async () => {
  const p = await socketPair();
  try {
    const done = resumeRestored(p.hull, 21, new (await import('node:stream')).PassThrough(), () => Buffer.alloc(0), 5000);
    p.qemu.write('{"QMP": {}}\n{"return": {}}\n{"return": {}}\n{"error": {"class": "GenericError", "desc": "bad fd"}}\n');
    await assert.rejects(done, /bad fd/);
  } finally {
    p.close();
  }
  const q = await socketPair();
  try {
    const done = resumeRestored(q.hull, 21, new (await import('node:stream')).PassThrough(), () => Buffer.alloc(0), 5000);
    q.qemu.destroy();
    await assert.rejects(done, /closed its monitor/);
  } finally {
    q.close();
  }
});
