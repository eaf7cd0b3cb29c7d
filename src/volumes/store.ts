/**
 * Named volumes: the one door for making, using and removing them. A volume is a row in the
 * root's SQLite (migration 5 in src/state/db.ts) and a directory, `<root>/volumes/<name>/_data`,
 * docker's layout. Containers use a volume through `volume_users` rows written in the same
 * transaction as the container's own row; a volume with users is never removed (the check and
 * the delete are one IMMEDIATE transaction, and the schema's foreign key refuses it anyway).
 *
 * The directory is made after the row is committed and again before every use (mkdir -p), and
 * moved aside inside the removing transaction, so a volume made again under the same name
 * never sees the old one's files.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { conflict, invalid, notFound } from '../errors.js';
import { layout } from '../paths.js';
import { addEvent, nowIso, type DB } from '../state/db.js';

export interface VolumeRow {
  name: string;
  driver: string;
  labels_json: string;
  options_json: string;
  anonymous: number;
  created_at: string;
}

export interface CreateVolumeOptions {
  /** [a-zA-Z0-9][a-zA-Z0-9_.-]+. Default: 64 random hex digits (docker's anonymous names). */
  name?: string;
  /** Only 'local' (the default). */
  driver?: string;
  labels?: Record<string, string>;
  /** Driver options; the local driver here takes none. */
  options?: Record<string, string>;
  /** Made for one container (-v /path, an image VOLUME): `rm -v` and `volume prune` take it. */
  anonymous?: boolean;
}

/** A container's use of a volume at a path; `anonymous`: made for this container if missing. */
export interface VolumeUse {
  name: string;
  anonymous?: boolean;
  destination: string;
}

/** docker's label on anonymous volumes (API 1.42+: `volume prune` without --all takes only these). */
export const ANONYMOUS_LABEL = 'com.docker.volume.anonymous';

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

export function validVolumeName(name: string): boolean {
  return NAME_RE.test(name);
}

export function newVolumeName(): string {
  return crypto.randomBytes(32).toString('hex');
}

/** Bytes of file data under `dir` (hard links counted once, symlinks as their own size), docker's `directory.Size`. */
export function dirSize(dir: string): number {
  let total = 0;
  const seen = new Set<string>();
  const walk = (d: string) => {
    let names: fs.Dirent[];
    try {
      names = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of names) {
      const p = path.join(d, e.name);
      const st = fs.lstatSync(p, { throwIfNoEntry: false, bigint: false });
      if (!st) continue;
      if (st.isDirectory()) {
        walk(p);
        continue;
      }
      if (st.nlink > 1) {
        const k = `${st.dev}:${st.ino}`;
        if (seen.has(k)) continue;
        seen.add(k);
      }
      total += st.size;
    }
  };
  walk(dir);
  return total;
}

export class VolumeStore {
  constructor(
    readonly db: DB,
    readonly root: string,
  ) {}

  /** `<root>/volumes` */
  get base(): string {
    return path.join(this.root, 'volumes');
  }

  /** The volume's data directory (docker's Mountpoint). */
  dir(name: string): string {
    return path.join(this.base, name, '_data');
  }

  /** mkdir -p of the data directory (before every use: a row committed by a process that died before its mkdir still works). */
  ensureDir(name: string): string {
    const d = this.dir(name);
    fs.mkdirSync(path.dirname(d), { recursive: true, mode: 0o701 });
    fs.mkdirSync(d, { recursive: true, mode: 0o755 });
    return d;
  }

  get(name: string): VolumeRow | undefined {
    return this.db.prepare('SELECT * FROM volumes WHERE name = ?').get(name) as VolumeRow | undefined;
  }

  /** The volume, or NOT_FOUND with docker's words. */
  resolve(name: string): VolumeRow {
    const row = this.get(name);
    if (!row) throw notFound(`get ${name}: no such volume`);
    return row;
  }

  list(): VolumeRow[] {
    return this.db.prepare('SELECT * FROM volumes ORDER BY name').all() as VolumeRow[];
  }

  /** Ids of the containers that mount the volume. */
  users(name: string): string[] {
    return (this.db.prepare('SELECT DISTINCT container_id FROM volume_users WHERE volume = ? ORDER BY container_id').all(name) as { container_id: string }[]).map((r) => r.container_id);
  }

  /** Volume name -> number of containers that mount it. */
  refCounts(): Map<string, number> {
    const rows = this.db.prepare('SELECT volume, COUNT(DISTINCT container_id) AS n FROM volume_users GROUP BY volume').all() as { volume: string; n: number }[];
    return new Map(rows.map((r) => [r.volume, r.n]));
  }

  /** The volumes a container mounts: name, destination, anonymous. */
  usedBy(containerId: string): { name: string; destination: string; anonymous: boolean }[] {
    return (
      this.db
        .prepare('SELECT u.volume AS name, u.destination, v.anonymous FROM volume_users u JOIN volumes v ON v.name = u.volume WHERE u.container_id = ? ORDER BY u.destination')
        .all(containerId) as { name: string; destination: string; anonymous: number }[]
    ).map((r) => ({ name: r.name, destination: r.destination, anonymous: r.anonymous === 1 }));
  }

