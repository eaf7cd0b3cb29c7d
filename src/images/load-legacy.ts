/**
 * The older `docker save` layout (docker before 1.10, and what `docker load` still reads): no
 * manifest.json, one directory per layer named by its v1 id holding `VERSION` ("1.0"), `json`
 * (the v1 layer record: id, parent, created, config, container_config, architecture, os) and
 * `layer.tar` (the layer, uncompressed), and a `repositories` file mapping repository -> tag ->
 * top layer id. Each top layer's parent chain becomes one image: its layers bottom first, an
 * image config made as docker made it (the top record's config, platform and creation time; a
 * history entry per layer), and a docker schema 2 manifest; the load then commits it like any
 * other archive.
 */
import { invalid } from '../errors.js';
import { sha256 } from '../oci/digest.js';
import { MT } from '../oci/media.js';
import type { HistoryEntry, ImageConfig, ImageManifest, ImageRunConfig } from '../oci/types.js';
import type { ArchiveReader } from './archive-read.js';
import type { LoadPlan } from './load.js';
import { parseImageConfig, parseManifest } from './manifest.js';
import { familiarString, parseReference } from './reference.js';
import type { ImageStore } from './store.js';
import { goArch } from './stream-util.js';

const ID = /^[0-9a-f]{64}$/;

/** The fields of a v1 layer record hull reads. */
export interface V1Layer {
  id: string;
  parent?: string;
  created?: string;
  author?: string;
  comment?: string;
  architecture?: string;
  os?: string;
  config?: ImageRunConfig;
  container_config?: { Cmd?: string[] | null };
}

/** Whether the archive has the legacy layout's marks (a `repositories` file or `<id>/json` entries). */
export function isLegacyArchive(ar: ArchiveReader): boolean {
  return ar.has('repositories') || [...ar.c.files.keys()].some((k) => /^[0-9a-f]{64}\/json$/.test(k));
}

