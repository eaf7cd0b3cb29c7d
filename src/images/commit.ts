/**
 * An image made from another one plus new layers (a build step, a container commit): the new
 * layer tars are stored uncompressed (blob digest = diff id, as docker keeps built layers
 * locally), the base image's layer blobs are reused as they are, and the manifest, config and
 * rows enter through the store's one door, commitImage, which unpacks and checks every new
 * layer against its diff id. A failure leaves no blob of its own behind.
 */
import type { Readable } from 'node:stream';
import { invalid } from '../errors.js';
import type { Digest } from '../oci/digest.js';
import { layerCompression, MT } from '../oci/media.js';
import type { Descriptor, ImageConfig, ImageManifest } from '../oci/types.js';
import type { ImageLayer, ImageRecord, ImageStore } from './store.js';

/** A layer blob written by putLayer (uncompressed: its digest is its diff id). */
export interface NewLayer {
  digest: Digest;
  size: number;
}

/** Store an uncompressed layer tar stream as a blob. */
export async function putLayer(store: ImageStore, tar: Readable, what: string): Promise<NewLayer> {
  return store.content.putStream(tar, { what });
}

/** The OCI media type for a stored layer blob (docker's layer types name the same bytes). */
export function ociLayerType(mediaType: string): string {
  switch (layerCompression(mediaType)) {
    case 'gzip':
      return MT.ociLayerGzip;
    case 'zstd':
      return MT.ociLayerZstd;
    case 'none':
      return MT.ociLayer;
    default:
      throw invalid(`unsupported layer media type ${mediaType}`);
  }
}

export interface DerivedImage {
  /** The layers underneath (the base image's, bottom first); none for an image FROM scratch. */
  baseLayers: ImageLayer[];
  /** New layers on top, bottom first. */
  added: NewLayer[];
  /** The config; its rootfs is set here from the layers. */
  config: Omit<ImageConfig, 'rootfs'>;
  /** References to tag the image with. */
  tags?: string[];
  /** Event action (default 'commit'). */
  action?: string;
}

/** The config and manifest of a derived image (pure). */
export function derivedManifest(d: DerivedImage): { config: ImageConfig; layers: Descriptor[] } {
  const config: ImageConfig = { ...d.config, rootfs: { type: 'layers', diff_ids: [...d.baseLayers.map((l) => l.diffId), ...d.added.map((l) => l.digest)] } };
  const layers: Descriptor[] = [
    ...d.baseLayers.map((l) => ({ mediaType: ociLayerType(l.mediaType), digest: l.blobDigest, size: l.blobSize })),
    ...d.added.map((l) => ({ mediaType: MT.ociLayer, digest: l.digest, size: l.size })),
  ];
  return { config, layers };
}

/** Write config and manifest and commit the image (see the file comment). */
export async function commitDerived(store: ImageStore, d: DerivedImage): Promise<ImageRecord> {
  const { config, layers } = derivedManifest(d);
  const written: Digest[] = d.added.map((l) => l.digest);
  try {
    const c = store.content.putBuffer(Buffer.from(JSON.stringify(config)));
    written.push(c.digest);
    const manifest: ImageManifest = { schemaVersion: 2, mediaType: MT.ociManifest, config: { mediaType: MT.ociConfig, digest: c.digest, size: c.size }, layers };
    const m = store.content.putBuffer(Buffer.from(JSON.stringify(manifest)));
    written.push(m.digest);
    return await store.commitImage({ manifestDigest: m.digest, tags: d.tags ?? [], action: d.action ?? 'commit' });
  } catch (e) {
    store.dropUnreferencedBlobs(written);
    throw e;
  }
}
