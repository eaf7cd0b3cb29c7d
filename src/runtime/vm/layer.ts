/**
 * A VM's writable layer on the host (guest/PROTOCOL.md, "The writable layer"): the guest's
 * tmpfs upper dir, written by the guest agent as an OCI-form tar and unpacked here by the
 * hardened unpacker (never trusted, never mounted), so that diff, commit and export read it
 * with the same code as a container's upper dir (engine/changes.ts, snapshots/diff.ts).
 *
 * - A stopped VM that is kept (not --rm): the agent sent the layer when its workload exited
 *   (R_LAYER 'exit'), QEMU wrote it to <instance>/layer.tar, and the status file says whether it
 *   went out whole (LAYER_SENT). The first reader unpacks it once into <instance>/layer (a temp
 *   dir in the instance dir, renamed into place: first wins) and removes the tar. A tar the guest
 *   did not finish is removed, and why is kept in layer.tar.err.
 * - A running VM: a LAYER request on the control port; the agent answers with the tar in STDOUT
 *   frames (every other guest process stopped meanwhile with `freeze`), unpacked as it arrives
 *   into a temp dir in the instance dir that the caller releases.
 * Both are bounded: bytes (HULL_VM_LAYER_MAX_BYTES, default twice the guest RAM, at least
 * 256 MiB) and, for a running VM, time without progress (HULL_VM_LAYER_IDLE_MS, default 30 s)
 * and in all (HULL_VM_LAYER_TIMEOUT_MS, default 10 min).
 * Whatever fails removes what it made. `hull rm` removes the instance dir, and so all of it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { HullError } from '../../errors.js';
import type { InstanceSpec, WritableLayer } from '../types.js';
import { connectCtl } from './control.js';
import { decodeExit, decodeStatus, encodeFrame, FrameDecoder, T } from './protocol.js';

const MIB = 1024 * 1024;

/** Where a VM's kept layer lives, inside its instance dir. */
export function layerFiles(spec: Pick<InstanceSpec, 'dir'>): { tar: string; err: string; dir: string } {
  const tar = path.join(spec.dir, 'layer.tar');
  return { tar, err: `${tar}.err`, dir: path.join(spec.dir, 'layer') };
}

/** Bytes a layer may take (the tar as the guest writes it). */
export function layerMaxBytes(spec: Pick<InstanceSpec, 'resources'>, env: NodeJS.ProcessEnv = process.env): number {
  const v = env.HULL_VM_LAYER_MAX_BYTES;
  if (v !== undefined && v !== '') {
    if (!/^\d+$/.test(v) || Number(v) < 1) throw new HullError('INVALID_ARGUMENT', `HULL_VM_LAYER_MAX_BYTES=${v}: want a positive integer (bytes)`);
    return Number(v);
  }
  return Math.max(256 * MIB, 2 * (spec.resources.memoryBytes ?? 128 * MIB));
}

/** How long a guest may go without sending its layer, ms (HULL_VM_LAYER_IDLE_MS, default 30 s). */
export function layerIdleMs(env: NodeJS.ProcessEnv = process.env): number {
  const v = env.HULL_VM_LAYER_IDLE_MS;
  if (v === undefined || v === '') return 30_000;
  if (!/^\d+$/.test(v) || Number(v) < 100) throw new HullError('INVALID_ARGUMENT', `HULL_VM_LAYER_IDLE_MS=${v}: want an integer >= 100 (ms)`);
  return Number(v);
}

function totalMs(env: NodeJS.ProcessEnv = process.env): number {
  const v = env.HULL_VM_LAYER_TIMEOUT_MS;
  if (v === undefined || v === '') return 600_000;
  if (!/^\d+$/.test(v) || Number(v) < 100) throw new HullError('INVALID_ARGUMENT', `HULL_VM_LAYER_TIMEOUT_MS=${v}: want an integer >= 100 (ms)`);
  return Number(v);
}

/** Before a run: the last run's layer goes (the new guest starts from the image again). */
export function dropKeptLayer(spec: Pick<InstanceSpec, 'dir'>): void {
  const f = layerFiles(spec);
  for (const p of [f.dir, f.tar, f.err]) fs.rmSync(p, { recursive: true, force: true });
  for (const n of fs.existsSync(spec.dir) ? fs.readdirSync(spec.dir) : []) if (n.startsWith('.layer-')) fs.rmSync(path.join(spec.dir, n), { recursive: true, force: true });
}

