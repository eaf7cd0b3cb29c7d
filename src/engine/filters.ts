/**
 * docker's list filters (pure), shared by the CLI's `--filter key=value` and the API's `filters`
 * JSON: one Map of key -> values; values of one key are ORed, keys are ANDed. Unknown keys are
 * refused with docker's "invalid filter".
 */
import { invalid } from '../errors.js';
import type { ContainerSummary } from './inspect.js';

export type Filters = Map<string, string[]>;

/** `--filter k=v` flags -> Filters ("label=a=b" keeps "a=b" as the value). */
export function parseFilterFlags(list: string[]): Filters {
  const out: Filters = new Map();
  for (const f of list) {
    const i = f.indexOf('=');
    if (i <= 0) throw invalid(`bad format of filter (expected name=value): ${f}`);
    const k = f.slice(0, i).trim().toLowerCase();
    out.set(k, [...(out.get(k) ?? []), f.slice(i + 1)]);
  }
  return out;
}

/** Refuse keys outside `known`, as docker does. */
export function checkKeys(f: Filters, known: string[]): void {
  for (const k of f.keys()) if (!known.includes(k)) throw invalid(`invalid filter '${k}'`);
}

/**
 * docker's label filter: every expression must hold. `key` (present), `key=value`, and for
 * prune's `label!=...` the negated forms (`key` absent, or `key=value` not so).
 */
export function labelsMatch(labels: Record<string, string>, exprs: string[], negated: string[] = []): boolean {
  const one = (e: string) => {
    const i = e.indexOf('=');
    const k = i < 0 ? e : e.slice(0, i);
    return i < 0 ? k in labels : labels[k] === e.slice(i + 1);
  };
  return exprs.every(one) && !negated.some(one);
}

/** docker's boolean filter values (dangling=true|1|false|0). */
export function filterBool(key: string, v: string): boolean {
  if (['true', '1'].includes(v.toLowerCase())) return true;
  if (['false', '0'].includes(v.toLowerCase())) return false;
  throw invalid(`invalid filter '${key}=${v}': expected true or false`);
}

function regexes(key: string, vals: string[]): RegExp[] {
  return vals.map((v) => {
    try {
      return new RegExp(v);
    } catch {
      throw invalid(`invalid filter '${key}=${v}': not a regular expression`);
    }
  });
}

export const CONTAINER_FILTERS = ['id', 'name', 'status', 'exited', 'ancestor', 'isolation', 'label', 'network', 'volume', 'before', 'since'];
const STATUSES = ['created', 'restarting', 'running', 'removing', 'paused', 'exited', 'dead'];

/** Whether a list with these filters must look at stopped containers too (docker: status/exited imply -a). */
export function wantsAll(f: Filters): boolean {
  return f.has('status') || f.has('exited');
}

/**
 * docker ps' filters over summaries (newest first, as `ps` lists them). `imageIds(ref)` gives the
 * ids an ancestor value names (an image reference resolved by the store, or an id prefix).
 */
export function filterContainers(rows: ContainerSummary[], f: Filters, imageIds: (ref: string) => string[] = () => []): ContainerSummary[] {
  checkKeys(f, CONTAINER_FILTERS);
  const vals = (k: string) => f.get(k) ?? [];
  let out = rows;
  if (f.has('id')) out = out.filter((r) => vals('id').some((v) => r.Id.startsWith(v)));
  if (f.has('name')) {
    const res = regexes('name', vals('name'));
    out = out.filter((r) => res.some((re) => r.Names.some((n) => re.test(n.slice(1)))));
  }
  if (f.has('status')) {
    for (const v of vals('status')) if (!STATUSES.includes(v)) throw invalid(`invalid filter 'status=${v}': give one of ${STATUSES.join(', ')}`);
    out = out.filter((r) => vals('status').includes(r.State));
  }
  if (f.has('exited')) {
    for (const v of vals('exited')) if (!/^-?\d+$/.test(v)) throw invalid(`invalid filter 'exited=${v}': an exit code`);
    out = out.filter((r) => r.State === 'exited' && vals('exited').some((v) => r.Status.startsWith(`Exited (${Number(v)})`)));
  }
  if (f.has('ancestor')) {
    const ids = new Set(vals('ancestor').flatMap((v) => imageIds(v)));
    out = out.filter((r) => ids.has(r.ImageID) || vals('ancestor').some((v) => r.Image === v || r.Image === `${v}:latest` || r.ImageID.startsWith(`sha256:${v}`)));
  }
  if (f.has('isolation')) out = out.filter((r) => vals('isolation').includes(r.Isolation));
  if (f.has('label')) out = out.filter((r) => labelsMatch(r.Labels, vals('label')));
  if (f.has('network')) {
    out = out.filter((r) =>
      Object.entries(r.NetworkSettings.Networks).some(([name, n]) => vals('network').some((v) => v === name || (typeof (n as { NetworkID?: string }).NetworkID === 'string' && (n as { NetworkID: string }).NetworkID.startsWith(v)))),
    );
  }
  if (f.has('volume')) out = out.filter((r) => r.Mounts.some((m) => vals('volume').some((v) => m.Name === v || m.Destination === v || m.Source === v)));
  // before/since: containers created before (after) the named one, by list position (newest first)
  const pos = (k: string) => {
    const v = vals(k)[0]!;
    const i = rows.findIndex((r) => r.Id.startsWith(v) || r.Names.includes(`/${v}`));
    if (i < 0) throw invalid(`No such container: ${v}`);
    return rows[i]!;
  };
  if (f.has('before')) {
    const ref = pos('before');
    out = out.filter((r) => rows.indexOf(r) > rows.indexOf(ref));
  }
  if (f.has('since')) {
    const ref = pos('since');
    out = out.filter((r) => rows.indexOf(r) < rows.indexOf(ref));
  }
  return out;
}

