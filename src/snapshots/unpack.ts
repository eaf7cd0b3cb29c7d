/**
 * Unpack one layer tar stream into an empty directory, safely:
 *  - entry names are cleaned; absolute paths and '..' are refused (unpack-paths.ts);
 *  - parent directories are walked with lstat; a symlink on the way is followed only while it
 *    stays inside the layer, otherwise the entry is refused ("write through symlink");
 *  - files are created with O_EXCL|O_NOFOLLOW after removing whatever was there, so nothing is
 *    ever written through a symlink;
 *  - hardlinks must name an entry inside the layer; device nodes are refused;
 *  - OCI whiteouts become overlay whiteouts: `.wh.NAME` -> char device 0/0 named NAME,
 *    `.wh..wh..opq` -> xattr trusted.overlay.opaque=y on the directory;
 *  - owners, modes (incl. setuid/setgid/sticky), mtimes, symlinks, hardlinks, fifos and
 *    pax SCHILY.xattr.* extended attributes are kept.
 * Every error names the layer and the offending entry. The caller owns `dest` (a temp dir) and
 * removes it on failure.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { createRequire } from 'node:module';
import type * as TarStream from 'tar-stream';
import { HullError, invalid } from '../errors.js';
import { cleanEntryName, escapeAttrPath, permBits, symlinkTargetInside, whiteoutOf } from './unpack-paths.js';
import { RAW_XATTRS, installRawXattrs } from './unpack-pax.js';

const require = createRequire(import.meta.url);
const C = fs.constants;

export interface UnpackResult {
  /** Bytes of regular-file data written. */
  size: number;
  entries: number;
  /** Things kept imperfectly (e.g. a binary xattr tar-stream could not decode). */
  warnings: string[];
}

export interface UnpackOptions {
  /** Names the layer in errors, e.g. 'layer sha256:ab12... of busybox:latest'. */
  what?: string;
}

interface Pending {
  whiteouts: { dir: string; name: string; entry: string; mtime?: Date }[];
  xattrs: { rel: string; name: string; value: Buffer; entry: string }[];
  dirs: Map<string, Date>;
}

/** Unpack `src` (an uncompressed tar stream) into the existing empty directory `dest`. */
export async function unpackTar(src: Readable | AsyncIterable<Buffer>, dest: string, opts: UnpackOptions = {}): Promise<UnpackResult> {
  const tar = require('tar-stream') as typeof TarStream;
  installRawXattrs();
  const what = opts.what ?? 'layer';
  const u = new Unpacker(dest, what);
  const ex = tar.extract();
  let feedErr: unknown;
  const feeding = pipeline(src as Readable, ex as unknown as NodeJS.WritableStream).catch((e: unknown) => {
    feedErr = e;
  });
  try {
    for await (const entry of ex) {
      await u.entry(entry as unknown as AsyncIterable<Buffer> & { header: TarStream.Header });
    }
  } catch (e) {
    // Our own refusal (a HullError naming the entry) beats the 'premature close' it causes upstream.
    ex.destroy();
    if (typeof (src as Readable).destroy === 'function') (src as Readable).destroy();
    await feeding;
    throw wrapFeedError(e instanceof HullError ? e : (feedErr ?? e), what);
  }
  await feeding;
  if (feedErr) throw wrapFeedError(feedErr, what);
  u.finish();
  return { size: u.size, entries: u.entries, warnings: u.warnings };
}