function statusOf(status: Buffer): ReturnType<typeof decodeStatus> {
  try {
    return decodeStatus(status);
  } catch {
    return {};
  }
}

/** After the run: a tar the guest did not finish (no LAYER_SENT after its EXIT) is not a layer; why is kept. */
export function settleKeptLayer(spec: Pick<InstanceSpec, 'dir'>, status: Buffer): void {
  const f = layerFiles(spec);
  const st = statusOf(status);
  if (st.exit?.layerSent || !fs.existsSync(f.tar)) return;
  fs.rmSync(f.tar, { force: true });
  const why = st.errors?.join('; ') || (st.exit ? 'the VM was stopped while its guest was sending it' : 'the VM ended without an exit (QEMU was killed, or the guest crashed)');
  fs.writeFileSync(f.err, `the guest could not send it: ${why}`);
}

function precondition(spec: Pick<InstanceSpec, 'id'>, why: string): HullError {
  return new HullError('FAILED_PRECONDITION', `VM ${spec.id.slice(0, 12)}: no writable layer: ${why}`);
}

/**
 * A stopped VM's layer, unpacked once into <instance>/layer. `status` is the run's status file
 * (vm/status). FAILED_PRECONDITION, naming why, when there is none.
 */
export async function keptLayer(spec: InstanceSpec, status: Buffer): Promise<WritableLayer> {
  const f = layerFiles(spec);
  if (fs.existsSync(f.dir)) return { kind: 'upper', dir: f.dir };
  // an attached run settled its tar itself before its vm dir went (runtime/vm/attached.ts)
  if (status.length) settleKeptLayer(spec, status);
  let size: number;
  try {
    size = fs.statSync(f.tar).size;
  } catch {
    if (fs.existsSync(f.dir)) return { kind: 'upper', dir: f.dir }; // another caller unpacked it meanwhile
    if (fs.existsSync(f.err)) throw precondition(spec, fs.readFileSync(f.err, 'utf8').slice(0, 1000));
    if (spec.autoRemove) throw precondition(spec, 'it ran with --rm, whose writes are never kept');
    if (!fs.existsSync(path.join(spec.dir, 'vm'))) {
      // created, never started: nothing changed yet (the next start removes this again)
      fs.mkdirSync(f.dir, { recursive: true, mode: 0o755 });
      return { kind: 'upper', dir: f.dir };
    }
    throw precondition(spec, 'the guest did not send it (it was started by a hull that did not keep VM layers)');
  }
  const max = layerMaxBytes(spec);
  if (size > max) {
    fs.rmSync(f.tar, { force: true });
    fs.writeFileSync(f.err, `it is ${size} bytes, over the bound of ${max} (HULL_VM_LAYER_MAX_BYTES)`);
    throw precondition(spec, fs.readFileSync(f.err, 'utf8'));
  }
  const tmp = fs.mkdtempSync(path.join(spec.dir, '.layer-'));
  try {
    const { unpackTar } = await import('../../snapshots/unpack.js');
    let src: fs.ReadStream;
    try {
      src = fs.createReadStream(f.tar, { highWaterMark: MIB });
      await new Promise<void>((resolve, reject) => src.once('open', () => resolve()).once('error', reject));
    } catch (e) {
      if (fs.existsSync(f.dir)) return { kind: 'upper', dir: f.dir };
      throw e;
    }
    const ino = fs.fstatSync((src as fs.ReadStream & { fd: number }).fd).ino;
    const ours = () => fs.statSync(f.tar, { throwIfNoEntry: false })?.ino === ino;
    try {
      await unpackTar(src, tmp, { what: `the tar its guest sent` });
    } catch (e) {
      // refused (a path out of the layer, a device node, not a tar): never tried again
      const why = `the host refused it: ${(e as Error).message}`;
      if (ours()) {
        fs.rmSync(f.tar, { force: true });
        fs.writeFileSync(f.err, why);
      }
      throw precondition(spec, why);
    }
    // a start that raced the unpacking (df reads layers without the lease) dropped this tar
    if (!ours() && !fs.existsSync(f.dir)) throw precondition(spec, 'the VM started again while its last layer was read');
    try {
      fs.renameSync(tmp, f.dir);
    } catch (e) {
      if (!fs.existsSync(f.dir)) throw e; // else another caller was first: theirs is the same layer
    }
    fs.rmSync(f.tar, { force: true });
    return { kind: 'upper', dir: f.dir };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * A running VM's layer now: a LAYER request on its control port (`address`, through
 * hull-vmmux), the answer unpacked as it streams into a temp dir of the instance, which
 * `release()` removes. `freeze`: the guest stops every other process while it writes (docker
 * commit's --pause). Bounded in bytes and in time without progress.
 */
export async function liveLayer(spec: InstanceSpec, address: string, o: { freeze: boolean }): Promise<WritableLayer> {
  const max = layerMaxBytes(spec);
  const idle = layerIdleMs();
  const total = totalMs();
  const tmp = fs.mkdtempSync(path.join(spec.dir, '.layer-'));
  const release = () => fs.rmSync(tmp, { recursive: true, force: true });
  const what = `the writable layer of VM ${spec.id.slice(0, 12)} (from the guest)`;
  let s: Awaited<ReturnType<typeof connectCtl>> | undefined;
  try {
    s = await connectCtl(address);
    const sock = s;
    const tar = new PassThrough({ highWaterMark: MIB });
    const ch = 1;
    const dec = new FrameDecoder();
    let bytes = 0;
    let timer: NodeJS.Timeout | undefined;
    let whole: NodeJS.Timeout | undefined;
    let ended = false;
    const fail = (why: string, code: 'UNAVAILABLE' | 'FAILED_PRECONDITION' = 'UNAVAILABLE') => {
      if (ended) return;
      ended = true;
      clearTimeout(timer);
      clearTimeout(whole);
      tar.destroy(new HullError(code, `${what}: ${why}`));
      sock.destroy();
    };
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => fail(`no progress for ${idle} ms (HULL_VM_LAYER_IDLE_MS)`), idle);
    };
    sock.on('data', (chunk: Buffer) => {
      let frames;
      try {
        frames = dec.push(chunk);
      } catch (e) {
        return fail((e as Error).message);
      }
      arm();
      for (const f of frames) {
        if (ended) return;
        if (f.channel !== ch && f.type !== T.ERROR) continue;
        if (f.type === T.STDOUT) {
          bytes += f.payload.length;
          if (bytes > max) return fail(`it exceeds the bound of ${max} bytes (HULL_VM_LAYER_MAX_BYTES)`, 'FAILED_PRECONDITION');
          // backpressure: stop reading the guest while the unpacker is behind
          if (!tar.write(f.payload)) {
            sock.pause();
            tar.once('drain', () => sock.resume());
          }
        } else if (f.type === T.ERROR) {
          return fail(`the guest agent refused: ${f.payload.subarray(0, 1000).toString('utf8')}`);
        } else if (f.type === T.EXIT) {
          const x = decodeExit(f.payload);
          if (!x.layerSent) return fail(`the guest could not send it: ${x.reason ?? `exit ${x.code}`}`, 'FAILED_PRECONDITION');
          ended = true;
          clearTimeout(timer);
          clearTimeout(whole);
          tar.end();
          sock.destroy();
          return;
        }
      }
    });
    sock.on('close', () => fail('the VM closed its control port before the layer was whole (it stopped?)'));
    sock.on('error', () => undefined);
    arm();
    whole = setTimeout(() => fail(`not whole after ${total} ms (HULL_VM_LAYER_TIMEOUT_MS)`), total);
    sock.write(encodeFrame(T.LAYER, ch, Buffer.from([o.freeze ? 1 : 0])));
    const { unpackTar } = await import('../../snapshots/unpack.js');
    try {
      await unpackTar(tar, tmp, { what });
    } finally {
      ended = true;
      clearTimeout(timer);
      clearTimeout(whole);
      sock.destroy();
    }
    return { kind: 'upper', dir: tmp, release };
  } catch (e) {
    s?.destroy();
    release();
    throw e;
  }
}
