import crypto from 'node:crypto';
import fs from 'node:fs';
import { finished } from 'node:stream';
import type { ContentStore } from '../content/store.js';
import { HullError, invalid } from '../errors.js';
import type { Digest } from '../oci/digest.js';
import type { RegistryClient } from './client.js';
import { drain, isTransientNetworkError, type HttpResponse } from './http.js';

/**
 * Blob download into the content store, verified while it streams: the bytes are hashed and
 * counted on the way to a temp file beside the blobs and renamed into place only when digest
 * and size match. A connection that breaks mid-blob is resumed with a Range request (the hash
 * state is kept), or restarted when the server ignores the range. On any failure the temp
 * file is removed: nothing half-made is kept.
 */
export interface BlobTarget {
  /** Repository path inside the registry: library/alpine. */
  repo: string;
  digest: Digest;
  /** Exact size in bytes from the descriptor. */
  size: number;
  /** Names the blob in errors: "layer 2 of alpine:3.20". */
  what: string;
}

/** Bytes gathered before one write to disk. */
const WRITE_BATCH = 1024 * 1024;

/** Bytes written to a blob's temp file between two early write-backs (see `receive`). */
const WRITEBACK_EVERY = 8 * 1024 * 1024;

/**
 * Fetch a blob into `content`. `onBytes(total)` reports progress. `onVerified` is called once
 * every byte is in and digest and size matched, before the fsync and the rename: a caller
 * bounding concurrent downloads can start the next one then, so the network is not idle while
 * the disk catches up. Resolves when the blob is durable and in place.
 *
 * Durability: the blob is fsynced before it is renamed to its digest, so a blob that reads as
 * complete (present under its name with the right size) is complete even after a power loss;
 * later pulls trust such a blob without reading it again (fetchImage skips it, the unpack
 * checks only what it decompresses to). Batching the syncs into one syncfs before the
 * manifest is written would break that: a blob renamed before the sync could be present
 * with its full size but unwritten blocks after a crash, and the next pull would reuse it
 * unverified. So each blob keeps its own fsync; what is saved instead is the waiting: the
 * download slot is released before the sync (syncs of several blobs overlap each other and
 * the remaining downloads), and the data is pushed to disk in the background while it
 * streams (an fdatasync every WRITEBACK_EVERY bytes, one at a time), so the final fsync
 * has little left to write.
 */
export async function downloadBlob(client: RegistryClient, content: ContentStore, t: BlobTarget, onBytes?: (done: number) => void, onVerified?: () => void): Promise<void> {
  const tmp = content.tempPath('pull');
  const fh = await fs.promises.open(tmp, 'wx', 0o600);
  let committed = false;
  const wb = new WriteBack(fh);
  try {
    let hash = crypto.createHash('sha256');
    let written = 0;
    let failures = 0;
    for (;;) {
      const headers: Record<string, string> = {};
      if (written > 0) headers.Range = `bytes=${written}-`;
      const res = await client.request({ method: 'GET', path: `/v2/${t.repo}/blobs/${t.digest}`, headers, scopes: [`repository:${t.repo}:pull`] });
      if (res.status === 206 && written > 0 && rangeStart(res) === written) {
        // resumed where we were
      } else if (res.status === 200 || (res.status === 206 && written === 0 && rangeStart(res) === 0)) {
        if (written > 0) {
          await wb.settle();
          await fh.truncate(0);
          hash = crypto.createHash('sha256');
          written = 0;
        }
      } else {
        if (res.status === 206 || res.status === 416) drain(res);
        if (res.status === 206 || res.status === 416) throw new HullError('UNAVAILABLE', `${t.what}: the registry answered a range request wrongly (${res.status})`);
        await client.fail(res, `${t.what} (${t.digest})`);
      }
      try {
        written = await receive(res, fh, wb, hash, written, t, onBytes);
        break;
      } catch (e) {
        const got = (e as { written?: unknown }).written;
        if (typeof got === 'number') written = got;
        client.checkCancelled();
        if (e instanceof HullError || !isTransientNetworkError(e) || failures >= client.retries) {
          if (e instanceof HullError) throw e;
          throw new HullError('UNAVAILABLE', `${t.what}: download failed after ${written} of ${t.size} bytes: ${(e as Error).message}`, { cause: e });
        }
        failures++;
        const d = client.backoff(failures);
        client.noteRetry(`blob ${t.digest}`, failures, d, (e as Error).message);
        await client.pause(d);
      }
    }
    if (written !== t.size) throw invalid(`${t.what}: size mismatch: got ${written} bytes, expected ${t.size}`);
    const got = `sha256:${hash.digest('hex')}`;
    if (got !== t.digest) throw invalid(`${t.what}: digest mismatch: content hashes to ${got}, expected ${t.digest}`);
    onVerified?.();
    await wb.settle();
    await fh.sync();
    await fh.close();
    await fs.promises.rename(tmp, content.path(t.digest));
    committed = true;
  } finally {
    if (!committed) {
      await wb.settle().catch(() => undefined);
      await fh.close().catch(() => undefined);
      fs.rmSync(tmp, { force: true });
    }
  }
}

