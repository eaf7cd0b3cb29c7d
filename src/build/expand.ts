/**
 * Variable substitution in Dockerfile words, as docker's builder does it (the shell lexer of
 * buildkit's frontend/dockerfile/shell): quotes are removed, the escape character protects the
 * next character, and outside single quotes `$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR-word}`,
 * `${VAR:+word}`, `${VAR+word}`, `${VAR:?message}` and `${VAR?message}` are replaced. An unset
 * variable is empty. Pure: the variables come in as a map.
 *
 * Used for the instructions docker expands (FROM, ADD, COPY, ENV, ARG, LABEL, EXPOSE, USER,
 * WORKDIR, VOLUME, STOPSIGNAL, ONBUILD's own words are left for the trigger); RUN, CMD and
 * ENTRYPOINT are left to the shell of the image.
 */
import { invalid } from '../errors.js';

export type Vars = ReadonlyMap<string, string>;

const NAME_START = /[A-Za-z_]/;
const NAME_CHAR = /[A-Za-z0-9_]/;

class Lexer {
  private i = 0;
  /** Names of the variables the word used (for the build cache: docker keys RUN on the args it uses). */
  readonly used = new Set<string>();

  constructor(private readonly s: string, private readonly vars: Vars, private readonly esc: string, private readonly what: string, private readonly quotes = true) {}

  private peek(): string | undefined {
    return this.s[this.i];
  }
  private next(): string | undefined {
    return this.s[this.i++];
  }

  /** Words of the input; `split` breaks on unquoted white space (one word otherwise). */
  words(split: boolean): string[] {
    const out: string[] = [];
    let cur = '';
    let any = false;
    while (this.i < this.s.length) {
      const ch = this.peek()!;
      if (split && /\s/.test(ch)) {
        this.i++;
        if (any) out.push(cur);
        cur = '';
        any = false;
        continue;
      }
      cur += this.unit();
      any = true;
    }
    if (any || !split) out.push(cur);
    return out;
  }

  /** One unit: a quoted run, an escaped character, an expansion, or a plain character. */
  private unit(): string {
    const ch = this.next()!;
    if (ch === "'" && this.quotes) return this.single();
    if (ch === '"' && this.quotes) return this.double();
    if (ch === '$') return this.dollar();
    if (ch === this.esc) {
      const n = this.next();
      return n === undefined ? this.esc : n;
    }
    return ch;
  }

  private single(): string {
    const end = this.s.indexOf("'", this.i);
    if (end < 0) throw invalid(`${this.what}: unexpected end of statement while looking for matching single-quote`);
    const v = this.s.slice(this.i, end);
    this.i = end + 1;
    return v;
  }

  private double(): string {
    let out = '';
    for (;;) {
      const ch = this.next();
      if (ch === undefined) throw invalid(`${this.what}: unexpected end of statement while looking for matching double-quote`);
      if (ch === '"') return out;
      if (ch === '$') out += this.dollar();
      else if (ch === this.esc) {
        const n = this.peek();
        if (n === '"' || n === '$' || n === this.esc) {
          out += n;
          this.i++;
        } else out += ch;
      } else out += ch;
    }
  }

  /** After `$`. */
  private dollar(): string {
    const ch = this.peek();
    if (ch === '{') {
      this.i++;
      return this.braced();
    }
    if (ch === undefined || !NAME_START.test(ch)) return '$';
    let name = '';
    while (this.peek() !== undefined && NAME_CHAR.test(this.peek()!)) name += this.next();
    this.used.add(name);
    return this.vars.get(name) ?? '';
  }

  /** After `${`. */
  private braced(): string {
    let name = '';
    while (this.peek() !== undefined && NAME_CHAR.test(this.peek()!)) name += this.next();
    if (name === '') throw invalid(`${this.what}: bad substitution: \${ without a variable name`);
    this.used.add(name);
    const val = this.vars.get(name);
    let ch = this.next();
    if (ch === '}') return val ?? '';
    let colon = false;
    if (ch === ':') {
      colon = true;
      ch = this.next();
    }
    if (ch !== '-' && ch !== '+' && ch !== '?') throw invalid(`${this.what}: unsupported modifier (${ch ?? 'end'}) in substitution of \${${name}}`);
    const word = this.until('}');
    const set = colon ? val !== undefined && val !== '' : val !== undefined;
    if (ch === '-') return set ? val! : word;
    if (ch === '+') return set ? word : '';
    if (!set) throw invalid(`${this.what}: ${name}: ${word || 'is not allowed to be unset'}`);
    return val!;
  }

  /** Units up to (and consuming) `stop`, expanded. */
  private until(stop: string): string {
    let out = '';
    for (;;) {
      const ch = this.peek();
      if (ch === undefined) throw invalid(`${this.what}: syntax error: missing '${stop}'`);
      if (ch === stop) {
        this.i++;
        return out;
      }
      out += this.unit();
    }
  }
}

/**
 * Expand one word (quotes removed; white space kept). `quotes: false` leaves quotes as they are
 * (a heredoc body).
 */
export function expandWord(word: string, vars: Vars, opts: { escape?: string; what?: string; quotes?: boolean } = {}): string {
  return new Lexer(word, vars, opts.escape ?? '\\', opts.what ?? 'Dockerfile', opts.quotes ?? true).words(false)[0] ?? '';
}

/** Expand and split a string into words at unquoted white space. */
export function expandWords(s: string, vars: Vars, opts: { escape?: string; what?: string } = {}): string[] {
  return new Lexer(s, vars, opts.escape ?? '\\', opts.what ?? 'Dockerfile').words(true);
}

/** The variable names a word refers to (expanded against nothing). */
export function varsUsed(word: string, opts: { escape?: string } = {}): Set<string> {
  const l = new Lexer(word, new Map(), opts.escape ?? '\\', 'Dockerfile');
  try {
    l.words(false);
  } catch {
    /* a malformed word uses what it named before the error */
  }
  return l.used;
}