  private check(o: CreateVolumeOptions): { name: string; driver: string } {
    const name = o.name ?? newVolumeName();
    if (!validVolumeName(name)) throw invalid(`create ${name}: "${name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`);
    const driver = o.driver || 'local';
    if (driver !== 'local') throw invalid(`create ${name}: volume driver "${driver}" is not supported by hull (local is)`);
    const opts = Object.keys(o.options ?? {});
    if (opts.length) throw invalid(`create ${name}: the local driver of hull takes no options (got ${opts.join(', ')}): a volume is a directory under the hull root`);
    for (const [k, v] of Object.entries(o.labels ?? {})) if (typeof v !== 'string' || k === '') throw invalid(`create ${name}: invalid label ${JSON.stringify(k)}`);
    return { name, driver };
  }

  /** Insert the row unless it exists (caller's transaction). Returns the row and whether it was there. */
  private insert(o: CreateVolumeOptions): { row: VolumeRow; existed: boolean } {
    const { name, driver } = this.check(o);
    const found = this.get(name);
    if (found) {
      if (found.driver !== driver) throw conflict(`create ${name}: a volume with the name ${name} already exists with driver "${found.driver}"`);
      return { row: found, existed: true };
    }
    const labels = { ...(o.labels ?? {}), ...(o.anonymous ? { [ANONYMOUS_LABEL]: '' } : {}) };
    const row: VolumeRow = { name, driver, labels_json: JSON.stringify(labels), options_json: JSON.stringify(o.options ?? {}), anonymous: o.anonymous ? 1 : 0, created_at: nowIso() };
    this.db.prepare('INSERT INTO volumes (name, driver, labels_json, options_json, anonymous, created_at) VALUES (@name, @driver, @labels_json, @options_json, @anonymous, @created_at)').run(row);
    addEvent(this.db, 'volume', 'create', name, { driver });
    return { row, existed: false };
  }

  /** `volume create`: an existing volume of that name is returned as it is (docker's answer). */
  create(o: CreateVolumeOptions = {}): { row: VolumeRow; existed: boolean } {
    const r = this.db.transaction(() => this.insert(o)).immediate();
    this.ensureDir(r.row.name);
    return r;
  }

  /**
   * Record that container `containerId` mounts these volumes, making the missing ones (named
   * ones on first use). Run inside the transaction that inserts the container's
   * row; returns the names, in the order of `uses`. The directories are the caller's to ensure
   * once the transaction committed.
   */
  attach(containerId: string, uses: VolumeUse[]): string[] {
    const stmt = this.db.prepare('INSERT OR IGNORE INTO volume_users (volume, container_id, destination) VALUES (?, ?, ?)');
    return uses.map((u) => {
      const { row } = this.insert({ name: u.name, anonymous: u.anonymous });
      stmt.run(row.name, containerId, u.destination);
      return row.name;
    });
  }

  /**
   * `volume rm`: refused (CONFLICT) while a container uses it, docker's message naming them;
   * `force` only forgives a missing volume. The data directory is moved aside in the same
   * transaction and deleted after it.
   */
  remove(name: string, o: { force?: boolean } = {}): boolean {
    const trash = path.join(layout(this.root).tmp, `volume-rm-${crypto.randomBytes(6).toString('hex')}`);
    const moved = this.db
      .transaction(() => {
        const row = this.get(name);
        if (!row) {
          if (o.force) return false;
          throw notFound(`get ${name}: no such volume`);
        }
        const users = this.users(name);
        if (users.length) throw conflict(`remove ${name}: volume is in use - [${users.join(', ')}]`);
        this.db.prepare('DELETE FROM volumes WHERE name = ?').run(name);
        addEvent(this.db, 'volume', 'destroy', name, { driver: row.driver });
        fs.mkdirSync(path.dirname(trash), { recursive: true });
        try {
          fs.renameSync(path.join(this.base, name), trash);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        }
        return true;
      })
      .immediate();
    fs.rmSync(trash, { recursive: true, force: true });
    return moved;
  }

  /**
   * `volume prune`: every volume no container uses, of those `keep` lets through (labels), only
   * anonymous ones unless `all`. Returns the names removed and the bytes freed.
   */
  prune(o: { all?: boolean; match?: (row: VolumeRow) => boolean } = {}): { deleted: string[]; reclaimed: number } {
    const used = this.refCounts();
    const deleted: string[] = [];
    let reclaimed = 0;
    for (const row of this.list()) {
      if (used.has(row.name)) continue;
      if (!o.all && row.anonymous !== 1) continue;
      if (o.match && !o.match(row)) continue;
      const size = dirSize(this.dir(row.name));
      try {
        if (this.remove(row.name, { force: true })) {
          deleted.push(row.name);
          reclaimed += size;
        }
      } catch (e) {
        if (!(e instanceof Error && 'code' in e && (e as { code: string }).code === 'CONFLICT')) throw e;
        // taken into use meanwhile: kept
      }
    }
    return { deleted, reclaimed };
  }
}

/** docker's Volume object (swagger: Volume). `usage` adds UsageData (system df). */
export function volumeView(store: VolumeStore, row: VolumeRow, usage?: { size: number; refCount: number }): Record<string, unknown> {
  return {
    CreatedAt: row.created_at,
    Driver: row.driver,
    Labels: JSON.parse(row.labels_json) as Record<string, string>,
    Mountpoint: store.dir(row.name),
    Name: row.name,
    Options: JSON.parse(row.options_json) as Record<string, string>,
    Scope: 'local',
    ...(usage ? { UsageData: { Size: usage.size, RefCount: usage.refCount } } : {}),
  };
}
