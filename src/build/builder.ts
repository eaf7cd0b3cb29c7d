/**
 * `hull build`: run a plan (plan.ts) stage by stage, instruction by instruction, as docker's
 * classic builder does: every instruction ends as an image (config-only ones share their
 * parent's layers), looked up first in the layer cache under the key docker would use (parent
 * image, instruction as expanded, the build args a RUN sees, the content of what a COPY copies,
 * and for RUN the wall it runs behind), so an unchanged step is reused and a changed one
 * rebuilds from there on. RUN steps are engine runs (containers or microVMs); the rest happens
 * on the host. A failed step leaves its container removed and every earlier step cached.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Engine } from '../engine/engine.js';
import { HullError, invalid } from '../errors.js';
import type { ImageRecord } from '../images/store.js';
import { buildTime, goArch } from '../images/stream-util.js';
import { layout } from '../paths.js';
import { LayeredRoot } from '../runtime/container/rootfs.js';
import type { Wall } from '../runtime/types.js';
import { BuildCacheTables } from '../state/build-cache.js';
import { nowIso } from '../state/db.js';
import { applyConfigInstr, nop, shellOf, varsOf, type BuildRunConfig, type StageState } from './config-steps.js';
import { chownIds, parseChmod, selectSources, stageCopy, Stager, type CopyRequest } from './copy.js';
import { parseDockerfile, type Instr } from './dockerfile.js';
import type { Sink } from './events.js';
import { expandWord, expandWords } from './expand.js';
import { lineError, planBuild, stageByRef, type PlannedStage } from './plan.js';
import { commitStep, dirExists, hostLayerStep, runArgEnv, runArgv, runCreatedBy, runStep, stagingDir, type StepContext } from './steps.js';
import { SourceTree } from './tree.js';

export interface BuildRequest {
  /** The build context (files COPY and ADD read), .dockerignore applied. */
  context: SourceTree;
  /** The Dockerfile's text. */
  dockerfile: string;
  /** -t: references to tag the image with. */
  tags?: string[];
  /** --build-arg K=V. */
  buildArgs?: Map<string, string>;
  /** --target STAGE. */
  target?: string;
  /** --no-cache: run every step. */
  noCache?: boolean;
  /** --pull: pull every base image, even when it is here. */
  pull?: boolean;
  /** --label K=V on the image. */
  labels?: Record<string, string>;
  /** --platform; only the host's (linux/<arch>) can be built here. */
  platform?: string;
  /** Where RUN steps run: containers (default) or microVMs. */
  isolation?: Wall;
  /** Memory of each RUN's container or VM, bytes. */
  memoryBytes?: number;
  /**
   * --network of RUN steps: docker's default network ('bridge', the default), 'none', 'host', or
   * a user network's name. Not part of the cache key (as in docker).
   */
  network?: string;
  /**
   * Stops the build: no further step starts, and a running RUN's container or VM is killed (it
   * is then removed like any failed step). The build fails with "build interrupted".
   */
  signal?: AbortSignal;
}

export interface BuildResult {
  id: string;
  tags: string[];
}

const hostPlatform = () => `linux/${goArch()}`;

function checkPlatform(p: string | undefined, what: string): void {
  if (p === undefined || p === '') return;
  const want = hostPlatform();
  if (p !== want && p !== 'linux' && p !== `${want}/`) throw invalid(`${what}: platform ${p} cannot be built on this ${want} host (hull builds for the host platform only)`);
}

function key(...parts: string[]): string {
  return crypto.createHash('sha256').update(parts.join('\0')).digest('hex');
}

class Build {
  private readonly cache: BuildCacheTables;
  private readonly stageImages = new Map<number, ImageRecord | undefined>();
  private readonly usedArgs = new Set<string>();
  private readonly when: Date;
  private readonly tmp: string;
  private readonly flattened = new Map<string, string>();
  private step = 0;
  private total = 0;

  constructor(private readonly engine: Engine, private readonly req: BuildRequest, private readonly sink: Sink) {
    this.cache = new BuildCacheTables(engine.images.db);
    this.when = buildTime();
    this.tmp = path.join(layout(engine.root).tmp, `build-${process.pid}-${crypto.randomBytes(4).toString('hex')}`);
  }

