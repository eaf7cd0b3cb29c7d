/**
 * From a parsed Dockerfile to a build plan (pure): instructions checked (unknown ones, and
 * those that need a stage, refused naming their line), stages split at FROM, their base
 * expanded with the global ARGs (those before the first FROM, overridden by --build-arg),
 * stage names and --target resolved, and the stages the target needs picked in order (a stage
 * no one needs is skipped, as BuildKit does).
 */
import { invalid } from '../errors.js';
import type { Dockerfile, Instr } from './dockerfile.js';
import { expandWord, type Vars } from './expand.js';

/** Instructions of docker's builder; MAINTAINER is deprecated but still taken. */
export const KNOWN = new Set(['FROM', 'RUN', 'CMD', 'ENTRYPOINT', 'ENV', 'ARG', 'LABEL', 'EXPOSE', 'WORKDIR', 'USER', 'VOLUME', 'STOPSIGNAL', 'HEALTHCHECK', 'SHELL', 'ONBUILD', 'COPY', 'ADD', 'MAINTAINER']);

export interface PlannedStage {
  /** Position in the Dockerfile (0-based): what `COPY --from=N` names. */
  index: number;
  /** `AS name`, lower-cased (docker compares stage names case-insensitively). */
  name?: string;
  /** The FROM instruction. */
  from: Instr;
  /** The base as expanded: an image reference, 'scratch', or another stage (by index). */
  base: { kind: 'scratch' } | { kind: 'image'; ref: string } | { kind: 'stage'; index: number };
  /** FROM --platform, expanded. */
  platform?: string;
  /** Everything after FROM, in order. */
  instrs: Instr[];
}

export interface BuildPlan {
  escape: string;
  /** ARG instructions before the first FROM. */
  globalArgs: Instr[];
  /** Values of the global ARGs (defaults overridden by --build-arg). */
  globalVars: Map<string, string>;
  /** Every stage of the file. */
  all: PlannedStage[];
  /** The stages to build, dependencies first; the last one is the image. */
  stages: PlannedStage[];
  /** Instructions that will run: every FROM and instruction of the stages to build. */
  totalSteps: number;
}

export const lineError = (line: number, msg: string) => invalid(`Dockerfile line ${line}: ${msg}`);

/** The value an ARG gets: --build-arg wins, then its default (expanded), then inherited. */
export function argValue(prop: { name: string; raw: string | null }, vars: Vars, buildArgs: ReadonlyMap<string, string>, escape: string, line: number): string | undefined {
  if (buildArgs.has(prop.name)) return buildArgs.get(prop.name)!;
  if (prop.raw !== null) return expandWord(prop.raw, vars, { escape, what: `Dockerfile line ${line}` });
  return vars.get(prop.name);
}

/** Check instructions docker refuses before running anything. */
function check(i: Instr, inOnbuild = false): void {
  if (!KNOWN.has(i.keyword)) throw lineError(i.line, `unknown instruction: ${i.keyword}`);
  if (inOnbuild && (i.keyword === 'ONBUILD' || i.keyword === 'FROM' || i.keyword === 'MAINTAINER')) {
    throw lineError(i.line, `${i.keyword} isn't allowed as an ONBUILD trigger`);
  }
  if (i.keyword === 'ONBUILD') {
    if (!i.trigger) throw lineError(i.line, 'ONBUILD needs an instruction');
    check(i.trigger, true);
  }
  const needsArgs = !['HEALTHCHECK'].includes(i.keyword);
  if (needsArgs && i.args.trim() === '' && i.heredocs.length === 0) throw lineError(i.line, `${i.keyword} requires at least one argument`);
}

export interface PlanOptions {
  buildArgs?: ReadonlyMap<string, string>;
  /** --target: the stage (by name) that ends the build. Default: the last stage. */
  target?: string;
}

