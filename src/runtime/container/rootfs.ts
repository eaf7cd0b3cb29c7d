/**
 * Looking into an image's root filesystem before it runs, without mounting it: the layer
 * directories are searched top-down the way overlayfs would (a character device 0:0 is a
 * whiteout). Used to resolve -u NAME to numbers and to give docker's 126/127 errors for a
 * command that is missing or not executable, whatever the runtime.
 *
 * Limits: opaque directories (trusted.overlay.opaque) are not consulted; a path under a
 * bind mount is not checked (the caller skips it).
 */
import fs from 'node:fs';
import path from 'node:path';
import { HullError } from '../../errors.js';

export class LayeredRoot {
  /** @param lowerDirs unpacked layers, bottom first (as in InstanceSpec). */
  constructor(private readonly lowerDirs: string[]) {}

  /** lstat of an absolute, already resolved path in the topmost layer that has it. */
  private lookup(p: string): { file: string; st: fs.Stats } | undefined {
    for (let i = this.lowerDirs.length - 1; i >= 0; i--) {
      const file = path.join(this.lowerDirs[i]!, p);
      const st = fs.lstatSync(file, { throwIfNoEntry: false });
      if (!st) continue;
      if (st.isCharacterDevice() && st.rdev === 0) return undefined; // whiteout
      return { file, st };
    }
    return undefined;
  }

  /** Resolve symlinks inside the root (never escaping it); undefined when a part is missing. */
  resolve(p: string, hops = 0): { path: string; file: string; st: fs.Stats } | undefined {
    if (hops > 40) return undefined;
    const parts = path.posix.normalize(`/${p}`).split('/').filter(Boolean);
    let cur = '/';
    for (let i = 0; i < parts.length; i++) {
      const next = path.posix.join(cur, parts[i]!);
      const hit = this.lookup(next);
      if (!hit) return undefined;
      if (hit.st.isSymbolicLink()) {
        const target = fs.readlinkSync(hit.file);
        const rest = parts.slice(i + 1).join('/');
        const base = target.startsWith('/') ? target : path.posix.join(cur, target);
        return this.resolve(rest ? `${base}/${rest}` : base, hops + 1);
      }
      cur = next;
    }
    const hit = this.lookup(cur) ?? (cur === '/' ? { file: this.lowerDirs[0] ?? '/', st: fs.statSync(this.lowerDirs[0] ?? '/') } : undefined);
    return hit ? { path: cur, ...hit } : undefined;
  }

  readText(p: string): string | undefined {
    const r = this.resolve(p);
    if (!r || !r.st.isFile()) return undefined;
    return fs.readFileSync(r.file, 'utf8');
  }
}

export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  home: string;
}

/** passwd/group lines -> entries. */
function entries(text: string | undefined): string[][] {
  return (text ?? '').split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(':'));
}

/**
 * Docker's user resolution: '', 'name', 'uid', 'uid:gid', 'name:group'. A name that is not in
 * the image's /etc/passwd is an error; a number that is not there runs with gid 0.
 */
export function resolveUser(passwd: string | undefined, group: string | undefined, user: string): ResolvedUser {
  const [u = '', g] = user === '' ? ['0'] : user.split(':');
  const pw = entries(passwd);
  const gr = entries(group);
  let entry = /^\d+$/.test(u) ? pw.find((e) => e[2] === u) : pw.find((e) => e[0] === u);
  if (!entry && !/^\d+$/.test(u)) {
    throw new HullError('INVALID_ARGUMENT', `unable to find user ${u}: no matching entries in passwd file`);
  }
  const uid = entry ? Number(entry[2]) : Number(u);
  let gid = entry ? Number(entry[3]) : 0;
  if (g !== undefined && g !== '') {
    if (/^\d+$/.test(g)) gid = Number(g);
    else {
      const ge = gr.find((e) => e[0] === g);
      if (!ge) throw new HullError('INVALID_ARGUMENT', `unable to find group ${g}: no matching entries in group file`);
      gid = Number(ge[2]);
    }
  }
  const name = entry?.[0];
  const additionalGids = name
    ? gr.filter((e) => (e[3] ?? '').split(',').includes(name) && Number(e[2]) !== gid).map((e) => Number(e[2]))
    : [];
  return { uid, gid, additionalGids, home: entry?.[5] || '/' };
}

/**
 * docker's --group-add on top of a resolved user: each a gid, or a name in the image's
 * /etc/group (else "unable to find group"); the user's gid and duplicates are left out.
 */
export function addGroups(u: ResolvedUser, group: string | undefined, names: string[]): ResolvedUser {
  const gr = entries(group);
  const gids = [...u.additionalGids];
  for (const n of names) {
    let gid: number;
    if (/^\d+$/.test(n)) gid = Number(n);
    else {
      const ge = gr.find((e) => e[0] === n);
      if (!ge) throw new HullError('INVALID_ARGUMENT', `unable to find group ${n}: no matching entries in group file`);
      gid = Number(ge[2]);
    }
    if (gid !== u.gid && !gids.includes(gid)) gids.push(gid);
  }
  return { ...u, additionalGids: gids };
}

/** The user (-u) and --group-add, resolved in the image. */
export function resolveUserInRoot(root: LayeredRoot, user: string, groupAdd: string[] = []): ResolvedUser {
  const group = root.readText('/etc/group');
  return addGroups(resolveUser(root.readText('/etc/passwd'), group, user), group, groupAdd);
}

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** A start failure docker reports with exit code 126 (cannot execute) or 127 (not found). */
export class ExecError extends HullError {
  constructor(message: string, readonly exitCode: 126 | 127) {
    super('INVALID_ARGUMENT', message);
  }
}

/**
 * Check that argv[0] names an executable regular file in the image, as the runtime would find
 * it (PATH from the container env, cwd for relative paths). Throws ExecError otherwise.
 * `mounted(p)` says whether p is under a bind/tmpfs mount (not checked then).
 */
export function checkExecutable(root: LayeredRoot, argv0: string, env: string[], cwd: string, mounted: (p: string) => boolean): void {
  const q = JSON.stringify(argv0);
  let candidates: string[];
  if (argv0.includes('/')) candidates = [argv0.startsWith('/') ? argv0 : path.posix.join(cwd || '/', argv0)];
  else {
    const pathEnv = env.find((e) => e.startsWith('PATH='))?.slice(5) ?? DEFAULT_PATH;
    candidates = pathEnv.split(':').filter(Boolean).map((d) => path.posix.join(d, argv0));
  }
  let denied: string | undefined;
  for (const c of candidates) {
    if (mounted(c)) return;
    const r = root.resolve(c);
    if (!r) continue;
    if (r.st.isDirectory()) {
      denied ??= `exec: ${q}: is a directory`;
      continue;
    }
    if (!r.st.isFile() || (r.st.mode & 0o111) === 0) {
      denied ??= `exec: ${q}: permission denied`;
      continue;
    }
    return;
  }
  if (denied) throw new ExecError(denied, 126);
  if (argv0.includes('/')) throw new ExecError(`exec: ${q}: stat ${argv0}: no such file or directory`, 127);
  throw new ExecError(`exec: ${q}: executable file not found in $PATH`, 127);
}
