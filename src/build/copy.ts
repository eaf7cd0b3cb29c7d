/**
 * COPY and ADD: which source paths an instruction names (wildcards, directories, a missing or
 * outside path refused by name), a content hash of them for the layer cache (docker keys on
 * content and mode, not mtime), and the layer itself, staged as an overlay upper directory
 * (parents that exist in the image are copied up with their metadata, as overlayfs would) and
 * then written by the same layer-diff code every other layer goes through.
 *
 * Docker's rules: a directory's contents are copied (not the directory itself); several sources
 * need a destination ending in '/'; a file copied to an existing directory goes into it; a
 * relative destination is under WORKDIR; files from the context are owned by root unless
 * --chown (a user alone means the same number for the group); --chmod sets the mode of what is
 * copied; ADD unpacks a local tar archive (plain, gzip, bzip2, xz) into the destination and
 * refuses URLs (a build has no network).
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { invalid } from '../errors.js';
import { LayeredRoot, resolveUser } from '../runtime/container/rootfs.js';
import { readHead, sniffCompression } from '../snapshots/unpack-layer.js';
import { unpackTar } from '../snapshots/unpack.js';
import type { Found, SourceTree } from './tree.js';

export interface CopyRequest {
  /** Source paths as expanded (relative to the tree's root; wildcards allowed). */
  sources: string[];
  /** Destination as expanded; relative ones are joined to `workdir`. */
  dest: string;
  workdir: string;
  /** --chown as expanded ('user', 'user:group', numbers). */
  chown?: string;
  /** --chmod as written (octal). */
  chmod?: string;
  /** ADD: unpack local tar archives; URLs refused. */
  add: boolean;
  /** COPY --from: keep the source's owners (as BuildKit does) unless --chown. */
  keepOwners: boolean;
  /** 'COPY at Dockerfile line 4' (errors). */
  what: string;
}

export interface CopySelection {
  items: Found[];
  /** Absolute destination, trailing '/' kept. */
  dest: string;
  /** Content hash of everything selected (the cache key's part). */
  hash: string;
  /** 'file', 'dir' or 'multi' (docker's history: `COPY file:<hash> in /dst`). */
  kind: 'file' | 'dir' | 'multi';
}

const WILDCARD = /[*?[]/;

/** Go's filepath.Match for one path (a '*' does not cross '/'). Pure. */
export function globMatch(pattern: string, name: string): boolean {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) throw invalid(`syntax error in pattern ${JSON.stringify(pattern)}`);
      let cls = pattern.slice(i + 1, end);
      if (cls.startsWith('^') || cls.startsWith('!')) cls = `^${cls.slice(1)}`;
      re += `[${cls.replace(/\\/g, '\\\\')}]`;
      i = end;
    } else if (c === '\\' && i + 1 < pattern.length) re += pattern[++i]!.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    else re += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`${re}$`).test(name);
}

function hashFile(file: string): string {
  const h = crypto.createHash('sha256');
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let n = fs.readSync(fd, buf); n > 0; n = fs.readSync(fd, buf)) h.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

/** Pick what a COPY/ADD names and hash it. */
export function selectSources(tree: SourceTree, req: CopyRequest): CopySelection {
  const items: Found[] = [];
  let wild = false;
  for (const s of req.sources) {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) {
      if (req.add) throw invalid(`${req.what}: ADD from a URL (${s}) needs the network, which hull build does not give: download it and COPY the file`);
      throw invalid(`${req.what}: source can't be a URL for COPY: ${s}`);
    }
    if (WILDCARD.test(s)) {
      wild = true;
      const pat = path.posix.normalize(s).replace(/^\/+/, '').replace(/^\.\//, '');
      if (pat.split('/')[0] === '..') throw invalid(`${req.what}: forbidden path outside ${tree.what}: ${s}`);
      const hits = tree.walk().filter((f) => globMatch(pat, f.rel));
      // a match inside a matched directory is copied with it
      for (const h of hits) if (!hits.some((o) => o !== h && h.rel.startsWith(`${o.rel}/`))) items.push(h);
      continue;
    }
    let f;
    try {
      f = tree.find(s);
    } catch (e) {
      throw invalid(`${req.what}: ${(e as Error).message}`);
    }
    if (!f) throw invalid(`${req.what}: ${s}: not found in ${tree.what}${tree.what === 'the build context' ? ' (or excluded by .dockerignore)' : ''}`);
    items.push(f);
  }
  if (items.length === 0) throw invalid(`${req.what}: no source files were specified${wild ? ' (no file matches the pattern)' : ''}`);
  let dest = req.dest.startsWith('/') ? req.dest : path.posix.join(req.workdir || '/', req.dest) + (req.dest.endsWith('/') || req.dest === '.' ? '/' : '');
  if (dest !== '/' && dest.endsWith('//')) dest = dest.replace(/\/+$/, '/');
  if ((items.length > 1 || (wild && items.length > 1)) && !dest.endsWith('/')) {
    throw invalid(`${req.what}: when using ${req.add ? 'ADD' : 'COPY'} with more than one source file, the destination must be a directory and end with a /`);
  }
  const h = crypto.createHash('sha256');
  for (const it of items) {
    const entries = it.st.isDirectory() ? [it, ...tree.walk(it.rel)] : [it];
    for (const e of entries) {
      const rel = e === it ? '.' : e.rel.slice(it.rel.length + (it.rel === '' ? 0 : 1));
      const kind = e.st.isDirectory() ? 'd' : e.st.isSymbolicLink() ? `l:${fs.readlinkSync(e.abs)}` : e.st.isFile() ? `f:${hashFile(e.abs)}` : 'o';
      h.update(`${it.rel}\0${rel}\0${kind}\0${e.st.mode & 0o7777}\0${req.keepOwners ? `${e.st.uid}:${e.st.gid}` : ''}\n`);
    }
  }
  const kind = items.length > 1 ? 'multi' : items[0]!.st.isDirectory() ? 'dir' : 'file';
  return { items, dest, hash: h.digest('hex'), kind };
}

