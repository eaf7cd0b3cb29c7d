/**
 * docker cp as the engine does it (the archive routes, `hull cp`): stat a path, stream a tar of
 * it out, extract a tar into a directory, all through a wall's `inRootfs` tool runner, so every
 * path resolves inside the instance (the walls' inRootfs). Docker's rules: the last path
 * element is not followed (lstat), entries are named from the requested path's base name, a
 * trailing "/." archives a directory's contents, extraction needs an existing directory and
 * sets the owner to root unless copyUIDGID. Pure helpers first.
 */
import { PassThrough, Writable, type Readable } from 'node:stream';
import { HullError, invalid, notFound } from '../errors.js';
import { peek } from '../images/stream-util.js';

/** What docker's X-Docker-Container-Path-Stat header carries (base64 of this JSON). */
export interface PathStat {
  name: string;
  size: number;
  /** Go's os.FileMode bits (ModeDir 1<<31, ModeSymlink 1<<27, ...) plus the permission bits. */
  mode: number;
  mtime: string;
  linkTarget: string;
}

export type ToolRunner = (tool: string[], io: { stdin?: Readable; stdout: Writable }) => Promise<{ code: number; stderr: string }>;

/** Go's os.FileMode for a unix st_mode (pure). */
export function goFileMode(st: number): number {
  const S = { IFMT: 0o170000, IFDIR: 0o040000, IFLNK: 0o120000, IFIFO: 0o010000, IFSOCK: 0o140000, IFBLK: 0o060000, IFCHR: 0o020000 };
  let m = st & 0o777;
  const t = st & S.IFMT;
  if (t === S.IFDIR) m |= 2 ** 31;
  else if (t === S.IFLNK) m |= 2 ** 27;
  else if (t === S.IFIFO) m |= 2 ** 25;
  else if (t === S.IFSOCK) m |= 2 ** 24;
  else if (t === S.IFBLK) m |= 2 ** 26;
  else if (t === S.IFCHR) m |= 2 ** 26 + 2 ** 21;
  if (st & 0o4000) m |= 2 ** 23;
  if (st & 0o2000) m |= 2 ** 22;
  if (st & 0o1000) m |= 2 ** 20;
  return m >>> 0;
}

/** docker's absolute form of a container path, keeping a trailing "/" or "/." (pure). */
export function containerPath(p: string): { abs: string; dir: string; base: string; contents: boolean } {
  if (p === '' || p.includes('\0')) throw invalid(`invalid path ${JSON.stringify(p)}`);
  const parts: string[] = [];
  for (const x of p.split('/')) {
    if (x === '' || x === '.') continue;
    if (x === '..') parts.pop();
    else parts.push(x);
  }
  const clean = `/${parts.join('/')}`;
  const contents = /(^|\/)\.$/.test(p) || (p.endsWith('/') && clean !== '/');
  const base = parts.length ? parts[parts.length - 1]! : '/';
  const dir = parts.length > 1 ? `/${parts.slice(0, -1).join('/')}` : '/';
  return { abs: clean, dir, base, contents };
}

/** `stat -c '%f|%s|%Y'` output -> st_mode, size, mtime (pure). */
export function parseStat(line: string): { st: number; size: number; mtime: number } {
  const m = /^([0-9a-f]+)\|(\d+)\|(\d+)$/.exec(line.trim());
  if (!m) throw new HullError('INTERNAL', `unexpected stat output: ${JSON.stringify(line.slice(0, 200))}`);
  return { st: parseInt(m[1]!, 16), size: Number(m[2]), mtime: Number(m[3]) };
}

