/**
 * docker's JSON-lines messages (jsonmessage.JSONMessage) beyond the progress events (those come
 * from registry/progress.ts dockerJsonMessages): the error line, and X-Registry-Auth. Pure.
 */

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
