/**
 * `hull load`: docker save tarballs (manifest.json, legacy `<id>/layer.tar` or blobs/; the older
 * layout with `repositories` and no manifest.json in load-legacy.ts) and OCI
 * image-layout archives (oci-layout + index.json), plain or compressed, from a file or stdin.
 * The archive is read once into the content store (archive-read.ts); each image found is then
 * committed atomically by ImageStore.commitImage. Blobs the load added are removed again if it
 * fails, so a refused archive leaves no trace.
 */
import fs from 'node:fs';
import type { Readable } from 'node:stream';
import { invalid } from '../errors.js';
import { type Digest, isDigest, sha256 } from '../oci/digest.js';
import { INDEX_TYPES, MT } from '../oci/media.js';
import type { Descriptor, ImageManifest } from '../oci/types.js';
import { sniffCompression } from '../snapshots/unpack-layer.js';
import { type ArchiveReader, readArchive } from './archive-read.js';
import { isLegacyArchive, planLegacy } from './load-legacy.js';
import { parseImageConfig, parseManifest, parseManifestOrIndex } from './manifest.js';
import { familiarString, parseReference } from './reference.js';
import type { ImageRecord, ImageStore } from './store.js';
import { goArch } from './stream-util.js';

export interface Loaded {
  image: ImageRecord;
  /** Familiar names the archive gave it, as loaded. */
  tags: string[];
}

export interface LoadPlan {
  manifestDigest: Digest;
  tags: string[];
  /** Names this image in errors. */
  what: string;
}

/** Docker's manifest.json entry. */
interface DockerArchiveEntry {
  Config: string;
  RepoTags: string[];
  Layers: string[];
}

export async function loadArchive(store: ImageStore, input: Readable, opts: { what?: string } = {}): Promise<Loaded[]> {
  const what = opts.what ?? 'archive';
  store.content.sweepTemp(); // temp files and dirs of crashed loads (older than an hour)
  const written: Digest[] = [];
  try {
    const ar = await readArchive(input, store.content, what, written);
    const plans = planLoad(ar, store, what);
    const out: Loaded[] = [];
    for (const p of plans) {
      const image = await store.commitImage({ manifestDigest: p.manifestDigest, tags: p.tags, action: 'load' });
      out.push({ image, tags: p.tags.map((t) => familiarString(parseReference(t))) });
    }
    return out;
  } catch (e) {
    store.dropUnreferencedBlobs(written);
    throw e;
  }
}

/** Decide which images the archive holds and store the manifests docker archives lack. */
export function planLoad(ar: ArchiveReader, store: ImageStore, what: string): LoadPlan[] {
  const docker = ar.has('manifest.json') ? parseDockerManifest(ar.document('manifest.json', 'file'), `${what}: manifest.json`) : undefined;
  if (ar.has('index.json')) return planOci(ar, store, what, docker);
  if (docker) return planDocker(ar, store, what, docker);
  if (isLegacyArchive(ar)) return planLegacy(ar, store, what, (d) => headCompression(store, d as Digest));
  throw invalid(`${what}: neither a docker save archive (no manifest.json, no repositories) nor an OCI image layout (no index.json)`);
}

export function parseDockerManifest(buf: Buffer, what: string): DockerArchiveEntry[] {
  let v: unknown;
  try {
    v = JSON.parse(buf.toString('utf8'));
  } catch (e) {
    throw invalid(`${what} does not parse as JSON: ${(e as Error).message}`);
  }
  if (!Array.isArray(v)) throw invalid(`${what}: not a JSON array`);
  return v.map((x, i) => {
    const f = `${what}[${i}]`;
    if (typeof x !== 'object' || x === null) throw invalid(`${f}: not an object`);
    const o = x as Record<string, unknown>;
    if (typeof o.Config !== 'string') throw invalid(`${f}.Config: missing or not a string`);
    if (!Array.isArray(o.Layers) || !o.Layers.every((l) => typeof l === 'string')) throw invalid(`${f}.Layers: missing or not a list of paths`);
    const tags = o.RepoTags ?? [];
    if (!Array.isArray(tags) || !tags.every((t) => typeof t === 'string')) throw invalid(`${f}.RepoTags: not a list of strings`);
    for (const t of tags as string[]) {
      try {
        if (parseReference(t).digest) throw new Error('digest');
      } catch {
        throw invalid(`${f}.RepoTags: ${JSON.stringify(t)} is not a valid tag`);
      }
    }
    return { Config: o.Config, Layers: o.Layers as string[], RepoTags: tags as string[] };
  });
}

