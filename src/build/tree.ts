/**
 * A source tree COPY and ADD read from: the build context (with its .dockerignore) or the root
 * filesystem of an earlier stage or image (COPY --from). Read safely:
 *  - every path is resolved inside the tree: `..` stops at its root, and a symlink met on the
 *    way is followed only as if the tree's root were `/` (never out of it);
 *  - the last component is never followed: a symlink is copied as a symlink;
 *  - paths .dockerignore excludes are invisible (docker's rules, through @balena/dockerignore:
 *    last match wins, `!` re-includes, `**` spans directories).
 */
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { invalid } from '../errors.js';

const require = createRequire(import.meta.url);

type Ignore = { add(p: string | string[]): Ignore; ignores(p: string): boolean };

/** Patterns of a .dockerignore text (comments and blank lines dropped, like docker). */
export function dockerignorePatterns(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.replace(/\r$/, ''))
    .filter((l) => l.trim() !== '' && !l.startsWith('#'))
    .map((l) => l.trim());
}

export interface Found {
  /** Clean relative path inside the tree ('' is the root). */
  rel: string;
  /** Absolute host path of the entry itself (a symlink is not followed). */
  abs: string;
  st: fs.Stats;
}

export class SourceTree {
  private readonly ig?: Ignore;
  /** Whether some pattern is an exception (`!...`): then an ignored directory is still walked. */
  private readonly exceptions: boolean;

  /**
   * @param root absolute directory
   * @param ignorePatterns .dockerignore patterns (none for an image's root filesystem)
   * @param what names the tree in errors ('the build context', 'stage builder')
   */
  constructor(readonly root: string, ignorePatterns: string[] = [], readonly what = 'the build context') {
    this.exceptions = ignorePatterns.some((p) => p.startsWith('!'));
    if (ignorePatterns.length > 0) {
      const make = require('@balena/dockerignore') as (() => Ignore) | { default: () => Ignore };
      this.ig = (typeof make === 'function' ? make : make.default)().add(ignorePatterns);
    }
  }

  /** Whether .dockerignore excludes `rel`. */
  ignored(rel: string): boolean {
    return rel !== '' && this.ig !== undefined && this.ig.ignores(rel);
  }

  /**
   * Resolve `p` (relative to the root; a leading '/' means the root) without following its last
   * component. Undefined when it does not exist or is ignored; INVALID_ARGUMENT when `..`
   * would climb out of the tree as written (docker: "forbidden path outside the build context").
   */
  find(p: string): Found | undefined {
    const cleaned = path.posix.normalize(`/${p}`);
    if (!p.startsWith('/') && path.posix.normalize(p).split('/')[0] === '..') {
      throw invalid(`forbidden path outside ${this.what}: ${p}`);
    }
    const rel = this.resolveParents(cleaned.split('/').filter(Boolean), 0);
    if (rel === undefined || this.ignored(rel)) return undefined;
    const abs = rel === '' ? this.root : path.join(this.root, rel);
    const st = fs.lstatSync(abs, { throwIfNoEntry: false });
    return st ? { rel, abs, st } : undefined;
  }

  /** Follow symlinks in all but the last component, scoped to the root; the clean relative path. */
  private resolveParents(parts: string[], hops: number): string | undefined {
    if (hops > 40) return undefined;
    const done: string[] = [];
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!;
      if (part === '..') {
        done.pop();
        continue;
      }
      if (i === parts.length - 1) {
        done.push(part);
        break;
      }
      const abs = path.join(this.root, ...done, part);
      const st = fs.lstatSync(abs, { throwIfNoEntry: false });
      if (!st) return undefined;
      if (st.isSymbolicLink()) {
        const target = fs.readlinkSync(abs);
        const base = target.startsWith('/') ? [] : [...done];
        return this.resolveParents([...base, ...target.split('/').filter((x) => x !== '' && x !== '.'), ...parts.slice(i + 1)], hops + 1);
      }
      if (!st.isDirectory()) return undefined;
      done.push(part);
    }
    return done.join('/');
  }

  /** Names in a directory of the tree that .dockerignore does not exclude, in byte order. */
  list(rel: string): string[] {
    const abs = rel === '' ? this.root : path.join(this.root, rel);
    return fs
      .readdirSync(abs)
      .filter((n) => !this.ignored(rel === '' ? n : `${rel}/${n}`) || this.mayReinclude(rel === '' ? n : `${rel}/${n}`))
      .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  }

  /** An ignored directory is still walked when a `!` pattern may re-include something in it. */
  private mayReinclude(rel: string): boolean {
    const st = fs.lstatSync(path.join(this.root, rel), { throwIfNoEntry: false });
    return this.exceptions && !!st?.isDirectory();
  }

  /** Every path under the root (pre-order, byte order), ignored ones left out. */
  walk(rel = ''): Found[] {
    const out: Found[] = [];
    for (const n of this.list(rel)) {
      const r = rel === '' ? n : `${rel}/${n}`;
      const abs = path.join(this.root, r);
      const st = fs.lstatSync(abs);
      if (!this.ignored(r)) out.push({ rel: r, abs, st });
      if (st.isDirectory()) out.push(...this.walk(r));
    }
    return out;
  }
}
