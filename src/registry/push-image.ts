import type { ContentStore } from '../content/store.js';
import { HullError, invalid } from '../errors.js';
import { type Digest, sha256, shortId } from '../oci/digest.js';
import { type RegistryClient } from './client.js';
import type { ProgressListener } from './events.js';
import { drain } from './http.js';
import { decodeManifest } from './manifest.js';
import { pool } from './fetch-image.js';
import { uploadBlob, uploadSettings, type UploadOptions } from './upload.js';

/**
 * Push one image from a content store: its layers (bounded concurrency), then its config,
 * then the manifest by tag (or by digest when `tag` is absent).
 */
export interface PushImageOptions extends UploadOptions {
  /** Other repositories of the same registry that may hold the blobs (for cross-repo mounts). */
  mountFrom?: string[];
  /** Layer uploads at once. Default 3. */
  concurrency?: number;
  onEvent?: ProgressListener;
}

export interface PushedImage {
  digest: Digest;
  size: number;
  mediaType: string;
}

export async function pushImage(client: RegistryClient, repo: string, tag: string | undefined, content: ContentStore, manifestDigest: Digest, opts: PushImageOptions = {}): Promise<PushedImage> {
  const emit = opts.onEvent ?? (() => undefined);
  const body = content.readBuffer(manifestDigest, 4 * 1024 * 1024);
  if (sha256(body) !== manifestDigest) throw invalid(`manifest ${manifestDigest} in the local store does not match its digest`);
  const fetched = decodeManifest(body, undefined, `manifest ${manifestDigest}`);
  if (fetched.kind !== 'manifest') throw invalid(`manifest ${manifestDigest} is an index: pushing multi-platform indexes is not supported`);
  const { manifest, mediaType } = fetched;
  const settings = uploadSettings(opts);
  const mountFrom = opts.mountFrom ?? [];
  const layers = [...new Map(manifest.layers.map((l) => [l.digest, l])).values()];
  for (const l of layers) emit({ type: 'blob', id: shortId(l.digest), digest: l.digest, size: l.size, status: 'preparing' });
  for (const l of layers) emit({ type: 'blob', id: shortId(l.digest), digest: l.digest, size: l.size, status: 'waiting' });
  await pool(layers, opts.concurrency ?? 3, async (l) => {
    const id = shortId(l.digest);
    let last = 0;
    const r = await uploadBlob(client, repo, content, { digest: l.digest as Digest, size: l.size, what: `layer ${id}` }, mountFrom, settings, (n) => {
      if (n === l.size || n - last >= Math.max(256 * 1024, l.size / 100)) {
        last = n;
        emit({ type: 'blob', id, digest: l.digest, size: l.size, status: 'pushing', current: n });
      }
    });
    if (r.how === 'exists') emit({ type: 'blob', id, digest: l.digest, size: l.size, status: 'remote-exists' });
    else if (r.how === 'mounted') emit({ type: 'blob', id, digest: l.digest, size: l.size, status: 'mounted', from: r.from });
    else emit({ type: 'blob', id, digest: l.digest, size: l.size, status: 'pushed' });
  });
  const c = manifest.config;
  await uploadBlob(client, repo, content, { digest: c.digest as Digest, size: c.size, what: 'image config' }, mountFrom, settings);

  const ref = tag ?? manifestDigest;
  const res = await client.request({
    method: 'PUT',
    path: `/v2/${repo}/manifests/${ref}`,
    headers: { 'Content-Type': mediaType },
    body,
    scopes: [`repository:${repo}:pull,push`],
  });
  if (res.status !== 201) await client.fail(res, `pushing the manifest of ${repo}:${ref}`);
  const h = res.headers['docker-content-digest'];
  drain(res);
  if (typeof h === 'string' && h !== manifestDigest) throw new HullError('UNAVAILABLE', `the registry stored the manifest as ${h}, expected ${manifestDigest}`);
  return { digest: manifestDigest, size: body.length, mediaType };
}