  async run(): Promise<BuildResult> {
    checkPlatform(this.req.platform, '--platform');
    const buildArgs = this.req.buildArgs ?? new Map<string, string>();
    const df = parseDockerfile(this.req.dockerfile);
    const plan = planBuild(df, { buildArgs, target: this.req.target });
    this.total = plan.totalSteps + (Object.keys(this.req.labels ?? {}).length > 0 ? 1 : 0);
    for (const g of plan.globalArgs) for (const p of g.props ?? []) this.usedArgs.add(p.name);
    fs.mkdirSync(this.tmp, { recursive: true, mode: 0o700 });
    try {
      let last: ImageRecord | undefined;
      for (const s of plan.stages) {
        last = await this.stage(plan.all, s, df.escape, plan.globalVars, buildArgs, s === plan.stages[plan.stages.length - 1]);
        this.stageImages.set(s.index, last);
      }
      if (!last) throw invalid('the build produced no image: the target stage is FROM scratch with no instructions');
      const unused = [...buildArgs.keys()].filter((k) => !this.usedArgs.has(k));
      if (unused.length) this.sink({ type: 'warning', text: `One or more build-args [${unused.join(' ')}] were not consumed` });
      this.sink({ type: 'built', id: last.id });
      for (const t of this.req.tags ?? []) {
        this.engine.images.tag(last.id, t);
        this.sink({ type: 'tagged', tag: t.includes(':') && !/:\d+\//.test(t) ? t : `${t}:latest` });
      }
      return { id: last.id, tags: this.req.tags ?? [] };
    } finally {
      fs.rmSync(this.tmp, { recursive: true, force: true });
    }
  }

  private announce(text: string): number {
    if (this.req.signal?.aborted) throw new HullError('UNAVAILABLE', 'build interrupted');
    this.step++;
    this.sink({ type: 'step', n: this.step, total: this.total, text });
    return Date.now();
  }

  /** The base image of a stage (pulled when missing or with --pull). */
  private async base(s: PlannedStage): Promise<ImageRecord | undefined> {
    checkPlatform(s.platform, `Dockerfile line ${s.from.line}: FROM --platform`);
    if (s.base.kind === 'scratch') return undefined;
    if (s.base.kind === 'stage') return this.stageImages.get(s.base.index);
    const ref = s.base.ref;
    const found = this.req.pull ? undefined : this.engine.images.tryResolve(ref);
    if (found) return found;
    const { pull } = await import('../registry/pull.js');
    try {
      return await pull(this.engine.root, ref, { unpack: true, platform: this.req.platform });
    } catch (e) {
      throw lineError(s.from.line, `FROM ${ref}: ${(e as Error).message}`);
    }
  }

  private async stage(all: PlannedStage[], s: PlannedStage, escape: string, globals: Map<string, string>, buildArgs: Map<string, string>, final: boolean): Promise<ImageRecord | undefined> {
    const t0 = this.announce(s.from.text);
    let image = await this.base(s);
    const run: BuildRunConfig = JSON.parse(JSON.stringify(image?.config.config ?? {})) as BuildRunConfig;
    const triggers = run.OnBuild ?? [];
    delete run.OnBuild;
    const state: StageState = { config: run, args: new Map(), declared: new Set(), escape, cmdSet: false };
    // a stage's ARG without a value inherits the global one
    const inheritedArgs = (i: Instr) => {
      if (i.keyword !== 'ARG') return;
      for (const p of i.props ?? []) if (p.raw === null && globals.has(p.name) && !buildArgs.has(p.name)) state.args.set(p.name, globals.get(p.name)!);
    };
    if (image) this.sink({ type: 'image', id: image.id, ms: Date.now() - t0 });
    const instrs = [...s.instrs];
    if (triggers.length > 0) {
      this.sink({ type: 'triggers', count: triggers.length });
      const parsed = parseDockerfile(triggers.map((t) => t).join('\n'), 'ONBUILD trigger');
      for (const t of parsed.instrs) {
        t.line = s.from.line;
        image = await this.instr(all, s, t, image, state, buildArgs, false);
      }
    }
    for (const i of instrs) {
      inheritedArgs(i);
      image = await this.instr(all, s, i, image, state, buildArgs, true);
    }
    if (final) image = await this.labels(image, state);
    return image;
  }

  /** --label: docker's classic builder appends a LABEL step to the Dockerfile (counted, shown). */
  private async labels(image: ImageRecord | undefined, state: StageState): Promise<ImageRecord | undefined> {
    const labels = this.req.labels ?? {};
    if (Object.keys(labels).length === 0) return image;
    const t0 = this.announce(`LABEL ${Object.entries(labels).map(([k, v]) => `${JSON.stringify(k)}='${v}'`).join(' ')}`);
    state.config.Labels = { ...(state.config.Labels ?? {}), ...labels };
    const createdBy = nop(state, `LABEL ${Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(' ')}`);
    return this.cached(image, createdBy, '', async (c) => commitStep(c, createdBy, [], 'LABEL'), state, t0);
  }

  private ctx(image: ImageRecord | undefined, state: StageState): StepContext {
    return { engine: this.engine, image, state, sink: this.sink, when: this.when, tmp: this.tmp };
  }

  /** Look the step up in the cache, or make it and record it. */
  private async cached(image: ImageRecord | undefined, createdBy: string, extra: string, make: (c: StepContext) => Promise<ImageRecord>, state: StageState, t0: number): Promise<ImageRecord> {
    const parent = image?.id ?? '';
    const k = key(parent, createdBy, extra, JSON.stringify(state.config));
    if (!this.req.noCache) {
      const hit = this.cache.lookup(k);
      const img = hit ? this.engine.images.record(hit) : undefined;
      if (img) {
        this.sink({ type: 'cached' });
        this.sink({ type: 'image', id: img.id, ms: Date.now() - t0 });
        return img;
      }
    }
    const img = await make(this.ctx(image, state));
    this.cache.put(k, img.id, parent, nowIso());
    this.sink({ type: 'image', id: img.id, ms: Date.now() - t0 });
    return img;
  }

  private async instr(all: PlannedStage[], s: PlannedStage, i: Instr, image: ImageRecord | undefined, state: StageState, buildArgs: Map<string, string>, counted: boolean): Promise<ImageRecord> {
    const t0 = counted ? this.announce(i.text) : Date.now();
    if (i.keyword === 'ARG') for (const p of i.props ?? []) this.usedArgs.add(p.name);
    let out: ImageRecord;
    switch (i.keyword) {
      case 'RUN':
        out = await this.runInstr(image, state, i, t0);
        break;
      case 'COPY':
      case 'ADD':
        out = await this.copy(all, s, image, state, i, t0);
        break;
      case 'WORKDIR':
        out = await this.workdir(image, state, i, t0);
        break;
      default: {
        const createdBy = applyConfigInstr(state, i, buildArgs);
        out = await this.cached(image, createdBy, '', async (c) => commitStep(c, createdBy, [], i.keyword), state, t0);
      }
    }
    return out;
  }

  private async runInstr(image: ImageRecord | undefined, state: StageState, i: Instr, t0: number): Promise<ImageRecord> {
    const argv = runArgv(i, shellOf(state));
    for (const f of i.flags) throw lineError(i.line, `RUN --${f.name}: not supported by hull build (BuildKit's RUN flags: mounts, network, security)`);
    const argEnv = runArgEnv(state);
    const createdBy = runCreatedBy(argv, argEnv);
    const isolation = this.req.isolation ?? 'container';
    return this.cached(image, createdBy, `wall=${isolation}`, (c) => runStep(c, i, argv, argEnv, createdBy, { isolation, memoryBytes: this.req.memoryBytes, network: this.req.network, signal: this.req.signal }), state, t0);
  }

  private async workdir(image: ImageRecord | undefined, state: StageState, i: Instr, t0: number): Promise<ImageRecord> {
    const w = expandWord(i.args.trim(), varsOf(state), { escape: state.escape, what: `Dockerfile line ${i.line}` });
    const dir = path.posix.normalize(path.posix.isAbsolute(w) ? w : path.posix.join(state.config.WorkingDir || '/', w));
    state.config.WorkingDir = dir;
    const createdBy = nop(state, `WORKDIR ${dir}`);
    const c = this.ctx(image, state);
    if (dir === '/' || (await dirExists(c, dir))) return this.cached(image, createdBy, '', async (cc) => commitStep(cc, createdBy, [], 'WORKDIR'), state, t0);
    return this.cached(image, createdBy, 'mkdir', async (cc) => {
      return hostLayerStep(cc, createdBy, `WORKDIR at Dockerfile line ${i.line}`, async (upper, lowers) => {
        const st = new Stager(upper, lowers, { uid: 0, gid: 0 }, this.when);
        st.dir(dir);
        st.finish();
      });
    }, state, t0);
  }

  /** The root file system of an image as a plain directory tree (COPY --from), made once per build. */
  private async rootOf(img: ImageRecord, what: string): Promise<SourceTree> {
    let dir = this.flattened.get(img.id);
    if (!dir) {
      const lowers = await this.engine.images.lowerDirs(img);
      if (lowers.length === 1) dir = lowers[0]!;
      else {
        dir = stagingDir(this.tmp);
        const { flattenLayers } = await import('./flatten.js');
        await flattenLayers(lowers, dir);
      }
      this.flattened.set(img.id, dir);
    }
    return new SourceTree(dir, [], what);
  }

  private async copy(all: PlannedStage[], s: PlannedStage, image: ImageRecord | undefined, state: StageState, i: Instr, t0: number): Promise<ImageRecord> {
    const add = i.keyword === 'ADD';
    const what = `${i.keyword} at Dockerfile line ${i.line}`;
    const vars = varsOf(state);
    const flags = new Map<string, string>();
    for (const f of i.flags) {
      if (!['chown', 'chmod', ...(add ? [] : ['from']), 'link'].includes(f.name)) throw lineError(i.line, `${i.keyword}: unknown flag --${f.name}`);
      flags.set(f.name, expandWord(f.value ?? '', vars, { escape: state.escape, what }));
    }
    const words = i.json ?? expandWords(i.args, vars, { escape: state.escape, what });
    let tree = this.req.context;
    let sources: string[];
    let dest: string;
    let heredocDir: string | undefined;
    if (i.heredocs.length > 0) {
      // COPY <<EOF /dest: each heredoc is a file named after its delimiter
      heredocDir = stagingDir(this.tmp);
      for (const h of i.heredocs) fs.writeFileSync(path.join(heredocDir, h.name), h.expand ? expandWord(h.content, vars, { escape: state.escape, what, quotes: false }) : h.content, { mode: 0o644 });
      tree = new SourceTree(heredocDir, [], 'the heredoc');
      sources = i.heredocs.map((h) => h.name);
      dest = words.filter((w) => !w.startsWith('<<'))[0] ?? '';
    } else {
      if (words.length < 2) throw lineError(i.line, `${i.keyword} requires at least two arguments, but only ${words.length} provided`);
      sources = words.slice(0, -1);
      dest = words[words.length - 1]!;
    }
    try {
      const from = flags.get('from');
      if (from) {
        const dep = stageByRef(all, from, s.index);
        let src: ImageRecord | undefined;
        if (dep) {
          if (!this.stageImages.has(dep.index)) throw lineError(i.line, `COPY --from=${from}: stage ${from} was not built`);
          src = this.stageImages.get(dep.index);
          if (!src) throw lineError(i.line, `COPY --from=${from}: that stage is FROM scratch with no files`);
        } else {
          if (/^\d+$/.test(from)) throw lineError(i.line, `COPY --from=${from}: invalid stage index (only earlier stages can be named)`);
          src = this.engine.images.tryResolve(from);
          if (!src) {
            const { pull } = await import('../registry/pull.js');
            src = await pull(this.engine.root, from, { unpack: true });
          }
        }
        tree = await this.rootOf(src, `stage ${from}`);
      }
      const req: CopyRequest = { sources, dest, workdir: state.config.WorkingDir || '/', chown: flags.get('chown'), chmod: flags.get('chmod'), add, keepOwners: !!from, what };
      const chmod = req.chmod ? parseChmod(req.chmod, what) : undefined;
      const sel = selectSources(tree, req);
      const fl = [...flags].filter(([k]) => k !== 'link').map(([k, v]) => `--${k}=${v} `).join('');
      const createdBy = nop(state, `${i.keyword} ${fl}${sel.kind}:${sel.hash} in ${sel.dest} `);
      return await this.cached(image, createdBy, '', async (c) =>
        hostLayerStep(c, createdBy, what, async (upper, lowers) => {
          const owner = req.chown ? chownIds(req.chown, new LayeredRoot(lowers), what) : undefined;
          await stageCopy(tree, sel, req, { upper, lowerDirs: lowers, owner, chmod, when: this.when, tmp: this.tmp });
        }), state, t0);
    } finally {
      if (heredocDir) fs.rmSync(heredocDir, { recursive: true, force: true });
    }
  }
}

/** Build an image from a Dockerfile and a context; progress goes to `sink`. */
export async function build(engine: Engine, req: BuildRequest, sink: Sink): Promise<BuildResult> {
  return new Build(engine, req, sink).run();
}
