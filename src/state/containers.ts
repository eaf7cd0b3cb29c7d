/**
 * Container rows in SQLite: every statement the engine uses, nothing else. Names are UNIQUE in
 * the schema, so two `hull run --name x` racing each other cannot both win.
 */
import { conflict, notFound } from '../errors.js';
import type { DB } from './db.js';

export type ContainerStatus = 'created' | 'running' | 'paused' | 'exited' | 'dead' | 'removing';

export interface ContainerRow {
  id: string;
  name: string;
  image_id: string;
  image_ref: string;
  isolation: 'container' | 'vm';
  runtime: string;
  status: ContainerStatus;
  spec_json: string;
  runtime_json: string;
  pid: number;
  exit_code: number | null;
  oom_killed: number;
  error: string;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  restart_count: number;
  /** Number of the current (or last) start: 0 before the first. */
  run: number;
  /** Lease of the process changing the container ('' = free): engine/lock.ts. */
  lock_owner: string;
}

export class ContainerTables {
  constructor(readonly db: DB) {}

  /** Insert a new container; a taken name is CONFLICT with docker's message. */
  insert(row: Omit<ContainerRow, 'pid' | 'exit_code' | 'oom_killed' | 'error' | 'started_at' | 'finished_at' | 'restart_count' | 'runtime_json' | 'run' | 'lock_owner'> & { runtime_json?: string }): void {
    try {
      this.db
        .prepare(
          `INSERT INTO containers (id, name, image_id, image_ref, isolation, runtime, status, spec_json, runtime_json, created_at)
           VALUES (@id, @name, @image_id, @image_ref, @isolation, @runtime, @status, @spec_json, @runtime_json, @created_at)`,
        )
        .run({ runtime_json: '{}', ...row });
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
        const other = this.byName(row.name);
        throw conflict(
          `Conflict. The container name "/${row.name}" is already in use by container "${other?.id ?? '?'}". You have to remove (or rename) that container to be able to reuse that name.`,
          e,
        );
      }
      throw e;
    }
  }

  /** Replace the stored spec (create: once the --userns=auto range is known, same transaction). */
  setSpecJson(id: string, specJson: string): void {
    this.db.prepare('UPDATE containers SET spec_json = ? WHERE id = ?').run(specJson, id);
  }

  get(id: string): ContainerRow | undefined {
    return this.db.prepare('SELECT * FROM containers WHERE id = ?').get(id) as ContainerRow | undefined;
  }

  byName(name: string): ContainerRow | undefined {
    return this.db.prepare('SELECT * FROM containers WHERE name = ?').get(name) as ContainerRow | undefined;
  }

  /** docker's lookup: full id, exact name (with or without '/'), then a unique id prefix. */
  find(ref: string): ContainerRow | undefined {
    const r = ref.startsWith('/') ? ref.slice(1) : ref;
    const exact = this.get(r) ?? this.byName(r);
    if (exact) return exact;
    if (!/^[0-9a-f]{1,64}$/.test(r)) return undefined;
    const rows = this.db.prepare('SELECT * FROM containers WHERE id LIKE ? LIMIT 2').all(`${r}%`) as ContainerRow[];
    if (rows.length > 1) throw conflict(`multiple containers found with provided prefix: ${r}`);
    return rows[0];
  }

  resolve(ref: string): ContainerRow {
    const row = this.find(ref);
    if (!row) throw notFound(`No such container: ${ref}`);
    return row;
  }

  list(all: boolean): ContainerRow[] {
    const sql = all
      ? 'SELECT * FROM containers ORDER BY created_at DESC, rowid DESC'
      : "SELECT * FROM containers WHERE status IN ('running', 'paused') ORDER BY created_at DESC, rowid DESC";
    return this.db.prepare(sql).all() as ContainerRow[];
  }

  /**
   * A new run begins: running, with the next run number, no pid yet (the wall reports it) and
   * the exit of the previous run cleared. Returns the new run number.
   */
  beginRun(id: string, startedAt: string, runtimeJson: string): number {
    const r = this.db
      .prepare(
        `UPDATE containers SET status = 'running', run = run + 1, pid = 0, started_at = ?, runtime_json = ?, exit_code = NULL,
           oom_killed = 0, error = '', finished_at = NULL WHERE id = ? RETURNING run`,
      )
      .get(startedAt, runtimeJson, id) as { run: number } | undefined;
    if (!r) throw notFound(`No such container: ${id}`);
    return r.run;
  }

  /** The wall reported the run's process (and what it knows of it). Only for that run. */
  setStarted(id: string, run: number, pid: number, runtimeJson: string): void {
    this.db.prepare("UPDATE containers SET pid = ?, runtime_json = ? WHERE id = ? AND run = ? AND status IN ('running', 'paused')").run(pid, runtimeJson, id, run);
  }

  /**
   * Record the exit of run `run` once: only a row still in that run and live (or 'created')
   * changes, so a late exit of an earlier run never ends a later one, and the exit hook and a
   * concurrent `hull stop` cannot both record it. Returns whether this call recorded it.
   */
  markExited(id: string, run: number, exitCode: number, oomKilled: boolean, finishedAt: string, error = ''): boolean {
    const r = this.db
      .prepare(
        `UPDATE containers SET status = 'exited', pid = 0, exit_code = ?, oom_killed = ?, finished_at = ?, error = ?
         WHERE id = ? AND run = ? AND status IN ('running', 'paused', 'created')`,
      )
      .run(exitCode, oomKilled ? 1 : 0, finishedAt, error, id, run);
    return r.changes === 1;
  }

  /** The stored options and spec (docker update changes the limits in both). */
  setSpec(id: string, specJson: string): void {
    this.db.prepare('UPDATE containers SET spec_json = ? WHERE id = ?').run(specJson, id);
  }

  setStatus(id: string, status: ContainerStatus, error = ''): void {
    this.db.prepare('UPDATE containers SET status = ?, error = ? WHERE id = ?').run(status, error, id);
  }

  /** docker rename: the row's name (and the stored spec's); a taken name is CONFLICT with docker's message. */
  rename(id: string, name: string): void {
    try {
      this.db.prepare("UPDATE containers SET name = ?, spec_json = json_set(spec_json, '$.spec.name', ?, '$.opts.name', ?) WHERE id = ?").run(name, name, name, id);
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === 'SQLITE_CONSTRAINT_UNIQUE') {
        const other = this.byName(name);
        throw conflict(`Error when allocating new name: Conflict. The container name "/${name}" is already in use by container "${other?.id ?? '?'}". You have to remove (or rename) that container to be able to reuse that name.`, e);
      }
      throw e;
    }
  }

  incrementRestarts(id: string): void {
    this.db.prepare('UPDATE containers SET restart_count = restart_count + 1 WHERE id = ?').run(id);
  }

  delete(id: string): boolean {
    return this.db.prepare('DELETE FROM containers WHERE id = ?').run(id).changes === 1;
  }
}
