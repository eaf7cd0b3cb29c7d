/**
 * Query and body parsing with docker's rules and clear 400s: booleans are 1/true/True/0/false,
 * numbers must be integers, JSON bodies must parse and stay under a size limit (413).
 */
import type { IncomingMessage } from 'node:http';
import { HttpError } from './errors.js';

/** Largest JSON body accepted, bytes (container create bodies are a few KiB). Default 1 MiB. */
export const MAX_JSON_BODY = 1024 * 1024;

export class Query {
  constructor(readonly q: URLSearchParams) {}

  has(name: string): boolean {
    return this.q.has(name);
  }

  str(name: string): string | undefined {
    return this.q.get(name) ?? undefined;
  }

  all(name: string): string[] {
    return this.q.getAll(name);
  }

  /** docker's boolean: absent -> def; '', '0', 'false', 'False', 'no' -> false; 1/true -> true. */
  bool(name: string, def = false): boolean {
    const v = this.q.get(name);
    if (v === null) return def;
    const l = v.toLowerCase();
    if (['', '0', 'false', 'no', 'off'].includes(l)) return false;
    if (['1', 'true', 'yes', 'on'].includes(l)) return true;
    throw new HttpError(400, `invalid boolean value for query parameter ${name}: ${JSON.stringify(v)}`);
  }

  /** An integer parameter; absent -> def; anything else than an integer is a 400. */
  int(name: string, def?: number): number | undefined {
    const v = this.q.get(name);
    if (v === null || v === '') return def;
    if (!/^-?\d+$/.test(v)) throw new HttpError(400, `invalid value for query parameter ${name}: ${JSON.stringify(v)} (an integer)`);
    return Number(v);
  }

  /** docker's `filters` parameter: JSON map of name -> [values] (or the old name -> {value: true}). */
  filters(): Map<string, string[]> {
    const raw = this.q.get('filters');
    const out = new Map<string, string[]>();
    if (!raw) return out;
    let doc: unknown;
    try {
      doc = JSON.parse(raw);
    } catch {
      throw new HttpError(400, `invalid filters: ${JSON.stringify(raw)} is not JSON`);
    }
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new HttpError(400, 'invalid filters: expected a JSON object');
    for (const [k, v] of Object.entries(doc)) {
      if (Array.isArray(v)) out.set(k, v.map(String));
      else if (typeof v === 'object' && v !== null) out.set(k, Object.keys(v).filter((x) => (v as Record<string, unknown>)[x]));
      else throw new HttpError(400, `invalid filter ${k}: expected a list of values`);
    }
    return out;
  }
}

/** Read the whole body, refusing more than `limit` bytes with 413. */
export function readBody(req: IncomingMessage, limit = MAX_JSON_BODY): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? '0');
    if (declared > limit) {
      reject(new HttpError(413, `request body too large: ${declared} bytes (limit ${limit})`));
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (c: Buffer) => {
      if (failed) return;
      size += c.length;
      if (size > limit) {
        failed = true;
        chunks.length = 0;
        reject(new HttpError(413, `request body too large: more than ${limit} bytes`));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (!failed) resolve(Buffer.concat(chunks));
    });
    req.on('error', (e) => {
      if (!failed) reject(e);
    });
  });
}

/** Parse a JSON body: empty -> `empty`; malformed -> 400; a non-object where one is needed -> 400. */
export function parseJsonBody<T = Record<string, unknown>>(buf: Buffer, empty: T): T {
  const text = buf.toString('utf8').trim();
  if (text === '') return empty;
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new HttpError(400, `invalid JSON in request body: ${(e as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new HttpError(400, 'invalid request body: expected a JSON object');
  return doc as T;
}

export async function jsonBody<T = Record<string, unknown>>(req: IncomingMessage, empty: T): Promise<T> {
  return parseJsonBody(await readBody(req), empty);
}
