/**
 * The image store: image metadata in SQLite (state/images.ts), blobs in the content store,
 * unpacked layers under layers/<diff id hex>, each unpacked once and shared read-only.
 *
 * An image may be recorded before its layers are unpacked (a pull defers unpacking, see
 * registry/pull.ts): lowerDirs() unpacks what is missing at first use, checking each layer
 * against its diff id then, and removes an image whose layer fails that check, so a broken
 * image never runs and does not stay listed as if it could.
 *
 * open() + resolve() are on the `hull run` path: they prepare a few statements and read a
 * handful of rows; no directory scans, and the tar/zlib code loads only when a layer must be
 * unpacked.
 */
import { removeVmDisk } from '../snapshots/vmdisk.js';
import fs from 'node:fs';
import path from 'node:path';
import { ContentStore } from '../content/store.js';
import { conflict, HullError, invalid, isHullError, notFound } from '../errors.js';
import { type Digest, hex, isDigest, sha256, shortId } from '../oci/digest.js';
import type { ImageConfig } from '../oci/types.js';
import { layout, type RootLayout } from '../paths.js';
import { addEvent, type DB, nowIso, openDb } from '../state/db.js';
import { BuildCacheTables } from '../state/build-cache.js';
import { ImageTables, type ImageRow } from '../state/images.js';
import { parseImageConfig, parseManifest } from './manifest.js';
import { type Reference, digestKey, familiarString, parseReference, tagKey } from './reference.js';

export interface ImageLayer {
  /** sha256 of the uncompressed layer tar. */
  diffId: Digest;
  /** Digest of the layer blob as the manifest names it. */
  blobDigest: Digest;
  mediaType: string;
  /** Blob size in bytes. */
  blobSize: number;
}

export interface ImageRecord {
  /** Config digest: the image id. */
  id: Digest;
  manifestDigest: Digest;
  /** Media type of the manifest. */
  mediaType: string;
  config: ImageConfig;
  /** Bottom layer first. */
  layers: ImageLayer[];
  /** Familiar tags, e.g. 'busybox:latest', 'localhost:5000/app:v1'. */
  tags: string[];
  /** Familiar repo digests, e.g. 'busybox@sha256:...'. */
  repoDigests: string[];
  /** Bytes of file data in all layers (docker's Size). */
  size: number;
  /** The config's `created`, RFC 3339. */
  created?: string;
  /**
   * Whether every layer is unpacked (and so checked against its diff id). A pulled image is
   * recorded before, and unpacked at first use; until then `size` counts the compressed blob
   * of each layer not unpacked yet (what it takes on disk, like `ctr images ls`).
   */
  unpacked?: boolean;
}

/** One line of an rmi / prune result, docker-shaped. */
export type DeleteItem = { Untagged: string } | { Deleted: string };

export interface CommitOptions {
  manifestDigest: Digest;
  /** References to point at the image ('busybox', 'busybox:1.36', 'localhost:5000/app:v1'). */
  tags?: string[];
  /** 'name@sha256:<manifest>' for an image pulled by or from a registry. */
  repoDigest?: string;
  /** Event action recorded: 'load', 'import', 'pull' (default 'load'). */
  action?: string;
  /**
   * Unpack the layers now (checking each against its diff id) before recording the image.
   * false records it with its layer blobs only; lowerDirs() unpacks and checks them at first
   * use. Default true.
   */
  unpack?: boolean;
}

const MAX_JSON = 4 * 1024 * 1024;

/** What a deletion leaves to remove once its transaction has committed. */
interface Garbage {
  layers: string[];
  blobs: string[];
  /** Deleted image ids, whose derived files (VM disks) go too. */
  images?: string[];
}

export class ImageStore {
  readonly layout: RootLayout;
  readonly db: DB;
  readonly t: ImageTables;
  readonly content: ContentStore;

  private constructor(root: string) {
    this.layout = layout(root);
    this.db = openDb(this.layout.db);
    this.t = new ImageTables(this.db);
    this.content = new ContentStore(this.layout.blobs, this.layout.tmp);
  }

  private static readonly opened = new Map<string, ImageStore>();

