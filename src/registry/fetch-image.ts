import fs from 'node:fs';
import type { ContentStore } from '../content/store.js';
import { invalid } from '../errors.js';
import { type Digest, sha256, shortId } from '../oci/digest.js';
import type { Descriptor, ImageConfig, ImageManifest } from '../oci/types.js';
import type { Reference } from '../images/reference.js';
import { type RegistryClient } from './client.js';
import { downloadBlob } from './blobs.js';
import type { ProgressListener } from './events.js';
import { readBody } from './http.js';
import { checkRunnableImage, decodeManifest, type Fetched, MANIFEST_ACCEPT, MAX_MANIFEST_BYTES } from './manifest.js';
import { choosePlatform, formatPlatform, normalisePlatform, type PlatformSpec } from './platform.js';

/**
 * Fetch one image (manifest, config, layers) from a registry into a content store, every blob
 * verified while it streams. Blobs already in the store are not fetched again, so a pull that
 * was interrupted resumes with what is missing. Manifests are written last, once every blob
 * they name is in place.
 */
export interface FetchOptions {
  /** The platform to choose from an index. */
  platform: PlatformSpec;
  /** Whether the platform was asked for explicitly (then a single-platform image must match it). */
  platformExplicit?: boolean;
  /** Layer downloads at once. Default 3. */
  concurrency?: number;
  onEvent?: ProgressListener;
  /**
   * Called once per layer when its blob is in the store (fetched now or already there), with
   * its diff id from the config; the pull uses it to unpack layers while others download.
   */
  onLayer?: (layer: Descriptor & { digest: Digest }, diffId: Digest, index: number) => void;
}

export interface FetchedImage {
  /** The digest the reference resolved to (an index's digest for a multi-platform image): docker's repo digest. */
  repoDigest: Digest;
  manifestDigest: Digest;
  manifestMediaType: string;
  manifest: ImageManifest;
  config: ImageConfig;
  /** Bytes fetched over the network for blobs (layers and config). */
  bytesFetched: number;
  /** Layer digests fetched now (the others were in the store already). */
  fetchedLayers: Set<Digest>;
}

/** GET a manifest by tag or digest, verified against `expect` (a digest reference or an index entry). */
export async function getManifest(client: RegistryClient, repo: string, ref: string, expect: { digest?: Digest; size?: number }, what: string): Promise<{ body: Buffer; digest: Digest; fetched: Fetched }> {
  const res = await client.request({ method: 'GET', path: `/v2/${repo}/manifests/${ref}`, headers: { Accept: MANIFEST_ACCEPT }, scopes: [`repository:${repo}:pull`] });
  if (res.status === 404) await client.fail(res, `manifest for ${what} not found`);
  if (res.status !== 200) await client.fail(res, `fetching the manifest of ${what}`);
  const body = await readBody(res, MAX_MANIFEST_BYTES);
  const digest = sha256(body);
  if (expect.digest && digest !== expect.digest) throw invalid(`manifest of ${what}: digest mismatch: content hashes to ${digest}, expected ${expect.digest}`);
  if (expect.size !== undefined && body.length !== expect.size) throw invalid(`manifest of ${what}: size mismatch: got ${body.length} bytes, expected ${expect.size}`);
  const header = res.headers['docker-content-digest'];
  if (typeof header === 'string' && header.startsWith('sha256:') && header !== digest) {
    throw invalid(`manifest of ${what}: digest mismatch: content hashes to ${digest}, the registry says ${header}`);
  }
  return { body, digest, fetched: decodeManifest(body, res.headers['content-type'], `manifest of ${what}`) };
}

/**
 * Run `fn` over `items`, at most `limit` at once; the first failure is thrown after running
 * ones settle (and no new one starts after it). A task frees its slot when it settles or,
 * earlier, when it calls `release` (a download whose bytes are in, still syncing to disk).
 */
export async function pool<T>(items: T[], limit: number, fn: (item: T, i: number, release: () => void) => Promise<void>): Promise<void> {
  const max = Math.max(1, limit);
  let next = 0;
  let active = 0;
  let settled = 0;
  let failed: { e: unknown } | undefined;
  await new Promise<void>((resolve) => {
    const check = () => {
      if (settled === next && (failed || next === items.length)) resolve();
    };
    const pump = () => {
      while (!failed && active < max && next < items.length) {
        const i = next++;
        active++;
        let freed = false;
        const release = () => {
          if (freed) return;
          freed = true;
          active--;
          pump();
        };
        let p: Promise<void>;
        try {
          p = fn(items[i]!, i, release);
        } catch (e) {
          p = Promise.reject(e);
        }
        p.catch((e: unknown) => {
          failed ??= { e };
        }).finally(() => {
          settled++;
          release();
          check();
        });
      }
      check();
    };
    pump();
  });
  if (failed) throw failed.e;
}

