import type { BlobStatus, ProgressEvent, ProgressListener, TransferOptions } from './events.js';

/**
 * The CLI's view of pull/push progress, as docker prints it: one line per layer redrawn in
 * place with a bar on a terminal; on anything else one plain line per state change (no byte
 * counts), so logs stay readable.
 */
const WORDS: Record<BlobStatus, string> = {
  waiting: 'Pulling fs layer',
  exists: 'Already exists',
  downloading: 'Downloading',
  verifying: 'Verifying Checksum',
  downloaded: 'Download complete',
  complete: 'Pull complete',
  preparing: 'Preparing',
  'remote-exists': 'Layer already exists',
  mounted: 'Mounted from',
  pushing: 'Pushing',
  pushed: 'Pushed',
};

/** Docker's human sizes: 4.26MB, 1.2GB (SI units, 3 significant digits). */
export function humanBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${Number(v.toPrecision(3))}${units[i]}`;
}

/** `[=====>      ]  1.2MB/3.4MB`, docker's bar (width 50). Pure. */
export function progressBar(current: number, total: number, width = 50): string {
  const frac = total > 0 ? Math.min(1, current / total) : 0;
  const filled = Math.floor(frac * width);
  const bar = filled >= width ? '='.repeat(width) : `${'='.repeat(Math.max(0, filled - 1))}${filled > 0 ? '>' : ''}${' '.repeat(width - Math.max(1, filled))}`;
  return `[${filled === 0 ? ' '.repeat(width) : bar.padEnd(width)}] ${humanBytes(current).padStart(7)}/${humanBytes(total)}`;
}

/** The text of one layer line. Pure. */
export function blobLine(e: Extract<ProgressEvent, { type: 'blob' }>, tty: boolean, op: 'pull' | 'push' = 'pull'): string {
  if (e.status === 'waiting' && op === 'push') return `${e.id}: Waiting`;
  if (e.status === 'mounted') return `${e.id}: Mounted from ${e.from ?? ''}`.trimEnd();
  if ((e.status === 'downloading' || e.status === 'pushing') && tty && e.current !== undefined) {
    return `${e.id}: ${WORDS[e.status]} ${progressBar(e.current, e.size)}`;
  }
  return `${e.id}: ${WORDS[e.status]}`;
}

/** The lines printed for a non-blob event (may be empty). Pure. */
export function eventLines(e: ProgressEvent): string[] {
  switch (e.type) {
    case 'start':
      if (e.op === 'push') return [`The push refers to repository [${e.repository}]`];
      return [...(e.defaultTag ? ['Using default tag: latest'] : []), `${e.tagOrDigest}: Pulling from ${e.repository}`];
    case 'retry':
      return [`Retrying in ${Math.max(1, Math.round(e.delayMs / 1000))} second${Math.round(e.delayMs / 1000) > 1 ? 's' : ''} (attempt ${e.attempt}: ${e.reason})`];
    case 'done':
      if (e.op === 'push') return [`${e.tag ?? 'latest'}: digest: ${e.digest} size: ${e.size ?? 0}`];
      return [`Digest: ${e.digest}`, e.upToDate ? `Status: Image is up to date for ${e.reference}` : `Status: Downloaded newer image for ${e.reference}`];
    default:
      return [];
  }
}

export interface Renderer {
  listener: ProgressListener;
  /** Stop redrawing (call once, after the operation). */
  finish(): void;
}

export function renderProgress(out: NodeJS.WritableStream, opts: { tty?: boolean } = {}): Renderer {
  const tty = opts.tty ?? ((out as NodeJS.WriteStream).isTTY === true && process.env.TERM !== 'dumb');
  /** Line number (0-based, from the first line printed) of each layer's line. */
  const pos = new Map<string, number>();
  let printed = 0;
  const text = new Map<string, string>();
  const lastStatus = new Map<string, string>();
  let done = false;
  let op: 'pull' | 'push' = 'pull';
  const redraw = (id: string) => {
    const up = printed - pos.get(id)!;
    // Up to the layer's line, clear it, write, and back down below the block.
    out.write(`\x1b[${up}A\r\x1b[2K${text.get(id)}\r\x1b[${up}B`);
  };
  const listener: ProgressListener = (e) => {
    if (done) return;
    if (e.type === 'start') op = e.op;
    if (e.type !== 'blob') {
      for (const l of eventLines(e)) {
        out.write(`${l}\n`);
        printed++;
      }
      return;
    }
    const line = blobLine(e, tty, op);
    if (!tty) {
      const key = e.status === 'downloading' || e.status === 'pushing' ? e.status : line;
      if (lastStatus.get(e.id) === key) return;
      lastStatus.set(e.id, key);
      out.write(`${line}\n`);
      return;
    }
    if (!pos.has(e.id)) {
      pos.set(e.id, printed);
      text.set(e.id, line);
      out.write(`${line}\n`);
      printed++;
      return;
    }
    if (text.get(e.id) === line) return;
    text.set(e.id, line);
    redraw(e.id);
  };
  return {
    listener,
    finish() {
      done = true;
    },
  };
}

/** One line of docker's JSON progress stream (POST /images/create, /images/{name}/push). */
export interface DockerJsonMessage {
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number };
  progress?: string;
  aux?: { Tag: string; Digest: string; Size: number };
}

/**
 * The Docker Engine API's JSON messages for one progress event, so the API server streams what
 * the docker CLI expects. `op` says whether a 'waiting' blob is pulled or pushed. Pure.
 */
export function dockerJsonMessages(e: ProgressEvent, op: 'pull' | 'push' = 'pull'): DockerJsonMessage[] {
  switch (e.type) {
    case 'start':
      if (e.op === 'push') return [{ status: `The push refers to repository [${e.repository}]` }];
      return [{ status: `Pulling from ${e.repository}`, id: e.tagOrDigest }];
    case 'resolved':
      return [];
    case 'retry':
      return eventLines(e).map((status) => ({ status }));
    case 'done':
      if (e.op === 'push') {
        return [
          { status: `${e.tag ?? 'latest'}: digest: ${e.digest} size: ${e.size ?? 0}` },
          { progressDetail: {}, aux: { Tag: e.tag ?? 'latest', Digest: e.digest, Size: e.size ?? 0 } },
        ];
      }
      return eventLines(e).map((status) => ({ status }));
    case 'blob': {
      if (e.status === 'downloading' || e.status === 'pushing') {
        const current = e.current ?? 0;
        return [{ status: WORDS[e.status], progressDetail: { current, total: e.size }, progress: progressBar(current, e.size), id: e.id }];
      }
      const status = e.status === 'waiting' && op === 'push' ? 'Waiting' : e.status === 'mounted' ? `Mounted from ${e.from ?? ''}`.trimEnd() : WORDS[e.status];
      return [{ status, progressDetail: {}, id: e.id }];
    }
  }
}

/**
 * Where one pull's or push's events go: the caller's listener, and docker-style lines or bars on
 * `out` unless `quiet`. `finish` ends the rendering.
 */
export function progressSink(opts: Pick<TransferOptions, 'onEvent' | 'out' | 'quiet'>): { emit: ProgressListener; finish(): void } {
  const renderer = opts.out && !opts.quiet ? renderProgress(opts.out) : undefined;
  const listeners: ProgressListener[] = [];
  if (opts.onEvent) listeners.push(opts.onEvent);
  if (renderer) listeners.push(renderer.listener);
  return {
    emit: (e: ProgressEvent) => {
      for (const l of listeners) l(e);
    },
    finish: () => renderer?.finish(),
  };
}
