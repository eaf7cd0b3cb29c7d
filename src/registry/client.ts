import { HullError, type ErrorCode } from '../errors.js';
import { version } from '../version.js';
import { type Challenge, parseChallenges } from './challenge.js';
import { type Credentials, lookupCredentials } from './credentials.js';
import { allowsPlainHttp, type Endpoint, endpointFor, insecureList } from './hosts.js';
import { drain, type HttpRequest, type HttpResponse, isTransientNetworkError, readBody, send } from './http.js';

/**
 * A client for one registry: the /v2/ probe, anonymous / Basic / Bearer access (tokens from
 * the realm in WWW-Authenticate, reused until they expire), redirects (Authorization dropped
 * when the origin changes), and retries with exponential backoff on 5xx and broken connections
 * (never on 4xx).
 */
export interface ClientOptions {
  /** The registry as named in references: docker.io, localhost:5000. */
  domain: string;
  /** Registries allowed over plain http besides loopback. Default: $HULL_INSECURE_REGISTRIES. */
  insecure?: string[];
  /** Credentials; `null` forces anonymous access. Default: looked up (hull's file, then docker's). */
  credentials?: Credentials | null;
  /** Further attempts after a 5xx or a broken connection. Default 4 ($HULL_REGISTRY_RETRIES). */
  retries?: number;
  /** First backoff delay in milliseconds, doubled per attempt (with jitter, capped at 10 s). Default 250. */
  backoffMs?: number;
  /** Socket idle timeout in milliseconds. Default 60000 ($HULL_REGISTRY_TIMEOUT_MS). */
  timeoutMs?: number;
  /** Cancels every request of this client (pull/push interrupted by the user). */
  signal?: AbortSignal;
  /** Called before a retry, for progress output. */
  onRetry?: (info: { url: string; attempt: number; delayMs: number; reason: string }) => void;
}

export interface RequestOptions {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** A path under the registry (/v2/...) or an absolute URL (upload locations). */
  path: string;
  headers?: Record<string, string>;
  body?: HttpRequest['body'];
  /** Scopes the request needs, e.g. ['repository:library/alpine:pull']. */
  scopes: string[];
  /** Whether the request may be repeated on a 5xx or a broken connection. Default: GET/HEAD/PUT yes. */
  idempotent?: boolean;
  /** Follow redirects (GET/HEAD). Default true. */
  followRedirects?: boolean;
}

interface Token {
  token: string;
  expiresAt: number;
}

/** Tokens shared by every client in this process: realm|service|scopes|user -> token. */
const tokenCache = new Map<string, Token>();

const MAX_REDIRECTS = 10;
const MAX_ERROR_BODY = 64 * 1024;
const MAX_TOKEN_BODY = 1024 * 1024;

function envInt(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  return Number.isInteger(n) && n >= 0 ? n : dflt;
}

const USER_AGENT = `hull/${version()}`;

export class RegistryClient {
  readonly endpoint: Endpoint;
  readonly retries: number;
  readonly backoffMs: number;
  readonly timeoutMs: number;
  private readonly insecure: string[];
  private readonly creds: Credentials | undefined;
  private readonly onRetry?: ClientOptions['onRetry'];
  readonly signal?: AbortSignal;
  /** undefined: not probed yet; null: the registry let us in without auth. */
  private challenge: Challenge | null | undefined;

  constructor(opts: ClientOptions) {
    this.insecure = opts.insecure ?? insecureList();
    this.endpoint = endpointFor(opts.domain, this.insecure);
    this.creds = opts.credentials === null ? undefined : (opts.credentials ?? lookupCredentials(this.endpoint.domain));
    this.retries = opts.retries ?? envInt('HULL_REGISTRY_RETRIES', 4);
    this.backoffMs = opts.backoffMs ?? 250;
    this.timeoutMs = opts.timeoutMs ?? envInt('HULL_REGISTRY_TIMEOUT_MS', 60_000);
    this.onRetry = opts.onRetry;
    this.signal = opts.signal;
  }

  /** Throw when the operation was cancelled. */
  checkCancelled(): void {
    if (this.signal?.aborted) throw new HullError('UNAVAILABLE', 'cancelled');
  }

  /** Wait `ms` before a retry; cut short (and failing) when cancelled. */
  async pause(ms: number): Promise<void> {
    this.checkCancelled();
    await new Promise<void>((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.signal?.addEventListener('abort', done, { once: true });
    });
    this.checkCancelled();
  }

  get username(): string | undefined {
    return this.creds?.username;
  }

