/**
 * The build context: a directory read in place, or a tar (a file, stdin, the body of POST
 * /build; plain or gzip) unpacked by the hardened unpacker into a temp dir under the root's
 * tmp/ (so no entry can land outside it). Its .dockerignore hides paths from COPY and ADD. The
 * Dockerfile is found inside the context (never outside it for a tar), or given as text.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { invalid } from '../errors.js';
import { peek } from '../images/stream-util.js';
import { decompressor, sniffCompression } from '../snapshots/unpack-layer.js';
import { unpackTar } from '../snapshots/unpack.js';
import { archiveKind } from './copy.js';
import { dockerignorePatterns, SourceTree } from './tree.js';

export interface OpenContext {
  tree: SourceTree;
  /** The Dockerfile's text. */
  dockerfile: string;
  /** Bytes of the context (what docker reports as sent). */
  bytes: number;
  /** Remove what opening made (a tar's temp dir). Idempotent. */
  close(): void;
}

function ignoreOf(dir: string): string[] {
  const f = path.join(dir, '.dockerignore');
  const st = fs.lstatSync(f, { throwIfNoEntry: false });
  return st?.isFile() ? dockerignorePatterns(fs.readFileSync(f, 'utf8')) : [];
}

function sizeOf(tree: SourceTree): number {
  return tree.walk().reduce((n, f) => n + (f.st.isFile() ? f.st.size : 0), 0);
}

/** Read the Dockerfile named inside the context tree (a symlink is not followed out of it). */
function dockerfileIn(tree: SourceTree, name: string): string {
  const f = tree.find(name);
  if (!f || !f.st.isFile()) throw invalid(`Cannot locate specified Dockerfile: ${name}`);
  return fs.readFileSync(f.abs, 'utf8');
}

/**
 * A directory context. `dockerfile`: a path (absolute or relative to the working directory, as
 * `docker build -f` takes it) or text; default CONTEXT/Dockerfile.
 */
export function contextFromDir(dir: string, dockerfile?: { path?: string; text?: string }): OpenContext {
  const root = path.resolve(dir);
  const st = fs.statSync(root, { throwIfNoEntry: false });
  if (!st?.isDirectory()) throw invalid(`unable to prepare context: path ${JSON.stringify(dir)} not found`);
  const tree = new SourceTree(root, ignoreOf(root));
  let text = dockerfile?.text;
  if (text === undefined) {
    const p = dockerfile?.path ? path.resolve(dockerfile.path) : path.join(root, 'Dockerfile');
    const fst = fs.statSync(p, { throwIfNoEntry: false });
    if (!fst?.isFile()) throw invalid(`Cannot locate specified Dockerfile: ${dockerfile?.path ?? 'Dockerfile'}`);
    text = fs.readFileSync(p, 'utf8');
  }
  return { tree, dockerfile: text, bytes: sizeOf(tree), close: () => undefined };
}

/** A context with no files: only a Dockerfile (`docker build - < Dockerfile`). */
export function emptyContext(tmp: string, dockerfile: string): OpenContext {
  fs.mkdirSync(tmp, { recursive: true });
  const dir = fs.mkdtempSync(path.join(tmp, 'context-'));
  return { tree: new SourceTree(dir), dockerfile, bytes: 0, close: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** Whether a stream's first bytes look like a tar archive (plain or compressed). */
export function looksLikeArchive(head: Buffer): boolean {
  return sniffCompression(head) !== 'none' || archiveKind(head) !== undefined;
}

/**
 * A tar context, unpacked under `tmp`. `dockerfile`: the Dockerfile's path inside the tar
 * (default 'Dockerfile'), or its text.
 */
export async function contextFromTar(input: Readable, tmp: string, dockerfile?: { path?: string; text?: string }): Promise<OpenContext> {
  fs.mkdirSync(tmp, { recursive: true });
  const dir = path.join(tmp, `context-${process.pid}-${crypto.randomBytes(6).toString('hex')}`);
  fs.mkdirSync(dir, { mode: 0o700 });
  const close = () => fs.rmSync(dir, { recursive: true, force: true });
  try {
    const { head, stream } = await peek(input, 4);
    const dec = await decompressor(sniffCompression(head), 'build context');
    stream.on('error', (e) => dec.destroy(e));
    stream.pipe(dec);
    await unpackTar(dec, dir, { what: 'build context' });
    const tree = new SourceTree(dir, ignoreOf(dir));
    const text = dockerfile?.text ?? dockerfileIn(new SourceTree(dir), dockerfile?.path || 'Dockerfile');
    return { tree, dockerfile: text, bytes: sizeOf(tree), close };
  } catch (e) {
    close();
    throw e;
  }
}
