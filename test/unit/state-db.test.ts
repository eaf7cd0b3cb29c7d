import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const DB_MODULE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'state', 'db.js');

test('many processes opening one new database at once all succeed', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hull-db-'));
  const file = path.join(dir, 'hull.db');
  const script = `import { openDb } from ${JSON.stringify(DB_MODULE)};
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
  fs.rmSync(dir, { recursive: true, force: true });
});