  /** Delay before retry number `attempt` (1-based): backoff * 2^(attempt-1), +-20% jitter, at most 10 s. */
  backoff(attempt: number): number {
    const d = Math.min(10_000, this.backoffMs * 2 ** (attempt - 1));
    return Math.round(d * (0.8 + Math.random() * 0.4));
  }

  noteRetry(url: string, attempt: number, delayMs: number, reason: string): void {
    this.onRetry?.({ url, attempt, delayMs, reason });
  }

  /**
   * GET /v2/: is this a registry, and which auth does it want? With `verifyLogin`, credentials
   * are checked now (a token is fetched, or the probe is repeated with Basic auth).
   */
  async ping(verifyLogin = false, scopes: string[] = []): Promise<void> {
    const url = new URL('/v2/', this.endpoint.base);
    const res = await this.sendWithRetry({ method: 'GET', url, idleTimeoutMs: this.timeoutMs, headers: this.baseHeaders() }, true);
    drain(res);
    if (res.status === 200) {
      // Open to anyone: docker's login also succeeds here without checking the credentials.
      this.challenge = null;
      return;
    }
    if (res.status !== 401) {
      throw new HullError('UNAVAILABLE', `${this.endpoint.base}/v2/ answered ${res.status}: not an OCI distribution registry`);
    }
    const ch = parseChallenges(res.headers['www-authenticate']);
    const pick = ch.find((c) => c.scheme === 'bearer') ?? ch.find((c) => c.scheme === 'basic');
    if (!pick) throw new HullError('UNAVAILABLE', `${this.endpoint.base}/v2/ wants authentication of a kind hull does not speak (${String(res.headers['www-authenticate'] ?? 'no WWW-Authenticate')})`);
    this.challenge = pick;
    if (!verifyLogin) return;
    if (!this.creds) throw new HullError('PERMISSION_DENIED', `${this.endpoint.domain}: no credentials to log in with`);
    if (pick.scheme === 'bearer') {
      await this.token(pick, scopes, true);
      return;
    }
    const again = await this.sendWithRetry({ method: 'GET', url, idleTimeoutMs: this.timeoutMs, headers: { ...this.baseHeaders(), Authorization: this.basic() } }, true);
    drain(again);
    if (again.status === 401 || again.status === 403) throw new HullError('PERMISSION_DENIED', `login to ${this.endpoint.domain} failed: unauthorized: incorrect username or password`);
    if (again.status !== 200) throw new HullError('UNAVAILABLE', `login to ${this.endpoint.domain}: /v2/ answered ${again.status}`);
  }

  private baseHeaders(): Record<string, string> {
    return { 'User-Agent': USER_AGENT };
  }

  private basic(): string {
    const c = this.creds!;
    return `Basic ${Buffer.from(`${c.username}:${c.password}`, 'utf8').toString('base64')}`;
  }

