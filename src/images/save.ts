/**
 * `hull save`: an OCI image-layout archive (oci-layout, index.json, blobs/sha256/...) with
 * Docker's manifest.json beside it, so `hull load`, `podman load`, `skopeo copy oci-archive:`
 * and `docker load` all accept it. Blobs are written verbatim, so image ids (config digests)
 * and manifest digests survive the round trip. Deterministic: fixed entry order and mtimes.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type * as TarStream from 'tar-stream';
import { invalid } from '../errors.js';
import { type Digest, hex } from '../oci/digest.js';
import { MT } from '../oci/media.js';
import type { Descriptor, ImageIndex } from '../oci/types.js';
import { familiarString, formatReference, parseReference, tagKey, type Reference } from './reference.js';
import type { ImageRecord, ImageStore } from './store.js';

const require = createRequire(import.meta.url);

export interface SaveEntry {
  image: ImageRecord;
  /** Names to record for it (parsed references with a tag); empty when saved by id. */
  names: Reference[];
}

/** Which images and names `refs` select; a name saves that tag, an id saves the image unnamed. */
export function selectImages(store: ImageStore, refs: string[]): SaveEntry[] {
  const byId = new Map<string, SaveEntry>();
  for (const ref of refs) {
    const img = store.resolve(ref);
    let e = byId.get(img.id);
    if (!e) {
      e = { image: img, names: [] };
      byId.set(img.id, e);
    }
    // A name saves that tag; an id (or name@digest) saves the image without adding a name.
    let r: Reference | undefined;
    try {
      r = parseReference(ref);
    } catch {
      r = undefined;
    }
    if (!r || r.digest || store.t.imageByTag(tagKey(r)) !== img.id) continue;
    if (!e.names.some((n) => formatReference(n) === formatReference(r))) e.names.push(r);
  }
  return [...byId.values()];
}

/** index.json and manifest.json for the selection (pure). */
export function buildIndexes(entries: SaveEntry[]): { index: ImageIndex; dockerManifest: object[] } {
  const manifests: Descriptor[] = [];
  const dockerManifest: object[] = [];
  for (const { image, names } of entries) {
    const desc = (annotations?: Record<string, string>): Descriptor => ({
      mediaType: image.mediaType,
      digest: image.manifestDigest,
      size: -1,
      ...(annotations ? { annotations } : {}),
    });
    if (names.length === 0) manifests.push(desc());
    for (const n of names) {
      manifests.push(desc({ 'io.containerd.image.name': formatReference(n), 'org.opencontainers.image.ref.name': n.tag ?? 'latest' }));
    }
    dockerManifest.push({
      Config: `blobs/sha256/${hex(image.id)}`,
      RepoTags: names.length > 0 ? names.map((n) => familiarString(n)) : null,
      Layers: image.layers.map((l) => `blobs/sha256/${hex(l.blobDigest)}`),
    });
  }
  return { index: { schemaVersion: 2, mediaType: MT.ociIndex, manifests }, dockerManifest };
}

/** Write the archive to `out` (a path: written to a temp file and renamed; or a stream). */
export async function saveArchive(store: ImageStore, refs: string[], out: string | Writable): Promise<void> {
  if (refs.length === 0) throw invalid('save: no images given');
  const entries = selectImages(store, refs);
  const { index, dockerManifest } = buildIndexes(entries);
  for (const m of index.manifests) m.size = store.content.size(m.digest as Digest) ?? -1;
  const blobs: Digest[] = [];
  for (const { image } of entries) {
    for (const d of [image.manifestDigest, image.id, ...image.layers.map((l) => l.blobDigest)]) {
      if (!store.content.has(d)) throw invalid(`save: blob ${d} of image ${image.id} is missing from the content store`);
      if (!blobs.includes(d)) blobs.push(d);
    }
  }
  const tar = require('tar-stream') as typeof TarStream;
  const pack = tar.pack();
  const mtime = new Date(0);
  const dirEntry = (name: string) => new Promise<void>((res, rej) => pack.entry({ name, type: 'directory', mode: 0o755, mtime }, (e) => (e ? rej(e) : res())));
  const small = (name: string, data: Buffer) =>
    new Promise<void>((res, rej) => pack.entry({ name, size: data.length, mode: 0o644, mtime }, data, (e) => (e ? rej(e) : res())));
  const writeAll = async () => {
    await small('oci-layout', Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })));
    await dirEntry('blobs');
    await dirEntry('blobs/sha256');
    for (const d of blobs) {
      const size = store.content.size(d)!;
      const sink = pack.entry({ name: `blobs/sha256/${hex(d)}`, size, mode: 0o644, mtime });
      await pipeline(store.content.createReadStream(d), sink as unknown as NodeJS.WritableStream);
    }
    await small('index.json', Buffer.from(JSON.stringify(index)));
    await small('manifest.json', Buffer.from(JSON.stringify(dockerManifest)));
    pack.finalize();
  };
  let tmp: string | undefined;
  let dest: Writable;
  if (typeof out === 'string') {
    tmp = path.join(path.dirname(path.resolve(out)), `.${path.basename(out)}.hull-${process.pid}.tmp`);
    dest = fs.createWriteStream(tmp, { mode: 0o644 });
  } else dest = out;
  try {
    const producing = writeAll();
    const consuming = pipeline(pack as unknown as NodeJS.ReadableStream, dest, { end: typeof out === 'string' });
    const [a, b] = await Promise.allSettled([producing, consuming]);
    if (a.status === 'rejected') throw a.reason;
    if (b.status === 'rejected') throw b.reason;
    if (tmp) fs.renameSync(tmp, out as string);
  } catch (e) {
    if (tmp) fs.rmSync(tmp, { force: true });
    throw e;
  }
}
