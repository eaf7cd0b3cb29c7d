import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import Database from 'better-sqlite3';
import { packageRoot } from '../paths.js';

export type DB = Database.Database;

/**
 * The schema, one migration per entry; `PRAGMA user_version` says how many have run.
 * Append new migrations; never edit one that has shipped.
 */
const MIGRATIONS: string[] = [
  `
  CREATE TABLE images (
    id              TEXT PRIMARY KEY,          -- config digest, sha256:<hex>
    manifest_digest TEXT NOT NULL,             -- digest of the manifest as stored in blobs/
    manifest_media_type TEXT NOT NULL,
    config_json     TEXT NOT NULL,             -- the image config, verbatim
    created         TEXT,                      -- image config 'created' (RFC 3339) if any
    os              TEXT NOT NULL DEFAULT 'linux',
    architecture    TEXT NOT NULL DEFAULT 'amd64',
    size            INTEGER NOT NULL DEFAULT 0, -- sum of unpacked layer sizes, bytes
    added_at        TEXT NOT NULL
  );
  -- Layers of each image, bottom first.
  CREATE TABLE image_layers (
    image_id    TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    idx         INTEGER NOT NULL,
    diff_id     TEXT NOT NULL,                 -- sha256 of the uncompressed tar
    blob_digest TEXT NOT NULL,                 -- digest of the blob as in the manifest
    media_type  TEXT NOT NULL,
    blob_size   INTEGER NOT NULL,
    PRIMARY KEY (image_id, idx)
  );
  CREATE INDEX image_layers_diff ON image_layers(diff_id);
  -- Unpacked layer directories (layers/<hex of diff_id>), present only once complete.
  CREATE TABLE layers (
    diff_id     TEXT PRIMARY KEY,
    size        INTEGER NOT NULL,              -- bytes of file data unpacked
    unpacked_at TEXT NOT NULL
  );
  -- Tags: fully qualified 'registry/repo:tag' -> image.
  CREATE TABLE tags (
    name     TEXT PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
  );
  CREATE INDEX tags_image ON tags(image_id);
  -- Repo digests: 'registry/repo@sha256:<manifest>' -> image.
  CREATE TABLE repo_digests (
    name     TEXT PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
  );
  CREATE INDEX repo_digests_image ON repo_digests(image_id);

  CREATE TABLE containers (
    id          TEXT PRIMARY KEY,              -- 64 hex
    name        TEXT NOT NULL UNIQUE,
    image_id    TEXT NOT NULL,                 -- no FK: rmi -f may remove an image in use
    image_ref   TEXT NOT NULL,                 -- as the user wrote it
    isolation   TEXT NOT NULL CHECK (isolation IN ('container','vm')),
    runtime     TEXT NOT NULL,                 -- crun | runc | runsc | qemu
    status      TEXT NOT NULL,                 -- created | running | exited | dead | removing
    spec_json   TEXT NOT NULL,                 -- the validated run options
    runtime_json TEXT NOT NULL DEFAULT '{}',   -- wall-specific facts (accel, cgroup path, ...)
    pid         INTEGER NOT NULL DEFAULT 0,
    exit_code   INTEGER,
    oom_killed  INTEGER NOT NULL DEFAULT 0,
    error       TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    started_at  TEXT,
    finished_at TEXT,
    restart_count INTEGER NOT NULL DEFAULT 0
  );
  CREATE INDEX containers_image ON containers(image_id);

  CREATE TABLE events (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    time_ns  INTEGER NOT NULL,
    type     TEXT NOT NULL,                    -- container | image
    action   TEXT NOT NULL,                    -- create | start | die | destroy | pull | tag ...
    actor_id TEXT NOT NULL,
    attrs    TEXT NOT NULL DEFAULT '{}'
  );

  -- Key/value facts about the host and settings (e.g. last contrast run).
  CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
  );
  `,
  // 2: the lifecycle (src/engine/lifecycle.ts). `run` numbers a container's starts: the monitor's
  // exit hook and the 'die' event carry it, so the late exit of run N can never end run N+1.
  // `lock_owner` is the lease of the process that is changing the container ('' = free;
  // 'pid:starttime:token', taken over once that process is gone: src/engine/lock.ts).
  `
  ALTER TABLE containers ADD COLUMN run INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE containers ADD COLUMN lock_owner TEXT NOT NULL DEFAULT '';
  `,
  // 3: networks (issue 12). A network row exists from `network create` (or first use of the
  // default `bridge`) to `network rm`; an endpoint row from create/connect to rm/disconnect, with
  // an address, MAC and host veth only while the container's network is set up; published ports
  // and the network namespace (sandbox) only while it runs.
  `
  CREATE TABLE networks (
    id          TEXT PRIMARY KEY,              -- 64 hex
    name        TEXT NOT NULL UNIQUE,
    driver      TEXT NOT NULL,                 -- bridge | host | null
    subnet      TEXT NOT NULL DEFAULT '',      -- CIDR, '' for host/null
    gateway     TEXT NOT NULL DEFAULT '',
    ip_range    TEXT NOT NULL DEFAULT '',      -- CIDR addresses are leased from ('' = the subnet)
    internal    INTEGER NOT NULL DEFAULT 0,
    dns         INTEGER NOT NULL DEFAULT 0,    -- names resolve on it (user networks)
    bridge      TEXT UNIQUE,                   -- host bridge name, unique per hull root
    mtu         INTEGER NOT NULL DEFAULT 1500,
    labels_json TEXT NOT NULL DEFAULT '{}',
    options_json TEXT NOT NULL DEFAULT '{}',
    created_at  TEXT NOT NULL
  );
  CREATE TABLE endpoints (
    network_id   TEXT NOT NULL REFERENCES networks(id),
    container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
    idx          INTEGER NOT NULL,             -- interface order: eth<idx>
    aliases_json TEXT NOT NULL DEFAULT '[]',
    static_ip    TEXT NOT NULL DEFAULT '',
    static_mac   TEXT NOT NULL DEFAULT '',
    ip           TEXT,                         -- while set up
    mac          TEXT,
    veth         TEXT,                         -- host side of the veth pair
    dns_json     TEXT NOT NULL DEFAULT '{}',   -- while set up: names it resolves by, upstream servers
    PRIMARY KEY (network_id, container_id)
  );
  CREATE UNIQUE INDEX endpoints_ip ON endpoints(network_id, ip);
  CREATE INDEX endpoints_container ON endpoints(container_id);
  CREATE TABLE published_ports (
    container_id   TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
    proto          TEXT NOT NULL,              -- tcp | udp
    host_ip        TEXT NOT NULL,              -- '' = every address
    host_port      INTEGER NOT NULL,
    container_port INTEGER NOT NULL,
    PRIMARY KEY (proto, host_ip, host_port)
  );
  CREATE TABLE sandboxes (
    container_id TEXT PRIMARY KEY,             -- no FK: a sandbox is torn down before its row goes
    netns        TEXT NOT NULL,                -- the namespace file
    hosts        TEXT NOT NULL DEFAULT '',     -- its /etc/hosts and /etc/resolv.conf (container:X shares them)
    resolv       TEXT NOT NULL DEFAULT '',
    created_at   TEXT NOT NULL
  );
  `,
  // 4: hull build's layer cache.
  `
  -- hull build's layer cache: each step's result is an (untagged) image; the key is what docker
  -- keys a step on (parent image, instruction, inputs). A row goes with its image.
  CREATE TABLE build_cache (
    key        TEXT PRIMARY KEY,
    image_id   TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    parent_id  TEXT NOT NULL,                  -- '' for a step on scratch
    created_at TEXT NOT NULL
  );
  CREATE INDEX build_cache_image ON build_cache(image_id);
  CREATE INDEX build_cache_parent ON build_cache(parent_id);
  `,
  // 5: named volumes (issue 16). A volume row exists from `volume create` (or first use) to
  // `volume rm`; its directory is volumes/<name>/_data. A volume_users row ties a volume to each
  // container that mounts it, from create to rm: a volume with users cannot be deleted (the
  // foreign key refuses it even if a caller forgot to look).
  `
  CREATE TABLE volumes (
    name         TEXT PRIMARY KEY,             -- [a-zA-Z0-9][a-zA-Z0-9_.-]+, or 64 hex for anonymous ones
    driver       TEXT NOT NULL DEFAULT 'local',
    labels_json  TEXT NOT NULL DEFAULT '{}',
    options_json TEXT NOT NULL DEFAULT '{}',
    anonymous    INTEGER NOT NULL DEFAULT 0,   -- made for one container (-v /path, an image VOLUME)
    created_at   TEXT NOT NULL
  );
  CREATE TABLE volume_users (
    volume       TEXT NOT NULL REFERENCES volumes(name),
    container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
    destination  TEXT NOT NULL,
    PRIMARY KEY (volume, container_id, destination)
  );
  CREATE INDEX volume_users_container ON volume_users(container_id);
  `,
  // 6: --userns=auto id ranges (state/userns.ts).
  `
  -- Each --userns=auto container's slot in the root's pool of host ids: slot N is host uids and
  -- gids start + N*size .. + size-1. UNIQUE: two containers never share one; a row goes with its
  -- container.
  CREATE TABLE userns_ranges (
    container_id TEXT PRIMARY KEY REFERENCES containers(id) ON DELETE CASCADE,
    slot         INTEGER NOT NULL UNIQUE
  );
  `,
];

