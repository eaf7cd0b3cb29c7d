import crypto from 'node:crypto';
import { invalid } from '../errors.js';

/** A validated content digest, 'sha256:<64 lowercase hex>'. */
export type Digest = `sha256:${string}`;

const SHA256_RE = /^sha256:[0-9a-f]{64}$/;

export function isDigest(s: unknown): s is Digest {
  return typeof s === 'string' && SHA256_RE.test(s);
}

/** Parse a digest, naming `what` in the error when it is not one hull can verify. */
export function parseDigest(s: unknown, what = 'digest'): Digest {
  if (isDigest(s)) return s;
  if (typeof s === 'string' && /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/.test(s) && !s.startsWith('sha256:')) {
    throw invalid(`${what} ${JSON.stringify(s)}: only sha256 digests are supported`);
  }
  throw invalid(`${what} ${JSON.stringify(s)} is not a valid sha256 digest`);
}

export function hex(d: Digest): string {
  return d.slice('sha256:'.length);
}

export function sha256(data: Buffer | string): Digest {
  return `sha256:${crypto.createHash('sha256').update(data).digest('hex')}`;
}

/** Docker's short id: the first 12 hex characters. */
export function shortId(idOrDigest: string): string {
  const h = idOrDigest.startsWith('sha256:') ? idOrDigest.slice(7) : idOrDigest;
  return h.slice(0, 12);
}