/** --chown as numbers: names looked up in the image's /etc/passwd and /etc/group. */
export function chownIds(spec: string, image: LayeredRoot, what: string): { uid: number; gid: number } {
  const [u = '', g] = spec.split(':');
  if (u === '') throw invalid(`${what}: --chown needs a user`);
  try {
    const passwd = image.readText('/etc/passwd');
    const group = image.readText('/etc/group');
    const uid = /^\d+$/.test(u) ? Number(u) : resolveUser(passwd, group, u).uid;
    const gid = g === undefined || g === '' ? uid : /^\d+$/.test(g) ? Number(g) : resolveUser(passwd, group, `0:${g}`).gid;
    return { uid, gid };
  } catch (e) {
    throw invalid(`${what}: --chown=${spec}: ${(e as Error).message}`);
  }
}

export function parseChmod(v: string, what: string): number {
  if (!/^[0-7]{3,4}$/.test(v)) throw invalid(`${what}: --chmod=${v}: want an octal mode such as 755`);
  return parseInt(v, 8);
}

type Owner = { uid: number; gid: number } | undefined;

/** Writes into an overlay-format upper dir on top of an image's layers (COPY, ADD, WORKDIR). */
export class Stager {
  private readonly image: LayeredRoot;
  private readonly dirTimes: [string, Date][] = [];
  private readonly links = new Map<string, string>();

  constructor(private readonly upper: string, lowerDirs: string[], private readonly newOwner: { uid: number; gid: number }, private readonly when: Date) {
    this.image = new LayeredRoot(lowerDirs);
  }

  private up(p: string): string {
    return path.join(this.upper, p);
  }

  /** Make directory `p` (absolute, already resolved) exist in the upper dir; returns its real path. */
  dir(p: string): string {
    let cur = '/';
    for (const part of p.split('/').filter(Boolean)) {
      const next = path.posix.join(cur, part);
      const st = fs.lstatSync(this.up(next), { throwIfNoEntry: false });
      if (st?.isDirectory()) {
        cur = next;
        continue;
      }
      const low = st ? undefined : this.image.resolve(next);
      if (low && low.st.isDirectory() && low.path !== next) {
        // a symlink to a directory in the image: follow it (inside the image)
        cur = this.dir(low.path);
        continue;
      }
      if (st) fs.rmSync(this.up(next), { force: true });
      fs.mkdirSync(this.up(next));
      if (low && low.st.isDirectory()) {
        // copied up, as overlayfs does: the image's mode, owner and mtime
        fs.chownSync(this.up(next), low.st.uid, low.st.gid);
        fs.chmodSync(this.up(next), low.st.mode & 0o7777);
        this.dirTimes.push([this.up(next), low.st.mtime]);
      } else {
        fs.chownSync(this.up(next), this.newOwner.uid, this.newOwner.gid);
        fs.chmodSync(this.up(next), 0o755);
        this.dirTimes.push([this.up(next), this.when]);
      }
      cur = next;
    }
    return cur;
  }

  /** Whether `p` is a directory in the view (upper over image). */
  isDir(p: string): boolean {
    const st = fs.lstatSync(this.up(p), { throwIfNoEntry: false });
    if (st) return st.isDirectory();
    return !!this.image.resolve(p)?.st.isDirectory();
  }

