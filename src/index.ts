/**
 * hull as a library: the same engine the CLI and the API server use.
 *   import { ... } from 'hull'
 */
export { HullError, type ErrorCode } from './errors.js';
export { DEFAULT_ROOT, resolveRoot } from './paths.js';
export { parseReference, formatReference, familiarString, type Reference } from './images/reference.js';

// The container lifecycle engine: run, ps, logs, stop, kill, rm, wait, exec, inspect, stats.
export {
  Engine,
  type AttachStdio,
  type RunResult,
  type ExecOptions,
  type LogsOptions,
  type StatsEntry,
} from './engine/engine.js';
export type { RunOptions } from './engine/options.js';
export type { ContainerInspect, ContainerSummary } from './engine/inspect.js';
export { parseBytes, parseCpus } from './engine/units.js';
export type { Wall, MountSpec, Ulimit, Isolation, InstanceSpec, ExitInfo } from './runtime/types.js';
export { createIsolation } from './runtime/index.js';