  /** Open the store under a hull root (cached per root in this process). */
  static open(root: string): ImageStore {
    const abs = path.resolve(root);
    let s = ImageStore.opened.get(abs);
    if (!s || !s.db.open) {
      s = new ImageStore(abs);
      ImageStore.opened.set(abs, s);
    }
    return s;
  }

  // ------------------------------------------------------------------ lookup

  /**
   * Find an image by name (`busybox`, `busybox:1.36`), `name@sha256:<manifest>`, full id
   * (with or without `sha256:`) or a unique id prefix. Throws NOT_FOUND 'No such image: REF'.
   */
  resolve(ref: string): ImageRecord {
    const r = this.tryResolve(ref);
    if (!r) throw notFound(`No such image: ${ref}`);
    return r;
  }

  tryResolve(ref: string): ImageRecord | undefined {
    const id = this.resolveId(ref);
    return id === undefined ? undefined : this.record(id);
  }

  /** The image id a reference names, or undefined. Ambiguous id prefixes are an error. */
  resolveId(ref: string): Digest | undefined {
    const s = ref.trim();
    const full = /^(?:sha256:)?([0-9a-f]{64})$/.exec(s);
    if (full) {
      const id = `sha256:${full[1]}` as Digest;
      return this.t.image(id) ? id : undefined;
    }
    let r: Reference | undefined;
    try {
      r = parseReference(s);
    } catch {
      r = undefined;
    }
    if (r) {
      const id = r.digest ? this.t.imageByRepoDigest(digestKey(r, r.digest)) : this.t.imageByTag(tagKey(r));
      if (id) return id as Digest;
    }
    const short = /^(?:sha256:)?([0-9a-f]{1,63})$/.exec(s);
    if (short) {
      const ids = this.t.idsWithPrefix(`sha256:${short[1]}`, 2);
      if (ids.length > 1) throw invalid(`ambiguous image id prefix ${JSON.stringify(ref)}: matches more than one image`);
      if (ids.length === 1) return ids[0] as Digest;
    }
    return undefined;
  }

  /** Build the record of an image id; undefined when absent. */
  record(id: string): ImageRecord | undefined {
    const row = this.t.image(id);
    if (!row) return undefined;
    return this.fromRow(row);
  }

  private fromRow(row: ImageRow, tags?: string[], repoDigests?: string[]): ImageRecord {
    const config = JSON.parse(row.config_json) as ImageConfig;
    const layerRows = this.t.layersOf(row.id);
    return {
      id: row.id as Digest,
      manifestDigest: row.manifest_digest as Digest,
      mediaType: row.manifest_media_type,
      config,
      layers: layerRows.map((l) => ({
        diffId: l.diff_id as Digest,
        blobDigest: l.blob_digest as Digest,
        mediaType: l.media_type,
        blobSize: l.blob_size,
      })),
      unpacked: layerRows.every((l) => this.t.layer(l.diff_id) !== undefined),
      tags: (tags ?? this.t.tagsOf(row.id)).map(familiarKey),
      repoDigests: (repoDigests ?? this.t.repoDigestsOf(row.id)).map(familiarKey),
      size: row.size,
      created: row.created ?? undefined,
    };
  }

  /**
   * Images, newest first. Intermediate images of `hull build` (untagged, with a cached step on
   * top) are listed only with `all`, as `docker images -a` lists them.
   */
  list(opts: { all?: boolean } = {}): ImageRecord[] {
    const tags = groupBy(this.t.allTags());
    const digests = groupBy(this.t.allRepoDigests());
    const hidden = opts.all ? new Set<string>() : new BuildCacheTables(this.db).intermediates();
    return this.t.allImages().filter((row) => !hidden.has(row.id)).map((row) => this.fromRow(row, tags.get(row.id) ?? [], digests.get(row.id) ?? []));
  }

  /** When the image was added to this store (for images without a `created`). */
  addedAt(id: string): string | undefined {
    return this.t.image(id)?.added_at;
  }

  // ------------------------------------------------------------------ layers

  layerDir(diffId: Digest): string {
    return path.join(this.layout.layers, hex(diffId));
  }

