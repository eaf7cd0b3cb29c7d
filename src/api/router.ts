/**
 * A small method + path router. Patterns are literal segments and `{name}` parameters;
 * a parameter may be marked greedy with `{name*}` (image names contain slashes:
 * /images/localhost:5000/app/json). Pure: matching returns data.
 */
export interface Match<H> {
  handler: H;
  params: Record<string, string>;
}

interface Route<H> {
  method: string;
  re: RegExp;
  names: string[];
  handler: H;
}

export class Router<H> {
  private routes: Route<H>[] = [];

  add(method: string, pattern: string, handler: H): this {
    const names: string[] = [];
    const src = pattern
      .split('/')
      .map((seg) => {
        const m = /^\{([a-zA-Z]+)(\*)?\}$/.exec(seg);
        if (!m) return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        names.push(m[1]!);
        return m[2] ? '(.+)' : '([^/]+)';
      })
      .join('/');
    this.routes.push({ method, re: new RegExp(`^${src}$`), names, handler });
    return this;
  }

  /**
   * The handler for METHOD PATH; `undefined` when no route has that path, and
   * `{ allowed }` when the path exists under other methods only (405 with docker: 404).
   */
  match(method: string, path: string): Match<H> | { allowed: string[] } | undefined {
    const allowed: string[] = [];
    for (const r of this.routes) {
      const m = r.re.exec(path);
      if (!m) continue;
      if (r.method !== method && !(method === 'HEAD' && r.method === 'GET')) {
        allowed.push(r.method);
        continue;
      }
      const params: Record<string, string> = {};
      r.names.forEach((n, i) => {
        params[n] = decodeURIComponent(m[i + 1]!);
      });
      return { handler: r.handler, params };
    }
    return allowed.length > 0 ? { allowed } : undefined;
  }
}
