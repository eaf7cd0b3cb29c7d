import { invalid } from '../errors.js';

/** One flag of a command, docker-style: `--name VALUE`, `--name=VALUE`, `-n VALUE`, `-nVALUE`, `-it`. */
export interface FlagSpec {
  name: string;
  short?: string;
  /** bool: a switch (`--rm`, `--rm=false`); string: last one wins; list: repeatable. */
  type: 'bool' | 'string' | 'list';
  help: string;
  /** Placeholder shown in --help, e.g. 'bytes'. */
  value?: string;
  hidden?: boolean;
}

export interface Parsed {
  flags: Map<string, string | boolean | string[]>;
  args: string[];
}

export interface ParseOptions {
  /** Stop at the first positional (run IMAGE CMD..., exec CTR CMD...): the rest is the command. */
  stopAtPositional?: boolean;
}

/** Parse argv against `specs`. Unknown flags and missing values are INVALID_ARGUMENT errors naming the flag. */
export function parseArgs(argv: string[], specs: FlagSpec[], opts: ParseOptions = {}): Parsed {
  const byLong = new Map<string, FlagSpec>();
  const byShort = new Map<string, FlagSpec>();
  for (const s of specs) {
    byLong.set(s.name, s);
    if (s.short) byShort.set(s.short, s);
  }
  const flags = new Map<string, string | boolean | string[]>();
  const args: string[] = [];
  const set = (spec: FlagSpec, value: string | boolean) => {
    if (spec.type === 'list') {
      const cur = (flags.get(spec.name) as string[] | undefined) ?? [];
      cur.push(String(value));
      flags.set(spec.name, cur);
    } else if (spec.type === 'bool') {
      if (typeof value === 'string') {
        if (!['true', 'false', '1', '0'].includes(value)) throw invalid(`invalid argument ${JSON.stringify(value)} for "--${spec.name}" flag: expected true or false`);
        flags.set(spec.name, value === 'true' || value === '1');
      } else flags.set(spec.name, value);
    } else flags.set(spec.name, String(value));
  };
  let i = 0;
  while (i < argv.length) {
    const a = argv[i]!;
    if (a === '--') {
      args.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith('--') && a.length > 2) {
      const eq = a.indexOf('=');
      const name = eq >= 0 ? a.slice(2, eq) : a.slice(2);
      const spec = byLong.get(name);
      if (!spec) throw invalid(`unknown flag: --${name}`);
      if (spec.type === 'bool') set(spec, eq >= 0 ? a.slice(eq + 1) : true);
      else if (eq >= 0) set(spec, a.slice(eq + 1));
      else {
        if (i + 1 >= argv.length) throw invalid(`flag needs an argument: --${name}`);
        set(spec, argv[++i]!);
      }
      i++;
      continue;
    }
    if (a.startsWith('-') && a.length > 1) {
      // A cluster of short flags: -it, -dit, -p8080, -e=FOO
      for (let j = 1; j < a.length; j++) {
        const ch = a[j]!;
        const spec = byShort.get(ch);
        if (!spec) throw invalid(`unknown shorthand flag: '${ch}' in ${a}`);
        if (spec.type === 'bool') {
          if (a[j + 1] === '=') {
            set(spec, a.slice(j + 2));
            break;
          }
          set(spec, true);
          continue;
        }
        let v = a.slice(j + 1);
        if (v.startsWith('=')) v = v.slice(1);
        if (v === '') {
          if (i + 1 >= argv.length) throw invalid(`flag needs an argument: '${ch}' in -${ch}`);
          v = argv[++i]!;
        }
        set(spec, v);
        break;
      }
      i++;
      continue;
    }
    if (opts.stopAtPositional) {
      args.push(...argv.slice(i));
      break;
    }
    args.push(a);
    i++;
  }
  return { flags, args };
}

export function flagBool(p: Parsed, name: string): boolean {
  return p.flags.get(name) === true;
}

export function flagStr(p: Parsed, name: string): string | undefined {
  const v = p.flags.get(name);
  return typeof v === 'string' ? v : undefined;
}

export function flagList(p: Parsed, name: string): string[] {
  const v = p.flags.get(name);
  return Array.isArray(v) ? v : [];
}

/** Render the flag table for --help. */
export function flagHelp(specs: FlagSpec[]): string {
  const rows = specs
    .filter((s) => !s.hidden)
    .map((s) => {
      const left = `${s.short ? `-${s.short}, ` : '    '}--${s.name}${s.type === 'bool' ? '' : ` ${s.value ?? (s.type === 'list' ? 'list' : 'string')}`}`;
      return [left, s.help] as const;
    });
  const w = Math.max(0, ...rows.map((r) => r[0].length));
  return rows.map(([l, h]) => `  ${l.padEnd(w)}   ${h}`).join('\n');
}
