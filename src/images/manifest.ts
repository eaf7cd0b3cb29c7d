/**
 * Parse and validate manifests, indexes and image configs (pure). Every error names the
 * document and the field that was wrong.
 */
import { invalid } from '../errors.js';
import { type Digest, isDigest } from '../oci/digest.js';
import { INDEX_TYPES, MANIFEST_TYPES, MT } from '../oci/media.js';
import type { Descriptor, ImageConfig, ImageIndex, ImageManifest } from '../oci/types.js';

function parseJson(buf: Buffer | string, what: string): unknown {
  try {
    return JSON.parse(typeof buf === 'string' ? buf : buf.toString('utf8'));
  } catch (e) {
    throw invalid(`${what} does not parse as JSON: ${(e as Error).message}`, e);
  }
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Validate one descriptor; `field` names it in errors ('manifest layers[2]'). */
export function parseDescriptor(v: unknown, field: string): Descriptor & { digest: Digest } {
  if (!isObj(v)) throw invalid(`${field}: not an object`);
  if (typeof v.mediaType !== 'string' || v.mediaType === '') throw invalid(`${field}.mediaType: missing or not a string`);
  if (!isDigest(v.digest)) throw invalid(`${field}.digest: ${JSON.stringify(v.digest)} is not a sha256 digest`);
  if (typeof v.size !== 'number' || !Number.isSafeInteger(v.size) || v.size < 0) throw invalid(`${field}.size: ${JSON.stringify(v.size)} is not a byte count`);
  return v as unknown as Descriptor & { digest: Digest };
}

export type Parsed =
  | { kind: 'manifest'; mediaType: string; manifest: ImageManifest }
  | { kind: 'index'; mediaType: string; index: ImageIndex };

/** Parse a manifest or an index; the media type comes from the document, else `hint`. */
export function parseManifestOrIndex(buf: Buffer | string, what: string, hint?: string): Parsed {
  const v = parseJson(buf, what);
  if (!isObj(v)) throw invalid(`${what}: not a JSON object`);
  if (v.schemaVersion !== 2) throw invalid(`${what}: schemaVersion ${JSON.stringify(v.schemaVersion)} is not supported (need 2)`);
  const mt = typeof v.mediaType === 'string' ? v.mediaType : hint ?? (Array.isArray(v.manifests) ? MT.ociIndex : MT.ociManifest);
  if (INDEX_TYPES.includes(mt)) {
    if (!Array.isArray(v.manifests)) throw invalid(`${what}.manifests: missing or not an array`);
    v.manifests.forEach((d, i) => parseDescriptor(d, `${what}.manifests[${i}]`));
    return { kind: 'index', mediaType: mt, index: v as unknown as ImageIndex };
  }
  if (!MANIFEST_TYPES.includes(mt)) throw invalid(`${what}.mediaType: ${JSON.stringify(mt)} is not an image manifest or index`);
  return { kind: 'manifest', mediaType: mt, manifest: parseManifestObject(v, what) };
}

export function parseManifest(buf: Buffer | string, what: string): { mediaType: string; manifest: ImageManifest } {
  const p = parseManifestOrIndex(buf, what);
  if (p.kind !== 'manifest') throw invalid(`${what}: expected an image manifest, found an index`);
  return p;
}

function parseManifestObject(v: Record<string, unknown>, what: string): ImageManifest {
  parseDescriptor(v.config, `${what}.config`);
  if (!Array.isArray(v.layers)) throw invalid(`${what}.layers: missing or not an array`);
  v.layers.forEach((d, i) => parseDescriptor(d, `${what}.layers[${i}]`));
  return v as unknown as ImageManifest;
}

/** Parse an image config and check the fields hull relies on. */
export function parseImageConfig(buf: Buffer | string, what: string): ImageConfig {
  const v = parseJson(buf, what);
  if (!isObj(v)) throw invalid(`${what}: not a JSON object`);
  if (typeof v.architecture !== 'string') throw invalid(`${what}.architecture: missing or not a string`);
  if (typeof v.os !== 'string') throw invalid(`${what}.os: missing or not a string`);
  const rootfs = v.rootfs;
  if (!isObj(rootfs)) throw invalid(`${what}.rootfs: missing or not an object`);
  if (rootfs.type !== 'layers') throw invalid(`${what}.rootfs.type: ${JSON.stringify(rootfs.type)} is not "layers"`);
  if (!Array.isArray(rootfs.diff_ids)) throw invalid(`${what}.rootfs.diff_ids: missing or not an array`);
  rootfs.diff_ids.forEach((d, i) => {
    if (!isDigest(d)) throw invalid(`${what}.rootfs.diff_ids[${i}]: ${JSON.stringify(d)} is not a sha256 digest`);
  });
  if (v.created !== undefined && (typeof v.created !== 'string' || Number.isNaN(Date.parse(v.created)))) {
    throw invalid(`${what}.created: ${JSON.stringify(v.created)} is not an RFC 3339 time`);
  }
  if (v.config !== undefined && v.config !== null && !isObj(v.config)) throw invalid(`${what}.config: not an object`);
  const c = (v.config ?? {}) as Record<string, unknown>;
  for (const k of ['Env', 'Entrypoint', 'Cmd'] as const) {
    const x = c[k];
    if (x !== undefined && x !== null && !(Array.isArray(x) && x.every((s) => typeof s === 'string'))) {
      throw invalid(`${what}.config.${k}: not a list of strings`);
    }
  }
  return v as unknown as ImageConfig;
}
