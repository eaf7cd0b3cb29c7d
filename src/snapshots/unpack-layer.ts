/**
 * Turn a layer blob of the content store into its read-only directory layers/<diff id hex>:
 * the blob is counted while read (size), decompressed by sniffing its magic (gzip, zstd or
 * plain, whatever the media type claims), the uncompressed stream hashed against the diff id,
 * unpacked into a temp dir and renamed into place only when both check out. Two processes
 * unpacking the same layer both succeed: the first rename wins and the other removes its copy.
 *
 * The blob is not re-hashed on the way: it was verified against its digest when it entered
 * the content store, and the diff id check covers what is unpacked (a changed blob either
 * fails to decompress or decompresses to other bytes). Only when the unpack fails is the
 * blob hashed, to say whether the stored blob is damaged (a local fault: pull it again) or
 * the image is wrong as published.
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Duplex, PassThrough, Transform, type Readable } from 'node:stream';
import { HullError, invalid } from '../errors.js';
import type { ContentStore } from '../content/store.js';
import { type Digest, hex } from '../oci/digest.js';
import { unpackTar, type UnpackResult } from './unpack.js';

export interface LayerBlob {
  /** sha256 of the uncompressed tar (config rootfs.diff_ids). */
  diffId: Digest;
  /** Digest of the blob as stored (the manifest's layer digest). */
  blobDigest: Digest;
  /** Exact blob size in bytes. */
  blobSize: number;
}

export interface UnpackedLayer {
  dir: string;
  /** Bytes of file data in the layer. */
  size: number;
  /** False when another process (or an earlier run) put the directory in place first. */
  created: boolean;
  warnings: string[];
}

/** Counts and hashes what flows through. */
export class HashTap extends Transform {
  readonly hash = crypto.createHash('sha256');
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null, d?: Buffer) => void): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    cb(null, chunk);
  }
  digest(): Digest {
    return `sha256:${this.hash.digest('hex')}`;
  }
}

/** Counts what flows through. */
export class CountTap extends Transform {
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null, d?: Buffer) => void): void {
    this.bytes += chunk.length;
    cb(null, chunk);
  }
}

export type Compression = 'gzip' | 'zstd' | 'none';

/** The first `n` bytes of a file (fewer when it is shorter). Throws when it cannot be opened. */
export function readHead(file: string, n: number): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const head = Buffer.alloc(n);
    return head.subarray(0, fs.readSync(fd, head, 0, n, 0));
  } finally {
    fs.closeSync(fd);
  }
}

/** Compression of a blob from its first bytes. */
export function sniffCompression(head: Buffer): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'none';
}

/** A decompressing stream for `c`, loading zlib or spawning zstd only when needed. */
export async function decompressor(c: Compression, what: string): Promise<Duplex> {
  if (c === 'none') return new PassThrough({ highWaterMark: 1 << 20 });
  if (c === 'gzip') {
    const zlib = await import('node:zlib');
    return zlib.createGunzip({ chunkSize: 1 << 18 });
  }
  return zstdStream(what);
}