  /**
   * The unpacked layer directories of an image, bottom layer first (overlay wants the top
   * first: reverse them for lowerdir=). Unpacks any layer not yet unpacked (an image pulled
   * without unpacking: its first use), up to $HULL_UNPACK_THREADS (default 2) at once, each
   * checked against its blob size and diff id before its directory appears.
   *
   * Safe when several processes start the same image at once: each unpacks into its own temp
   * dir, the first rename into layers/<hex> wins and the others drop their copies (unpack-
   * layer.ts); the layer row is INSERT OR IGNORE. In one process (the API server) concurrent
   * callers share one unpack per layer.
   *
   * A layer that fails its checks (INVALID_ARGUMENT: diff id or size mismatch, a corrupt
   * stream, a refused tar entry, a damaged blob) means the image cannot run: it is removed
   * (names, record, blobs no other image uses) unless a container uses it, exactly as a pull
   * that unpacked would have kept none of it, and the error says so. Nothing of the failed
   * layer is kept (its temp dir is removed). Other errors (no space, no zstd) leave the image.
   */
  async lowerDirs(img: ImageRecord): Promise<string[]> {
    const missing = img.layers
      .map((l, i) => ({ l, i }))
      .filter(({ l }) => !this.t.layer(l.diffId) || !fs.existsSync(this.layerDir(l.diffId)));
    if (missing.length > 0) {
      const threads = Number(process.env.HULL_UNPACK_THREADS) > 0 ? Math.floor(Number(process.env.HULL_UNPACK_THREADS)) : 2;
      let next = 0;
      let failed: { e: unknown } | undefined;
      const worker = async () => {
        while (!failed && next < missing.length) {
          const { l, i } = missing[next++]!;
          try {
            await this.ensureLayer(l, `layer ${i + 1}/${img.layers.length} (${l.diffId}) of image ${shortId(img.id)}`);
          } catch (e) {
            failed ??= { e };
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(threads, missing.length) }, worker));
      if (failed) {
        if (isHullError(failed.e, 'INVALID_ARGUMENT')) throw this.discardBroken(img, failed.e);
        throw failed.e;
      }
      this.refreshSize(img.id);
    }
    return img.layers.map((l) => this.layerDir(l.diffId));
  }

  /** Unpacks running in this process, by diff id (concurrent callers share one). */
  private readonly unpacking = new Map<string, Promise<number>>();

  /** Unpack one layer from its blob if its directory is not complete yet; returns its size. */
  async ensureLayer(l: ImageLayer, what: string): Promise<number> {
    const dir = this.layerDir(l.diffId);
    const row = this.t.layer(l.diffId);
    if (row && fs.existsSync(dir)) return row.size;
    const running = this.unpacking.get(l.diffId);
    if (running) return running;
    const p = this.unpackLayer(l, what, row !== undefined).finally(() => this.unpacking.delete(l.diffId));
    this.unpacking.set(l.diffId, p);
    return p;
  }

  private async unpackLayer(l: ImageLayer, what: string, staleRow: boolean): Promise<number> {
    if (staleRow) this.t.deleteLayer(l.diffId); // directory vanished: unpack again
    const { unpackLayerBlob } = await import('../snapshots/unpack-layer.js');
    fs.mkdirSync(this.layout.layers, { recursive: true, mode: 0o755 });
    const res = await unpackLayerBlob(this.content, l, { layers: this.layout.layers, tmp: this.layout.tmp }, what);
    let size = res.size;
    if (!res.created) {
      // Another process placed it first; its row may still be on the way.
      size = this.t.layer(l.diffId)?.size ?? res.size;
    }
    this.t.addLayer(l.diffId, size, nowIso());
    for (const w of res.warnings) process.emitWarning(`${what}: ${w}`);
    return size;
  }

  /** Once every layer of an image is unpacked, record its real size (file data in its layers). */
  private refreshSize(id: Digest): void {
    const sizes = this.t.layersOf(id).map((l) => this.t.layer(l.diff_id)?.size);
    if (sizes.some((x) => x === undefined)) return;
    this.db.prepare('UPDATE images SET size = ? WHERE id = ?').run(sizes.reduce((a: number, b) => a + b!, 0), id);
  }