/** The first bytes of an archive -> the tar flag that decompresses it (docker accepts gzip, bzip2, xz). */
export function compressionFlag(head: Buffer): string | undefined {
  if (head[0] === 0x1f && head[1] === 0x8b) return '-z';
  if (head[0] === 0x42 && head[1] === 0x5a && head[2] === 0x68) return '-j';
  if (head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return '-J';
  return undefined;
}

/** Collect a tool's stdout as text. */
async function capture(run: ToolRunner, tool: string[]): Promise<{ code: number; stderr: string; out: string }> {
  const out = new PassThrough();
  let text = '';
  out.setEncoding('utf8').on('data', (d: string) => (text += d));
  const r = await run(tool, { stdout: out });
  return { ...r, out: text };
}

const missing = (stderr: string) => /no such file|not found|does not exist|can't stat|cannot stat/i.test(stderr);

export class Archive {
  constructor(
    private readonly run: ToolRunner,
    /** The container's name, for docker's messages. */
    private readonly name: string,
  ) {}

  /** The path with every symlink resolved inside the instance (readlink -f); itself when that fails. */
  async resolve(p: string): Promise<string> {
    const cp = containerPath(p);
    const r = await capture(this.run, ['readlink', '-f', '--', cp.abs]);
    return r.code === 0 && r.out.trim().startsWith('/') ? r.out.trim() : cp.abs;
  }

  /** lstat of the path's last element, its parents resolved inside the instance. */
  async stat(p: string): Promise<PathStat> {
    const cp = containerPath(p);
    const target = cp.contents ? `${cp.abs === '/' ? '' : cp.abs}/.` : cp.abs;
    const r = await capture(this.run, ['stat', '-c', '%f|%s|%Y', '--', target]);
    if (r.code !== 0) {
      if (missing(r.stderr)) throw notFound(`Could not find the file ${p} in container ${this.name}`);
      throw new HullError('INTERNAL', `stat ${p} in container ${this.name}: ${r.stderr.trim() || `exit ${r.code}`}`);
    }
    const s = parseStat(r.out);
    let linkTarget = '';
    if ((s.st & 0o170000) === 0o120000) {
      const l = await capture(this.run, ['readlink', '-f', '--', cp.abs]);
      linkTarget = l.code === 0 ? l.out.trim() : '';
    }
    return { name: cp.base, size: s.size, mode: goFileMode(s.st), mtime: new Date(s.mtime * 1000).toISOString(), linkTarget };
  }

  /** A tar of the path to `out` (entries named from its base name; a trailing "/." gives the contents). */
  async get(p: string, out: Writable, stat?: PathStat): Promise<PathStat> {
    const st = stat ?? (await this.stat(p));
    const cp = containerPath(p);
    const isDir = (st.mode & 2 ** 31) !== 0;
    const tool = cp.contents && isDir ? ['tar', '-c', '-f', '-', '-C', cp.abs, '.'] : ['tar', '-c', '-f', '-', '-C', cp.dir, cp.base === '/' ? '.' : cp.base];
    const r = await this.run(tool, { stdout: out });
    if (r.code !== 0) throw new HullError('INTERNAL', `archiving ${p} in container ${this.name} failed: ${r.stderr.trim() || `exit ${r.code}`}`);
    return st;
  }

  /**
   * Extract the tar `input` (plain, gzip, bzip2 or xz) into the directory `p`, which must
   * exist; `copyUIDGID` keeps the archive's owners (else root owns what is extracted).
   */
  async put(p: string, input: Readable, o: { copyUIDGID?: boolean } = {}): Promise<void> {
    const cp = containerPath(p);
    const d = await capture(this.run, ['test', '-d', cp.abs]);
    if (d.code !== 0) {
      const e = await capture(this.run, ['test', '-e', cp.abs]);
      if (e.code === 0) throw invalid(`extraction point is not a directory: ${p}`);
      throw notFound(`Could not find the file ${p} in container ${this.name}`);
    }
    const { head, stream } = await peek(input, 6);
    if (head.length === 0) throw invalid(`the archive to extract into ${p} is empty`);
    const flag = compressionFlag(head);
    const tool = ['tar', '-x', ...(flag ? [flag] : []), '-f', '-', '-C', cp.abs, ...(o.copyUIDGID ? [] : ['-o'])];
    const r = await this.run(tool, { stdin: stream, stdout: devNull() });
    if (r.code !== 0) throw invalid(`extracting the archive into ${p} in container ${this.name} failed: ${r.stderr.trim() || `exit ${r.code}`}`);
  }
}

function devNull(): Writable {
  return new Writable({ write: (_c, _e, cb) => cb() });
}
