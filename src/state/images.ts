/**
 * SQL for the image tables (images, image_layers, layers, tags, repo_digests). Statements are
 * prepared once per database handle and reused, so a lookup costs microseconds.
 */
import type { DB } from './db.js';

export interface ImageRow {
  id: string;
  manifest_digest: string;
  manifest_media_type: string;
  config_json: string;
  created: string | null;
  os: string;
  architecture: string;
  size: number;
  added_at: string;
}

export interface ImageLayerRow {
  image_id: string;
  idx: number;
  diff_id: string;
  blob_digest: string;
  media_type: string;
  blob_size: number;
}

export interface LayerRow {
  diff_id: string;
  size: number;
  unpacked_at: string;
}

type Stmt = import('better-sqlite3').Statement<unknown[]>;

/** Prepared statements over one database handle. */
export class ImageTables {
  readonly db: DB;
  private readonly cache = new Map<string, Stmt>();

  constructor(db: DB) {
    this.db = db;
  }

  private st(sql: string): Stmt {
    let s = this.cache.get(sql);
    if (!s) {
      s = this.db.prepare<unknown[]>(sql);
      this.cache.set(sql, s);
    }
    return s;
  }

  image(id: string): ImageRow | undefined {
    return this.st('SELECT * FROM images WHERE id = ?').get(id) as ImageRow | undefined;
  }

  /** Up to `limit` image ids starting with `prefix` ('sha256:abc...'), via the primary key index. */
  idsWithPrefix(prefix: string, limit = 2): string[] {
    // Every char after the prefix is a hex digit, all below '~'.
    const rows = this.st('SELECT id FROM images WHERE id >= ? AND id < ? ORDER BY id LIMIT ?').all(prefix, `${prefix}~`, limit) as { id: string }[];
    return rows.map((r) => r.id);
  }

  imageByTag(tagKey: string): string | undefined {
    const r = this.st('SELECT image_id FROM tags WHERE name = ?').get(tagKey) as { image_id: string } | undefined;
    return r?.image_id;
  }

  imageByRepoDigest(key: string): string | undefined {
    const r = this.st('SELECT image_id FROM repo_digests WHERE name = ?').get(key) as { image_id: string } | undefined;
    return r?.image_id;
  }

  imagesByManifest(manifestDigest: string): string[] {
    return (this.st('SELECT id FROM images WHERE manifest_digest = ?').all(manifestDigest) as { id: string }[]).map((r) => r.id);
  }

  layersOf(imageId: string): ImageLayerRow[] {
    return this.st('SELECT * FROM image_layers WHERE image_id = ? ORDER BY idx').all(imageId) as ImageLayerRow[];
  }

  tagsOf(imageId: string): string[] {
    return (this.st('SELECT name FROM tags WHERE image_id = ? ORDER BY name').all(imageId) as { name: string }[]).map((r) => r.name);
  }

  repoDigestsOf(imageId: string): string[] {
    return (this.st('SELECT name FROM repo_digests WHERE image_id = ? ORDER BY name').all(imageId) as { name: string }[]).map((r) => r.name);
  }

  allImages(): ImageRow[] {
    return this.st('SELECT * FROM images ORDER BY COALESCE(created, added_at) DESC, id').all() as ImageRow[];
  }

  allTags(): { name: string; image_id: string }[] {
    return this.st('SELECT name, image_id FROM tags ORDER BY name').all() as { name: string; image_id: string }[];
  }

  allRepoDigests(): { name: string; image_id: string }[] {
    return this.st('SELECT name, image_id FROM repo_digests ORDER BY name').all() as { name: string; image_id: string }[];
  }

  layer(diffId: string): LayerRow | undefined {
    return this.st('SELECT * FROM layers WHERE diff_id = ?').get(diffId) as LayerRow | undefined;
  }

  /** Record a layer directory as complete; a second writer of the same layer is a no-op. */
  addLayer(diffId: string, size: number, at: string): void {
    this.st('INSERT OR IGNORE INTO layers (diff_id, size, unpacked_at) VALUES (?, ?, ?)').run(diffId, size, at);
  }

  deleteLayer(diffId: string): void {
    this.st('DELETE FROM layers WHERE diff_id = ?').run(diffId);
  }

  layerInUse(diffId: string): boolean {
    return this.st('SELECT 1 FROM image_layers WHERE diff_id = ? LIMIT 1').get(diffId) !== undefined;
  }

  /** Layers no image refers to any more. */
  unreferencedLayers(): string[] {
    return (
      this.st('SELECT diff_id FROM layers WHERE diff_id NOT IN (SELECT diff_id FROM image_layers)').all() as { diff_id: string }[]
    ).map((r) => r.diff_id);
  }

  /** Blob digests (manifest, config, layer blobs) still referenced by any image. */
  referencedBlobs(): Set<string> {
    const s = new Set<string>();
    for (const r of this.st('SELECT manifest_digest, id FROM images').all() as { manifest_digest: string; id: string }[]) {
      s.add(r.manifest_digest);
      s.add(r.id);
    }
    for (const r of this.st('SELECT DISTINCT blob_digest FROM image_layers').all() as { blob_digest: string }[]) s.add(r.blob_digest);
    return s;
  }

  /** Insert or replace an image with its layers (caller holds a transaction). */
  putImage(row: ImageRow, layers: Omit<ImageLayerRow, 'image_id'>[]): void {
    this.st(
      `INSERT INTO images (id, manifest_digest, manifest_media_type, config_json, created, os, architecture, size, added_at)
       VALUES (@id, @manifest_digest, @manifest_media_type, @config_json, @created, @os, @architecture, @size, @added_at)
       ON CONFLICT(id) DO UPDATE SET manifest_digest = excluded.manifest_digest,
         manifest_media_type = excluded.manifest_media_type, size = excluded.size`,
    ).run(row);
    this.st('DELETE FROM image_layers WHERE image_id = ?').run(row.id);
    const ins = this.st(
      'INSERT INTO image_layers (image_id, idx, diff_id, blob_digest, media_type, blob_size) VALUES (?, ?, ?, ?, ?, ?)',
    );
    for (const l of layers) ins.run(row.id, l.idx, l.diff_id, l.blob_digest, l.media_type, l.blob_size);
  }

  /** Point a tag at an image; returns the image it pointed at before, if another. */
  setTag(tagKey: string, imageId: string): string | undefined {
    const prev = this.imageByTag(tagKey);
    this.st('INSERT INTO tags (name, image_id) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id').run(tagKey, imageId);
    return prev !== imageId ? prev : undefined;
  }

  deleteTag(tagKey: string): boolean {
    return this.st('DELETE FROM tags WHERE name = ?').run(tagKey).changes > 0;
  }

  setRepoDigest(key: string, imageId: string): void {
    this.st('INSERT INTO repo_digests (name, image_id) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id').run(key, imageId);
  }

  deleteRepoDigest(key: string): boolean {
    return this.st('DELETE FROM repo_digests WHERE name = ?').run(key).changes > 0;
  }

  /** Deletes the image, its layer list, tags and repo digests (cascade). */
  deleteImage(id: string): boolean {
    return this.st('DELETE FROM images WHERE id = ?').run(id).changes > 0;
  }

  /** Containers (any state) created from this image. */
  containersUsing(imageId: string): { id: string; name: string; status: string }[] {
    return this.st('SELECT id, name, status FROM containers WHERE image_id = ?').all(imageId) as { id: string; name: string; status: string }[];
  }

  imagesInUse(): Set<string> {
    return new Set((this.st('SELECT DISTINCT image_id FROM containers').all() as { image_id: string }[]).map((r) => r.image_id));
  }
}
