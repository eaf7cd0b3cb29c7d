/**
 * `hull system check [--fix]`: what a hull root holds that nothing owns, after a crash, a
 * reboot or a SIGKILL at the wrong moment. Every row is reconciled first (as `ps` does); then
 * each finding names one thing:
 *   row-files        a started container's row whose directory is gone
 *   dead             a container whose removal was interrupted
 *   directory        containers/<id> with no row
 *   mount            a mount under the root (hull mounts only inside private namespaces)
 *   autoremove-flag  hull serve's AutoRemove note of a container that is gone
 *   socket-link      conmon's attach-socket link of a container that is gone
 *   temp-database    a half-made new database left by a killed process
 *   volume-directory volumes/<name> with no volume row
 *   volume-trash     the moved-aside data of a removed volume that a killed `volume rm` left
 * plus what each wall reports (Isolation.orphans: runtime state, cgroups, monitor and QEMU
 * processes) and what the network stack reports (a network namespace, addresses, published
 * ports, DNS names; subnet claims of removed networks) for ids that no live or changing
 * container owns. `--fix` takes each away, walls'
 * processes and state first, directories last.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Isolation, Orphan } from '../runtime/types.js';
import type { ContainerRow, ContainerTables } from '../state/containers.js';
import { pidAlive } from '../util/proc.js';
import { isLive } from './lifecycle.js';
import type { ContainerLocks } from './lock.js';

export interface Finding {
  kind: string;
  what: string;
  id?: string;
  /** With --fix: whether it was taken away, or why not. */
  fixed?: boolean;
  error?: string;
}

export interface CheckContext {
  root: string;
  rows: ContainerTables;
  locks: ContainerLocks;
  walls(): Promise<Isolation[]>;
  /** Bring a row up to date (engine.fresh). */
  reconcile(row: ContainerRow): Promise<void>;
  /** Remove a container whose row is broken (lease taken inside). */
  remove(id: string): Promise<void>;
  /** Names of the root's volume rows. */
  volumes?: () => string[];
  /** The network stack's orphans; mounts under `dir` (namespace files) are its to judge. */
  network?: { dir: string; orphans(live: Set<string>): Promise<Orphan[]> };
}

/** Mount points under `dir` in this process's mount namespace (deepest first). */
function mountsUnder(dir: string): string[] {
  const prefix = `${dir}/`;
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => (l.split(' ')[4] ?? '').replace(/\\040/g, ' '))
    .filter((m) => m === dir || m.startsWith(prefix))
    .sort((a, b) => b.length - a.length);
}

function entries(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

export async function systemCheck(ctx: CheckContext, o: { fix?: boolean } = {}): Promise<Finding[]> {
  for (const row of ctx.rows.list(true)) await ctx.reconcile(row);
  const rows = ctx.rows.list(true);
  const byId = new Map(rows.map((r) => [r.id, r]));
  const live = new Set(rows.filter((r) => isLive(r.status) || ctx.locks.holder(r.id) !== '').map((r) => r.id));
  const containers = path.join(ctx.root, 'containers');
  const found: { f: Finding; fix: () => Promise<void> }[] = [];
  const add = (f: Finding, fix: () => Promise<void>) => found.push({ f, fix });

  for (const r of rows) {
    if (ctx.locks.holder(r.id) !== '') continue; // being changed right now
    if (r.status === 'dead') add({ kind: 'dead', what: `container ${r.name} (${r.error || 'removal interrupted'})`, id: r.id }, () => ctx.remove(r.id));
    else if (r.run > 0 && !fs.existsSync(path.join(containers, r.id))) {
      add({ kind: 'row-files', what: `container ${r.name}: ${path.join(containers, r.id)} is gone`, id: r.id }, () => ctx.remove(r.id));
    }
  }
  const orphans: Orphan[] = [];
  for (const w of await ctx.walls()) orphans.push(...(await w.orphans(live)));
  if (ctx.network) orphans.push(...(await ctx.network.orphans(live)));
  for (const x of orphans) add({ kind: x.kind, what: x.what, id: x.id }, x.fix);
  for (const m of mountsUnder(ctx.root)) {
    if (ctx.network && m.startsWith(`${ctx.network.dir}/`)) continue;
    add({ kind: 'mount', what: m }, async () => {
      const r = spawnSync('umount', ['-l', m], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(r.stderr.trim() || `umount exited ${r.status}`);
    });
  }
  for (const id of entries(containers)) {
    if (byId.has(id)) continue;
    const dir = path.join(containers, id);
    add({ kind: 'directory', what: dir, id }, async () => fs.rmSync(dir, { recursive: true, force: true }));
  }
  const flags = path.join(ctx.root, 'api', 'autoremove');
  for (const id of entries(flags)) if (!byId.has(id)) add({ kind: 'autoremove-flag', what: path.join(flags, id), id }, async () => fs.rmSync(path.join(flags, id), { force: true }));
  const links = path.join(ctx.root, 'run', 'conmon');
  for (const id of entries(links)) if (!byId.has(id)) add({ kind: 'socket-link', what: path.join(links, id), id }, async () => fs.rmSync(path.join(links, id), { force: true }));
  if (ctx.volumes) {
    const vols = new Set(ctx.volumes());
    const base = path.join(ctx.root, 'volumes');
    for (const n of entries(base)) if (!vols.has(n)) add({ kind: 'volume-directory', what: path.join(base, n) }, async () => fs.rmSync(path.join(base, n), { recursive: true, force: true }));
    const tmp = path.join(ctx.root, 'tmp');
    for (const n of entries(tmp)) if (n.startsWith('volume-rm-')) add({ kind: 'volume-trash', what: path.join(tmp, n) }, async () => fs.rmSync(path.join(tmp, n), { recursive: true, force: true }));
  }
  for (const f of entries(ctx.root)) {
    const m = /^hull\.db\.new-(\d+)-/.exec(f);
    if (m && !pidAlive(Number(m[1]))) add({ kind: 'temp-database', what: path.join(ctx.root, f) }, async () => fs.rmSync(path.join(ctx.root, f), { force: true }));
  }

  if (o.fix) {
    // processes and runtime state before cgroups, mounts and directories
    const order = ['monitor', 'vm-process', 'runtime-state', 'cgroup', 'vm-cgroup', 'network', 'mount'];
    const rank = (k: string) => (order.includes(k) ? order.indexOf(k) : order.length);
    for (const x of [...found].sort((a, b) => rank(a.f.kind) - rank(b.f.kind))) {
      try {
        await x.fix();
        x.f.fixed = true;
      } catch (e) {
        x.f.fixed = false;
        x.f.error = (e as Error).message;
      }
    }
  }
  return found.map((x) => x.f);
}