  /** Put one entry of a source tree at `dst` (absolute; its parent exists in the upper dir). */
  entry(src: Found, dst: string, owner: Owner, chmod: number | undefined): void {
    const to = this.up(dst);
    const st = src.st;
    const uid = owner ? owner.uid : st.uid;
    const gid = owner ? owner.gid : st.gid;
    const old = fs.lstatSync(to, { throwIfNoEntry: false });
    if (st.isDirectory()) {
      if (old && !old.isDirectory()) fs.rmSync(to, { force: true });
      if (!old || !old.isDirectory()) fs.mkdirSync(to);
      fs.chownSync(to, uid, gid);
      fs.chmodSync(to, chmod ?? st.mode & 0o7777);
      this.dirTimes.push([to, st.mtime]);
      return;
    }
    if (old) fs.rmSync(to, { recursive: true, force: true });
    const key = `${st.dev}:${st.ino}`;
    const first = st.nlink > 1 ? this.links.get(key) : undefined;
    if (first) {
      fs.linkSync(first, to);
      return;
    }
    if (st.isSymbolicLink()) {
      fs.symlinkSync(fs.readlinkSync(src.abs), to);
      fs.lchownSync(to, uid, gid);
      fs.lutimesSync(to, st.atime, st.mtime);
    } else if (st.isFile()) {
      fs.copyFileSync(src.abs, to);
      fs.chownSync(to, uid, gid);
      fs.chmodSync(to, chmod ?? st.mode & 0o7777);
      fs.utimesSync(to, st.atime, st.mtime);
    } else {
      throw invalid(`cannot copy /${src.rel}: only files, directories and symlinks can be copied`);
    }
    if (st.nlink > 1) this.links.set(key, to);
  }

  /** Directory mtimes last (creating entries changed them). */
  finish(): void {
    for (const [p, t] of this.dirTimes.reverse()) fs.utimesSync(p, t, t);
  }
}

/** What kind of archive the first 512 bytes of a file are, or undefined (pure; ADD and the context). */
export function archiveKind(head: Buffer): 'gzip' | 'bzip2' | 'xz' | 'tar' | undefined {
  if (sniffCompression(head) === 'gzip') return 'gzip';
  if (head.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  if (head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (head.subarray(257, 262).toString('latin1') === 'ustar') return 'tar';
  return undefined;
}

async function extractArchive(file: string, kind: 'gzip' | 'bzip2' | 'xz' | 'tar', dest: string, what: string): Promise<boolean> {
  let stream: Readable = fs.createReadStream(file);
  if (kind === 'gzip') stream = stream.pipe((await import('node:zlib')).createGunzip());
  else if (kind !== 'tar') {
    const c = spawn(kind, ['-dc'], { stdio: ['pipe', 'pipe', 'ignore'] });
    c.on('error', (e) => stream.destroy(invalid(`${what}: unpacking a ${kind} archive needs ${kind}: ${e.message}`)));
    fs.createReadStream(file).pipe(c.stdin);
    stream = c.stdout;
  }
  await unpackTar(stream, dest, { what: `${what}: archive ${path.basename(file)}` });
  return true;
}

export interface StageOptions {
  upper: string;
  /** The image's layers (bottom first); none for scratch. */
  lowerDirs: string[];
  /** Parsed --chown (undefined: root for the context, the source's for --from). */
  owner?: { uid: number; gid: number };
  chmod?: number;
  /** Time stamped on directories this COPY creates. */
  when: Date;
  /** Scratch space for ADD's archives. */
  tmp: string;
}

/** Write what `sel` names into the upper dir `o.upper`. */
export async function stageCopy(tree: SourceTree, sel: CopySelection, req: CopyRequest, o: StageOptions): Promise<void> {
  const newOwner = o.owner ?? { uid: 0, gid: 0 };
  const st = new Stager(o.upper, o.lowerDirs, newOwner, o.when);
  const owner: Owner = o.owner ?? (req.keepOwners ? undefined : { uid: 0, gid: 0 });
  const destIsDir = sel.dest.endsWith('/');
  const base = sel.dest.replace(/\/+$/, '') || '/';
  for (const it of sel.items) {
    if (it.st.isDirectory()) {
      const d = st.dir(base);
      for (const e of tree.walk(it.rel)) st.entry(e, path.posix.join(d, e.rel.slice(it.rel.length + (it.rel === '' ? 0 : 1))), owner, o.chmod);
      continue;
    }
    if (req.add && it.st.isFile()) {
      const kind = archiveKind(readHead(it.abs, 512));
      if (kind) {
        const tmp = fs.mkdtempSync(path.join(o.tmp, 'add-'));
        try {
          await extractArchive(it.abs, kind, tmp, req.what);
          const { SourceTree: Tree } = await import('./tree.js');
          const x = new Tree(tmp, [], `archive ${it.rel}`);
          const d = st.dir(base);
          for (const e of x.walk()) st.entry(e, path.posix.join(d, e.rel), o.owner, o.chmod);
        } finally {
          fs.rmSync(tmp, { recursive: true, force: true });
        }
        continue;
      }
    }
    const into = destIsDir || st.isDir(base);
    const target = into ? path.posix.join(st.dir(base), path.posix.basename(it.rel)) : path.posix.join(st.dir(path.posix.dirname(base)), path.posix.basename(base));
    st.entry(it, target, owner, o.chmod);
  }
  st.finish();
}
