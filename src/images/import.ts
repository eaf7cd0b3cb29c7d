/**
 * `hull import ROOTFS.tar[.gz] [NAME[:TAG]]`: a one-layer image from a root filesystem tarball,
 * like `docker import`. The layer is stored uncompressed (blob digest = diff id); the config
 * records SOURCE_DATE_EPOCH (when set) as `created`, so the same tarball and changes give the
 * same image id on every machine.
 */
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Digest } from '../oci/digest.js';
import { MT } from '../oci/media.js';
import type { ImageConfig, ImageManifest, ImageRunConfig } from '../oci/types.js';
import { applyChange } from './change.js';
import { parseReference } from './reference.js';
import type { ImageRecord, ImageStore } from './store.js';
import { buildTime, goArch, peek, rfc3339 } from './stream-util.js';
import { decompressor, sniffCompression } from '../snapshots/unpack-layer.js';
import { wrapFeedError } from '../snapshots/unpack.js';
import { invalid } from '../errors.js';

export interface ImportOptions {
  /** The tarball stream (plain, gzip or zstd). */
  input: Readable;
  /** Source name for the history comment (its basename is recorded, not the full path). */
  sourceName: string;
  /** NAME[:TAG] to tag the image with; none leaves it untagged. */
  reference?: string;
  /** Dockerfile instructions (`CMD ["sh"]`, `ENV A=b`, ...). */
  changes?: string[];
  /** History comment (default 'Imported from <basename>'). */
  message?: string;
  /** Environment read for SOURCE_DATE_EPOCH (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Image architecture (default the host's, in Go naming). */
  architecture?: string;
}

/** The image config for an imported root filesystem (pure). */
export function importConfig(diffId: Digest, opts: { created: Date; changes?: string[]; comment: string; architecture: string }): ImageConfig {
  const run: ImageRunConfig = {};
  for (const c of opts.changes ?? []) applyChange(run, c);
  const created = rfc3339(opts.created);
  const cfg: ImageConfig = {
    architecture: opts.architecture,
    config: run,
    created,
    history: [{ created, comment: opts.comment }],
    os: 'linux',
    rootfs: { type: 'layers', diff_ids: [diffId] },
  };
  return cfg;
}

export async function importRootfs(store: ImageStore, opts: ImportOptions): Promise<ImageRecord> {
  const what = `import ${opts.sourceName}`;
  // Validate everything cheap before reading a byte.
  if (opts.reference && parseReference(opts.reference).digest) throw invalid(`${what}: reference ${opts.reference} cannot contain a digest`);
  const created = buildTime(opts.env);
  for (const c of opts.changes ?? []) applyChange({}, c);

  store.content.sweepTemp(); // temp files and dirs of crashed loads (older than an hour)
  const { head, stream } = await peek(opts.input, 4);
  const dec = await decompressor(sniffCompression(head), what);
  const cs = store.content;
  const written: Digest[] = [];
  try {
    const put = cs.putStream(dec, { what });
    const [fed, stored] = await Promise.allSettled([pipeline(stream, dec), put]);
    if (fed.status === 'rejected') throw wrapFeedError(fed.reason, what);
    if (stored.status === 'rejected') throw wrapFeedError(stored.reason, what);
    const layer = stored.value;
    written.push(layer.digest);
    const config = importConfig(layer.digest, {
      created,
      changes: opts.changes,
      comment: opts.message ?? `Imported from ${opts.sourceName === '-' ? '-' : path.basename(opts.sourceName)}`,
      architecture: opts.architecture ?? goArch(),
    });
    const c = cs.putBuffer(Buffer.from(JSON.stringify(config)));
    written.push(c.digest);
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config: { mediaType: MT.ociConfig, digest: c.digest, size: c.size },
      layers: [{ mediaType: MT.ociLayer, digest: layer.digest, size: layer.size }],
    };
    const m = cs.putBuffer(Buffer.from(JSON.stringify(manifest)));
    written.push(m.digest);
    return await store.commitImage({ manifestDigest: m.digest, tags: opts.reference ? [opts.reference] : [], action: 'import' });
  } catch (e) {
    store.dropUnreferencedBlobs(written);
    throw e;
  }
}
