import { ImageStore, type ImageRecord } from '../images/store.js';
import { familiarRepository, familiarString, formatReference, parseReference, repository } from '../images/reference.js';
import { invalid } from '../errors.js';
import type { Digest } from '../oci/digest.js';
import { RegistryClient } from './client.js';
import type { TransferOptions } from './events.js';
import { progressSink } from './progress.js';
import { pushImage } from './push-image.js';
import type { UploadOptions } from './upload.js';

/**
 * `hull push NAME[:TAG]`: upload the local image that NAME[:TAG] names to its registry, then
 * record the repository digest, as docker does. Blobs other repositories of the same registry
 * are known to hold (this image's other names there) are mounted rather than uploaded.
 */
export interface PushOptions extends UploadOptions, TransferOptions {}

export interface PushResult {
  image: ImageRecord;
  digest: Digest;
  size: number;
}

export async function push(root: string, ref: string, opts: PushOptions = {}): Promise<PushResult> {
  const r = parseReference(ref);
  if (r.digest) throw invalid(`cannot push a digest reference (${ref}): push a tag`);
  const { emit, finish } = progressSink(opts);
  try {
    const store = ImageStore.open(root);
    const name = formatReference(r);
    const image = store.tryResolve(name);
    if (!image) throw invalid(`An image does not exist locally with the tag: ${familiarRepository(r)}${r.tag && r.tag !== 'latest' ? `:${r.tag}` : ''}`);
    emit({ type: 'start', op: 'push', reference: familiarString(r), repository: repository(r), tagOrDigest: r.tag!, defaultTag: false });
    // Other repositories on the same registry this image is known under: mount sources.
    const mountFrom = [...image.tags, ...image.repoDigests]
      .map((n) => {
        try {
          return parseReference(n, { defaultTag: false });
        } catch {
          return undefined;
        }
      })
      .filter((o): o is NonNullable<typeof o> => o !== undefined && o.domain === r.domain && o.path !== r.path)
      .map((o) => o.path);
    const client = new RegistryClient({
      domain: r.domain,
      insecure: opts.insecure,
      credentials: opts.credentials,
      signal: opts.signal,
      onRetry: (i) => emit({ type: 'retry', what: i.url, attempt: i.attempt, delayMs: i.delayMs, reason: i.reason }),
    });
    const pushed = await pushImage(client, r.path, r.tag, store.content, image.manifestDigest, {
      mountFrom: [...new Set(mountFrom)],
      concurrency: opts.concurrency,
      monolithicMax: opts.monolithicMax,
      chunkSize: opts.chunkSize,
      onEvent: emit,
    });
    const after = await store.commitImage({ manifestDigest: image.manifestDigest, repoDigest: `${repository(r)}@${pushed.digest}`, action: 'push' });
    emit({ type: 'done', op: 'push', reference: familiarString(r), digest: pushed.digest, upToDate: false, tag: r.tag, size: pushed.size });
    return { image: after, digest: pushed.digest, size: pushed.size };
  } finally {
    finish();
  }
}
