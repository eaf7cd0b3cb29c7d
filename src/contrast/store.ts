/** The last contrast report of a hull root, kept in the state database's `meta` table. */
import { layout } from '../paths.js';
import { openDb } from '../state/db.js';
import { CONTRAST_FORMAT, type ContrastReport } from './types.js';

export const META_KEY = 'contrast.last';

export function saveLastContrast(root: string, rep: ContrastReport): void {
  const db = openDb(layout(root).db);
  db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(META_KEY, JSON.stringify(rep));
}

/** The stored report, or undefined when there is none or it is of another format. */
export function loadLastContrast(root: string): ContrastReport | undefined {
  const db = openDb(layout(root).db);
  const row = db.prepare('SELECT value FROM meta WHERE key = ?').get(META_KEY) as { value: string } | undefined;
  if (!row) return undefined;
  try {
    const v = JSON.parse(row.value) as ContrastReport;
    return v.format === CONTRAST_FORMAT ? v : undefined;
  } catch {
    return undefined;
  }
}
