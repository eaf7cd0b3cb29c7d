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