/** Turn a zlib / tar-stream failure into an INVALID_ARGUMENT error naming `what`. */
export function wrapFeedError(e: unknown, what: string): unknown {
  if (e instanceof HullError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  const code = (e as NodeJS.ErrnoException)?.code;
  if (code === 'Z_BUF_ERROR' || /unexpected end of file/i.test(msg)) return invalid(`${what}: truncated gzip stream (${msg})`, e);
  if (code && code.startsWith('Z_')) return invalid(`${what}: corrupt gzip stream (${msg})`, e);
  if (/tar|header|checksum/i.test(msg)) return invalid(`${what}: not a valid tar stream (${msg})`, e);
  return e;
}

class Unpacker {
  size = 0;
  entries = 0;
  warnings: string[] = [];
  private readonly pending: Pending = { whiteouts: [], xattrs: [], dirs: new Map() };
  /** Resolved real relative path of directories already walked. */
  private readonly dirCache = new Map<string, string>();

  constructor(
    private readonly dest: string,
    private readonly what: string,
  ) {}

  private err(entry: string, msg: string): HullError {
    return invalid(`${this.what}: entry ${JSON.stringify(entry)}: ${msg}`);
  }

  private abs(rel: string): string {
    return rel === '' ? this.dest : path.join(this.dest, rel);
  }

  async entry(e: AsyncIterable<Buffer> & { header: TarStream.Header }): Promise<void> {
    const h = e.header as Partial<TarStream.Header> & { name: string; pax?: Record<string, string> | null };
    const name = h.name;
    this.entries++;
    const rel = cleanEntryName(name, `${this.what}: entry`);
    const wo = whiteoutOf(rel, `${this.what}: entry`);
    if (wo) {
      await drain(e);
      const dir = this.resolveDir(wo.dir, name, true);
      if (wo.kind === 'opaque') this.pending.xattrs.push({ rel: dir, name: 'trusted.overlay.opaque', value: Buffer.from('y'), entry: name });
      else this.pending.whiteouts.push({ dir, name: wo.target, entry: name, mtime: h.mtime instanceof Date ? h.mtime : undefined });
      return;
    }
    const type = h.type ?? 'file';
    if (type === 'character-device' || type === 'block-device') {
      await drain(e);
      throw this.err(name, `device node (${type} ${h.devmajor ?? 0}:${h.devminor ?? 0}) refused`);
    }
    if (!['file', 'contiguous-file', 'directory', 'symlink', 'link', 'fifo'].includes(type)) {
      await drain(e);
      throw this.err(name, `unsupported entry type ${type}`);
    }
    const uid = paxInt(h.pax?.uid) ?? h.uid ?? 0;
    const gid = paxInt(h.pax?.gid) ?? h.gid ?? 0;
    const mtime = paxTime(h.pax?.mtime) ?? h.mtime ?? new Date(0);

    if (rel === '') {
      await drain(e);
      if (type !== 'directory') throw this.err(name, 'the layer root must be a directory');
      fs.lchownSync(this.dest, uid, gid);
      fs.chmodSync(this.dest, permBits(h.mode, 0o755));
      this.pending.dirs.set('', mtime);
      this.collectXattrs(h.pax, '', name);
      return;
    }

    const parent = this.resolveDir(path.posix.dirname(rel) === '.' ? '' : path.posix.dirname(rel), name, true);
    const real = parent === '' ? path.posix.basename(rel) : `${parent}/${path.posix.basename(rel)}`;
    const abs = this.abs(real);
    const existing = lstatOrUndefined(abs);

    if (type === 'directory') {
      await drain(e);
      if (existing && !existing.isDirectory()) this.remove(abs, existing);
      if (!existing || !existing.isDirectory()) fs.mkdirSync(abs, { mode: 0o700 });
      fs.lchownSync(abs, uid, gid);
      fs.chmodSync(abs, permBits(h.mode, 0o755));
      this.pending.dirs.set(real, mtime);
      this.collectXattrs(h.pax, real, name);
      return;
    }

    if (existing) this.remove(abs, existing);

    if (type === 'link') {
      await drain(e);
      const target = this.resolveLinkTarget(h.linkname ?? '', name);
      try {
        fs.linkSync(this.abs(target), abs);
      } catch (err) {
        throw this.err(name, `hardlink to ${JSON.stringify(h.linkname)} failed: ${(err as Error).message}`);
      }
      return;
    }

    if (type === 'symlink') {
      await drain(e);
      const target = h.linkname ?? '';
      if (target === '' || target.includes('\0')) throw this.err(name, 'symlink with an empty or invalid target');
      fs.symlinkSync(target, abs);
      fs.lchownSync(abs, uid, gid);
      fs.lutimesSync(abs, mtime, mtime);
      this.collectXattrs(h.pax, real, name);
      return;
    }

    if (type === 'fifo') {
      await drain(e);
      const r = spawnSync('mkfifo', ['-m', '600', abs], { encoding: 'utf8' });
      if (r.status !== 0) throw this.err(name, `mkfifo failed: ${r.stderr || r.error?.message}`);
      fs.lchownSync(abs, uid, gid);
      fs.chmodSync(abs, permBits(h.mode, 0o644));
      fs.lutimesSync(abs, mtime, mtime);
      this.collectXattrs(h.pax, real, name);
      return;
    }

    // Regular file: never follow a symlink, never reuse an existing inode.
    const fd = fs.openSync(abs, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600);
    let written = 0;
    try {
      for await (const chunk of e as AsyncIterable<Buffer>) {
        let off = 0;
        while (off < chunk.length) off += fs.writeSync(fd, chunk, off, chunk.length - off);
        written += chunk.length;
      }
      fs.fchownSync(fd, uid, gid);
      fs.fchmodSync(fd, permBits(h.mode, 0o644));
      fs.futimesSync(fd, mtime, mtime);
    } finally {
      fs.closeSync(fd);
    }
    this.size += written;
    this.collectXattrs(h.pax, real, name);
  }

  private remove(abs: string, st: fs.Stats): void {
    if (st.isDirectory()) fs.rmSync(abs, { recursive: true, force: true });
    else fs.unlinkSync(abs);
    // A replaced directory may have been a parent we cached.
    this.dirCache.clear();
  }

  /**
   * Resolve a directory path (cleaned, relative) to its real path inside the layer, following
   * symlinks only while they stay inside, creating missing directories when `create`.
   */
  private resolveDir(rel: string, entry: string, create: boolean): string {
    if (rel === '') return '';
    const hit = this.dirCache.get(rel);
    if (hit !== undefined) return hit;
    const todo = rel.split('/');
    let cur = '';
    let hops = 0;
    while (todo.length > 0) {
      const comp = todo.shift()!;
      const cand = cur === '' ? comp : `${cur}/${comp}`;
      const st = lstatOrUndefined(this.abs(cand));
      if (!st) {
        if (!create) throw this.err(entry, `parent directory ${JSON.stringify(cand)} does not exist`);
        fs.mkdirSync(this.abs(cand), { mode: 0o755 });
        cur = cand;
      } else if (st.isDirectory()) {
        cur = cand;
      } else if (st.isSymbolicLink()) {
        if (++hops > 40) throw this.err(entry, `too many levels of symbolic links at ${JSON.stringify(cand)}`);
        const target = fs.readlinkSync(this.abs(cand));
        const inside = symlinkTargetInside(cand, target);
        if (inside === undefined) {
          throw this.err(entry, `write through symlink ${JSON.stringify(cand)} -> ${JSON.stringify(target)} which points outside the layer refused`);
        }
        todo.unshift(...(inside === '' ? [] : inside.split('/')));
        cur = '';
      } else {
        throw this.err(entry, `parent ${JSON.stringify(cand)} is not a directory`);
      }
    }
    this.dirCache.set(rel, cur);
    return cur;
  }

  private resolveLinkTarget(linkname: string, entry: string): string {
    if (linkname === '' || linkname.startsWith('/')) throw this.err(entry, `hardlink to ${JSON.stringify(linkname)} outside the layer refused`);
    let rel: string;
    try {
      rel = cleanEntryName(linkname, 'hardlink target');
    } catch {
      throw this.err(entry, `hardlink to ${JSON.stringify(linkname)} outside the layer refused`);
    }
    if (rel === '') throw this.err(entry, 'hardlink to the layer root refused');
    const dir = path.posix.dirname(rel) === '.' ? '' : path.posix.dirname(rel);
    const parent = this.resolveDir(dir, entry, false);
    const real = parent === '' ? path.posix.basename(rel) : `${parent}/${path.posix.basename(rel)}`;
    const st = lstatOrUndefined(this.abs(real));
    if (!st) throw this.err(entry, `hardlink target ${JSON.stringify(linkname)} is not in the layer`);
    if (st.isDirectory()) throw this.err(entry, `hardlink to directory ${JSON.stringify(linkname)} refused`);
    return real;
  }

  private collectXattrs(pax: Record<string, string> | null | undefined, rel: string, entry: string): void {
    if (!pax) return;
    const raw = (pax as Record<symbol, unknown>)[RAW_XATTRS] as Map<string, Buffer> | undefined;
    for (const [k, v] of Object.entries(pax)) {
      if (!k.startsWith('SCHILY.xattr.')) continue;
      const name = k.slice('SCHILY.xattr.'.length);
      const bytes = raw?.get(name);
      if (bytes) {
        this.pending.xattrs.push({ rel, name, value: bytes, entry });
        continue;
      }
      if (v.includes('\uFFFD')) {
        // Without the raw bytes (unpack-pax.ts not in effect) a binary value cannot be recovered.
        this.warnings.push(`${entry}: xattr ${name} has a binary value that could not be decoded; not set`);
        continue;
      }
      this.pending.xattrs.push({ rel, name, value: Buffer.from(v, 'utf8'), entry });
    }
  }

  /** Check that a resolved path still has no symlink among its directories (nothing replaced them). */
  private assertRealDir(rel: string, entry: string): void {
    let cur = '';
    for (const comp of rel === '' ? [] : rel.split('/')) {
      cur = cur === '' ? comp : `${cur}/${comp}`;
      const st = lstatOrUndefined(this.abs(cur));
      if (!st || !st.isDirectory()) throw this.err(entry, `directory ${JSON.stringify(cur)} was replaced by a later entry`);
    }
  }

  /** Whiteouts, xattrs and directory mtimes, once every entry is in place. */
  finish(): void {
    const nodes: string[] = [];
    const times: [string, Date][] = [];
    for (const w of this.pending.whiteouts) {
      this.assertRealDir(w.dir, w.entry);
      const rel = w.dir === '' ? w.name : `${w.dir}/${w.name}`;
      // A whiteout hides lower layers only; an entry of the same name in this layer wins.
      if (!lstatOrUndefined(this.abs(rel))) {
        nodes.push(this.abs(rel));
        if (w.mtime) times.push([this.abs(rel), w.mtime]);
      }
    }
    if (nodes.length > 0) {
      const r = spawnSync('sh', ['-c', 'for p do mknod "$p" c 0 0 || exit 1; done', 'sh', ...nodes], { encoding: 'utf8' });
      if (r.status !== 0) throw invalid(`${this.what}: creating overlay whiteouts failed: ${r.stderr || r.error?.message}`);
      // the whiteout keeps the entry's mtime, so an upper dir diffs back to the same bytes
      for (const [node, t] of times) fs.lutimesSync(node, t, t);
    }
    if (this.pending.xattrs.length > 0) {
      let dump = '';
      for (const x of this.pending.xattrs) {
        const dir = path.posix.dirname(x.rel);
        this.assertRealDir(x.rel === '' || dir === '.' ? '' : dir, x.entry);
        dump += `# file: ${escapeAttrPath(x.rel === '' ? '.' : x.rel)}\n${x.name}=0s${x.value.toString('base64')}\n\n`;
      }
      const r = spawnSync('setfattr', ['-h', '--restore=-'], { cwd: this.dest, input: dump, encoding: 'utf8' });
      if (r.error) throw new HullError('UNAVAILABLE', `${this.what}: setting xattrs needs setfattr: ${r.error.message}`, { hint: 'apt-get install attr' });
      if (r.status !== 0) throw invalid(`${this.what}: setting extended attributes failed: ${r.stderr.trim()}`);
    }
    // Deepest first, so setting a child's time never disturbs its parent's.
    const dirs = [...this.pending.dirs.entries()].sort((a, b) => depth(b[0]) - depth(a[0]));
    for (const [rel, t] of dirs) {
      const st = lstatOrUndefined(this.abs(rel));
      if (st?.isDirectory()) fs.lutimesSync(this.abs(rel), t, t);
    }
  }
}

function depth(rel: string): number {
  return rel === '' ? 0 : rel.split('/').length;
}

function lstatOrUndefined(p: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

async function drain(e: AsyncIterable<Buffer>): Promise<void> {
  for await (const _ of e) {
    /* skip data */
  }
}

function paxInt(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

function paxTime(v: string | undefined): Date | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? new Date(n * 1000) : undefined;
}
