import { invalid } from '../errors.js';

/** Where a registry named in a reference is reached, and how. Pure: no I/O. */
export interface Endpoint {
  /** The registry as named in references: docker.io, localhost:5000. */
  domain: string;
  /** host[:port] the HTTP requests go to: registry-1.docker.io for docker.io. */
  host: string;
  scheme: 'https' | 'http';
  /** Base URL without a trailing slash, e.g. https://registry-1.docker.io. */
  base: string;
}

export const DOCKER_HUB_DOMAIN = 'docker.io';
export const DOCKER_HUB_HOST = 'registry-1.docker.io';
/** The key docker (and hull) use for Docker Hub in config.json `auths`. */
export const DOCKER_HUB_AUTH_KEY = 'https://index.docker.io/v1/';

/** Hosts always reached over plain http, as docker treats them: loopback. */
export function isLoopback(domain: string): boolean {
  const host = hostOf(domain);
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) || host.endsWith('.localhost');
}

/** The host part of host[:port], without IPv6 brackets. */
export function hostOf(domain: string): string {
  const m = /^\[([^\]]+)\](?::\d+)?$/.exec(domain);
  if (m) return m[1]!.toLowerCase();
  return domain.replace(/:\d+$/, '').toLowerCase();
}

/**
 * The registries the user allows over plain http: HULL_INSECURE_REGISTRIES (comma or space
 * separated host[:port] entries) plus `extra` (e.g. from --insecure-registry flags).
 */
export function insecureList(env: NodeJS.ProcessEnv = process.env, extra: string[] = []): string[] {
  const fromEnv = (env.HULL_INSECURE_REGISTRIES ?? '').split(/[\s,]+/).filter(Boolean);
  return [...fromEnv, ...extra].map((s) => s.replace(/^https?:\/\//, '').replace(/\/+$/, '').toLowerCase());
}

/** Whether `domain` may be spoken to over plain http. An entry without a port matches every port. */
export function allowsPlainHttp(domain: string, insecure: string[]): boolean {
  if (isLoopback(domain)) return true;
  const d = domain.toLowerCase();
  const h = hostOf(d);
  return insecure.some((e) => e === d || (!/:\d+$/.test(e) && hostOf(e) === h));
}

/** Resolve a reference's domain to the endpoint hull talks to. */
export function endpointFor(domain: string, insecure: string[] = insecureList()): Endpoint {
  if (domain === '' || /[/\s@]/.test(domain)) throw invalid(`invalid registry ${JSON.stringify(domain)}`);
  const d = domain.toLowerCase();
  const host = d === DOCKER_HUB_DOMAIN || d === 'index.docker.io' ? DOCKER_HUB_HOST : d;
  const scheme = allowsPlainHttp(d, insecure) ? 'http' : 'https';
  return { domain: d === 'index.docker.io' ? DOCKER_HUB_DOMAIN : d, host, scheme, base: `${scheme}://${host}` };
}

/**
 * Normalise what a user types after `hull login` (docker.io, https://index.docker.io/v1/,
 * localhost:5000, http://reg:5000/) to a registry domain.
 */
export function normaliseRegistryArg(arg: string | undefined): string {
  if (arg === undefined || arg === '') return DOCKER_HUB_DOMAIN;
  let s = arg.trim().toLowerCase().replace(/^https?:\/\//, '');
  s = s.replace(/\/v[12]\/?$/, '').replace(/\/+$/, '');
  if (s === 'index.docker.io' || s === 'registry-1.docker.io' || s === DOCKER_HUB_DOMAIN) return DOCKER_HUB_DOMAIN;
  if (s === '' || s.includes('/') || /\s/.test(s)) throw invalid(`invalid registry address ${JSON.stringify(arg)}: expected host[:port]`);
  return s;
}

/** The keys under which credentials for `domain` may be stored in a docker-style `auths` map. */
export function authKeys(domain: string): string[] {
  if (domain === DOCKER_HUB_DOMAIN) {
    return [DOCKER_HUB_AUTH_KEY, 'index.docker.io', 'docker.io', 'https://index.docker.io', 'registry-1.docker.io', 'https://registry-1.docker.io'];
  }
  return [domain, `https://${domain}`, `http://${domain}`, `https://${domain}/v2/`, `http://${domain}/v2/`, `https://${domain}/v1/`];
}

/** The key hull writes for `domain` (docker's own choice of key). */
export function authKey(domain: string): string {
  return domain === DOCKER_HUB_DOMAIN ? DOCKER_HUB_AUTH_KEY : domain;
}
