import { invalid } from '../errors.js';
import { type Digest, parseDigest } from '../oci/digest.js';
import { INDEX_TYPES, MANIFEST_TYPES, MT, layerCompression } from '../oci/media.js';
import type { Descriptor, ImageIndex, ImageManifest } from '../oci/types.js';

/**
 * Validation of what a registry sends: manifests and indexes are decoded, checked field by
 * field and bounded before anything uses them. Pure: no I/O.
 */

/** The largest manifest hull accepts (the distribution spec's recommended limit). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** The media types hull sends in Accept when fetching a manifest, most preferred first. */
export const MANIFEST_ACCEPT = [MT.ociIndex, MT.ociManifest, MT.dockerManifestList, MT.dockerManifest].join(', ');

export type Fetched =
  | { kind: 'index'; mediaType: string; index: ImageIndex }
  | { kind: 'manifest'; mediaType: string; manifest: ImageManifest };

/** A checked descriptor: digest valid, size a non-negative safe integer. */
export function checkDescriptor(d: unknown, what: string): Descriptor & { digest: Digest } {
  if (typeof d !== 'object' || d === null) throw invalid(`${what}: not a descriptor object`);
  const o = d as Record<string, unknown>;
  if (typeof o.mediaType !== 'string' || o.mediaType === '') throw invalid(`${what}: missing mediaType`);
  const digest = parseDigest(o.digest, `${what} digest`);
  if (typeof o.size !== 'number' || !Number.isSafeInteger(o.size) || o.size < 0) throw invalid(`${what}: size ${JSON.stringify(o.size)} is not a byte count`);
  if (o.urls !== undefined && (!Array.isArray(o.urls) || o.urls.some((u) => typeof u !== 'string'))) throw invalid(`${what}: urls must be strings`);
  return { ...(o as unknown as Descriptor), digest };
}

/**
 * Decode a manifest body. `contentType` is the response's Content-Type; when it is missing or
 * generic the body's own mediaType field decides.
 */
export function decodeManifest(body: Buffer, contentType: string | undefined, what: string): Fetched {
  if (body.length > MAX_MANIFEST_BYTES) throw invalid(`${what}: manifest of ${body.length} bytes is over the ${MAX_MANIFEST_BYTES}-byte limit`);
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch (e) {
    throw invalid(`${what}: manifest is not valid JSON`, e);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw invalid(`${what}: manifest is not a JSON object`);
  const o = doc as Record<string, unknown>;
  const ct = (contentType ?? '').split(';')[0]!.trim();
  const declared = typeof o.mediaType === 'string' ? o.mediaType : undefined;
  let mediaType = [...INDEX_TYPES, ...MANIFEST_TYPES].includes(ct) ? ct : declared;
  if (mediaType === undefined) mediaType = Array.isArray(o.manifests) ? MT.ociIndex : MT.ociManifest;
  if (declared !== undefined && declared !== mediaType) {
    throw invalid(`${what}: Content-Type ${mediaType} disagrees with the manifest's mediaType ${declared}`);
  }
  if (o.schemaVersion === 1 || ct.startsWith('application/vnd.docker.distribution.manifest.v1+')) {
    throw invalid(`${what}: Docker schema 1 manifests are not supported (deprecated); push the image again with a current tool`);
  }
  if (o.schemaVersion !== 2) throw invalid(`${what}: unsupported schemaVersion ${JSON.stringify(o.schemaVersion)}`);
  if (INDEX_TYPES.includes(mediaType)) {
    if (!Array.isArray(o.manifests)) throw invalid(`${what}: index has no manifests array`);
    const manifests = o.manifests.map((m, i) => checkDescriptor(m, `${what} entry ${i + 1}`));
    return { kind: 'index', mediaType, index: { ...(o as unknown as ImageIndex), manifests } };
  }
  if (MANIFEST_TYPES.includes(mediaType)) {
    const config = checkDescriptor(o.config, `${what} config`);
    if (!Array.isArray(o.layers)) throw invalid(`${what}: manifest has no layers array`);
    const layers = o.layers.map((l, i) => checkDescriptor(l, `${what} layer ${i + 1}`));
    return { kind: 'manifest', mediaType, manifest: { ...(o as unknown as ImageManifest), config, layers } };
  }
  throw invalid(`${what}: unsupported manifest media type ${mediaType}`);
}

/**
 * Refuse manifests that are not runnable container images (OCI artifacts such as Helm charts
 * or signatures) before anything is downloaded: the config must be an image config and every
 * layer a tar (plain, gzip or zstd).
 */
export function checkRunnableImage(m: ImageManifest, what: string): void {
  const ct = m.config.mediaType;
  if (ct !== MT.ociConfig && ct !== MT.dockerConfig) {
    throw invalid(`${what} is not a container image: its config has media type ${ct}`);
  }
  m.layers.forEach((l, i) => {
    if (layerCompression(l.mediaType) === undefined) throw invalid(`${what}: layer ${i + 1} has unsupported media type ${l.mediaType}`);
  });
}
