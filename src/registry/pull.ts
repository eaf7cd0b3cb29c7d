import fs from 'node:fs';
import { ImageStore, type ImageRecord } from '../images/store.js';
import { familiarString, formatReference, parseReference, repository } from '../images/reference.js';
import { isDigest, shortId, type Digest } from '../oci/digest.js';
import { invalid, isHullError } from '../errors.js';
import { RegistryClient } from './client.js';
import type { TransferOptions } from './events.js';
import { fetchImage, type FetchedImage } from './fetch-image.js';
import { hostPlatform, parsePlatform } from './platform.js';
import { progressSink } from './progress.js';

/**
 * `hull pull`: fetch an image from its registry into the hull root and record it.
 *
 * By default the pull does what `ctr content fetch` / `skopeo copy` do: every blob is
 * downloaded and verified (digest and size) into the content store, and the image is recorded
 * with its layers still packed; they are unpacked on first use (ImageStore.lowerDirs, when a
 * container or VM is created), where each is checked against the config's diff id. A layer
 * that fails that check fails the run and removes the image, so a broken image never runs.
 *
 * Why deferred by default: a pull then costs what the download costs (the unpack, CPU-bound
 * gunzip + hashing + file writes, about half of an unpacking pull on 2 cores, is paid once by
 * the first run, and never for an image that is only pushed, saved or inspected), and hull
 * reuses one unpacked directory per diff id, so there is no per-image snapshot to prepare
 * ahead. The price: a diff-id mismatch (an image broken as published) shows at the first run
 * instead of at the pull. docker and podman unpack at pull, and so does containerd's
 * snapshotter by default; `unpack: true` (`hull pull --unpack`, or HULL_PULL_UNPACK=1) does
 * that: layers are unpacked on worker threads while the others still download, and a diff-id
 * mismatch fails the pull and keeps none of the image.
 */
export interface PullOptions extends TransferOptions {
  /** os/arch[/variant] to choose from a multi-platform index. Default: the host's (linux/amd64 here). */
  platform?: string;
  /**
   * Unpack the layers during the pull (docker's behaviour) instead of at first use. Default:
   * $HULL_PULL_UNPACK (1/true/yes or 0/false/no), else false. See the comment above.
   */
  unpack?: boolean;
}

/** The default of PullOptions.unpack from $HULL_PULL_UNPACK; a value that is not a boolean is an error. */
export function pullUnpackDefault(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = (env.HULL_PULL_UNPACK ?? '').trim().toLowerCase();
  if (v === '' || v === '0' || v === 'false' || v === 'no') return false;
  if (v === '1' || v === 'true' || v === 'yes') return true;
  throw invalid(`HULL_PULL_UNPACK=${JSON.stringify(env.HULL_PULL_UNPACK)}: expected 1/true/yes or 0/false/no`);
}

export interface PullResult {
  image: ImageRecord;
  /** The digest the reference resolved to on the registry (docker's "Digest:"). */
  digest: Digest;
  /** True when the local image already was this one. */
  upToDate: boolean;
}

export async function pullImage(root: string, ref: string, opts: PullOptions = {}): Promise<PullResult> {
  const explicitTag = parseReference(ref, { defaultTag: false });
  const r = parseReference(ref);
  const platform = opts.platform ? parsePlatform(opts.platform) : hostPlatform();
  const unpack = opts.unpack ?? pullUnpackDefault();
  const { emit, finish } = progressSink(opts);
  try {
    const store = ImageStore.open(root);
    emit({ type: 'start', op: 'pull', reference: familiarString(r), repository: r.path, tagOrDigest: r.digest ?? r.tag!, defaultTag: !explicitTag.tag && !explicitTag.digest });
    const client = new RegistryClient({
      domain: r.domain,
      insecure: opts.insecure,
      credentials: opts.credentials,
      signal: opts.signal,
      onRetry: (i) => emit({ type: 'retry', what: i.url, attempt: i.attempt, delayMs: i.delayMs, reason: i.reason }),
    });
    const before = store.tryResolve(formatReference(r));
    // With `unpack`: each layer on a worker thread as soon as it is in the store, while the rest download.
    const unpacker = unpack ? new (await import('./unpack-worker.js')).LayerUnpacker(root) : undefined;
    const unpacks: Promise<void>[] = [];
    const badLayers: Digest[] = [];
    let fetched: FetchedImage | undefined;
    let image: ImageRecord;
    try {
      fetched = await fetchImage(client, r, store.content, {
        platform,
        platformExplicit: opts.platform !== undefined,
        concurrency: opts.concurrency,
        onEvent: emit,
        onLayer: (l, diffId, i) => {
          if (!unpacker || !isDigest(diffId)) return; // commitImage reports it
          if (store.t.layer(diffId) && fs.existsSync(store.layerDir(diffId))) return; // unpacked already
          const p = unpacker.unpack({ diffId, blobDigest: l.digest, mediaType: l.mediaType, blobSize: l.size }, `layer ${i + 1} (${diffId}) of ${familiarString(r)}`);
          p.catch((e) => {
            if (isHullError(e, 'INVALID_ARGUMENT')) badLayers.push(l.digest);
          }); // awaited below
          unpacks.push(p);
        },
      });
      await Promise.all(unpacks);
      image = await store.commitImage({
        manifestDigest: fetched.manifestDigest,
        tags: r.tag && !r.digest ? [formatReference({ ...r, digest: undefined })] : [],
        repoDigest: `${repository(r)}@${fetched.repoDigest}`,
        action: 'pull',
        unpack,
      });
    } catch (e) {
      // The image is broken as published (e.g. a layer that does not unpack to its diff id):
      // keep none of it that no other image uses. (Failures of the network or a cancel keep the
      // verified blobs, so the next pull resumes.)
      if (fetched && isHullError(e, 'INVALID_ARGUMENT')) {
        await Promise.allSettled(unpacks); // no unpack may still be placing a directory
        store.dropUnreferencedBlobs([fetched.manifestDigest, fetched.repoDigest, ...badLayers]);
        store.dropUnreferencedLayers(fetched.config.rootfs.diff_ids.filter(isDigest));
      }
      throw e;
    } finally {
      await Promise.allSettled(unpacks);
      await unpacker?.close();
    }
    const done = fetched!;
    for (const l of done.manifest.layers) {
      if (done.fetchedLayers.has(l.digest as Digest)) emit({ type: 'blob', id: shortId(l.digest), digest: l.digest, size: l.size, status: 'complete' });
    }
    const upToDate = before !== undefined && before.manifestDigest === done.manifestDigest && done.bytesFetched === 0;
    emit({ type: 'done', op: 'pull', reference: familiarString(r), digest: done.repoDigest, upToDate });
    return { image, digest: done.repoDigest, upToDate };
  } finally {
    finish();
  }
}

/** The library/engine entry point: pull `ref` into `root` and return the recorded image. */
export async function pull(root: string, ref: string, opts: PullOptions = {}): Promise<ImageRecord> {
  return (await pullImage(root, ref, opts)).image;
}
