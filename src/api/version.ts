/**
 * API versions: what hull announces, what it accepts, and how a request path names one.
 * Docker clients negotiate down to the server's version (from /_ping's Api-Version header)
 * and put it in every path: /v1.45/containers/json. Unversioned paths use the server's.
 */
import { HttpError } from './errors.js';

/** The API version hull speaks (docker 26.1). */
export const API_VERSION = '1.45';
/** The oldest version a client may ask for. */
export const MIN_API_VERSION = '1.24';

/** Compare two 'MAJOR.MINOR' versions: <0, 0, >0. */
export function compareVersions(a: string, b: string): number {
  const [am, an] = a.split('.').map(Number) as [number, number];
  const [bm, bn] = b.split('.').map(Number) as [number, number];
  return am !== bm ? am - bm : (an ?? 0) - (bn ?? 0);
}

export interface VersionedPath {
  /** The version the path asked for (API_VERSION when unversioned). */
  version: string;
  /** The path without the /vX.Y prefix, e.g. '/containers/json'. */
  path: string;
}

/**
 * Split '/v1.45/containers/json' into version and path. A version outside
 * MIN_API_VERSION..API_VERSION is a 400 with docker's wording.
 */
export function splitVersion(pathname: string): VersionedPath {
  const m = /^\/v(\d+)\.(\d+)(\/.*)?$/.exec(pathname);
  if (!m) return { version: API_VERSION, path: pathname };
  const version = `${Number(m[1])}.${Number(m[2])}`;
  if (compareVersions(version, API_VERSION) > 0) {
    throw new HttpError(400, `client version ${version} is too new. Maximum supported API version is ${API_VERSION}`);
  }
  if (compareVersions(version, MIN_API_VERSION) < 0) {
    throw new HttpError(400, `client version ${version} is too old. Minimum supported API version is ${MIN_API_VERSION}, please upgrade your client to a newer version`);
  }
  return { version, path: m[3] ?? '/' };
}