  /**
   * An image whose layer failed its checks at first use: remove it (as `rmi` would, blobs no
   * other image uses included) unless a container uses it, and return the error to throw.
   */
  private discardBroken(img: ImageRecord, e: HullError): HullError {
    const gone: Garbage = { layers: [], blobs: [], images: [] };
    let removed = false;
    this.db
      .transaction(() => {
        if (!this.t.image(img.id) || this.t.containersUsing(img.id).length > 0) return;
        this.deleteImageTx(img.id, [], gone);
        removed = true;
      })
      .immediate();
    this.removeGarbage(gone);
    const name = img.tags[0] ?? img.repoDigests[0] ?? shortId(img.id);
    if (!removed) return e;
    return new HullError('INVALID_ARGUMENT', `${e.message}; image ${name} cannot run and was removed`, {
      cause: e,
      hint: / hashes to .* \(damaged on this host\)/.test(e.message) ? 'pull or load the image again' : 'the image is broken as published: ask its publisher for a fixed one',
    });
  }

  // ------------------------------------------------------------------ commit

  /**
   * Record an image whose manifest, config and layer blobs are all in the content store:
   * verify each (digest, size, diff ids against the config's rootfs.diff_ids), unpack the
   * layers, insert the rows in one transaction, point the tags and repo digest at it.
   */
  async commitImage(opts: CommitOptions): Promise<ImageRecord> {
    const what = `manifest ${opts.manifestDigest}`;
    const mbuf = this.readVerified(opts.manifestDigest, undefined, what);
    const { mediaType, manifest } = parseManifest(mbuf, what);
    const cdesc = manifest.config;
    const cdigest = cdesc.digest as Digest;
    const cbuf = this.readVerified(cdigest, cdesc.size, `config ${cdigest}`);
    const config = parseImageConfig(cbuf, `config ${cdigest}`);
    const diffIds = config.rootfs.diff_ids as Digest[];
    if (diffIds.length !== manifest.layers.length) {
      throw invalid(`${what}: has ${manifest.layers.length} layers but config ${cdigest} rootfs.diff_ids lists ${diffIds.length}`);
    }
    const tagKeys = (opts.tags ?? []).map((t) => {
      const r = parseReference(t);
      if (r.digest) throw invalid(`tag ${JSON.stringify(t)}: a tag cannot contain a digest`);
      return tagKey(r);
    });
    let repoDigestKey: string | undefined;
    if (opts.repoDigest) {
      const r = parseReference(opts.repoDigest, { defaultTag: false });
      if (!r.digest) throw invalid(`repo digest ${JSON.stringify(opts.repoDigest)}: no @sha256:... part`);
      repoDigestKey = digestKey(r, r.digest);
    }
    const layers: ImageLayer[] = manifest.layers.map((d, i) => ({
      diffId: diffIds[i]!,
      blobDigest: d.digest as Digest,
      mediaType: d.mediaType,
      blobSize: d.size,
    }));
    for (const [i, l] of layers.entries()) {
      const have = this.content.size(l.blobDigest);
      const lw = `${what}: layers[${i}] ${l.blobDigest}`;
      if (have === undefined && !this.t.layer(l.diffId)) throw invalid(`${lw}: blob is not in the content store`);
      if (have !== undefined && have !== l.blobSize) throw invalid(`${lw}: size mismatch: blob is ${have} bytes, the manifest says ${l.blobSize}`);
    }
    const id = cdigest;
    const action = opts.action ?? 'load';
    let replaced: Digest[] = [];
    const unpack = opts.unpack ?? true;
    for (let attempt = 0; ; attempt++) {
      const sizes: number[] = [];
      for (const [i, l] of layers.entries()) {
        // Not unpacked yet (unpack: false): the compressed size stands in until lowerDirs unpacks it.
        if (!unpack) sizes.push(this.t.layer(l.diffId)?.size ?? l.blobSize);
        else sizes.push(await this.ensureLayer(l, `layer ${i + 1}/${layers.length} (${l.diffId}) of image ${shortId(id)}`));
      }
      const moved: string[] = [];
      const ok = this.db
        .transaction(() => {
          // A concurrent rmi may have removed a layer between unpacking and now.
          if (unpack && layers.some((l) => !this.t.layer(l.diffId))) return false;
          // Deferred: each layer needs its blob (removeGarbage deletes unreferenced blobs under this same lock).
          const lost = unpack ? undefined : layers.find((l) => !this.t.layer(l.diffId) && !this.content.has(l.blobDigest));
          if (lost) throw invalid(`${what}: layer blob ${lost.blobDigest} was removed by another process meanwhile; try again`);
          const prev = this.t.image(id);
          if (prev && prev.manifest_digest !== opts.manifestDigest) {
            // Loaded again from another manifest: the old manifest and blobs may become garbage.
            replaced = [prev.manifest_digest as Digest, ...this.t.layersOf(id).map((l) => l.blob_digest as Digest)];
          }
          this.t.putImage(
            {
              id,
              manifest_digest: opts.manifestDigest,
              manifest_media_type: mediaType,
              config_json: cbuf.toString('utf8'),
              created: typeof config.created === 'string' ? config.created : null,
              os: config.os,
              architecture: config.architecture,
              size: sizes.reduce((a, b) => a + b, 0),
              added_at: prev?.added_at ?? nowIso(),
            },
            layers.map((l, idx) => ({ idx, diff_id: l.diffId, blob_digest: l.blobDigest, media_type: l.mediaType, blob_size: l.blobSize })),
          );
          for (const k of tagKeys) {
            const old = this.t.setTag(k, id);
            if (old) moved.push(old);
            addEvent(this.db, 'image', 'tag', id, { name: familiarKey(k) });
          }
          if (repoDigestKey) this.t.setRepoDigest(repoDigestKey, id);
          addEvent(this.db, 'image', action, id, tagKeys.length ? { name: familiarKey(tagKeys[0]!) } : {});
          return true;
        })
        .immediate();
      if (ok) break;
      replaced = [];
      if (attempt >= 3) throw conflict(`image ${shortId(id)}: its layers keep being removed by another process; try again`);
    }
    this.dropUnreferencedBlobs(replaced);
    return this.record(id)!;
  }

