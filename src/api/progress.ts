/**
 * Registry progress events -> docker's JSON-lines messages (jsonmessage.JSONMessage), which the
 * docker CLI renders as bars or lines. Pure.
 */
import type { BlobStatus, ProgressEvent } from '../registry/events.js';
import { progressBar } from '../registry/progress.js';

export interface JsonMessage {
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number };
  progress?: string;
  error?: string;
  errorDetail?: { message: string };
  aux?: Record<string, unknown>;
  stream?: string;
}

const WORDS: Record<BlobStatus, string> = {
  waiting: 'Pulling fs layer',
  exists: 'Already exists',
  downloading: 'Downloading',
  verifying: 'Verifying Checksum',
  downloaded: 'Download complete',
  complete: 'Pull complete',
  preparing: 'Preparing',
  'remote-exists': 'Layer already exists',
  mounted: 'Mounted from',
  pushing: 'Pushing',
  pushed: 'Pushed',
};

/** The messages for one event (none for events docker does not show). */
export function eventMessages(e: ProgressEvent): JsonMessage[] {
  switch (e.type) {
    case 'start':
      if (e.op === 'push') return [{ status: `The push refers to repository [${e.repository}]` }];
      return [{ status: `Pulling from ${e.repository}`, id: e.tagOrDigest }];
    case 'resolved':
      return [];
    case 'retry':
      return [{ status: `Retrying in ${Math.max(1, Math.round(e.delayMs / 1000))} seconds (attempt ${e.attempt}: ${e.reason})` }];
    case 'blob': {
      const m: JsonMessage = { status: e.status === 'mounted' ? `Mounted from ${e.from ?? ''}`.trimEnd() : WORDS[e.status], progressDetail: {}, id: e.id };
      if ((e.status === 'downloading' || e.status === 'pushing') && e.current !== undefined) {
        m.progressDetail = { current: e.current, total: e.size };
        m.progress = progressBar(e.current, e.size);
      }
      return [m];
    }
    case 'done':
      if (e.op === 'push') {
        return [
          { status: `${e.tag ?? 'latest'}: digest: ${e.digest} size: ${e.size ?? 0}` },
          { progressDetail: {}, aux: { Tag: e.tag ?? 'latest', Digest: e.digest, Size: e.size ?? 0 } },
        ];
      }
      return [{ status: `Digest: ${e.digest}` }, { status: e.upToDate ? `Status: Image is up to date for ${e.reference}` : `Status: Downloaded newer image for ${e.reference}` }];
  }
}

export function errorMessageLine(message: string): JsonMessage {
  return { errorDetail: { message }, error: message };
}

/**
 * X-Registry-Auth: base64 (standard or URL-safe) JSON {username, password, serveraddress} or
 * {identitytoken}. Empty or '{}' means anonymous (undefined: look up stored credentials).
 */
export function parseRegistryAuth(header: string | undefined): { username: string; password: string; identityToken?: string } | undefined {
  if (!header) return undefined;
  let doc: unknown;
  try {
    const b = header.replace(/-/g, '+').replace(/_/g, '/');
    doc = JSON.parse(Buffer.from(b, 'base64').toString('utf8'));
  } catch {
    throw new Error('invalid X-Registry-Auth header: not base64-encoded JSON');
  }
  if (typeof doc !== 'object' || doc === null) throw new Error('invalid X-Registry-Auth header: not a JSON object');
  const d = doc as Record<string, unknown>;
  const username = typeof d.username === 'string' ? d.username : '';
  const password = typeof d.password === 'string' ? d.password : '';
  const identityToken = typeof d.identitytoken === 'string' && d.identitytoken ? d.identitytoken : undefined;
  if (!username && !password && !identityToken) return undefined;
  return { username, password, identityToken };
}