export const VOLUME_FILTERS = ['name', 'label', 'dangling', 'driver'];

/** docker volume ls' filters; `refCount(name)` is how many containers use the volume. */
export function filterVolumes<T extends { name: string; driver: string; labels_json: string }>(rows: T[], f: Filters, refCount: (name: string) => number): T[] {
  checkKeys(f, VOLUME_FILTERS);
  const vals = (k: string) => f.get(k) ?? [];
  let out = rows;
  if (f.has('name')) out = out.filter((r) => vals('name').some((v) => r.name.includes(v)));
  if (f.has('driver')) out = out.filter((r) => vals('driver').includes(r.driver));
  if (f.has('label')) out = out.filter((r) => labelsMatch(JSON.parse(r.labels_json) as Record<string, string>, vals('label')));
  if (f.has('dangling')) {
    const want = vals('dangling').map((v) => filterBool('dangling', v));
    out = out.filter((r) => want.includes(refCount(r.name) === 0));
  }
  return out;
}

/** prune's label filters: `label=...` must hold, `label!=...` must not. */
export function pruneLabelMatch(f: Filters): (labels: Record<string, string>) => boolean {
  const yes = f.get('label') ?? [];
  const no = f.get('label!') ?? [];
  return (labels) => labelsMatch(labels, yes, no);
}

export const NETWORK_FILTERS = ['name', 'id', 'driver', 'type', 'label', 'scope', 'dangling'];

/** docker network ls' filters over network views (Name, Id, Driver, Labels, Containers). */
export function filterNetworks(nets: Record<string, unknown>[], f: Filters): Record<string, unknown>[] {
  checkKeys(f, NETWORK_FILTERS);
  const vals = (k: string) => f.get(k) ?? [];
  const builtin = (n: Record<string, unknown>) => ['bridge', 'host', 'none'].includes(String(n.Name));
  let out = nets;
  if (f.has('name')) out = out.filter((n) => vals('name').some((v) => String(n.Name).includes(v)));
  if (f.has('id')) out = out.filter((n) => vals('id').some((v) => String(n.Id).startsWith(v)));
  if (f.has('driver')) out = out.filter((n) => vals('driver').includes(String(n.Driver)));
  if (f.has('scope')) out = out.filter((n) => vals('scope').includes('local'));
  if (f.has('type')) {
    for (const v of vals('type')) if (v !== 'builtin' && v !== 'custom') throw invalid(`invalid filter 'type=${v}': builtin or custom`);
    out = out.filter((n) => vals('type').includes(builtin(n) ? 'builtin' : 'custom'));
  }
  if (f.has('label')) out = out.filter((n) => labelsMatch((n.Labels as Record<string, string> | undefined) ?? {}, vals('label')));
  if (f.has('dangling')) {
    const want = vals('dangling').map((v) => filterBool('dangling', v));
    out = out.filter((n) => !builtin(n) && want.includes(Object.keys((n.Containers as object | undefined) ?? {}).length === 0));
  }
  return out;
}
