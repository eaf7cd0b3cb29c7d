/**
 * The instructions that change only the image config (pure): ENV, LABEL, ARG, EXPOSE, USER,
 * VOLUME, STOPSIGNAL, HEALTHCHECK, SHELL, CMD, ENTRYPOINT, ONBUILD, MAINTAINER, and the config
 * half of WORKDIR. Each takes the stage's state and returns the history line docker's classic
 * builder records (`/bin/sh -c #(nop)  ENV A=1`), with the values as expanded.
 */
import type { ImageRunConfig } from '../oci/types.js';
import type { Instr } from './dockerfile.js';
import { expandWord, expandWords } from './expand.js';
import { argValue, lineError } from './plan.js';

/** docker's Healthcheck in an image config (durations in nanoseconds). */
export type Healthcheck = NonNullable<ImageRunConfig['Healthcheck']>;

/** The image config fields a build writes (docker's container config). */
export type BuildRunConfig = ImageRunConfig;

export interface StageState {
  config: BuildRunConfig;
  /** ARGs declared in this stage, with their values (unset ARGs are absent). */
  args: Map<string, string>;
  /** Names declared by ARG in this stage (set or not). */
  declared: Set<string>;
  escape: string;
  /** Whether CMD was set in this stage (ENTRYPOINT clears an inherited CMD only). */
  cmdSet: boolean;
  author?: string;
}

export const DEFAULT_SHELL = ['/bin/sh', '-c'];

export function shellOf(s: StageState): string[] {
  return s.config.Shell && s.config.Shell.length > 0 ? s.config.Shell : DEFAULT_SHELL;
}

/** Variables visible to an instruction: the stage's ARGs, then the config's ENV (ENV wins). */
export function varsOf(s: StageState): Map<string, string> {
  const m = new Map(s.args);
  for (const kv of s.config.Env ?? []) {
    const i = kv.indexOf('=');
    m.set(i < 0 ? kv : kv.slice(0, i), i < 0 ? '' : kv.slice(i + 1));
  }
  return m;
}

/** `#(nop)` history line of a config-only instruction. */
export function nop(s: StageState, text: string): string {
  return `${shellOf(s).join(' ')} #(nop)  ${text}`;
}

function setEnv(c: BuildRunConfig, key: string, value: string): void {
  const env = (c.Env ?? []).filter((kv) => kv.split('=')[0] !== key);
  env.push(`${key}=${value}`);
  c.Env = env;
}

/** Go duration (`30s`, `1m30s`, `500ms`) in nanoseconds. */
export function parseDuration(v: string, line: number, flag: string): number {
  const units: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let pos = 0;
  if (v === '0') return 0;
  for (let m = re.exec(v); m; m = re.exec(v)) {
    total += Number(m[1]) * units[m[2]!]!;
    pos = re.lastIndex;
  }
  if (pos !== v.length || v === '') throw lineError(line, `HEALTHCHECK --${flag}: invalid duration ${JSON.stringify(v)}`);
  return Math.round(total);
}

/** Argv of CMD / ENTRYPOINT / HEALTHCHECK CMD: exec form as written, shell form through SHELL. */
function commandOf(s: StageState, i: { json?: string[]; args: string }): string[] {
  return i.json ?? [...shellOf(s), i.args];
}

/**
 * Apply a config-only instruction to `s` (in place); returns the history line. Throws
 * INVALID_ARGUMENT naming the Dockerfile line for bad arguments.
 */