function zstdStream(what: string): Duplex {
  const child = spawn('zstd', ['-d', '-c', '-q'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const d = Duplex.from({ writable: child.stdin, readable: child.stdout });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  child.on('error', (e) =>
    d.destroy(new HullError('UNAVAILABLE', `${what}: zstd-compressed layer needs the zstd program: ${e.message}`, { hint: 'apt-get install zstd' })),
  );
  child.on('close', (code) => {
    if (code !== 0) d.destroy(invalid(`${what}: corrupt zstd stream (${stderr.trim() || `exit ${code}`})`));
  });
  return d;
}

/**
 * Unpack an uncompressed-or-compressed tar stream into a fresh temp dir under `tmpDir`,
 * hashing both sides. Resolves with the temp dir and the computed digests; the caller verifies
 * and renames (or removes). On error the temp dir is removed.
 */
export async function unpackToTemp(
  src: Readable,
  compression: Compression,
  tmpDir: string,
  what: string,
  opts: { hashBlob?: boolean } = {},
): Promise<{ tmp: string; blob: { digest?: Digest; size: number }; diffId: Digest; result: UnpackResult }> {
  const tmp = path.join(tmpDir, `layer-${process.pid}-${crypto.randomBytes(6).toString('hex')}`);
  fs.mkdirSync(tmp, { mode: 0o755 });
  try {
    const blobTap = opts.hashBlob === false ? new CountTap() : new HashTap();
    const tarTap = new HashTap();
    const dec = await decompressor(compression, what);
    const onErr = (e: Error) => tarTap.destroy(e);
    src.on('error', onErr);
    blobTap.on('error', onErr);
    dec.on('error', onErr);
    src.pipe(blobTap).pipe(dec).pipe(tarTap);
    const result = await unpackTar(tarTap, tmp, { what });
    return { tmp, blob: { digest: blobTap instanceof HashTap ? blobTap.digest() : undefined, size: blobTap.bytes }, diffId: tarTap.digest(), result };
  } catch (e) {
    src.destroy();
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** Rename a verified temp layer into layers/<hex>; false when one was there already. */
export function placeLayer(tmp: string, dir: string): boolean {
  try {
    fs.renameSync(tmp, dir);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    fs.rmSync(tmp, { recursive: true, force: true });
    if (code === 'ENOTEMPTY' || code === 'EEXIST') return false;
    throw e;
  }
}

/** Unpack a stored layer blob into `layersDir/<diff id hex>` (see the file comment). */
export async function unpackLayerBlob(
  content: ContentStore,
  layer: LayerBlob,
  dirs: { layers: string; tmp: string },
  what: string,
): Promise<UnpackedLayer> {
  const dir = path.join(dirs.layers, hex(layer.diffId));
  fs.mkdirSync(dirs.layers, { recursive: true, mode: 0o755 });
  const blobPath = content.path(layer.blobDigest);
  let head: Buffer;
  try {
    head = readHead(blobPath, 4);
  } catch {
    throw invalid(`${what}: blob ${layer.blobDigest} is missing from the content store`);
  }
  const src = fs.createReadStream(blobPath, { highWaterMark: 1 << 20 });
  let out: Awaited<ReturnType<typeof unpackToTemp>>;
  try {
    out = await unpackToTemp(src, sniffCompression(head), dirs.tmp, what, { hashBlob: false });
  } catch (e) {
    // A corrupt stream or a refused entry: is the stored blob itself damaged?
    if (e instanceof HullError && e.code === 'INVALID_ARGUMENT') await checkStoredBlob(blobPath, layer, what);
    throw e;
  }
  const { tmp, blob, diffId, result } = out;
  const fail = async (msg: string) => {
    fs.rmSync(tmp, { recursive: true, force: true });
    await checkStoredBlob(blobPath, layer, what);
    return invalid(`${what}: ${msg}`);
  };
  if (blob.size !== layer.blobSize) throw await fail(`size mismatch: blob ${layer.blobDigest} is ${blob.size} bytes, the manifest says ${layer.blobSize}`);
  if (diffId !== layer.diffId) throw await fail(`diff id mismatch: uncompressed layer hashes to ${diffId}, the config says ${layer.diffId}`);
  const created = placeLayer(tmp, dir);
  return { dir, size: result.size, created, warnings: result.warnings };
}

/** Throw a digest mismatch naming the stored blob when it no longer hashes to its digest. */
async function checkStoredBlob(blobPath: string, layer: LayerBlob, what: string): Promise<void> {
  const hash = crypto.createHash('sha256');
  try {
    for await (const c of fs.createReadStream(blobPath, { highWaterMark: 1 << 20 })) hash.update(c as Buffer);
  } catch {
    return; // unreadable: the unpack error stands
  }
  const got = `sha256:${hash.digest('hex')}`;
  if (got !== layer.blobDigest) throw invalid(`${what}: digest mismatch: the stored blob ${layer.blobDigest} hashes to ${got} (damaged on this host)`);
}
