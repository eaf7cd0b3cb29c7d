/**
 * hull as a library: the same engine the CLI and the API server use.
 *   import { ... } from 'hull'
 */
export { HullError, type ErrorCode } from './errors.js';
export { DEFAULT_ROOT, resolveRoot } from './paths.js';
export { parseReference, formatReference, familiarString, type Reference } from './images/reference.js';
