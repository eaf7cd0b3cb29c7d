/**
 * Docker Engine API routes hull does not implement: answered 501 with a message that names
 * the route, so a client learns "not in hull" rather than a bare 404.
 */
import type { Handler } from './context.js';
import { HttpError } from './errors.js';
import type { Router } from './router.js';

/** Each route with why hull does not answer it (the README's "Not built" list says the same). */
export const UNSUPPORTED: [string, string, string][] = [
  ['GET', '/images/search', 'hull talks to registries by name only: no Docker Hub search'],
  ['GET', '/swarm', 'hull is one engine: no swarm'],
  ['GET', '/services', 'hull is one engine: no swarm services'],
  ['GET', '/plugins', 'hull has no plugins'],
  ['POST', '/session', 'BuildKit sessions: hull builds with its own builder (POST /build)'],
];

export function register(r: Router<Handler>): void {
  for (const [method, pattern, why] of UNSUPPORTED) {
    r.add(method, pattern, async () => {
      throw new HttpError(501, `hull does not implement ${method} ${pattern} of the Docker Engine API: ${why}`);
    });
  }
}
