import fs from 'node:fs';
import http from 'node:http';
import type https from 'node:https';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { hostOf } from './hosts.js';

/**
 * The one place hull's registry client touches the network: node:http / node:https with
 * keep-alive agents, TLS verified against the system CA store, an idle timeout on every
 * socket. No retries and no auth here (see client.ts).
 */
export interface HttpRequest {
  method: string;
  url: URL;
  headers?: Record<string, string>;
  /** A buffer, or a factory for a fresh stream (called once per attempt). */
  body?: Buffer | (() => Readable);
  /** Milliseconds a socket may stay silent (connecting, awaiting headers or body) before the request fails. */
  idleTimeoutMs: number;
  /** Cancels the request and its body stream. */
  signal?: AbortSignal;
}

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  url: URL;
  body: http.IncomingMessage;
}

/** Errors that mean "the connection failed, the request may be tried again". */
const TRANSIENT = new Set(['ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'ENOTCONN', 'UND_ERR_SOCKET', 'ERR_STREAM_PREMATURE_CLOSE']);

export function isTransientNetworkError(e: unknown): boolean {
  if ((e as Error | undefined)?.name === 'AbortError') return false;
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (code && TRANSIENT.has(code)) return true;
  const msg = (e as Error | undefined)?.message ?? '';
  return /socket hang up|aborted|premature close|other side closed/i.test(msg);
}

const SYSTEM_CA_FILES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/ca-bundle.pem', '/etc/pki/tls/cacert.pem', '/etc/ssl/cert.pem'];

let systemCa: string[] | undefined | null = null;

/**
 * The system CA store (SSL_CERT_FILE, else the distribution's bundle) plus NODE_EXTRA_CA_CERTS;
 * without a system store, node's own roots (`fallbackRoots`) plus NODE_EXTRA_CA_CERTS. hull
 * reads NODE_EXTRA_CA_CERTS itself: bin/hull keeps node from loading it at start-up.
 */
export function systemCaBundle(env: NodeJS.ProcessEnv = process.env, fallbackRoots: readonly string[] = []): string[] | undefined {
  if (systemCa !== null) return systemCa;
  const files = env.SSL_CERT_FILE ? [env.SSL_CERT_FILE] : SYSTEM_CA_FILES;
  const out: string[] = [];
  for (const f of files) {
    try {
      out.push(fs.readFileSync(f, 'utf8'));
      break;
    } catch {
      /* try the next */
    }
  }
  if (env.NODE_EXTRA_CA_CERTS) {
    try {
      const extra = fs.readFileSync(env.NODE_EXTRA_CA_CERTS, 'utf8');
      if (out.length === 0) out.push(...fallbackRoots);
      out.push(extra);
    } catch (e) {
      // node's own words when it cannot read the file
      process.emitWarning(`Ignoring extra certs from \`${env.NODE_EXTRA_CA_CERTS}\`, load failed: ${(e as Error).message}`);
    }
  }
  systemCa = out.length > 0 ? out : undefined;
  return systemCa;
}

/** Per-registry CA files, docker's convention: /etc/docker/certs.d/HOST[:PORT]/*.crt (and hull's /etc/hull/certs.d). */
function registryCas(hostport: string): string[] {
  const out: string[] = [];
  for (const base of ['/etc/hull/certs.d', '/etc/docker/certs.d']) {
    const dir = path.join(base, hostport);
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      continue;
    }
    for (const n of names) if (n.endsWith('.crt')) out.push(fs.readFileSync(path.join(dir, n), 'utf8'));
  }
  return out;
}

const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 16 });
const httpsAgents = new Map<string, https.Agent>();
/** node:https (with tls) loads only for a registry over https: a plain-http pull starts ~10 ms sooner. */
let httpsModule: typeof https | undefined;
/** node's bundled root certificates (node:tls, loaded with node:https). */
let nodeRoots: readonly string[] = [];

function agentFor(url: URL): http.Agent {
  if (url.protocol === 'http:') return httpAgent;
  const https = httpsModule!;
  const extra = registryCas(url.host);
  const key = extra.length ? url.host : '';
  let a = httpsAgents.get(key);
  if (!a) {
    const sys = systemCaBundle(process.env, nodeRoots);
    const ca = extra.length || sys ? [...(sys ?? []), ...extra] : undefined;
    a = new https.Agent({ keepAlive: true, maxSockets: 16, ...(ca ? { ca } : {}) });
    httpsAgents.set(key, a);
  }
  return a;
}

/** Send one request; resolves when the response headers arrive. The caller consumes or drains the body. */
export async function send(req: HttpRequest): Promise<HttpResponse> {
  if (req.url.protocol === 'https:' && !httpsModule) {
    httpsModule = (await import('node:https')).default;
    nodeRoots = (await import('node:tls')).rootCertificates;
  }
  return new Promise((resolve, reject) => {
    const mod = req.url.protocol === 'https:' ? httpsModule! : http;
    const headers: Record<string, string> = { ...(req.headers ?? {}) };
    if (Buffer.isBuffer(req.body)) headers['Content-Length'] = String(req.body.length);
    const r = mod.request(req.url, {
      method: req.method,
      headers,
      agent: agentFor(req.url),
      servername: req.url.protocol === 'https:' ? hostOf(req.url.host) : undefined,
      signal: req.signal,
    });
    let settled = false;
    r.setTimeout(req.idleTimeoutMs, () => {
      const err = Object.assign(new Error(`no data from ${req.url.host} for ${req.idleTimeoutMs} ms`), { code: 'ETIMEDOUT' });
      r.destroy(err);
    });
    r.on('error', (e) => {
      if (!settled) {
        settled = true;
        reject(e);
      }
    });
    r.on('response', (res) => {
      settled = true;
      // An idle socket while the body streams fails the body stream too.
      r.on('error', (e) => res.destroy(e));
      resolve({ status: res.statusCode ?? 0, headers: res.headers, url: req.url, body: res });
    });
    if (req.body === undefined) r.end();
    else if (Buffer.isBuffer(req.body)) r.end(req.body);
    else {
      const src = req.body();
      src.on('error', (e) => r.destroy(e));
      src.pipe(r);
    }
  });
}

/** Read a whole body, refusing more than `maxBytes`. */
export async function readBody(res: HttpResponse, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res.body as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > maxBytes) {
      res.body.destroy();
      throw new Error(`response from ${res.url.host} is over ${maxBytes} bytes`);
    }
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

/** Discard a body we do not need, so the socket can be reused (or closed when large). */
export function drain(res: HttpResponse): void {
  const len = Number(res.headers['content-length'] ?? 'NaN');
  if (Number.isFinite(len) && len <= 64 * 1024) res.body.resume();
  else res.body.destroy();
}