const cache = new Map<string, DB>();

let addonPath: string | null | undefined;
/**
 * The compiled addon's path. Without it better-sqlite3 asks the `bindings` package, which
 * searches a dozen directories with stack-trace tricks: 10-40 ms of every CLI call.
 */
function nativeBinding(): string | undefined {
  if (addonPath === undefined) {
    // The usual place first (a plain stat); else ask the resolver (hoisted installs).
    const usual = path.join(packageRoot(), 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node');
    if (fs.existsSync(usual)) return (addonPath = usual);
    try {
      const pkg = createRequire(import.meta.url).resolve('better-sqlite3/package.json');
      const p = path.join(path.dirname(pkg), 'build', 'Release', 'better_sqlite3.node');
      addonPath = fs.existsSync(p) ? p : null;
    } catch {
      addonPath = null;
    }
  }
  return addonPath ?? undefined;
}

/**
 * Open (and migrate) the database at `file`. WAL mode and a busy timeout make it safe for
 * many hull processes at once: writers queue, readers never block.
 *
 * A new database is made whole before anyone else can open it (createWhole): switching a
 * database to WAL is a read transaction that upgrades to a write, and SQLite answers such an
 * upgrade with SQLITE_BUSY at once, without its busy handler (deadlock avoidance), when another
 * connection is doing the same. Two processes creating one new root at once both found the new
 * file in rollback mode and both switched it: one of them failed with "database is locked".
 */
export function openDb(file: string): DB {
  const hit = cache.get(file);
  if (hit && hit.open) return hit;
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o711 });
  if (!fs.existsSync(file)) createWhole(file);
  const db = connect(file);
  // Only a database made by something else can be in another mode; one connection switching
  // it can still meet the upgrade race above with a second one, so that case alone retries.
  if (db.pragma('journal_mode', { simple: true }) !== 'wal') withBusyRetry(() => db.pragma('journal_mode = WAL'));
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  migrate(db);
  cache.set(file, db);
  return db;
}

