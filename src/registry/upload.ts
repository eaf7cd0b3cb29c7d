import fs from 'node:fs';
import { Transform, type Readable } from 'node:stream';
import type { ContentStore } from '../content/store.js';
import { HullError, isHullError } from '../errors.js';
import type { Digest } from '../oci/digest.js';
import type { RegistryClient } from './client.js';
import { drain } from './http.js';

/**
 * Blob upload (distribution spec "push"): HEAD to see whether the registry has the blob,
 * a cross-repository mount when another repository of the same registry has it, else an upload
 * session (POST) finished either monolithically (one PUT with the body) or in chunks (PATCH per
 * chunk, then PUT ?digest=).
 */
export interface UploadOptions {
  /** Blobs up to this many bytes go in one PUT; larger ones in PATCH chunks. Default 64 MiB ($HULL_PUSH_MONOLITHIC_MAX). */
  monolithicMax?: number;
  /** Chunk size in bytes for chunked uploads. Default 16 MiB ($HULL_PUSH_CHUNK_SIZE). */
  chunkSize?: number;
}

export type UploadResult = { how: 'exists' } | { how: 'mounted'; from: string } | { how: 'pushed' };

function envBytes(name: string, dflt: number): number {
  const n = Number(process.env[name] ?? '');
  return Number.isSafeInteger(n) && n > 0 ? n : dflt;
}

export function uploadSettings(o: UploadOptions = {}): Required<UploadOptions> {
  return {
    monolithicMax: o.monolithicMax ?? envBytes('HULL_PUSH_MONOLITHIC_MAX', 64 * 1024 * 1024),
    chunkSize: o.chunkSize ?? envBytes('HULL_PUSH_CHUNK_SIZE', 16 * 1024 * 1024),
  };
}

/** Chunk boundaries [start, end] inclusive for a blob of `size` bytes. Pure. */
export function chunkRanges(size: number, chunk: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let s = 0; s < size; s += chunk) out.push([s, Math.min(size, s + chunk) - 1]);
  return out;
}

function counting(src: Readable, onBytes: (n: number) => void, base: number): Readable {
  let n = base;
  const t = new Transform({
    transform(chunk: Buffer, _e, cb) {
      n += chunk.length;
      onBytes(n);
      cb(null, chunk);
    },
  });
  src.on('error', (e) => t.destroy(e));
  return src.pipe(t);
}

export async function uploadBlob(
  client: RegistryClient,
  repo: string,
  content: ContentStore,
  blob: { digest: Digest; size: number; what: string },
  mountFrom: string[],
  opts: Required<UploadOptions>,
  onBytes: (n: number) => void = () => undefined,
): Promise<UploadResult> {
  const scopes = [`repository:${repo}:pull,push`];
  const head = await client.request({ method: 'HEAD', path: `/v2/${repo}/blobs/${blob.digest}`, scopes });
  drain(head);
  if (head.status === 200) return { how: 'exists' };
  if (head.status !== 404) await client.fail(head, `checking ${blob.what} on the registry`);
  if (!content.has(blob.digest)) throw new HullError('NOT_FOUND', `${blob.what} (${blob.digest}) is not in the local content store`);

  for (let attempt = 0; ; attempt++) {
    try {
      return await uploadOnce(client, repo, content, blob, mountFrom, opts, onBytes, scopes);
    } catch (e) {
      // Upload sessions cannot be resumed reliably after a failure: start a new one.
      client.checkCancelled();
      if (!isHullError(e, 'UNAVAILABLE') || attempt >= client.retries) throw e;
      const d = client.backoff(attempt + 1);
      client.noteRetry(`upload ${blob.digest}`, attempt + 1, d, (e as Error).message);
      await client.pause(d);
    }
  }
}

async function uploadOnce(
  client: RegistryClient,
  repo: string,
  content: ContentStore,
  blob: { digest: Digest; size: number; what: string },
  mountFrom: string[],
  opts: Required<UploadOptions>,
  onBytes: (n: number) => void,
  scopes: string[],
): Promise<UploadResult> {
  let location: string | undefined;
  for (const from of mountFrom) {
    if (from === repo) continue;
    const q = new URLSearchParams({ mount: blob.digest, from });
    const res = await client.request({ method: 'POST', path: `/v2/${repo}/blobs/uploads/?${q}`, scopes: [...scopes, `repository:${from}:pull`], idempotent: false });
    drain(res);
    if (res.status === 201) return { how: 'mounted', from };
    if (res.status === 202 && res.headers.location) {
      // The registry declined the mount and opened an ordinary upload session instead.
      location = res.headers.location;
      break;
    }
    if (res.status >= 400) break;
  }
  if (!location) {
    const res = await client.request({ method: 'POST', path: `/v2/${repo}/blobs/uploads/`, scopes, idempotent: false });
    if (res.status !== 202 || !res.headers.location) await client.fail(res, `starting the upload of ${blob.what}`);
    drain(res);
    location = res.headers.location!;
  }
  const file = content.path(blob.digest);
  const withDigest = (loc: string) => {
    const u = new URL(loc, client.endpoint.base);
    u.searchParams.set('digest', blob.digest);
    return u.toString();
  };
  if (blob.size <= opts.monolithicMax) {
    const res = await client.request({
      method: 'PUT',
      path: withDigest(location),
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(blob.size) },
      body: () => counting(fs.createReadStream(file), onBytes, 0),
      scopes,
      idempotent: false,
    });
    if (res.status !== 201) await client.fail(res, `uploading ${blob.what}`);
    checkDigestHeader(res.headers['docker-content-digest'], blob);
    drain(res);
    return { how: 'pushed' };
  }
  for (const [start, end] of chunkRanges(blob.size, opts.chunkSize)) {
    const res = await client.request({
      method: 'PATCH',
      path: new URL(location, client.endpoint.base).toString(),
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(end - start + 1), 'Content-Range': `${start}-${end}` },
      body: () => counting(fs.createReadStream(file, { start, end }), onBytes, start),
      scopes,
      idempotent: false,
    });
    if (res.status !== 202 || !res.headers.location) await client.fail(res, `uploading bytes ${start}-${end} of ${blob.what}`);
    drain(res);
    location = res.headers.location!;
  }
  const res = await client.request({ method: 'PUT', path: withDigest(location), headers: { 'Content-Length': '0' }, body: Buffer.alloc(0), scopes, idempotent: false });
  if (res.status !== 201) await client.fail(res, `finishing the upload of ${blob.what}`);
  checkDigestHeader(res.headers['docker-content-digest'], blob);
  drain(res);
  return { how: 'pushed' };
}

function checkDigestHeader(h: string | string[] | undefined, blob: { digest: Digest; what: string }): void {
  if (typeof h === 'string' && h !== blob.digest) {
    throw new HullError('UNAVAILABLE', `${blob.what}: the registry stored ${h}, expected ${blob.digest}`);
  }
}
