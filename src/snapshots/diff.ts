/**
 * A writable layer (an overlay upper directory) as an OCI layer tar: docker's overlay2 diff.
 * Used by every path that turns a container's changes into a layer: `hull build` (RUN, COPY,
 * ADD, WORKDIR steps) and commit/export.
 *
 * scanUpper() reads the directory into a list of entries (tested as data); layerTar() writes
 * them with tar-stream. What docker does, and so hull:
 *  - entries in lexical order (parents first), no entry for the root itself;
 *  - overlay whiteouts (char device 0/0) become `.wh.NAME` (regular, empty, mode 0600, and,
 *    unlike moby, mtime 0: the time of a deletion is not part of what it
 *    does, and without it the same RUN gives the same layer on every run and wall);
 *    an opaque directory (xattr trusted.overlay.opaque=y) is written, then `DIR/.wh..wh..opq`
 *    (regular, empty, the directory's permission bits and owner, mtime 0);
 *  - owners and modes (setuid, setgid, sticky) as on disk, numeric only (no user names);
 *  - mtimes truncated to whole seconds, no atime or ctime (moby's FileInfoHeader);
 *  - hardlinks between files of the layer: the first path is a file, later ones link to it;
 *  - extended attributes kept byte for byte, except overlay's own (trusted.overlay.*);
 *    security.capability v3 is written as v2 (moby: a namespaced root uid means nothing
 *    outside the namespace the layer was made in);
 *  - sockets are left out; other device nodes are refused (hull's unpacker refuses them too).
 *
 * Runtime paths (`runtimePaths: true`, for a container's layer): what the runtime mounts into
 * every container (/proc, /sys, /dev, /etc/hosts, /etc/hostname, /etc/resolv.conf) is left out,
 * like docker, whose "init layer" holds those mountpoints below the container's own layer. A
 * directory that is in the upper dir only because a mountpoint was created in it (the runtime
 * makes /etc/hosts in an image without one; a VM's agent writes /etc/hosts) is left out too when
 * nothing else in it changed: absent from the lower layers, or there with the same mode and owner.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Readable } from 'node:stream';
import { HullError, invalid } from '../errors.js';
import { OPAQUE_WHITEOUT, WHITEOUT_PREFIX } from './unpack-paths.js';

const require = createRequire(import.meta.url);

export type DiffEntryType = 'file' | 'directory' | 'symlink' | 'link' | 'fifo';

/** One tar entry of a layer, in the order written. */
export interface DiffEntry {
  /** Relative path in the layer ('etc/passwd'); directories without a trailing slash. */
  name: string;
  type: DiffEntryType;
  /** Permission bits with setuid/setgid/sticky (0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch (truncated). */
  mtime: number;
  /** Bytes of file data (regular files; 0 otherwise). */
  size: number;
  /** Symlink target, or the earlier path a hardlink names. */
  linkname?: string;
  /** Extended attributes to record (name -> exact bytes). */
  xattrs?: Map<string, Buffer>;
  /** Absolute path whose bytes are the file's data (regular files). */
  source?: string;
}

export interface DiffOptions {
  /**
   * Leave out what the runtime mounts into a container (see the file comment). Default false
   * (a layer made by copying files, such as COPY, keeps every path).
   */
  runtimePaths?: boolean;
  /** The layers under the upper dir, bottom first: consulted for the runtime-path rule only. */
  lowers?: string[];
  /** Names this layer in errors, e.g. 'RUN at Dockerfile line 3'. */
  what?: string;
}

/** What a runtime mounts into every container: never part of its layer (docker's init layer). */
export const RUNTIME_FILES = ['etc/hosts', 'etc/hostname', 'etc/resolv.conf', '.dockerenv'];
export const RUNTIME_TREES = ['proc', 'sys', 'dev'];

const OVERLAY_XATTR = 'trusted.overlay.';
const OPAQUE_XATTR = 'trusted.overlay.opaque';