function connect(file: string): DB {
  const binding = nativeBinding();
  return new Database(file, binding ? { timeout: 30_000, nativeBinding: binding } : { timeout: 30_000 });
}

/**
 * Make a new database at `file` in one step: a private temporary file gets WAL mode and the
 * whole schema, is closed (which checkpoints and removes its WAL), and is then hard-linked to
 * `file`, which fails if another process got there first (its database is used instead).
 */
function createWhole(file: string): void {
  const tmp = `${file}.new-${process.pid}-${Date.now()}`;
  try {
    const db = connect(tmp);
    try {
      db.pragma('journal_mode = WAL');
      migrate(db);
    } finally {
      db.close();
    }
    try {
      fs.linkSync(tmp, file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  } finally {
    for (const f of [tmp, `${tmp}-wal`, `${tmp}-shm`]) fs.rmSync(f, { force: true });
  }
}

/** Run `fn`, retrying for up to 30 s while SQLite reports the database busy or locked. */
function withBusyRetry<T>(fn: () => T): T {
  const deadline = Date.now() + 30_000;
  const nap = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    try {
      return fn();
    } catch (e) {
      const code = String((e as { code?: unknown }).code ?? '');
      if (!/^SQLITE_(BUSY|LOCKED)/.test(code) || Date.now() > deadline) throw e;
      Atomics.wait(nap, 0, 0, 5 + Math.floor(Math.random() * 20));
    }
  }
}

function migrate(db: DB): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current >= MIGRATIONS.length) return;
  // BEGIN IMMEDIATE takes the write lock first, so two processes never migrate at once.
  const run = db.transaction(() => {
    const v = db.pragma('user_version', { simple: true }) as number;
    for (let i = v; i < MIGRATIONS.length; i++) db.exec(MIGRATIONS[i]!);
    db.pragma(`user_version = ${MIGRATIONS.length}`);
  });
  run.immediate();
}

/**
 * How many events the table keeps (the newest; `events --since` replays from them). docker keeps
 * its last 256 in memory; a removed --rm container's exit code is read back from its 'die'.
 */
export const EVENTS_KEPT = 10_000;

/** Record an event (docker `events` shape: type, action, actor); every 100th insert trims the oldest beyond EVENTS_KEPT. */
export function addEvent(db: DB, type: string, action: string, actorId: string, attrs: Record<string, string> = {}): void {
  const ns = BigInt(Date.now()) * 1_000_000n;
  const seq = Number(
    db.prepare('INSERT INTO events (time_ns, type, action, actor_id, attrs) VALUES (?, ?, ?, ?, ?)').run(ns, type, action, actorId, JSON.stringify(attrs)).lastInsertRowid,
  );
  if (seq % 100 === 0 && seq > EVENTS_KEPT) db.prepare('DELETE FROM events WHERE seq <= ?').run(seq - EVENTS_KEPT);
}

/** The attributes of the latest `action` event of `actorId`, if there is one. */
export function lastEvent(db: DB, type: string, action: string, actorId: string): Record<string, string> | undefined {
  const row = db.prepare('SELECT attrs FROM events WHERE type = ? AND action = ? AND actor_id = ? ORDER BY seq DESC LIMIT 1').get(type, action, actorId) as { attrs: string } | undefined;
  return row ? (JSON.parse(row.attrs) as Record<string, string>) : undefined;
}

export function nowIso(): string {
  return new Date().toISOString();
}
