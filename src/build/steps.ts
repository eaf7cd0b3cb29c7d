/**
 * The instructions that make a layer: RUN (a container or microVM on the previous step's image,
 * driven through the engine), COPY/ADD and WORKDIR (staged as an upper dir on the host). Each
 * ends as a new image committed through the store's one door (images/commit.ts). Pure helpers
 * (argv, environment, history lines) are exported for the tests.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { Engine } from '../engine/engine.js';
import { HullError, invalid } from '../errors.js';
import { commitDerived, putLayer } from '../images/commit.js';
import type { ImageRecord } from '../images/store.js';
import type { HistoryEntry, ImageConfig } from '../oci/types.js';
import { LayeredRoot } from '../runtime/container/rootfs.js';
import type { Wall } from '../runtime/types.js';
import { diffUpperDir, writableLayerTar } from '../snapshots/diff.js';
import type { BuildRunConfig, StageState } from './config-steps.js';
import type { Instr } from './dockerfile.js';
import type { Sink } from './events.js';

/** A RUN that exited non-zero (its code: the docker CLI exits with it, so does hull build). */
export class RunFailed extends HullError {
  constructor(message: string, readonly exitCode: number) {
    super('FAILED_PRECONDITION', message);
  }
}

/** The image a step builds on (undefined: scratch) and what every step needs. */
export interface StepContext {
  engine: Engine;
  image: ImageRecord | undefined;
  state: StageState;
  sink: Sink;
  /** Build time stamped on new images and directories (SOURCE_DATE_EPOCH when set). */
  when: Date;
  tmp: string;
}