function parseV1(buf: Buffer, dirId: string, what: string): V1Layer {
  let v: unknown;
  try {
    v = JSON.parse(buf.toString('utf8'));
  } catch (e) {
    throw invalid(`${what}: ${dirId}/json does not parse as JSON: ${(e as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalid(`${what}: ${dirId}/json: not a JSON object`);
  const o = v as Record<string, unknown>;
  if (o.id !== undefined && o.id !== dirId) throw invalid(`${what}: ${dirId}/json names the layer ${JSON.stringify(o.id)}, not its directory`);
  if (o.parent !== undefined && o.parent !== '' && (typeof o.parent !== 'string' || !ID.test(o.parent))) throw invalid(`${what}: ${dirId}/json: parent ${JSON.stringify(o.parent)} is not a layer id`);
  if (o.config !== undefined && o.config !== null && (typeof o.config !== 'object' || Array.isArray(o.config))) throw invalid(`${what}: ${dirId}/json: config is not an object`);
  return { ...(o as unknown as V1Layer), id: dirId, parent: (o.parent as string | undefined) || undefined };
}

/** repository -> tag -> top layer id, checked. */
function parseRepositories(ar: ArchiveReader, what: string): Map<string, string[]> {
  const tops = new Map<string, string[]>();
  if (!ar.has('repositories')) return tops;
  let v: unknown;
  try {
    v = JSON.parse(ar.document('repositories', 'file').toString('utf8'));
  } catch (e) {
    throw invalid(`${what}: repositories does not parse as JSON: ${(e as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalid(`${what}: repositories: not a JSON object`);
  for (const [repo, tags] of Object.entries(v as Record<string, unknown>)) {
    if (typeof tags !== 'object' || tags === null || Array.isArray(tags)) throw invalid(`${what}: repositories[${JSON.stringify(repo)}]: not an object of tags`);
    for (const [tag, id] of Object.entries(tags as Record<string, unknown>)) {
      const name = `${repo}:${tag}`;
      try {
        if (parseReference(name).digest) throw new Error('digest');
      } catch {
        throw invalid(`${what}: repositories: ${JSON.stringify(name)} is not a valid tag`);
      }
      if (typeof id !== 'string' || !ID.test(id)) throw invalid(`${what}: repositories[${JSON.stringify(name)}]: ${JSON.stringify(id)} is not a layer id`);
      tops.set(id, [...(tops.get(id) ?? []), name]);
    }
  }
  return tops;
}

/** The image config docker made of a v1 chain (pure): `chain` bottom first, `diffIds` its layers'. */
export function legacyConfig(chain: V1Layer[], diffIds: string[]): ImageConfig {
  const top = chain[chain.length - 1]!;
  const history: HistoryEntry[] = chain.map((l) => ({
    ...(l.created ? { created: l.created } : {}),
    ...(l.container_config?.Cmd?.length ? { created_by: l.container_config.Cmd.join(' ') } : {}),
    ...(l.author ? { author: l.author } : {}),
    ...(l.comment ? { comment: l.comment } : {}),
  }));
  return {
    architecture: top.architecture || goArch(),
    os: top.os || 'linux',
    ...(top.created ? { created: top.created } : {}),
    ...(top.author ? { author: top.author } : {}),
    config: top.config ?? {},
    rootfs: { type: 'layers', diff_ids: diffIds },
    history,
  };
}

export function planLegacy(ar: ArchiveReader, store: ImageStore, what: string, compression: (d: string) => string): LoadPlan[] {
  const layers = new Map<string, V1Layer>();
  for (const k of [...ar.c.files.keys(), ...ar.c.stored.keys()]) {
    const m = /^([0-9a-f]{64})\/json$/.exec(k);
    if (!m) continue;
    const id = m[1]!;
    if (ar.has(`${id}/VERSION`)) {
      const ver = ar.document(`${id}/VERSION`, 'file').toString('utf8').trim();
      if (ver !== '1.0') throw invalid(`${what}: ${id}/VERSION is ${JSON.stringify(ver)}, not the legacy layout's "1.0"`);
    }
    layers.set(id, parseV1(ar.document(k, 'file'), id, what));
  }
  if (layers.size === 0) throw invalid(`${what}: a legacy docker save archive (repositories) without any <id>/json layer`);
  const tops = parseRepositories(ar, what);
  if (tops.size === 0) {
    // untagged: every layer no other layer names as its parent
    const parents = new Set([...layers.values()].map((l) => l.parent).filter(Boolean));
    for (const id of layers.keys()) if (!parents.has(id)) tops.set(id, []);
  }
  const plans: LoadPlan[] = [];
  for (const [topId, tags] of tops) {
    const field = `${what}: image ${topId.slice(0, 12)}`;
    const chain: V1Layer[] = [];
    for (let id: string | undefined = topId; id; id = layers.get(id)!.parent) {
      if (!layers.has(id)) throw invalid(`${field}: layer ${id} (${chain.length ? `the parent of ${chain[chain.length - 1]!.id}` : 'named by repositories'}) is not in the archive`);
      if (chain.some((l) => l.id === id) || chain.length > 256) throw invalid(`${field}: the parent chain of its layers loops`);
      chain.push(layers.get(id)!);
    }
    chain.reverse();
    const blobs = chain.map((l) => {
      const b = ar.blob(`${l.id}/layer.tar`, `${l.id}/layer.tar`);
      const c = compression(b.digest);
      if (c !== 'none') throw invalid(`${field}: ${l.id}/layer.tar is ${c}-compressed; the legacy layout holds plain tars`);
      return b; // uncompressed: its digest is its diff id
    });
    const cbuf = Buffer.from(JSON.stringify(legacyConfig(chain, blobs.map((b) => b.digest))));
    parseImageConfig(cbuf, `${field}: the config made from its layers`);
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MT.dockerManifest,
      config: { mediaType: MT.dockerConfig, digest: sha256(cbuf), size: cbuf.length },
      layers: blobs.map((b) => ({ mediaType: MT.dockerLayer, digest: b.digest, size: b.size })),
    };
    for (const buf of [cbuf, Buffer.from(JSON.stringify(manifest))]) {
      const existed = store.content.has(sha256(buf));
      const put = store.content.putBuffer(buf);
      if (!existed) ar.c.written.push(put.digest);
    }
    const mbuf = Buffer.from(JSON.stringify(manifest));
    parseManifest(mbuf, field);
    plans.push({ manifestDigest: sha256(mbuf), tags: [...new Map(tags.map((t) => [familiarString(parseReference(t)), t])).values()], what: field });
  }
  return plans;
}
