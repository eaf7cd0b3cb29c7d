import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HullError, invalid } from '../errors.js';
import { authKey, authKeys } from './hosts.js';

/**
 * Registry credentials. hull writes its own file, in docker's config.json `auths` format and
 * always with mode 0600 (directory 0700):
 *   $HULL_AUTH_FILE, else $XDG_CONFIG_HOME/hull/auth.json, else ~/.config/hull/auth.json
 * and reads, after its own, what a docker user already has in $DOCKER_CONFIG/config.json
 * (default ~/.docker/config.json): `auths` entries, `credHelpers` and `credsStore` helpers.
 * hull never writes docker's file.
 */
export interface Credentials {
  username: string;
  password: string;
  /** An OAuth refresh token (docker's `identitytoken`), used instead of the password for tokens. */
  identityToken?: string;
  /** Where they came from, for messages: a file path or `docker-credential-<helper>`. */
  source: string;
}

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
}
interface ConfigFile {
  auths?: Record<string, AuthEntry>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
  [k: string]: unknown;
}

export function hullAuthFile(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HULL_AUTH_FILE) return path.resolve(env.HULL_AUTH_FILE);
  const base = env.XDG_CONFIG_HOME || path.join(env.HOME || os.homedir(), '.config');
  return path.join(base, 'hull', 'auth.json');
}

export function dockerConfigFile(env: NodeJS.ProcessEnv = process.env): string {
  if (env.DOCKER_CONFIG) return path.join(env.DOCKER_CONFIG, 'config.json');
  return path.join(env.HOME || os.homedir(), '.docker', 'config.json');
}

function readConfig(file: string): ConfigFile | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new HullError('PERMISSION_DENIED', `cannot read credentials file ${file}: ${(e as Error).message}`, { cause: e });
  }
  try {
    const doc = JSON.parse(text) as unknown;
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new Error('not a JSON object');
    return doc as ConfigFile;
  } catch (e) {
    throw invalid(`credentials file ${file} is not valid: ${(e as Error).message}`, e);
  }
}

/** Decode one `auths` entry; undefined when it holds nothing usable. */
export function decodeAuthEntry(e: AuthEntry | undefined, source: string): Credentials | undefined {
  if (!e || typeof e !== 'object') return undefined;
  let username = e.username ?? '';
  let password = e.password ?? '';
  if (typeof e.auth === 'string' && e.auth !== '') {
    const plain = Buffer.from(e.auth, 'base64').toString('utf8');
    const colon = plain.indexOf(':');
    if (colon < 0) throw invalid(`credentials in ${source}: the auth field is not base64 of user:password`);
    username = plain.slice(0, colon);
    password = plain.slice(colon + 1);
  }
  const identityToken = typeof e.identitytoken === 'string' && e.identitytoken !== '' ? e.identitytoken : undefined;
  if (username === '' && !identityToken) return undefined;
  return { username, password, identityToken, source };
}

function fromAuths(cfg: ConfigFile | undefined, domain: string, source: string): Credentials | undefined {
  if (!cfg?.auths || typeof cfg.auths !== 'object') return undefined;
  for (const k of authKeys(domain)) {
    const c = decodeAuthEntry(cfg.auths[k], source);
    if (c) return c;
  }
  return undefined;
}

/** Ask a docker credential helper (docker-credential-NAME get). Missing helper: undefined. */
function fromHelper(helper: string, domain: string): Credentials | undefined {
  if (!/^[A-Za-z0-9_.-]+$/.test(helper)) return undefined;
  const bin = `docker-credential-${helper}`;
  const r = spawnSync(bin, ['get'], { input: authKey(domain), encoding: 'utf8', timeout: 30_000 });
  if (r.error || r.status !== 0) return undefined;
  try {
    const o = JSON.parse(r.stdout) as { Username?: string; Secret?: string };
    if (!o.Secret) return undefined;
    if (o.Username === '<token>') return { username: '', password: '', identityToken: o.Secret, source: bin };
    return { username: o.Username ?? '', password: o.Secret, source: bin };
  } catch {
    return undefined;
  }
}

/** The credentials for a registry domain (docker.io, localhost:5000), or undefined for anonymous access. */
export function lookupCredentials(domain: string, env: NodeJS.ProcessEnv = process.env): Credentials | undefined {
  const own = hullAuthFile(env);
  const c = fromAuths(readConfig(own), domain, own);
  if (c) return c;
  const dockerFile = dockerConfigFile(env);
  const docker = readConfig(dockerFile);
  if (!docker) return undefined;
  const helper = docker.credHelpers?.[authKey(domain)] ?? docker.credHelpers?.[domain];
  if (helper) return fromHelper(helper, domain);
  const d = fromAuths(docker, domain, dockerFile);
  if (d) return d;
  if (docker.credsStore) return fromHelper(docker.credsStore, domain);
  return undefined;
}

/** Write `cfg` to `file` atomically with mode 0600 (its directory 0700 when hull creates it). */
function writeConfig(file: string, cfg: ConfigFile): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
  try {
    fs.writeFileSync(tmp, `${JSON.stringify(cfg, null, '\t')}\n`, { mode: 0o600, flag: 'wx' });
    fs.chmodSync(tmp, 0o600);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw new HullError('PERMISSION_DENIED', `cannot write credentials file ${file}: ${(e as Error).message}`, { cause: e });
  }
}

/** Store credentials for `domain` in hull's file. Returns the file written. */
export function saveCredentials(domain: string, username: string, password: string, env: NodeJS.ProcessEnv = process.env): string {
  if (username === '') throw invalid('username is empty');
  if (username.includes(':')) throw invalid('username must not contain ":"');
  if (password === '') throw invalid('password is empty');
  const file = hullAuthFile(env);
  const cfg = readConfig(file) ?? {};
  const auths = { ...(cfg.auths ?? {}) };
  for (const k of authKeys(domain)) delete auths[k];
  auths[authKey(domain)] = { auth: Buffer.from(`${username}:${password}`, 'utf8').toString('base64') };
  writeConfig(file, { ...cfg, auths });
  return file;
}

/** Remove hull's stored credentials for `domain`. Returns false when there were none. */
export function removeCredentials(domain: string, env: NodeJS.ProcessEnv = process.env): boolean {
  const file = hullAuthFile(env);
  const cfg = readConfig(file);
  if (!cfg?.auths) return false;
  const auths = { ...cfg.auths };
  let removed = false;
  for (const k of authKeys(domain)) {
    if (k in auths) {
      delete auths[k];
      removed = true;
    }
  }
  if (removed) writeConfig(file, { ...cfg, auths });
  return removed;
}