function blobPath(d: string): string {
  return `blobs/sha256/${d.slice('sha256:'.length)}`;
}

/** Check a blob named by a descriptor is present (from the archive or already stored). */
function requireBlob(ar: ArchiveReader, store: ImageStore, d: Descriptor, field: string): void {
  if (!isDigest(d.digest)) throw invalid(`${field}.digest: ${JSON.stringify(d.digest)} is not a sha256 digest`);
  const s = ar.c.stored.get(blobPath(d.digest));
  const size = s?.size ?? store.content.size(d.digest);
  if (size === undefined) throw invalid(`${field}: blob ${d.digest} is not in the archive`);
  if (size !== d.size) throw invalid(`${field}: size mismatch: blob ${d.digest} is ${size} bytes, the descriptor says ${d.size}`);
}

function planOci(ar: ArchiveReader, store: ImageStore, what: string, docker: DockerArchiveEntry[] | undefined): LoadPlan[] {
  const layoutDoc = ar.has('oci-layout') ? ar.document('oci-layout', 'file') : undefined;
  if (layoutDoc) {
    let v: { imageLayoutVersion?: unknown } | undefined;
    try {
      v = JSON.parse(layoutDoc.toString('utf8'));
    } catch {
      throw invalid(`${what}: oci-layout does not parse as JSON`);
    }
    if (typeof v?.imageLayoutVersion !== 'string') throw invalid(`${what}: oci-layout.imageLayoutVersion missing`);
  }
  const idx = parseManifestOrIndex(ar.document('index.json', 'file'), `${what}: index.json`, MT.ociIndex);
  if (idx.kind !== 'index') throw invalid(`${what}: index.json is not an image index`);
  // Tags from docker's manifest.json (docker >= 25 writes both), by config path.
  const dockerTags = new Map<string, string[]>();
  for (const e of docker ?? []) dockerTags.set(ar.resolve(e.Config), e.RepoTags);
  const plans: LoadPlan[] = [];
  idx.index.manifests.forEach((desc, i) => {
    const field = `${what}: index.json manifests[${i}]`;
    const m = pickManifest(ar, store, desc, field);
    const names: string[] = [];
    const ann = desc.annotations ?? {};
    const full = ann['io.containerd.image.name'];
    const refName = ann['org.opencontainers.image.ref.name'];
    for (const n of [full, refName && /[:/]/.test(refName) ? refName : undefined]) {
      if (!n) continue;
      try {
        const r = parseReference(n);
        if (!r.digest && !names.includes(n)) names.push(n);
      } catch {
        throw invalid(`${field}.annotations: ${JSON.stringify(n)} is not a valid image name`);
      }
    }
    for (const t of dockerTags.get(blobPath(m.manifest.config.digest)) ?? []) if (!names.includes(t)) names.push(t);
    const dedup = new Map(names.map((n) => [familiarString(parseReference(n)), n]));
    plans.push({ manifestDigest: m.digest, tags: [...dedup.values()], what: field });
  });
  if (plans.length === 0) throw invalid(`${what}: index.json lists no manifests`);
  return plans;
}

