import type { Credentials } from './credentials.js';
/**
 * Progress of a pull or push as plain data, so the CLI, the engine and the API server can each
 * render it their own way (see progress.ts for the CLI's). Statuses follow docker's words.
 */
export type BlobStatus =
  // pull
  | 'waiting' // Pulling fs layer
  | 'exists' // Already exists (in the local store: not fetched)
  | 'downloading' // Downloading, with current/total bytes
  | 'verifying' // Verifying Checksum
  | 'downloaded' // Download complete
  | 'complete' // Pull complete (recorded; also unpacked when the pull unpacks)
  // push
  | 'preparing' // Preparing
  | 'remote-exists' // Layer already exists
  | 'mounted' // Mounted from <repo>
  | 'pushing' // Pushing, with current/total bytes
  | 'pushed'; // Pushed

export type ProgressEvent =
  /** Pull: which tag/digest from which repository; push: which repository. */
  | { type: 'start'; op: 'pull' | 'push'; reference: string; repository: string; tagOrDigest: string; defaultTag: boolean }
  | { type: 'resolved'; digest: string; mediaType: string; platform?: string }
  | { type: 'blob'; id: string; digest: string; size: number; status: BlobStatus; current?: number; from?: string }
  | { type: 'retry'; what: string; attempt: number; delayMs: number; reason: string }
  | { type: 'done'; op: 'pull' | 'push'; reference: string; digest: string; upToDate: boolean; tag?: string; size?: number };

export type ProgressListener = (e: ProgressEvent) => void;

/** What pull and push share: where progress goes, which registries may be plain http, credentials. */
export interface TransferOptions {
  /** Print nothing to `out` (the CLI then prints only the reference). Default false. */
  quiet?: boolean;
  /** Where docker-style progress goes (bars when it is a TTY, plain lines otherwise). Default: nowhere. */
  out?: NodeJS.WritableStream;
  /** Receives every progress event (the API server streams these). */
  onEvent?: ProgressListener;
  /** Registries allowed over plain http besides loopback. Default: $HULL_INSECURE_REGISTRIES. */
  insecure?: string[];
  /** Credentials to use; null for anonymous. Default: looked up for the registry. */
  credentials?: Credentials | null;
  /** Blob transfers at once. Default 3. */
  concurrency?: number;
  /** Cancels the operation; what was half done is removed (finished, verified blobs stay). */
  signal?: AbortSignal;
}