  /** A Bearer token for `scopes` from the challenge's realm, cached until it expires. */
  private async token(ch: Challenge, scopes: string[], fresh = false): Promise<string> {
    const realm = ch.params.realm;
    if (!realm) throw new HullError('UNAVAILABLE', `${this.endpoint.domain}: Bearer challenge without a realm`);
    const service = ch.params.service ?? '';
    const allScopes = [...new Set([...scopes, ...(ch.params.scope ? ch.params.scope.split(' ') : [])])].sort();
    const key = [realm, service, allScopes.join(' '), this.creds?.username ?? ''].join('|');
    const hit = tokenCache.get(key);
    if (!fresh && hit && hit.expiresAt > Date.now()) return hit.token;
    let realmUrl: URL;
    try {
      realmUrl = new URL(realm);
    } catch (e) {
      throw new HullError('UNAVAILABLE', `${this.endpoint.domain}: token realm ${JSON.stringify(realm)} is not a URL`, { cause: e });
    }
    if (realmUrl.protocol !== 'https:' && !(realmUrl.protocol === 'http:' && allowsPlainHttp(realmUrl.host, this.insecure))) {
      throw new HullError('PERMISSION_DENIED', `${this.endpoint.domain}: refusing to send credentials to token realm ${realm} over plain http`);
    }
    const headers: Record<string, string> = { ...this.baseHeaders(), Accept: 'application/json' };
    let req: HttpRequest;
    if (this.creds?.identityToken) {
      // OAuth2 refresh-token grant, as docker does with an identity token.
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: this.creds.identityToken, service, client_id: 'hull', access_type: 'offline' });
      if (allScopes.length) form.set('scope', allScopes.join(' '));
      req = { method: 'POST', url: realmUrl, idleTimeoutMs: this.timeoutMs, headers: { ...headers, 'Content-Type': 'application/x-www-form-urlencoded' }, body: Buffer.from(form.toString()) };
    } else {
      const u = new URL(realmUrl);
      if (service) u.searchParams.set('service', service);
      for (const s of allScopes) u.searchParams.append('scope', s);
      if (this.creds) {
        headers.Authorization = this.basic();
        u.searchParams.set('account', this.creds.username);
      }
      req = { method: 'GET', url: u, idleTimeoutMs: this.timeoutMs, headers };
    }
    const res = await this.sendWithRetry(req, true);
    const body = await readBody(res, MAX_TOKEN_BODY);
    if (res.status === 401 || res.status === 403) {
      throw new HullError('PERMISSION_DENIED', this.creds ? `${this.endpoint.domain}: unauthorized: incorrect username or password` : `${this.endpoint.domain}: the token server refused anonymous access (${res.status})`);
    }
    if (res.status !== 200) throw new HullError('UNAVAILABLE', `token server ${realmUrl.host} answered ${res.status}: ${registryMessage(body)}`);
    let doc: { token?: unknown; access_token?: unknown; expires_in?: unknown; issued_at?: unknown };
    try {
      doc = JSON.parse(body.toString('utf8'));
    } catch (e) {
      throw new HullError('UNAVAILABLE', `token server ${realmUrl.host} sent a body that is not JSON`, { cause: e });
    }
    const token = typeof doc.token === 'string' && doc.token ? doc.token : typeof doc.access_token === 'string' ? doc.access_token : '';
    if (!token) throw new HullError('UNAVAILABLE', `token server ${realmUrl.host} sent no token`);
    // The spec's default lifetime is 60 s; renew 10% early.
    const lifetime = typeof doc.expires_in === 'number' && doc.expires_in > 0 ? doc.expires_in : 60;
    const issued = typeof doc.issued_at === 'string' && !Number.isNaN(Date.parse(doc.issued_at)) ? Math.min(Date.parse(doc.issued_at), Date.now()) : Date.now();
    tokenCache.set(key, { token, expiresAt: issued + lifetime * 900 });
    return token;
  }

  private async authorization(scopes: string[], fresh = false, ch?: Challenge): Promise<string | undefined> {
    const c = ch ?? this.challenge;
    if (!c) return undefined;
    if (c.scheme === 'bearer') return `Bearer ${await this.token(c, scopes, fresh)}`;
    if (c.scheme === 'basic') {
      if (!this.creds) throw new HullError('PERMISSION_DENIED', `${this.endpoint.domain}: unauthorized: authentication required`, { hint: `run 'hull login ${this.endpoint.domain}'` });
      return this.basic();
    }
    return undefined;
  }

  /**
   * One registry request with auth, redirects and retries. Resolves with any status; callers
   * check it (see `fail`). 401 after a fresh token or Basic credentials is returned as is.
   */
  async request(o: RequestOptions): Promise<HttpResponse> {
    if (this.challenge === undefined) await this.ping();
    const idempotent = o.idempotent ?? ['GET', 'HEAD', 'PUT'].includes(o.method);
    let auth = await this.authorization(o.scopes);
    let triedFresh = false;
    for (;;) {
      const res = await this.followRedirects(o, auth, idempotent);
      if (res.status !== 401 || triedFresh) return res;
      // A 401 after the probe: the token expired or lacked a scope. Try once with a fresh one.
      const ch = parseChallenges(res.headers['www-authenticate']);
      const pick = ch.find((c) => c.scheme === 'bearer') ?? ch.find((c) => c.scheme === 'basic');
      if (!pick) return res;
      drain(res);
      this.challenge = pick;
      triedFresh = true;
      auth = await this.authorization(o.scopes, true, pick);
      if (auth === undefined) return res;
    }
  }

  private async followRedirects(o: RequestOptions, auth: string | undefined, idempotent: boolean): Promise<HttpResponse> {
    let url = /^https?:\/\//.test(o.path) ? new URL(o.path) : new URL(o.path, this.endpoint.base);
    let method: string = o.method;
    const origin = new URL(this.endpoint.base).origin;
    for (let hop = 0; ; hop++) {
      const headers: Record<string, string> = { ...this.baseHeaders(), ...(o.headers ?? {}) };
      // Credentials go only to the registry's own origin, never to blob storage elsewhere.
      if (auth && url.origin === origin) headers.Authorization = auth;
      const res = await this.sendWithRetry({ method, url, headers, body: o.body, idleTimeoutMs: this.timeoutMs }, idempotent);
      const loc = res.headers.location;
      if (o.followRedirects === false || ![301, 302, 303, 307, 308].includes(res.status) || !loc || !['GET', 'HEAD'].includes(method)) return res;
      drain(res);
      if (hop >= MAX_REDIRECTS) throw new HullError('UNAVAILABLE', `${this.endpoint.domain}: too many redirects for ${o.path}`);
      const next = new URL(loc, url);
      if (next.protocol === 'http:' && !allowsPlainHttp(next.host, this.insecure)) {
        throw new HullError('PERMISSION_DENIED', `${this.endpoint.domain}: refusing a redirect to plain http (${next.host}); list it in HULL_INSECURE_REGISTRIES to allow`);
      }
      if (next.protocol !== 'http:' && next.protocol !== 'https:') throw new HullError('UNAVAILABLE', `${this.endpoint.domain}: redirect to unsupported URL ${next.protocol}`);
      if (res.status === 303) method = 'GET';
      url = next;
    }
  }

  /** Send with retries on broken connections and 5xx (idempotent requests only). */
  async sendWithRetry(req: HttpRequest, idempotent: boolean): Promise<HttpResponse> {
    for (let attempt = 0; ; attempt++) {
      this.checkCancelled();
      let res: HttpResponse;
      try {
        res = await send({ ...req, signal: this.signal });
      } catch (e) {
        this.checkCancelled();
        if (!idempotent || attempt >= this.retries || !isTransientNetworkError(e)) {
          throw new HullError('UNAVAILABLE', `cannot reach registry ${req.url.host} (${req.method} ${req.url.origin}${req.url.pathname}): ${(e as Error).message}`, {
            cause: e,
            hint: /ENOTFOUND|EAI_AGAIN/.test(String((e as NodeJS.ErrnoException).code)) ? 'check the registry name and the network (DNS)' : undefined,
          });
        }
        const d = this.backoff(attempt + 1);
        this.noteRetry(req.url.toString(), attempt + 1, d, (e as Error).message);
        await this.pause(d);
        continue;
      }
      if (res.status >= 500 && idempotent && attempt < this.retries) {
        drain(res);
        const d = this.backoff(attempt + 1);
        this.noteRetry(req.url.toString(), attempt + 1, d, `HTTP ${res.status}`);
        await this.pause(d);
        continue;
      }
      return res;
    }
  }

  /** Turn an unexpected response into a HullError naming what was asked (`what`) and the registry's own message. */
  async fail(res: HttpResponse, what: string): Promise<never> {
    let body: Buffer = Buffer.alloc(0);
    if (res.body.readable && res.status !== 204) {
      try {
        body = await readBody(res, MAX_ERROR_BODY);
      } catch {
        /* keep the status alone */
      }
    }
    const msg = registryMessage(body);
    const s = res.status;
    let code: ErrorCode = 'UNAVAILABLE';
    if (s === 401 || s === 403) code = 'PERMISSION_DENIED';
    else if (s === 404) code = 'NOT_FOUND';
    else if (s === 400 || s === 405 || s === 413 || s === 416) code = 'INVALID_ARGUMENT';
    const suffix = msg ? `: ${msg}` : '';
    if (s === 401) {
      throw new HullError(code, `${what}: unauthorized: authentication required${suffix && !/authentication required/.test(msg) ? suffix : ''}`, {
        hint: this.creds ? undefined : `run 'hull login ${this.endpoint.domain}'`,
      });
    }
    throw new HullError(code, `${what}: ${this.endpoint.domain} answered ${s}${suffix}`);
  }
}

/** The registry's error text from a body like {"errors":[{"code":"MANIFEST_UNKNOWN","message":"..."}]}. */
export function registryMessage(body: Buffer): string {
  if (body.length === 0) return '';
  try {
    const doc = JSON.parse(body.toString('utf8')) as { errors?: Array<{ code?: unknown; message?: unknown }>; details?: unknown };
    if (Array.isArray(doc.errors) && doc.errors.length > 0) {
      return doc.errors
        .map((e) => [typeof e.code === 'string' ? e.code.toLowerCase() : '', typeof e.message === 'string' ? e.message : ''].filter(Boolean).join(': '))
        .join('; ');
    }
    if (typeof doc.details === 'string') return doc.details;
  } catch {
    /* not JSON */
  }
  const text = body.toString('utf8').replace(/\s+/g, ' ').trim();
  return text.length > 200 ? `${text.slice(0, 200)}...` : text;
}

/** Forget cached tokens (tests, logout). */
export function clearTokenCache(): void {
  tokenCache.clear();
}