/** Follow a descriptor through nested indexes to the manifest for this host's platform. */
function pickManifest(ar: ArchiveReader, store: ImageStore, desc: Descriptor, field: string, depth = 0): { digest: Digest; manifest: ImageManifest } {
  if (depth > 4) throw invalid(`${field}: indexes nested too deep`);
  requireBlob(ar, store, desc, field);
  const buf = store.readVerified(desc.digest as Digest, desc.size, field);
  const p = parseManifestOrIndex(buf, field, desc.mediaType);
  if (p.kind === 'manifest') {
    requireBlob(ar, store, p.manifest.config, `${field} config`);
    p.manifest.layers.forEach((l, j) => requireBlob(ar, store, l, `${field} layers[${j}]`));
    return { digest: desc.digest as Digest, manifest: p.manifest };
  }
  const arch = goArch();
  const candidates = p.index.manifests.filter((m) => !INDEX_TYPES.includes(m.mediaType) || m.platform);
  const match =
    candidates.find((m) => m.platform?.os === 'linux' && m.platform?.architecture === arch) ??
    (candidates.length === 1 ? candidates[0] : undefined) ??
    candidates.find((m) => !m.platform);
  if (!match) {
    const have = p.index.manifests.map((m) => (m.platform ? `${m.platform.os}/${m.platform.architecture}` : '?')).join(', ');
    throw invalid(`${field}: no manifest for linux/${arch} in the index (has ${have})`);
  }
  return pickManifest(ar, store, match, `${field} -> ${match.digest}`, depth + 1);
}

function planDocker(ar: ArchiveReader, store: ImageStore, what: string, entries: DockerArchiveEntry[]): LoadPlan[] {
  if (entries.length === 0) throw invalid(`${what}: manifest.json lists no images`);
  return entries.map((e, i) => {
    const field = `${what}: manifest.json[${i}]`;
    const cfgBuf = ar.document(e.Config, `${field}.Config`);
    const config = parseImageConfig(cfgBuf, `${field}.Config ${e.Config}`);
    if (config.rootfs.diff_ids.length !== e.Layers.length) {
      throw invalid(`${field}: lists ${e.Layers.length} layers but its config has ${config.rootfs.diff_ids.length} diff_ids`);
    }
    const cfg = ar.blob(e.Config, `${field}.Config`);
    let zstd = false;
    const layers = e.Layers.map((lp, j) => {
      const b = ar.blob(lp, `${field}.Layers[${j}]`);
      const c = headCompression(store, b.digest);
      if (c === 'zstd') zstd = true;
      return { ...b, c };
    });
    const manifest: ImageManifest = zstd
      ? {
          schemaVersion: 2,
          mediaType: MT.ociManifest,
          config: { mediaType: MT.ociConfig, digest: cfg.digest, size: cfg.size },
          layers: layers.map((l) => ({ mediaType: l.c === 'gzip' ? MT.ociLayerGzip : l.c === 'zstd' ? MT.ociLayerZstd : MT.ociLayer, digest: l.digest, size: l.size })),
        }
      : {
          schemaVersion: 2,
          mediaType: MT.dockerManifest,
          config: { mediaType: MT.dockerConfig, digest: cfg.digest, size: cfg.size },
          layers: layers.map((l) => ({ mediaType: l.c === 'gzip' ? MT.dockerLayerGzip : MT.dockerLayer, digest: l.digest, size: l.size })),
        };
    const mbuf = Buffer.from(JSON.stringify(manifest));
    const existed = store.content.has(sha256(mbuf));
    const put = store.content.putBuffer(mbuf);
    if (!existed) ar.c.written.push(put.digest);
    parseManifest(mbuf, field);
    return { manifestDigest: put.digest, tags: e.RepoTags, what: field };
  });
}

function headCompression(store: ImageStore, d: Digest): 'gzip' | 'zstd' | 'none' {
  const fd = fs.openSync(store.content.path(d), 'r');
  try {
    const b = Buffer.alloc(4);
    const n = fs.readSync(fd, b, 0, 4, 0);
    return sniffCompression(b.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
}
