/**
 * `--change` for import: Dockerfile instructions applied to an image's run config (pure).
 * Supported as Docker supports them: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME,
 * WORKDIR, STOPSIGNAL. Exec form (JSON array) and shell form (wrapped in /bin/sh -c).
 */
import path from 'node:path';
import { invalid } from '../errors.js';
import type { ImageRunConfig } from '../oci/types.js';

export const CHANGE_INSTRUCTIONS = ['CMD', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'LABEL', 'USER', 'VOLUME', 'WORKDIR', 'STOPSIGNAL'] as const;

/** Split on unquoted whitespace, removing quotes and backslash escapes (Dockerfile words). */
export function splitWords(s: string, what: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"' && i + 1 < s.length && ['"', '\\', '$'].includes(s[i + 1]!)) cur += s[++i];
      else cur += c;
      continue;
    }
    if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < s.length) {
      cur += s[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (quote) throw invalid(`${what}: unterminated ${quote} quote`);
  if (inWord) out.push(cur);
  return out;
}

/** `a=b c="d e"` pairs (ENV, LABEL); the legacy `KEY value words` form when `legacy`. */
export function parsePairs(rest: string, what: string, legacy: boolean): [string, string][] {
  const words = splitWords(rest, what);
  if (words.length === 0) throw invalid(`${what}: needs at least one argument`);
  if (!words[0]!.includes('=')) {
    if (!legacy) throw invalid(`${what}: ${JSON.stringify(words[0])} is not KEY=VALUE`);
    // ENV KEY value with spaces: everything after the first word, verbatim.
    const m = /^\s*\S+\s+([\s\S]*)$/.exec(rest);
    if (!m) throw invalid(`${what}: ENV KEY needs a value`);
    return [[words[0]!, m[1]!.trim()]];
  }
  return words.map((w) => {
    const eq = w.indexOf('=');
    if (eq <= 0) throw invalid(`${what}: ${JSON.stringify(w)} is not KEY=VALUE`);
    return [w.slice(0, eq), w.slice(eq + 1)];
  });
}

function jsonStrings(s: string): string[] | undefined {
  const t = s.trim();
  if (!t.startsWith('[')) return undefined;
  try {
    const v: unknown = JSON.parse(t);
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  } catch {
    /* shell form */
  }
  return undefined;
}

/** Exec form `["a","b"]` or shell form `a b` -> argv. */
export function parseCommand(rest: string, what: string): string[] {
  const t = rest.trim();
  const exec = jsonStrings(t);
  if (exec) return exec;
  if (t === '') throw invalid(`${what}: needs a command`);
  return ['/bin/sh', '-c', t];
}

/** Apply one `--change` line to `cfg` (mutated and returned). */
export function applyChange(cfg: ImageRunConfig, line: string): ImageRunConfig {
  const m = /^\s*([A-Za-z]+)(?:\s+([\s\S]*))?$/.exec(line);
  if (!m) throw invalid(`--change ${JSON.stringify(line)}: expected a Dockerfile instruction`);
  const instr = m[1]!.toUpperCase();
  const rest = (m[2] ?? '').trim();
  const what = `--change ${JSON.stringify(line)}`;
  switch (instr) {
    case 'CMD':
      cfg.Cmd = parseCommand(rest, what);
      break;
    case 'ENTRYPOINT':
      cfg.Entrypoint = parseCommand(rest, what);
      break;
    case 'ENV': {
      const env = [...(cfg.Env ?? [])];
      for (const [k, v] of parsePairs(rest, what, true)) {
        const i = env.findIndex((e) => e.split('=')[0] === k);
        if (i >= 0) env[i] = `${k}=${v}`;
        else env.push(`${k}=${v}`);
      }
      cfg.Env = env;
      break;
    }
    case 'LABEL': {
      const labels = { ...(cfg.Labels ?? {}) };
      for (const [k, v] of parsePairs(rest, what, false)) labels[k] = v;
      cfg.Labels = labels;
      break;
    }
    case 'EXPOSE': {
      const ports = { ...(cfg.ExposedPorts ?? {}) };
      for (const p of splitWords(rest, what)) {
        const pm = /^(\d{1,5})(?:-(\d{1,5}))?(?:\/(tcp|udp|sctp))?$/i.exec(p);
        if (!pm) throw invalid(`${what}: invalid port ${JSON.stringify(p)}`);
        const lo = Number(pm[1]);
        const hi = pm[2] ? Number(pm[2]) : lo;
        if (lo < 1 || hi > 65535 || hi < lo) throw invalid(`${what}: invalid port range ${JSON.stringify(p)}`);
        for (let n = lo; n <= hi; n++) ports[`${n}/${(pm[3] ?? 'tcp').toLowerCase()}`] = {};
      }
      cfg.ExposedPorts = ports;
      break;
    }
    case 'USER':
      if (rest === '') throw invalid(`${what}: USER needs a user`);
      cfg.User = rest;
      break;
    case 'WORKDIR': {
      if (rest === '') throw invalid(`${what}: WORKDIR needs a path`);
      const w = splitWords(rest, what).join(' ');
      cfg.WorkingDir = path.posix.resolve(cfg.WorkingDir || '/', w);
      break;
    }
    case 'VOLUME': {
      const vols = { ...(cfg.Volumes ?? {}) };
      const list = jsonStrings(rest) ?? splitWords(rest, what);
      if (list.length === 0) throw invalid(`${what}: VOLUME needs a path`);
      for (const v of list) {
        if (v === '') throw invalid(`${what}: empty volume path`);
        vols[v] = {};
      }
      cfg.Volumes = vols;
      break;
    }
    case 'STOPSIGNAL':
      if (!/^(SIG[A-Z0-9+-]+|[A-Z0-9+-]+|\d+)$/.test(rest)) throw invalid(`${what}: invalid signal ${JSON.stringify(rest)}`);
      cfg.StopSignal = rest;
      break;
    default:
      throw invalid(`${what}: ${instr} is not supported (use one of ${CHANGE_INSTRUCTIONS.join(', ')})`);
  }
  return cfg;
}