  /** Read a small blob (manifest, config) and check its digest and, if given, its size. */
  readVerified(digest: Digest, size: number | undefined, what: string): Buffer {
    if (!isDigest(digest)) throw invalid(`${what}: ${JSON.stringify(digest)} is not a sha256 digest`);
    const buf = this.content.readBuffer(digest, MAX_JSON);
    if (size !== undefined && buf.length !== size) throw invalid(`${what}: size mismatch: blob is ${buf.length} bytes, the descriptor says ${size}`);
    if (sha256(buf) !== digest) throw invalid(`${what}: digest mismatch: the stored blob hashes to ${sha256(buf)}`);
    return buf;
  }

  // ------------------------------------------------------------------ tags and removal

  /** Point `target` (a name[:tag]) at the image `source` names. */
  tag(source: string, target: string): ImageRecord {
    const img = this.resolve(source);
    const r = parseReference(target);
    if (r.digest) throw invalid(`refusing to create a tag with a digest reference: ${target}`);
    this.db
      .transaction(() => {
        this.t.setTag(tagKey(r), img.id);
        addEvent(this.db, 'image', 'tag', img.id, { name: familiarString(r) });
      })
      .immediate();
    return this.record(img.id)!;
  }

  /**
   * docker rmi: a name removes that tag (and the image once nothing names it); an id removes
   * the image with all its names (several names need `force`). An image a container uses is
   * refused without `force`; with `force` it loses its names but stays (dangling) so the
   * container keeps its layers.
   */
  remove(ref: string, opts: { force?: boolean } = {}): DeleteItem[] {
    const out: DeleteItem[] = [];
    const gone: Garbage = { layers: [], blobs: [], images: [] };
    this.db
      .transaction(() => {
        const id = this.resolveId(ref);
        if (!id) throw notFound(`No such image: ${ref}`);
        const tags = this.t.tagsOf(id);
        const digests = this.t.repoDigestsOf(id);
        const users = this.t.containersUsing(id);
        const byName = this.nameKey(ref, id);
        if (byName && tags.length + digests.length > 1) {
          // Removing one of several names: only the name goes.
          if (byName.kind === 'tag') this.t.deleteTag(byName.key);
          else this.t.deleteRepoDigest(byName.key);
          out.push({ Untagged: familiarKey(byName.key) });
          addEvent(this.db, 'image', 'untag', id, { name: familiarKey(byName.key) });
          return;
        }
        if (users.length > 0 && !opts.force) {
          const c = users[0]!;
          if (byName) {
            throw conflict(`unable to remove repository reference "${ref}" (must force) - container ${shortId(c.id)} is using its referenced image ${shortId(id)}`);
          }
          throw conflict(`unable to delete ${shortId(id)} (must be forced) - image is being used by ${c.status} container ${shortId(c.id)}`);
        }
        if (!byName && tags.length > 1 && !opts.force) {
          throw conflict(`unable to delete ${shortId(id)} (must be forced) - image is referenced in multiple repositories`);
        }
        for (const k of tags) {
          this.t.deleteTag(k);
          out.push({ Untagged: familiarKey(k) });
          addEvent(this.db, 'image', 'untag', id, { name: familiarKey(k) });
        }
        for (const k of digests) {
          this.t.deleteRepoDigest(k);
          out.push({ Untagged: familiarKey(k) });
        }
        if (users.length > 0) return; // forced: names gone, the image stays for its containers
        this.deleteImageTx(id, out, gone);
      })
      .immediate();
    this.removeGarbage(gone);
    return out;
  }