/** Byte-wise name order (Go's sort of directory entries, which moby's walk uses). */
function byBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Decode a path as getfattr prints it (octal escapes for bytes it does not print raw). */
export function unescapeAttrPath(s: string): string {
  const bytes: number[] = [];
  const raw = Buffer.from(s, 'utf8');
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === 0x5c && i + 3 < raw.length && /^[0-7]{3}$/.test(raw.subarray(i + 1, i + 4).toString('latin1'))) {
      bytes.push(parseInt(raw.subarray(i + 1, i + 4).toString('latin1'), 8));
      i += 3;
    } else bytes.push(raw[i]!);
  }
  return Buffer.from(bytes).toString('utf8');
}

/**
 * Parse `getfattr -R -P -h -d -m - -e hex .` output: relative path -> (xattr name -> bytes).
 * Pure.
 */
export function parseGetfattrDump(text: string): Map<string, Map<string, Buffer>> {
  const out = new Map<string, Map<string, Buffer>>();
  let cur: Map<string, Buffer> | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('# file: ')) {
      let p = unescapeAttrPath(line.slice('# file: '.length));
      if (p.startsWith('./')) p = p.slice(2);
      if (p === '.') p = '';
      cur = new Map();
      out.set(p, cur);
      continue;
    }
    const eq = line.indexOf('=');
    if (!cur || eq <= 0) continue;
    const name = line.slice(0, eq);
    const v = line.slice(eq + 1);
    if (v.startsWith('0x')) cur.set(name, Buffer.from(v.slice(2), 'hex'));
    else if (v.startsWith('"') && v.endsWith('"')) cur.set(name, Buffer.from(v.slice(1, -1), 'utf8'));
    else cur.set(name, Buffer.alloc(0));
  }
  return out;
}