export async function fetchImage(client: RegistryClient, ref: Reference, content: ContentStore, opts: FetchOptions): Promise<FetchedImage> {
  const emit = opts.onEvent ?? (() => undefined);
  const name = `${ref.domain}/${ref.path}${ref.digest ? `@${ref.digest}` : `:${ref.tag}`}`;
  const top = await getManifest(client, ref.path, ref.digest ?? ref.tag!, { digest: ref.digest }, name);
  const keep: Array<{ body: Buffer; digest: Digest }> = [top];
  let man = top;
  let platform: string | undefined;
  if (top.fetched.kind === 'index') {
    const entry = choosePlatform(top.fetched.index.manifests, opts.platform);
    platform = entry.platform ? formatPlatform(normalisePlatform({ os: entry.platform.os, architecture: entry.platform.architecture, variant: entry.platform.variant })) : undefined;
    const child = await getManifest(client, ref.path, entry.digest, { digest: entry.digest as Digest, size: entry.size }, `${name} (${platform ?? entry.digest})`);
    if (child.fetched.kind !== 'manifest') throw invalid(`${name}: the index entry for ${platform} is not an image manifest`);
    keep.push(child);
    man = child;
  }
  if (man.fetched.kind !== 'manifest') throw invalid(`${name}: not an image manifest`);
  const manifest = man.fetched.manifest;
  checkRunnableImage(manifest, name);
  emit({ type: 'resolved', digest: top.digest, mediaType: top.fetched.mediaType, platform });

  let bytesFetched = 0;
  const fetchBlob = async (d: Descriptor, what: string, onBytes?: (n: number) => void, onVerified?: () => void): Promise<boolean> => {
    const digest = d.digest as Digest;
    if (content.has(digest) && content.size(digest) === d.size) return false;
    await downloadBlob(client, content, { repo: ref.path, digest, size: d.size, what }, onBytes, onVerified);
    bytesFetched += d.size;
    return true;
  };

  // The config first: it is small and says whether the image is for this platform.
  await fetchBlob(manifest.config, `config of ${name}`);
  let config: ImageConfig;
  try {
    config = JSON.parse(content.readBuffer(manifest.config.digest as Digest).toString('utf8')) as ImageConfig;
  } catch (e) {
    throw invalid(`config of ${name} is not valid JSON`, e);
  }
  if (typeof config !== 'object' || config === null || typeof config.rootfs !== 'object' || !Array.isArray(config.rootfs?.diff_ids)) {
    throw invalid(`config of ${name}: no rootfs.diff_ids`);
  }
  if (config.rootfs.diff_ids.length !== manifest.layers.length) {
    throw invalid(`config of ${name}: ${config.rootfs.diff_ids.length} diff_ids for ${manifest.layers.length} layers`);
  }
  if (top.fetched.kind === 'manifest' && opts.platformExplicit) {
    const have = normalisePlatform({ os: config.os, architecture: config.architecture, variant: config.variant });
    const want = opts.platform;
    if (have.os !== want.os || have.architecture !== want.architecture || (want.variant && have.variant && have.variant !== want.variant)) {
      throw invalid(`image ${name} was found but its platform (${formatPlatform(have)}) does not match the specified platform (${formatPlatform(want)})`);
    }
  }

  const layers = manifest.layers;
  for (const l of layers) {
    const present = content.has(l.digest as Digest) && content.size(l.digest as Digest) === l.size;
    emit({ type: 'blob', id: shortId(l.digest), digest: l.digest, size: l.size, status: present ? 'exists' : 'waiting' });
  }
  // The same blob may be listed twice (empty layers): fetch each digest once.
  const fetchedLayers = new Set<Digest>();
  const unique = [...new Map(layers.map((l) => [l.digest, l])).values()];
  await pool(unique, opts.concurrency ?? 3, async (l, _i, release) => {
    const id = shortId(l.digest);
    let last = 0;
    const fetched = await fetchBlob(
      l,
      `layer ${layers.indexOf(l) + 1} of ${name}`,
      (n) => {
        if (n === l.size || n - last >= Math.max(256 * 1024, l.size / 100)) {
          last = n;
          emit({ type: 'blob', id, digest: l.digest, size: l.size, status: 'downloading', current: n });
        }
      },
      release, // the next download starts while this blob syncs to disk
    );
    if (fetched) {
      fetchedLayers.add(l.digest as Digest);
      emit({ type: 'blob', id, digest: l.digest, size: l.size, status: 'verifying' });
      emit({ type: 'blob', id, digest: l.digest, size: l.size, status: 'downloaded' });
    }
    const idx = layers.indexOf(l);
    opts.onLayer?.(l as Descriptor & { digest: Digest }, config.rootfs.diff_ids[idx] as Digest, idx);
  });

  // Manifests last: the child before the index, each verified against its digest again.
  for (const m of keep.reverse()) content.putBuffer(m.body, { digest: m.digest, what: `manifest ${m.digest}` });
  // The renames into blobs/sha256 durable before the caller records the image (which may now
  // be run from these blobs later, when its layers are unpacked on first use): one fsync of
  // the directory, not one per blob.
  const d = await fs.promises.open(content.dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
  return { repoDigest: top.digest, manifestDigest: man.digest, manifestMediaType: man.fetched.mediaType, manifest, config, bytesFetched, fetchedLayers };
}
