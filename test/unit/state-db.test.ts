import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { addEvent, EVENTS_KEPT, openDb } from '../../src/state/db.js';

const DB_MODULE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'state', 'db.js');

// Each process opens the database at the same instant (they spin until a shared start time):
// with a database created in place, several of them found it in rollback mode and switched it
// to WAL together, and SQLite refuses such concurrent read-to-write upgrades at once with
// SQLITE_BUSY ("database is locked"), without waiting. A new database is now created whole in
// a private file and linked into place, so nobody ever switches a shared one.
test('many processes opening one new database at the same instant all succeed', async () => {
  for (let round = 0; round < 5; round++) await openTogether();
});

async function openTogether(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-db-'));
  const file = path.join(dir, 'hull.db');
  const at = Date.now() + 1500;
  const script = `import { openDb } from ${JSON.stringify(DB_MODULE)};
while (Date.now() < ${at}) {}
const db = openDb(${JSON.stringify(file)});
db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run('p' + process.pid, 'x');`;
  const runs = Array.from({ length: 8 }, () => new Promise<{ code: number | null; err: string }>((resolve) => {
    const c = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    c.on('close', (code) => resolve({ code, err }));
  }));
  const results = await Promise.all(runs);
  for (const r of results) assert.equal(r.code, 0, r.err);
  const { openDb } = (await import(DB_MODULE)) as typeof import('../../src/state/db.js');
  const db = openDb(file);
  assert.equal((db.prepare("SELECT count(*) AS n FROM meta WHERE key LIKE 'p%'").get() as { n: number }).n, 8);
  assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
  db.close();
  assert.deepEqual(fs.readdirSync(dir).filter((f) => f.includes('.new-')), [], 'no temporary database left');
  fs.rmSync(dir, { recursive: true, force: true });
}

// The mechanism itself: the database file appears whole (a full header saying WAL, the schema's
// user_version) at the instant its name exists, so no process can ever find a new root's
// database half made or in rollback mode.
test('a new database appears under its name whole: WAL mode and the schema already in it', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-db-'));
  const file = path.join(dir, 'hull.db');
  const seen: Buffer[] = [];
  const w = fs.watch(dir, (_ev, name) => {
    if (name !== 'hull.db' || seen.length) return;
    try {
      seen.push(fs.readFileSync(file).subarray(0, 100));
    } catch {
      /* gone again */
    }
  });
  const script = `import { openDb } from ${JSON.stringify(DB_MODULE)};
openDb(${JSON.stringify(file)}).close();`;
  await new Promise<void>((resolve, reject) => {
    const c = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: 'inherit' });
    c.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`exit ${code}`))));
  });
  await new Promise((r) => setTimeout(r, 50));
  w.close();
  assert.equal(seen.length, 1, 'the creation of hull.db was seen');
  const h = seen[0]!;
  assert.equal(h.length, 100, 'the whole 100-byte header was there at once');
  assert.equal(h.subarray(0, 16).toString('latin1'), 'SQLite format 3\0');
  assert.deepEqual([h[18], h[19]], [2, 2], 'file format 2 = WAL');
  assert.ok(h.readUInt32BE(60) >= 2, 'user_version: migrated before it appeared');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('the events table keeps the newest EVENTS_KEPT events (trimmed every 100 inserts)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-events-trim-'));
  try {
    const db = openDb(path.join(dir, 'hull.db'));
    const add = db.transaction((n: number) => {
      for (let i = 0; i < n; i++) addEvent(db, 'container', 'create', `c${i}`);
    });
    add(EVENTS_KEPT + 250);
    const { n, first } = db.prepare('SELECT COUNT(*) AS n, MIN(seq) AS first FROM events').get() as { n: number; first: number };
    assert.ok(n <= EVENTS_KEPT + 100 && n >= EVENTS_KEPT, `${n} kept`);
    assert.equal(first, EVENTS_KEPT + 200 - EVENTS_KEPT + 1, 'the oldest went');
    db.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