/** Every extended attribute under `dir` (one getfattr run for the whole tree). */
function readXattrs(dir: string, what: string): Map<string, Map<string, Buffer>> {
  const r = spawnSync('getfattr', ['-R', '-P', '-h', '-d', '-m', '-', '-e', 'hex', '.'], { cwd: dir, encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.error) throw new HullError('UNAVAILABLE', `${what}: reading extended attributes needs getfattr: ${r.error.message}`, { hint: 'apt-get install attr' });
  // getfattr exits 1 when some file has none it may read; what it printed is still the dump
  return parseGetfattrDump(r.stdout ?? '');
}

/** security.capability v3 (with a namespace root uid) as v2, as moby writes it. */
export function capabilityV2(v: Buffer): Buffer {
  const XATTR_CAPS_SZ_2 = 20;
  if (v.length > 3 && v[3] === 3 && v.length >= XATTR_CAPS_SZ_2) {
    const c = Buffer.from(v.subarray(0, XATTR_CAPS_SZ_2));
    c[3] = 2;
    return c;
  }
  return v;
}

/** Mode, owner and type of the path in the topmost lower layer that has it (a whiteout hides it). */
function lowerStat(lowers: string[], rel: string): fs.Stats | undefined {
  for (let i = lowers.length - 1; i >= 0; i--) {
    const st = fs.lstatSync(path.join(lowers[i]!, rel), { throwIfNoEntry: false });
    if (!st) continue;
    if (st.isCharacterDevice() && st.rdev === 0) return undefined;
    return st;
  }
  return undefined;
}

/** The entries of the layer an upper directory holds, in tar order (see the file comment). */
export function scanUpper(upper: string, opts: DiffOptions = {}): DiffEntry[] {
  const what = opts.what ?? `layer ${upper}`;
  const xattrs = readXattrs(upper, what);
  const seen = new Map<string, string>(); // dev:ino -> first path (hardlinks)
  const runtimeFiles = new Set(opts.runtimePaths ? RUNTIME_FILES : []);
  const runtimeTrees = new Set(opts.runtimePaths ? RUNTIME_TREES : []);
  const mountParents = new Set<string>();
  for (const f of runtimeFiles) for (let d = path.posix.dirname(f); d !== '.'; d = path.posix.dirname(d)) mountParents.add(d);

  const walk = (rel: string): DiffEntry[] => {
    const out: DiffEntry[] = [];
    const abs = rel === '' ? upper : path.join(upper, rel);
    for (const name of fs.readdirSync(abs).sort(byBytes)) {
      const r = rel === '' ? name : `${rel}/${name}`;
      if (runtimeFiles.has(r) || runtimeTrees.has(r)) continue;
      const p = path.join(abs, name);
      const st = fs.lstatSync(p);
      const base = { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: Math.floor(st.mtimeMs / 1000), size: 0 };
      const own = new Map([...(xattrs.get(r) ?? new Map<string, Buffer>())].filter(([k]) => !k.startsWith(OVERLAY_XATTR)).map(([k, v]) => [k, k === 'security.capability' ? capabilityV2(v) : v] as [string, Buffer]));
      const x = own.size > 0 ? own : undefined;
      if (st.isCharacterDevice() && st.rdev === 0) {
        out.push({ ...base, name: `${rel === '' ? '' : `${rel}/`}${WHITEOUT_PREFIX}${name}`, type: 'file', mode: 0o600, mtime: 0 });
        continue;
      }
      if (st.isDirectory()) {
        const opaque = xattrs.get(r)?.get(OPAQUE_XATTR)?.toString('latin1') === 'y';
        const children = walk(r);
        if (mountParents.has(r) && children.length === 0 && !opaque && !x) {
          const low = lowerStat(opts.lowers ?? [], r);
          if (!low || (low.isDirectory() && (low.mode & 0o7777) === base.mode && low.uid === base.uid && low.gid === base.gid)) continue;
        }
        out.push({ ...base, name: r, type: 'directory', xattrs: x });
        if (opaque) out.push({ name: `${r}/${OPAQUE_WHITEOUT}`, type: 'file', mode: base.mode & 0o777, uid: base.uid, gid: base.gid, mtime: 0, size: 0 });
        out.push(...children);
        continue;
      }
      if (st.isSocket()) continue;
      if (st.isCharacterDevice() || st.isBlockDevice()) throw invalid(`${what}: /${r} is a device node: hull layers hold no device nodes`);
      const key = `${st.dev}:${st.ino}`;
      const first = st.nlink > 1 ? seen.get(key) : undefined;
      if (first !== undefined) {
        out.push({ ...base, name: r, type: 'link', linkname: first, xattrs: x });
        continue;
      }
      if (st.nlink > 1) seen.set(key, r);
      if (st.isSymbolicLink()) out.push({ ...base, name: r, type: 'symlink', linkname: fs.readlinkSync(p), xattrs: x });
      else if (st.isFIFO()) out.push({ ...base, name: r, type: 'fifo', xattrs: x });
      else out.push({ ...base, name: r, type: 'file', size: st.size, source: p, xattrs: x });
    }
    return out;
  };
  return walk('');
}

/** A pax extended header body: `LEN KEY=VALUE\n` records, values as exact bytes (pure). */
export function paxRecords(records: [string, Buffer][]): Buffer {
  const parts: Buffer[] = [];
  for (const [k, v] of records) {
    const body = Buffer.concat([Buffer.from(` ${k}=`, 'utf8'), v, Buffer.from('\n')]);
    let len = body.length + 1;
    while (String(len).length + body.length !== len) len = String(len).length + body.length;
    parts.push(Buffer.concat([Buffer.from(String(len)), body]));
  }
  return Buffer.concat(parts);
}

interface UstarHeader {
  name: string;
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  mtime?: Date;
  type: string;
  linkname?: string | null;
  uname?: string;
  gname?: string;
  devmajor?: number;
  devminor?: number;
}

/** tar-stream's ustar header encoder (null when a name does not fit a ustar header). */
function ustarEncoder(): (h: UstarHeader) => Buffer | null {
  const dir = path.dirname(require.resolve('tar-stream'));
  const headers = require(path.join(dir, 'headers.js')) as { encode: (h: UstarHeader) => Uint8Array | null };
  return (h) => {
    const b = headers.encode(h);
    return b ? Buffer.from(b.buffer, b.byteOffset, b.byteLength) : null;
  };
}

const BLOCK = 512;
const pad = (n: number) => Buffer.alloc((BLOCK - (n % BLOCK)) % BLOCK);

/**
 * Write `entries` as a tar stream: ustar headers from tar-stream's encoder, a pax extended
 * header (written here, values as exact bytes) before any entry whose name or link does not fit
 * ustar or that carries xattrs, file data padded to 512 bytes, two zero blocks at the end.
 */
export function layerTar(entries: DiffEntry[], what = 'layer'): Readable {
  const encode = ustarEncoder();
  async function* blocks(): AsyncGenerator<Buffer> {
    for (const e of entries) {
      const name = e.type === 'directory' ? `${e.name}/` : e.name;
      const mtime = new Date(e.mtime * 1000);
      const h: UstarHeader = { name, mode: e.mode, uid: e.uid, gid: e.gid, size: e.type === 'file' ? e.size : 0, mtime, type: e.type, linkname: e.linkname ?? null, uname: '', gname: '' };
      const recs: [string, Buffer][] = [];
      if (!encode({ ...h, linkname: null })) recs.push(['path', Buffer.from(name, 'utf8')]);
      if (e.linkname !== undefined && !encode({ ...h, name: 'PaxHeader' })) recs.push(['linkpath', Buffer.from(e.linkname, 'utf8')]);
      for (const [k, v] of [...(e.xattrs ?? [])].sort((a, b) => byBytes(a[0], b[0]))) recs.push([`SCHILY.xattr.${k}`, v]);
      if (recs.length > 0) {
        const body = paxRecords(recs);
        yield encode({ name: 'PaxHeader', type: 'pax-header', size: body.length, mode: 0o644, mtime, uid: 0, gid: 0 })!;
        yield body;
        yield pad(body.length);
        if (recs.some(([k]) => k === 'path')) h.name = e.type === 'directory' ? 'PaxHeader/' : 'PaxHeader';
        if (recs.some(([k]) => k === 'linkpath')) h.linkname = 'PaxHeader';
      }
      const head = encode(h);
      if (!head) throw new HullError('INTERNAL', `${what}: cannot encode the tar header of /${e.name}`);
      yield head;
      if (e.type === 'file' && e.size > 0 && e.source) {
        let n = 0;
        for await (const c of fs.createReadStream(e.source, { highWaterMark: 1 << 20, end: e.size - 1 })) {
          n += (c as Buffer).length;
          yield c as Buffer;
        }
        if (n !== e.size) throw new HullError('INTERNAL', `${what}: /${e.name} shrank while it was read (${e.size} -> ${n} bytes)`);
        yield pad(n);
      }
    }
    yield Buffer.alloc(2 * BLOCK);
  }
  return Readable.from(blocks(), { objectMode: false, highWaterMark: 1 << 20 });
}

/** The OCI layer tar of an upper directory (scanUpper + layerTar). */
export function diffUpperDir(upper: string, opts: DiffOptions = {}): Readable {
  return layerTar(scanUpper(upper, opts), opts.what);
}

/**
 * The layer tar of a stopped instance's writable layer, whichever wall kept it: an upper dir is
 * diffed where it is; a VM's tar (written by the guest, so untrusted) is first unpacked by the
 * hardened unpacker into a temp dir under `tmp`, then diffed the same way, so both walls give
 * layers of the same form. `done()` removes the temp dir; call it once the stream is consumed.
 */
export async function writableLayerTar(
  layer: { kind: 'upper'; dir: string } | { kind: 'tar'; file: string },
  opts: DiffOptions & { tmp: string },
): Promise<{ stream: Readable; done: () => void }> {
  if (layer.kind === 'upper') return { stream: diffUpperDir(layer.dir, opts), done: () => undefined };
  const { unpackTar } = await import('./unpack.js');
  fs.mkdirSync(opts.tmp, { recursive: true });
  const dir = fs.mkdtempSync(path.join(opts.tmp, 'guest-layer-'));
  const done = () => fs.rmSync(dir, { recursive: true, force: true });
  try {
    await unpackTar(fs.createReadStream(layer.file, { highWaterMark: 1 << 20 }), dir, { what: `${opts.what ?? 'layer'} (from the VM)` });
    return { stream: diffUpperDir(dir, opts), done };
  } catch (e) {
    done();
    throw e;
  }
}
