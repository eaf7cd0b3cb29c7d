/**
 * `hull cp`: docker cp between the host and a container or a running microVM. The instance's
 * side goes through the engine's archive door (tools inside the instance); the host's side is
 * GNU tar (Debian's), which refuses names that climb out of the target directory.
 *
 *   hull cp [-a] CONTAINER:SRC DEST|-     hull cp [-a] SRC|- CONTAINER:DEST
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { invalid } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import { containerPath } from '../engine/archive.js';
import { flagBool } from './args.js';
import type { CliContext, CommandDef } from './command.js';

/** docker's splitCpArg: `NAME:PATH` names a container, unless the argument is a local path ("/...", "./..."). */
export function splitCpArg(arg: string): { container?: string; path: string } {
  if (arg.startsWith('/') || arg.startsWith('.') || arg === '-') return { path: arg };
  const i = arg.indexOf(':');
  if (i <= 0) return { path: arg };
  return { container: arg.slice(0, i), path: arg.slice(i + 1) || '/' };
}

/** Run host tar: `stdin` fed to it, its stdout returned when asked for; `done` rejects with its stderr when it fails. */
function hostTar(args: string[], io: { stdin?: Readable; stdout?: boolean }): { done: Promise<void>; stdout: Readable | null } {
  const c = spawn('tar', args, { stdio: [io.stdin ? 'pipe' : 'ignore', io.stdout ? 'pipe' : 'ignore', 'pipe'] });
  let err = '';
  c.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d.slice(0, 4000)));
  if (io.stdin) io.stdin.pipe(c.stdin!);
  // node drops what a child wrote to an unread pipe once it exits: take it into a stream now
  // (with backpressure: a full buffer stops the child's writes, not its exit)
  const stdout = io.stdout ? c.stdout!.pipe(new PassThrough()) : null;
  const done = new Promise<void>((resolve, reject) => {
    c.on('error', (e) => reject(invalid(`cannot run tar: ${e.message}`)));
    c.on('close', (code) => (code === 0 ? resolve() : reject(invalid(`tar ${args[0]} failed: ${err.trim() || `exit ${code}`}`))));
  });
  return { done, stdout };
}

async function fromContainer(engine: Engine, ref: string, src: string, dest: string, o: { archive: boolean; stdout: NodeJS.WritableStream }): Promise<void> {
  await engine.archive(ref, async (a) => {
    const st = await a.stat(src);
    const isDir = (st.mode & 2 ** 31) !== 0;
    if (dest === '-') {
      await a.get(src, o.stdout as unknown as Writable, st);
      return;
    }
    const owner = o.archive ? ['--same-owner'] : ['--no-same-owner'];
    const contents = containerPath(src).contents && isDir;
    const destStat = fs.statSync(dest, { throwIfNoEntry: false });
    let into = dest;
    let rename: string | undefined;
    if (destStat?.isDirectory()) {
      into = dest;
    } else if (destStat) {
      if (isDir) throw invalid(`cannot copy a directory to a file: ${dest}`);
      into = fs.mkdtempSync(path.join(path.dirname(path.resolve(dest)), '.hull-cp-'));
      rename = path.join(into, st.name);
    } else if (contents) {
      fs.mkdirSync(dest);
    } else {
      if (!fs.statSync(path.dirname(path.resolve(dest)), { throwIfNoEntry: false })?.isDirectory()) throw invalid(`no such directory: ${path.dirname(dest)}`);
      into = fs.mkdtempSync(path.join(path.dirname(path.resolve(dest)), '.hull-cp-'));
      rename = path.join(into, st.name);
    }
    try {
      const pipe = new PassThrough();
      const t = hostTar(['-x', '-f', '-', '-C', into, ...owner], { stdin: pipe });
      await a.get(src, pipe, st).finally(() => pipe.end());
      await t.done;
      if (rename) fs.renameSync(rename, dest);
    } finally {
      if (rename) fs.rmSync(into, { recursive: true, force: true });
    }
  });
}

async function toContainer(engine: Engine, src: string, ref: string, dest: string, o: { archive: boolean; stdin: Readable }): Promise<void> {
  await engine.archive(ref, async (a) => {
    if (src === '-') return a.put(dest, o.stdin, { copyUIDGID: o.archive });
    const local = fs.lstatSync(src, { throwIfNoEntry: false });
    if (!local) throw invalid(`no such file or directory: ${src}`);
    let target = dest;
    let as: string | undefined;
    const there = await a.stat(dest).catch((e: unknown) => {
      if ((e as { code?: string }).code === 'NOT_FOUND') return undefined;
      throw e;
    });
    const cp = containerPath(dest);
    if (!there || (there.mode & 2 ** 31) === 0) {
      if (there && local.isDirectory()) throw invalid(`cannot copy a directory to a file: ${dest}`);
      if (!there && cp.contents) throw invalid(`no such directory: ${dest}`);
      target = cp.dir;
      as = cp.base;
    }
    const base = path.basename(path.resolve(src));
    const transform = as && as !== base ? ['--transform', `s,^${base.replace(/[\\,.[\]*^$]/g, '\\$&')},${as.replace(/[\\,&]/g, '\\$&')},`] : [];
    const t = hostTar(['-c', '-f', '-', '--numeric-owner', ...transform, '-C', path.dirname(path.resolve(src)), base], { stdout: true });
    await Promise.all([a.put(target, t.stdout!, { copyUIDGID: o.archive }), t.done]);
  });
}

export const commands: CommandDef[] = [
  {
    name: 'cp',
    usage: 'cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n       hull cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH',
    summary: 'Copy files/folders between a container (or a running VM) and the local filesystem',
    flags: [
      { name: 'archive', short: 'a', type: 'bool', help: 'Archive mode (copy all uid/gid information)' },
      { name: 'quiet', short: 'q', type: 'bool', help: 'Suppress progress output' },
    ],
    minArgs: 2,
    maxArgs: 2,
    async run(ctx: CliContext, p) {
      const [a, b] = p.args.map(splitCpArg) as [ReturnType<typeof splitCpArg>, ReturnType<typeof splitCpArg>];
      if (a.container && b.container) throw invalid('copying between containers is not supported');
      if (!a.container && !b.container) throw invalid('must specify at least one container source');
      const { Engine } = await import('../engine/engine.js');
      const engine = Engine.open(ctx.root) as Engine;
      const archive = flagBool(p, 'archive');
      if (a.container) await fromContainer(engine, a.container, a.path, b.path, { archive, stdout: ctx.stdout });
      else await toContainer(engine, a.path, b.container!, b.path, { archive, stdin: ctx.stdin });
      return 0;
    },
  },
  { name: 'container cp', usage: 'container cp ...', summary: 'Alias of cp', flags: [{ name: 'archive', short: 'a', type: 'bool', help: 'Archive mode' }], minArgs: 2, maxArgs: 2, run: (ctx, p) => commands[0]!.run(ctx, p) },
];
