/**
 * Read an image archive (docker save or OCI image layout, optionally gzip/zstd-compressed as a
 * whole) in one pass from a stream: `blobs/sha256/<hex>` entries go straight into the content
 * store, verified against their names; other large entries (legacy `<id>/layer.tar`) are
 * stored under the digest computed on the way in; small entries (JSON documents) are kept in
 * memory. Entry names are cleaned and refused when absolute or containing '..'.
 */
import { createRequire } from 'node:module';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type * as TarStream from 'tar-stream';
import type { ContentStore } from '../content/store.js';
import { HullError, invalid } from '../errors.js';
import { type Digest, sha256 } from '../oci/digest.js';
import { cleanEntryName, symlinkTargetInside } from '../snapshots/unpack-paths.js';
import { decompressor, sniffCompression } from '../snapshots/unpack-layer.js';
import { wrapFeedError } from '../snapshots/unpack.js';
import { peek } from './stream-util.js';

const require = createRequire(import.meta.url);

/** Entries up to this size are kept in memory (bytes). */
export const SMALL_ENTRY = 1 << 20;
/** JSON documents up to this size are kept in memory (bytes). */
export const MAX_DOCUMENT = 16 << 20;

export interface ArchiveContents {
  /** Small files by cleaned path. */
  files: Map<string, Buffer>;
  /** Large files stored in the content store, by cleaned path. */
  stored: Map<string, { digest: Digest; size: number }>;
  /** Symlinks: cleaned path -> cleaned target path inside the archive. */
  links: Map<string, string>;
  /** Blobs this read added to the store (to drop again if the load fails). */
  written: Digest[];
}

export class ArchiveReader {
  constructor(
    readonly c: ArchiveContents,
    private readonly cs: ContentStore,
    readonly what: string,
  ) {}

  /** Follow archive-internal symlinks to a real entry path. */
  resolve(p: string): string {
    let cur = cleanEntryName(p, `${this.what}: path`);
    for (let i = 0; i < 16 && this.c.links.has(cur); i++) cur = this.c.links.get(cur)!;
    return cur;
  }

  has(p: string): boolean {
    const r = this.resolve(p);
    return this.c.files.has(r) || this.c.stored.has(r);
  }

  /** A small document's bytes, or an error naming the missing path. */
  document(p: string, field: string): Buffer {
    const r = this.resolve(p);
    const b = this.c.files.get(r);
    if (b) return b;
    if (this.c.stored.has(r)) {
      const d = this.c.stored.get(r)!;
      if (d.size > MAX_DOCUMENT) throw invalid(`${this.what}: ${field} ${JSON.stringify(p)} is ${d.size} bytes, too large for a JSON document`);
      return this.cs.readBuffer(d.digest, MAX_DOCUMENT);
    }
    throw invalid(`${this.what}: ${field} ${JSON.stringify(p)} is not in the archive`);
  }

  /** Make sure the entry at `p` is in the content store; its digest and size. */
  blob(p: string, field: string): { digest: Digest; size: number } {
    const r = this.resolve(p);
    const s = this.c.stored.get(r);
    if (s) return s;
    const b = this.c.files.get(r);
    if (!b) throw invalid(`${this.what}: ${field} ${JSON.stringify(p)} is not in the archive`);
    const existed = this.cs.has(sha256(b));
    const put = this.cs.putBuffer(b);
    if (!existed) this.c.written.push(put.digest);
    this.c.stored.set(r, put);
    return put;
  }
}

/**
 * Read the whole archive stream. Blobs it adds to the store are pushed onto `written` as they
 * land, so the caller can drop them again when the read or the load fails.
 */
export async function readArchive(input: Readable, cs: ContentStore, what: string, written: Digest[]): Promise<ArchiveReader> {
  const tar = require('tar-stream') as typeof TarStream;
  const contents: ArchiveContents = { files: new Map(), stored: new Map(), links: new Map(), written };
  const reader = new ArchiveReader(contents, cs, what);
  const { head, stream } = await peek(input, 4);
  if (head.length === 0) throw invalid(`${what}: empty input`);
  const dec = await decompressor(sniffCompression(head), what);
  const ex = tar.extract();
  let feedErr: unknown;
  const feeding = pipeline(stream, dec, ex as unknown as NodeJS.WritableStream).catch((e: unknown) => {
    feedErr = e;
  });
  try {
    for await (const e of ex) {
      const h = e.header;
      const rel = cleanEntryName(h.name, `${what}: entry`);
      if (h.type === 'symlink') {
        const t = symlinkTargetInside(rel, h.linkname ?? '');
        if (t === undefined) throw invalid(`${what}: entry ${JSON.stringify(h.name)}: symlink to ${JSON.stringify(h.linkname)} points outside the archive`);
        contents.links.set(rel, t);
        e.resume();
        continue;
      }
      if (h.type === 'link') {
        const t = cleanEntryName(h.linkname ?? '', `${what}: entry ${JSON.stringify(h.name)}: hardlink target`);
        contents.links.set(rel, t);
        e.resume();
        continue;
      }
      if (h.type !== 'file' && h.type !== 'contiguous-file') {
        e.resume();
        continue;
      }
      const m = /^blobs\/sha256\/([0-9a-f]{64})$/.exec(rel);
      if (m) {
        const digest = `sha256:${m[1]}` as Digest;
        if (cs.has(digest) && cs.size(digest) === h.size) {
          for await (const _ of e) {
            /* already stored and verified */
          }
        } else {
          await cs.putStream(e as unknown as Readable, { digest, size: h.size, what: `${what}: entry ${JSON.stringify(h.name)}` });
          contents.written.push(digest);
        }
        contents.stored.set(rel, { digest, size: h.size });
        continue;
      }
      const small = h.size <= SMALL_ENTRY || (rel.endsWith('.json') && h.size <= MAX_DOCUMENT);
      if (small) {
        const chunks: Buffer[] = [];
        for await (const c of e as AsyncIterable<Buffer>) chunks.push(c);
        contents.files.set(rel, Buffer.concat(chunks));
      } else {
        const put = await cs.putStream(e as unknown as Readable, { size: h.size, what: `${what}: entry ${JSON.stringify(h.name)}` });
        contents.written.push(put.digest);
        contents.stored.set(rel, put);
      }
    }
  } catch (err) {
    ex.destroy();
    stream.destroy();
    await feeding;
    throw wrapFeedError(err instanceof HullError ? err : (feedErr ?? err), what);
  }
  await feeding;
  if (feedErr) {
    throw wrapFeedError(feedErr, what);
  }
  return reader;
}