export function planBuild(df: Dockerfile, opts: PlanOptions = {}): BuildPlan {
  const buildArgs = opts.buildArgs ?? new Map<string, string>();
  const globalArgs: Instr[] = [];
  const globalVars = new Map<string, string>();
  const all: PlannedStage[] = [];
  for (const i of df.instrs) {
    check(i);
    if (i.keyword === 'FROM') {
      const flags = new Map(i.flags.map((f) => [f.name, f.value]));
      for (const f of flags.keys()) if (f !== 'platform') throw lineError(i.line, `FROM: unknown flag --${f}`);
      const w = i.words;
      if (w.length !== 1 && !(w.length === 3 && w[1]!.toLowerCase() === 'as')) throw lineError(i.line, 'FROM requires either one or three arguments (FROM image [AS name])');
      const what = `Dockerfile line ${i.line}`;
      const ref = expandWord(w[0]!, globalVars, { escape: df.escape, what });
      if (ref === '') throw lineError(i.line, `FROM: base name (${w[0]}) should not be blank`);
      const name = w.length === 3 ? w[2]!.toLowerCase() : undefined;
      if (name !== undefined && !/^[a-z][a-z0-9._-]*$/.test(name)) throw lineError(i.line, `invalid name for build stage: "${w[2]}", name can't start with a number or contain symbols`);
      if (name !== undefined && all.some((s) => s.name === name)) throw lineError(i.line, `duplicate stage name "${name}"`);
      const earlier = all.find((s) => s.name === ref.toLowerCase());
      const base: PlannedStage['base'] = ref.toLowerCase() === 'scratch' ? { kind: 'scratch' } : earlier ? { kind: 'stage', index: earlier.index } : { kind: 'image', ref };
      const platform = flags.get('platform');
      all.push({ index: all.length, name, from: i, base, platform: platform ? expandWord(platform, globalVars, { escape: df.escape, what }) : undefined, instrs: [] });
      continue;
    }
    const cur = all[all.length - 1];
    if (!cur) {
      if (i.keyword !== 'ARG') throw lineError(i.line, `no build stage in current context: ${i.keyword} before the first FROM`);
      globalArgs.push(i);
      for (const p of i.props ?? []) {
        const v = argValue(p, globalVars, buildArgs, df.escape, i.line);
        if (v !== undefined) globalVars.set(p.name, v);
      }
      continue;
    }
    cur.instrs.push(i);
  }
  if (all.length === 0) throw invalid('Dockerfile: no FROM instruction (a Dockerfile must start with FROM, after optional ARGs)');
  let target = all[all.length - 1]!;
  if (opts.target !== undefined) {
    const t = all.find((s) => s.name === opts.target!.toLowerCase());
    if (!t) throw invalid(`failed to reach build target ${opts.target} in Dockerfile`);
    target = t;
  }
  // the stages the target needs: its base chain and every COPY --from naming a stage
  const need = new Set<number>();
  const visit = (s: PlannedStage) => {
    if (need.has(s.index)) return;
    need.add(s.index);
    if (s.base.kind === 'stage') visit(all[s.base.index]!);
    for (const i of s.instrs) {
      const from = (i.keyword === 'COPY' || i.keyword === 'ADD') ? i.flags.find((f) => f.name === 'from')?.value : undefined;
      if (!from) continue;
      const dep = stageByRef(all, from, s.index);
      if (dep) visit(dep);
    }
  };
  visit(target);
  const stages = all.filter((s) => need.has(s.index) && s.index <= target.index);
  return { escape: df.escape, globalArgs, globalVars, all, stages, totalSteps: stages.reduce((n, s) => n + 1 + s.instrs.length, 0) };
}

/** The earlier stage `--from=X` names (a name or a number), or undefined (then X is an image). */
export function stageByRef(all: PlannedStage[], ref: string, before: number): PlannedStage | undefined {
  if (/^\d+$/.test(ref)) {
    const n = Number(ref);
    return n < before ? all[n] : undefined;
  }
  return all.find((s) => s.name === ref.toLowerCase() && s.index < before);
}
