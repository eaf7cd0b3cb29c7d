/**
 * The Dockerfile as plain data, read by dockerfile-ast (the parser of the Dockerfile language
 * server): parser directives (escape), instructions with their line, flags, exec-form JSON,
 * key=value properties, heredocs and ONBUILD triggers. No semantics here: plan.ts and the
 * steps give the instructions their meaning.
 */
import { DockerfileParser } from 'dockerfile-ast';
import type { Instruction } from 'dockerfile-ast';
import { invalid } from '../errors.js';

export interface Heredoc {
  name: string;
  /** The body, each line ending in a newline (tabs stripped for `<<-`). */
  content: string;
  /** Unquoted delimiter: variables in the body are expanded (by the shell for RUN). */
  expand: boolean;
}

export interface Instr {
  /** 1-based line of the keyword. */
  line: number;
  /** Upper case: 'RUN', 'COPY', ... */
  keyword: string;
  /** The instruction as written, continuations joined and comment lines dropped (first line only for heredocs). */
  text: string;
  /** Arguments after the keyword and its flags, continuations joined (first line only for heredocs). */
  args: string;
  /** Arguments split at white space (flags excluded; quotes not interpreted). */
  words: string[];
  /** `--name=value` flags before the arguments (value null for a bare `--name`). */
  flags: { name: string; value: string | null }[];
  /** Exec form: the arguments parsed as a JSON array of strings. */
  json?: string[];
  /** key=value pairs (ENV, LABEL, ARG): the value as written, quotes and escapes still in it. */
  props?: { name: string; raw: string | null }[];
  heredocs: Heredoc[];
  /** ONBUILD's instruction. */
  trigger?: Instr;
}

export interface Dockerfile {
  /** The escape character (`# escape=` directive; default backslash). */
  escape: string;
  instrs: Instr[];
}

/** Join continuation lines the way docker does: comment and empty lines inside are dropped. */
export function joinContinuations(raw: string, esc: string): string {
  const lines = raw.split('\n');
  let out = '';
  for (let i = 0; i < lines.length; i++) {
    let l = lines[i]!.replace(/\r$/, '');
    if (i > 0 && (/^\s*#/.test(l) || l.trim() === '')) continue;
    const t = l.replace(/\s+$/, '');
    if (t.endsWith(esc) && i < lines.length - 1) {
      out += t.slice(0, -esc.length);
      continue;
    }
    l = i === lines.length - 1 ? l : t;
    out += l;
    break;
  }
  return out;
}

/** A JSON array of strings, or undefined (then the shell form applies, as in docker). */
export function execForm(args: string): string[] | undefined {
  const t = args.trim();
  if (!t.startsWith('[')) return undefined;
  try {
    const v = JSON.parse(t) as unknown;
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  } catch {
    /* not JSON: shell form */
  }
  return undefined;
}

type AnyInstr = Instruction & {
  getFlags?: () => { getName(): string; getValue(): string | null }[];
  getProperties?: () => { getName(): string; getUnescapedValue(): string | null }[];
  getHeredocs?: () => { getName(): string; getContentRange(): { start: { line: number }; end: { line: number } } | null }[];
  getTriggerInstruction?: () => Instruction | null;
};

function convert(i: AnyInstr, lines: string[], esc: string): Instr {
  const heredocs: Heredoc[] = [];
  const startLine = i.getRange().start.line;
  const raw = i.getRawArgumentsContent() ?? '';
  const hds = i.getHeredocs ? i.getHeredocs() : [];
  let argsRaw = raw;
  if (hds.length > 0) {
    argsRaw = raw.split('\n')[0]!;
    const first = lines[startLine] ?? '';
    for (const h of hds) {
      const r = h.getContentRange();
      const name = h.getName();
      const op = new RegExp(`<<(-?)(["']?)${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\2`).exec(first);
      const strip = op?.[1] === '-';
      const body = r ? lines.slice(r.start.line, r.end.line + 1).map((l) => `${strip ? l.replace(/^\t+/, '') : l}\n`).join('') : '';
      heredocs.push({ name, content: body, expand: !op?.[2] });
    }
  }
  const args = hds.length > 0 ? argsRaw.trim() : joinContinuations(argsRaw, esc).trim();
  // the flags are part of the raw arguments: cut them off the front
  const flags = i.getFlags ? i.getFlags().map((f) => ({ name: f.getName(), value: f.getValue() })) : [];
  let body = args;
  for (let n = 0; n < flags.length; n++) body = body.replace(/^--\S+\s*/, '');
  const keyword = i.getKeyword().toUpperCase();
  const out: Instr = {
    line: startLine + 1,
    keyword,
    text: `${keyword} ${args}`.trim(),
    args: body,
    words: i.getArguments().map((a) => a.getValue()),
    flags,
    heredocs,
  };
  const json = hds.length === 0 ? execForm(body) : undefined;
  if (json) out.json = json;
  if (i.getProperties && ['ENV', 'LABEL', 'ARG'].includes(keyword)) out.props = i.getProperties().map((p) => ({ name: p.getName(), raw: p.getUnescapedValue() }));
  const t = i.getTriggerInstruction?.();
  if (t) out.trigger = convert(t as AnyInstr, lines, esc);
  return out;
}

/** Parse a Dockerfile's text. Only the escape directive is checked here. */
export function parseDockerfile(text: string, what = 'Dockerfile'): Dockerfile {
  const df = DockerfileParser.parse(text);
  const escape = df.getEscapeCharacter();
  if (escape !== '\\' && escape !== '`') throw invalid(`${what}: invalid escape token '${escape}' does not match ` + '` or \\');
  const lines = text.split('\n');
  return { escape, instrs: df.getInstructions().map((i) => convert(i as AnyInstr, lines, escape)) };
}