function rangeStart(res: HttpResponse): number | undefined {
  const m = /^bytes (\d+)-\d+\/(?:\d+|\*)$/.exec(String(res.headers['content-range'] ?? ''));
  return m ? Number(m[1]) : undefined;
}

/**
 * Early write-back of a blob being written: at most one fdatasync in flight, started every
 * WRITEBACK_EVERY bytes. Its error is kept and thrown by `settle` (Linux reports a write-back
 * error to one fsync only, so it must not be swallowed here).
 */
class WriteBack {
  private pending: Promise<void> | undefined;
  private since = 0;
  private error: unknown;
  constructor(private readonly fh: fs.promises.FileHandle) {}

  wrote(n: number): void {
    this.since += n;
    if (this.since < WRITEBACK_EVERY || this.pending) return;
    this.since = 0;
    this.pending = this.fh.datasync().then(
      () => {
        this.pending = undefined;
      },
      (e: unknown) => {
        this.error ??= e;
        this.pending = undefined;
      },
    );
  }

  /** Wait for the write-back in flight; throw the first error one had. */
  async settle(): Promise<void> {
    await this.pending;
    if (this.error !== undefined) throw this.error;
  }
}

/**
 * Stream a response body into the file, hashing; returns the new total written. Chunks are
 * taken from 'data' events (an async iterator costs a promise and a queue entry per 64 KiB
 * chunk: ~10% of a pull's CPU here); the body is paused while a batch is written. On failure the
 * error carries `written`, the bytes now safely in the file, so a Range request can go on.
 */
async function receive(res: HttpResponse, fh: fs.promises.FileHandle, wb: WriteBack, hash: crypto.Hash, start: number, t: BlobTarget, onBytes?: (n: number) => void): Promise<number> {
  let written = start;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const flush = async () => {
    if (pendingBytes === 0) return;
    const bufs = pending;
    const total = pendingBytes;
    pending = [];
    pendingBytes = 0;
    // One writev for the batch (no copy); finish a short write with plain writes.
    let off = (await fh.writev(bufs)).bytesWritten;
    if (off < total) {
      const rest = Buffer.concat(bufs, total);
      while (off < total) off += (await fh.write(rest, off, total - off, null)).bytesWritten;
    }
    wb.wrote(total);
  };
  const body = res.body;
  let writing: Promise<void> = Promise.resolve();
  try {
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      const fail = (e: unknown) => {
        if (settled) return;
        settled = true;
        body.off('data', onData);
        reject(e);
      };
      const onData = (chunk: Buffer) => {
        if (settled) return;
        if (written + chunk.length > t.size) {
          fail(invalid(`${t.what}: size mismatch: the registry sent more than the expected ${t.size} bytes`));
          return;
        }
        hash.update(chunk);
        pending.push(chunk);
        pendingBytes += chunk.length;
        written += chunk.length;
        if (pendingBytes >= WRITE_BATCH) {
          body.pause();
          writing = flush().then(() => {
            onBytes?.(written);
            if (!settled) body.resume();
          });
          writing.catch(fail);
        }
      };
      body.on('data', onData);
      finished(body, (err) => {
        if (err) fail(err);
        else if (!settled) {
          settled = true;
          resolve();
        }
      });
    });
    await writing;
  } catch (e) {
    body.destroy();
    // Keep what arrived intact so a Range request can continue after it.
    await writing.catch(() => undefined);
    await flush();
    throw Object.assign(e as Error, { written });
  }
  await flush();
  onBytes?.(written);
  return written;
}
