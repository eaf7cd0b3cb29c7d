/**
 * WWW-Authenticate parsing (RFC 7235) as registries send it:
 *   Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"
 *   Basic realm="Registry Realm"
 * Pure: no I/O.
 */
export interface Challenge {
  /** Lower-cased scheme: 'bearer', 'basic'. */
  scheme: string;
  /** Parameters with lower-cased names. */
  params: Record<string, string>;
}

/** Parse one or more challenges; unparseable trailing text is ignored rather than guessed at. */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  if (header === undefined) return [];
  const headers = Array.isArray(header) ? header : [header];
  const out: Challenge[] = [];
  for (const h of headers) out.push(...parseOne(h));
  return out;
}

function parseOne(s: string): Challenge[] {
  const out: Challenge[] = [];
  let i = 0;
  const n = s.length;
  const skipWs = () => {
    while (i < n && (s[i] === ' ' || s[i] === '\t')) i++;
  };
  const token = () => {
    const start = i;
    while (i < n && /[!#$%&'*+.^_`|~0-9A-Za-z-]/.test(s[i]!)) i++;
    return s.slice(start, i);
  };
  let cur: Challenge | undefined;
  while (i < n) {
    skipWs();
    if (s[i] === ',') {
      i++;
      continue;
    }
    const name = token();
    if (name === '') break;
    skipWs();
    if (s[i] === '=' && cur) {
      i++;
      skipWs();
      let value: string;
      if (s[i] === '"') {
        i++;
        let v = '';
        while (i < n && s[i] !== '"') {
          if (s[i] === '\\' && i + 1 < n) i++;
          v += s[i];
          i++;
        }
        i++; // closing quote
        value = v;
      } else {
        value = token();
        // token68 padding, e.g. Basic realm=abc==
        while (s[i] === '=') {
          value += '=';
          i++;
        }
      }
      cur.params[name.toLowerCase()] = value;
      continue;
    }
    // A new scheme.
    cur = { scheme: name.toLowerCase(), params: {} };
    out.push(cur);
  }
  return out;
}

/** The `repository:<path>:<actions>` scope for a repository. */
export function repositoryScope(path: string, actions: string[]): string {
  return `repository:${path}:${actions.join(',')}`;
}