  /** Remove dangling images (no tags), or with `all` every image no container uses. */
  prune(opts: { all?: boolean } = {}): { deleted: DeleteItem[]; reclaimed: number } {
    const out: DeleteItem[] = [];
    const gone: Garbage = { layers: [], blobs: [], images: [] };
    let reclaimed = 0;
    this.db
      .transaction(() => {
        const used = this.t.imagesInUse();
        const tagged = new Set(this.t.allTags().map((t) => t.image_id));
        // docker: an intermediate image (a build step with a cached step on top) is not dangling
        const intermediate = opts.all ? new Set<string>() : new BuildCacheTables(this.db).intermediates();
        for (const row of this.t.allImages()) {
          if (used.has(row.id)) continue;
          if (!opts.all && (tagged.has(row.id) || intermediate.has(row.id))) continue;
          for (const k of this.t.tagsOf(row.id)) out.push({ Untagged: familiarKey(k) });
          for (const k of this.t.repoDigestsOf(row.id)) out.push({ Untagged: familiarKey(k) });
          this.deleteImageTx(row.id, out, gone);
        }
        for (const d of gone.layers) reclaimed += this.t.layer(d)?.size ?? 0;
      })
      .immediate();
    this.removeGarbage(gone);
    return { deleted: out, reclaimed };
  }

  /**
   * `hull builder prune`: forget every cached build step and remove the images that existed only
   * as build cache (untagged, unused by containers, named by a cache row); tagged images and
   * untagged final images stay, as `docker builder prune` keeps images.
   */
  pruneBuildCache(): { deleted: DeleteItem[]; reclaimed: number; steps: number } {
    const out: DeleteItem[] = [];
    const gone: Garbage = { layers: [], blobs: [], images: [] };
    let reclaimed = 0;
    let steps = 0;
    this.db
      .transaction(() => {
        const cache = new BuildCacheTables(this.db);
        steps = cache.count();
        const intermediate = cache.intermediates();
        const used = this.t.imagesInUse();
        cache.clear();
        for (const id of intermediate) {
          if (used.has(id) || !this.t.image(id)) continue;
          this.deleteImageTx(id, out, gone);
        }
        for (const d of gone.layers) reclaimed += this.t.layer(d)?.size ?? 0;
      })
      .immediate();
    this.removeGarbage(gone);
    return { deleted: out, reclaimed, steps };
  }