export function applyConfigInstr(s: StageState, i: Instr, buildArgs: ReadonlyMap<string, string>): string {
  const c = s.config;
  const what = `Dockerfile line ${i.line}`;
  const vars = () => varsOf(s);
  const word = (w: string) => expandWord(w, vars(), { escape: s.escape, what });
  switch (i.keyword) {
    case 'ENV': {
      const parts: string[] = [];
      for (const p of i.props ?? []) {
        if (p.raw === null) throw lineError(i.line, `ENV ${p.name}: needs a value (ENV ${p.name}=value)`);
        const v = word(p.raw);
        setEnv(c, p.name, v);
        parts.push(`${p.name}=${v}`);
      }
      if (parts.length === 0) throw lineError(i.line, 'ENV requires at least one argument');
      return nop(s, `ENV ${parts.join(' ')}`);
    }
    case 'LABEL': {
      const parts: string[] = [];
      c.Labels = { ...(c.Labels ?? {}) };
      for (const p of i.props ?? []) {
        if (p.raw === null) throw lineError(i.line, `LABEL ${p.name}: needs a value (LABEL key=value)`);
        const v = word(p.raw);
        c.Labels[word(p.name)] = v;
        parts.push(`${word(p.name)}=${v}`);
      }
      return nop(s, `LABEL ${parts.join(' ')}`);
    }
    case 'ARG': {
      const parts: string[] = [];
      for (const p of i.props ?? []) {
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(p.name)) throw lineError(i.line, `ARG: invalid name ${JSON.stringify(p.name)}`);
        s.declared.add(p.name);
        const v = argValue(p, vars(), buildArgs, s.escape, i.line);
        if (v !== undefined) s.args.set(p.name, v);
        parts.push(p.raw === null ? p.name : `${p.name}=${p.raw}`);
      }
      return nop(s, `ARG ${parts.join(' ')}`);
    }
    case 'EXPOSE': {
      const ports = { ...(c.ExposedPorts ?? {}) };
      const list: string[] = [];
      for (const w of i.words) {
        const v = word(w);
        const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(v);
        if (!m) throw lineError(i.line, `EXPOSE: invalid port ${JSON.stringify(v)} (PORT[/PROTO], PORT-PORT[/PROTO])`);
        const lo = Number(m[1]);
        const hi = m[2] ? Number(m[2]) : lo;
        if (lo < 1 || hi > 65535 || hi < lo) throw lineError(i.line, `EXPOSE: invalid port range ${JSON.stringify(v)}`);
        for (let p = lo; p <= hi; p++) {
          const k = `${p}/${(m[3] ?? 'tcp').toLowerCase()}`;
          ports[k] = {};
          list.push(k);
        }
      }
      c.ExposedPorts = ports;
      return nop(s, `EXPOSE ${list.join(' ')}`);
    }
    case 'USER':
      c.User = word(i.args.trim());
      return nop(s, `USER ${c.User}`);
    case 'VOLUME': {
      const vols = i.json ?? expandWords(i.args, vars(), { escape: s.escape, what });
      if (vols.length === 0 || vols.some((v) => v.trim() === '')) throw lineError(i.line, 'VOLUME specified can not be an empty string');
      c.Volumes = { ...(c.Volumes ?? {}) };
      for (const v of vols) c.Volumes[v] = {};
      return nop(s, `VOLUME [${vols.join(' ')}]`);
    }
    case 'STOPSIGNAL': {
      const sig = word(i.args.trim());
      if (!/^(SIG)?[A-Z0-9+-]+$|^\d+$/i.test(sig)) throw lineError(i.line, `STOPSIGNAL: invalid signal ${JSON.stringify(sig)}`);
      c.StopSignal = sig;
      return nop(s, `STOPSIGNAL ${sig}`);
    }
    case 'HEALTHCHECK': {
      const first = i.args.trim().split(/\s+/)[0]?.toUpperCase();
      if (first === 'NONE') {
        if (i.flags.length > 0 || i.args.trim().split(/\s+/).length > 1) throw lineError(i.line, 'HEALTHCHECK NONE takes no other arguments');
        c.Healthcheck = { Test: ['NONE'] };
        return nop(s, 'HEALTHCHECK NONE');
      }
      if (first !== 'CMD') throw lineError(i.line, 'HEALTHCHECK: expected CMD or NONE');
      const rest = i.args.trim().slice(3).trim();
      if (rest === '') throw lineError(i.line, 'HEALTHCHECK CMD needs a command');
      const json = i.json ?? (rest.startsWith('[') ? (() => { try { const v = JSON.parse(rest) as unknown; return Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : undefined; } catch { return undefined; } })() : undefined);
      const hc: Healthcheck = { Test: json ? ['CMD', ...json] : ['CMD-SHELL', rest] };
      for (const f of i.flags) {
        const v = f.value ?? '';
        if (f.name === 'interval') hc.Interval = parseDuration(v, i.line, f.name);
        else if (f.name === 'timeout') hc.Timeout = parseDuration(v, i.line, f.name);
        else if (f.name === 'start-period') hc.StartPeriod = parseDuration(v, i.line, f.name);
        else if (f.name === 'start-interval') hc.StartInterval = parseDuration(v, i.line, f.name);
        else if (f.name === 'retries') {
          if (!/^\d+$/.test(v)) throw lineError(i.line, `HEALTHCHECK --retries: invalid number ${JSON.stringify(v)}`);
          hc.Retries = Number(v);
        } else throw lineError(i.line, `HEALTHCHECK: unknown flag --${f.name}`);
      }
      c.Healthcheck = hc;
      return nop(s, `HEALTHCHECK &{${JSON.stringify(hc.Test)}}`);
    }
    case 'SHELL': {
      if (!i.json || i.json.length === 0) throw lineError(i.line, 'SHELL requires the arguments to be in JSON form (SHELL ["executable", "parameters"])');
      c.Shell = i.json;
      return nop(s, `SHELL ${JSON.stringify(i.json)}`);
    }
    case 'CMD':
      c.Cmd = commandOf(s, i);
      s.cmdSet = true;
      return nop(s, `CMD ${JSON.stringify(c.Cmd)}`);
    case 'ENTRYPOINT':
      c.Entrypoint = commandOf(s, i);
      if (!s.cmdSet) c.Cmd = null;
      return nop(s, `ENTRYPOINT ${JSON.stringify(c.Entrypoint)}`);
    case 'ONBUILD': {
      const t = i.trigger!;
      c.OnBuild = [...(c.OnBuild ?? []), t.text];
      return nop(s, `ONBUILD ${t.text}`);
    }
    case 'MAINTAINER':
      s.author = word(i.args.trim());
      return nop(s, `MAINTAINER ${s.author}`);
    default:
      throw lineError(i.line, `${i.keyword} is not a config instruction`);
  }
}
