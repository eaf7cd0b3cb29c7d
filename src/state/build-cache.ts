/**
 * SQL for hull build's layer cache (table build_cache): cache key -> the image a step made.
 * Each row goes with its image (ON DELETE CASCADE); an untagged image that is the parent of a
 * cached step is an intermediate image, which `images` hides as docker does.
 */
import type { DB } from './db.js';

export class BuildCacheTables {
  constructor(readonly db: DB) {}

  /** The image a step with this key made, if it is still here. */
  lookup(key: string): string | undefined {
    const r = this.db.prepare('SELECT c.image_id FROM build_cache c JOIN images i ON i.id = c.image_id WHERE c.key = ?').get(key) as { image_id: string } | undefined;
    return r?.image_id;
  }

  put(key: string, imageId: string, parentId: string, at: string): void {
    this.db.prepare('INSERT OR REPLACE INTO build_cache (key, image_id, parent_id, created_at) VALUES (?, ?, ?, ?)').run(key, imageId, parentId, at);
  }

  /** Untagged images with a cached step on top of them (docker's intermediate images). */
  intermediates(): Set<string> {
    const rows = this.db
      .prepare('SELECT DISTINCT parent_id AS id FROM build_cache WHERE parent_id NOT IN (SELECT image_id FROM tags) AND parent_id NOT IN (SELECT image_id FROM repo_digests)')
      .all() as { id: string }[];
    return new Set(rows.map((r) => r.id));
  }

  /** Images any cache row names (as a step's result or parent). */
  cachedImages(): Set<string> {
    const rows = this.db.prepare('SELECT image_id AS id FROM build_cache UNION SELECT parent_id FROM build_cache').all() as { id: string }[];
    return new Set(rows.map((r) => r.id).filter(Boolean));
  }

  count(): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM build_cache').get() as { n: number }).n;
  }

  clear(): void {
    this.db.prepare('DELETE FROM build_cache').run();
  }
}