  /** Which name (tag or repo digest key) `ref` used, if it was a name rather than an id. */
  private nameKey(ref: string, id: string): { kind: 'tag' | 'digest'; key: string } | undefined {
    if (/^(?:sha256:)?[0-9a-f]{1,64}$/.test(ref.trim())) {
      // Could be a name like 'abc' that is also an id prefix: a tag wins, as in resolveId.
      try {
        const r = parseReference(ref);
        if (!r.digest && this.t.imageByTag(tagKey(r)) === id) return { kind: 'tag', key: tagKey(r) };
      } catch {
        /* an id */
      }
      return undefined;
    }
    const r = parseReference(ref);
    if (r.digest) return { kind: 'digest', key: digestKey(r, r.digest) };
    return { kind: 'tag', key: tagKey(r) };
  }

  /**
   * Delete an image row (cascade: layer list, tags, repo digests) and note the layers and blobs
   * no other image uses; removeGarbage deletes them after re-checking under the write lock.
   */
  private deleteImageTx(id: string, out: DeleteItem[], gone: Garbage): void {
    const row = this.t.image(id);
    if (!row) return;
    const layerRows = this.t.layersOf(id);
    this.t.deleteImage(id);
    gone.images?.push(id);
    out.push({ Deleted: id });
    addEvent(this.db, 'image', 'delete', id);
    const stillUsed = this.t.referencedBlobs();
    for (const b of [row.manifest_digest, row.id, ...layerRows.map((l) => l.blob_digest)]) {
      if (!stillUsed.has(b) && !gone.blobs.includes(b)) gone.blobs.push(b);
    }
    for (const diff of this.t.unreferencedLayers()) {
      if (gone.layers.includes(diff)) continue;
      gone.layers.push(diff);
    }
  }

  /** Remove blobs (written by a failed load or import) that no image references. */
  dropUnreferencedBlobs(digests: Digest[]): void {
    if (digests.length === 0) return;
    this.db
      .transaction(() => {
        const used = this.t.referencedBlobs();
        for (const d of digests) if (!used.has(d)) this.content.delete(d);
      })
      .immediate();
  }

  /** Remove layer directories (unpacked by a failed pull) that no image references. */
  dropUnreferencedLayers(diffIds: Digest[]): void {
    this.removeGarbage({ layers: diffIds.filter((d) => this.t.layer(d) !== undefined), blobs: [] });
  }

  /**
   * After the deleting transaction: under the write lock, drop the rows of layers still unused
   * and move their directories out of layers/ (so a concurrent commit either sees the row or
   * unpacks afresh), then remove them and the unused blobs.
   */
  private removeGarbage(gone: Garbage): void {
    // The VM wall's cached root disk of each deleted image (a file derived from its layers).
    for (const id of gone.images ?? []) removeVmDisk(this.layout.root, id);
    if (gone.layers.length === 0 && gone.blobs.length === 0) return;
    const trash: string[] = [];
    this.db
      .transaction(() => {
        for (const d of gone.layers) {
          // Re-check under the write lock: a concurrent commit may have adopted the layer.
          if (this.t.layerInUse(d)) continue;
          this.t.deleteLayer(d);
          const dir = this.layerDir(d as Digest);
          const tmp = path.join(this.layout.tmp, `rm-layer-${process.pid}-${hex(d as Digest).slice(0, 12)}-${Date.now()}`);
          try {
            fs.renameSync(dir, tmp);
            trash.push(tmp);
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
          }
        }
        const used = this.t.referencedBlobs();
        for (const b of gone.blobs) if (!used.has(b) && isDigest(b)) this.content.delete(b);
      })
      .immediate();
    for (const t of trash) fs.rmSync(t, { recursive: true, force: true });
  }
}

/** 'docker.io/library/busybox:latest' -> 'busybox:latest'. */
export function familiarKey(key: string): string {
  try {
    return familiarString(parseReference(key, { defaultTag: false }));
  } catch {
    return key;
  }
}

function groupBy(rows: { name: string; image_id: string }[]): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const r of rows) {
    const a = m.get(r.image_id);
    if (a) a.push(r.name);
    else m.set(r.image_id, [r.name]);
  }
  return m;
}
