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

// The registry client: pull, push, credentials (progress as events; the CLI renders them).
export { pull, pullImage, type PullOptions, type PullResult } from './registry/pull.js';
export { push, type PushOptions, type PushResult } from './registry/push.js';
export type { ProgressEvent, ProgressListener, BlobStatus } from './registry/events.js';
export { renderProgress, dockerJsonMessages, type DockerJsonMessage } from './registry/progress.js';
export { lookupCredentials, saveCredentials, removeCredentials, type Credentials } from './registry/credentials.js';

// Images: the store (resolve, list, tag, remove), load/save archives, import of a root filesystem.
export { ImageStore, type ImageRecord } from './images/store.js';

// The Docker Engine API server (what `hull serve` runs).
export { startApiServer, type ServeOptions, type ApiServer } from './api/server.js';

// Measuring the walls (what `hull contrast` and `hull advise` run).
export { contrast, reportJson, renderHtml, type ContrastRequest } from './contrast/setup.js';
export { advise, type AdviseInput, type Advice } from './contrast/advise.js';
export type { ContrastReport } from './contrast/types.js';
