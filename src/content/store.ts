import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform, type Readable } from 'node:stream';
import { HullError, invalid, notFound } from '../errors.js';
import { type Digest, hex, parseDigest } from '../oci/digest.js';

export interface Expect {
  /** The digest the content must hash to; when absent the store computes it. */
  digest?: Digest;
  /** The exact size in bytes the content must have. */
  size?: number;
  /** Names the blob in errors (e.g. "layer 2 of busybox:latest"). */
  what?: string;
}

/**
 * Content-addressed blob store: blobs/sha256/<hex>.
 *
 * A blob is hashed and counted while it is written to a unique temp file on the same
 * filesystem, fsynced, and renamed into place only when digest and size match. A crash or
 * kill -9 mid-write leaves at most a temp file (swept by `sweepTemp`), never a blob that
 * reads as complete. Two writers of the same blob both rename identical bytes: last wins.
 */
export class ContentStore {
  readonly dir: string;
  readonly tmpDir: string;

  constructor(blobsDir: string, tmpDir: string) {
    this.dir = path.join(blobsDir, 'sha256');
    this.tmpDir = tmpDir;
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    fs.mkdirSync(this.tmpDir, { recursive: true, mode: 0o700 });
  }

  path(digest: Digest): string {
    return path.join(this.dir, hex(parseDigest(digest)));
  }

  has(digest: Digest): boolean {
    return fs.existsSync(this.path(digest));
  }

  /** Size in bytes, or undefined when absent. */
  size(digest: Digest): number | undefined {
    try {
      return fs.statSync(this.path(digest)).size;
    } catch {
      return undefined;
    }
  }

  /** A fresh temp path beside the blobs (same filesystem, so rename is atomic). */
  tempPath(prefix = 'blob'): string {
    return path.join(this.tmpDir, `${prefix}-${process.pid}-${crypto.randomBytes(6).toString('hex')}`);
  }

  /** Store a stream, verifying it on the way in. Resolves to the digest and size written. */
  async putStream(src: Readable | AsyncIterable<Buffer>, expect: Expect = {}): Promise<{ digest: Digest; size: number }> {
    const tmp = this.tempPath();
    const hash = crypto.createHash('sha256');
    let size = 0;
    const limit = expect.size;
    const what = expect.what ?? (expect.digest ? `blob ${expect.digest}` : 'blob');
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        size += chunk.length;
        if (limit !== undefined && size > limit) {
          cb(invalid(`${what}: size mismatch: more than the expected ${limit} bytes`));
          return;
        }
        hash.update(chunk);
        cb(null, chunk);
      },
    });
    // Open before streaming: a write stream that opens lazily could create the temp file
    // after a failed pipeline has already removed it, leaving a stray file behind.
    const fh = await fs.promises.open(tmp, 'wx', 0o600);
    try {
      const out = fh.createWriteStream({ autoClose: true });
      await pipeline(src, counter, out);
      const digest: Digest = `sha256:${hash.digest('hex')}`;
      this.check(digest, size, expect, what);
      await this.commit(tmp, digest);
      return { digest, size };
    } catch (e) {
      await fh.close().catch(() => {});
      fs.rmSync(tmp, { force: true });
      throw e;
    }
  }

  /** Store a buffer (manifests, configs), verified like a stream. */
  putBuffer(buf: Buffer, expect: Expect = {}): { digest: Digest; size: number } {
    const digest: Digest = `sha256:${crypto.createHash('sha256').update(buf).digest('hex')}`;
    this.check(digest, buf.length, expect, expect.what ?? `blob ${digest}`);
    if (this.has(digest)) return { digest, size: buf.length };
    const tmp = this.tempPath();
    try {
      const fd = fs.openSync(tmp, 'wx', 0o600);
      try {
        fs.writeSync(fd, buf);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, this.path(digest));
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      throw e;
    }
    return { digest, size: buf.length };
  }

  /** Move an already verified temp file into place under `digest`. */
  async commit(tmp: string, digest: Digest): Promise<void> {
    const fh = await fs.promises.open(tmp, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.promises.rename(tmp, this.path(digest));
  }

  private check(digest: Digest, size: number, expect: Expect, what: string): void {
    if (expect.size !== undefined && size !== expect.size) {
      throw invalid(`${what}: size mismatch: got ${size} bytes, expected ${expect.size}`);
    }
    if (expect.digest !== undefined && digest !== expect.digest) {
      throw invalid(`${what}: digest mismatch: content hashes to ${digest}, expected ${expect.digest}`);
    }
  }

  /** Read a whole blob, refusing one larger than `maxBytes` (manifests, configs). */
  readBuffer(digest: Digest, maxBytes = 16 * 1024 * 1024): Buffer {
    const p = this.path(digest);
    let st: fs.Stats;
    try {
      st = fs.statSync(p);
    } catch {
      throw notFound(`blob ${digest} not found in the content store`);
    }
    if (st.size > maxBytes) throw new HullError('INVALID_ARGUMENT', `blob ${digest} is ${st.size} bytes, over the ${maxBytes}-byte limit`);
    return fs.readFileSync(p);
  }

  createReadStream(digest: Digest): fs.ReadStream {
    if (!this.has(digest)) throw notFound(`blob ${digest} not found in the content store`);
    return fs.createReadStream(this.path(digest));
  }

  delete(digest: Digest): void {
    fs.rmSync(this.path(digest), { force: true });
  }

  list(): Digest[] {
    return fs
      .readdirSync(this.dir)
      .filter((n) => /^[0-9a-f]{64}$/.test(n))
      .map((n) => `sha256:${n}` as Digest);
  }

  /** Remove temp files older than `olderThanMs` left by crashed writers. */
  sweepTemp(olderThanMs = 60 * 60 * 1000): number {
    let n = 0;
    const now = Date.now();
    for (const name of fs.readdirSync(this.tmpDir)) {
      const p = path.join(this.tmpDir, name);
      try {
        const st = fs.lstatSync(p);
        if (now - st.mtimeMs > olderThanMs) {
          fs.rmSync(p, { recursive: true, force: true });
          n++;
        }
      } catch {
        /* raced with its owner */
      }
    }
    return n;
  }
}