/** argv of a RUN: exec form as written; shell form (heredocs included) through SHELL. */
export function runArgv(i: Instr, shell: string[]): string[] {
  if (i.json) return i.json;
  if (i.heredocs.length > 0) {
    // `RUN <<EOF` alone: the body is the script (BuildKit); otherwise the shell reads the heredocs
    if (/^<<-?(["']?)[A-Za-z_][A-Za-z0-9_]*\1$/.test(i.args.trim()) && i.heredocs.length === 1) return [...shell, i.heredocs[0]!.content];
    return [...shell, `${i.args}\n${i.heredocs.map((h) => `${h.content}${h.name}\n`).join('')}`];
  }
  return [...shell, i.args];
}

/** The stage's ARGs a RUN sees as environment (not persisted), `K=v`, sorted; ENV keys win. */
export function runArgEnv(s: StageState): string[] {
  const envKeys = new Set((s.config.Env ?? []).map((kv) => kv.split('=')[0]));
  return [...s.args].filter(([k]) => !envKeys.has(k)).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${k}=${v}`);
}

/** docker's history line of a RUN: `|2 A=1 B=2 /bin/sh -c cmd` when build args are set. */
export function runCreatedBy(argv: string[], argEnv: string[]): string {
  return `${argEnv.length ? `|${argEnv.length} ${argEnv.join(' ')} ` : ''}${argv.join(' ')}`;
}

/** The config of the next image: the run config given, history appended. */
export function nextConfig(prev: ImageConfig | undefined, run: BuildRunConfig, h: HistoryEntry, author?: string): Omit<ImageConfig, 'rootfs'> {
  const cfg: Omit<ImageConfig, 'rootfs'> = {
    architecture: prev?.architecture ?? 'amd64',
    os: prev?.os ?? 'linux',
    ...(prev?.variant ? { variant: prev.variant } : {}),
    ...(author ?? prev?.author ? { author: author ?? prev?.author } : {}),
    created: h.created,
    config: JSON.parse(JSON.stringify(run)) as BuildRunConfig,
    history: [...(prev?.history ?? []), h],
  };
  return cfg;
}

/** Commit the step's result: `added` layer tars (streams) on top of the current image. */
export async function commitStep(c: StepContext, createdBy: string, layers: NodeJS.ReadableStream[], what: string): Promise<ImageRecord> {
  const store = c.engine.images;
  const added = [];
  for (const l of layers) added.push(await putLayer(store, l as never, what));
  const created = c.when.toISOString().replace(/\.000Z$/, 'Z');
  const h: HistoryEntry = { created, created_by: createdBy, ...(layers.length === 0 ? { empty_layer: true } : {}) };
  return commitDerived(store, { baseLayers: c.image?.layers ?? [], added, config: nextConfig(c.image?.config, c.state.config, h, c.state.author), action: 'build' });
}

/** Keeps the last bytes written, for the error of a failed RUN. */
class Tail extends Writable {
  buf = Buffer.alloc(0);
  constructor(private readonly stream: 'stdout' | 'stderr', private readonly sink: Sink) {
    super();
  }
  override _write(chunk: Buffer, _e: BufferEncoding, cb: () => void): void {
    this.sink({ type: 'output', stream: this.stream, data: chunk });
    this.buf = Buffer.concat([this.buf, chunk]).subarray(-8192);
    cb();
  }
}

/** The last `n` lines of what a RUN printed (both streams, as they came). */
function lastLines(a: Tail, b: Tail, n: number): string[] {
  const text = Buffer.concat([a.buf, b.buf]).toString('utf8');
  return text.split('\n').filter((l) => l.trim() !== '').slice(-n);
}

export interface RunStepOptions {
  isolation: Wall;
  /** Memory of each RUN's container or VM, bytes (default: none for containers, 1 GiB for VMs). */
  memoryBytes?: number;
  /** RUN's network (BuildRequest.network): undefined = the default bridge. */
  network?: string;
  /** Kills the RUN's container or VM when aborted (BuildRequest.signal). */
  signal?: AbortSignal;
}

/** RUN: an engine run on the current image, its writable layer committed as the next image. */
export async function runStep(c: StepContext, i: Instr, argv: string[], argEnv: string[], createdBy: string, o: RunStepOptions): Promise<ImageRecord> {
  const image = c.image;
  if (!image || image.layers.length === 0) throw invalid(`Dockerfile line ${i.line}: RUN needs an image with a file system to run in (this stage is FROM scratch with no files yet)`);
  const cfg = c.state.config;
  const out = new Tail('stdout', c.sink);
  const err = new Tail('stderr', c.sink);
  const what = `RUN at Dockerfile line ${i.line}`;
  const memoryBytes = o.memoryBytes ?? (o.isolation === 'vm' ? 1024 * 1024 * 1024 : undefined);
  try {
    return await c.engine.runStep(
      { image: image.id, entrypoint: '', cmd: argv, env: argEnv, workdir: cfg.WorkingDir || '/', user: cfg.User ?? '', network: o.network, isolation: o.isolation, memoryBytes },
      {
        stdout: out,
        stderr: err,
        // the engine names the container before it runs: docker's " ---> Running in <id>"
        onCreated: (id) => c.sink({ type: 'running', container: id }),
        // an interrupted build kills the step's container or VM; runStep then removes it
        signal: o.signal,
      },
      async (exit, layer) => {
        if (o.signal?.aborted) throw new HullError('UNAVAILABLE', `${what}: build interrupted`);
        if (exit.exitCode !== 0 || exit.error) {
          const tail = lastLines(out, err, 5);
          const why = exit.error ? `${exit.error}` : `returned a non-zero code: ${exit.exitCode}`;
          throw new RunFailed(`Dockerfile line ${i.line}: The command '${argv.join(' ')}' ${why}${tail.length ? `; its last output:\n  ${tail.join('\n  ')}` : ''}`, exit.exitCode || 1);
        }
        if (!layer) throw new HullError('INTERNAL', `${what}: the ${o.isolation} wall gave no writable layer back`);
        const lowers = await c.engine.images.lowerDirs(image);
        const { stream, done } = await writableLayerTar(layer, { runtimePaths: true, lowers, tmp: c.tmp, what });
        try {
          const img = await commitStep(c, createdBy, [stream], what);
          c.sink({ type: 'removed', container: exit.id });
          return img;
        } finally {
          done();
        }
      },
    );
  } catch (e) {
    if (o.signal?.aborted && !(e instanceof HullError && /build interrupted/.test(e.message))) throw new HullError('UNAVAILABLE', `${what}: build interrupted`, { cause: e });
    throw e;
  }
}

/** A fresh upper dir for a host-side step; removed by the caller. */
export function stagingDir(tmp: string): string {
  fs.mkdirSync(tmp, { recursive: true });
  const d = fs.mkdtempSync(path.join(tmp, 'build-stage-'));
  fs.chmodSync(d, 0o755);
  return d;
}

/** A layer made on the host (COPY, ADD, WORKDIR): `fill` writes into an upper dir, then it is diffed. */
export async function hostLayerStep(c: StepContext, createdBy: string, what: string, fill: (upper: string, lowers: string[]) => Promise<void>): Promise<ImageRecord> {
  const upper = stagingDir(c.tmp);
  try {
    const lowers = c.image ? await c.engine.images.lowerDirs(c.image) : [];
    await fill(upper, lowers);
    return await commitStep(c, createdBy, [diffUpperDir(upper, { what })], what);
  } finally {
    fs.rmSync(upper, { recursive: true, force: true });
  }
}

/** Whether a directory exists in the current image. */
export async function dirExists(c: StepContext, p: string): Promise<boolean> {
  if (!c.image || c.image.layers.length === 0) return false;
  const r = new LayeredRoot(await c.engine.images.lowerDirs(c.image)).resolve(p);
  return !!r?.st.isDirectory();
}

