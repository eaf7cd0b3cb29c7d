/**
 * `GET /distribution/{name}/json` (what `docker manifest inspect` and docker's pull planning
 * ask): the descriptor of the manifest a reference names in its registry, and the platforms it
 * offers (an index's entries, or a single manifest's config platform).
 */
import { sha256 } from '../oci/digest.js';
import { parseReference } from '../images/reference.js';
import { invalid } from '../errors.js';
import { RegistryClient } from './client.js';
import type { Credentials } from './credentials.js';
import { getManifest } from './fetch-image.js';
import { readBody } from './http.js';

export interface DistributionInspect {
  Descriptor: { mediaType: string; digest: string; size: number };
  Platforms: { architecture: string; os: string; variant?: string; 'os.version'?: string }[];
}

/** Largest image config read for its platform, bytes. */
const MAX_CONFIG = 4 << 20;

export async function distributionInspect(name: string, o: { credentials?: Credentials; insecure?: string[] } = {}): Promise<DistributionInspect> {
  const r = parseReference(name);
  const client = new RegistryClient({ domain: r.domain, credentials: o.credentials, insecure: o.insecure });
  const what = name;
  const { body, digest, fetched } = await getManifest(client, r.path, r.digest ?? r.tag!, { digest: r.digest as never }, what);
  const Descriptor = { mediaType: fetched.mediaType, digest, size: body.length };
  if (fetched.kind === 'index') {
    const Platforms = fetched.index.manifests.filter((m) => m.platform).map((m) => ({ architecture: m.platform!.architecture, os: m.platform!.os, ...(m.platform!.variant ? { variant: m.platform!.variant } : {}) }));
    return { Descriptor, Platforms };
  }
  const cfg = fetched.manifest.config;
  const res = await client.request({ method: 'GET', path: `/v2/${r.path}/blobs/${cfg.digest}`, scopes: [`repository:${r.path}:pull`] });
  if (res.status !== 200) await client.fail(res, `fetching the config of ${what}`);
  const cbuf = await readBody(res, MAX_CONFIG);
  if (sha256(cbuf) !== cfg.digest) throw invalid(`the config of ${what}: digest mismatch: content hashes to ${sha256(cbuf)}, the manifest says ${cfg.digest}`);
  let c: { architecture?: unknown; os?: unknown; variant?: unknown };
  try {
    c = JSON.parse(cbuf.toString('utf8')) as typeof c;
  } catch {
    throw invalid(`the config of ${what} does not parse as JSON`);
  }
  const Platforms = typeof c.architecture === 'string' && typeof c.os === 'string' ? [{ architecture: c.architecture, os: c.os, ...(typeof c.variant === 'string' ? { variant: c.variant } : {}) }] : [];
  return { Descriptor, Platforms };
}
