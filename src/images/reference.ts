import { invalid } from '../errors.js';
import { type Digest, parseDigest } from '../oci/digest.js';

/**
 * An image reference as Docker parses it: `busybox` is `docker.io/library/busybox:latest`,
 * `localhost:5000/ns/app@sha256:...` keeps its registry and digest.
 */
export interface Reference {
  /** Registry host[:port], e.g. docker.io, localhost:5000. */
  domain: string;
  /** Repository path inside the registry, e.g. library/busybox. */
  path: string;
  tag?: string;
  digest?: Digest;
}

export const DEFAULT_DOMAIN = 'docker.io';
export const DEFAULT_TAG = 'latest';

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;

/** Parse and normalise a reference. A missing tag (and digest) becomes `latest`. */
export function parseReference(input: string, opts: { defaultTag?: boolean } = {}): Reference {
  const s = input.trim();
  if (s === '') throw invalid('invalid reference format: empty image name');
  if (/^[a-f0-9]{64}$/.test(s)) {
    throw invalid(`invalid repository name (${s}), cannot specify 64-byte hexadecimal strings`);
  }
  let rest = s;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = parseDigest(rest.slice(at + 1), `digest of reference ${JSON.stringify(input)}`);
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw invalid(`invalid reference format: invalid tag ${JSON.stringify(tag)} in ${JSON.stringify(input)}`);
  }
  let domain = DEFAULT_DOMAIN;
  let path = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase()) {
      domain = first;
      path = rest.slice(slash + 1);
    }
  }
  validateDomain(domain, input);
  if (domain === 'index.docker.io') domain = DEFAULT_DOMAIN;
  if (path === '') throw invalid(`invalid reference format: no repository in ${JSON.stringify(input)}`);
  for (const c of path.split('/')) {
    if (!COMPONENT.test(c)) {
      if (c.toLowerCase() !== c) throw invalid(`invalid reference format: repository name must be lowercase: ${JSON.stringify(input)}`);
      throw invalid(`invalid reference format: bad path component ${JSON.stringify(c)} in ${JSON.stringify(input)}`);
    }
  }
  if (domain === DEFAULT_DOMAIN && !path.includes('/')) path = `library/${path}`;
  if (domain.length + 1 + path.length > 255) throw invalid(`invalid reference format: repository name too long: ${input}`);
  if (!tag && !digest && opts.defaultTag !== false) tag = DEFAULT_TAG;
  return { domain, path, tag, digest };
}

function validateDomain(domain: string, input: string): void {
  let host = domain;
  const m = /^(.*):(\d+)$/.exec(domain);
  if (m) {
    host = m[1]!;
    const port = Number(m[2]);
    if (port < 1 || port > 65535) throw invalid(`invalid reference format: bad port in ${JSON.stringify(input)}`);
  }
  if (host.startsWith('[') && host.endsWith(']')) return; // IPv6 literal
  if (!host.split('.').every((p) => DOMAIN_COMPONENT.test(p))) {
    throw invalid(`invalid reference format: bad registry host ${JSON.stringify(domain)} in ${JSON.stringify(input)}`);
  }
}

/** 'docker.io/library/busybox' */
export function repository(r: Reference): string {
  return `${r.domain}/${r.path}`;
}

/** Fully qualified string: 'docker.io/library/busybox:latest' or '...@sha256:...'. */
export function formatReference(r: Reference): string {
  let s = repository(r);
  if (r.tag) s += `:${r.tag}`;
  if (r.digest) s += `@${r.digest}`;
  return s;
}

/** Docker's familiar form: 'busybox', 'user/app', 'localhost:5000/app' (no tag). */
export function familiarRepository(r: Reference): string {
  if (r.domain === DEFAULT_DOMAIN) {
    return r.path.startsWith('library/') ? r.path.slice('library/'.length) : r.path;
  }
  return repository(r);
}

/** 'busybox:latest', 'localhost:5000/app@sha256:...' */
export function familiarString(r: Reference): string {
  let s = familiarRepository(r);
  if (r.tag) s += `:${r.tag}`;
  if (r.digest) s += `@${r.digest}`;
  return s;
}

/** The tag key stored in the state: 'docker.io/library/busybox:latest'. */
export function tagKey(r: Reference): string {
  return `${repository(r)}:${r.tag ?? DEFAULT_TAG}`;
}

/** The repo-digest key stored in the state: 'docker.io/library/busybox@sha256:...'. */
export function digestKey(r: Reference, digest: Digest): string {
  return `${repository(r)}@${digest}`;
}
