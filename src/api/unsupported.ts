/**
 * Docker Engine API routes hull does not implement: answered 501 with a message that names
 * the route, so a client learns "not in hull" rather than a bare 404.
 */
import type { Handler } from './context.js';
import { HttpError } from './errors.js';
import type { Router } from './router.js';

const ROUTES: [string, string][] = [
  ['POST', '/containers/{id}/pause'],
  ['POST', '/containers/{id}/unpause'],
  ['POST', '/containers/{id}/rename'],
  ['POST', '/containers/{id}/update'],
  ['GET', '/containers/{id}/top'],
  ['GET', '/containers/{id}/archive'],
  ['PUT', '/containers/{id}/archive'],
  ['HEAD', '/containers/{id}/archive'],
  ['GET', '/images/search'],
  ['GET', '/events'],
  ['GET', '/system/df'],
  ['GET', '/volumes'],
  ['POST', '/volumes/create'],
  ['GET', '/swarm'],
  ['GET', '/services'],
  ['GET', '/plugins'],
  ['POST', '/session'],
];

export function register(r: Router<Handler>): void {
  for (const [method, pattern] of ROUTES) {
    r.add(method, pattern, async (c) => {
      throw new HttpError(501, `hull does not implement ${method} ${pattern} of the Docker Engine API`);
    });
  }
}
